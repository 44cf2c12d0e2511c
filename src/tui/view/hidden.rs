//! The Hidden-states pane (DLN-2 and deeper): for the current batch, each example's input,
//! target and forward hidden text, and its posterior samples with log-likelihood, prior and
//! sharpened weight (numbers and bars), the best one marked, the posterior's entropy.
//! For DLN-1 it shows the forward pass's predictions instead.

use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::layout::Hit;
use super::text::{
    bar, common_prefix, logp, one_line_of, shared_beginning, wrap, SHARED_PREFIX_MIN,
};
use super::Chrome;
use super::{highlight, muted_line, pane_block, window_start};
use crate::dln::events::{ForwardExample, PosteriorExample, SampleOrigin};
use crate::tui::app::{HiddenSort, Pane};
use crate::tui::model::PosteriorView;
use crate::tui::theme::Theme;

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

/// The detail area's top rule titled with the example's number; returns the area below it.
fn detail_block(v: &Input, frame: &mut Frame, area: Rect, index: usize) -> Rect {
    let t = &v.chrome.theme;
    let block = Block::default()
        .borders(Borders::TOP)
        .border_style(t.border)
        .title(Line::from(Span::styled(
            format!(" example {} ", index + 1),
            t.title,
        )));
    frame.render_widget(block, area);
    detail_inner(area)
}

fn detail(v: &Input, frame: &mut Frame, area: Rect, ex: &PosteriorExample) {
    let inner = detail_block(v, frame, area, ex.index);
    let d = detail_lines(v, ex, inner);
    let visible = scrolled(v, d.lines, d.start, d.height);
    frame.render_widget(Paragraph::new(visible), inner);
}

/// The last line a detail of `total` lines in `height` rows may start at, with the bottom row
/// kept for the "more below" line while the text does not fit.
fn last_start(total: usize, height: usize) -> usize {
    total.saturating_sub(height)
}

/// The rows of a detail shown from `start`, moved down by the person's scroll when the item is
/// expanded; while lines are left below, the last row says how many and how to see them.
fn scrolled(
    v: &Input,
    lines: Vec<Line<'static>>,
    start: usize,
    height: usize,
) -> Vec<Line<'static>> {
    let total = lines.len();
    let start = if v.expanded {
        (start + v.detail_scroll).min(last_start(total, height))
    } else {
        start
    };
    let mut shown: Vec<Line<'static>> = lines.into_iter().skip(start).take(height).collect();
    let below = total.saturating_sub(start + height);
    if v.expanded && below > 0 && height > 1 {
        shown.pop();
        let more = below + 1;
        shown.push(muted_line(
            v.chrome.theme,
            format!(
                "↓ {more} more line{} · PgDn/PgUp scroll",
                if more == 1 { "" } else { "s" }
            ),
        ));
    }
    shown
}

/// How far the expanded item of the Hidden pane (drawn in `area`, borders included) can
/// scroll: what PgDn stops at.
pub fn max_detail_scroll(v: &Input, area: Rect) -> usize {
    let inner = Block::bordered().inner(area);
    match v.posterior {
        Some(p) => {
            let examples: Vec<&PosteriorExample> =
                v.rows.iter().filter_map(|i| p.examples.get(*i)).collect();
            if examples.is_empty() {
                return 0;
            }
            let detail_r = split(v, inner, examples.len()).detail;
            let ex = examples[v.example.min(examples.len() - 1)];
            let d = detail_lines(v, ex, detail_inner(detail_r));
            last_start(d.lines.len(), d.height).saturating_sub(d.start)
        }
        None => {
            let Some((_, examples)) = v.forward else {
                return 0;
            };
            let shown: Vec<&ForwardExample> =
                v.rows.iter().filter_map(|i| examples.get(*i)).collect();
            if shown.is_empty() {
                return 0;
            }
            let d_inner = detail_inner(split(v, inner, shown.len()).detail);
            let ex = shown[v.example.min(shown.len() - 1)];
            last_start(
                forward_lines(v, ex, d_inner.width as usize).len(),
                d_inner.height as usize,
            )
        }
    }
}

/// The detail area's lines, the sample each line shows, and the first line shown: what drawing
/// and mouse hits share.
struct Detail {
    lines: Vec<Line<'static>>,
    samples: Vec<Option<usize>>,
    start: usize,
    height: usize,
}

/// The area below the detail's top rule.
fn detail_inner(area: Rect) -> Rect {
    Block::default().borders(Borders::TOP).inner(area)
}

