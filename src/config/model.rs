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

impl ModelConfig {
    /// Checks what serde cannot: the context and thread counts a llama.cpp context can take.
    pub(super) fn validate(&self) -> Result<(), String> {
        use super::range::{count, MAX_TOKENS};
        count(
            "model.context_size",
            self.context_size.into(),
            64,
            MAX_TOKENS,
        )?;
        if let Some(t) = self.threads {
            count("model.threads", t as u64, 1, 1024)?;
        }
        Ok(())
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
        /// Price per million prompt tokens (a local model is free unless you say otherwise).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt_price: Option<f64>,
        /// Price per million generated tokens.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        generated_price: Option<f64>,
    },
    /// An OpenAI-compatible HTTP server (vLLM, llama.cpp server, Ollama, a hosted API).
    Openai(OpenAiConfig),
}

impl BackendConfig {
    /// What the backend's tokens cost (`prompt_price`, `generated_price`), if priced.
    pub fn price(&self) -> Option<crate::llm::price::Price> {
        match self {
            BackendConfig::Embedded {
                prompt_price,
                generated_price,
                ..
            } => crate::llm::price::Price::from_config(*prompt_price, *generated_price),
            BackendConfig::Openai(o) => o.price(),
        }
    }
}
