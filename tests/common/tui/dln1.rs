//! DLN-1 runs in progress, as event sequences: a plain one on a sentiment task and one that
//! learns demonstrations.

use dln::dln::events::*;

use super::{candidates, example, iteration_end, layer_info, proposed, run_begins, started, usage};

pub const P0: &str = "Classify the sentiment of the review as positive or negative.";
pub const P1: &str = "Read the movie review carefully. Decide whether the reviewer liked the film; answer positive if they did and negative if they did not.";
pub const P2: &str = "Read the review. Focus on the words that show the reviewer's feelings about the film, then answer positive or negative.";

const INPUTS: [(&str, &str); 4] = [
    ("A warm, funny and beautifully acted film.", "positive"),
    ("Two hours of my life I will never get back.", "negative"),
    (
        "The plot drags, but the ending almost makes up for it; almost.",
        "negative",
    ),
    (
        "An instant classic with a score you will hum for weeks.",
        "positive",
    ),
];

/// A DLN-1 run: started, two iterations done, the third in its score stage.
pub fn dln1_running() -> Vec<Event> {
    let mut ev = run_begins(
        "/runs/sentiment-demo",
        "sentiment",
        vec![layer_info(0, P0)],
        5,
        (40, 20, 20),
    );
    let winners = [P1, P2];
    let mut current = P0;
    for it in 0..3 {
        ev.push(started(it, Stage::Forward, None, 4));
        let preds = if it == 0 {
            ["positive", "positive", "positive", "positive"]
        } else {
            ["positive", "negative", "positive", "positive"]
        };
        let examples: Vec<ForwardExample> = INPUTS
            .iter()
            .zip(preds)
            .enumerate()
            .map(|(i, ((x, y), p))| example(i, x, y, p, vec![]))
            .collect();
        let acc = examples.iter().filter(|e| e.correct).count() as f64 / 4.0;
        ev.push(Event::ForwardDone {
            iteration: it,
            examples,
            accuracy: acc,
            loss: 1.0 - acc,
        });
        ev.push(started(it, Stage::Propose, Some(0), 3));
        let next = winners.get(it).copied().unwrap_or(P2);
        let props = [
            current,
            next,
            "Answer with one word.",
            "Is the review positive or negative?",
        ];
        ev.push(proposed(it, 0, candidates(&props, None)));
        ev.push(started(it, Stage::Score, Some(0), 16));
        if it == 2 {
            ev.push(Event::StageProgress {
                iteration: it,
                stage: Stage::Score,
                done: 9,
                total: 16,
                usage: None,
            });
            break;
        }
        let scores = [-0.71 + 0.1 * it as f64, -0.52, -0.93, -0.66];
        ev.push(Event::CandidatesScored {
            iteration: it,
            layer: 0,
            candidates: candidates(&props, Some(&scores)),
            winner: 1,
        });
        ev.push(Event::PromptSelected {
            iteration: it,
            layer: 0,
            prompt: next.into(),
            previous: current.into(),
            demos: Vec::new(),
        });
        let elbo = -0.52 + 0.05 * it as f64;
        ev.extend(iteration_end(
            it,
            (&[elbo], elbo),
            0.55 + 0.15 * it as f64,
            acc,
            vec![
                usage(0, Operation::Forward, 4, 420, 8),
                usage(0, Operation::Propose, 3, 900, 150),
                usage(0, Operation::Score, 16, 3000, 0),
            ],
            40_000,
        ));
        ev.push(Event::CheckpointWritten {
            iteration: it + 1,
            path: "/runs/sentiment-demo/checkpoint.json".into(),
        });
        current = next;
    }
    ev
}

/// The state after the person paused (the engine confirmed).
pub fn paused(mut events: Vec<Event>) -> Vec<Event> {
    events.push(Event::StateChanged {
        state: RunState::Pausing,
    });
    events.push(Event::StateChanged {
        state: RunState::Paused,
    });
    events
}

