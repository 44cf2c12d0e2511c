//! The Layers pane: every layer's current prompt in full, wrapped and scrollable, with its pinned
//! marker, last ELBO term and, on demand (`d`), a word diff against the previous prompt; below
//! it the layer's demonstrations, one line (`ex 12 · ex 87`), or each in full on demand (`D`).

use ratatui::layout::{Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use similar::{ChangeTag, TextDiff};

use super::text::{num, one_line_of, wrap, wrap_styled};
use super::Chrome;
use super::{muted_line, pane_block};
use crate::dln::events::LayerIndex;
use crate::tui::app::Pane;
use crate::tui::model::{Intervention, LayerView};
use crate::tui::theme::Theme;

/// What the pane shows: every layer's prompt, the last edit, the HTTP backends.
pub struct Input<'a> {
    pub chrome: Chrome<'a>,
    pub layers: &'a [LayerView],
    pub last_intervention: Option<&'a Intervention>,
    /// `(name, scoring mode, detail)` of each HTTP backend.
    pub backends: &'a [(String, String, String)],
    /// The layer the Layers and Candidates panes act on.
    pub selected: LayerIndex,
    /// Lines scrolled within the selected layer's prompt.
    pub scroll: usize,
    pub show_diff: bool,
    /// The selected layer's demonstrations are shown in full, `demo` the selected one.
    pub demos_expanded: bool,
    pub demo: usize,
}

pub fn draw(v: &Input, frame: &mut Frame, area: Rect) {
    let w = window(v, area);
    let info = if w.total > w.height {
        format!(
            "{}–{} of {}",
            w.start + 1,
            (w.start + w.height).min(w.total),
            w.total
        )
    } else {
        String::new()
    };
    let visible: Vec<Line> = w.lines.into_iter().skip(w.start).take(w.height).collect();
    frame.render_widget(
        Paragraph::new(visible).block(pane_block(v.chrome, Pane::Layers, info)),
        area,
    );
}

/// The pane's rows that do not depend on its width, for the layout: everything but the
/// prompts' wrapping (each prompt counted here as one line per paragraph).
pub fn fixed_rows(v: &Input) -> u16 {
    const WIDE: usize = 10_000;
    let (all, _, _) = lines(v, WIDE);
    let prompts: usize = v.layers.iter().map(|l| wrap(&l.prompt, WIDE).len()).sum();
    u16::try_from(all.len().saturating_sub(prompts)).unwrap_or(u16::MAX)
}

/// Columns the widest layer header takes (it is not wrapped), for the layout.
pub fn header_width(v: &Input) -> u16 {
    let k = v.layers.len();
    let widest = v
        .layers
        .iter()
        .map(|l| header(v.chrome.theme, l, k, true).width())
        .max()
        .unwrap_or(0);
    u16::try_from(widest).unwrap_or(u16::MAX)
}

/// The layer whose header or prompt is drawn at `at`, if any.
pub fn hit(v: &Input, area: Rect, at: Position) -> Option<LayerIndex> {
    let inner = pane_block(v.chrome, Pane::Layers, String::new()).inner(area);
    if !inner.contains(at) {
        return None;
    }
    let w = window(v, area);
    let line = w.start + usize::from(at.y - inner.y);
    w.owners.get(line).copied().flatten()
}

/// The pane's lines, which layer each belongs to, and the first one shown: what both drawing
/// and mouse hits need.
struct Window {
    lines: Vec<Line<'static>>,
    owners: Vec<Option<LayerIndex>>,
    start: usize,
    height: usize,
    total: usize,
}

fn window(v: &Input, area: Rect) -> Window {
    let (lines, owners, header_at) = lines(v, area.width.saturating_sub(2) as usize);
    let height = area.height.saturating_sub(2) as usize;
    let total = lines.len();
    let start = header_at
        .saturating_add(v.scroll)
        .min(total.saturating_sub(height));
    Window {
        lines,
        owners,
        start,
        height,
        total,
    }
}

