//! The trainer: a state machine over the stages of an iteration (Forward → PosteriorSampling →
//! Sharpening → Propose → Score → Select → Evaluate). [`Trainer::step`] runs exactly one stage,
//! so a driver can apply a person's commands, pause, or stop between any two stages.
//!
//! For a DLN-k (k layers, k−1 hidden texts) each hidden text `h_l` (written by layer `l`, read
//! by layer `l+1`) is a latent variable: top-down, its posterior samples are proposed from the
//! target of the layer above (`y` for the output layer, else the best sample `h*` of the hidden
//! text above), sharpened with the layer above's likelihood plus its own prior, and every layer's
//! prompt is then updated on its own ELBO term. k = 1 is DLN-1 and k = 2 is DLN-2 exactly.
//!
//! Each stage lives in the module of its family and has the same shape: a pure function builds
//! the stage's requests from the iteration's state, one backend call answers them, and a pure
//! function folds the answers back into the state (and the events to emit):
//! - [`forward`]: the forward pass ([`Forward`]), the minibatch, the plan of the iteration;
//! - [`evaluate`]: accuracy on a split ([`accuracy`], [`answers`]: free functions over a
//!   network, also what `dln eval` and `dln predict` run), dev evaluation, the final test;
//! - [`posterior`] and [`sharpen`]: posterior sampling of the hidden texts and their weights;
//! - [`propose`] and [`score`]: candidate prompts, their scores, the selection
//!   ([`proposals`]: the candidates of one update with their provenance);
//! - [`commands`]: a person's steering (pin, edit, add or exclude a hidden sample);
//! - [`feedback`]: a person's written notes on a layer and how its proposals are shown them;
//! - [`usage`]: token bookkeeping ([`UsageBook`]).

mod batch;
mod commands;
mod demo_moves;
mod evaluate;
mod feedback;
mod forward;
mod gepa;
mod pace;
mod posterior;
mod progress;
mod proposals;
mod propose;
mod score;
mod sharpen;
mod step;
#[cfg(test)]
mod testing;
mod usage;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::config::{Mode, Scoring, TrainConfig};
use crate::data::{Dataset, Example};
use crate::dln::demos::Demo;
use crate::dln::error::DlnError;
use crate::dln::events::{Candidate, Event, LayerIndex, PosteriorExample, UsageEntry};
use crate::dln::math;
use crate::dln::network::Network;
use crate::dln::ops::Operation;
use crate::dln::state::{DevPoint, HiddenEdit, TrainerState};
use crate::llm::Usage;

pub use batch::prepare_shots;
pub use evaluate::{accuracy, answers, one_answer, top_answer, SplitScore, ONE_ANSWER_SHARE};
pub use feedback::notes_shown;
pub use forward::Forward;
pub use pace::Pauses;
pub use usage::UsageBook;

use forward::ForwardResult;

/// Where the trainer's events go (the run directory's log and the live channel).
pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// What one [`Trainer::step`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// A stage ran; more follow.
    Continue,
    /// An iteration ended; its state is ready to checkpoint.
    IterationDone,
    /// The run is over (final test done).
    Finished,
}

/// The final figures of a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    pub best_prompts: Vec<String>,
    pub final_prompts: Vec<String>,
    /// The best prompts' demonstrations, per layer (absent when no layer shows any).
    #[serde(default, skip_serializing_if = "math::no_demos")]
    pub best_demos: Vec<Vec<Demo>>,
    #[serde(default, skip_serializing_if = "math::no_demos")]
    pub final_demos: Vec<Vec<Demo>>,
    pub dev_accuracy: Option<f64>,
    pub test_accuracy: Option<f64>,
    /// How many times each answer was given on the test split.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub test_answers: std::collections::BTreeMap<String, usize>,
    pub iterations: usize,
}

/// A stage of the iteration in progress, with the layer it updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StageId {
    Forward,
    PosteriorSampling(LayerIndex),
    Sharpening(LayerIndex),
    /// Scores the samples a person added after sharpening and re-normalizes their examples.
    Rescore(LayerIndex),
    Propose(LayerIndex),
    Score(LayerIndex),
    Select(LayerIndex),
    Evaluate,
    Finish,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    Iterating,
    Test,
    Done,
}

/// The posterior of one hidden text, with its per-sample terms.
#[derive(Debug, Clone)]
struct Posterior {
    examples: Vec<PosteriorExample>,
    sharpened: bool,
}