fn demo(index: usize, input: &str, output: &str) -> Demo {
    Demo {
        index,
        input: input.into(),
        output: output.into(),
    }
}

/// The examples a run with demonstrations shows: training example `i` of the sentiment task.
pub fn demo_ex(i: usize) -> Demo {
    match i {
        12 => demo(12, "A slow, muddled mess with no heart.", "negative"),
        5 => demo(5, "Funny, warm and wise: go see it.", "positive"),
        87 => demo(
            87,
            "The plot drags, but the ending almost makes up for it; almost.",
            "negative",
        ),
        _ => demo(i, &format!("training review {i}"), "positive"),
    }
}

/// A DLN-1 run whose output layer learns up to 3 demonstrations: it starts showing ex 12 and
/// ex 5; iteration 1's winner is a demonstration move (swap ex 12 → ex 87); iteration 2's
/// candidates (an instruction, a swap, an add) are scored, not yet selected.
pub fn dln1_demos() -> Vec<Event> {
    let mut info = layer_info(0, P0);
    info.demos = vec![demo_ex(12), demo_ex(5)];
    info.max_demos = 3;
    let mut ev = run_begins(
        "/runs/sentiment-demos",
        "sentiment",
        vec![info],
        4,
        (100, 20, 20),
    );
    let mut shown = vec![demo_ex(12), demo_ex(5)];
    for it in 0..2 {
        let examples: Vec<ForwardExample> = INPUTS
            .iter()
            .enumerate()
            .map(|(i, (x, y))| {
                let mut e = example(i, x, y, if i == 2 { "positive" } else { y }, vec![]);
                e.train_index = Some([31, 44, 90, 60][i] + it);
                e
            })
            .collect();
        ev.push(Event::ForwardDone {
            iteration: it,
            examples,
            accuracy: 0.75,
            loss: 0.25,
        });
        let current = Candidate {
            prompt: P0.into(),
            origin: CandidateOrigin::Current,
            score: None,
            kl: None,
            demos: shown.clone(),
            demo_move: None,
            proposal: None,
        };
        let instruction = Candidate {
            prompt: P1.into(),
            origin: CandidateOrigin::Proposed,
            ..current.clone()
        };
        let (swap_in, add) = if it == 0 { (87, 60) } else { (60, 31) };
        let mut swapped = shown.clone();
        let from = swapped[0].index;
        swapped[0] = demo_ex(swap_in);
        let swap = Candidate {
            origin: CandidateOrigin::Proposed,
            demos: swapped.clone(),
            demo_move: Some(DemoMove::Swap {
                slot: 0,
                from,
                to: swap_in,
            }),
            proposal: None,
            ..current.clone()
        };
        let mut added = shown.clone();
        added.push(demo_ex(add));
        let add = Candidate {
            origin: CandidateOrigin::Proposed,
            demos: added,
            demo_move: Some(DemoMove::Add { example: add }),
            proposal: None,
            ..current.clone()
        };
        let mut cands = vec![current, instruction, swap, add];
        ev.push(Event::CandidatesProposed {
            iteration: it,
            layer: 0,
            candidates: cands.clone(),
            drawn: 1,
            rejected: vec![],
            examples_dropped: 0,
        });
        for (c, s) in cands.iter_mut().zip([-0.61, -0.64, -0.48, -0.57]) {
            c.score = Some(s);
        }
        ev.push(Event::CandidatesScored {
            iteration: it,
            layer: 0,
            candidates: cands,
            winner: 2,
        });
        if it == 1 {
            break;
        }
        ev.push(Event::PromptSelected {
            iteration: it,
            layer: 0,
            prompt: P0.into(),
            previous: P0.into(),
            demos: swapped.clone(),
        });
        ev.push(Event::IterationDone {
            iteration: it,
            train_accuracy: 0.75,
            elbo: None,
            usage: vec![usage(0, Operation::Score, 12, 2400, 0)],
            elapsed_ms: 30_000,
            paused_ms: 0,
        });
        shown = swapped;
    }
    ev
}
