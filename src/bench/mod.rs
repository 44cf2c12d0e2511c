//! `dln bench engine`: is the embedded engine's prefix reuse exact, and does its saving in
//! tokens become a saving in time? Every figure is a ratio against a baseline measured in the
//! same process on the same texts, so it means the same on any machine.
//!
//! Three DLN-shaped scoring workloads are run naive (each request from an empty cache) and with
//! prefix reuse, and the tokens the reused path computes are set beside the distinct-token ideal
//! (every distinct prefix once); a last part measures batched generation at 1, 4 and 8
//! sequences and compares batched with sequential generation of 8 samples.
//!
//! The workloads are scaled to the model ([`Scale`]): fewer inputs (below two inputs' worth,
//! fewer candidates too), the same tree shape, so a larger model still finishes in minutes.
//! With `--llama-bench DIR`, llama.cpp's own benchmarks run on the same file and threads
//! ([`limit`]) and the report sets dln's throughput against them.

pub mod accuracy;
pub mod cache;
pub mod forecast;
pub mod http;
pub mod limit;
mod report;
mod texts;
mod workload;

use std::time::Instant;

use serde::Serialize;

use crate::llm::embedded::EmbeddedBackend;
use crate::llm::{Backend, GenerateRequest, LlmError, LlmResult, Prompt, ScoreRequest};

pub use report::render_table;
pub use workload::{dln1_demos, Workload};
use workload::{dln1_ranking, dln2_hidden, run_workload};

/// One scoring workload, naive against prefix-reused.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadReport {
    pub name: String,
    /// Inputs kept at this scale, of the full workload's.
    pub inputs: usize,
    pub full_inputs: usize,
    /// Candidates kept at this scale, of the full workload's.
    pub candidates: usize,
    pub full_candidates: usize,
    pub requests: usize,
    /// Tokens the naive path computes (every request from scratch).
    pub tokens_scored: u64,
    /// Tokens the reused path computes (each distinct prefix once).
    pub tokens_computed: u64,
    /// The distinct-token ideal: the tokens of every distinct prefix of the requests, once.
    pub distinct_tokens: u64,
    /// tokens computed ÷ distinct tokens (1 means reuse computes nothing twice).
    pub computed_per_distinct: f64,
    pub naive_seconds: f64,
    pub reused_seconds: f64,
    /// tokens computed ÷ reused seconds: the reused path's throughput, set against llama-bench's
    /// prompt figure.
    pub scored_tokens_per_second: f64,
    /// naive ÷ reused wall time.
    pub speedup: f64,
    /// tokens scored ÷ distinct tokens computed: the most reuse can save.
    pub token_ratio: f64,
    /// The distinct tokens at the engine's raw prefill throughput.
    pub ideal_seconds: f64,
    /// reused ÷ ideal time (1 means reuse costs nothing beyond the distinct tokens).
    pub ideal_ratio: f64,
    /// Largest |reused − naive| over all target tokens, in nats.
    pub max_abs_diff: f64,
    /// The raw prefill throughput measured right before the reused runs (the ideal's basis).
    pub prefill_tokens_per_second: f64,
}

/// Generation throughput at one batch size.
#[derive(Debug, Clone, Serialize)]
pub struct GenerationPoint {
    pub sequences: u32,
    pub tokens_per_second: f64,
}

/// Batched generation at 1, 4 and 8 sequences, and sequential generation of 8. Each figure is
/// generated tokens ÷ (wall time − the prompt's prefill), since llama-batched-bench's S_TG also
/// leaves the prompt out.
#[derive(Debug, Clone, Serialize)]
pub struct GenerationReport {
    pub max_tokens: u32,
    pub prompt_tokens: usize,
    pub prompt_seconds: f64,
    pub batched: Vec<GenerationPoint>,
    /// The samples of the batched-vs-sequential comparison.
    pub sequences: u32,
    pub batched_tokens_per_second: f64,
    pub sequential_tokens_per_second: f64,
}

impl GenerationReport {
    /// Batched tokens/s at `sequences`, NaN when not measured.
    pub fn at(&self, sequences: u32) -> f64 {
        self.batched
            .iter()
            .find(|p| p.sequences == sequences)
            .map_or(f64::NAN, |p| p.tokens_per_second)
    }
}

