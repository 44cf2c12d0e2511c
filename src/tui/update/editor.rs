//! Keys of the editor overlay: typing goes to the buffer; Ctrl-S applies (prompts and hidden
//! texts are sent; templates are checked here first, then validated by the engine), Ctrl-G
//! discards, Esc closes and keeps the buffer.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui_textarea::CursorMove;

use crate::dln::events::Command;
use crate::tui::app::{App, Mode};
use crate::tui::editor::{EditorBuffer, EditorError, EditorTarget};

pub(super) fn key(app: &mut App, target: EditorTarget, key: KeyEvent) -> Vec<Command> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Esc => {
            // Closing keeps the buffer: reopening shows what was typed.
            app.overlay = None;
            if app.editors.get(&target).is_some_and(|b| b.is_modified()) {
                app.notice =
                    Some("edit kept; reopen to continue, Ctrl-G in the editor discards it".into());
            }
            Vec::new()
        }
        KeyCode::Char('s') if ctrl => apply(app, target),
        // A note is a line: Enter sends it.
        KeyCode::Enter if matches!(target, EditorTarget::Feedback { .. }) => apply(app, target),
        KeyCode::Char('g') if ctrl => {
            let initial = match target {
                EditorTarget::Prompt { layer } => app
                    .run
                    .layers
                    .get(layer)
                    .map(|l| l.prompt.clone())
                    .unwrap_or_default(),
                EditorTarget::Template { layer, role } => app.template_source(layer, role),
                EditorTarget::Hidden { .. } | EditorTarget::Feedback { .. } => app
                    .editors
                    .get(&target)
                    .map(|b| b.original.clone())
                    .unwrap_or_default(),
            };
            app.editors.insert(target, EditorBuffer::new(&initial));
            app.notice = Some("edit discarded".into());
            Vec::new()
        }
        KeyCode::Char('c') if ctrl => app.interrupt(),
        KeyCode::Char('z' | 'u') if ctrl => {
            if let Some(buf) = app.editors.get_mut(&target) {
                buf.undo();
            }
            Vec::new()
        }
        KeyCode::Char('r') if ctrl => {
            if let Some(buf) = app.editors.get_mut(&target) {
                buf.redo();
            }
            Vec::new()
        }
        // Ctrl-Home / Ctrl-End: the start / the end of the text.
        KeyCode::Home | KeyCode::End if ctrl => {
            if let Some(buf) = app.editors.get_mut(&target) {
                let (row, col) = if key.code == KeyCode::Home {
                    (CursorMove::Top, CursorMove::Head)
                } else {
                    (CursorMove::Bottom, CursorMove::End)
                };
                buf.textarea.move_cursor(row);
                buf.textarea.move_cursor(col);
            }
            Vec::new()
        }
        _ => {
            if let Some(buf) = app.editors.get_mut(&target) {
                if buf.input(key) {
                    buf.awaiting = false;
                }
            }
            Vec::new()
        }
    }
}

/// Ctrl-S: sends the buffer of `target` (also what an external edit's save does).
pub(super) fn apply(app: &mut App, target: EditorTarget) -> Vec<Command> {
    if app.mode == Mode::Replay || !app.run.is_active() {
        app.notice = Some("the run is not active; nothing to apply to".into());
        return Vec::new();
    }
    let Some(text) = app.editors.get(&target).map(EditorBuffer::text) else {
        return Vec::new();
    };
    match target {
        EditorTarget::Prompt { layer } => send(
            app,
            target,
            "a prompt cannot be empty",
            format!("new prompt sent to layer {}", layer + 1),
            Command::SetPrompt {
                layer,
                prompt: text,
            },
        ),
        EditorTarget::Hidden { layer, example } => send(
            app,
            target,
            "a hidden text cannot be empty",
            format!("hidden text sent for example {}", example + 1),
            Command::AddHidden {
                layer,
                example,
                text,
            },
        ),
        EditorTarget::Feedback { layer, example } => send(
            app,
            target,
            "a note cannot be empty: write what the layer should do differently",
            format!(
                "note sent to layer {}; its next proposals are shown it",
                layer + 1
            ),
            Command::AddFeedback {
                layer,
                example,
                text: text.trim().to_string(),
            },
        ),
        EditorTarget::Template { layer, role } => {
            if let Some(check) = &app.template_check {
                if let Err(message) = check(layer, role, &text) {
                    app.set_editor_error(target, EditorError::from_message(&message));
                    return Vec::new();
                }
            }
            if let Some(buf) = app.editors.get_mut(&target) {
                buf.error = None;
                buf.awaiting = true;
            }
            app.notice =
                Some("template sent; the engine validates it at the next stage boundary".into());
            vec![Command::SetTemplate {
                layer,
                role,
                source: text,
            }]
        }
    }
}

/// Sends a prompt or a hidden text (refused when empty) and closes its editor.
fn send(
    app: &mut App,
    target: EditorTarget,
    empty: &str,
    notice: String,
    command: Command,
) -> Vec<Command> {
    let text = app
        .editors
        .get(&target)
        .map(EditorBuffer::text)
        .unwrap_or_default();
    if text.trim().is_empty() {
        app.set_editor_error(target, EditorError::from_message(empty));
        return Vec::new();
    }
    app.editors.remove(&target);
    app.overlay = None;
    app.notice = Some(notice);
    vec![command]
}
