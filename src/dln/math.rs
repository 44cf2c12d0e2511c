//! The arithmetic of the method, free of any LLM: posterior sharpening and its entropy, the ELBO
//! terms, argmax selection, the held-out split, the memory of best-dev prompts, patience, the
//! trust-region KL and the decaying log-p penalty. Kept pure so every number can be unit-tested.

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::dln::demos::Demo;

/// Sharpened posterior weights `w_s = exp(w̃_s / T) / Σ exp(w̃_s' / T)` over the samples of one
/// example. Excluded samples (a person's choice) get weight 0 and take no part in the
/// normalization. If every sample is excluded, or every log-weight is `-inf`, the weights are
/// uniform over the non-excluded samples (all zero when all are excluded).
pub fn sharpen(log_weights: &[f64], excluded: &[bool], temperature: f64) -> Vec<f64> {
    let t = if temperature > 0.0 { temperature } else { 1.0 };
    let live: Vec<bool> = (0..log_weights.len())
        .map(|i| !excluded.get(i).copied().unwrap_or(false) && !log_weights[i].is_nan())
        .collect();
    let n_live = live.iter().filter(|l| **l).count();
    if n_live == 0 {
        return vec![0.0; log_weights.len()];
    }
    let m = log_weights
        .iter()
        .zip(&live)
        .filter(|(_, l)| **l)
        .map(|(w, _)| w / t)
        .fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return live
            .iter()
            .map(|l| if *l { 1.0 / n_live as f64 } else { 0.0 })
            .collect();
    }
    let unnorm: Vec<f64> = log_weights
        .iter()
        .zip(&live)
        .map(|(w, l)| if *l { (w / t - m).exp() } else { 0.0 })
        .collect();
    let z: f64 = unnorm.iter().sum();
    unnorm.iter().map(|u| u / z).collect()
}

/// Normalized entropy `-Σ w ln w / ln n` in [0, 1], `n` the number of samples with non-zero
/// support (1 = undecided between all samples, 0 = one sample holds all the weight).
pub fn normalized_entropy(weights: &[f64], n_samples: usize) -> f64 {
    if n_samples <= 1 {
        return 0.0;
    }
    let h: f64 = weights
        .iter()
        .filter(|w| **w > 0.0)
        .map(|w| -w * w.ln())
        .sum();
    (h / (n_samples as f64).ln()).clamp(0.0, 1.0)
}

/// Index of the largest value, the first one on ties; NaN never wins. `None` when empty or all NaN.
pub fn argmax(values: &[f64]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, v) in values.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        match best {
            None => best = Some(i),
            Some(b) if *v > values[b] => best = Some(i),
            _ => {}
        }
    }
    best
}

/// `(1/b) Σ_i Σ_s w_{i,s} · ll_{i,s}`: the weighted ELBO term of one candidate prompt, with
/// `log_likelihoods[i][s]` its score of example `i`'s sample `s` and `weights[i][s]` the
/// sharpened posterior weights. Samples with weight 0 contribute nothing even if their score is
/// `-inf`.
pub fn weighted_elbo(log_likelihoods: &[Vec<f64>], weights: &[Vec<f64>]) -> f64 {
    let b = log_likelihoods.len();
    if b == 0 {
        return 0.0;
    }
    let mut total = 0.0;
    for (ll, w) in log_likelihoods.iter().zip(weights) {
        for (l, w) in ll.iter().zip(w) {
            if *w > 0.0 {
                total += w * l;
            }
        }
    }
    total / b as f64
}

/// Plain batch mean `(1/b) Σ_i s_i` (DLN-1's score of a candidate).
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// `KL(p_old ‖ p_new) = Σ_c p_old(c) (ln p_old(c) − ln p_new(c))` between two class
/// distributions; classes where `p_old` is 0 contribute 0, and `p_new` is floored at 1e-12 so a
/// class the new prompt rules out costs a large but finite amount.
pub fn kl_divergence(p_old: &[f64], p_new: &[f64]) -> f64 {
    p_old
        .iter()
        .zip(p_new)
        .filter(|(p, _)| **p > 0.0)
        .map(|(p, q)| p * (p.ln() - q.max(1e-12).ln()))
        .sum()
}

