//! The App as a reducer over events and a source of commands: what the panes hold after a
//! sequence of events, and which commands keys produce (pause, step, pin, edits, hidden texts,
//! exclusions, quit), with no terminal and no engine.

mod common;

use common::tui::*;
use crossterm::event::{KeyCode, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use dln::dln::events::{Command, Event, Operation, RunState, TemplateRole};
use dln::tui::editor::EditorTarget;
use dln::tui::{Action, App, Exit, KeyMap, Mode, Overlay, Pane, Theme};

#[test]
fn reducer_holds_prompts_scores_history_and_usage() {
    let app = app_with(&dln1_running());
    let run = &app.run;
    assert_eq!(run.depth(), 1);
    assert_eq!(run.iteration, 2);
    let l = &run.layers[0];
    assert_eq!(l.prompt, P2);
    assert_eq!(l.previous_prompt.as_deref(), Some(P1));
    assert_eq!(
        l.history
            .iter()
            .map(|h| h.prompt.as_str())
            .collect::<Vec<_>>(),
        vec![P1, P2]
    );
    assert_eq!(l.history[0].score, Some(-0.52));
    assert_eq!(l.candidates.len(), 4);
    assert_eq!(
        l.winner, None,
        "iteration 3's candidates are not scored yet"
    );
    assert_eq!(l.total_usage().calls, 2 * (4 + 3 + 16));
    assert_eq!(run.dev_points.len(), 2);
    assert_eq!(run.best_dev.map(|b| b.0), Some(1));
    assert_eq!(run.eta_ms(), Some(3 * 40_000));
    assert_eq!(run.last_checkpoint.as_ref().map(|c| c.0), Some(2));
    let stage = run.stage.as_ref().expect("a stage in progress");
    assert_eq!((stage.done, stage.total), (9, 16));

    // Same events, same state: the reducer is pure.
    assert_eq!(app_with(&dln1_running()).run, app.run);
}

#[test]
fn the_eta_is_the_last_forecast_less_the_share_of_its_stage_done() {
    let mut events = dln1_running();
    // Iteration 3's score stage (9 of 16 done) was forecast at 80 s, the run at 200 s.
    let at = events
        .iter()
        .rposition(|e| matches!(e, Event::StageStarted { .. }))
        .expect("a stage started");
    events.insert(
        at,
        Event::Forecast {
            iteration: 2,
            iteration_left_ms: Some(90_000),
            stage_ms: Some(80_000),
            run_left_ms: Some(200_000),
        },
    );
    let app = app_with(&events);
    let stage = app.run.stage.as_ref().expect("a stage in progress");
    assert_eq!((stage.done, stage.total), (9, 16));
    assert_eq!(app.run.eta_ms(), Some(200_000 - 80_000 * 9 / 16));
    // Before its stage starts, the forecast stands whole; a finished run has none.
    let mut before = events[..=at].to_vec();
    assert!(matches!(before.last(), Some(Event::Forecast { .. })));
    assert_eq!(app_with(&before).run.eta_ms(), Some(200_000));
    before.push(Event::Forecast {
        iteration: 2,
        iteration_left_ms: None,
        stage_ms: None,
        run_left_ms: None,
    });
    assert_eq!(
        app_with(&before).run.eta_ms(),
        None,
        "no forecast yet: no guess"
    );
}

#[test]
fn posterior_events_human_samples_and_exclusions() {
    let events = person_edits(dln2_hidden(), 1, 2, "Feb 2019 has 28 days.", 1);
    let app = app_with(&events);
    assert_eq!(app.hidden_layer(), Some(1));
    let p = &app.run.posteriors[&1];
    assert!(p.sharpened);
    let ex = &p.examples[2];
    assert_eq!(ex.samples.len(), 4);
    assert_eq!(ex.samples[3].text, "Feb 2019 has 28 days.");
    assert!(ex.samples[1].excluded);
    assert_eq!(ex.best, None, "an excluded sample is never best");
    assert_eq!(app.run.interventions.len(), 2);

    // A new forward pass drops the old batch's posteriors.
    let mut app = app;
    app.apply(&Event::ForwardDone {
        iteration: 1,
        examples: vec![],
        accuracy: 0.0,
        loss: 1.0,
    });
    assert!(app.run.posteriors.is_empty());
}

#[test]
fn pause_shows_pausing_until_the_engine_pauses_then_step_and_resume() {
    let mut app = app_with(&dln1_running());
    assert_eq!(
        press(&mut app, KeyCode::Char('s')),
        vec![],
        "step needs a pause"
    );
    assert_eq!(press(&mut app, KeyCode::Char(' ')), vec![Command::Pause]);
    assert_eq!(app.shown_state(), Some(RunState::Pausing));
    // Events of the stage still running do not end "pausing…".
    app.apply(&Event::StageProgress {
        iteration: 2,
        stage: dln::dln::events::Stage::Score,
        done: 10,
        total: 16,
        usage: None,
    });
    assert_eq!(app.shown_state(), Some(RunState::Pausing));
    app.apply(&Event::StateChanged {
        state: RunState::Paused,
    });
    assert_eq!(app.shown_state(), Some(RunState::Paused));
    assert_eq!(press(&mut app, KeyCode::Char('s')), vec![Command::Step]);
    assert_eq!(press(&mut app, KeyCode::Char(' ')), vec![Command::Resume]);
}

#[test]
fn pin_a_candidate_or_the_current_prompt_and_unpin() {
    let mut app = app_at(&dln1_running(), Pane::Candidates, &[]);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    let cmds = press(&mut app, KeyCode::Char('p'));
    assert_eq!(
        cmds,
        vec![Command::Pin {
            layer: 0,
            prompt: "Answer with one word.".into()
        }]
    );
    assert_eq!(
        press(&mut app, KeyCode::Char('u')),
        vec![],
        "not pinned yet"
    );
    app.apply(&Event::PromptPinned {
        layer: 0,
        prompt: "Answer with one word.".into(),
    });
    assert!(app.run.layers[0].pinned);
    assert_eq!(app.run.layers[0].prompt, "Answer with one word.");
    assert_eq!(
        press(&mut app, KeyCode::Char('u')),
        vec![Command::Unpin { layer: 0 }]
    );

    app.focus = Pane::Layers;
    let cmds = press(&mut app, KeyCode::Char('p'));
    assert_eq!(
        cmds,
        vec![Command::Pin {
            layer: 0,
            prompt: "Answer with one word.".into()
        }]
    );
}

#[test]
fn prompt_edits_survive_closing_and_switching_panes() {
    let mut app = app_with(&dln1_running());
    press(&mut app, KeyCode::Char('e'));
    assert_eq!(
        app.overlay,
        Some(Overlay::Editor(EditorTarget::Prompt { layer: 0 }))
    );
    app.handle_key(ctrl('e'));
    type_text(&mut app, " Be brief.");
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.overlay, None);
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Pane::Candidates);
    press(&mut app, KeyCode::Char('e'));
    let expected = format!("{P2} Be brief.");
    assert_eq!(
        app.editors[&EditorTarget::Prompt { layer: 0 }].text(),
        expected
    );
    let cmds = app.handle_key(ctrl('s'));
    assert_eq!(
        cmds,
        vec![Command::SetPrompt {
            layer: 0,
            prompt: expected
        }]
    );
    assert_eq!(app.overlay, None);
    assert!(app.editors.is_empty());
}

