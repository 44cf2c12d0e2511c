//! `dln bench accuracy`: the paper's comparison table on any model. For each task, method
//! (0-shot, k-shot, DLN-1, DLN-2, DLN-3 and DLN-2 ablations) and seed, one run in its own
//! directory under `OUT/runs/`; then a Markdown table (mean ± std test accuracy per method and
//! task), the same as CSV and JSON, and SVG plots.
//!
//! Cells are ordinary runs: each opens in `dln replay`, and an interrupted benchmark resumes
//! (finished cells are read back, a stopped cell resumes from its checkpoint and its call cache).

pub mod estimate;
pub mod keep;
pub mod method;
pub mod plan;
pub mod plot;
pub mod read;
pub mod report;
pub mod shape;

use std::path::Path;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::config::{Config, Mode};
use crate::dln::events::{Command, Event};
use crate::run::runs::{run_info, RunStatus};
use crate::run::{read_result, RunResult};
use crate::run::{Session, SessionOptions, CONFIG_FILE};

pub use plan::{Cell, Method, PlanOptions, Task};
pub use read::{read_report, ReadError};
pub use report::{BenchReport, CellRow};

/// How a cell ended in this invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum CellStatus {
    /// Finished now or before (its `result.json` is read back).
    Finished { reused: bool },
    /// Stopped by the user; resumable.
    Stopped,
    /// Never started (the benchmark was stopped before it, or `--report-only` found no run).
    NotRun,
    /// The run failed; the message says why.
    Failed(String),
}

/// One cell after this invocation.
#[derive(Debug, Clone)]
pub struct CellOutcome {
    pub cell: Cell,
    pub status: CellStatus,
    pub result: Option<RunResult>,
    /// A finished multi-layer cell: the 0-shot run of its best output prompt on the input alone
    /// (no hidden text), in [`OUTPUT_ALONE_DIR`] under the cell; how much the hidden layers
    /// help is the cell's dev accuracy less this run's.
    pub output_alone: Option<RunResult>,
}

impl CellStatus {
    /// What a cell's directory says of it: finished, started and stopped, or never started.
    pub fn of_dir(dir: &Path) -> CellStatus {
        match run_info(dir).map(|r| r.status) {
            Some(RunStatus::Finished) => CellStatus::Finished { reused: true },
            _ if dir.join(CONFIG_FILE).exists() => CellStatus::Stopped,
            _ => CellStatus::NotRun,
        }
    }

    /// Whether a later invocation of the same command has work left in this cell.
    pub fn unfinished(&self) -> bool {
        matches!(self, CellStatus::Stopped | CellStatus::NotRun)
    }
}

impl CellOutcome {
    /// `cell` with what its directory holds: its result and its output-alone run's.
    pub fn read_back(cell: Cell, status: CellStatus) -> CellOutcome {
        CellOutcome {
            result: read_result(&cell.dir).ok().flatten(),
            output_alone: read_result(&cell.dir.join(OUTPUT_ALONE_DIR)).ok().flatten(),
            status,
            cell,
        }
    }
}

/// Where a multi-layer cell's "output layer alone" run goes, inside the cell's directory.
pub const OUTPUT_ALONE_DIR: &str = "output-alone";

/// Options of the runs themselves.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// A model for every layer without its own (`--model`).
    pub model: Option<String>,
    /// `(OUT, DEST)`: each cell, once it has finished or stopped, is kept in DEST
    /// ([`keep::keep_cell`], `--keep`).
    pub keep: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// Runs `cells` one after another (a model process on 2 cores gains nothing from company).
