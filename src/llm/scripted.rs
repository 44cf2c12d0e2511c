//! A deterministic fake backend for the unit tests of the training loop's arithmetic.
//!
//! Every answer is a pure function of the request (a hash by default, or a rule the test gives),
//! so a test knows exactly which numbers the loop must compute. It never stands in for a model
//! anywhere else.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::{
    Backend, ClassDistribution, ClassifyRequest, GenerateRequest, Generation, LlmError, LlmResult,
    Score, ScoreRequest, Usage,
};

type GenerateRule = Arc<dyn Fn(&GenerateRequest, u32) -> String + Send + Sync>;
type ScoreRule = Arc<dyn Fn(&ScoreRequest) -> Vec<f64> + Send + Sync>;
type ClassifyRule = Arc<dyn Fn(&ClassifyRequest) -> Vec<f64> + Send + Sync>;

/// One request the backend saw, for assertions.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptedCall {
    Generate(GenerateRequest),
    Score(ScoreRequest),
    Classify(ClassifyRequest),
}

/// The scripted backend. Clones share the call log and counters.
#[derive(Clone)]
pub struct ScriptedBackend {
    context_size: usize,
    logprobs: bool,
    generate: GenerateRule,
    score: ScoreRule,
    classify: ClassifyRule,
    calls: Arc<Mutex<Vec<ScriptedCall>>>,
    /// The number of requests of each `score` call, in order.
    score_batches: Arc<Mutex<Vec<usize>>>,
    usage: Arc<Mutex<Usage>>,
    /// Simulated latency of every batch call (lets tests act while a stage runs).
    delay: std::time::Duration,
    /// Set by a pause: calls wait before answering until it is released.
    hold: Arc<super::hold::Hold>,
}

