//! The tab bar (small screens), the status line (run state, task, model, iteration) and the hint
//! line (the keys that work in the focused pane, the filter being typed, or the last notice).

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::dln::events::{RunState, StopReason};
use crate::tui::app::{App, Exit, Mode, Overlay, Pane};
use crate::tui::available::available_actions;

pub fn tabs(app: &App, frame: &mut Frame, bar: Rect, tabs: &[(Pane, Rect)]) {
    let t = &app.theme;
    let mut spans = Vec::new();
    for (i, (pane, _)) in tabs.iter().enumerate() {
        let style = if *pane == app.focus {
            t.selection.patch(t.title)
        } else {
            t.muted
        };
        spans.push(Span::styled(format!(" {} {} ", i + 1, pane.title()), style));
        spans.push(Span::styled("│", t.border));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), bar);
}

/// The run state's label and style.
fn state_badge(app: &App) -> (String, ratatui::style::Style) {
    let t = &app.theme;
    if app.mode == Mode::Replay {
        return (" REPLAY ".into(), t.status_paused);
    }
    match app.shown_state() {
        None => (" STARTING ".into(), t.status_paused),
        Some(RunState::Running) => (" RUNNING ".into(), t.status_running),
        Some(RunState::Pausing) => (" PAUSING… ".into(), t.status_paused),
        Some(RunState::Paused) => (" PAUSED ".into(), t.status_paused),
        Some(RunState::Stopping) => (" STOPPING ".into(), t.status_stopped),
        // A run stopped by its budget or a server that is down says so (resumable).
        Some(RunState::Finished)
            if app.run.stopped_early
                && matches!(
                    app.run.stop_reason,
                    Some(StopReason::Budget | StopReason::BackendUnavailable)
                ) =>
        {
            let reason = app.run.stop_reason.map_or("stopped", StopReason::name);
            (format!(" {} ", reason.to_uppercase()), t.status_stopped)
        }
        Some(RunState::Finished) => (" FINISHED ".into(), t.status_running),
        Some(RunState::Failed) => (" FAILED ".into(), t.status_stopped),
    }
}

pub fn status_line(app: &App, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let (label, style) = state_badge(app);
    let mut spans = vec![Span::styled(label, style), Span::styled(" ", t.status)];
    let run = &app.run;
    let mut parts: Vec<String> = Vec::new();
    if !run.task.is_empty() {
        parts.push(run.task.clone());
    }
    if !run.model.is_empty() {
        parts.push(short_model(&run.model));
    }
    if run.started {
        parts.push(format!("DLN-{}", run.depth()));
        parts.push(match app.replay_position() {
            Some((pos, n, it)) if it >= run.iterations && run.iterations > 0 => {
                format!("after training, test ({}/{n})", pos + 1)
            }
            Some((pos, n, it)) => format!("iteration {} ({}/{n})", it + 1, pos + 1),
            None => format!(
                "it {}/{}",
                (run.iteration + 1).min(run.iterations.max(1)),
                run.iterations
            ),
        });
    }
    if let Some((it, _)) = &run.last_checkpoint {
        parts.push(format!("checkpoint after it {it}"));
    }
    spans.push(Span::styled(parts.join(" · "), t.status));
    let used: usize = spans.iter().map(|s| s.width()).sum();
    spans.push(Span::styled(
        " ".repeat((area.width as usize).saturating_sub(used)),
        t.status,
    ));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

pub fn hints_line(app: &App, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    if app.overlay == Some(Overlay::FilterInput) {
        let line = Line::from(vec![
            Span::styled("filter ", t.key),
            Span::styled(format!("{}▏", app.filter(app.focus)), t.text),
            Span::styled("  Enter keep · Esc clear", t.muted),
        ]);
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    if let Some(n) = &app.notice {
        let style = if n.starts_with("error") {
            t.error
        } else {
            t.warning
        };
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(n.clone(), style))),
            area,
        );
        return;
    }
    if app.exit == Exit::Stopping {
        let line = Span::styled(
            "stopping: waiting for the checkpoint… (q again leaves at once)",
            t.warning,
        );
        frame.render_widget(Paragraph::new(Line::from(line)), area);
        return;
    }
    let actions = available_actions(app)
        .into_iter()
        .filter(|a| a.hinted)
        .map(|a| (a.action, a.label));
    let mut spans = Vec::new();
    let mut used = 0usize;
    for (a, label) in actions {
        let key = app.keymap.key_label(a);
        let w = key.chars().count() + label.chars().count() + 3;
        if used + w > area.width as usize {
            break;
        }
        spans.push(Span::styled(key, t.key));
        spans.push(Span::styled(format!(" {label}  "), t.muted));
        used += w;
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// A model id as the status line shows it: the GGUF file's stem for the embedded engine's long
/// ids (`llama.cpp:NAME.gguf:size:hash:…`), the model name for an HTTP backend's
/// (`openai:MODEL@URL:MODE`), the id itself otherwise.
pub fn short_model(id: &str) -> String {
    if let Some((model, _)) = id.strip_prefix("openai:").and_then(|r| r.split_once('@')) {
        return format!("{model} (HTTP)");
    }
    match id.split(':').find(|part| part.ends_with(".gguf")) {
        Some(file) => file.trim_end_matches(".gguf").to_string(),
        None => id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::short_model;

    #[test]
    fn model_ids_are_shortened_for_the_status_line() {
        assert_eq!(
            short_model("llama.cpp:SmolLM2-135M.gguf:123:abc:ctx2048"),
            "SmolLM2-135M"
        );
        assert_eq!(
            short_model("openai:qwen2.5:0.5b@http://127.0.0.1:11434/v1:none"),
            "qwen2.5:0.5b (HTTP)"
        );
        assert_eq!(short_model("scripted"), "scripted");
    }
}
