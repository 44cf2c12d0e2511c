//! The trainer: a state machine over the stages of an iteration (Forward → PosteriorSampling →
//! Sharpening → Propose → Score → Select → Evaluate). [`Trainer::step`] runs exactly one stage,
//! so a driver can apply a person's commands, pause, or stop between any two stages.
//!
//! For a DLN-k (k layers, k−1 hidden texts) each hidden text `h_l` (written by layer `l`, read
//! by layer `l+1`) is a latent variable: top-down, its posterior samples are proposed from the
//! target of the layer above (`y` for the output layer, else the best sample `h*` of the hidden
//! text above), sharpened with the layer above's likelihood plus its own prior, and every layer's
//! prompt is then updated on its own ELBO term. k = 1 is DLN-1 and k = 2 is DLN-2 exactly.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use rand::seq::SliceRandom;
use serde_json::json;

use crate::config::{Config, Mode, Scoring};
use crate::data::{Dataset, Example};
use crate::dln::error::DlnError;
use crate::dln::events::{
    Candidate, CandidateOrigin, Command, Event, ForwardExample, HiddenSample, LayerIndex,
    PosteriorExample, RejectedProposal, SampleOrigin, Stage, UsageEntry,
};
use crate::dln::math;
use crate::dln::network::Network;
use crate::dln::ops::{self, call_seed};
use crate::dln::state::{DevPoint, HiddenEdit, TrainerState};
use crate::llm::{Prompt, Usage};
use crate::template::{proposal_key, read_proposal, Rejection};

/// Where the trainer's events go (the run directory's log and the live channel).
pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// Examples per call (and per progress event) when evaluating a split.
const EVAL_CHUNK: usize = 8;

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
    pub dev_accuracy: Option<f64>,
    pub test_accuracy: Option<f64>,
    pub iterations: usize,
}

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

/// The forward pass over a set of examples.
#[derive(Debug, Clone, Default)]
struct ForwardResult {
    /// `inputs[l][i]`: what layer `l` read for example `i` (`x`, or `R(x, h_{l-1})`).
    inputs: Vec<Vec<String>>,
    /// `hidden[l][i]`: the text layer `l` wrote (hidden layers only).
    hidden: Vec<Vec<String>>,
    predictions: Vec<String>,
    correct: Vec<bool>,
}

impl ForwardResult {
    /// The share of examples answered right.
    fn accuracy(&self) -> f64 {
        math::mean(
            &self
                .correct
                .iter()
                .map(|c| if *c { 1.0 } else { 0.0 })
                .collect::<Vec<_>>(),
        )
    }
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
    queue: VecDeque<StageId>,
    /// The stages already run, in order (their count is the boundary a person's edit is
    /// recorded at).
    done: Vec<StageId>,
    /// Hidden texts a person wrote before their posterior was sampled: (layer, example, text).
    pending_hidden: Vec<(LayerIndex, usize, String)>,
    batch: Vec<Example>,
    fwd: ForwardResult,
    /// `posteriors[L]`: the hidden text below layer `L` (index 0 unused).
    posteriors: Vec<Option<Posterior>>,
    candidates: Vec<Vec<Candidate>>,
    winners: Vec<Option<usize>>,
    elbo: Vec<Option<f64>>,
    usage: Vec<UsageEntry>,
}

/// The training loop of one run.
pub struct Trainer {
    pub net: Network,
    pub config: Config,
    data: Dataset,
    shots: Vec<Example>,
    iteration: usize,
    memory: math::PromptMemory,
    best: math::BestDev,
    dev_history: Vec<DevPoint>,
    train_accuracy: Vec<f64>,
    usage_total: Vec<UsageEntry>,
    phase: Phase,
    current: Option<IterState>,
    /// The state at the start of the iteration in progress, with a person's edits applied: what
    /// a stop mid-iteration saves (the interrupted iteration reruns from the call cache).
    snapshot: TrainerState,
    /// A restored checkpoint's posterior edits, replayed at their boundaries of the rerun
    /// iteration.
    replay: Vec<HiddenEdit>,
    test_accuracy: Option<f64>,
    sink: Arc<dyn EventSink>,
}

fn push_usage(book: &mut Vec<UsageEntry>, layer: LayerIndex, operation: &str, u: Usage) {
    if u == Usage::default() {
        return;
    }
    match book
        .iter_mut()
        .find(|e| e.layer == layer && e.operation == operation)
    {
        Some(e) => e.usage.add(&u),
        None => book.push(UsageEntry {
            layer,
            operation: operation.to_string(),
            usage: u,
        }),
    }
}

impl Trainer {
    /// A fresh trainer at iteration 0.
    pub fn new(
        net: Network,
        config: Config,
        data: Dataset,
        sink: Arc<dyn EventSink>,
    ) -> Result<Trainer, DlnError> {
        check_data(&config, &data)?;
        let shots = if config.train.mode == Mode::KShot {
            let mut rng = ops::stream(config.train.seed, 0, "k_shot", 0, 0);
            let idx = draw_examples(
                &data,
                config.train.k_shot,
                config.train.class_balanced,
                &mut rng,
            );
            idx.into_iter().map(|i| data.train[i].clone()).collect()
        } else {
            Vec::new()
        };
        let prompts = net.prompts();
        let best = math::BestDev::new(prompts, config.train.patience());
        let mut t = Trainer {
            memory: math::PromptMemory::new(config.train.memory),
            net,
            data,
            shots,
            iteration: 0,
            best,
            dev_history: Vec::new(),
            train_accuracy: Vec::new(),
            usage_total: Vec::new(),
            phase: Phase::Start,
            current: None,
            snapshot: placeholder_state(),
            replay: Vec::new(),
            test_accuracy: None,
            sink,
            config,
        };
        t.snapshot = t.state();
        Ok(t)
    }

    /// A trainer continuing from a checkpoint's state.
    pub fn restore(
        mut net: Network,
        config: Config,
        data: Dataset,
        state: TrainerState,
        sink: Arc<dyn EventSink>,
    ) -> Result<Trainer, DlnError> {
        check_data(&config, &data)?;
        let k = net.layers.len();
        if state.prompts.len() != k {
            return Err(DlnError::Config(format!(
                "the checkpoint has {} layers but the config has {k}",
                state.prompts.len()
            )));
        }
        let base = config.base_dir();
        for (l, layer) in net.layers.iter_mut().enumerate() {
            layer.prompt = state.prompts[l].clone();
            layer.pinned = state.pinned.get(l).copied().unwrap_or(false);
        }
        for (l, edits) in state.edited_templates.iter().enumerate() {
            for (role, source) in edits {
                net.set_template(l, *role, source, &base)?;
            }
        }
        let phase = if !state.started {
            Phase::Start
        } else if config.train.mode != Mode::Dln || state.iteration >= config.train.iterations {
            Phase::Test
        } else {
            Phase::Iterating
        };
        let mut best = state.best_dev.clone();
        best.tolerance = config.train.patience();
        let mut memory = state.memory.clone();
        memory.capacity = config.train.memory;
        Ok(Trainer {
            replay: state.hidden_edits.clone(),
            net,
            data,
            shots: state.shots.clone(),
            iteration: state.iteration,
            memory,
            best,
            dev_history: state.dev_history.clone(),
            train_accuracy: state.train_accuracy.clone(),
            usage_total: state.usage.clone(),
            phase,
            current: None,
            snapshot: state,
            test_accuracy: None,
            sink,
            config,
        })
    }

    /// Completed iterations.
    pub fn iteration(&self) -> usize {
        self.iteration
    }

    pub fn data(&self) -> &Dataset {
        &self.data
    }

    /// The state to checkpoint now: after a completed iteration it is the current state; in the
    /// middle of one it is the iteration's start with a person's edits applied.
    pub fn checkpoint_state(&self) -> TrainerState {
        if self.current.is_some() {
            self.snapshot.clone()
        } else {
            self.state()
        }
    }