/// `progress` gets one line per event worth a person's attention; `cancel` stops the running
/// cell at its next stage boundary (checkpoint) and leaves the rest for a later invocation.
pub async fn run_cells(
    cells: Vec<Cell>,
    opts: &RunOptions,
    progress: &(dyn Fn(&str) + Sync),
    cancel: CancellationToken,
) -> Vec<CellOutcome> {
    let total = cells.len();
    let mut out = Vec::with_capacity(total);
    for (i, cell) in cells.into_iter().enumerate() {
        let label = format!(
            "[{}/{total}] {} {} seed {}",
            i + 1,
            cell.task,
            cell.method.name(),
            cell.seed
        );
        if cancel.is_cancelled() {
            let status = CellStatus::of_dir(&cell.dir);
            out.push(CellOutcome::read_back(cell, status));
            continue;
        }
        let mut outcome = run_cell(cell, opts, &label, progress, &cancel).await;
        if let (CellStatus::Finished { .. }, Some(result)) = (&outcome.status, &outcome.result) {
            if let Some(config) = output_alone_config(&outcome.cell.config, result) {
                let dir = outcome.cell.dir.join(OUTPUT_ALONE_DIR);
                let alone = Cell {
                    config,
                    dir,
                    ..outcome.cell.clone()
                };
                let alone_label = format!("{label} (output layer alone)");
                let ran = run_cell(alone, opts, &alone_label, progress, &cancel).await;
                outcome.output_alone = ran.result.filter(|_| ran.status != CellStatus::Stopped);
            }
        }
        if let Some((bench, dest)) = &opts.keep {
            if let Err(e) = keep::keep_cell(bench, &outcome.cell.dir, dest, false) {
                progress(&format!("{label}: not kept: {e}"));
            }
        }
        out.push(outcome);
    }
    out
}

async fn run_cell(
    cell: Cell,
    opts: &RunOptions,
    label: &str,
    progress: &(dyn Fn(&str) + Sync),
    cancel: &CancellationToken,
) -> CellOutcome {
    let done = CellOutcome::read_back;
    let before = CellStatus::of_dir(&cell.dir);
    if let CellStatus::Finished { .. } = before {
        progress(&format!("{label}: done before, read back"));
        return done(cell, before);
    }
    let session_opts = SessionOptions {
        out_dir: Some(cell.dir.clone()),
        model: opts.model.clone(),
        ..Default::default()
    };
    let resuming = before == CellStatus::Stopped;
    let mut cell = cell;
    if cell.budget.is_some() && cell.config.train.until_tokens.is_none() && !resuming {
        match gepa_budget(&cell.dir) {
            Ok(tokens) => {
                progress(&format!(
                    "{label}: budget {} tokens (DLN-1's on this task and seed)",
                    report::human_tokens(tokens as f64)
                ));
                cell.config.train.until_tokens = Some(tokens);
            }
            Err(m) => {
                progress(&format!("{label}: {m}"));
                return done(cell, CellStatus::Failed(m));
            }
        }
    }
    progress(&format!(
        "{label}: {}",
        if resuming { "resuming" } else { "starting" }
    ));
    let started = if resuming {
        Session::resume(&cell.dir, session_opts).await
    } else {
        if let Some(parent) = cell.dir.parent() {
            if let Err(e) = std::fs::create_dir_all(parent) {
                return done(cell, CellStatus::Failed(e.to_string()));
            }
        }
        Session::start(cell.config.clone(), session_opts).await
    };
    let session = match started {
        Ok(s) => s,
        Err(e) => {
            progress(&format!("{label}: failed to start: {e}"));
            return done(cell, CellStatus::Failed(e.to_string()));
        }
    };
    let t0 = Instant::now();
    // A cell trained to a token budget has no count of iterations to announce.
    let t = &cell.config.train;
    let iterations = t.until_tokens.is_none().then_some(t.iterations);
    // With --keep, each checkpoint the cell writes is kept too: a sitting that ends abruptly
    // loses what the running cell did since its last one.
    let keep_running = || {
        if let Some((bench, dest)) = &opts.keep {
            if let Err(e) = keep::keep_cell(bench, &cell.dir, dest, true) {
                progress(&format!("{label}: not kept: {e}"));
            }
        }
    };
    let end = follow(session, label, iterations, progress, &keep_running, cancel).await;
    let status = match end {
        // By the user, at its budget, or with its server down: resumable.
        Ok(summary) if summary.stopped_early => CellStatus::Stopped,
        Ok(_) => CellStatus::Finished { reused: false },
        Err(message) => CellStatus::Failed(message),
    };
    let outcome = done(cell, status);
    match (&outcome.status, &outcome.result) {
        (CellStatus::Finished { .. }, Some(r)) => progress(&format!(
            "{label}: test {} · dev {} · {:.0} s",
            fmt_acc(r.test_accuracy),
            fmt_acc(r.dev_accuracy),
            t0.elapsed().as_secs_f64()
        )),
        (CellStatus::Stopped, _) => progress(&format!("{label}: stopped; run again to resume")),
        (CellStatus::Failed(m), _) => progress(&format!("{label}: failed: {m}")),
        _ => {}
    }
    outcome
}

