//! The drive loop of a session: builds the trainer, runs it stage by stage while receiving
//! commands (through [`Control`]), checkpoints after every iteration and on stop, and writes
//! the run's result at the end.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::config::Config;
use crate::data::Dataset;
use crate::dln::error::DlnError;
use crate::dln::events::{Command, Event, RunState, StopReason};
use crate::dln::state::TrainerState;
use crate::dln::{EventSink, Network, StepOutcome, Trainer};
use crate::llm::Usage;
use crate::run::budget::Budget;
use crate::run::checkpoint::{write_checkpoint, Checkpoint};
use crate::run::control::{Control, Effect};
use crate::run::dir::EventLog;
use crate::run::history::keep_snapshot;
use crate::run::options::SessionOptions;
use crate::run::result::{write_result, RunResult, RunSummary};
use crate::run::{build_backends_reporting, BackendReport, RunError};

/// Carries out a control transition's effects: announcements to the log, commands to the
/// trainer.
fn perform(effects: Vec<Effect>, trainer: &mut Trainer, log: &EventLog) {
    for e in effects {
        match e {
            Effect::Announce(state) => log.emit(Event::StateChanged { state }),
            Effect::Apply(cmd) => trainer.apply(cmd),
            // Only a stage's transitions hold or leave it (`step_receiving`); between stages
            // nothing runs.
            Effect::Hold(_) | Effect::Interrupt => {}
        }
    }
}

/// How often a held stage looks whether its backends are quiet.
const SETTLE_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// How a stage run by [`step_receiving`] ended.
enum StageEnd {
    Done(StepOutcome),
    /// A stop left it (an evaluation, at its next chunk).
    Stopped,
    /// A person's command while it was held left it: the iteration starts again.
    Left,
}

/// Runs one stage while still receiving commands: a pause holds the network's backends at
/// once (no new decode step or request until a resume, a step or a stop releases them; the
/// stage then carries on where it was) and is announced once they are quiet, and the other
/// commands are acknowledged at once and applied at the next boundary by
/// [`Control::reach_boundary`] — at once if the stage is held, by leaving it (its call in
/// progress is abandoned by the engine). A stop also tells the
/// stage ([`Trainer::stop_signal`]): one that works in chunks, an evaluation, gives up at its
/// next chunk, its run stopping as at a boundary.
async fn step_receiving(
    trainer: &mut Trainer,
    ctl: &mut Control,
    commands: &mut UnboundedReceiver<Command>,
    log: &EventLog,
) -> Result<StageEnd, RunError> {
    let stop = trainer.stop_signal();
    let backends = trainer.network().backends();
    let pauses = trainer.pauses();
    let hold = |held: bool| {
        pauses.hold(held);
        backends.iter().for_each(|b| b.hold(held));
    };
    let quiet = || backends.iter().all(|b| b.is_quiet());
    let stage = trainer.step();
    tokio::pin!(stage);
    let mut open = true;
    let result = 'stage: loop {
        tokio::select! {
            biased;
            r = &mut stage => break r,
            // Held, the backends finish the decode step or request they were in: the pause is
            // announced once they are quiet, so a paused run computes nothing.
            _ = tokio::time::sleep(SETTLE_POLL), if ctl.is_settling() => {
                if quiet() {
                    for e in ctl.settled() {
                        if let Effect::Announce(state) = e {
                            log.emit(Event::StateChanged { state });
                        }
                    }
                }
            }
            cmd = commands.recv(), if open => match cmd {
                Some(cmd) => {
                    for e in ctl.during_stage(cmd) {
                        match e {
                            Effect::Announce(state) => log.emit(Event::StateChanged { state }),
                            Effect::Hold(held) => hold(held),
                            Effect::Interrupt => break 'stage Err(DlnError::Interrupted),
                            Effect::Apply(_) => {}
                        }
                    }
                    if ctl.is_stopping() {
                        stop.cancel();
                    }
                }
                None => {
                    open = false;
                    // Nobody can resume a held stage any more: it carries on.
                    hold(false);
                }
            },
        }
    };
    hold(false);
    match result {
        Err(DlnError::Interrupted) if ctl.is_stopping() => Ok(StageEnd::Stopped),
        Err(DlnError::Interrupted) => Ok(StageEnd::Left),
        r => Ok(StageEnd::Done(r?)),
    }
}

