//! The embedded engine: a GGUF model run in-process through llama.cpp (`llama-cpp-2`).
//!
//! A dedicated OS thread owns the llama.cpp context (`worker`); the async [`Backend`] methods
//! tokenize on the caller's side (the model is `Sync`), queue a job and await the reply. Scoring
//! walks each batch's prefix tree depth-first with the KV cache kept between jobs and calls
//! (`plan`), so a prompt shared by many inputs is computed once; prefixes that later calls may
//! need again are snapshotted before they leave the cache and restored on demand (`keep`), so
//! calls that alternate between unrelated prefixes do not recompute them. Flash attention is
//! off so that a score does not depend on how its text was split across decode calls.

mod generate;
mod keep;
mod plan;
mod sampling;
mod tokens;
mod worker;

use std::io::Read as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatTemplate, LlamaModel};
use llama_cpp_2::{send_logs_to_tracing, LogOptions};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::llm::hold::Hold;

use crate::llm::{
    fold_classes, verbalizer_items, Backend, ClassDistribution, ClassifyRequest, GenerateRequest,
    Generation, LlmError, LlmResult, Score, ScoreRequest, Usage,
};
use plan::ScoreItem;
use worker::{Job, Queued, ScoreMode, WorkerSettings};

/// Settings of the embedded engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// The context window in tokens (clamped to what the model was trained on). Shared by the
    /// cached prefix and all samples generated in parallel.
    pub context_size: u32,
    /// Worker threads for llama.cpp; `None` means the number of physical cores (hyperthreads
    /// slow matrix work down).
    pub threads: Option<usize>,
    /// Most tokens per decode call.
    pub batch_size: u32,
    /// Most samples of one request generated together in one decode call.
    pub parallel_samples: u32,
    /// Send llama.cpp's own log lines to `tracing` (the log file) instead of dropping them.
    pub llama_logs: bool,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            context_size: 4096,
            threads: None,
            batch_size: 512,
            parallel_samples: 8,
            llama_logs: true,
        }
    }
}

/// A GGUF model served by a llama.cpp worker thread.
pub struct EmbeddedBackend {
    model: Arc<LlamaModel>,
    chat_template: Option<LlamaChatTemplate>,
    /// The worker's queue (taken on drop, which ends the worker's loop).
    jobs: Option<Sender<Queued>>,
    /// The worker, joined on drop: a process that exits while llama.cpp decodes on another
    /// thread tears ggml's globals down under it and dies of a segmentation fault (seen after
    /// a panic in the workbench, which unwinds to exit while a batch runs).
    worker: Option<std::thread::JoinHandle<()>>,
    /// Set on drop: the worker abandons the job it is in at its next decode call.
    closing: Arc<AtomicBool>,
    /// Set by a pause: the worker waits before its next decode call until it is released.
    hold: Arc<Hold>,
    usage: Arc<Mutex<Usage>>,
    /// Requests answered so far, counted by the worker as each finishes.
    answered: Arc<Mutex<f64>>,
    model_id: String,
    n_ctx: usize,
    threads: usize,
}

