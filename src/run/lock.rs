//! Ownership of a run directory: one process at a time drives a run. The lock is an advisory
//! lock of the operating system on `run.lock` in the run directory (`File::try_lock`, flock on
//! Unix), held for the process's lifetime with the session; the kernel releases it when the
//! process dies however it dies, so a lock left by a killed process never blocks a resume. The
//! file holds the owner's pid and command line so a refusal can name it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::run::RunError;

/// The lock file inside a run directory.
pub const LOCK_FILE: &str = "run.lock";

/// An owned run directory; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

impl RunLock {
    /// Takes the run directory `dir` (which must exist) for this process, or says who has it.
    pub fn acquire(dir: &Path) -> Result<RunLock, RunError> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| RunError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(RunError::Locked {
                    path: dir.to_path_buf(),
                    holder: describe_holder(&holder),
                });
            }
            Err(TryLockError::Error(e)) => return Err(RunError::io(&path, e)),
        }
        let owner = format!(
            "{}\n{}\n",
            std::process::id(),
            std::env::args().collect::<Vec<_>>().join(" ")
        );
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(owner.as_bytes()))
            .map_err(|e| RunError::io(&path, e))?;
        remove_stale_temporaries(dir);
        Ok(RunLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a process holds the run directory `dir` now (a killed process's lock is free).
    pub fn is_held(dir: &Path) -> bool {
        let Ok(f) = File::open(dir.join(LOCK_FILE)) else {
            return false;
        };
        matches!(f.try_lock(), Err(TryLockError::WouldBlock))
    }
}

/// Temporary files of [`atomic_write`](crate::run::atomic_write) left by a process killed
/// mid-write: with the lock held, no other writer can own them.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") && e.path().is_file() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn describe_holder(text: &str) -> String {
    let mut lines = text.lines();
    match (lines.next(), lines.next()) {
        (Some(pid), Some(cmd)) if !pid.trim().is_empty() => {
            format!("process {} ({})", pid.trim(), cmd.trim())
        }
        (Some(pid), None) if !pid.trim().is_empty() => format!("process {}", pid.trim()),
        _ => "another process".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_owner_is_refused_with_the_holder_named_and_the_lock_is_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).expect("first owner");
        let err = RunLock::acquire(dir.path()).expect_err("second owner");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("process {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains("is in use"), "{msg}");
        drop(first);
        RunLock::acquire(dir.path()).expect("free again after the owner let go");
    }
}
