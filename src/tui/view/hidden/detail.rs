//! The expanded example of the Hidden-states pane: its input, target and hidden text, each
//! posterior sample with its numbers, scrolled within the pane.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::{distinct, forward_lines, shared, split, Input, CUT_NOTE};
use crate::dln::events::{ForwardExample, PosteriorExample, SampleOrigin};
use crate::tui::theme::Theme;
use crate::tui::view::text::{bar, logp, one_line_of, wrap};
use crate::tui::view::{highlight, muted_line};

/// The detail area's top rule titled with the example's number; returns the area below it.
pub(super) fn detail_block(v: &Input, frame: &mut Frame, area: Rect, index: usize) -> Rect {
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

pub(super) fn detail(v: &Input, frame: &mut Frame, area: Rect, ex: &PosteriorExample) {
    let inner = detail_block(v, frame, area, ex.index);
    let d = detail_lines(v, ex, inner);
    let visible = scrolled(v, d.lines, d.start, d.height);
    frame.render_widget(Paragraph::new(visible), inner);
}

/// The last line a detail of `total` lines in `height` rows may start at, with the bottom row
/// kept for the "more below" line while the text does not fit.
pub(super) fn last_start(total: usize, height: usize) -> usize {
    total.saturating_sub(height)
}

/// The rows of a detail shown from `start`, moved down by the person's scroll when the item is
/// expanded; while lines are left below, the last row says how many and how to see them.
pub(super) fn scrolled(
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
pub(super) struct Detail {
    pub(super) lines: Vec<Line<'static>>,
    pub(super) samples: Vec<Option<usize>>,
    pub(super) start: usize,
    pub(super) height: usize,
}

/// The area below the detail's top rule.
pub(super) fn detail_inner(area: Rect) -> Rect {
    Block::default().borders(Borders::TOP).inner(area)
}

pub(super) fn detail_lines(v: &Input, ex: &PosteriorExample, inner: Rect) -> Detail {
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

pub(super) fn labelled(
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
