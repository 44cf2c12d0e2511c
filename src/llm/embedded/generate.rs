//! Generation on the model thread: all samples of all requests of a call advance together, one
//! token each per decode call, as many at once as there are work sequences and KV cells. Each
//! request's prompt is decoded once into sequence 0 (reusing the cached prefix) and copied into
//! one work sequence per sample; sample `j` of a request draws from its own generator seeded by
//! `(seed, j)`.
//!
//! Reproducibility: how a call's samples are grouped depends only on its requests and the engine
//! settings (part of `model_id`), and the KV layout a group starts from is canonical (sequence 0
//! holds its cached tokens in the first cells, and only the group's first prompt may restore a
//! kept prefix), so the same call gives the same samples whatever was run before. A request's
//! samples can part at a near-tie from the ones it gets in another call (other requests' KV
//! cells interleave with its own, which regroups float sums), as they can generated alone
//! (`sequential`). A call interrupted in the middle is redone whole, so a resumed run gets the
//! same texts.

use llama_cpp_2::token::LlamaToken;

use super::sampling::{sample, sample_all, sample_rng, Draw};
use super::tokens::piece;
use super::worker::Worker;
use crate::llm::stop::find_stop;
use crate::llm::{GenerateRequest, Generation, LlmError, LlmResult};

/// One sample being generated.
struct Sample {
    /// Its request: an index into the call.
    request: usize,
    seq: i32,
    rng: rand_chacha::ChaCha8Rng,
    bytes: Vec<u8>,
    text: String,
    logprobs: Vec<f64>,
    /// The position `last` is decoded at.
    pos: usize,
    /// The token before `last` (the prompt's last token at first).
    prev: i32,
    /// The token to decode next.
    last: i32,
    /// Tokens its sequence may still take: the context left after its prompt.
    room: usize,
    done: bool,
    /// Finished by the token budget rather than a stop or the end of turn.
    cut: bool,
}

impl Sample {
    /// Takes the sampled token; returns whether this sample is finished.
    fn push(&mut self, w: &Worker<'_>, token: i32, logprob: f64, req: &GenerateRequest) -> bool {
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
        self.cut =
            self.logprobs.len() >= req.max_tokens as usize || self.logprobs.len() >= self.room;
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

/// The logits row after the prompt of `request`, whose tokens sequence 0 holds.
#[derive(Default)]
struct LastRow {
    request: Option<usize>,
    logits: Vec<f32>,
}

/// Sample `j` of request `request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Unit {
    request: usize,
    j: u32,
}

/// The call's samples in order, in groups that generate together: each group within `slots`
/// work sequences and `cells` KV cells, counting a group's prompts once (a request's tokens, or
/// those beyond what it shares with the previous request of its group) and each sample's budget.
/// A request's samples may be spread over consecutive groups.
fn groups(requests: &[(Vec<i32>, GenerateRequest)], slots: usize, cells: usize) -> Vec<Vec<Unit>> {
    let prompt_cells = |r: usize, previous: Option<usize>| {
        let prompt = &requests[r].0;
        prompt.len() - previous.map_or(0, |p| common_len(&requests[p].0, prompt))
    };
    let mut out: Vec<Vec<Unit>> = Vec::new();
    let mut group: Vec<Unit> = Vec::new();
    let mut used = 0usize;
    for (r, (prompt, req)) in requests.iter().enumerate() {
        if req.max_tokens == 0 || req.n == 0 {
            continue;
        }
        let per_sample = (req.max_tokens as usize).min(cells.saturating_sub(prompt.len()).max(1));
        for j in 0..req.n {
            let previous = group.last().map(|u| u.request);
            let prompt_cost = if previous == Some(r) {
                0
            } else {
                prompt_cells(r, previous)
            };
            let full = group.len() >= slots || used + prompt_cost + per_sample > cells;
            if full && !group.is_empty() {
                out.push(std::mem::take(&mut group));
                used = 0;
                // The prompt is decoded again for the next group: counted whole.
                used += prompt_cells(r, None);
            } else {
                used += prompt_cost;
            }
            used += per_sample;
            group.push(Unit { request: r, j });
        }
    }
    if !group.is_empty() {
        out.push(group);
    }
    out
}

impl Worker<'_> {
    /// `req.n` samples continuing each request's prompt, the samples of all requests batched
    /// together; `sequential` generates one sample at a time instead (the benchmark's baseline).
    pub(super) fn generate_all(
        &mut self,
        requests: &[(Vec<i32>, GenerateRequest)],
        sequential: bool,
    ) -> LlmResult<Vec<Vec<Generation>>> {
        for (prompt, _) in requests {
            if prompt.len() >= self.n_ctx {
                return Err(LlmError::ContextOverflow {
                    needed: prompt.len() + 1,
                    available: self.n_ctx,
                });
            }
        }
        self.count(|u| u.calls += requests.len() as u64);
        let mut out: Vec<Vec<Option<Generation>>> = requests
            .iter()
            .map(|(_, req)| vec![None; req.n as usize])
            .collect();
        // Each sample takes at most max_tokens - 1 cells (its last token is never decoded).
        let slots = if sequential { 1 } else { self.n_seq_max - 1 };
        let mut progress = Progress::new(requests);
        for (r, (_, req)) in requests.iter().enumerate() {
            if req.n == 0 || req.max_tokens == 0 {
                out[r] = (0..req.n).map(|_| Some(empty_generation())).collect();
                self.answer(progress.samples_done(r, req.n));
            }
        }
        // The last prompt's logits row, kept for its samples in the next group.
        let mut row = LastRow::default();
        for group in groups(requests, slots, self.n_ctx) {
            let finished = self.generate_group(requests, &group, &mut row, &mut progress)?;
            for (unit, g) in group.iter().zip(finished) {
                out[unit.request][unit.j as usize] = Some(g);
                self.answer(progress.samples_done(unit.request, 1));
            }
        }
        Ok(out
            .into_iter()
            .map(|gs| {
                gs.into_iter()
                    .map(|g| g.unwrap_or_else(empty_generation))
                    .collect()
            })
            .collect())
    }