#[test]
fn write_a_hidden_text_and_exclude_a_sample() {
    let mut app = app_at(&dln2_hidden(), Pane::Hidden, &[]);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char('a'));
    let target = EditorTarget::Hidden {
        layer: 1,
        example: 1,
    };
    assert_eq!(app.overlay, Some(Overlay::Editor(target)));
    assert_eq!(
        app.editors[&target].text(),
        "December ends; the next day is in 2021.",
        "starts from h"
    );
    app.handle_key(ctrl('a'));
    app.handle_key(ctrl('k'));
    type_text(&mut app, "The year ends, so tomorrow is 2022-01-01.");
    let cmds = app.handle_key(ctrl('s'));
    assert_eq!(
        cmds,
        vec![Command::AddHidden {
            layer: 1,
            example: 1,
            text: "The year ends, so tomorrow is 2022-01-01.".into()
        }]
    );
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Right);
    assert_eq!(
        press(&mut app, KeyCode::Char('x')),
        vec![Command::ExcludeSample {
            layer: 1,
            example: 1,
            sample: 2
        }]
    );
    app.apply(&Event::SampleExcluded {
        layer: 1,
        example: 1,
        sample: 2,
    });
    assert!(app.run.posteriors[&1].examples[1].samples[2].excluded);
    // x again includes it: the exclusion is a toggle, recorded as its own command and event.
    assert_eq!(
        press(&mut app, KeyCode::Char('x')),
        vec![Command::IncludeSample {
            layer: 1,
            example: 1,
            sample: 2
        }],
        "x on an excluded sample includes it again"
    );
    app.apply(&Event::SampleIncluded {
        layer: 1,
        example: 1,
        sample: 2,
    });
    assert!(!app.run.posteriors[&1].examples[1].samples[2].excluded);
    assert_eq!(
        press(&mut app, KeyCode::Char('x')),
        vec![Command::ExcludeSample {
            layer: 1,
            example: 1,
            sample: 2
        }]
    );
}

