//! Keys and mouse → state changes and [`Command`]s. Overlays (editor, filter, confirmation) see
//! keys first; everything else goes through the keymap to an [`Action`].

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};

use crate::dln::events::{Command, RunState};

use super::action::Action;
use super::app::{App, Exit, Mode, Overlay, Pane};
use super::editor::{EditorBuffer, EditorError, EditorTarget, TemplateRoleOrd};
use super::view;
use super::view::layout::{self, Hit, Screen};

impl App {
    /// Handle one key press; returns the commands to send to the engine.
    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Command> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        match self.overlay {
            Some(Overlay::Editor(target)) => return self.editor_key(target, key),
            Some(Overlay::FilterInput) => {
                self.filter_key(key);
                return Vec::new();
            }
            Some(Overlay::ConfirmQuit) => return self.confirm_key(key),
            Some(Overlay::TemplatePicker { layer, selected }) => {
                self.picker_key(layer, selected, key);
                return Vec::new();
            }
            Some(Overlay::Help) | None => {}
        }
        match self.keymap.action(&key) {
            Some(action) => self.handle_action(action),
            None => Vec::new(),
        }
    }

    /// Handle one action; returns the commands to send.
    pub fn handle_action(&mut self, action: Action) -> Vec<Command> {
        self.notice = None;
        if self.overlay == Some(Overlay::Help) {
            match action {
                Action::Help | Action::Cancel | Action::Quit => self.overlay = None,
                Action::Down | Action::PageDown => {
                    self.sel.help_scroll += if action == Action::Down { 1 } else { 10 }
                }
                Action::Up | Action::PageUp => {
                    self.sel.help_scroll = self
                        .sel
                        .help_scroll
                        .saturating_sub(if action == Action::Up { 1 } else { 10 })
                }
                Action::Interrupt => return self.interrupt(),
                _ => {}
            }
            return Vec::new();
        }
        let page = usize::from(self.viewport.1.saturating_sub(8)).max(1);
        match action {
            Action::Quit => return self.quit(),
            Action::Interrupt => return self.interrupt(),
            Action::Help => {
                self.overlay = Some(Overlay::Help);
                self.sel.help_scroll = 0;
            }
            Action::FocusNext => self.focus_next(true),
            Action::FocusPrev => self.focus_next(false),
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(page as isize)),
            Action::PageDown => self.move_by(page as isize),
            Action::Top => self.move_by(isize::MIN / 2),
            Action::Bottom => self.move_by(isize::MAX / 2),
            Action::PrevLayer => self.sideways(-1),
            Action::NextLayer => self.sideways(1),
            Action::Expand => match self.focus {
                Pane::Candidates => self.sel.candidate_expanded = !self.sel.candidate_expanded,
                Pane::Hidden => self.sel.hidden_expanded = !self.sel.hidden_expanded,
                Pane::Layers => self.sel.show_diff = !self.sel.show_diff,
                Pane::Metrics => {}
            },
            Action::Filter => match self.focus {
                Pane::Hidden | Pane::Candidates => self.overlay = Some(Overlay::FilterInput),
                _ => self.notice = Some("/ filters the hidden-state and candidate lists".into()),
            },
            Action::Cancel => {
                if !self.filter(self.focus).is_empty() {
                    self.filters.remove(self.focus.title());
                    self.notice = Some("filter cleared".into());
                }
            }
            Action::ToggleDiff => {
                self.sel.show_diff = !self.sel.show_diff;
                self.focus = Pane::Layers;
            }
            Action::Sort => {
                self.sel.hidden_sort = self.sel.hidden_sort.next();
                self.sel.example = 0;
                self.notice = Some(format!(
                    "examples sorted by {}",
                    self.sel.hidden_sort.label()
                ));
            }
            Action::WrongOnly => {
                self.sel.wrong_only = !self.sel.wrong_only;
                self.sel.example = 0;
                self.notice = Some(
                    if self.sel.wrong_only {
                        "wrong examples only"
                    } else {
                        "all examples"
                    }
                    .into(),
                );
            }
            Action::ScrubBack | Action::ScrubForward => self.scrub(action == Action::ScrubForward),
            Action::TogglePause
            | Action::Step
            | Action::Pin
            | Action::Unpin
            | Action::EditPrompt
            | Action::EditTemplate
            | Action::AddHidden
            | Action::ExcludeSample => return self.steer(action),
        }
        Vec::new()
    }

    /// Actions that change the run: refused in replay and once the run ended.
    fn steer(&mut self, action: Action) -> Vec<Command> {
        if self.mode == Mode::Replay {
            self.notice = Some("read-only replay: [ and ] move through iterations".into());
            return Vec::new();
        }
        if !self.run.is_active() || self.exit != Exit::No {
            self.notice = Some("the run has ended".into());
            return Vec::new();
        }
        let layer = self.sel.layer;
        match action {
            Action::TogglePause => match self.shown_state() {
                Some(RunState::Paused) => {
                    self.pause_requested = false;
                    self.notice = Some("resuming".into());
                    return vec![Command::Resume];
                }
                Some(RunState::Pausing) => {
                    self.pause_requested = false;
                    self.notice = Some("pause cancelled".into());
                    return vec![Command::Resume];
                }
                _ => {
                    self.pause_requested = true;
                    return vec![Command::Pause];
                }
            },
            Action::Step => {
                if self.run.state == Some(RunState::Paused) {
                    self.notice = Some("one stage".into());
                    return vec![Command::Step];
                }
                self.notice = Some("s steps one stage while paused (Space pauses)".into());
            }
            Action::Pin => {
                let Some(l) = self.run.layers.get(layer) else {
                    return Vec::new();
                };
                let (prompt, what) = if self.focus == Pane::Candidates {
                    match self
                        .candidate_rows()
                        .get(self.sel.candidate)
                        .and_then(|i| l.candidates.get(*i))
                    {
                        Some(c) => (
                            c.prompt.clone(),
                            format!("candidate {}", self.sel.candidate + 1),
                        ),
                        None => {
                            self.notice = Some("no candidate selected".into());
                            return Vec::new();
                        }
                    }
                } else {
                    (l.prompt.clone(), "the current prompt".to_string())
                };
                self.notice = Some(format!("pinning {what} to layer {}", layer + 1));
                return vec![Command::Pin { layer, prompt }];
            }
            Action::Unpin => {
                if self.run.layers.get(layer).is_some_and(|l| l.pinned) {
                    self.notice = Some(format!("unpinning layer {}", layer + 1));
                    return vec![Command::Unpin { layer }];
                }
                self.notice = Some(format!("layer {} is not pinned", layer + 1));
            }
            Action::EditPrompt => {
                let Some(l) = self.run.layers.get(layer) else {
                    return Vec::new();
                };
                let text = l.prompt.clone();
                self.open_editor(EditorTarget::Prompt { layer }, &text);
            }
            Action::EditTemplate if self.run.layers.get(layer).is_some() => {
                self.overlay = Some(Overlay::TemplatePicker { layer, selected: 0 });
            }
            Action::AddHidden | Action::ExcludeSample => return self.hidden_action(action),
            _ => {}
        }
        Vec::new()
    }

    fn hidden_action(&mut self, action: Action) -> Vec<Command> {
        let Some(layer) = self.hidden_layer() else {
            return self.hidden_before_sampling(action);
        };
        let rows = self.hidden_rows();
        let Some(ex) = rows.get(self.sel.example).and_then(|i| {
            self.run
                .posteriors
                .get(&layer)
                .and_then(|p| p.examples.get(*i))
        }) else {
            self.notice = Some("no example selected".into());
            return Vec::new();
        };
        let example = ex.index;
        if action == Action::AddHidden {
            let text = ex.hidden.clone();
            self.focus = Pane::Hidden;
            self.open_editor(EditorTarget::Hidden { layer, example }, &text);
            return Vec::new();
        }
        let sample = self.sel.sample.min(ex.samples.len().saturating_sub(1));
        match ex.samples.get(sample) {
            Some(s) if s.excluded => {
                self.notice = Some("that sample is already excluded".into());
                Vec::new()
            }
            Some(_) => {
                self.notice = Some(format!(
                    "excluding sample {} of example {}",
                    sample + 1,
                    example + 1
                ));
                vec![Command::ExcludeSample {
                    layer,
                    example,
                    sample,
                }]
            }
            None => {
                self.notice = Some("no sample selected".into());
                Vec::new()
            }
        }
    }

    /// Before the posterior is sampled the pane shows the forward pass: a written hidden text
    /// is queued by the engine and joins the samples when they are drawn.
    fn hidden_before_sampling(&mut self, action: Action) -> Vec<Command> {
        let depth = self.run.depth();
        let rows = self.hidden_rows();
        let selected =
            self.run.forward.as_ref().and_then(|(_, examples)| {
                rows.get(self.sel.example).and_then(|i| examples.get(*i))
            });
        match (action, selected) {
            (Action::AddHidden, Some(ex)) if depth >= 2 => {
                // The hidden text the selected layer reads (the output layer's by default).
                let layer = if self.sel.layer >= 1 {
                    self.sel.layer
                } else {
                    depth - 1
                };
                let text = ex.hidden.get(layer - 1).cloned().unwrap_or_default();
                let example = ex.index;
                self.open_editor(EditorTarget::Hidden { layer, example }, &text);
            }
            (Action::AddHidden, _) if depth < 2 => {
                self.notice = Some("DLN-1 has no hidden layer".into());
            }
            (Action::AddHidden, _) => {
                self.notice = Some("no example yet: wait for the forward pass".into());
            }
            _ => {
                self.notice = Some("no posterior samples to exclude yet".into());
            }
        }
        Vec::new()
    }

    /// Open (or return to) the editor of `target`; a kept buffer wins over `initial`.
    pub fn open_editor(&mut self, target: EditorTarget, initial: &str) {
        self.editors
            .entry(target)
            .or_insert_with(|| EditorBuffer::new(initial));
        self.overlay = Some(Overlay::Editor(target));
    }

    fn editor_key(&mut self, target: EditorTarget, key: KeyEvent) -> Vec<Command> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc => {
                // Closing keeps the buffer: reopening shows what was typed.
                self.overlay = None;
                if self.editors.get(&target).is_some_and(|b| b.is_modified()) {
                    self.notice = Some(
                        "edit kept; reopen to continue, Ctrl-G in the editor discards it".into(),
                    );
                }
                Vec::new()
            }
            KeyCode::Char('s') if ctrl => self.apply_editor(target),
            KeyCode::Char('g') if ctrl => {
                let initial = match target {
                    EditorTarget::Prompt { layer } => self
                        .run
                        .layers
                        .get(layer)
                        .map(|l| l.prompt.clone())
                        .unwrap_or_default(),
                    EditorTarget::Template { layer, role } => self.template_source(layer, role),
                    EditorTarget::Hidden { .. } => self
                        .editors
                        .get(&target)
                        .map(|b| b.original.clone())
                        .unwrap_or_default(),
                };
                self.editors.insert(target, EditorBuffer::new(&initial));
                self.notice = Some("edit discarded".into());
                Vec::new()
            }
            KeyCode::Char('c') if ctrl => self.interrupt(),
            KeyCode::Char('z') if ctrl => {
                if let Some(buf) = self.editors.get_mut(&target) {
                    buf.textarea.undo();
                }
                Vec::new()
            }
            _ => {
                if let Some(buf) = self.editors.get_mut(&target) {
                    if buf.textarea.input(key) {
                        buf.awaiting = false;
                    }
                }
                Vec::new()
            }
        }
    }

    fn apply_editor(&mut self, target: EditorTarget) -> Vec<Command> {
        if self.mode == Mode::Replay || !self.run.is_active() {
            self.notice = Some("the run is not active; nothing to apply to".into());
            return Vec::new();
        }
        let Some(text) = self.editors.get(&target).map(EditorBuffer::text) else {
            return Vec::new();
        };
        match target {
            EditorTarget::Prompt { layer } => {
                if text.trim().is_empty() {
                    self.set_editor_error(
                        target,
                        EditorError::from_message("a prompt cannot be empty"),
                    );
                    return Vec::new();
                }
                self.editors.remove(&target);
                self.overlay = None;
                self.notice = Some(format!("new prompt sent to layer {}", layer + 1));
                vec![Command::SetPrompt {
                    layer,
                    prompt: text,
                }]
            }
            EditorTarget::Hidden { layer, example } => {
                if text.trim().is_empty() {
                    self.set_editor_error(
                        target,
                        EditorError::from_message("a hidden text cannot be empty"),
                    );
                    return Vec::new();
                }
                self.editors.remove(&target);
                self.overlay = None;
                self.notice = Some(format!("hidden text sent for example {}", example + 1));
                vec![Command::AddHidden {
                    layer,
                    example,
                    text,
                }]
            }
            EditorTarget::Template { layer, role } => {
                if let Some(check) = &self.template_check {
                    if let Err(message) = check(layer, role.into(), &text) {
                        self.set_editor_error(target, EditorError::from_message(&message));
                        return Vec::new();
                    }
                }
                if let Some(buf) = self.editors.get_mut(&target) {
                    buf.error = None;
                    buf.awaiting = true;
                }
                self.notice = Some(
                    "template sent; the engine validates it at the next stage boundary".into(),
                );
                vec![Command::SetTemplate {
                    layer,
                    role: role.into(),
                    source: text,
                }]
            }
        }
    }

    fn picker_key(&mut self, layer: usize, selected: usize, key: KeyEvent) {
        let n = TemplateRoleOrd::ALL.len();
        let choose = |app: &mut App, i: usize| {
            let role = TemplateRoleOrd::ALL[i];
            if !app.has_template(layer, role) {
                app.notice = Some(format!(
                    "layer {} reads the input directly: it has no {} template",
                    layer + 1,
                    super::run_view::role_name(role.into())
                ));
                return;
            }
            let source = app.template_source(layer, role);
            app.open_editor(EditorTarget::Template { layer, role }, &source);
        };
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => self.overlay = None,
            KeyCode::Up | KeyCode::Char('k') => {
                self.overlay = Some(Overlay::TemplatePicker {
                    layer,
                    selected: (selected + n - 1) % n,
                })
            }
            KeyCode::Down | KeyCode::Char('j') | KeyCode::Tab => {
                self.overlay = Some(Overlay::TemplatePicker {
                    layer,
                    selected: (selected + 1) % n,
                })
            }
            KeyCode::Enter => choose(self, selected),
            KeyCode::Char(c @ '1'..='4') => choose(self, usize::from(c as u8 - b'1')),
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.overlay = None;
            }
            _ => {}
        }
    }

    fn filter_key(&mut self, key: KeyEvent) {
        let title = self.focus.title();
        match key.code {
            KeyCode::Enter => self.overlay = None,
            KeyCode::Esc => {
                self.filters.remove(title);
                self.overlay = None;
            }
            KeyCode::Backspace => {
                if let Some(f) = self.filters.get_mut(title) {
                    f.pop();
                }
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.filters.entry(title).or_default().push(c);
            }
            _ => {}
        }
        self.sel.example = 0;
        self.sel.candidate = 0;
    }

    fn confirm_key(&mut self, key: KeyEvent) -> Vec<Command> {
        match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                self.overlay = None;
                self.stop_and_exit()
            }
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => self.interrupt(),
            _ => {
                self.overlay = None;
                Vec::new()
            }
        }
    }

    fn quit(&mut self) -> Vec<Command> {
        if self.exit == Exit::Stopping {
            // A second q while stopping: the last checkpoint stays resumable.
            self.exit = Exit::Now;
            return Vec::new();
        }
        if self.mode == Mode::Live && self.run.is_active() && self.run.started {
            self.overlay = Some(Overlay::ConfirmQuit);
            return Vec::new();
        }
        self.exit = Exit::Now;
        Vec::new()
    }

    /// Ctrl-C, SIGTERM: stop the run (checkpoint) without asking; a second one leaves at once.
    pub fn interrupt(&mut self) -> Vec<Command> {
        if self.exit == Exit::Stopping {
            self.exit = Exit::Now;
            return Vec::new();
        }
        self.overlay = None;
        self.stop_and_exit()
    }

    fn stop_and_exit(&mut self) -> Vec<Command> {
        if self.mode == Mode::Live && self.run.is_active() && self.run.started {
            self.exit = Exit::Stopping;
            self.notice = Some("stopping: writing a checkpoint… (q again leaves at once)".into());
            vec![Command::Stop]
        } else {
            self.exit = Exit::Now;
            Vec::new()
        }
    }

    /// The engine's event stream ended (the session task finished).
    pub fn events_closed(&mut self) {
        if self.exit == Exit::Stopping {
            self.exit = Exit::Now;
        }
        if self
            .run
            .state
            .is_some_and(|s| !matches!(s, RunState::Finished | RunState::Failed))
        {
            self.notice = Some("the run ended".into());
        }
    }

    fn move_by(&mut self, delta: isize) {
        let step = |v: usize| -> usize {
            if delta < 0 {
                v.saturating_sub(delta.unsigned_abs())
            } else {
                v.saturating_add(delta as usize)
            }
        };
        match self.focus {
            Pane::Layers => self.sel.layer_scroll = step(self.sel.layer_scroll),
            Pane::Candidates => {
                let n = self.candidate_rows().len();
                self.sel.candidate = step(self.sel.candidate).min(n.saturating_sub(1));
            }
            Pane::Hidden => {
                let n = self.hidden_rows().len();
                let next = step(self.sel.example).min(n.saturating_sub(1));
                if next != self.sel.example {
                    self.sel.sample = 0;
                }
                self.sel.example = next;
            }
            Pane::Metrics => {
                let area = Rect::new(0, 0, self.viewport.0, self.viewport.1);
                let max = layout::screen(area)
                    .pane_rect(Pane::Metrics, Pane::Metrics)
                    .map(|r| view::metrics::max_scroll(self, r))
                    .unwrap_or(0);
                self.sel.metrics_scroll = step(self.sel.metrics_scroll).min(max);
            }
        }
    }

    /// Left/right: the layer in most panes, the sample in the hidden pane.
    fn sideways(&mut self, delta: isize) {
        if self.focus == Pane::Hidden {
            let n = self
                .hidden_layer()
                .and_then(|l| self.run.posteriors.get(&l))
                .and_then(|p| {
                    self.hidden_rows()
                        .get(self.sel.example)
                        .and_then(|i| p.examples.get(*i))
                })
                .map(|e| e.samples.len())
                .unwrap_or(0);
            if n == 0 {
                return;
            }
            self.sel.sample =
                (self.sel.sample.min(n - 1) as isize + delta).rem_euclid(n as isize) as usize;
            return;
        }
        let n = self.run.depth();
        if n == 0 {
            return;
        }
        self.select_layer((self.sel.layer as isize + delta).rem_euclid(n as isize) as usize);
    }

    /// Make `layer` the one the Layers and Candidates panes act on, chosen by the person.
    fn select_layer(&mut self, layer: usize) {
        self.sel.layer = layer;
        self.sel.layer_chosen = true;
        // The hidden pane follows: it shows the hidden text the selected layer reads.
        if self.run.posteriors.contains_key(&self.sel.layer) {
            self.sel.hidden_layer = Some(self.sel.layer);
        }
        self.sel.layer_scroll = 0;
        self.sel.candidate = 0;
    }

    fn scrub(&mut self, forward: bool) {
        let Some(r) = self.replay.as_mut() else {
            self.notice = Some("[ and ] move through iterations in `dln replay`".into());
            return;
        };
        let last = r.iterations.len().saturating_sub(1);
        r.position = if forward {
            (r.position + 1).min(last)
        } else {
            r.position.saturating_sub(1)
        };
        self.rebuild_replay();
    }

    /// Mouse: a click focuses the pane (or tab) under it and selects the row it lands on; a
    /// click on the already selected row of the focused pane (so also a double-click) acts like
    /// Enter. The wheel scrolls the focused pane.
    pub fn handle_mouse(&mut self, ev: MouseEvent) {
        let area = Rect::new(0, 0, self.viewport.0, self.viewport.1);
        let screen: Screen = layout::screen(area);
        match ev.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                if self.overlay.is_some() {
                    return;
                }
                let at = Position::new(ev.column, ev.row);
                let Some(pane) = layout::pane_at(&screen, self.focus, at) else {
                    return;
                };
                let was_focused = self.focus == pane;
                self.focus = pane;
                let hit = screen
                    .pane_rect(pane, pane)
                    .and_then(|rect| view::hit(self, pane, rect, at));
                if let Some(hit) = hit {
                    self.click(hit, was_focused);
                }
            }
            MouseEventKind::ScrollDown => self.move_by(1),
            MouseEventKind::ScrollUp => self.move_by(-1),
            _ => {}
        }
    }

    /// Select what a click hit, or expand it when it already was the selection.
    fn click(&mut self, hit: Hit, was_focused: bool) {
        let again = |current: usize, n: usize, row: usize| {
            was_focused && current.min(n.saturating_sub(1)) == row
        };
        match hit {
            Hit::Layer(layer) => {
                if was_focused && self.sel.layer == layer {
                    self.handle_action(Action::Expand);
                } else {
                    self.select_layer(layer);
                }
            }
            Hit::Candidate(row) => {
                if again(self.sel.candidate, self.candidate_rows().len(), row) {
                    self.handle_action(Action::Expand);
                } else {
                    self.sel.candidate = row;
                }
            }
            Hit::Example(row) => {
                if again(self.sel.example, self.hidden_rows().len(), row) {
                    self.handle_action(Action::Expand);
                } else {
                    self.sel.example = row;
                    self.sel.sample = 0;
                }
            }
            Hit::Sample(i) => {
                if was_focused && self.sel.sample == i {
                    self.handle_action(Action::Expand);
                } else {
                    self.sel.sample = i;
                }
            }
        }
    }
}
