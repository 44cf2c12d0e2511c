//! A person's demonstration commands through the run's command channel (scripted backend):
//! removing one, adding a training example and pinning the set take effect in the next
//! iterations' forward calls and candidates, are refused with a reason when they cannot apply,
//! are checkpointed (a stopped run resumes with them) and replay from `events.jsonl`.

mod common;

use common::session::*;
use dln::dln::events::{Command, Demo, Event};
use dln::llm::scripted::ScriptedCall;
use dln::run::{read_checkpoint, read_events, Session};
use dln::tui::{App, KeyMap, Theme};

fn with_demos() -> dln::config::Config {
    let mut c = tiny_config(1);
    c.set("train.iterations", "4").expect("iterations");
    c.set("layers.0.demos", "2").expect("demos");
    c
}

/// The output layer's demonstrations as the events last said them.
fn shown(events: &[Event]) -> Vec<Demo> {
    let mut now = Vec::new();
    for e in events {
        match e {
            Event::RunStarted { layers, .. } => now = layers[0].demos.clone(),
            Event::PromptSelected { demos, .. } | Event::DemosReplaced { demos, .. } => {
                now = demos.clone()
            }
            Event::PatienceReset { demos, .. } if !demos.is_empty() => now = demos[0].clone(),
            _ => {}
        }
    }
    now
}

fn moves_scored(events: &[Event]) -> usize {
    events
        .iter()
        .map(|e| match e {
            Event::CandidatesScored { candidates, .. } => {
                candidates.iter().filter(|c| c.demo_move.is_some()).count()
            }
            _ => 0,
        })
        .sum()
}

#[tokio::test]
async fn remove_add_and_pin_demonstrations_take_effect_survive_a_stop_and_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run");
    let backend = scripted();
    let (mut session, mut seen) = paused_after(with_demos(), backend.clone(), &out, |e| {
        matches!(e, Event::ForwardDone { iteration: 0, .. })
    })
    .await;
    let train_size = match &seen[0] {
        Event::RunStarted { train_size, .. } => *train_size,
        other => panic!("first event {other:?}"),
    };
    let before = shown(&seen);
    assert_eq!(before.len(), 2, "k = 2 drawn at the start");
    let gone = before[0].index;
    let added = (0..train_size)
        .find(|i| before.iter().all(|d| d.index != *i))
        .expect("a training example not shown");

    let c = &session.commands;
    for command in [
        Command::RemoveDemo {
            layer: 0,
            example: gone,
        },
        Command::AddDemo {
            layer: 0,
            example: added,
        },
        // Full again (k = 2), not shown, out of range: refused, nothing changes.
        Command::AddDemo {
            layer: 0,
            example: gone,
        },
        Command::RemoveDemo {
            layer: 0,
            example: gone,
        },
        Command::AddDemo {
            layer: 0,
            example: train_size + 5,
        },
        Command::PinDemos { layer: 0 },
    ] {
        c.send(command).expect("send");
    }
    let mut at = seen.len();
    until(&mut session, &mut seen, |e| {
        matches!(e, Event::DemosPinned { layer: 0 })
    })
    .await;
    let reasons = rejections(&seen[at..]);
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].contains("remove one first"), "{}", reasons[0]);
    assert!(reasons[1].contains("does not show"), "{}", reasons[1]);
    assert!(
        reasons[2].contains("there is no training example"),
        "{}",
        reasons[2]
    );
    let now = shown(&seen);
    let want: Vec<usize> = vec![before[1].index, added];
    assert_eq!(now.iter().map(|d| d.index).collect::<Vec<_>>(), want);

    // On to the end of the next iteration: its forward calls show the added example, the
    // candidates hold no demonstration move (the set is pinned) and keep the set.
    at = seen.len();
    step_until(&mut session, &mut seen, |e| {
        matches!(e, Event::IterationDone { iteration: 0, .. })
    })
    .await;
    let calls_before = backend.calls().len();
    step_until(&mut session, &mut seen, |e| {
        matches!(e, Event::IterationDone { iteration: 1, .. })
    })
    .await;
    assert_eq!(
        moves_scored(&seen[at..]),
        0,
        "pinned: no demonstration moves"
    );
    for e in &seen[at..] {
        if let Event::CandidatesScored { candidates, .. } = e {
            assert!(
                candidates.iter().all(|c| c.demos == now),
                "every candidate keeps the pinned set"
            );
        }
    }
    let forward: Vec<String> = backend.calls()[calls_before..]
        .iter()
        .filter_map(|c| match c {
            ScriptedCall::Classify(r) => Some(r.context.clone()),
            _ => None,
        })
        .collect();
    assert!(!forward.is_empty());
    // The removed example may still be asked (a batch or dev example), never shown before
    // the input asked: it is not in any context twice, nor before another question.
    for ctx in &forward {
        assert!(
            ctx.contains(&now[1].input),
            "the added example is shown: {ctx}"
        );
        if let Some(at) = ctx.find(&before[0].input) {
            assert!(
                ctx[at + before[0].input.len()..].find("Options").is_none(),
                "the removed example is no longer shown: {ctx}"
            );
        }
    }
    assert_eq!(shown(&seen), now);

    // Stopped here, the checkpoint holds them; resumed, the run keeps them to its end.
    session.commands.send(Command::Stop).expect("stop");
    let (r, events) = run_to_end(session).await;
    r.expect("stopped cleanly");
    seen.extend(events);
    let state = read_checkpoint(&out)
        .expect("read")
        .expect("checkpoint")
        .state;
    assert_eq!(state.demos[0], now);
    assert_eq!(state.demos_pinned, vec![true]);
    let resumed = Session::resume(&out, options_with(scripted(), &out))
        .await
        .expect("resume");
    let (r, events) = run_to_end(resumed).await;
    r.expect("resumed run");
    assert!(
        matches!(&events[0], Event::RunStarted { layers, .. } if layers[0].demos == now && layers[0].demos_pinned)
    );
    assert_eq!(moves_scored(&events), 0);
    assert_eq!(shown(&events), now);

    // The whole log replays to the same demonstrations, pinned.
    let log = read_events(&out).expect("events");
    let app = App::replay(Theme::mono(), KeyMap::default(), log);
    assert_eq!(app.run.layers[0].demos, now);
    assert!(app.run.layers[0].demos_pinned);
}
