//! `dln eval`: the accuracy of a finished (or stopped) run's best prompts on one split, through
//! the run's call cache, with the same evaluation the trainer runs.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};
use crate::dln::demos::Demo;
use crate::dln::trainer::{accuracy, prepare_shots};
use crate::dln::{Forward, Operation, Split, UsageBook};
use crate::run::checkpoint::{read_checkpoint, CHECKPOINT_FILE};
use crate::run::drive::build_network;
use crate::run::options::SessionOptions;
use crate::run::result::read_result;
use crate::run::session::load_data;
use crate::run::RunError;

/// The accuracy of a run's best prompts on one split (`dln eval`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub run_dir: PathBuf,
    pub split: Split,
    pub examples: usize,
    pub accuracy: f64,
    pub prompts: Vec<String>,
}

/// The prompts a run ended with and their demonstrations: its result's best prompts, else its
/// checkpoint's best-dev prompts (or current ones before any dev evaluation).
fn best_prompts(run_dir: &Path) -> Result<(Vec<String>, Vec<Vec<Demo>>), RunError> {
    if let Some(r) = read_result(run_dir)? {
        return Ok((r.best_prompts, r.best_demos));
    }
    match read_checkpoint(run_dir)? {
        Some(c) if c.state.best_dev.accuracy.is_some() => {
            Ok((c.state.best_dev.prompts, c.state.best_dev.demos))
        }
        Some(c) => Ok((c.state.prompts, c.state.demos)),
        None => Err(RunError::File {
            path: run_dir.join(CHECKPOINT_FILE),
            message: "the run has no checkpoint or result yet".into(),
        }),
    }
}

/// Evaluates the best prompts of the run in `run_dir` (from `result.json`, else its checkpoint)
/// on `split` (`train`, `dev` or `test`) of the task `config` describes, through the run's call
/// cache.
pub async fn evaluate_run(
    config: Config,
    run_dir: &Path,
    split: &str,
    opts: SessionOptions,
) -> Result<EvalReport, RunError> {
    let (prompts, demos) = best_prompts(run_dir)?;
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
    let split: Split = split.parse().map_err(|message| {
        RunError::Config(ConfigError::InvalidValue {
            key: "--split".into(),
            message,
        })
    })?;
    let examples = split.of(&data);
    let (net, _) = build_network(&config, &data, run_dir, &opts).await?;
    let shots = prepare_shots(&config.train, &data)?;
    let forward = Forward {
        net: &net,
        shots: &shots,
        demos: &demos,
        seed: config.train.seed,
    };
    let mut book = UsageBook::default();
    let accuracy = accuracy(
        &forward,
        examples,
        &prompts,
        Operation::Test,
        &mut book,
        &tokio_util::sync::CancellationToken::new(),
        |_, _| {},
    )
    .await?
    .accuracy;
    Ok(EvalReport {
        run_dir: run_dir.to_path_buf(),
        split,
        examples: examples.len(),
        accuracy,
        prompts,
    })
}