/// The tokens a run spent training, dev evaluations included and its test left out: the budget
/// a GEPA cell is given from DLN-1's.
pub fn training_tokens(r: &RunResult) -> u64 {
    r.usage_by_layer
        .iter()
        .filter(|e| e.operation != crate::dln::Operation::Test)
        .map(|e| e.usage.billed_tokens())
        .sum()
}

/// The budget of the GEPA cell in `dir`: the training tokens of the finished DLN-1 cell of the
/// same task and seed (its sibling directory), or why there is none.
fn gepa_budget(dir: &Path) -> Result<u64, String> {
    let dln1 = match (dir.parent().and_then(Path::parent), dir.file_name()) {
        (Some(task), Some(seed)) => task.join(Method::Dln1.name()).join(seed),
        _ => return Err(format!("{} is not a cell directory", dir.display())),
    };
    let finished = matches!(CellStatus::of_dir(&dln1), CellStatus::Finished { .. });
    match read_result(&dln1) {
        Ok(Some(r)) if finished => Ok(training_tokens(&r)),
        _ => Err(format!(
            "GEPA is given the tokens DLN-1 spent on the same task and seed, and {} holds no finished \
             DLN-1 run: add dln-1 to --methods (it runs first), or give a budget with --set \
             train.until_tokens=N",
            dln1.display()
        )),
    }
}

/// The 0-shot config of a multi-layer cell's best output prompt (and its demonstrations) on
/// the input alone, evaluated on the same dev split and no test examples; `None` for one layer.
pub fn output_alone_config(config: &Config, result: &RunResult) -> Option<Config> {
    if config.layers.len() < 2 {
        return None;
    }
    let mut config = config.clone();
    let mut output = config.layers.pop()?;
    output.prompt = result.best_prompts.last()?.clone();
    output.demonstrations = result.best_demos.last().cloned().unwrap_or_default();
    output.demos = output.demonstrations.len();
    config.layers = vec![output];
    config.train.mode = Mode::ZeroShot;
    config.set("data.max_test", "0").ok()?;
    Some(config)
}

/// Drives one session to its end; returns its summary (which says whether it stopped early)
/// or the reason it failed.
async fn follow(
    mut session: Session,
    label: &str,
    iterations: Option<usize>,
    progress: &(dyn Fn(&str) + Sync),
    on_checkpoint: &(dyn Fn() + Sync),
    cancel: &CancellationToken,
) -> Result<crate::run::RunSummary, String> {
    let mut stopping = false;
    let mut times: Vec<u64> = Vec::new();
    let result = loop {
        tokio::select! {
            Some(e) = session.events.recv() => {
                report_event(&e, label, iterations, &mut times, progress);
                // The run paused with its server down: nobody resumes a bench cell, so stop it
                // (resumable: the next bench run continues it).
                if matches!(e, Event::BackendUnavailable { .. }) {
                    let _ = session.commands.send(Command::Stop);
                }
                if matches!(e, Event::CheckpointWritten { .. }) {
                    on_checkpoint();
                }
            }
            r = &mut session.task => break r,
            _ = cancel.cancelled(), if !stopping => {
                stopping = true;
                progress(&format!("{label}: stopping after the current stage or evaluation chunk"));
                let _ = session.commands.send(Command::Stop);
            }
        }
    };
    while let Ok(e) = session.events.try_recv() {
        report_event(&e, label, iterations, &mut times, progress);
    }
    match result {
        Ok(Ok(summary)) => Ok(summary),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("the run's task failed: {e}")),
    }
}

