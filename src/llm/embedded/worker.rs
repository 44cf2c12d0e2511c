//! The model worker: one OS thread owns the llama.cpp context (which is neither `Sync` nor
//! async) and serves jobs from a queue, replying on a oneshot channel. A failing or panicking
//! job replies an error and leaves the worker serving.
//!
//! KV layout: sequence 0 holds the token sequence last decoded (`cached`), which the next job
//! reuses up to their common prefix; generation copies the prompt from sequence 0 into the
//! sequences `1..n_seq_max` and removes them when done. A shared prefix about to be dropped from
//! sequence 0 is first snapshotted into `kept` (see `keep`) and restored when a later request
//! shares more with it than with sequence 0.

use std::num::NonZeroU32;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::{LlamaStateSeqFlags, SeqState};
use tokio::sync::oneshot;

use crate::llm::hold::Hold;

use super::keep::KeptPrefixes;
use super::plan::{common_prefix, plan, Job as PlanJob, Read, ScoreItem};
use super::sampling::log_sum_exp_all;
use crate::llm::{GenerateRequest, Generation, LlmError, LlmResult, Usage};

/// llama.cpp's `LLAMA_FLASH_ATTN_TYPE_DISABLED`: with flash attention on, scores depend on how a
/// text is split across decode calls (by up to 0.45 nats), which would break prefix reuse.
const FLASH_ATTENTION_DISABLED: i32 = 0;

/// Most prefixes kept across calls.
const KEPT_PREFIXES: usize = 8;

/// A shared prefix shorter than this is recomputed rather than snapshotted (a snapshot copies
/// the whole sequence's KV, ~23 kB per token on SmolLM2).
const MIN_KEPT_TOKENS: usize = 32;

/// A snapshot is restored only when it saves at least this many tokens over sequence 0:
/// restoring copies its whole KV, which costs about as much as decoding a few tokens.
const MIN_RESTORED_TOKENS: usize = 16;

/// The most tokens one decode call takes: a pause or an abandoned call waits at most this long
/// (under a second on Qwen2.5-Coder-0.5B at 2 threads), and llama.cpp's prompt throughput is
/// about the same as with 512 (`llama-bench -ub 128,512`: 156 and 162 tok/s on the 0.5B).
/// Where a text is cut changes no score (exact kernels: a token's numbers do not depend on its
/// place in the batch).
pub const DECODE_STEP: usize = 128;

/// A job as queued: with the flag its caller sets if it stops waiting for the answer.
pub struct Queued {
    pub job: Job,
    /// Set when the caller's future is dropped before the answer: the job is left at its next
    /// decode call (a stage a person left while it was held does not run on after it).
    pub abandoned: Arc<AtomicBool>,
}

/// Work for the model thread.
pub enum Job {
    /// Per-token log-probs of each item's target.
    Score {
        items: Vec<ScoreItem>,
        /// How much of a request each item is (a classify request is several items); counted
        /// into `answered` as each item's last token is read. Empty: one request per item.
        shares: Vec<f64>,
        mode: ScoreMode,
        reply: oneshot::Sender<LlmResult<Vec<Vec<f64>>>>,
    },
    /// Prompt tokens with their request.
    Generate {
        requests: Vec<(Vec<i32>, GenerateRequest)>,
        /// Run the samples of a request one after another instead of in one batch (benchmarks).
        sequential: bool,
        reply: oneshot::Sender<LlmResult<Vec<Vec<Generation>>>>,
    },
    /// Decode `tokens` from an empty cache in as few decode calls as possible; the wall time.
    Prefill {
        tokens: Vec<i32>,
        reply: oneshot::Sender<LlmResult<Duration>>,
    },
    /// Forget every cached prefix.
    ClearCache {
        reply: oneshot::Sender<LlmResult<()>>,
    },
}

/// How a score job uses the KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreMode {
    /// Depth-first over the batch's prefix tree, reusing the cache between jobs and calls.
    Reuse,
    /// The from-scratch baseline: the cache is cleared before every item.
    Naive,
    /// Each target token by its own from-scratch forward pass over the tokens before it (the
    /// reference the exactness tests compare to).
    TokenByToken,
}

