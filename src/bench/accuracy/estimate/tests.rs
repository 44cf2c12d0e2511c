use super::*;
use crate::bench::accuracy::plan::{apply_method, Method};
use crate::config::Config;
use crate::data::{Dataset, Example, OutputClasses};

fn data(n: usize) -> Dataset {
    let ex = |i: usize| Example {
        input: format!("input number {i} with some words"),
        target: "yes".into(),
    };
    Dataset {
        name: "t".into(),
        train: (0..n).map(ex).collect(),
        dev: (0..n / 2).map(ex).collect(),
        test: (0..n).map(ex).collect(),
        classes: None,
    }
}

fn cell(m: Method) -> Cell {
    let mut config = Config::parse(
        "[task]\nname = \"t\"\n[data]\npath = \"x.jsonl\"\n[train]\niterations = 4\n[[layers]]\n",
        std::path::Path::new("t.toml"),
    )
    .expect("config");
    apply_method(&mut config, m, 1, 3);
    Cell {
        task: "t".into(),
        method: m,
        seed: 1,
        dir: "d".into(),
        config,
        budget: None,
    }
}

#[test]
fn training_costs_more_than_baselines_and_depth_more_than_one_layer() {
    let d = data(40);
    let e = |m| estimate(&cell(m), &d, None);
    let (z, k, d1, d2) = (
        e(Method::ZeroShot),
        e(Method::KShot),
        e(Method::Dln1),
        e(Method::Dln2),
    );
    assert_eq!(z.calls, 60, "20 dev + 40 test, one layer");
    assert_eq!(k.calls, z.calls);
    assert!(k.prompt_tokens > z.prompt_tokens, "demonstrations are read");
    assert!(d1.calls > z.calls && d2.calls > d1.calls);
    assert!(d2.generated_tokens > d1.generated_tokens);
    assert!(d2.seconds > d1.seconds && d1.seconds > 0.0);
    let demos = e(Method::Dln1Demos);
    assert!(demos.calls > d1.calls, "demonstration moves are scored too");
    assert!(
        demos.prompt_tokens > d1.prompt_tokens,
        "demonstrations are read"
    );
}

#[test]
fn a_hidden_layer_without_a_stop_is_estimated_to_write_most_of_its_limit() {
    let d = data(40);
    let chat = cell(Method::Dln2);
    let mut stopped = chat.clone();
    stopped.config.layers[0].templates.forward = "forward_hidden".into();
    assert_eq!(
        hidden_used_of_limit(&chat.config),
        HIDDEN_USED_WITHOUT_STOP,
        "the bench's chat hidden layer ends at the model's end of turn"
    );
    assert_eq!(hidden_used_of_limit(&stopped.config), USED_OF_LIMIT);
    let (a, b) = (estimate(&chat, &d, None), estimate(&stopped, &d, None));
    assert!(a.generated_tokens > 2 * b.generated_tokens);
    assert!(a.seconds > b.seconds);
}

#[test]
fn cells_still_to_run_are_timed_by_the_finished_seeds_of_their_row() {
    let e = Estimate {
        calls: 10,
        prompt_tokens: 100,
        generated_tokens: 5,
        seconds: 60.0,
        on_server: false,
    };
    let r = rows([
        ("nav", "dln-2", e, Some(1000.0)),
        ("nav", "dln-2", e, None),
        ("nav", "dln-2", e, None),
        ("nav", "0-shot", e, Some(30.0)),
        ("trec", "dln-1", e, None),
    ]);
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].cells, 3);
    assert_eq!(r[0].per_cell, e, "the mean of equal estimates");
    assert_eq!(r[0].time_per_cell(), CellTime::Measured(1000.0));
    assert_eq!(
        r[0].seconds_to_run(),
        2000.0,
        "two seeds left at the measured time"
    );
    assert_eq!(r[1].time_per_cell(), CellTime::Done(30.0));
    assert_eq!(r[1].seconds_to_run(), 0.0);
    assert_eq!(r[2].time_per_cell(), CellTime::Estimated(60.0));
    assert_eq!(r[2].seconds_to_run(), 60.0);
}

#[test]
fn an_answer_among_classes_of_several_tokens_reads_its_context_once_per_class() {
    let with = |labels: &[&str]| {
        let mut d = data(40);
        d.classes = Some(OutputClasses::from_labels(labels.iter().copied()));
        d
    };
    let words = with(&["yes", "no"]);
    let letters = with(&["(A)", "(B)", "(C)", "(D)", "(E)", "(F)"]);
    let c = cell(Method::ZeroShot);
    let (w, l) = (estimate(&c, &words, None), estimate(&c, &letters, None));
    assert_eq!(w.calls, l.calls);
    assert!(
        l.prompt_tokens as f64 > 5.9 * w.prompt_tokens as f64,
        "six labels of several tokens: {l:?} against {w:?}"
    );
    assert!(
        l.seconds < 1.5 * w.seconds,
        "the context is computed once whatever the classes: {l:?} against {w:?}"
    );
    assert_eq!(
        estimate(&c, &with(&["a", "b", "c", "d", "e", "f"]), None).prompt_tokens,
        w.prompt_tokens,
        "labels of one token each are read together"
    );
}

