//! `result.json`: what a run found (best prompts per layer, dev and test accuracy, token usage).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::dln::events::UsageEntry;
use crate::dln::state::DevPoint;
use crate::llm::Usage;
use crate::run::{atomic_write, RunError};

pub const RESULT_FILE: &str = "result.json";

/// The content of `result.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub task: String,
    pub model: String,
    pub layers: usize,
    pub mode: String,
    pub iterations: usize,
    pub best_prompts: Vec<String>,
    pub final_prompts: Vec<String>,
    pub dev_accuracy: Option<f64>,
    pub test_accuracy: Option<f64>,
    pub stopped_early: bool,
    pub dev_history: Vec<DevPoint>,
    pub train_accuracy: Vec<f64>,
    pub usage: Usage,
    pub usage_by_layer: Vec<UsageEntry>,
    pub elapsed_ms: u64,
}

pub fn write_result(run_dir: &Path, result: &RunResult) -> Result<(), RunError> {
    let path = run_dir.join(RESULT_FILE);
    let text = serde_json::to_vec_pretty(result).map_err(|e| RunError::File {
        path: path.clone(),
        message: e.to_string(),
    })?;
    atomic_write(&path, &text)
}

pub fn read_result(run_dir: &Path) -> Result<Option<RunResult>, RunError> {
    let path = run_dir.join(RESULT_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| RunError::io(&path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| RunError::File {
            path,
            message: format!("unreadable result: {e}"),
        })
}