/// The session's task: trains until the run finishes or a person stops it.
pub(crate) async fn drive(
    run_dir: &Path,
    config: Config,
    data: Dataset,
    state: Option<TrainerState>,
    opts: SessionOptions,
    log: Arc<EventLog>,
    mut commands: UnboundedReceiver<Command>,
) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let (net, backend_reports) = build_network(&config, &data, run_dir, &opts).await?;
    let sink: Arc<dyn EventSink> = log.clone();
    let base = config.base_dir();
    let mut trainer = match state {
        Some(s) => Trainer::restore(net, &config.train, &base, data, s, sink)?,
        None => Trainer::new(net, &config.train, &base, data, sink)?,
    };
    let d = trainer.data();
    let net = trainer.network();
    log.emit(Event::RunStarted {
        run_dir: run_dir.display().to_string(),
        task: config.task.name.clone(),
        model: net.model_id(),
        layers: net.layer_infos(),
        iterations: config.train.iterations,
        start_iteration: trainer.iteration(),
        train_size: d.train.len(),
        dev_size: d.dev.len(),
        test_size: d.test.len(),
    });
    for r in backend_reports {
        log.emit(Event::BackendConnected {
            name: r.name,
            scoring: r.scoring,
            detail: r.detail,
        });
    }
    let (mut ctl, shown) = Control::start(opts.start_paused);
    perform(vec![shown], &mut trainer, &log);
    let budget = Budget::of(&config.train);
    // Set while the run is paused because a backend kept failing; cleared when it runs again.
    let mut unavailable = false;
    // Set when a checkpoint could not be written: the run stops at the loop's top.
    let mut cannot_write: Option<String> = None;
    loop {
        while let Ok(cmd) = commands.try_recv() {
            perform(ctl.at_boundary(cmd), &mut trainer, &log);
        }
        while ctl.is_paused() {
            match commands.recv().await {
                Some(cmd) => perform(ctl.at_boundary(cmd), &mut trainer, &log),
                // Nobody can resume us any more: carry on, unless a backend is down (retrying
                // at once would only fail again): then stop, resumable.
                None if unavailable => {
                    perform(ctl.at_boundary(Command::Stop), &mut trainer, &log);
                }
                None => ctl.commands_closed(),
            }
        }
        let mut reason = if unavailable {
            StopReason::BackendUnavailable
        } else {
            StopReason::Requested
        };
        let write_failed = cannot_write.clone().or_else(|| log.failed());
        if let Some(why) = &write_failed {
            // The run directory cannot take what comes next: stop at what is whole on disk.
            log.emit(Event::Warning {
                message: format!("{why}; the run stops, resumable once the disk has room"),
            });
            if !ctl.is_stopping() {
                perform(ctl.at_boundary(Command::Stop), &mut trainer, &log);
            }
            reason = StopReason::WriteFailed;
        } else if !ctl.is_stopping() {
            if let Some(reached) = budget.reached(&trainer.total_usage()) {
                log.emit(reached);
                perform(ctl.at_boundary(Command::Stop), &mut trainer, &log);
                reason = StopReason::Budget;
            }
        }
        if write_failed.is_some() {
            // Best effort: the previous checkpoint (atomic) stays whole if this one fails.
            let _ = checkpoint(run_dir, &trainer, false, &log);
            let result = result_of(&config, &trainer, Some(reason), started);
            let _ = write_result(run_dir, &result);
            return Ok(result.summary(run_dir));
        }
        if ctl.is_stopping() {
            checkpoint(run_dir, &trainer, false, &log)?;
            let outcome = trainer.outcome();
            log.emit(Event::RunFinished {
                best_prompts: outcome.best_prompts.clone(),
                dev_accuracy: outcome.dev_accuracy,
                test_accuracy: None,
                stopped_early: true,
                best_demos: outcome.best_demos.clone(),
                stop_reason: Some(reason),
            });
            return finish(run_dir, &config, &trainer, Some(reason), started, &log);
        }
        unavailable = false;
        crate::fault::point("stage", || {});
        let outcome = match step_receiving(&mut trainer, &mut ctl, &mut commands, &log).await {
            Ok(StageEnd::Done(o)) => o,
            // Stopped inside the stage: what arrived during it applies (a person's edit is
            // kept), then the loop's top stops the run, checkpointing the iteration's start as
            // a stop at a boundary would.
            Ok(StageEnd::Stopped) => {
                perform(ctl.reach_boundary(), &mut trainer, &log);
                continue;
            }
            // Left while held for a person's command: the iteration starts again, as a resume
            // would, with the command applied now; the run stays paused.
            Ok(StageEnd::Left) => {
                trainer = trainer.rewind()?;
                perform(ctl.reach_boundary(), &mut trainer, &log);
                continue;
            }
            Err(RunError::Dln(e @ DlnError::Llm { .. })) if e.is_transient() => {
                // The server is down or overloaded past every retry: nothing is lost (its
                // answers are in the call cache), the iteration starts again when resumed.
                log.emit(Event::BackendUnavailable {
                    message: e.to_string(),
                });
                trainer = trainer.rewind()?;
                cannot_write = checkpoint(run_dir, &trainer, false, &log)
                    .err()
                    .map(|e| e.to_string());
                perform(ctl.stage_failed(), &mut trainer, &log);
                unavailable = true;
                continue;
            }
            Err(e) => {
                // A refusal (bad key, wrong model, too long a prompt) ends the run; its
                // checkpoint is left as a resume would want it.
                let _ = checkpoint(run_dir, &trainer, false, &log);
                return Err(e);
            }
        };
        if outcome != StepOutcome::Finished {
            perform(ctl.reach_boundary(), &mut trainer, &log);
        }
        match outcome {
            StepOutcome::Continue => {}
            StepOutcome::IterationDone => {
                cannot_write = checkpoint(run_dir, &trainer, false, &log)
                    .err()
                    .map(|e| e.to_string());
            }
            StepOutcome::Finished => {
                // Once the final checkpoint and the result are whole on disk the run is done
                // (an event lost after them only shortens what a replay shows).
                match checkpoint(run_dir, &trainer, true, &log)
                    .and_then(|()| finish(run_dir, &config, &trainer, None, started, &log))
                {
                    Ok(summary) => return Ok(summary),
                    Err(e) => cannot_write = Some(e.to_string()),
                }
                continue;
            }
        }
        if trainer.at_boundary() {
            keep_boundary(run_dir, &trainer, &log);
        }
        perform(ctl.stage_done(), &mut trainer, &log);
    }
}