/// How much of the full workloads a run scores.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Scale {
    /// About [`AUTO_NAIVE_SECONDS`] of naive scoring at the measured prefill throughput, so a
    /// larger model does not take hours.
    #[default]
    Auto,
    /// A factor in (0, 1]: the share of each workload's inputs kept (1 is the full workload).
    Factor(f64),
}

impl std::str::FromStr for Scale {
    type Err = String;

    fn from_str(s: &str) -> Result<Scale, String> {
        if s == "auto" {
            return Ok(Scale::Auto);
        }
        match s.parse::<f64>() {
            Ok(f) if f > 0.0 && f <= 1.0 => Ok(Scale::Factor(f)),
            _ => Err(format!(
                "--scale takes `auto` or a factor in (0, 1] such as 0.25 (1 is the full workload); got `{s}`"
            )),
        }
    }
}

/// The naive runs' target in seconds under `--scale auto`.
pub const AUTO_NAIVE_SECONDS: f64 = 180.0;
/// A scaled workload keeps at least this many inputs, so prefixes are still shared across them.
pub const MIN_INPUTS: usize = 2;

/// The factor `--scale auto` picks: the three naive runs together compute about
/// [`AUTO_NAIVE_SECONDS`] of tokens at `prefill_tps`; never above 1 (the full workload).
pub fn auto_factor(prefill_tps: f64, full_naive_tokens: u64) -> f64 {
    let f = AUTO_NAIVE_SECONDS * prefill_tps / full_naive_tokens as f64;
    if f.is_finite() && f > 0.0 {
        f.min(1.0)
    } else {
        1.0
    }
}

/// Inputs kept of `total` at `factor` (rounded, at least [`MIN_INPUTS`]).
pub fn kept_inputs(total: usize, factor: f64) -> usize {
    ((total as f64 * factor).round() as usize).clamp(MIN_INPUTS.min(total), total)
}

/// A thinned workload keeps at least this many candidates, so they still share a prefix.
pub const MIN_CANDIDATES: usize = 2;

/// Candidates kept of `total` at `factor` in a workload of `inputs` inputs: all of them while
/// `factor` keeps at least [`MIN_INPUTS`] inputs; below that, the share that brings the
/// workload's requests back to about `factor` of the full (rounded, at least
/// [`MIN_CANDIDATES`]).
pub fn kept_candidates(total: usize, inputs: usize, factor: f64) -> usize {
    let wanted = inputs as f64 * factor;
    let fewest = MIN_INPUTS.min(inputs) as f64;
    if wanted >= fewest {
        return total;
    }
    ((total as f64 * wanted / fewest).round() as usize).clamp(MIN_CANDIDATES.min(total), total)
}

/// The scale a run used.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleReport {
    /// `auto` or the factor asked for.
    pub requested: String,
    pub factor: f64,
    /// Tokens the full workloads' naive runs would compute, the basis of `auto`.
    pub full_naive_tokens: u64,
}

