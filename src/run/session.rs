//! The session: starts or resumes a run in its directory and drives the trainer on a task,
//! applying commands at stage boundaries, checkpointing after every iteration and on stop.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

use crate::config::{Config, ConfigError};
use crate::data::{load_dataset, DataConfig, Dataset};
use crate::dln::events::{Command, Event, RunState, Stage};
use crate::dln::state::TrainerState;
use crate::dln::{EventSink, Network, StepOutcome, Trainer};
use crate::llm::{SharedBackend, Usage};
use crate::run::checkpoint::{read_checkpoint, write_checkpoint, Checkpoint, CHECKPOINT_FILE};
use crate::run::dir::{atomic_write, default_run_dir, EventLog, CONFIG_FILE, EVENTS_FILE};
use crate::run::result::{read_result, write_result, RunResult};
use crate::run::{build_backends_reporting, BackendReport, RunError, RunLock};

/// How to run a session.
#[derive(Clone, Default)]
pub struct SessionOptions {
    /// The run directory (default: `runs/<task>-<timestamp>` in the data directory).
    pub out_dir: Option<PathBuf>,
    /// Start paused (the workbench lets a person look before the first stage).
    pub start_paused: bool,
    /// Model override for every layer without its own model (a GGUF path or built-in name).
    pub model: Option<String>,
    /// A shared call-cache directory (default: `cache/` in the run directory).
    pub cache_dir: Option<PathBuf>,
    /// A backend to serve every layer instead of loading models (tests, embedding callers).
    pub backend: Option<SharedBackend>,
    /// `train.KEY=VALUE` changes a resumed run takes on (e.g. more iterations than planned);
    /// written into the run's `config.toml`.
    pub overrides: Vec<String>,
}

impl std::fmt::Debug for SessionOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionOptions")
            .field("out_dir", &self.out_dir)
            .field("start_paused", &self.start_paused)
            .field("model", &self.model)
            .field("cache_dir", &self.cache_dir)
            .field("overrides", &self.overrides)
            .field("backend", &self.backend.as_ref().map(|b| b.model_id()))
            .finish()
    }
}

/// The end of a run, as the CLI prints it (one JSON line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_dir: PathBuf,
    pub task: String,
    pub iterations: usize,
    pub best_prompts: Vec<String>,
    pub dev_accuracy: Option<f64>,
    pub test_accuracy: Option<f64>,
    pub stopped_early: bool,
    pub elapsed_ms: u64,
    pub usage: Usage,
}

/// A running (or finished) run: its directory, the command channel, the event stream, and the
/// task driving it (which ends with the run's summary).
pub struct Session {
    pub run_dir: PathBuf,
    pub commands: UnboundedSender<Command>,
    pub events: UnboundedReceiver<Event>,
    pub task: JoinHandle<Result<RunSummary, RunError>>,
}

/// Reads the `[data]` table of a config into the data module's settings and loads the task.
pub fn load_data(config: &Config) -> Result<Dataset, RunError> {
    Ok(load_dataset(&data_config(config)?, &config.base_dir())?)
}

/// The `[data]` table of a config as the data module's settings.
pub fn data_config(config: &Config) -> Result<DataConfig, RunError> {
    let dc: DataConfig =
        toml::Value::Table(config.data.clone())
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::InvalidValue {
                key: "data".into(),
                message: e.to_string().trim().to_string(),
            })?;
    Ok(dc)
}

impl Session {
    /// Creates the run directory (resolved config, event log), loads the task's data, and starts
    /// the run. Errors found before the run starts are returned here and also logged.
    pub async fn start(config: Config, opts: SessionOptions) -> Result<Session, RunError> {
        config.validate()?;
        let run_dir = opts
            .out_dir
            .clone()
            .unwrap_or_else(|| default_run_dir(&config.task.name));
        std::fs::create_dir_all(&run_dir).map_err(|e| RunError::io(&run_dir, e))?;
        let lock = RunLock::acquire(&run_dir)?;
        if run_dir.join(CHECKPOINT_FILE).exists() || run_dir.join(EVENTS_FILE).exists() {
            return Err(RunError::RunExists { path: run_dir });
        }
        let mut config = config;
        let base = config.base_dir();
        config.base_dir = Some(std::fs::canonicalize(&base).unwrap_or(base));
        atomic_write(&run_dir.join(CONFIG_FILE), config.to_toml()?.as_bytes())?;
        let (etx, erx) = mpsc::unbounded_channel();
        let log = Arc::new(EventLog::open(&run_dir, etx)?);
        let data = load_data_logged(&config, &log)?;
        let owned = Owned {
            lock,
            log,
            events: erx,
        };
        Ok(spawn(run_dir, config, data, None, opts, owned))
    }