/// The trust-region term of one candidate: the KL from the current prompt's class distribution
/// to the candidate's, averaged over the batch.
pub fn mean_kl(old: &[Vec<f64>], new: &[Vec<f64>]) -> f64 {
    let kls: Vec<f64> = old
        .iter()
        .zip(new)
        .map(|(p, q)| kl_divergence(p, q))
        .collect();
    mean(&kls)
}

/// The log-p penalty at `iteration` (0-based) of `iterations`: linear decay from `penalty` to
/// nearly 0, `penalty · (1 − iteration / iterations)`, or constant when `decay` is off.
pub fn logp_penalty_at(penalty: f64, iteration: usize, iterations: usize, decay: bool) -> f64 {
    if !decay || iterations == 0 {
        return penalty;
    }
    penalty * (1.0 - iteration as f64 / iterations as f64)
}

/// The ELBO1 of a candidate after the log-p penalty: `elbo − penalty · mean_{i wrong} lp_i`, with
/// `lp_i` the candidate's mean-token log-prob of the forward pass's own hidden text `h_i` for the
/// examples the network got wrong. Pushes the hidden layer away from hidden texts that led to
/// errors. No wrong examples, or a zero penalty: unchanged.
pub fn apply_logp_penalty(elbo: f64, penalty: f64, wrong_hidden_logprobs: &[f64]) -> f64 {
    if penalty == 0.0 || wrong_hidden_logprobs.is_empty() {
        return elbo;
    }
    elbo - penalty * mean(wrong_hidden_logprobs)
}

/// Held-out ranking: the batch positions shown to the proposer (a random half, at least one),
/// in ascending order; all positions when `held_out` is off. Candidates are still scored on the
/// whole batch, so half of it is unseen by the proposer.
pub fn proposer_subset<R: Rng>(batch_size: usize, held_out: bool, rng: &mut R) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..batch_size).collect();
    if !held_out || batch_size < 2 {
        return idx;
    }
    idx.shuffle(rng);
    idx.truncate(batch_size.div_ceil(2));
    idx.sort_unstable();
    idx
}

/// One remembered set of prompts (one per layer) with its dev accuracy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryEntry {
    pub prompts: Vec<String>,
    /// Each layer's demonstrations with its prompt (absent when no layer shows any).
    #[serde(default, skip_serializing_if = "no_demos")]
    pub demos: Vec<Vec<Demo>>,
    pub dev_accuracy: f64,
}

/// Whether no layer shows a demonstration (what keeps files of runs without them unchanged).
pub fn no_demos(demos: &[Vec<Demo>]) -> bool {
    demos.iter().all(Vec::is_empty)
}

/// The demonstrations as stored: nothing when no layer shows any (runs without
/// demonstrations write what they wrote before).
pub fn stored_demos(demos: Vec<Vec<Demo>>) -> Vec<Vec<Demo>> {
    if no_demos(&demos) {
        Vec::new()
    } else {
        demos
    }
}

/// The `M` prompt sets with the best dev accuracy so far; they rejoin the candidates of every
/// update so a good prompt lost to a noisy batch can come back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptMemory {
    pub capacity: usize,
    pub entries: Vec<MemoryEntry>,
}

impl PromptMemory {
    pub fn new(capacity: usize) -> Self {
        PromptMemory {
            capacity,
            entries: Vec::new(),
        }
    }

