//! Log-softmax and token sampling: pure functions over a logits row, so the
//! arithmetic is tested without a model and the random stream depends only on the seed.
//!
//! Sampling is done here rather than with llama.cpp's sampler chain so that sample `j` of a
//! request draws from its own generator seeded by `(seed, j)`, whatever else shares the batch.
//!
//! A row is the whole vocabulary (151,936 entries on Qwen2.5), and a decode step samples every
//! sequence of its batch while llama.cpp's threads wait, so each row is read as few times as the
//! arithmetic allows: one pass for its maximum, one pass of exponentials giving both the
//! normaliser and the draw's mass, and the nucleus sorted among the tokens that can be in it
//! only. The numbers are those of the plain definitions below (`tests::reference`), bit for bit.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `log Σ exp(logits)`, in f64: the normaliser of the log-softmax of one logits row.
pub fn log_sum_exp(logits: &[f32]) -> f64 {
    let max = max_of(logits) as f64;
    if !max.is_finite() {
        return max;
    }
    max + exp_sum(logits, max).ln()
}

/// `Σ exp(l − max)` over the row, in id order.
fn exp_sum(logits: &[f32], max: f64) -> f64 {
    logits.iter().map(|&l| (l as f64 - max).exp()).sum()
}

/// The largest logit (NaNs ignored), in one pass the compiler vectorises: eight running maxima.
fn max_of(logits: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = logits.chunks_exact(8);
    for chunk in &mut chunks {
        for (m, &l) in lanes.iter_mut().zip(chunk) {
            *m = if l > *m { l } else { *m };
        }
    }
    let rest = chunks.remainder().iter();
    lanes
        .iter()
        .chain(rest)
        .cloned()
        .fold(f32::NEG_INFINITY, f32::max)
}

/// The generator for sample `j` of a request with `seed`: independent streams per sample, the
/// same stream for the same `(seed, j)`.
pub fn sample_rng(seed: u64, j: u32) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(splitmix64(seed));
    rng.set_stream(j as u64);
    rng
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Picks the next token: the argmax when `temperature <= 0` (ties go to the lowest id),
/// otherwise a draw from the softmax of `logits / temperature` restricted to the smallest set of
/// most likely tokens whose mass reaches `top_p`. Returns the token and its log-probability
/// under the model (temperature 1, no truncation), which is what posterior weights need.
pub fn sample(logits: &[f32], temperature: f32, top_p: f32, rng: &mut ChaCha8Rng) -> (usize, f64) {
    let max32 = max_of(logits);
    let max = max32 as f64;
    if !max.is_finite() {
        // No finite logit: nothing to weigh; the first token, as a plain argmax would pick.
        return (argmax(logits, max32), f64::NAN);
    }
    let greedy = temperature <= 0.0 || !temperature.is_finite();
    if greedy {
        let token = argmax(logits, max32);
        return (
            token,
            logits[token] as f64 - (max + exp_sum(logits, max).ln()),
        );
    }
    let t = temperature as f64;
    // Both sums in one pass, each in id order (the order the plain definitions sum in).
    let (sum, total) = if t == 1.0 {
        let s = exp_sum(logits, max);
        (s, s)
    } else {
        logits.iter().fold((0.0f64, 0.0f64), |(s, m), &l| {
            let d = l as f64 - max;
            (s + d.exp(), m + (d / t).exp())
        })
    };
    let token = draw(logits, max, t, total, top_p as f64, rng);
    (token, logits[token] as f64 - (max + sum.ln()))
}

/// One row of a decode step to sample from: the request's settings and the sample's generator.
pub struct Draw<'a> {
    pub logits: &'a [f32],
    pub temperature: f32,
    pub top_p: f32,
    pub rng: &'a mut ChaCha8Rng,
}

