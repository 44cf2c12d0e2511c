//! What can go wrong with a run, each saying where.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::data::DataError;
use crate::dln::DlnError;
use crate::llm::model::ModelError;
use crate::llm::LlmError;

/// An error of a run. The run directory is kept whatever happens; where it exists, the error is
/// also the last event of its `events.jsonl`.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Dln(#[from] DlnError),
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("{} is not a run directory (no {})", path.display(), crate::run::CONFIG_FILE)]
    NotARun { path: PathBuf },
    #[error("{} already holds a run; continue it with `dln resume {}` or choose another --out", path.display(), path.display())]
    RunExists { path: PathBuf },
    #[error("{} is in use by {holder}; wait for it to end or stop it (Ctrl-C, or `kill` that process) and try again", path.display())]
    Locked { path: PathBuf, holder: String },
    #[error("cannot branch {}: {message}", path.display())]
    Branch { path: PathBuf, message: String },
    #[error("the run's task ended unexpectedly: {0}")]
    Task(String),
}

impl RunError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> RunError {
        RunError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
