//! `dln bench engine`: is the embedded engine's prefix reuse exact, and does its saving in
//! tokens become a saving in time? Every figure is a ratio against a baseline measured in the
//! same process on the same texts, so it means the same on any machine.
//!
//! Three DLN-shaped scoring workloads are run naive (each request from an empty cache) and with
//! prefix reuse, and the tokens the reused path computes are set beside the distinct-token ideal
//! (every distinct prefix once); a last part compares batched with sequential generation of 8
//! samples.

pub mod accuracy;
pub mod http;
mod report;
mod texts;

use std::time::Instant;

use serde::Serialize;

use crate::llm::embedded::EmbeddedBackend;
use crate::llm::{Backend, GenerateRequest, LlmResult, Prompt, ScoreRequest, Usage};

pub use report::render_table;

/// One scoring workload, naive against prefix-reused.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadReport {
    pub name: String,
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

/// Batched against sequential generation.
#[derive(Debug, Clone, Serialize)]
pub struct GenerationReport {
    pub sequences: u32,
    pub max_tokens: u32,
    pub batched_tokens_per_second: f64,
    pub sequential_tokens_per_second: f64,
}

/// Everything `dln bench engine` measures.
#[derive(Debug, Clone, Serialize)]
pub struct EngineReport {
    pub model: String,
    pub threads_note: String,
    /// Raw prefill throughput: one long text decoded from an empty cache.
    pub prefill_tokens_per_second: f64,
    pub workloads: Vec<WorkloadReport>,
    pub generation: GenerationReport,
    /// batched ÷ sequential generation throughput.
    pub generation_speedup: f64,
}

/// A scoring workload: each request as its pieces in order (the context's, then the target),
/// so that the distinct prefixes can be counted.
pub struct Workload {
    pub name: &'static str,
    pub paths: Vec<Vec<String>>,
}

impl Workload {
    fn new(name: &'static str) -> Workload {
        Workload {
            name,
            paths: Vec::new(),
        }
    }

    /// The requests: the pieces but the last as the context, the last as the target.
    pub fn requests(&self) -> Vec<ScoreRequest> {
        self.paths
            .iter()
            .map(|p| {
                let (target, context) = p
                    .split_last()
                    .map_or(("", &p[..]), |(t, c)| (t.as_str(), c));
                ScoreRequest {
                    context: context.concat(),
                    target: target.to_string(),
                }
            })
            .collect()
    }

    /// The distinct-token ideal: the tokens of every distinct prefix of pieces once, each the
    /// tokens its text adds to its parent's (so merges across a boundary count as the
    /// tokenizer makes them).
    pub async fn distinct_tokens(&self, b: &dyn Backend) -> LlmResult<u64> {
        let mut counted: std::collections::HashMap<&[String], usize> =
            std::collections::HashMap::new();
        let mut total = 0;
        for path in &self.paths {
            let mut parent = 0;
            for k in 1..=path.len() {
                let n = match counted.get(&path[..k]) {
                    Some(n) => *n,
                    None => {
                        let n = b.count_tokens(&path[..k].concat()).await?;
                        total += n.saturating_sub(parent) as u64;
                        counted.insert(&path[..k], n);
                        n
                    }
                };
                parent = n;
            }
        }
        Ok(total)
    }
}

/// (a) DLN-1 ranking: 20 inputs of ~40 tokens × 5 prompt candidates of ~150 tokens; the
/// candidate comes first so it is the shared prefix; two-class targets.
async fn dln1_ranking(b: &dyn Backend) -> LlmResult<Workload> {
    let prompts = texts::many(b, 1, 5, 150).await?;
    let inputs = texts::many(b, 2, 20, 40).await?;
    let mut w = Workload::new("dln1_ranking");
    for prompt in &prompts {
        for (i, input) in inputs.iter().enumerate() {
            let target = if i % 2 == 0 { " true" } else { " false" };
            w.paths.push(vec![
                prompt.clone(),
                format!("\n\nInput: {input}\nAnswer:"),
                target.into(),
            ]);
        }
    }
    Ok(w)
}

