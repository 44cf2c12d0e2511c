//! A person's written notes in the workbench: `f` writes one on the selected layer (or, in the
//! Hidden pane, on the selected example) and Enter sends it; the Layers pane shows the layer's
//! latest note; `F` lists them and `x` removes one; a replay shows them and refuses both edits.
//! Keys and snapshots on synthesized runs, then the real binary in tmux on the test model.

mod common;

use std::time::Duration;

use common::run::run_dir;
use common::tmux::{dln_line, Tmux};
use common::tui::*;
use common::{example, test_model};
use crossterm::event::KeyCode;
use dln::dln::events::{Command, Event};
use dln::tui::editor::EditorTarget;
use dln::tui::{App, KeyMap, Overlay, Pane, Theme};
use insta::assert_snapshot;

const NOTE: &str = "The hidden layer forgets the turns.";

fn added(layer: usize, example: Option<usize>, text: &str) -> Event {
    Event::FeedbackAdded {
        layer,
        iteration: 1,
        example,
        input: example.map(|e| format!("question {e}")).unwrap_or_default(),
        text: text.into(),
    }
}

#[test]
fn f_writes_a_note_on_the_layer_and_enter_sends_it() {
    let mut app = app_at(&dln1_running(), Pane::Layers, &[]);
    press_char(&mut app, 'f');
    let target = EditorTarget::Feedback {
        layer: 0,
        example: None,
    };
    assert_eq!(app.overlay, Some(Overlay::Editor(target)));
    // An empty note is refused in place.
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(app.overlay, Some(Overlay::Editor(target)));
    type_text(&mut app, NOTE);
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        vec![Command::AddFeedback {
            layer: 0,
            example: None,
            text: NOTE.into()
        }]
    );
    assert_eq!(app.overlay, None, "the editor closes once sent");
    app.apply(&added(0, None, NOTE));
    assert_eq!(app.run.layers[0].feedback[0].text, NOTE);
    let pane = render_pane(&app, Pane::Layers, 70, 18);
    assert!(pane.contains(&format!("notes 1: {NOTE}")), "{pane}");
    assert!(app
        .run
        .interventions
        .iter()
        .any(|i| i.text == format!("note on layer 1: {NOTE}")));
}

#[test]
fn in_the_hidden_pane_f_writes_a_note_on_the_selected_example() {
    let mut app = app_at(&dln1_demos(), Pane::Hidden, &[]);
    press(&mut app, KeyCode::Down);
    press_char(&mut app, 'f');
    let Some(Overlay::Editor(EditorTarget::Feedback { layer, example })) = app.overlay else {
        panic!("a note editor: {:?}", app.overlay);
    };
    assert_eq!(layer, 0);
    let batch = &app.run.forward.as_ref().expect("a forward pass").1;
    let shown = app.hidden_rows()[1];
    assert_eq!(
        example, batch[shown].train_index,
        "the selected example's training index"
    );
    assert!(example.is_some());
    type_text(&mut app, "Count again here.");
    let sent = app.handle_key(ctrl('s'));
    assert_eq!(
        sent,
        vec![Command::AddFeedback {
            layer: 0,
            example,
            text: "Count again here.".into()
        }]
    );
}

#[test]
fn shift_f_lists_the_notes_and_x_removes_the_selected_one() {
    let mut events = dln1_running();
    events.push(added(0, None, NOTE));
    events.push(added(0, Some(7), "This one is a trick question."));
    let mut app = app_at(&events, Pane::Layers, &[]);
    press_char(&mut app, 'F');
    assert_eq!(
        app.overlay,
        Some(Overlay::Notes {
            layer: 0,
            selected: 0
        })
    );
    assert_snapshot!("notes_overlay_80x24", render(&mut app, 80, 24));
    press(&mut app, KeyCode::Down);
    assert_eq!(
        press_char(&mut app, 'x'),
        vec![Command::RemoveFeedback { layer: 0, index: 1 }]
    );
    app.apply(&Event::FeedbackRemoved {
        layer: 0,
        index: 1,
        text: "This one is a trick question.".into(),
    });
    assert_eq!(app.run.layers[0].feedback.len(), 1);
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.overlay, None);
    assert_snapshot!(
        "notes_in_the_layers_pane",
        render_pane(&app, Pane::Layers, 70, 18)
    );
}

#[test]
fn a_replay_shows_the_notes_and_refuses_to_change_them() {
    let mut events = dln1_running();
    events.push(added(0, None, NOTE));
    let mut app = App::replay(Theme::mono(), KeyMap::default(), events);
    app.focus = Pane::Layers;
    app.handle_action(dln::tui::Action::ScrubForward);
    assert_eq!(app.run.layers[0].feedback.len(), 1, "the note is reduced");
    assert!(press_char(&mut app, 'f').is_empty());
    assert!(app.overlay.is_none());
    assert!(
        app.notice.as_deref().unwrap_or("").contains("read-only"),
        "{:?}",
        app.notice
    );
    press_char(&mut app, 'F');
    assert!(matches!(app.overlay, Some(Overlay::Notes { .. })));
    assert!(press_char(&mut app, 'x').is_empty());
    assert!(app.notice.as_deref().unwrap_or("").contains("read-only"));
}

/// The real workbench on the test model: write a note on the layer as a person would, see it in
/// the Layers pane, and find it in the run's log and checkpoint.
#[test]
fn a_note_written_in_a_live_run_shows_and_is_recorded() {
    let (tmp, out) = run_dir();
    let command = dln_line()
        .env("DLN_DATA", tmp.path().join("data"))
        .env("DLN_CONFIG", tmp.path().join("no-config.toml"))
        .env("DLN_MODEL", test_model())
        .arg("tui")
        .arg(example("tiny.toml"))
        .arg("--out")
        .arg(&out)
        .args(["--set", "train.iterations=2"])
        .then("sleep 120");
    let tmux = Tmux::start("notes", &command);
    let slow = Duration::from_secs(600);
    let quick = Duration::from_secs(20);
    tmux.wait_for("the run", slow, |s| s.contains(" RUNNING "));
    tmux.keys(&["1", "f"]);
    tmux.wait_for("the note editor", quick, |s| s.contains("Note on layer 1"));
    tmux.text(NOTE);
    tmux.keys(&["Enter"]);
    let (s, _) = tmux.wait_for("the note in the Layers pane", slow, |s| {
        s.contains("notes 1: The hidden layer")
    });
    assert!(!s.contains("Note on layer 1 "), "the editor closed:\n{s}");
    tmux.keys(&["F"]);
    tmux.wait_for("the notes list", quick, |s| s.contains("Notes on layer 1"));
    // Escape alone (with a key right after it the terminal reads Alt-key).
    tmux.keys(&["Escape"]);
    tmux.wait_for("the notes list closed", quick, |s| {
        !s.contains("Notes on layer 1")
    });
    tmux.keys(&["q"]);
    let (s, _) = tmux.wait_for("the confirmation or the exit", slow, |s| {
        s.contains("Stop it and quit?") || s.contains("EXIT=")
    });
    if s.contains("Stop it and quit?") {
        tmux.keys(&["y"]);
    }
    tmux.wait_for("the exit", slow, |s| s.contains("EXIT="));
    let events = common::events(&out);
    assert!(events
        .iter()
        .any(|e| e["event"] == "feedback_added" && e["text"] == NOTE));
    let cp = common::run::read_json(&out.join("checkpoint.json"));
    assert_eq!(cp["state"]["feedback"][0][0]["text"], NOTE, "{cp}");
}