/// The work of the iteration in progress.
struct IterState {
    iteration: usize,
    started: Instant,
    /// The run's time held by pauses when the iteration started ([`Pauses::total`]).
    held_before: std::time::Duration,
    queue: VecDeque<StageId>,
    /// The stages already run, in order (their count is the boundary a person's edit is
    /// recorded at).
    done: Vec<StageId>,
    /// Hidden texts a person wrote before their posterior was sampled: (layer, example, text).
    pending_hidden: Vec<(LayerIndex, usize, String)>,
    batch: Vec<Example>,
    /// `batch_index[i]`: the training-split position of batch example `i`.
    batch_index: Vec<usize>,
    fwd: ForwardResult,
    /// `posteriors[L]`: the hidden text below layer `L` (index 0 unused).
    posteriors: Vec<Option<Posterior>>,
    candidates: Vec<Vec<Candidate>>,
    winners: Vec<Option<usize>>,
    elbo: Vec<Option<f64>>,
    /// GEPA: the pool member this iteration mutates.
    parent: Option<usize>,
}

impl IterState {
    /// Iteration `iteration` of a network of `k` layers, before its forward pass.
    fn new(iteration: usize, k: usize, held_before: std::time::Duration) -> IterState {
        IterState {
            iteration,
            started: Instant::now(),
            held_before,
            queue: VecDeque::from([StageId::Forward]),
            done: Vec::new(),
            pending_hidden: Vec::new(),
            batch: Vec::new(),
            batch_index: Vec::new(),
            fwd: ForwardResult::default(),
            posteriors: vec![None; k],
            candidates: vec![Vec::new(); k],
            winners: vec![None; k],
            elbo: vec![None; k],
            parent: None,
        }
    }
}

/// The training loop of one run.
pub struct Trainer {
    net: Network,
    train: TrainConfig,
    /// Where template files named in commands resolve (the config's directory).
    base_dir: PathBuf,
    data: Dataset,
    shots: Vec<Example>,
    iteration: usize,
    memory: math::PromptMemory,
    best: math::BestDev,
    dev_history: Vec<DevPoint>,
    train_accuracy: Vec<f64>,
    usage: UsageBook,
    phase: Phase,
    current: Option<IterState>,
    /// The state at the start of the iteration in progress, with a person's edits applied: what
    /// a stop mid-iteration saves (the interrupted iteration reruns from the call cache).
    snapshot: TrainerState,
    /// A restored checkpoint's posterior edits, replayed at their boundaries of the rerun
    /// iteration.
    replay: Vec<HiddenEdit>,
    test_accuracy: Option<f64>,
    test_answers: std::collections::BTreeMap<String, usize>,
    /// GEPA's candidates (`train.optimizer = "gepa"`), from the start evaluation on.
    pool: Option<crate::dln::gepa::Pool>,
    sink: Arc<dyn EventSink>,
    /// What the running stage's model calls will answer, for its progress events.
    expected: progress::Expectation,
    /// Cancelled when a stop is asked during a stage ([`Trainer::stop_signal`]).
    stop: CancellationToken,
    /// The recent time of each kind of stage, for the forecasts.
    pace: pace::Pace,
    /// The time the driver held the run by pauses ([`Trainer::pauses`]).
    pauses: Arc<Pauses>,
}

impl Trainer {
    /// A fresh trainer at iteration 0, on the `[train]` settings; `base_dir` is where template
    /// files named in commands resolve.
    pub fn new(
        mut net: Network,
        train: &TrainConfig,
        base_dir: &Path,
        data: Dataset,
        sink: Arc<dyn EventSink>,
    ) -> Result<Trainer, DlnError> {
        let shots = prepare_shots(train, &data)?;
        batch::initial_demos(train, &data, &mut net);
        let best = math::BestDev::new(net.prompts(), net.demos(), train.patience());
        let mut t = Trainer {
            memory: math::PromptMemory::new(train.memory),
            net,
            train: train.clone(),
            base_dir: base_dir.to_path_buf(),
            data,
            shots,
            iteration: 0,
            best,
            dev_history: Vec::new(),
            train_accuracy: Vec::new(),
            usage: UsageBook::default(),
            phase: Phase::Start,
            current: None,
            snapshot: TrainerState::empty(),
            replay: Vec::new(),
            test_accuracy: None,
            test_answers: Default::default(),
            pool: None,
            sink,
            expected: Default::default(),
            stop: CancellationToken::new(),
            pace: Default::default(),
            pauses: Default::default(),
        };
        t.snapshot = t.state();
        Ok(t)
    }

