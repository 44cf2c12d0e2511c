//! Synthesized event sequences and rendering helpers shared by the TUI tests.
#![allow(dead_code)]

use dln::dln::events::*;
use dln::llm::Usage;
use dln::tui::{App, KeyMap, Theme};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

pub fn app() -> App {
    App::new(Theme::mono(), KeyMap::default())
}

pub fn app_with(events: &[Event]) -> App {
    let mut a = app();
    a.apply_all(events);
    a
}

/// Render the whole workbench at `w`×`h` and return the screen as text.
pub fn render(app: &mut App, w: u16, h: u16) -> String {
    app.viewport = (w, h);
    let mut terminal = match Terminal::new(TestBackend::new(w, h)) {
        Ok(t) => t,
        Err(e) => panic!("test terminal: {e}"),
    };
    if let Err(e) = terminal.draw(|f| dln::tui::view::draw(app, f)) {
        panic!("draw: {e}");
    }
    terminal.backend().to_string()
}

/// Render one pane alone into `w`×`h`.
pub fn render_pane(app: &App, pane: dln::tui::Pane, w: u16, h: u16) -> String {
    let mut terminal = match Terminal::new(TestBackend::new(w, h)) {
        Ok(t) => t,
        Err(e) => panic!("test terminal: {e}"),
    };
    if let Err(e) = terminal.draw(|f| {
        let area = f.area();
        dln::tui::view::draw_pane(app, f, pane, area)
    }) {
        panic!("draw: {e}");
    }
    terminal.backend().to_string()
}

fn usage(layer: usize, op: &str, calls: u64, computed: u64, generated: u64) -> UsageEntry {
    UsageEntry {
        layer,
        operation: serde_json::from_value(serde_json::json!(op)).expect("an operation name"),
        usage: Usage {
            tokens_computed: computed,
            tokens_reused: computed / 2,
            tokens_generated: generated,
            calls,
            cache_hits: 0,
            cost: 0.0,
        },
    }
}

fn layer_info(index: usize, prompt: &str) -> LayerInfo {
    LayerInfo {
        index,
        prompt: prompt.to_string(),
        pinned: false,
        trainable: true,
        model: "smollm2-135m".into(),
        templates: Default::default(),
        demos: Vec::new(),
        max_demos: 0,
        demos_pinned: false,
    }
}

pub const P0: &str = "Classify the sentiment of the review as positive or negative.";
pub const P1: &str = "Read the movie review carefully. Decide whether the reviewer liked the film; answer positive if they did and negative if they did not.";
pub const P2: &str = "Read the review. Focus on the words that show the reviewer's feelings about the film, then answer positive or negative.";

fn example(
    i: usize,
    input: &str,
    target: &str,
    prediction: &str,
    hidden: Vec<String>,
) -> ForwardExample {
    ForwardExample {
        index: i,
        input: input.into(),
        target: target.into(),
        hidden,
        hidden_cut: Vec::new(),
        prediction: prediction.into(),
        correct: prediction == target,
        train_index: None,
    }
}

