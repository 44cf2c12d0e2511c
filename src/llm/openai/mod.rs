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

pub mod client;
pub mod probe;
pub mod wire;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::try_join_all;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use client::{ApiKey, Transport, TransportOptions};
pub use probe::{Capabilities, ScoringMode};
use wire::{
    parse_body, score_from_echo, score_from_prompt_logprobs, ChatMessageWire, ChatRequest,
    ChatResponse, CompletionRequest, CompletionResponse, SeamError,
};

use super::stop::find_stop;
use super::verbalizer_variants;
use super::{
    Backend, ClassDistribution, ClassifyRequest, GenerateRequest, Generation, LlmError, LlmResult,
    Prompt, Score, ScoreRequest, Usage, VerbalizerReduce,
};

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
            let p = if Path::new(&self.api_key_file).is_absolute() {
                PathBuf::from(&self.api_key_file)
            } else {
                base_dir.join(&self.api_key_file)
            };
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

    pub fn transport_options(&self) -> TransportOptions {
        TransportOptions {
            max_in_flight: self.max_in_flight.max(1),
            timeout: Duration::from_secs_f64(self.timeout_secs.max(0.1)),
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
        if self.max_in_flight == 0 {
            return Err(format!(
                "`backends.{name}.max_in_flight` must be at least 1"
            ));
        }
        if !(self.timeout_secs > 0.0) {
            return Err(format!("`backends.{name}.timeout_secs` must be positive"));
        }
        Ok(())
    }
}

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
        Ok(OpenAiBackend {
            transport,
            model,
            mode,
            caps,
            context_size: cfg.context_size.unwrap_or(default_context) as usize,
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

    /// The server's log-probabilities of the prompt `text`'s tokens, in the probed mode (one
    /// request; [`PromptScores::from`] reads any suffix of the prompt out of it).
    async fn prompt_scores(&self, text: &str) -> LlmResult<PromptScores> {
        let mut req = CompletionRequest::scoring(&self.model, text);
        match self.mode {
            ScoringMode::Echo => {
                req.echo = true;
                req.logprobs = Some(1);
                let mut resp = self.completion(&req).await?;
                Ok(PromptScores::Echo(resp.choices.swap_remove(0)))
            }
            ScoringMode::PromptLogprobs => {
                req.prompt_logprobs = Some(0);
                let resp = self.completion(&req).await?;
                let entries = resp.choices[0]
                    .prompt_logprobs
                    .clone()
                    .or(resp.prompt_logprobs)
                    .ok_or_else(|| {
                        LlmError::Backend(
                            "the server answered without `prompt_logprobs`; it was probed as \
                             supporting them (delete the probe cache in the data directory's \
                             openai-probe/ to probe again)"
                                .into(),
                        )
                    })?;
                Ok(PromptScores::Prompt(entries))
            }
            other => Err(LlmError::InvalidRequest(format!(
                "this server gives no prompt log-probabilities (scoring mode {}): free-text \
                 scores (hidden layers, the posterior prior, free-text answers) need a server \
                 with echo+logprobs or vLLM's prompt_logprobs; use a classification task with \
                 `train.include_prior = false` and one layer, or another server",
                other.name()
            ))),
        }
    }

    /// `log p(target | context)`, exactly: the target's tokens located by offset. When the
    /// server's tokenizer merges the context's end with the target's start into one token, the
    /// score is the difference of two exact prompt scores, `log p(tail + target | head) -
    /// log p(tail | head)` where `tail` is the context's part of the merged token.
    async fn score_one(&self, r: &ScoreRequest) -> LlmResult<Score> {
        if r.target.is_empty() {
            return Err(LlmError::EmptyTarget);
        }
        if r.context.is_empty() {
            return Err(LlmError::InvalidRequest(
                "an HTTP server gives no log-probability for the first token of a prompt: \
                 scoring needs a non-empty context"
                    .into(),
            ));
        }
        let text = format!("{}{}", r.context, r.target);
        let joint = self.prompt_scores(&text).await?;
        let out = match joint.from(&text, r.context.len())? {
            Ok(s) => s,
            Err(SeamError::Merged { at }) => {
                let whole = joint.from(&text, at)?;
                let tail = self.prompt_scores(&r.context).await?.from(&r.context, at)?;
                match (whole, tail) {
                    (Ok(mut w), Ok(t)) => {
                        if let Some(first) = w.token_logprobs.first_mut() {
                            *first -= t.logprob;
                        }
                        w.logprob -= t.logprob;
                        w
                    }
                    _ => {
                        return Err(LlmError::Backend(format!(
                            "cannot locate the target's tokens in the server's tokenization \
                             of {:?}",
                            cut(&text)
                        )))
                    }
                }
            }
            Err(e) => {
                return Err(LlmError::Backend(format!(
                    "cannot locate the target's tokens ({e:?}) in the server's tokenization of \
                     {:?}",
                    cut(&text)
                )))
            }
        };
        Ok(out)
    }

    async fn generate_one(&self, r: &GenerateRequest, j: u32) -> LlmResult<Generation> {
        let seed = sample_seed(r.seed, j);
        let temperature = r.temperature.max(0.0);
        let top_p = (temperature > 0.0 && r.top_p < 1.0).then_some(r.top_p);
        let use_chat = matches!(r.prompt, Prompt::Chat { .. }) || self.caps.chat_only;
        // Stops are sent to the server (it stops early, which is what makes them cheap); a
        // stop that fired inside the output's leading whitespace is not one by dln's rule, so
        // such an answer is asked again without stops and cut here.
        for with_stops in [true, false] {
            let stop = if with_stops {
                r.stop.clone()
            } else {
                Vec::new()
            };
            let (text, tokens, finish) = if use_chat {
                let (messages, prefix) = chat_messages(&r.prompt);
                let resp = self
                    .chat(&ChatRequest {
                        model: self.model.clone(),
                        messages,
                        max_tokens: r.max_tokens.max(1),
                        temperature,
                        top_p,
                        seed: Some(seed),
                        stop,
                        logprobs: false,
                        top_logprobs: None,
                    })
                    .await?;
                let c = &resp.choices[0];
                let mut text = c.message.content.clone().unwrap_or_default();
                // The answer may repeat the assistant prefix it was asked to continue.
                if !prefix.is_empty() {
                    if let Some(rest) = text.trim_start().strip_prefix(prefix.trim()) {
                        text = rest.to_string();
                    }
                }
                let tokens = resp.usage.map(|u| u.completion_tokens as u32).unwrap_or(0);
                (text, tokens, c.finish_reason.clone())
            } else {
                let Prompt::Raw { text: prompt } = &r.prompt else {
                    return Err(LlmError::InvalidRequest("expected a raw prompt".into()));
                };
                let resp = self
                    .completion(&CompletionRequest {
                        model: self.model.clone(),
                        prompt: Value::String(prompt.clone()),
                        max_tokens: r.max_tokens.max(1),
                        temperature,
                        top_p,
                        seed: Some(seed),
                        stop,
                        echo: false,
                        logprobs: None,
                        prompt_logprobs: None,
                    })
                    .await?;
                let c = &resp.choices[0];
                let tokens = resp.usage.map(|u| u.completion_tokens as u32).unwrap_or(0);
                (c.text.clone(), tokens, c.finish_reason.clone())
            };
            let stopped_in_lead = with_stops
                && !r.stop.is_empty()
                && finish.as_deref() == Some("stop")
                && text.trim().is_empty();
            if stopped_in_lead {
                continue;
            }
            let mut text = text;
            if let Some(cut) = find_stop(&text, &r.stop, 0) {
                text.truncate(cut);
            }
            return Ok(Generation {
                text,
                tokens,
                token_logprobs: None,
            });
        }
        Err(LlmError::Backend(
            "generation gave no answer after asking without stop strings".into(),
        ))
    }

    /// A class distribution from a generated answer (servers without log-probabilities): the
    /// class whose verbalizer the answer starts with gets almost all the mass; no match is
    /// uniform.
    async fn classify_by_generation(&self, r: &ClassifyRequest) -> LlmResult<ClassDistribution> {
        let longest = r
            .classes
            .iter()
            .flatten()
            .map(|v| v.len())
            .max()
            .unwrap_or(1);
        let g = self
            .generate_one(
                &GenerateRequest::greedy(
                    Prompt::raw(r.context.clone()),
                    (longest as u32 / 2 + 4).min(32),
                    vec!["\n".into()],
                ),
                0,
            )
            .await?;
        let answer = crate::loss::normalize_answer(&g.text);
        let hit = r.classes.iter().position(|vs| {
            vs.iter().any(|v| {
                let v = crate::loss::normalize_answer(v);
                !v.is_empty() && (answer == v || answer.starts_with(&format!("{v} ")))
            })
        });
        let k = r.classes.len();
        let masses: Vec<f64> = (0..k)
            .map(|c| match hit {
                Some(h) if h == c => 0.0,
                Some(_) => -20.0,
                None => 0.0,
            })
            .collect();
        Ok(ClassDistribution::from_log_masses(&masses))
    }

    /// A class distribution from the top log-probabilities of the first answer token: each
    /// verbalizer variant's mass is the top entry that starts it (approximate for multi-token
    /// labels, which share their first token's mass); classes missing from the top-k get less
    /// than the smallest listed entry.
    async fn classify_by_top(&self, r: &ClassifyRequest) -> LlmResult<ClassDistribution> {
        let mut req = CompletionRequest::scoring(&self.model, &r.context);
        req.logprobs = self.caps.top_logprobs;
        let resp = self.completion(&req).await?;
        let top = wire::first_position_top(&resp.choices[0])?;
        let floor = top.iter().map(|(_, v)| *v).fold(0.0f64, f64::min) - 1.0;
        let masses: Vec<f64> = r
            .classes
            .iter()
            .map(|vs| {
                let mut lps = Vec::new();
                for variant in verbalizer_variants(vs) {
                    let best = top
                        .iter()
                        .filter(|(k, _)| !k.trim().is_empty() && variant.starts_with(k.as_str()))
                        .max_by_key(|(k, _)| k.len())
                        .map(|(_, v)| *v);
                    if let Some(v) = best {
                        if !lps.contains(&v) {
                            lps.push(v);
                        }
                    }
                }
                if lps.is_empty() {
                    floor
                } else {
                    reduce(&lps, r.reduce)
                }
            })
            .collect();
        Ok(ClassDistribution::from_log_masses(&masses))
    }
}

/// One answer with a prompt's log-probabilities.
enum PromptScores {
    Echo(wire::CompletionChoice),
    Prompt(Vec<Option<serde_json::Map<String, Value>>>),
}

impl PromptScores {
    /// The score of the prompt's tokens from byte `from` on (`text` is the prompt sent).
    fn from(&self, text: &str, from: usize) -> LlmResult<Result<Score, SeamError>> {
        match self {
            PromptScores::Echo(c) => score_from_echo(c, text, from),
            PromptScores::Prompt(e) => score_from_prompt_logprobs(e, text, from),
        }
    }
}

/// A chat prompt's messages for `/chat/completions`. The assistant prefix (which the embedded
/// engine writes into the assistant turn) cannot be pre-filled through the standard API, so it
/// closes the last user message instead; the answer is stripped of it if the model repeats it.
fn chat_messages(p: &Prompt) -> (Vec<ChatMessageWire>, String) {
    match p {
        Prompt::Raw { text } => (
            vec![ChatMessageWire {
                role: "user".into(),
                content: text.clone(),
            }],
            String::new(),
        ),
        Prompt::Chat {
            messages,
            assistant_prefix,
        } => {
            let mut out: Vec<ChatMessageWire> = messages
                .iter()
                .map(|m| ChatMessageWire {
                    role: m.role.clone(),
                    content: m.content.clone(),
                })
                .collect();
            if !assistant_prefix.trim().is_empty() {
                match out.iter_mut().rev().find(|m| m.role == "user") {
                    Some(m) => {
                        m.content.push_str("\n\n");
                        m.content.push_str(assistant_prefix.trim());
                    }
                    None => out.push(ChatMessageWire {
                        role: "user".into(),
                        content: assistant_prefix.trim().to_string(),
                    }),
                }
            }
            (out, assistant_prefix.clone())
        }
    }
}

/// The seed of sample `j` of a request: its own stream per `(seed, j)`, in the range every
/// server accepts (non-negative 31-bit).
fn sample_seed(seed: u64, j: u32) -> u64 {
    let mut z = seed ^ (u64::from(j)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) & 0x7FFF_FFFF
}

fn reduce(lps: &[f64], how: VerbalizerReduce) -> f64 {
    match how {
        VerbalizerReduce::Max => lps.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        VerbalizerReduce::Sum => {
            let m = lps.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            if m == f64::NEG_INFINITY {
                return m;
            }
            m + lps.iter().map(|l| (l - m).exp()).sum::<f64>().ln()
        }
    }
}

fn cut(s: &str) -> String {
    let n = s.chars().count();
    if n <= 80 {
        s.to_string()
    } else {
        let tail: String = s.chars().skip(n - 80).collect();
        format!("…{tail}")
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

    fn context_size(&self) -> usize {
        self.context_size
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
        let scores =
            in_prefix_order(&requests, |r| r.context.as_str(), |r| self.score_one(r)).await?;
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
                // Every verbalizer variant of every class scored exactly after its context.
                let mut items = Vec::new();
                let mut owner = Vec::new();
                for (i, r) in requests.iter().enumerate() {
                    for (c, vs) in r.classes.iter().enumerate() {
                        for v in verbalizer_variants(vs) {
                            items.push(ScoreRequest {
                                context: r.context.clone(),
                                target: v,
                            });
                            owner.push((i, c));
                        }
                    }
                }
                let scores =
                    in_prefix_order(&items, |r| r.context.as_str(), |r| self.score_one(r)).await?;
                let mut masses: Vec<Vec<Vec<f64>>> = requests
                    .iter()
                    .map(|r| vec![Vec::new(); r.classes.len()])
                    .collect();
                for ((i, c), s) in owner.into_iter().zip(scores) {
                    masses[i][c].push(s.logprob);
                }
                requests
                    .iter()
                    .zip(masses)
                    .map(|(r, m)| {
                        let lm: Vec<f64> = m.iter().map(|l| reduce(l, r.reduce)).collect();
                        ClassDistribution::from_log_masses(&lm)
                    })
                    .collect()
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
    fn sample_seeds_differ_per_sample_and_fit_31_bits() {
        let a = sample_seed(42, 0);
        let b = sample_seed(42, 1);
        assert_ne!(a, b);
        assert_eq!(a, sample_seed(42, 0));
        assert!(a < (1 << 31) && b < (1 << 31));
    }

    #[test]
    fn batches_go_out_grouped_by_prefix() {
        let items = ["b: x", "a: y", "b: w", "a: z"];
        let order = prefix_order(&items, |s| s);
        let sent: Vec<&str> = order.iter().map(|i| items[*i]).collect();
        assert_eq!(sent, vec!["a: y", "a: z", "b: w", "b: x"]);
    }

    #[test]
    fn chat_prompts_close_the_user_turn_with_the_prefix() {
        let p = Prompt::Chat {
            messages: vec![crate::llm::ChatMessage {
                role: "user".into(),
                content: "Improve this.".into(),
            }],
            assistant_prefix: "New instruction:".into(),
        };
        let (m, prefix) = chat_messages(&p);
        assert_eq!(m.len(), 1);
        assert!(m[0].content.ends_with("\n\nNew instruction:"));
        assert_eq!(prefix, "New instruction:");
    }

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
