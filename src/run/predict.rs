//! `dln predict`: a trained network (an exported network file, or a run directory's best
//! prompts) answering new inputs, batched and prefix-reused exactly like the test split of a run.

use std::path::Path;

use serde::Serialize;

use crate::config::Config;
use crate::data::{declared_classes, Dataset, Example};
use crate::dln::events::ForwardExample;
use crate::dln::trainer::{answers, prepare_shots};
use crate::dln::Forward;
use crate::run::drive::build_network;
use crate::run::export::{export_run, Which};
use crate::run::session::{data_config, load_data};
use crate::run::{RunError, SessionOptions, CONFIG_FILE};

/// One input line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: usize,
    pub message: String,
}

/// Inputs read from JSON Lines or plain lines.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// `(line number, example)`; the target is empty when the line gave none.
    pub examples: Vec<(usize, Example)>,
    pub bad: Vec<BadLine>,
}

/// Reads inputs: a line starting with `{` is a JSON object whose `input_field` (else `input`)
/// is the input and whose `target_field` (else `target`), if present, the expected answer; any
/// other non-empty line is an input as it is. Blank lines are skipped; a line that cannot be
/// read is reported with its number.
pub fn read_inputs(text: &str, input_field: &str, target_field: &str) -> Inputs {
    let mut out = Inputs::default();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if !t.starts_with('{') {
            out.examples.push((
                n,
                Example {
                    input: t.to_string(),
                    target: String::new(),
                },
            ));
            continue;
        }
        let v: serde_json::Value = match serde_json::from_str(t) {
            Ok(v) => v,
            Err(e) => {
                out.bad.push(BadLine {
                    line: n,
                    message: format!("not valid JSON: {e}"),
                });
                continue;
            }
        };
        let field = |names: [&str; 2]| {
            names.iter().find_map(|k| match v.get(*k) {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Number(x)) => Some(x.to_string()),
                Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
                _ => None,
            })
        };
        match field([input_field, "input"]) {
            Some(input) => out.examples.push((
                n,
                Example {
                    input,
                    target: field([target_field, "target"]).unwrap_or_default(),
                },
            )),
            None => out.bad.push(BadLine {
                line: n,
                message: format!("no `{input_field}` (or `input`) text field"),
            }),
        }
    }
    out
}

/// The field names of a JSON Lines input: the network's data fields (`input`/`target` when
/// it has none).
pub fn fields(config: &Config) -> (String, String) {
    match data_config(config) {
        Ok(dc) => (dc.input_field, dc.target_field),
        Err(_) => ("input".into(), "target".into()),
    }
}

/// A network ready to answer: its config and the prompts per layer.
pub struct Network {
    pub config: Config,
    pub prompts: Vec<String>,
    /// Where it was read from (a run directory gives its call cache to reuse).
    pub run_dir: Option<std::path::PathBuf>,
}

/// Reads a network: a run directory (its best prompts) or an exported network file.
pub fn open_network(path: &Path) -> Result<Network, RunError> {
    if path.is_dir() {
        if !path.join(CONFIG_FILE).exists() {
            return Err(RunError::NotARun {
                path: path.to_path_buf(),
            });
        }
        let e = export_run(path, Which::Best)?;
        return Ok(Network {
            config: e.config,
            prompts: e.prompts,
            run_dir: Some(path.to_path_buf()),
        });
    }
    let config = Config::load(path)?;
    let prompts = config.layers.iter().map(|l| l.prompt.clone()).collect();
    Ok(Network {
        config,
        prompts,
        run_dir: None,
    })
}

/// One answer, as `dln predict` writes it (one JSON line each).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// The input's line number.
    pub line: usize,
    pub input: String,
    pub prediction: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correct: Option<bool>,
    /// The text each hidden layer wrote (with `--explain`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Vec<String>>,
    /// Whether each hidden text was ended by its layer's token budget (`forward_max_tokens`)
    /// rather than the model's end of turn or a stop (with `--explain`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden_cut: Option<Vec<bool>>,
}

/// Runs `net` on `inputs`. The task's classes come from the network file (`data.classes`) or,
/// for a run's own config, from its data.
pub async fn predict(
    net: &Network,
    inputs: &[(usize, Example)],
    explain: bool,
    opts: SessionOptions,
) -> Result<Vec<Prediction>, RunError> {
    let mut config = net.config.clone();
    let dc = data_config(&config)?;
    let dataset = match declared_classes(&dc)? {
        Some(classes) if dc.classes.is_some() => Dataset {
            name: config.task.name.clone(),
            train: Vec::new(),
            dev: Vec::new(),
            test: Vec::new(),
            classes: Some(classes),
        },
        _ => load_data(&config)?,
    };
    // Answering only: no training, no shots drawn from data the file may not have.
    config.train.iterations = 0;
    if config.train.mode == crate::config::Mode::KShot {
        return Err(RunError::File {
            path: std::path::PathBuf::from(&config.task.name),
            message: "a k-shot baseline has no trained prompts to predict with; export a trained (DLN) run".into(),
        });
    }
    let dir = match &opts.cache_dir {
        Some(d) => d.clone(),
        None => match &net.run_dir {
            Some(r) => r.join(crate::run::CACHE_DIR),
            None => predict_cache_dir(),
        },
    };
    let opts = SessionOptions {
        cache_dir: Some(dir.clone()),
        ..opts
    };
    let (network, _) = build_network(&config, &dataset, &dir, &opts).await?;
    let shots = prepare_shots(&config.train, &dataset)?;
    // The learned demonstrations are in the network's config (`layers[l].demonstrations`).
    let demos = network.demos();
    let forward = Forward {
        net: &network,
        shots: &shots,
        demos: &demos,
        seed: config.train.seed,
    };
    let examples: Vec<Example> = inputs.iter().map(|(_, e)| e.clone()).collect();
    let answers: Vec<ForwardExample> = answers(&forward, &examples, &net.prompts).await?;
    Ok(inputs
        .iter()
        .zip(answers)
        .map(|((line, e), a)| {
            let has_target = !e.target.is_empty();
            Prediction {
                line: *line,
                input: e.input.clone(),
                prediction: a.prediction,
                target: has_target.then(|| e.target.clone()),
                correct: has_target.then_some(a.correct),
                hidden_cut: explain.then(|| {
                    let mut cut = a.hidden_cut;
                    cut.resize(a.hidden.len(), false);
                    cut
                }),
                hidden: explain.then_some(a.hidden),
            }
        })
        .collect())
}

/// The call cache `dln predict` uses for a network file (a run directory's own cache serves a
/// run): `cache/predict` in the data directory.
pub fn predict_cache_dir() -> std::path::PathBuf {
    crate::llm::model::data_dir().join("cache").join("predict")
}