/// "iteration 2 of 3 done · 18 min · ~18 min of training left": the time of the iteration
/// that ended (the last of `times`, in ms) and the mean of those this process saw, times the
/// iterations still to run ("iteration 2 done · 18 min" when training ends at a token budget).
fn iteration_line(
    label: &str,
    iteration: usize,
    iterations: Option<usize>,
    times: &[u64],
) -> String {
    use report::human_seconds;
    let done = iteration + 1;
    let mut line = match iterations {
        Some(n) => format!("{label}: iteration {done} of {n} done"),
        None => format!("{label}: iteration {done} done"),
    };
    if let Some(last) = times.last() {
        line.push_str(&format!(" · {}", human_seconds(*last as f64 / 1000.0)));
        let left = iterations.map_or(0, |n| n.saturating_sub(done));
        if left > 0 {
            let mean = times.iter().sum::<u64>() as f64 / times.len() as f64 / 1000.0;
            line.push_str(&format!(
                " · ~{} of training left",
                human_seconds(mean * left as f64)
            ));
        }
    }
    line
}

/// Prints what a person following the cell wants of `e`; `times` gathers the iterations' times
/// (ms) for their lines.
fn report_event(
    e: &Event,
    label: &str,
    iterations: Option<usize>,
    times: &mut Vec<u64>,
    progress: &(dyn Fn(&str) + Sync),
) {
    match e {
        Event::IterationDone {
            iteration,
            elapsed_ms,
            ..
        } => {
            times.push(*elapsed_ms);
            progress(&iteration_line(label, *iteration, iterations, times));
        }
        Event::Evaluated {
            iteration,
            split,
            accuracy,
            answers,
            ..
        } => {
            let rote = crate::dln::trainer::one_answer(answers)
                .map_or_else(String::new, |a| format!(" · {a}"));
            progress(&format!(
                "{label}: {split} accuracy {accuracy:.3} (iteration {iteration}){rote}"
            ))
        }
        Event::BackendUnavailable { message } => progress(&format!("{label}: {message}")),
        Event::BudgetReached { .. } => {
            if let Some(m) = crate::run::budget::describe(e) {
                progress(&format!("{label}: {m}"))
            }
        }
        _ => {}
    }
}

fn fmt_acc(a: Option<f64>) -> String {
    a.map_or_else(|| "—".to_string(), |a| format!("{a:.3}"))
}

/// Where the benchmark writes: `OUT/results.{md,csv,json}`, `OUT/accuracy.svg`,
/// `OUT/curves.svg`; returns the files written and the plots that could not be drawn.
pub fn write_outputs(
    out: &Path,
    report: &BenchReport,
) -> std::io::Result<(Vec<std::path::PathBuf>, Vec<String>)> {
    use crate::run::atomic_write;
    let io = |e: crate::run::RunError| std::io::Error::other(e.to_string());
    std::fs::create_dir_all(out)?;
    let mut written = Vec::new();
    let mut put = |name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let p = out.join(name);
        atomic_write(&p, bytes).map_err(io)?;
        written.push(p);
        Ok(())
    };
    put("results.md", report::render_markdown(report).as_bytes())?;
    put("results.csv", report::render_csv(report).as_bytes())?;
    put(
        "results.json",
        serde_json::to_string_pretty(report)
            .map_err(std::io::Error::other)?
            .as_bytes(),
    )?;
    let mut warnings = Vec::new();
    for (name, svg) in [
        ("accuracy.svg", plot::accuracy_svg(report)),
        ("curves.svg", plot::curves_svg(report)),
    ] {
        match svg {
            Ok(svg) => put(name, svg.as_bytes())?,
            Err(e) => warnings.push(format!("{name}: {e}")),
        }
    }
    Ok((written, warnings))
}

#[cfg(test)]
mod tests {
    use super::iteration_line;

    #[test]
    fn an_iteration_line_says_its_time_and_the_training_left() {
        assert_eq!(
            iteration_line("nav dln-2 seed 1", 0, Some(3), &[600_000]),
            "nav dln-2 seed 1: iteration 1 of 3 done · 10 min · ~20 min of training left"
        );
        assert_eq!(
            iteration_line("c", 1, Some(3), &[600_000, 1_200_000]),
            "c: iteration 2 of 3 done · 20 min · ~15 min of training left",
            "the mean of the iterations seen"
        );
        assert_eq!(
            iteration_line("c", 2, Some(3), &[30_000]),
            "c: iteration 3 of 3 done · 30 s",
            "nothing left to say at the last; a resumed cell has seen one"
        );
        assert_eq!(
            iteration_line("g", 4, None, &[30_000]),
            "g: iteration 5 done · 30 s",
            "a cell trained to a token budget"
        );
    }
}
