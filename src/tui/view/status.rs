//! The tab bar (small screens), the status line (run state, task, model, iteration) and the hint
//! line (the keys that work in the focused pane, the filter being typed, or the last notice).

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::text::duration_ms;
use crate::dln::events::{RunState, StopReason};
use crate::tui::action::Action;
use crate::tui::app::{App, Exit, Mode, Overlay, Pane, RecordedEnd};
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

/// The run state's label and style; a replay says how the recorded run ended.
fn state_badge(app: &App) -> (String, ratatui::style::Style) {
    let t = &app.theme;
    if app.mode == Mode::Replay {
        let end = app.recorded_end().unwrap_or(RecordedEnd::Unfinished);
        let style = match end {
            RecordedEnd::Finished => t.status_running,
            RecordedEnd::Failed => t.status_stopped,
            RecordedEnd::Stopped | RecordedEnd::Unfinished => t.status_paused,
        };
        return (format!(" REPLAY · {} ", end.label().to_uppercase()), style);
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
                    Some(
                        StopReason::Budget
                            | StopReason::BackendUnavailable
                            | StopReason::WriteFailed
                    )
                ) =>
        {
            let reason = app.run.stop_reason.map_or("stopped", StopReason::name);
            (format!(" {} ", reason.to_uppercase()), t.status_stopped)
        }
        Some(RunState::Finished) => (" FINISHED ".into(), t.status_running),
        Some(RunState::Failed) => (" FAILED ".into(), t.status_stopped),
    }
}

/// The status line's parts in display order, each with its rank (0 = kept longest): the
/// iteration, the stage with its counter and the ETA come first and go last, so every size
/// shows how far the run is.
pub fn status_parts(app: &App) -> Vec<(u8, String)> {
    let run = &app.run;
    let mut parts: Vec<(u8, String)> = Vec::new();
    if run.started {
        match app.replay_position() {
            Some((pos, n, it)) if it >= run.iterations && run.iterations > 0 => {
                parts.push((0, format!("after training, test ({}/{n})", pos + 1)))
            }
            Some((pos, n, it)) => {
                parts.push((0, format!("iteration {} ({}/{n})", it + 1, pos + 1)))
            }
            None => parts.push((
                0,
                format!(
                    "it {}/{}",
                    (run.iteration + 1).min(run.iterations.max(1)),
                    run.iterations
                ),
            )),
        }
    }
    // What runs now, live only: a replay shows recorded state, not a stage in progress.
    if let Some(now) = super::stage_now(app) {
        parts.push((1, now));
    }
    if app.mode == Mode::Live && run.is_active() {
        if let Some(ms) = run.eta_ms() {
            parts.push((2, format!("ETA {}", duration_ms(ms))));
        }
    }
    if !run.task.is_empty() {
        parts.push((3, run.task.clone()));
    }
    if run.started {
        let method = if run.gepa {
            "GEPA".to_string()
        } else {
            format!("DLN-{}", run.depth())
        };
        parts.push((5, method));
    }
    if !run.model.is_empty() {
        parts.push((4, short_model(&run.model)));
    }
    if let Some((it, _)) = &run.last_checkpoint {
        parts.push((6, format!("checkpoint after it {it}")));
    }
    parts
}

/// Drops the least important parts (highest rank) until the rest, joined by ` · `, fit in
/// `width`; a part is never cut.
pub fn fit_parts(mut parts: Vec<(u8, String)>, width: usize) -> Vec<String> {
    let joined = |p: &[(u8, String)]| -> usize {
        p.iter().map(|(_, s)| s.chars().count()).sum::<usize>() + 3 * p.len().saturating_sub(1)
    };
    while joined(&parts) > width && !parts.is_empty() {
        let worst = parts
            .iter()
            .enumerate()
            .max_by_key(|(i, (rank, _))| (*rank, *i))
            .map(|(i, _)| i)
            .unwrap_or(0);
        parts.remove(worst);
    }
    parts.into_iter().map(|(_, s)| s).collect()
}

pub fn status_line(app: &App, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let (label, style) = state_badge(app);
    let mut spans = vec![Span::styled(label, style), Span::styled(" ", t.status)];
    let used: usize = spans.iter().map(|s| s.width()).sum();
    let room = (area.width as usize).saturating_sub(used);
    spans.push(Span::styled(
        fit_parts(status_parts(app), room).join(" · "),
        t.status,
    ));
    let used: usize = spans.iter().map(|s| s.width()).sum();
    spans.push(Span::styled(
        " ".repeat((area.width as usize).saturating_sub(used)),
        t.status,
    ));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The label of an action in the hint line: what it does, and for an action on a layer, which
/// layer (`e edit L1`), so the key is never pressed on the wrong one.
fn hint_label(app: &App, action: Action, label: &str) -> String {
    let on_layer = matches!(
        action,
        Action::EditPrompt
            | Action::EditTemplate
            | Action::Pin
            | Action::Unpin
            | Action::Feedback
            | Action::Notes
    );
    if action == Action::ExcludeSample && app.selected_sample_excluded() {
        "include".to_string()
    } else if on_layer && app.run.depth() > 0 {
        format!("{label} L{}", app.sel.layer + 1)
    } else {
        label.to_string()
    }
}

/// The hints that fit in `width`, in order: help and quit always; the others while they fit,
/// the least important (the last listed) dropped first.
pub fn fit_hints(hints: Vec<(Action, String, String)>, width: usize) -> Vec<(String, String)> {
    let w = |(_, key, label): &(Action, String, String)| {
        key.chars().count() + label.chars().count() + 3
    };
    let kept_always = |a: Action| matches!(a, Action::Help | Action::Quit);
    let mut used: usize = hints.iter().filter(|h| kept_always(h.0)).map(w).sum();
    let mut keep = vec![false; hints.len()];
    // Later hints are less important: once one does not fit, none after it is shown.
    let mut full = false;
    for (i, h) in hints.iter().enumerate() {
        if kept_always(h.0) {
            keep[i] = true;
        } else if !full && used + w(h) <= width {
            keep[i] = true;
            used += w(h);
        } else {
            full = true;
        }
    }
    hints
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|((_, key, label), _)| (key, label))
        .collect()
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
    let hints = available_actions(app)
        .into_iter()
        .filter(|a| a.hinted)
        .map(|a| {
            (
                a.action,
                app.keymap.key_label(a.action),
                hint_label(app, a.action, a.label),
            )
        })
        .collect();
    let mut spans = Vec::new();
    for (key, label) in fit_hints(hints, area.width as usize) {
        spans.push(Span::styled(key, t.key));
        spans.push(Span::styled(format!(" {label}  "), t.muted));
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