#[test]
fn half_the_threads_take_twice_the_time_for_the_same_tokens() {
    let d = data(40);
    let on = |threads| {
        let mut c = cell(Method::Dln2);
        c.config.model.threads = Some(threads);
        estimate(&c, &d, None)
    };
    let (two, one) = (on(2), on(1));
    assert!((one.seconds / two.seconds - 2.0).abs() < 1e-9);
    assert_eq!(
        (one.calls, one.prompt_tokens),
        (two.calls, two.prompt_tokens)
    );
}

#[test]
fn a_larger_model_takes_longer_for_the_same_tokens_at_its_measured_rate() {
    let d = data(40);
    let c = cell(Method::Dln2);
    let on = |m| estimate(&c, &d, Some(m));
    let (small, half, large) = (
        on("smollm2-135m"),
        on("qwen2.5-coder-0.5b"),
        on("qwen2.5-coder-1.5b"),
    );
    assert_eq!(
        (small.calls, small.prompt_tokens),
        (large.calls, large.prompt_tokens)
    );
    let rate = |m| crate::llm::model::speed(Some(m)).tokens_per_second_per_thread;
    let ratio = half.seconds / small.seconds;
    assert!(
        (ratio - rate("smollm2-135m") / rate("qwen2.5-coder-0.5b")).abs() < 1e-9,
        "{ratio}"
    );
    assert!(large.seconds > half.seconds && half.seconds > small.seconds);
    let speed = cell_speed(&c, Some("qwen2.5-coder-1.5b")).expect("embedded");
    assert_eq!(speed.model, "qwen2.5-coder-1.5b");
    assert!(!speed.interpolated);
}

#[test]
fn digits_and_punctuation_are_a_token_each() {
    assert_eq!(tokens("12/05/2003"), 10.0);
    assert_eq!(tokens("word"), 1.0);
    assert_eq!(
        tokens("(A) yes"),
        2.0 + 5.0 / 4.0,
        "the parentheses, then five characters"
    );
}

#[test]
fn a_cell_that_calls_a_server_is_not_timed_until_a_seed_has_run() {
    let d = data(40);
    let mut c = cell(Method::Dln1);
    assert!(!estimate(&c, &d, None).on_server);
    let mut zero_shot = cell(Method::ZeroShot);
    c.config = Config::parse(
        "[task]\nname = \"t\"\n[data]\npath = \"x.jsonl\"\n[train]\niterations = 4\n\
         [backends.big]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n\
         [[layers]]\nbackward_model = \"big\"\n",
        std::path::Path::new("t.toml"),
    )
    .expect("config");
    let e = estimate(&c, &d, None);
    assert!(e.on_server && e.seconds == 0.0 && e.calls > 0);
    assert!(
        estimate(&c, &d, Some("smollm2-135m")).on_server,
        "--model does not replace a model a layer names"
    );
    let mut on_default = cell(Method::Dln1);
    on_default.config = Config::parse(
        "[task]\nname = \"t\"\n[data]\npath = \"x.jsonl\"\n[model]\nname = \"big\"\n\
         [backends.big]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n\
         [[layers]]\n",
        std::path::Path::new("t.toml"),
    )
    .expect("config");
    assert!(estimate(&on_default, &d, None).on_server);
    assert!(
        !estimate(&on_default, &d, Some("smollm2-135m")).on_server,
        "--model stands for [model].name: the layers run locally"
    );
    zero_shot.config = c.config.clone();
    apply_method(&mut zero_shot.config, Method::ZeroShot, 1, 3);
    assert!(
        !estimate(&zero_shot, &d, None).on_server,
        "0-shot proposes nothing: the server is not called"
    );
    let row = |measured| rows([("t", "dln-1", e, measured), ("t", "dln-1", e, None)]);
    assert_eq!(row(None)[0].time_per_cell(), CellTime::OnServer);
    assert_eq!(row(None)[0].seconds_to_run(), 0.0);
    assert_eq!(row(Some(90.0))[0].time_per_cell(), CellTime::Measured(90.0));
    assert_eq!(row(Some(90.0))[0].seconds_to_run(), 90.0);
}
