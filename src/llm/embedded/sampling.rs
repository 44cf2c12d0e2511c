//! Log-softmax and token sampling: pure functions over a logits row, so the
//! arithmetic is tested without a model and the random stream depends only on the seed.
//!
//! Sampling is done here rather than with llama.cpp's sampler chain so that sample `j` of a
//! request draws from its own generator seeded by `(seed, j)`, whatever else shares the batch.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `log Σ exp(logits)`, in f64: the normaliser of the log-softmax of one logits row.
pub fn log_sum_exp(logits: &[f32]) -> f64 {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    max + sum.ln()
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
    let lse = log_sum_exp(logits);
    let token = if temperature <= 0.0 || !temperature.is_finite() {
        argmax(logits)
    } else {
        draw(logits, temperature as f64, top_p as f64, rng)
    };
    (token, logits[token] as f64 - lse)
}

fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best
}

fn draw(logits: &[f32], temperature: f64, top_p: f64, rng: &mut ChaCha8Rng) -> usize {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let probs: Vec<f64> = logits
        .iter()
        .map(|&l| ((l as f64 - max) / temperature).exp())
        .collect();
    let total: f64 = probs.iter().sum();
    if !(top_p > 0.0 && top_p < 1.0) {
        // The whole distribution: no ordering needed, walk it in id order.
        let u = rng.gen::<f64>() * total;
        let mut acc = 0.0;
        for (i, p) in probs.iter().enumerate() {
            acc += p;
            if u < acc {
                return i;
            }
        }
        return probs.iter().rposition(|p| *p > 0.0).unwrap_or(0);
    }
    // Descending probability, ties by id: a total order, so the nucleus (and the draw) is
    // deterministic. Only the head of the vocabulary is sorted unless it holds too little mass.
    let by_prob = |a: &usize, b: &usize| probs[*b].total_cmp(&probs[*a]).then(a.cmp(b));
    let mut order: Vec<usize> = (0..probs.len()).collect();
    let head = HEAD.min(order.len());
    if head < order.len() {
        order.select_nth_unstable_by(head - 1, by_prob);
    }
    order[..head].sort_by(by_prob);
    let keep_mass = top_p * total;
    let head_mass: f64 = order[..head].iter().map(|&i| probs[i]).sum();
    if head_mass < keep_mass {
        order.sort_by(by_prob);
    }
    let mut kept = 0;
    let mut mass = 0.0;
    for &i in &order {
        kept += 1;
        mass += probs[i];
        if mass >= keep_mass {
            break;
        }
    }
    let u: f64 = rng.gen::<f64>() * mass;
    let mut acc = 0.0;
    for &i in &order[..kept] {
        acc += probs[i];
        if u < acc {
            return i;
        }
    }
    order[kept - 1]
}

/// How many of the most likely tokens are sorted before trying the nucleus within them.
const HEAD: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

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
            draws.iter().any(|&t| t >= HEAD),
            "nucleus of a flat distribution is wide"
        );
        assert!(draws.iter().all(|&t| t < 2000));
    }
}
