//! A person's written notes on a layer: `f` opens the editor of a new note (on the selected
//! layer, or in the Hidden pane on the selected example), `F` lists the layer's notes in force,
//! where `↑`/`↓` select one and `x` removes it (a live run only; a replay shows them).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::dln::events::Command;
use crate::tui::app::{App, Mode, Overlay, Pane};
use crate::tui::editor::EditorTarget;

impl App {
    /// `f`: the editor of a note on the selected layer, or on the selected example (its
    /// training-split index) when the Hidden pane is focused on one.
    pub(super) fn feedback_editor(&mut self) {
        let layer = self.sel.layer;
        let example = (self.focus == Pane::Hidden)
            .then(|| self.selected_train_example())
            .flatten();
        self.open_editor(EditorTarget::Feedback { layer, example }, "");
    }

    /// The training-split index of the example selected in the Hidden pane, when known.
    fn selected_train_example(&self) -> Option<usize> {
        let rows = self.hidden_rows();
        let row = *rows.get(self.sel.example)?;
        let (_, forward) = self.run.forward.as_ref()?;
        let batch_index = match self.hidden_layer() {
            Some(l) => self.run.posteriors.get(&l)?.examples.get(row)?.index,
            None => forward.get(row)?.index,
        };
        forward.iter().find(|f| f.index == batch_index)?.train_index
    }

    /// `F`: the selected layer's notes in force.
    pub(super) fn open_notes(&mut self) {
        let layer = self.sel.layer;
        if self.run.layers.get(layer).is_none() {
            return;
        }
        self.overlay = Some(Overlay::Notes { layer, selected: 0 });
    }
}

pub(super) fn key(app: &mut App, layer: usize, selected: usize, key: KeyEvent) -> Vec<Command> {
    let n = app.run.layers.get(layer).map_or(0, |l| l.feedback.len());
    let at = |selected| Some(Overlay::Notes { layer, selected });
    match key.code {
        KeyCode::Esc | KeyCode::Char('q' | 'F') => app.overlay = None,
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
            app.overlay = None;
            return app.interrupt();
        }
        KeyCode::Up | KeyCode::Char('k') if n > 0 => app.overlay = at((selected + n - 1) % n),
        KeyCode::Down | KeyCode::Char('j') if n > 0 => app.overlay = at((selected + 1) % n),
        KeyCode::Char('x') | KeyCode::Delete => {
            if app.mode == Mode::Replay || !app.run.is_active() {
                app.notice = Some("read-only: notes are removed in a live run".into());
            } else if selected < n {
                app.notice = Some(format!(
                    "removing note {} of layer {}",
                    selected + 1,
                    layer + 1
                ));
                app.overlay = at(selected.min(n.saturating_sub(2)));
                return vec![Command::RemoveFeedback {
                    layer,
                    index: selected,
                }];
            } else {
                app.notice = Some("no note to remove".into());
            }
        }
        _ => {}
    }
    Vec::new()
}
