//! The workbench's whole state: the run as reduced from events ([`RunView`]) plus what the person
//! is looking at (focus, selections, overlays, editor buffers). [`App::apply`] is the reducer the
//! live loop and `dln replay` share; [`App::handle_key`] turns keys into [`Command`]s (effects as
//! data; the event loop sends them).

use std::collections::BTreeMap;

use crate::dln::events::{Command, Event, LayerIndex, RunState};
use crate::template::TemplateRole;

use super::editor::{EditorBuffer, EditorError, EditorTarget};
use super::keymap::KeyMap;
use super::model::{event_iteration, RunView};
use super::theme::Theme;

/// The four panes, in focus order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pane {
    Layers,
    Hidden,
    Candidates,
    Metrics,
}

impl Pane {
    pub const ALL: [Pane; 4] = [Pane::Layers, Pane::Hidden, Pane::Candidates, Pane::Metrics];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Layers => "Layers",
            Pane::Hidden => "Hidden states",
            Pane::Candidates => "Candidates",
            Pane::Metrics => "Metrics",
        }
    }

    fn position(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

/// Whether the workbench drives a run or replays a recorded one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Live,
    /// Read-only: commands are refused.
    Replay,
}

/// What covers the panes, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    Help,
    ConfirmQuit,
    /// Choosing which of the layer's templates to edit.
    TemplatePicker {
        layer: LayerIndex,
        selected: usize,
    },
    Editor(EditorTarget),
    /// The layer's notes in force, one selected (`x` removes it).
    Notes {
        layer: LayerIndex,
        selected: usize,
    },
    /// Typing the filter of the focused pane.
    FilterInput,
    /// Asking before branching the run after `at` completed iterations.
    ConfirmBranch {
        at: usize,
    },
    /// Where a layer's prompts came from (`L`): the tree, the selected node in
    /// [`Selection::lineage_node`].
    Lineage {
        layer: LayerIndex,
    },
}

/// What the workbench asks of the terminal itself, outside drawing: the loop carries it out.
#[derive(Debug, Clone, PartialEq)]
pub enum TerminalEffect {
    /// Put `text` on the clipboard with an OSC 52 escape (the terminal, or the one the person
    /// sits at over SSH, sets its clipboard).
    Copy(String),
    /// Suspend the workbench and edit `text` in `$EDITOR`; what is saved is applied as the
    /// in-app editor's Ctrl-S would apply it.
    ExternalEdit { target: EditorTarget, text: String },
}

/// Sort orders of the hidden-state examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HiddenSort {
    #[default]
    Batch,
    /// Most undecided posteriors first.
    Entropy,
    /// Wrong predictions first.
    WrongFirst,
}

impl HiddenSort {
    pub fn label(self) -> &'static str {
        match self {
            HiddenSort::Batch => "batch order",
            HiddenSort::Entropy => "entropy ↓",
            HiddenSort::WrongFirst => "wrong first",
        }
    }

    pub(crate) fn next(self) -> HiddenSort {
        match self {
            HiddenSort::Batch => HiddenSort::Entropy,
            HiddenSort::Entropy => HiddenSort::WrongFirst,
            HiddenSort::WrongFirst => HiddenSort::Batch,
        }
    }
}

/// Where the person's exit request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Exit {
    #[default]
    No,
    /// Stop was sent; waiting for the engine to checkpoint and end.
    Stopping,
    /// Leave the loop now.
    Now,
}

/// Selections and scroll positions; all clamped when drawn.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Selection {
    /// The layer the Layers and Candidates panes act on.
    pub layer: LayerIndex,
    /// Set once the person picks a layer; until then the selection follows the layer whose
    /// candidates were proposed last, so the live run is always in view.
    pub layer_chosen: bool,
    /// Lines scrolled within the selected layer's prompt.
    pub layer_scroll: usize,
    pub show_diff: bool,
    /// The selected layer's demonstrations are listed in full in the Layers pane; `demo` is
    /// the one selected there (what removing acts on).
    pub demos_expanded: bool,
    pub demo: usize,
    pub candidate: usize,
    pub candidate_expanded: bool,
    /// Which posterior the hidden pane shows (the hidden text below this layer).
    pub hidden_layer: Option<LayerIndex>,
    /// Row among the visible (sorted, filtered) examples.
    pub example: usize,
    pub sample: usize,
    pub hidden_expanded: bool,
    /// Lines scrolled within the expanded example of the Hidden pane (PgUp/PgDn).
    pub hidden_scroll: usize,
    pub hidden_sort: HiddenSort,
    pub wrong_only: bool,
    pub help_scroll: usize,
    /// Lines scrolled in the Metrics pane when its content is taller than the pane.
    pub metrics_scroll: usize,
    /// The node selected in the lineage view, and the lines scrolled in its details.
    pub lineage_node: usize,
    pub lineage_scroll: usize,
}

