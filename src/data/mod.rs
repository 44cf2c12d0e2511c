//! Task data: examples `(x, y)` split into train / dev / test, and the task's output classes.
//!
//! Three file layouts are read (BIG-Bench Hard JSON, JSON Lines, JSON arrays of objects), with
//! configurable field names and an optional label map, so the paper's BBH and NLU files load as
//! they are. Splits are seeded and deterministic. Every problem in a file is a [`DataError`]
//! naming the file and line: a data file is user input, never a reason to panic.

mod classes;
mod config;
mod error;
mod read;
mod split;

pub use classes::OutputClasses;
pub use config::{ClassSpec, DataConfig, DataFormat, SplitSize, SplitSpec};
pub use error::DataError;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One labelled example: `x` and the target `y`, both text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Example {
    pub input: String,
    pub target: String,
}

/// A task's data, ready for training: the three splits and, for classification tasks, the
/// output classes (which turn forward passes into class argmaxes and scores into class
/// log-probabilities).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub name: String,
    pub train: Vec<Example>,
    pub dev: Vec<Example>,
    pub test: Vec<Example>,
    pub classes: Option<OutputClasses>,
}

impl Dataset {
    /// Every example of the three splits, in train, dev, test order.
    pub fn all(&self) -> impl Iterator<Item = &Example> {
        self.train
            .iter()
            .chain(self.dev.iter())
            .chain(self.test.iter())
    }
}

/// A record read from a file, with where it came from (for error messages after reading).
#[derive(Debug, Clone)]
pub(crate) struct Located {
    pub example: Example,
    pub path: PathBuf,
    pub line: usize,
}

/// The output classes a data config declares (`classes`, or a label map) without reading any
/// data: what an exported network carries so it can predict without its training data.
pub fn declared_classes(cfg: &DataConfig) -> Result<Option<OutputClasses>, DataError> {
    classes::resolve(cfg, &[])
}

/// Loads, label-maps, checks, splits and caps a task's data as `cfg` says. Relative paths are
/// taken from `base_dir` (the directory of the config file that named them).
pub fn load_dataset(cfg: &DataConfig, base_dir: &Path) -> Result<Dataset, DataError> {
    cfg.check()?;
    let files = cfg.files(base_dir)?;
    let read = |path: &Path| -> Result<Vec<Located>, DataError> {
        let mut records = read::read_file(path, cfg)?;
        if let Some(map) = &cfg.label_map {
            for r in &mut records {
                r.example.target = map_label(map, r)?;
            }
        }
        Ok(records)
    };

    let pool = read(&files.pool)?;
    let dev_file = files.dev.as_deref().map(read).transpose()?;
    let test_file = files.test.as_deref().map(read).transpose()?;

    let all: Vec<&Located> = pool
        .iter()
        .chain(dev_file.iter().flatten())
        .chain(test_file.iter().flatten())
        .collect();
    let classes = classes::resolve(cfg, &all)?;
    if let Some(classes) = &classes {
        for r in &all {
            if classes.index_of(&r.example.target).is_none() {
                return Err(DataError::UnknownLabel {
                    path: r.path.clone(),
                    line: r.line,
                    label: r.example.target.clone(),
                    known: classes.labels.clone(),
                });
            }
        }
    }

    let strip = |v: Vec<Located>| v.into_iter().map(|r| r.example).collect::<Vec<_>>();
    let splits = split::assign(
        strip(pool),
        dev_file.map(strip),
        test_file.map(strip),
        cfg,
        &files.pool,
    )?;

    let name = cfg.name.clone().unwrap_or_else(|| {
        files
            .pool
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "task".to_string())
    });
    Ok(Dataset {
        name,
        train: splits.train,
        dev: splits.dev,
        test: splits.test,
        classes,
    })
}

fn map_label(
    map: &std::collections::BTreeMap<String, String>,
    r: &Located,
) -> Result<String, DataError> {
    let raw = r.example.target.trim();
    match map.get(raw) {
        Some(mapped) => Ok(mapped.clone()),
        // A file that already holds the mapped names is fine too.
        None if map.values().any(|v| v == raw) => Ok(raw.to_string()),
        None => Err(DataError::UnknownLabel {
            path: r.path.clone(),
            line: r.line,
            label: raw.to_string(),
            known: map.keys().cloned().collect(),
        }),
    }
}
