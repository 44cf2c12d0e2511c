//! A trained network outside its run directory: the run's resolved config with the chosen
//! prompts in place, every template inlined (the ones a person edited during the run included)
//! and the task's output classes written out, so the file alone is enough for `dln predict`
//! and `dln tui`. TOML, JSON and YAML hold the same network; `text` is just the prompts.

use std::path::Path;

use serde::Serialize;

use crate::config::Config;
use crate::dln::demos::Demo;
use crate::dln::events::TemplateRole;
use crate::dln::network::{given_spec_mut, layer_templates};
use crate::run::checkpoint::read_checkpoint;
use crate::run::dir::CONFIG_FILE;
use crate::run::result::read_result;
use crate::run::session::load_data;
use crate::run::RunError;

/// Which prompts of a run to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The best prompts on dev (the run's answer), else the current ones.
    Best,
    /// The prompts the run ended (or stopped) with.
    Final,
    /// The prompts evaluated on dev at iteration `n` (0 = before training).
    Iteration(usize),
}

impl std::str::FromStr for Which {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "best" => Ok(Which::Best),
            "final" => Ok(Which::Final),
            other => other
                .parse()
                .map(Which::Iteration)
                .map_err(|_| format!("`{other}` is not `best`, `final` or an iteration number")),
        }
    }
}

/// The file formats of an exported network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Toml,
    Json,
    Yaml,
    /// Only the prompts, one block per layer.
    Text,
}

/// A run's network, ready to be written or run.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The self-contained config: prompts, inline templates, classes.
    pub config: Config,
    /// The prompts per layer (also in `config`).
    pub prompts: Vec<String>,
    /// Each layer's demonstrations (also in `config`; empty when no layer shows any).
    pub demos: Vec<Vec<Demo>>,
    /// Where they came from, for the file's header.
    pub provenance: String,
}

