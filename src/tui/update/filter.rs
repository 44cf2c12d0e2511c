//! Keys while typing the focused pane's filter.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::tui::app::App;

pub(super) fn key(app: &mut App, key: KeyEvent) {
    let title = app.focus.title();
    match key.code {
        KeyCode::Enter => app.overlay = None,
        KeyCode::Esc => {
            app.filters.remove(title);
            app.overlay = None;
        }
        KeyCode::Backspace => {
            if let Some(f) = app.filters.get_mut(title) {
                f.pop();
            }
        }
        KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
            app.filters.entry(title).or_default().push(c);
        }
        _ => {}
    }
    app.sel.example = 0;
    app.sel.candidate = 0;
}
