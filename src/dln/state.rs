//! The trainer's persistent state: everything a checkpoint holds so that a resumed run continues
//! exactly as the uninterrupted one would (prompts, pins, edited templates, memory, best-dev
//! state, the iteration). Random draws need no saved position: each comes from a stream derived
//! from the seed, the iteration and its purpose.

use serde::{Deserialize, Serialize};

use crate::data::Example;
use crate::dln::demos::Demo;
use crate::dln::events::{Command, TemplateRole, UsageEntry};
use crate::dln::feedback::{no_notes, Note};
use crate::dln::math::{no_demos, BestDev, PromptMemory};

/// The position of the run's single ChaCha RNG, as checkpoints written before every purpose had
/// a stream of its own stored it (seed, stream, word position). Read and ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngState {
    pub seed: String,
    pub stream: u64,
    /// `u128` as decimal text (JSON numbers lose precision past 2^53).
    pub word_pos: String,
}

/// One dev evaluation, for the run's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DevPoint {
    pub iteration: usize,
    pub accuracy: f64,
    pub prompts: Vec<String>,
    /// The prompts' demonstrations (absent when no layer shows any).
    #[serde(default, skip_serializing_if = "no_demos")]
    pub demos: Vec<Vec<Demo>>,
}

/// A person's edit of a posterior (`AddHidden`, `ExcludeSample` or `IncludeSample`) during the iteration in
/// progress, with the stage boundary it was applied at, so that a resumed run replays it at the
/// same point of the rerun iteration and computes the same weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HiddenEdit {
    /// Stages of the iteration completed when the edit was applied.
    pub after_stages: usize,
    pub command: Command,
}

/// What a checkpoint stores of the trainer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Iterations completed (the next one to run).
    pub iteration: usize,
    /// The evaluation before training (first eval or a baseline's) is done.
    pub started: bool,
    pub prompts: Vec<String>,
    /// Each layer's current demonstrations (absent when no layer shows any; checkpoints
    /// written before demonstrations existed have none).
    #[serde(default, skip_serializing_if = "no_demos")]
    pub demos: Vec<Vec<Demo>>,
    pub pinned: Vec<bool>,
    /// Layers whose demonstrations a person pinned (absent when none are).
    #[serde(default, skip_serializing_if = "none_pinned")]
    pub demos_pinned: Vec<bool>,
    /// Templates a person replaced, per layer: (role, source as given).
    pub edited_templates: Vec<Vec<(TemplateRole, String)>>,
    pub memory: PromptMemory,
    pub best_dev: BestDev,
    pub dev_history: Vec<DevPoint>,
    /// The run's single RNG in checkpoints written before every purpose had its own stream
    /// (derived from the seed, the iteration and the purpose, so nothing to save); read and
    /// ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rng: Option<RngState>,
    /// The k-shot demonstrations (baseline `k_shot`).
    pub shots: Vec<Example>,
    /// Token usage so far, per layer and operation.
    pub usage: Vec<UsageEntry>,
    /// Training accuracy of each completed iteration's batch.
    pub train_accuracy: Vec<f64>,
    /// Edits of the posteriors of iteration `iteration` (the one a stop interrupted), replayed
    /// at their stage boundaries on resume. Empty after a completed iteration.
    #[serde(default)]
    pub hidden_edits: Vec<HiddenEdit>,
    /// A person's notes in force, per layer (absent when there are none, and in checkpoints
    /// written before feedback existed).
    #[serde(default, skip_serializing_if = "no_notes")]
    pub feedback: Vec<Vec<Note>>,
    /// GEPA's candidate pool (`train.optimizer = "gepa"`; absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<crate::dln::gepa::Pool>,
    /// The recent times of each kind of stage, so that a resumed run forecasts at once (absent
    /// before any stage was timed, and in checkpoints written before forecasts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stage_times: Vec<StageTimes>,
}

/// One kind of stage's recent times (`trainer::Pace`): `forward`, `propose:0`, `evaluate`, ...
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTimes {
    pub stage: String,
    pub times_ms: Vec<u64>,
}

fn none_pinned(pinned: &[bool]) -> bool {
    !pinned.iter().any(|p| *p)
}

impl TrainerState {
    /// The state of nothing yet (what a trainer holds before it has a state of its own).
    pub fn empty() -> TrainerState {
        TrainerState {
            iteration: 0,
            started: false,
            prompts: Vec::new(),
            demos: Vec::new(),
            pinned: Vec::new(),
            demos_pinned: Vec::new(),
            edited_templates: Vec::new(),
            memory: PromptMemory::default(),
            best_dev: BestDev::default(),
            dev_history: Vec::new(),
            rng: None,
            shots: Vec::new(),
            usage: Vec::new(),
            train_accuracy: Vec::new(),
            hidden_edits: Vec::new(),
            feedback: Vec::new(),
            pool: None,
            stage_times: Vec::new(),
        }
    }
}
