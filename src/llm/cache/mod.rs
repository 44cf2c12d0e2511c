//! The persistent call cache: every result of a wrapped backend is stored on disk, keyed by the
//! model's identity and the full request (seed and sampling parameters included), so re-running
//! or resuming a run never pays for a call twice and a resumed run sees exactly the answers the
//! interrupted one saw.
//!
//! Storage is a SQLite database (`calls.sqlite`, [`store`]) in the cache directory, bounded by
//! `cache.max_mb` with least-recently-used eviction. A batch's results are stored in one
//! transaction after the batch returns, so a process killed mid-batch leaves either all of the
//! batch or none of it. An older run's `calls.jsonl` is imported on first open ([`import`]).
//! Answers are stored as MessagePack ([`encode`]), not JSON.

mod file;
pub mod import;
pub mod store;
mod upkeep;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{
    Backend, ClassDistribution, ClassifyRequest, GenerateRequest, Generation, LlmError, LlmResult,
    Score, ScoreRequest, SharedBackend, Usage,
};
pub use file::{copy_store, wal_limit, Key, StoreError, BUSY_TIMEOUT, DB_FILE, QUICK_CHECK_MAX};
pub use store::{CallStore, OpenReport, Stats, TOUCH_BATCH};

/// The file the cache lives in, inside its directory.
pub const CACHE_FILE: &str = DB_FILE;

impl From<StoreError> for LlmError {
    fn from(e: StoreError) -> LlmError {
        LlmError::Backend(e.to_string())
    }
}

/// The key of one call: sha256 of the model's id, the operation and the request's JSON. The same
/// as the JSON Lines cache's (hex-encoded there), so its answers import under their keys.
pub fn call_key<R: Serialize>(model_id: &str, op: &str, request: &R) -> Key {
    let mut h = Sha256::new();
    h.update(model_id.as_bytes());
    h.update(b"\n");
    h.update(op.as_bytes());
    h.update(b"\n");
    h.update(
        serde_json::to_string(request)
            .unwrap_or_default()
            .as_bytes(),
    );
    h.finalize().into()
}

/// An answer as stored: MessagePack with field names (`rmp_serde::to_vec_named`). Floats are
/// their 8 bytes, so decoding a hit copies them instead of parsing decimals (a generation with
/// its token log-probabilities decodes in a tenth of JSON's time, exactly as JSON with
/// `float_roundtrip` does), and the format is self-describing, so a field skipped when empty or
/// defaulted when absent decodes as it does from JSON.
pub fn encode<T: Serialize + ?Sized>(answer: &T) -> LlmResult<Vec<u8>> {
    rmp_serde::to_vec_named(answer)
        .map_err(|e| LlmError::Backend(format!("cannot encode an answer for the cache: {e}")))
}

/// A stored answer as `T`; `None` when it does not decode as one (it is then asked again).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    rmp_serde::from_slice(bytes).ok()
}

/// A [`Backend`] that answers from disk what it has seen and asks the inner backend the rest.
/// Its async methods call the store synchronously between awaits, never holding its lock
/// across one ([`store`]'s module doc says why that beats `spawn_blocking` here).
pub struct CachedBackend {
    inner: SharedBackend,
    store: CallStore,
    hits: AtomicU64,
}

impl CachedBackend {
    /// Opens (or creates) the cache in `dir` around `inner`, bounded to the default
    /// `cache.max_mb`.
    pub fn new(inner: SharedBackend, dir: &Path) -> LlmResult<CachedBackend> {
        CachedBackend::with_max_mb(inner, dir, crate::config::DEFAULT_MAX_MB)
    }

    /// Opens (or creates) the cache in `dir` around `inner`, bounded to `max_mb` MiB (what
    /// `cache.max_mb` says).
    pub fn with_max_mb(inner: SharedBackend, dir: &Path, max_mb: f64) -> LlmResult<CachedBackend> {
        crate::config::check_max_mb(max_mb).map_err(LlmError::Backend)?;
        let max_bytes = (max_mb * 1024.0 * 1024.0) as u64;
        let (store, _) = CallStore::open(dir, max_bytes)?;
        Ok(CachedBackend {
            inner,
            store,
            hits: AtomicU64::new(0),
        })
    }