/// (b) DLN-2 hidden scoring: 8 inputs × 5 candidates × 3 hidden texts of ~100 tokens, each
/// hidden text scored after its prompt and input.
async fn dln2_hidden(b: &dyn Backend) -> LlmResult<Workload> {
    let prompts = texts::many(b, 3, 5, 150).await?;
    let inputs = texts::many(b, 4, 8, 40).await?;
    let hidden = texts::many(b, 5, 3, 100).await?;
    let mut w = Workload::new("dln2_hidden");
    for prompt in &prompts {
        for input in &inputs {
            for h in &hidden {
                w.paths.push(vec![
                    prompt.clone(),
                    format!("\n\nInput: {input}\nReasoning:"),
                    format!(" {h}"),
                ]);
            }
        }
    }
    Ok(w)
}

/// (c) DLN-1 with demonstrations (issue 11), one update's scoring: the current instruction with
/// 3 demonstrations of ~40 tokens, an instruction proposal with the same demonstrations, two
/// swaps and an add (the current instruction with another set), × 16 held-out inputs, two-class
/// targets, in the `forward` template's order (instruction, demonstrations, input): what the
/// candidates share comes first, so the engine computes each distinct prefix once.
pub async fn dln1_demos(b: &dyn Backend) -> LlmResult<Workload> {
    let prompts = texts::many(b, 6, 2, 150).await?;
    let pool = texts::many(b, 7, 6, 40).await?;
    let inputs = texts::many(b, 8, 16, 40).await?;
    let demo = |i: usize| {
        let label = if i.is_multiple_of(2) { "true" } else { "false" };
        format!("\n\nInput: {}\nAnswer: {label}", pool[i])
    };
    let candidates: [(usize, [usize; 4], usize); 5] = [
        // (instruction, demonstrations by pool index, how many shown)
        (0, [0, 1, 2, 0], 3),
        (1, [0, 1, 2, 0], 3),
        (0, [3, 1, 2, 0], 3),
        (0, [0, 4, 2, 0], 3),
        (0, [0, 1, 2, 5], 4),
    ];
    let mut w = Workload::new("dln1_demos");
    for (instruction, shown, n) in candidates {
        for input in &inputs {
            for target in [" true", " false"] {
                let mut path = vec![prompts[instruction].clone()];
                path.extend(shown[..n].iter().map(|&d| demo(d)));
                path.push(format!("\n\nInput: {input}\nAnswer:"));
                path.push(target.to_string());
                w.paths.push(path);
            }
        }
    }
    Ok(w)
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

async fn run_workload(b: &EmbeddedBackend, w: Workload) -> LlmResult<WorkloadReport> {
    let distinct_tokens = w.distinct_tokens(b).await?;
    let requests = w.requests();
    b.clear_cache().await?;
    let before = b.usage();
    let started = Instant::now();
    let naive = b.score_naive(requests.clone()).await?;
    let naive_seconds = started.elapsed().as_secs_f64();
    let naive_usage: Usage = b.usage().since(&before);

    // The ideal's throughput is measured next to the reused runs, under the same load.
    let prefill_tps = prefill_throughput(b).await?;
    // Best of two: the reused run is short enough to repeat, which keeps a burst of load on a
    // shared machine from deciding the ratios.
    let mut reused_seconds = f64::INFINITY;
    let mut reused_usage = Usage::default();
    let mut reused = Vec::new();
    for _ in 0..2 {
        b.clear_cache().await?;
        let before = b.usage();
        let started = Instant::now();
        reused = b.score(requests.clone()).await?;
        reused_seconds = reused_seconds.min(started.elapsed().as_secs_f64());
        reused_usage = b.usage().since(&before);
    }

    let max_abs_diff = naive
        .iter()
        .zip(&reused)
        .flat_map(|(n, r)| {
            n.token_logprobs
                .iter()
                .zip(&r.token_logprobs)
                .map(|(x, y)| (x - y).abs())
        })
        .fold(0.0, f64::max);
    let ideal_seconds = reused_usage.tokens_computed as f64 / prefill_tps;
    Ok(WorkloadReport {
        name: w.name.into(),
        requests: requests.len(),
        tokens_scored: naive_usage.tokens_computed,
        tokens_computed: reused_usage.tokens_computed,
        distinct_tokens,
        computed_per_distinct: ratio(reused_usage.tokens_computed as f64, distinct_tokens as f64),
        naive_seconds,
        reused_seconds,
        speedup: ratio(naive_seconds, reused_seconds),
        token_ratio: ratio(
            naive_usage.tokens_computed as f64,
            reused_usage.tokens_computed as f64,
        ),
        ideal_seconds,
        ideal_ratio: ratio(reused_seconds, ideal_seconds),
        max_abs_diff,
        prefill_tokens_per_second: prefill_tps,
    })
}

/// Raw prefill throughput: a ~500-token text decoded from an empty cache, best of three.
async fn prefill_throughput(b: &EmbeddedBackend) -> LlmResult<f64> {
    let text = texts::words(b, 99, 500).await?;
    let mut best: f64 = 0.0;
    for _ in 0..3 {
        let (n, elapsed) = b.prefill(&text).await?;
        best = best.max(n as f64 / elapsed.as_secs_f64().max(1e-9));
    }
    b.clear_cache().await?;
    Ok(best)
}

async fn generation(b: &EmbeddedBackend) -> LlmResult<GenerationReport> {
    let prompt = texts::words(b, 7, 60).await?;
    let req = GenerateRequest {
        prompt: Prompt::raw(prompt),
        temperature: 0.8,
        top_p: 0.95,
        max_tokens: 48,
        stop: vec![],
        seed: 1,
        n: 8,
    };
    let tokens = |out: &Vec<Vec<crate::llm::Generation>>| -> f64 {
        out.iter().flatten().map(|g| g.tokens as f64).sum()
    };
    // Alternating rounds, best of each, so both modes see the same background load.
    let mut batched_tps: f64 = 0.0;
    let mut sequential_tps: f64 = 0.0;
    for _ in 0..3 {
        let started = Instant::now();
        let batched = b.generate(vec![req.clone()]).await?;
        batched_tps = batched_tps.max(tokens(&batched) / started.elapsed().as_secs_f64());
        let started = Instant::now();
        let sequential = b.generate_sequential(vec![req.clone()]).await?;
        sequential_tps = sequential_tps.max(tokens(&sequential) / started.elapsed().as_secs_f64());
    }
    Ok(GenerationReport {
        sequences: req.n,
        max_tokens: req.max_tokens,
        batched_tokens_per_second: batched_tps,
        sequential_tokens_per_second: sequential_tps,
    })
}

/// Runs the whole engine benchmark; `progress` hears what is being measured.
pub async fn run_engine(b: &EmbeddedBackend, progress: &dyn Fn(&str)) -> LlmResult<EngineReport> {
    progress("measuring raw prefill throughput");
    let prefill_tps = prefill_throughput(b).await?;
    let mut workloads = Vec::new();
    progress("workload dln1_ranking: naive, then prefix-reused");
    let w = dln1_ranking(b).await?;
    workloads.push(run_workload(b, w).await?);
    progress("workload dln2_hidden: naive, then prefix-reused");
    let w = dln2_hidden(b).await?;
    workloads.push(run_workload(b, w).await?);
    progress("workload dln1_demos: naive, then prefix-reused");
    let w = dln1_demos(b).await?;
    workloads.push(run_workload(b, w).await?);
    progress("generation: 8 samples batched, then sequential");
    let generation = generation(b).await?;
    let generation_speedup = ratio(
        generation.batched_tokens_per_second,
        generation.sequential_tokens_per_second,
    );
    Ok(EngineReport {
        model: b.model_id(),
        threads_note: format!(
            "{} logical CPUs",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        ),
        prefill_tokens_per_second: prefill_tps,
        workloads,
        generation,
        generation_speedup,
    })
}
