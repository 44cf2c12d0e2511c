//! The Hidden-states pane (DLN-2 and deeper): for the current batch, each example's input,
//! target and forward hidden text, and its posterior samples with log-likelihood, prior and
//! sharpened weight (numbers and bars), the best one marked, the posterior's entropy.
//! For DLN-1 it shows the forward pass's predictions instead.

use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::layout::Hit;
use super::text::{common_prefix, one_line_of, shared_beginning, SHARED_PREFIX_MIN};
use super::Chrome;
use super::{highlight, muted_line, pane_block, window_start};
use crate::dln::events::{ForwardExample, PosteriorExample, SampleOrigin};
use crate::tui::app::{HiddenSort, Pane};
use crate::tui::model::PosteriorView;

mod detail;

pub use detail::max_detail_scroll;
use detail::{detail, detail_block, detail_inner, detail_lines, labelled, scrolled};

/// Said under a hidden text its token budget ended (`✂` at the end of its one-line form).
const CUT_NOTE: &str = "✂ cut at the layer's forward_max_tokens, not finished";

/// What the pane shows: the posterior of one hidden text (or, before it is sampled, the
/// forward pass) over the current batch, and the selection in it.
pub struct Input<'a> {
    pub chrome: Chrome<'a>,
    /// The posterior shown, if one was sampled.
    pub posterior: Option<&'a PosteriorView>,
    /// More than one hidden text has a posterior (the heading says how to switch).
    pub several_posteriors: bool,
    /// The last forward pass: its iteration and examples.
    pub forward: Option<&'a (usize, Vec<ForwardExample>)>,
    pub depth: usize,
    /// Indices of the examples shown, sorted and filtered.
    pub rows: Vec<usize>,
    pub sort: HiddenSort,
    pub wrong_only: bool,
    pub filter: &'a str,
    /// Row among `rows`.
    pub example: usize,
    pub sample: usize,
    pub expanded: bool,
    /// Lines scrolled within the expanded example's detail (PgUp/PgDn).
    pub detail_scroll: usize,
}

pub fn draw(v: &Input, frame: &mut Frame, area: Rect) {
    let rows = &v.rows;
    let mut info = vec![v.sort.label().to_string()];
    if v.wrong_only {
        info.push("wrong only".into());
    }
    let f = v.filter;
    if !f.is_empty() {
        info.push(format!("/{f}"));
    }
    let block = pane_block(v.chrome, Pane::Hidden, info.join(" · "));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let posterior = v.posterior;
    match posterior {
        Some(p) => {
            let head = format!(
                "hidden text between layers {} and {} · it {} · {}",
                p.layer,
                p.layer + 1,
                p.iteration + 1,
                if p.sharpened {
                    "sharpened"
                } else {
                    "sampled, not yet weighted"
                }
            );
            let head = if v.several_posteriors {
                format!("{head} · select a layer (←/→ in Layers) for another")
            } else {
                head
            };
            let examples: Vec<&PosteriorExample> =
                rows.iter().filter_map(|i| p.examples.get(*i)).collect();
            draw_posterior(v, frame, inner, &head, &examples);
        }
        None => draw_forward(v, frame, inner, rows),
    }
}

/// The pane's areas below its border: the heading, the list's column names (and the inputs'
/// shared beginning), the example list, and the selected example's detail.
struct Parts {
    head: Rect,
    top: Rect,
    list: Rect,
    detail: Rect,
}

fn split(v: &Input, inner: Rect, rows: usize) -> Parts {
    let list_h = (rows as u16).clamp(1, (inner.height / 3).max(3));
    let top_h = 1 + shared_lines(v, inner.width as usize).len() as u16;
    let [head, top, list, detail] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(top_h),
        Constraint::Length(list_h),
        Constraint::Min(0),
    ])
    .areas(inner);
    Parts {
        head,
        top,
        list,
        detail,
    }
}

/// The inputs of the examples listed, in their order.
fn shown_inputs<'a>(v: &Input<'a>) -> Vec<&'a str> {
    match (v.posterior, v.forward) {
        (Some(p), _) => v
            .rows
            .iter()
            .filter_map(|i| p.examples.get(*i))
            .map(|e| e.input.as_str())
            .collect(),
        (None, Some((_, examples))) => v
            .rows
            .iter()
            .filter_map(|i| examples.get(*i))
            .map(|e| e.input.as_str())
            .collect(),
        (None, None) => Vec::new(),
    }
}

/// How long the beginning every listed input shares is (in bytes), when it is long enough to
/// show once above the list instead of on every row.
fn shared(v: &Input) -> Option<usize> {
    common_prefix(&shown_inputs(v), SHARED_PREFIX_MIN)
}

/// An input as a row or a collapsed detail shows it: after `…` when the inputs share a long
/// beginning (shown once above the list), so the part that differs is what is seen.
fn distinct<'t>(input: &'t str, shared: Option<usize>) -> std::borrow::Cow<'t, str> {
    match shared.and_then(|n| input.get(n..)) {
        Some(rest) => format!("…{rest}").into(),
        None => input.into(),
    }
}

