//! Demonstrations in the workbench: the Layers pane shows each layer's demonstrations (one line,
//! or listed in full), the Candidates pane shows a demonstration move as what it is, and keys
//! add, remove and pin demonstrations through commands. Reducer tests and snapshots, from
//! synthesized events (no engine, no terminal).

mod common;

use common::tui::*;
use dln::dln::events::{Command, Event};
use dln::tui::{Action, App, KeyMap, Pane, Theme};
use insta::assert_snapshot;

fn indices(app: &App) -> Vec<usize> {
    app.run.layers[0].demos.iter().map(|d| d.index).collect()
}

#[test]
fn the_reducer_follows_the_demonstrations_through_selection_edits_and_resets() {
    let mut app = app_with(&dln1_demos());
    let l = &app.run.layers[0];
    assert_eq!(l.max_demos, 3);
    assert_eq!(
        indices(&app),
        vec![87, 5],
        "iteration 1's swap was selected"
    );
    let won = &l.history[0];
    assert!(won.changed, "a demonstration move changes the layer");
    assert_eq!(won.demo_move.as_deref(), Some("swap ex 12 → ex 87"));
    assert_eq!(won.score, Some(-0.48));

    app.apply(&Event::DemosReplaced {
        layer: 0,
        demos: vec![demo_ex(87), demo_ex(5), demo_ex(90)],
    });
    assert_eq!(indices(&app), vec![87, 5, 90]);
    assert!(app
        .run
        .interventions
        .last()
        .is_some_and(|i| i.text == "added ex 90 as a demonstration of layer 1"));
    app.apply(&Event::DemosReplaced {
        layer: 0,
        demos: vec![demo_ex(87), demo_ex(90)],
    });
    assert!(app
        .run
        .interventions
        .last()
        .is_some_and(|i| i.text == "removed demonstration ex 5 from layer 1"));
    app.apply(&Event::DemosPinned { layer: 0 });
    assert!(app.run.layers[0].demos_pinned);
    app.apply(&Event::PatienceReset {
        iteration: 1,
        prompts: vec![P0.into()],
        demos: vec![vec![demo_ex(12), demo_ex(5)]],
    });
    assert_eq!(
        indices(&app),
        vec![12, 5],
        "patience restores the best-dev demonstrations"
    );
    app.apply(&Event::DemosUnpinned { layer: 0 });
    assert!(!app.run.layers[0].demos_pinned);
    app.apply(&Event::RunFinished {
        best_prompts: vec![P0.into()],
        dev_accuracy: Some(0.7),
        test_accuracy: None,
        stopped_early: false,
        best_demos: vec![vec![demo_ex(87), demo_ex(5)]],
        stop_reason: None,
    });
    assert_eq!(app.run.best_demos[0].len(), 2);
}

/// Logs written before demonstrations were on these events still parse, and a reset without
/// them leaves the layers' demonstrations alone.
#[test]
fn events_without_demonstrations_still_parse() {
    let old = [
        r#"{"event":"prompt_selected","iteration":0,"layer":0,"prompt":"b","previous":"a"}"#,
        r#"{"event":"patience_reset","iteration":1,"prompts":["a"]}"#,
        r#"{"event":"run_finished","best_prompts":["a"],"dev_accuracy":0.5,"test_accuracy":null,"stopped_early":false}"#,
        r#"{"event":"forward_done","iteration":0,"examples":[{"index":0,"input":"x","target":"y","hidden":[],"prediction":"y","correct":true}],"accuracy":1.0,"loss":0.0}"#,
    ];
    let events: Vec<Event> = old
        .iter()
        .map(|l| serde_json::from_str(l).expect("an old line parses"))
        .collect();
    assert!(matches!(&events[0], Event::PromptSelected { demos, .. } if demos.is_empty()));
    assert!(matches!(&events[1], Event::PatienceReset { demos, .. } if demos.is_empty()));
    assert!(matches!(&events[2], Event::RunFinished { best_demos, .. } if best_demos.is_empty()));
    assert!(
        matches!(&events[3], Event::ForwardDone { examples, .. } if examples[0].train_index.is_none())
    );
    // And none of the new fields is written when there is nothing to say.
    for e in &events {
        let line = serde_json::to_string(e).expect("serializes");
        assert!(
            !line.contains("demos") && !line.contains("train_index"),
            "{line}"
        );
    }
    let mut app = app_with(&dln1_demos());
    app.apply(&events[1]);
    assert_eq!(indices(&app), vec![87, 5]);
}

