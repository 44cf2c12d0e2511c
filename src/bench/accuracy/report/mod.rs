//! The benchmark's results: one row per cell, one aggregate per task and method, rendered as
//! Markdown (the table people read), CSV and JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{CellOutcome, CellStatus, Method};

mod markdown;

/// One cell of the table (also what `dln bench view` reads back from `results.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellRow {
    pub task: String,
    pub method: Method,
    pub seed: u64,
    /// `finished`, `stopped`, `not run` or `failed: …`.
    pub status: String,
    pub test_accuracy: Option<f64>,
    pub dev_accuracy: Option<f64>,
    /// Tokens computed, reused and generated.
    pub tokens: u64,
    pub calls: u64,
    pub seconds: f64,
    /// The run directory, relative to the benchmark's output directory.
    pub run_dir: String,
    pub best_prompts: Vec<String>,
    /// Multi-layer cells: dev accuracy of the best output prompt on the input alone (no
    /// hidden text); the hidden layers' help is `dev_accuracy` less this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_alone_dev: Option<f64>,
    /// Dev accuracy by iteration (the starting prompt's at 0 when it was evaluated).
    pub dev_curve: Vec<(usize, f64)>,
    /// How many times each answer was given on the test split (absent in older reports).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub test_answers: std::collections::BTreeMap<String, usize>,
}

impl CellRow {
    /// `answers "No" to 58 of 60` when the run gave one answer to nearly every test example.
    pub fn one_answer(&self) -> Option<String> {
        crate::dln::trainer::one_answer(&self.test_answers)
    }
}

/// Mean ± std of one task and method over the seeds that finished.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Aggregate {
    pub task: String,
    pub method: Method,
    /// Seeds with a test accuracy.
    pub n: usize,
    pub mean: Option<f64>,
    /// Sample standard deviation (0 with one seed).
    pub std: Option<f64>,
    pub tokens_mean: f64,
    pub seconds_mean: f64,
}

/// Everything `dln bench accuracy` found: `results.json` is this, serialized; `dln bench view`
/// reads it back ([`super::read::read_report`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    pub model: String,
    /// The other models the cells' networks use, by role (`backward`, `layer 1 forward`, …), each
    /// role's models in the order cells named them; absent when `model` did everything.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_models: BTreeMap<String, Vec<String>>,
    pub date: String,
    pub command: String,
    pub hardware: String,
    pub tasks: Vec<String>,
    pub methods: Vec<Method>,
    pub seeds: Vec<u64>,
    pub k: usize,
    pub overrides: Vec<String>,
    pub cells: Vec<CellRow>,
    /// Derived from `cells`; a reader can do without them.
    #[serde(default)]
    pub aggregates: Vec<Aggregate>,
}

/// What the report says about where and how it ran.
#[derive(Debug, Clone)]
pub struct ReportMeta {
    pub command: String,
    pub hardware: String,
    pub date: String,
    pub k: usize,
    pub overrides: Vec<String>,
}

impl BenchReport {
    pub fn new(outcomes: &[CellOutcome], out: &Path, meta: ReportMeta) -> BenchReport {
        let cells: Vec<CellRow> = outcomes.iter().map(|o| row(o, out)).collect();
        let mut tasks: Vec<String> = Vec::new();
        let mut methods: Vec<Method> = Vec::new();
        let mut seeds: Vec<u64> = Vec::new();
        for c in &cells {
            if !tasks.contains(&c.task) {
                tasks.push(c.task.clone());
            }
            if !methods.contains(&c.method) {
                methods.push(c.method);
            }
            if !seeds.contains(&c.seed) {
                seeds.push(c.seed);
            }
        }
        let aggregates = tasks
            .iter()
            .flat_map(|t| methods.iter().map(move |m| (t, *m)))
            .map(|(t, m)| aggregate(&cells, t, m))
            .collect();
        let model = outcomes
            .iter()
            .find_map(|o| o.result.as_ref().map(|r| r.model.clone()))
            .unwrap_or_default();
        let mut other_models: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in outcomes.iter().filter_map(|o| o.result.as_ref()) {
            for (role, m) in &r.other_models {
                let seen = other_models.entry(role.clone()).or_default();
                if !seen.contains(m) {
                    seen.push(m.clone());
                }
            }
        }
        BenchReport {
            model,
            other_models,
            date: meta.date,
            command: meta.command,
            hardware: meta.hardware,
            tasks,
            methods,
            seeds,
            k: meta.k,
            overrides: meta.overrides,
            cells,
            aggregates,
        }
    }