    fn state(&self) -> TrainerState {
        TrainerState {
            iteration: self.iteration,
            // Starting (the baseline dev evaluation) is the only stage before the phase moves on.
            started: self.phase != Phase::Start,
            prompts: self.net.prompts(),
            pinned: self.net.layers.iter().map(|l| l.pinned).collect(),
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
            usage: self.usage_total.clone(),
            train_accuracy: self.train_accuracy.clone(),
            hidden_edits: self.replay.clone(),
        }
    }

    /// Token usage so far, per layer and operation.
    pub fn usage(&self) -> &[UsageEntry] {
        &self.usage_total
    }

    /// The final figures (best-dev prompts, accuracies).
    pub fn outcome(&self) -> Outcome {
        Outcome {
            best_prompts: self.best_prompts(),
            final_prompts: self.net.prompts(),
            dev_accuracy: self.best.accuracy,
            test_accuracy: self.test_accuracy,
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

    fn emit(&self, e: Event) {
        self.sink.emit(e);
    }

    /// The sum of the counters of every distinct backend of the network.
    fn backend_usage(&self) -> Usage {
        let mut seen: Vec<*const ()> = Vec::new();
        let mut total = Usage::default();
        for l in &self.net.layers {
            for b in [&l.backends.forward, &l.backends.backward] {
                let p = Arc::as_ptr(b) as *const ();
                if !seen.contains(&p) {
                    seen.push(p);
                    total.add(&b.usage());
                }
            }
        }
        total
    }

    /// The usage of the iteration in progress, plus `pending` (the running stage's calls since
    /// `before`, not yet accounted): what stage events carry so clients show live totals.
    /// `None` outside an iteration (the baseline evaluation, the test).
    fn live_usage(&self, pending: Option<(LayerIndex, &str, Usage)>) -> Option<Vec<UsageEntry>> {
        let cur = self.current.as_ref()?;
        let mut usage = cur.usage.clone();
        if let Some((layer, operation, before)) = pending {
            push_usage(
                &mut usage,
                layer,
                operation,
                self.backend_usage().since(&before),
            );
        }
        Some(usage)
    }

    fn account(&mut self, layer: LayerIndex, operation: &str, before: Usage) {
        let u = self.backend_usage().since(&before);
        push_usage(&mut self.usage_total, layer, operation, u);
        if let Some(cur) = self.current.as_mut() {
            push_usage(&mut cur.usage, layer, operation, u);
        }
    }

    /// Whether layer `l`'s candidates are ranked by accuracy: asked for in the config, or forced
    /// because its backend gives no log-probabilities (ALGORITHM.md §2 step 4).
    fn accuracy_scoring(&self, l: LayerIndex) -> bool {
        self.config.train.scoring == Scoring::Accuracy
            || !self.net.layers[l].backends.forward.has_logprobs()
    }

    /// Re-applies a restored checkpoint's posterior edits that belong at this boundary.
    fn replay_edits(&mut self) {
        let Some(at) = self.current.as_ref().map(|c| c.done.len()) else {
            return;
        };
        let due: Vec<HiddenEdit> = self
            .replay
            .iter()
            .filter(|e| e.after_stages == at)
            .cloned()
            .collect();
        self.replay.retain(|e| e.after_stages != at);
        for e in due {
            if let Err(err) = self.try_apply(e.command.clone()) {
                self.emit(Event::CommandRejected {
                    command: e.command,
                    reason: format!("replaying a recorded edit: {err}"),
                });
            }
        }
    }

    /// Runs the next stage.
    pub async fn step(&mut self) -> Result<StepOutcome, DlnError> {
        match self.phase {
            Phase::Start => {
                let o = self.net.output();
                if self.config.train.scoring == Scoring::Logprob && self.accuracy_scoring(o) {
                    self.emit(Event::Warning {
                        message: format!(
                            "the backend of layer {o} gives no log-probabilities: candidates are \
                             ranked by batch accuracy (train.scoring = \"accuracy\")"
                        ),
                    });
                }
                let baseline = self.config.train.mode != Mode::Dln;
                if baseline || self.config.train.first_eval {
                    self.evaluate_dev(0).await?;
                }
                self.phase = if baseline {
                    Phase::Test
                } else {
                    Phase::Iterating
                };
                Ok(StepOutcome::Continue)
            }
            Phase::Iterating => {
                if self.current.is_none() {
                    if self.iteration >= self.config.train.iterations {
                        self.phase = Phase::Test;
                        return Ok(StepOutcome::Continue);
                    }
                    // A resumed iteration keeps its recorded edits until it completes again.
                    self.snapshot = self.state();
                    let k = self.net.layers.len();
                    self.current = Some(IterState {
                        iteration: self.iteration,
                        started: Instant::now(),
                        queue: VecDeque::from([StageId::Forward]),
                        done: Vec::new(),
                        pending_hidden: Vec::new(),
                        batch: Vec::new(),
                        fwd: ForwardResult::default(),
                        posteriors: vec![None; k],
                        candidates: vec![Vec::new(); k],
                        winners: vec![None; k],
                        elbo: vec![None; k],
                        usage: Vec::new(),
                    });
                }
                self.replay_edits();
                let next = self
                    .current
                    .as_mut()
                    .and_then(|c| c.queue.pop_front())
                    .unwrap_or(StageId::Finish);
                if let Some(c) = self.current.as_mut() {
                    c.done.push(next);
                }
                self.run_stage(next).await
            }
            Phase::Test => {
                self.run_test().await?;
                self.phase = Phase::Done;
                Ok(StepOutcome::Finished)
            }
            Phase::Done => Ok(StepOutcome::Finished),
        }
    }

    async fn run_stage(&mut self, stage: StageId) -> Result<StepOutcome, DlnError> {
        match stage {
            StageId::Forward => self.stage_forward().await?,
            StageId::PosteriorSampling(l) => self.stage_posterior(l).await?,
            StageId::Sharpening(l) => self.stage_sharpen(l).await?,
            StageId::Rescore(l) => self.stage_rescore(l).await?,
            StageId::Propose(l) => self.stage_propose(l).await?,
            StageId::Score(l) => self.stage_score(l).await?,
            StageId::Select(l) => self.stage_select(l),
            StageId::Evaluate => {
                let it = self.iteration;
                self.evaluate_dev(it).await?;
            }
            StageId::Finish => return Ok(self.finish_iteration()),
        }
        Ok(StepOutcome::Continue)
    }

    fn cur(&self) -> Result<&IterState, DlnError> {
        self.current
            .as_ref()
            .ok_or_else(|| DlnError::Command("no iteration in progress".into()))
    }

    fn cur_mut(&mut self) -> Result<&mut IterState, DlnError> {
        self.current
            .as_mut()
            .ok_or_else(|| DlnError::Command("no iteration in progress".into()))
    }

    // ---------------------------------------------------------------- forward

    /// The network's forward pass over `examples` with `prompts`, layer by layer.
    async fn forward_pass(
        &mut self,
        examples: &[Example],
        prompts: &[String],
        seed_iteration: usize,
        operation: &'static str,
        index_offset: usize,
    ) -> Result<ForwardResult, DlnError> {
        let k = self.net.layers.len();
        let seed = self.config.train.seed;
        let mut r = ForwardResult::default();
        for l in 0..k {
            let before = self.backend_usage();
            let layer = &self.net.layers[l];
            let inputs: Vec<String> = examples
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    ops::layer_input(
                        layer,
                        &e.input,
                        if l > 0 {
                            Some(r.hidden[l - 1][i].as_str())
                        } else {
                            None
                        },
                    )
                })
                .collect::<Result<_, _>>()?;
            let shots: &[Example] = if l + 1 == k { &self.shots } else { &[] };
            let contexts: Vec<String> = inputs
                .iter()
                .map(|u| ops::forward_context(layer, u, &prompts[l], shots))
                .collect::<Result<_, _>>()?;
            let seeds: Vec<u64> = (0..examples.len())
                .map(|i| call_seed(seed, seed_iteration, operation, l, index_offset + i))
                .collect();
            if l + 1 < k {
                let h = ops::generate_forward(layer, contexts, seeds).await?;
                r.hidden.push(h);
            } else {
                let p = ops::predict(layer, self.net.classes.as_ref(), contexts, seeds).await?;
                r.correct = p
                    .iter()
                    .zip(examples)
                    .map(|(p, e)| ops::accuracy_of(p, &e.target) > 0.5)
                    .collect();
                r.predictions = p;
            }
            r.inputs.push(inputs);
            self.account(l, operation, before);
        }
        Ok(r)
    }

