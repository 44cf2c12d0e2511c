//! The pieces of a [`RunView`](super::RunView): a layer, the stage in progress, a posterior, a
//! point of the charts, a note of the activity log.

use std::collections::BTreeMap;

use crate::dln::events::{Candidate, Demo, LayerIndex, Note, Operation, PosteriorExample, Stage};
use crate::llm::Usage;
use crate::template::TemplateRole;

/// One past iteration's winner of a layer.
#[derive(Debug, Clone, PartialEq)]
pub struct WinnerRecord {
    pub iteration: usize,
    pub prompt: String,
    pub score: Option<f64>,
    /// Whether the winner differs from the prompt (or demonstrations) the layer had before.
    pub changed: bool,
    /// The winning demonstration move ("swap ex 12 → ex 87"), when the winner was one.
    pub demo_move: Option<String>,
}

/// A layer as the person sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LayerView {
    pub index: LayerIndex,
    pub prompt: String,
    /// The prompt before the last change, for the diff view.
    pub previous_prompt: Option<String>,
    pub pinned: bool,
    pub trainable: bool,
    pub model: String,
    /// The demonstrations the layer shows, in order.
    pub demos: Vec<Demo>,
    /// `k`: the most demonstrations it may show (0: instruction only).
    pub max_demos: usize,
    /// A person pinned the demonstrations (no demonstration moves).
    pub demos_pinned: bool,
    /// A person's notes in force, shown to the layer's proposals.
    pub feedback: Vec<Note>,
    /// The last ELBO term of this layer.
    pub elbo_term: Option<f64>,
    /// The current iteration's candidates (scores filled in once scored).
    pub candidates: Vec<Candidate>,
    pub candidates_iteration: Option<usize>,
    pub winner: Option<usize>,
    /// Winners of past iterations, oldest first.
    pub history: Vec<WinnerRecord>,
    /// Token usage summed over the run, per operation.
    pub usage: BTreeMap<Operation, Usage>,
    /// The layer's templates by slot (our TOML format): as the run started with them
    /// (`RunStarted`), then as a person replaced them. What the template editor opens on.
    pub templates: BTreeMap<TemplateRole, String>,
}

impl LayerView {
    /// A prompt set from outside the layer's own selection (a pin, an edit, a patience reset):
    /// the one it replaces is kept for the diff view, unless nothing changed.
    pub(super) fn replace_prompt(&mut self, prompt: &str) {
        if self.prompt != prompt {
            self.previous_prompt = Some(std::mem::replace(&mut self.prompt, prompt.to_string()));
        }
    }

    /// Usage summed over every operation of this layer.
    pub fn total_usage(&self) -> Usage {
        let mut total = Usage::default();
        for u in self.usage.values() {
            total.add(u);
        }
        total
    }
}

/// The stage in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct StageView {
    pub iteration: usize,
    pub stage: Stage,
    pub layer: Option<LayerIndex>,
    pub done: usize,
    pub total: usize,
}

/// A forecast ([`Event::Forecast`](crate::dln::events::Event::Forecast)) and whether the stage
/// it was made for has started (so that its progress counts against the forecast).
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastView {
    pub iteration: usize,
    /// The stage's own forecast time.
    pub stage_ms: Option<u64>,
    pub run_left_ms: Option<u64>,
    pub stage_started: bool,
}

/// The posterior of the hidden text below one layer, for the current batch.
#[derive(Debug, Clone, PartialEq)]
pub struct PosteriorView {
    pub iteration: usize,
    pub layer: LayerIndex,
    pub examples: Vec<PosteriorExample>,
    /// Whether the sharpening weights are in.
    pub sharpened: bool,
}

/// One point of the metric charts.
#[derive(Debug, Clone, PartialEq)]
pub struct IterationPoint {
    pub iteration: usize,
    pub train_accuracy: f64,
    pub elbo: Option<f64>,
    pub elapsed_ms: u64,
}

/// Something a person did, shown in the panes and the activity log.
#[derive(Debug, Clone, PartialEq)]
pub struct Intervention {
    /// The iteration in progress when the engine applied it.
    pub iteration: usize,
    pub text: String,
}

/// Severity of a message from the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Warning,
    Error,
}