    /// Continues a run from its directory: its resolved config, its last checkpoint (or the
    /// beginning when it stopped before one), and its call cache, so the calls already paid
    /// are answered from disk and the run ends as if never interrupted.
    pub async fn resume(run_dir: &Path, opts: SessionOptions) -> Result<Session, RunError> {
        let config_path = run_dir.join(CONFIG_FILE);
        if !config_path.exists() {
            return Err(RunError::NotARun {
                path: run_dir.to_path_buf(),
            });
        }
        let lock = RunLock::acquire(run_dir)?;
        let mut config = Config::load(&config_path)?;
        if !opts.overrides.is_empty() {
            for o in &opts.overrides {
                if !o.trim_start().starts_with("train.") {
                    return Err(RunError::Config(ConfigError::InvalidValue {
                        key: o.split('=').next().unwrap_or(o).trim().to_string(),
                        message: "a resumed run can change only `train.*` settings (its data, \
                                  layers and model are fixed); start a new run for the others"
                            .into(),
                    }));
                }
                config.apply_override(o)?;
            }
            config.validate()?;
            atomic_write(&config_path, config.to_toml()?.as_bytes())?;
        }
        let mut checkpoint = read_checkpoint(run_dir)?;
        // A finished run given more iterations trains on from where it ended.
        if let Some(c) = checkpoint.as_mut() {
            if c.finished
                && config.train.mode == crate::config::Mode::Dln
                && c.state.iteration < config.train.iterations
            {
                c.finished = false;
            }
        }
        let (etx, erx) = mpsc::unbounded_channel();
        let log = Arc::new(EventLog::open(run_dir, etx)?);
        if checkpoint.as_ref().is_some_and(|c| c.finished) {
            if let Some(r) = read_result(run_dir)? {
                let (ctx, _crx) = mpsc::unbounded_channel();
                let summary = summary_of(run_dir, &r);
                let task = tokio::spawn(async move { Ok(summary) });
                return Ok(Session {
                    run_dir: run_dir.to_path_buf(),
                    commands: ctx,
                    events: erx,
                    task,
                });
            }
        }
        let data = load_data_logged(&config, &log)?;
        let state = checkpoint.map(|c| c.state);
        Ok(spawn(
            run_dir.to_path_buf(),
            config,
            data,
            state,
            opts,
            Owned {
                lock,
                log,
                events: erx,
            },
        ))
    }
}

/// [`load_data`], with a failure also written to the run's log.
fn load_data_logged(config: &Config, log: &EventLog) -> Result<Dataset, RunError> {
    load_data(config).inspect_err(|e| {
        log.emit(Event::RunFailed {
            message: e.to_string(),
        })
    })
}

fn summary_of(run_dir: &Path, r: &RunResult) -> RunSummary {
    RunSummary {
        run_dir: run_dir.to_path_buf(),
        task: r.task.clone(),
        iterations: r.iterations,
        best_prompts: r.best_prompts.clone(),
        dev_accuracy: r.dev_accuracy,
        test_accuracy: r.test_accuracy,
        stopped_early: r.stopped_early,
        elapsed_ms: r.elapsed_ms,
        usage: r.usage,
    }
}

/// What a session holds of its run directory: the lock, the event log and its live end.
struct Owned {
    lock: RunLock,
    log: Arc<EventLog>,
    events: UnboundedReceiver<Event>,
}

fn spawn(
    run_dir: PathBuf,
    config: Config,
    data: Dataset,
    state: Option<TrainerState>,
    opts: SessionOptions,
    owned: Owned,
) -> Session {
    let Owned { lock, log, events } = owned;
    let (ctx, crx) = mpsc::unbounded_channel();
    let dir = run_dir.clone();
    let task = tokio::spawn(async move {
        // The run directory is ours until the task ends (or the process dies).
        let _lock = lock;
        let r = drive(&dir, config, data, state, opts, log.clone(), crx).await;
        if let Err(e) = &r {
            log.emit(Event::RunFailed {
                message: e.to_string(),
            });
            log.emit(Event::StateChanged {
                state: RunState::Failed,
            });
        }
        r
    });
    Session {
        run_dir,
        commands: ctx,
        events,
        task,
    }
}