impl Drop for EmbeddedBackend {
    /// Stops the worker and waits for it (it leaves the job in progress at its next decode).
    fn drop(&mut self) {
        self.closing.store(true, Ordering::Relaxed);
        drop(self.jobs.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// llama.cpp's process-wide backend, initialised once (a second `init` is an error).
fn llama_backend(logs: bool) -> LlmResult<&'static LlamaBackend> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // Before anything else, so llama.cpp never writes to the terminal.
            send_logs_to_tracing(LogOptions::default().with_logs_enabled(logs));
            // Before llama.cpp's first matrix product reads it (once per process): see
            // `exact_kernels`. llama.cpp's tools that `dln bench engine` starts inherit it.
            std::env::set_var(TILED_MATMUL, "0");
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| LlmError::Model(format!("initialising llama.cpp: {e}")))
}

/// llama.cpp's switch of its tiled K-quant matrix products (read from the environment once).
/// They take batches of 8 or more rows, while fewer rows go through per-row dot products that
/// round differently: where a text was cut into decode calls changed the last tokens of long
/// targets by up to 0.074 nats on Qwen2.5-Coder-0.5B (`tests/instruct_model.rs`). dln turns them
/// off; the cost, on llama-bench's pp512 at 2 threads: 164 → 147 tok/s on the 0.5B, 76 → 49 on
/// the 1.5B (mostly K-quants), nothing on SmolLM2 (Q4_1); generation is unchanged.
pub const TILED_MATMUL: &str = "GGML_CPU_TILED_MM";

/// Whether llama.cpp computes a token's numbers the same wherever it falls in a decode batch:
/// built without its CPU weight repacking (`.cargo/config.toml`; with it, the rows of a batch are
/// multiplied in groups of four by other kernels than the rows left over: up to 0.19 nats per
/// token on Qwen2.5-Coder-0.5B) and run without its tiled K-quant products ([`TILED_MATMUL`]).
pub fn exact_kernels() -> bool {
    static EXACT: OnceLock<bool> = OnceLock::new();
    *EXACT.get_or_init(|| {
        // SAFETY: llama.cpp returns a NUL-terminated string it owns (rebuilt on each call, which
        // this OnceLock makes the only one from dln).
        let info = unsafe { std::ffi::CStr::from_ptr(llama_cpp_sys_2::llama_print_system_info()) };
        !info.to_string_lossy().contains("REPACK = 1")
    }) && std::env::var(TILED_MATMUL).is_ok_and(|v| v == "0")
}

/// Physical cores (hyper-threads share a core's arithmetic units, and llama.cpp's threads wait
/// for the slowest), at most the CPUs this process may use (`available_parallelism` respects
/// affinity masks and cgroup quotas).
fn physical_cores() -> usize {
    let allowed = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    num_cpus::get_physical().clamp(1, allowed)
}

/// `name:size:sha256-prefix`, so a renamed or re-quantized file is a different model.
fn file_identity(path: &Path) -> LlmResult<String> {
    let unreadable =
        |e: std::io::Error| LlmError::Model(format!("reading {}: {e}", path.display()));
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(unreadable)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(format!(
        "{name}:{size}:{}",
        &hex::encode(hasher.finalize())[..16]
    ))
}

impl EmbeddedBackend {
    /// Loads a GGUF model and starts its worker thread.
    pub fn load(path: &Path, opts: EmbeddedOptions) -> Result<Self, LlmError> {
        if !path.is_file() {
            return Err(LlmError::Model(format!(
                "model file {} not found; run `dln model pull` or pass --model PATH",
                path.display()
            )));
        }
        let identity = file_identity(path)?;
        let backend = llama_backend(opts.llama_logs)?;
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|e| {
                LlmError::Model(format!(
                    "{} is not a loadable GGUF model ({e}); fetch it again with `dln model pull`",
                    path.display()
                ))
            })?;
        let model = Arc::new(model);
        let chat_template = model
            .chat_template(None)
            .ok()
            .or_else(|| tokens::fallback_template(&model));
        let settings = WorkerSettings {
            n_ctx: opts.context_size.clamp(64, model.n_ctx_train().max(64)),
            n_batch: opts.batch_size.max(1),
            n_seq_max: opts.parallel_samples.clamp(1, 63) + 1,
            threads: opts.threads.unwrap_or_else(physical_cores).max(1) as i32,
        };
        let usage = Arc::new(Mutex::new(Usage::default()));
        let (jobs, queue) = std::sync::mpsc::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let worker_model = Arc::clone(&model);
        let worker_usage = Arc::clone(&usage);
        let answered = Arc::new(Mutex::new(0.0));
        let worker_answered = Arc::clone(&answered);
        let worker_settings = settings.clone();
        let closing = Arc::new(AtomicBool::new(false));
        let worker_closing = Arc::clone(&closing);
        let hold = Arc::new(Hold::default());
        let worker_hold = Arc::clone(&hold);
        let worker = std::thread::Builder::new()
            .name("dln-llm".into())
            .spawn(move || {
                worker::run(
                    backend,
                    worker_model,
                    worker_settings,
                    worker::Shared {
                        usage: worker_usage,
                        answered: worker_answered,
                        closing: worker_closing,
                        hold: worker_hold,
                    },
                    queue,
                    ready_tx,
                )
            })
            .map_err(|e| LlmError::Model(format!("starting the model thread: {e}")))?;
        let n_ctx = ready_rx
            .recv()
            .map_err(|_| LlmError::WorkerGone("the model thread ended while starting".into()))??;
        // Everything a sample's numbers depend on: the file, the window, how many samples share
        // a decode (see `generate`), and the kernels.
        if !exact_kernels() {
            tracing::warn!(
                "this build of llama.cpp repacks weights (GGML_CPU_REPACK): prefix-reused scores \
                 may differ from from-scratch ones; build dln from its checkout (.cargo/config.toml)"
            );
        }
        let model_id = format!(
            "llama.cpp:{identity}:ctx{n_ctx}:par{}:fa-off:repack-{}",
            settings.n_seq_max - 1,
            if exact_kernels() { "off" } else { "on" }
        );
        Ok(EmbeddedBackend {
            model,
            chat_template,
            jobs: Some(jobs),
            worker: Some(worker),
            closing,
            hold,
            usage,
            answered,
            model_id,
            n_ctx: n_ctx as usize,
            threads: settings.threads as usize,
        })
    }