#[test]
fn number_keys_focus_the_panes_in_tab_and_grid_order() {
    let mut app = app_with(&dln1_running());
    for (key, pane) in [
        ('3', Pane::Candidates),
        ('2', Pane::Hidden),
        ('4', Pane::Metrics),
        ('1', Pane::Layers),
    ] {
        assert!(press(&mut app, KeyCode::Char(key)).is_empty());
        assert_eq!(app.focus, pane, "key {key}");
    }
}

#[test]
fn template_error_from_the_engine_is_shown_in_place_and_a_fix_applies() {
    let mut app = app_with(&paused(dln2_hidden()));
    app.run.layers[1].templates.insert(
        TemplateRole::Forward,
        "{{ prompt }}\n{{ input }}\nAnswer:".into(),
    );
    assert_eq!(
        app.sel.layer, 1,
        "the selection follows the layer proposing candidates"
    );
    press(&mut app, KeyCode::Char('t'));
    assert!(matches!(
        app.overlay,
        Some(Overlay::TemplatePicker { layer: 1, .. })
    ));
    press(&mut app, KeyCode::Enter);
    let target = EditorTarget::Template {
        layer: 1,
        role: TemplateRole::Forward,
    };
    assert_eq!(app.overlay, Some(Overlay::Editor(target)));
    press(&mut app, KeyCode::Down);
    app.handle_key(ctrl('e'));
    type_text(&mut app, " {% endif %}");
    let cmds = app.handle_key(ctrl('s'));
    let sent = "{{ prompt }}\n{{ input }} {% endif %}\nAnswer:".to_string();
    assert_eq!(
        cmds,
        vec![Command::SetTemplate {
            layer: 1,
            role: TemplateRole::Forward,
            source: sent.clone()
        }]
    );
    app.apply(&Event::CommandRejected {
        command: cmds[0].clone(),
        reason: "forward-template:2: template syntax error: unexpected endif".into(),
    });
    let buf = &app.editors[&target];
    assert_eq!(buf.error.as_ref().and_then(|e| e.line), Some(2));
    assert_eq!(buf.text(), sent, "the text is kept");
    assert_eq!(
        buf.textarea.cursor().0,
        1,
        "the cursor is on the error's line"
    );

    // Switching panes and coming back keeps the buffer and its error.
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Char('t'));
    press(&mut app, KeyCode::Char('1'));
    assert!(app.editors[&target].error.is_some());
    // Fix and apply: the engine confirms and the editor closes.
    app.handle_key(ctrl('w'));
    app.handle_key(ctrl('w'));
    app.handle_key(ctrl('w'));
    let fixed = app.editors[&target].text();
    let cmds = app.handle_key(ctrl('s'));
    assert_eq!(cmds.len(), 1);
    app.apply(&Event::TemplateReplaced {
        layer: 1,
        role: TemplateRole::Forward,
        source: fixed.clone(),
    });
    assert_eq!(app.overlay, None);
    assert!(!app.editors.contains_key(&target));
    assert_eq!(app.template_source(1, TemplateRole::Forward), fixed);
}

#[test]
fn local_validation_refuses_before_sending() {
    let mut app = app_with(&paused(dln1_running()));
    app.template_check = Some(Box::new(|_, _, source: &str| {
        if source.contains("{{") && !source.contains("}}") {
            Err("forward-template:1: template syntax error: unexpected end of input".into())
        } else {
            Ok(())
        }
    }));
    press(&mut app, KeyCode::Char('t'));
    press(&mut app, KeyCode::Enter);
    type_text(&mut app, "{{ prompt ");
    assert_eq!(app.handle_key(ctrl('s')), vec![]);
    let target = EditorTarget::Template {
        layer: 0,
        role: TemplateRole::Forward,
    };
    assert_eq!(
        app.editors[&target].error.as_ref().and_then(|e| e.line),
        Some(1)
    );
}

