//! A backend speaking the OpenAI HTTP API (`/v1/completions`, `/v1/chat/completions`): vLLM,
//! llama.cpp servers, Ollama, LM Studio and hosted OpenAI-compatible APIs.
//!
//! Scoring is as exact as the server allows ([`ScoringMode`], chosen by the [`probe`] when the
//! backend connects): `log p(target | context)` from echoed prompt log-probabilities (or vLLM's
//! `prompt_logprobs`) with the target's tokens located by their offsets; classes by scoring
//! every verbalizer variant exactly after the context (multi-token labels too); first-token top
//! log-probabilities where that is all there is; and plain generation (accuracy) where there are
//! no log-probabilities at all.
//!
//! Every batch is sent concurrently (bounded by `max_in_flight`), ordered so that requests
//! sharing a prefix go out together for the server's prefix cache. The call cache
//! ([`crate::llm::cache::CachedBackend`]) wraps this backend exactly as it wraps the embedded one.
//!
//! Files by job: `config` (the `[backends.NAME]` table), `score` (exact prompt scores),
//! `generate` (samples), `classify` (class distributions per scoring mode); this one connects and
//! implements [`Backend`] by sending each batch through them.

mod classify;
pub mod client;
mod config;
mod generate;
pub mod probe;
mod score;
pub mod wire;

use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use futures::future::try_join_all;
use serde::{Deserialize, Serialize};

pub use client::{ApiKey, Transport, TransportOptions};
pub use config::OpenAiConfig;
pub use probe::{Capabilities, ScoringMode};
use wire::{parse_body, ChatRequest, ChatResponse, CompletionRequest, CompletionResponse};

use super::{
    Backend, ClassDistribution, ClassifyRequest, GenerateRequest, Generation, LlmError, LlmResult,
    Score, ScoreRequest, Usage,
};

/// What a connected backend reports about itself (for the run's events and the UI).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectReport {
    pub base_urls: Vec<String>,
    pub model: String,
    pub capabilities: Capabilities,
    pub scoring: ScoringMode,
    /// Whether the capabilities came from the probe cache.
    pub cached_probe: bool,
}

impl ConnectReport {
    /// One line: server, model, mode and why.
    pub fn line(&self) -> String {
        format!(
            "{} model {}: scoring by {} (server supports {}{})",
            self.base_urls.join(", "),
            self.model,
            self.scoring.name(),
            self.capabilities.summary(),
            if self.cached_probe {
                "; probe cached"
            } else {
                ""
            }
        )
    }
}

/// The OpenAI-compatible backend.
pub struct OpenAiBackend {
    transport: Transport,
    model: String,
    mode: ScoringMode,
    caps: Capabilities,
    context_size: usize,
    /// Prompts per scoring request: `prompts_per_request` where the server answers arrays of
    /// prompts, else 1.
    prompts_per_request: usize,
    usage: Mutex<Usage>,
    report: ConnectReport,
}

impl std::fmt::Debug for OpenAiBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiBackend")
            .field("base_urls", &self.transport.base_urls())
            .field("model", &self.model)
            .field("mode", &self.mode)
            .finish()
    }
}

impl OpenAiBackend {
    /// Connects: resolves URL and key, probes the server (or reads the probe cached in
    /// `probe_cache`), and picks the scoring mode.
    pub async fn connect(
        cfg: &OpenAiConfig,
        base_dir: &Path,
        default_context: u32,
        probe_cache: Option<&Path>,
    ) -> LlmResult<OpenAiBackend> {
        let urls = cfg.resolved_base_urls();
        let key = cfg.resolve_key(base_dir)?;
        let transport = Transport::new(&urls, key, cfg.transport_options())?;
        let model = cfg.model.trim().to_string();
        if model.is_empty() {
            return Err(LlmError::InvalidRequest(
                "the HTTP backend has no `model`: name the model as the server knows it".into(),
            ));
        }
        let cached = probe_cache.and_then(|d| probe::load_cached(d, transport.base_url(), &model));
        let cached_probe = cached.is_some();
        let caps = match cached {
            Some(c) => c,
            None => {
                let c = probe::probe(&transport, &model).await?;
                if let Some(d) = probe_cache {
                    probe::store_cached(d, transport.base_url(), &model, &c);
                }
                c
            }
        };
        let mode = ScoringMode::choose(cfg.scoring, &caps)?;
        let report = ConnectReport {
            base_urls: transport.base_urls(),
            model: model.clone(),
            capabilities: caps.clone(),
            scoring: mode,
            cached_probe,
        };
        tracing::info!("HTTP backend: {}", report.line());
        let prompts_per_request = per_request(cfg, &caps);
        Ok(OpenAiBackend {
            transport,
            model,
            mode,
            caps,
            context_size: cfg.context_size.unwrap_or(default_context) as usize,
            prompts_per_request,
            usage: Mutex::new(Usage::default()),
            report,
        })
    }

