//! The persistent call cache: every result of a wrapped backend is stored on disk, keyed by the
//! model's identity and the full request (seed and sampling parameters included), so re-running
//! or resuming a run never pays for a call twice and a resumed run sees exactly the answers the
//! interrupted one saw.
//!
//! Storage is one append-only JSON Lines file (`calls.jsonl`) in the cache directory. A batch's
//! results are appended in one write after the batch returns, so a process killed mid-batch leaves
//! either all of the batch or none of it (a torn last line is skipped on load).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    Backend, ClassDistribution, ClassifyRequest, GenerateRequest, Generation, LlmError, LlmResult,
    Score, ScoreRequest, SharedBackend, Usage,
};

/// The file the cache lives in, inside its directory.
pub const CACHE_FILE: &str = "calls.jsonl";

#[derive(Serialize, Deserialize)]
struct Line {
    key: String,
    value: serde_json::Value,
}

/// A [`Backend`] that answers from disk what it has seen and asks the inner backend the rest.
pub struct CachedBackend {
    inner: SharedBackend,
    path: PathBuf,
    entries: Mutex<HashMap<String, serde_json::Value>>,
    file: Mutex<File>,
    hits: Mutex<u64>,
}

impl CachedBackend {
    /// Opens (or creates) the cache in `dir` around `inner`.
    pub fn new(inner: SharedBackend, dir: &Path) -> LlmResult<CachedBackend> {
        std::fs::create_dir_all(dir).map_err(|e| {
            LlmError::Backend(format!(
                "cannot create the call cache directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join(CACHE_FILE);
        // A batch torn by a kill mid-append is cut off: its calls are simply asked again.
        crate::files::repair_torn_tail(&path).map_err(|e| {
            LlmError::Backend(format!(
                "cannot repair the call cache {}: {e}",
                path.display()
            ))
        })?;
        let mut entries = HashMap::new();
        if path.exists() {
            let f = File::open(&path).map_err(|e| {
                LlmError::Backend(format!(
                    "cannot read the call cache {}: {e}",
                    path.display()
                ))
            })?;
            for line in BufReader::new(f).lines() {
                let Ok(line) = line else { break };
                // A torn last line (process killed mid-write) is simply not a hit.
                if let Ok(l) = serde_json::from_str::<Line>(&line) {
                    entries.insert(l.key, l.value);
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| {
                LlmError::Backend(format!(
                    "cannot open the call cache {}: {e}",
                    path.display()
                ))
            })?;
        Ok(CachedBackend {
            inner,
            path,
            entries: Mutex::new(entries),
            file: Mutex::new(file),
            hits: Mutex::new(0),
        })
    }

    /// Where the cache is stored.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of stored results.
    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn key<R: Serialize>(&self, op: &str, request: &R) -> String {
        let mut h = Sha256::new();
        h.update(self.inner.model_id().as_bytes());
        h.update(b"\n");
        h.update(op.as_bytes());
        h.update(b"\n");
        h.update(
            serde_json::to_string(request)
                .unwrap_or_default()
                .as_bytes(),
        );
        hex::encode(h.finalize())
    }

    /// Looks every request up; asks the inner backend for the misses (in one batch, or, when it
    /// answers requests independently, in chunks of `per_call` concurrently); stores them.
    async fn cached<R, T, F, Fut>(
        &self,
        op: &str,
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
        let keys: Vec<String> = requests.iter().map(|r| self.key(op, r)).collect();
        let mut out: Vec<Option<T>> = Vec::with_capacity(requests.len());
        let mut missing_idx = Vec::new();
        {
            let entries = self
                .entries
                .lock()
                .map_err(|_| LlmError::Backend("call cache lock poisoned".into()))?;
            for (i, k) in keys.iter().enumerate() {
                match entries
                    .get(k)
                    .and_then(|v| serde_json::from_value::<T>(v.clone()).ok())
                {
                    Some(v) => out.push(Some(v)),
                    None => {
                        out.push(None);
                        missing_idx.push(i);
                    }
                }
            }
        }
        if let Ok(mut h) = self.hits.lock() {
            *h += (requests.len() - missing_idx.len()) as u64;
        }
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
                    self.store(chunk.iter().map(|i| keys[*i].clone()).zip(&a).collect())?;
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
                missing_idx
                    .iter()
                    .zip(&answers)
                    .map(|(i, a)| (keys[*i].clone(), a))
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

    /// Adds answers to the cache: in memory, and appended to the file in one write.
    fn store<T: Serialize>(&self, answers: Vec<(String, &T)>) -> LlmResult<()> {
        let mut text = String::new();
        {
            let mut entries = self
                .entries
                .lock()
                .map_err(|_| LlmError::Backend("call cache lock poisoned".into()))?;
            for (key, a) in answers {
                let value =
                    serde_json::to_value(a).map_err(|e| LlmError::Backend(e.to_string()))?;
                let line = Line {
                    key: key.clone(),
                    value: value.clone(),
                };
                text.push_str(
                    &serde_json::to_string(&line).map_err(|e| LlmError::Backend(e.to_string()))?,
                );
                text.push('\n');
                entries.insert(key, value);
            }
        }
        let mut f = self
            .file
            .lock()
            .map_err(|_| LlmError::Backend("call cache lock poisoned".into()))?;
        crate::fault::point("cache_append", || {
            let _ = f.write_all(&text.as_bytes()[..text.len() / 2]);
            let _ = f.flush();
        });
        f.write_all(text.as_bytes())
            .and_then(|_| f.flush())
            .map_err(|e| {
                LlmError::Backend(format!(
                    "cannot write the call cache {}: {e}",
                    self.path.display()
                ))
            })
    }
}

#[async_trait]
impl Backend for CachedBackend {
    fn model_id(&self) -> String {
        self.inner.model_id()
    }

    fn has_logprobs(&self) -> bool {
        self.inner.has_logprobs()
    }

    fn context_size(&self) -> usize {
        self.inner.context_size()
    }

    fn answers_independently(&self) -> bool {
        self.inner.answers_independently()
    }

    fn chat_text(
        &self,
        messages: &[super::ChatMessage],
        assistant_prefix: &str,
    ) -> LlmResult<String> {
        self.inner.chat_text(messages, assistant_prefix)
    }

    fn requests_per_call(&self) -> usize {
        self.inner.requests_per_call()
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
        let known = self
            .entries
            .lock()
            .ok()
            .and_then(|e| e.get(&key).and_then(|v| v.as_u64()));
        if let Some(n) = known {
            if let Ok(mut h) = self.hits.lock() {
                *h += 1;
            }
            return Ok(n as usize);
        }
        let n = self.inner.count_tokens(text).await?;
        self.store(vec![(key, &(n as u64))])?;
        Ok(n)
    }

    /// The inner backend's answers plus the calls this cache answered itself.
    fn answered(&self) -> f64 {
        self.inner.answered() + self.hits.lock().map(|h| *h).unwrap_or(0) as f64
    }

    /// The inner backend's counters plus the calls this cache answered itself.
    fn usage(&self) -> Usage {
        let mut u = self.inner.usage();
        let hits = self.hits.lock().map(|h| *h).unwrap_or(0);
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

    #[tokio::test]
    async fn torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(CACHE_FILE),
            "{\"key\":\"abc\",\"value\":1}\n{\"key\":\"de",
        )
        .expect("write");
        let c = CachedBackend::new(Arc::new(ScriptedBackend::new()), dir.path()).expect("open");
        assert_eq!(c.len(), 1);
    }
}
