//! The user's runs: found in the data directory's `runs/`, in `./runs/`, and in any directory
//! given; each summarized from its files (never from a live process), newest first.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Config;
use crate::run::checkpoint::read_checkpoint;
use crate::run::result::read_result;
use crate::run::{RunLock, CONFIG_FILE, EVENTS_FILE};

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Finished,
    /// Stopped or killed before its end: `dln resume` continues it.
    Stopped,
    /// A process drives it now (its lock is held).
    Running,
}

impl RunStatus {
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Finished => "finished",
            RunStatus::Stopped => "stopped",
            RunStatus::Running => "running",
        }
    }
}

/// One row of `dln runs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    pub run_dir: PathBuf,
    pub task: String,
    /// `dln-1`, `dln-2`, …, `0-shot`, `k-shot`.
    pub method: String,
    pub model: String,
    /// The other models the network used, by role (from `result.json`; empty when `model`
    /// did everything or the run has no result yet).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub other_models: std::collections::BTreeMap<String, String>,
    /// Iterations done / planned.
    pub iterations_done: usize,
    pub iterations: usize,
    pub best_dev: Option<f64>,
    pub test: Option<f64>,
    pub status: RunStatus,
    /// Why a stopped run stopped (`budget`, `backend_unavailable`, `requested`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<crate::dln::events::StopReason>,
    /// Last change (RFC 3339).
    pub when: String,
    pub best_prompts: Vec<String>,
    pub total_tokens: u64,
    pub elapsed_ms: Option<u64>,
    /// The run it was branched from (`branch.json`), for a branch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch_of: Option<crate::run::BranchOf>,
    #[serde(skip)]
    modified: std::time::SystemTime,
}

impl RunInfo {
    /// Where a branch came from, short: the parent's directory name and the iteration
    /// (`try-7@3`); empty for a run that is no branch.
    pub fn branch_label(&self) -> String {
        self.branch_of.as_ref().map_or_else(String::new, |b| {
            let name = b.parent.file_name().map_or_else(
                || b.parent.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            format!("{name}@{}", b.iteration)
        })
    }

    /// `other` was branched from this run.
    pub fn is_parent_of(&self, other: &RunInfo) -> bool {
        other
            .branch_of
            .as_ref()
            .is_some_and(|b| same_dir(&b.parent, &self.run_dir))
    }
    /// The status as a person reads it: `finished`, `running`, `stopped`, `stopped (budget)`.
    pub fn status_label(&self) -> &'static str {
        match (self.status, self.stop_reason) {
            (RunStatus::Stopped, Some(r)) => r.name(),
            (s, _) => s.name(),
        }
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    canon(a) == canon(b)
}

/// Where runs are looked for by default: `./runs` when it exists, then the data directory's.
pub fn default_roots() -> Vec<PathBuf> {
    let mut v = Vec::new();
    let local = PathBuf::from("runs");
    if local.is_dir() {
        v.push(local);
    }
    v.push(crate::llm::model::data_dir().join("runs"));
    v
}

/// The runs under `roots` (each a run directory or a directory of them), newest first.
pub fn find_runs(roots: &[PathBuf]) -> Vec<RunInfo> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for root in roots {
        if root.join(CONFIG_FILE).is_file() {
            dirs.push(root.clone());
        } else if let Ok(entries) = std::fs::read_dir(root) {
            dirs.extend(
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.join(CONFIG_FILE).is_file()),
            );
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<RunInfo> = dirs
        .into_iter()
        .filter(|d| seen.insert(std::fs::canonicalize(d).unwrap_or_else(|_| d.clone())))
        .filter_map(|d| run_info(&d))
        .collect();
    out.sort_by(|a, b| b.modified.cmp(&a.modified).then(a.run_dir.cmp(&b.run_dir)));
    out
}

/// A run's summary from its files; `None` when it is not a readable run directory.
pub fn run_info(dir: &Path) -> Option<RunInfo> {
    let config = Config::load(&dir.join(CONFIG_FILE)).ok()?;
    let checkpoint = read_checkpoint(dir).ok().flatten();
    let result = read_result(dir).ok().flatten();
    let k = config.layers.len();
    let method = match config.train.mode {
        crate::config::Mode::Dln => format!("dln-{k}"),
        crate::config::Mode::ZeroShot => "0-shot".into(),
        crate::config::Mode::KShot => format!("{}-shot", config.train.k_shot),
    };
    let modified = [EVENTS_FILE, "checkpoint.json", "result.json", CONFIG_FILE]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok()?.modified().ok())
        .max()
        .unwrap_or(std::time::UNIX_EPOCH);
    let status = if RunLock::is_held(dir) {
        RunStatus::Running
    } else if result.as_ref().is_some_and(|r| !r.stopped_early)
        && checkpoint.as_ref().is_none_or(|c| c.finished)
    {
        RunStatus::Finished
    } else {
        RunStatus::Stopped
    };
    let state = checkpoint.as_ref().map(|c| &c.state);
    let usage_tokens =
        |u: &crate::llm::Usage| u.tokens_computed + u.tokens_reused + u.tokens_generated;
    Some(RunInfo {
        run_dir: dir.to_path_buf(),
        task: config.task.name.clone(),
        method,
        model: result
            .as_ref()
            .map(|r| r.model.clone())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| {
                let m = config.model.name.clone();
                if m.is_empty() {
                    crate::llm::model::DEFAULT_MODEL.into()
                } else {
                    m
                }
            }),
        other_models: result
            .as_ref()
            .map(|r| r.other_models.clone())
            .unwrap_or_default(),
        iterations_done: state.map_or(0, |s| s.iteration),
        iterations: config.train.iterations,
        best_dev: result
            .as_ref()
            .and_then(|r| r.dev_accuracy)
            .or_else(|| state.and_then(|s| s.best_dev.accuracy)),
        test: result.as_ref().and_then(|r| r.test_accuracy),
        status,
        stop_reason: result
            .as_ref()
            .and_then(|r| r.stop_reason)
            .filter(|_| status == RunStatus::Stopped),
        when: chrono::DateTime::<chrono::Local>::from(modified).to_rfc3339(),
        best_prompts: result
            .as_ref()
            .map(|r| r.best_prompts.clone())
            .or_else(|| {
                state.map(|s| {
                    if s.best_dev.accuracy.is_some() {
                        s.best_dev.prompts.clone()
                    } else {
                        s.prompts.clone()
                    }
                })
            })
            .unwrap_or_default(),
        total_tokens: result.as_ref().map_or_else(
            || state.map_or(0, |s| s.usage.iter().map(|e| usage_tokens(&e.usage)).sum()),
            |r| usage_tokens(&r.usage),
        ),
        elapsed_ms: result.as_ref().map(|r| r.elapsed_ms),
        branch_of: crate::run::branch_of(dir),
        modified,
    })
}
