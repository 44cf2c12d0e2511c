//! The lineage view (`L`): the focused layer's prompts as a tree over iterations, a selection
//! moved with j/k, and for the selected prompt its text, its word diff against its parent and
//! why it won or lost — drawn from synthesized events (no engine, no terminal), live and in
//! replay.

mod common;

use common::tui::*;
use crossterm::event::KeyCode;
use dln::tui::{App, KeyMap, Overlay, Pane, Theme};
use insta::assert_snapshot;

/// The workbench after the lineage run, focused on layer `layer`'s candidates, `L` pressed.
fn opened(layer: usize) -> App {
    let mut app = app_at(&dln2_lineage(), Pane::Candidates, &[]);
    app.sel.layer = layer;
    app.sel.layer_chosen = true;
    press_char(&mut app, 'L');
    app
}

#[test]
fn l_opens_the_lineage_of_the_focused_layer_at_its_prompt_now() {
    let mut app = opened(1);
    assert_eq!(app.overlay, Some(Overlay::Lineage { layer: 1 }));
    let l = app.run.lineage.layer(1).expect("layer 2's tree");
    assert_eq!(app.sel.lineage_node, l.current);
    let now = l.node(l.current).expect("the prompt now");
    assert_eq!(now.prompt, LIN_Y3);
    let screen = render(&mut app, 140, 40);
    assert!(screen.contains("Lineage · layer 2/2"), "{screen}");
    assert!(screen.contains("won at it 3"), "{screen}");
    assert!(screen.contains("request 1 · shown ex 4 11 17"), "{screen}");
    assert!(screen.contains("diff against #1"), "{screen}");
    assert_snapshot!("lineage_layer2_140x40", screen);
}

#[test]
fn j_and_k_select_a_prompt_and_show_why_it_lost() {
    let mut app = opened(1);
    // Up to the start: its text, no parent.
    press_char(&mut app, 'g');
    assert_eq!(app.sel.lineage_node, 0);
    let screen = render(&mut app, 140, 40);
    assert!(screen.contains("the start prompt"), "{screen}");
    // #2 is the rejected LIN_Y2 of iteration 1.
    press_char(&mut app, 'j');
    press_char(&mut app, 'j');
    assert_eq!(app.sel.lineage_node, 2);
    let screen = render(&mut app, 140, 40);
    assert!(screen.contains("lost at it 1"), "{screen}");
    assert!(screen.contains("rank 3 of 3"), "{screen}");
    assert!(screen.contains("1.80 behind the winner"), "{screen}");
    assert!(
        screen.contains("[-"),
        "a word diff against the start: {screen}"
    );
    // Down past the end stays on the last node; arrows move too.
    for _ in 0..20 {
        press(&mut app, KeyCode::Down);
    }
    let last = app.run.lineage.layer(1).map_or(0, |l| l.nodes.len() - 1);
    assert_eq!(app.sel.lineage_node, last);
    press(&mut app, KeyCode::Up);
    assert_eq!(app.sel.lineage_node, last - 1);
    // Esc closes.
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.overlay, None);
}

#[test]
fn the_edited_and_pinned_layer_says_so_and_traces_back_to_the_start() {
    let mut app = opened(0);
    let l = app.run.lineage.layer(0).expect("layer 1's tree");
    let now = l.node(l.current).expect("now");
    assert_eq!(now.prompt, LIN_H_EDIT);
    assert!(now.edited && now.pinned);
    let chain: Vec<usize> = l.ancestry(now.id).iter().map(|n| n.id).collect();
    assert_eq!(chain.last(), Some(&0), "{chain:?}");
    let screen = render(&mut app, 140, 40);
    assert!(screen.contains("edited by you"), "{screen}");
    assert!(screen.contains("pinned"), "{screen}");
    assert!(screen.contains("✎"), "{screen}");
    assert_snapshot!("lineage_layer1_edited_140x40", screen);
    // ← and → change layer, at that layer's prompt now.
    press(&mut app, KeyCode::Right);
    assert_eq!(app.overlay, Some(Overlay::Lineage { layer: 1 }));
    press(&mut app, KeyCode::Left);
    assert_eq!(app.overlay, Some(Overlay::Lineage { layer: 0 }));
}

#[test]
fn a_memory_win_links_back_to_where_it_first_appeared() {
    let app = opened(0);
    let l = app.run.lineage.layer(0).expect("layer 1");
    let memory = l
        .nodes
        .iter()
        .find(|n| n.won && n.origin().starts_with("from the memory"))
        .expect("the memory's winner");
    let first = memory
        .parent
        .and_then(|p| l.node(p))
        .expect("its first appearance");
    assert_eq!(first.prompt, LIN_H2);
    assert_eq!(first.iteration, Some(0));
}

#[test]
fn the_lineage_view_fits_80x24() {
    let mut app = opened(1);
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("Lineage"), "{screen}");
    assert_snapshot!("lineage_80x24", screen);
}

#[test]
fn replay_opens_the_lineage_and_scrubs_it_through_the_iterations() {
    let mut app = App::replay(Theme::mono(), KeyMap::default(), dln2_lineage());
    app.sel.layer = 1;
    app.sel.layer_chosen = true;
    press_char(&mut app, 'L');
    assert_eq!(app.overlay, Some(Overlay::Lineage { layer: 1 }));
    let at_end = app.run.lineage.layer(1).map_or(0, |l| l.nodes.len());
    // Back to the first iteration: the tree as it was then.
    press_char(&mut app, '[');
    press_char(&mut app, '[');
    assert_eq!(app.overlay, Some(Overlay::Lineage { layer: 1 }));
    let then = app.run.lineage.layer(1).map_or(0, |l| l.nodes.len());
    assert!(then < at_end, "{then} < {at_end}");
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("REPLAY"), "{screen}");
    assert!(screen.contains(&format!("#{}", then - 1)), "{screen}");
    // Copy is reading: allowed in replay.
    press_char(&mut app, 'y');
    assert_eq!(app.effects.len(), 1);
}

#[test]
fn l_is_listed_in_the_help_and_hinted_in_the_candidates_pane() {
    let mut app = app_at(&dln2_lineage(), Pane::Candidates, &[]);
    let hints = render(&mut app, 160, 45);
    assert!(hints.contains("L lineage"), "{hints}");
    let help = dln::tui::view::overlays::help_lines(&app, 120)
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(help.contains("[lineage]"), "{help}");
}
