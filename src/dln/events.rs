//! The vocabulary between the training loop and its clients (the TUI, the headless CLI, the run
//! directory's `events.jsonl`): what happened ([`Event`]) and what a person asks ([`Command`]).
//!
//! Every event is serialisable; `events.jsonl` holds one per line, and replaying them through the
//! same reducer the live TUI uses reproduces what the person saw.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::dln::command::{Command, LayerIndex};
pub use crate::dln::demos::{Demo, DemoMove};
pub use crate::dln::feedback::Note;
pub use crate::dln::gepa::FrontEntry;
use crate::dln::math::no_demos;
pub use crate::dln::split::Split;
pub use crate::dln::stage::{Operation, Stage};
use crate::llm::Usage;
pub use crate::template::{Rejection, TemplateRole};

/// The run's state as a person sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    /// A pause was asked: the run's backends are held and finish the decode step or request
    /// they were in (logs written before the hold: until the next stage boundary).
    Pausing,
    Paused,
    Stopping,
    Finished,
    Failed,
}

/// Why a run stopped before its end (it is resumable: `dln resume`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// A person or a signal asked (`Command::Stop`).
    Requested,
    /// `train.budget_tokens` or `train.budget_cost` was reached.
    Budget,
    /// A backend kept failing after its retries and nobody resumed the paused run.
    BackendUnavailable,
    /// The run directory could not be written (a full disk, an I/O error): the run stopped at
    /// its last whole checkpoint and event.
    WriteFailed,
}

impl StopReason {
    /// How `dln runs` and the workbench say it: "stopped (budget)".
    pub fn name(self) -> &'static str {
        match self {
            StopReason::Requested => "stopped",
            StopReason::Budget => "stopped (budget)",
            StopReason::BackendUnavailable => "stopped (backend unavailable)",
            StopReason::WriteFailed => "stopped (cannot write)",
        }
    }
}

/// Where a sample of a hidden text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleOrigin {
    /// The forward pass's own hidden text `h_i`.
    Forward,
    /// Drawn from the approximate posterior `q`.
    Posterior,
    /// Written by a person through [`Command::AddHidden`].
    Human,
}

/// Where a candidate prompt came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CandidateOrigin {
    Current,
    Proposed,
    Memory,
}

/// One example of the minibatch after the forward pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForwardExample {
    /// Position in the minibatch (what commands refer to).
    pub index: usize,
    pub input: String,
    pub target: String,
    /// The hidden text written by each layer below the output layer (empty for DLN-1).
    pub hidden: Vec<String>,
    /// Whether each of `hidden` was ended by its layer's token budget (`forward_max_tokens`)
    /// rather than the end of turn or a stop; absent in logs written before it existed.
    #[serde(default, skip_serializing_if = "none_cut")]
    pub hidden_cut: Vec<bool>,
    pub prediction: String,
    pub correct: bool,
    /// The example's position in the training split (what a demonstration names); absent
    /// outside training and in logs written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_index: Option<usize>,
}

/// One posterior sample of a hidden text, with its sharpening terms once computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HiddenSample {
    pub text: String,
    pub origin: SampleOrigin,
    /// `log p(y | F_y(R(x, h̃)); π_above)`.
    pub log_likelihood: Option<f64>,
    /// `log p(h̃ | F_h(x); π_below)`; `None` when the prior is switched off.
    pub log_prior: Option<f64>,
    /// `w̃ = log_likelihood + log_prior`.
    pub log_weight: Option<f64>,
    /// The sharpened weight `w`, normalized per example.
    pub weight: Option<f64>,
    /// Excluded by a person: weight 0, never chosen as best.
    pub excluded: bool,
    /// Ended by the token budget (the hidden layer's `forward_max_tokens`) rather than the end
    /// of turn or a stop: what was generated, scored exactly as it stands.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cut: bool,
}

impl HiddenSample {
    /// A sample as drawn or written, before sharpening has scored it.
    pub fn unscored(text: String, origin: SampleOrigin) -> HiddenSample {
        HiddenSample {
            text,
            origin,
            log_likelihood: None,
            log_prior: None,
            log_weight: None,
            weight: None,
            excluded: false,
            cut: false,
        }
    }

