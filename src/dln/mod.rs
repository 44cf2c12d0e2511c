//! The DLN training loop: a network of language layers ([`network`]), the LLM operations of a
//! layer ([`ops`]), the stage machine that trains it ([`trainer`]), its checkpointable state
//! ([`state`]), and the pure arithmetic of the method ([`math`]); [`gepa`] is GEPA's candidate
//! pool, for the peer optimizer the trainer also runs.
pub mod command;
pub mod demos;
pub mod error;
pub mod events;
pub mod feedback;
pub mod gepa;
pub mod lineage;
pub mod math;
pub mod network;
pub mod ops;
pub mod split;
pub mod stage;
pub mod state;
pub mod trainer;

pub use error::DlnError;
pub use network::{Layer, LayerBackends, Network};
pub use ops::Operation;
pub use split::Split;
pub use trainer::{EventSink, Forward, Outcome, StepOutcome, Trainer, UsageBook};