#[test]
fn quitting_asks_while_active_then_stops_and_waits() {
    let mut app = app_with(&dln1_running());
    assert_eq!(press(&mut app, KeyCode::Char('q')), vec![]);
    assert_eq!(app.overlay, Some(Overlay::ConfirmQuit));
    press(&mut app, KeyCode::Char('n'));
    assert_eq!((app.overlay, app.exit), (None, Exit::No));
    press(&mut app, KeyCode::Char('q'));
    assert_eq!(press(&mut app, KeyCode::Char('y')), vec![Command::Stop]);
    assert_eq!(app.exit, Exit::Stopping);
    assert_eq!(app.shown_state(), Some(RunState::Stopping));
    app.events_closed();
    assert_eq!(app.exit, Exit::Now);

    // Ctrl-C stops without asking.
    let mut app = app_with(&dln1_running());
    assert_eq!(app.handle_key(ctrl('c')), vec![Command::Stop]);
    assert_eq!(
        app.handle_key(ctrl('c')),
        vec![],
        "a second Ctrl-C leaves at once"
    );
    assert_eq!(app.exit, Exit::Now);

    // A finished run, or a replay, quits at once.
    let mut events = dln1_running();
    events.push(Event::StateChanged {
        state: RunState::Finished,
    });
    let mut app = app_with(&events);
    press(&mut app, KeyCode::Char('q'));
    assert_eq!(app.exit, Exit::Now);
    let mut replay = App::replay(Theme::mono(), KeyMap::default(), dln1_running());
    assert_eq!(replay.mode, Mode::Replay);
    press(&mut replay, KeyCode::Char('q'));
    assert_eq!(replay.exit, Exit::Now);
}

#[test]
fn filters_sorting_and_wrong_only() {
    let mut app = app_at(&dln1_running(), Pane::Hidden, &[]);
    assert_eq!(app.hidden_rows(), vec![0, 1, 2, 3]);
    press(&mut app, KeyCode::Char('w'));
    assert_eq!(app.hidden_rows(), vec![2]);
    press(&mut app, KeyCode::Char('w'));
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "CLASSIC");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.hidden_rows(), vec![3]);
    assert_eq!(app.overlay, None);
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.hidden_rows().len(), 4, "Esc clears the filter");

    let mut app = app_with(&dln2_hidden());
    app.handle_action(Action::Sort);
    assert_eq!(app.hidden_rows(), vec![2, 1, 0], "entropy, highest first");
    app.handle_action(Action::Sort);
    assert_eq!(app.hidden_rows(), vec![1, 2, 0], "wrong first");
}

#[test]
fn mouse_clicks_focus_panes_and_keys_can_be_rebound() {
    let mut app = app_with(&dln1_running());
    app.viewport = (80, 24);
    // The third tab ("Candidates") in the one-pane layout.
    let click = |col| MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: col,
        row: 0,
        modifiers: KeyModifiers::NONE,
    };
    app.handle_mouse(click(35));
    assert_eq!(app.focus, Pane::Candidates);
    app.viewport = (160, 48);
    app.handle_mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: 150,
        row: 40,
        modifiers: KeyModifiers::NONE,
    });
    assert_eq!(app.focus, Pane::Metrics);

    let mut keys = std::collections::BTreeMap::new();
    keys.insert("ctrl-p".to_string(), "toggle_pause".to_string());
    keys.insert("space".to_string(), "none".to_string());
    let mut app = App::new(
        Theme::mono(),
        KeyMap::with_overrides(&keys).expect("valid keys"),
    );
    app.apply_all(&dln1_running());
    assert_eq!(press(&mut app, KeyCode::Char(' ')), vec![]);
    assert_eq!(app.handle_key(ctrl('p')), vec![Command::Pause]);
}

#[test]
fn help_lists_every_action_with_its_keys() {
    let app = app_with(&dln1_running());
    let text: String = dln::tui::view::overlays::help_lines(&app, 200)
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    for a in Action::ALL {
        assert!(text.contains(&format!("[{}]", a.name())), "help lacks {a}");
        for k in app.keymap.keys_for(*a) {
            assert!(text.contains(&k.to_string()), "help lacks key {k} of {a}");
        }
    }
}

