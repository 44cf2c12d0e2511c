//! The embedded engine on the real SmolLM2 model: exactness of prefix reuse, classification,
//! generation controls and errors. The model is loaded once per test binary and shared; tests
//! take turns on it (see `serial`), each with its own small runtime.

mod common;

use dln::llm::{
    Backend, ChatMessage, ClassifyRequest, GenerateRequest, LlmError, Prompt, ScoreRequest,
    VerbalizerReduce,
};

/// Tests take turns on the shared model so that usage counters measured by one test are not
/// mixed with another's calls.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

use common::{block_on, embedded};

const PROMPT: &str = "Decide whether the statement about the world is true or false. Think about \
    common knowledge, geography and simple arithmetic before answering.\n\n";

fn requests() -> Vec<ScoreRequest> {
    let inputs = [
        "Water boils at 100 degrees Celsius at sea level.",
        "Two plus two is five.",
        "Paris is in Italy.",
    ];
    let mut out = Vec::new();
    for input in inputs {
        for target in [" True", " False", " It is true because everyone knows it."] {
            out.push(ScoreRequest {
                context: format!("{PROMPT}Statement: {input}\nAnswer:"),
                target: target.into(),
            });
        }
    }
    out
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn prefix_reused_scores_equal_naive_scores() {
    let _turn = serial();
    let b = embedded();
    let reqs = requests();
    let before = b.usage();
    let reused = block_on(b.score(reqs.clone())).expect("reused scores");
    let reused_usage = b.usage().since(&before);
    // A second call reuses the prefix kept from the first.
    let again = block_on(b.score(reqs.clone())).expect("second call");
    let naive = block_on(b.score_naive(reqs.clone())).expect("naive scores");
    for ((r, a), n) in reused.iter().zip(&again).zip(&naive) {
        assert!(
            (r.logprob - n.logprob).abs() <= 1e-3,
            "{} vs {}",
            r.logprob,
            n.logprob
        );
        assert!(max_diff(&r.token_logprobs, &n.token_logprobs) <= 1e-3);
        assert!((a.logprob - n.logprob).abs() <= 1e-3);
        assert_eq!(r.tokens as usize, r.token_logprobs.len());
    }
    let scored: u64 = naive.iter().map(|s| s.tokens as u64).sum();
    assert!(
        reused_usage.tokens_reused > 0,
        "the shared prompt was reused: {reused_usage:?}"
    );
    assert!(
        reused_usage.tokens_computed < scored * 40,
        "fewer tokens than from scratch: {reused_usage:?}"
    );
    assert_eq!(reused_usage.calls, reqs.len() as u64);
}

#[test]
fn a_score_is_the_sum_of_token_by_token_log_probs() {
    let _turn = serial();
    let b = embedded();
    let reqs = requests()[..3].to_vec();
    let batched = block_on(b.score(reqs.clone())).expect("scores");
    let stepwise = block_on(b.score_token_by_token(reqs)).expect("token by token");
    for (s, t) in batched.iter().zip(&stepwise) {
        let sum: f64 = t.token_logprobs.iter().sum();
        assert!((s.logprob - sum).abs() <= 1e-3, "{} vs {}", s.logprob, sum);
        assert!(max_diff(&s.token_logprobs, &t.token_logprobs) <= 1e-3);
        assert!(s.token_logprobs.iter().all(|l| *l <= 0.0 && l.is_finite()));
    }
}

#[test]
fn class_distributions_sum_to_one_and_agree_with_score() {
    let _turn = serial();
    let b = embedded();
    let context = format!("{PROMPT}Statement: Two plus two is four.\nAnswer:");
    let req = ClassifyRequest {
        context: context.clone(),
        classes: vec![vec!["True".into()], vec!["False".into()]],
        reduce: VerbalizerReduce::Sum,
    };
    let dist = block_on(b.classify(vec![req.clone()]))
        .expect("classify")
        .remove(0);
    assert!((dist.probs.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    // The same masses computed from `score`: each class is "True" or " True".
    let variants = ["True", " True", "False", " False"];
    let scores = block_on(
        b.score(
            variants
                .iter()
                .map(|v| ScoreRequest {
                    context: context.clone(),
                    target: v.to_string(),
                })
                .collect(),
        ),
    )
    .expect("scores");
    for s in &scores {
        assert_eq!(s.tokens, 1, "single-token verbalizers");
    }
    let p = |i: usize| scores[i].logprob.exp();
    let p_true = (p(0) + p(1)) / (p(0) + p(1) + p(2) + p(3));
    assert!(
        (dist.probs[0] - p_true).abs() < 1e-6,
        "{} vs {}",
        dist.probs[0],
        p_true
    );
    // Multi-token verbalizers and `max` also give a distribution.
    let multi = ClassifyRequest {
        context,
        classes: vec![
            vec!["definitely true".into(), "yes".into()],
            vec!["definitely false".into()],
        ],
        reduce: VerbalizerReduce::Max,
    };
    let d = block_on(b.classify(vec![multi]))
        .expect("multi-token classify")
        .remove(0);
    assert!((d.probs.iter().sum::<f64>() - 1.0).abs() < 1e-9);
}

#[test]
fn stop_strings_and_max_tokens_are_honoured() {
    let _turn = serial();
    let b = embedded();
    let prompt =
        Prompt::raw("List the numbers from one to twenty, one per line:\n1. one\n2. two\n3.");
    let capped = block_on(b.generate(vec![GenerateRequest::greedy(prompt.clone(), 5, vec![])]))
        .expect("generate");
    assert!(capped[0][0].tokens <= 5 && capped[0][0].tokens > 0);
    let stopped =
        block_on(b.generate(vec![GenerateRequest::greedy(prompt, 60, vec!["\n".into()])]))
            .expect("generate");
    let g = &stopped[0][0];
    assert!(
        !g.text.contains('\n'),
        "cut before the stop string: {:?}",
        g.text
    );
    assert!(g.tokens < 60, "stopped early: {g:?}");
    assert_eq!(
        g.token_logprobs.as_ref().map(|l| l.len()),
        Some(g.tokens as usize)
    );
}

#[test]
fn the_same_seed_gives_the_same_text() {
    let _turn = serial();
    let b = embedded();
    let req = GenerateRequest {
        prompt: Prompt::raw("Once upon a time, in a small village,"),
        temperature: 1.0,
        top_p: 0.95,
        max_tokens: 24,
        stop: vec![],
        seed: 42,
        n: 3,
    };
    let first = block_on(b.generate(vec![req.clone()])).expect("generate");
    let second = block_on(b.generate(vec![req.clone()])).expect("generate");
    assert_eq!(first, second);
    assert_eq!(first[0].len(), 3);
    let texts: Vec<&str> = first[0].iter().map(|g| g.text.as_str()).collect();
    assert!(
        texts[0] != texts[1] || texts[1] != texts[2],
        "samples differ: {texts:?}"
    );
    // Requests of one call are generated together: the same call gives the same samples, and
    // each sample's first token, drawn from its prompt's logits, is the one it gets alone.
    let other = GenerateRequest::greedy(Prompt::raw("A completely different prompt:"), 8, vec![]);
    let mixed = block_on(b.generate(vec![other.clone(), req.clone()])).expect("generate");
    let again = block_on(b.generate(vec![other, req.clone()])).expect("generate");
    assert_eq!(mixed, again);
    for (m, f) in mixed[1].iter().zip(&first[0]) {
        let first_token =
            |g: &dln::llm::Generation| g.token_logprobs.as_ref().expect("logprobs")[0];
        assert_eq!(first_token(m), first_token(f));
    }
    // Sample j draws from the same random stream whether it is generated in a batch or alone,
    // so its first token (drawn from the prompt's logits) is the same. Later tokens can part at
    // near-ties: batched samples interleave their KV cells, which regroups float sums.
    let sequential = block_on(b.generate_sequential(vec![req])).expect("generate");
    for (batched, alone) in first[0].iter().zip(&sequential[0]) {
        let (a, b) = (
            batched.token_logprobs.as_ref().expect("logprobs"),
            alone.token_logprobs.as_ref().expect("logprobs"),
        );
        assert_eq!(a[0], b[0]);
    }
}

#[test]
fn chat_prompts_use_the_models_template() {
    let _turn = serial();
    let b = embedded();
    let messages = vec![ChatMessage {
        role: "user".into(),
        content: "Name a colour.".into(),
    }];
    let rendered = b.render_chat(&messages).expect("template");
    assert!(rendered.contains("Name a colour.") && rendered.len() > "Name a colour.".len());
    let req = GenerateRequest::greedy(
        Prompt::Chat {
            messages,
            assistant_prefix: "My answer:".into(),
        },
        16,
        vec!["\n".into()],
    );
    let out = block_on(b.generate(vec![req])).expect("chat generation");
    assert!(!out[0][0].text.trim().is_empty(), "{:?}", out[0][0]);
}

#[test]
fn bad_requests_are_errors_and_the_worker_survives() {
    let _turn = serial();
    let b = embedded();
    let empty = block_on(b.score(vec![ScoreRequest {
        context: "Hello".into(),
        target: String::new(),
    }]));
    assert!(matches!(empty, Err(LlmError::EmptyTarget)), "{empty:?}");
    let long = "word ".repeat(b.context_size() + 10);
    let overflow = block_on(b.score(vec![ScoreRequest {
        context: long.clone(),
        target: " end".into(),
    }]));
    assert!(
        matches!(overflow, Err(LlmError::ContextOverflow { .. })),
        "{overflow:?}"
    );
    let gen = block_on(b.generate(vec![GenerateRequest::greedy(Prompt::raw(long), 4, vec![])]));
    assert!(
        matches!(gen, Err(LlmError::ContextOverflow { .. })),
        "{gen:?}"
    );
    let no_class = block_on(b.classify(vec![ClassifyRequest {
        context: "x".into(),
        classes: vec![vec![]],
        reduce: VerbalizerReduce::Sum,
    }]));
    assert!(
        matches!(no_class, Err(LlmError::InvalidRequest(_))),
        "{no_class:?}"
    );
    let ok = block_on(b.score(vec![ScoreRequest {
        context: "Hello".into(),
        target: " world".into(),
    }]));
    assert!(ok.is_ok(), "the worker still serves: {ok:?}");
}

/// A scoring context of about `words` tokens that shares nothing with another `seed`'s but BOS.
fn distinct_context(seed: usize, words: usize) -> String {
    const WORDS: [&str; 12] = [
        "river", "copper", "lantern", "meadow", "orbit", "velvet", "harbor", "cinder", "maple",
        "quartz", "thistle", "glacier",
    ];
    let mut text = format!("Note {seed}:");
    for k in 0..words {
        text.push(' ');
        text.push_str(WORDS[(seed * 7 + k * (seed % 5 + 1)) % WORDS.len()]);
    }
    text + "\nAnswer:"
}

fn targets(context: &str) -> Vec<ScoreRequest> {
    [" True", " False", " It is neither true nor false."]
        .into_iter()
        .map(|t| ScoreRequest {
            context: context.to_string(),
            target: t.into(),
        })
        .collect()
}

#[test]
fn a_prefix_kept_from_an_earlier_call_is_reused_and_exact() {
    let _turn = serial();
    let b = embedded();
    block_on(b.clear_cache()).expect("clear");
    let p1 =
        format!("{PROMPT}Statement: Water boils at 100 degrees Celsius at sea level.\nAnswer:");
    let p2 = distinct_context(1, 120);
    let context_tokens = block_on(b.count_tokens(&p1)).expect("count");

    let a = block_on(b.score(targets(&p1))).expect("call A");
    block_on(b.score(targets(&p2))).expect("call B: an unrelated prefix");
    let before = b.usage();
    let c = block_on(b.score(targets(&p1))).expect("call C: the first prefix again");
    let used = b.usage().since(&before);
    // The context (without its last token, decoded with the first target's reads) is reused.
    assert!(
        used.tokens_reused as usize >= context_tokens - 1,
        "the kept prefix of {context_tokens} tokens was restored: {used:?}"
    );
    assert!(
        (used.tokens_computed as usize) < context_tokens / 2,
        "only the targets were computed: {used:?}"
    );
    let naive = block_on(b.score_naive(targets(&p1))).expect("naive");
    for ((x, y), n) in a.iter().zip(&c).zip(&naive) {
        assert!(max_diff(&x.token_logprobs, &y.token_logprobs) <= 1e-3);
        assert!(max_diff(&y.token_logprobs, &n.token_logprobs) <= 1e-3);
        assert!((y.logprob - n.logprob).abs() <= 1e-3, "{y:?} vs {n:?}");
    }
}

#[test]
fn many_distinct_prefixes_stay_within_the_kept_bound() {
    let _turn = serial();
    let b = embedded();
    block_on(b.clear_cache()).expect("clear");
    // More prefixes than the store keeps (8 entries, a context's worth of tokens).
    let contexts: Vec<String> = (0..14).map(|i| distinct_context(i + 2, 120)).collect();
    for context in &contexts {
        block_on(b.score(targets(context))).expect("every call succeeds");
    }
    let reused_by = |context: &str| {
        let before = b.usage();
        let scores = block_on(b.score(targets(context))).expect("score");
        (b.usage().since(&before).tokens_reused, scores)
    };
    // A recent prefix is still kept, the oldest was evicted (only BOS-level sharing is left).
    let recent = &contexts[contexts.len() - 3];
    let (recent_reused, recent_scores) = reused_by(recent);
    let recent_tokens = block_on(b.count_tokens(recent)).expect("count");
    assert!(
        recent_reused as usize >= recent_tokens - 1,
        "{recent_reused} of {recent_tokens}"
    );
    let (old_reused, old_scores) = reused_by(&contexts[0]);
    assert!(
        old_reused < 16,
        "the oldest prefix was evicted: {old_reused}"
    );
    for (context, scores) in [(recent, recent_scores), (&contexts[0], old_scores)] {
        let naive = block_on(b.score_naive(targets(context))).expect("naive");
        for (s, n) in scores.iter().zip(&naive) {
            assert!(max_diff(&s.token_logprobs, &n.token_logprobs) <= 1e-3);
        }
    }
}

/// Demonstrations keep prefix reuse (issue 11): one update's scoring with an instruction
/// proposal and demonstration moves (`dln bench engine`'s `dln1_demos` workload) computes close
/// to the distinct-token ideal, every distinct prefix once, far below scoring from scratch.
#[test]
fn demonstration_candidates_compute_near_the_distinct_token_ideal() {
    let _turn = serial();
    let b = embedded();
    block_on(async {
        let w = dln::bench::dln1_demos(b).await.expect("the workload");
        let ideal = w.distinct_tokens(b).await.expect("the ideal") as f64;
        let requests = w.requests();
        let mut from_scratch = 0;
        for r in &requests {
            from_scratch += b
                .count_tokens(&format!("{}{}", r.context, r.target))
                .await
                .expect("count");
        }
        b.clear_cache().await.expect("clear");
        let before = b.usage();
        b.score(requests).await.expect("scores");
        let computed = b.usage().since(&before).tokens_computed as f64;
        eprintln!(
            "dln1_demos: computed {computed} tokens, distinct ideal {ideal}, from scratch {from_scratch}"
        );
        assert!(
            computed <= 1.1 * ideal && computed >= 0.85 * ideal,
            "computed {computed} against the ideal {ideal}"
        );
        assert!(
            from_scratch as f64 > 4.0 * computed,
            "reuse saves most of {from_scratch}"
        );
    });
}
