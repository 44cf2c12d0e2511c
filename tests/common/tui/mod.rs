//! The TUI tests' kit: an App as the workbench starts it, its screen and panes drawn as text,
//! keys handed to it, and synthesized event sequences of runs in progress (DLN-1 in [`dln1`],
//! DLN-2 in [`dln2`], a DLN-2 run's prompt lineage in [`lineage`]) to apply to it — no engine
//! and no terminal.
#![allow(dead_code)]

mod dln1;
mod dln2;
mod lineage;

// Not every TUI test uses both kinds of run.
#[allow(unused_imports)]
pub use dln1::*;
#[allow(unused_imports)]
pub use dln2::*;
#[allow(unused_imports)]
pub use lineage::*;

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use dln::dln::events::*;
use dln::llm::Usage;
use dln::tui::{Action, App, KeyMap, Pane, Theme};
use ratatui::backend::TestBackend;
use ratatui::{Frame, Terminal};

/// The App as the workbench starts it, in the monochrome theme with the default keys.
pub fn app() -> App {
    App::new(Theme::mono(), KeyMap::default())
}

/// [`app`] after `events`.
pub fn app_with(events: &[Event]) -> App {
    let mut a = app();
    a.apply_all(events);
    a
}

/// [`app_with`] `events`, focused on `pane`, after `actions` (a test's starting point).
pub fn app_at(events: &[Event], pane: Pane, actions: &[Action]) -> App {
    let mut a = app_with(events);
    a.focus = pane;
    for action in actions {
        a.handle_action(*action);
    }
    a
}

/// `events` and then a person's edits of the posterior of `example` at `layer`: their own
/// hidden `text` added, and sample `excluded` left out.
pub fn person_edits(
    mut events: Vec<Event>,
    layer: usize,
    example: usize,
    text: &str,
    excluded: usize,
) -> Vec<Event> {
    events.push(Event::HiddenAdded {
        layer,
        example,
        text: text.into(),
    });
    events.push(Event::SampleExcluded {
        layer,
        example,
        sample: excluded,
    });
    events
}

/// What `draw` draws into a `w`×`h` test terminal, as text.
pub fn screen(w: u16, h: u16, draw: impl FnOnce(&mut Frame)) -> String {
    let mut terminal = match Terminal::new(TestBackend::new(w, h)) {
        Ok(t) => t,
        Err(e) => panic!("test terminal: {e}"),
    };
    if let Err(e) = terminal.draw(draw) {
        panic!("draw: {e}");
    }
    terminal.backend().to_string()
}

/// Render the whole workbench at `w`×`h` and return the screen as text.
pub fn render(app: &mut App, w: u16, h: u16) -> String {
    app.viewport = (w, h);
    screen(w, h, |f| dln::tui::view::draw(app, f))
}

/// Render one pane alone into `w`×`h`.
pub fn render_pane(app: &App, pane: dln::tui::Pane, w: u16, h: u16) -> String {
    screen(w, h, |f| {
        let area = f.area();
        dln::tui::view::draw_pane(app, f, pane, area)
    })
}

/// The key `code` with no modifier.
pub fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// The character key `c` with no modifier.
pub fn char_key(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

/// Ctrl+`c`.
pub fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

/// A key with no modifier as the terminal's event stream yields it (the live loop's input).
pub fn term_key(code: KeyCode) -> std::io::Result<TermEvent> {
    Ok(TermEvent::Key(key(code)))
}

/// Hands the app the key `code` with no modifier; the commands it sends the engine.
pub fn press(app: &mut App, code: KeyCode) -> Vec<Command> {
    app.handle_key(key(code))
}

/// [`press`] for a character key.
pub fn press_char(app: &mut App, c: char) -> Vec<Command> {
    press(app, KeyCode::Char(c))
}

/// Types `text` into the app, a character key at a time.
pub fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        press_char(app, c);
    }
}

// The pieces the event sequences are built of.

fn usage(
    layer: usize,
    operation: Operation,
    calls: u64,
    computed: u64,
    generated: u64,
) -> UsageEntry {
    UsageEntry {
        layer,
        operation,
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
        model: super::TEST_MODEL.into(),
        templates: Default::default(),
        demos: Vec::new(),
        max_demos: 0,
        demos_pinned: false,
        feedback: Vec::new(),
    }
}

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
            proposal: None,
        })
        .collect()
}

/// The end of iteration `it`: its ELBO (each layer's term and the total), its dev accuracy
/// (always the best so far), then the iteration done with its train accuracy, the usage of its
/// calls and its time.
fn iteration_end(
    it: usize,
    (terms, total): (&[f64], f64),
    dev: f64,
    train_accuracy: f64,
    usage: Vec<UsageEntry>,
    elapsed_ms: u64,
) -> [Event; 3] {
    [
        Event::Elbo {
            iteration: it,
            terms: terms.iter().copied().map(Some).collect(),
            total,
        },
        Event::Evaluated {
            iteration: it,
            split: dln::dln::Split::Dev,
            accuracy: dev,
            best_so_far: true,
            answers: Default::default(),
        },
        Event::IterationDone {
            iteration: it,
            train_accuracy,
            elbo: Some(total),
            usage,
            elapsed_ms,
            paused_ms: 0,
        },
    ]
}

/// A stage of iteration `it` begins (`layer` None: the whole network), with `total` requests.
fn started(it: usize, stage: Stage, layer: Option<usize>, total: usize) -> Event {
    Event::StageStarted {
        iteration: it,
        stage,
        layer,
        total,
        usage: None,
    }
}

/// Candidates proposed for `layer` in iteration `it`, none drawn from memory, none rejected.
fn proposed(it: usize, layer: usize, candidates: Vec<Candidate>) -> Event {
    Event::CandidatesProposed {
        iteration: it,
        layer,
        candidates,
        drawn: 0,
        rejected: vec![],
        examples_dropped: 0,
    }
}

/// How a run begins: started in `dir` on the test model with `layers`, for `iterations`
/// iterations over (train, dev, test) examples, then running.
fn run_begins(
    dir: &str,
    task: &str,
    layers: Vec<LayerInfo>,
    iterations: usize,
    (train_size, dev_size, test_size): (usize, usize, usize),
) -> Vec<Event> {
    vec![
        Event::RunStarted {
            run_dir: dir.into(),
            task: task.into(),
            model: super::TEST_MODEL.into(),
            layers,
            iterations,
            start_iteration: 0,
            train_size,
            dev_size,
            test_size,
        },
        Event::StateChanged {
            state: RunState::Running,
        },
    ]
}