#[test]
fn the_layer_selection_follows_the_run_until_the_person_chooses() {
    let mut app = app_with(&dln2_hidden());
    assert_eq!(app.sel.layer, 1);
    app.apply(&Event::CandidatesProposed {
        iteration: 0,
        layer: 0,
        candidates: vec![],
        drawn: 0,
        rejected: vec![],
        examples_dropped: 0,
    });
    assert_eq!(app.sel.layer, 0);
    press(&mut app, KeyCode::Char('l'));
    app.apply(&Event::CandidatesProposed {
        iteration: 1,
        layer: 0,
        candidates: vec![],
        drawn: 0,
        rejected: vec![],
        examples_dropped: 0,
    });
    assert_eq!(app.sel.layer, 1, "a chosen layer stays");
}

#[test]
fn the_hidden_pane_follows_the_selected_layer_in_deeper_networks() {
    let mut events = dln2_hidden();
    // Make it DLN-3: a third layer and a posterior of the text below it.
    if let Some(Event::RunStarted { layers, .. }) = events.first_mut() {
        let mut top = layers[1].clone();
        top.index = 2;
        layers.push(top);
    }
    let examples = events
        .iter()
        .find_map(|e| match e {
            Event::Sharpened { examples, .. } => Some(examples.clone()),
            _ => None,
        })
        .expect("a sharpened posterior");
    events.push(Event::Sharpened {
        iteration: 0,
        layer: 2,
        examples,
    });
    let mut app = app_with(&events);
    assert_eq!(app.hidden_layer(), Some(1), "the first posterior seen");
    press(&mut app, KeyCode::Char('h'));
    assert_eq!((app.sel.layer, app.hidden_layer()), (0, Some(1)));
    press(&mut app, KeyCode::Char('l'));
    assert_eq!(app.hidden_layer(), Some(1));
    press(&mut app, KeyCode::Char('l'));
    assert_eq!(app.sel.layer, 2);
    assert_eq!(app.hidden_layer(), Some(2));
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("between layers 2 and 3"), "{screen}");
}

#[test]
fn errors_about_other_commands_do_not_land_in_a_template_editor() {
    let mut app = app_with(&paused(dln2_hidden()));
    press(&mut app, KeyCode::Char('t'));
    press(&mut app, KeyCode::Enter);
    type_text(&mut app, "x = 1\n");
    assert_eq!(app.handle_key(ctrl('s')).len(), 1);
    app.apply(&Event::CommandRejected {
        command: Command::AddHidden {
            layer: 1,
            example: 9,
            text: "x".into(),
        },
        reason: "example 9 is not in the current batch".into(),
    });
    let target = EditorTarget::Template {
        layer: 1,
        role: TemplateRole::Forward,
    };
    assert!(app.editors[&target].error.is_none());
    assert!(app.notice.as_deref().unwrap_or("").contains("example 9"));
}

#[test]
fn a_hidden_text_can_be_written_before_the_posterior_is_sampled() {
    let events: Vec<Event> = dln2_hidden()
        .into_iter()
        .take_while(|e| !matches!(e, Event::PosteriorSampled { .. }))
        .collect();
    let mut app = app_with(&events);
    assert_eq!(app.hidden_layer(), None);
    app.focus = Pane::Hidden;
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char('a'));
    let target = EditorTarget::Hidden {
        layer: 1,
        example: 1,
    };
    assert_eq!(
        app.editors[&target].text(),
        "December ends; the next day is in 2021."
    );
    app.handle_key(ctrl('a'));
    app.handle_key(ctrl('k'));
    type_text(&mut app, "Next year.");
    assert_eq!(
        app.handle_key(ctrl('s')),
        vec![Command::AddHidden {
            layer: 1,
            example: 1,
            text: "Next year.".into()
        }]
    );
    assert_eq!(press(&mut app, KeyCode::Char('x')), vec![]);
}

/// A left click at `(column, row)`.
fn left_click(column: u16, row: u16) -> MouseEvent {
    MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column,
        row,
        modifiers: KeyModifiers::NONE,
    }
}