/// Checks a template's source for a layer and role before it is sent; `Err` carries the message
/// to show (with its line, when the message names one).
pub type TemplateCheck = Box<dyn Fn(LayerIndex, TemplateRole, &str) -> Result<(), String> + Send>;

/// The workbench state.
pub struct App {
    pub mode: Mode,
    pub run: RunView,
    pub theme: Theme,
    pub keymap: KeyMap,
    pub focus: Pane,
    pub overlay: Option<Overlay>,
    pub sel: Selection,
    /// Per-pane text filters (`/`).
    pub filters: BTreeMap<&'static str, String>,
    /// Editor buffers by target; kept until applied or reverted.
    pub editors: BTreeMap<EditorTarget, EditorBuffer>,
    pub template_check: Option<TemplateCheck>,
    /// A pause was sent and the engine has not yet said it paused.
    pub pause_requested: bool,
    pub exit: Exit,
    /// A short message for the status line (what the last key did, or why it did nothing).
    pub notice: Option<String>,
    /// Replay: all recorded events and the iteration shown.
    pub replay: Option<ReplayState>,
    /// Terminal size of the last draw, for page scrolling and mouse hits.
    pub viewport: (u16, u16),
    /// The focused pane fills the screen (`z`).
    pub zoomed: bool,
    /// Terminal effects asked for by the last keys, taken by the loop.
    pub effects: Vec<TerminalEffect>,
    /// A branch the person confirmed: iterations completed at its point. Made by the caller
    /// once the workbench has closed (and a live run has written its checkpoint).
    pub branch: Option<usize>,
}

/// How a recorded run ended, read from its whole log (whatever iteration the replay shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedEnd {
    /// Every iteration and the test ran.
    Finished,
    /// A person stopped it (a checkpoint was written; `dln resume` continues it).
    Stopped,
    /// It failed with an error.
    Failed,
    /// The log ends without an end: the process was killed or is still running.
    Unfinished,
}

impl RecordedEnd {
    /// The ending recorded in `events`.
    pub fn of(events: &[Event]) -> RecordedEnd {
        let mut end = RecordedEnd::Unfinished;
        for e in events {
            match e {
                Event::RunFinished { stopped_early, .. } => {
                    end = if *stopped_early {
                        RecordedEnd::Stopped
                    } else {
                        RecordedEnd::Finished
                    };
                }
                Event::RunFailed { .. }
                | Event::StateChanged {
                    state: RunState::Failed,
                } => end = RecordedEnd::Failed,
                // A resumed run's log goes on after an earlier end.
                Event::RunStarted { .. } => end = RecordedEnd::Unfinished,
                _ => {}
            }
        }
        end
    }

    pub fn label(self) -> &'static str {
        match self {
            RecordedEnd::Finished => "finished",
            RecordedEnd::Stopped => "stopped",
            RecordedEnd::Failed => "failed",
            RecordedEnd::Unfinished => "unfinished",
        }
    }
}

/// `dln replay`: the recorded events and the scrubber position.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayState {
    /// How the recorded run ended.
    pub ending: RecordedEnd,
    pub events: Vec<Event>,
    /// Distinct iterations present, ascending.
    pub iterations: Vec<usize>,
    /// Index into `iterations` of the one shown (state after it ended).
    pub position: usize,
}

impl App {
    /// A live workbench.
    pub fn new(theme: Theme, keymap: KeyMap) -> App {
        App {
            mode: Mode::Live,
            run: RunView::default(),
            theme,
            keymap,
            focus: Pane::Layers,
            overlay: None,
            sel: Selection::default(),
            filters: BTreeMap::new(),
            editors: BTreeMap::new(),
            template_check: None,
            pause_requested: false,
            exit: Exit::No,
            notice: None,
            replay: None,
            viewport: (80, 24),
            zoomed: false,
            effects: Vec::new(),
            branch: None,
        }
    }

