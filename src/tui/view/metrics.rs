//! The Metrics pane: the current stage with a progress gauge and ETA, train/dev accuracy and ELBO
//! over iterations as charts, token usage and calls per layer.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, LineGauge, Paragraph, Widget};
use ratatui::Frame;

use super::text::{count, duration_ms, num, pct};
use super::Chrome;
use super::{muted_line, pane_block};
use crate::dln::events::Stage;
use crate::tui::app::{Pane, RecordedEnd};
use crate::tui::model::RunView;

/// What the pane shows: the run's progress, accuracy and ELBO history, and usage.
pub struct Input<'a> {
    pub chrome: Chrome<'a>,
    pub run: &'a RunView,
    /// Lines scrolled when the content is taller than the pane.
    pub scroll: usize,
    /// Replay: the position shown (1-based), of how many iterations, and how the recorded run
    /// ended; the gauge then shows the recording, never a stage in progress or an ETA.
    pub replay: Option<(usize, usize, RecordedEnd)>,
}

/// The name of a stage as the paper says it; the pane says which split an evaluation is on.
pub fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Evaluate => "evaluate (dev)",
        other => other.name(),
    }
}

/// Rows the accuracy chart needs (its legend row included) before the pane scrolls instead.
const ACCURACY_MIN: u16 = 6;
/// Rows the ELBO chart needs (its legend row included).
const ELBO_MIN: u16 = 5;

/// Rows the pane's content needs to be shown without squeezing: when the pane is shorter, it
/// scrolls instead (↑/↓ with the pane focused).
pub fn content_height(v: &Input) -> u16 {
    let charts = if has_charts(v) {
        ACCURACY_MIN + ELBO_MIN
    } else {
        1
    };
    2 + charts + usage_height(v)
}

/// How far the pane drawn in `area` can scroll.
pub fn max_scroll(v: &Input, area: Rect) -> usize {
    let inner = pane_block(v.chrome, Pane::Metrics, String::new()).inner(area);
    usize::from(content_height(v).saturating_sub(inner.height))
}

fn has_charts(v: &Input) -> bool {
    !(v.run.history.is_empty() && v.run.dev_points.is_empty())
}

fn usage_height(v: &Input) -> u16 {
    match v.run.depth() {
        0 => 0,
        k => u16::try_from(k + 1).unwrap_or(u16::MAX),
    }
}

pub fn draw(v: &Input, frame: &mut Frame, area: Rect) {
    let need = content_height(v);
    let height = pane_block(v.chrome, Pane::Metrics, String::new())
        .inner(area)
        .height;
    let start = v.scroll.min(max_scroll(v, area)) as u16;
    let info = if need > height {
        format!("{}–{} of {}", start + 1, start + height, need)
    } else {
        String::new()
    };
    let block = pane_block(v.chrome, Pane::Metrics, info);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if need <= inner.height {
        content(v, frame.buffer_mut(), inner);
        return;
    }
    // Taller than the pane: draw it whole off-screen, then show the scrolled window of it.
    let whole = Rect::new(0, 0, inner.width, need);
    let mut full = Buffer::empty(whole);
    content(v, &mut full, whole);
    let buf = frame.buffer_mut();
    for y in 0..inner.height {
        for x in 0..inner.width {
            if let (Some(src), Some(dst)) = (
                full.cell((x, y + start)),
                buf.cell_mut((inner.x + x, inner.y + y)),
            ) {
                *dst = src.clone();
            }
        }
    }
}