/// The inputs' shared beginning, said once above the list (two lines at most).
fn shared_lines(v: &Input, width: usize) -> Vec<Line<'static>> {
    let inputs = shown_inputs(v);
    let Some(n) = common_prefix(&inputs, SHARED_PREFIX_MIN) else {
        return Vec::new();
    };
    let t = v.chrome.theme;
    shared_beginning(
        "every input starts: ",
        inputs[0],
        n,
        width,
        (t.muted, t.text),
    )
}

fn draw_posterior(
    v: &Input,
    frame: &mut Frame,
    inner: Rect,
    head: &str,
    examples: &[&PosteriorExample],
) {
    let t = &v.chrome.theme;
    let parts = split(v, inner, examples.len());
    frame.render_widget(
        Paragraph::new(muted_line(v.chrome.theme, head.to_string())),
        parts.head,
    );
    // The entropy of the posterior weights (the paper's H) and the samples, with the person's
    // and the excluded ones counted.
    let columns = [("entropy", true), ("samples", false)];
    let selected = draw_list(v, frame, &parts, &columns, examples, |ex| {
        let entropy = ex
            .entropy
            .map(|e| format!("{e:.2}"))
            .unwrap_or_else(|| "—".into());
        let human = ex.samples.iter().any(|s| s.origin == SampleOrigin::Human);
        let excluded = ex.samples.iter().filter(|s| s.excluded).count();
        let mut samples = vec![Span::styled(ex.samples.len().to_string(), t.muted)];
        if human {
            samples.push(Span::styled(" +you", t.human));
        }
        if excluded > 0 {
            samples.push(Span::styled(format!(" {excluded} excluded"), t.bad));
        }
        ListRow {
            index: ex.index,
            correct: ex.correct,
            cells: vec![vec![Span::styled(entropy, t.muted)], samples],
            input: &ex.input,
        }
    });
    if let Some(selected) = selected {
        detail(v, frame, parts.detail, examples[selected]);
    }
}

/// The first example row shown in a list area of `n` rows (keeps the selection in view).
fn list_start(v: &Input, list: Rect, n: usize) -> usize {
    let selected = v.example.min(n.saturating_sub(1));
    window_start(selected, list.height as usize, n)
}

/// The example row or posterior sample drawn at `at`, if any.
pub fn hit(v: &Input, area: Rect, at: Position) -> Option<Hit> {
    let inner = pane_block(v.chrome, Pane::Hidden, String::new()).inner(area);
    let posterior = v.posterior;
    if posterior.is_none() && v.forward.is_none() {
        return None;
    }
    let rows = &v.rows;
    if rows.is_empty() {
        return None;
    }
    let parts = split(v, inner, rows.len());
    let (list_r, detail_r) = (parts.list, parts.detail);
    if list_r.contains(at) {
        let row = list_start(v, list_r, rows.len()) + usize::from(at.y - list_r.y);
        return (row < rows.len()).then_some(Hit::Example(row));
    }
    let ex = rows
        .get(v.example.min(rows.len() - 1))
        .and_then(|i| posterior?.examples.get(*i))?;
    let d_inner = detail_inner(detail_r);
    if !d_inner.contains(at) {
        return None;
    }
    let d = detail_lines(v, ex, d_inner);
    let line = d.start + usize::from(at.y - d_inner.y);
    d.samples.get(line).copied().flatten().map(Hit::Sample)
}

/// What one row of the example list shows beyond the parts every row has.
struct ListRow<'a> {
    index: usize,
    correct: bool,
    /// The view's own cells, one per column, between the right/wrong mark and the input.
    cells: Vec<Vec<Span<'static>>>,
    input: &'a str,
}

