//! What leaves the workbench: `y` copies the selected text to the clipboard with OSC 52, `E`
//! edits the selected prompt (or the picked template) in `$EDITOR`. Both are asked for as
//! [`TerminalEffect`]s that the loop carries out; an external edit comes back through
//! [`App::external_edit_done`] and is applied as the in-app editor's Ctrl-S would apply it.

use crate::dln::events::Command;
use crate::tui::app::{App, Mode, Overlay, Pane, TerminalEffect};
use crate::tui::editor::{EditorBuffer, EditorTarget};

impl App {
    /// `y`: the selected candidate's prompt, the selected hidden text (the posterior sample,
    /// else the forward pass's), or the selected layer's prompt.
    pub(super) fn copy_selected(&mut self) {
        let Some((what, text)) = self.selected_text() else {
            self.notice = Some("nothing selected to copy".into());
            return;
        };
        self.notice = Some(format!(
            "copied {what} ({}) to the clipboard",
            crate::tui::model::text::plural(text.chars().count(), "character")
        ));
        self.effects.push(TerminalEffect::Copy(text));
    }

    fn selected_text(&self) -> Option<(&'static str, String)> {
        let layer = self.run.layers.get(self.sel.layer);
        match self.focus {
            Pane::Candidates => {
                let l = layer?;
                let i = *self.candidate_rows().get(self.sel.candidate)?;
                Some((
                    "the candidate's prompt",
                    l.candidates.get(i)?.prompt.clone(),
                ))
            }
            Pane::Hidden => {
                let row = *self.hidden_rows().get(self.sel.example)?;
                if let Some(p) = self
                    .hidden_layer()
                    .and_then(|h| self.run.posteriors.get(&h))
                {
                    let ex = p.examples.get(row)?;
                    let s = ex
                        .samples
                        .get(self.sel.sample.min(ex.samples.len().saturating_sub(1)));
                    return Some((
                        "the hidden text",
                        s.map_or(ex.hidden.clone(), |s| s.text.clone()),
                    ));
                }
                let (_, examples) = self.run.forward.as_ref()?;
                let ex = examples.get(row)?;
                match ex.hidden.last() {
                    Some(h) => Some(("the hidden text", h.clone())),
                    None => Some(("the example's input", ex.input.clone())),
                }
            }
            Pane::Layers | Pane::Metrics => Some(("the layer's prompt", layer?.prompt.clone())),
        }
    }

    /// `E`: the selected prompt in `$EDITOR` (the selected candidate's, in the Candidates pane,
    /// to become the layer's prompt). A buffer kept from the in-app editor wins.
    pub(super) fn external_edit(&mut self) {
        let layer = self.sel.layer;
        let Some(l) = self.run.layers.get(layer) else {
            return;
        };
        let mut text = l.prompt.clone();
        if self.focus == Pane::Candidates {
            if let Some(c) = self
                .candidate_rows()
                .get(self.sel.candidate)
                .and_then(|i| l.candidates.get(*i))
            {
                text = c.prompt.clone();
            }
        }
        self.ask_external_edit(EditorTarget::Prompt { layer }, text);
    }

    /// Asks the loop to open `target` in `$EDITOR`, starting from a kept buffer or `initial`.
    pub(crate) fn ask_external_edit(&mut self, target: EditorTarget, initial: String) {
        if self.mode == Mode::Replay || !self.run.is_active() {
            self.notice = Some("the run is not active; nothing to apply an edit to".into());
            return;
        }
        let text = self
            .editors
            .get(&target)
            .map(EditorBuffer::text)
            .unwrap_or(initial);
        self.effects
            .push(TerminalEffect::ExternalEdit { target, text });
    }

    /// What `$EDITOR` gave back for `target`: saved text is applied like the in-app editor's
    /// Ctrl-S (a template is checked first and, if refused, stays open in the in-app editor with
    /// the error); an unchanged text or a failed editor sends nothing.
    pub fn external_edit_done(
        &mut self,
        target: EditorTarget,
        before: &str,
        result: Result<String, String>,
    ) -> Vec<Command> {
        let text = match result {
            Ok(t) => t,
            Err(why) => {
                self.notice = Some(format!("external editor: {why}"));
                return Vec::new();
            }
        };
        // Editors end files with a newline; the text had none.
        let text = text.strip_suffix('\n').unwrap_or(&text).to_string();
        if text == before {
            self.notice = Some("unchanged in the external editor: nothing sent".into());
            return Vec::new();
        }
        let mut buf = EditorBuffer::new(&text);
        buf.original = before.to_string();
        self.editors.insert(target, buf);
        self.overlay = Some(Overlay::Editor(target));
        super::editor::apply(self, target)
    }
}