    /// One group's samples: each request's prompt into sequence 0 and from there into one work
    /// sequence per sample, then all samples advancing together.
    fn generate_group(
        &mut self,
        requests: &[(Vec<i32>, GenerateRequest)],
        group: &[Unit],
        row: &mut LastRow,
        progress: &mut Progress,
    ) -> LlmResult<Vec<Generation>> {
        let mut samples: Vec<Sample> = Vec::with_capacity(group.len());
        let result = self.start_samples(requests, group, row, &mut samples);
        let result = result.and_then(|()| self.advance(requests, &mut samples, progress));
        for s in &samples {
            let _ = self.ctx.clear_kv_cache_seq(Some(s.seq as u32), None, None);
        }
        result?;
        Ok(samples.into_iter().map(Sample::finish).collect())
    }

    fn start_samples(
        &mut self,
        requests: &[(Vec<i32>, GenerateRequest)],
        group: &[Unit],
        row: &mut LastRow,
        samples: &mut Vec<Sample>,
    ) -> LlmResult<()> {
        for (k, unit) in group.iter().enumerate() {
            let (prompt, req) = &requests[unit.request];
            let last = prompt.len() - 1;
            let in_sequence_0 = row.request == Some(unit.request) && self.cached == *prompt;
            if !in_sequence_0 {
                // The prompt into sequence 0, reusing the cached prefix; keep the last row.
                let start = self.restart_for(prompt, last, k == 0)?;
                let mut first_row = Vec::new();
                self.decode_span(prompt, start, 0, &|p| p == last, &mut |rows| {
                    if let Some((_, r)) = rows.first() {
                        first_row = r.to_vec()
                    }
                })?;
                *row = LastRow {
                    request: Some(unit.request),
                    logits: first_row,
                };
                self.cached = prompt.to_vec();
                self.count(|u| u.tokens_reused += start as u64);
            }
            let seq = 1 + k as i32;
            self.ctx
                .copy_kv_cache_seq(0, seq, None, None)
                .map_err(|e| LlmError::Model(format!("copying the prompt's KV: {e}")))?;
            let mut s = Sample {
                request: unit.request,
                seq,
                rng: sample_rng(req.seed, unit.j),
                bytes: Vec::new(),
                text: String::new(),
                logprobs: Vec::new(),
                pos: prompt.len(),
                prev: prompt[last],
                last: prompt[last],
                room: self.n_ctx - prompt.len(),
                done: false,
                cut: false,
            };
            let (token, logprob) = sample(&row.logits, req.temperature, req.top_p, &mut s.rng);
            s.done = s.push(self, token as i32, logprob, req);
            self.count(|u| u.tokens_generated += 1);
            samples.push(s);
        }
        Ok(())
    }

