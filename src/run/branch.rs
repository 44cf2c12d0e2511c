//! `dln branch` and the workbench's `b`: a new run that starts from a past iteration of another,
//! with a person's changes applied; the parent is only read.
//!
//! A branch is an ordinary run directory (resume, replay, export and predict work on it): its
//! `config.toml` is the parent's with the changes, its `checkpoint.json` the parent's state at
//! the branch point (`iterations/NNNN.json`, or the parent's checkpoint when that is the point),
//! its `events.jsonl` the parent's log up to that point followed by an [`Event::Branched`], so a
//! replay shows the whole history; `iterations/` keeps the parent's snapshots up to the point
//! (a branch can be branched earlier again); `branch.json` names the parent; `cache/` holds a
//! copy of the parent's call cache, so what the branch asks as its parent did is not computed
//! again. The directory is assembled under a temporary name and renamed into place: a crash
//! leaves no half branch.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::dln::events::Event;
use crate::run::checkpoint::{read_checkpoint, write_checkpoint, Checkpoint};
use crate::run::dir::{read_json, write_json, CONFIG_FILE, EVENTS_FILE};
use crate::run::history::{keep_snapshot, read_snapshot, snapshots};
use crate::run::{atomic_write, preflight, RunError};

/// A branch's record of where it came from.
pub const BRANCH_FILE: &str = "branch.json";

/// `branch.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchOf {
    /// The parent run's directory, absolute.
    pub parent: PathBuf,
    /// Iterations the parent had completed at the branch point.
    pub iteration: usize,
    /// The changed settings (`KEY=VALUE`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    pub created_at: String,
}

/// What to branch.
#[derive(Debug, Clone, Default)]
pub struct BranchRequest {
    pub parent: PathBuf,
    /// The branch point (iterations completed); the latest the parent kept when `None`.
    pub at: Option<usize>,
    /// `KEY=VALUE` settings for the branch: `train.*`, `layers.N.*` (a layer's `prompt` also
    /// replaces the prompt the parent had reached), the model. Not `data.*` (a branch trains on
    /// its parent's examples) nor the number of layers.
    pub changes: Vec<String>,
    /// The new run's directory; beside the parent when `None`.
    pub out: Option<PathBuf>,
}

/// The branch made.
#[derive(Debug, Clone, PartialEq)]
pub struct Branched {
    pub run_dir: PathBuf,
    pub of: BranchOf,
    pub cache: CacheCopy,
}

/// What became of the parent's call cache (`cache/` in its directory).
#[derive(Debug, Clone, PartialEq)]
pub enum CacheCopy {
    /// The parent has none there.
    None,
    /// Its answers, copied: every call the branch makes as its parent made it (an unchanged
    /// layer's forward pass, a prompt scored again) is answered without the model.
    Copied(u64),
    /// It could not be copied (why); the branch starts with an empty cache.
    Failed(String),
}

impl CacheCopy {
    /// What a person is told of it (nothing when the parent had no cache).
    pub fn note(&self) -> Option<String> {
        match self {
            CacheCopy::None => None,
            CacheCopy::Copied(n) => Some(format!(
                "copied the parent's call cache ({n} answers): calls the branch makes as its parent did are not computed again"
            )),
            CacheCopy::Failed(why) => Some(format!(
                "warning: the parent's call cache was not copied ({why}); the branch computes its calls afresh"
            )),
        }
    }
}

/// The iterations `run_dir` can be branched at: its snapshots, and its checkpoint's iteration
/// when the checkpoint sits at a boundary (runs written before snapshots were kept).
pub fn branch_points(run_dir: &Path) -> Vec<usize> {
    let mut points = snapshots(run_dir);
    if let Ok(Some(c)) = read_checkpoint(run_dir) {
        if at_boundary(&c) && !points.contains(&c.state.iteration) {
            points.push(c.state.iteration);
        }
    }
    points.sort_unstable();
    points
}

fn at_boundary(c: &Checkpoint) -> bool {
    c.state.started && c.state.hidden_edits.is_empty()
}

/// The parent's state at `at` and the length of its log then (`None`: the whole log).
fn state_at(parent: &Path, at: usize) -> Result<(Checkpoint, Option<u64>), RunError> {
    if let Some(s) = read_snapshot(parent, at)? {
        return Ok((s.checkpoint, Some(s.events_len)));
    }
    match read_checkpoint(parent)? {
        Some(c) if c.state.iteration == at && at_boundary(&c) => Ok((c, None)),
        _ => {
            let points = branch_points(parent);
            let message = match (points.first(), points.last()) {
                (Some(first), Some(last)) if first == last => format!(
                    "no state was kept after iteration {at}; it can be branched after iteration {first}"
                ),
                (Some(first), Some(last)) => format!(
                    "no state was kept after iteration {at}; it can be branched after iterations {}",
                    if points.len() == last - first + 1 {
                        format!("{first} to {last}")
                    } else {
                        points.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
                    }
                ),
                _ => "it has no iteration to branch from yet (it stopped before its first \
                      evaluation ended)"
                    .to_string(),
            };
            Err(RunError::Branch {
                path: parent.to_path_buf(),
                message,
            })
        }
    }
}

/// The layer whose prompt a change sets (`layers.N.prompt`).
fn prompt_change(change: &str) -> Option<usize> {
    let key = change.split('=').next()?.trim();
    let rest = key.strip_prefix("layers.")?;
    let (n, field) = rest.split_once('.')?;
    (field == "prompt").then(|| n.parse().ok()).flatten()
}

