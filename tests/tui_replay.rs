//! `dln replay` shows what the live run showed: a real session (scripted backend, DLN-2) is
//! watched live through the App reducer, then its `events.jsonl` is replayed and scrubbed, and
//! the prompts, candidate scores, winners and hidden states must match at every iteration.

mod common;

use common::session::*;
use dln::dln::events::Event;
use dln::run::{read_events, Session};
use dln::tui::RunView;
use dln::tui::{Action, App, KeyMap, Pane, Theme};

/// What a person reads off the panes: prompts, candidates with scores, winners, history,
/// posterior samples with weights.
fn seen(view: &RunView) -> String {
    let mut out = String::new();
    for l in &view.layers {
        out.push_str(&format!(
            "layer {} pinned={} prompt={:?}\n",
            l.index, l.pinned, l.prompt
        ));
        for c in &l.candidates {
            out.push_str(&format!("  cand {:?} {:?}\n", c.score, c.prompt));
        }
        out.push_str(&format!("  winner {:?} elbo {:?}\n", l.winner, l.elbo_term));
        for h in &l.history {
            out.push_str(&format!(
                "  hist {} {:?} {:?}\n",
                h.iteration, h.score, h.prompt
            ));
        }
    }
    for (layer, p) in &view.posteriors {
        for ex in &p.examples {
            for s in &ex.samples {
                out.push_str(&format!(
                    "  post {layer} {} {:?} {:?}\n",
                    ex.index, s.weight, s.text
                ));
            }
        }
    }
    out.push_str(&format!(
        "history {:?}\ndev {:?}\n",
        view.history, view.dev_points
    ));
    out
}

#[test]
fn replay_shows_the_live_prompts_and_scores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (live_events, live_app, per_iteration) = rt.block_on(async {
        let mut session = Session::start(tiny_config(2), options_with(scripted(), &out))
            .await
            .expect("session starts");
        let mut app = common::tui::app();
        let mut events: Vec<Event> = Vec::new();
        let mut per_iteration: Vec<(usize, String)> = Vec::new();
        let mut batch = Vec::new();
        // The live loop's way of reading: batches via recv_many.
        while session.events.recv_many(&mut batch, 64).await > 0 {
            for e in batch.drain(..) {
                // State as it stood when the next iteration began = the replay at that iteration.
                if let Some(it) = dln::tui::model::event_iteration(&e) {
                    if it > per_iteration.len() {
                        per_iteration.push((it - 1, seen(&app.run)));
                    }
                }
                app.apply(&e);
                events.push(e);
            }
        }
        let summary = session
            .task
            .await
            .expect("task joins")
            .expect("run succeeds");
        assert_eq!(summary.iterations, 2);
        (events, app, per_iteration)
    });

    // The file holds exactly what was seen live.
    let recorded = read_events(&out).expect("events.jsonl reads");
    assert_eq!(
        recorded, live_events,
        "events.jsonl differs from the live stream"
    );
    assert!(
        live_events
            .iter()
            .any(|e| matches!(e, Event::Sharpened { .. })),
        "DLN-2 run has posteriors"
    );

    // The replay's last position is the live end state.
    let mut replay = App::replay(Theme::mono(), KeyMap::default(), recorded);
    assert_eq!(seen(&replay.run), seen(&live_app.run));
    assert!(!live_app.run.layers[1].history.is_empty());

    // Scrubbing to each earlier iteration shows what the live run showed when it ended.
    let (_, n, _) = replay.replay_position().expect("replay position");
    assert!(n >= 2, "at least two iterations recorded");
    assert_eq!(per_iteration.len(), n - 1);
    for _ in 0..n {
        replay.handle_action(Action::ScrubBack);
    }
    for (it, expected) in &per_iteration {
        let (_, _, shown) = replay.replay_position().expect("position");
        assert_eq!(shown, *it);
        assert_eq!(
            &seen(&replay.run),
            expected,
            "replay differs from live at iteration {it}"
        );
        replay.handle_action(Action::ScrubForward);
    }
    assert_eq!(seen(&replay.run), seen(&live_app.run));

    // And the panes draw the same.
    let mut live_app = live_app;
    for pane in Pane::ALL {
        live_app.focus = pane;
        replay.focus = pane;
        let live_pane = common::tui::render_pane(&live_app, pane, 100, 30);
        let replay_pane = common::tui::render_pane(&replay, pane, 100, 30);
        // The Metrics gauge (its first row) is the one intended difference: a replay says how
        // the recorded run ended instead of a live stage and ETA.
        let without_gauge = |s: &str| {
            s.lines()
                .enumerate()
                .filter(|(i, _)| pane != Pane::Metrics || *i != 1)
                .map(|(_, l)| l.to_string() + "\n")
                .collect::<String>()
        };
        assert_eq!(
            without_gauge(&live_pane),
            without_gauge(&replay_pane),
            "pane {pane:?} differs"
        );
        if pane == Pane::Metrics {
            assert!(replay_pane.contains("run finished"), "{replay_pane}");
        }
    }
    // Replay is read-only.
    assert!(replay.handle_action(Action::Pin).is_empty());
    assert!(replay.handle_action(Action::TogglePause).is_empty());
}
