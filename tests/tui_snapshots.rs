//! Snapshot tests of the workbench's panes, drawn into ratatui's TestBackend from synthesized
//! event sequences (no engine, no terminal).

mod common;

use common::tui::*;
use crossterm::event::KeyCode;
use dln::dln::events::{Command, Event, TemplateRole};
use dln::tui::{Action, Overlay, Pane};
use insta::assert_snapshot;

#[test]
fn dln1_running_80x24() {
    let mut app = app_with(&dln1_running());
    assert_snapshot!(render(&mut app, 80, 24));
}

#[test]
fn dln1_running_grid_140x40() {
    let mut app = app_with(&dln1_running());
    assert_snapshot!(render(&mut app, 140, 40));
}

#[test]
fn dln1_panes() {
    let mut app = app_with(&dln1_running());
    for pane in Pane::ALL {
        app.focus = pane;
        let name = format!(
            "dln1_pane_{}",
            pane.title().replace(' ', "_").to_lowercase()
        );
        assert_snapshot!(name, render_pane(&app, pane, 70, 18));
    }
}

#[test]
fn dln1_layers_diff() {
    let mut app = app_with(&dln1_running());
    app.handle_action(Action::ToggleDiff);
    assert_snapshot!(render_pane(&app, Pane::Layers, 70, 12));
}

#[test]
fn dln1_candidate_expanded() {
    let mut app = app_at(
        &dln1_running(),
        Pane::Candidates,
        &[Action::Down, Action::Expand],
    );
    assert_snapshot!(render(&mut app, 80, 24));
}

#[test]
fn dln2_hidden_samples_80x24() {
    let mut app = app_at(&dln2_hidden(), Pane::Hidden, &[Action::Down]);
    assert_snapshot!(render(&mut app, 80, 24));
}

/// An expanded sample longer than the Hidden pane at 80×24 scrolls with PgDn/PgUp (instead of
/// running off the pane), and says how much is below.
#[test]
fn an_expanded_sample_scrolls_within_the_hidden_pane_80x24() {
    let long: String = (1..=40)
        .map(|i| format!("Step {i}: move one pace forward and note the position."))
        .collect::<Vec<_>>()
        .join(" ");
    let mut events = dln2_hidden();
    events.push(Event::HiddenAdded {
        layer: 1,
        example: 1,
        text: format!("{long} The end."),
    });
    let mut app = app_at(&events, Pane::Hidden, &[]);
    render(&mut app, 80, 24);
    app.handle_action(Action::Down);
    // The person's sample is the last one of example 2.
    app.handle_action(Action::PrevLayer);
    app.handle_action(Action::Expand);
    let top = render(&mut app, 80, 24);
    assert!(top.contains("more lines · PgDn/PgUp scroll"), "{top}");
    assert!(!top.contains("The end."), "{top}");
    assert_snapshot!("expanded_sample_top_80x24", top);

    // PgDn goes down a page at a time and stops at the text's last line.
    for _ in 0..20 {
        app.handle_action(Action::PageDown);
    }
    let bottom = render(&mut app, 80, 24);
    assert!(bottom.contains("The end."), "{bottom}");
    assert!(!bottom.contains("more lines"), "{bottom}");
    assert_snapshot!("expanded_sample_bottom_80x24", bottom);
    // One PgUp from the end shows the "more" line again: no scrolling past the end.
    app.handle_action(Action::PageUp);
    assert!(render(&mut app, 80, 24).contains("more lines"));

    // Another example starts at its top; collapsing forgets the scroll.
    app.handle_action(Action::Expand);
    assert_eq!(app.sel.hidden_scroll, 0);
    app.handle_action(Action::Expand);
    app.handle_action(Action::PageDown);
    assert!(app.sel.hidden_scroll > 0);
    app.handle_action(Action::Up);
    assert_eq!(app.sel.hidden_scroll, 0);
}

