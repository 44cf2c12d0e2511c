//! The backends of a run's layers: each distinct model is loaded (or connected to) once and
//! wrapped in the persistent call cache, so a layer's forward and backward calls (and layers
//! sharing a model) share one engine and one cache.
//!
//! A model spec (`[model].name`, a layer's `model` or `backward_model`) names either a backend
//! of the `[backends]` table (an OpenAI-compatible server, or the embedded engine on a given
//! model) or, as before, a GGUF file or built-in model for the embedded engine.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{BackendConfig, Config};
use crate::dln::LayerBackends;
use crate::llm::cache::CachedBackend;
use crate::llm::embedded::{EmbeddedBackend, EmbeddedOptions};
use crate::llm::openai::OpenAiBackend;
use crate::llm::price::Priced;
use crate::llm::SharedBackend;
use crate::run::RunError;

/// What a run says about an HTTP backend when it starts: which server, which scoring mode.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendReport {
    /// The `[backends]` name.
    pub name: String,
    /// The scoring mode chosen (`echo`, `prompt_logprobs`, `top_logprobs`, `none`).
    pub scoring: String,
    /// Server, model, mode and capabilities, on one line.
    pub detail: String,
}

/// Layer backends and the reports of the HTTP backends among them.
pub struct BuiltBackends {
    pub layers: Vec<LayerBackends>,
    pub reports: Vec<BackendReport>,
}

/// Builds every layer's backends. `injected` (tests, or a caller with its own engine) serves all
/// layers; otherwise each model spec resolves to a named backend of `[backends]`, or to a GGUF
/// file (`layers[l].model`, then `model_override`, then `[model].name`, then the default
/// model) loaded in the embedded engine.
pub async fn build_backends(
    config: &Config,
    model_override: Option<&str>,
    injected: Option<SharedBackend>,
    cache_dir: &Path,
) -> Result<Vec<LayerBackends>, RunError> {
    Ok(
        build_backends_reporting(config, model_override, injected, cache_dir)
            .await?
            .layers,
    )
}

/// [`build_backends`], with what the HTTP backends' probes found.
pub async fn build_backends_reporting(
    config: &Config,
    model_override: Option<&str>,
    injected: Option<SharedBackend>,
    cache_dir: &Path,
) -> Result<BuiltBackends, RunError> {
    let k = config.layers.len();
    if let Some(b) = injected {
        let cached: SharedBackend = Arc::new(CachedBackend::with_max_mb(
            b,
            cache_dir,
            config.cache.max_mb,
        )?);
        return Ok(BuiltBackends {
            layers: vec![
                LayerBackends {
                    forward: cached.clone(),
                    backward: cached
                };
                k
            ],
            reports: Vec::new(),
        });
    }
    let mut loaded = Loaded::default();
    let mut layers = Vec::with_capacity(k);
    for (fwd_spec, bwd_spec) in layer_specs(config, model_override) {
        let forward = get_or_load(config, fwd_spec.as_deref(), cache_dir, &mut loaded).await?;
        let backward = get_or_load(config, bwd_spec.as_deref(), cache_dir, &mut loaded).await?;
        layers.push(LayerBackends { forward, backward });
    }
    Ok(BuiltBackends {
        layers,
        reports: loaded.reports,
    })
}

/// Each layer's (forward, backward) model spec: the layer's own, else `model_override`, else
/// `[model].name`, else none (the default model); the backward spec defaults to the forward one.
fn layer_specs(
    config: &Config,
    model_override: Option<&str>,
) -> Vec<(Option<String>, Option<String>)> {
    let given = |s: &str| Some(s.to_string()).filter(|s| !s.trim().is_empty());
    let global = model_override
        .and_then(given)
        .or_else(|| given(&config.model.name));
    config
        .layers
        .iter()
        .map(|lc| {
            let fwd = given(&lc.model).or_else(|| global.clone());
            let bwd = given(&lc.backward_model).or_else(|| fwd.clone());
            (fwd, bwd)
        })
        .collect()
}

/// Whether a run of `config` (with `model_override`, a `--model`) calls an HTTP backend: a
/// layer's forward model, or with `backward` its backward model, resolved as [`layer_specs`]
/// does, names an `openai` backend.
pub fn calls_http_backend(config: &Config, model_override: Option<&str>, backward: bool) -> bool {
    let http = |spec: &Option<String>| {
        spec.as_deref().is_some_and(|name| {
            matches!(
                config.backends.get(name.trim()),
                Some(BackendConfig::Openai(_))
            )
        })
    };
    layer_specs(config, model_override)
        .iter()
        .any(|(fwd, bwd)| http(fwd) || (backward && http(bwd)))
}

/// A model path written in the config is relative to the config's directory; anything else
/// (a built-in name, a path that does not exist) is passed on as written.
fn local_model_spec(config: &Config, spec: &str) -> String {
    let p = config.resolve_path(spec);
    if (spec.ends_with(".gguf") || spec.contains('/')) && p.exists() {
        p.to_string_lossy().into_owned()
    } else {
        spec.to_string()
    }
}

