//! Pause while a stage runs (scripted backend with a simulated latency): the pause takes effect
//! at once — `Paused` is announced and the backend is held, so no new call starts — and a
//! resume carries the stage on where it was, redoing nothing; a person's edit while held applies
//! at once, the iteration starting again with it. Other commands sent while a stage runs are
//! applied at its boundary, not in the middle. A stop waits for the boundary too, except in an
//! evaluation, which it leaves at the next chunk.

mod common;

use std::time::Duration;

use common::session::*;
use dln::dln::events::{Command, Event, RunState, Stage};
use dln::llm::scripted::ScriptedBackend;
use dln::run::Session;

const LATENCY: Duration = Duration::from_millis(250);

fn is_state(e: &Event, s: RunState) -> bool {
    matches!(e, Event::StateChanged { state } if *state == s)
}

fn forward_started(e: &Event) -> bool {
    matches!(
        e,
        Event::StageStarted {
            iteration: 0,
            stage: Stage::Forward,
            ..
        }
    )
}

/// A session on a slow scripted backend, and a handle on the backend to count its calls.
async fn slow_session(out: &std::path::Path) -> (Session, ScriptedBackend) {
    let backend = scripted().with_delay(LATENCY);
    let session = Session::start(tiny_config(1), options_with(backend.clone(), out))
        .await
        .expect("start");
    (session, backend)
}

/// A slow session paused while its first forward stage waits on the backend: the session, the
/// backend, the events so far, and where those after the pause begin.
async fn paused_in_forward(out: &std::path::Path) -> (Session, ScriptedBackend, Vec<Event>, usize) {
    let (mut session, backend) = slow_session(out).await;
    let mut seen = Vec::new();
    until(&mut session, &mut seen, forward_started).await;
    session.commands.send(Command::Pause).expect("pause");
    let at = seen.len();
    until(&mut session, &mut seen, |e| is_state(e, RunState::Paused)).await;
    (session, backend, seen, at)
}

/// Collects the events that arrive within `wait`.
async fn events_within(session: &mut Session, wait: Duration) -> Vec<Event> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, session.events.recv()).await {
        got.push(e);
    }
    got
}

#[tokio::test]
async fn a_pause_during_a_stage_holds_it_at_once_and_a_resume_carries_it_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut session, backend, mut seen, at) = paused_in_forward(&dir.path().join("run")).await;
    assert!(
        !seen[at..]
            .iter()
            .any(|e| matches!(e, Event::StageStarted { .. })),
        "paused at once: {:?}",
        &seen[at..]
    );
    // A call the backend had already begun may end; after it, nothing runs and no call starts.
    seen.extend(events_within(&mut session, LATENCY * 2).await);
    let calls = backend.calls().len();
    let quiet = events_within(&mut session, LATENCY * 4).await;
    assert!(quiet.is_empty(), "events while paused: {quiet:?}");
    assert_eq!(backend.calls().len(), calls, "a call started while held");

    session.commands.send(Command::Resume).expect("resume");
    let (r, events) = run_to_end(session).await;
    r.expect("run completes after resume");
    assert!(is_state(&events[0], RunState::Running), "{:?}", events[0]);
    seen.extend(events);
    assert_eq!(
        count(&seen, forward_started),
        1,
        "the held stage carried on; it did not start again"
    );
    assert!(seen.iter().any(|e| matches!(e, Event::RunFinished { .. })));
}

#[tokio::test]
async fn an_edit_while_held_applies_at_once_and_the_iteration_starts_again_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut session, _, mut seen, _) = paused_in_forward(&dir.path().join("run")).await;
    let edited = "Pick the letter of the larger number.";
    session
        .commands
        .send(Command::SetPrompt {
            layer: 0,
            prompt: edited.into(),
        })
        .expect("set prompt");
    let at = seen.len();
    until(&mut session, &mut seen, |e| {
        matches!(e, Event::PromptReplaced { .. })
    })
    .await;
    assert!(
        !seen[at..]
            .iter()
            .any(|e| matches!(e, Event::StateChanged { .. } | Event::ForwardDone { .. })),
        "applied while paused, the held stage left unfinished: {:?}",
        &seen[at..]
    );
    let quiet = events_within(&mut session, LATENCY * 4).await;
    assert!(quiet.is_empty(), "still paused: {quiet:?}");

    session.commands.send(Command::Resume).expect("resume");
    let (r, events) = run_to_end(session).await;
    let summary = r.expect("run completes after resume");
    seen.extend(events);
    assert_eq!(
        count(&seen, forward_started),
        2,
        "iteration 0 starts again with the edit"
    );
    assert!(summary.best_prompts.iter().any(|p| !p.is_empty()));
}

#[tokio::test]
async fn a_step_while_held_runs_the_rest_of_the_stage_then_pauses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut session, _, mut seen, _) = paused_in_forward(&dir.path().join("run")).await;
    session.commands.send(Command::Step).expect("step");
    let at = seen.len();
    until(&mut session, &mut seen, |e| is_state(e, RunState::Paused)).await;
    let after = &seen[at..];
    assert!(is_state(&after[0], RunState::Running), "{after:?}");
    assert!(
        after.iter().any(|e| matches!(e, Event::ForwardDone { .. })),
        "the held stage ran to its end: {after:?}"
    );
    assert!(
        !after
            .iter()
            .any(|e| matches!(e, Event::StageStarted { .. })),
        "and no further stage: {after:?}"
    );
    session.commands.send(Command::Resume).expect("resume");
    let (r, _) = run_to_end(session).await;
    r.expect("run completes");
}