/// A stable number in [0, 1) from any text.
pub fn unit_hash(text: &str) -> f64 {
    let d = Sha256::digest(text.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// Whitespace tokens: the scripted backend's notion of a token.
fn tokens_of(text: &str) -> usize {
    text.split_whitespace().count()
}

impl Default for ScriptedBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl ScriptedBackend {
    /// Hash-based answers: generation `"text-<n>"` numbered by a hash of the prompt and sample,
    /// token log-probs in (−2, 0], class masses from a hash of the context and class.
    pub fn new() -> Self {
        ScriptedBackend {
            context_size: 4096,
            logprobs: true,
            generate: Arc::new(|r, s| {
                let key = format!("{:?}|{}|{}|{}", r.prompt, r.seed, r.temperature, s);
                format!("text-{}", (unit_hash(&key) * 1000.0) as u32)
            }),
            score: Arc::new(|r| {
                let n = tokens_of(&r.target).max(1);
                (0..n)
                    .map(|i| -2.0 * unit_hash(&format!("{}|{}|{i}", r.context, r.target)))
                    .collect()
            }),
            classify: Arc::new(|r| {
                (0..r.classes.len())
                    .map(|c| -3.0 * unit_hash(&format!("{}|{c}", r.context)))
                    .collect()
            }),
            calls: Arc::default(),
            score_batches: Arc::default(),
            usage: Arc::default(),
            delay: std::time::Duration::ZERO,
            hold: Arc::default(),
        }
    }

    pub fn with_context_size(mut self, n: usize) -> Self {
        self.context_size = n;
        self
    }

    /// Every batch call (generate, score, classify) takes at least `delay`, as a real model's
    /// would: tests use it to send commands while a stage is running.
    pub fn with_delay(mut self, delay: std::time::Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Before answering a call: as long as it is held, then its simulated latency.
    async fn wait(&self) {
        self.hold.wait().await;
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
    }

    pub fn without_logprobs(mut self) -> Self {
        self.logprobs = false;
        self
    }

    /// The text of sample `s` (0-based) of a request.
    pub fn on_generate(
        mut self,
        f: impl Fn(&GenerateRequest, u32) -> String + Send + Sync + 'static,
    ) -> Self {
        self.generate = Arc::new(f);
        self
    }

    /// The per-token log-probs of a target.
    pub fn on_score(
        mut self,
        f: impl Fn(&ScoreRequest) -> Vec<f64> + Send + Sync + 'static,
    ) -> Self {
        self.score = Arc::new(f);
        self
    }

    /// Unnormalized log-masses of the classes (renormalized by the backend).
    pub fn on_classify(
        mut self,
        f: impl Fn(&ClassifyRequest) -> Vec<f64> + Send + Sync + 'static,
    ) -> Self {
        self.classify = Arc::new(f);
        self
    }

    /// Every request seen so far, in order.
    pub fn calls(&self) -> Vec<ScriptedCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// How many requests each `score` call held, in order.
    pub fn score_batches(&self) -> Vec<usize> {
        self.score_batches
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    fn record(&self, call: ScriptedCall, computed: usize, generated: usize) {
        if let Ok(mut c) = self.calls.lock() {
            c.push(call);
        }
        if let Ok(mut u) = self.usage.lock() {
            u.calls += 1;
            u.tokens_computed += computed as u64;
            u.tokens_generated += generated as u64;
        }
    }

    fn check_len(&self, text: &str) -> LlmResult<()> {
        let needed = tokens_of(text);
        if needed > self.context_size {
            return Err(LlmError::ContextOverflow {
                needed,
                available: self.context_size,
            });
        }
        Ok(())
    }
}

fn prompt_text(p: &super::Prompt) -> String {
    match p {
        super::Prompt::Raw { text } => text.clone(),
        super::Prompt::Chat {
            messages,
            assistant_prefix,
        } => {
            let mut s: String = messages
                .iter()
                .map(|m| format!("{}: {}\n", m.role, m.content))
                .collect();
            s.push_str(assistant_prefix);
            s
        }
    }
}

#[async_trait]
impl Backend for ScriptedBackend {
    fn chat_text(
        &self,
        messages: &[super::ChatMessage],
        assistant_prefix: &str,
    ) -> LlmResult<String> {
        Ok(prompt_text(&super::Prompt::Chat {
            messages: messages.to_vec(),
            assistant_prefix: assistant_prefix.to_string(),
        }))
    }

    fn model_id(&self) -> String {
        "scripted".into()
    }

    fn has_logprobs(&self) -> bool {
        self.logprobs
    }

    fn context_size(&self) -> usize {
        self.context_size
    }

    fn hold(&self, held: bool) {
        self.hold.set(held);
    }

    async fn generate(&self, requests: Vec<GenerateRequest>) -> LlmResult<Vec<Vec<Generation>>> {
        self.wait().await;
        let mut out = Vec::with_capacity(requests.len());
        for r in requests {
            let text_in = prompt_text(&r.prompt);
            self.check_len(&text_in)?;
            let mut samples = Vec::new();
            for s in 0..r.n.max(1) {
                let mut text = (self.generate)(&r, s);
                if let Some(cut) = crate::llm::stop::find_stop(&text, &r.stop, 0) {
                    text.truncate(cut);
                }
                let words: Vec<&str> = text.split_whitespace().collect();
                let cut = words.len() > r.max_tokens as usize;
                if cut {
                    text = words[..r.max_tokens as usize].join(" ");
                }
                let tokens = tokens_of(&text) as u32;
                samples.push(Generation {
                    text,
                    tokens,
                    token_logprobs: None,
                    cut,
                });
            }
            let generated = samples.iter().map(|g| g.tokens as usize).sum();
            self.record(ScriptedCall::Generate(r), tokens_of(&text_in), generated);
            out.push(samples);
        }
        Ok(out)
    }

    async fn score(&self, requests: Vec<ScoreRequest>) -> LlmResult<Vec<Score>> {
        self.wait().await;
        if let Ok(mut b) = self.score_batches.lock() {
            b.push(requests.len());
        }
        let mut out = Vec::with_capacity(requests.len());
        for r in requests {
            if r.target.trim().is_empty() {
                return Err(LlmError::EmptyTarget);
            }
            self.check_len(&format!("{} {}", r.context, r.target))?;
            let lps = (self.score)(&r);
            let n = tokens_of(&r.context) + lps.len();
            out.push(Score {
                logprob: lps.iter().sum(),
                tokens: lps.len() as u32,
                token_logprobs: lps,
            });
            self.record(ScriptedCall::Score(r), n, 0);
        }
        Ok(out)
    }

    async fn classify(&self, requests: Vec<ClassifyRequest>) -> LlmResult<Vec<ClassDistribution>> {
        self.wait().await;
        let mut out = Vec::with_capacity(requests.len());
        for r in requests {
            self.check_len(&r.context)?;
            let masses = (self.classify)(&r);
            if masses.len() != r.classes.len() {
                return Err(LlmError::InvalidRequest(format!(
                    "scripted classify rule gave {} masses for {} classes",
                    masses.len(),
                    r.classes.len()
                )));
            }
            out.push(ClassDistribution::from_log_masses(&masses));
            let n = tokens_of(&r.context);
            self.record(ScriptedCall::Classify(r), n, 0);
        }
        Ok(out)
    }

    async fn count_tokens(&self, text: &str) -> LlmResult<usize> {
        Ok(tokens_of(text))
    }

    fn usage(&self) -> Usage {
        self.usage.lock().map(|u| *u).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Prompt;

    #[tokio::test]
    async fn deterministic_and_rule_driven() {
        let b = ScriptedBackend::new();
        let r = GenerateRequest::greedy(Prompt::raw("hello"), 10, vec![]);
        let a = b.generate(vec![r.clone()]).await.unwrap_or_default();
        let c = b.generate(vec![r]).await.unwrap_or_default();
        assert_eq!(a, c);
        let b = ScriptedBackend::new().on_classify(|_| vec![0.0, (3.0f64).ln()]);
        let d = b
            .classify(vec![ClassifyRequest {
                context: "x".into(),
                classes: vec![vec!["a".into()], vec!["b".into()]],
                reduce: Default::default(),
            }])
            .await
            .unwrap_or_default();
        assert!((d[0].probs[1] - 0.75).abs() < 1e-12);
        assert_eq!(b.calls().len(), 1);
        assert_eq!(b.usage().calls, 1);
    }

    #[tokio::test]
    async fn context_overflow_is_an_error() {
        let b = ScriptedBackend::new().with_context_size(2);
        let r = GenerateRequest::greedy(Prompt::raw("one two three"), 10, vec![]);
        assert!(matches!(
            b.generate(vec![r]).await,
            Err(LlmError::ContextOverflow {
                needed: 3,
                available: 2
            })
        ));
    }
}