    /// A trainer continuing from a checkpoint's state.
    pub fn restore(
        mut net: Network,
        train: &TrainConfig,
        base_dir: &Path,
        data: Dataset,
        state: TrainerState,
        sink: Arc<dyn EventSink>,
    ) -> Result<Trainer, DlnError> {
        batch::check_data(train, &data)?;
        let k = net.layers.len();
        if state.prompts.len() != k {
            return Err(DlnError::Config(format!(
                "the checkpoint has {} layers but the config has {k}",
                state.prompts.len()
            )));
        }
        for (l, layer) in net.layers.iter_mut().enumerate() {
            layer.prompt = state.prompts[l].clone();
            layer.pinned = state.pinned.get(l).copied().unwrap_or(false);
            layer.demos_pinned = state.demos_pinned.get(l).copied().unwrap_or(false);
            layer.feedback = state.feedback.get(l).cloned().unwrap_or_default();
        }
        net.set_demos(&state.demos, false);
        for (l, edits) in state.edited_templates.iter().enumerate() {
            for (role, source) in edits {
                net.set_template(l, *role, source, base_dir)?;
            }
        }
        let phase = if !state.started {
            Phase::Start
        } else if train.mode != Mode::Dln || state.iteration >= train.iterations {
            Phase::Test
        } else {
            Phase::Iterating
        };
        let mut best = state.best_dev.clone();
        best.tolerance = train.patience();
        let mut memory = state.memory.clone();
        memory.capacity = train.memory;
        let stage_times = pace::Pace::restored(&state.stage_times);
        Ok(Trainer {
            replay: state.hidden_edits.clone(),
            net,
            train: train.clone(),
            base_dir: base_dir.to_path_buf(),
            data,
            shots: state.shots.clone(),
            iteration: state.iteration,
            memory,
            best,
            dev_history: state.dev_history.clone(),
            train_accuracy: state.train_accuracy.clone(),
            usage: UsageBook::restored(state.usage.clone()),
            phase,
            current: None,
            pool: state.pool.clone(),
            snapshot: state,
            test_accuracy: None,
            test_answers: Default::default(),
            sink,
            expected: Default::default(),
            stop: CancellationToken::new(),
            pace: stage_times,
            pauses: Default::default(),
        })
    }