fn detail_lines(v: &Input, ex: &PosteriorExample, inner: Rect) -> Detail {
    let t = &v.chrome.theme;
    let width = inner.width as usize;
    let full = v.expanded;
    let cap = if full { usize::MAX } else { 2 };
    let mut lines: Vec<Line<'static>> = Vec::new();
    // Collapsed, the input after the beginning every input shares (said above the list).
    let input = if full {
        ex.input.as_str().into()
    } else {
        distinct(&ex.input, shared(v))
    };
    labelled(t, &mut lines, "input", &input, width, cap);
    labelled(t, &mut lines, "target", &ex.target, width, cap);
    // An empty hidden text is said, not left as a blank line.
    if ex.hidden.trim().is_empty() {
        lines.push(Line::from(vec![
            Span::styled(format!("{:<10}", "hidden h"), t.muted),
            Span::styled("(empty: the layer below wrote nothing)", t.muted),
        ]));
    } else {
        labelled(t, &mut lines, "hidden h", &ex.hidden, width, cap);
    }
    let samples_at = lines.len();
    // Each sample's origin, the log-likelihood of the target given it, its log-prior given the
    // input, and its sharpened weight (a number and a bar); then the sample itself.
    let bar_cells = 6;
    lines.push(Line::from(Span::styled(
        format!(
            "{:<3}{:<10}{:>10} {:>10}  {:<w$}sample h",
            "#",
            "from",
            "log p(y|h)",
            "log p(h|x)",
            "weight",
            w = 5 + bar_cells + 1
        ),
        t.muted,
    )));
    let mut owners: Vec<Option<usize>> = vec![None; lines.len()];
    let sample = v.sample.min(ex.samples.len().saturating_sub(1));
    for (i, s) in ex.samples.iter().enumerate() {
        let best = ex.best == Some(i);
        let style = if s.excluded {
            t.bad
        } else if best {
            t.best
        } else if s.origin == SampleOrigin::Human {
            t.human
        } else {
            t.text
        };
        let origin = match s.origin {
            SampleOrigin::Forward => "forward",
            SampleOrigin::Posterior => "posterior",
            SampleOrigin::Human => "you",
        };
        let marker = if s.excluded {
            "✗"
        } else if best {
            "★"
        } else {
            " "
        };
        let w = s.weight.unwrap_or(0.0);
        let head = format!(
            "{marker}{:<2}{:<10}{:>10} {:>10}  {:>4} ",
            i + 1,
            origin,
            logp(s.log_likelihood),
            logp(s.log_prior),
            s.weight
                .map(|w| format!("{w:.2}"))
                .unwrap_or_else(|| "—".into()),
        );
        let spans = vec![
            Span::styled(head, style),
            Span::styled(bar(w, bar_cells), t.bar),
            Span::raw(" "),
        ];
        let used: usize = spans.iter().map(|s| s.width()).sum();
        let text_w = width.saturating_sub(used);
        let empty = s.text.trim().is_empty();
        let whole = full && i == sample;
        // A text its token budget ended is marked at its end: `✂` on its one line, a line of
        // its own under it in full.
        let scissors = if s.cut && !whole { 2 } else { 0 };
        // Expanded, the selected sample wraps in full; otherwise one line each, so that
        // selecting never moves the rows under the mouse.
        let mut texts = if empty {
            vec![String::new()]
        } else if whole {
            wrap(&s.text, text_w)
        } else {
            vec![one_line_of(&s.text, text_w.saturating_sub(scissors))]
        };
        if s.cut && whole {
            texts.push(CUT_NOTE.to_string());
        }
        let note = if s.excluded { " (excluded)" } else { "" };
        let n_texts = texts.len();
        for (k, tline) in texts.into_iter().enumerate() {
            let mut l = if k == 0 {
                let mut l = spans.clone();
                if empty {
                    l.push(Span::styled("(empty)", t.muted));
                }
                l.push(Span::styled(format!("{tline}{note}"), style));
                if scissors > 0 {
                    l.push(Span::styled(" ✂", t.muted));
                }
                Line::from(l)
            } else {
                let look = if s.cut && k + 1 == n_texts {
                    t.muted
                } else {
                    style
                };
                Line::from(vec![Span::raw(" ".repeat(used)), Span::styled(tline, look)])
            };
            if i == sample {
                l = highlight(l, t.selection);
            }
            lines.push(l);
        }
        owners.resize(lines.len(), Some(i));
    }
    if ex.samples.is_empty() {
        lines.push(muted_line(
            v.chrome.theme,
            "no samples (correct examples may be skipped)",
        ));
    }
    // Keep the selected sample in view: its first line, its last while the whole fits, and
    // the table's column names while they fit above it.
    let height = inner.height as usize;
    let first = owners
        .iter()
        .position(|o| *o == Some(sample))
        .unwrap_or(samples_at + 1);
    let last = owners
        .iter()
        .rposition(|o| *o == Some(sample))
        .unwrap_or(first);
    let keep = if first < samples_at + height {
        samples_at
    } else {
        first
    };
    let start = if last >= height {
        (last + 1 - height).min(keep)
    } else {
        0
    };
    Detail {
        lines,
        samples: owners,
        start,
        height,
    }
}

fn labelled(
    t: &Theme,
    out: &mut Vec<Line<'static>>,
    label: &str,
    text: &str,
    width: usize,
    cap: usize,
) {
    let pad = 10;
    let mut wrapped = wrap(text, width.saturating_sub(pad));
    // Cut to a few lines, a text of paragraphs shows its words, not the blank lines between.
    if cap != usize::MAX {
        wrapped.retain(|l| !l.trim().is_empty());
    }
    let n = wrapped.len();
    for (i, l) in wrapped.into_iter().take(cap).enumerate() {
        let lab = if i == 0 {
            format!("{label:<pad$}")
        } else {
            " ".repeat(pad)
        };
        let mut content = l;
        if i + 1 == cap && n > cap {
            content.push('…');
        }
        out.push(Line::from(vec![
            Span::styled(lab, t.muted),
            Span::styled(content, t.text),
        ]));
    }
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
