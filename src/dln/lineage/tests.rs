use super::*;
use crate::dln::events::{Candidate, LayerInfo, ProposalSource};

fn started(prompts: &[&str]) -> Event {
    Event::RunStarted {
        run_dir: "r".into(),
        task: "t".into(),
        model: "m".into(),
        layers: prompts
            .iter()
            .enumerate()
            .map(|(index, p)| LayerInfo {
                index,
                prompt: p.to_string(),
                pinned: false,
                trainable: true,
                model: "m".into(),
                templates: Default::default(),
                demos: Vec::new(),
                max_demos: 0,
                demos_pinned: false,
                feedback: Vec::new(),
            })
            .collect(),
        iterations: 3,
        start_iteration: 0,
        train_size: 10,
        dev_size: 4,
        test_size: 0,
    }
}

fn cand(prompt: &str, origin: CandidateOrigin, request: Option<usize>) -> Candidate {
    Candidate {
        prompt: prompt.into(),
        origin,
        score: None,
        kl: None,
        demos: Vec::new(),
        demo_move: None,
        proposal: request.map(|j| ProposalSource {
            request: j,
            shown: vec![3 + j, 7],
            message: format!("message {j}"),
            template: "propose".into(),
            feedback: if j == 0 {
                vec!["Say which number is larger.".into()]
            } else {
                Vec::new()
            },
        }),
    }
}

/// One update of layer 0 in iteration `it`: `cands` proposed, scored `scores`, `winner`
/// selected, the iteration done.
fn update(it: usize, cands: Vec<Candidate>, scores: &[f64], winner: usize) -> Vec<Event> {
    let scored: Vec<Candidate> = cands
        .iter()
        .zip(scores)
        .map(|(c, s)| Candidate {
            score: Some(*s),
            ..c.clone()
        })
        .collect();
    let previous = cands[0].prompt.clone();
    vec![
        Event::CandidatesProposed {
            iteration: it,
            layer: 0,
            candidates: cands.clone(),
            drawn: cands.len() - 1,
            rejected: Vec::new(),
            examples_dropped: 0,
        },
        Event::CandidatesScored {
            iteration: it,
            layer: 0,
            candidates: scored,
            winner,
        },
        Event::PromptSelected {
            iteration: it,
            layer: 0,
            prompt: cands[winner].prompt.clone(),
            previous,
            demos: Vec::new(),
        },
        Event::IterationDone {
            iteration: it,
            train_accuracy: 0.5,
            elbo: None,
            usage: Vec::new(),
            elapsed_ms: 1,
            paused_ms: 0,
        },
    ]
}

fn texts(nodes: &[&Node]) -> Vec<String> {
    nodes.iter().map(|n| n.prompt.clone()).collect()
}

/// Three iterations: A → B (it 1), B kept over C (it 2), D from B wins (it 3).
fn three_iterations() -> Vec<Event> {
    use CandidateOrigin::*;
    let mut ev = vec![started(&["A"])];
    ev.extend(update(
        0,
        vec![
            cand("A", Current, None),
            cand("B", Proposed, Some(0)),
            cand("X", Proposed, Some(1)),
        ],
        &[-2.0, -1.0, -3.0],
        1,
    ));
    ev.extend(update(
        1,
        vec![cand("B", Current, None), cand("C", Proposed, Some(0))],
        &[-1.0, -1.5],
        0,
    ));
    ev.extend(update(
        2,
        vec![cand("B", Current, None), cand("D", Proposed, Some(1))],
        &[-1.0, -0.5],
        1,
    ));
    ev
}

