//! What the workbench knows about a run: a pure reduction of its [`Event`]s.
//!
//! The live TUI and `dln replay` feed the same events through [`RunView::apply`], so a replay
//! shows exactly what the person saw. Nothing here knows about the terminal.

use std::collections::BTreeMap;

use crate::dln::events::{
    Candidate, Event, ForwardExample, LayerIndex, RunState, StopReason, UsageEntry,
};
use crate::dln::lineage::Lineage;
use crate::llm::Usage;

use super::layer::{
    Intervention, IterationPoint, LayerView, Level, PosteriorView, StageView, WinnerRecord,
};
use super::text::one_line_of;

/// The whole run as reduced from its events.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunView {
    pub started: bool,
    pub run_dir: String,
    pub task: String,
    pub model: String,
    pub iterations: usize,
    pub start_iteration: usize,
    pub train_size: usize,
    pub dev_size: usize,
    pub test_size: usize,
    /// `None` until the engine reports a state.
    pub state: Option<RunState>,
    /// The iteration in progress (or the last one seen).
    pub iteration: usize,
    pub stage: Option<StageView>,
    pub layers: Vec<LayerView>,
    /// The last forward pass over the batch.
    pub forward: Option<(usize, Vec<ForwardExample>)>,
    pub forward_accuracy: Option<f64>,
    /// Posterior per layer (the hidden text below that layer).
    pub posteriors: BTreeMap<LayerIndex, PosteriorView>,
    pub history: Vec<IterationPoint>,
    /// `(iteration, accuracy)` of each dev evaluation.
    pub dev_points: Vec<(usize, f64)>,
    pub best_dev: Option<(usize, f64)>,
    pub test_accuracy: Option<f64>,
    pub elbo_total: Option<f64>,
    pub interventions: Vec<Intervention>,
    pub messages: Vec<(Level, String)>,
    /// HTTP backends as their probes found them: `(name, scoring mode, detail line)`.
    pub backends: Vec<(String, String, String)>,
    /// Iterations done at the last checkpoint, and its path.
    pub last_checkpoint: Option<(usize, String)>,
    pub finished: bool,
    pub stopped_early: bool,
    /// Why the run stopped early, when it says (`RunFinished.stop_reason`).
    pub stop_reason: Option<StopReason>,
    pub best_prompts: Vec<String>,
    /// The demonstrations of `best_prompts` (empty when no layer shows any).
    pub best_demos: Vec<Vec<crate::dln::events::Demo>>,
    /// How many events were applied (replay position).
    pub events_applied: usize,
    /// `(iteration, usage)`: the usage of the iteration in progress so far, from its last stage
    /// event. Dropped once the iteration is done, when its usage joins the layers' totals.
    pub live_usage: Option<(usize, Vec<UsageEntry>)>,
    /// Where every prompt came from, per layer (the lineage view).
    pub lineage: Lineage,
    /// GEPA's loop trains the run (seen from its pool's first member on).
    pub gepa: bool,
    /// The last forecast of the run's time left, made as its stage started.
    pub forecast: Option<super::layer::ForecastView>,
}

