//! What can cover the panes: the key help, the quit and branch confirmations, the template
//! chooser, a layer's notes, the editor (with a template's validation error shown in place, at
//! its line) and the lineage view (`lineage.rs`).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Padding, Paragraph};
use ratatui::Frame;

use super::layout::{centered, fitted, overlay_area};
use super::text::wrap;
use crate::template::TemplateRole;
use crate::tui::action::Action;
use crate::tui::app::{App, Overlay};
use crate::tui::editor::EditorTarget;

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    match app.overlay {
        None | Some(Overlay::FilterInput) => {}
        Some(Overlay::Help) => help(app, frame, area),
        Some(Overlay::ConfirmQuit) => confirm_quit(app, frame, area),
        Some(Overlay::ConfirmBranch { at }) => confirm_branch(app, frame, area, at),
        Some(Overlay::TemplatePicker { layer, selected }) => {
            picker(app, frame, area, layer, selected)
        }
        Some(Overlay::Editor(target)) => editor(app, frame, area, target),
        Some(Overlay::Notes { layer, selected }) => notes(app, frame, area, layer, selected),
        Some(Overlay::Lineage { layer }) => super::lineage::draw(
            &super::lineage::Input {
                theme: &app.theme,
                lineage: app.run.lineage.layer(layer),
                depth: app.run.depth(),
                selected: app.sel.lineage_node,
                scroll: app.sel.lineage_scroll,
            },
            frame,
            area,
        ),
    }
}

/// The layer's notes in force, the selected one marked, with the keys that act on them.
fn notes(app: &App, frame: &mut Frame, area: Rect, layer: usize, selected: usize) {
    let t = &app.theme;
    let r = centered(area, 70, 60, (50, 10));
    frame.render_widget(Clear, r);
    let block = popup(app, format!("Notes on layer {}", layer + 1));
    let inner = block.inner(r);
    frame.render_widget(block, r);
    let width = inner.width as usize;
    let notes = app
        .run
        .layers
        .get(layer)
        .map(|l| l.feedback.as_slice())
        .unwrap_or_default();
    let mut lines = Vec::new();
    if notes.is_empty() {
        lines.push(Line::from(Span::styled(
            "No notes on this layer: f writes one.",
            t.muted,
        )));
    }
    for (i, n) in notes.iter().enumerate() {
        let mark = if i == selected { "▶ " } else { "  " };
        let first = format!("{mark}{}. ", i + 1);
        let indent = super::text::width(&first);
        for (j, part) in wrap(&n.describe(), width.saturating_sub(indent).max(10))
            .into_iter()
            .enumerate()
        {
            let lead = if j == 0 {
                first.clone()
            } else {
                " ".repeat(indent)
            };
            lines.push(Line::from(vec![
                Span::styled(lead, t.key),
                Span::styled(part, t.human),
            ]));
        }
    }
    lines.push(Line::default());
    lines.push(Line::from(vec![
        Span::styled("↑↓", t.key),
        Span::styled(" select  ", t.muted),
        Span::styled("x", t.key),
        Span::styled(" remove  ", t.muted),
        Span::styled("Esc", t.key),
        Span::styled(" close", t.muted),
    ]));
    frame.render_widget(Paragraph::new(lines), inner);
}

fn popup<'a>(app: &App, title: String) -> Block<'a> {
    Block::bordered()
        .border_style(app.theme.border_focused)
        .title(Line::from(Span::styled(
            format!(" {title} "),
            app.theme.title,
        )))
}

