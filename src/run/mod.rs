//! A run: a [`Session`] drives a [`Trainer`](crate::dln::Trainer) on a task and owns its run
//! directory — the resolved `config.toml`, `events.jsonl` (one event per line, flushed as it
//! happens), `checkpoint.json` (written atomically after every iteration and on stop),
//! `result.json`, the call cache (`cache/`), the state at each iteration boundary (`iterations/`,
//! what a branch starts from) and, for a branch, `branch.json` (its parent).
//!
//! The TUI and the headless CLI are both clients of a session: they read its events and send it
//! commands.

mod backends;
pub mod branch;
pub mod budget;
mod checkpoint;
mod control;
mod dir;
mod drive;
mod error;
mod eval;
pub mod export;
pub mod history;
mod lock;
mod options;
pub mod predict;
mod result;
pub mod runs;
mod session;

pub use backends::{
    build_backends, build_backends_reporting, calls_http_backend, check_models,
    embedded_forward_models, BackendReport, BuiltBackends,
};
pub use branch::{branch, branch_of, branch_points, BranchOf, BranchRequest, Branched, CacheCopy};
pub use checkpoint::{
    read_checkpoint, read_checkpoint_reporting, write_checkpoint, Checkpoint, CHECKPOINT_FILE,
    PREVIOUS_CHECKPOINT_FILE,
};
pub use control::{Control, ControlState, Effect};
pub use dir::{
    atomic_write, default_run_dir, read_events, EventLog, CACHE_DIR, CONFIG_FILE, EVENTS_FILE,
};
pub use error::RunError;
pub use eval::{evaluate_run, EvalReport};
pub use lock::{RunLock, LOCK_FILE};
pub use options::SessionOptions;
pub use result::{read_result, RunResult, RunSummary, RESULT_FILE};
pub use session::{load_data, preflight, Session};
