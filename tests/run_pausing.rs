//! Pause while a stage runs (scripted backend with a simulated latency): the pause is
//! acknowledged at once as `Pausing`, takes effect as `Paused` only at the stage boundary, and
//! nothing runs until a resume; a resume before the boundary cancels it; other commands sent
//! during a stage are applied at its boundary, not in the middle.

mod dln_common;

use std::time::Duration;

use dln::dln::events::{Command, Event, RunState, Stage};
use dln::run::Session;
use dln_common::*;

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