    /// Remembers `prompts` with `dev_accuracy`, keeping the best `capacity` sorted best first
    /// (earlier entries win ties). The same prompts twice keep their best accuracy.
    pub fn add(&mut self, prompts: Vec<String>, demos: Vec<Vec<Demo>>, dev_accuracy: f64) {
        if self.capacity == 0 {
            return;
        }
        let demos = stored_demos(demos);
        let same = |e: &&mut MemoryEntry| e.prompts == prompts && e.demos == demos;
        if let Some(e) = self.entries.iter_mut().find(same) {
            e.dev_accuracy = e.dev_accuracy.max(dev_accuracy);
        } else {
            self.entries.push(MemoryEntry {
                prompts,
                demos,
                dev_accuracy,
            });
        }
        self.entries
            .sort_by(|a, b| b.dev_accuracy.total_cmp(&a.dev_accuracy));
        self.entries.truncate(self.capacity);
    }

    /// The remembered prompts of one layer with their demonstrations, best first.
    pub fn layer_prompts(&self, layer: usize) -> Vec<(String, Vec<Demo>)> {
        self.entries
            .iter()
            .filter_map(|e| {
                let demos = e.demos.get(layer).cloned().unwrap_or_default();
                e.prompts.get(layer).map(|p| (p.clone(), demos))
            })
            .collect()
    }
}

/// Best-dev tracking with patience: after `tolerance` evaluations without improvement the
/// prompts go back to the best-dev ones (`None` = never).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BestDev {
    pub accuracy: Option<f64>,
    pub prompts: Vec<String>,
    /// The best prompts' demonstrations (absent when no layer shows any).
    #[serde(default, skip_serializing_if = "no_demos")]
    pub demos: Vec<Vec<Demo>>,
    /// Evaluations since the last improvement.
    pub waited: usize,
    pub tolerance: Option<usize>,
}

/// What one dev evaluation means for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevOutcome {
    pub improved: bool,
    /// The prompts must be reset to [`BestDev::prompts`].
    pub reset: bool,
}

impl BestDev {
    pub fn new(
        initial_prompts: Vec<String>,
        initial_demos: Vec<Vec<Demo>>,
        tolerance: Option<usize>,
    ) -> Self {
        BestDev {
            accuracy: None,
            prompts: initial_prompts,
            demos: stored_demos(initial_demos),
            waited: 0,
            tolerance,
        }
    }

    /// Records a dev accuracy of `prompts`. Improvement is strict (`>`); the first evaluation
    /// always improves. Patience counts evaluations without improvement, and when it reaches
    /// the tolerance the prompts are reset and the count restarts (as the reference does, a
    /// tolerance of 0 resets after every evaluation).
    pub fn observe(
        &mut self,
        accuracy: f64,
        prompts: &[String],
        demos: &[Vec<Demo>],
    ) -> DevOutcome {
        let improved = self.accuracy.is_none_or(|best| accuracy > best);
        if improved {
            self.accuracy = Some(accuracy);
            self.prompts = prompts.to_vec();
            self.demos = stored_demos(demos.to_vec());
            self.waited = 0;
        } else {
            self.waited += 1;
        }
        let reset = match self.tolerance {
            Some(t) => self.waited >= t,
            None => false,
        };
        if reset {
            self.waited = 0;
        }
        DevOutcome {
            improved,
            reset: reset && !improved,
        }
    }
}

/// Indices of a class-balanced minibatch: classes take turns (in a random order each round),
/// each drawing without replacement from its own shuffled pool, so the batch is as even across
/// classes as the data allows. `labels[i]` is example `i`'s class (`None` = unknown, pooled).
pub fn balanced_batch<R: Rng>(
    labels: &[Option<usize>],
    batch_size: usize,
    rng: &mut R,
) -> Vec<usize> {
    let mut pools: std::collections::BTreeMap<Option<usize>, Vec<usize>> = Default::default();
    for (i, l) in labels.iter().enumerate() {
        pools.entry(*l).or_default().push(i);
    }
    let mut pools: Vec<Vec<usize>> = pools.into_values().collect();
    for p in pools.iter_mut() {
        p.shuffle(rng);
    }
    let mut out = Vec::with_capacity(batch_size);
    while out.len() < batch_size && pools.iter().any(|p| !p.is_empty()) {
        let mut order: Vec<usize> = (0..pools.len()).collect();
        order.shuffle(rng);
        for c in order {
            if out.len() >= batch_size {
                break;
            }
            if let Some(i) = pools[c].pop() {
                out.push(i);
            }
        }
    }
    out
}

