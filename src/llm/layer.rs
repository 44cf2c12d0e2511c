//! One shape for a backend that wraps another (the call cache, pricing, a test's recorder): it
//! implements [`BackendLayer`], names its inner backend, and overrides only what it changes;
//! every other method reaches the inner backend through the defaults here, so a method added to
//! [`Backend`] reaches through every wrapper without a line written in any of them. Leaves (the
//! embedded engine, the OpenAI-compatible client, the scripted backend) implement [`Backend`]
//! itself; `impl<T: BackendLayer> Backend for T` makes every layer a backend.
//!
//! Within a layer's own methods, `self.inner()` is the next backend down; a caller holding the
//! concrete wrapper type with both traits in scope writes `Backend::usage(&w)` to pick the
//! public face.

use async_trait::async_trait;

use super::{
    Backend, ChatMessage, ClassDistribution, ClassifyRequest, GenerateRequest, Generation,
    LlmResult, Score, ScoreRequest, Usage,
};

/// A backend that wraps [`inner`](Self::inner): each method defaults to the inner backend's.
#[async_trait]
pub trait BackendLayer: Send + Sync {
    /// The backend this one wraps.
    fn inner(&self) -> &dyn Backend;

    fn model_id(&self) -> String {
        self.inner().model_id()
    }
    fn has_logprobs(&self) -> bool {
        self.inner().has_logprobs()
    }
    fn context_size(&self) -> usize {
        self.inner().context_size()
    }
    fn answers_independently(&self) -> bool {
        self.inner().answers_independently()
    }
    fn requests_per_call(&self) -> usize {
        self.inner().requests_per_call()
    }
    async fn generate(&self, requests: Vec<GenerateRequest>) -> LlmResult<Vec<Vec<Generation>>> {
        self.inner().generate(requests).await
    }
    async fn score(&self, requests: Vec<ScoreRequest>) -> LlmResult<Vec<Score>> {
        self.inner().score(requests).await
    }
    async fn classify(&self, requests: Vec<ClassifyRequest>) -> LlmResult<Vec<ClassDistribution>> {
        self.inner().classify(requests).await
    }
    async fn count_tokens(&self, text: &str) -> LlmResult<usize> {
        self.inner().count_tokens(text).await
    }
    fn usage(&self) -> Usage {
        self.inner().usage()
    }
    fn chat_text(&self, messages: &[ChatMessage], assistant_prefix: &str) -> LlmResult<String> {
        self.inner().chat_text(messages, assistant_prefix)
    }
    fn answered(&self) -> f64 {
        self.inner().answered()
    }
    fn hold(&self, held: bool) {
        self.inner().hold(held)
    }
    fn is_quiet(&self) -> bool {
        self.inner().is_quiet()
    }
    fn engine(&self) -> Option<*const ()> {
        let inner = self.inner();
        Some(
            inner
                .engine()
                .unwrap_or(inner as *const dyn Backend as *const ()),
        )
    }
}