    async fn call<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<LlmResult<T>>) -> Job,
    ) -> LlmResult<T> {
        /// Marks the job abandoned if the call's future is dropped before its answer.
        struct Waiting(Arc<AtomicBool>, bool);
        impl Drop for Waiting {
            fn drop(&mut self) {
                if !self.1 {
                    self.0.store(true, Ordering::Relaxed);
                }
            }
        }
        let (reply, answer) = oneshot::channel();
        let abandoned = Arc::new(AtomicBool::new(false));
        let mut waiting = Waiting(Arc::clone(&abandoned), false);
        let queued = Queued {
            job: job(reply),
            abandoned,
        };
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(queued).ok())
            .ok_or_else(|| LlmError::WorkerGone("the model thread has stopped".into()))?;
        let answer = answer.await;
        waiting.1 = true;
        answer.map_err(|_| LlmError::WorkerGone("the model thread dropped a request".into()))?
    }

    /// The item for `log p(target | context)`, checked against the context window.
    fn score_item(&self, context: &str, target_tokens: Vec<i32>) -> LlmResult<ScoreItem> {
        if target_tokens.is_empty() {
            return Err(LlmError::EmptyTarget);
        }
        let mut tokens = tokens::context_tokens(&self.model, context)?;
        let first = tokens.len();
        tokens.extend(target_tokens);
        if tokens.len() > self.n_ctx {
            return Err(LlmError::ContextOverflow {
                needed: tokens.len(),
                available: self.n_ctx,
            });
        }
        Ok(ScoreItem { tokens, first })
    }

    fn score_items(&self, requests: &[ScoreRequest]) -> LlmResult<Vec<ScoreItem>> {
        requests
            .iter()
            .map(|r| self.score_item(&r.context, tokens::target_tokens(&self.model, &r.target)))
            .collect()
    }

    /// Counts `n` requests served (a classify request is one, whatever its verbalizers).
    fn count_calls(&self, n: usize) {
        if let Ok(mut usage) = self.usage.lock() {
            usage.calls += n as u64;
        }
    }

    async fn run_scores(&self, items: Vec<ScoreItem>, mode: ScoreMode) -> LlmResult<Vec<Score>> {
        self.run_shared_scores(items, Vec::new(), mode).await
    }

    /// [`run_scores`](Self::run_scores) with each item's share of a request, for progress.
    async fn run_shared_scores(
        &self,
        items: Vec<ScoreItem>,
        shares: Vec<f64>,
        mode: ScoreMode,
    ) -> LlmResult<Vec<Score>> {
        let values = self
            .call(|reply| Job::Score {
                items,
                shares,
                mode,
                reply,
            })
            .await?;
        Ok(values
            .into_iter()
            .map(|v| Score {
                logprob: v.iter().sum(),
                tokens: v.len() as u32,
                token_logprobs: v,
            })
            .collect())
    }

    /// The from-scratch baseline: every request scored on an empty cache. For benchmarks and
    /// tests of prefix reuse; it gives the same numbers as [`Backend::score`], only slower.
    pub async fn score_naive(&self, requests: Vec<ScoreRequest>) -> LlmResult<Vec<Score>> {
        let items = self.score_items(&requests)?;
        let scores = self.run_scores(items, ScoreMode::Naive).await?;
        self.count_calls(requests.len());
        Ok(scores)
    }

    /// Scores each target token by its own from-scratch forward pass over the tokens before it:
    /// the slow reference that exactness tests compare the reused path against.
    pub async fn score_token_by_token(&self, requests: Vec<ScoreRequest>) -> LlmResult<Vec<Score>> {
        let items = self.score_items(&requests)?;
        self.run_scores(items, ScoreMode::TokenByToken).await
    }

    /// Generation with each request's samples run one after another (the baseline of the
    /// batched generation benchmark).
    pub async fn generate_sequential(
        &self,
        requests: Vec<GenerateRequest>,
    ) -> LlmResult<Vec<Vec<Generation>>> {
        self.run_generation(requests, true).await
    }

    /// Decodes `text` (BOS included when the model wants it) from an empty cache and returns
    /// its token count and the wall time: the engine's raw prefill throughput.
    pub async fn prefill(&self, text: &str) -> LlmResult<(usize, Duration)> {
        let tokens = tokens::context_tokens(&self.model, text)?;
        if tokens.len() > self.n_ctx {
            return Err(LlmError::ContextOverflow {
                needed: tokens.len(),
                available: self.n_ctx,
            });
        }
        let n = tokens.len();
        let elapsed = self.call(|reply| Job::Prefill { tokens, reply }).await?;
        Ok((n, elapsed))
    }

    /// The threads llama.cpp decodes with, so a benchmark can run llama.cpp's own tools alike.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Forgets every cached prefix (the next call computes from scratch).
    pub async fn clear_cache(&self) -> LlmResult<()> {
        self.call(|reply| Job::ClearCache { reply }).await
    }

    /// The model's chat template applied to `messages` with the assistant turn opened: what a
    /// `Prompt::Chat` is continued from (before its assistant prefix).
    pub fn render_chat(&self, messages: &[crate::llm::ChatMessage]) -> LlmResult<String> {
        tokens::render_chat(&self.model, self.chat_template.as_ref(), messages)
    }

    async fn run_generation(
        &self,
        requests: Vec<GenerateRequest>,
        sequential: bool,
    ) -> LlmResult<Vec<Vec<Generation>>> {
        let requests = requests
            .into_iter()
            .map(|req| {
                if !(req.top_p > 0.0 && req.top_p <= 1.0)
                    || req.temperature < 0.0
                    || req.temperature.is_nan()
                {
                    return Err(LlmError::InvalidRequest(format!(
                        "temperature must be >= 0 and top_p in (0, 1]; got temperature {} top_p {}",
                        req.temperature, req.top_p
                    )));
                }
                let prompt =
                    tokens::prompt_tokens(&self.model, self.chat_template.as_ref(), &req.prompt)?;
                Ok((prompt, req))
            })
            .collect::<LlmResult<Vec<_>>>()?;
        self.call(|reply| Job::Generate {
            requests,
            sequential,
            reply,
        })
        .await
    }
}