/// Makes the branch (see the module's doc).
pub fn branch(req: &BranchRequest) -> Result<Branched, RunError> {
    let parent = std::fs::canonicalize(&req.parent).unwrap_or_else(|_| req.parent.clone());
    let config_path = parent.join(CONFIG_FILE);
    if !config_path.exists() {
        return Err(RunError::NotARun { path: parent });
    }
    let refuse = |message: String| RunError::Branch {
        path: parent.clone(),
        message,
    };
    let at = match req.at {
        Some(at) => at,
        None => *branch_points(&parent)
            .last()
            .ok_or_else(|| refuse("it has no iteration to branch from yet".into()))?,
    };
    let (mut checkpoint, events_len) = state_at(&parent, at)?;
    let mut config = Config::load(&config_path)?;
    for change in &req.changes {
        if change.trim_start().starts_with("data.") {
            return Err(refuse(format!(
                "`{change}`: a branch trains on its parent's examples; start a new run for other data"
            )));
        }
        config.apply_override(change)?;
    }
    let k = checkpoint.state.prompts.len();
    if config.layers.len() != k {
        return Err(refuse(format!(
            "the parent has {k} layers and a branch keeps them ({} given)",
            config.layers.len()
        )));
    }
    preflight(&config, None, false)?;
    for l in req.changes.iter().filter_map(|c| prompt_change(c)) {
        if let Some(layer) = config.layers.get(l) {
            checkpoint.state.prompts[l] = layer.prompt.clone();
        }
    }
    checkpoint.finished = false;

    let of = BranchOf {
        parent: parent.clone(),
        iteration: at,
        changes: req.changes.clone(),
        created_at: chrono::Local::now().to_rfc3339(),
    };
    let run_dir = match &req.out {
        Some(out) => out.clone(),
        None => beside(&parent, at),
    };
    if run_dir.exists() && std::fs::read_dir(&run_dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(RunError::RunExists { path: run_dir });
    }
    let staging = staging_dir(&run_dir)?;
    let made = assemble(&staging, &parent, &config, &checkpoint, events_len, &of).and_then(|()| {
        let cache = copy_cache(&parent, &staging);
        // An empty directory given as --out is replaced by the assembled one.
        let _ = std::fs::remove_dir(&run_dir);
        std::fs::rename(&staging, &run_dir).map_err(|e| RunError::io(&run_dir, e))?;
        Ok(cache)
    });
    let cache = match made {
        Ok(cache) => cache,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    crate::files::sync_dir(run_dir.parent().unwrap_or(Path::new(".")));
    Ok(Branched { run_dir, of, cache })
}

/// The parent's call cache, copied into the branch being assembled in `dir` (a cache that
/// cannot be copied only costs the branch its answers).
fn copy_cache(parent: &Path, dir: &Path) -> CacheCopy {
    let to = dir.join(crate::run::CACHE_DIR);
    match crate::llm::cache::copy_store(&parent.join(crate::run::CACHE_DIR), &to) {
        Ok(None) => CacheCopy::None,
        Ok(Some(n)) => CacheCopy::Copied(n),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&to);
            CacheCopy::Failed(e.to_string())
        }
    }
}

/// `<parent>-b<at>-<timestamp>` beside the parent.
fn beside(parent: &Path, at: usize) -> PathBuf {
    let name = parent
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    parent.with_file_name(format!("{name}-b{at}-{stamp}"))
}

/// A new, empty temporary directory beside where the branch goes.
fn staging_dir(run_dir: &Path) -> Result<PathBuf, RunError> {
    let parent = match run_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| RunError::io(&parent, e))?;
    let name = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "branch".into());
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempdir_in(&parent)
        .map(tempfile::TempDir::keep)
        .map_err(|e| RunError::io(&parent, e))
}

fn assemble(
    dir: &Path,
    parent: &Path,
    config: &Config,
    checkpoint: &Checkpoint,
    events_len: Option<u64>,
    of: &BranchOf,
) -> Result<(), RunError> {
    atomic_write(&dir.join(CONFIG_FILE), config.to_toml()?.as_bytes())?;
    let events = parent.join(EVENTS_FILE);
    let mut log = match std::fs::read(&events) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(RunError::io(&events, e)),
    };
    if let Some(len) = events_len {
        log.truncate(len as usize);
    }
    // Only whole lines of the parent's log (a torn last line of a killed parent is dropped).
    let whole = log.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    log.truncate(whole);
    let branched = Event::Branched {
        parent: of.parent.display().to_string(),
        iteration: of.iteration,
        changes: of.changes.clone(),
    };
    let line = serde_json::to_string(&branched).map_err(|e| RunError::File {
        path: dir.join(EVENTS_FILE),
        message: e.to_string(),
    })?;
    log.extend_from_slice(line.as_bytes());
    log.push(b'\n');
    atomic_write(&dir.join(EVENTS_FILE), &log)?;
    for it in snapshots(parent)
        .into_iter()
        .filter(|&it| it <= of.iteration)
    {
        if let Some(s) = read_snapshot(parent, it)? {
            keep_snapshot(dir, &s.checkpoint, s.events_len)?;
        }
    }
    write_checkpoint(dir, checkpoint)?;
    write_json(&dir.join(BRANCH_FILE), of)
}

/// The parent a run was branched from, `None` for a run that is no branch (or an unreadable
/// `branch.json`, which only loses the family line).
pub fn branch_of(run_dir: &Path) -> Option<BranchOf> {
    read_json(&run_dir.join(BRANCH_FILE), "branch record")
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prompt_change_names_its_layer() {
        assert_eq!(prompt_change("layers.1.prompt=Think."), Some(1));
        assert_eq!(prompt_change(" layers.0.prompt = x"), Some(0));
        assert_eq!(prompt_change("layers.0.temperature=0.7"), None);
        assert_eq!(prompt_change("train.iterations=4"), None);
    }
}