#[test]
fn keys_add_remove_and_pin_demonstrations() {
    let mut app = app_with(&dln1_demos());
    // A: the selected batch example (by its training index) joins the selected layer's.
    app.focus = Pane::Hidden;
    app.handle_action(Action::Down);
    app.handle_action(Action::Down);
    assert_eq!(
        press_char(&mut app, 'A'),
        vec![Command::AddDemo {
            layer: 0,
            example: 91
        }]
    );
    // X needs the list open (D), then removes the selected one.
    app.focus = Pane::Layers;
    assert!(press_char(&mut app, 'X').is_empty());
    assert!(app.notice.as_deref().is_some_and(|n| n.contains("D lists")));
    press_char(&mut app, 'D');
    assert!(app.sel.demos_expanded);
    press_char(&mut app, 'j');
    assert_eq!(
        app.sel.demo, 1,
        "↓ selects a demonstration while they are listed"
    );
    assert_eq!(
        press_char(&mut app, 'X'),
        vec![Command::RemoveDemo {
            layer: 0,
            example: 5
        }]
    );
    // P pins, and once the engine says so, unpins.
    assert_eq!(
        press_char(&mut app, 'P'),
        vec![Command::PinDemos { layer: 0 }]
    );
    app.apply(&Event::DemosPinned { layer: 0 });
    assert_eq!(
        press_char(&mut app, 'P'),
        vec![Command::UnpinDemos { layer: 0 }]
    );

    // A layer without demonstrations says so instead of sending anything.
    let mut plain = app_with(&dln1_running());
    assert!(press_char(&mut plain, 'P').is_empty());
    assert!(plain
        .notice
        .as_deref()
        .is_some_and(|n| n.contains("demos = 0")));
    assert!(press_char(&mut plain, 'D').is_empty());
    assert!(!plain.sel.demos_expanded);

    // Replay is read-only.
    let mut replay = App::replay(Theme::mono(), KeyMap::default(), dln1_demos());
    replay.focus = Pane::Hidden;
    assert!(press_char(&mut replay, 'A').is_empty());
    assert!(press_char(&mut replay, 'P').is_empty());
    assert!(replay
        .notice
        .as_deref()
        .is_some_and(|n| n.contains("read-only")));
}

#[test]
fn demos_layers_pane() {
    let mut app = app_with(&dln1_demos());
    assert_snapshot!(
        "demos_layers_one_line",
        render_pane(&app, Pane::Layers, 70, 10)
    );
    app.apply(&Event::DemosPinned { layer: 0 });
    press_char(&mut app, 'D');
    press_char(&mut app, 'j');
    assert_snapshot!(
        "demos_layers_listed",
        render_pane(&app, Pane::Layers, 70, 16)
    );
}

#[test]
fn demos_candidates_pane() {
    let mut app = app_at(&dln1_demos(), Pane::Candidates, &[]);
    assert_snapshot!(
        "demos_candidates",
        render_pane(&app, Pane::Candidates, 70, 12)
    );
    // The winning swap, expanded: the example it takes out and the one it brings in.
    app.handle_action(Action::Down);
    app.handle_action(Action::Down);
    app.handle_action(Action::Expand);
    assert_snapshot!(
        "demos_candidate_swap_expanded",
        render_pane(&app, Pane::Candidates, 70, 14)
    );
}