/// Samples every row of a decode step (each as [`sample`]) over `threads` threads. Each row
/// draws from its own generator, so the result does not depend on how the rows are split.
pub fn sample_all(draws: &mut [Draw<'_>], threads: usize) -> Vec<(usize, f64)> {
    spread(draws, threads, |d| {
        sample(d.logits, d.temperature, d.top_p, d.rng)
    })
}

/// [`log_sum_exp`] of every row, over `threads` threads.
pub fn log_sum_exp_all(rows: &mut [&[f32]], threads: usize) -> Vec<f64> {
    spread(rows, threads, |row| log_sum_exp(row))
}

/// `f` of every item, in order, the items split into `threads` runs, one on this thread and the
/// others on scoped threads: the rows of a decode are read while llama.cpp's threads wait, so
/// their cores are free.
fn spread<T: Send, R: Send>(
    items: &mut [T],
    threads: usize,
    f: impl Fn(&mut T) -> R + Sync,
) -> Vec<R> {
    if threads < 2 || items.len() < 2 {
        return items.iter_mut().map(f).collect();
    }
    let per = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let mut chunks = items.chunks_mut(per);
        let first = chunks.next().unwrap_or_default();
        let others: Vec<_> = chunks
            .map(|chunk| scope.spawn(move || chunk.iter_mut().map(f).collect::<Vec<_>>()))
            .collect();
        let mut out: Vec<R> = first.iter_mut().map(f).collect();
        for handle in others {
            match handle.join() {
                Ok(rest) => out.extend(rest),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

/// The first token holding the maximum `max` (found by `max_of`).
fn argmax(logits: &[f32], max: f32) -> usize {
    logits.iter().position(|&l| l == max).unwrap_or(0)
}

/// A draw from the weights `weight(l)` (summing to `total` over the row) cut to the nucleus of
/// mass `top_p`: the most likely tokens first, ties by id, as few as reach `top_p · total`.
fn draw(logits: &[f32], max: f64, t: f64, total: f64, top_p: f64, rng: &mut ChaCha8Rng) -> usize {
    let weight = |l: f32| ((l as f64 - max) / t).exp();
    if !(top_p > 0.0 && top_p < 1.0) {
        // The whole distribution: no ordering needed, walk it in id order.
        let u = rng.gen::<f64>() * total;
        let mut acc = 0.0;
        let mut last_positive = 0;
        for (i, &l) in logits.iter().enumerate() {
            let p = weight(l);
            acc += p;
            if u < acc {
                return i;
            }
            if p > 0.0 {
                last_positive = i;
            }
        }
        return last_positive;
    }
    let keep_mass = top_p * total;
    // The tokens below `floor` weigh less together than the row's length times it, which is
    // what the nucleus may leave out: so the nucleus lies among the tokens at or above it, a
    // prefix of the row's descending order. They are found by their logits (a margin for the
    // rounding of `exp`), then by their weights exactly. Should rounding leave that prefix's
    // sum short of the mass, the whole row is ordered.
    let floor = total * (1.0 - top_p) / logits.len() as f64;
    let min_logit = max + t * floor.ln() - 1e-6;
    let candidates = logits
        .iter()
        .enumerate()
        .filter(|&(_, &l)| l as f64 >= min_logit)
        .map(|(i, &l)| (weight(l), i))
        .filter(|&(p, _)| p >= floor)
        .collect();
    nucleus(candidates, keep_mass, false, rng).unwrap_or_else(|| {
        let all = logits.iter().enumerate().map(|(i, &l)| (weight(l), i));
        nucleus(all.collect(), keep_mass, true, rng).unwrap_or(0)
    })
}

/// Orders `(weight, token)` pairs (descending weight, ties by id), keeps the shortest prefix
/// reaching `keep_mass` and draws from it. `None`, with the generator untouched, when the pairs
/// fall short of the mass and are not the whole row (`complete`).
fn nucleus(
    mut order: Vec<(f64, usize)>,
    keep_mass: f64,
    complete: bool,
    rng: &mut ChaCha8Rng,
) -> Option<usize> {
    order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut kept = 0;
    let mut mass = 0.0;
    for &(p, _) in &order {
        kept += 1;
        mass += p;
        if mass >= keep_mass {
            break;
        }
    }
    if (mass < keep_mass && !complete) || kept == 0 {
        return None;
    }
    let u: f64 = rng.gen::<f64>() * mass;
    let mut acc = 0.0;
    for &(p, i) in &order[..kept] {
        acc += p;
        if u < acc {
            return Some(i);
        }
    }
    Some(order[kept - 1].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain definitions `sample` must equal bit for bit: the normaliser summed in id order,
    /// the weights materialised, the whole row ordered (descending weight, ties by id).
    fn reference(
        logits: &[f32],
        temperature: f32,
        top_p: f32,
        rng: &mut ChaCha8Rng,
    ) -> (usize, f64) {
        let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = max
            + logits
                .iter()
                .map(|&l| (l as f64 - max).exp())
                .sum::<f64>()
                .ln();
        let token = if temperature <= 0.0 {
            let mut best = 0;
            for (i, &l) in logits.iter().enumerate() {
                if l > logits[best] {
                    best = i;
                }
            }
            best
        } else {
            let t = temperature as f64;
            let probs: Vec<f64> = logits
                .iter()
                .map(|&l| ((l as f64 - max) / t).exp())
                .collect();
            let total: f64 = probs.iter().sum();
            let top_p = top_p as f64;
            let mut order: Vec<usize> = (0..probs.len()).collect();
            let mut kept = order.len();
            let mut mass = total;
            if top_p > 0.0 && top_p < 1.0 {
                order.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]).then(a.cmp(b)));
                kept = 0;
                mass = 0.0;
                for &i in &order {
                    kept += 1;
                    mass += probs[i];
                    if mass >= top_p * total {
                        break;
                    }
                }
            }
            let u = rng.gen::<f64>() * mass;
            let mut acc = 0.0;
            let mut chosen = None;
            for &i in &order[..kept] {
                acc += probs[i];
                if u < acc {
                    chosen = Some(i);
                    break;
                }
            }
            chosen.unwrap_or_else(|| {
                if kept == order.len() && !(top_p > 0.0 && top_p < 1.0) {
                    probs.iter().rposition(|p| *p > 0.0).unwrap_or(0)
                } else {
                    order[kept - 1]
                }
            })
        };
        (token, logits[token] as f64 - lse)
    }

    /// Rows shaped like a model's (a few peaked tokens over a broad floor), flat ones, rows with
    /// ties, and short ones.
    fn rows() -> Vec<Vec<f32>> {
        let mut rng = sample_rng(11, 0);
        let mut rows = Vec::new();
        for (n, spread, peaks) in [(5000, 12.0, 5), (5000, 3.0, 0), (70, 1.0, 2), (3, 0.5, 1)] {
            for k in 0..4 {
                let mut row: Vec<f32> = (0..n).map(|_| rng.gen::<f32>() * spread - 20.0).collect();
                for j in 0..peaks {
                    row[(k * 97 + j * 31) % n] = 2.0 + (j % 3) as f32 * 0.75;
                }
                rows.push(row);
            }
        }
        rows.push(vec![1.5; 300]);
        rows
    }

    #[test]
    fn sampling_equals_the_plain_definitions_bit_for_bit() {
        for (r, row) in rows().iter().enumerate() {
            for temperature in [0.0f32, 0.4, 0.7, 1.0, 1.6] {
                for top_p in [0.3f32, 0.9, 0.95, 1.0] {
                    let (mut fast, mut plain) = (sample_rng(r as u64, 1), sample_rng(r as u64, 1));
                    for draw in 0..30 {
                        let (a, b) = (
                            sample(row, temperature, top_p, &mut fast),
                            reference(row, temperature, top_p, &mut plain),
                        );
                        assert_eq!(
                            a.0, b.0,
                            "row {r}, T {temperature}, top-p {top_p}, draw {draw}"
                        );
                        assert_eq!(a.1.to_bits(), b.1.to_bits(), "row {r}: log-probability");
                    }
                }
            }
            assert_eq!(log_sum_exp(row).to_bits(), {
                let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
                (max + row
                    .iter()
                    .map(|&l| (l as f64 - max).exp())
                    .sum::<f64>()
                    .ln())
                .to_bits()
            });
        }
    }

    #[test]
    fn a_step_sampled_on_several_threads_draws_what_one_thread_does() {
        let rows = rows();
        let picks = |threads: usize| {
            let mut rngs: Vec<ChaCha8Rng> =
                (0..rows.len()).map(|j| sample_rng(4, j as u32)).collect();
            let mut draws: Vec<Draw<'_>> = rows
                .iter()
                .zip(rngs.iter_mut())
                .map(|(row, rng)| Draw {
                    logits: row,
                    temperature: 0.8,
                    top_p: 0.95,
                    rng,
                })
                .collect();
            let first = sample_all(&mut draws, threads);
            let second = sample_all(&mut draws, threads);
            (first, second)
        };
        let alone = picks(1);
        assert_ne!(alone.0, alone.1, "each row's generator moves on");
        for threads in [2, 3, 8, 64] {
            assert_eq!(picks(threads), alone, "{threads} threads");
        }
    }

    #[test]
    fn log_sum_exp_matches_direct_sum() {
        let l = [1.0f32, 2.0, 3.0];
        let direct = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        assert!((log_sum_exp(&l) - direct).abs() < 1e-12);
    }

    #[test]
    fn greedy_picks_argmax_and_reports_model_logprob() {
        let mut rng = sample_rng(0, 0);
        let (t, lp) = sample(&[0.0, 5.0, 1.0], 0.0, 1.0, &mut rng);
        assert_eq!(t, 1);
        assert!((lp - (5.0 - log_sum_exp(&[0.0, 5.0, 1.0]))).abs() < 1e-12);
    }

    #[test]
    fn same_seed_and_sample_index_give_the_same_draws() {
        let logits: Vec<f32> = (0..50).map(|i| (i % 7) as f32 * 0.3).collect();
        let draws = |seed, j| {
            let mut rng = sample_rng(seed, j);
            (0..20)
                .map(|_| sample(&logits, 1.0, 0.95, &mut rng).0)
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(7, 1), draws(7, 1));
        assert_ne!(draws(7, 1), draws(7, 2));
    }

    #[test]
    fn top_p_keeps_only_the_head_of_the_distribution() {
        let logits = [10.0f32, 0.0, 0.0, 0.0];
        let mut rng = sample_rng(3, 0);
        for _ in 0..100 {
            assert_eq!(sample(&logits, 1.0, 0.5, &mut rng).0, 0);
        }
    }

    #[test]
    fn a_flat_distribution_draws_beyond_the_sorted_head() {
        let logits = vec![0.0f32; 2000];
        let mut rng = sample_rng(5, 0);
        let draws: Vec<usize> = (0..200)
            .map(|_| sample(&logits, 1.0, 0.99, &mut rng).0)
            .collect();
        assert!(
            draws.iter().any(|&t| t >= 256),
            "nucleus of a flat distribution is wide"
        );
        assert!(draws.iter().all(|&t| t < 2000));
    }
}
