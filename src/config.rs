//! The run configuration: one TOML file (task, data, model, layers, training settings) with
//! `--set key=value` overrides on dotted keys. A run directory keeps the resolved copy, so a run
//! can be resumed or repeated from its own directory alone.
//!
//! Defaults follow the reference DLN-2 settings, scaled down so a demo trains in minutes on a
//! 135M-parameter model and two CPU cores (small batch, few candidates, short generations).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::llm::openai::OpenAiConfig;

/// Errors of loading or editing a configuration; each names the file, key or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("unknown config key `{key}`{hint}")]
    UnknownKey { key: String, hint: String },
    #[error("invalid value for `{key}`: {message}")]
    InvalidValue { key: String, message: String },
    #[error("`--set` expects KEY=VALUE, got `{0}`")]
    BadOverride(String),
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The whole run configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub task: TaskConfig,
    /// The `[data]` table, read by `data::DataConfig` (kept as TOML here so the data module owns
    /// its own fields and their checks).
    #[serde(default)]
    pub data: toml::Table,
    #[serde(default)]
    pub model: ModelConfig,
    /// Named backends (`[backends.NAME]`) that `[model].name`, a layer's `model` or its
    /// `backward_model` can name instead of a GGUF file: an OpenAI-compatible server or the
    /// embedded engine on a given model.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub backends: BTreeMap<String, BackendConfig>,
    /// Layers from the input side (0) to the output layer (last).
    pub layers: Vec<LayerConfig>,
    #[serde(default)]
    pub train: TrainConfig,
    /// Directory that relative paths in this config are resolved against (the config file's own
    /// directory; written into a run directory's resolved copy so it keeps working from there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_dir: Option<PathBuf>,
}

/// What the task is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// Short name, used for the run directory's name.
    pub name: String,
    /// The task's instruction; the initial prompt of the output layer when it has none.
    #[serde(default)]
    pub description: String,
}

/// The default model of every layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// A GGUF path or a built-in model name; empty = the default model (`DLN_MODEL` or the
    /// cached built-in).
    #[serde(default)]
    pub name: String,
    #[serde(default = "d_context")]
    pub context_size: u32,
    /// Worker threads of the embedded engine (default: all cores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            name: String::new(),
            context_size: d_context(),
            threads: None,
        }
    }
}

/// One named backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BackendConfig {
    /// The embedded llama.cpp engine on a GGUF path or built-in model name (empty = default).
    Embedded {
        #[serde(default)]
        model: String,
    },
    /// An OpenAI-compatible HTTP server (vLLM, llama.cpp server, Ollama, a hosted API).
    Openai(OpenAiConfig),
}

/// Template choices of one layer: a built-in name (`forward`, `forward_hidden`, `residual`,
/// `propose_prompt`, `propose_hidden`), a `.toml` file, or a reference-layout `.yaml` file with
/// an optional `@version` suffix. Empty = the built-in that fits the layer's position.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerTemplates {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub forward: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub residual: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub propose_prompt: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub propose_hidden: String,
}