    pub fn aggregate(&self, task: &str, method: Method) -> Option<&Aggregate> {
        self.aggregates
            .iter()
            .find(|a| a.task == task && a.method == method)
    }
}

fn row(o: &CellOutcome, out: &Path) -> CellRow {
    let r = o.result.as_ref();
    let usage = r.map(|r| r.usage).unwrap_or_default();
    let status = match &o.status {
        CellStatus::Finished { .. } => "finished".to_string(),
        CellStatus::Stopped => "stopped".to_string(),
        CellStatus::NotRun => "not run".to_string(),
        CellStatus::Failed(m) => format!("failed: {m}"),
    };
    let finished = matches!(o.status, CellStatus::Finished { .. });
    CellRow {
        task: o.cell.task.clone(),
        method: o.cell.method,
        seed: o.cell.seed,
        status,
        test_accuracy: r.filter(|_| finished).and_then(|r| r.test_accuracy),
        dev_accuracy: r.filter(|_| finished).and_then(|r| r.dev_accuracy),
        tokens: usage.tokens_computed + usage.tokens_reused + usage.tokens_generated,
        calls: usage.calls,
        seconds: r.map_or(0.0, |r| r.elapsed_ms as f64 / 1000.0),
        run_dir: o
            .cell
            .dir
            .strip_prefix(out)
            .unwrap_or(&o.cell.dir)
            .display()
            .to_string(),
        best_prompts: r.map(|r| r.best_prompts.clone()).unwrap_or_default(),
        output_alone_dev: o
            .output_alone
            .as_ref()
            .filter(|_| finished)
            .and_then(|a| a.dev_accuracy),
        dev_curve: r
            .map(|r| dev_curve(&r.dev_history, o.cell.config.train.first_eval))
            .unwrap_or_default(),
        test_answers: r
            .filter(|_| finished)
            .map(|r| r.test_answers.clone())
            .unwrap_or_default(),
    }
}

/// Dev accuracy by iterations completed. A dev point records the index of the iteration in
/// progress (0-based), so the starting prompts' point (with `first_eval`) and the one after the
/// first iteration both say 0: the first is the start, every later one is `index + 1`.
fn dev_curve(history: &[crate::dln::state::DevPoint], first_eval: bool) -> Vec<(usize, f64)> {
    history
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let start = first_eval && i == 0;
            (if start { 0 } else { p.iteration + 1 }, p.accuracy)
        })
        .collect()
}

fn aggregate(cells: &[CellRow], task: &str, method: Method) -> Aggregate {
    let mine: Vec<&CellRow> = cells
        .iter()
        .filter(|c| c.task == task && c.method == method)
        .collect();
    let accs: Vec<f64> = mine.iter().filter_map(|c| c.test_accuracy).collect();
    let (mean, std) = mean_std(&accs);
    let done: Vec<&&CellRow> = mine.iter().filter(|c| c.test_accuracy.is_some()).collect();
    let avg = |f: &dyn Fn(&CellRow) -> f64| {
        if done.is_empty() {
            0.0
        } else {
            done.iter().map(|c| f(c)).sum::<f64>() / done.len() as f64
        }
    };
    Aggregate {
        task: task.to_string(),
        method,
        n: accs.len(),
        mean,
        std,
        tokens_mean: avg(&|c| c.tokens as f64),
        seconds_mean: avg(&|c| c.seconds),
    }
}