    /// The minibatch of the iteration in progress, from the batch stream of this iteration
    /// alone: the same seed gives the same batches whatever else the run does.
    fn draw_batch(&self) -> Vec<Example> {
        let tc = &self.config.train;
        let mut rng = ops::stream(tc.seed, self.iteration, "batch", 0, 0);
        let idx = draw_examples(&self.data, tc.batch_size, tc.class_balanced, &mut rng);
        idx.into_iter()
            .map(|i| self.data.train[i].clone())
            .collect()
    }

    async fn stage_forward(&mut self) -> Result<(), DlnError> {
        let batch = self.draw_batch();
        let it = self.iteration;
        self.emit(Event::StageStarted {
            iteration: it,
            stage: Stage::Forward,
            layer: None,
            total: batch.len(),
            usage: self.live_usage(None),
        });
        let prompts = self.net.prompts();
        let fwd = self
            .forward_pass(&batch, &prompts, it, "forward", 0)
            .await?;
        let k = self.net.layers.len();
        let examples: Vec<ForwardExample> = batch
            .iter()
            .enumerate()
            .map(|(i, e)| ForwardExample {
                index: i,
                input: e.input.clone(),
                target: e.target.clone(),
                hidden: (0..k - 1).map(|l| fwd.hidden[l][i].clone()).collect(),
                prediction: fwd.predictions[i].clone(),
                correct: fwd.correct[i],
            })
            .collect();
        let accuracy = fwd.accuracy();
        self.emit(Event::ForwardDone {
            iteration: it,
            examples,
            accuracy,
            loss: 1.0 - accuracy,
        });
        let all_right = fwd.correct.iter().all(|c| *c);
        let o = self.net.output();
        let due = self.eval_due(it + 1);
        let cur = self.cur_mut()?;
        cur.batch = batch;
        cur.fwd = fwd;
        if all_right {
            // Every example right: the prompts stay (the reference skips the update).
        } else {
            for l in (1..=o).rev() {
                cur.queue.push_back(StageId::PosteriorSampling(l));
                cur.queue.push_back(StageId::Sharpening(l));
            }
            for l in (0..=o).rev() {
                cur.queue.push_back(StageId::Propose(l));
                cur.queue.push_back(StageId::Score(l));
                cur.queue.push_back(StageId::Select(l));
            }
        }
        if due {
            cur.queue.push_back(StageId::Evaluate);
        }
        cur.queue.push_back(StageId::Finish);
        if all_right {
            self.emit(Event::Warning {
                message: format!(
                    "iteration {it}: every example of the batch is right; the prompts stay"
                ),
            });
        }
        Ok(())
    }

    /// Dev evaluation after `completed` iterations: every `val_freq`, and after the last.
    fn eval_due(&self, completed: usize) -> bool {
        completed % self.config.train.val_freq == 0 || completed == self.config.train.iterations
    }

    // ---------------------------------------------------------------- posterior

    /// The target of the layer `l` above a hidden text for example `i`: `y` for the output
    /// layer, else the best posterior sample `h*` of the hidden text layer `l` writes.
    fn target_above(&self, cur: &IterState, l: LayerIndex, i: usize) -> String {
        if l == self.net.output() {
            return cur.batch[i].target.clone();
        }
        Self::best_hidden(cur, l + 1, i)
    }

    /// `h*` of example `i` for the hidden text below layer `l` (written by layer `l-1`): its
    /// best posterior sample once sharpened, else the forward pass's own text.
    fn best_hidden(cur: &IterState, l: LayerIndex, i: usize) -> String {
        cur.posteriors
            .get(l)
            .and_then(|p| p.as_ref())
            .and_then(|p| {
                let ex = p.examples.get(i)?;
                ex.best.map(|b| ex.samples[b].text.clone())
            })
            .unwrap_or_else(|| cur.fwd.hidden[l - 1][i].clone())
    }

    async fn stage_posterior(&mut self, l: LayerIndex) -> Result<(), DlnError> {
        let before = self.backend_usage();
        let it = self.iteration;
        let s_count = self.config.train.num_hidden_samples;
        let only_wrong = self.config.train.only_wrong_posterior;
        let seed = self.config.train.seed;
        let top_p = self.config.train.backward_top_p;
        let cur = self.cur()?;
        let b = cur.batch.len();
        self.emit(Event::StageStarted {
            iteration: it,
            stage: Stage::PosteriorSampling,
            layer: Some(l),
            total: b * s_count,
            usage: self.live_usage(None),
        });
        let layer = &self.net.layers[l];
        let below = &self.net.layers[l - 1];
        let q = layer.propose_hidden.as_ref().ok_or_else(|| {
            DlnError::Config(format!("layer {l} has no hidden-state proposal template"))
        })?;
        let mut requests = Vec::new();
        let mut owners = Vec::new();
        let mut examples = Vec::with_capacity(b);
        for i in 0..b {
            let target = self.target_above(cur, l, i);
            let h = cur.fwd.hidden[l - 1][i].clone();
            examples.push(PosteriorExample {
                index: i,
                input: cur.batch[i].input.clone(),
                target: target.clone(),
                hidden: h.clone(),
                correct: cur.fwd.correct[i],
                samples: vec![HiddenSample::unscored(h.clone(), SampleOrigin::Forward)],
                best: None,
                entropy: None,
            });
            if only_wrong && cur.fwd.correct[i] {
                continue;
            }
            for s in 0..s_count {
                let text = q.render(&json!({
                    "input": cur.fwd.inputs[l - 1][i],
                    "h": h,
                    "y": target,
                    "next_prompt": layer.prompt,
                    "message": q.message(s),
                    "prompt": below.prompt,
                }))?;
                requests.push(crate::llm::GenerateRequest {
                    prompt: q.prompt(text),
                    temperature: layer.backward_temperature,
                    top_p,
                    max_tokens: below.forward_max_tokens,
                    stop: q.stop.clone(),
                    seed: call_seed(seed, it, "posterior", l, i * s_count + s),
                    n: 1,
                });
                owners.push(i);
            }
        }
        let answers = ops::generate_backward(layer, "posterior", requests).await?;
        for (i, gens) in owners.into_iter().zip(answers) {
            for g in gens {
                let text = g.text.trim().to_string();
                if !text.is_empty() {
                    examples[i]
                        .samples
                        .push(HiddenSample::unscored(text, SampleOrigin::Posterior));
                }
            }
        }
        let cur = self.cur_mut()?;
        let pending: Vec<(usize, String)> = cur
            .pending_hidden
            .iter()
            .filter(|(pl, i, _)| *pl == l && *i < b)
            .map(|(_, i, t)| (*i, t.clone()))
            .collect();
        cur.pending_hidden.retain(|(pl, _, _)| *pl != l);
        for (i, text) in pending {
            examples[i]
                .samples
                .push(HiddenSample::unscored(text, SampleOrigin::Human));
        }
        self.emit(Event::PosteriorSampled {
            iteration: it,
            layer: l,
            examples: examples.clone(),
        });
        self.cur_mut()?.posteriors[l] = Some(Posterior {
            examples,
            sharpened: false,
        });
        self.account(l, "posterior", before);
        Ok(())
    }