    /// What a driver cancels when a stop is asked while a stage runs: a long stage (a dev or
    /// test evaluation, chunk by chunk) then gives up at its next call with
    /// [`DlnError::Interrupted`] instead of running to its end, which a stop mid-iteration
    /// would not keep anyway (the checkpoint is the iteration's start).
    pub fn stop_signal(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Where a driver counts the time it holds the run by a pause, which the stages' times (and
    /// so the forecasts) leave out.
    pub fn pauses(&self) -> Arc<Pauses> {
        Arc::clone(&self.pauses)
    }

    /// Completed iterations.
    pub fn iteration(&self) -> usize {
        self.iteration
    }

    pub fn data(&self) -> &Dataset {
        &self.data
    }

    /// The network as trained so far (prompts, pins, templates, backends).
    pub fn network(&self) -> &Network {
        &self.net
    }

    /// The state to checkpoint now: after a completed iteration it is the current state; in the
    /// middle of one it is the iteration's start with a person's edits applied.
    ///
    /// Its usage is always the run's so far: the tokens of the interrupted iteration were spent
    /// (and its rerun answers them from the call cache, for free), so a budget still counts them.
    pub fn checkpoint_state(&self) -> TrainerState {
        if self.current.is_some() {
            let mut s = self.snapshot.clone();
            s.usage = self.usage.run().to_vec();
            s
        } else {
            self.state()
        }
    }

    /// The trainer as a resumed run would be from [`checkpoint_state`](Self::checkpoint_state)
    /// now: the iteration in progress starts again (after a failed call, its answers come from
    /// the call cache), on the same network and backends.
    pub fn rewind(self) -> Result<Trainer, DlnError> {
        let state = self.checkpoint_state();
        let Trainer {
            net,
            train,
            base_dir,
            data,
            sink,
            pace,
            pauses,
            ..
        } = self;
        let mut t = Trainer::restore(net, &train, &base_dir, data, state, sink)?;
        t.pace = pace;
        t.pauses = pauses;
        Ok(t)
    }

    /// Between two iterations (the start evaluation or an iteration just completed, the next
    /// not begun): where a run can be branched from [`checkpoint_state`](Self::checkpoint_state).
    pub fn at_boundary(&self) -> bool {
        self.current.is_none() && self.phase == Phase::Iterating
    }

    /// The run's usage summed over layers and operations (what a budget is checked against).
    pub fn total_usage(&self) -> Usage {
        self.usage.total()
    }

    fn state(&self) -> TrainerState {
        TrainerState {
            iteration: self.iteration,
            // Starting (the baseline dev evaluation) is the only stage before the phase moves on.
            started: self.phase != Phase::Start,
            prompts: self.net.prompts(),
            demos: math::stored_demos(self.net.demos()),
            pinned: self.net.layers.iter().map(|l| l.pinned).collect(),
            demos_pinned: self.net.layers.iter().map(|l| l.demos_pinned).collect(),
            edited_templates: self
                .net
                .layers
                .iter()
                .map(|l| l.edited_templates.clone())
                .collect(),
            memory: self.memory.clone(),
            best_dev: self.best.clone(),
            dev_history: self.dev_history.clone(),
            rng: None,
            shots: self.shots.clone(),
            usage: self.usage.run().to_vec(),
            train_accuracy: self.train_accuracy.clone(),
            hidden_edits: self.replay.clone(),
            feedback: self.net.layers.iter().map(|l| l.feedback.clone()).collect(),
            pool: self.pool.clone(),
            stage_times: self.pace.saved(),
        }
    }

    /// Token usage so far, per layer and operation.
    pub fn usage(&self) -> &[UsageEntry] {
        self.usage.run()
    }

    /// The final figures (best-dev prompts, accuracies).
    pub fn outcome(&self) -> Outcome {
        Outcome {
            best_prompts: self.best_prompts(),
            final_prompts: self.net.prompts(),
            best_demos: math::stored_demos(self.best_demos()),
            final_demos: math::stored_demos(self.net.demos()),
            dev_accuracy: self.best.accuracy,
            test_accuracy: self.test_accuracy,
            test_answers: self.test_answers.clone(),
            iterations: self.iteration,
        }
    }

    fn best_prompts(&self) -> Vec<String> {
        if self.best.accuracy.is_some() {
            self.best.prompts.clone()
        } else {
            self.net.prompts()
        }
    }

    /// The demonstrations of [`best_prompts`](Self::best_prompts).
    fn best_demos(&self) -> Vec<Vec<Demo>> {
        if self.best.accuracy.is_some() {
            self.best.demos.clone()
        } else {
            self.net.demos()
        }
    }

    fn emit(&self, e: Event) {
        self.sink.emit(e);
    }

    /// The usage of the iteration in progress plus the running stage's calls since `before`
    /// (not yet accounted): what stage events carry so clients show live totals.
    fn live_usage(
        &self,
        pending: Option<(LayerIndex, Operation, Usage)>,
    ) -> Option<Vec<UsageEntry>> {
        let pending =
            pending.map(|(l, op, before)| (l, op, usage::backend_usage(&self.net).since(&before)));
        self.usage.live(pending)
    }

    /// The backends' counters now, to account a stage's calls against later.
    fn meter(&self) -> Usage {
        usage::backend_usage(&self.net)
    }

    /// Accounts the calls since `before` to `layer` and `operation`.
    fn account(&mut self, layer: LayerIndex, operation: Operation, before: Usage) {
        let u = usage::backend_usage(&self.net).since(&before);
        self.usage.add(layer, operation, u);
    }

    /// Whether layer `l`'s candidates are ranked by accuracy: asked for in the config, or forced
    /// because its backend gives no log-probabilities (ALGORITHM.md §2 step 4).
    fn accuracy_scoring(&self, l: LayerIndex) -> bool {
        self.train.scoring == Scoring::Accuracy
            || !self.net.layers[l].backends.forward.has_logprobs()
    }

    /// Re-applies a restored checkpoint's posterior edits that belong at this boundary.
    fn replay_edits(&mut self) {
        let Some(at) = self.current.as_ref().map(|c| c.done.len()) else {
            return;
        };
        let (due, later) = self.replay.drain(..).partition(|e| e.after_stages == at);
        self.replay = later;
        for e in due {
            if let Err(err) = self.try_apply(e.command.clone()) {
                self.emit(Event::CommandRejected {
                    command: e.command,
                    reason: format!("replaying a recorded edit: {err}"),
                });
            }
        }
    }
}
