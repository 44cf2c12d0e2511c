//! `[model]` (the default model of every layer) and `[backends.NAME]` (named backends a layer
//! or `[model]` may use instead of a GGUF spec).

use serde::{Deserialize, Serialize};

use crate::llm::openai::OpenAiConfig;

/// The default model of every layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// A GGUF path or a built-in model name; empty = the default model (`DLN_MODEL` or the
    /// cached built-in).
    pub name: String,
    pub context_size: u32,
    /// Worker threads of the embedded engine (default: all cores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
}

/// The one place the defaults of `[model]` are written; serde fills absent keys from it.
impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            name: String::new(),
            context_size: 2048,
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