    /// Fills in the sharpening terms of the listed samples `(example position, sample index)` of
    /// the posterior below layer `l`: `log p(target above | F(R(x, h̃); π_l))` and, when the
    /// prior is on, `log p(h̃ | F_h(x; π_{l-1}))`, and their sum `w̃`. The weights are left to
    /// [`reweigh`].
    async fn score_samples(
        &self,
        l: LayerIndex,
        examples: &mut [PosteriorExample],
        which: &[(usize, usize)],
    ) -> Result<(), DlnError> {
        let it = self.iteration;
        let o = self.net.output();
        let burn_in = self.config.train.burn_in;
        let include_prior = self.config.train.include_prior;
        let accuracy_scoring = l == o && self.accuracy_scoring(l);
        let seed = self.config.train.seed;
        let cur = self.cur()?;
        let layer = &self.net.layers[l];
        let below = &self.net.layers[l - 1];
        // A sample's seed index is its position in the whole posterior, so scoring a sample
        // later (a person's) asks what scoring it with the others would have asked.
        let mut offsets = Vec::with_capacity(examples.len());
        let mut at = 0;
        for ex in examples.iter() {
            offsets.push(at);
            at += ex.samples.len();
        }
        let shots: &[Example] = if l == o { &self.shots } else { &[] };
        let mut ll_pairs = Vec::with_capacity(which.len());
        let mut prior_pairs = Vec::with_capacity(which.len());
        let mut seeds = Vec::with_capacity(which.len());
        for &(e, s) in which {
            let ex = &examples[e];
            let i = ex.index;
            let text = &ex.samples[s].text;
            let u = ops::layer_input(layer, &cur.batch[i].input, Some(text))?;
            ll_pairs.push((
                ops::forward_context(layer, &u, &layer.prompt, shots)?,
                ex.target.clone(),
            ));
            let below_ctx =
                ops::forward_context(below, &cur.fwd.inputs[l - 1][i], &below.prompt, &[])?;
            prior_pairs.push((below_ctx, text.clone()));
            seeds.push(call_seed(seed, it, "sharpen", l, offsets[e] + s));
        }
        let ll = if accuracy_scoring {
            ops::prediction_accuracies(layer, self.net.classes.as_ref(), ll_pairs, seeds).await?
        } else if l == o {
            ops::output_logprobs(
                layer,
                self.net.classes.as_ref(),
                "sharpen",
                ll_pairs,
                burn_in,
            )
            .await?
            .0
        } else {
            ops::text_logprobs(layer, "sharpen", ll_pairs, burn_in).await?
        };
        let prior = if include_prior {
            Some(ops::text_logprobs(below, "sharpen", prior_pairs, burn_in).await?)
        } else {
            None
        };
        for (j, &(e, s)) in which.iter().enumerate() {
            let sm = &mut examples[e].samples[s];
            let p = prior.as_ref().map(|p| p[j]);
            sm.log_likelihood = Some(ll[j]);
            sm.log_prior = p;
            sm.log_weight = Some(ll[j] + p.unwrap_or(0.0));
        }
        Ok(())
    }

    async fn stage_sharpen(&mut self, l: LayerIndex) -> Result<(), DlnError> {
        let post = self.cur()?.posteriors[l]
            .clone()
            .ok_or_else(|| DlnError::Command(format!("no posterior samples for layer {l}")))?;
        let which: Vec<(usize, usize)> = post
            .examples
            .iter()
            .enumerate()
            .flat_map(|(e, ex)| (0..ex.samples.len()).map(move |s| (e, s)))
            .collect();
        self.sharpen(l, post.examples, &which).await
    }

