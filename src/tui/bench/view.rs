//! Drawing the bench screen: a pure function of [`BenchView`]. The table on top (rows = tasks,
//! columns = methods, a page of columns at a time when they do not fit), the selected cell's
//! runs below (with a chart of dev accuracy on wide screens), a footer saying where the numbers
//! come from, and the status line.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Clear, Dataset, GraphType, Paragraph, Wrap};
use ratatui::Frame;

use super::state::BenchView;
use super::table::{self, pct, Metric};
use crate::bench::accuracy::report::{human_seconds, human_tokens, other_models_note, short_model};
use crate::bench::accuracy::CellRow;
use crate::tui::view::{layout::fitted, window_start};
use crate::tui::Action;

/// Below this width the detail panel has no chart.
const CHART_MIN_WIDTH: u16 = 100;
/// The widest the task column gets (longer names end in `…`).
const TASK_WIDTH: usize = 20;
/// Spaces between two columns.
const GAP: usize = 2;

/// Where each part goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub table: Rect,
    pub detail: Rect,
    pub footer: Rect,
    pub status: Rect,
}

/// The table takes what its rows need, up to about half the screen; the detail the rest.
pub fn areas(area: Rect, tasks: usize) -> Areas {
    let [body, footer, status] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let wanted = u16::try_from(tasks + 3).unwrap_or(u16::MAX);
    let cap = (body.height / 2).max(5);
    let [table, detail] =
        Layout::vertical([Constraint::Length(wanted.min(cap)), Constraint::Fill(1)]).areas(body);
    Areas {
        table,
        detail,
        footer,
        status,
    }
}

pub fn draw(v: &BenchView, frame: &mut Frame) {
    let a = areas(frame.area(), v.report().tasks.len());
    draw_table(v, frame, a.table);
    draw_detail(v, frame, a.detail);
    frame.render_widget(Paragraph::new(footer(v)), a.footer);
    frame.render_widget(Paragraph::new(status(v)), a.status);
    if v.help {
        draw_help(v, frame, frame.area());
    }
}

/// The columns of the table at a width: the task column's width, each method column's width,
/// and the page of methods shown (`first..last`), the one holding the selected column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    pub task_width: usize,
    pub width: usize,
    pub first: usize,
    pub last: usize,
}

pub fn columns(v: &BenchView, inner_width: usize) -> Columns {
    let r = v.report();
    let seeds = r.seeds.len();
    let mut width = 4;
    for m in &r.methods {
        width = width.max(table::heading(r, *m).chars().count());
        for t in &r.tasks {
            for metric in [Metric::Test, Metric::Dev] {
                let s = table::summary(r, t, *m, metric);
                width = width.max(table::cell_text(&s, seeds).chars().count());
            }
        }
    }
    let longest = r.tasks.iter().map(|t| t.chars().count()).max().unwrap_or(4);
    let task_width = longest.clamp(4, TASK_WIDTH).min(inner_width / 3);
    let fit = (inner_width.saturating_sub(task_width) / (width + GAP)).max(1);
    let first = (v.col / fit) * fit;
    Columns {
        task_width,
        width,
        first,
        last: (first + fit).min(r.methods.len()),
    }
}

