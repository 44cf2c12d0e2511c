//! The run directory's files: atomic writes, the event log, reading events back for replay.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tokio::sync::mpsc::UnboundedSender;

use crate::dln::events::Event;
use crate::dln::EventSink;
use crate::run::RunError;

/// The resolved configuration of a run.
pub const CONFIG_FILE: &str = "config.toml";
/// One event per line.
pub const EVENTS_FILE: &str = "events.jsonl";
/// The run's call cache (a SQLite store), unless its config names another.
pub const CACHE_DIR: &str = "cache";

/// Writes a file so that readers see the old or the new content, never a torn one
/// ([`crate::files::atomic_write`]), the error naming the file it concerns.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), RunError> {
    crate::files::atomic_write(path, bytes).map_err(|(p, e)| RunError::io(&p, e))
}

/// Writes `value` as pretty JSON with [`atomic_write`] (the checkpoint, the result).
pub(crate) fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), RunError> {
    let text = serde_json::to_vec_pretty(value).map_err(|e| RunError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    atomic_write(path, &text)
}

/// Reads a JSON file of the run directory, `None` when there is none yet; `what` names the file
/// in the error when it does not parse.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
) -> Result<Option<T>, RunError> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| RunError::io(path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| RunError::File {
            path: path.to_path_buf(),
            message: format!("unreadable {what}: {e}"),
        })
}

/// `runs/<task>-<timestamp>`: in `./runs/` when the current directory has one, else in the
/// data directory.
pub fn default_run_dir(task: &str) -> PathBuf {
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let safe: String = task
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // A `runs/` directory where dln is started is where researchers keep their runs.
    let root = if Path::new("runs").is_dir() {
        PathBuf::from("runs")
    } else {
        crate::llm::model::data_dir().join("runs")
    };
    root.join(format!("{safe}-{stamp}"))
}

/// The event log of a run: each event is appended to `events.jsonl` (flushed per line) and sent
/// to the live receiver, if one still listens.
///
/// An append that fails (a full disk, an I/O error) is cut back off the file, so the log holds
/// whole lines only, and the log stops writing: a later event appended after a lost one would
/// make a log that tells a different story. The driver sees [`EventLog::failed`] and stops the
/// run resumably.
pub struct EventLog {
    path: PathBuf,
    file: Mutex<File>,
    live: UnboundedSender<Event>,
    failed: Mutex<Option<String>>,
}

impl EventLog {
    pub fn open(run_dir: &Path, live: UnboundedSender<Event>) -> Result<EventLog, RunError> {
        let path = run_dir.join(EVENTS_FILE);
        // A run killed mid-line leaves a torn last line: cut it, so every line is a whole event.
        let cut = crate::files::repair_torn_tail(&path).map_err(|e| RunError::io(&path, e))?;
        if cut > 0 {
            tracing::warn!("{}: removed a torn last line ({cut} bytes)", path.display());
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| RunError::io(&path, e))?;
        Ok(EventLog {
            path,
            file: Mutex::new(file),
            live,
            failed: Mutex::new(None),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of the file written so far (every event emitted until now is in it).
    pub fn written_len(&self) -> u64 {
        self.file
            .lock()
            .ok()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len())
    }

    /// Why the log stopped writing, once an append failed.
    pub fn failed(&self) -> Option<String> {
        self.failed.lock().ok().and_then(|f| f.clone())
    }

    /// Appends one line, or leaves the file as it was (a torn part is cut back off).
    fn append(&self, f: &mut File, line: &str) -> std::io::Result<()> {
        let start = f.metadata()?.len();
        let written = crate::fault::io_point("event_append", || {
            // What a kill (or a full disk) mid-append leaves: a torn last line.
            let _ = f.write_all(&line.as_bytes()[..line.len() / 2]);
            let _ = f.flush();
        })
        .and_then(|()| f.write_all(line.as_bytes()))
        .and_then(|()| f.flush());
        if written.is_err() {
            let _ = f.set_len(start);
        }
        written
    }
}

impl EventSink for EventLog {
    fn emit(&self, event: Event) {
        if let Ok(mut line) = serde_json::to_string(&event) {
            line.push('\n');
            if let (Ok(mut f), Ok(mut failed)) = (self.file.lock(), self.failed.lock()) {
                if failed.is_none() {
                    if let Err(e) = self.append(&mut f, &line) {
                        let why = format!("cannot append to {}: {e}", self.path.display());
                        tracing::warn!("{why}; the run stops (resumable)");
                        *failed = Some(why);
                    }
                }
            }
        }
        let _ = self.live.send(event);
    }
}

/// Every event of a run, in order, for replay. A torn last line (a run killed mid-write) is
/// skipped; a malformed line elsewhere is an error naming it.
pub fn read_events(run_dir: &Path) -> Result<Vec<Event>, RunError> {
    let path = run_dir.join(EVENTS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| RunError::io(&path, e))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    for (n, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Event>(line) {
            Ok(e) => out.push(e),
            Err(_) if n + 1 == lines.len() && !text.ends_with('\n') => {}
            // A torn line with the next event appended to it (a log written before torn
            // appends were cut back): the whole event at its end is kept.
            Err(e) if whole_event_after_torn(line).is_some() => {
                tracing::warn!(
                    "{}:{}: skipping a torn event before a whole one: {e}",
                    path.display(),
                    n + 1
                );
                out.extend(whole_event_after_torn(line));
            }
            Err(e) if !line.trim_end().ends_with('}') => {
                // A torn line followed by a resumed run's events.
                tracing::warn!(
                    "{}:{}: skipping a torn event line: {e}",
                    path.display(),
                    n + 1
                );
            }
            Err(e) => {
                return Err(RunError::File {
                    path: path.clone(),
                    message: format!("line {}: {e}", n + 1),
                })
            }
        }
    }
    Ok(out)
}

/// The last whole event in `line` after a torn start: `{"event":…` begun again inside it.
fn whole_event_after_torn(line: &str) -> Option<Event> {
    line.match_indices("{\"event\"")
        .filter(|(i, _)| *i > 0)
        .find_map(|(i, _)| serde_json::from_str::<Event>(&line[i..]).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dln::events::RunState;

    fn line(e: &Event) -> String {
        serde_json::to_string(e).expect("event serializes")
    }

    #[test]
    fn replay_reads_the_whole_event_after_a_torn_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = line(&Event::StateChanged {
            state: RunState::Running,
        });
        let b = line(&Event::Warning {
            message: "disk full".into(),
        });
        let c = line(&Event::StateChanged {
            state: RunState::Paused,
        });
        // An append torn by a full disk, the next event appended to its half.
        let text = format!("{a}\n{}{b}\n{c}\n", &c[..c.len() / 2]);
        std::fs::write(dir.path().join(EVENTS_FILE), text).expect("write");
        let events = read_events(dir.path()).expect("the log replays");
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(matches!(&events[1], Event::Warning { message } if message == "disk full"));
    }

    #[cfg(unix)]
    #[test]
    fn atomic_writes_follow_the_umask_like_any_other_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"x").expect("write");
        let atomic = dir.path().join("atomic");
        atomic_write(&atomic, b"x").expect("atomic write");
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&atomic), mode(&plain));
    }
}
