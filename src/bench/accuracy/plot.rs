//! The benchmark's plots as SVG: test accuracy per method and task (bars with ± std), and dev
//! accuracy over iterations per task (one line per trained method, mean over seeds).

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::report::{column_name, means_by_task, short_model, BenchReport};
use super::Method;

/// A colour per method, the same in both plots.
fn colour(m: Method) -> RGBColor {
    match m {
        Method::ZeroShot => RGBColor(150, 150, 150),
        Method::KShot => RGBColor(230, 159, 0),
        Method::Dln1 => RGBColor(0, 114, 178),
        Method::Dln2 => RGBColor(0, 158, 115),
        Method::Dln3 => RGBColor(204, 121, 167),
        Method::Dln2Uniform => RGBColor(86, 180, 233),
        Method::Dln2NoPrior => RGBColor(213, 94, 0),
        Method::Dln2FixedHidden => RGBColor(120, 94, 240),
        Method::Dln1Demos => RGBColor(0, 60, 110),
        Method::Dln1Random => RGBColor(100, 100, 60),
        Method::Gepa => RGBColor(240, 66, 66),
    }
}

type PlotResult = Result<String, String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    format!("plot: {e}")
}

/// The series' legend, boxed on a light background.
fn legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    at: SeriesLabelPosition,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

/// Grouped bars: for each task, one bar per method (mean test accuracy) with a ± std whisker.
pub fn accuracy_svg(r: &BenchReport) -> PlotResult {
    let means = means_by_task(r);
    let methods = &r.methods;
    let group = methods.len() as f64 + 1.0;
    let width = (160.0 + group * 18.0 * r.tasks.len().max(1) as f64).clamp(640.0, 1600.0) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let xmax = group * r.tasks.len().max(1) as f64;
        let tasks = r.tasks.clone();
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Test accuracy by method · {}", short_model(&r.model)),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..xmax, 0.0..1.0)
            .map_err(err)?;
        let label_of = |x: &f64| {
            let i = (x / group).floor() as usize;
            let centre = i as f64 * group + group / 2.0;
            if (x - centre).abs() < 0.5 {
                tasks.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels((xmax * 2.0) as usize + 1)
            .x_label_formatter(&label_of)
            .y_desc("test accuracy")
            .draw()
            .map_err(err)?;
        for (mi, m) in methods.iter().enumerate() {
            let c = colour(*m);
            let bars: Vec<(f64, f64, f64)> = r
                .tasks
                .iter()
                .enumerate()
                .filter_map(|(ti, t)| {
                    let (_, mean, std) = *means.get(t)?.iter().find(|(mm, _, _)| mm == m)?;
                    Some((ti as f64 * group + 0.5 + mi as f64, mean, std))
                })
                .collect();
            chart
                .draw_series(
                    bars.iter()
                        .map(|(x, y, _)| Rectangle::new([(*x, 0.0), (x + 0.9, *y)], c.filled())),
                )
                .map_err(err)?
                .label(column_name(*m, r.k))
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
            chart
                .draw_series(bars.iter().filter(|(_, _, s)| *s > 0.0).map(|(x, y, s)| {
                    PathElement::new(
                        vec![(x + 0.45, (y - s).max(0.0)), (x + 0.45, (y + s).min(1.0))],
                        BLACK.stroke_width(1),
                    )
                }))
                .map_err(err)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Mean dev accuracy at each iteration over a task's seeds, per trained method.
fn curves(r: &BenchReport, task: &str) -> Vec<(Method, Vec<(f64, f64)>)> {
    r.methods
        .iter()
        .filter(|m| m.trains())
        .filter_map(|m| {
            let mut by_it: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
            for c in r.cells.iter().filter(|c| c.task == task && c.method == *m) {
                for (it, acc) in &c.dev_curve {
                    by_it.entry(*it).or_default().push(*acc);
                }
            }
            if by_it.is_empty() {
                return None;
            }
            let pts = by_it
                .into_iter()
                .map(|(it, v)| (it as f64, v.iter().sum::<f64>() / v.len() as f64))
                .collect();
            Some((*m, pts))
        })
        .collect()
}

/// One panel per task: dev accuracy over iterations.
pub fn curves_svg(r: &BenchReport) -> PlotResult {
    let n = r.tasks.len().max(1);
    let cols = n.min(3);
    let rows = n.div_ceil(cols);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (380 * cols as u32, 300 * rows as u32))
            .into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let panels = root.split_evenly((rows, cols));
        for (task, area) in r.tasks.iter().zip(panels.iter()) {
            let lines = curves(r, task);
            let max_it = lines
                .iter()
                .flat_map(|(_, p)| p.iter().map(|(x, _)| *x))
                .fold(1.0, f64::max);
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{task}: dev accuracy"), ("sans-serif", 15))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(40)
                .build_cartesian_2d(0.0..max_it, 0.0..1.0)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("iteration")
                .x_labels(max_it as usize + 1)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .draw()
                .map_err(err)?;
            for (m, pts) in lines {
                let c = colour(m);
                chart
                    .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                    .map_err(err)?
                    .label(m.name())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 14, y)], c.stroke_width(2))
                    });
                chart
                    .draw_series(pts.iter().map(|p| Circle::new(*p, 3, c.filled())))
                    .map_err(err)?;
            }
            legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}
