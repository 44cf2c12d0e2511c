//! What can stop the training loop, each saying where.

use crate::llm::LlmError;
use crate::template::TemplateError;

/// An error of the training loop. LLM errors say which layer and operation asked.
#[derive(Debug, thiserror::Error)]
pub enum DlnError {
    #[error("layer {}, {operation}: {source}", layer + 1)]
    Llm {
        layer: usize,
        operation: &'static str,
        #[source]
        source: LlmError,
    },
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Data(String),
    #[error("{0}")]
    Command(String),
    /// The stage gave up between two of its calls because a stop was asked
    /// ([`Trainer::stop_signal`](crate::dln::Trainer::stop_signal)); the driver stops the run
    /// as at a boundary, and a resume reruns the iteration (the finished calls from the cache).
    #[error("the stage was stopped before it finished")]
    Interrupted,
}

impl DlnError {
    /// A backend failure that may pass by itself (its server down past every retry).
    pub fn is_transient(&self) -> bool {
        matches!(self, DlnError::Llm { source, .. } if source.is_transient())
    }
}
