//! The run configuration: one TOML file (task, data, model, layers, training settings) with
//! `--set key=value` overrides on dotted keys. A run directory keeps the resolved copy, so a run
//! can be resumed or repeated from its own directory alone.
//!
//! One module per table: `model` (`[model]`, `[backends.NAME]`), `data` (`[data]`, typed at
//! load), `layer` (`[[layers]]`), `train` (`[train]`), `cache` (`[cache]`), `set` (`--set`
//! overrides); this one loads and checks the whole.
//! Each table's defaults are written once, in its `Default` impl, which serde fills absent
//! keys from.

mod cache;
mod data;
mod layer;
mod model;
pub(crate) mod range;
mod set;
mod train;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use cache::{check_max_mb, CacheConfig, DEFAULT_MAX_MB};
pub use layer::{LayerConfig, LayerTemplates};
pub use model::{BackendConfig, ModelConfig};
pub use train::{Mode, Optimizer, Scoring, Selection, TrainConfig};

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

impl ConfigError {
    /// A check's error as one of the file `origin` (what `Config::load` reports).
    fn in_file(self, origin: &Path) -> ConfigError {
        match self {
            ConfigError::Invalid(message) => ConfigError::Parse {
                path: origin.to_path_buf(),
                message,
            },
            other => other,
        }
    }
}

/// The whole run configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub task: TaskConfig,
    /// The `[data]` table as written; typed and checked as `data::DataConfig` when read (see
    /// [`Config::data_config`]).
    #[serde(default, deserialize_with = "data::typed_table")]
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
    /// The call cache's size bound.
    #[serde(default)]
    pub cache: CacheConfig,
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
        // `[data]` first on its own, so an ill-typed data key is shown at its own line.
        let config: Config = data::check_text(text)
            .and_then(|()| toml::from_str(text))
            .map_err(|e| {
                let message = e.to_string();
                let message = match unknown_field(&message) {
                    Some(field) => format!("unknown key `{field}`; {}", message.trim()),
                    None => message.trim().to_string(),
                };
                ConfigError::Parse {
                    path: origin.to_path_buf(),
                    message,
                }
            })?;
        config.validate().map_err(|e| e.in_file(origin))?;
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
        config.validate().map_err(|e| e.in_file(origin))?;
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
        crate::files::resolve(&self.base_dir(), p)
    }

    /// Checks what serde cannot: counts and ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.layers.is_empty() {
            return Err(ConfigError::Invalid(
                "at least one `[[layers]]` table is needed".into(),
            ));
        }
        self.train
            .validate(self.layers.len())
            .map_err(ConfigError::Invalid)?;
        self.model.validate().map_err(ConfigError::Invalid)?;
        let output = self.layers.len() - 1;
        if self.train.gepa() {
            if let Some(l) = (0..output).find(|&l| self.trainable(l)) {
                return Err(ConfigError::Invalid(format!(
                    "`train.optimizer = \"gepa\"` mutates the output layer only, and layer {l} is trained too: \
                     set `layers.{l}.trainable = false` or `train.train_layers = [{output}]`, or train with \
                     `optimizer = \"dln\"`"
                )));
            }
        }
        for (l, layer) in self.layers.iter().enumerate() {
            layer.validate(l).map_err(ConfigError::Invalid)?;
        }
        self.cache.validate().map_err(ConfigError::Invalid)?;
        if self.task.name.trim().is_empty() {
            return Err(ConfigError::Invalid("`task.name` must not be empty".into()));
        }
        for (name, b) in &self.backends {
            match b {
                BackendConfig::Openai(o) => o.validate(name).map_err(ConfigError::Invalid)?,
                BackendConfig::Embedded {
                    prompt_price,
                    generated_price,
                    ..
                } => {
                    use crate::llm::price::Price;
                    Price::check(*prompt_price, &format!("backends.{name}.prompt_price"))
                        .and_then(|()| {
                            Price::check(
                                *generated_price,
                                &format!("backends.{name}.generated_price"),
                            )
                        })
                        .map_err(ConfigError::Invalid)?
                }
            }
        }
        Ok(())
    }
}

/// The field name in a serde "unknown field `x`" message.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    Some(rest.split('`').next()?.to_string())
}

#[cfg(test)]
mod tests;
