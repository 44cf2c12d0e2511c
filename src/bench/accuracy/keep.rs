//! Keeping a benchmark beyond the machine it ran on (`dln bench keep OUT DEST`). What
//! `--report-only`, `dln replay`, `dln runs` and a later invocation of the same command read of
//! a finished cell is a few small files; its call cache, most of its directory, answers nothing
//! any more. [`keep`] copies those files of every finished cell, every stopped cell with a
//! checkpoint with its call cache too (so a resume answers from it what the cell computed after
//! its checkpoint, an evaluation's finished chunks say, and samples the same texts), and the
//! reports, into DEST (a directory under version control, say). Given DEST as `--out`, the same
//! command reads the finished cells back, resumes the stopped ones and runs the rest, on this
//! machine or another: a cell longer than a sitting spans several.

use std::path::{Path, PathBuf};

use super::plan::RUNS_DIR;
use crate::run::runs::{run_info, RunStatus};
use crate::run::{CACHE_DIR, CHECKPOINT_FILE, CONFIG_FILE, LOCK_FILE, PREVIOUS_CHECKPOINT_FILE};

/// What [`keep`] copied and what it left.
#[derive(Debug, Default)]
pub struct Kept {
    /// Finished cells copied, relative to the benchmark's directory (`runs/mpqa/dln-1/seed-1`).
    pub cells: Vec<PathBuf>,
    /// Stopped cells copied with their checkpoints and call caches: they resume from DEST.
    pub stopped: Vec<PathBuf>,
    /// Cells not copied, same form: running (their files are changing) or without a
    /// checkpoint to resume from.
    pub left: Vec<PathBuf>,
    /// Report files copied (`results.md`, `.csv`, `.json`, the plots).
    pub reports: Vec<PathBuf>,
    /// Bytes written.
    pub bytes: u64,
    /// Bytes of finished cells' call caches not copied.
    pub cache_bytes: u64,
}

/// Why a benchmark cannot be kept; every message names the path.
#[derive(Debug, thiserror::Error)]
pub enum KeepError {
    #[error("{0} holds no benchmark (no {RUNS_DIR}/ in it): give the --out directory of `dln bench accuracy`")]
    NotABenchmark(PathBuf),
    #[error("{dest} is {out} or inside it: keep the benchmark somewhere else")]
    Inside { out: PathBuf, dest: PathBuf },
    #[error("cannot copy the call cache {path}: {message}")]
    Cache { path: PathBuf, message: String },
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> KeepError {
    let path = path.to_path_buf();
    move |source| KeepError::Io { what, path, source }
}

/// Copies the finished cells of the benchmark in `out` (without their call caches), its stopped
/// cells (with theirs) and its reports into `dest`, creating it; a cell already in `dest` is
/// written over, files there that `out` lacks are left alone. Every file is written atomically.
pub fn keep(out: &Path, dest: &Path) -> Result<Kept, KeepError> {
    let runs = out.join(RUNS_DIR);
    if !runs.is_dir() {
        return Err(KeepError::NotABenchmark(out.to_path_buf()));
    }
    check_dest(out, dest)?;
    let mut cells = Vec::new();
    find_cells(&runs, &mut cells)?;
    cells.sort();
    let mut kept = keep_cells(out, dest, &cells, false)?;
    for entry in std::fs::read_dir(out).map_err(io("read", out))? {
        let path = entry.map_err(io("read", out))?.path();
        if path.is_file() && !hidden(&path) {
            let name = PathBuf::from(path.file_name().unwrap_or_default());
            kept.bytes += copy_file(&path, &dest.join(&name))?;
            kept.reports.push(name);
        }
    }
    kept.reports.sort();
    Ok(kept)
}

/// [`keep`] for one cell of `out` (its directory), and no reports: what `dln bench accuracy
/// --keep` does as each cell ends, and with `running` as the cell it runs writes a checkpoint
/// (the copy's checkpoint is then no newer than its events, as after a kill, and it resumes).
pub fn keep_cell(out: &Path, cell: &Path, dest: &Path, running: bool) -> Result<Kept, KeepError> {
    check_dest(out, dest)?;
    keep_cells(out, dest, &[cell.to_path_buf()], running)
}

/// `dest` must not be inside `out` (a copy into itself never ends); it is created.
fn check_dest(out: &Path, dest: &Path) -> Result<(), KeepError> {
    if real(dest)?.starts_with(real(out)?) {
        return Err(KeepError::Inside {
            out: out.to_path_buf(),
            dest: dest.to_path_buf(),
        });
    }
    std::fs::create_dir_all(dest).map_err(io("create", dest))
}

/// `running`: the cells are this process's own, held by its lock.
fn keep_cells(
    out: &Path,
    dest: &Path,
    cells: &[PathBuf],
    running: bool,
) -> Result<Kept, KeepError> {
    let mut kept = Kept::default();
    for cell in cells {
        let rel = cell.strip_prefix(out).unwrap_or(cell).to_path_buf();
        match run_info(cell).map(|r| r.status) {
            Some(RunStatus::Running) if !running => kept.left.push(rel),
            Some(RunStatus::Finished) => {
                copy_cell(cell, &dest.join(&rel), false, &mut kept)?;
                kept.cells.push(rel);
            }
            _ if cell.join(CHECKPOINT_FILE).is_file() => {
                copy_cell(cell, &dest.join(&rel), true, &mut kept)?;
                kept.stopped.push(rel);
            }
            _ => kept.left.push(rel),
        }
    }
    Ok(kept)
}

/// `path` with links resolved, for a path that may not exist yet: its nearest existing ancestor
/// resolved, the rest appended.
fn real(path: &Path) -> Result<PathBuf, KeepError> {
    let path = std::path::absolute(path).map_err(io("resolve", path))?;
    let mut rest = Vec::new();
    let mut at = path.as_path();
    while !at.exists() {
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                at = parent;
            }
            _ => break,
        }
    }
    let mut real = std::fs::canonicalize(at).map_err(io("resolve", at))?;
    real.extend(rest.iter().rev());
    Ok(real)
}

