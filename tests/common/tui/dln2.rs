//! DLN-2 runs in progress, as event sequences: date arithmetic in its first iteration and
//! navigate in its third, with the hidden layer's posterior.

use dln::dln::events::*;

use super::{candidates, example, iteration_end, layer_info, proposed, run_begins, started, usage};

const H_PROMPT: &str =
    "Think step by step about what the question asks, then write your reasoning.";
const Y_PROMPT: &str = "Use the reasoning above to answer with the final answer only.";

fn sample(text: &str, origin: SampleOrigin, ll: f64, lp: f64, w: f64) -> HiddenSample {
    HiddenSample {
        text: text.into(),
        origin,
        log_likelihood: Some(ll),
        log_prior: Some(lp),
        log_weight: Some(ll + lp),
        weight: Some(w),
        excluded: false,
        cut: false,
    }
}

/// A DLN-2 run in its first iteration, posterior sampled and sharpened for the hidden layer,
/// candidates proposed and scored for layer 2.
pub fn dln2_hidden() -> Vec<Event> {
    let layers = vec![layer_info(0, H_PROMPT), layer_info(1, Y_PROMPT)];
    let mut ev = run_begins(
        "/runs/arith-demo",
        "date-arithmetic",
        layers,
        3,
        (24, 12, 12),
    );
    ev.push(started(0, Stage::Forward, None, 3));
    let qs = [
        (
            "Today is 2020-03-01. What is the date tomorrow?",
            "2020-03-02",
            "March has 31 days; tomorrow is the 2nd.",
            "2020-03-02",
        ),
        (
            "Today is 2021-12-31. What is the date tomorrow?",
            "2022-01-01",
            "December ends; the next day is in 2021.",
            "2021-12-32",
        ),
        (
            "Today is 2019-02-28. What is the date in two days?",
            "2019-03-02",
            "2019 is not a leap year, so after the 28th comes March 1st.",
            "2019-03-01",
        ),
    ];
    let examples: Vec<ForwardExample> = qs
        .iter()
        .enumerate()
        .map(|(i, (x, y, h, p))| example(i, x, y, p, vec![h.to_string()]))
        .collect();
    ev.push(Event::ForwardDone {
        iteration: 0,
        examples,
        accuracy: 1.0 / 3.0,
        loss: 2.0 / 3.0,
    });
    ev.push(started(0, Stage::PosteriorSampling, Some(1), 3));
    let posterior: Vec<PosteriorExample> = qs
        .iter()
        .enumerate()
        .map(|(i, (x, y, h, _))| PosteriorExample {
            index: i,
            input: x.to_string(),
            target: y.to_string(),
            hidden: h.to_string(),
            correct: i == 0,
            samples: vec![
                sample(h, SampleOrigin::Forward, -2.10, -8.0, 0.12),
                sample(
                    "The year ends on the 31st, so tomorrow is January 1st of the next year.",
                    SampleOrigin::Posterior,
                    -0.35,
                    -11.2,
                    0.71,
                ),
                sample(
                    "Count one day forward from the given date.",
                    SampleOrigin::Posterior,
                    -1.60,
                    -9.4,
                    0.17,
                ),
            ],
            best: Some(1),
            entropy: Some([0.41, 0.62, 0.88][i]),
        })
        .collect();
    let mut unsharpened = posterior.clone();
    for ex in &mut unsharpened {
        ex.best = None;
        ex.entropy = None;
        for s in &mut ex.samples {
            s.weight = None;
            s.log_weight = None;
        }
    }
    ev.push(Event::PosteriorSampled {
        iteration: 0,
        layer: 1,
        examples: unsharpened,
    });
    ev.push(started(0, Stage::Sharpening, Some(1), 9));
    ev.push(Event::Sharpened {
        iteration: 0,
        layer: 1,
        examples: posterior,
    });
    ev.push(started(0, Stage::Propose, Some(1), 3));
    let props = [
        Y_PROMPT,
        "Read the reasoning and write only the resulting date as YYYY-MM-DD.",
        "Answer.",
    ];
    ev.push(proposed(0, 1, candidates(&props, None)));
    ev.push(started(0, Stage::Score, Some(1), 9));
    ev.push(Event::CandidatesScored {
        iteration: 0,
        layer: 1,
        candidates: candidates(&props, Some(&[-1.8, -0.9, -2.7])),
        winner: 1,
    });
    ev.push(started(0, Stage::Propose, Some(0), 3));
    ev
}

/// The beginning every navigate input shares (BIG-Bench Hard's navigate task).
pub const NAV_PREFIX: &str =
    "If you follow these instructions, do you return to the starting point? ";