/// The pane's content laid out in `area` (at least [`content_height`] rows tall to show all).
fn content(v: &Input, buf: &mut Buffer, area: Rect) {
    let t = &v.chrome.theme;
    let [gauge_r, summary_r, charts_r, usage_r] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(usage_height(v)),
    ])
    .areas(area);

    // Stage and progress.
    let (label, ratio) = match (&v.run.stage, v.replay) {
        (_, Some((pos, n, end))) => (
            format!(
                "replay: {pos} of {n} recorded iterations · run {}",
                end.label()
            ),
            pos as f64 / n.max(1) as f64,
        ),
        (Some(s), None) => {
            let layer = s.layer.map(|l| format!(" L{}", l + 1)).unwrap_or_default();
            let of = if s.total > 0 {
                format!(" {}/{}", s.done, s.total)
            } else {
                String::new()
            };
            let tokens = v
                .run
                .stage_tokens()
                .filter(|&n| n > 0)
                .map(|n| format!(" · {} tok", crate::format::count(n)))
                .unwrap_or_default();
            let ratio = if s.total > 0 {
                s.done as f64 / s.total as f64
            } else {
                0.0
            };
            // The test evaluation after the last iteration runs as iteration `iterations`.
            let it = if v.run.iterations > 0 && s.iteration >= v.run.iterations {
                "after training".to_string()
            } else {
                format!("it {}/{}", s.iteration + 1, v.run.iterations)
            };
            (
                format!("{it} {}{layer}{of}{tokens}", stage_name(s.stage)),
                ratio,
            )
        }
        (None, None) if v.run.finished => ("finished".to_string(), 1.0),
        (None, None) => ("not started".to_string(), 0.0),
    };
    let eta = v
        .run
        .eta_ms()
        .filter(|_| v.replay.is_none())
        .map(|ms| format!(" · ETA {}", duration_ms(ms)))
        .unwrap_or_default();
    LineGauge::default()
        .filled_style(t.gauge)
        .unfilled_style(t.muted)
        .label(Span::styled(format!("{label}{eta} "), t.text))
        .ratio(ratio.clamp(0.0, 1.0))
        .render(gauge_r, buf);

    Paragraph::new(summary(v, summary_r.width as usize)).render(summary_r, buf);

    // Charts: 55/45, each at least its minimum while there is room.
    if !has_charts(v) {
        Paragraph::new(muted_line(
            v.chrome.theme,
            "charts appear after the first iteration",
        ))
        .render(charts_r, buf);
    } else {
        let acc_h = (charts_r.height * 55 / 100)
            .max(ACCURACY_MIN)
            .min(charts_r.height.saturating_sub(ELBO_MIN));
        let [acc_r, elbo_r] =
            Layout::vertical([Constraint::Length(acc_h), Constraint::Min(0)]).areas(charts_r);
        accuracy_chart(v, buf, acc_r);
        elbo_chart(v, buf, elbo_r);
    }

    // Usage per layer: the finished iterations' totals plus, while an iteration runs, its usage
    // so far (from its stage events); the header says when the running iteration is included.
    if usage_r.height > 0 {
        Paragraph::new(usage_lines(v)).render(usage_r, buf);
    }
}

/// The usage table: a header, then one row per layer.
fn usage_lines(v: &Input) -> Vec<Line<'static>> {
    let t = &v.chrome.theme;
    let live = v
        .run
        .live_usage
        .as_ref()
        .map(|(it, _)| format!("  incl. it {} so far", it + 1))
        .unwrap_or_default();
    // A cost column only when a backend is priced (`prompt_price`, `generated_price`).
    let usage: Vec<_> = v
        .run
        .layers
        .iter()
        .map(|l| (l.index, v.run.layer_usage(l.index)))
        .collect();
    let priced = usage.iter().any(|(_, u)| u.cost > 0.0);
    let cost_head = if priced {
        format!("{:>9}", "cost")
    } else {
        String::new()
    };
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "{:<7}{:>7}{:>10}{:>9}{:>10}{:>7}{cost_head}{live}",
            "layer", "calls", "computed", "reused", "generated", "cached"
        ),
        t.muted,
    ))];
    for (index, u) in usage {
        let cost_cell = if priced {
            format!("{:>9}", money(u.cost))
        } else {
            String::new()
        };
        lines.push(Line::from(Span::styled(
            format!(
                "{:<7}{:>7}{:>10}{:>9}{:>10}{:>7}{cost_cell}",
                format!("L{}", index + 1),
                count(u.calls),
                count(u.tokens_computed),
                count(u.tokens_reused),
                count(u.tokens_generated),
                count(u.cache_hits)
            ),
            t.text,
        )));
    }
    lines
}

/// The summary numbers: accuracy on train and dev, the best dev, the ELBO, the test accuracy;
/// as much of them as fits `width`: the best dev's iteration goes first, then the best dev.
fn summary(v: &Input, width: usize) -> Line<'static> {
    let t = &v.chrome.theme;
    let last = v.run.history.last();
    let line = |best: u8| {
        let mut spans = vec![
            Span::styled("train ", t.muted),
            Span::styled(
                pct(last.map(|p| p.train_accuracy).or(v.run.forward_accuracy)),
                t.chart_train,
            ),
            Span::styled("  dev ", t.muted),
            Span::styled(pct(v.run.dev_points.last().map(|p| p.1)), t.chart_dev),
        ];
        if best > 0 {
            let best_dev = match (v.run.best_dev, best) {
                (Some((it, a)), 2) => format!("{} (it {})", pct(Some(a)), it + 1),
                (Some((_, a)), _) => pct(Some(a)),
                (None, _) => "—".into(),
            };
            spans.push(Span::styled("  best dev ", t.muted));
            spans.push(Span::styled(best_dev, t.text));
        }
        spans.push(Span::styled("  ELBO ", t.muted));
        spans.push(Span::styled(num(v.run.elbo_total), t.chart_elbo));
        if let Some(a) = v.run.test_accuracy {
            spans.push(Span::styled(format!("  test {}", pct(Some(a))), t.good));
        }
        Line::from(spans)
    };
    (0..=2)
        .rev()
        .map(line)
        .find(|l| l.width() <= width)
        .unwrap_or_else(|| line(0))
}