#[test]
fn a_winner_walks_back_to_the_start_over_several_iterations() {
    let lineage = Lineage::from_events(&three_iterations());
    let l = lineage.layer(0).expect("layer 0");
    let d = l.node(l.current).expect("current");
    assert_eq!(d.prompt, "D");
    assert_eq!(texts(&l.ancestry(d.id)), vec!["D", "B", "A"]);
    assert_eq!(
        l.ancestry(d.id).last().map(|n| n.kind),
        Some(NodeKind::Start)
    );
    let winners: Vec<&str> = l.winners().map(|n| n.prompt.as_str()).collect();
    assert_eq!(winners, vec!["B", "D"]);
    for w in l.winners() {
        assert_eq!(l.ancestry(w.id).last().map(|n| n.id), Some(0));
    }
    // Provenance, rank and margin of the winner and of the rejected.
    let b = &l.nodes[1];
    assert_eq!(b.source.as_ref().map(|s| s.shown.clone()), Some(vec![3, 7]));
    assert_eq!(b.rank, Some((1, 3)));
    assert_eq!(b.margin, Some(1.0), "B leads A by 1");
    let x = &l.nodes[2];
    assert!(x.lost && !x.won);
    assert_eq!(x.rank, Some((3, 3)));
    assert_eq!(x.margin, Some(-2.0));
    assert!(x.why().contains("lost at it 1"), "{}", x.why());
    assert!(x.why().contains("2.00 behind the winner"), "{}", x.why());
    let c = l.nodes.iter().find(|n| n.prompt == "C").expect("C");
    assert!(c.lost);
    assert_eq!(c.margin, Some(-0.5));
    // The start prompt keeps its own story (it was the current prompt, not a new candidate).
    assert_eq!(l.nodes[0].why(), "the start prompt");
    assert_eq!(l.updates.len(), 3);
    assert_eq!(l.updates[1].winner, Some(1), "B kept in iteration 2");
}

#[test]
fn a_memory_candidate_links_to_where_its_text_first_appeared() {
    use CandidateOrigin::*;
    let mut ev = three_iterations();
    ev.extend(update(
        3,
        vec![
            cand("D", Current, None),
            cand("E", Proposed, Some(0)),
            cand("C", Memory, None),
        ],
        &[-0.5, -0.9, -0.2],
        2,
    ));
    let lineage = Lineage::from_events(&ev);
    let l = &lineage.layers[0];
    let m = l.node(l.current).expect("current");
    assert_eq!(m.kind, NodeKind::Memory);
    assert_eq!(m.prompt, "C");
    let first_c = l.nodes.iter().find(|n| n.prompt == "C").expect("C").id;
    assert_eq!(m.parent, Some(first_c), "the memory link");
    assert_eq!(texts(&l.ancestry(m.id)), vec!["C", "C", "B", "A"]);
    assert!(m.won && !m.lost);
    assert!(m.origin().contains(&format!("first seen as #{first_c}")));
}

#[test]
fn edits_pins_and_resets_are_nodes_and_marks() {
    use CandidateOrigin::*;
    let mut ev = three_iterations();
    ev.push(Event::PromptReplaced {
        layer: 0,
        prompt: "Mine".into(),
    });
    ev.push(Event::PromptPinned {
        layer: 0,
        prompt: "Mine".into(),
    });
    ev.push(Event::PromptUnpinned { layer: 0 });
    ev.extend(update(
        3,
        vec![cand("Mine", Current, None), cand("F", Proposed, Some(0))],
        &[-0.4, -0.3],
        1,
    ));
    ev.push(Event::PatienceReset {
        iteration: 3,
        prompts: vec!["D".into()],
        demos: Vec::new(),
    });
    let lineage = Lineage::from_events(&ev);
    let l = &lineage.layers[0];
    let mine = l
        .nodes
        .iter()
        .find(|n| n.prompt == "Mine")
        .expect("the edit");
    assert_eq!(mine.kind, NodeKind::Edited);
    assert!(mine.edited && mine.pinned);
    assert_eq!(
        mine.iteration,
        Some(3),
        "an edit after iteration 3 counts for the 4th"
    );
    assert_eq!(
        texts(&l.ancestry(mine.id)),
        vec!["Mine", "D", "B", "A"],
        "an edit's parent is the prompt it replaced"
    );
    assert!(mine.why().starts_with("edited by you"), "{}", mine.why());
    let f = l.nodes.iter().find(|n| n.prompt == "F").expect("F");
    assert_eq!(f.parent, Some(mine.id));
    // The reset returns the layer to D, an earlier node.
    let d = l.nodes.iter().find(|n| n.prompt == "D").expect("D").id;
    assert_eq!(l.current, d);
    let marks: Vec<MarkKind> = l.marks.iter().map(|m| m.what).collect();
    assert_eq!(
        marks,
        vec![
            MarkKind::Edited,
            MarkKind::Pinned,
            MarkKind::Unpinned,
            MarkKind::Reset
        ]
    );
    assert!(!l.pinned);
}

