//! `result.json`: what a run found (best prompts per layer, dev and test accuracy, token usage).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dln::demos::Demo;
use crate::dln::events::{StopReason, UsageEntry};
use crate::dln::math::no_demos;
use crate::dln::state::DevPoint;
use crate::llm::Usage;
use crate::run::dir::{read_json, write_json};
use crate::run::RunError;

pub const RESULT_FILE: &str = "result.json";

/// The end of a run, as the CLI prints it (one JSON line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_dir: PathBuf,
    pub task: String,
    pub iterations: usize,
    pub best_prompts: Vec<String>,
    pub dev_accuracy: Option<f64>,
    pub test_accuracy: Option<f64>,
    pub stopped_early: bool,
    /// Why it stopped early (`budget`, `backend_unavailable`, `requested`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<StopReason>,
    pub elapsed_ms: u64,
    pub usage: Usage,
}

/// The content of `result.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub task: String,
    pub model: String,
    /// Every other model the network uses, by role (`backward`, `layer 1 forward`, …; see
    /// `Network::other_models`); absent when `model` did everything.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub other_models: std::collections::BTreeMap<String, String>,
    pub layers: usize,
    pub mode: String,
    pub iterations: usize,
    pub best_prompts: Vec<String>,
    pub final_prompts: Vec<String>,
    /// The demonstrations of the best and the final prompts, per layer (absent when no layer
    /// shows any).
    #[serde(default, skip_serializing_if = "no_demos")]
    pub best_demos: Vec<Vec<Demo>>,
    #[serde(default, skip_serializing_if = "no_demos")]
    pub final_demos: Vec<Vec<Demo>>,
    pub dev_accuracy: Option<f64>,
    pub test_accuracy: Option<f64>,
    /// How many times each answer was given on the test split (absent in older results).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub test_answers: std::collections::BTreeMap<String, usize>,
    pub stopped_early: bool,
    /// Why it stopped early (absent for a finished run and in older results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<StopReason>,
    pub dev_history: Vec<DevPoint>,
    pub train_accuracy: Vec<f64>,
    pub usage: Usage,
    pub usage_by_layer: Vec<UsageEntry>,
    pub elapsed_ms: u64,
}

pub fn write_result(run_dir: &Path, result: &RunResult) -> Result<(), RunError> {
    write_json(&run_dir.join(RESULT_FILE), result)
}

pub fn read_result(run_dir: &Path) -> Result<Option<RunResult>, RunError> {
    read_json(&run_dir.join(RESULT_FILE), "result")
}

impl RunResult {
    /// The run's end as the CLI prints it.
    pub fn summary(&self, run_dir: &Path) -> RunSummary {
        RunSummary {
            run_dir: run_dir.to_path_buf(),
            task: self.task.clone(),
            iterations: self.iterations,
            best_prompts: self.best_prompts.clone(),
            dev_accuracy: self.dev_accuracy,
            test_accuracy: self.test_accuracy,
            stopped_early: self.stopped_early,
            stop_reason: self.stop_reason,
            elapsed_ms: self.elapsed_ms,
            usage: self.usage,
        }
    }
}