/// Indices of a plain random minibatch without replacement (the whole set if smaller).
pub fn random_batch<R: Rng>(n: usize, batch_size: usize, rng: &mut R) -> Vec<usize> {
    rand::seq::index::sample(rng, n, batch_size.min(n)).into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn layer_texts(m: &PromptMemory) -> Vec<String> {
        m.layer_prompts(0).into_iter().map(|(p, _)| p).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn sharpen_is_a_softmax_with_temperature() {
        let w = sharpen(&[0.0, (2.0f64).ln()], &[false, false], 1.0);
        assert!(close(w[0], 1.0 / 3.0) && close(w[1], 2.0 / 3.0), "{w:?}");
        // T = 2 halves the log-weights: weights ∝ 1, √2.
        let w = sharpen(&[0.0, (2.0f64).ln()], &[false, false], 2.0);
        let s = 2f64.sqrt();
        assert!(
            close(w[0], 1.0 / (1.0 + s)) && close(w[1], s / (1.0 + s)),
            "{w:?}"
        );
    }

    #[test]
    fn sharpen_skips_excluded_and_handles_minus_infinity() {
        let w = sharpen(&[-1.0, -1.0, 5.0], &[false, false, true], 1.0);
        assert_eq!(w, vec![0.5, 0.5, 0.0]);
        let w = sharpen(&[f64::NEG_INFINITY, -2.0], &[false, false], 1.0);
        assert_eq!(w, vec![0.0, 1.0]);
        let w = sharpen(
            &[f64::NEG_INFINITY, f64::NEG_INFINITY],
            &[false, false],
            1.0,
        );
        assert_eq!(w, vec![0.5, 0.5]);
        assert_eq!(sharpen(&[1.0], &[true], 1.0), vec![0.0]);
    }

    #[test]
    fn entropy_is_normalized() {
        assert!(close(normalized_entropy(&[0.25; 4], 4), 1.0));
        assert!(close(normalized_entropy(&[1.0, 0.0, 0.0], 3), 0.0));
        let h = -(0.5f64 * 0.5f64.ln() * 2.0) / 3f64.ln();
        assert!(close(normalized_entropy(&[0.5, 0.5, 0.0], 3), h));
        assert_eq!(normalized_entropy(&[1.0], 1), 0.0);
    }

    #[test]
    fn argmax_takes_first_on_ties_and_ignores_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), Some(1));
        assert_eq!(argmax(&[f64::NAN, -1.0]), Some(1));
        assert_eq!(argmax(&[]), None);
        assert_eq!(argmax(&[f64::NEG_INFINITY, f64::NEG_INFINITY]), Some(0));
    }

    #[test]
    fn elbo_weights_samples_and_averages_examples() {
        // Example 0: 0.25·(−1) + 0.75·(−3) = −2.5; example 1: 1·(−0.5) + 0·(−inf) = −0.5.
        let ll = vec![vec![-1.0, -3.0], vec![-0.5, f64::NEG_INFINITY]];
        let w = vec![vec![0.25, 0.75], vec![1.0, 0.0]];
        assert!(close(weighted_elbo(&ll, &w), -1.5));
        assert_eq!(weighted_elbo(&[], &[]), 0.0);
    }

    #[test]
    fn kl_between_class_distributions() {
        assert!(close(kl_divergence(&[0.5, 0.5], &[0.5, 0.5]), 0.0));
        let kl = 0.5 * (0.5f64 / 0.25).ln() + 0.5 * (0.5f64 / 0.75).ln();
        assert!(close(kl_divergence(&[0.5, 0.5], &[0.25, 0.75]), kl));
        assert!(close(kl_divergence(&[1.0, 0.0], &[0.5, 0.5]), 2f64.ln()));
        let m = mean_kl(
            &[vec![0.5, 0.5], vec![1.0, 0.0]],
            &[vec![0.5, 0.5], vec![0.5, 0.5]],
        );
        assert!(close(m, 2f64.ln() / 2.0));
    }

    #[test]
    fn logp_penalty_decays_linearly() {
        assert!(close(logp_penalty_at(2.0, 0, 4, true), 2.0));
        assert!(close(logp_penalty_at(2.0, 1, 4, true), 1.5));
        assert!(close(logp_penalty_at(2.0, 3, 4, true), 0.5));
        assert!(close(logp_penalty_at(2.0, 3, 4, false), 2.0));
        assert!(close(apply_logp_penalty(-1.0, 2.0, &[-4.0, -2.0]), 5.0));
        assert!(close(apply_logp_penalty(-1.0, 2.0, &[]), -1.0));
    }

    #[test]
    fn held_out_split_shows_half() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let s = proposer_subset(5, true, &mut rng);
        assert_eq!(s.len(), 3);
        assert!(s.windows(2).all(|w| w[0] < w[1]) && s.iter().all(|i| *i < 5));
        assert_eq!(proposer_subset(4, false, &mut rng), vec![0, 1, 2, 3]);
        assert_eq!(proposer_subset(1, true, &mut rng), vec![0]);
        // Deterministic for a seed.
        let a = proposer_subset(10, true, &mut ChaCha8Rng::seed_from_u64(3));
        let b = proposer_subset(10, true, &mut ChaCha8Rng::seed_from_u64(3));
        assert_eq!(a, b);
    }

    #[test]
    fn memory_keeps_the_best() {
        let mut m = PromptMemory::new(2);
        m.add(vec!["a".into()], vec![], 0.5);
        m.add(vec!["b".into()], vec![], 0.7);
        m.add(vec!["c".into()], vec![], 0.6);
        assert_eq!(layer_texts(&m), vec!["b", "c"]);
        m.add(vec!["c".into()], vec![], 0.9);
        assert_eq!(layer_texts(&m), vec!["c", "b"]);
        assert_eq!(m.entries[0].dev_accuracy, 0.9);
        let mut off = PromptMemory::new(0);
        off.add(vec!["a".into()], vec![], 1.0);
        assert!(off.entries.is_empty());
    }

    #[test]
    fn patience_resets_to_best() {
        let p = |s: &str| vec![s.to_string()];
        let mut b = BestDev::new(p("init"), vec![], Some(2));
        assert_eq!(
            b.observe(0.5, &p("x"), &[]),
            DevOutcome {
                improved: true,
                reset: false
            }
        );
        assert_eq!(
            b.observe(0.5, &p("y"), &[]),
            DevOutcome {
                improved: false,
                reset: false
            }
        );
        assert_eq!(
            b.observe(0.4, &p("z"), &[]),
            DevOutcome {
                improved: false,
                reset: true
            }
        );
        assert_eq!(b.prompts, p("x"));
        assert_eq!(b.waited, 0);
        assert!(b.observe(0.6, &p("w"), &[]).improved);
        assert_eq!(b.prompts, p("w"));
        let mut never = BestDev::new(p("init"), vec![], None);
        never.observe(0.5, &p("x"), &[]);
        for _ in 0..5 {
            assert!(!never.observe(0.1, &p("y"), &[]).reset);
        }
    }

    #[test]
    fn batches_balanced_and_random() {
        let labels = vec![Some(0), Some(0), Some(0), Some(0), Some(1), Some(1)];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let b = balanced_batch(&labels, 4, &mut rng);
        assert_eq!(b.len(), 4);
        let ones = b.iter().filter(|i| labels[**i] == Some(1)).count();
        assert_eq!(ones, 2);
        let r = random_batch(6, 10, &mut rng);
        assert_eq!(r.len(), 6);
        let mut s = r.clone();
        s.sort();
        s.dedup();
        assert_eq!(s.len(), 6);
    }
}
