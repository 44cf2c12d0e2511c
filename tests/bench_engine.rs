//! `dln bench engine` end to end on SmolLM2-135M at a small scale: the report's shape, reuse
//! exact to the bit, and (with `DLN_LLAMA_BENCH_DIR` naming llama.cpp's tools, built by
//! `../shared/tools/llama-limit DIR`) the ratios against llama.cpp's own benchmarks.

mod common;

use serde_json::Value;

fn bench_engine(extra: &[&str]) -> Value {
    let out = common::dln()
        .args(["bench", "engine", "--scale", "0.05", "--json"])
        .args(extra)
        .output()
        .expect("run dln");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dln bench engine failed:\n{stderr}");
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

fn finite_positive(v: &Value, what: &str) -> f64 {
    let x = v.as_f64().unwrap_or(f64::NAN);
    assert!(x.is_finite() && x > 0.0, "{what} = {v}");
    x
}

#[test]
fn bench_engine_at_a_small_scale_reports_every_part_and_exact_reuse() {
    let dir = std::env::var_os("DLN_LLAMA_BENCH_DIR");
    let dir_arg = dir.as_ref().map(|d| d.to_string_lossy().into_owned());
    let extra: Vec<&str> = match &dir_arg {
        Some(d) => vec!["--llama-bench", d],
        None => {
            eprintln!(
                "note: DLN_LLAMA_BENCH_DIR is not set, so the comparison with llama.cpp's own \
                 benchmarks is skipped (build them with ../shared/tools/llama-limit DIR)"
            );
            vec![]
        }
    };
    let r = bench_engine(&extra);

    assert!(r["threads"].as_u64().unwrap_or(0) >= 1, "{}", r["threads"]);
    assert_eq!(r["scale"]["requested"], "0.05");
    assert_eq!(r["scale"]["factor"], 0.05);
    finite_positive(&r["prefill_tokens_per_second"], "prefill");
    let every = finite_positive(&r["every_logit_tokens_per_second"], "scoring every token");
    // The share is what the two rates measured in this run say (a ratio of timings, so no
    // bound on it here: a machine shared with other work moves it).
    let share = finite_positive(&r["every_logit_share"], "every-logit share");
    let prefill = r["prefill_tokens_per_second"].as_f64().expect("prefill");
    assert!(
        (share - every / prefill).abs() < 1e-6 * share.max(1.0),
        "share {share} against {every} / {prefill}"
    );
    let workloads = r["workloads"].as_array().expect("workloads");
    let names: Vec<&str> = workloads
        .iter()
        .filter_map(|w| w["name"].as_str())
        .collect();
    assert_eq!(names, ["dln1_ranking", "dln2_hidden", "dln1_demos"]);
    // 5% of 20, 8 and 16 inputs is one input's worth or less: two inputs kept, and of the 5
    // candidates the share that makes up for it (5 × 1/2, 5 × 0.4/2 and 5 × 0.8/2, rounded,
    // at least two).
    for (w, (candidates, requests)) in
        workloads
            .iter()
            .zip([(3, 3 * 2), (2, 2 * 2 * 3), (2, 2 * 2 * 2)])
    {
        assert_eq!(w["inputs"], 2, "{w}");
        assert_eq!(w["candidates"], candidates, "{w}");
        assert_eq!(w["full_candidates"], 5, "{w}");
        assert_eq!(w["requests"], requests, "{w}");
        assert_eq!(w["max_abs_diff"], 0.0, "reuse is exact: {w}");
        finite_positive(&w["scored_tokens_per_second"], "scored tokens/s");
    }
    let g = &r["generation"];
    let sequences: Vec<u64> = g["batched"]
        .as_array()
        .expect("batched generation")
        .iter()
        .map(|p| {
            finite_positive(&p["tokens_per_second"], "generation");
            p["sequences"].as_u64().unwrap_or(0)
        })
        .collect();
    assert_eq!(sequences, [1, 4, 8]);

    match dir_arg {
        None => assert!(r["limit"].is_null(), "{}", r["limit"]),
        Some(_) => {
            let l = &r["limit"];
            for key in [
                "prefill_vs_prompt",
                "prefill_vs_prompt_repack",
                "scored_overall_vs_prompt",
                "scored_overall_vs_every_logit",
                "generation_vs_tg128",
                "generation_vs_tg128_repack",
            ] {
                finite_positive(&l[key], key);
            }
            for n in l["scored_vs_prompt"].as_array().expect("per workload") {
                finite_positive(&n["ratio"], "scored ÷ pp512");
            }
            let batched = l["generation_vs_batched"].as_array().expect("per batch");
            assert_eq!(batched.len(), 3);
            for g in batched {
                finite_positive(&g["ratio"], "generation ÷ batched-bench");
            }
            for key in ["repack_off", "repack_on"] {
                finite_positive(&l["llama_bench"][key]["prompt_tokens_per_second"], "pp512");
            }
        }
    }
}

#[test]
fn a_missing_llama_bench_dir_is_one_clear_error() {
    let out = common::dln()
        .args([
            "bench",
            "engine",
            "--llama-bench",
            "/nonexistent/llama-limit",
        ])
        .output()
        .expect("run dln");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("llama-bench is not in /nonexistent/llama-limit")
            && stderr.contains("../shared/tools/llama-limit DIR"),
        "{stderr}"
    );
    // It fails before loading the model.
    assert!(!stderr.contains("loading"), "{stderr}");
}