/// A hidden text of paragraphs that its token budget ended: `✂` after its one-line form, and in
/// full its blank lines kept and a note under it saying it was cut.
#[test]
fn a_cut_sample_is_marked_and_shows_its_paragraphs_in_full() {
    let mut events = dln2_hidden();
    let text = "1. Take 3 steps left.\n\n2. Take 2 steps right.\n\n3. Take";
    for e in events.iter_mut() {
        if let Event::Sharpened { examples, .. } | Event::PosteriorSampled { examples, .. } = e {
            for s in &mut examples[0].samples {
                s.text = text.into();
                s.cut = true;
            }
        }
    }
    let mut app = app_at(&events, Pane::Hidden, &[]);
    let collapsed = render(&mut app, 160, 45);
    assert!(
        collapsed
            .lines()
            .any(|l| l.contains("1. Take 3 steps left. 2.") && l.contains('✂')),
        "{collapsed}"
    );
    app.handle_action(Action::Expand);
    let full = render(&mut app, 160, 45);
    let lines: Vec<&str> = full.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("1. Take 3 steps left."))
        .expect("the text in full");
    // The blank line between the paragraphs is kept (its row holds no text of the sample).
    assert!(!lines[at + 1].contains("Take"), "{full}");
    assert!(lines[at + 2].contains("2. Take 2 steps right."), "{full}");
    assert!(
        full.contains("✂ cut at the layer's forward_max_tokens"),
        "{full}"
    );
}

#[test]
fn dln2_hidden_human_sample_and_exclusion() {
    let text = "2021-12-31 is the last day of the year, so tomorrow is 2022-01-01.";
    let events = person_edits(dln2_hidden(), 1, 1, text, 2);
    let app = app_at(
        &events,
        Pane::Hidden,
        &[Action::Down, Action::NextLayer, Action::NextLayer],
    );
    assert_snapshot!(render_pane(&app, Pane::Hidden, 100, 22));
}

#[test]
fn dln2_hidden_wrong_only_sorted_by_entropy() {
    let app = app_at(
        &dln2_hidden(),
        Pane::Hidden,
        &[Action::WrongOnly, Action::Sort],
    );
    assert_snapshot!(render_pane(&app, Pane::Hidden, 90, 20));
}

#[test]
fn dln2_grid_160x45() {
    let mut app = app_at(&dln2_hidden(), Pane::Hidden, &[]);
    assert_snapshot!(render(&mut app, 160, 45));
}

#[test]
fn pausing_then_paused() {
    let mut app = app_with(&dln1_running());
    let cmds = app.handle_action(Action::TogglePause);
    assert_eq!(cmds, vec![Command::Pause]);
    let pausing = render(&mut app, 80, 24);
    assert!(pausing.contains("PAUSING…"), "{pausing}");
    app.apply(&Event::StateChanged {
        state: dln::dln::events::RunState::Paused,
    });
    assert_snapshot!(render(&mut app, 80, 24));
}

fn template_check(_layer: usize, _role: TemplateRole, source: &str) -> Result<(), String> {
    if source.contains("{{ input }") && !source.contains("{{ input }}") {
        Err("template forward: syntax error: unexpected `}`, expected end of variable block (in forward:3)".into())
    } else {
        Ok(())
    }
}

#[test]
fn editing_template_with_local_error() {
    let mut app = app_with(&paused(dln1_running()));
    app.template_check = Some(Box::new(template_check));
    app.run.layers[0].templates.insert(
        TemplateRole::Forward,
        "[template]\ntext = \"\"\"\n{{ prompt }}\n\n{{ input }}\nAnswer:\"\"\"".into(),
    );
    app.handle_action(Action::EditTemplate);
    app.handle_key(key(KeyCode::Enter));
    assert!(matches!(app.overlay, Some(Overlay::Editor(_))));
    // Break line 5: `{{ input }}` → `{{ input }`.
    for _ in 0..4 {
        app.handle_key(key(KeyCode::Down));
    }
    app.handle_key(key(KeyCode::End));
    app.handle_key(key(KeyCode::Backspace));
    let cmds = app.handle_key(ctrl('s'));
    assert!(cmds.is_empty(), "an invalid template is not sent: {cmds:?}");
    assert_snapshot!(render(&mut app, 80, 24));
}

