//! `dln bench http`: the OpenAI-compatible backend against a live server, in one run: the
//! throughput of the same scoring requests with 1 and with 8 requests in flight (their ratio),
//! and the HTTP backend's scores against the embedded engine's on the same texts (the largest
//! difference). Every figure is measured in the same process on the same texts.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::llm::embedded::EmbeddedBackend;
use crate::llm::openai::{OpenAiBackend, OpenAiConfig};
use crate::llm::{Backend, LlmResult, ScoreRequest};

/// One concurrency level.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputPoint {
    pub in_flight: usize,
    pub requests: usize,
    pub seconds: f64,
    pub requests_per_second: f64,
}

/// What `dln bench http` measures.
#[derive(Debug, Clone, Serialize)]
pub struct HttpReport {
    pub base_url: String,
    pub model: String,
    pub scoring: String,
    pub capabilities: String,
    pub single: ThroughputPoint,
    pub parallel: ThroughputPoint,
    /// parallel ÷ single requests per second.
    pub throughput_ratio: f64,
    /// Texts compared with the embedded engine (0 when no embedded model was given).
    pub compared: usize,
    /// Largest |HTTP − embedded| summed target log-probability, in nats.
    pub max_abs_diff: Option<f64>,
    /// Largest per-token |HTTP − embedded| difference, in nats.
    pub max_token_diff: Option<f64>,
}

/// The benchmark's texts: DLN-shaped (an instruction, an input, an answer), distinct contexts
/// so no request is answered from another's prefix alone, targets that start a new word.
pub fn texts(n: usize) -> Vec<ScoreRequest> {
    let subjects = [
        "the river",
        "a small dog",
        "the old clock",
        "my neighbour",
        "the red car",
        "a tall tree",
        "the new bridge",
        "our teacher",
    ];
    let verbs = [
        "crossed",
        "watched",
        "repaired",
        "painted",
        "followed",
        "described",
    ];
    (0..n)
        .map(|i| {
            let s = subjects[i % subjects.len()];
            let v = verbs[(i / subjects.len()) % verbs.len()];
            ScoreRequest {
                context: format!(
                    "Read the sentence and say what happened.\nSentence {i}: Yesterday {s} {v} \
                     the road near the station.\nWhat happened:"
                ),
                target: format!(" Yesterday {s} {v} the road."),
            }
        })
        .collect()
}

async fn timed(
    b: &OpenAiBackend,
    reqs: &[ScoreRequest],
    in_flight: usize,
) -> LlmResult<ThroughputPoint> {
    let t = Instant::now();
    b.score(reqs.to_vec()).await?;
    let seconds = t.elapsed().as_secs_f64();
    Ok(ThroughputPoint {
        in_flight,
        requests: reqs.len(),
        seconds,
        requests_per_second: reqs.len() as f64 / seconds.max(1e-9),
    })
}

/// Runs the benchmark against the server `cfg` names; `embedded` (the same model loaded
/// locally) adds the score comparison.
pub async fn run_http(
    cfg: &OpenAiConfig,
    requests: usize,
    embedded: Option<&EmbeddedBackend>,
    progress: &dyn Fn(&str),
) -> LlmResult<HttpReport> {
    let connect = |in_flight: usize| {
        let c = OpenAiConfig {
            max_in_flight: in_flight,
            ..cfg.clone()
        };
        async move { OpenAiBackend::connect(&c, Path::new("."), 2048, None).await }
    };
    progress("probing the server");
    let one = connect(1).await?;
    let eight = connect(8).await?;
    let report = one.report().clone();
    // Warm-up (server start-up costs), then the same texts at 1 and at 8 in flight. Distinct
    // texts per level so the server's own prompt cache cannot answer the second from the first.
    let all = texts(requests * 2 + 2);
    one.score(all[..2].to_vec()).await?;
    progress(&format!("{requests} scoring requests, 1 in flight"));
    let single = timed(&one, &all[2..2 + requests], 1).await?;
    progress(&format!("{requests} scoring requests, 8 in flight"));
    let parallel = timed(&eight, &all[2 + requests..], 8).await?;
    let throughput_ratio = parallel.requests_per_second / single.requests_per_second.max(1e-9);
    let (mut max_abs_diff, mut max_token_diff, mut compared) = (None, None, 0);
    if let Some(e) = embedded {
        progress("comparing scores with the embedded engine");
        let cmp = all[..requests.min(8)].to_vec();
        let a = one.score(cmp.clone()).await?;
        let b = e.score(cmp.clone()).await?;
        let mut m = 0.0f64;
        let mut mt = 0.0f64;
        for (x, y) in a.iter().zip(&b) {
            m = m.max((x.logprob - y.logprob).abs());
            if x.token_logprobs.len() == y.token_logprobs.len() {
                for (p, q) in x.token_logprobs.iter().zip(&y.token_logprobs) {
                    mt = mt.max((p - q).abs());
                }
            } else {
                mt = f64::INFINITY;
            }
        }
        max_abs_diff = Some(m);
        max_token_diff = Some(mt);
        compared = cmp.len();
    }
    Ok(HttpReport {
        base_url: report.base_urls.join(", "),
        model: report.model,
        scoring: report.scoring.name().to_string(),
        capabilities: report.capabilities.summary(),
        single,
        parallel,
        throughput_ratio,
        compared,
        max_abs_diff,
        max_token_diff,
    })
}

/// The report as a table.
pub fn render_http_table(r: &HttpReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "server   {} (model {})", r.base_url, r.model);
    let _ = writeln!(s, "scoring  {} (supports {})", r.scoring, r.capabilities);
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:>9} {:>5} {:>8} {:>8}",
        "in flight", "reqs", "seconds", "req/s"
    );
    for p in [&r.single, &r.parallel] {
        let _ = writeln!(
            s,
            "{:>9} {:>5} {:>8.2} {:>8.2}",
            p.in_flight, p.requests, p.seconds, p.requests_per_second
        );
    }
    let _ = writeln!(
        s,
        "throughput ratio (8 ÷ 1 in flight): {:.2}",
        r.throughput_ratio
    );
    match (r.max_abs_diff, r.max_token_diff) {
        (Some(m), Some(t)) => {
            let _ = writeln!(
                s,
                "vs embedded engine on {} texts: max |Δ score| {m:.2e} nats, max |Δ token| {t:.2e} nats",
                r.compared
            );
        }
        _ => {
            let _ = writeln!(s, "vs embedded engine: not compared (no local model)");
        }
    }
    s
}
