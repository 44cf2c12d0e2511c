//! `[backends.NAME]` with `kind = "openai"`: where the server is, where the key is, how hard to
//! push the server.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ApiKey, ScoringMode, TransportOptions};
use crate::llm::{LlmError, LlmResult};

/// An OpenAI-compatible backend in the config (`[backends.NAME]` with `kind = "openai"`).
/// The API key is never in this table: `api_key_env` names the environment variable holding it
/// (or `api_key_file` a file), so configs and run directories never contain a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiConfig {
    /// Base URL ending in `/v1` (default: `OPENAI_BASE_URL`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub base_url: String,
    /// Several replicas of one model: requests go to the one with the fewest in flight.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub base_urls: Vec<String>,
    /// The model name the server knows (`/v1/models`).
    pub model: String,
    /// Environment variable holding the API key.
    pub api_key_env: String,
    /// A file holding the API key (used when the variable is unset).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_key_file: String,
    pub scoring: ScoringMode,
    /// Requests in flight at once.
    pub max_in_flight: usize,
    /// Per-request timeout.
    pub timeout_secs: f64,
    /// Retries after a 429, 5xx, timeout or reset.
    pub max_retries: u32,
    /// First backoff; doubles per retry up to 30 s, with jitter.
    pub retry_base_ms: u64,
    /// The server's context window (default: `[model].context_size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_size: Option<u32>,
    /// Prompts sent in one `/completions` request when scoring (the API takes an array of
    /// prompts); used only when the probe found that the server answers arrays. 1 = one each.
    pub prompts_per_request: usize,
    /// Price per million prompt tokens (for the run's cost and `train.budget_cost`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_price: Option<f64>,
    /// Price per million generated tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_price: Option<f64>,
}

/// The one place the defaults of a `[backends.NAME]` table are written; serde fills absent keys
/// from it.
impl Default for OpenAiConfig {
    fn default() -> Self {
        OpenAiConfig {
            base_url: String::new(),
            base_urls: Vec::new(),
            model: String::new(),
            api_key_env: "OPENAI_API_KEY".into(),
            api_key_file: String::new(),
            scoring: ScoringMode::Auto,
            max_in_flight: 8,
            timeout_secs: 120.0,
            max_retries: 5,
            retry_base_ms: 500,
            context_size: None,
            prompts_per_request: 8,
            prompt_price: None,
            generated_price: None,
        }
    }
}

impl OpenAiConfig {
    /// The replicas' base URLs: `base_urls`, else `base_url`, else `OPENAI_BASE_URL`.
    pub fn resolved_base_urls(&self) -> Vec<String> {
        let mut urls: Vec<String> = self
            .base_urls
            .iter()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect();
        if urls.is_empty() && !self.base_url.trim().is_empty() {
            urls.push(self.base_url.trim().to_string());
        }
        if urls.is_empty() {
            if let Ok(u) = std::env::var("OPENAI_BASE_URL") {
                if !u.trim().is_empty() {
                    urls.push(u.trim().to_string());
                }
            }
        }
        urls
    }

    /// The key from `api_key_env`, else `api_key_file`, else none (local servers need none).
    pub fn resolve_key(&self, base_dir: &Path) -> LlmResult<ApiKey> {
        if let Ok(k) = std::env::var(&self.api_key_env) {
            if !k.trim().is_empty() {
                return Ok(ApiKey::new(Some(k)));
            }
        }
        if !self.api_key_file.is_empty() {
            let p = crate::files::resolve(base_dir, &self.api_key_file);
            let k = std::fs::read_to_string(&p).map_err(|e| {
                LlmError::InvalidRequest(format!(
                    "cannot read the API key file {} ({e}); fix `api_key_file` or set {}",
                    p.display(),
                    self.api_key_env
                ))
            })?;
            return Ok(ApiKey::new(Some(k)));
        }
        Ok(ApiKey::new(None))
    }

    /// The configured price, if any.
    pub fn price(&self) -> Option<crate::llm::price::Price> {
        crate::llm::price::Price::from_config(self.prompt_price, self.generated_price)
    }

    pub fn transport_options(&self) -> TransportOptions {
        TransportOptions {
            max_in_flight: self.max_in_flight.max(1),
            timeout: Duration::try_from_secs_f64(self.timeout_secs.clamp(0.1, 86_400.0))
                .unwrap_or(Duration::from_secs(120)),
            max_retries: self.max_retries,
            backoff_base: Duration::from_millis(self.retry_base_ms.max(1)),
            ..Default::default()
        }
    }

    /// Checks what serde cannot, naming the backend.
    pub fn validate(&self, name: &str) -> Result<(), String> {
        if self.model.trim().is_empty() {
            return Err(format!(
                "`backends.{name}.model` is empty: name the model as the server knows it (its \
                 /v1/models lists them)"
            ));
        }
        for u in self.base_urls.iter().chain([&self.base_url]) {
            let authority = u.split_once("://").map_or("", |(_, r)| {
                &r[..r.find(['/', '?', '#']).unwrap_or(r.len())]
            });
            if authority.contains('@') {
                return Err(format!(
                    "`backends.{name}`: {}",
                    super::client::credentials_in_url(u)
                ));
            }
        }
        use crate::config::range::{count, positive, MAX_TOKENS};
        let key = |k: &str| format!("backends.{name}.{k}");
        positive(&key("timeout_secs"), self.timeout_secs, 86_400.0)?;
        count(&key("max_in_flight"), self.max_in_flight as u64, 1, 4096)?;
        count(
            &key("prompts_per_request"),
            self.prompts_per_request as u64,
            1,
            4096,
        )?;
        count(&key("max_retries"), self.max_retries.into(), 0, 1000)?;
        count(&key("retry_base_ms"), self.retry_base_ms, 0, 600_000)?;
        if let Some(c) = self.context_size {
            count(&key("context_size"), c.into(), 64, MAX_TOKENS)?;
        }
        crate::llm::price::Price::check(
            self.prompt_price,
            &format!("backends.{name}.prompt_price"),
        )?;
        crate::llm::price::Price::check(
            self.generated_price,
            &format!("backends.{name}.generated_price"),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_checks() {
        let c = OpenAiConfig::default();
        assert_eq!(c.api_key_env, "OPENAI_API_KEY");
        assert_eq!(c.max_in_flight, 8);
        assert!(c.validate("x").is_err());
        let c = OpenAiConfig {
            model: "m".into(),
            base_urls: vec!["http://a/v1".into(), " ".into()],
            base_url: "http://b/v1".into(),
            ..OpenAiConfig::default()
        };
        assert!(c.validate("x").is_ok());
        assert_eq!(c.resolved_base_urls(), vec!["http://a/v1".to_string()]);
    }
}
