//! The lineage view (`L`): the focused layer's prompts as a tree over iterations — winners,
//! rejected, pinned, edited marked — and for the selected one its full text, its word diff
//! against its parent and why it won or lost. Drawn over the panes from its own narrow input.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::layers::diff_lines;
use super::layout::overlay_area;
use super::text::{logp, wrap};
use super::{highlight, muted_line, window_start};
use crate::dln::lineage::{LayerLineage, Node, NodeKind};
use crate::tui::model::text::{one_line_of, width};
use crate::tui::theme::Theme;

/// What the view shows.
pub struct Input<'a> {
    pub theme: &'a Theme,
    /// The layer's tree (`None` before the run starts).
    pub lineage: Option<&'a LayerLineage>,
    pub depth: usize,
    /// The selected node's id.
    pub selected: usize,
    /// Lines scrolled in the selected node's details.
    pub scroll: usize,
}

/// The sign of a node in the tree: what became of it.
pub fn sign(l: &LayerLineage, n: &Node) -> &'static str {
    if n.id == l.current {
        "●"
    } else if n.edited {
        "✎"
    } else if n.pinned {
        "◆"
    } else if n.won {
        "★"
    } else if n.lost {
        "✗"
    } else if n.kind == NodeKind::Start {
        "○"
    } else {
        "·"
    }
}

/// How deep a node is (its ancestors), for the tree's indentation.
fn depth(l: &LayerLineage, id: usize) -> usize {
    l.ancestry(id).len().saturating_sub(1)
}

/// The tree's rows: one per node in the order they appeared, indented by depth.
pub fn tree_lines(v: &Input, l: &LayerLineage, width_: usize) -> Vec<Line<'static>> {
    let t = v.theme;
    let mut lines = Vec::with_capacity(l.nodes.len());
    let mut last_it: Option<Option<usize>> = None;
    for n in &l.nodes {
        let when = if last_it == Some(n.iteration) {
            "     ".to_string()
        } else {
            match n.iteration {
                Some(i) => format!("it{:<3}", i + 1),
                None => "start".to_string(),
            }
        };
        last_it = Some(n.iteration);
        let indent = "  ".repeat(depth(l, n.id).min(6));
        let head = format!("{when} {indent}{} #{:<3}", sign(l, n), n.id);
        let score = n
            .score
            .map(|s| format!("{} ", logp(Some(s))))
            .unwrap_or_default();
        let used = width(&head) + 1 + width(&score);
        let style = if n.id == l.current {
            t.winner
        } else if n.lost {
            t.muted
        } else if n.edited || n.pinned {
            t.human
        } else if n.won {
            t.best
        } else {
            t.text
        };
        let what = match (&n.demo_move, n.kind) {
            (Some(m), NodeKind::DemoMove) => m.clone(),
            // A memory link says so, and where the text first appeared.
            (_, NodeKind::Memory) => format!("↩#{} {}", n.parent.unwrap_or(0), n.prompt),
            _ => n.prompt.clone(),
        };
        let mut line = Line::from(vec![
            Span::styled(format!("{head} "), style),
            Span::styled(score, t.muted),
            Span::styled(one_line_of(&what, width_.saturating_sub(used)), style),
        ]);
        if n.id == v.selected {
            line = highlight(line, t.selection);
        }
        lines.push(line);
    }
    lines
}