/// One language layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerConfig {
    /// The initial prompt `π`. Empty on the output layer = the task description.
    #[serde(default)]
    pub prompt: String,
    #[serde(default)]
    pub templates: LayerTemplates,
    /// Whether the loop may update this layer's prompt.
    #[serde(default = "d_true")]
    pub trainable: bool,
    /// Pinned prompts are excluded from updates until unpinned (a person's decision).
    #[serde(default)]
    pub pinned: bool,
    /// Forward sampling (0 = greedy).
    #[serde(default)]
    pub forward_temperature: f32,
    /// Forward max tokens (the hidden text's length on a hidden layer, the answer's on the
    /// output layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_max_tokens: Option<u32>,
    /// Sampling temperature of the backward (proposal) LLM.
    #[serde(default = "d_backward_temperature")]
    pub backward_temperature: f32,
    #[serde(default = "d_backward_max_tokens")]
    pub backward_max_tokens: u32,
    /// Model of this layer's forward calls (default: `[model]`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    /// Model of this layer's backward (proposal) calls (default: the forward model).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub backward_model: String,
    /// `k`: demonstrations the layer learns to show before the input (0 = instruction only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub demos: usize,
    /// The demonstrations to start from (an exported network's learned ones); empty = drawn
    /// from the training split (output layer) or grown from `h*` (hidden layers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub demonstrations: Vec<crate::dln::demos::Demo>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Default for LayerConfig {
    fn default() -> Self {
        LayerConfig {
            prompt: String::new(),
            templates: LayerTemplates::default(),
            trainable: true,
            pinned: false,
            forward_temperature: 0.0,
            forward_max_tokens: None,
            backward_temperature: d_backward_temperature(),
            backward_max_tokens: d_backward_max_tokens(),
            model: String::new(),
            backward_model: String::new(),
            demos: 0,
            demonstrations: Vec::new(),
        }
    }
}

impl LayerConfig {
    /// Forward max tokens, defaulting by position: hidden layers write reasoning, the output
    /// layer a short answer.
    pub fn forward_max_tokens(&self, is_output: bool) -> u32 {
        self.forward_max_tokens
            .unwrap_or(if is_output { 16 } else { 64 })
    }
}

/// What kind of run: training, or one of the baselines run by the same code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Train the prompts (DLN-1, DLN-2, DLN-k by the number of layers).
    #[default]
    Dln,
    /// Evaluate the initial prompts without training.
    ZeroShot,
    /// In-context learning: `k_shot` training examples rendered before each input; no training.
    KShot,
}

/// How candidate prompts of the output layer are scored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scoring {
    /// Mean log-likelihood of the targets (class-renormalized for classification).
    #[default]
    Logprob,
    /// Batch accuracy (for backends without log-probabilities).
    Accuracy,
}

/// Training settings (`[train]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(default)]
    pub mode: Mode,
    /// Number of in-context examples for `mode = "k_shot"`.
    #[serde(default = "d_k_shot")]
    pub k_shot: usize,
    #[serde(default = "d_iterations")]
    pub iterations: usize,
    /// `b`.
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    /// `N`: candidate prompts per update, the current one included.
    #[serde(default = "d_candidates")]
    pub num_candidates: usize,
    /// `S`: posterior samples per example and hidden text.
    #[serde(default = "d_hidden_samples")]
    pub num_hidden_samples: usize,
    /// Evaluate on dev every this many iterations (and after the last one).
    #[serde(default = "d_val_freq")]
    pub val_freq: usize,
    /// Evaluate the starting prompts on dev before the first iteration, so they can be the
    /// best-dev prompts (a run then never ends below its own start on dev).
    #[serde(default = "d_true")]
    pub first_eval: bool,
    /// Evaluations without improvement before the prompts reset to the best-dev ones;
    /// negative = never.
    #[serde(default = "d_patience")]
    pub patience: i64,
    /// `M`: best-dev prompt sets that rejoin the candidates.
    #[serde(default = "d_memory")]
    pub memory: usize,
    /// Show only half of the batch to the proposer, rank on all of it.
    #[serde(default = "d_true")]
    pub held_out_ranking: bool,
    #[serde(default = "d_true")]
    pub class_balanced: bool,
    /// `T` of posterior sharpening.
    #[serde(default = "d_one")]
    pub posterior_temperature: f64,
    /// Add the prior `log p(h̃ | F_h(x; π_below))` to the sharpening log-weights.
    #[serde(default = "d_true")]
    pub include_prior: bool,
    /// `λ` of the trust-region KL on the output layer (0 = off).
    #[serde(default)]
    pub trust_factor: f64,
    /// Penalty on the likelihood of wrong hidden texts (0 = off).
    #[serde(default)]
    pub logp_penalty: f64,
    /// Decay the log-p penalty linearly over the iterations.
    #[serde(default = "d_true")]
    pub decay_logp_penalty: bool,
    /// Nucleus (top-p) of the backward model's sampling: prompt proposals and posterior samples.
    #[serde(default = "d_top_p")]
    pub backward_top_p: f32,
    /// Rounds of proposal requests per update: when some of the `N−1` proposals are rejected
    /// (empty, echo, meta, duplicate), the missing ones are drawn again with new seeds, at most
    /// this many rounds in all.
    #[serde(default = "d_proposal_rounds")]
    pub proposal_rounds: usize,
    /// Demonstration moves (swap, add, drop, reorder) per update of a layer with `demos > 0`,
    /// scored beside the instruction proposals.
    #[serde(default = "d_demo_moves")]
    pub demo_moves: usize,
    /// For the examples the network got wrong, the forward pass's own hidden text takes no
    /// posterior weight and cannot be `h*` (when another sample exists): the text that led to
    /// the error is not what the hidden layer is trained toward.
    #[serde(default)]
    pub exclude_wrong_hidden: bool,
    /// Draw posterior samples only for the examples the network got wrong.
    #[serde(default)]
    pub only_wrong_posterior: bool,
    #[serde(default)]
    pub scoring: Scoring,
    /// Fraction of the first target tokens skipped in free-text scores.
    #[serde(default = "d_burn_in")]
    pub burn_in: f64,
    #[serde(default = "d_seed")]
    pub seed: u64,
    /// Indices of the layers to train (default: every trainable layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_layers: Option<Vec<usize>>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        // An empty table takes every serde default, which is the one source of defaults.
        toml::Table::new()
            .try_into()
            .unwrap_or_else(|_| unreachable_defaults())
    }
}