/// Mean and sample standard deviation (n − 1; 0 for one value).
pub fn mean_std(xs: &[f64]) -> (Option<f64>, Option<f64>) {
    if xs.is_empty() {
        return (None, None);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let std = if xs.len() < 2 {
        0.0
    } else {
        (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    };
    (Some(mean), Some(std))
}

fn pct(x: f64) -> String {
    format!("{:.1}", x * 100.0)
}

pub use crate::format::{human_seconds, human_tokens};
pub use markdown::{column_name, other_models_note, render_markdown, short_model};

/// One line per cell.
pub fn render_csv(r: &BenchReport) -> String {
    let mut s = String::from(
        "task,method,seed,status,test_accuracy,dev_accuracy,output_alone_dev,tokens,calls,seconds,run_dir\n",
    );
    let opt = |a: Option<f64>| a.map_or(String::new(), |a| format!("{a:.4}"));
    for c in &r.cells {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{:.1},{}",
            csv_field(&c.task),
            column_name(c.method, r.k),
            c.seed,
            csv_field(&c.status),
            opt(c.test_accuracy),
            opt(c.dev_accuracy),
            opt(c.output_alone_dev),
            c.tokens,
            c.calls,
            c.seconds,
            csv_field(&c.run_dir)
        );
    }
    s
}

fn csv_field(x: &str) -> String {
    if x.contains([',', '"', '\n']) {
        format!("\"{}\"", x.replace('"', "\"\""))
    } else {
        x.to_string()
    }
}

/// Per task, the methods' mean test accuracy (for plots).
pub fn means_by_task(r: &BenchReport) -> BTreeMap<String, Vec<(Method, f64, f64)>> {
    let mut m = BTreeMap::new();
    for t in &r.tasks {
        let row = r
            .methods
            .iter()
            .filter_map(|meth| {
                let a = r.aggregate(t, *meth)?;
                Some((*meth, a.mean?, a.std.unwrap_or(0.0)))
            })
            .collect();
        m.insert(t.clone(), row);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std() {
        assert_eq!(mean_std(&[]), (None, None));
        assert_eq!(mean_std(&[0.5]), (Some(0.5), Some(0.0)));
        let (m, s) = mean_std(&[0.4, 0.6]);
        assert!((m.unwrap() - 0.5).abs() < 1e-12);
        assert!((s.unwrap() - 0.1414213562).abs() < 1e-9);
    }

    #[test]
    fn a_cell_that_gives_one_answer_throughout_is_marked() {
        let cell = |method, answers: &[(&str, usize)]| CellRow {
            task: "navigate".into(),
            method,
            seed: 1,
            status: "finished".into(),
            test_accuracy: Some(0.6),
            dev_accuracy: Some(0.5),
            tokens: 1,
            calls: 1,
            seconds: 1.0,
            run_dir: format!("runs/navigate/{}/seed-1", method.name()),
            best_prompts: Vec::new(),
            output_alone_dev: None,
            dev_curve: Vec::new(),
            test_answers: answers.iter().map(|(a, n)| (a.to_string(), *n)).collect(),
        };
        let cells = vec![
            cell(Method::Dln2, &[("No", 60)]),
            cell(Method::Dln1, &[("No", 36), ("Yes", 24)]),
        ];
        let report = BenchReport {
            model: "m".into(),
            other_models: BTreeMap::new(),
            date: "d".into(),
            command: "c".into(),
            hardware: "h".into(),
            tasks: vec!["navigate".into()],
            methods: vec![Method::Dln1, Method::Dln2],
            seeds: vec![1],
            k: 3,
            overrides: Vec::new(),
            aggregates: vec![
                aggregate(&cells, "navigate", Method::Dln1),
                aggregate(&cells, "navigate", Method::Dln2),
            ],
            cells,
        };
        let md = render_markdown(&report);
        assert!(
            md.contains("| navigate | **60.0 ± 0.0** | **60.0 ± 0.0** † |"),
            "{md}"
        );
        assert!(md.contains("† On at least one seed"), "{md}");
        assert!(md.contains("† answers \"No\" to 60 of 60"), "{md}");
    }

    #[test]
    fn the_model_line_names_the_other_models() {
        assert_eq!(other_models_note(&BTreeMap::new(), "`"), "");
        let other = BTreeMap::from([
            (
                "backward".to_string(),
                vec!["llama.cpp:gemma3-270m.gguf:ctx2048".to_string()],
            ),
            (
                "layer 1 forward".to_string(),
                vec!["openai:big@http://h/v1:completions".to_string(), "x".into()],
            ),
        ]);
        assert_eq!(
            other_models_note(&other, "`"),
            " (backward: `gemma3-270m.gguf`; layer 1 forward: \
             `openai:big@http://h/v1:completions`, `x`)"
        );
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