/// A decoded position and its logits row.
pub(super) type Row<'a> = (usize, &'a [f32]);

/// Context settings the worker is created with.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub n_ctx: u32,
    pub n_batch: u32,
    pub n_seq_max: u32,
    pub threads: i32,
}

/// What the worker shares with its backend.
pub struct Shared {
    pub usage: Arc<Mutex<Usage>>,
    /// Requests answered so far (see [`Worker`]).
    pub answered: Arc<Mutex<f64>>,
    /// Set when the backend is dropped: jobs stop at their next decode call.
    pub closing: Arc<AtomicBool>,
    /// Set by a pause: the next decode call waits until it is released.
    pub hold: Arc<Hold>,
}

/// Runs on the model thread until the job queue closes. `ready` gets the context size, or the
/// reason the context could not be created.
pub fn run(
    backend: &'static LlamaBackend,
    model: Arc<LlamaModel>,
    settings: WorkerSettings,
    shared: Shared,
    jobs: Receiver<Queued>,
    ready: std::sync::mpsc::Sender<LlmResult<u32>>,
) {
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(settings.n_ctx))
        .with_n_batch(settings.n_batch)
        .with_n_ubatch(settings.n_batch)
        .with_n_seq_max(settings.n_seq_max)
        .with_n_threads(settings.threads)
        .with_n_threads_batch(settings.threads)
        .with_flash_attention_policy(FLASH_ATTENTION_DISABLED)
        .with_kv_unified(true);
    let ctx = match model.new_context(backend, params) {
        Ok(ctx) => ctx,
        Err(e) => {
            let _ = ready.send(Err(LlmError::Model(format!(
                "could not create a llama.cpp context of {} tokens: {e}; lower `context_size`",
                settings.n_ctx
            ))));
            return;
        }
    };
    let n_ctx = ctx.n_ctx();
    let mut worker = Worker {
        model: &model,
        n_batch: ctx.n_batch() as usize,
        n_ctx: n_ctx as usize,
        n_seq_max: settings.n_seq_max as usize,
        threads: settings.threads.max(1) as usize,
        batch: LlamaBatch::new(ctx.n_batch() as usize, settings.n_seq_max as i32),
        ctx,
        cached: Vec::new(),
        used: 0,
        kept: KeptPrefixes::new(KEPT_PREFIXES, n_ctx as usize),
        usage: shared.usage,
        answered: shared.answered,
        closing: shared.closing,
        hold: shared.hold,
        abandoned: Arc::default(),
    };
    if ready.send(Ok(n_ctx)).is_err() {
        return;
    }
    let hold = Arc::clone(&worker.hold);
    while let Ok(Queued { job, abandoned }) = jobs.recv() {
        let _working = hold.working();
        worker.abandoned = abandoned;
        worker.serve(job);
    }
}

pub(super) struct Worker<'m> {
    pub(super) model: &'m LlamaModel,
    pub(super) ctx: LlamaContext<'m>,
    pub(super) batch: LlamaBatch<'static>,
    pub(super) n_batch: usize,
    pub(super) n_ctx: usize,
    pub(super) n_seq_max: usize,
    /// llama.cpp's threads: what a decode step's sampling is spread over while they wait.
    pub(super) threads: usize,
    /// The tokens whose KV sequence 0 holds, from position 0.
    pub(super) cached: Vec<i32>,
    /// How much of `cached` a job has reused since it was decoded: a prefix worth keeping when
    /// sequence 0 moves on.
    used: usize,
    /// Prefixes of earlier jobs and calls, snapshotted before sequence 0 dropped them.
    kept: KeptPrefixes<SeqState>,
    pub(super) usage: Arc<Mutex<Usage>>,
    /// Requests answered so far, counted as each finishes (what progress is read from while a
    /// batch runs).
    answered: Arc<Mutex<f64>>,
    closing: Arc<AtomicBool>,
    hold: Arc<Hold>,
    /// The current job's caller stopped waiting for it ([`Queued::abandoned`]).
    abandoned: Arc<AtomicBool>,
}