/// Never used: every field of `TrainConfig` has a serde default.
fn unreachable_defaults() -> TrainConfig {
    TrainConfig {
        mode: Mode::Dln,
        k_shot: d_k_shot(),
        iterations: d_iterations(),
        batch_size: d_batch(),
        num_candidates: d_candidates(),
        num_hidden_samples: d_hidden_samples(),
        val_freq: d_val_freq(),
        first_eval: true,
        patience: d_patience(),
        memory: d_memory(),
        held_out_ranking: true,
        class_balanced: true,
        posterior_temperature: 1.0,
        include_prior: true,
        trust_factor: 0.0,
        logp_penalty: 0.0,
        decay_logp_penalty: true,
        backward_top_p: d_top_p(),
        proposal_rounds: d_proposal_rounds(),
        demo_moves: d_demo_moves(),
        exclude_wrong_hidden: false,
        only_wrong_posterior: false,
        scoring: Scoring::Logprob,
        burn_in: d_burn_in(),
        seed: d_seed(),
        train_layers: None,
    }
}

impl TrainConfig {
    /// Patience as the method states it: `None` = never reset.
    pub fn patience(&self) -> Option<usize> {
        (self.patience >= 0).then_some(self.patience as usize)
    }
}

fn d_context() -> u32 {
    2048
}
fn d_true() -> bool {
    true
}
fn d_one() -> f64 {
    1.0
}
fn d_backward_temperature() -> f32 {
    0.7
}
fn d_backward_max_tokens() -> u32 {
    96
}
fn d_demo_moves() -> usize {
    2
}

fn d_k_shot() -> usize {
    3
}
fn d_iterations() -> usize {
    4
}
fn d_batch() -> usize {
    4
}
fn d_candidates() -> usize {
    3
}
fn d_hidden_samples() -> usize {
    2
}
fn d_val_freq() -> usize {
    2
}
fn d_patience() -> i64 {
    2
}
fn d_memory() -> usize {
    2
}
fn d_top_p() -> f32 {
    0.95
}
fn d_proposal_rounds() -> usize {
    3
}
fn d_burn_in() -> f64 {
    0.05
}
fn d_seed() -> u64 {
    42
}