#[test]
fn editing_template_engine_error() {
    let mut app = app_with(&paused(dln1_running()));
    app.run.layers[0]
        .templates
        .insert(TemplateRole::Forward, "{{ prompt }}\n{{ input }}".into());
    app.handle_action(Action::EditTemplate);
    app.handle_key(char_key('1'));
    for c in "\n{% if %}".chars() {
        let k = if c == '\n' {
            key(KeyCode::Enter)
        } else {
            char_key(c)
        };
        app.handle_key(k);
    }
    let cmds = app.handle_key(ctrl('s'));
    assert!(
        matches!(
            cmds.as_slice(),
            [Command::SetTemplate {
                layer: 0,
                role: TemplateRole::Forward,
                ..
            }]
        ),
        "{cmds:?}"
    );
    app.apply(&Event::CommandRejected {
        command: cmds[0].clone(),
        reason: "template forward of layer 1 refused: syntax error: unexpected end of input, expected expression (in forward:1)".into(),
    });
    assert_snapshot!(render(&mut app, 100, 30));
}

#[test]
fn help_overlay_80x24() {
    let mut app = app_with(&dln1_running());
    app.handle_action(Action::Help);
    assert_snapshot!(render(&mut app, 80, 24));
}

#[test]
fn confirm_quit_overlay() {
    let mut app = app_with(&dln1_running());
    assert!(app.handle_action(Action::Quit).is_empty());
    assert_eq!(app.overlay, Some(Overlay::ConfirmQuit));
    assert_snapshot!(render(&mut app, 80, 24));
}

#[test]
fn empty_before_start_and_tiny_sizes_do_not_panic() {
    let mut app = app();
    assert_snapshot!(render(&mut app, 80, 24));
    let mut app = app_with(&dln2_hidden());
    for (w, h) in [
        (1, 1),
        (10, 5),
        (20, 8),
        (40, 12),
        (80, 24),
        (119, 31),
        (120, 32),
        (300, 80),
    ] {
        for pane in Pane::ALL {
            app.focus = pane;
            let _ = render(&mut app, w, h);
        }
        app.handle_action(Action::Help);
        let _ = render(&mut app, w, h);
        app.handle_action(Action::Help);
    }
}

/// The content-aware grid, the shared beginnings and the wrapped texts at any size, with every
/// pane focused and expanded: nothing panics.
#[test]
fn navigate_at_tiny_and_huge_sizes_does_not_panic() {
    let mut app = app_with(&dln2_navigate());
    for (w, h) in [
        (1, 1),
        (20, 5),
        (40, 12),
        (119, 31),
        (120, 32),
        (400, 120),
        (1000, 300),
    ] {
        for pane in Pane::ALL {
            app.focus = pane;
            let _ = render(&mut app, w, h);
            app.handle_action(Action::Expand);
            let _ = render(&mut app, w, h);
            app.handle_action(Action::Expand);
        }
    }
}

#[test]
fn themes_colour_the_status_badge_and_mono_does_not() {
    use ratatui::backend::TestBackend;
    use ratatui::style::Color;
    use ratatui::Terminal;
    for (theme, coloured) in [
        (dln::tui::Theme::dark(), true),
        (dln::tui::Theme::builtin("light").expect("light"), true),
        (dln::tui::Theme::mono(), false),
    ] {
        let mut app = dln::tui::App::new(theme.clone(), dln::tui::KeyMap::default());
        app.apply_all(&dln1_running());
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
        terminal
            .draw(|f| dln::tui::view::draw(&app, f))
            .expect("draw");
        let buf = terminal.backend().buffer();
        let badge = &buf[(1, 22)];
        assert_eq!(badge.symbol(), "R", "{}: the RUNNING badge", theme.name);
        let has_colour = badge.bg != Color::Reset || badge.fg != Color::Reset;
        assert_eq!(has_colour, coloured, "{}: {:?}", theme.name, badge);
    }
}

#[test]
fn metrics_scroll_when_taller_than_the_pane() {
    let mut app = app_at(&dln1_running(), Pane::Metrics, &[]);
    assert_snapshot!("metrics_scroll_top_80x14", render(&mut app, 80, 14));
    app.handle_action(Action::Bottom);
    assert_eq!(
        app.sel.metrics_scroll, 6,
        "scrolling stops at the last line"
    );
    app.handle_action(Action::Up);
    app.handle_action(Action::Down);
    assert_snapshot!("metrics_scroll_bottom_80x14", render(&mut app, 80, 14));
}

