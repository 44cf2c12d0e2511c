//! The LLM engine: the one interface the whole core calls (`Backend`), with batch operations.
//!
//! Every backend (the embedded llama.cpp engine, an OpenAI-compatible server, the persistent call
//! cache wrapping either, the scripted backend of the unit tests) implements [`Backend`].

pub mod cache;
pub mod embedded;
pub mod hold;
pub mod layer;
pub mod model;
pub mod openai;
pub mod price;
pub mod scripted;
pub mod stop;
mod verbalizer;

pub use verbalizer::{
    fold_classes, verbalizer_items, verbalizer_variants, ClassDistribution, ClassifyRequest,
    VerbalizerItem, VerbalizerReduce,
};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Errors an LLM backend reports. Messages are meant for the user: they say what to do.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the text needs {needed} tokens but the model's context holds {available}; shorten the prompt or raise `context_size`")]
    ContextOverflow { needed: usize, available: usize },
    #[error("empty target: a score needs at least one target token")]
    EmptyTarget,
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("model error: {0}")]
    Model(String),
    #[error("the model worker stopped: {0}")]
    WorkerGone(String),
    #[error("{0}")]
    Backend(String),
    /// The server could not be reached or kept failing (down, 5xx, timeouts) after every retry:
    /// worth trying again later, unlike a refusal (bad key, wrong model, too long a prompt).
    #[error("{0}")]
    Unavailable(String),
}

impl LlmError {
    /// Whether the failure may pass by itself (the server was down or overloaded), so a run
    /// should wait for a person (or a later `dln resume`) rather than end.
    pub fn is_transient(&self) -> bool {
        matches!(self, LlmError::Unavailable(_))
    }
}

pub type LlmResult<T> = Result<T, LlmError>;

/// One chat message, for generation inside the model's own chat format.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// What the model continues: raw completion text, or a conversation wrapped in the model's chat
/// template with the start of the assistant's answer already written (`assistant_prefix`), so a
/// small instruct model continues the answer itself instead of talking about it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Prompt {
    Raw {
        text: String,
    },
    Chat {
        messages: Vec<ChatMessage>,
        assistant_prefix: String,
    },
}

impl Prompt {
    pub fn raw(text: impl Into<String>) -> Self {
        Prompt::Raw { text: text.into() }
    }
}

/// A generation request: `n` samples of a continuation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    pub prompt: Prompt,
    /// 0 means greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub max_tokens: u32,
    /// Generation stops before the first occurrence of any of these after the output's leading
    /// whitespace (a stop inside a leading blank line does not end an answer that has not begun);
    /// the stop string is not returned.
    pub stop: Vec<String>,
    pub seed: u64,
    pub n: u32,
}

impl GenerateRequest {
    pub fn greedy(prompt: Prompt, max_tokens: u32, stop: Vec<String>) -> Self {
        GenerateRequest {
            prompt,
            temperature: 0.0,
            top_p: 1.0,
            max_tokens,
            stop,
            seed: 0,
            n: 1,
        }
    }
}

/// One generated sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    pub text: String,
    /// Tokens generated (including a stop string's tokens that were cut off).
    pub tokens: u32,
    /// Log-probabilities of the generated tokens under the sampling distribution's model, where
    /// the backend has them.
    pub token_logprobs: Option<Vec<f64>>,
    /// Ended by `max_tokens` (or the context's end), not by a stop string or the model's end of
    /// turn: the text is what was generated so far, not a finished answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cut: bool,
}

/// `log p(target | context)`, raw completion text on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ScoreRequest {
    pub context: String,
    pub target: String,
}

/// An exact score: the sum, the per-token values, the token count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub logprob: f64,
    pub token_logprobs: Vec<f64>,
    pub tokens: u32,
}

impl Score {
    /// Mean log-prob per token, skipping the first `burn_in` fraction of the tokens (the
    /// reference's 5% burn-in for free-text targets).
    pub fn mean_logprob(&self, burn_in: f64) -> f64 {
        let n = self.token_logprobs.len();
        if n == 0 {
            return 0.0;
        }
        let skip = ((n as f64) * burn_in).floor() as usize;
        let skip = skip.min(n - 1);
        let rest = &self.token_logprobs[skip..];
        rest.iter().sum::<f64>() / rest.len() as f64
    }
}

/// Work counters of a backend, cumulative since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens run through the model (prompt processing).
    pub tokens_computed: u64,
    /// Tokens whose KV came from the prefix cache instead of being recomputed.
    pub tokens_reused: u64,
    /// Tokens sampled.
    pub tokens_generated: u64,
    /// Requests served (one per generate/score/classify item).
    pub calls: u64,
    /// Requests answered from the persistent call cache.
    pub cache_hits: u64,
    /// What the tokens sent to the model and generated by it cost at the backend's configured
    /// price (`price::Price`); cache hits cost nothing. 0 (and absent from files) when no
    /// price is set.
    #[serde(default, skip_serializing_if = "price::is_free")]
    pub cost: f64,
}

impl Usage {
    pub fn add(&mut self, o: &Usage) {
        self.tokens_computed += o.tokens_computed;
        self.tokens_reused += o.tokens_reused;
        self.tokens_generated += o.tokens_generated;
        self.calls += o.calls;
        self.cache_hits += o.cache_hits;
        self.cost += o.cost;
    }

    /// Tokens a hosted API bills: every prompt token (computed or reused from a prefix cache)
    /// and every generated one; answers from the call cache are free.
    pub fn billed_tokens(&self) -> u64 {
        self.tokens_computed + self.tokens_reused + self.tokens_generated
    }