    /// A backend with known capabilities, no probe (tests, and callers that probed already).
    pub fn with_capabilities(
        cfg: &OpenAiConfig,
        key: ApiKey,
        caps: Capabilities,
        context_size: usize,
    ) -> LlmResult<OpenAiBackend> {
        let transport = Transport::new(&cfg.resolved_base_urls(), key, cfg.transport_options())?;
        let mode = ScoringMode::choose(cfg.scoring, &caps)?;
        let report = ConnectReport {
            base_urls: transport.base_urls(),
            model: cfg.model.clone(),
            capabilities: caps.clone(),
            scoring: mode,
            cached_probe: false,
        };
        Ok(OpenAiBackend {
            transport,
            model: cfg.model.clone(),
            mode,
            prompts_per_request: per_request(cfg, &caps),
            caps,
            context_size,
            usage: Mutex::new(Usage::default()),
            report,
        })
    }

    pub fn report(&self) -> &ConnectReport {
        &self.report
    }

    pub fn scoring_mode(&self) -> ScoringMode {
        self.mode
    }

    /// HTTP attempts made and retries among them.
    pub fn attempts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        (
            self.transport.stats.requests.load(Ordering::Relaxed),
            self.transport.stats.retries.load(Ordering::Relaxed),
        )
    }

    fn add_usage(&self, prompt: u64, generated: u64, calls: u64) {
        if let Ok(mut u) = self.usage.lock() {
            u.tokens_computed += prompt;
            u.tokens_generated += generated;
            u.calls += calls;
        }
    }

    async fn completion(&self, req: &CompletionRequest) -> LlmResult<CompletionResponse> {
        let body = self.transport.post("/completions", req).await?;
        let resp: CompletionResponse = parse_body(&body, "/completions")?;
        if resp.choices.is_empty() {
            return Err(LlmError::Backend(
                "the server answered /completions with no choices".into(),
            ));
        }
        if let Some(u) = resp.usage {
            self.add_usage(u.prompt_tokens, u.completion_tokens, 0);
        }
        Ok(resp)
    }

    async fn chat(&self, req: &ChatRequest) -> LlmResult<ChatResponse> {
        let body = self.transport.post("/chat/completions", req).await?;
        let resp: ChatResponse = parse_body(&body, "/chat/completions")?;
        if resp.choices.is_empty() {
            return Err(LlmError::Backend(
                "the server answered /chat/completions with no choices".into(),
            ));
        }
        if let Some(u) = resp.usage {
            self.add_usage(u.prompt_tokens, u.completion_tokens, 0);
        }
        Ok(resp)
    }
}

/// Prompts per scoring request: the configured number where the server answers prompt arrays,
/// else one.
fn per_request(cfg: &OpenAiConfig, caps: &Capabilities) -> usize {
    if caps.prompt_arrays {
        cfg.prompts_per_request.max(1)
    } else {
        1
    }
}

/// Orders a batch so that prompts sharing a prefix are sent together (the server's prefix
/// cache then reuses them); returns the indices in sending order.
fn prefix_order<T>(items: &[T], key: impl Fn(&T) -> &str) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..items.len()).collect();
    idx.sort_by(|a, b| key(&items[*a]).cmp(key(&items[*b])));
    idx
}