impl RunView {
    /// Apply one event. Pure: the same events in the same order give the same view.
    pub fn apply(&mut self, event: &Event) {
        self.events_applied += 1;
        self.lineage.apply(event);
        match event {
            Event::RunStarted {
                run_dir,
                task,
                model,
                layers,
                iterations,
                start_iteration,
                train_size,
                dev_size,
                test_size,
            } => {
                self.started = true;
                self.run_dir = run_dir.clone();
                self.task = task.clone();
                self.model = model.clone();
                self.iterations = *iterations;
                self.start_iteration = *start_iteration;
                self.iteration = *start_iteration;
                self.train_size = *train_size;
                self.dev_size = *dev_size;
                self.test_size = *test_size;
                self.layers = layers
                    .iter()
                    .map(|l| LayerView {
                        index: l.index,
                        prompt: l.prompt.clone(),
                        pinned: l.pinned,
                        trainable: l.trainable,
                        model: l.model.clone(),
                        templates: l.templates.clone(),
                        demos: l.demos.clone(),
                        max_demos: l.max_demos,
                        demos_pinned: l.demos_pinned,
                        feedback: l.feedback.clone(),
                        ..LayerView::default()
                    })
                    .collect();
                self.live_usage = None;
            }
            Event::StateChanged { state } => {
                self.state = Some(*state);
                if *state == RunState::Finished {
                    self.stage = None;
                }
            }
            Event::StageStarted {
                iteration,
                stage,
                layer,
                total,
                usage,
            } => {
                self.iteration = *iteration;
                self.note_live_usage(*iteration, usage.as_ref());
                if let Some(f) = self.forecast.as_mut() {
                    f.stage_started = true;
                }
                self.stage = Some(StageView {
                    iteration: *iteration,
                    stage: *stage,
                    layer: *layer,
                    done: 0,
                    total: *total,
                });
            }
            Event::StageProgress {
                iteration,
                stage,
                done,
                total,
                usage,
            } => {
                self.iteration = *iteration;
                self.note_live_usage(*iteration, usage.as_ref());
                match &mut self.stage {
                    Some(s) if s.stage == *stage && s.iteration == *iteration => {
                        s.done = *done;
                        s.total = *total;
                    }
                    _ => {
                        self.stage = Some(StageView {
                            iteration: *iteration,
                            stage: *stage,
                            layer: None,
                            done: *done,
                            total: *total,
                        })
                    }
                }
            }
            Event::ForwardDone {
                iteration,
                examples,
                accuracy,
                ..
            } => {
                self.iteration = *iteration;
                self.forward = Some((*iteration, examples.clone()));
                self.forward_accuracy = Some(*accuracy);
                // A new batch: posteriors of the previous one no longer apply.
                self.posteriors.retain(|_, p| p.iteration == *iteration);
            }
            Event::PosteriorSampled {
                iteration,
                layer,
                examples,
            }
            | Event::Sharpened {
                iteration,
                layer,
                examples,
            } => {
                self.posteriors.insert(
                    *layer,
                    PosteriorView {
                        iteration: *iteration,
                        layer: *layer,
                        examples: examples.clone(),
                        sharpened: matches!(event, Event::Sharpened { .. }),
                    },
                );
            }
            Event::CandidatesProposed {
                iteration,
                layer,
                candidates,
                ..
            } => self.set_candidates(*layer, *iteration, candidates, None),
            Event::CandidatesScored {
                iteration,
                layer,
                candidates,
                winner,
            } => self.set_candidates(*layer, *iteration, candidates, Some(*winner)),
            Event::PromptSelected {
                iteration,
                layer,
                prompt,
                previous,
                demos,
            } => {
                if let Some(l) = self.layers.get_mut(*layer) {
                    let won = l
                        .winner
                        .and_then(|w| l.candidates.get(w))
                        .filter(|c| c.prompt == *prompt && c.demos == *demos);
                    l.history.push(WinnerRecord {
                        iteration: *iteration,
                        prompt: prompt.clone(),
                        score: won.and_then(|c| c.score),
                        changed: prompt != previous || *demos != l.demos,
                        demo_move: won.and_then(|c| c.demo_move.as_ref()).map(|m| m.describe()),
                    });
                    l.previous_prompt = Some(previous.clone());
                    l.prompt = prompt.clone();
                    l.demos = demos.clone();
                }
            }
            Event::Elbo { terms, total, .. } => {
                for (l, term) in self.layers.iter_mut().zip(terms) {
                    if term.is_some() {
                        l.elbo_term = *term;
                    }
                }
                self.elbo_total = Some(*total);
            }
            Event::Evaluated {
                iteration,
                split,
                accuracy,
                best_so_far,
                ..
            } => {
                if *split == crate::dln::events::Split::Test {
                    self.test_accuracy = Some(*accuracy);
                } else {
                    self.dev_points.push((*iteration, *accuracy));
                    if *best_so_far || self.best_dev.is_none_or(|(_, b)| *accuracy > b) {
                        self.best_dev = Some((*iteration, *accuracy));
                    }
                }
            }
            Event::PatienceReset {
                iteration,
                prompts,
                demos,
            } => {
                self.return_to(prompts, demos);
                self.note(
                    *iteration,
                    "patience ran out: prompts reset to the best-dev ones",
                );
            }
            Event::Forecast {
                iteration,
                run_left_ms,
                stage_ms,
                ..
            } => {
                self.forecast = Some(super::layer::ForecastView {
                    iteration: *iteration,
                    stage_ms: *stage_ms,
                    run_left_ms: *run_left_ms,
                    stage_started: false,
                });
            }
            Event::IterationDone {
                iteration,
                train_accuracy,
                elbo,
                usage,
                elapsed_ms,
                ..
            } => {
                self.history.retain(|p| p.iteration != *iteration);
                self.history.push(IterationPoint {
                    iteration: *iteration,
                    train_accuracy: *train_accuracy,
                    elbo: *elbo,
                    elapsed_ms: *elapsed_ms,
                });
                self.add_usage(usage);
                self.live_usage = None;
            }
            Event::PromptPinned { layer, prompt } => {
                if let Some(l) = self.layers.get_mut(*layer) {
                    l.pinned = true;
                    l.replace_prompt(prompt);
                }
                self.note(
                    self.iteration,
                    &format!("pinned layer {}: {}", layer + 1, one_line_of(prompt, 60)),
                );
            }
            Event::PromptUnpinned { layer } => {
                if let Some(l) = self.layers.get_mut(*layer) {
                    l.pinned = false;
                }
                self.note(self.iteration, &format!("unpinned layer {}", layer + 1));
            }
            Event::PromptReplaced { layer, prompt } => {
                if let Some(l) = self.layers.get_mut(*layer) {
                    l.replace_prompt(prompt);
                }
                self.note(
                    self.iteration,
                    &format!(
                        "edited layer {} prompt: {}",
                        layer + 1,
                        one_line_of(prompt, 60)
                    ),
                );
            }
            Event::TemplateReplaced {
                layer,
                role,
                source,
            } => {
                if let Some(l) = self.layers.get_mut(*layer) {
                    l.templates.insert(role.slot(), source.clone());
                }
                self.note(
                    self.iteration,
                    &format!("replaced layer {} {} template", layer + 1, role.slot()),
                );
            }
            Event::DemosReplaced { layer, demos } => {
                let before = self
                    .layers
                    .get_mut(*layer)
                    .map(|l| std::mem::replace(&mut l.demos, demos.clone()))
                    .unwrap_or_default();
                let text = match (before.len(), demos.len()) {
                    (b, n) if n > b => {
                        let added = demos.iter().find(|d| !before.contains(d));
                        format!(
                            "added ex {} as a demonstration of layer {}",
                            added.map_or(0, |d| d.index),
                            layer + 1
                        )
                    }
                    (b, n) if n < b => {
                        let removed = before.iter().find(|d| !demos.contains(d));
                        format!(
                            "removed demonstration ex {} from layer {}",
                            removed.map_or(0, |d| d.index),
                            layer + 1
                        )
                    }
                    _ => format!("replaced layer {} demonstrations", layer + 1),
                };
                self.note(self.iteration, &text);
            }
            Event::DemosPinned { layer } | Event::DemosUnpinned { layer } => {
                let pinned = matches!(event, Event::DemosPinned { .. });
                if let Some(l) = self.layers.get_mut(*layer) {
                    l.demos_pinned = pinned;
                }
                let verb = if pinned { "pinned" } else { "unpinned" };
                self.note(
                    self.iteration,
                    &format!("{verb} layer {} demonstrations", layer + 1),
                );
            }
            Event::FeedbackAdded { .. } | Event::FeedbackRemoved { .. } => {
                self.apply_feedback(event)
            }
            Event::ParentSelected { .. } | Event::PoolAdded { .. } => self.apply_gepa(event),
            Event::HiddenAdded { .. }
            | Event::SampleExcluded { .. }
            | Event::SampleIncluded { .. } => self.apply_posterior_edit(event),
            Event::CheckpointWritten { iteration, path } => {
                self.last_checkpoint = Some((*iteration, path.clone()));
            }
            Event::Branched {
                parent, iteration, ..
            } => self.note(
                *iteration,
                &format!("branch of {parent} after iteration {iteration}"),
            ),
            Event::BackendConnected {
                name,
                scoring,
                detail,
            } => {
                self.backends.retain(|(n, _, _)| n != name);
                self.backends
                    .push((name.clone(), scoring.clone(), detail.clone()));
            }
            Event::Warning { message } => self.messages.push((Level::Warning, message.clone())),
            Event::CommandRejected { reason, .. } => {
                self.messages.push((Level::Error, reason.clone()))
            }
            Event::RunFailed { message } | Event::Error { message } => {
                self.messages.push((Level::Error, message.clone()))
            }
            Event::BackendUnavailable { message } => self
                .messages
                .push((Level::Error, format!("{message} — paused; resume to retry"))),
            Event::BudgetReached { .. } => {
                if let Some(m) = crate::run::budget::describe(event) {
                    self.messages.push((Level::Warning, m))
                }
            }
            Event::RunFinished {
                best_prompts,
                dev_accuracy,
                test_accuracy,
                stopped_early,
                best_demos,
                stop_reason,
            } => {
                self.stop_reason = *stop_reason;
                self.finished = true;
                self.stopped_early = *stopped_early;
                self.best_prompts = best_prompts.clone();
                self.best_demos = best_demos.clone();
                if let Some(d) = dev_accuracy {
                    if self.best_dev.is_none() {
                        self.best_dev = Some((self.iteration, *d));
                    }
                }
                if test_accuracy.is_some() {
                    self.test_accuracy = *test_accuracy;
                }
                self.stage = None;
            }
        }
    }

