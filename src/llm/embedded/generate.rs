//! Generation on the model thread: the prompt is decoded once into sequence 0 (reusing the
//! cached prefix), copied into one work sequence per sample, and the samples advance together,
//! one token each per decode call. Sample `j` draws from its own generator seeded by
//! `(seed, j)`.
//!
//! Reproducibility: how a request's samples are grouped depends only on the request and the
//! engine settings (part of `model_id`), and the KV layout it starts from is canonical (sequence
//! 0 holds its cached tokens in the first cells), so the same request gives the same samples
//! whatever else is in the call or was run before. Generated alone (`sequential`) a sample can
//! part from its batched twin at a near-tie: interleaved KV cells regroup float sums.

use llama_cpp_2::token::LlamaToken;

use super::sampling::{sample, sample_rng};
use super::tokens::piece;
use super::worker::Worker;
use crate::llm::stop::find_stop;
use crate::llm::{GenerateRequest, Generation, LlmError, LlmResult};

/// One sample being generated.
struct Sample {
    seq: i32,
    rng: rand_chacha::ChaCha8Rng,
    bytes: Vec<u8>,
    text: String,
    logprobs: Vec<f64>,
    /// The token before `last` (the prompt's last token at first).
    prev: i32,
    /// The token to decode next.
    last: i32,
    done: bool,
    /// Finished by the token budget rather than a stop or the end of turn.
    cut: bool,
}

impl Sample {
    /// Takes the sampled token; returns whether this sample is finished.
    fn push(
        &mut self,
        w: &Worker<'_>,
        token: i32,
        logprob: f64,
        req: &GenerateRequest,
        room: usize,
    ) -> bool {
        self.logprobs.push(logprob);
        self.prev = self.last;
        self.last = token;
        if w.model.vocab().is_eog(LlamaToken(token)) {
            return true;
        }
        let checked = self.text.len();
        self.bytes.extend_from_slice(&piece(w.model, token));
        self.text = String::from_utf8_lossy(&self.bytes).into_owned();
        if let Some(cut) = find_stop(&self.text, &req.stop, checked) {
            self.text.truncate(cut);
            return true;
        }
        self.cut = self.logprobs.len() >= req.max_tokens as usize || self.logprobs.len() >= room;
        self.cut
    }

    fn finish(self) -> Generation {
        Generation {
            text: self.text,
            tokens: self.logprobs.len() as u32,
            token_logprobs: Some(self.logprobs),
            cut: self.cut,
        }
    }
}