/// The screen row (and the column where it starts) of the first drawn line containing
/// `needle`, so a click lands on what the person sees there.
fn find_on_screen(app: &mut App, w: u16, h: u16, needle: &str) -> (u16, u16) {
    let screen = render(app, w, h);
    for (row, line) in screen.lines().enumerate() {
        if let Some(byte) = line.find(needle) {
            // Rows are quoted: drop the leading quote; columns count characters, not bytes.
            let col = line[..byte].chars().count().saturating_sub(1);
            return (col as u16, row as u16);
        }
    }
    panic!("`{needle}` is not on screen:\n{screen}");
}

#[test]
fn clicking_a_candidate_selects_it_and_clicking_it_again_expands_it() {
    let mut app = app_at(&dln1_running(), Pane::Candidates, &[]);
    let (col, row) = find_on_screen(&mut app, 80, 24, "Answer with one word.");
    app.handle_mouse(left_click(col, row));
    assert_eq!(app.sel.candidate, 2);
    assert!(!app.sel.candidate_expanded, "the first click only selects");
    app.handle_mouse(left_click(col, row));
    assert!(app.sel.candidate_expanded, "a second click acts like Enter");
    // The heading line is not a candidate.
    let (col, row) = find_on_screen(&mut app, 80, 24, "4 candidates");
    app.handle_mouse(left_click(col, row));
    assert_eq!(app.sel.candidate, 2);
    assert!(app.sel.candidate_expanded);
}

#[test]
fn clicking_hidden_examples_and_samples_selects_them() {
    let mut app = app_at(&dln2_hidden(), Pane::Hidden, &[]);
    let (col, row) = find_on_screen(&mut app, 80, 24, "2019-02-28. What is the date in two");
    app.handle_mouse(left_click(col, row));
    assert_eq!(app.sel.example, 2);
    assert_eq!(app.sel.sample, 0);
    // The sample table sits under its header row: click the second sample.
    let (col, header) = find_on_screen(&mut app, 80, 24, "from      log p(y|h)");
    app.handle_mouse(left_click(col, header + 2));
    assert_eq!(app.sel.sample, 1);
    assert!(!app.sel.hidden_expanded);
    app.handle_mouse(left_click(col, header + 2));
    assert!(
        app.sel.hidden_expanded,
        "clicking the selected sample expands it"
    );
    // The header row itself selects nothing.
    app.handle_mouse(left_click(col, header));
    assert_eq!(app.sel.sample, 1);
    // Clicking the selected example expands (here: collapses) too.
    let (col, row) = find_on_screen(&mut app, 80, 24, "2019-02-28. What is the date in two");
    app.handle_mouse(left_click(col, row));
    assert_eq!(app.sel.example, 2);
    assert!(!app.sel.hidden_expanded);
}

#[test]
fn clicking_a_layer_selects_it_from_another_pane_and_again_shows_its_diff() {
    let mut app = app_at(&dln2_hidden(), Pane::Metrics, &[]);
    app.sel.hidden_layer = None;
    let (col, row) = find_on_screen(&mut app, 160, 45, "Layer 1 (hidden)");
    app.handle_mouse(left_click(col, row));
    assert_eq!(app.focus, Pane::Layers);
    assert_eq!(app.sel.layer, 0);
    assert!(app.sel.layer_chosen);
    assert!(
        !app.sel.show_diff,
        "a click that focuses the pane only selects"
    );
    let (col, row) = find_on_screen(&mut app, 160, 45, "Layer 2 (output)");
    app.handle_mouse(left_click(col, row));
    assert_eq!(app.sel.layer, 1);
    assert_eq!(
        app.hidden_layer(),
        Some(1),
        "the hidden pane follows the layer"
    );
    app.handle_mouse(left_click(col, row));
    assert!(
        app.sel.show_diff,
        "clicking the selected layer acts like Enter"
    );
    // A click on the selected candidate of an unfocused pane selects, never expands.
    let (col, row) = find_on_screen(&mut app, 160, 45, "▶ 1 ");
    app.handle_mouse(left_click(col, row));
    assert_eq!(app.focus, Pane::Candidates);
    assert!(!app.sel.candidate_expanded);
}

#[test]
fn clicks_under_an_overlay_or_on_the_status_line_select_nothing() {
    let mut app = app_at(&dln1_running(), Pane::Candidates, &[]);
    let (col, row) = find_on_screen(&mut app, 80, 24, "Answer with one word.");
    app.handle_action(Action::Help);
    app.handle_mouse(left_click(col, row));
    assert_eq!(app.sel.candidate, 0);
    app.handle_action(Action::Help);
    app.handle_mouse(left_click(5, 22));
    assert_eq!((app.focus, app.sel.candidate), (Pane::Candidates, 0));
}