/// All lines of the pane, the layer each line belongs to, and the line where the selected
/// layer's header is.
fn lines(v: &Input, width: usize) -> (Vec<Line<'static>>, Vec<Option<LayerIndex>>, usize) {
    let t = &v.chrome.theme;
    if v.layers.is_empty() {
        return (
            vec![muted_line(v.chrome.theme, "waiting for the run to start…")],
            vec![None],
            0,
        );
    }
    let k = v.layers.len();
    let mut out: Vec<Line<'static>> = Vec::new();
    let mut owners: Vec<Option<LayerIndex>> = Vec::new();
    let mut header_at = 0;
    for layer in v.layers {
        let selected = layer.index == v.selected;
        if selected {
            header_at = out.len();
        }
        out.push(header(t, layer, k, selected));
        let body_width = width.saturating_sub(2);
        let diff = selected && v.show_diff;
        let body: Vec<Line<'static>> = match (&layer.previous_prompt, diff) {
            (Some(prev), true) => diff_lines(t, prev, &layer.prompt, body_width),
            (None, true) => vec![Line::from(Span::styled(
                "(no earlier prompt to compare with)",
                t.muted,
            ))],
            _ if layer.prompt.trim().is_empty() => {
                vec![Line::from(Span::styled("(empty prompt)", t.muted))]
            }
            _ => wrap(&layer.prompt, body_width)
                .into_iter()
                .map(|l| Line::from(Span::styled(l, t.text)))
                .collect(),
        };
        for mut l in body {
            l.spans.insert(0, Span::raw("  "));
            out.push(l);
        }
        out.extend(demo_lines(v, layer, selected && v.demos_expanded, width));
        out.extend(note_line(t, layer, width));
        out.push(Line::default());
        owners.resize(out.len(), Some(layer.index));
    }
    if let Some(last) = v.last_intervention {
        out.push(Line::from(vec![
            Span::styled("last edit: ", t.muted),
            Span::styled(
                format!("it {} · {}", last.iteration + 1, last.text),
                t.human,
            ),
        ]));
    }
    for (name, scoring, detail) in v.backends {
        out.push(Line::from(vec![
            Span::styled(format!("backend {name}: "), t.muted),
            Span::styled(format!("scoring by {scoring}"), t.text),
        ]));
        for l in wrap(detail, width.saturating_sub(2)) {
            out.push(Line::from(vec![Span::raw("  "), Span::styled(l, t.muted)]));
        }
    }
    owners.resize(out.len(), None);
    (out, owners, header_at)
}

/// A layer's notes in force on one line (`F` lists them in full); nothing without any.
fn note_line(t: &Theme, layer: &LayerView, width: usize) -> Option<Line<'static>> {
    let last = layer.feedback.last()?;
    let head = format!("  notes {}: ", layer.feedback.len());
    let room = width.saturating_sub(super::text::width(&head));
    Some(Line::from(vec![
        Span::styled(head, t.muted),
        Span::styled(one_line_of(&last.describe(), room), t.human),
    ]))
}

/// A layer's demonstrations: one compact line, or (`expanded`) each with its input and output,
/// the selected one marked. Nothing for a layer that shows none and learns none.
fn demo_lines(v: &Input, layer: &LayerView, expanded: bool, width: usize) -> Vec<Line<'static>> {
    let t = &v.chrome.theme;
    if layer.max_demos == 0 && layer.demos.is_empty() {
        return Vec::new();
    }
    let mut head = vec![
        Span::raw("  "),
        Span::styled(
            format!("demos {}/{}", layer.demos.len(), layer.max_demos),
            t.muted,
        ),
    ];
    if layer.demos_pinned {
        head.push(Span::styled(" ◆ pinned", t.pinned));
    }
    let shown: Vec<String> = layer
        .demos
        .iter()
        .map(|d| format!("ex {}", d.index))
        .collect();
    let listed = if shown.is_empty() {
        "none".to_string()
    } else {
        shown.join(" · ")
    };
    let used: usize = head
        .iter()
        .map(|s| super::text::width(&s.content))
        .sum::<usize>()
        + 2;
    head.push(Span::styled(": ", t.muted));
    head.push(Span::styled(
        one_line_of(&listed, width.saturating_sub(used)),
        t.text,
    ));
    let mut out = vec![Line::from(head)];
    if !expanded {
        return out;
    }
    let selected = v.demo.min(layer.demos.len().saturating_sub(1));
    for (i, d) in layer.demos.iter().enumerate() {
        let mark = if i == selected { "▶ " } else { "  " };
        let label = format!("  {mark}ex {:<4} ", d.index);
        let pad = " ".repeat(super::text::width(&label));
        let inner = width.saturating_sub(super::text::width(&label));
        let mut lines = Vec::new();
        for (j, w) in wrap(&d.input, inner).into_iter().enumerate() {
            let lead = if j == 0 { label.clone() } else { pad.clone() };
            lines.push(Line::from(vec![
                Span::styled(lead, t.muted),
                Span::styled(w, t.text),
            ]));
        }
        lines.push(Line::from(vec![
            Span::styled(format!("{pad}→ "), t.muted),
            Span::styled(one_line_of(&d.output, inner.saturating_sub(2)), t.winner),
        ]));
        for l in lines {
            out.push(if i == selected {
                super::highlight(l, t.selection)
            } else {
                l
            });
        }
    }
    out
}

