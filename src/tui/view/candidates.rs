//! The Candidates pane: the selected layer's candidate prompts of the current iteration with
//! their scores, the winner highlighted, and the winners of past iterations. A demonstration
//! move shows as what it is ("swap ex 12 → ex 87"), expanded with the examples it moves.

use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::text::{
    common_prefix, logp, one_line_of, plural, shared_beginning, wrap, SHARED_PREFIX_MIN,
};
use super::Chrome;
use super::{highlight, muted_line, pane_block, window_start};
use crate::dln::events::{Candidate, CandidateOrigin, Demo, DemoMove};
use crate::tui::app::Pane;
use crate::tui::model::LayerView;

/// What the pane shows: the selected layer's candidates and past winners.
pub struct Input<'a> {
    pub chrome: Chrome<'a>,
    /// The layer the pane acts on (`None` before the run starts).
    pub layer: Option<&'a LayerView>,
    /// The number of layers.
    pub depth: usize,
    /// Indices of the candidates that pass the filter.
    pub rows: Vec<usize>,
    pub filter: &'a str,
    /// Row among `rows`.
    pub selected: usize,
    pub expanded: bool,
    /// What the run is doing now (`sharpening L2 3/9`), while it runs.
    pub now: Option<String>,
}

pub fn draw(v: &Input, frame: &mut Frame, area: Rect) {
    let t = &v.chrome.theme;
    let layer = v.layer;
    let mut info = layer
        .map(|l| format!("layer {}/{}", l.index + 1, v.depth))
        .unwrap_or_default();
    let f = v.filter;
    if !f.is_empty() {
        info.push_str(&format!(" · /{f}"));
    }
    let block = pane_block(v.chrome, Pane::Candidates, info);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(layer) = layer else {
        frame.render_widget(
            Paragraph::new(muted_line(v.chrome.theme, "waiting for the run to start…")),
            inner,
        );
        return;
    };
    let list = list(v, layer, inner);
    let [head_r, top_r, list_r, history_r] = list.areas;
    let history_h = history_r.height;

    let head = match (layer.candidates_iteration, layer.winner) {
        (None, _) => match &v.now {
            Some(now) => format!(
                "no candidates yet for L{} (proposed after the posterior) · now: {now}",
                layer.index + 1
            ),
            None => "no candidates for this layer".to_string(),
        },
        (Some(it), Some(w)) => format!(
            "it {} · {} · winner {}",
            it + 1,
            plural(layer.candidates.len(), "candidate"),
            w + 1
        ),
        (Some(it), None) => format!(
            "it {} · {} · {}",
            it + 1,
            plural(layer.candidates.len(), "candidate"),
            v.now.as_deref().unwrap_or("not scored")
        ),
    };
    let mut head_spans = vec![Span::styled(head, t.muted)];
    if layer.pinned {
        head_spans.push(Span::styled("  ◆ pinned: not updated", t.pinned));
    }
    frame.render_widget(Paragraph::new(Line::from(head_spans)), head_r);
    frame.render_widget(Paragraph::new(list.top), top_r);
    frame.render_widget(
        Paragraph::new(
            list.lines
                .into_iter()
                .skip(list.start)
                .take(list_r.height as usize)
                .collect::<Vec<_>>(),
        ),
        list_r,
    );

    if history_h > 0 {
        let block = Block::default()
            .borders(Borders::TOP)
            .border_style(t.border)
            .title(Line::from(Span::styled(" past winners ", t.title)));
        let h_inner = block.inner(history_r);
        frame.render_widget(block, history_r);
        let w = h_inner.width as usize;
        let hist: Vec<Line> = layer
            .history
            .iter()
            .rev()
            .take(h_inner.height as usize)
            .map(|r| {
                let head = format!(
                    "it {:>2} {:>10} {} ",
                    r.iteration + 1,
                    logp(r.score),
                    if r.changed { "new " } else { "kept" }
                );
                let used = super::text::width(&head);
                let what = r.demo_move.as_deref().unwrap_or(&r.prompt);
                Line::from(vec![
                    Span::styled(head, t.muted),
                    Span::styled(one_line_of(what, w.saturating_sub(used)), t.text),
                ])
            })
            .collect();
        frame.render_widget(Paragraph::new(hist), h_inner);
    }
}