const NAV: [(&str, &str, &str); 4] = [
    (
        "Always face forward. Take 1 step backward. Take 9 steps left. Take 2 steps backward. Take 6 steps forward. Take 4 steps forward. Take 4 steps backward. Take 3 steps right.",
        "no",
        "Start at (0, 0). Backward 1 gives (0, -1); left 9 gives (-9, -1); backward 2 gives (-9, -3); forward 6 and 4 give (-9, 7); backward 4 gives (-9, 3); right 3 gives (-6, 3). Not the start.",
    ),
    (
        "Take 8 steps. Take 1 step. Turn left. Turn left. Take 9 steps.",
        "yes",
        "",
    ),
    (
        "Always face forward. Take 6 steps left. Take 6 steps right.",
        "yes",
        "Six steps left and six steps right cancel out, so we are back at the start.",
    ),
    (
        "Turn around. Take 4 steps. Turn right. Take 1 step. Turn around. Take 2 steps.",
        "no",
        "After turning around we face south: 4 steps south, then west 1, then east 2. Not the start.",
    ),
];

const NAV_H: &str = "Follow the instructions one at a time and keep track of your position as coordinates, writing each step down.";
const NAV_Y: &str =
    "Given the reasoning above, answer yes if you end where you started and no otherwise.";
const NAV_CANDIDATES: [&str; 4] = [
    NAV_H,
    "Follow the instructions one at a time. Start at (0, 0) facing north; after every instruction write the new position and the direction you face. At the end, compare the final position with (0, 0) and say whether they are equal.",
    "Follow the instructions one at a time, but ignore the turns when the instructions say to always face forward; sum the steps along each axis separately and check whether both sums are zero.",
    "Count the steps.",
];

/// A DLN-2 run on navigate in its third iteration: two iterations done (charts, usage for
/// both layers), the hidden layer's posterior sampled and sharpened (one example's forward
/// hidden text is empty, one posterior sample too), and the hidden layer's long candidates
/// scored.
pub fn dln2_navigate() -> Vec<Event> {
    let layers = vec![layer_info(0, NAV_H), layer_info(1, NAV_Y)];
    let mut ev = run_begins("/runs/navigate-demo", "navigate", layers, 5, (60, 40, 100));
    for it in 0..2 {
        let terms = [-1.9 + 0.2 * it as f64, -0.8 + 0.1 * it as f64];
        ev.extend(iteration_end(
            it,
            (&terms, -2.7 + 0.3 * it as f64),
            0.55 + 0.05 * it as f64,
            0.5 + 0.125 * it as f64,
            vec![
                usage(0, Operation::Forward, 8, 2400, 900),
                usage(0, Operation::PosteriorSampling, 8, 3100, 1800),
                usage(0, Operation::Score, 32, 12_800, 0),
                usage(1, Operation::Forward, 8, 3300, 16),
                usage(1, Operation::Score, 16, 6400, 0),
            ],
            95_000,
        ));
    }
    let examples: Vec<ForwardExample> = NAV
        .iter()
        .enumerate()
        .map(|(i, (x, y, h))| {
            let p = if i == 1 { "no" } else { y };
            example(i, &format!("{NAV_PREFIX}{x}"), y, p, vec![h.to_string()])
        })
        .collect();
    ev.push(Event::ForwardDone {
        iteration: 2,
        examples,
        accuracy: 0.75,
        loss: 0.25,
    });
    let posterior: Vec<PosteriorExample> = NAV
        .iter()
        .enumerate()
        .map(|(i, (x, y, h))| {
            let mut samples = vec![
                sample(h, SampleOrigin::Forward, -1.3, -12.1, 0.3),
                sample(
                    "Track the position: every step forward adds one, every step back takes one away; the total is zero, so we return.",
                    SampleOrigin::Posterior,
                    -0.42,
                    -14.6,
                    0.64,
                ),
                sample(
                    "We end up somewhere else.",
                    SampleOrigin::Posterior,
                    -2.3,
                    -7.9,
                    0.06,
                ),
            ];
            if i == 1 {
                // An empty forward text and an empty sample: nothing to score, -50 by rule.
                samples[0] = sample("", SampleOrigin::Forward, -1.9, -50.0, 0.01);
                samples[2] = sample("", SampleOrigin::Posterior, -2.0, -50.0, 0.01);
                samples[1].weight = Some(0.98);
            }
            PosteriorExample {
                index: i,
                input: format!("{NAV_PREFIX}{x}"),
                target: y.to_string(),
                hidden: h.to_string(),
                correct: i != 1,
                samples,
                best: Some(1),
                entropy: Some([0.81, 0.35, 0.62, 0.9][i]),
            }
        })
        .collect();
    ev.push(Event::Sharpened {
        iteration: 2,
        layer: 1,
        examples: posterior,
    });
    ev.push(proposed(2, 0, candidates(&NAV_CANDIDATES, None)));
    ev.push(Event::CandidatesScored {
        iteration: 2,
        layer: 0,
        candidates: candidates(&NAV_CANDIDATES, Some(&[-1.41, -1.02, -1.37, -50.0])),
        winner: 1,
    });
    ev.push(started(2, Stage::Score, Some(1), 16));
    ev
}