/// Keeps the state at the iteration boundary just reached (`iterations/`), for a branch. A
/// snapshot that cannot be written costs only that branch point: a warning, and the run goes on.
fn keep_boundary(run_dir: &Path, trainer: &Trainer, log: &EventLog) {
    let checkpoint = Checkpoint::new(trainer.checkpoint_state(), false);
    if let Err(e) = keep_snapshot(run_dir, &checkpoint, log.written_len()) {
        log.emit(Event::Warning {
            message: format!(
                "iteration {}: {e}; the run cannot be branched there",
                checkpoint.state.iteration
            ),
        });
    }
}

/// The network of `config` on its backends, calling through the run's cache (or the shared one
/// the options name).
pub(crate) async fn build_network(
    config: &Config,
    data: &Dataset,
    run_dir: &Path,
    opts: &SessionOptions,
) -> Result<(Network, Vec<BackendReport>), RunError> {
    let cache_dir = opts
        .cache_dir
        .clone()
        .unwrap_or_else(|| run_dir.join(crate::run::CACHE_DIR));
    let built = build_backends_reporting(
        config,
        opts.model.as_deref(),
        opts.backend.clone(),
        &cache_dir,
    )
    .await?;
    Ok((
        Network::from_config(config, data.classes.clone(), built.layers)?,
        built.reports,
    ))
}

/// Writes the trainer's checkpoint and says so in the log.
fn checkpoint(
    run_dir: &Path,
    trainer: &Trainer,
    finished: bool,
    log: &EventLog,
) -> Result<(), RunError> {
    let state = trainer.checkpoint_state();
    let path = write_checkpoint(run_dir, &Checkpoint::new(state.clone(), finished))?;
    log.emit(Event::CheckpointWritten {
        iteration: state.iteration,
        path: path.display().to_string(),
    });
    Ok(())
}

/// The run's last step: writes `result.json`, marks the run finished, and returns its summary.
fn finish(
    run_dir: &Path,
    config: &Config,
    trainer: &Trainer,
    stopped: Option<StopReason>,
    started: Instant,
    log: &EventLog,
) -> Result<RunSummary, RunError> {
    let result = result_of(config, trainer, stopped, started);
    write_result(run_dir, &result)?;
    log.emit(Event::StateChanged {
        state: RunState::Finished,
    });
    Ok(result.summary(run_dir))
}

fn result_of(
    config: &Config,
    t: &Trainer,
    stopped: Option<StopReason>,
    started: Instant,
) -> RunResult {
    let o = t.outcome();
    let mut usage = Usage::default();
    for e in t.usage() {
        usage.add(&e.usage);
    }
    let state = t.checkpoint_state();
    let net = t.network();
    RunResult {
        task: config.task.name.clone(),
        model: net.model_id(),
        other_models: net.other_models(),
        layers: net.layers.len(),
        mode: format!("{:?}", config.train.mode).to_lowercase(),
        iterations: o.iterations,
        best_prompts: o.best_prompts,
        final_prompts: o.final_prompts,
        best_demos: o.best_demos,
        final_demos: o.final_demos,
        dev_accuracy: o.dev_accuracy,
        test_accuracy: o.test_accuracy,
        test_answers: o.test_answers,
        stopped_early: stopped.is_some(),
        stop_reason: stopped,
        dev_history: state.dev_history,
        train_accuracy: state.train_accuracy,
        usage,
        usage_by_layer: t.usage().to_vec(),
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}