    /// Scores the hidden texts a person added after sharpening (exactly as sharpening scored
    /// the others), re-normalizes their examples' weights and picks `h*` again.
    async fn stage_rescore(&mut self, l: LayerIndex) -> Result<(), DlnError> {
        let Some(post) = self.cur()?.posteriors[l].clone() else {
            return Ok(());
        };
        let which: Vec<(usize, usize)> = post
            .examples
            .iter()
            .enumerate()
            .flat_map(|(e, ex)| {
                ex.samples
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.log_weight.is_none())
                    .map(move |(s, _)| (e, s))
            })
            .collect();
        if which.is_empty() {
            return Ok(());
        }
        self.sharpen(l, post.examples, &which).await
    }

    /// The Sharpening stage over the listed samples `(example position, sample index)` of the
    /// posterior below layer `l`: scores them, re-normalizes the weights of their examples and
    /// stores the posterior as sharpened. (Every example holds at least its forward sample, so
    /// listing every sample re-normalizes every example.)
    async fn sharpen(
        &mut self,
        l: LayerIndex,
        mut examples: Vec<PosteriorExample>,
        which: &[(usize, usize)],
    ) -> Result<(), DlnError> {
        let before = self.backend_usage();
        let it = self.iteration;
        self.emit(Event::StageStarted {
            iteration: it,
            stage: Stage::Sharpening,
            layer: Some(l),
            total: which.len(),
            usage: self.live_usage(None),
        });
        self.score_samples(l, &mut examples, which).await?;
        let temperature = self.config.train.posterior_temperature;
        let own_eligible = !self.config.train.exclude_wrong_hidden;
        let mut touched: Vec<usize> = which.iter().map(|(e, _)| *e).collect();
        touched.dedup();
        for e in touched {
            reweigh(&mut examples[e], temperature, own_eligible);
        }
        self.emit(Event::Sharpened {
            iteration: it,
            layer: l,
            examples: examples.clone(),
        });
        self.cur_mut()?.posteriors[l] = Some(Posterior {
            examples,
            sharpened: true,
        });
        self.account(l, "sharpen", before);
        Ok(())
    }

    // ---------------------------------------------------------------- prompt updates

    /// What the proposer of layer `l` is shown about example `i`: for the output layer its
    /// answer `ŷ_i` and the target `y_i`, right or wrong by the loss; for a hidden layer its own
    /// text `h_i` as its output and `h*_i` as the correct output (ALGORITHM.md §3 step 5),
    /// right exactly when `h*_i` is `h_i`.
    fn backward_info(&self, cur: &IterState, l: LayerIndex, i: usize) -> serde_json::Value {
        let o = self.net.output();
        let h = if l > 0 {
            cur.fwd.hidden[l - 1][i].clone()
        } else {
            String::new()
        };
        let (prediction, target, correct) = if l == o {
            (
                cur.fwd.predictions[i].clone(),
                cur.batch[i].target.clone(),
                cur.fwd.correct[i],
            )
        } else {
            let own = cur.fwd.hidden[l][i].clone();
            let best = Self::best_hidden(cur, l + 1, i);
            let same = best.trim() == own.trim();
            (own, best, same)
        };
        // The input is `x` itself and the hidden text below is `h` (rather than `R(x, h)`, which
        // would show the proposer the same thoughts twice).
        json!({
            "input": cur.batch[i].input,
            "h": h,
            "prediction": prediction,
            "output": prediction,
            "target": target,
            "loss": if correct { 0.0 } else { 1.0 },
            "correct": correct,
        })
    }

    /// The batch positions layer `l`'s proposer may be shown. A hidden layer's examples whose
    /// final answer was wrong but whose best hidden text is the layer's own (`h*_i = h_i`) teach
    /// nothing (no better text is known, and calling the text that led to an error "right"
    /// would mislead): they are left out.
    fn proposable(&self, cur: &IterState, l: LayerIndex) -> Vec<usize> {
        let b = cur.batch.len();
        if l == self.net.output() {
            return (0..b).collect();
        }
        (0..b)
            .filter(|&i| {
                cur.fwd.correct[i]
                    || Self::best_hidden(cur, l + 1, i).trim() != cur.fwd.hidden[l][i].trim()
            })
            .collect()
    }

    /// Proposal request `j` of layer `l`: its own held-out half of the eligible examples and its
    /// own shuffle (streams derived from the seed, the iteration, the layer and `j`), message
    /// alternative `j mod len`. Shown examples are dropped from the end until the prompt and the
    /// answer fit the backward model's context; returns how many were dropped.
    async fn proposal_request(
        &self,
        l: LayerIndex,
        j: usize,
        eligible: &[usize],
    ) -> Result<(crate::llm::GenerateRequest, usize), DlnError> {
        let tc = &self.config.train;
        let it = self.iteration;
        let cur = self.cur()?;
        let mut held = ops::stream(tc.seed, it, "held_out", l, j);
        let mut shown: Vec<usize> =
            math::proposer_subset(eligible.len(), tc.held_out_ranking, &mut held)
                .into_iter()
                .map(|k| eligible[k])
                .collect();
        shown.shuffle(&mut ops::stream(tc.seed, it, "shuffle", l, j));
        let infos: Vec<serde_json::Value> = shown
            .iter()
            .map(|i| self.backward_info(cur, l, *i))
            .collect();
        let layer = &self.net.layers[l];
        let next_prompt = self
            .net
            .layers
            .get(l + 1)
            .map(|n| n.prompt.clone())
            .unwrap_or_default();
        let t = &layer.propose_prompt;
        let backend = &layer.backends.backward;
        let room = backend.context_size();
        let mut keep = infos.len();
        loop {
            let text = t.render(&json!({
                "prompt": layer.prompt,
                "backward_infos": &infos[..keep],
                "message": t.message(j),
                "next_prompt": next_prompt,
            }))?;
            let prompt = t.prompt(text);
            let fits = room == 0 || {
                let needed = prompt_tokens(backend.as_ref(), &prompt).await
                    + layer.backward_max_tokens as usize;
                needed <= room
            };
            if fits || keep == 0 {
                let request = crate::llm::GenerateRequest {
                    prompt,
                    temperature: layer.backward_temperature,
                    top_p: tc.backward_top_p,
                    max_tokens: layer.backward_max_tokens,
                    stop: t.stop.clone(),
                    seed: call_seed(tc.seed, it, "propose", l, j),
                    n: 1,
                };
                return Ok((request, infos.len() - keep));
            }
            keep -= 1;
        }
    }

    async fn stage_propose(&mut self, l: LayerIndex) -> Result<(), DlnError> {
        if !self.net.layers[l].updatable() {
            return Ok(());
        }
        let before = self.backend_usage();
        let it = self.iteration;
        let n = self.config.train.num_candidates.saturating_sub(1);
        let rounds = self.config.train.proposal_rounds.max(1);
        self.emit(Event::StageStarted {
            iteration: it,
            stage: Stage::Propose,
            layer: Some(l),
            total: n,
            usage: self.live_usage(None),
        });
        let current = self.net.layers[l].prompt.clone();
        let mut candidates = vec![candidate(current.clone(), CandidateOrigin::Current)];
        let mut keys = vec![proposal_key(&current)];
        let mut rejected: Vec<RejectedProposal> = Vec::new();
        let mut drawn = 0;
        let mut dropped = 0;
        let eligible = self.proposable(self.cur()?, l);
        if eligible.is_empty() && n > 0 {
            self.emit(Event::Warning {
                message: format!(
                    "iteration {it}, layer {l}: no example has a better hidden text than the layer's own, so there is \
                     nothing to show the proposer; no proposals this update"
                ),
            });
        }
        // Rejected proposals are replaced by new draws (new seeds, new held-out halves), for at
        // most `rounds` rounds, until N−1 distinct proposals parse.
        for _ in 0..rounds {
            let need = n + 1 - candidates.len();
            if need == 0 || eligible.is_empty() {
                break;
            }
            let mut requests = Vec::with_capacity(need);
            for j in drawn..drawn + need {
                let (r, d) = self.proposal_request(l, j, &eligible).await?;
                dropped = dropped.max(d);
                requests.push(r);
            }
            drawn += need;
            let layer = &self.net.layers[l];
            let answers = ops::generate_backward(layer, "propose", requests).await?;
            for g in answers.into_iter().flatten() {
                let parsed = read_proposal(&g.text, &current).and_then(|p| {
                    let key = proposal_key(&p);
                    if keys.contains(&key) {
                        Err(Rejection::Duplicate)
                    } else {
                        keys.push(key);
                        Ok(p)
                    }
                });
                match parsed {
                    Ok(p) => candidates.push(candidate(p, CandidateOrigin::Proposed)),
                    Err(reason) => rejected.push(RejectedProposal {
                        text: g.text,
                        reason,
                    }),
                }
            }
        }
        for p in self.memory.layer_prompts(l) {
            let key = proposal_key(&p);
            if !keys.contains(&key) {
                keys.push(key);
                candidates.push(candidate(p, CandidateOrigin::Memory));
            }
        }
        if dropped > 0 {
            self.emit(Event::Warning {
                message: format!(
                    "iteration {it}, layer {l}: up to {dropped} shown examples were left out of proposal prompts so \
                     that they fit the backward model's context"
                ),
            });
        }
        if !rejected.is_empty() {
            let mut reasons: Vec<String> = Vec::new();
            for r in [
                Rejection::Empty,
                Rejection::Echo,
                Rejection::Meta,
                Rejection::Duplicate,
            ] {
                let c = rejected.iter().filter(|x| x.reason == r).count();
                if c > 0 {
                    reasons.push(format!("{c} {}", r.name()));
                }
            }
            let proposed = candidates
                .iter()
                .filter(|c| c.origin == CandidateOrigin::Proposed)
                .count();
            self.emit(Event::Warning {
                message: format!(
                    "iteration {it}, layer {l}: {} of {drawn} proposals drawn were rejected ({}); {proposed} of {n} \
                     candidates proposed",
                    rejected.len(),
                    reasons.join(", ")
                ),
            });
        }
        self.emit(Event::CandidatesProposed {
            iteration: it,
            layer: l,
            candidates: candidates.clone(),
            drawn,
            rejected,
            examples_dropped: dropped,
        });
        self.cur_mut()?.candidates[l] = candidates;
        self.account(l, "propose", before);
        Ok(())
    }

    /// Samples and weights of the hidden text below layer `l` for every example (a single
    /// weight-1 "sample" per example when the layer reads `x` directly).
    fn samples_below(cur: &IterState, l: LayerIndex) -> Vec<(Vec<Option<String>>, Vec<f64>)> {
        match cur.posteriors.get(l).and_then(|p| p.as_ref()) {
            Some(p) if l > 0 => p
                .examples
                .iter()
                .map(|ex| {
                    let texts = ex.samples.iter().map(|s| Some(s.text.clone())).collect();
                    let w = ex.samples.iter().map(|s| s.weight.unwrap_or(0.0)).collect();
                    (texts, w)
                })
                .collect(),
            _ => (0..cur.batch.len())
                .map(|i| {
                    let below = if l > 0 {
                        Some(cur.fwd.hidden[l - 1][i].clone())
                    } else {
                        None
                    };
                    (vec![below], vec![1.0])
                })
                .collect(),
        }
    }

    async fn stage_score(&mut self, l: LayerIndex) -> Result<(), DlnError> {
        // A layer that is not updated (pinned, or fixed by the config) still has its ELBO term
        // computed for the current prompt alone: the ELBO shown is the sum over every layer.
        let fixed = !self.net.layers[l].updatable();
        if !fixed && self.cur()?.candidates[l].is_empty() {
            return Ok(());
        }
        let before = self.backend_usage();
        let it = self.iteration;
        let o = self.net.output();
        let tc = self.config.train.clone();
        let cur = self.cur()?;
        let mut candidates = if fixed {
            vec![candidate(
                self.net.layers[l].prompt.clone(),
                CandidateOrigin::Current,
            )]
        } else {
            cur.candidates[l].clone()
        };
        // Each candidate's ELBO term before the trust region or the log-p penalty.
        let mut elbos = vec![f64::NAN; candidates.len()];
        let nc = candidates.len();
        self.emit(Event::StageStarted {
            iteration: it,
            stage: Stage::Score,
            layer: Some(l),
            total: nc,
            usage: self.live_usage(None),
        });
        let layer = self.net.layers[l].clone();
        let classes = self.net.classes.clone();
        let accuracy_scoring = self.accuracy_scoring(l);
        let b = cur.batch.len();
        let mut kl_dists: Vec<Vec<Vec<f64>>> = Vec::new();
        if l == o {
            let below = Self::samples_below(cur, l);
            let weights: Vec<Vec<f64>> = below.iter().map(|(_, w)| w.clone()).collect();
            let shots = self.shots.clone();
            let batch = cur.batch.clone();
            let fwd_inputs = cur.fwd.inputs[l].clone();
            for (c, cand) in candidates.iter_mut().enumerate() {
                let mut pairs = Vec::new();
                let mut shape = Vec::with_capacity(b);
                for (i, (texts, _)) in below.iter().enumerate() {
                    shape.push(texts.len());
                    for h in texts {
                        let u = ops::layer_input(&layer, &batch[i].input, h.as_deref())?;
                        pairs.push((
                            ops::forward_context(&layer, &u, &cand.prompt, &shots)?,
                            batch[i].target.clone(),
                        ));
                    }
                }
                let values = if accuracy_scoring {
                    let seeds = (0..pairs.len())
                        .map(|j| call_seed(tc.seed, it, "score", c, j))
                        .collect();
                    ops::prediction_accuracies(&layer, classes.as_ref(), pairs, seeds).await?
                } else {
                    ops::output_logprobs(&layer, classes.as_ref(), "score", pairs, tc.burn_in)
                        .await?
                        .0
                };
                let ll = reshape(&values, &shape);
                let mut score = math::weighted_elbo(&ll, &weights);
                elbos[c] = score;
                if tc.trust_factor > 0.0 {
                    if let Some(cl) = classes.as_ref() {
                        let contexts: Vec<String> = fwd_inputs
                            .iter()
                            .map(|u| ops::forward_context(&layer, u, &cand.prompt, &shots))
                            .collect::<Result<_, _>>()?;
                        let d = ops::classify(&layer, cl, contexts).await?;
                        kl_dists.push(d.into_iter().map(|d| d.probs).collect());
                        let kl = math::mean_kl(&kl_dists[0], &kl_dists[c]);
                        cand.kl = Some(kl);
                        score -= tc.trust_factor * kl;
                    }
                }
                cand.score = Some(score);
                self.emit(Event::StageProgress {
                    iteration: it,
                    stage: Stage::Score,
                    done: c + 1,
                    total: nc,
                    usage: self.live_usage(Some((l, "score", before))),
                });
            }
        } else {
            // A hidden layer: its own ELBO term over the posterior samples of the text it writes.
            let post = cur
                .posteriors
                .get(l + 1)
                .and_then(|p| p.clone())
                .ok_or_else(|| {
                    DlnError::Command(format!("no posterior for the hidden text of layer {l}"))
                })?;
            let weights: Vec<Vec<f64>> = post
                .examples
                .iter()
                .map(|e| e.samples.iter().map(|s| s.weight.unwrap_or(0.0)).collect())
                .collect();
            let shape: Vec<usize> = post.examples.iter().map(|e| e.samples.len()).collect();
            let inputs = cur.fwd.inputs[l].clone();
            let wrong: Vec<usize> = (0..b).filter(|i| !cur.fwd.correct[*i]).collect();
            let penalty =
                math::logp_penalty_at(tc.logp_penalty, it, tc.iterations, tc.decay_logp_penalty);
            for (c, cand) in candidates.iter_mut().enumerate() {
                let mut pairs = Vec::new();
                for ex in &post.examples {
                    let ctx = ops::forward_context(&layer, &inputs[ex.index], &cand.prompt, &[])?;
                    for s in &ex.samples {
                        pairs.push((ctx.clone(), s.text.clone()));
                    }
                }
                let values = ops::text_logprobs(&layer, "score", pairs, tc.burn_in).await?;
                let ll = reshape(&values, &shape);
                let elbo = math::weighted_elbo(&ll, &weights);
                // Sample 0 of every example is the forward pass's own hidden text.
                let wrong_lp: Vec<f64> = wrong.iter().map(|i| ll[*i][0]).collect();
                elbos[c] = elbo;
                cand.score = Some(math::apply_logp_penalty(elbo, penalty, &wrong_lp));
                self.emit(Event::StageProgress {
                    iteration: it,
                    stage: Stage::Score,
                    done: c + 1,
                    total: nc,
                    usage: self.live_usage(Some((l, "score", before))),
                });
            }
        }
        let scores: Vec<f64> = candidates
            .iter()
            .map(|c| c.score.unwrap_or(f64::NEG_INFINITY))
            .collect();
        let winner = math::argmax(&scores).unwrap_or(0);
        self.emit(Event::CandidatesScored {
            iteration: it,
            layer: l,
            candidates: candidates.clone(),
            winner,
        });
        let cur = self.cur_mut()?;
        cur.candidates[l] = candidates;
        cur.winners[l] = Some(winner);
        cur.elbo[l] = elbos.get(winner).copied().filter(|e| !e.is_nan());
        self.account(l, "score", before);
        Ok(())
    }

    fn stage_select(&mut self, l: LayerIndex) {
        let it = self.iteration;
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        let Some(w) = cur.winners[l] else { return };
        let Some(c) = cur.candidates[l].get(w).cloned() else {
            return;
        };
        if !self.net.layers[l].updatable() {
            // Pinned between scoring and selection: the person's prompt stays.
            return;
        }
        let previous = std::mem::replace(&mut self.net.layers[l].prompt, c.prompt.clone());
        self.emit(Event::StageStarted {
            iteration: it,
            stage: Stage::Select,
            layer: Some(l),
            total: 1,
            usage: self.live_usage(None),
        });
        self.emit(Event::PromptSelected {
            iteration: it,
            layer: l,
            prompt: c.prompt,
            previous,
        });
    }

    fn finish_iteration(&mut self) -> StepOutcome {
        let Some(cur) = self.current.take() else {
            return StepOutcome::Continue;
        };
        self.replay.clear();
        let it = cur.iteration;
        let acc = cur.fwd.accuracy();
        let elbo = if cur.elbo.iter().any(|e| e.is_some()) {
            let total = cur.elbo.iter().flatten().sum();
            self.emit(Event::Elbo {
                iteration: it,
                terms: cur.elbo.clone(),
                total,
            });
            Some(total)
        } else {
            None
        };
        self.train_accuracy.push(acc);
        self.iteration += 1;
        self.emit(Event::IterationDone {
            iteration: it,
            train_accuracy: acc,
            elbo,
            usage: cur.usage,
            elapsed_ms: cur.started.elapsed().as_millis() as u64,
        });
        StepOutcome::IterationDone
    }

    // ---------------------------------------------------------------- evaluation

    /// Accuracy of `prompts` on `examples`, in chunks with progress events.
    pub async fn accuracy_on(
        &mut self,
        examples: &[Example],
        prompts: &[String],
        stage: Stage,
        iteration: usize,
    ) -> Result<f64, DlnError> {
        if examples.is_empty() {
            return Ok(0.0);
        }
        let operation = if stage == Stage::Test {
            "test"
        } else {
            "evaluate"
        };
        self.emit(Event::StageStarted {
            iteration,
            stage,
            layer: None,
            total: examples.len(),
            usage: self.live_usage(None),
        });
        let mut right = 0usize;
        for (c, chunk) in examples.chunks(EVAL_CHUNK).enumerate() {
            let r = self
                .forward_pass(chunk, prompts, 0, operation, c * EVAL_CHUNK)
                .await?;
            right += r.correct.iter().filter(|c| **c).count();
            let done = (c * EVAL_CHUNK + chunk.len()).min(examples.len());
            self.emit(Event::StageProgress {
                iteration,
                stage,
                done,
                total: examples.len(),
                usage: self.live_usage(None),
            });
        }
        Ok(right as f64 / examples.len() as f64)
    }

    /// The network's answers to `examples` with `prompts`: every layer's text and the
    /// prediction, as the test split is answered (same seeds, same chunks), for `dln predict`.
    pub async fn answers(
        &mut self,
        examples: &[Example],
        prompts: &[String],
    ) -> Result<Vec<ForwardExample>, DlnError> {
        let mut out = Vec::with_capacity(examples.len());
        for (c, chunk) in examples.chunks(EVAL_CHUNK).enumerate() {
            let r = self
                .forward_pass(chunk, prompts, 0, "test", c * EVAL_CHUNK)
                .await?;
            for (i, e) in chunk.iter().enumerate() {
                out.push(ForwardExample {
                    index: c * EVAL_CHUNK + i,
                    input: e.input.clone(),
                    target: e.target.clone(),
                    hidden: r.hidden.iter().map(|h| h[i].clone()).collect(),
                    prediction: r.predictions[i].clone(),
                    correct: r.correct[i],
                });
            }
        }
        Ok(out)
    }

    async fn evaluate_dev(&mut self, iteration: usize) -> Result<(), DlnError> {
        if self.data.dev.is_empty() {
            return Ok(());
        }
        let prompts = self.net.prompts();
        let dev = self.data.dev.clone();
        let acc = self
            .accuracy_on(&dev, &prompts, Stage::Evaluate, iteration)
            .await?;
        let outcome = self.best.observe(acc, &prompts);
        // The memory keeps the M best-dev prompt sets seen so far, not only the improvements:
        // a prompt set below the best can still be among the M best.
        self.memory.add(prompts.clone(), acc);
        self.dev_history.push(DevPoint {
            iteration,
            accuracy: acc,
            prompts,
        });
        self.emit(Event::Evaluated {
            iteration,
            split: "dev".into(),
            accuracy: acc,
            best_so_far: outcome.improved,
        });
        if outcome.reset {
            for (l, p) in self.best.prompts.clone().into_iter().enumerate() {
                if let Some(layer) = self.net.layers.get_mut(l) {
                    if !layer.pinned {
                        layer.prompt = p;
                    }
                }
            }
            self.emit(Event::PatienceReset {
                iteration,
                prompts: self.net.prompts(),
            });
        }
        Ok(())
    }

    async fn run_test(&mut self) -> Result<(), DlnError> {
        let prompts = self.best_prompts();
        let test = self.data.test.clone();
        let it = self.iteration;
        let acc = if test.is_empty() {
            None
        } else {
            Some(self.accuracy_on(&test, &prompts, Stage::Test, it).await?)
        };
        if let Some(a) = acc {
            self.emit(Event::Evaluated {
                iteration: it,
                split: "test".into(),
                accuracy: a,
                best_so_far: false,
            });
        }
        self.test_accuracy = acc;
        self.emit(Event::RunFinished {
            best_prompts: prompts,
            dev_accuracy: self.best.accuracy,
            test_accuracy: acc,
            stopped_early: false,
        });
        Ok(())
    }

    // ---------------------------------------------------------------- commands

    /// Applies a person's command (all but pause/resume/step/stop, which belong to the driver).
    /// A command that cannot apply is an `Error` event; the run goes on unchanged. An edit of a
    /// posterior is recorded with its stage boundary, so a stop and resume replays it there.
    pub fn apply(&mut self, command: Command) {
        let edit = matches!(
            command,
            Command::AddHidden { .. } | Command::ExcludeSample { .. }
        );
        let at = self.current.as_ref().map(|c| c.done.len());
        match self.try_apply(command.clone()) {
            Ok(()) => {
                if let (true, Some(after_stages)) = (edit, at) {
                    self.snapshot.hidden_edits.push(HiddenEdit {
                        after_stages,
                        command,
                    });
                }
            }
            Err(e) => self.emit(Event::CommandRejected {
                command,
                reason: e.to_string(),
            }),
        }
    }

    /// Whether the posterior of the hidden text below layer `l` (written by layer `l-1`) can
    /// still take a person's edit: from the forward pass of the iteration until the last prompt
    /// update that reads its weights (layer `l-1`'s scoring). Returns notes on what already used
    /// the previous weights; an error once the batch has moved on.
    fn posterior_window(&self, l: LayerIndex) -> Result<Vec<String>, DlnError> {
        let it = self.iteration;
        let Some(cur) = self.current.as_ref() else {
            return Err(DlnError::Command(if it == 0 {
                "no batch has been drawn yet: a hidden text applies to the batch of the iteration in progress"
                    .to_string()
            } else {
                format!(
                    "the batch has moved on: iteration {} and its prompt updates are done, so the edit applies to \
                     nothing (pause after sharpening to edit the posterior of the batch in progress)",
                    it - 1
                )
            }));
        };
        let has = |s: StageId| cur.done.contains(&s) || cur.queue.contains(&s);
        if !has(StageId::PosteriorSampling(l)) {
            return Err(DlnError::Command(format!(
                "iteration {it} has no posterior for the hidden text below layer {l}: every example of its batch \
                 was right, so the prompts stay"
            )));
        }
        if cur.done.contains(&StageId::Score(l - 1)) {
            return Err(DlnError::Command(format!(
                "the batch has moved on: layer {}'s prompt update of iteration {it} has already used the weights \
                 of this posterior, so the edit applies to nothing",
                l - 1
            )));
        }
        let mut notes = Vec::new();
        if cur.done.contains(&StageId::Score(l)) {
            notes.push(format!(
                "iteration {it}: layer {l}'s candidates were already scored with the previous weights; the edit \
                 counts for layer {}'s update only",
                l - 1
            ));
        }
        if l >= 2 && cur.done.contains(&StageId::PosteriorSampling(l - 1)) {
            notes.push(format!(
                "iteration {it}: the posterior of the hidden text below layer {} was already drawn toward the \
                 previous best sample h*",
                l - 1
            ));
        }
        Ok(notes)
    }

    fn layer_checked(&self, layer: LayerIndex) -> Result<(), DlnError> {
        if layer >= self.net.layers.len() {
            return Err(DlnError::Command(format!(
                "there is no layer {layer} (the network has {})",
                self.net.layers.len()
            )));
        }
        Ok(())
    }

    fn try_apply(&mut self, command: Command) -> Result<(), DlnError> {
        match command {
            Command::Pin { layer, prompt } => {
                self.layer_checked(layer)?;
                self.net.layers[layer].prompt = prompt.clone();
                self.net.layers[layer].pinned = true;
                self.snapshot.prompts[layer] = prompt.clone();
                self.snapshot.pinned[layer] = true;
                self.emit(Event::PromptPinned { layer, prompt });
            }
            Command::Unpin { layer } => {
                self.layer_checked(layer)?;
                self.net.layers[layer].pinned = false;
                self.snapshot.pinned[layer] = false;
                self.emit(Event::PromptUnpinned { layer });
            }
            Command::SetPrompt { layer, prompt } => {
                self.layer_checked(layer)?;
                self.net.layers[layer].prompt = prompt.clone();
                self.snapshot.prompts[layer] = prompt.clone();
                self.emit(Event::PromptReplaced { layer, prompt });
            }
            Command::SetTemplate {
                layer,
                role,
                source,
            } => {
                let base = self.config.base_dir();
                self.net.set_template(layer, role, &source, &base)?;
                let edits = self.net.layers[layer].edited_templates.clone();
                if let Some(s) = self.snapshot.edited_templates.get_mut(layer) {
                    *s = edits;
                }
                self.emit(Event::TemplateReplaced {
                    layer,
                    role,
                    source,
                });
            }
            Command::AddHidden {
                layer,
                example,
                text,
            } => {
                self.layer_checked(layer)?;
                if layer == 0 {
                    return Err(DlnError::Command(
                        "layer 0 reads the input directly: there is no hidden text below it".into(),
                    ));
                }
                if text.trim().is_empty() {
                    return Err(DlnError::Command("a hidden text cannot be empty".into()));
                }
                let notes = self.posterior_window(layer)?;
                let cur = self.cur_mut()?;
                if example >= cur.batch.len() {
                    return Err(DlnError::Command(format!(
                        "there is no example {example} in the current batch (it has {})",
                        cur.batch.len()
                    )));
                }
                match cur.posteriors[layer].as_mut() {
                    // Not sampled yet: it joins the samples when they are drawn.
                    None => cur.pending_hidden.push((layer, example, text.clone())),
                    Some(p) => {
                        p.examples[example]
                            .samples
                            .push(HiddenSample::unscored(text.clone(), SampleOrigin::Human));
                        // Already sharpened: score it like the others before anything uses
                        // the weights again.
                        if p.sharpened && cur.queue.front() != Some(&StageId::Rescore(layer)) {
                            cur.queue.push_front(StageId::Rescore(layer));
                        }
                    }
                }
                self.emit(Event::HiddenAdded {
                    layer,
                    example,
                    text,
                });
                for message in notes {
                    self.emit(Event::Warning { message });
                }
            }
            Command::ExcludeSample {
                layer,
                example,
                sample,
            } => {
                self.layer_checked(layer)?;
                let notes = self.posterior_window(layer)?;
                let it = self.iteration;
                let temperature = self.config.train.posterior_temperature;
                let own_eligible = !self.config.train.exclude_wrong_hidden;
                let p = self
                    .current
                    .as_mut()
                    .and_then(|c| c.posteriors.get_mut(layer).and_then(|p| p.as_mut()))
                    .ok_or_else(|| {
                        DlnError::Command(format!(
                            "layer {layer} has no posterior samples yet this iteration"
                        ))
                    })?;
                let ex = p.examples.get_mut(example).ok_or_else(|| {
                    DlnError::Command(format!(
                        "there is no example {example} in the current batch"
                    ))
                })?;
                let s = ex.samples.get_mut(sample).ok_or_else(|| {
                    DlnError::Command(format!("example {example} has no sample {sample}"))
                })?;
                s.excluded = true;
                let resharpen = p.sharpened;
                if resharpen {
                    // The terms are known: only the normalization and h* change.
                    if let Some(ex) = p.examples.get_mut(example) {
                        reweigh(ex, temperature, own_eligible);
                    }
                }
                let examples = p.examples.clone();
                self.emit(Event::SampleExcluded {
                    layer,
                    example,
                    sample,
                });
                if resharpen {
                    self.emit(Event::Sharpened {
                        iteration: it,
                        layer,
                        examples,
                    });
                }
                for message in notes {
                    self.emit(Event::Warning { message });
                }
            }
            Command::Pause | Command::Resume | Command::Step | Command::Stop => {}
        }
        Ok(())
    }
}

