//! `dln train`, `dln resume`, `dln eval`: the headless CLI. Progress goes to stderr (a bar only
//! when stderr is a terminal), the one-line JSON summary to stdout; Ctrl-C stops the run
//! cleanly (checkpoint, then exit) so `dln resume` can continue it.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use dln::config::Config;
use dln::dln::events::{Command, Event, StopReason};
use dln::run::{evaluate_run, RunSummary, Session, SessionOptions};
use indicatif::{ProgressBar, ProgressStyle};

use super::args::FeedbackArg;
use super::exit;
use super::signals::{Ask, StopSignals};

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn train(
    config: &Path,
    out: Option<&Path>,
    set: &[String],
    feedback: &[FeedbackArg],
    model: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let mut cfg = Config::load(config)?;
    for s in set {
        cfg.apply_override(s)?;
    }
    check_feedback(&cfg, feedback)?;
    // A wrong model, template or data file fails here, before a run directory exists (the
    // session checks again, for callers other than this command).
    dln::run::preflight(&cfg, model, true)?;
    let opts = SessionOptions {
        out_dir: out.map(Path::to_path_buf),
        model: model.map(str::to_string),
        ..Default::default()
    };
    runtime()?.block_on(async move {
        let session = Session::start(cfg, opts).await?;
        send_feedback(&session, feedback);
        drive(session).await
    })
}

pub fn resume(
    run_dir: &Path,
    set: &[String],
    feedback: &[FeedbackArg],
    model: Option<&str>,
) -> anyhow::Result<ExitCode> {
    if !feedback.is_empty() {
        // A directory that is not a run is `Session::resume`'s to say.
        if let Ok(cfg) = Config::load(&run_dir.join(dln::run::CONFIG_FILE)) {
            check_feedback(&cfg, feedback)?;
        }
    }
    let opts = SessionOptions {
        model: model.map(str::to_string),
        overrides: set.to_vec(),
        ..Default::default()
    };
    runtime()?.block_on(async move {
        let session = Session::resume(run_dir, opts).await?;
        send_feedback(&session, feedback);
        drive(session).await
    })
}

/// Refuses a `--feedback` note on a layer the network does not have or does not train.
fn check_feedback(cfg: &Config, feedback: &[FeedbackArg]) -> anyhow::Result<()> {
    let k = cfg.layers.len();
    for f in feedback {
        let n = f.layer + 1;
        if f.layer >= k {
            anyhow::bail!(
                "--feedback names layer {n}, but the network has {k} layer(s), numbered from 1: use --feedback 'N:TEXT' with N from 1 to {k}"
            );
        }
        if !cfg.trainable(f.layer) {
            anyhow::bail!(
                "--feedback names layer {n}, which is not trained (`trainable = false` or left out of                  `train.train_layers`): a note steers a layer's proposals, so name a trained layer"
            );
        }
    }
    Ok(())
}

/// Sends the `--feedback` notes; the run applies them before its next stage.
fn send_feedback(session: &Session, feedback: &[FeedbackArg]) {
    for f in feedback {
        let _ = session.commands.send(Command::AddFeedback {
            layer: f.layer,
            example: None,
            text: f.text.clone(),
        });
    }
}

pub fn eval(
    config: &Path,
    run: &Path,
    split: &str,
    model: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(config)?;
    let opts = SessionOptions {
        model: model.map(str::to_string),
        ..Default::default()
    };
    let report = runtime()?.block_on(evaluate_run(cfg, run, split, opts))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(ExitCode::SUCCESS)
}