/// Run directories (those with a config) under `dir`; a run's own subdirectories (its
/// output-alone run) go with it.
fn find_cells(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), KeepError> {
    if dir.join(CONFIG_FILE).is_file() {
        found.push(dir.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(io("read", dir))? {
        let path = entry.map_err(io("read", dir))?.path();
        if path.is_dir() {
            find_cells(&path, found)?;
        }
    }
    Ok(())
}

/// A temporary file of an atomic write, or another dotfile.
fn hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// Copies a cell's files, its subdirectories' too, except the lock and the checkpoint's
/// previous generation; its call cache `with_cache` (a finished cell's copy loses any it had).
/// The checkpoint goes last, so a copy of a running cell holds events and cached answers at
/// least as new as its checkpoint.
fn copy_cell(from: &Path, to: &Path, with_cache: bool, kept: &mut Kept) -> Result<(), KeepError> {
    std::fs::create_dir_all(to).map_err(io("create", to))?;
    let mut entries = std::fs::read_dir(from)
        .map_err(io("read", from))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io("read", from))?;
    entries.sort_by_key(|p| p.file_name().is_some_and(|n| n == CHECKPOINT_FILE));
    for path in entries {
        let name = path.file_name().unwrap_or_default();
        if hidden(&path) || name == LOCK_FILE || name == PREVIOUS_CHECKPOINT_FILE {
            continue;
        }
        if path.is_dir() {
            if name != CACHE_DIR {
                copy_cell(&path, &to.join(name), with_cache, kept)?;
            } else if with_cache {
                kept.bytes += copy_cache(&path, &to.join(name))?;
            } else {
                kept.cache_bytes += dir_bytes(&path);
                let stale = to.join(name);
                if stale.exists() {
                    std::fs::remove_dir_all(&stale).map_err(io("remove", &stale))?;
                }
            }
        } else {
            kept.bytes += copy_file(&path, &to.join(name))?;
        }
    }
    Ok(())
}

/// A call cache copied as one transaction's view (it may be written as it is read), put in
/// place of any earlier copy by a rename; the copy's size.
fn copy_cache(from: &Path, to: &Path) -> Result<u64, KeepError> {
    use crate::llm::cache::{copy_store, DB_FILE};
    std::fs::create_dir_all(to).map_err(io("create", to))?;
    let tmp = tempfile::Builder::new()
        .prefix(".cache.")
        .tempdir_in(to)
        .map_err(io("create a directory in", to))?;
    let fail = |e: crate::llm::cache::StoreError| KeepError::Cache {
        path: from.to_path_buf(),
        message: e.to_string(),
    };
    if copy_store(from, tmp.path()).map_err(fail)?.is_none() {
        return Ok(0);
    }
    let db = to.join(DB_FILE);
    // An earlier copy's side files would be read as this one's.
    for side in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(to.join(format!("{DB_FILE}{side}")));
    }
    let copy = tmp.path().join(DB_FILE);
    let bytes = std::fs::metadata(&copy).map_err(io("read", &copy))?.len();
    std::fs::rename(&copy, &db).map_err(io("write", &db))?;
    crate::files::sync_dir(to);
    Ok(bytes)
}

fn copy_file(from: &Path, to: &Path) -> Result<u64, KeepError> {
    let bytes = std::fs::read(from).map_err(io("read", from))?;
    crate::files::atomic_write(to, &bytes).map_err(|(path, source)| KeepError::Io {
        what: "write",
        path,
        source,
    })?;
    Ok(bytes.len() as u64)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