/// Runs `f` on every item in prefix order, concurrently (the transport bounds how many are in
/// flight), and returns the answers in the items' order.
async fn in_prefix_order<'a, T, R, F, Fut>(
    items: &'a [T],
    key: impl Fn(&T) -> &str,
    f: F,
) -> LlmResult<Vec<R>>
where
    F: Fn(&'a T) -> Fut,
    Fut: std::future::Future<Output = LlmResult<R>>,
{
    let order = prefix_order(items, key);
    let answers = try_join_all(order.iter().map(|i| f(&items[*i]))).await?;
    let mut out: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    for (i, a) in order.into_iter().zip(answers) {
        out[i] = Some(a);
    }
    out.into_iter()
        .map(|o| o.ok_or_else(|| LlmError::Backend("lost an answer".into())))
        .collect()
}

#[async_trait]
impl Backend for OpenAiBackend {
    fn model_id(&self) -> String {
        // The server and model, not the key: the call cache keys on this.
        format!(
            "openai:{}@{}:{}",
            self.model,
            self.transport.base_url(),
            self.mode.name()
        )
    }

    fn has_logprobs(&self) -> bool {
        self.mode.scores_text()
    }

    fn answers_independently(&self) -> bool {
        true
    }

    fn requests_per_call(&self) -> usize {
        self.prompts_per_request
    }

    fn context_size(&self) -> usize {
        self.context_size
    }

    fn hold(&self, held: bool) {
        self.transport.hold.set(held);
    }

    fn is_quiet(&self) -> bool {
        self.transport.hold.is_quiet()
    }

    async fn generate(&self, requests: Vec<GenerateRequest>) -> LlmResult<Vec<Vec<Generation>>> {
        let jobs: Vec<(usize, u32, String)> = requests
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                let key = serde_json::to_string(&r.prompt).unwrap_or_default();
                (0..r.n.max(1)).map(move |j| (i, j, key.clone()))
            })
            .collect();
        let samples = in_prefix_order(
            &jobs,
            |(_, _, k)| k.as_str(),
            |(i, j, _)| self.generate_one(&requests[*i], *j),
        )
        .await?;
        let mut out: Vec<Vec<Generation>> = requests.iter().map(|_| Vec::new()).collect();
        for ((i, _, _), g) in jobs.iter().zip(samples) {
            out[*i].push(g);
        }
        self.add_usage(0, 0, requests.len() as u64);
        Ok(out)
    }

    async fn score(&self, requests: Vec<ScoreRequest>) -> LlmResult<Vec<Score>> {
        let scores = self.score_many(&requests).await?;
        self.add_usage(0, 0, requests.len() as u64);
        Ok(scores)
    }

    async fn classify(&self, requests: Vec<ClassifyRequest>) -> LlmResult<Vec<ClassDistribution>> {
        for r in &requests {
            if r.classes.is_empty() {
                return Err(LlmError::InvalidRequest(
                    "classify needs at least one class".into(),
                ));
            }
            if let Some(c) = r.classes.iter().position(|v| v.is_empty()) {
                return Err(LlmError::InvalidRequest(format!(
                    "class {c} has no verbalizer"
                )));
            }
        }
        let out = match self.mode {
            ScoringMode::Echo | ScoringMode::PromptLogprobs => {
                self.classify_exact(&requests).await?
            }
            ScoringMode::TopLogprobs => {
                in_prefix_order(
                    &requests,
                    |r| r.context.as_str(),
                    |r| self.classify_by_top(r),
                )
                .await?
            }
            ScoringMode::Auto | ScoringMode::None => {
                in_prefix_order(
                    &requests,
                    |r| r.context.as_str(),
                    |r| self.classify_by_generation(r),
                )
                .await?
            }
        };
        self.add_usage(0, 0, requests.len() as u64);
        Ok(out)
    }

    /// The server's own count (`usage.prompt_tokens` of a one-token completion).
    async fn count_tokens(&self, text: &str) -> LlmResult<usize> {
        let resp = self
            .completion(&CompletionRequest::scoring(&self.model, text))
            .await?;
        resp.usage.map(|u| u.prompt_tokens as usize).ok_or_else(|| {
            LlmError::Backend("the server reports no token usage; it cannot count tokens".into())
        })
    }

    fn usage(&self) -> Usage {
        self.usage.lock().map(|u| *u).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_go_out_grouped_by_prefix() {
        let items = ["b: x", "a: y", "b: w", "a: z"];
        let order = prefix_order(&items, |s| s);
        let sent: Vec<&str> = order.iter().map(|i| items[*i]).collect();
        assert_eq!(sent, vec!["a: y", "a: z", "b: w", "b: x"]);
    }
}
