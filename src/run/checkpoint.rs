//! `checkpoint.json`: the trainer's state after the last completed iteration (or at a stop),
//! written atomically so a crash at any moment leaves a readable checkpoint. The one it replaces
//! is kept as `checkpoint.prev.json`, so a newest checkpoint damaged after the fact (a disk
//! error, a hand edit) falls back to the one before it, with a warning.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::dln::state::TrainerState;
use crate::run::dir::{read_json, write_json};
use crate::run::RunError;

pub const CHECKPOINT_FILE: &str = "checkpoint.json";
/// The checkpoint before the newest.
pub const PREVIOUS_CHECKPOINT_FILE: &str = "checkpoint.prev.json";
const VERSION: u32 = 1;

/// The checkpoint file's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    /// The run ended (final test done); resuming it only reports its result.
    pub finished: bool,
    pub written_at: String,
    pub state: TrainerState,
}

impl Checkpoint {
    pub fn new(state: TrainerState, finished: bool) -> Checkpoint {
        Checkpoint {
            version: VERSION,
            finished,
            written_at: chrono::Local::now().to_rfc3339(),
            state,
        }
    }
}

pub fn write_checkpoint(
    run_dir: &Path,
    checkpoint: &Checkpoint,
) -> Result<std::path::PathBuf, RunError> {
    let path = run_dir.join(CHECKPOINT_FILE);
    keep_previous(run_dir, &path)?;
    write_json(&path, checkpoint)?;
    Ok(path)
}

/// Makes the current checkpoint (if any) the previous one: a hard link to its content renamed
/// over `checkpoint.prev.json`, so both steps are atomic and nothing is copied.
fn keep_previous(run_dir: &Path, path: &Path) -> Result<(), RunError> {
    if !path.exists() {
        return Ok(());
    }
    let prev = run_dir.join(PREVIOUS_CHECKPOINT_FILE);
    let link = run_dir.join(".checkpoint.prev.json.link.tmp");
    let _ = std::fs::remove_file(&link);
    std::fs::hard_link(path, &link)
        .or_else(|_| std::fs::copy(path, &link).map(|_| ()))
        .and_then(|()| std::fs::rename(&link, &prev))
        .map_err(|e| RunError::io(&prev, e))?;
    // A rename between two links of one file (the previous checkpoint already is the current
    // one: a write of it was interrupted) does nothing and leaves the link behind.
    let _ = std::fs::remove_file(&link);
    Ok(())
}

/// The run's checkpoint, `None` when it stopped before its first one. A newest checkpoint that
/// cannot be read falls back to the previous one (see [`read_checkpoint_reporting`]).
pub fn read_checkpoint(run_dir: &Path) -> Result<Option<Checkpoint>, RunError> {
    read_checkpoint_reporting(run_dir).map(|(c, _)| c)
}

/// [`read_checkpoint`], with the warning to give when the previous checkpoint was used.
pub fn read_checkpoint_reporting(
    run_dir: &Path,
) -> Result<(Option<Checkpoint>, Option<String>), RunError> {
    let newest = read_one(&run_dir.join(CHECKPOINT_FILE));
    let Err(damaged) = newest else {
        return newest.map(|c| (c, None));
    };
    match read_one(&run_dir.join(PREVIOUS_CHECKPOINT_FILE)) {
        Ok(Some(prev)) => {
            let warning = format!(
                "{damaged}; using {PREVIOUS_CHECKPOINT_FILE} (iteration {}) instead",
                prev.state.iteration
            );
            tracing::warn!("{warning}");
            Ok((Some(prev), Some(warning)))
        }
        _ => Err(damaged),
    }
}

fn read_one(path: &Path) -> Result<Option<Checkpoint>, RunError> {
    let Some(c) = read_json::<Checkpoint>(path, "checkpoint")? else {
        return Ok(None);
    };
    if c.version != VERSION {
        return Err(RunError::File {
            path: path.to_path_buf(),
            message: format!(
                "checkpoint version {} (this dln reads version {VERSION})",
                c.version
            ),
        });
    }
    Ok(Some(c))
}
