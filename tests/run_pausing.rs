//! Pause while a stage runs (scripted backend with a simulated latency): the pause is
//! acknowledged at once as `Pausing`, takes effect as `Paused` only at the stage boundary, and
//! nothing runs until a resume; a resume before the boundary cancels it; other commands sent
//! during a stage are applied at its boundary, not in the middle. A stop waits for the boundary
//! too, except in an evaluation, which it leaves at the next chunk.

mod common;

use std::time::Duration;

use common::session::*;
use dln::dln::events::{Command, Event, RunState, Stage};
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

async fn slow_session(out: &std::path::Path) -> Session {
    let backend = scripted().with_delay(LATENCY);
    Session::start(tiny_config(1), options_with(backend, out))
        .await
        .expect("start")
}

#[tokio::test]
async fn pause_during_a_stage_is_pausing_until_the_boundary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut session = slow_session(&dir.path().join("run")).await;
    let mut seen = Vec::new();
    until(&mut session, &mut seen, forward_started).await;
    // The forward stage is now waiting on the (slow) backend.
    session.commands.send(Command::Pause).expect("pause");
    session
        .commands
        .send(Command::SetPrompt {
            layer: 0,
            prompt: "Pick the letter of the larger number.".into(),
        })
        .expect("set prompt");
    let at = seen.len();
    until(&mut session, &mut seen, |e| is_state(e, RunState::Paused)).await;
    let after: Vec<&Event> = seen[at..].iter().collect();
    let pos = |pred: &dyn Fn(&Event) -> bool| after.iter().position(|e| pred(e));
    let pausing = pos(&|e| is_state(e, RunState::Pausing)).expect("a Pausing event");
    let done = pos(&|e| matches!(e, Event::ForwardDone { .. })).expect("the stage finishes");
    let replaced = pos(&|e| matches!(e, Event::PromptReplaced { .. })).expect("prompt replaced");
    let paused = after.len() - 1;
    // Pausing is shown while the stage runs, the command is applied at its boundary, and the
    // pause takes effect there too.
    assert!(pausing < done, "{after:?}");
    assert!(done < replaced && replaced < paused, "{after:?}");
    assert_eq!(
        after
            .iter()
            .filter(|e| matches!(e, Event::StageStarted { .. }))
            .count(),
        0,
        "no new stage starts while pausing: {after:?}"
    );

    // Paused: nothing runs (several stage latencies pass without an event).
    let quiet = tokio::time::timeout(LATENCY * 4, session.events.recv()).await;
    assert!(quiet.is_err(), "an event while paused: {quiet:?}");

    session.commands.send(Command::Resume).expect("resume");
    let (r, events) = run_to_end(session).await;
    r.expect("run completes after resume");
    assert!(is_state(&events[0], RunState::Running), "{:?}", events[0]);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::RunFinished { .. })));
}

#[tokio::test]
async fn resume_before_the_boundary_cancels_the_pause() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut session = slow_session(&dir.path().join("run")).await;
    let mut seen = Vec::new();
    until(&mut session, &mut seen, forward_started).await;
    session.commands.send(Command::Pause).expect("pause");
    until(&mut session, &mut seen, |e| is_state(e, RunState::Pausing)).await;
    session.commands.send(Command::Resume).expect("resume");
    until(&mut session, &mut seen, |e| is_state(e, RunState::Running)).await;
    let (r, events) = run_to_end(session).await;
    r.expect("run completes");
    seen.extend(events);
    assert_eq!(
        count(&seen, |e| is_state(e, RunState::Paused)),
        0,
        "the pause was cancelled before it took effect"
    );
    assert_eq!(count(&seen, |e| is_state(e, RunState::Finished)), 1);
}

#[tokio::test]
async fn stop_during_a_stage_shows_stopping_then_checkpoints_at_the_boundary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run");
    let mut session = slow_session(&out).await;
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