/// Normalizes one example's sample weights from their log-weights, and picks `h*`. Without
/// `own_eligible`, the forward pass's own text (sample 0) of an example the network got wrong
/// takes no weight and cannot be `h*` while another sample can.
fn reweigh(ex: &mut PosteriorExample, temperature: f64, own_eligible: bool) {
    let lw: Vec<f64> = ex
        .samples
        .iter()
        .map(|s| s.log_weight.unwrap_or(f64::NEG_INFINITY))
        .collect();
    let mut excluded: Vec<bool> = ex.samples.iter().map(|s| s.excluded).collect();
    let others = excluded.iter().skip(1).any(|e| !e);
    if !own_eligible && !ex.correct && others {
        if let Some(own) = excluded.first_mut() {
            *own = true;
        }
    }
    let w = math::sharpen(&lw, &excluded, temperature);
    let live = excluded.iter().filter(|e| !**e).count();
    ex.entropy = Some(math::normalized_entropy(&w, live));
    let masked: Vec<f64> = w
        .iter()
        .zip(&excluded)
        .map(|(w, e)| if *e { f64::NAN } else { *w })
        .collect();
    ex.best = math::argmax(&masked);
    for (s, w) in ex.samples.iter_mut().zip(w) {
        s.weight = Some(w);
    }
}

