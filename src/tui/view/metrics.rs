//! The Metrics pane: the current stage with a progress gauge and ETA, train/dev accuracy and ELBO
//! over iterations as charts, token usage and calls per layer.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, LineGauge, Paragraph};
use ratatui::Frame;

use super::text::{count, duration_ms, num, pct};
use super::{muted_line, pane_block};
use crate::dln::events::Stage;
use crate::tui::app::{App, Pane};

/// The name of a stage as the paper says it; the pane says which split an evaluation is on.
pub fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Evaluate => "evaluate (dev)",
        other => other.name(),
    }
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let block = pane_block(app, Pane::Metrics, String::new());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let k = app.run.depth();
    let usage_h = if k == 0 {
        0
    } else {
        (k as u16 + 1).min(inner.height.saturating_sub(6) / 2)
    };
    let [gauge_r, summary_r, charts_r, usage_r] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(usage_h),
    ])
    .areas(inner);

    // Stage and progress.
    let (label, ratio) = match &app.run.stage {
        Some(s) => {
            let layer = s.layer.map(|l| format!(" L{}", l + 1)).unwrap_or_default();
            let of = if s.total > 0 {
                format!(" {}/{}", s.done, s.total)
            } else {
                String::new()
            };
            let ratio = if s.total > 0 {
                s.done as f64 / s.total as f64
            } else {
                0.0
            };
            (
                format!(
                    "it {}/{} {}{layer}{of}",
                    s.iteration + 1,
                    app.run.iterations,
                    stage_name(s.stage)
                ),
                ratio,
            )
        }
        None if app.run.finished => ("finished".to_string(), 1.0),
        None => ("not started".to_string(), 0.0),
    };
    let eta = app
        .run
        .eta_ms()
        .map(|ms| format!(" · ETA {}", duration_ms(ms)))
        .unwrap_or_default();
    frame.render_widget(
        LineGauge::default()
            .filled_style(t.gauge)
            .unfilled_style(t.muted)
            .label(Span::styled(format!("{label}{eta} "), t.text))
            .ratio(ratio.clamp(0.0, 1.0)),
        gauge_r,
    );

    // Summary numbers.
    let last = app.run.history.last();
    let best_dev = app
        .run
        .best_dev
        .map(|(it, a)| format!("{} (it {})", pct(Some(a)), it + 1))
        .unwrap_or_else(|| "—".into());
    let summary = Line::from(vec![
        Span::styled("train ", t.muted),
        Span::styled(
            pct(last.map(|p| p.train_accuracy).or(app.run.forward_accuracy)),
            t.chart_train,
        ),
        Span::styled("  dev ", t.muted),
        Span::styled(pct(app.run.dev_points.last().map(|p| p.1)), t.chart_dev),
        Span::styled("  best dev ", t.muted),
        Span::styled(best_dev, t.text),
        Span::styled("  ELBO ", t.muted),
        Span::styled(num(app.run.elbo_total), t.chart_elbo),
        Span::styled(
            app.run
                .test_accuracy
                .map(|a| format!("  test {}", pct(Some(a))))
                .unwrap_or_default(),
            t.good,
        ),
    ]);
    frame.render_widget(Paragraph::new(summary), summary_r);

    // Charts.
    if app.run.history.is_empty() && app.run.dev_points.is_empty() {
        frame.render_widget(
            Paragraph::new(muted_line(app, "charts appear after the first iteration")),
            charts_r,
        );
    } else {
        let [acc_r, elbo_r] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)])
                .areas(charts_r);
        accuracy_chart(app, frame, acc_r);
        elbo_chart(app, frame, elbo_r);
    }

    // Usage per layer.
    if usage_h > 0 {
        let mut lines = vec![Line::from(Span::styled(
            format!(
                "{:<7}{:>7}{:>10}{:>9}{:>10}{:>7}",
                "layer", "calls", "computed", "reused", "generated", "cached"
            ),
            t.muted,
        ))];
        for l in &app.run.layers {
            let u = l.total_usage();
            lines.push(Line::from(Span::styled(
                format!(
                    "{:<7}{:>7}{:>10}{:>9}{:>10}{:>7}",
                    format!("L{}", l.index + 1),
                    count(u.calls),
                    count(u.tokens_computed),
                    count(u.tokens_reused),
                    count(u.tokens_generated),
                    count(u.cache_hits)
                ),
                t.text,
            )));
        }
        frame.render_widget(Paragraph::new(lines), usage_r);
    }
}

fn x_bounds(app: &App) -> [f64; 2] {
    let max_it = app
        .run
        .history
        .iter()
        .map(|p| p.iteration)
        .chain(app.run.dev_points.iter().map(|p| p.0))
        .max()
        .unwrap_or(0);
    let upper = (app.run.iterations.max(1) as f64 - 1.0)
        .max(max_it as f64)
        .max(1.0);
    [0.0, upper]
}

fn accuracy_chart(app: &App, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let train: Vec<(f64, f64)> = app
        .run
        .history
        .iter()
        .map(|p| (p.iteration as f64, p.train_accuracy))
        .collect();
    let dev: Vec<(f64, f64)> = app
        .run
        .dev_points
        .iter()
        .map(|(i, a)| (*i as f64, *a))
        .collect();
    let xb = x_bounds(app);
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
    .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 1)));
    frame.render_widget(chart, area);
}

fn elbo_chart(app: &App, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let elbo: Vec<(f64, f64)> = app
        .run
        .history
        .iter()
        .filter_map(|p| p.elbo.map(|e| (p.iteration as f64, e)))
        .collect();
    if elbo.is_empty() {
        frame.render_widget(Paragraph::new(muted_line(app, "ELBO: —")), area);
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
    .x_axis(Axis::default().bounds(x_bounds(app)).style(t.muted))
    .y_axis(
        Axis::default()
            .bounds([lo - pad, hi + pad])
            .labels(vec![
                Span::styled(format!("{lo:.2}"), t.muted),
                Span::styled(format!("{hi:.2}"), t.muted),
            ])
            .style(t.muted),
    )
    .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 1)));
    frame.render_widget(chart, area);
}