/// The selected node's details: what it is, why it won or lost, where it came from, its text
/// and its diff against its parent.
pub fn detail_lines(v: &Input, l: &LayerLineage, n: &Node, w: usize) -> Vec<Line<'static>> {
    let t = v.theme;
    let mut lines: Vec<Line<'static>> = Vec::new();
    let when = n
        .iteration
        .map(|i| format!("iteration {}", i + 1))
        .unwrap_or_else(|| "start".into());
    let parent = n
        .parent
        .map(|p| format!(" · parent #{p}"))
        .unwrap_or_default();
    lines.push(Line::from(Span::styled(
        format!("#{} · {when} · {}{parent}", n.id, n.kind.name()),
        t.title,
    )));
    let verdict = if n.won || n.edited || n.kind == NodeKind::Start {
        t.good
    } else if n.lost {
        t.bad
    } else {
        t.text
    };
    for part in wrap(&n.why(), w) {
        lines.push(Line::from(Span::styled(part, verdict)));
    }
    for part in wrap(&format!("from: {}", n.origin()), w) {
        lines.push(Line::from(Span::styled(part, t.muted)));
    }
    if let Some(s) = n.source.as_ref().filter(|s| !s.message.is_empty()) {
        for part in wrap(&format!("message: {}", s.message), w) {
            lines.push(Line::from(Span::styled(part, t.muted)));
        }
    }
    for f in &n.feedback {
        for part in wrap(&format!("feedback: {f}"), w) {
            lines.push(Line::from(Span::styled(part, t.human)));
        }
    }
    if !n.demos.is_empty() {
        let demos: Vec<String> = n.demos.iter().map(|d| format!("ex {d}")).collect();
        lines.push(Line::from(Span::styled(
            format!("demonstrations: {}", demos.join(", ")),
            t.muted,
        )));
    }
    lines.push(Line::default());
    lines.push(Line::from(Span::styled("text", t.title)));
    for para in n.prompt.split('\n') {
        if para.trim().is_empty() {
            lines.push(Line::default());
        }
        for part in wrap(para, w) {
            lines.push(Line::from(Span::styled(part, t.text)));
        }
    }
    if n.prompt.trim().is_empty() {
        lines.push(muted_line(t, "(empty)"));
    }
    if let Some(p) = n.parent.and_then(|p| l.node(p)) {
        lines.push(Line::default());
        lines.push(Line::from(Span::styled(
            format!("diff against #{}", p.id),
            t.title,
        )));
        if p.prompt == n.prompt {
            lines.push(muted_line(t, format!("(the same text as #{})", p.id)));
        } else {
            lines.extend(diff_lines(t, &p.prompt, &n.prompt, w));
        }
    }
    lines
}

pub fn draw(v: &Input, frame: &mut Frame, area: Rect) {
    let t = v.theme;
    let r = overlay_area(area, 94, 92);
    frame.render_widget(Clear, r);
    let layer = v.lineage.map(|l| l.layer + 1).unwrap_or(1);
    let block = Block::bordered()
        .border_style(t.border_focused)
        .title(Line::from(vec![Span::styled(
            format!(" Lineage · layer {layer}/{} ", v.depth.max(1)),
            t.title,
        )]));
    let inner = block.inner(r);
    frame.render_widget(block, r);
    let Some(l) = v.lineage.filter(|l| !l.nodes.is_empty()) else {
        frame.render_widget(
            Paragraph::new(muted_line(t, "no prompts yet: the run has not started")),
            inner,
        );
        return;
    };
    let [body, hint_r] = Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(inner);
    let side_by_side = body.width >= 100;
    let (tree_r, detail_r) = if side_by_side {
        let [a, b] = Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
            .areas(body);
        (a, b)
    } else {
        let [a, b] =
            Layout::vertical([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(body);
        (a, b)
    };
    let tree = tree_lines(v, l, tree_r.width as usize);
    let h = tree_r.height as usize;
    let selected = v.selected.min(l.nodes.len() - 1);
    let start = window_start(selected, h, tree.len());
    frame.render_widget(
        Paragraph::new(tree.into_iter().skip(start).take(h).collect::<Vec<_>>()),
        tree_r,
    );
    let borders = if side_by_side {
        Borders::LEFT
    } else {
        Borders::TOP
    };
    let d_block = Block::default().borders(borders).border_style(t.border);
    let d_inner = d_block.inner(detail_r);
    frame.render_widget(d_block, detail_r);
    let pad = if side_by_side { 1 } else { 0 };
    let d_area = Rect {
        x: d_inner.x + pad,
        width: d_inner.width.saturating_sub(pad),
        ..d_inner
    };
    let details = detail_lines(v, l, &l.nodes[selected], d_area.width as usize);
    let max = details.len().saturating_sub(d_area.height as usize);
    frame.render_widget(
        Paragraph::new(
            details
                .into_iter()
                .skip(v.scroll.min(max))
                .take(d_area.height as usize)
                .collect::<Vec<_>>(),
        ),
        d_area,
    );
    let hints = Line::from(vec![
        Span::styled("↑↓", t.key),
        Span::styled(" prompt  ", t.muted),
        Span::styled("←→", t.key),
        Span::styled(" layer  ", t.muted),
        Span::styled("PgUp PgDn", t.key),
        Span::styled(" scroll  ", t.muted),
        Span::styled("Esc", t.key),
        Span::styled(" close   ", t.muted),
        Span::styled("● now ★ won ✗ lost ↩ memory ◆ pinned ✎ edited", t.muted),
    ]);
    frame.render_widget(Paragraph::new(hints), hint_r);
}