/// Rows the pane would like, borders included: its heading and column names, a line per
/// candidate and a few
/// for the selected one's wrapped text, and the past winners (a layout hint, not a promise).
pub fn wanted_rows(v: &Input) -> u16 {
    let Some(layer) = v.layer else {
        return 3;
    };
    let history = if layer.history.is_empty() {
        0
    } else {
        layer.history.len() + 1
    };
    let rows = 2 + 2 + v.rows.len().max(1) + 3 + history;
    u16::try_from(rows).unwrap_or(u16::MAX)
}

/// The row (among the visible candidates) drawn at `at`, if any.
pub fn hit(v: &Input, area: Rect, at: Position) -> Option<usize> {
    let layer = v.layer?;
    let inner = pane_block(v.chrome, Pane::Candidates, String::new()).inner(area);
    let list = list(v, layer, inner);
    let list_r = list.areas[2];
    if !list_r.contains(at) {
        return None;
    }
    let line = list.start + usize::from(at.y - list_r.y);
    list.rows.get(line).copied().flatten()
}

/// The candidate list's layout: what drawing and mouse hits share.
struct List {
    /// Heading, column names, list and past-winners areas.
    areas: [Rect; 4],
    /// The column names, under the candidates' shared beginning when they have one.
    top: Vec<Line<'static>>,
    lines: Vec<Line<'static>>,
    /// The visible-candidate row each line belongs to.
    rows: Vec<Option<usize>>,
    /// The first line shown (keeps the selected candidate in view).
    start: usize,
}

fn list(v: &Input, layer: &LayerView, inner: Rect) -> List {
    let t = &v.chrome.theme;
    let rows = &v.rows;
    let history_h = if v.expanded || layer.history.is_empty() {
        0
    } else {
        (layer.history.len() as u16 + 1).min(inner.height / 3)
    };
    let has_kl = layer.candidates.iter().any(|c| c.kl.is_some());
    let texts: Vec<String> = rows
        .iter()
        .filter_map(|i| layer.candidates.get(*i))
        .map(Candidate::describe)
        .collect();
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let shared = common_prefix(&text_refs, SHARED_PREFIX_MIN);
    let width = inner.width as usize;
    let mut top = Vec::new();
    if let Some(n) = shared {
        top.extend(shared_beginning(
            "every prompt starts: ",
            &texts[0],
            n,
            width,
            (t.muted, t.text),
        ));
    }
    if !rows.is_empty() {
        let kl_head = if has_kl {
            format!("{:>8}", "kl")
        } else {
            String::new()
        };
        let moves = rows
            .iter()
            .filter_map(|i| layer.candidates.get(*i))
            .any(|c| c.demo_move.is_some());
        let what = if moves {
            "prompt or demonstration move"
        } else {
            "prompt"
        };
        top.push(Line::from(Span::styled(
            format!(
                "{:>3} {:<7} {:>10}{kl_head}{:>8} {what}",
                "#", "origin", "score", "vs best"
            ),
            t.muted,
        )));
    }
    let areas = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(top.len() as u16),
        Constraint::Min(1),
        Constraint::Length(history_h),
    ])
    .areas(inner);
    let list_r = areas[2];
    let width = list_r.width as usize;
    let selected = v.selected.min(rows.len().saturating_sub(1));
    let mut lines: Vec<Line<'static>> = Vec::new();
    let mut owners: Vec<Option<usize>> = Vec::new();
    if rows.is_empty() && !layer.candidates.is_empty() {
        lines.push(muted_line(
            v.chrome.theme,
            "no candidate matches the filter",
        ));
        owners.push(None);
    }
    let mut sel_line = 0;
    let max_score = layer
        .candidates
        .iter()
        .filter_map(|c| c.score)
        .fold(f64::NEG_INFINITY, f64::max);
    for (row, i) in rows.iter().enumerate() {
        let Some(c) = layer.candidates.get(*i) else {
            continue;
        };
        if row == selected {
            sel_line = lines.len();
        }
        let winner = layer.winner == Some(*i);
        let style = if winner { t.winner } else { t.text };
        let origin = match (c.origin, &c.demo_move) {
            (_, Some(_)) => "demos",
            (CandidateOrigin::Current, _) => "current",
            (CandidateOrigin::Proposed, _) => "new",
            (CandidateOrigin::Memory, _) => "memory",
        };
        let mark = if winner {
            "★"
        } else if row == selected {
            "▶"
        } else {
            " "
        };
        let kl = match (has_kl, c.kl) {
            (true, Some(k)) => format!("{k:>8.2}"),
            (true, None) => format!("{:>8}", "—"),
            (false, _) => String::new(),
        };
        let best_gap = match c.score {
            Some(s) if max_score.is_finite() && !winner => format!("{:>+8.2}", s - max_score),
            _ => " ".repeat(8),
        };
        let headline = format!(
            "{mark}{:>2} {:<7} {:>10}{kl}{best_gap} ",
            i + 1,
            origin,
            logp(c.score)
        );
        let used = super::text::width(&headline);
        let expand = v.expanded && row == selected;
        // Expanded, the candidate in full; otherwise one line each (the selected one too, so
        // that selecting never moves the rows under the mouse), after the beginning they all
        // share.
        let body = match (expand, &c.demo_move) {
            (true, Some(m)) => move_details(m, c, layer, width.saturating_sub(4)),
            (true, None) => wrap(&c.prompt, width.saturating_sub(4)),
            (false, _) => {
                let text = match shared.and_then(|n| texts[row].get(n..)) {
                    Some(rest) => format!("…{rest}"),
                    None => texts[row].clone(),
                };
                vec![one_line_of(&text, width.saturating_sub(used))]
            }
        };
        let mut first = true;
        for b in body {
            let mut l = if first && !expand {
                Line::from(vec![
                    Span::styled(headline.clone(), style),
                    Span::styled(b, style),
                ])
            } else if first {
                lines.push(maybe_sel(
                    Line::from(Span::styled(headline.clone(), style)),
                    row == selected,
                    v,
                ));
                Line::from(vec![Span::raw("    "), Span::styled(b, style)])
            } else {
                Line::from(vec![Span::raw("    "), Span::styled(b, style)])
            };
            l = maybe_sel(l, row == selected, v);
            lines.push(l);
            first = false;
        }
        owners.resize(lines.len(), Some(row));
    }
    // Keep the selected candidate in view: its last line too when it fits.
    let height = list_r.height as usize;
    let sel_end = owners
        .iter()
        .rposition(|o| *o == Some(selected))
        .unwrap_or(sel_line);
    let start = window_start(sel_line, height, lines.len());
    let start = if sel_end >= start + height {
        (sel_end + 1 - height).min(sel_line)
    } else {
        start
    };
    List {
        areas,
        top,
        lines,
        rows: owners,
        start,
    }
}