fn candidates(prompts: &[&str], scores: Option<&[f64]>) -> Vec<Candidate> {
    prompts
        .iter()
        .enumerate()
        .map(|(i, p)| Candidate {
            prompt: p.to_string(),
            origin: if i == 0 {
                CandidateOrigin::Current
            } else {
                CandidateOrigin::Proposed
            },
            score: scores.map(|s| s[i]),
            kl: None,
            demos: Vec::new(),
            demo_move: None,
        })
        .collect()
}

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
    let mut ev = vec![
        Event::RunStarted {
            run_dir: "/runs/sentiment-demo".into(),
            task: "sentiment".into(),
            model: "smollm2-135m".into(),
            layers: vec![layer_info(0, P0)],
            iterations: 5,
            start_iteration: 0,
            train_size: 40,
            dev_size: 20,
            test_size: 20,
        },
        Event::StateChanged {
            state: RunState::Running,
        },
    ];
    let winners = [P1, P2];
    let mut current = P0;
    for it in 0..3 {
        ev.push(Event::StageStarted {
            iteration: it,
            stage: Stage::Forward,
            layer: None,
            total: 4,
            usage: None,
        });
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
        ev.push(Event::StageStarted {
            iteration: it,
            stage: Stage::Propose,
            layer: Some(0),
            total: 3,
            usage: None,
        });
        let next = winners.get(it).copied().unwrap_or(P2);
        let props = [
            current,
            next,
            "Answer with one word.",
            "Is the review positive or negative?",
        ];
        ev.push(Event::CandidatesProposed {
            iteration: it,
            layer: 0,
            candidates: candidates(&props, None),
            drawn: 0,
            rejected: vec![],
            examples_dropped: 0,
        });
        ev.push(Event::StageStarted {
            iteration: it,
            stage: Stage::Score,
            layer: Some(0),
            total: 16,
            usage: None,
        });
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
        ev.push(Event::Elbo {
            iteration: it,
            terms: vec![Some(-0.52 + 0.05 * it as f64)],
            total: -0.52 + 0.05 * it as f64,
        });
        ev.push(Event::Evaluated {
            iteration: it,
            split: dln::dln::Split::Dev,
            accuracy: 0.55 + 0.15 * it as f64,
            best_so_far: true,
            answers: Default::default(),
        });
        ev.push(Event::IterationDone {
            iteration: it,
            train_accuracy: acc,
            elbo: Some(-0.52 + 0.05 * it as f64),
            usage: vec![
                usage(0, "forward", 4, 420, 8),
                usage(0, "propose", 3, 900, 150),
                usage(0, "score", 16, 3000, 0),
            ],
            elapsed_ms: 40_000,
        });
        ev.push(Event::CheckpointWritten {
            iteration: it + 1,
            path: "/runs/sentiment-demo/checkpoint.json".into(),
        });
        current = next;
    }
    ev
}

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
    let mut ev = vec![
        Event::RunStarted {
            run_dir: "/runs/arith-demo".into(),
            task: "date-arithmetic".into(),
            model: "smollm2-135m".into(),
            layers: vec![layer_info(0, H_PROMPT), layer_info(1, Y_PROMPT)],
            iterations: 3,
            start_iteration: 0,
            train_size: 24,
            dev_size: 12,
            test_size: 12,
        },
        Event::StateChanged {
            state: RunState::Running,
        },
        Event::StageStarted {
            iteration: 0,
            stage: Stage::Forward,
            layer: None,
            total: 3,
            usage: None,
        },
    ];
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
    ev.push(Event::StageStarted {
        iteration: 0,
        stage: Stage::PosteriorSampling,
        layer: Some(1),
        total: 3,
        usage: None,
    });
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
    ev.push(Event::StageStarted {
        iteration: 0,
        stage: Stage::Sharpening,
        layer: Some(1),
        total: 9,
        usage: None,
    });
    ev.push(Event::Sharpened {
        iteration: 0,
        layer: 1,
        examples: posterior,
    });
    ev.push(Event::StageStarted {
        iteration: 0,
        stage: Stage::Propose,
        layer: Some(1),
        total: 3,
        usage: None,
    });
    let props = [
        Y_PROMPT,
        "Read the reasoning and write only the resulting date as YYYY-MM-DD.",
        "Answer.",
    ];
    ev.push(Event::CandidatesProposed {
        iteration: 0,
        layer: 1,
        candidates: candidates(&props, None),
        drawn: 0,
        rejected: vec![],
        examples_dropped: 0,
    });
    ev.push(Event::StageStarted {
        iteration: 0,
        stage: Stage::Score,
        layer: Some(1),
        total: 9,
        usage: None,
    });
    ev.push(Event::CandidatesScored {
        iteration: 0,
        layer: 1,
        candidates: candidates(&props, Some(&[-1.8, -0.9, -2.7])),
        winner: 1,
    });
    ev.push(Event::StageStarted {
        iteration: 0,
        stage: Stage::Propose,
        layer: Some(0),
        total: 3,
        usage: None,
    });
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
    let mut ev = vec![
        Event::RunStarted {
            run_dir: "/runs/sentiment-demos".into(),
            task: "sentiment".into(),
            model: "smollm2-135m".into(),
            layers: vec![info],
            iterations: 4,
            start_iteration: 0,
            train_size: 100,
            dev_size: 20,
            test_size: 20,
        },
        Event::StateChanged {
            state: RunState::Running,
        },
    ];
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
            ..current.clone()
        };
        let mut added = shown.clone();
        added.push(demo_ex(add));
        let add = Candidate {
            origin: CandidateOrigin::Proposed,
            demos: added,
            demo_move: Some(DemoMove::Add { example: add }),
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
            usage: vec![usage(0, "score", 12, 2400, 0)],
            elapsed_ms: 30_000,
        });
        shown = swapped;
    }
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
    let mut ev = vec![
        Event::RunStarted {
            run_dir: "/runs/navigate-demo".into(),
            task: "navigate".into(),
            model: "smollm2-135m".into(),
            layers: vec![layer_info(0, NAV_H), layer_info(1, NAV_Y)],
            iterations: 5,
            start_iteration: 0,
            train_size: 60,
            dev_size: 40,
            test_size: 100,
        },
        Event::StateChanged {
            state: RunState::Running,
        },
    ];
    for it in 0..2 {
        ev.push(Event::Elbo {
            iteration: it,
            terms: vec![Some(-1.9 + 0.2 * it as f64), Some(-0.8 + 0.1 * it as f64)],
            total: -2.7 + 0.3 * it as f64,
        });
        ev.push(Event::Evaluated {
            iteration: it,
            split: dln::dln::Split::Dev,
            accuracy: 0.55 + 0.05 * it as f64,
            best_so_far: true,
            answers: Default::default(),
        });
        ev.push(Event::IterationDone {
            iteration: it,
            train_accuracy: 0.5 + 0.125 * it as f64,
            elbo: Some(-2.7 + 0.3 * it as f64),
            usage: vec![
                usage(0, "forward", 8, 2400, 900),
                usage(0, "posterior", 8, 3100, 1800),
                usage(0, "score", 32, 12_800, 0),
                usage(1, "forward", 8, 3300, 16),
                usage(1, "score", 16, 6400, 0),
            ],
            elapsed_ms: 95_000,
        });
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
    ev.push(Event::CandidatesProposed {
        iteration: 2,
        layer: 0,
        candidates: candidates(&NAV_CANDIDATES, None),
        drawn: 0,
        rejected: vec![],
        examples_dropped: 0,
    });
    ev.push(Event::CandidatesScored {
        iteration: 2,
        layer: 0,
        candidates: candidates(&NAV_CANDIDATES, Some(&[-1.41, -1.02, -1.37, -50.0])),
        winner: 1,
    });
    ev.push(Event::StageStarted {
        iteration: 2,
        stage: Stage::Score,
        layer: Some(1),
        total: 16,
        usage: None,
    });
    ev
}