/// A candidate prompt not scored yet.
fn candidate(prompt: String, origin: CandidateOrigin) -> Candidate {
    Candidate {
        prompt,
        origin,
        score: None,
        kl: None,
    }
}

/// Splits a flat list into rows of the given lengths.
fn reshape(values: &[f64], shape: &[usize]) -> Vec<Vec<f64>> {
    let mut out = Vec::with_capacity(shape.len());
    let mut at = 0;
    for n in shape {
        out.push(values[at..at + n].to_vec());
        at += n;
    }
    out
}

/// Tokens of a generation prompt as the backward model will read it: raw text as is; a chat as
/// its messages and answer start plus a margin for the chat template's markup.
async fn prompt_tokens(backend: &dyn crate::llm::Backend, prompt: &Prompt) -> usize {
    /// Tokens the chat markup of a system and a user turn and an assistant start may take.
    const CHAT_MARKUP: usize = 32;
    let count = |t: String| async move { backend.count_tokens(&t).await.unwrap_or(0) };
    match prompt {
        Prompt::Raw { text } => count(text.clone()).await,
        Prompt::Chat {
            messages,
            assistant_prefix,
        } => {
            let mut text: String = messages
                .iter()
                .map(|m| format!("{}\n", m.content))
                .collect();
            text.push_str(assistant_prefix);
            count(text).await + CHAT_MARKUP
        }
    }
}