/// Columns the pane's widest line of text takes (the summary, the usage table); the charts
/// take any width.
pub fn content_width(v: &Input) -> u16 {
    let usage = usage_lines(v).iter().map(Line::width).max().unwrap_or(0);
    let summary = summary(v, usize::MAX).width();
    u16::try_from(summary.max(usage)).unwrap_or(u16::MAX)
}

/// A cost in the prices' currency: four decimals while small (a few calls cost fractions of a
/// cent), two from 100 on.
fn money(c: f64) -> String {
    if c < 100.0 {
        format!("{c:.4}")
    } else {
        format!("{c:.2}")
    }
}

fn x_bounds(v: &Input) -> [f64; 2] {
    let max_it = v
        .run
        .history
        .iter()
        .map(|p| p.iteration)
        .chain(v.run.dev_points.iter().map(|p| p.0))
        .max()
        .unwrap_or(0);
    let upper = (v.run.iterations.max(1) as f64 - 1.0)
        .max(max_it as f64)
        .max(1.0);
    [0.0, upper]
}

fn accuracy_chart(v: &Input, buf: &mut Buffer, area: Rect) {
    let t = &v.chrome.theme;
    let train: Vec<(f64, f64)> = v
        .run
        .history
        .iter()
        .map(|p| (p.iteration as f64, p.train_accuracy))
        .collect();
    let dev: Vec<(f64, f64)> = v
        .run
        .dev_points
        .iter()
        .map(|(i, a)| (*i as f64, *a))
        .collect();
    let xb = x_bounds(v);
    let chart = Chart::new(vec![
        Dataset::default()
            .name("train")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(t.chart_train)
            .data(&train),
        Dataset::default()
            .name("dev")
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(t.chart_dev)
            .data(&dev),
    ])
    .x_axis(Axis::default().bounds(xb).style(t.muted))
    .y_axis(
        Axis::default()
            .bounds([0.0, 1.0])
            .labels(vec![
                Span::styled("0%", t.muted),
                Span::styled("100%", t.muted),
            ])
            .style(t.muted),
    )
    .legend_position(None);
    let area = legend(
        buf,
        area,
        vec![
            Span::styled("accuracy  ", t.muted),
            Span::styled("━ train", t.chart_train),
            Span::styled("  • dev", t.chart_dev),
        ],
    );
    chart.render(area, buf);
}

/// The series' names on a row above the chart, so no legend box covers the plotted lines;
/// returns the area left for the chart.
fn legend(buf: &mut Buffer, area: Rect, names: Vec<Span<'static>>) -> Rect {
    let [legend_r, chart_r] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    Paragraph::new(Line::from(names)).render(legend_r, buf);
    chart_r
}

fn elbo_chart(v: &Input, buf: &mut Buffer, area: Rect) {
    let t = &v.chrome.theme;
    let elbo: Vec<(f64, f64)> = v
        .run
        .history
        .iter()
        .filter_map(|p| p.elbo.map(|e| (p.iteration as f64, e)))
        .collect();
    if elbo.is_empty() {
        Paragraph::new(muted_line(v.chrome.theme, "ELBO: —")).render(area, buf);
        return;
    }
    let lo = elbo.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = elbo.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo).abs() * 0.1).max(0.05);
    let chart = Chart::new(vec![Dataset::default()
        .name("ELBO")
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(t.chart_elbo)
        .data(&elbo)])
    .x_axis(Axis::default().bounds(x_bounds(v)).style(t.muted))
    .y_axis(
        Axis::default()
            .bounds([lo - pad, hi + pad])
            .labels(vec![
                Span::styled(format!("{lo:.2}"), t.muted),
                Span::styled(format!("{hi:.2}"), t.muted),
            ])
            .style(t.muted),
    )
    .legend_position(None);
    let area = legend(
        buf,
        area,
        vec![
            Span::styled("ELBO  ", t.muted),
            Span::styled("━ sum of the layers' terms", t.chart_elbo),
        ],
    );
    chart.render(area, buf);
}
