//! Keys that reach outside the panes: `y` copies (an OSC 52 effect for the loop), `E` edits in
//! `$EDITOR` (an effect, and the saved text applied as the in-app editor's Ctrl-S), `z` zooms
//! the focused pane, `n`/`N` step through the matches of a `/` search.

mod common;

use common::tui::*;
use crossterm::event::KeyCode;
use dln::dln::events::{Command, TemplateRole};
use dln::tui::editor::EditorTarget;
use dln::tui::{App, Exit, KeyMap, Overlay, Pane, TerminalEffect, Theme};
use insta::assert_snapshot;

#[test]
fn y_copies_the_selected_prompt_or_hidden_text() {
    let mut app = app_with(&dln1_running());
    press_char(&mut app, 'y');
    assert_eq!(app.effects, vec![TerminalEffect::Copy(P2.into())]);
    app.effects.clear();
    app.focus = Pane::Candidates;
    press_char(&mut app, 'j');
    press_char(&mut app, 'y');
    let second = app.run.layers[0].candidates[1].prompt.clone();
    assert_eq!(app.effects, vec![TerminalEffect::Copy(second)]);
    app.effects.clear();

    // The hidden pane copies the selected posterior sample.
    let mut app = app_at(&dln2_hidden(), Pane::Hidden, &[]);
    press_char(&mut app, 'l');
    press_char(&mut app, 'y');
    let l = app.hidden_layer().expect("a posterior");
    let row = app.hidden_rows()[0];
    let sample = app.run.posteriors[&l].examples[row].samples[1].text.clone();
    assert_eq!(app.effects, vec![TerminalEffect::Copy(sample)]);
    assert!(app
        .notice
        .as_deref()
        .is_some_and(|n| n.contains("copied the hidden text")));
    // Copying is reading: replay allows it.
    let mut replay = App::replay(Theme::mono(), KeyMap::default(), dln1_running());
    press_char(&mut replay, 'y');
    assert_eq!(replay.effects.len(), 1);
}

#[test]
fn e_edits_the_prompt_in_the_external_editor_and_applies_the_save() {
    let mut app = app_with(&dln1_running());
    assert!(
        press_char(&mut app, 'E').is_empty(),
        "nothing is sent before the editor returns"
    );
    let target = EditorTarget::Prompt { layer: 0 };
    assert_eq!(
        app.effects,
        vec![TerminalEffect::ExternalEdit {
            target,
            text: P2.into()
        }]
    );
    app.effects.clear();
    // The saved file (editors end it with a newline) becomes the layer's prompt.
    let sent = app.external_edit_done(target, P2, Ok("A new prompt.\n".into()));
    assert_eq!(
        sent,
        vec![Command::SetPrompt {
            layer: 0,
            prompt: "A new prompt.".into()
        }]
    );
    assert_eq!(app.overlay, None);
    // Unchanged, emptied or a failing editor: nothing sent, and the person is told why.
    assert!(app
        .external_edit_done(target, P2, Ok(format!("{P2}\n")))
        .is_empty());
    assert!(app
        .notice
        .as_deref()
        .is_some_and(|n| n.contains("unchanged")));
    assert!(app
        .external_edit_done(target, P2, Ok("  \n".into()))
        .is_empty());
    assert_eq!(
        app.overlay,
        Some(Overlay::Editor(target)),
        "the empty text stays in the editor"
    );
    assert!(app.editors[&target].error.is_some());
    app.overlay = None;
    app.editors.clear();
    assert!(app
        .external_edit_done(target, P2, Err("`nano` exited with 1".into()))
        .is_empty());
    assert!(app
        .notice
        .as_deref()
        .is_some_and(|n| n.contains("external editor")));

    // From the Candidates pane it starts from the selected candidate.
    app.focus = Pane::Candidates;
    press_char(&mut app, 'j');
    press_char(&mut app, 'E');
    let second = app.run.layers[0].candidates[1].prompt.clone();
    assert!(
        matches!(&app.effects[..], [TerminalEffect::ExternalEdit { text, .. }] if *text == second)
    );
    app.effects.clear();

    // A template from the picker: E there opens the chosen slot, checked like Ctrl-S.
    app.template_check = Some(Box::new(|_, _, s: &str| {
        if s.contains("{% if %}") {
            Err("line 2: unexpected end of template".into())
        } else {
            Ok(())
        }
    }));
    press_char(&mut app, 't');
    press_char(&mut app, 'E');
    let t = EditorTarget::Template {
        layer: 0,
        role: TemplateRole::Forward,
    };
    assert_eq!(app.overlay, None);
    assert!(
        matches!(&app.effects[..], [TerminalEffect::ExternalEdit { target, .. }] if *target == t)
    );
    app.effects.clear();
    let refused = app.external_edit_done(t, "", Ok("x = 1\n{% if %}\n".into()));
    assert!(refused.is_empty());
    assert_eq!(
        app.overlay,
        Some(Overlay::Editor(t)),
        "a refused template opens in place"
    );
    assert_eq!(app.editors[&t].error.as_ref().and_then(|e| e.line), Some(2));
    app.overlay = None;
    let sent = app.external_edit_done(t, "", Ok("x = 2\n".into()));
    assert_eq!(
        sent,
        vec![Command::SetTemplate {
            layer: 0,
            role: TemplateRole::Forward,
            source: "x = 2".into()
        }]
    );

    // Read-only replay asks for no editor.
    let mut replay = App::replay(Theme::mono(), KeyMap::default(), dln1_running());
    press_char(&mut replay, 'E');
    assert!(replay.effects.is_empty());
}

