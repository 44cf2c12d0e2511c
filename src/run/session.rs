//! The session: starts or resumes a run in its directory and drives the trainer on a task,
//! applying commands at stage boundaries, checkpointing after every iteration and on stop.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

use crate::config::{Config, ConfigError};
use crate::data::{load_dataset, DataConfig, Dataset};
use crate::dln::events::{Command, Event, RunState};
use crate::dln::state::TrainerState;
use crate::dln::EventSink;
use crate::run::checkpoint::{read_checkpoint_reporting, CHECKPOINT_FILE};
use crate::run::dir::{atomic_write, default_run_dir, EventLog, CONFIG_FILE, EVENTS_FILE};
use crate::run::drive::drive;
use crate::run::options::SessionOptions;
use crate::run::result::{read_result, RunSummary};
use crate::run::{RunError, RunLock};

/// A running (or finished) run: its directory, the command channel, the event stream, and the
/// task driving it (which ends with the run's summary).
pub struct Session {
    pub run_dir: PathBuf,
    pub commands: UnboundedSender<Command>,
    pub events: UnboundedReceiver<Event>,
    pub task: JoinHandle<Result<RunSummary, RunError>>,
}

/// What a run of `config` would refuse, found without loading a model or writing anything: its
/// ranges, its templates, its models' files (`models`: unless a backend is given instead) and its
/// data, which it returns loaded.
pub fn preflight(
    config: &Config,
    model_override: Option<&str>,
    models: bool,
) -> Result<Dataset, RunError> {
    config.validate()?;
    crate::dln::network::check_templates(config)?;
    if models {
        crate::run::check_models(config, model_override)?;
    }
    load_data(config)
}

/// The run's `config.toml` with the `train.*` keys `overrides` name set to their values in
/// `config`, edited in place (toml_edit): a person's comments, order and formatting stay.
fn with_train_settings(
    path: &Path,
    config: &Config,
    overrides: &[String],
) -> Result<String, RunError> {
    let text = std::fs::read_to_string(path).map_err(|e| RunError::io(path, e))?;
    let bad = |message: String| RunError::File {
        path: path.to_path_buf(),
        message,
    };
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| bad(format!("{e}")))?;
    let train = toml::Value::try_from(&config.train).map_err(|e| bad(e.to_string()))?;
    if !doc.contains_table("train") {
        doc["train"] = toml_edit::table();
    }
    for o in overrides {
        let key = o.split('=').next().unwrap_or(o).trim();
        let Some(field) = key.strip_prefix("train.") else {
            continue;
        };
        let Some(value) = train.get(field) else {
            continue;
        };
        let value: toml_edit::Value = value
            .to_string()
            .parse()
            .map_err(|e| bad(format!("`{key}`: {e}")))?;
        doc["train"][field] = toml_edit::value(value);
    }
    Ok(doc.to_string())
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
        // Everything the config names is checked before the run directory exists, so a fixed
        // config reruns with the same --out.
        let data = preflight(&config, opts.model.as_deref(), opts.backend.is_none())?;
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
            let edited = with_train_settings(&config_path, &config, &opts.overrides)?;
            atomic_write(&config_path, edited.as_bytes())?;
        }
        let (mut checkpoint, fell_back) = read_checkpoint_reporting(run_dir)?;
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
        if let Some(message) = fell_back {
            log.emit(Event::Warning { message });
        }
        if checkpoint.as_ref().is_some_and(|c| c.finished) {
            if let Some(r) = read_result(run_dir)? {
                let (ctx, _crx) = mpsc::unbounded_channel();
                let summary = r.summary(run_dir);
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
