//! The human-readable table of `dln bench engine`, with each figure checked against its target.

use std::fmt::Write as _;

use super::{EngineReport, LimitReport};

/// Targets on the reference machine (issue 2): speedup ≥ 0.8 × token ratio, reused time within
/// 1.3× of the ideal, reuse exact to the bit, batched generation faster than sequential; (issue
/// 11) the tokens computed within 1.1× of the distinct-token ideal; and against llama.cpp's own
/// benchmarks, scored tokens/s and generation at each batch size ≥ 0.8× theirs.
pub const SPEEDUP_SHARE: f64 = 0.8;
pub const MAX_COMPUTED_PER_DISTINCT: f64 = 1.1;
pub const MAX_IDEAL_RATIO: f64 = 1.3;
pub const MAX_ABS_DIFF: f64 = 0.0;
pub const LIMIT_SHARE: f64 = 0.8;

fn mark(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISSED"
    }
}

/// `0` when exact, else every digit: a difference of 1e-9 must not print as 0.
fn diff(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else {
        format!("{v:e}")
    }
}

/// The report as an aligned table.
pub fn render_table(r: &EngineReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "model    {}", r.model);
    let _ = writeln!(
        s,
        "prefill  {:.0} tokens/s (raw batch, {}); {:.0} tokens/s scoring every token ({:.2} of it: each scored token needs its own logits)",
        r.prefill_tokens_per_second,
        r.threads_note,
        r.every_logit_tokens_per_second,
        r.every_logit_share
    );
    let _ = writeln!(
        s,
        "scale    {:.3} ({}; the full workloads' naive runs are {} tokens; 1 runs them all)",
        r.scale.factor, r.scale.requested, r.scale.full_naive_tokens
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<14} {:>6} {:>5} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7}  max diff",
        "workload",
        "inputs",
        "cands",
        "reqs",
        "scored",
        "computed",
        "naive s",
        "reused s",
        "ideal s",
        "speedup",
        "tokens",
        "ideal×",
    );
    for w in &r.workloads {
        let _ = writeln!(
            s,
            "{:<14} {:>6} {:>5} {:>5} {:>8} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>7.2} {:>7.2} {:>7.2}  {}",
            w.name,
            format!("{}/{}", w.inputs, w.full_inputs),
            format!("{}/{}", w.candidates, w.full_candidates),
            w.requests,
            w.tokens_scored,
            w.tokens_computed,
            w.naive_seconds,
            w.reused_seconds,
            w.ideal_seconds,
            w.speedup,
            w.token_ratio,
            w.ideal_ratio,
            diff(w.max_abs_diff)
        );
        let _ = writeln!(
            s,
            "{:<14} speedup ≥ {SPEEDUP_SHARE} × token ratio: {}   ideal× ≤ {MAX_IDEAL_RATIO}: {}   max diff = {MAX_ABS_DIFF}: {}",
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
        "generation  ≤{} tokens after a {}-token prompt (its {:.3} s prefill left out): {}",
        g.max_tokens,
        g.prompt_tokens,
        g.prompt_seconds,
        g.batched
            .iter()
            .map(|p| format!("{} seq {:.1} tok/s", p.sequences, p.tokens_per_second))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        s,
        "            {} samples: batched {:.1} tok/s, sequential {:.1} tok/s, speedup {:.2} ({})",
        g.sequences,
        g.batched_tokens_per_second,
        g.sequential_tokens_per_second,
        r.generation_speedup,
        mark(r.generation_speedup > 1.0)
    );
    if let Some(l) = &r.limit {
        render_limit(&mut s, r, l);
    }
    s
}

/// dln ÷ llama.cpp, each ratio marked against its goal.
fn render_limit(s: &mut String, r: &EngineReport, l: &LimitReport) {
    let (off, on) = (&l.llama_bench.repack_off, &l.llama_bench.repack_on);
    let goal = |ratio: f64| mark(ratio >= LIMIT_SHARE);
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "against llama.cpp on the same file, {} threads (dln ÷ llama.cpp; goal ≥ {LIMIT_SHARE})",
        r.threads
    );
    let _ = writeln!(
        s,
        "  llama-bench          pp512 {:.1} tok/s, tg128 {:.1} tok/s without repacking (dln's kernels); {:.1} and {:.1} with llama.cpp's default repacking",
        off.prompt_tokens_per_second,
        off.generation_tokens_per_second,
        on.prompt_tokens_per_second,
        on.generation_tokens_per_second
    );
    let _ = writeln!(
        s,
        "  llama-batched-bench  S_TG {}",
        l.batched_bench
            .points
            .iter()
            .map(|p| format!(
                "{} seq {:.1} tok/s",
                p.sequences, p.generation_tokens_per_second
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut row = |label: String, ratio: f64, marked: bool, note: String| {
        let m = if marked { goal(ratio) } else { "" };
        let _ = writeln!(s, "  {label:<36} {ratio:>6.2}  {m:<6}  {note}");
    };
    row(
        "raw prefill ÷ pp512".into(),
        l.prefill_vs_prompt,
        false,
        format!("(÷ pp512 with repacking {:.2})", l.prefill_vs_prompt_repack),
    );
    for (w, n) in r.workloads.iter().zip(&l.scored_vs_prompt) {
        row(
            format!("scored ÷ pp512, {}", n.name),
            n.ratio,
            true,
            format!("{:.0} tok/s", w.scored_tokens_per_second),
        );
    }
    row(
        "scored ÷ pp512, overall".into(),
        l.scored_overall_vs_prompt,
        true,
        format!("{:.0} tok/s", r.scored_tokens_per_second),
    );
    row(
        "scored ÷ (pp512 × every-logit share)".into(),
        l.scored_overall_vs_every_logit,
        false,
        format!(
            "(pp512 × {:.2} = {:.0} tok/s: pp512 reads one token's logits)",
            r.every_logit_share,
            off.prompt_tokens_per_second * r.every_logit_share
        ),
    );
    row(
        "generation 1 seq ÷ tg128".into(),
        l.generation_vs_tg128,
        true,
        format!(
            "(÷ tg128 with repacking {:.2})",
            l.generation_vs_tg128_repack
        ),
    );
    for g in &l.generation_vs_batched {
        row(
            format!("generation {0} seq ÷ batched-bench {0}", g.sequences),
            g.ratio,
            true,
            format!("{:.1} tok/s", r.generation.at(g.sequences)),
        );
    }
}