#[async_trait]
impl Backend for EmbeddedBackend {
    fn chat_text(
        &self,
        messages: &[crate::llm::ChatMessage],
        assistant_prefix: &str,
    ) -> LlmResult<String> {
        Ok(self.render_chat(messages)? + assistant_prefix)
    }

    fn model_id(&self) -> String {
        self.model_id.clone()
    }

    fn context_size(&self) -> usize {
        self.n_ctx
    }

    fn hold(&self, held: bool) {
        self.hold.set(held);
    }

    fn is_quiet(&self) -> bool {
        self.hold.is_quiet()
    }

    async fn generate(&self, requests: Vec<GenerateRequest>) -> LlmResult<Vec<Vec<Generation>>> {
        self.run_generation(requests, false).await
    }

    async fn score(&self, requests: Vec<ScoreRequest>) -> LlmResult<Vec<Score>> {
        let items = self.score_items(&requests)?;
        let scores = self.run_scores(items, ScoreMode::Reuse).await?;
        self.count_calls(requests.len());
        Ok(scores)
    }

    async fn classify(&self, requests: Vec<ClassifyRequest>) -> LlmResult<Vec<ClassDistribution>> {
        // One scoring item per (request, class, verbalizer variant), all in one prefix tree.
        let items = verbalizer_items(&requests)?;
        let mut per_request = vec![0usize; requests.len()];
        let mut scored = Vec::with_capacity(items.len());
        for item in &items {
            per_request[item.request] += 1;
            let target = tokens::verbalizer_tokens(&self.model, item.class, &item.variant)?;
            scored.push(self.score_item(&requests[item.request].context, target)?);
        }
        let shares = items
            .iter()
            .map(|item| 1.0 / per_request[item.request] as f64)
            .collect();
        let scores = self
            .run_shared_scores(scored, shares, ScoreMode::Reuse)
            .await?;
        self.count_calls(requests.len());
        Ok(fold_classes(
            &requests,
            &items,
            scores.into_iter().map(|s| s.logprob),
        ))
    }

    async fn count_tokens(&self, text: &str) -> LlmResult<usize> {
        Ok(tokens::target_tokens(&self.model, text).len())
    }

    fn answered(&self) -> f64 {
        self.answered.lock().map(|a| *a).unwrap_or_default()
    }

    fn usage(&self) -> Usage {
        self.usage.lock().map(|u| *u).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_cores_is_at_least_one() {
        assert!(physical_cores() >= 1);
    }
}
