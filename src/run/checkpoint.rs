//! `checkpoint.json`: the trainer's state after the last completed iteration (or at a stop),
//! written atomically so a crash at any moment leaves a readable checkpoint.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::dln::state::TrainerState;
use crate::run::dir::{read_json, write_json};
use crate::run::RunError;

pub const CHECKPOINT_FILE: &str = "checkpoint.json";
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
    write_json(&path, checkpoint)?;
    Ok(path)
}

/// The run's checkpoint, `None` when it stopped before its first one.
pub fn read_checkpoint(run_dir: &Path) -> Result<Option<Checkpoint>, RunError> {
    let path = run_dir.join(CHECKPOINT_FILE);
    let Some(c) = read_json::<Checkpoint>(&path, "checkpoint")? else {
        return Ok(None);
    };
    if c.version != VERSION {
        return Err(RunError::File {
            path,
            message: format!(
                "checkpoint version {} (this dln reads version {VERSION})",
                c.version
            ),
        });
    }
    Ok(Some(c))
}