/// Every layer is a backend: each method is the layer's (its override or the inner backend's).
#[async_trait]
impl<T: BackendLayer> Backend for T {
    fn model_id(&self) -> String {
        BackendLayer::model_id(self)
    }
    fn has_logprobs(&self) -> bool {
        BackendLayer::has_logprobs(self)
    }
    fn context_size(&self) -> usize {
        BackendLayer::context_size(self)
    }
    fn answers_independently(&self) -> bool {
        BackendLayer::answers_independently(self)
    }
    fn requests_per_call(&self) -> usize {
        BackendLayer::requests_per_call(self)
    }
    async fn generate(&self, requests: Vec<GenerateRequest>) -> LlmResult<Vec<Vec<Generation>>> {
        BackendLayer::generate(self, requests).await
    }
    async fn score(&self, requests: Vec<ScoreRequest>) -> LlmResult<Vec<Score>> {
        BackendLayer::score(self, requests).await
    }
    async fn classify(&self, requests: Vec<ClassifyRequest>) -> LlmResult<Vec<ClassDistribution>> {
        BackendLayer::classify(self, requests).await
    }
    async fn count_tokens(&self, text: &str) -> LlmResult<usize> {
        BackendLayer::count_tokens(self, text).await
    }
    fn usage(&self) -> Usage {
        BackendLayer::usage(self)
    }
    fn chat_text(&self, messages: &[ChatMessage], assistant_prefix: &str) -> LlmResult<String> {
        BackendLayer::chat_text(self, messages, assistant_prefix)
    }
    fn answered(&self) -> f64 {
        BackendLayer::answered(self)
    }
    fn engine(&self) -> Option<*const ()> {
        BackendLayer::engine(self)
    }
    fn hold(&self, held: bool) {
        BackendLayer::hold(self, held)
    }
    fn is_quiet(&self) -> bool {
        BackendLayer::is_quiet(self)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    use super::super::cache::CachedBackend;
    use super::super::price::{Price, Priced};
    use super::super::{
        Backend, ChatMessage, ClassDistribution, ClassifyRequest, GenerateRequest, Generation,
        LlmResult, Prompt, Score, ScoreRequest, SharedBackend, Usage,
    };
    use async_trait::async_trait;

    /// The innermost backend: notes every method that reaches it.
    #[derive(Default)]
    struct Probe {
        reached: Mutex<BTreeSet<&'static str>>,
    }

    impl Probe {
        fn note(&self, method: &'static str) {
            self.reached.lock().expect("lock").insert(method);
        }
    }

    #[async_trait]
    impl Backend for Probe {
        fn model_id(&self) -> String {
            self.note("model_id");
            "probe".into()
        }
        fn has_logprobs(&self) -> bool {
            self.note("has_logprobs");
            true
        }
        fn context_size(&self) -> usize {
            self.note("context_size");
            100
        }
        fn answers_independently(&self) -> bool {
            self.note("answers_independently");
            false
        }
        fn requests_per_call(&self) -> usize {
            self.note("requests_per_call");
            1
        }
        async fn generate(&self, r: Vec<GenerateRequest>) -> LlmResult<Vec<Vec<Generation>>> {
            self.note("generate");
            let one = || Generation {
                text: "g".into(),
                tokens: 1,
                token_logprobs: Some(vec![-1.0]),
                cut: false,
            };
            Ok(r.iter().map(|_| vec![one()]).collect())
        }
        async fn score(&self, r: Vec<ScoreRequest>) -> LlmResult<Vec<Score>> {
            self.note("score");
            Ok(r.iter()
                .map(|_| Score {
                    logprob: -1.0,
                    token_logprobs: vec![-1.0],
                    tokens: 1,
                })
                .collect())
        }
        async fn classify(&self, r: Vec<ClassifyRequest>) -> LlmResult<Vec<ClassDistribution>> {
            self.note("classify");
            Ok(r.iter()
                .map(|_| ClassDistribution::from_log_masses(&[-1.0, -2.0]))
                .collect())
        }
        async fn count_tokens(&self, _text: &str) -> LlmResult<usize> {
            self.note("count_tokens");
            Ok(1)
        }
        fn usage(&self) -> Usage {
            self.note("usage");
            Usage::default()
        }
        fn chat_text(&self, _m: &[ChatMessage], prefix: &str) -> LlmResult<String> {
            self.note("chat_text");
            Ok(prefix.to_string())
        }
        fn answered(&self) -> f64 {
            self.note("answered");
            0.0
        }
        fn engine(&self) -> Option<*const ()> {
            self.note("engine");
            None
        }
        fn hold(&self, _held: bool) {
            self.note("hold");
        }
        fn is_quiet(&self) -> bool {
            self.note("is_quiet");
            true
        }
    }

    /// Every method of the trait, called through `b`.
    async fn call_every_method(b: &dyn Backend) {
        b.model_id();
        b.has_logprobs();
        b.context_size();
        b.answers_independently();
        b.requests_per_call();
        b.generate(vec![GenerateRequest::greedy(Prompt::raw("p"), 2, vec![])])
            .await
            .expect("generate");
        b.score(vec![ScoreRequest {
            context: "c".into(),
            target: "t".into(),
        }])
        .await
        .expect("score");
        b.classify(vec![ClassifyRequest {
            context: "c".into(),
            classes: vec![vec!["a".into()], vec!["b".into()]],
            reduce: Default::default(),
        }])
        .await
        .expect("classify");
        b.count_tokens("t").await.expect("count");
        b.usage();
        b.chat_text(&[], "A:").expect("chat text");
        b.answered();
        b.engine();
        b.hold(false);
        b.is_quiet();
    }

    const EVERY_METHOD: [&str; 15] = [
        "answered",
        "answers_independently",
        "chat_text",
        "classify",
        "context_size",
        "count_tokens",
        "engine",
        "generate",
        "has_logprobs",
        "hold",
        "is_quiet",
        "model_id",
        "requests_per_call",
        "score",
        "usage",
    ];

    #[tokio::test]
    async fn every_method_reaches_the_innermost_backend_through_each_wrapper() {
        let dir = tempfile::tempdir().expect("tempdir");
        type Wrap = Box<dyn Fn(SharedBackend) -> SharedBackend>;
        let cache_dir = dir.path().to_path_buf();
        let wrappers: Vec<(&str, Wrap)> = vec![
            (
                "priced",
                Box::new(|inner| Arc::new(Priced::new(inner, Price::default()))),
            ),
            (
                "cached",
                Box::new(move |inner| {
                    let d = cache_dir.join(format!("c{}", rand_suffix()));
                    Arc::new(CachedBackend::new(inner, &d).expect("cache"))
                }),
            ),
        ];
        for (name, wrap) in &wrappers {
            let probe = Arc::new(Probe::default());
            let outer = wrap(probe.clone());
            call_every_method(outer.as_ref()).await;
            let reached = probe.reached.lock().expect("lock").clone();
            let missing: Vec<_> = EVERY_METHOD
                .iter()
                .filter(|m| !reached.contains(*m))
                .collect();
            assert!(
                missing.is_empty(),
                "{name} stops {missing:?} short of the inner backend"
            );
        }
        // Both wrappers stacked, as a priced backend over the cache runs.
        let probe = Arc::new(Probe::default());
        let stacked = (wrappers[0].1)((wrappers[1].1)(probe.clone()));
        call_every_method(stacked.as_ref()).await;
        assert_eq!(
            probe.reached.lock().expect("lock").len(),
            EVERY_METHOD.len()
        );
        // And both name the probe as the engine they reach.
        let probe: SharedBackend = probe;
        assert_eq!(
            crate::llm::engine_of(&stacked),
            crate::llm::engine_of(&probe)
        );
    }

    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }
}