#[tokio::test]
async fn stop_during_a_stage_shows_stopping_then_checkpoints_at_the_boundary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run");
    let (mut session, _) = slow_session(&out).await;
    let mut seen = Vec::new();
    until(&mut session, &mut seen, forward_started).await;
    session.commands.send(Command::Stop).expect("stop");
    let at = seen.len();
    until(&mut session, &mut seen, |e| is_state(e, RunState::Stopping)).await;
    // Acknowledged before the running stage finished.
    assert!(
        !seen[at..]
            .iter()
            .any(|e| matches!(e, Event::ForwardDone { .. })),
        "{:?}",
        &seen[at..]
    );
    let (r, events) = run_to_end(session).await;
    let summary = r.expect("stopped run");
    assert!(summary.stopped_early);
    let fwd = events
        .iter()
        .position(|e| matches!(e, Event::ForwardDone { .. }))
        .expect("the running stage completes (no work lost)");
    let cp = events
        .iter()
        .position(|e| matches!(e, Event::CheckpointWritten { .. }))
        .expect("checkpoint on stop");
    assert!(fwd < cp);
}

/// `tiny_config(1)` over `examples` larger-number questions written into `dir`, with a dev
/// split of `dev` examples (several evaluation chunks), set as `--set` would.
fn config_with_dev(dir: &std::path::Path, examples: usize, dev: usize) -> dln::config::Config {
    let items: Vec<serde_json::Value> = (0..examples)
        .map(|i| {
            let (a, b) = (10 + (i * 37) % 80, 10 + (i * 53 + 11) % 80);
            let answer = if a >= b { "(A)" } else { "(B)" };
            serde_json::json!({
                "question": format!("Which number is larger?\nOptions:\n(A) {a}\n(B) {b}"),
                "answer": answer,
            })
        })
        .collect();
    let data = dir.join("numbers.json");
    std::fs::write(&data, serde_json::to_string(&items).expect("json")).expect("write data");
    let mut config = tiny_config(1);
    for (key, value) in [
        ("data.path", format!("{:?}", data.display().to_string())),
        ("data.max_dev", dev.to_string()),
        ("data.split.dev", dev.to_string()),
        ("data.split.test", "4".to_string()),
    ] {
        config.set(key, &value).expect(key);
    }
    config
}

#[tokio::test]
async fn a_stop_during_an_evaluation_leaves_it_at_the_next_chunk_and_the_resume_finishes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dev = 40;
    let config = || config_with_dev(dir.path(), 60, dev);
    // The uninterrupted run.
    let a = Session::start(config(), options_with(scripted(), &dir.path().join("a")))
        .await
        .expect("start a");
    let (ra, _) = run_to_end(a).await;
    let ra = ra.expect("run a");

    // Stopped once the starting dev evaluation has answered its first chunk (8 examples).
    let out = dir.path().join("b");
    let backend = scripted().with_delay(LATENCY);
    let mut b = Session::start(config(), options_with(backend, &out))
        .await
        .expect("start b");
    let mut seen = Vec::new();
    let evaluating = |e: &Event| {
        matches!(
            e,
            Event::StageProgress {
                stage: Stage::Evaluate,
                done,
                ..
            } if *done > 0
        )
    };
    until(&mut b, &mut seen, evaluating).await;
    b.commands.send(Command::Stop).expect("stop");
    let (rb, rest) = run_to_end(b).await;
    seen.extend(rest);
    let rb = rb.expect("a stopped run ends without error");
    assert!(rb.stopped_early);
    let done: Vec<usize> = seen
        .iter()
        .filter_map(|e| match e {
            Event::StageProgress {
                stage: Stage::Evaluate,
                done,
                total,
                ..
            } => {
                assert_eq!(*total, dev);
                Some(*done)
            }
            _ => None,
        })
        .collect();
    let last = *done.last().expect("progress");
    assert!(
        last < dev,
        "the evaluation ran to its end ({done:?}) instead of stopping at a chunk"
    );
    assert_eq!(
        count(&seen, |e| matches!(e, Event::Evaluated { .. })),
        0,
        "a split left half-way gives no accuracy"
    );
    let stopping = seen
        .iter()
        .position(|e| is_state(e, RunState::Stopping))
        .expect("Stopping shown");
    let checkpoint = seen
        .iter()
        .position(|e| matches!(e, Event::CheckpointWritten { .. }))
        .expect("a checkpoint on stop");
    assert!(stopping < checkpoint);
    assert!(seen.iter().any(|e| matches!(
        e,
        Event::RunFinished {
            stopped_early: true,
            test_accuracy: None,
            ..
        }
    )));

    // The resume runs the evaluation again, its answered chunks from the call cache, and ends
    // where the uninterrupted run did.
    let resumed = Session::resume(&out, options_with(scripted(), &out))
        .await
        .expect("resume");
    let (rc, _) = run_to_end(resumed).await;
    let rc = rc.expect("resumed run");
    assert!(!rc.stopped_early);
    assert_eq!(rc.best_prompts, ra.best_prompts);
    assert_eq!(rc.dev_accuracy, ra.dev_accuracy);
    assert_eq!(rc.test_accuracy, ra.test_accuracy);
    assert!(
        rc.usage.cache_hits > 0,
        "the chunks answered before the stop come from the cache"
    );
}