    /// Where the cache is stored.
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// Number of stored results.
    pub fn len(&self) -> usize {
        self.store.len().unwrap_or(0) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn key<R: Serialize>(&self, op: &str, request: &R) -> Key {
        call_key(&self.inner.model_id(), op, request)
    }

    /// The stored answers of `keys` that still decode as `T` (`None`: ask the backend).
    fn lookup<T: DeserializeOwned>(
        &self,
        op: &'static str,
        keys: &[Key],
    ) -> LlmResult<Vec<Option<T>>> {
        let out = self.store.get(&self.inner.model_id(), op, keys, decode)?;
        let hits = out.iter().filter(|o| o.is_some()).count() as u64;
        self.hits.fetch_add(hits, Ordering::Relaxed);
        Ok(out)
    }

    /// Looks every request up; asks the inner backend for the misses (in one batch, or, when it
    /// answers requests independently, in chunks of `per_call` concurrently); stores them.
    async fn cached<R, T, F, Fut>(
        &self,
        op: &'static str,
        requests: Vec<R>,
        per_call: usize,
        call: F,
    ) -> LlmResult<Vec<T>>
    where
        R: Serialize + Clone,
        T: Serialize + DeserializeOwned,
        F: Fn(Vec<R>) -> Fut,
        Fut: std::future::Future<Output = LlmResult<Vec<T>>>,
    {
        let keys: Vec<Key> = requests.iter().map(|r| self.key(op, r)).collect();
        let mut out: Vec<Option<T>> = self.lookup(op, &keys)?;
        let missing_idx: Vec<usize> = (0..out.len()).filter(|i| out[*i].is_none()).collect();
        if missing_idx.is_empty() {
            // Everything was cached.
        } else if self.inner.answers_independently() {
            // In prompt order, so requests sharing a prefix go out together (a request's JSON
            // starts with its prompt or context).
            let mut order = missing_idx.clone();
            order.sort_by_cached_key(|i| serde_json::to_string(&requests[*i]).unwrap_or_default());
            // Every chunk (one request, or as many as the backend packs into one server request)
            // runs to its end (answers are stored as they come) before a failure is reported,
            // so no answer the server gave is lost with a failing neighbour.
            let chunks: Vec<Vec<usize>> = order
                .chunks(per_call.max(1))
                .map(<[usize]>::to_vec)
                .collect();
            let answers = futures::future::join_all(chunks.into_iter().map(|chunk| {
                let fut = call(chunk.iter().map(|i| requests[*i].clone()).collect());
                let keys = &keys;
                async move {
                    let a = fut.await?;
                    if a.len() != chunk.len() {
                        return Err(LlmError::Backend(format!(
                            "backend answered {} of {} requests",
                            a.len(),
                            chunk.len()
                        )));
                    }
                    self.store(op, chunk.iter().map(|i| keys[*i]).zip(&a).collect())?;
                    Ok(chunk.into_iter().zip(a).collect::<Vec<_>>())
                }
            }))
            .await;
            for r in answers {
                for (i, a) in r? {
                    out[i] = Some(a);
                }
            }
        } else {
            let missing: Vec<R> = missing_idx.iter().map(|i| requests[*i].clone()).collect();
            let answers = call(missing).await?;
            if answers.len() != missing_idx.len() {
                return Err(LlmError::Backend(format!(
                    "backend answered {} of {} requests",
                    answers.len(),
                    missing_idx.len()
                )));
            }
            self.store(
                op,
                missing_idx
                    .iter()
                    .zip(&answers)
                    .map(|(i, a)| (keys[*i], a))
                    .collect(),
            )?;
            for (i, a) in missing_idx.iter().zip(answers) {
                out[*i] = Some(a);
            }
        }
        out.into_iter()
            .map(|o| o.ok_or_else(|| LlmError::Backend("call cache lost an answer".into())))
            .collect()
    }

    /// Adds a batch of answers to the cache, in one transaction. A write the disk refuses (full,
    /// an I/O error) costs only the caching: the answers are returned all the same, a warning
    /// says why, and a later run asks those calls again. (The run itself stops at its next
    /// event or checkpoint that cannot be written.)
    fn store<T: Serialize>(&self, op: &'static str, answers: Vec<(Key, &T)>) -> LlmResult<()> {
        let rows = answers
            .into_iter()
            .map(|(k, a)| Ok((k, encode(a)?)))
            .collect::<LlmResult<Vec<_>>>()?;
        if let Err(e) = self.store.put(&self.inner.model_id(), op, &rows) {
            tracing::warn!("{e}; these answers are not cached");
        }
        Ok(())
    }
}

/// The cache answers generate, score, classify and (for a server) count_tokens from its store,
/// and adds its hits to the counters; everything else is the inner backend's.
#[async_trait]
impl super::BackendLayer for CachedBackend {
    fn inner(&self) -> &dyn Backend {
        self.inner.as_ref()
    }

    async fn generate(&self, requests: Vec<GenerateRequest>) -> LlmResult<Vec<Vec<Generation>>> {
        self.cached("generate", requests, 1, |r| {
            let inner = self.inner.clone();
            async move { inner.generate(r).await }
        })
        .await
    }

    async fn score(&self, requests: Vec<ScoreRequest>) -> LlmResult<Vec<Score>> {
        let per_call = self.inner.requests_per_call();
        self.cached("score", requests, per_call, |r| {
            let inner = self.inner.clone();
            async move { inner.score(r).await }
        })
        .await
    }

    async fn classify(&self, requests: Vec<ClassifyRequest>) -> LlmResult<Vec<ClassDistribution>> {
        let per_call = self.inner.requests_per_call();
        self.cached("classify", requests, per_call, |r| {
            let inner = self.inner.clone();
            async move { inner.classify(r).await }
        })
        .await
    }

