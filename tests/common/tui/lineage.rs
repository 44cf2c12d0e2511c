//! A DLN-2 run whose prompts have a story: three iterations of updates on both layers, each
//! proposal with its provenance; the memory brings back an earlier rejected prompt that wins;
//! a person edits layer 1 and pins it.

use dln::dln::events::*;

use super::{iteration_end, layer_info, run_begins, started, usage};

pub const LIN_H0: &str = "Think step by step.";
pub const LIN_H1: &str = "Think step by step: write each date you compute, then the day after it.";
pub const LIN_H2: &str = "Write the date, then count the days one by one.";
pub const LIN_H_EDIT: &str =
    "Think step by step: write each date you compute, then count forward one day at a time.";
pub const LIN_Y0: &str = "Answer with the date.";
pub const LIN_Y1: &str = "Answer with the final date only, as YYYY-MM-DD.";
pub const LIN_Y2: &str = "Give the answer.";
pub const LIN_Y3: &str = "Answer with the final date only, as YYYY-MM-DD, nothing else.";

fn proposed(prompt: &str, origin: CandidateOrigin, request: Option<usize>) -> Candidate {
    Candidate {
        prompt: prompt.into(),
        origin,
        score: None,
        kl: None,
        demos: Vec::new(),
        demo_move: None,
        proposal: request.map(|j| ProposalSource {
            request: j,
            shown: vec![4 + 3 * j, 11, 17 - j],
            message: if j % 2 == 0 {
                "Write a better instruction.".into()
            } else {
                "Make the instruction more specific.".into()
            },
            template: "propose_chat".into(),
            feedback: Vec::new(),
        }),
    }
}

/// One update of `layer` in `it`: the candidates, their scores, the winner selected.
fn update(
    it: usize,
    layer: usize,
    cands: Vec<Candidate>,
    scores: &[f64],
    winner: usize,
) -> Vec<Event> {
    let scored: Vec<Candidate> = cands
        .iter()
        .zip(scores)
        .map(|(c, s)| Candidate {
            score: Some(*s),
            ..c.clone()
        })
        .collect();
    vec![
        started(it, Stage::Propose, Some(layer), cands.len() - 1),
        Event::CandidatesProposed {
            iteration: it,
            layer,
            candidates: cands.clone(),
            drawn: cands.len() - 1,
            rejected: Vec::new(),
            examples_dropped: 0,
        },
        started(it, Stage::Score, Some(layer), 9),
        Event::CandidatesScored {
            iteration: it,
            layer,
            candidates: scored,
            winner,
        },
        Event::PromptSelected {
            iteration: it,
            layer,
            prompt: cands[winner].prompt.clone(),
            previous: cands[0].prompt.clone(),
            demos: Vec::new(),
        },
    ]
}

fn end(it: usize) -> [Event; 3] {
    iteration_end(
        it,
        (&[-1.5, -0.9], -2.4),
        0.5 + 0.1 * it as f64,
        0.5,
        vec![usage(0, Operation::Propose, 2, 900, 120)],
        30_000,
    )
}

/// Three iterations of a DLN-2 run on date arithmetic, with a memory win, an edit and a pin.
pub fn dln2_lineage() -> Vec<Event> {
    use CandidateOrigin::*;
    let layers = vec![layer_info(0, LIN_H0), layer_info(1, LIN_Y0)];
    let mut ev = run_begins("/runs/dates-dln2", "dates", layers, 4, (30, 10, 10));
    // Iteration 1: both layers improve.
    ev.extend(update(
        0,
        1,
        vec![
            proposed(LIN_Y0, Current, None),
            proposed(LIN_Y1, Proposed, Some(0)),
            proposed(LIN_Y2, Proposed, Some(1)),
        ],
        &[-1.9, -0.8, -2.6],
        1,
    ));
    ev.extend(update(
        0,
        0,
        vec![
            proposed(LIN_H0, Current, None),
            proposed(LIN_H1, Proposed, Some(0)),
            proposed(LIN_H2, Proposed, Some(1)),
        ],
        &[-3.1, -2.2, -2.5],
        1,
    ));
    ev.extend(end(0));
    // Iteration 2: layer 2 keeps its prompt; layer 1 keeps too.
    ev.extend(update(
        1,
        1,
        vec![
            proposed(LIN_Y1, Current, None),
            proposed(LIN_Y3, Proposed, Some(0)),
        ],
        &[-0.8, -0.95],
        0,
    ));
    ev.extend(update(
        1,
        0,
        vec![
            proposed(LIN_H1, Current, None),
            proposed("Count.", Proposed, Some(0)),
        ],
        &[-2.0, -4.2],
        0,
    ));
    ev.extend(end(1));
    // Iteration 3: layer 2's memory brings back LIN_Y3's sibling; a person edits layer 1.
    ev.extend(update(
        2,
        1,
        vec![
            proposed(LIN_Y1, Current, None),
            proposed(LIN_Y3, Proposed, Some(0)),
            proposed(LIN_Y2, Memory, None),
        ],
        &[-0.8, -0.6, -0.7],
        1,
    ));
    ev.extend(update(
        2,
        0,
        vec![
            proposed(LIN_H1, Current, None),
            proposed(LIN_H2, Memory, None),
        ],
        &[-2.1, -1.7],
        1,
    ));
    ev.extend(end(2));
    ev.push(Event::PromptReplaced {
        layer: 0,
        prompt: LIN_H_EDIT.into(),
    });
    ev.push(Event::PromptPinned {
        layer: 0,
        prompt: LIN_H_EDIT.into(),
    });
    ev
}
