//! The human-readable table of `dln bench engine`, with each figure checked against its target.

use std::fmt::Write as _;

use super::EngineReport;

/// Targets on the reference machine (issue 2): speedup ≥ 0.8 × token ratio, reused time within
/// 1.3× of the ideal, reuse exact to 1e-3 nats, batched generation faster than sequential; and
/// (issue 11) the tokens computed within 1.1× of the distinct-token ideal.
pub const SPEEDUP_SHARE: f64 = 0.8;
pub const MAX_COMPUTED_PER_DISTINCT: f64 = 1.1;
pub const MAX_IDEAL_RATIO: f64 = 1.3;
pub const MAX_ABS_DIFF: f64 = 1e-3;

fn mark(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISSED"
    }
}

/// The report as an aligned table.
pub fn render_table(r: &EngineReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "model    {}", r.model);
    let _ = writeln!(
        s,
        "prefill  {:.0} tokens/s (raw batch, {})",
        r.prefill_tokens_per_second, r.threads_note
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<14} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>9}",
        "workload",
        "reqs",
        "scored",
        "computed",
        "naive s",
        "reused s",
        "ideal s",
        "speedup",
        "tokens",
        "ideal×",
        "max diff"
    );
    for w in &r.workloads {
        let _ = writeln!(
            s,
            "{:<14} {:>5} {:>8} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>7.2} {:>7.2} {:>7.2} {:>9.1e}",
            w.name,
            w.requests,
            w.tokens_scored,
            w.tokens_computed,
            w.naive_seconds,
            w.reused_seconds,
            w.ideal_seconds,
            w.speedup,
            w.token_ratio,
            w.ideal_ratio,
            w.max_abs_diff
        );
        let _ = writeln!(
            s,
            "{:<14} speedup ≥ {SPEEDUP_SHARE} × token ratio: {}   ideal× ≤ {MAX_IDEAL_RATIO}: {}   max diff ≤ {MAX_ABS_DIFF:e}: {}",
            "",
            mark(w.speedup >= SPEEDUP_SHARE * w.token_ratio),
            mark(w.ideal_ratio <= MAX_IDEAL_RATIO),
            mark(w.max_abs_diff <= MAX_ABS_DIFF)
        );
        let _ = writeln!(
            s,
            "{:<14} computed {} of {} distinct tokens ({:.2}×) ≤ {MAX_COMPUTED_PER_DISTINCT}×: {}",
            "",
            w.tokens_computed,
            w.distinct_tokens,
            w.computed_per_distinct,
            mark(w.computed_per_distinct <= MAX_COMPUTED_PER_DISTINCT)
        );
    }
    let g = &r.generation;
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "generation  {} samples × ≤{} tokens: batched {:.1} tok/s, sequential {:.1} tok/s, speedup {:.2} ({})",
        g.sequences,
        g.max_tokens,
        g.batched_tokens_per_second,
        g.sequential_tokens_per_second,
        r.generation_speedup,
        mark(r.generation_speedup > 1.0)
    );
    s
}
