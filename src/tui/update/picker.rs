//! Keys of the template picker: which of the layer's template slots to edit (Enter or 1–4 in
//! the in-app editor, `E` in `$EDITOR`).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::template::TemplateRole;
use crate::tui::app::{App, Overlay};
use crate::tui::editor::EditorTarget;

pub(super) fn key(app: &mut App, layer: usize, selected: usize, key: KeyEvent) {
    let n = TemplateRole::SLOTS.len();
    let choose = |app: &mut App, i: usize, external: bool| {
        let role = TemplateRole::SLOTS[i];
        if !role.is_slot_of(layer) {
            app.notice = Some(format!(
                "layer {} reads the input directly: it has no {role} template",
                layer + 1
            ));
            return;
        }
        let source = app.template_source(layer, role);
        let target = EditorTarget::Template { layer, role };
        if external {
            app.overlay = None;
            app.ask_external_edit(target, source);
        } else {
            app.open_editor(target, &source);
        }
    };
    match key.code {
        KeyCode::Esc | KeyCode::Char('q') => app.overlay = None,
        KeyCode::Up | KeyCode::Char('k') => {
            app.overlay = Some(Overlay::TemplatePicker {
                layer,
                selected: (selected + n - 1) % n,
            })
        }
        KeyCode::Down | KeyCode::Char('j') | KeyCode::Tab => {
            app.overlay = Some(Overlay::TemplatePicker {
                layer,
                selected: (selected + 1) % n,
            })
        }
        KeyCode::Enter => choose(app, selected, false),
        KeyCode::Char('E') => choose(app, selected, true),
        KeyCode::Char(c @ '1'..='4') => choose(app, usize::from(c as u8 - b'1'), false),
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
            app.overlay = None;
        }
        _ => {}
    }
}