    /// A read-only workbench over recorded events, showing the last iteration.
    pub fn replay(theme: Theme, keymap: KeyMap, events: Vec<Event>) -> App {
        let mut iterations: Vec<usize> = events.iter().filter_map(event_iteration).collect();
        iterations.sort_unstable();
        iterations.dedup();
        let position = iterations.len().saturating_sub(1);
        let mut app = App::new(theme, keymap);
        app.mode = Mode::Replay;
        app.replay = Some(ReplayState {
            ending: RecordedEnd::of(&events),
            events,
            iterations,
            position,
        });
        app.rebuild_replay();
        app
    }

    /// Apply one engine event: the run view, then what the UI does about it.
    pub fn apply(&mut self, event: &Event) {
        self.run.apply(event);
        match event {
            // "pausing…" lasts until the engine says it paused (or ended).
            Event::StateChanged { state }
                if !matches!(state, RunState::Running | RunState::Pausing) =>
            {
                self.pause_requested = false;
            }
            Event::RunStarted { layers, .. } => {
                self.sel.layer = self.sel.layer.min(layers.len().saturating_sub(1));
            }
            Event::TemplateReplaced {
                layer,
                role,
                source,
            } => {
                let target = EditorTarget::Template {
                    layer: *layer,
                    role: role.slot(),
                };
                if let Some(buf) = self.editors.get(&target) {
                    if buf.text() == *source || buf.awaiting {
                        self.editors.remove(&target);
                        if self.overlay == Some(Overlay::Editor(target)) {
                            self.overlay = None;
                        }
                        self.notice = Some(format!(
                            "{} applied",
                            target.title().replacen("Edit ", "", 1)
                        ));
                    }
                }
            }
            Event::CommandRejected { command, reason } => {
                // A refused template edit is the verdict on the editor that sent it.
                let awaiting = match command {
                    Command::SetTemplate { layer, role, .. } => Some(EditorTarget::Template {
                        layer: *layer,
                        role: role.slot(),
                    })
                    .filter(|t| self.editors.get(t).is_some_and(|b| b.awaiting)),
                    _ => None,
                };
                match awaiting {
                    Some(target) => {
                        self.set_editor_error(target, EditorError::from_message(reason))
                    }
                    None => self.notice = Some(format!("error: {reason}")),
                }
            }
            Event::RunFailed { message } | Event::Error { message } => {
                self.notice = Some(format!("error: {message}"));
            }
            Event::CandidatesProposed { layer, .. }
                if !self.sel.layer_chosen && self.sel.layer != *layer =>
            {
                self.sel.layer = *layer;
                self.sel.layer_scroll = 0;
                self.sel.candidate = 0;
            }
            Event::PosteriorSampled { layer, .. } | Event::Sharpened { layer, .. }
                if self.sel.hidden_layer.is_none() =>
            {
                self.sel.hidden_layer = Some(*layer);
            }
            _ => {}
        }
    }