/// Every key, for the help overlay (also checked by a test: no action is missing), wrapped to
/// `width` with the descriptions in a column after the keys.
pub fn help_lines(app: &App, width: usize) -> Vec<Line<'static>> {
    let t = &app.theme;
    let key_w = 14;
    let text_w = width.saturating_sub(key_w + 2).max(10);
    let mut lines: Vec<Line<'static>> = Vec::new();
    let entry = |lines: &mut Vec<Line<'static>>, keys: String, text: String| {
        for (i, part) in wrap(&text, text_w).into_iter().enumerate() {
            let k = if i == 0 {
                format!("{keys:>key_w$}  ")
            } else {
                " ".repeat(key_w + 2)
            };
            lines.push(Line::from(vec![
                Span::styled(k, t.key),
                Span::styled(part, t.text),
            ]));
        }
    };
    lines.push(Line::from(Span::styled(
        "Keys (rebind them under [keys] in the config file, by the names in brackets)",
        t.muted,
    )));
    for a in Action::ALL {
        let keys: Vec<String> = app
            .keymap
            .keys_for(*a)
            .iter()
            .map(|k| k.to_string())
            .collect();
        let keys = if keys.is_empty() {
            "—".to_string()
        } else {
            keys.join(" ")
        };
        entry(&mut lines, keys, format!("{} [{}]", a.help(), a.name()));
    }
    lines.push(Line::default());
    lines.push(Line::from(Span::styled("In the editor", t.title)));
    for (k, what) in [
        (
            "Ctrl-S",
            "apply (templates are validated first; an error shows at its line)",
        ),
        ("Esc", "close; the text is kept for when you come back"),
        (
            "Ctrl-G",
            "discard the edit and start again from the current text",
        ),
        (
            "Ctrl-Z Ctrl-U",
            "undo the last word, deletion or line break",
        ),
        ("Ctrl-Home Ctrl-End", "the start / the end of the text"),
        ("Ctrl-R", "redo"),
        ("Ctrl-C", "stop the run and leave (as everywhere)"),
    ] {
        entry(&mut lines, k.to_string(), what.to_string());
    }
    lines.push(Line::default());
    lines.push(Line::from(Span::styled("What the panes show", t.title)));
    for (k, what) in [
        ("✓ ✗", "the example's prediction is right / wrong"),
        ("entropy", "(the paper's H) of an example's posterior weights, 0 to 1: high = the samples are about equally likely, undecided"),
        ("log p(y|h)", "a posterior sample's log-likelihood: how well the layer above predicts the target from it"),
        ("log p(h|x)", "its log-prior: how likely the layer below writes it for the input"),
        ("weight", "the sample's sharpened weight w (from the log-weight w̃ = log-likelihood + log-prior); ★ the best"),
        ("empty: -50", "the log-probability an empty text is given (nothing to score)"),
        ("score · vs best", "a candidate's score, and its score minus the best candidate's"),
        ("…", "the rows share the beginning said above them (\"every input starts: …\"); each shows the rest"),
        ("★ ◆", "the winning candidate / a pinned layer (not updated)"),
        ("L1 L2", "layer 1, layer 2: layers, iterations and examples count from 1"),
    ] {
        entry(&mut lines, k.to_string(), what.to_string());
    }
    lines.push(Line::default());
    entry(
        &mut lines,
        "mouse".into(),
        "click a pane or tab to focus it, a row to select it, the selected row to expand it; the wheel scrolls".into(),
    );
    entry(
        &mut lines,
        "theme".into(),
        format!(
            "{} (--theme, or theme = \"…\" in the config file; NO_COLOR gives mono)",
            t.name
        ),
    );
    lines
}

fn help(app: &App, frame: &mut Frame, area: Rect) {
    let r = overlay_area(area, 80, 90);
    frame.render_widget(Clear, r);
    let block = popup(app, "Help · ? or Esc closes".into());
    let inner = block.inner(r);
    frame.render_widget(block, r);
    let lines = help_lines(app, inner.width as usize);
    let max_start = lines.len().saturating_sub(inner.height as usize);
    let start = app.sel.help_scroll.min(max_start);
    frame.render_widget(
        Paragraph::new(lines.into_iter().skip(start).collect::<Vec<_>>()),
        inner,
    );
}

/// The quit confirmation, sized to its text: the resume command on a line of its own so the
/// run directory is never broken (it can be copied as a whole).
fn confirm_branch(app: &App, frame: &mut Frame, area: Rect, at: usize) {
    let t = &app.theme;
    let point = if at == 0 {
        "from the start (after the first evaluation)".to_string()
    } else {
        format!("after iteration {at}")
    };
    let this_run = if app.mode == crate::tui::Mode::Live && app.run.is_active() {
        "This run stops with a checkpoint (dln resume continues it)."
    } else {
        "This run is left as it is."
    };
    let body = vec![
        Line::from(Span::styled(format!("Branch a new run {point}?"), t.title)),
        Line::default(),
        Line::from(Span::styled(
            "It opens paused: edit prompts or templates, then Space trains it.",
            t.text,
        )),
        Line::from(Span::styled(this_run, t.text)),
    ];
    confirm(app, frame, area, "Branch", body, ("branch", "cancel"));
}

fn confirm_quit(app: &App, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let dir = if app.run.run_dir.is_empty() {
        "RUN_DIR".to_string()
    } else {
        app.run.run_dir.clone()
    };
    let body = vec![
        Line::from(Span::styled("A run is active. Stop it and quit?", t.title)),
        Line::default(),
        Line::from(Span::styled(
            "A checkpoint is written; this continues it:",
            t.text,
        )),
        Line::from(Span::styled(format!("dln resume {dir}"), t.key)),
    ];
    confirm(
        app,
        frame,
        area,
        "Quit",
        body,
        ("stop and quit", "keep going"),
    );
}

