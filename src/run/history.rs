//! `iterations/NNNN.json`: the trainer's state at every iteration boundary a run passed (after
//! its start evaluation, `0000`, and after each completed iteration), kept beside the one
//! `checkpoint.json` a resume reads, so that a run can be branched at any past iteration
//! (`run::branch`). Each snapshot also records how long the event log was when it was taken:
//! the branch's log is the parent's up to that point.
//!
//! A snapshot is written once, atomically, and never changed: a resumed run that passes a
//! boundary again (it was stopped inside the iteration) finds the file already there.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::run::checkpoint::Checkpoint;
use crate::run::dir::{read_json, write_json};
use crate::run::RunError;

/// The directory of a run's iteration snapshots.
pub const HISTORY_DIR: &str = "iterations";

/// The state after `iteration` completed iterations (0: after the start evaluation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub checkpoint: Checkpoint,
    /// Bytes of `events.jsonl` written when the snapshot was taken (every event up to and
    /// including the boundary's).
    pub events_len: u64,
}

fn path_of(run_dir: &Path, iteration: usize) -> PathBuf {
    run_dir
        .join(HISTORY_DIR)
        .join(format!("{iteration:04}.json"))
}

/// Keeps the state at an iteration boundary, unless that boundary's snapshot is already kept.
pub fn keep_snapshot(
    run_dir: &Path,
    checkpoint: &Checkpoint,
    events_len: u64,
) -> Result<(), RunError> {
    let path = path_of(run_dir, checkpoint.state.iteration);
    if path.exists() {
        return Ok(());
    }
    let dir = run_dir.join(HISTORY_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| RunError::io(&dir, e))?;
    write_json(
        &path,
        &Snapshot {
            checkpoint: checkpoint.clone(),
            events_len,
        },
    )
}

/// The snapshot after `iteration` iterations, `None` when the run kept none for it.
pub fn read_snapshot(run_dir: &Path, iteration: usize) -> Result<Option<Snapshot>, RunError> {
    read_json(&path_of(run_dir, iteration), "iteration snapshot")
}

/// The iterations a run kept snapshots of, in order.
pub fn snapshots(run_dir: &Path) -> Vec<usize> {
    let Ok(entries) = std::fs::read_dir(run_dir.join(HISTORY_DIR)) else {
        return Vec::new();
    };
    let mut found: Vec<usize> = entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".json")?.parse().ok()
        })
        .collect();
    found.sort_unstable();
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dln::state::TrainerState;

    fn at(iteration: usize, prompt: &str) -> Checkpoint {
        let mut state = TrainerState::empty();
        state.iteration = iteration;
        state.started = true;
        state.prompts = vec![prompt.into()];
        Checkpoint::new(state, false)
    }

    #[test]
    fn a_boundary_is_kept_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        keep_snapshot(dir.path(), &at(0, "start"), 120).unwrap();
        keep_snapshot(dir.path(), &at(2, "second"), 900).unwrap();
        // Passing a boundary again (a resumed iteration) leaves the first snapshot.
        keep_snapshot(dir.path(), &at(2, "again"), 1500).unwrap();
        assert_eq!(snapshots(dir.path()), vec![0, 2]);
        let s = read_snapshot(dir.path(), 2).unwrap().unwrap();
        assert_eq!(s.checkpoint.state.prompts, vec!["second".to_string()]);
        assert_eq!(s.events_len, 900);
        assert!(read_snapshot(dir.path(), 1).unwrap().is_none());
    }

    #[test]
    fn a_run_without_snapshots_has_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(snapshots(dir.path()).is_empty());
        assert!(read_snapshot(dir.path(), 0).unwrap().is_none());
    }
}