fn calls(layer: usize, operation: Operation, calls: u64) -> dln::dln::events::UsageEntry {
    dln::dln::events::UsageEntry {
        layer,
        operation,
        usage: dln::llm::Usage {
            calls,
            tokens_computed: 10 * calls,
            ..Default::default()
        },
    }
}

#[test]
fn usage_shows_the_iteration_in_progress_on_top_of_the_finished_ones() {
    use dln::dln::events::Stage;
    let mut app = app_with(&dln1_running());
    // Two finished iterations of 4 + 3 + 16 calls; the fixture's stage events carry no usage
    // (like logs written before they did), so only the finished iterations count.
    assert_eq!(app.run.live_usage, None);
    assert_eq!(app.run.layer_usage(0).calls, 46);
    assert!(!render_pane(&app, Pane::Metrics, 80, 40).contains("so far"));

    app.apply(&Event::StageProgress {
        iteration: 2,
        stage: Stage::Score,
        done: 10,
        total: 16,
        usage: Some(vec![
            calls(0, Operation::Forward, 4),
            calls(0, Operation::Score, 10),
        ]),
    });
    assert_eq!(app.run.layer_usage(0).calls, 46 + 14);
    assert_eq!(
        app.run.layers[0].total_usage().calls,
        46,
        "finished totals apart"
    );
    assert_eq!(app.run.layer_usage(1).calls, 0, "no such layer, no usage");
    let screen = render_pane(&app, Pane::Metrics, 80, 40);
    assert!(screen.contains("incl. it 3 so far"), "{screen}");
    assert!(screen.contains("60"), "{screen}");
    // The stage's gauge counts its own tokens (the score's 10 calls of 10), not the forward's.
    assert_eq!(app.run.stage_tokens(), Some(100));
    assert!(screen.contains("10/16 · 100 tok"), "{screen}");

    // Each report is the iteration's usage so far: it replaces the previous one, never adds.
    app.apply(&Event::StageProgress {
        iteration: 2,
        stage: Stage::Score,
        done: 16,
        total: 16,
        usage: Some(vec![
            calls(0, Operation::Forward, 4),
            calls(0, Operation::Score, 16),
        ]),
    });
    assert_eq!(app.run.layer_usage(0).calls, 46 + 20);
    // A progress event without usage keeps the last report.
    app.apply(&Event::StageProgress {
        iteration: 2,
        stage: Stage::Score,
        done: 16,
        total: 16,
        usage: None,
    });
    assert_eq!(app.run.layer_usage(0).calls, 46 + 20);

    // Once the iteration is done its usage joins the totals, counted once.
    app.apply(&Event::IterationDone {
        iteration: 2,
        train_accuracy: 0.5,
        elbo: None,
        usage: vec![
            calls(0, Operation::Forward, 4),
            calls(0, Operation::Score, 16),
        ],
        elapsed_ms: 1000,
        paused_ms: 0,
    });
    assert_eq!(app.run.live_usage, None);
    assert_eq!(app.run.layer_usage(0).calls, 46 + 20);
    assert_eq!(app.run.layers[0].total_usage().calls, 46 + 20);
    assert!(!render_pane(&app, Pane::Metrics, 80, 40).contains("so far"));

    // The next iteration's first stage reports its usage so far.
    app.apply(&Event::StageStarted {
        iteration: 3,
        stage: Stage::Propose,
        layer: Some(0),
        total: 4,
        usage: Some(vec![calls(0, Operation::Forward, 4)]),
    });
    assert_eq!(app.run.layer_usage(0).calls, 66 + 4);
}

#[test]
fn stage_events_without_usage_still_parse_and_none_is_not_written() {
    let old = r#"{"event":"stage_progress","iteration":0,"stage":"score","done":1,"total":2}"#;
    let e: Event = serde_json::from_str(old).expect("an old stage event parses");
    assert!(matches!(e, Event::StageProgress { usage: None, .. }));
    assert_eq!(serde_json::to_string(&e).expect("serializes"), old);
    let old = r#"{"event":"stage_started","iteration":0,"stage":"forward","layer":null,"total":4}"#;
    let e: Event = serde_json::from_str(old).expect("an old stage event parses");
    assert_eq!(serde_json::to_string(&e).expect("serializes"), old);
}

