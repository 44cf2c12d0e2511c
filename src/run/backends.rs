//! The backends of a run's layers: each distinct model is loaded once and wrapped in the
//! persistent call cache, so a layer's forward and backward calls (and layers sharing a model)
//! share one engine and one cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::dln::LayerBackends;
use crate::llm::cache::CachedBackend;
use crate::llm::embedded::{EmbeddedBackend, EmbeddedOptions};
use crate::llm::SharedBackend;
use crate::run::RunError;

/// Builds every layer's backends. `injected` (tests, or a caller with its own engine) serves all
/// layers; otherwise each model spec resolves to a GGUF file (`layers[l].model`, then
/// `model_override`, then `[model].name`, then the default model) loaded in the embedded engine.
pub async fn build_backends(
    config: &Config,
    model_override: Option<&str>,
    injected: Option<SharedBackend>,
    cache_dir: &Path,
) -> Result<Vec<LayerBackends>, RunError> {
    let k = config.layers.len();
    if let Some(b) = injected {
        let cached: SharedBackend = Arc::new(CachedBackend::new(b, cache_dir)?);
        return Ok(vec![
            LayerBackends {
                forward: cached.clone(),
                backward: cached
            };
            k
        ]);
    }
    let global = model_override
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
        .or_else(|| Some(config.model.name.clone()).filter(|s| !s.trim().is_empty()));
    let mut loaded: Vec<(PathBuf, SharedBackend)> = Vec::new();
    let mut out = Vec::with_capacity(k);
    for lc in &config.layers {
        let fwd_spec = Some(lc.model.clone())
            .filter(|s| !s.trim().is_empty())
            .or_else(|| global.clone());
        let bwd_spec = Some(lc.backward_model.clone())
            .filter(|s| !s.trim().is_empty())
            .or_else(|| fwd_spec.clone());
        let forward = get_or_load(config, fwd_spec.as_deref(), cache_dir, &mut loaded).await?;
        let backward = get_or_load(config, bwd_spec.as_deref(), cache_dir, &mut loaded).await?;
        out.push(LayerBackends { forward, backward });
    }
    Ok(out)
}

async fn get_or_load(
    config: &Config,
    spec: Option<&str>,
    cache_dir: &Path,
    loaded: &mut Vec<(PathBuf, SharedBackend)>,
) -> Result<SharedBackend, RunError> {
    // A relative model path in the config is relative to the config's directory.
    let spec = spec.map(|s| {
        let p = config.resolve_path(s);
        if (s.ends_with(".gguf") || s.contains('/')) && p.exists() {
            p.to_string_lossy().into_owned()
        } else {
            s.to_string()
        }
    });
    let path = {
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || crate::llm::model::resolve(spec.as_deref(), true))
            .await
            .map_err(|e| RunError::Task(e.to_string()))??
    };
    if let Some((_, b)) = loaded.iter().find(|(p, _)| *p == path) {
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
    let cached: SharedBackend = Arc::new(CachedBackend::new(Arc::new(engine), cache_dir)?);
    loaded.push((path, cached.clone()));
    Ok(cached)
}