#[test]
fn pinning_a_candidate_makes_it_the_prompt() {
    use CandidateOrigin::*;
    let mut ev = vec![started(&["A", "Y"])];
    ev.push(Event::CandidatesProposed {
        iteration: 0,
        layer: 0,
        candidates: vec![cand("A", Current, None), cand("B", Proposed, Some(0))],
        drawn: 1,
        rejected: Vec::new(),
        examples_dropped: 0,
    });
    ev.push(Event::PromptPinned {
        layer: 0,
        prompt: "B".into(),
    });
    let lineage = Lineage::from_events(&ev);
    let l = &lineage.layers[0];
    assert_eq!(l.nodes[l.current].prompt, "B");
    assert!(l.nodes[l.current].pinned && l.pinned);
    assert_eq!(
        lineage.layers[1].nodes.len(),
        1,
        "layer 2 only has its start"
    );
}

#[test]
fn a_log_without_provenance_says_not_recorded() {
    use CandidateOrigin::*;
    let mut ev = vec![started(&["A"])];
    ev.extend(update(
        0,
        vec![cand("A", Current, None), cand("B", Proposed, None)],
        &[-2.0, -1.0],
        1,
    ));
    let l = &Lineage::from_events(&ev).layers[0];
    assert_eq!(l.nodes[1].source, None);
    assert_eq!(l.nodes[1].origin(), "proposed · provenance not recorded");
    // Such a log (no `proposal` key) still reads: the field is optional.
    let line = r#"{"event":"candidates_proposed","iteration":0,"layer":0,"candidates":[{"prompt":"B","origin":"proposed","score":null,"kl":null}]}"#;
    let e: Event = serde_json::from_str(line).expect("an old event");
    assert!(
        matches!(e, Event::CandidatesProposed { ref candidates, .. } if candidates[0].proposal.is_none())
    );
}

#[test]
fn a_rerun_update_replaces_the_stopped_one() {
    use CandidateOrigin::*;
    let mut ev = vec![started(&["A"])];
    let cands = vec![cand("A", Current, None), cand("B", Proposed, Some(0))];
    ev.push(Event::CandidatesProposed {
        iteration: 0,
        layer: 0,
        candidates: cands.clone(),
        drawn: 1,
        rejected: Vec::new(),
        examples_dropped: 0,
    });
    // Stopped here, resumed: the iteration runs again.
    ev.push(started(&["A"]));
    ev.extend(update(0, cands, &[-2.0, -1.0], 1));
    let l = &Lineage::from_events(&ev).layers[0];
    assert_eq!(l.nodes.len(), 2, "{:?}", l.nodes);
    assert_eq!(l.updates.len(), 1);
    assert_eq!(texts(&l.ancestry(l.current)), vec!["B", "A"]);
}

#[test]
fn a_branch_point_is_a_mark_and_a_prompt_changed_at_it_is_an_edit() {
    let mut ev = three_iterations();
    // The branch's log: the parent's up to iteration 2, then `branched`, then its own start
    // with the prompt a person gave it.
    let cut = ev
        .iter()
        .position(|e| matches!(e, Event::CandidatesProposed { iteration: 2, .. }))
        .expect("iteration 3's proposals");
    ev.truncate(cut);
    ev.push(Event::Branched {
        parent: "/runs/p".into(),
        iteration: 2,
        changes: vec!["layers.0.prompt=E".into()],
    });
    let Event::RunStarted { .. } = &ev[0] else {
        panic!("the log starts with the run")
    };
    let mut again = started(&["E"]);
    if let Event::RunStarted {
        start_iteration, ..
    } = &mut again
    {
        *start_iteration = 2;
    }
    ev.push(again);
    let lineage = Lineage::from_events(&ev);
    let l = lineage.layer(0).expect("layer 0");
    let branch = l
        .marks
        .iter()
        .find(|m| m.what == MarkKind::Branched)
        .expect("the branch point");
    assert_eq!(branch.iteration, 2);
    assert_eq!(
        l.nodes[branch.node].prompt, "B",
        "the parent's prompt at the point"
    );
    let e = l.node(l.current).expect("current");
    assert_eq!(e.prompt, "E");
    assert_eq!(e.kind, NodeKind::Edited);
    assert_eq!(texts(&l.ancestry(e.id)), vec!["E", "B", "A"]);
    // The feedback a proposal was shown is on its node.
    assert_eq!(
        l.nodes[1].feedback,
        vec!["Say which number is larger.".to_string()]
    );
}