impl Worker<'_> {
    /// `req.n` samples continuing `prompt`.
    pub(super) fn generate(
        &mut self,
        prompt: &[i32],
        req: &GenerateRequest,
        sequential: bool,
    ) -> LlmResult<Vec<Generation>> {
        self.count(|u| u.calls += 1);
        if prompt.len() >= self.n_ctx {
            return Err(LlmError::ContextOverflow {
                needed: prompt.len() + 1,
                available: self.n_ctx,
            });
        }
        if req.max_tokens == 0 || req.n == 0 {
            return Ok((0..req.n)
                .map(|_| Generation {
                    text: String::new(),
                    tokens: 0,
                    token_logprobs: Some(vec![]),
                    cut: true,
                })
                .collect());
        }
        // The prompt into sequence 0, reusing the cached prefix; keep the last row's logits.
        let last = prompt.len() - 1;
        let start = self.restart(prompt, last)?;
        let mut first_row: Vec<f32> = Vec::new();
        self.decode_span(prompt, start, 0, &|p| p == last, &mut |_, row| {
            first_row = row.to_vec()
        })?;
        self.cached = prompt.to_vec();
        self.count(|u| u.tokens_reused += start as u64);

        // Each sample adds at most max_tokens - 1 cells (its last token is never decoded).
        let room = self.n_ctx - prompt.len();
        let per_sample = (req.max_tokens as usize).min(room).max(1);
        let by_memory = (room / per_sample).max(1);
        let group = if sequential {
            1
        } else {
            (self.n_seq_max - 1).min(by_memory).max(1)
        };

        let mut out = Vec::with_capacity(req.n as usize);
        let mut j0 = 0u32;
        while j0 < req.n {
            let j1 = (j0 + group as u32).min(req.n);
            out.extend(self.generate_group(
                prompt.len(),
                prompt[last],
                &first_row,
                req,
                j0..j1,
                room,
            )?);
            j0 = j1;
        }
        Ok(out)
    }

    /// Samples `js` of a request, in sequences `1..`, all advancing one token per decode.
    fn generate_group(
        &mut self,
        prompt_len: usize,
        prompt_last: i32,
        first_row: &[f32],
        req: &GenerateRequest,
        js: std::ops::Range<u32>,
        room: usize,
    ) -> LlmResult<Vec<Generation>> {
        let mut samples: Vec<Sample> = Vec::new();
        for (k, j) in js.enumerate() {
            let seq = 1 + k as i32;
            let mut s = Sample {
                seq,
                rng: sample_rng(req.seed, j),
                bytes: Vec::new(),
                text: String::new(),
                logprobs: Vec::new(),
                prev: 0,
                last: prompt_last,
                done: false,
                cut: false,
            };
            let (token, logprob) = sample(first_row, req.temperature, req.top_p, &mut s.rng);
            s.done = s.push(self, token as i32, logprob, req, room);
            self.count(|u| u.tokens_generated += 1);
            samples.push(s);
        }
        let result = self.advance(prompt_len, req, &mut samples, room);
        for s in &samples {
            let _ = self.ctx.clear_kv_cache_seq(Some(s.seq as u32), None, None);
        }
        result?;
        Ok(samples.into_iter().map(Sample::finish).collect())
    }

    fn advance(
        &mut self,
        prompt_len: usize,
        req: &GenerateRequest,
        samples: &mut [Sample],
        room: usize,
    ) -> LlmResult<()> {
        for s in samples.iter() {
            if !s.done {
                self.ctx
                    .copy_kv_cache_seq(0, s.seq, None, None)
                    .map_err(|e| LlmError::Model(format!("copying the prompt's KV: {e}")))?;
            }
        }
        let mut step = 0usize;
        while samples.iter().any(|s| !s.done) {
            let pos = (prompt_len + step) as i32;
            self.batch.clear();
            let active: Vec<usize> = (0..samples.len()).filter(|&i| !samples[i].done).collect();
            // A lone sequence re-decodes its previous token alongside: one-token batches take
            // other kernels whose numbers differ (see `Worker::restart`), and a sample must come
            // out the same whether or not others share its batch.
            let paired = active.len() == 1;
            if paired {
                let s = &samples[active[0]];
                let _ = self
                    .ctx
                    .clear_kv_cache_seq(Some(s.seq as u32), Some(pos as u32 - 1), None);
                self.batch
                    .add(LlamaToken(s.prev), pos - 1, &[s.seq], false)
                    .map_err(|e| LlmError::Model(format!("building a decode batch: {e}")))?;
            }
            for &i in &active {
                self.batch
                    .add(LlamaToken(samples[i].last), pos, &[samples[i].seq], true)
                    .map_err(|e| LlmError::Model(format!("building a decode batch: {e}")))?;
            }
            self.still_open()?;
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| LlmError::Model(format!("llama.cpp decode failed: {e}")))?;
            self.count(|u| {
                u.tokens_computed += (active.len() + paired as usize) as u64;
                u.tokens_generated += active.len() as u64;
            });
            for (b, &i) in active.iter().enumerate() {
                let row = self.ctx.get_logits_ith((b + paired as usize) as i32);
                let (token, logprob) = sample(row, req.temperature, req.top_p, &mut samples[i].rng);
                let done = samples[i].push(self, token as i32, logprob, req, room);
                samples[i].done = done;
            }
            step += 1;
        }
        Ok(())
    }
}