    /// Counting is local for the embedded engine, but a request for a server: a server's
    /// counts are kept like any answer, so a rerun or a resume sends nothing for them.
    async fn count_tokens(&self, text: &str) -> LlmResult<usize> {
        if !self.inner.answers_independently() {
            return self.inner.count_tokens(text).await;
        }
        let key = self.key("count_tokens", &text);
        if let Some(Some(n)) = self.lookup::<u64>("count_tokens", &[key])?.pop() {
            return Ok(n as usize);
        }
        let n = self.inner.count_tokens(text).await?;
        self.store("count_tokens", vec![(key, &(n as u64))])?;
        Ok(n)
    }

    /// The inner backend's answers plus the calls this cache answered itself.
    fn answered(&self) -> f64 {
        self.inner.answered() + self.hits.load(Ordering::Relaxed) as f64
    }

    /// The inner backend's counters plus the calls this cache answered itself.
    fn usage(&self) -> Usage {
        let mut u = self.inner.usage();
        let hits = self.hits.load(Ordering::Relaxed);
        u.cache_hits += hits;
        u.calls += hits;
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::scripted::ScriptedBackend;
    use crate::llm::Prompt;
    use std::sync::Arc;

    #[tokio::test]
    async fn second_open_answers_from_disk() {
        let dir = tempfile::tempdir().map_err(|e| e.to_string());
        let Ok(dir) = dir else { panic!("tempdir") };
        let inner = ScriptedBackend::new();
        let req = |seed| GenerateRequest {
            seed,
            ..GenerateRequest::greedy(Prompt::raw("p"), 5, vec![])
        };
        let first = {
            let c = CachedBackend::new(Arc::new(inner.clone()), dir.path()).expect("open");
            c.generate(vec![req(1), req(2)]).await.expect("generate")
        };
        assert_eq!(inner.calls().len(), 2);
        let c = CachedBackend::new(Arc::new(inner.clone()), dir.path()).expect("reopen");
        assert_eq!(c.len(), 2);
        let again = c
            .generate(vec![req(2), req(1), req(3)])
            .await
            .expect("generate");
        assert_eq!(again[0], first[1]);
        assert_eq!(again[1], first[0]);
        // Only the new seed reached the inner backend.
        assert_eq!(inner.calls().len(), 3);
        assert_eq!(c.usage().cache_hits, 2);
    }

    /// A copy taken while the original is open answers what the original held, and a later
    /// write to the original does not reach it.
    #[tokio::test]
    async fn a_copied_store_answers_what_the_original_held() {
        let (from, to) = (
            tempfile::tempdir().expect("tempdir"),
            tempfile::tempdir().expect("tempdir"),
        );
        let inner = ScriptedBackend::new();
        let req = |seed| GenerateRequest {
            seed,
            ..GenerateRequest::greedy(Prompt::raw("p"), 5, vec![])
        };
        let original = CachedBackend::new(Arc::new(inner.clone()), from.path()).expect("open");
        let first = original
            .generate(vec![req(1), req(2)])
            .await
            .expect("generate");
        let copy_dir = to.path().join("cache");
        assert_eq!(copy_store(from.path(), &copy_dir).expect("copy"), Some(2));
        original.generate(vec![req(3)]).await.expect("generate");
        assert_eq!(original.len(), 3);
        let copy = CachedBackend::new(Arc::new(inner.clone()), &copy_dir).expect("open the copy");
        assert_eq!(copy.len(), 2);
        let again = copy.generate(vec![req(1), req(2)]).await.expect("generate");
        assert_eq!(again, first);
        assert_eq!(copy.usage().cache_hits, 2);
        assert_eq!(inner.calls().len(), 3, "the copy asked the model nothing");
        assert_eq!(
            copy_store(to.path(), &to.path().join("none")).expect("nothing"),
            None
        );
        std::fs::write(to.path().join(DB_FILE), b"not a database").expect("write");
        assert!(copy_store(to.path(), &to.path().join("bad")).is_err());
    }

    #[tokio::test]
    async fn an_old_jsonl_cache_answers_after_its_import() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inner = ScriptedBackend::new();
        let req = GenerateRequest::greedy(Prompt::raw("p"), 5, vec![]);
        let key = call_key(&inner.model_id(), "generate", &req);
        let answer = vec![Generation {
            text: "from the old file".into(),
            tokens: 4,
            token_logprobs: Some(vec![-0.25, -1.0e-7]),
            cut: false,
        }];
        let line = serde_json::json!({"key": hex::encode(key), "value": answer});
        std::fs::write(
            dir.path().join(import::LEGACY_FILE),
            format!("{line}\n{{\"key\":\"de"),
        )
        .expect("write");
        let c = CachedBackend::new(Arc::new(inner.clone()), dir.path()).expect("open");
        assert_eq!(c.len(), 1);
        assert_eq!(c.generate(vec![req]).await.expect("hit"), vec![answer]);
        assert!(inner.calls().is_empty());
        assert!(dir.path().join("calls.jsonl.imported").exists());
    }
}