/// The embedded model a layer's model spec stands for: `None` for an `openai` backend, else the
/// file or built-in name to load (`Some(None)`: the default model), a config-relative path made
/// absolute.
fn embedded_spec(config: &Config, spec: Option<&str>) -> Option<Option<String>> {
    let spec = match spec.map(str::trim) {
        Some(name) => match config.backends.get(name) {
            Some(BackendConfig::Openai(_)) => return None,
            Some(BackendConfig::Embedded { model, .. }) => {
                Some(model.clone()).filter(|m| !m.trim().is_empty())
            }
            None => Some(name.to_string()),
        },
        None => None,
    };
    Some(spec.map(|s| local_model_spec(config, &s)))
}

/// The embedded models the layers of a run of `config` compute their forward calls on (with
/// `model_override`, a `--model`), as [`embedded_spec`] gives them; layers on a server are left
/// out.
pub fn embedded_forward_models(
    config: &Config,
    model_override: Option<&str>,
) -> Vec<Option<String>> {
    layer_specs(config, model_override)
        .into_iter()
        .filter_map(|(fwd, _)| embedded_spec(config, fwd.as_deref()))
        .collect()
}

/// Checks, without loading anything, that every embedded model a run of `config` would load
/// exists and is a GGUF file (a built-in model not yet cached is fine: the run fetches it), so a
/// wrong `--model` fails before a run directory or the workbench's screen exists.
pub fn check_models(config: &Config, model_override: Option<&str>) -> Result<(), RunError> {
    let specs = layer_specs(config, model_override)
        .into_iter()
        .flat_map(|(fwd, bwd)| [fwd, bwd]);
    for spec in specs {
        let Some(spec) = embedded_spec(config, spec.as_deref()) else {
            continue;
        };
        match crate::llm::model::resolve(spec.as_deref(), false) {
            Ok(path) => crate::llm::model::check_gguf(&path)?,
            Err(crate::llm::model::ModelError::NotCached(..)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[derive(Default)]
struct Loaded {
    files: Vec<(PathBuf, SharedBackend)>,
    named: Vec<(String, SharedBackend)>,
    reports: Vec<BackendReport>,
}

async fn get_or_load(
    config: &Config,
    spec: Option<&str>,
    cache_dir: &Path,
    loaded: &mut Loaded,
) -> Result<SharedBackend, RunError> {
    if let Some(name) = spec.map(str::trim) {
        if let Some(b) = config.backends.get(name) {
            if let Some((_, b)) = loaded.named.iter().find(|(n, _)| n == name) {
                return Ok(b.clone());
            }
            let backend = match b {
                BackendConfig::Embedded { model, .. } => {
                    let m = Some(model.as_str()).filter(|m| !m.trim().is_empty());
                    load_embedded(config, m, cache_dir, loaded).await?
                }
                BackendConfig::Openai(o) => {
                    let probe_dir = crate::llm::model::data_dir().join("openai-probe");
                    let engine = OpenAiBackend::connect(
                        o,
                        &config.base_dir(),
                        config.model.context_size,
                        Some(&probe_dir),
                    )
                    .await
                    .map_err(|e| {
                        RunError::Llm(crate::llm::LlmError::Backend(format!(
                            "backend `{name}`: {e}"
                        )))
                    })?;
                    let r = engine.report();
                    loaded.reports.push(BackendReport {
                        name: name.to_string(),
                        scoring: r.scoring.name().to_string(),
                        detail: r.line(),
                    });
                    Arc::new(CachedBackend::with_max_mb(
                        Arc::new(engine),
                        cache_dir,
                        config.cache.max_mb,
                    )?) as SharedBackend
                }
            };
            // Outside the call cache: its answers add no tokens, so they cost nothing.
            let backend = match b.price() {
                Some(price) => Arc::new(Priced::new(backend, price)) as SharedBackend,
                None => backend,
            };
            loaded.named.push((name.to_string(), backend.clone()));
            return Ok(backend);
        }
    }
    load_embedded(config, spec, cache_dir, loaded).await
}

async fn load_embedded(
    config: &Config,
    spec: Option<&str>,
    cache_dir: &Path,
    loaded: &mut Loaded,
) -> Result<SharedBackend, RunError> {
    let spec = spec.map(|s| local_model_spec(config, s));
    let path = {
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || crate::llm::model::resolve(spec.as_deref(), true))
            .await
            .map_err(|e| RunError::Task(e.to_string()))??
    };
    if let Some((_, b)) = loaded.files.iter().find(|(p, _)| *p == path) {
        return Ok(b.clone());
    }
    let opts = EmbeddedOptions {
        context_size: config.model.context_size,
        threads: config.model.threads,
        ..Default::default()
    };
    let p = path.clone();
    let engine = tokio::task::spawn_blocking(move || EmbeddedBackend::load(&p, opts))
        .await
        .map_err(|e| RunError::Task(e.to_string()))??;
    let cached: SharedBackend = Arc::new(CachedBackend::with_max_mb(
        Arc::new(engine),
        cache_dir,
        config.cache.max_mb,
    )?);
    loaded.files.push((path, cached.clone()));
    Ok(cached)
}