/// Follows a session to its end: progress on stderr, the summary as one JSON line on stdout.
///
/// Signals: the first SIGINT, SIGTERM or SIGHUP asks the run to stop at the next stage boundary
/// (an evaluation at its next chunk; checkpoint, `result.json`, exit [`exit::STOPPED`]); a
/// second SIGINT or SIGTERM stops at once ([`exit::INTERRUPTED`]; a SIGTERM's duplicate from
/// `timeout` does not count, see [`super::signals`]): the last checkpoint, the event log and the
/// call cache are already on disk, so `dln resume` continues from there and re-asks nothing that
/// was answered.
async fn drive(mut session: Session) -> anyhow::Result<ExitCode> {
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let run_dir = session.run_dir.clone();
    progress.note(&format!("run directory: {}", run_dir.display()));
    let commands = session.commands.clone();
    let mut signals = StopSignals::watch()?;
    let mut stopping = false;
    let stop = |stopping: &mut bool, progress: &Progress, what: &str| {
        if std::mem::replace(stopping, true) {
            return;
        }
        progress.note(&format!(
            "{what}: stopping after the current stage or evaluation chunk (checkpoint, then exit); press Ctrl-C again (or send SIGTERM again) to stop at once"
        ));
        let _ = commands.send(Command::Stop);
    };
    let result = loop {
        tokio::select! {
            Some(e) = session.events.recv() => {
                progress.on(&e);
                if matches!(e, Event::BackendUnavailable { .. }) {
                    // The run paused; headless, nobody is here to resume it: stop (checkpoint,
                    // exit 3) so that `dln resume` retries when the server is back.
                    stopping = true;
                    let _ = commands.send(Command::Stop);
                }
            }
            r = &mut session.task => break r,
            ask = signals.next(stopping) => match ask {
                Ask::Stop(signal) => stop(&mut stopping, &progress, signal),
                Ask::Leave => {
                    while let Ok(e) = session.events.try_recv() {
                        progress.on(&e);
                    }
                    progress.finish(None);
                    eprintln!(
                        "interrupted; the run is resumable from its last checkpoint: dln resume {}",
                        run_dir.display()
                    );
                    // Everything the run wrote is already on disk (atomic checkpoint, event
                    // log and call cache flushed per record): leave without waiting for the
                    // stage in progress.
                    // `_exit`, not `exit`: the model's worker thread may be inside llama.cpp,
                    // whose static destructors must not run under it.
                    // SAFETY: `_exit` ends the process at once; nothing after it runs.
                    unsafe { libc::_exit(i32::from(exit::INTERRUPTED)) }
                }
            },
        }
    };
    while let Ok(e) = session.events.try_recv() {
        progress.on(&e);
    }
    let returned = match &result {
        Ok(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    progress.finish(returned.as_deref());
    let summary: RunSummary = result.context("the run's task failed")??;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(if summary.stopped_early {
        let why = match summary.stop_reason {
            Some(StopReason::Budget) => {
                " at its budget (raise it with --set train.budget_tokens=N or train.budget_cost=X)"
            }
            Some(StopReason::BackendUnavailable) => {
                " because a backend is unavailable (check the server)"
            }
            Some(StopReason::WriteFailed) => {
                " because the run directory cannot be written (see the warning above: free disk \
                 space or fix the file system first)"
            }
            _ => "",
        };
        eprintln!(
            "stopped early{why}; continue with: dln resume {}",
            summary.run_dir.display()
        );
        ExitCode::from(exit::STOPPED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Progress on stderr: a bar on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    /// The error the run failed with (`RunFailed`); printed at the end unless the command
    /// returns it anyway (then `main` prints it, once).
    fatal: Option<String>,
    /// An iteration has started (evaluations before one are the baseline's).
    iterating: bool,
    /// The iteration whose forecast was printed last.
    forecast_for: Option<usize>,
}

impl Progress {
    fn new(terminal: bool) -> Progress {
        let bar = terminal.then(|| {
            let b = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            b.set_style(style);
            b
        });
        Progress {
            bar,
            fatal: None,
            iterating: false,
            forecast_for: None,
        }
    }

    fn note(&self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn on(&mut self, e: &Event) {
        match e {
            Event::RunStarted {
                task,
                model,
                layers,
                iterations,
                start_iteration,
                ..
            } => {
                self.iterating = *start_iteration > 0;
                let from = if *start_iteration > 0 {
                    format!(", resuming at iteration {}", start_iteration + 1)
                } else {
                    String::new()
                };
                self.note(&format!(
                    "{task}: {} layer(s), {iterations} iteration(s){from}, model {model}",
                    layers.len()
                ));
                if let Some(b) = &self.bar {
                    b.set_length(*iterations as u64);
                    b.set_position(*start_iteration as u64);
                }
            }
            Event::StageStarted {
                iteration,
                stage,
                layer,
                ..
            } => {
                // The baseline's evaluation comes before the first forward pass.
                self.iterating |= *stage == dln::dln::events::Stage::Forward;
                let it = iteration + 1;
                let what = match layer {
                    Some(l) => format!("iteration {it}: {} (layer {})", stage.name(), l + 1),
                    None => format!("iteration {it}: {}", stage.name()),
                };
                match &self.bar {
                    Some(b) => b.set_message(what),
                    None => eprintln!("{what}"),
                }
            }
            // An iteration's forecast as it starts (none until each kind of stage has run).
            Event::Forecast {
                iteration,
                iteration_left_ms,
                run_left_ms,
                ..
            } if self.forecast_for != Some(*iteration) => {
                self.forecast_for = Some(*iteration);
                if let Some(ms) = iteration_left_ms {
                    let run = run_left_ms
                        .map(|r| format!(", the run about {} more", dln::format::duration_ms(r)))
                        .unwrap_or_default();
                    self.note(&format!(
                        "iteration {}: about {}{run}",
                        iteration + 1,
                        dln::format::duration_ms(*ms)
                    ));
                }
            }
            Event::StageProgress {
                iteration,
                stage,
                done,
                total,
                ..
            } => {
                if let Some(b) = &self.bar {
                    b.set_message(format!(
                        "iteration {}: {} {done}/{total}",
                        iteration + 1,
                        stage.name()
                    ));
                }
            }
            Event::ForwardDone {
                iteration,
                accuracy,
                ..
            } => self.note(&format!(
                "iteration {}: batch accuracy {:.3}",
                iteration + 1,
                accuracy
            )),
            Event::PromptSelected {
                iteration,
                layer,
                prompt,
                previous,
                ..
            } if prompt != previous => self.note(&format!(
                "iteration {}: layer {} prompt -> {prompt}",
                iteration + 1,
                layer + 1
            )),
            Event::CandidatesScored {
                iteration,
                layer,
                candidates,
                winner,
            } => {
                if let Some(m) = candidates.get(*winner).and_then(|c| c.demo_move.as_ref()) {
                    self.note(&format!(
                        "iteration {}: layer {} demonstrations -> {}",
                        iteration + 1,
                        layer + 1,
                        m.describe()
                    ));
                }
            }
            Event::Evaluated {
                iteration,
                split,
                accuracy,
                best_so_far,
                answers,
            } => {
                // Iterations are counted from 1 wherever a person reads them.
                let when = if *split == dln::dln::split::Split::Test {
                    "after training".to_string()
                } else if self.iterating {
                    format!("iteration {}", iteration + 1)
                } else {
                    "before training".to_string()
                };
                let rote = dln::dln::trainer::one_answer(answers)
                    .map_or_else(String::new, |a| format!(" · {a}"));
                self.note(&format!(
                    "{when}: {split} accuracy {:.3}{}{rote}",
                    accuracy,
                    if *best_so_far { " (best)" } else { "" }
                ))
            }
            Event::IterationDone { iteration, .. } => {
                if let Some(b) = &self.bar {
                    b.set_position(*iteration as u64 + 1);
                }
            }
            Event::BackendConnected { name, detail, .. } => {
                self.note(&format!("backend {name}: {detail}"))
            }
            Event::FeedbackAdded { layer, text, .. } => {
                self.note(&format!("note on layer {}: {text}", layer + 1))
            }
            Event::FeedbackRemoved { layer, text, .. } => {
                self.note(&format!("removed note on layer {}: {text}", layer + 1))
            }
            Event::Warning { message } => self.note(&format!("warning: {message}")),
            Event::CommandRejected { reason, .. } => self.note(&format!("error: {reason}")),
            Event::RunFailed { message } => self.fatal = Some(message.clone()),
            Event::BackendUnavailable { message } => {
                self.note(&format!("error: {message}; the run is paused at the start of its iteration (nothing answered is lost)"))
            }
            Event::BudgetReached { .. } => {
                if let Some(m) = dln::run::budget::describe(e) {
                    self.note(&m)
                }
            }
            Event::Error { message } => self.note(&format!("error: {message}")),
            _ => {}
        }
    }

    /// Ends the display; `returned` is the error the command is about to return, if any, so the
    /// fatal error is not printed twice.
    fn finish(&mut self, returned: Option<&str>) {
        if let Some(message) = self.fatal.take() {
            if returned != Some(message.as_str()) {
                self.note(&format!("error: {message}"));
            }
        }
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
