//! `checkpoint.json`: the trainer's state after the last completed iteration (or at a stop),
//! written atomically so a crash at any moment leaves a readable checkpoint.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::dln::state::TrainerState;
use crate::run::{atomic_write, RunError};

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
    let text = serde_json::to_vec_pretty(checkpoint).map_err(|e| RunError::File {
        path: path.clone(),
        message: e.to_string(),
    })?;
    atomic_write(&path, &text)?;
    Ok(path)
}

/// The run's checkpoint, `None` when it stopped before its first one.
pub fn read_checkpoint(run_dir: &Path) -> Result<Option<Checkpoint>, RunError> {
    let path = run_dir.join(CHECKPOINT_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| RunError::io(&path, e))?;
    let c: Checkpoint = serde_json::from_str(&text).map_err(|e| RunError::File {
        path: path.clone(),
        message: format!("unreadable checkpoint: {e}"),
    })?;
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