/// An expanded demonstration move: the move, then each example it brings in (`in`), takes out
/// (`out`) or, for a reorder, shows in its new order, with its input and output.
fn move_details(m: &DemoMove, c: &Candidate, layer: &LayerView, width: usize) -> Vec<String> {
    // What the layer showed when the move was made: the current candidate's set.
    let before: &[Demo] = layer
        .candidates
        .iter()
        .find(|c| c.origin == CandidateOrigin::Current)
        .map_or(layer.demos.as_slice(), |c| c.demos.as_slice());
    let find = |set: &[Demo], i: usize| set.iter().find(|d| d.index == i).cloned();
    let shown: Vec<(&str, Option<Demo>)> = match m {
        DemoMove::Swap { from, to, .. } => {
            vec![("out", find(before, *from)), ("in", find(&c.demos, *to))]
        }
        DemoMove::Add { example } => vec![("in", find(&c.demos, *example))],
        DemoMove::Drop { example, .. } => vec![("out", find(before, *example))],
        DemoMove::Reorder { .. } => c.demos.iter().map(|d| ("", Some(d.clone()))).collect(),
        DemoMove::Clear { examples } => {
            examples.iter().map(|i| ("out", find(before, *i))).collect()
        }
    };
    let mut out = vec![m.describe()];
    for (what, d) in shown {
        let Some(d) = d else { continue };
        let head = format!("{what:<3} ex {}: ", d.index)
            .trim_start()
            .to_string();
        out.extend(wrap(&format!("{head}{}", d.input), width));
        out.push(format!(
            "    → {}",
            one_line_of(&d.output, width.saturating_sub(6))
        ));
    }
    out
}

fn maybe_sel(line: Line<'static>, selected: bool, v: &Input) -> Line<'static> {
    if selected {
        highlight(line, v.chrome.theme.selection)
    } else {
        line
    }
}