#[test]
fn n_and_n_step_through_the_matches_of_a_search() {
    let mut app = app_at(&dln1_running(), Pane::Candidates, &[]);
    press_char(&mut app, 'n');
    assert!(app
        .notice
        .as_deref()
        .is_some_and(|n| n.contains("/ starts one")));
    press_char(&mut app, '/');
    for c in "review".chars() {
        press_char(&mut app, c);
    }
    press(&mut app, KeyCode::Enter);
    let rows = app.candidate_rows();
    assert!(rows.len() >= 2, "{rows:?}");
    assert_eq!(app.sel.candidate, 0);
    press_char(&mut app, 'n');
    assert_eq!(app.sel.candidate, 1);
    assert_eq!(
        app.notice.as_deref(),
        Some(&*format!("match 2 of {}", rows.len()))
    );
    press_char(&mut app, 'N');
    press_char(&mut app, 'N');
    assert_eq!(
        app.sel.candidate,
        rows.len() - 1,
        "N wraps to the last match"
    );
    press_char(&mut app, 'n');
    assert_eq!(app.sel.candidate, 0, "n wraps to the first");

    // In the hidden pane too.
    app.focus = Pane::Hidden;
    press_char(&mut app, '/');
    for c in "film".chars() {
        press_char(&mut app, c);
    }
    press(&mut app, KeyCode::Enter);
    let n = app.hidden_rows().len();
    assert!(n >= 1);
    press_char(&mut app, 'N');
    assert_eq!(app.sel.example, n - 1);
}

#[test]
fn z_zooms_the_focused_pane() {
    let mut app = app_at(&dln1_running(), Pane::Candidates, &[]);
    press_char(&mut app, 'z');
    assert!(app.zoomed);
    assert_snapshot!("zoomed_candidates_140x40", render(&mut app, 140, 40));
    press_char(&mut app, 'z');
    assert!(!app.zoomed);
    let grid = render(&mut app, 140, 40);
    assert!(grid.contains("Metrics") && grid.contains("Hidden states"));
}

/// `b` asks before branching; any other key cancels, `y` confirms: a live run is stopped (its
/// checkpoint keeps it resumable) and the branch is made after the iterations it completed; a
/// replay branches after the iteration it shows and leaves at once.
#[test]
fn b_asks_before_branching_after_the_iterations_done_or_shown() {
    let mut live = app_with(&dln1_running());
    let done = live.run.history.len();
    assert!(done > 0);
    assert!(press_char(&mut live, 'b').is_empty());
    assert_eq!(live.overlay, Some(Overlay::ConfirmBranch { at: done }));
    let dialog = render(&mut live, 100, 30);
    assert!(
        dialog.contains(&format!("Branch a new run after iteration {done}?"))
            && dialog.contains("This run stops with a checkpoint"),
        "{dialog}"
    );
    press_char(&mut live, 'n');
    assert_eq!((live.overlay, live.branch), (None, None));
    press_char(&mut live, 'b');
    assert_eq!(press_char(&mut live, 'y'), vec![Command::Stop]);
    assert_eq!((live.branch, live.exit), (Some(done), Exit::Stopping));

    let mut replay = App::replay(Theme::mono(), KeyMap::default(), dln1_running());
    // The last position shows the iteration in progress; two steps back, the first one's end.
    press_char(&mut replay, '[');
    press_char(&mut replay, '[');
    let shown = replay.run.history.len();
    assert!(
        shown < done,
        "one iteration back shows fewer done ({shown} of {done})"
    );
    press_char(&mut replay, 'b');
    assert_eq!(replay.overlay, Some(Overlay::ConfirmBranch { at: shown }));
    assert_snapshot!("confirm_branch_replay_100x30", render(&mut replay, 100, 30));
    assert!(press_char(&mut replay, 'y').is_empty());
    assert_eq!((replay.branch, replay.exit), (Some(shown), Exit::Now));
}