    /// Apply a batch of events (what `recv_many` delivered).
    pub fn apply_all<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) {
        for e in events {
            self.apply(e);
        }
    }

    pub(crate) fn set_editor_error(&mut self, target: EditorTarget, error: EditorError) {
        if let Some(buf) = self.editors.get_mut(&target) {
            buf.awaiting = false;
            if let Some(line) = error.line {
                let row = line
                    .saturating_sub(1)
                    .min(buf.textarea.lines().len().saturating_sub(1));
                buf.textarea.move_cursor(ratatui_textarea::CursorMove::Jump(
                    u16::try_from(row).unwrap_or(u16::MAX),
                    0,
                ));
            }
            buf.error = Some(error);
        }
    }

    /// The run's state as shown: a sent pause shows as pausing until the engine confirms.
    pub fn shown_state(&self) -> Option<RunState> {
        match (self.run.state, self.pause_requested) {
            (Some(RunState::Running), true) => Some(RunState::Pausing),
            (s, _) if self.exit == Exit::Stopping && s != Some(RunState::Finished) => {
                Some(RunState::Stopping)
            }
            (s, _) => s,
        }
    }

    /// The posterior layer the hidden pane shows, if any.
    pub fn hidden_layer(&self) -> Option<LayerIndex> {
        let chosen = self
            .sel
            .hidden_layer
            .filter(|l| self.run.posteriors.contains_key(l));
        chosen.or_else(|| self.run.posteriors.keys().next_back().copied())
    }

    /// The text filter of a pane (empty = none).
    pub fn filter(&self, pane: Pane) -> &str {
        self.filters
            .get(pane.title())
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Indices (into the posterior's or forward pass's examples) shown in the hidden pane,
    /// sorted and filtered.
    pub fn hidden_rows(&self) -> Vec<usize> {
        let needle = self.filter(Pane::Hidden).to_lowercase();
        let matches = |texts: &[&str]| {
            needle.is_empty() || texts.iter().any(|t| t.to_lowercase().contains(&needle))
        };
        let mut rows: Vec<(usize, bool, f64)> = Vec::new();
        if let Some(p) = self
            .hidden_layer()
            .and_then(|l| self.run.posteriors.get(&l))
        {
            for (i, ex) in p.examples.iter().enumerate() {
                let mut texts = vec![ex.input.as_str(), ex.target.as_str(), ex.hidden.as_str()];
                texts.extend(ex.samples.iter().map(|s| s.text.as_str()));
                if (!self.sel.wrong_only || !ex.correct) && matches(&texts) {
                    rows.push((i, ex.correct, ex.entropy.unwrap_or(0.0)));
                }
            }
        } else if let Some((_, examples)) = &self.run.forward {
            for (i, ex) in examples.iter().enumerate() {
                let mut texts = vec![
                    ex.input.as_str(),
                    ex.target.as_str(),
                    ex.prediction.as_str(),
                ];
                texts.extend(ex.hidden.iter().map(String::as_str));
                if (!self.sel.wrong_only || !ex.correct) && matches(&texts) {
                    rows.push((i, ex.correct, 0.0));
                }
            }
        }
        match self.sel.hidden_sort {
            HiddenSort::Batch => {}
            HiddenSort::Entropy => rows.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0))),
            HiddenSort::WrongFirst => rows.sort_by_key(|r| (r.1, r.0)),
        }
        rows.into_iter().map(|r| r.0).collect()
    }

    /// Indices of the selected layer's candidates that pass the filter.
    pub fn candidate_rows(&self) -> Vec<usize> {
        let needle = self.filter(Pane::Candidates).to_lowercase();
        self.run
            .layers
            .get(self.sel.layer)
            .map(|l| {
                l.candidates
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| {
                        needle.is_empty()
                            || c.prompt.to_lowercase().contains(&needle)
                            || c.describe().to_lowercase().contains(&needle)
                    })
                    .map(|(i, _)| i)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The template source an editor for `(layer, role)` starts from: the layer's template as
    /// the run reported it (at its start, or as replaced since).
    pub fn template_source(&self, layer: LayerIndex, role: TemplateRole) -> String {
        self.run
            .layers
            .get(layer)
            .and_then(|l| l.templates.get(&role.slot()))
            .cloned()
            .unwrap_or_default()
    }

    /// Whether the selected posterior sample of the hidden pane is excluded (then `x` includes
    /// it again).
    pub fn selected_sample_excluded(&self) -> bool {
        let Some(p) = self
            .hidden_layer()
            .and_then(|l| self.run.posteriors.get(&l))
        else {
            return false;
        };
        self.hidden_rows()
            .get(self.sel.example)
            .and_then(|i| p.examples.get(*i))
            .and_then(|ex| {
                ex.samples
                    .get(self.sel.sample.min(ex.samples.len().saturating_sub(1)))
            })
            .is_some_and(|s| s.excluded)
    }

    /// The recorded run's ending, in replay.
    pub fn recorded_end(&self) -> Option<RecordedEnd> {
        self.replay.as_ref().map(|r| r.ending)
    }

    pub(crate) fn focus_next(&mut self, forward: bool) {
        let n = Pane::ALL.len();
        let i = self.focus.position();
        self.focus = Pane::ALL[if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        }];
    }

    /// Replay: rebuild the run view from the events up to the shown iteration.
    pub(crate) fn rebuild_replay(&mut self) {
        let Some(replay) = self.replay.take() else {
            return;
        };
        let cut = match replay.iterations.get(replay.position + 1) {
            Some(next) => replay
                .events
                .iter()
                .position(|e| event_iteration(e).is_some_and(|i| i >= *next))
                .unwrap_or(replay.events.len()),
            None => replay.events.len(),
        };
        self.run = RunView::default();
        self.sel.hidden_layer = None;
        for e in &replay.events[..cut] {
            self.apply(e);
        }
        self.replay = Some(replay);
    }

    /// Replay: the iteration shown and the number of iterations.
    pub fn replay_position(&self) -> Option<(usize, usize, usize)> {
        let r = self.replay.as_ref()?;
        Some((
            r.position,
            r.iterations.len(),
            r.iterations.get(r.position).copied().unwrap_or(0),
        ))
    }
}