/// A column of the example list: its name, and whether its cells are right-aligned.
type Column = (&'static str, bool);

/// The example list both views share, under a line naming its columns: a marker on the
/// selected row, the example's number, right or wrong, the view's own columns, then as much of
/// the input as fits (after `…` when the inputs share a long beginning, said once above),
/// scrolled to keep the selection in view. Returns the selected row, or `None` (after saying
/// so) when the filter leaves no example.
fn draw_list<E>(
    v: &Input,
    frame: &mut Frame,
    parts: &Parts,
    columns: &[Column],
    examples: &[E],
    row_of: impl Fn(&E) -> ListRow<'_>,
) -> Option<usize> {
    let t = &v.chrome.theme;
    let area = parts.list;
    if examples.is_empty() {
        frame.render_widget(
            Paragraph::new(muted_line(v.chrome.theme, "no example matches the filter")),
            area,
        );
        return None;
    }
    let selected = v.example.min(examples.len() - 1);
    let width = area.width as usize;
    let start = list_start(v, area, examples.len());
    let shown: Vec<(usize, ListRow)> = examples
        .iter()
        .enumerate()
        .skip(start)
        .take(area.height as usize)
        .map(|(row, ex)| (row, row_of(ex)))
        .collect();
    // Each column as wide as its name or its widest cell.
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(c, (name, _))| {
            shown
                .iter()
                .filter_map(|(_, r)| r.cells.get(c))
                .map(|cell| cell.iter().map(Span::width).sum())
                .chain([super::text::width(name)])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let pad = |spans: &mut Vec<Span<'static>>, cell: Vec<Span<'static>>, c: usize| {
        let w: usize = cell.iter().map(Span::width).sum();
        let fill = " ".repeat(widths[c].saturating_sub(w));
        if columns[c].1 {
            spans.push(Span::raw(fill));
            spans.extend(cell);
        } else {
            spans.extend(cell);
            spans.push(Span::raw(fill));
        }
        spans.push(Span::raw(" "));
    };
    // The column names over the list, under the inputs' shared beginning.
    let mut head = vec![Span::styled("   # ", t.muted), Span::raw("  ")];
    for (c, (name, _)) in columns.iter().enumerate() {
        pad(&mut head, vec![Span::styled(name.to_string(), t.muted)], c);
    }
    head.push(Span::styled("input", t.muted));
    let mut top = shared_lines(v, parts.top.width as usize);
    top.push(Line::from(head));
    frame.render_widget(Paragraph::new(top), parts.top);

    let shared = shared(v);
    let list: Vec<Line> = shown
        .into_iter()
        .map(|(row, r)| {
            let mark = if r.correct {
                Span::styled("✓", t.good)
            } else {
                Span::styled("✗", t.bad)
            };
            let mut spans = vec![
                Span::styled(if row == selected { "▶" } else { " " }, t.title),
                Span::styled(format!("{:>3} ", r.index + 1), t.muted),
                mark,
                Span::raw(" "),
            ];
            for (c, cell) in r.cells.into_iter().enumerate().take(columns.len()) {
                pad(&mut spans, cell, c);
            }
            let used: usize = spans.iter().map(|s| s.width()).sum();
            spans.push(Span::styled(
                one_line_of(&distinct(r.input, shared), width.saturating_sub(used)),
                t.text,
            ));
            let line = Line::from(spans);
            if row == selected {
                highlight(line, t.selection)
            } else {
                line
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(list), area);
    Some(selected)
}

fn draw_forward(v: &Input, frame: &mut Frame, inner: Rect, rows: &[usize]) {
    let t = &v.chrome.theme;
    let Some((iteration, examples)) = v.forward else {
        let msg = if v.depth == 1 {
            "DLN-1 has no hidden layer; the forward pass's outputs appear here"
        } else {
            "waiting for the first forward pass…"
        };
        frame.render_widget(Paragraph::new(muted_line(v.chrome.theme, msg)), inner);
        return;
    };
    let parts = split(v, inner, rows.len());
    let head = if v.depth == 1 {
        format!(
            "DLN-1: no hidden layer · forward outputs of it {}",
            iteration + 1
        )
    } else {
        format!(
            "forward pass of it {} · posterior samples follow",
            iteration + 1
        )
    };
    frame.render_widget(Paragraph::new(muted_line(v.chrome.theme, head)), parts.head);
    let shown: Vec<&ForwardExample> = rows.iter().filter_map(|i| examples.get(*i)).collect();
    let columns = [("predicted", false)];
    let selected = draw_list(v, frame, &parts, &columns, &shown, |ex| ListRow {
        index: ex.index,
        correct: ex.correct,
        cells: vec![vec![Span::styled(
            one_line_of(&ex.prediction, 16),
            if ex.correct { t.good } else { t.bad },
        )]],
        input: &ex.input,
    });
    if let Some(ex) = selected.map(|row| shown[row]) {
        let d_inner = detail_block(v, frame, parts.detail, ex.index);
        let lines = forward_lines(v, ex, d_inner.width as usize);
        let visible = scrolled(v, lines, 0, d_inner.height as usize);
        frame.render_widget(Paragraph::new(visible), d_inner);
    }
}

/// The detail of one example of the forward pass: its input, target, hidden texts and
/// prediction (a few lines each, all of them when expanded).
fn forward_lines(v: &Input, ex: &ForwardExample, width: usize) -> Vec<Line<'static>> {
    let t = v.chrome.theme;
    let cap = if v.expanded { usize::MAX } else { 4 };
    let mut lines = Vec::new();
    let input = if v.expanded {
        ex.input.as_str().into()
    } else {
        distinct(&ex.input, shared(v))
    };
    labelled(t, &mut lines, "input", &input, width, cap);
    labelled(t, &mut lines, "target", &ex.target, width, cap);
    for (l, h) in ex.hidden.iter().enumerate() {
        labelled(t, &mut lines, &format!("h{}", l + 1), h, width, cap);
        if ex.hidden_cut.get(l).copied().unwrap_or(false) {
            lines.push(Line::from(vec![
                Span::raw(" ".repeat(10)),
                Span::styled(CUT_NOTE, t.muted),
            ]));
        }
    }
    labelled(t, &mut lines, "predicted", &ex.prediction, width, cap);
    lines
}