fn draw_table(v: &BenchView, frame: &mut Frame, area: Rect) {
    let t = &v.theme;
    let r = v.report();
    let inner_width = usize::from(area.width.saturating_sub(2));
    let c = columns(v, inner_width);
    let which = if v.tables.len() > 1 {
        format!(
            "table {} of {}: {} · ",
            v.shown + 1,
            v.tables.len(),
            short_model(&r.model)
        )
    } else {
        String::new()
    };
    let title = format!(
        " {which}{} accuracy (%) · mean ± std over seeds ",
        match v.metric {
            Metric::Test => "Test",
            Metric::Dev => "Dev",
        }
    );
    let mut pages = String::new();
    if c.first > 0 {
        pages.push_str("◀ ");
    }
    pages.push_str(&format!(
        "methods {}-{} of {}",
        c.first + 1,
        c.last,
        r.methods.len()
    ));
    if c.last < r.methods.len() {
        pages.push_str(" ▶");
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.border_focused)
        .title(Span::styled(title, t.title))
        .title(Line::from(Span::styled(format!(" {pages} "), t.muted)).right_aligned());
    let mut lines: Vec<Line> = Vec::new();
    let mut header = vec![Span::styled(fit("task", c.task_width), t.muted)];
    for m in &r.methods[c.first..c.last] {
        header.push(Span::raw(" ".repeat(GAP)));
        header.push(Span::styled(
            right(&table::heading(r, *m), c.width),
            t.title,
        ));
    }
    lines.push(Line::from(header));
    let height = usize::from(area.height.saturating_sub(3));
    let start = window_start(v.row, height, r.tasks.len());
    let seeds = r.seeds.len();
    for (i, task) in r.tasks.iter().enumerate().skip(start).take(height) {
        let name_style = if i == v.row {
            t.text.add_modifier(Modifier::BOLD)
        } else {
            t.text
        };
        let mut spans = vec![Span::styled(fit(task, c.task_width), name_style)];
        let best = table::best_of_row(r, task, v.metric);
        for (j, m) in r.methods.iter().enumerate().take(c.last).skip(c.first) {
            let s = table::summary(r, task, *m, v.metric);
            let mut style = if s.mean.is_none() {
                t.muted
            } else if table::is_best(&s, best) {
                t.best.add_modifier(Modifier::BOLD)
            } else {
                t.text
            };
            if (i, j) == (v.row, v.col) {
                style = style.patch(t.selection);
            }
            spans.push(Span::raw(" ".repeat(GAP)));
            spans.push(Span::styled(
                right(&table::cell_text(&s, seeds), c.width),
                style,
            ));
        }
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_detail(v: &BenchView, frame: &mut Frame, area: Rect) {
    let t = &v.theme;
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.border)
        .title(Span::styled(format!(" {} ", v.selection_label()), t.title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let run = v.selected_run();
    let chart = inner.width >= CHART_MIN_WIDTH
        && inner.height >= 8
        && v.runs().iter().any(|c| !c.dev_curve.is_empty());
    let (text_area, chart_area) = if chart {
        let [l, r] = Layout::horizontal([Constraint::Percentage(64), Constraint::Percentage(36)])
            .areas(inner);
        (l, Some(r))
    } else {
        (inner, None)
    };
    let lines = detail_lines(v, run);
    let most = u16::try_from(lines.len().saturating_sub(1)).unwrap_or(u16::MAX);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((v.detail_scroll.min(most), 0)),
        text_area,
    );
    if let Some(a) = chart_area {
        draw_curves(v, frame, a);
    }
}

/// The detail panel's text: each seed's run, then the selected one's numbers and prompts.
pub fn detail_lines(v: &BenchView, run: Option<&CellRow>) -> Vec<Line<'static>> {
    let t = &v.theme;
    let runs = v.runs();
    let mut lines: Vec<Line<'static>> = Vec::new();
    for (i, seed) in v.report().seeds.iter().enumerate() {
        let mark = if i == v.seed { "▸ " } else { "  " };
        let mut spans = vec![
            Span::styled(mark, t.key),
            Span::styled(format!("seed {seed}  "), t.text),
        ];
        match runs.iter().find(|c| c.seed == *seed) {
            None => spans.push(Span::styled("not run", t.muted)),
            Some(c) => {
                let style = if c.status == "finished" {
                    t.good
                } else if c.status.starts_with("failed") {
                    t.bad
                } else {
                    t.warning
                };
                spans.push(Span::styled(c.status.clone(), style));
                let acc = |a: Option<f64>| a.map_or("—".to_string(), pct);
                spans.push(Span::styled(
                    format!(
                        "  test {} · dev {} · {} tok · {} calls · {}",
                        acc(c.test_accuracy),
                        acc(c.dev_accuracy),
                        human_tokens(c.tokens as f64),
                        c.calls,
                        human_seconds(c.seconds)
                    ),
                    t.text,
                ));
                if let Some(rote) = c.one_answer() {
                    spans.push(Span::styled(format!(" · {rote}"), t.warning));
                }
            }
        }
        let line = Line::from(spans);
        lines.push(if i == v.seed {
            line.patch_style(Style::default().add_modifier(Modifier::BOLD))
        } else {
            line
        });
    }
    lines.push(Line::raw(""));
    let Some(c) = run else {
        let seed = v.seed_number().map_or(String::new(), |s| format!(" {s}"));
        lines.push(Line::styled(
            format!("seed{seed} of this cell did not run; [ ] picks another seed"),
            t.muted,
        ));
        return lines;
    };
    if let (Some(alone), Some(dev)) = (c.output_alone_dev, c.dev_accuracy) {
        lines.push(Line::from(vec![
            Span::styled("output layer alone ", t.muted),
            Span::styled(format!("dev {}", pct(alone)), t.text),
            Span::styled(" · the hidden layers add ", t.muted),
            Span::styled(format!("{:+.1} points", (dev - alone) * 100.0), t.text),
        ]));
    }
    if !c.dev_curve.is_empty() {
        let values: Vec<f64> = c.dev_curve.iter().map(|p| p.1).collect();
        let points = c
            .dev_curve
            .iter()
            .map(|(i, a)| format!("{i}: {}", pct(*a)))
            .collect::<Vec<_>>()
            .join(" · ");
        lines.push(Line::from(vec![
            Span::styled("dev by iteration ", t.muted),
            Span::styled(sparkline(&values), t.chart_dev),
            Span::styled(format!("  {points}"), t.text),
        ]));
    }
    lines.push(Line::from(vec![
        Span::styled("run ", t.muted),
        Span::styled(c.run_dir.clone(), t.text),
        Span::styled(
            format!(" ({} opens its replay)", v.keymap.key_label(Action::Expand)),
            t.muted,
        ),
    ]));
    if !c.best_prompts.is_empty() {
        lines.push(Line::styled("best prompts", t.title));
        for (l, p) in c.best_prompts.iter().enumerate() {
            for (k, text) in p.lines().enumerate() {
                let label = if k == 0 {
                    format!("L{} ", l + 1)
                } else {
                    "   ".to_string()
                };
                lines.push(Line::from(vec![
                    Span::styled(label, t.key),
                    Span::styled(text.to_string(), t.text),
                ]));
            }
        }
    }
    lines
}

/// A curve in one line of block characters, scaled between its lowest and highest point.
pub fn sparkline(values: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    values
        .iter()
        .map(|x| {
            if hi - lo < 1e-12 {
                BARS[3]
            } else {
                let i = ((x - lo) / (hi - lo) * 7.0).round() as usize;
                BARS[i.min(7)]
            }
        })
        .collect()
}

/// Dev accuracy by iteration of each seed of the cell, the selected seed in the dev colour.
fn draw_curves(v: &BenchView, frame: &mut Frame, area: Rect) {
    let t = &v.theme;
    let runs = v.runs();
    let selected = v.seed_number();
    let data: Vec<(u64, Vec<(f64, f64)>)> = runs
        .iter()
        .map(|c| {
            let points = c
                .dev_curve
                .iter()
                .map(|(i, a)| (*i as f64, a * 100.0))
                .collect();
            (c.seed, points)
        })
        .collect();
    let all = data.iter().flat_map(|(_, p)| p.iter());
    let (mut x_max, mut y_lo, mut y_hi) = (1.0_f64, 100.0_f64, 0.0_f64);
    for (x, y) in all {
        x_max = x_max.max(*x);
        y_lo = y_lo.min(*y);
        y_hi = y_hi.max(*y);
    }
    let y_lo = ((y_lo - 5.0) / 10.0).floor().max(0.0) * 10.0;
    let y_hi = ((y_hi + 5.0) / 10.0).ceil().min(10.0) * 10.0;
    // Others first, so the selected seed's curve is drawn over them.
    let mut order: Vec<&(u64, Vec<(f64, f64)>)> = data.iter().collect();
    order.sort_by_key(|(seed, _)| Some(*seed) == selected);
    let datasets: Vec<Dataset> = order
        .iter()
        .map(|(seed, points)| {
            let style = if Some(*seed) == selected {
                t.chart_dev
            } else {
                t.muted
            };
            Dataset::default()
                .name(format!("seed {seed}"))
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(style)
                .data(points)
        })
        .collect();
    let chart = Chart::new(datasets)
        .block(
            Block::default()
                .borders(Borders::LEFT)
                .border_style(t.border)
                .title(Span::styled(" dev % by iteration", t.muted)),
        )
        .x_axis(
            Axis::default()
                .style(t.muted)
                .bounds([0.0, x_max])
                .labels(["0".to_string(), format!("{x_max:.0}")]),
        )
        .y_axis(
            Axis::default()
                .style(t.muted)
                .bounds([y_lo, y_hi])
                .labels([format!("{y_lo:.0}"), format!("{y_hi:.0}")]),
        )
        .hidden_legend_constraints((Constraint::Ratio(1, 1), Constraint::Ratio(1, 1)));
    frame.render_widget(chart, area);
}

fn footer(v: &BenchView) -> Line<'static> {
    let r = v.report();
    let seeds = r
        .seeds
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    Line::styled(
        format!(
            "{}{} · {} · seeds {seeds} · k = {} · {}",
            short_model(&r.model),
            other_models_note(&r.other_models, ""),
            r.date,
            r.k,
            r.hardware
        ),
        v.theme.muted,
    )
}