    fn advance(
        &mut self,
        requests: &[(Vec<i32>, GenerateRequest)],
        samples: &mut [Sample],
        progress: &mut Progress,
    ) -> LlmResult<()> {
        while samples.iter().any(|s| !s.done) {
            self.batch.clear();
            let active: Vec<usize> = (0..samples.len()).filter(|&i| !samples[i].done).collect();
            // A lone sequence re-decodes its previous token alongside: one-token batches take
            // other kernels whose numbers differ (see `Worker::restart`), and a sample must come
            // out the same whether or not others share its batch.
            let paired = active.len() == 1;
            if paired {
                let s = &samples[active[0]];
                let _ =
                    self.ctx
                        .clear_kv_cache_seq(Some(s.seq as u32), Some(s.pos as u32 - 1), None);
                self.batch
                    .add(LlamaToken(s.prev), s.pos as i32 - 1, &[s.seq], false)
                    .map_err(|e| LlmError::Model(format!("building a decode batch: {e}")))?;
            }
            for &i in &active {
                let s = &samples[i];
                self.batch
                    .add(LlamaToken(s.last), s.pos as i32, &[s.seq], true)
                    .map_err(|e| LlmError::Model(format!("building a decode batch: {e}")))?;
            }
            self.still_open()?;
            self.ctx.decode(&mut self.batch).map_err(|e| match e {
                llama_cpp_2::DecodeError::NoKvCacheSlot => LlmError::ContextOverflow {
                    needed: samples.iter().map(|s| s.pos + 1).max().unwrap_or(0),
                    available: self.n_ctx,
                },
                other => LlmError::Model(format!("llama.cpp decode failed: {other}")),
            })?;
            self.count(|u| {
                u.tokens_computed += (active.len() + paired as usize) as u64;
                u.tokens_generated += active.len() as u64;
            });
            let ctx = &self.ctx;
            let mut draws: Vec<Draw<'_>> = samples
                .iter_mut()
                .filter(|s| !s.done)
                .enumerate()
                .map(|(b, s)| {
                    let req = &requests[s.request].1;
                    Draw {
                        logits: ctx.get_logits_ith((b + paired as usize) as i32),
                        temperature: req.temperature,
                        top_p: req.top_p,
                        rng: &mut s.rng,
                    }
                })
                .collect();
            let picked = sample_all(&mut draws, self.threads);
            drop(draws);
            for (&i, (token, logprob)) in active.iter().zip(picked) {
                let req = &requests[samples[i].request].1;
                let s = &mut samples[i];
                s.pos += 1;
                s.done = s.push(self, token as i32, logprob, req);
            }
            let tokens = samples
                .iter()
                .map(|s| (s.request, s.logprobs.len(), s.done));
            self.answer(progress.tokens(requests, tokens));
        }
        Ok(())
    }
}

/// A call's progress in answered requests, moving with every decode step: a request is worth 1,
/// shared by its samples, and a sample in progress is credited the share of its token budget it
/// has generated, held below its whole share until it is finished (so the counter reaches a
/// request only once every sample of it is done).
struct Progress {
    /// Samples of each request.
    n: Vec<u32>,
    /// Samples of each request finished (their shares are in `credited`).
    finished: Vec<u32>,
    /// What each request has been credited so far (below 1 until its last sample is done).
    credited: Vec<f64>,
}

/// The most an unfinished sample is credited, as a part of its share.
const IN_PROGRESS_CAP: f64 = 0.95;

impl Progress {
    fn new(requests: &[(Vec<i32>, GenerateRequest)]) -> Progress {
        Progress {
            n: requests.iter().map(|(_, r)| r.n).collect(),
            finished: vec![0; requests.len()],
            credited: vec![0.0; requests.len()],
        }
    }

    /// The share of request `r` its finished samples make.
    fn finished_share(&self, r: usize) -> f64 {
        if self.finished[r] >= self.n[r] {
            1.0
        } else {
            self.finished[r] as f64 / self.n[r] as f64
        }
    }

    /// `k` more samples of request `r` finished: what to add to the answered count (the rest of
    /// the request's 1 with its last sample).
    fn samples_done(&mut self, r: usize, k: u32) -> f64 {
        self.finished[r] += k;
        self.raise(r, self.finished_share(r))
    }

    /// After a decode step: `(request, tokens generated, done)` for each sample of the group;
    /// returns what to add to the answered count.
    fn tokens(
        &mut self,
        requests: &[(Vec<i32>, GenerateRequest)],
        samples: impl IntoIterator<Item = (usize, usize, bool)>,
    ) -> f64 {
        let mut partial = vec![0.0; requests.len()];
        for (r, generated, done) in samples {
            let req = &requests[r].1;
            let part = if done {
                1.0
            } else {
                (generated as f64 / req.max_tokens.max(1) as f64).min(IN_PROGRESS_CAP)
            };
            partial[r] += part / req.n.max(1) as f64;
        }
        let mut added = 0.0;
        for (r, p) in partial.into_iter().enumerate() {
            if p > 0.0 && self.finished[r] < self.n[r] {
                let target = (self.finished_share(r) + p).min(IN_PROGRESS_CAP);
                added += self.raise(r, target);
            }
        }
        added
    }

    /// Raises request `r`'s credit to `target` (never lowers it); returns the increase.
    fn raise(&mut self, r: usize, target: f64) -> f64 {
        let up = (target - self.credited[r]).max(0.0);
        self.credited[r] += up;
        up
    }
}

