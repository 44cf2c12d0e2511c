//! Paths and append-only files. A path written in a config resolves against the config's
//! directory, `~` being the home directory. Append-only files (the event log) after a crash: a
//! process killed mid-append leaves a last line without its newline. Before appending again the
//! torn tail is cut off, so every line of the file is whole and readers never see half a record.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// `p` as written in a config whose directory is `base_dir`: `~` and `~/…` in the home
/// directory, an absolute path as it is, anything else relative to `base_dir`.
pub fn resolve(base_dir: &Path, p: impl AsRef<Path>) -> PathBuf {
    let p = p.as_ref();
    if let Ok(rest) = p.strip_prefix("~") {
        if let Some(dirs) = directories::BaseDirs::new() {
            return dirs.home_dir().join(rest);
        }
    }
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    }
}

/// Writes a file so that readers see the old or the new content, never a torn one: a temporary
/// file with a unique name in the same directory (two writers never share one), synced, renamed
/// over the target, then the directory synced so the rename itself survives a power cut.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), (PathBuf, std::io::Error)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // The mode any other file the user makes gets (0666 less the umask), not tempfile's 0600:
    // nothing dln writes atomically holds a secret.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(|e| (dir.to_path_buf(), e))?;
    crate::fault::io_point("atomic_write", || {
        // What a kill (or a full disk) mid-write leaves: half a temporary file, the target
        // untouched.
        let _ = tmp.as_file_mut().write_all(&bytes[..bytes.len() / 2]);
    })
    .and_then(|()| tmp.as_file_mut().write_all(bytes))
    .and_then(|_| tmp.as_file().sync_all())
    .map_err(|e| (tmp.path().to_path_buf(), e))?;
    tmp.persist(path)
        .map_err(|e| (path.to_path_buf(), e.error))?;
    sync_dir(dir);
    Ok(())
}

/// Makes a rename in `dir` durable. Best effort: not every file system lets a directory be
/// synced, and the data itself is already on disk.
pub fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Cuts a torn last line (bytes after the last `\n`) off `path`; returns how many bytes were
/// removed. A missing file is not an error.
pub fn repair_torn_tail(path: &Path) -> std::io::Result<u64> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    // Scan backwards in blocks for the last newline.
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    let keep = loop {
        let start = end.saturating_sub(buf.len() as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            break start + i as u64 + 1;
        }
        if start == 0 {
            break 0;
        }
        end = start;
    };
    if keep < len {
        file.set_len(keep)?;
        file.sync_all()?;
    }
    Ok(len - keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_paths_resolve_against_the_config_and_the_home_directory() {
        let base = Path::new("/configs");
        assert_eq!(
            resolve(base, "data/x.json"),
            Path::new("/configs/data/x.json")
        );
        assert_eq!(resolve(base, "/abs/x.json"), Path::new("/abs/x.json"));
        let home = directories::BaseDirs::new()
            .expect("a home")
            .home_dir()
            .to_path_buf();
        assert_eq!(resolve(base, "~/x.json"), home.join("x.json"));
        assert_eq!(resolve(base, "~"), home);
        assert_eq!(
            resolve(base, "~x/y"),
            Path::new("/configs/~x/y"),
            "not another user's home"
        );
    }

    #[test]
    fn a_torn_tail_is_cut_and_whole_lines_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.jsonl");
        std::fs::write(&p, "{\"a\":1}\n{\"b\":2}\n{\"c\":").unwrap();
        assert_eq!(repair_torn_tail(&p).unwrap(), 5);
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n"
        );
        assert_eq!(repair_torn_tail(&p).unwrap(), 0);
        std::fs::write(&p, "no newline at all").unwrap();
        assert_eq!(repair_torn_tail(&p).unwrap(), 17);
        assert_eq!(std::fs::read(&p).unwrap(), b"");
        assert_eq!(repair_torn_tail(&dir.path().join("missing")).unwrap(), 0);
    }
}