/// dln against llama.cpp's own benchmarks (`--llama-bench`), each ratio dln ÷ llama.cpp.
#[derive(Debug, Clone, Serialize)]
pub struct LimitReport {
    pub llama_bench: limit::LlamaBenchReport,
    pub batched_bench: limit::BatchedBenchReport,
    /// Raw prefill ÷ pp512 without repacking (the kernels dln is built with).
    pub prefill_vs_prompt: f64,
    /// Raw prefill ÷ pp512 with llama.cpp's default repacking.
    pub prefill_vs_prompt_repack: f64,
    /// Each workload's scored tokens/s (reused path) ÷ pp512 without repacking.
    pub scored_vs_prompt: Vec<NamedRatio>,
    /// All workloads' tokens computed ÷ their reused seconds, ÷ pp512 without repacking.
    pub scored_overall_vs_prompt: f64,
    /// The same ÷ (pp512 × [`EngineReport::every_logit_share`]): against what pp512 allows
    /// once every scored token's logits are computed.
    pub scored_overall_vs_every_logit: f64,
    /// Generation at 1 sequence ÷ tg128 without repacking.
    pub generation_vs_tg128: f64,
    /// Generation at 1 sequence ÷ tg128 with repacking.
    pub generation_vs_tg128_repack: f64,
    /// Batched generation ÷ llama-batched-bench's S_TG at the same number of sequences.
    pub generation_vs_batched: Vec<GenerationRatio>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NamedRatio {
    pub name: String,
    pub ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GenerationRatio {
    pub sequences: u32,
    pub ratio: f64,
}

/// Everything `dln bench engine` measures.
#[derive(Debug, Clone, Serialize)]
pub struct EngineReport {
    pub model: String,
    /// llama.cpp threads of dln's engine (and of llama.cpp's tools, when run).
    pub threads: usize,
    pub threads_note: String,
    pub scale: ScaleReport,
    /// Raw prefill throughput: one long text decoded from an empty cache.
    pub prefill_tokens_per_second: f64,
    /// The same text scored whole (every token's logits and log-probability) from an empty
    /// cache: what a scored token costs at best. llama-bench's pp512 reads one token's logits.
    pub every_logit_tokens_per_second: f64,
    /// every_logit ÷ prefill: the share of pp512 that scoring every token can reach.
    pub every_logit_share: f64,
    pub workloads: Vec<WorkloadReport>,
    /// All workloads' tokens computed ÷ their reused seconds.
    pub scored_tokens_per_second: f64,
    pub generation: GenerationReport,
    /// batched ÷ sequential generation throughput.
    pub generation_speedup: f64,
    /// Present with `--llama-bench`.
    pub limit: Option<LimitReport>,
}

/// What `dln bench engine` runs besides its own measurements.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    pub scale: Scale,
    /// llama.cpp's tools and the GGUF file the engine loaded (`--llama-bench`).
    pub limit: Option<(limit::LlamaTools, std::path::PathBuf)>,
}

/// A model call or one of llama.cpp's tools failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error(transparent)]
    Limit(#[from] limit::LimitError),
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

/// Raw prefill throughput: a ~500-token text decoded from an empty cache, best of three.
async fn prefill_throughput(b: &EmbeddedBackend) -> LlmResult<f64> {
    throughput(b, Logits::Last).await
}

/// The same text scored whole as a target from an empty cache, best of three: every token's
/// logits computed and normalised, as scoring needs them.
async fn every_logit_throughput(b: &EmbeddedBackend) -> LlmResult<f64> {
    throughput(b, Logits::Every).await
}

/// Which logits a throughput measurement computes.
#[derive(Clone, Copy)]
enum Logits {
    /// The last token's (a prefill, as llama-bench's pp512).
    Last,
    /// Every token's (the text scored as a target).
    Every,
}

/// Tokens/s decoding a ~500-token text from an empty cache, best of three.
async fn throughput(b: &EmbeddedBackend, logits: Logits) -> LlmResult<f64> {
    let text = texts::words(b, 99, 500).await?;
    let mut best: f64 = 0.0;
    for _ in 0..3 {
        let (tokens, seconds) = match logits {
            Logits::Last => {
                let (n, elapsed) = b.prefill(&text).await?;
                (n as f64, elapsed.as_secs_f64())
            }
            Logits::Every => {
                b.clear_cache().await?;
                let before = b.usage();
                let started = Instant::now();
                let request = ScoreRequest {
                    context: "Text:\n".into(),
                    target: text.clone(),
                };
                b.score(vec![request]).await?;
                let computed = b.usage().since(&before).tokens_computed as f64;
                (computed, started.elapsed().as_secs_f64())
            }
        };
        best = best.max(tokens / seconds.max(1e-9));
    }
    b.clear_cache().await?;
    Ok(best)
}

/// Rounds of the generation measurement (best of each mode over the rounds).
const GENERATION_ROUNDS: usize = 3;
/// A round longer than this leaves the third one out.
const SLOW_ROUND_SECONDS: f64 = 30.0;

async fn generation(b: &EmbeddedBackend) -> LlmResult<GenerationReport> {
    let prompt = texts::words(b, 7, 60).await?;
    let mut prompt_tokens = 0;
    let mut prompt_seconds = f64::INFINITY;
    for _ in 0..3 {
        let (n, elapsed) = b.prefill(&prompt).await?;
        prompt_tokens = n;
        prompt_seconds = prompt_seconds.min(elapsed.as_secs_f64());
    }
    let req = |n: u32| GenerateRequest {
        prompt: Prompt::raw(prompt.clone()),
        temperature: 0.8,
        top_p: 0.95,
        max_tokens: 48,
        stop: vec![],
        seed: 1,
        n,
    };
    // Generated tokens ÷ the time after the prompt's prefill; each call starts from an empty
    // cache so every one pays the same prefill (never below half the wall time, so a noisy
    // prefill measurement cannot blow a figure up).
    let tps = |out: &[Vec<crate::llm::Generation>], seconds: f64| -> f64 {
        let tokens: f64 = out.iter().flatten().map(|g| g.tokens as f64).sum();
        tokens / (seconds - prompt_seconds).max(seconds / 2.0)
    };
    let sequential_n = 8;
    // Alternating rounds, best of each, so every mode sees the same background load.
    let mut batched = vec![0.0f64; limit::SEQUENCES.len()];
    let mut sequential_tps: f64 = 0.0;
    let started_all = Instant::now();
    for round in 0..GENERATION_ROUNDS {
        // A large model's round takes minutes; two rounds keep the best-of in reach of a burst.
        if round == 2 && started_all.elapsed().as_secs_f64() > 2.0 * SLOW_ROUND_SECONDS {
            break;
        }
        for (best, &n) in batched.iter_mut().zip(&limit::SEQUENCES) {
            b.clear_cache().await?;
            let started = Instant::now();
            let out = b.generate(vec![req(n)]).await?;
            *best = best.max(tps(&out, started.elapsed().as_secs_f64()));
        }
        b.clear_cache().await?;
        let started = Instant::now();
        let out = b.generate_sequential(vec![req(sequential_n)]).await?;
        sequential_tps = sequential_tps.max(tps(&out, started.elapsed().as_secs_f64()));
    }
    let batched: Vec<GenerationPoint> = limit::SEQUENCES
        .iter()
        .zip(batched)
        .map(|(&sequences, tokens_per_second)| GenerationPoint {
            sequences,
            tokens_per_second,
        })
        .collect();
    let mut report = GenerationReport {
        max_tokens: req(1).max_tokens,
        prompt_tokens,
        prompt_seconds,
        batched,
        sequences: sequential_n,
        batched_tokens_per_second: 0.0,
        sequential_tokens_per_second: sequential_tps,
    };
    report.batched_tokens_per_second = report.at(sequential_n);
    Ok(report)
}

/// dln's figures against llama.cpp's: every ratio dln ÷ llama.cpp, on the kernels dln is built
/// with (no repacking) unless named otherwise.
fn limit_report(
    r: &EngineReport,
    llama_bench: limit::LlamaBenchReport,
    batched_bench: limit::BatchedBenchReport,
) -> LimitReport {
    let pp = llama_bench.repack_off.prompt_tokens_per_second;
    let g1 = r.generation.at(1);
    LimitReport {
        prefill_vs_prompt: ratio(r.prefill_tokens_per_second, pp),
        prefill_vs_prompt_repack: ratio(
            r.prefill_tokens_per_second,
            llama_bench.repack_on.prompt_tokens_per_second,
        ),
        scored_vs_prompt: r
            .workloads
            .iter()
            .map(|w| NamedRatio {
                name: w.name.clone(),
                ratio: ratio(w.scored_tokens_per_second, pp),
            })
            .collect(),
        scored_overall_vs_prompt: ratio(r.scored_tokens_per_second, pp),
        scored_overall_vs_every_logit: ratio(r.scored_tokens_per_second, pp * r.every_logit_share),
        generation_vs_tg128: ratio(g1, llama_bench.repack_off.generation_tokens_per_second),
        generation_vs_tg128_repack: ratio(g1, llama_bench.repack_on.generation_tokens_per_second),
        generation_vs_batched: r
            .generation
            .batched
            .iter()
            .map(|p| GenerationRatio {
                sequences: p.sequences,
                ratio: ratio(
                    p.tokens_per_second,
                    batched_bench
                        .at(p.sequences)
                        .map_or(f64::NAN, |b| b.generation_tokens_per_second),
                ),
            })
            .collect(),
        llama_bench,
        batched_bench,
    }
}

/// Runs the whole engine benchmark; `progress` hears what is being measured. llama.cpp's tools
/// (`opts.limit`) run last, one at a time, while the engine is loaded but idle.
pub async fn run_engine(
    b: &EmbeddedBackend,
    opts: &EngineOptions,
    progress: &dyn Fn(&str),
) -> Result<EngineReport, EngineError> {
    progress("measuring raw prefill throughput");
    let prefill_tps = prefill_throughput(b).await?;
    progress("measuring throughput with every token's logits");
    let every_logit_tps = every_logit_throughput(b).await?;
    progress("building the workloads' texts");
    let full = vec![
        dln1_ranking(b).await?,
        dln2_hidden(b).await?,
        dln1_demos(b).await?,
    ];
    let mut full_naive_tokens = 0;
    for w in &full {
        full_naive_tokens += w.naive_tokens(b).await?;
    }
    let (requested, factor) = match opts.scale {
        Scale::Auto => (
            "auto".to_string(),
            auto_factor(prefill_tps, full_naive_tokens),
        ),
        Scale::Factor(f) => (f.to_string(), f),
    };
    progress(&format!(
        "scale {factor:.3} ({requested}) of {full_naive_tokens} naive tokens at {prefill_tps:.0} tokens/s"
    ));
    let mut workloads = Vec::new();
    for w in full {
        let full = (w.inputs, w.candidates);
        let w = w.scaled(factor);
        progress(&format!(
            "workload {}: {} of {} inputs, {} of {} candidates, {} requests, naive then prefix-reused",
            w.name,
            w.inputs,
            full.0,
            w.candidates,
            full.1,
            w.paths.len()
        ));
        workloads.push(run_workload(b, w, full).await?);
    }
    let scored_tokens_per_second = ratio(
        workloads.iter().map(|w| w.tokens_computed as f64).sum(),
        workloads.iter().map(|w| w.reused_seconds).sum(),
    );
    progress("generation: batched at 1, 4 and 8 sequences, then 8 sequential");
    let generation = generation(b).await?;
    let generation_speedup = ratio(
        generation.batched_tokens_per_second,
        generation.sequential_tokens_per_second,
    );
    let mut report = EngineReport {
        model: b.model_id(),
        threads: b.threads(),
        threads_note: format!(
            "{} threads, {} logical CPUs",
            b.threads(),
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        ),
        scale: ScaleReport {
            requested,
            factor,
            full_naive_tokens,
        },
        prefill_tokens_per_second: prefill_tps,
        every_logit_tokens_per_second: every_logit_tps,
        every_logit_share: ratio(every_logit_tps, prefill_tps),
        workloads,
        scored_tokens_per_second,
        generation,
        generation_speedup,
        limit: None,
    };
    if let Some((tools, gguf)) = &opts.limit {
        progress(&format!(
            "llama-bench on the same file with {} threads (repack on and off)",
            b.threads()
        ));
        let lb = limit::llama_bench(tools, gguf, b.threads()).await?;
        progress("llama-batched-bench at 1, 4 and 8 sequences");
        let bb = limit::batched_bench(tools, gguf, b.threads()).await?;
        report.limit = Some(limit_report(&report, lb, bb));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_scale_aims_at_three_minutes_of_naive_tokens() {
        // 110k naive tokens at 200 tokens/s: 36 000 tokens in 180 s.
        let f = auto_factor(200.0, 110_000);
        assert!((f - 36_000.0 / 110_000.0).abs() < 1e-12, "{f}");
        // A fast model runs the full workloads, never more.
        assert_eq!(auto_factor(5_000.0, 110_000), 1.0);
        // Nothing measured: the full workloads.
        assert_eq!(auto_factor(0.0, 110_000), 1.0);
        assert_eq!(auto_factor(f64::NAN, 110_000), 1.0);
        assert_eq!(auto_factor(200.0, 0), 1.0);
    }

    #[test]
    fn scale_parses_auto_or_a_factor() {
        assert_eq!("auto".parse::<Scale>(), Ok(Scale::Auto));
        assert_eq!("0.25".parse::<Scale>(), Ok(Scale::Factor(0.25)));
        assert_eq!("1".parse::<Scale>(), Ok(Scale::Factor(1.0)));
        for bad in ["0", "1.5", "-1", "half", "NaN"] {
            let err = bad.parse::<Scale>().unwrap_err();
            assert!(err.contains("auto` or a factor in (0, 1]"), "{err}");
        }
    }
}