fn status(v: &BenchView) -> Line<'static> {
    let t = &v.theme;
    if let Some(n) = &v.notice {
        return Line::styled(n.clone(), t.warning);
    }
    let k = |a: Action| v.keymap.key_label(a);
    let hints = [
        (
            format!(
                "{}{}{}{}",
                k(Action::PrevLayer),
                k(Action::Down),
                k(Action::Up),
                k(Action::NextLayer)
            ),
            "move",
        ),
        (
            format!("{}{}", k(Action::ScrubBack), k(Action::ScrubForward)),
            "seed",
        ),
        (k(Action::Expand), "replay"),
    ];
    let tables = (v.tables.len() > 1).then(|| (k(Action::FocusNext), "table"));
    let hints = hints.into_iter().chain(tables).chain([
        (
            k(Action::ToggleDiff),
            match v.metric {
                Metric::Test => "dev",
                Metric::Dev => "test",
            },
        ),
        (k(Action::Help), "help"),
        (k(Action::Quit), "quit"),
    ]);
    let mut spans = Vec::new();
    for (i, (key, what)) in hints.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", t.muted));
        }
        spans.push(Span::styled(key, t.key));
        spans.push(Span::styled(format!(" {what}"), t.muted));
    }
    Line::from(spans)
}

fn draw_help(v: &BenchView, frame: &mut Frame, area: Rect) {
    let t = &v.theme;
    let k = |a: Action| v.keymap.key_label(a);
    let rows: Vec<(String, &str)> = vec![
        (
            format!("{} {} / arrows", k(Action::Up), k(Action::Down)),
            "previous / next task",
        ),
        (
            format!("{} {} / arrows", k(Action::PrevLayer), k(Action::NextLayer)),
            "previous / next method (columns page when they do not fit)",
        ),
        (
            format!("{} {}", k(Action::Top), k(Action::Bottom)),
            "first / last task",
        ),
        (
            format!("{} {}", k(Action::ScrubBack), k(Action::ScrubForward)),
            "pick the seed shown below",
        ),
        (
            format!("{} {}", k(Action::FocusNext), k(Action::FocusPrev)),
            "next / previous table, at the same cell (several given)",
        ),
        (
            k(Action::Expand),
            "open the seed's run in the replay; quitting it comes back here",
        ),
        (k(Action::ToggleDiff), "show dev / test accuracy"),
        (
            format!("{} {}", k(Action::PageUp), k(Action::PageDown)),
            "scroll the detail",
        ),
        (k(Action::Help), "show / hide this help"),
        (k(Action::Quit), "quit"),
    ];
    let mut lines: Vec<Line> = rows
        .into_iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!("{key:<16}"), t.key),
                Span::styled(what.to_string(), t.text),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        Span::styled("bold ", t.best.add_modifier(Modifier::BOLD)),
        Span::styled(
            "is the best of a row; n=… says how many seeds finished",
            t.muted,
        ),
    ]));
    lines.push(Line::styled(
        format!("command: {}", v.report().command),
        t.muted,
    ));
    if !v.report().overrides.is_empty() {
        lines.push(Line::styled(
            format!("set for every cell: {}", v.report().overrides.join(", ")),
            t.muted,
        ));
    }
    let rect = fitted(area, (86, lines.len() + 3));
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(t.border_focused)
                .title(Span::styled(" bench view: keys ", t.title)),
        ),
        rect,
    );
}

/// `s` in `width` columns, cut with `…` or padded on the right.
fn fit(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n > width {
        let cut: String = s.chars().take(width.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        format!("{s}{}", " ".repeat(width - n))
    }
}

/// `s` right-aligned in `width` columns (cut with `…` when longer).
fn right(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n >= width {
        fit(s, width)
    } else {
        format!("{}{s}", " ".repeat(width - n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_between_the_lowest_and_highest_point() {
        assert_eq!(sparkline(&[0.4, 0.5, 0.6]), "▁▅█");
        assert_eq!(sparkline(&[0.5, 0.5]), "▄▄");
        assert_eq!(sparkline(&[]), "");
    }

    #[test]
    fn cells_fit_their_columns() {
        assert_eq!(fit("hyperbaton", 6), "hyper…");
        assert_eq!(fit("abc", 5), "abc  ");
        assert_eq!(right("abc", 5), "  abc");
    }
}