/// Pause, step and stop: the driver's own state between stages.
///
/// Commands are received as soon as they arrive, even while a stage runs, but only applied at
/// stage boundaries: during a stage a pause shows as `Pausing` (and becomes `Paused` at the
/// boundary), a stop as `Stopping`, and every other command waits in `queued`.
struct Control {
    paused: bool,
    /// A pause received during a stage, effective at the next boundary.
    pause_pending: bool,
    step_once: bool,
    stop: bool,
    /// Commands received during a stage, applied in order at the next boundary.
    queued: Vec<Command>,
}

impl Control {
    /// A command received at a stage boundary: applied now.
    fn handle(&mut self, cmd: Command, trainer: &mut Trainer, log: &EventLog) {
        match cmd {
            Command::Pause => {
                if !self.paused {
                    self.paused = true;
                    log.emit(Event::StateChanged {
                        state: RunState::Paused,
                    });
                }
            }
            Command::Resume => {
                self.step_once = false;
                if self.paused {
                    self.paused = false;
                    log.emit(Event::StateChanged {
                        state: RunState::Running,
                    });
                }
            }
            Command::Step => {
                self.paused = false;
                self.step_once = true;
                log.emit(Event::StateChanged {
                    state: RunState::Running,
                });
            }
            Command::Stop => self.request_stop(log),
            other => trainer.apply(other),
        }
    }

    fn request_stop(&mut self, log: &EventLog) {
        if !self.stop {
            self.stop = true;
            log.emit(Event::StateChanged {
                state: RunState::Stopping,
            });
        }
    }

    /// A command received while a stage runs: acknowledged now, applied at the boundary.
    fn receive_during_stage(&mut self, cmd: Command, log: &EventLog) {
        match cmd {
            Command::Pause => {
                if !self.pause_pending && !self.stop {
                    self.pause_pending = true;
                    log.emit(Event::StateChanged {
                        state: RunState::Pausing,
                    });
                }
            }
            // A resume before the boundary cancels the pause (and a pending step).
            Command::Resume if self.pause_pending || self.step_once => {
                self.pause_pending = false;
                self.step_once = false;
                log.emit(Event::StateChanged {
                    state: RunState::Running,
                });
            }
            Command::Stop => self.request_stop(log),
            other => self.queued.push(other),
        }
    }

    /// At a stage boundary: applies what arrived during the stage, then a pending pause.
    fn reach_boundary(&mut self, trainer: &mut Trainer, log: &EventLog) {
        for cmd in std::mem::take(&mut self.queued) {
            self.handle(cmd, trainer, log);
        }
        if self.pause_pending {
            self.pause_pending = false;
            self.step_once = false;
            if !self.paused && !self.stop {
                self.paused = true;
                log.emit(Event::StateChanged {
                    state: RunState::Paused,
                });
            }
        }
    }
}

/// Runs one stage while still receiving commands (they are acknowledged at once and applied at
/// the next boundary by [`Control::reach_boundary`]).
async fn step_receiving(
    trainer: &mut Trainer,
    ctl: &mut Control,
    commands: &mut UnboundedReceiver<Command>,
    log: &EventLog,
) -> Result<StepOutcome, RunError> {
    let stage = trainer.step();
    tokio::pin!(stage);
    let mut open = true;
    loop {
        tokio::select! {
            biased;
            r = &mut stage => return Ok(r?),
            cmd = commands.recv(), if open => match cmd {
                Some(cmd) => ctl.receive_during_stage(cmd, log),
                None => open = false,
            },
        }
    }
}