    /// A layer's candidates of `iteration`, with the winner once scored.
    fn set_candidates(
        &mut self,
        layer: LayerIndex,
        iteration: usize,
        candidates: &[Candidate],
        winner: Option<usize>,
    ) {
        if let Some(l) = self.layers.get_mut(layer) {
            l.candidates = candidates.to_vec();
            l.candidates_iteration = Some(iteration);
            l.winner = winner;
        }
    }

    /// The layers go back to prompts (and demonstrations) they had: a patience reset, GEPA's
    /// parent. Logs written before demonstrations existed say none: the layers keep theirs.
    pub(super) fn return_to(
        &mut self,
        prompts: &[String],
        demos: &[Vec<crate::dln::events::Demo>],
    ) {
        for (l, p) in self.layers.iter_mut().zip(prompts) {
            l.replace_prompt(p);
        }
        for (l, d) in self.layers.iter_mut().zip(demos) {
            l.demos = d.clone();
        }
    }

    pub(super) fn note(&mut self, iteration: usize, text: &str) {
        self.interventions.push(Intervention {
            iteration,
            text: text.to_string(),
        });
    }

    fn add_usage(&mut self, usage: &[UsageEntry]) {
        for entry in usage {
            if let Some(l) = self.layers.get_mut(entry.layer) {
                l.usage
                    .entry(entry.operation)
                    .or_default()
                    .add(&entry.usage);
            }
        }
    }

