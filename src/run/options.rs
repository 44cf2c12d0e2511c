//! How to run a session: where, on what, paused or not, with which overrides.

use std::path::PathBuf;

use crate::llm::SharedBackend;

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