/// `n` training example indices, class-balanced when asked and the task has classes.
fn draw_examples<R: rand::Rng>(
    data: &Dataset,
    n: usize,
    balanced: bool,
    rng: &mut R,
) -> Vec<usize> {
    match (&data.classes, balanced) {
        (Some(c), true) => {
            let labels: Vec<Option<usize>> =
                data.train.iter().map(|e| c.index_of(&e.target)).collect();
            math::balanced_batch(&labels, n, rng)
        }
        _ => math::random_batch(data.train.len(), n, rng),
    }
}

fn check_data(config: &Config, data: &Dataset) -> Result<(), DlnError> {
    if config.train.mode == Mode::Dln && config.train.iterations > 0 && data.train.is_empty() {
        return Err(DlnError::Data(format!(
            "the task `{}` has no training examples",
            data.name
        )));
    }
    if config.train.mode == Mode::KShot && data.train.len() < config.train.k_shot {
        return Err(DlnError::Data(format!(
            "k-shot needs {} training examples but the task has {}",
            config.train.k_shot,
            data.train.len()
        )));
    }
    if let Some(c) = &data.classes {
        for e in data.all() {
            ops::class_of(c, &e.target)?;
        }
    }
    Ok(())
}

fn placeholder_state() -> TrainerState {
    TrainerState {
        iteration: 0,
        started: false,
        prompts: Vec::new(),
        pinned: Vec::new(),
        edited_templates: Vec::new(),
        memory: math::PromptMemory::default(),
        best_dev: math::BestDev::default(),
        dev_history: Vec::new(),
        rng: None,
        shots: Vec::new(),
        usage: Vec::new(),
        train_accuracy: Vec::new(),
        hidden_edits: Vec::new(),
    }
}
