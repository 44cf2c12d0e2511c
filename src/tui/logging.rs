//! Logs go to a file in the data directory, never to the screen the workbench owns.

use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Route `tracing` to `<data_dir>/logs/dln-tui.log` (filter from `DLN_LOG`, default `info`).
/// Keep the guard alive for the whole session: dropping it flushes the log. Returns `None`
/// (and logs nowhere) when the directory cannot be created or a subscriber is already set.
pub fn to_file(data_dir: &Path) -> Option<(WorkerGuard, PathBuf)> {
    let dir = data_dir.join("logs");
    std::fs::create_dir_all(&dir).ok()?;
    let appender = tracing_appender::rolling::never(&dir, "dln-tui.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = EnvFilter::try_from_env("DLN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init()
        .ok()?;
    Some((guard, dir.join("dln-tui.log")))
}