impl Config {
    /// Reads and checks a config file; relative paths in it resolve against its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        // An exported network (`dln export --format json|yaml`); keys starting with `_` are
        // notes for people.
        let value = match ext.as_str() {
            "json" => {
                Some(serde_json::from_str::<serde_json::Value>(&text).map_err(|e| e.to_string()))
            }
            "yaml" | "yml" => {
                Some(serde_yaml_ng::from_str::<serde_json::Value>(&text).map_err(|e| e.to_string()))
            }
            _ => None,
        };
        let mut config = match value {
            Some(v) => Config::parse_value(
                v.map_err(|message| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message,
                })?,
                path,
            )?,
            None => Config::parse(&text, path)?,
        };
        if config.base_dir.is_none() {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            config.base_dir =
                Some(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()));
        }
        Ok(config)
    }

    /// Parses config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let message = e.to_string();
            match unknown_field(&message) {
                Some(field) => ConfigError::Parse {
                    path: origin.to_path_buf(),
                    message: format!("unknown key `{field}`; {}", message.trim()),
                },
                None => ConfigError::Parse {
                    path: origin.to_path_buf(),
                    message: message.trim().to_string(),
                },
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// A config given as JSON or YAML (already parsed); `origin` names it in errors.
    fn parse_value(mut value: serde_json::Value, origin: &Path) -> Result<Config, ConfigError> {
        if let Some(o) = value.as_object_mut() {
            o.retain(|k, _| !k.starts_with('_'));
        }
        let config: Config = serde_json::from_value(value).map_err(|e| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The resolved config as TOML (what a run directory stores).
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string_pretty(self).map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// Where relative paths resolve.
    pub fn base_dir(&self) -> PathBuf {
        self.base_dir.clone().unwrap_or_else(|| PathBuf::from("."))
    }

    /// Resolves a path written in the config.
    pub fn resolve_path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir().join(p)
        }
    }

    /// Applies `KEY=VALUE` (the `--set` form).
    pub fn apply_override(&mut self, assignment: &str) -> Result<(), ConfigError> {
        let (k, v) = assignment
            .split_once('=')
            .ok_or_else(|| ConfigError::BadOverride(assignment.to_string()))?;
        self.set(k.trim(), v.trim())
    }

    /// Sets a dotted key (`train.iterations`, `layers.0.prompt`, `data.path`) to a value written
    /// as TOML (`3`, `true`, `"text"`) or as bare text (taken as a string). Unknown keys and
    /// ill-typed values are refused and the config is left unchanged.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let parts: Vec<&str> = key.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(ConfigError::UnknownKey {
                key: key.to_string(),
                hint: String::new(),
            });
        }
        let mut root =
            toml::Value::try_from(&*self).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let new_value = parse_value(value);
        let mut cursor = &mut root;
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            cursor = match cursor {
                toml::Value::Table(t) => {
                    if last {
                        t.insert(part.to_string(), new_value.clone());
                        break;
                    }
                    t.entry(part.to_string())
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                }
                toml::Value::Array(a) => {
                    let idx: usize = part.parse().map_err(|_| ConfigError::UnknownKey {
                        key: key.to_string(),
                        hint: format!(" (`{part}` should be a layer index)"),
                    })?;
                    let len = a.len();
                    let slot = a.get_mut(idx).ok_or_else(|| ConfigError::UnknownKey {
                        key: key.to_string(),
                        hint: format!(" (there are {len} entries)"),
                    })?;
                    if last {
                        *slot = new_value.clone();
                        break;
                    }
                    slot
                }
                _ => {
                    return Err(ConfigError::UnknownKey {
                        key: key.to_string(),
                        hint: format!(" (`{}` is not a table)", parts[..i].join(".")),
                    })
                }
            };
        }
        let updated: Config = root.try_into().map_err(|e: toml::de::Error| {
            let message = e.to_string();
            if unknown_field(&message).is_some() {
                ConfigError::UnknownKey {
                    key: key.to_string(),
                    hint: String::new(),
                }
            } else {
                ConfigError::InvalidValue {
                    key: key.to_string(),
                    message: message.trim().to_string(),
                }
            }
        })?;
        updated.validate().map_err(|e| ConfigError::InvalidValue {
            key: key.to_string(),
            message: e.to_string(),
        })?;
        *self = updated;
        Ok(())
    }

    /// Checks what serde cannot: counts and ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.layers.is_empty() {
            return bad("at least one `[[layers]]` table is needed".into());
        }
        let t = &self.train;
        if t.batch_size == 0 {
            return bad("`train.batch_size` must be at least 1".into());
        }
        if t.num_candidates == 0 {
            return bad("`train.num_candidates` must be at least 1 (the current prompt)".into());
        }
        if t.val_freq == 0 {
            return bad("`train.val_freq` must be at least 1".into());
        }
        if !(t.posterior_temperature > 0.0) {
            return bad("`train.posterior_temperature` must be positive".into());
        }
        if !(t.backward_top_p > 0.0 && t.backward_top_p <= 1.0) {
            return bad("`train.backward_top_p` must be in (0, 1]".into());
        }
        if t.proposal_rounds == 0 {
            return bad("`train.proposal_rounds` must be at least 1".into());
        }
        if !(0.0..1.0).contains(&t.burn_in) {
            return bad("`train.burn_in` must be in [0, 1)".into());
        }
        if t.mode == Mode::KShot && t.k_shot == 0 {
            return bad("`train.k_shot` must be at least 1 with `mode = \"k_shot\"`".into());
        }
        if let Some(tl) = &t.train_layers {
            if let Some(l) = tl.iter().find(|l| **l >= self.layers.len()) {
                return bad(format!(
                    "`train.train_layers` names layer {l} but there are {} layers",
                    self.layers.len()
                ));
            }
        }
        if self.task.name.trim().is_empty() {
            return bad("`task.name` must not be empty".into());
        }
        for (name, b) in &self.backends {
            if let BackendConfig::Openai(o) = b {
                o.validate(name).map_err(ConfigError::Invalid)?;
            }
        }
        Ok(())
    }

    /// Whether the loop may update layer `l` (trainable, selected, not pinned).
    pub fn layer_trains(&self, l: usize) -> bool {
        let selected = self
            .train
            .train_layers
            .as_ref()
            .is_none_or(|tl| tl.contains(&l));
        self.layers.get(l).is_some_and(|c| c.trainable && selected)
    }
}