#[test]
fn an_http_backend_s_scoring_mode_shows_in_the_layers_pane() {
    let mut events = dln1_running();
    events.insert(
        1,
        Event::BackendConnected {
            name: "server".into(),
            scoring: "echo".into(),
            detail: "http://127.0.0.1:8199/v1 model smollm2-135m: scoring by echo".into(),
        },
    );
    let app = app_with(&events);
    assert_eq!(app.run.backends.len(), 1);
    assert_eq!(app.run.backends[0].1, "echo");
    let screen = render_pane(&app, Pane::Layers, 80, 30);
    assert!(
        screen.contains("backend server: scoring by echo"),
        "{screen}"
    );
    // A run without HTTP backends shows none.
    let plain = render_pane(&app_with(&dln1_running()), Pane::Layers, 80, 30);
    assert!(!plain.contains("backend "), "{plain}");
}

/// Lines as `events.jsonl` held them before `RunStarted` carried templates and before
/// `CommandRejected`/`RunFailed` existed: they still parse and reduce as they did.
#[test]
fn an_events_log_written_before_the_new_vocabulary_replays() {
    let old = [
        r#"{"event":"run_started","run_dir":"runs/x","task":"tiny","model":"m","layers":[{"index":0,"prompt":"p0","pinned":false,"trainable":true,"model":"m"},{"index":1,"prompt":"p1","pinned":false,"trainable":true,"model":"m"}],"iterations":2,"start_iteration":0,"train_size":4,"dev_size":2,"test_size":2}"#,
        r#"{"event":"state_changed","state":"running"}"#,
        r#"{"event":"template_replaced","layer":1,"role":"propose_prompt","source":"x = 1"}"#,
        r#"{"event":"error","message":"example 9 is not in the current batch"}"#,
        r#"{"event":"error","message":"the model is gone"}"#,
        r#"{"event":"state_changed","state":"failed"}"#,
    ];
    let events: Vec<Event> = old
        .iter()
        .map(|l| serde_json::from_str(l).expect("an old line parses"))
        .collect();
    assert!(
        matches!(&events[0], Event::RunStarted { layers, .. } if layers[0].templates.is_empty())
    );
    let app = App::replay(Theme::mono(), KeyMap::default(), events);
    assert_eq!(app.run.layers.len(), 2);
    assert_eq!(
        app.template_source(1, TemplateRole::ProposePrompt),
        "x = 1",
        "a replaced template is what the editor would open on"
    );
    assert_eq!(app.run.messages.len(), 2);
    assert_eq!(app.run.state, Some(RunState::Failed));
    assert!(app.run.interventions[0]
        .text
        .contains("replaced layer 2 propose_prompt template"));
}

#[test]
fn new_events_round_trip() {
    for e in [
        Event::CommandRejected {
            command: Command::SetTemplate {
                layer: 0,
                role: TemplateRole::Forward,
                source: "{{ x".into(),
            },
            reason: "bad".into(),
        },
        Event::RunFailed {
            message: "gone".into(),
        },
    ] {
        let line = serde_json::to_string(&e).expect("serializes");
        assert_eq!(serde_json::from_str::<Event>(&line).expect("parses"), e);
    }
}

/// One model of selection: j/k move through the list the pane shows (in Layers, the layers),
/// so `k` then `e` edits the layer the cursor is on; PgDn scrolls a long prompt.
#[test]
fn in_the_layers_pane_j_and_k_choose_the_layer_that_e_edits() {
    let mut app = app_at(&paused(dln2_hidden()), Pane::Layers, &[]);
    press(&mut app, KeyCode::Char('j'));
    assert_eq!(app.sel.layer, 1);
    press(&mut app, KeyCode::Char('j'));
    assert_eq!(app.sel.layer, 1, "no wrap past the last layer");
    press(&mut app, KeyCode::Char('k'));
    assert_eq!(app.sel.layer, 0);
    press(&mut app, KeyCode::PageDown);
    assert_eq!(
        app.sel.layer, 0,
        "PgDn scrolls, it does not change the layer"
    );
    assert!(app.sel.layer_scroll > 0);
    press(&mut app, KeyCode::Char('e'));
    assert_eq!(
        app.overlay,
        Some(Overlay::Editor(EditorTarget::Prompt { layer: 0 }))
    );
}