fn header(t: &Theme, layer: &LayerView, k: usize, selected: bool) -> Line<'static> {
    let role = if layer.index + 1 == k {
        "output"
    } else {
        "hidden"
    };
    let mut spans = vec![
        Span::styled(if selected { "▶ " } else { "  " }, t.title),
        Span::styled(format!("Layer {} ", layer.index + 1), t.title),
        Span::styled(format!("({role}) "), t.muted),
    ];
    if layer.pinned {
        spans.push(Span::styled("◆ pinned ", t.pinned));
    }
    if !layer.trainable {
        spans.push(Span::styled("frozen ", t.muted));
    }
    spans.push(Span::styled(
        format!("ELBO {} ", num(layer.elbo_term)),
        t.muted,
    ));
    if let Some(last) = layer.history.iter().rev().find(|w| w.changed) {
        spans.push(Span::styled(
            format!("· changed at it {}", last.iteration + 1),
            t.muted,
        ));
    }
    let line = Line::from(spans);
    if selected {
        super::highlight(line, t.selection)
    } else {
        line
    }
}

/// A word diff: removed text `[-like this-]`, added text `{+like this+}` (wdiff's notation,
/// readable without colour), styled by the theme. Short unchanged words between two changes are
/// folded into the change so a rewritten sentence reads as one replacement, not confetti.
pub(super) fn diff_lines(t: &Theme, old: &str, new: &str, width: usize) -> Vec<Line<'static>> {
    if old == new {
        return vec![Line::from(Span::styled(
            "(unchanged since the previous iteration)",
            t.muted,
        ))];
    }
    let mut pieces: Vec<(String, Style)> = Vec::new();
    for segment in diff_segments(old, new) {
        match segment {
            Segment::Same(text) => pieces.push((text, t.text)),
            Segment::Changed(removed, added) => {
                let (removed, added) = (removed.trim(), added.trim());
                if !removed.is_empty() {
                    pieces.push((format!("[-{removed}-]"), t.diff_removed));
                }
                if !added.is_empty() {
                    pieces.push((format!("{{+{added}+}}"), t.diff_added));
                }
                pieces.push((" ".to_string(), t.text));
            }
        }
    }
    wrap_styled(&pieces, width)
}

/// A stretch of the diff.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Same(String),
    /// Removed text, added text.
    Changed(String, String),
}

/// Word-level diff segments, with unchanged stretches of at most two words between changes
/// merged into the surrounding change.
pub fn diff_segments(old: &str, new: &str) -> Vec<Segment> {
    let diff = TextDiff::from_words(old, new);
    let mut raw: Vec<Segment> = Vec::new();
    for change in diff.iter_all_changes() {
        let v = change.value();
        match (change.tag(), raw.last_mut()) {
            (ChangeTag::Equal, Some(Segment::Same(s))) => s.push_str(v),
            (ChangeTag::Equal, _) => raw.push(Segment::Same(v.to_string())),
            (ChangeTag::Delete, Some(Segment::Changed(r, _))) => r.push_str(v),
            (ChangeTag::Insert, Some(Segment::Changed(_, a))) => a.push_str(v),
            (ChangeTag::Delete, _) => raw.push(Segment::Changed(v.to_string(), String::new())),
            (ChangeTag::Insert, _) => raw.push(Segment::Changed(String::new(), v.to_string())),
        }
    }
    let mut out: Vec<Segment> = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let seg = raw[i].clone();
        let short_gap = |s: &str| s.split_whitespace().count() <= 2;
        match (&seg, out.last_mut(), raw.get(i + 1)) {
            (Segment::Same(s), Some(Segment::Changed(r, a)), Some(Segment::Changed(..)))
                if short_gap(s) =>
            {
                r.push_str(s);
                a.push_str(s);
            }
            (Segment::Changed(r2, a2), Some(Segment::Changed(r, a)), _) => {
                r.push_str(r2);
                a.push_str(a2);
            }
            _ => out.push(seg),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_read_as_one_replacement() {
        let segs = diff_segments("Answer the question.", "Answer the question with one word.");
        assert_eq!(
            segs,
            vec![
                Segment::Same("Answer the ".into()),
                Segment::Changed("question.".into(), "question with one word.".into())
            ]
        );
        let segs = diff_segments("a b c d e f", "a X c Y e f");
        assert_eq!(
            segs,
            vec![
                Segment::Same("a ".into()),
                Segment::Changed("b c d".into(), "X c Y".into()),
                Segment::Same(" e f".into())
            ]
        );
    }
}