/// A question in a box: its lines, then `y / Enter` and `any other key` with what each does.
fn confirm(
    app: &App,
    frame: &mut Frame,
    area: Rect,
    title: &str,
    mut text: Vec<Line<'static>>,
    (yes, no): (&str, &str),
) {
    let t = &app.theme;
    text.push(Line::default());
    text.push(Line::from(vec![
        Span::styled("y", t.key),
        Span::styled(" / ", t.muted),
        Span::styled("Enter", t.key),
        Span::styled(format!("  {yes}"), t.muted),
    ]));
    text.push(Line::from(vec![
        Span::styled("any other key", t.key),
        Span::styled(format!("  {no}"), t.muted),
    ]));
    let width = text.iter().map(Line::width).max().unwrap_or(0);
    let r = fitted(area, (width + 2, text.len()));
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(text).block(popup(app, title.into()).padding(Padding::horizontal(1))),
        r,
    );
}

fn picker(app: &App, frame: &mut Frame, area: Rect, layer: usize, selected: usize) {
    let t = &app.theme;
    let r = centered(area, 50, 40, (46, 9));
    frame.render_widget(Clear, r);
    let mut lines = vec![
        Line::from(Span::styled("Which template?", t.muted)),
        Line::default(),
    ];
    for (i, role) in TemplateRole::SLOTS.iter().enumerate() {
        let target = EditorTarget::Template { layer, role: *role };
        let mut spans = vec![
            Span::styled(if i == selected { "▶ " } else { "  " }, t.title),
            Span::styled(format!("{} ", i + 1), t.key),
            Span::styled(role.name(), t.text),
        ];
        if !role.is_slot_of(layer) {
            spans.push(Span::styled("  (none on this layer)", t.muted));
        } else if app.editors.get(&target).is_some_and(|b| b.is_modified()) {
            spans.push(Span::styled("  (unsaved edit)", t.human));
        }
        let line = Line::from(spans);
        lines.push(if i == selected {
            super::highlight(line, t.selection)
        } else {
            line
        });
    }
    lines.push(Line::default());
    lines.push(Line::from(Span::styled(
        "Enter or 1-4 opens · Esc cancels",
        t.muted,
    )));
    frame.render_widget(
        Paragraph::new(lines).block(popup(app, format!("Templates · layer {}", layer + 1))),
        r,
    );
}

fn editor(app: &App, frame: &mut Frame, area: Rect, target: EditorTarget) {
    let t = &app.theme;
    let Some(buf) = app.editors.get(&target) else {
        return;
    };
    let r = overlay_area(area, 85, 85);
    frame.render_widget(Clear, r);
    let modified = if buf.is_modified() {
        " · modified"
    } else {
        ""
    };
    let block = popup(app, format!("{}{modified}", target.title()));
    let inner = block.inner(r);
    frame.render_widget(block, r);
    let error_lines: Vec<Line> = match &buf.error {
        Some(e) => {
            let where_ = e.line.map(|l| format!("line {l}: ")).unwrap_or_default();
            let mut lines: Vec<Line> =
                wrap(&format!("✗ {where_}{}", e.message), inner.width as usize)
                    .into_iter()
                    .take(4)
                    .map(|l| Line::from(Span::styled(l, t.error)))
                    .collect();
            if matches!(target, EditorTarget::Template { .. }) {
                lines.push(Line::from(Span::styled(
                    "the run keeps the old template until this is fixed or discarded (Ctrl-G)",
                    t.muted,
                )));
            }
            lines
        }
        None if buf.awaiting => vec![Line::from(Span::styled(
            "sent; waiting for the engine to validate it at the next stage boundary…",
            t.warning,
        ))],
        None => Vec::new(),
    };
    let [text_r, err_r, hint_r] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(error_lines.len() as u16),
        Constraint::Length(1),
    ])
    .areas(inner);
    frame.render_widget(&buf.textarea, text_r);
    frame.render_widget(Paragraph::new(error_lines), err_r);
    let apply = match target {
        EditorTarget::Template { .. } => " validate and apply",
        EditorTarget::Prompt { .. } => " apply the prompt",
        EditorTarget::Hidden { .. } => " add as a posterior sample",
        EditorTarget::Feedback { .. } => " send the note",
    };
    let hints = Line::from(vec![
        Span::styled("Ctrl-S", t.key),
        Span::styled(format!("{apply}  "), t.muted),
        Span::styled("Esc", t.key),
        Span::styled(" close (kept)  ", t.muted),
        Span::styled("Ctrl-G", t.key),
        Span::styled(" discard", t.muted),
    ]);
    frame.render_widget(Paragraph::new(hints), hint_r);
}