    /// [`HiddenSample::unscored`], marked as ended by its token budget when `cut`.
    pub fn unscored_cut(text: String, origin: SampleOrigin, cut: bool) -> HiddenSample {
        HiddenSample {
            cut,
            ..HiddenSample::unscored(text, origin)
        }
    }
}

/// No hidden text of a forward example was cut (what leaves `hidden_cut` out of the log).
fn none_cut(cut: &[bool]) -> bool {
    !cut.iter().any(|c| *c)
}

/// The posterior of one example's hidden text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PosteriorExample {
    pub index: usize,
    pub input: String,
    pub target: String,
    /// The forward pass's hidden text `h_i`.
    pub hidden: String,
    pub correct: bool,
    pub samples: Vec<HiddenSample>,
    /// Index of `h*` in `samples`, once sharpened.
    pub best: Option<usize>,
    /// Normalized entropy of the weights in [0, 1] (1 = undecided), once sharpened.
    pub entropy: Option<f64>,
}

/// A candidate prompt and, once scored, its score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub prompt: String,
    pub origin: CandidateOrigin,
    pub score: Option<f64>,
    /// The trust-region KL term subtracted from the score, when enabled.
    pub kl: Option<f64>,
    /// The demonstrations the candidate shows, in order (absent for a layer without any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub demos: Vec<Demo>,
    /// The demonstration move that made this candidate (its prompt is then the current one);
    /// absent for instruction candidates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demo_move: Option<DemoMove>,
    /// Where a proposed instruction came from (which request, the examples it was shown, its
    /// message and template); absent for the current prompt, the memory's, demonstration moves
    /// and in logs written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<ProposalSource>,
}

/// The provenance of a proposed candidate: what its proposal request showed the backward model.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProposalSource {
    /// The request `j` of the update that generated it (redraw rounds go on counting).
    pub request: usize,
    /// The training-split positions of the examples the proposer was shown, in the order shown.
    #[serde(default)]
    pub shown: Vec<usize>,
    /// The message alternative the template rendered (`{{ message }}`; empty when it has none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The name of the layer's prompt-proposal template.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub template: String,
    /// A person's notes on the layer the proposal was shown (`train.person_feedback`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feedback: Vec<String>,
}

impl Candidate {
    /// What the candidate is, for a line of text: its demonstration move, else its prompt.
    pub fn describe(&self) -> String {
        match &self.demo_move {
            Some(m) => m.describe(),
            None => self.prompt.clone(),
        }
    }
}

/// A generated proposal that did not become a candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedProposal {
    /// The generated text as the model wrote it.
    pub text: String,
    pub reason: Rejection,
}

fn is_zero<T: Default + PartialEq>(n: &T) -> bool {
    *n == T::default()
}

/// Token usage of one layer and one operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageEntry {
    pub layer: LayerIndex,
    /// Written as `forward`, `posterior`, `sharpen`, `propose`, `score`, `evaluate`, `test`.
    pub operation: Operation,
    pub usage: Usage,
}

