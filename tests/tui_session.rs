//! The workbench against a real session (scripted backend, DLN-2): keys in the hidden-states
//! pane become commands the engine applies — a person's hidden text joins the posterior and is
//! weighed like the others, an excluded sample loses its weight — and the run records both.

mod common;

use common::session::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use dln::dln::events::{Command, Event, SampleOrigin};
use dln::run::{read_events, Session};
use dln::tui::{App, Pane};

fn key(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Vec<Command> {
    app.handle_key(KeyEvent::new(code, modifiers))
}

/// Apply events to the app until one matches.
async fn pump(session: &mut Session, app: &mut App, pred: impl Fn(&Event) -> bool) -> Event {
    loop {
        let e = next_event(session).await;
        app.apply(&e);
        if pred(&e) {
            return e;
        }
    }
}

fn send(session: &Session, cmds: Vec<Command>) {
    for c in cmds {
        session.commands.send(c).expect("the session listens");
    }
}

#[test]
fn hidden_texts_and_exclusions_from_the_pane_reach_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut opts = options_with(scripted(), &out);
        opts.start_paused = true;
        let mut session = Session::start(tiny_config(2), opts)
            .await
            .expect("session starts");
        let mut app = common::tui::app();
        pump(&mut session, &mut app, paused).await;

        // Step stage by stage until the posterior of the hidden text is sharpened.
        for _ in 0..20 {
            if app.run.posteriors.get(&1).is_some_and(|p| p.sharpened) {
                break;
            }
            send(
                &session,
                key(&mut app, KeyCode::Char('s'), KeyModifiers::NONE),
            );
            pump(&mut session, &mut app, paused).await;
        }
        assert!(
            app.run.posteriors.get(&1).is_some_and(|p| p.sharpened),
            "sharpened"
        );

        // Write a hidden text for the first example.
        app.focus = Pane::Hidden;
        let example = app.hidden_rows()[0];
        key(&mut app, KeyCode::Char('a'), KeyModifiers::NONE);
        key(&mut app, KeyCode::Char('a'), KeyModifiers::CONTROL);
        key(&mut app, KeyCode::Char('k'), KeyModifiers::CONTROL);
        for c in "Option A is larger.".chars() {
            key(&mut app, KeyCode::Char(c), KeyModifiers::NONE);
        }
        let cmds = key(&mut app, KeyCode::Char('s'), KeyModifiers::CONTROL);
        assert!(
            matches!(cmds.as_slice(), [Command::AddHidden { layer: 1, .. }]),
            "{cmds:?}"
        );
        send(&session, cmds);
        pump(&mut session, &mut app, |e| {
            matches!(e, Event::HiddenAdded { .. })
        })
        .await;
        let human = |app: &App| {
            app.run.posteriors[&1].examples[example]
                .samples
                .iter()
                .position(|s| s.origin == SampleOrigin::Human && s.text == "Option A is larger.")
        };
        let h = human(&app).expect("the person's sample is shown at once");
        assert_eq!(
            app.run.posteriors[&1].examples[example].samples[h].weight,
            None
        );

        // One step: the engine scores it like the others.
        send(
            &session,
            key(&mut app, KeyCode::Char('s'), KeyModifiers::NONE),
        );
        pump(&mut session, &mut app, paused).await;
        let ex = &app.run.posteriors[&1].examples[example];
        let h = human(&app).expect("still there after rescoring");
        assert!(
            ex.samples[h].weight.is_some(),
            "weighed: {:?}",
            ex.samples[h]
        );
        let total: f64 = ex.samples.iter().filter_map(|s| s.weight).sum();
        assert!((total - 1.0).abs() < 1e-9, "weights sum to 1: {total}");

        // Exclude the person's sample: its weight goes to 0 and the rest re-normalize.
        for _ in 0..h {
            key(&mut app, KeyCode::Right, KeyModifiers::NONE);
        }
        let cmds = key(&mut app, KeyCode::Char('x'), KeyModifiers::NONE);
        assert_eq!(
            cmds,
            vec![Command::ExcludeSample {
                layer: 1,
                example,
                sample: h
            }]
        );
        send(&session, cmds);
        pump(&mut session, &mut app, |e| {
            matches!(e, Event::Sharpened { .. })
        })
        .await;
        let ex = &app.run.posteriors[&1].examples[example];
        assert!(ex.samples[h].excluded);
        assert_eq!(ex.samples[h].weight, Some(0.0));
        assert_ne!(ex.best, Some(h));

        // Ctrl-C: Stop, checkpoint, end.
        send(
            &session,
            key(&mut app, KeyCode::Char('c'), KeyModifiers::CONTROL),
        );
        while let Some(e) = session.events.recv().await {
            app.apply(&e);
        }
        app.events_closed();
        assert_eq!(app.exit, dln::tui::Exit::Now);
    });
    let events = read_events(&out).expect("events.jsonl");
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::HiddenAdded { text, .. } if text == "Option A is larger.")));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::SampleExcluded { .. })));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::CheckpointWritten { .. })));
}
