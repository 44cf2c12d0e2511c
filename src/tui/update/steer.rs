//! Actions that change the run (pause, step, pin, edit, write or exclude a hidden text): each
//! becomes a [`Command`] or opens the editor that will send one. Whether one is available now is
//! decided before, by [`available_actions`](crate::tui::available::available_actions).

use crate::dln::events::{Command, RunState};
use crate::tui::action::Action;
use crate::tui::app::{App, Overlay, Pane};
use crate::tui::editor::{EditorBuffer, EditorTarget};

impl App {
    /// A steering action that [`available_actions`](crate::tui::available::available_actions)
    /// allows now.
    pub(super) fn steer(&mut self, action: Action) -> Vec<Command> {
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
                self.notice = Some("one stage".into());
                return vec![Command::Step];
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
            Action::AddDemo => return self.add_demo(),
            Action::RemoveDemo => return self.remove_demo(),
            Action::PinDemos => return self.pin_demos(),
            Action::Feedback => self.feedback_editor(),
            Action::ExternalEdit => self.external_edit(),
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
                self.notice = Some(format!(
                    "including sample {} of example {} again",
                    sample + 1,
                    example + 1
                ));
                vec![Command::IncludeSample {
                    layer,
                    example,
                    sample,
                }]
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
}