    fn note_live_usage(&mut self, iteration: usize, usage: Option<&Vec<UsageEntry>>) {
        if let Some(u) = usage {
            self.live_usage = Some((iteration, u.clone()));
        }
    }

    /// A layer's usage as the metrics pane shows it: the finished iterations' totals plus the
    /// iteration in progress so far (when its stage events report usage).
    pub fn layer_usage(&self, layer: LayerIndex) -> Usage {
        let mut total = self
            .layers
            .get(layer)
            .map(LayerView::total_usage)
            .unwrap_or_default();
        if let Some((_, live)) = &self.live_usage {
            for e in live.iter().filter(|e| e.layer == layer) {
                total.add(&e.usage);
            }
        }
        total
    }

    /// Whether the run can still act on commands.
    pub fn is_active(&self) -> bool {
        !self.finished
            && !matches!(
                self.state,
                Some(RunState::Finished) | Some(RunState::Failed)
            )
    }

    /// Number of layers (`k`).
    pub fn depth(&self) -> usize {
        self.layers.len()
    }
}

/// The iteration an event belongs to, when it says.
pub fn event_iteration(event: &Event) -> Option<usize> {
    match event {
        Event::StageStarted { iteration, .. }
        | Event::StageProgress { iteration, .. }
        | Event::ForwardDone { iteration, .. }
        | Event::PosteriorSampled { iteration, .. }
        | Event::Sharpened { iteration, .. }
        | Event::CandidatesProposed { iteration, .. }
        | Event::CandidatesScored { iteration, .. }
        | Event::PromptSelected { iteration, .. }
        | Event::Elbo { iteration, .. }
        | Event::Evaluated { iteration, .. }
        | Event::PatienceReset { iteration, .. }
        | Event::ParentSelected { iteration, .. }
        | Event::PoolAdded { iteration, .. }
        | Event::IterationDone { iteration, .. } => Some(*iteration),
        // A checkpoint's `iteration` counts the iterations done: it closes the previous one.
        _ => None,
    }
}
