//! What the table shows, derived from the report: per task and method, mean ± std of test (or
//! dev) accuracy over the seeds that finished, and the best of each row. Pure functions.

use crate::bench::accuracy::report::{column_name, mean_std};
use crate::bench::accuracy::{BenchReport, CellRow, Method};

/// Which accuracy the table shows (`d` toggles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Metric {
    #[default]
    Test,
    Dev,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Test => "test",
            Metric::Dev => "dev",
        }
    }

    pub fn other(self) -> Metric {
        match self {
            Metric::Test => Metric::Dev,
            Metric::Dev => Metric::Test,
        }
    }

    /// This accuracy of one run.
    pub fn of(self, c: &CellRow) -> Option<f64> {
        match self {
            Metric::Test => c.test_accuracy,
            Metric::Dev => c.dev_accuracy,
        }
    }
}

/// One cell of the table.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    pub mean: Option<f64>,
    pub std: Option<f64>,
    /// Seeds with this accuracy.
    pub n: usize,
}

/// The runs of one task and method, in seed order.
pub fn runs<'a>(r: &'a BenchReport, task: &str, method: Method) -> Vec<&'a CellRow> {
    let mut v: Vec<&CellRow> = r
        .cells
        .iter()
        .filter(|c| c.task == task && c.method == method)
        .collect();
    v.sort_by_key(|c| c.seed);
    v
}

pub fn summary(r: &BenchReport, task: &str, method: Method, metric: Metric) -> Summary {
    let xs: Vec<f64> = runs(r, task, method)
        .into_iter()
        .filter_map(|c| metric.of(c))
        .collect();
    let (mean, std) = mean_std(&xs);
    Summary {
        mean,
        std,
        n: xs.len(),
    }
}

/// The best mean of a task's row (`None` when no cell finished).
pub fn best_of_row(r: &BenchReport, task: &str, metric: Metric) -> Option<f64> {
    r.methods
        .iter()
        .filter_map(|m| summary(r, task, *m, metric).mean)
        .fold(None, |best, x| Some(best.map_or(x, |b: f64| b.max(x))))
}

/// Whether `s` is the best of its row (ties are all best).
pub fn is_best(s: &Summary, best: Option<f64>) -> bool {
    matches!((s.mean, best), (Some(m), Some(b)) if (m - b).abs() < 1e-12)
}

/// `51.7 ± 2.4`, with ` n=1` when fewer than `seeds` finished; `—` when none did.
pub fn cell_text(s: &Summary, seeds: usize) -> String {
    match (s.mean, s.std) {
        (Some(m), Some(sd)) => {
            let text = format!("{} ± {}", pct(m), pct(sd));
            if s.n < seeds {
                format!("{text} n={}", s.n)
            } else {
                text
            }
        }
        _ => "—".to_string(),
    }
}

/// A column's heading.
pub fn heading(r: &BenchReport, method: Method) -> String {
    column_name(method, r.k)
}

/// An accuracy as a percentage with one decimal.
pub fn pct(x: f64) -> String {
    format!("{:.1}", x * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(task: &str, method: Method, seed: u64, test: Option<f64>) -> CellRow {
        CellRow {
            task: task.into(),
            method,
            seed,
            status: if test.is_some() {
                "finished"
            } else {
                "stopped"
            }
            .into(),
            test_accuracy: test,
            dev_accuracy: test.map(|t| t - 0.1),
            tokens: 0,
            calls: 0,
            seconds: 0.0,
            run_dir: format!("runs/{task}/{}/seed-{seed}", method.name()),
            best_prompts: Vec::new(),
            output_alone_dev: None,
            dev_curve: Vec::new(),
            test_answers: Default::default(),
        }
    }

    fn report(cells: Vec<CellRow>) -> BenchReport {
        BenchReport {
            model: "m".into(),
            other_models: Default::default(),
            date: "d".into(),
            command: "c".into(),
            hardware: "h".into(),
            tasks: vec!["a".into()],
            methods: vec![Method::ZeroShot, Method::Dln1],
            seeds: vec![1, 2],
            k: 3,
            overrides: Vec::new(),
            cells,
            aggregates: Vec::new(),
        }
    }

    #[test]
    fn cells_are_mean_and_std_of_finished_seeds_and_say_n_when_some_are_missing() {
        let r = report(vec![
            row("a", Method::ZeroShot, 1, Some(0.4)),
            row("a", Method::ZeroShot, 2, Some(0.6)),
            row("a", Method::Dln1, 2, Some(0.7)),
            row("a", Method::Dln1, 1, None),
        ]);
        let zero = summary(&r, "a", Method::ZeroShot, Metric::Test);
        assert_eq!(cell_text(&zero, 2), "50.0 ± 14.1");
        let dln = summary(&r, "a", Method::Dln1, Metric::Test);
        assert_eq!(cell_text(&dln, 2), "70.0 ± 0.0 n=1");
        assert_eq!(runs(&r, "a", Method::Dln1)[0].seed, 1);
        let best = best_of_row(&r, "a", Metric::Test);
        assert!(is_best(&dln, best) && !is_best(&zero, best));
        let dev = summary(&r, "a", Method::ZeroShot, Metric::Dev);
        assert_eq!(cell_text(&dev, 2), "40.0 ± 14.1");
        assert_eq!(cell_text(&Summary::default(), 2), "—");
        assert_eq!(best_of_row(&report(Vec::new()), "a", Metric::Test), None);
    }
}