async fn drive(
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
    let mut trainer = match state {
        Some(s) => Trainer::restore(net, config.clone(), data, s, sink)?,
        None => Trainer::new(net, config.clone(), data, sink)?,
    };
    let d = trainer.data();
    log.emit(Event::RunStarted {
        run_dir: run_dir.display().to_string(),
        task: config.task.name.clone(),
        model: trainer.net.layers[trainer.net.output()]
            .backends
            .forward
            .model_id(),
        layers: trainer.net.layer_infos(),
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
    let mut ctl = Control {
        paused: opts.start_paused,
        pause_pending: false,
        step_once: false,
        stop: false,
        queued: Vec::new(),
    };
    log.emit(Event::StateChanged {
        state: if ctl.paused {
            RunState::Paused
        } else {
            RunState::Running
        },
    });
    loop {
        while let Ok(cmd) = commands.try_recv() {
            ctl.handle(cmd, &mut trainer, &log);
        }
        while ctl.paused && !ctl.stop {
            match commands.recv().await {
                Some(cmd) => ctl.handle(cmd, &mut trainer, &log),
                // Nobody can resume us any more: carry on.
                None => ctl.paused = false,
            }
        }
        if ctl.stop {
            checkpoint(run_dir, &trainer, false, &log)?;
            let outcome = trainer.outcome();
            log.emit(Event::RunFinished {
                best_prompts: outcome.best_prompts.clone(),
                dev_accuracy: outcome.dev_accuracy,
                test_accuracy: None,
                stopped_early: true,
            });
            return finish(run_dir, &config, &trainer, true, started, &log);
        }
        crate::fault::point("stage", || {});
        let outcome = step_receiving(&mut trainer, &mut ctl, &mut commands, &log).await?;
        if outcome != StepOutcome::Finished {
            ctl.reach_boundary(&mut trainer, &log);
        }
        match outcome {
            StepOutcome::Continue => {}
            StepOutcome::IterationDone => checkpoint(run_dir, &trainer, false, &log)?,
            StepOutcome::Finished => {
                checkpoint(run_dir, &trainer, true, &log)?;
                return finish(run_dir, &config, &trainer, false, started, &log);
            }
        }
        if ctl.step_once && !ctl.paused {
            ctl.step_once = false;
            ctl.paused = true;
            log.emit(Event::StateChanged {
                state: RunState::Paused,
            });
        }
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
        .unwrap_or_else(|| run_dir.join("cache"));
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
    stopped_early: bool,
    started: Instant,
    log: &EventLog,
) -> Result<RunSummary, RunError> {
    let result = result_of(config, trainer, stopped_early, started);
    write_result(run_dir, &result)?;
    log.emit(Event::StateChanged {
        state: RunState::Finished,
    });
    Ok(summary_of(run_dir, &result))
}

fn result_of(config: &Config, t: &Trainer, stopped_early: bool, started: Instant) -> RunResult {
    let o = t.outcome();
    let mut usage = Usage::default();
    for e in t.usage() {
        usage.add(&e.usage);
    }
    let state = t.checkpoint_state();
    RunResult {
        task: config.task.name.clone(),
        model: t.net.layers[t.net.output()].backends.forward.model_id(),
        layers: t.net.layers.len(),
        mode: format!("{:?}", config.train.mode).to_lowercase(),
        iterations: o.iterations,
        best_prompts: o.best_prompts,
        final_prompts: o.final_prompts,
        dev_accuracy: o.dev_accuracy,
        test_accuracy: o.test_accuracy,
        stopped_early,
        dev_history: state.dev_history,
        train_accuracy: state.train_accuracy,
        usage,
        usage_by_layer: t.usage().to_vec(),
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

/// Events of an evaluation outside a run go nowhere.
pub(crate) struct Discard;

impl EventSink for Discard {
    fn emit(&self, _event: Event) {}
}

/// The accuracy of a run's best prompts on one split (`dln eval`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub run_dir: PathBuf,
    pub split: String,
    pub examples: usize,
    pub accuracy: f64,
    pub prompts: Vec<String>,
}

/// Evaluates the best prompts of the run in `run_dir` (from `result.json`, else its checkpoint)
/// on `split` of the task `config` describes, through the run's call cache.
pub async fn evaluate_run(
    config: Config,
    run_dir: &Path,
    split: &str,
    opts: SessionOptions,
) -> Result<EvalReport, RunError> {
    let prompts = match read_result(run_dir)? {
        Some(r) => r.best_prompts,
        None => match read_checkpoint(run_dir)? {
            Some(c) if c.state.best_dev.accuracy.is_some() => c.state.best_dev.prompts,
            Some(c) => c.state.prompts,
            None => {
                return Err(RunError::File {
                    path: run_dir.join(CHECKPOINT_FILE),
                    message: "the run has no checkpoint or result yet".into(),
                })
            }
        },
    };
    if prompts.len() != config.layers.len() {
        return Err(RunError::File {
            path: run_dir.to_path_buf(),
            message: format!(
                "the run has {} layers but the config has {}",
                prompts.len(),
                config.layers.len()
            ),
        });
    }
    let data = load_data(&config)?;
    let examples = match split {
        "train" => data.train.clone(),
        "dev" => data.dev.clone(),
        "test" => data.test.clone(),
        other => {
            return Err(RunError::Config(ConfigError::InvalidValue {
                key: "--split".into(),
                message: format!("`{other}` is not a split (train, dev, test)"),
            }))
        }
    };
    let (net, _) = build_network(&config, &data, run_dir, &opts).await?;
    let mut trainer = Trainer::new(net, config, data, Arc::new(Discard))?;
    let accuracy = trainer
        .accuracy_on(&examples, &prompts, Stage::Test, 0)
        .await?;
    Ok(EvalReport {
        run_dir: run_dir.to_path_buf(),
        split: split.to_string(),
        examples: examples.len(),
        accuracy,
        prompts,
    })
}