fn empty_generation() -> Generation {
    Generation {
        text: String::new(),
        tokens: 0,
        token_logprobs: Some(vec![]),
        cut: true,
    }
}

fn common_len(a: &[i32], b: &[i32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Prompt;

    fn req(n: u32, max_tokens: u32) -> GenerateRequest {
        GenerateRequest {
            n,
            ..GenerateRequest::greedy(Prompt::raw(""), max_tokens, vec![])
        }
    }

    fn plan(
        requests: &[(Vec<i32>, GenerateRequest)],
        slots: usize,
        cells: usize,
    ) -> Vec<Vec<(usize, u32)>> {
        groups(requests, slots, cells)
            .into_iter()
            .map(|g| g.into_iter().map(|u| (u.request, u.j)).collect())
            .collect()
    }

    #[test]
    fn the_samples_of_several_requests_share_a_group() {
        let rs = vec![
            (vec![1; 10], req(1, 20)),
            (vec![2; 10], req(2, 20)),
            (vec![3; 10], req(1, 20)),
        ];
        assert_eq!(
            plan(&rs, 8, 1000),
            vec![vec![(0, 0), (1, 0), (1, 1), (2, 0)]]
        );
    }

    #[test]
    fn a_group_holds_at_most_the_work_sequences() {
        let rs = vec![(vec![1; 10], req(3, 20)), (vec![2; 10], req(2, 20))];
        assert_eq!(
            plan(&rs, 2, 1000),
            vec![vec![(0, 0), (0, 1)], vec![(0, 2), (1, 0)], vec![(1, 1)]]
        );
    }

    #[test]
    fn a_group_fits_its_prompts_and_budgets_in_the_context() {
        // 100 + 50 per request: two fit in 300 cells, not three.
        let rs = vec![
            (vec![1; 100], req(1, 50)),
            (vec![2; 100], req(1, 50)),
            (vec![3; 100], req(1, 50)),
        ];
        assert_eq!(plan(&rs, 8, 300), vec![vec![(0, 0), (1, 0)], vec![(2, 0)]]);
        // A shared prefix is counted once: 100 + 50, then 10 new + 50, then 10 new + 50.
        let mut a = vec![7; 90];
        a.extend([1; 10]);
        let mut b = vec![7; 90];
        b.extend([2; 10]);
        let mut c = vec![7; 90];
        c.extend([3; 10]);
        let rs = vec![(a, req(1, 50)), (b, req(1, 50)), (c, req(1, 50))];
        assert_eq!(plan(&rs, 8, 300), vec![vec![(0, 0), (1, 0), (2, 0)]]);
    }

    #[test]
    fn requests_with_nothing_to_generate_take_no_place() {
        let rs = vec![
            (vec![1; 10], req(0, 20)),
            (vec![2; 10], req(2, 0)),
            (vec![3; 10], req(1, 5)),
        ];
        assert_eq!(plan(&rs, 8, 1000), vec![vec![(2, 0)]]);
    }

    #[test]
    fn progress_moves_with_tokens_and_reaches_a_request_only_when_all_its_samples_finish() {
        let rs = vec![(vec![1; 10], req(2, 10)), (vec![2; 10], req(1, 10))];
        let mut p = Progress::new(&rs);
        let mut total = 0.0;
        // Halfway through every sample: each request half done, none whole.
        total += p.tokens(&rs, [(0, 5, false), (0, 5, false), (1, 5, false)]);
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        // Request 1 stops early: its share is whole only once its group reports it finished.
        total += p.tokens(&rs, [(0, 9, false), (0, 10, false), (1, 6, true)]);
        assert!(total < 2.0, "{total}");
        // Nothing is ever taken back, and finishing tops every request up to exactly 1.
        let before = total;
        total += p.tokens(&rs, [(0, 1, false), (0, 1, false), (1, 1, false)]);
        assert!(total >= before);
        total += p.samples_done(0, 2);
        total += p.samples_done(1, 1);
        assert!((total - 2.0).abs() < 1e-9, "{total}");
    }

    #[test]
    fn a_request_spread_over_groups_is_answered_with_its_last_sample() {
        let rs = vec![(vec![1; 10], req(3, 4))];
        let mut p = Progress::new(&rs);
        let mut total = p.tokens(&rs, [(0, 4, true), (0, 4, true)]);
        total += p.samples_done(0, 2);
        assert!(total < 1.0, "{total}");
        total += p.tokens(&rs, [(0, 2, false)]);
        assert!(total < 1.0, "{total}");
        total += p.samples_done(0, 1);
        assert!((total - 1.0).abs() < 1e-9, "{total}");
    }
}