/// Per-layer summary at the start of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerInfo {
    pub index: LayerIndex,
    pub prompt: String,
    pub pinned: bool,
    pub trainable: bool,
    pub model: String,
    /// The layer's templates as loaded (our TOML format), by slot: what the workbench's
    /// template editor opens on. Empty in logs written before it existed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub templates: BTreeMap<TemplateRole, String>,
    /// The demonstrations the layer shows at the start (absent for a layer without any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub demos: Vec<Demo>,
    /// `k`: the most demonstrations the layer may show (0, absent: instruction only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_demos: usize,
    /// The demonstrations are pinned: demonstration moves leave them alone.
    #[serde(default, skip_serializing_if = "is_false")]
    pub demos_pinned: bool,
    /// A person's notes in force on the layer (a resumed run's, from its checkpoint).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feedback: Vec<Note>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// What happened. One line of `events.jsonl` each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_dir: String,
        task: String,
        model: String,
        layers: Vec<LayerInfo>,
        iterations: usize,
        /// The iteration the run starts from (non-zero when resumed).
        start_iteration: usize,
        train_size: usize,
        dev_size: usize,
        test_size: usize,
    },
    /// An HTTP backend answered its capability probe: which scoring mode the run uses on it
    /// and why (server, model, what it supports).
    BackendConnected {
        name: String,
        scoring: String,
        detail: String,
    },
    StateChanged {
        state: RunState,
    },
    StageStarted {
        iteration: usize,
        stage: Stage,
        layer: Option<LayerIndex>,
        total: usize,
        /// Token usage of the iteration in progress so far (its finished stages, and for a
        /// progress event the calls of this stage until now), so a client can show live totals
        /// before `IterationDone`. `None` outside an iteration and in logs written before it
        /// existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Vec<UsageEntry>>,
    },
    StageProgress {
        iteration: usize,
        stage: Stage,
        done: usize,
        total: usize,
        /// Token usage of the iteration in progress so far (its finished stages, and for a
        /// progress event the calls of this stage until now), so a client can show live totals
        /// before `IterationDone`. `None` outside an iteration and in logs written before it
        /// existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Vec<UsageEntry>>,
    },
    ForwardDone {
        iteration: usize,
        examples: Vec<ForwardExample>,
        accuracy: f64,
        loss: f64,
    },
    /// Posterior samples of the hidden text below `layer` (i.e. written by layer `layer - 1`).
    PosteriorSampled {
        iteration: usize,
        layer: LayerIndex,
        examples: Vec<PosteriorExample>,
    },
    Sharpened {
        iteration: usize,
        layer: LayerIndex,
        examples: Vec<PosteriorExample>,
    },
    CandidatesProposed {
        iteration: usize,
        layer: LayerIndex,
        candidates: Vec<Candidate>,
        /// Proposals generated in all (the first `N−1` and any drawn again to replace rejected
        /// ones). 0 in logs written before it existed.
        #[serde(default, skip_serializing_if = "is_zero")]
        drawn: usize,
        /// The proposals that did not become candidates, with why.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        rejected: Vec<RejectedProposal>,
        /// Examples left out of proposal prompts so that they fit the backward model's context
        /// (the most over all requests of the update).
        #[serde(default, skip_serializing_if = "is_zero")]
        examples_dropped: usize,
    },
    CandidatesScored {
        iteration: usize,
        layer: LayerIndex,
        candidates: Vec<Candidate>,
        winner: usize,
    },
    PromptSelected {
        iteration: usize,
        layer: LayerIndex,
        prompt: String,
        previous: String,
        /// The winner's demonstrations (absent for a layer without any; logs written before
        /// demonstrations existed have none).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        demos: Vec<Demo>,
    },
    /// ELBO terms of the chosen prompts, per layer, and their sum.
    Elbo {
        iteration: usize,
        terms: Vec<Option<f64>>,
        total: f64,
    },
    Evaluated {
        iteration: usize,
        split: Split,
        accuracy: f64,
        best_so_far: bool,
        /// How many times each answer was given (absent in older logs): a network that gives
        /// one answer to nearly every example scores that answer's share, not its reasoning.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        answers: std::collections::BTreeMap<String, usize>,
    },
    /// Patience ran out: the prompts were reset to the best-dev ones.
    PatienceReset {
        iteration: usize,
        prompts: Vec<String>,
        /// Every layer's demonstrations after the reset (absent when no layer shows any).
        #[serde(default, skip_serializing_if = "no_demos")]
        demos: Vec<Vec<Demo>>,
    },
    /// GEPA: the parent this iteration mutates, drawn from the pool's Pareto front (`front`:
    /// the members a parent is drawn from, with the dev examples each is best on); its prompts
    /// are now the network's.
    ParentSelected {
        iteration: usize,
        member: usize,
        layer: LayerIndex,
        prompts: Vec<String>,
        #[serde(default, skip_serializing_if = "no_demos")]
        demos: Vec<Vec<Demo>>,
        front: Vec<FrontEntry>,
    },
    /// GEPA: a mutation that beat its parent on the minibatch, scored on every dev example,
    /// joined the pool as `member` (`best`: the member the run would end with now).
    PoolAdded {
        iteration: usize,
        member: usize,
        parent: Option<usize>,
        prompts: Vec<String>,
        dev_accuracy: f64,
        /// Mean log-likelihood of the dev targets.
        mean_score: f64,
        front: Vec<FrontEntry>,
        best: usize,
    },
    IterationDone {
        iteration: usize,
        train_accuracy: f64,
        elbo: Option<f64>,
        usage: Vec<UsageEntry>,
        /// Wall time from the iteration's start, pauses included.
        elapsed_ms: u64,
        /// Of `elapsed_ms`, the time the run was held by a pause (0, and absent, when none).
        #[serde(default, skip_serializing_if = "is_zero")]
        paused_ms: u64,
    },
    /// What the rest takes, forecast at the start of a stage from the recent times of each
    /// kind of stage, pauses left out (`trainer::Pace`). `None` until every kind of stage ahead
    /// has run once; no forecast for GEPA (a token budget ends it).
    Forecast {
        iteration: usize,
        /// The iteration in progress from this stage on (at its first stage: all of it).
        iteration_left_ms: Option<u64>,
        /// The stage about to run.
        stage_ms: Option<u64>,
        /// The run from this stage on: this iteration, the ones still to come, the test.
        run_left_ms: Option<u64>,
    },
    PromptPinned {
        layer: LayerIndex,
        prompt: String,
    },
    PromptUnpinned {
        layer: LayerIndex,
    },
    PromptReplaced {
        layer: LayerIndex,
        prompt: String,
    },
    TemplateReplaced {
        layer: LayerIndex,
        role: TemplateRole,
        source: String,
    },
    /// A person added or removed a demonstration: the layer's whole new set, in order.
    DemosReplaced {
        layer: LayerIndex,
        demos: Vec<Demo>,
    },
    DemosPinned {
        layer: LayerIndex,
    },
    DemosUnpinned {
        layer: LayerIndex,
    },
    HiddenAdded {
        layer: LayerIndex,
        example: usize,
        text: String,
    },
    SampleExcluded {
        layer: LayerIndex,
        example: usize,
        sample: usize,
    },
    /// An excluded sample counts again (the exclusion undone).
    SampleIncluded {
        layer: LayerIndex,
        example: usize,
        sample: usize,
    },
    /// A person's note on the layer (or one of its examples) is in force from now on.
    FeedbackAdded {
        layer: LayerIndex,
        iteration: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        example: Option<usize>,
        /// The example's input (empty for a note on the layer).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        input: String,
        text: String,
    },
    /// Note `index` of the layer's notes in force was removed.
    FeedbackRemoved {
        layer: LayerIndex,
        index: usize,
        text: String,
    },
    CheckpointWritten {
        iteration: usize,
        path: String,
    },
    /// The run is a branch: what comes before this event is its parent's log up to the
    /// iteration it branched at (`dln branch`, the workbench's `b`); what follows is its own.
    Branched {
        /// The parent run's directory.
        parent: String,
        /// Iterations the parent had completed at the branch point.
        iteration: usize,
        /// The settings the branch changed (`KEY=VALUE`, as given).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changes: Vec<String>,
    },
    Warning {
        message: String,
    },
    /// A command was refused (an invalid template, an example no longer in the batch, …); the
    /// run goes on as before it.
    CommandRejected {
        command: Command,
        reason: String,
    },
    /// The run cannot go on; `StateChanged { Failed }` follows.
    RunFailed {
        message: String,
    },
    /// A backend kept failing after its retries (server down, 5xx, timeouts): the iteration in
    /// progress is rewound to its start (its answers stay in the call cache), a checkpoint is
    /// written and the run pauses (`StateChanged { Paused }` follows); resuming retries it.
    BackendUnavailable {
        message: String,
    },
    /// The run has used its budget (`train.budget_tokens` / `train.budget_cost`); it stops as
    /// a `Stop` does (checkpoint, `RunFinished` with `stop_reason: budget`).
    BudgetReached {
        tokens: u64,
        cost: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        budget_tokens: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        budget_cost: Option<f64>,
    },
    /// An error of a log written before `CommandRejected` and `RunFailed` existed (either of
    /// them); kept so those logs replay. Not emitted any more.
    Error {
        message: String,
    },
    RunFinished {
        best_prompts: Vec<String>,
        dev_accuracy: Option<f64>,
        test_accuracy: Option<f64>,
        stopped_early: bool,
        /// The demonstrations of `best_prompts` (absent when no layer shows any).
        #[serde(default, skip_serializing_if = "no_demos")]
        best_demos: Vec<Vec<Demo>>,
        /// Why a run stopped early; absent for a finished run and in older logs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stop_reason: Option<StopReason>,
    },
}