/// The network of the run in `run_dir` with the prompts `which` selects.
pub fn export_run(run_dir: &Path, which: Which) -> Result<Exported, RunError> {
    let config_path = run_dir.join(CONFIG_FILE);
    if !config_path.exists() {
        return Err(RunError::NotARun {
            path: run_dir.to_path_buf(),
        });
    }
    let mut config = Config::load(&config_path)?;
    let checkpoint = read_checkpoint(run_dir)?;
    let result = read_result(run_dir)?;
    let state = checkpoint.as_ref().map(|c| &c.state);
    let no_prompts = |what: &str| RunError::File {
        path: run_dir.to_path_buf(),
        message: format!("the run has no {what} yet (no checkpoint)"),
    };
    let (prompts, demos, what) = match which {
        Which::Best => match (&result, state) {
            (Some(r), _) => (
                r.best_prompts.clone(),
                r.best_demos.clone(),
                "best dev prompts".to_string(),
            ),
            (None, Some(s)) if s.best_dev.accuracy.is_some() => (
                s.best_dev.prompts.clone(),
                s.best_dev.demos.clone(),
                "best dev prompts so far".into(),
            ),
            (None, Some(s)) => (s.prompts.clone(), s.demos.clone(), "current prompts".into()),
            (None, None) => return Err(no_prompts("prompts")),
        },
        Which::Final => match (&result, state) {
            (Some(r), _) => (
                r.final_prompts.clone(),
                r.final_demos.clone(),
                "final prompts".into(),
            ),
            (None, Some(s)) => (
                s.prompts.clone(),
                s.demos.clone(),
                "prompts at the last checkpoint".into(),
            ),
            (None, None) => return Err(no_prompts("prompts")),
        },
        Which::Iteration(n) => {
            let history = match (&result, state) {
                (Some(r), _) => r.dev_history.clone(),
                (None, Some(s)) => s.dev_history.clone(),
                (None, None) => return Err(no_prompts("dev history")),
            };
            let point =
                history
                    .iter()
                    .find(|p| p.iteration == n)
                    .ok_or_else(|| RunError::File {
                        path: run_dir.to_path_buf(),
                        message: format!(
                            "no dev evaluation at iteration {n}; evaluated iterations: {}",
                            history
                                .iter()
                                .map(|p| p.iteration.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })?;
            (
                point.prompts.clone(),
                point.demos.clone(),
                format!("prompts of iteration {n} (dev {:.3})", point.accuracy),
            )
        }
    };
    if prompts.len() != config.layers.len() {
        return Err(RunError::File {
            path: run_dir.to_path_buf(),
            message: format!(
                "{} prompts for {} layers",
                prompts.len(),
                config.layers.len()
            ),
        });
    }
    let edited = state
        .map(|s| s.edited_templates.clone())
        .unwrap_or_default();
    inline_templates(&mut config, &edited)?;
    for (l, (lc, p)) in config.layers.iter_mut().zip(&prompts).enumerate() {
        lc.prompt = p.clone();
        // The learned demonstrations travel with the prompt (and are where a run trained on
        // from this file starts); a layer that learned none shows none.
        lc.demonstrations = demos.get(l).cloned().unwrap_or_default();
    }
    // The classes the run answered with, so the file needs no data to predict.
    if let Ok(data) = load_data(&config) {
        if let Some(classes) = &data.classes {
            config.data.insert(
                "classes".into(),
                toml::Value::try_from(class_specs(classes)).map_err(|e| RunError::File {
                    path: config_path.clone(),
                    message: format!("cannot write the classes: {e}"),
                })?,
            );
        }
    }
    let scores = match &result {
        Some(r) => format!(
            "dev {} · test {}",
            r.dev_accuracy.map_or("—".into(), |a| format!("{a:.3}")),
            r.test_accuracy.map_or("—".into(), |a| format!("{a:.3}"))
        ),
        None => "run not finished".into(),
    };
    Ok(Exported {
        config,
        prompts,
        demos,
        provenance: format!("{what} of {} ({scores})", run_dir.display()),
    })
}

#[derive(Serialize)]
struct ClassOut {
    label: String,
    verbalizers: Vec<String>,
}

fn class_specs(c: &crate::data::OutputClasses) -> Vec<ClassOut> {
    c.labels
        .iter()
        .zip(&c.verbalizers)
        .map(|(l, v)| ClassOut {
            label: l.clone(),
            verbalizers: v.clone(),
        })
        .collect()
}

/// Replaces every layer's template specs by the templates' full text (the last edit of a role
/// during the run wins over the config's spec).
fn inline_templates(
    config: &mut Config,
    edited: &[Vec<(TemplateRole, String)>],
) -> Result<(), RunError> {
    for l in 0..config.layers.len() {
        let edits = edited.get(l).map(Vec::as_slice).unwrap_or_default();
        let templates = layer_templates(config, l, edits).map_err(|e| RunError::File {
            path: config.base_dir(),
            message: format!("layer {l}: {e}"),
        })?;
        for (role, template) in templates {
            *given_spec_mut(&mut config.layers[l].templates, role) = template.to_toml();
        }
    }
    Ok(())
}

impl Exported {
    /// The network as text in `format`.
    pub fn render(&self, format: Format) -> Result<String, RunError> {
        let err = |e: String| RunError::File {
            path: Path::new("export").to_path_buf(),
            message: e,
        };
        let header = format!(
            "exported by dln {}: {}",
            env!("CARGO_PKG_VERSION"),
            self.provenance
        );
        Ok(match format {
            Format::Toml => format!(
                "# {header}\n# Run it: dln predict THIS_FILE --input inputs.jsonl; train on from it: dln tui THIS_FILE\n{}",
                self.config.to_toml()?
            ),
            Format::Json => {
                let mut v = serde_json::to_value(&self.config).map_err(|e| err(e.to_string()))?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("_exported".into(), serde_json::Value::String(header));
                }
                serde_json::to_string_pretty(&v).map_err(|e| err(e.to_string()))? + "\n"
            }
            Format::Yaml => format!(
                "# {header}\n{}",
                serde_yaml_ng::to_string(&self.config).map_err(|e| err(e.to_string()))?
            ),
            Format::Text => {
                let k = self.prompts.len();
                let mut out = String::new();
                for (l, p) in self.prompts.iter().enumerate() {
                    let kind = if l + 1 == k { "output" } else { "hidden" };
                    out.push_str(&format!("# layer {} ({kind})\n{p}\n\n", l + 1));
                    for d in self.demos.get(l).into_iter().flatten() {
                        let ex = format!("## demonstration: ex {}\n{}\n→ {}\n\n", d.index, d.input, d.output);
                        out.push_str(&ex);
                    }
                }
                out
            }
        })
    }
}
