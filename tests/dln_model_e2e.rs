//! End to end with the real embedded model, kept small: DLN-1 and DLN-2 for 2 iterations on the
//! shipped examples, DLN-3 for 1 iteration.

mod common;

use std::path::Path;

use common::session::*;
use dln::config::Config;
use dln::dln::events::Event;
use dln::run::{Session, SessionOptions};

fn model() -> String {
    common::test_model().display().to_string()
}

fn load(example: &str, sets: &[(&str, &str)]) -> Config {
    let mut c = Config::load(&common::example(example)).expect("example config loads");
    for (k, v) in sets {
        c.set(k, v).expect("override");
    }
    c
}

async fn run(config: Config, out: &Path) -> (dln::run::RunSummary, Vec<Event>) {
    let opts = SessionOptions {
        out_dir: Some(out.to_path_buf()),
        model: Some(model()),
        ..Default::default()
    };
    let session = Session::start(config, opts).await.expect("start");
    let (r, events) = run_to_end(session).await;
    (r.expect("run succeeds"), events)
}

const SMALL: [(&str, &str); 6] = [
    ("train.iterations", "2"),
    ("train.batch_size", "2"),
    ("train.num_candidates", "2"),
    ("train.num_hidden_samples", "2"),
    ("data.max_dev", "3"),
    ("data.max_test", "3"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dln1_demo_two_iterations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, events) = run(load("dln1-demo.toml", &SMALL), &dir.path().join("run")).await;
    assert_eq!(s.iterations, 2);
    assert!(s.test_accuracy.is_some() && s.dev_accuracy.is_some());
    assert_eq!(
        count(&events, |e| matches!(e, Event::IterationDone { .. })),
        2
    );
    // Once a full iteration ran, the next one is forecast as it starts (from the stages' times)
    // and `dln bench forecast` sets that against its time.
    let updated = events
        .iter()
        .any(|e| matches!(e, Event::CandidatesScored { iteration: 0, .. }));
    let held = dln::bench::forecast::iterations(&events);
    if updated {
        assert_eq!(held.len(), 1, "iteration 2 forecast: {held:?}");
        assert_eq!(held[0].iteration, 1);
        assert!(held[0].forecast_ms > 0 && held[0].actual_ms > 0, "{held:?}");
        let run_left = events.iter().find_map(|e| match e {
            Event::Forecast {
                iteration: 1,
                run_left_ms,
                ..
            } => *run_left_ms,
            _ => None,
        });
        assert!(
            run_left.is_some_and(|r| r >= held[0].forecast_ms),
            "the run's forecast covers the iteration's"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dln2_demo_two_iterations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sets = SMALL.to_vec();
    sets.push(("layers.0.forward_max_tokens", "24"));
    sets.push(("train.seed", "3"));
    let (s, events) = run(load("dln2-demo.toml", &sets), &dir.path().join("run")).await;
    assert_eq!(s.iterations, 2);
    assert_eq!(s.best_prompts.len(), 2);
    // The hidden layer wrote text, and (unless every batch was right) posteriors were sharpened.
    let hidden_written = events.iter().any(|e| match e {
        Event::ForwardDone { examples, .. } => examples.iter().all(|x| x.hidden.len() == 1),
        _ => false,
    });
    assert!(hidden_written);
    let trained = count(&events, |e| matches!(e, Event::Sharpened { layer: 1, .. }));
    let all_right = count(
        &events,
        |e| matches!(e, Event::Warning { message } if message.contains("every example")),
    );
    assert_eq!(trained + all_right, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dln3_one_iteration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = tiny_config_text(3);
    text = text
        .replace("iterations = 2", "iterations = 1")
        .replace("batch_size = 3", "batch_size = 2");
    text = text.replace("num_candidates = 3", "num_candidates = 2");
    let config = Config::parse(&text, Path::new("dln3.toml")).expect("parses");
    let (s, events) = run(config, &dir.path().join("run")).await;
    assert_eq!(s.iterations, 1);
    assert_eq!(s.best_prompts.len(), 3);
    let fwd = events.iter().find_map(|e| match e {
        Event::ForwardDone { examples, .. } => Some(examples.clone()),
        _ => None,
    });
    assert!(fwd
        .expect("a forward pass")
        .iter()
        .all(|x| x.hidden.len() == 2));
}