    /// Most of these calls were answered from the call cache: what they took says nothing of
    /// the same work computed (a rerun iteration's stages).
    pub fn mostly_cached(&self) -> bool {
        self.cache_hits * 2 > self.calls
    }

    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            tokens_computed: self.tokens_computed - earlier.tokens_computed,
            tokens_reused: self.tokens_reused - earlier.tokens_reused,
            tokens_generated: self.tokens_generated - earlier.tokens_generated,
            calls: self.calls - earlier.calls,
            cache_hits: self.cache_hits - earlier.cache_hits,
            cost: (self.cost - earlier.cost).max(0.0),
        }
    }
}

/// The interface every LLM backend provides. All operations take batches: a backend organises a
/// batch as it likes (the embedded one as a prefix tree, a server concurrently).
#[async_trait]
pub trait Backend: Send + Sync {
    /// Identity of the model and its settings, used as part of the call cache key.
    fn model_id(&self) -> String;
    /// Whether `score`/`classify` give real log-probabilities.
    fn has_logprobs(&self) -> bool {
        true
    }
    /// The context window in tokens.
    fn context_size(&self) -> usize;
    /// Whether the requests of a batch are answered independently (an HTTP server) rather than
    /// as one computation (the embedded engine's prefix tree): the call cache then sends them
    /// one by one, concurrently, and stores each answer as it arrives, so a batch cut short by
    /// a failure keeps what was answered and a resumed run re-sends none of it.
    fn answers_independently(&self) -> bool {
        false
    }
    /// How many requests of a `score` or `classify` batch a backend that answers independently
    /// takes in one call: it packs them into one server request (several prompts in one
    /// `/v1/completions` body), so the call cache hands them over in chunks of this size and
    /// stores each chunk's answers as it arrives. 1 (the default) is one request per call.
    fn requests_per_call(&self) -> usize {
        1
    }
    /// `n` samples per request, in request order.
    async fn generate(&self, requests: Vec<GenerateRequest>) -> LlmResult<Vec<Vec<Generation>>>;
    async fn score(&self, requests: Vec<ScoreRequest>) -> LlmResult<Vec<Score>>;
    async fn classify(&self, requests: Vec<ClassifyRequest>) -> LlmResult<Vec<ClassDistribution>>;
    async fn count_tokens(&self, text: &str) -> LlmResult<usize>;
    fn usage(&self) -> Usage;
    /// The text a model continues from for a chat prompt: the conversation in the model's own
    /// chat format with the assistant turn opened, then `assistant_prefix`. What lets a forward
    /// template be a chat template and still be scored exactly (as raw text). Backends that
    /// render chats out of sight (a server) cannot.
    fn chat_text(&self, messages: &[ChatMessage], assistant_prefix: &str) -> LlmResult<String> {
        let _ = (messages, assistant_prefix);
        Err(LlmError::InvalidRequest(format!(
            "{} renders chat prompts out of sight and cannot give their text, so a forward \
             template with `chat = true` cannot be scored on it; use a raw-text forward template \
             (`chat = false`)",
            self.model_id()
        )))
    }
    /// Requests answered so far, read while a batch runs so that a stage's progress moves as
    /// each request finishes (fractional while a request of several scoring items is partly
    /// done). The default is the calls counted in [`usage`](Self::usage), right for a backend
    /// that counts each call as it is answered.
    fn answered(&self) -> f64 {
        self.usage().calls as f64
    }
    /// The address of the engine whose counters [`usage`](Self::usage) reports, when this
    /// backend wraps one; `None` for an engine itself. Handles that reach one engine through
    /// different wrappers (a priced name and the bare file) count its tokens once
    /// ([`engine_of`]).
    fn engine(&self) -> Option<*const ()> {
        None
    }
    /// Holds the backend (`true`) or releases it: while held, no new decode step or request
    /// starts ([`hold`]); a call in progress waits there and carries on when released. A pause
    /// inside a stage holds the run's backends so that it takes effect at once.
    fn hold(&self, held: bool) {
        let _ = held;
    }
    /// Whether the backend computes nothing now: every call in progress has ended or waits for
    /// the hold's release (a held engine between decode steps, no request in flight). The
    /// driver announces a pause once its backends are quiet.
    fn is_quiet(&self) -> bool {
        true
    }
}

/// The engine a shared backend reaches: the same address for every wrapper around it.
pub fn engine_of(backend: &SharedBackend) -> *const () {
    backend
        .engine()
        .unwrap_or(std::sync::Arc::as_ptr(backend) as *const ())
}

/// The sum of the counters of the engines `backends` reach, each engine counted once: handles
/// that reach one engine through different wrappers (a priced backend name and the same GGUF
/// named bare) report the same tokens, and the one that also prices them is kept.
pub fn engines_usage<'a>(backends: impl IntoIterator<Item = &'a SharedBackend>) -> Usage {
    let mut engines: Vec<(*const (), Usage)> = Vec::new();
    for b in backends {
        let engine = engine_of(b);
        let u = b.usage();
        match engines.iter_mut().find(|(e, _)| *e == engine) {
            Some((_, seen)) if u.cost > seen.cost => *seen = u,
            Some(_) => {}
            None => engines.push((engine, u)),
        }
    }
    let mut total = Usage::default();
    for (_, u) in &engines {
        total.add(u);
    }
    total
}

pub use layer::BackendLayer;

pub type SharedBackend = std::sync::Arc<dyn Backend>;