/// A recorded run a person stopped during iteration 3: the replay says `stopped` (not
/// `finished`), and neither the status line nor the Metrics gauge shows a stage in progress or
/// an ETA.
#[test]
fn replay_of_a_stopped_run_80x24() {
    let mut events = dln1_running();
    events.push(Event::RunFinished {
        best_prompts: vec![P2.into()],
        dev_accuracy: Some(0.75),
        test_accuracy: None,
        stopped_early: true,
        best_demos: Vec::new(),
        stop_reason: None,
    });
    events.push(Event::StateChanged {
        state: dln::dln::events::RunState::Finished,
    });
    let mut app =
        dln::tui::App::replay(dln::tui::Theme::mono(), dln::tui::KeyMap::default(), events);
    app.focus = Pane::Metrics;
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("REPLAY · STOPPED"), "{screen}");
    assert!(!screen.contains("ETA"), "{screen}");
    assert_snapshot!(screen);
}

/// While the posterior of a layer is sharpened, the Candidates pane of a layer without
/// candidates says what the run is doing, with the counter that moves as requests finish.
#[test]
fn candidates_pane_says_what_runs_while_there_are_none() {
    let mut app = app_with(&dln2_hidden());
    app.apply(&Event::StageStarted {
        iteration: 0,
        stage: dln::dln::events::Stage::Sharpening,
        layer: Some(1),
        total: 9,
        usage: None,
    });
    app.apply(&Event::StageProgress {
        iteration: 0,
        stage: dln::dln::events::Stage::Sharpening,
        done: 4,
        total: 9,
        usage: None,
    });
    app.sel.layer = 0;
    app.sel.layer_chosen = true;
    app.focus = Pane::Candidates;
    let pane = render_pane(&app, Pane::Candidates, 100, 6);
    assert!(pane.contains("now: sharpening L2 4/9"), "{pane}");
    assert_snapshot!(pane);
}

/// The labels a newcomer cannot guess are explained in the help.
#[test]
fn the_help_explains_the_panes_labels() {
    let mut app = app_with(&dln1_running());
    app.handle_action(Action::Help);
    let lines: String = dln::tui::view::overlays::help_lines(&app, 100)
        .iter()
        .map(|l| l.to_string() + "\n")
        .collect();
    for label in ["entropy", "log p(h|x)", "empty: -50", "vs best", "★ ◆"] {
        assert!(lines.contains(label), "{label} in\n{lines}");
    }
}

/// A priced backend: the metrics pane adds a cost column (absent above, where nothing is priced).
#[test]
fn metrics_cost_column_when_a_backend_is_priced() {
    let mut events = dln1_running();
    for e in &mut events {
        if let Event::IterationDone { usage, .. } = e {
            for entry in usage.iter_mut() {
                // 0.15 per million prompt tokens, 0.60 per million generated.
                let u = &mut entry.usage;
                u.cost = (u.tokens_computed + u.tokens_reused) as f64 * 0.15e-6
                    + u.tokens_generated as f64 * 0.60e-6;
            }
        }
    }
    let app = app_with(&events);
    let screen = render_pane(&app, Pane::Metrics, 80, 18);
    assert!(screen.contains("cost"), "{screen}");
    assert_snapshot!(screen);
}

/// A run stopped by its budget says so in the status bar (not "FINISHED") and in its messages.
#[test]
fn a_budget_stop_shows_in_the_status_badge() {
    use dln::dln::events::{RunState, StopReason};
    let mut events = dln1_running();
    events.push(Event::BudgetReached {
        tokens: 12_000,
        cost: 0.0,
        budget_tokens: Some(10_000),
        budget_cost: None,
    });
    events.push(Event::RunFinished {
        best_prompts: vec!["p".into()],
        dev_accuracy: Some(0.7),
        test_accuracy: None,
        stopped_early: true,
        best_demos: Vec::new(),
        stop_reason: Some(StopReason::Budget),
    });
    events.push(Event::StateChanged {
        state: RunState::Finished,
    });
    let mut app = app_with(&events);
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains(" STOPPED (BUDGET) "), "{screen}");
    assert!(!screen.contains(" FINISHED "), "{screen}");
    assert!(
        app.run
            .messages
            .iter()
            .any(|(_, m)| m.contains("budget reached (12000 of train.budget_tokens = 10000")),
        "{:?}",
        app.run.messages
    );
}