impl Worker<'_> {
    fn serve(&mut self, job: Job) {
        match job {
            Job::Score {
                items,
                shares,
                mode,
                reply,
            } => {
                self.call_started();
                let result = self.guarded(|w| w.score(&items, &shares, mode));
                let _ = reply.send(result);
            }
            Job::Generate {
                requests,
                sequential,
                reply,
            } => {
                self.call_started();
                let result = self.guarded(|w| w.generate_all(&requests, sequential));
                let _ = reply.send(result);
            }
            Job::Prefill { tokens, reply } => {
                let result = self.guarded(|w| w.prefill(&tokens));
                let _ = reply.send(result);
            }
            Job::ClearCache { reply } => {
                self.clear();
                let _ = reply.send(Ok(()));
            }
        }
    }

    /// Runs a job, turning a panic inside llama-cpp-2 into an error; after any failure the KV
    /// state is unknown, so it is cleared.
    fn guarded<T>(&mut self, f: impl FnOnce(&mut Self) -> LlmResult<T>) -> LlmResult<T> {
        let result = match catch_unwind(AssertUnwindSafe(|| f(self))) {
            Ok(result) => result,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                Err(LlmError::Model(format!("the llama.cpp call failed: {msg}")))
            }
        };
        if result.is_err() {
            self.clear();
        }
        result
    }

    /// Before every decode call: waits while a pause holds the backend, then an error once the
    /// backend is being dropped (so the job in progress ends within one decode and the
    /// worker's thread can be joined) or the job's caller has gone.
    pub(super) fn still_open(&self) -> LlmResult<()> {
        let abandoned = || self.abandoned.load(Ordering::Relaxed);
        self.hold
            .wait_blocking(|| self.closing.load(Ordering::Relaxed) || abandoned());
        if self.closing.load(Ordering::Relaxed) {
            Err(LlmError::WorkerGone("the model is shutting down".into()))
        } else if abandoned() {
            Err(LlmError::WorkerGone(
                "the call was abandoned by its caller".into(),
            ))
        } else {
            Ok(())
        }
    }

    /// Forgets the live KV and every kept prefix.
    pub(super) fn clear(&mut self) {
        self.reset_live();
        self.kept.clear();
    }

    /// Empties the live KV (from-scratch baselines); kept prefixes stay.
    fn reset_live(&mut self) {
        self.ctx.clear_kv_cache();
        self.cached.clear();
        self.used = 0;
    }

    /// What the previous call left in sequence 0 is a recently used prefix as a whole.
    fn call_started(&mut self) {
        self.used = self.cached.len();
    }

    /// `share` of a request more is answered.
    pub(super) fn answer(&self, share: f64) {
        if let Ok(mut a) = self.answered.lock() {
            *a += share;
        }
    }

    pub(super) fn count(&self, f: impl FnOnce(&mut Usage)) {
        if let Ok(mut usage) = self.usage.lock() {
            f(&mut usage);
        }
    }

    /// Keeps the first `keep` cached tokens of sequence 0 and drops the rest; returns how many
    /// were kept.
    pub(super) fn truncate_cache(&mut self, keep: usize) -> usize {
        let keep = keep.min(self.cached.len());
        if keep == self.cached.len() {
            return keep;
        }
        match self
            .ctx
            .clear_kv_cache_seq(Some(0), Some(keep as u32), None)
        {
            Ok(true) => {
                self.cached.truncate(keep);
                keep
            }
            _ => {
                self.clear();
                0
            }
        }
    }

    /// Where to resume decoding `tokens` in sequence 0: after the prefix it shares with the
    /// cache (or with a kept prefix, restored into sequence 0 when that is longer), but no later
    /// than `limit` (the first position whose logits are needed), and never leaving a single
    /// token to decode. The cache is truncated there. Returns how many tokens are reused.
    ///
    /// llama.cpp computes a one-token batch along other kernels than a batch of two or more
    /// (measured on SmolLM2: up to 0.15 nats apart per token), while batches of two or more
    /// tokens agree bit for bit whatever their size (with llama.cpp's weight repacking off, see
    /// `exact_kernels`); so a lone last token is decoded together
    /// with its predecessor, whose KV comes out the same. A restored prefix is the same KV bytes
    /// its own decode wrote, so the same rule makes it exact.
    pub(super) fn restart(&mut self, tokens: &[i32], limit: usize) -> LlmResult<usize> {
        self.restart_for(tokens, limit, true)
    }

    /// `restart`, restoring a kept prefix only when `may_restore`: a generation group restores
    /// for its first prompt alone, so that the KV layout of its samples does not depend on what
    /// earlier calls left in `kept`.
    pub(super) fn restart_for(
        &mut self,
        tokens: &[i32],
        limit: usize,
        may_restore: bool,
    ) -> LlmResult<usize> {
        let resume = |shared: usize| {
            let start = shared.min(limit);
            if tokens.len().saturating_sub(start) == 1 && start > 0 {
                start - 1
            } else {
                start
            }
        };
        let here = resume(common_prefix(&self.cached, tokens));
        self.keep_if_leaving(here)?;
        if let Some((i, shared)) = self.kept.best(tokens).filter(|_| may_restore) {
            let there = resume(shared);
            if there >= here + MIN_RESTORED_TOKENS {
                self.restore(i)?;
                let start = self.truncate_cache(there);
                self.used = start;
                return Ok(start);
            }
        }
        let start = self.truncate_cache(here);
        self.used = start;
        Ok(start)
    }

    /// Snapshots sequence 0 when truncating it to `keep` tokens would drop a prefix that jobs
    /// have reused (or that the previous call ended on).
    fn keep_if_leaving(&mut self, keep: usize) -> LlmResult<()> {
        if self.used < keep + MIN_KEPT_TOKENS || self.kept.covers(&self.cached) {
            return Ok(());
        }
        let state = self
            .ctx
            .state_seq_get(0, LlamaStateSeqFlags::empty())
            .map_err(|e| LlmError::Model(format!("saving a prefix's KV: {e}")))?;
        self.kept.insert(self.cached.clone(), state);
        Ok(())
    }

    /// Replaces sequence 0 by kept prefix `i`.
    fn restore(&mut self, i: usize) -> LlmResult<()> {
        self.ctx
            .clear_kv_cache_seq(Some(0), None, None)
            .map_err(|e| LlmError::Model(format!("clearing sequence 0: {e}")))?;
        self.cached.clear();
        let entry = self.kept.touch(i);
        self.ctx
            .state_seq_set(&entry.state, 0)
            .map_err(|e| LlmError::Model(format!("restoring a kept prefix's KV: {e}")))?;
        self.cached = entry.tokens.clone();
        Ok(())
    }

    /// Decodes `tokens[start..]` into `seq` at positions `start..`, in chunks of at most
    /// `n_batch` and [`DECODE_STEP`], and hands the logits rows of the positions where `want` is true to `on_rows`, a
    /// chunk's rows at once (so they can be read in parallel).
    pub(super) fn decode_span(
        &mut self,
        tokens: &[i32],
        start: usize,
        seq: i32,
        want: &dyn Fn(usize) -> bool,
        on_rows: &mut dyn FnMut(&[Row<'_>]),
    ) -> LlmResult<()> {
        if tokens.len() > self.n_ctx {
            return Err(LlmError::ContextOverflow {
                needed: tokens.len(),
                available: self.n_ctx,
            });
        }
        let mut chunk_start = start;
        while chunk_start < tokens.len() {
            let mut chunk_end = (chunk_start + self.n_batch.min(DECODE_STEP)).min(tokens.len());
            if tokens.len() - chunk_end == 1 && chunk_end - chunk_start > 2 {
                chunk_end -= 1;
            }
            self.batch.clear();
            for (pos, &token) in tokens.iter().enumerate().take(chunk_end).skip(chunk_start) {
                self.batch
                    .add(LlamaToken(token), pos as i32, &[seq], want(pos))
                    .map_err(|e| LlmError::Model(format!("building a decode batch: {e}")))?;
            }
            self.still_open()?;
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| decode_error(e, tokens.len(), self.n_ctx))?;
            self.count(|u| u.tokens_computed += (chunk_end - chunk_start) as u64);
            let rows: Vec<Row<'_>> = (chunk_start..chunk_end)
                .filter(|&pos| want(pos))
                .map(|pos| (pos, self.ctx.get_logits_ith((pos - chunk_start) as i32)))
                .collect();
            on_rows(&rows);
            chunk_start = chunk_end;
        }
        Ok(())
    }

    /// Scores the items; in `Reuse` mode depth-first over their prefix tree with the cache kept.
    fn score(
        &mut self,
        items: &[ScoreItem],
        shares: &[f64],
        mode: ScoreMode,
    ) -> LlmResult<Vec<Vec<f64>>> {
        let mut out: Vec<Vec<f64>> = items
            .iter()
            .map(|it| vec![0.0; it.tokens.len() - it.first])
            .collect();
        // Reads still to come per item: an item is answered when its count reaches zero.
        let mut pending: Vec<usize> = out.iter().map(Vec::len).collect();
        let share = |i: usize| shares.get(i).copied().unwrap_or(1.0);
        let empty: f64 = (0..items.len())
            .filter(|i| pending[*i] == 0)
            .map(share)
            .sum();
        self.answer(empty);
        let jobs = match mode {
            ScoreMode::Reuse => plan(items),
            ScoreMode::Naive => items.iter().enumerate().map(solo_job).collect(),
            ScoreMode::TokenByToken => items.iter().enumerate().flat_map(prefix_jobs).collect(),
        };
        for job in jobs {
            // The baselines start each job from an empty cache and never restore a kept prefix.
            let start = if mode == ScoreMode::Reuse {
                self.restart(&job.tokens, job.first_read())?
            } else {
                self.reset_live();
                0
            };
            let mut want = vec![false; job.tokens.len()];
            for r in &job.reads {
                want[r.pos] = true;
            }
            let reads = &job.reads;
            let mut next = 0;
            let threads = self.threads;
            let mut on_rows = |rows: &[Row<'_>]| {
                let mut logits: Vec<&[f32]> = rows.iter().map(|r| r.1).collect();
                let lses = log_sum_exp_all(&mut logits, threads);
                for (&(pos, row), lse) in rows.iter().zip(lses) {
                    while next < reads.len() && reads[next].pos == pos {
                        let r: Read = reads[next];
                        out[r.item][r.index] = row[r.token as usize] as f64 - lse;
                        next += 1;
                    }
                }
            };
            self.decode_span(&job.tokens, start, 0, &|p| want[p], &mut on_rows)?;
            let mut done = 0.0;
            for r in &job.reads {
                pending[r.item] = pending[r.item].saturating_sub(1);
                if pending[r.item] == 0 {
                    done += share(r.item);
                }
            }
            self.answer(done);
            self.cached = job.tokens;
            self.count(|u| u.tokens_reused += start as u64);
        }
        Ok(out)
    }

    fn prefill(&mut self, tokens: &[i32]) -> LlmResult<Duration> {
        self.reset_live();
        let last = tokens.len().saturating_sub(1);
        let started = Instant::now();
        self.decode_span(tokens, 0, 0, &|p| p == last, &mut |_| {})?;
        let elapsed = started.elapsed();
        self.cached = tokens.to_vec();
        Ok(elapsed)
    }
}

fn solo_job((item, it): (usize, &ScoreItem)) -> PlanJob {
    let reads = (it.first - 1..it.tokens.len() - 1)
        .map(|pos| Read {
            item,
            index: pos + 1 - it.first,
            pos,
            token: it.tokens[pos + 1],
        })
        .collect();
    PlanJob {
        tokens: it.tokens[..it.tokens.len() - 1].to_vec(),
        reads,
    }
}

/// One from-scratch job per target token, over exactly the tokens before it: the textbook
/// `p(t_k | t_<k)` that the reused path must reproduce.
fn prefix_jobs((item, it): (usize, &ScoreItem)) -> Vec<PlanJob> {
    (it.first..it.tokens.len())
        .map(|k| PlanJob {
            tokens: it.tokens[..k].to_vec(),
            reads: vec![Read {
                item,
                index: k - it.first,
                pos: k - 1,
                token: it.tokens[k],
            }],
        })
        .collect()
}

fn decode_error(e: llama_cpp_2::DecodeError, needed: usize, available: usize) -> LlmError {
    match e {
        llama_cpp_2::DecodeError::NoKvCacheSlot => LlmError::ContextOverflow { needed, available },
        other => LlmError::Model(format!("llama.cpp decode failed: {other}")),
    }
}