/// The field name in a serde "unknown field `x`" message.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    Some(rest.split('`').next()?.to_string())
}

/// A `--set` value: TOML if it parses as one, else the bare text as a string.
fn parse_value(text: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {text}")) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(text.to_string())),
        Err(_) => toml::Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[task]
name = "demo"
description = "Answer the question."

[data]
path = "data/demo.jsonl"

[[layers]]
prompt = "Classify."
"#;

    fn minimal() -> Config {
        Config::parse(MINIMAL, Path::new("test.toml")).expect("minimal config parses")
    }

    #[test]
    fn defaults_fill_in() {
        let c = minimal();
        assert_eq!(c.train.batch_size, 4);
        assert_eq!(c.train.num_candidates, 3);
        assert_eq!(c.train.patience(), Some(2));
        assert!(c.layers[0].trainable);
        assert_eq!(c.layers[0].backward_temperature, 0.7);
        assert_eq!(c.model.context_size, 2048);
        assert_eq!(c.train, TrainConfig::default());
    }

    #[test]
    fn set_dotted_keys() {
        let mut c = minimal();
        c.set("train.iterations", "2").expect("iterations");
        assert_eq!(c.train.iterations, 2);
        c.apply_override("train.seed=7").expect("seed");
        assert_eq!(c.train.seed, 7);
        c.set("layers.0.prompt", "Say yes or no.")
            .expect("prompt as bare text");
        assert_eq!(c.layers[0].prompt, "Say yes or no.");
        c.set("layers.0.templates.forward", "my.toml")
            .expect("template");
        assert_eq!(c.layers[0].templates.forward, "my.toml");
        c.set("train.mode", "zero_shot").expect("mode");
        assert_eq!(c.train.mode, Mode::ZeroShot);
        c.set("data.path", "other.jsonl").expect("data key");
        assert_eq!(
            c.data.get("path").and_then(|v| v.as_str()),
            Some("other.jsonl")
        );
    }

    #[test]
    fn set_refuses_unknown_keys_and_bad_values() {
        let mut c = minimal();
        let before = c.clone();
        let e = c.set("train.iteratons", "2").expect_err("typo");
        assert!(e.to_string().contains("train.iteratons"), "{e}");
        let e = c.set("layers.3.prompt", "x").expect_err("no such layer");
        assert!(e.to_string().contains("layers.3.prompt"), "{e}");
        let e = c.set("train.batch_size", "many").expect_err("type");
        assert!(e.to_string().contains("train.batch_size"), "{e}");
        let e = c.set("train.batch_size", "0").expect_err("range");
        assert!(e.to_string().contains("batch_size"), "{e}");
        assert!(matches!(
            c.apply_override("train.seed"),
            Err(ConfigError::BadOverride(_))
        ));
        assert_eq!(c, before);
    }

    #[test]
    fn unknown_key_in_file_is_named() {
        let text = MINIMAL.replace("[task]", "[train]\nbatchsize = 3\n[task]");
        let e = Config::parse(&text, Path::new("x.toml")).expect_err("unknown key");
        let m = e.to_string();
        assert!(m.contains("batchsize") && m.contains("x.toml"), "{m}");
    }

    #[test]
    fn named_backends_load_and_round_trip() {
        let text = format!(
            "{MINIMAL}\n[backends.remote]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:8000/v1\"\nmodel = \"m\"\nmax_in_flight = 4\n\n[backends.local]\nkind = \"embedded\"\nmodel = \"smollm2-135m\"\n"
        )
        .replace("prompt = \"Classify.\"", "prompt = \"Classify.\"\nbackward_model = \"remote\"");
        let c = Config::parse(&text, Path::new("b.toml")).expect("backends parse");
        match c.backends.get("remote") {
            Some(BackendConfig::Openai(o)) => {
                assert_eq!(o.max_in_flight, 4);
                assert_eq!(o.api_key_env, "OPENAI_API_KEY");
            }
            other => panic!("remote: {other:?}"),
        }
        assert!(matches!(
            c.backends.get("local"),
            Some(BackendConfig::Embedded { .. })
        ));
        assert_eq!(c.layers[0].backward_model, "remote");
        let back = Config::parse(&c.to_toml().expect("toml"), Path::new("c.toml")).expect("again");
        assert_eq!(back, c);
        let mut c2 = c.clone();
        c2.set("backends.remote.max_in_flight", "2").expect("set");
        assert!(matches!(
            c2.backends.get("remote"),
            Some(BackendConfig::Openai(o)) if o.max_in_flight == 2
        ));
        // A typo in a backend table is named; an empty model is refused with the fix.
        let e = Config::parse(
            &text.replace("max_in_flight", "max_inflight"),
            Path::new("b.toml"),
        )
        .expect_err("typo");
        assert!(e.to_string().contains("max_inflight"), "{e}");
        let e = Config::parse(
            &text.replace("model = \"m\"", "model = \"\""),
            Path::new("b.toml"),
        )
        .expect_err("no model");
        assert!(e.to_string().contains("backends.remote.model"), "{e}");
        // Configs without backends serialize exactly as before.
        assert!(!minimal().to_toml().expect("toml").contains("backends"));
    }

    #[test]
    fn resolved_round_trip() {
        let mut c = minimal();
        c.base_dir = Some(PathBuf::from("/somewhere"));
        let text = c.to_toml().expect("serialize");
        let back = Config::parse(&text, Path::new("config.toml")).expect("reparse");
        assert_eq!(back, c);
        assert_eq!(
            back.resolve_path("d.json"),
            PathBuf::from("/somewhere/d.json")
        );
    }
}