/// Issue 12: at 120×40 a two-layer run's Metrics shows every row (the L2 usage row too); the
/// navigate inputs, which all start alike, show their shared beginning once and each row the
/// part that differs; an empty hidden text and an empty sample say so.
#[test]
fn navigate_grid_120x40() {
    let mut app = app_at(&dln2_navigate(), Pane::Hidden, &[Action::Down]);
    let screen = render(&mut app, 120, 40);
    assert!(
        screen.contains("every input starts: If you follow these instructions"),
        "{screen}"
    );
    assert!(screen.contains("…Take 8 steps. Take 1 step."), "{screen}");
    assert!(screen.contains("L2 "), "the L2 usage row: {screen}");
    assert!(
        !screen.contains(" of 1"),
        "Metrics does not scroll: {screen}"
    );
    assert!(screen.contains("(empty)"), "{screen}");
    assert_snapshot!(screen);
}

/// Issue 12: at 160×50 the text panes (Hidden, Candidates) are the wide ones; an expanded
/// candidate's long prompt wraps in full, the others take a line each.
#[test]
fn navigate_grid_160x50() {
    let mut app = app_at(
        &dln2_navigate(),
        Pane::Candidates,
        &[Action::Down, Action::Expand],
    );
    let screen = render(&mut app, 160, 50);
    assert!(screen.contains("say whether they are equal."), "{screen}");
    let width = |pane: Pane| {
        dln::tui::view::screen(&app, ratatui::layout::Rect::new(0, 0, 160, 50))
            .pane_rect(pane, pane)
            .map(|r| r.width)
            .unwrap_or(0)
    };
    assert!(width(Pane::Hidden) > width(Pane::Layers));
    assert!(width(Pane::Candidates) > width(Pane::Metrics));
    assert_snapshot!(screen);
}

/// Issue 12 item 4: the panes' numbers carry their names where they are shown: the example
/// list's columns, the samples' log-probabilities and weight, the candidates' score and gap to
/// the best, and the value an empty text is given.
#[test]
fn labels_in_place_80x24() {
    let mut app = app_at(&dln2_navigate(), Pane::Hidden, &[Action::Down]);
    let hidden = render(&mut app, 80, 24);
    for label in [
        "entropy",
        "samples",
        "log p(y|h)",
        "log p(h|x)",
        "weight",
        "empty: -50",
    ] {
        assert!(hidden.contains(label), "{label} in\n{hidden}");
    }
    assert_snapshot!("labels_hidden_80x24", hidden);
    app.focus = Pane::Candidates;
    let candidates = render(&mut app, 80, 24);
    for label in ["score", "vs best", "4 candidates", "empty: -50"] {
        assert!(candidates.contains(label), "{label} in\n{candidates}");
    }
    assert_snapshot!("labels_candidates_80x24", candidates);
}

/// The test evaluation after the last iteration is not an iteration past the last: the metrics
/// pane says "after training" (it said "it 6/5").
#[test]
fn the_test_after_training_is_not_counted_as_an_iteration() {
    let mut app = app_with(&dln1_running());
    let iterations = app.run.iterations;
    app.apply(&Event::StageStarted {
        iteration: iterations,
        stage: dln::dln::events::Stage::Test,
        layer: None,
        total: 13,
        usage: None,
    });
    app.apply(&Event::StageProgress {
        iteration: iterations,
        stage: dln::dln::events::Stage::Test,
        done: 3,
        total: 13,
        usage: None,
    });
    let pane = render_pane(&app, Pane::Metrics, 80, 18);
    assert!(pane.contains("after training test 3/13"), "{pane}");
    assert!(!pane.contains(&format!("it {}/", iterations + 1)), "{pane}");
}
