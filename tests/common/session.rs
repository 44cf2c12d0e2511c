//! Sessions in process: tiny configs over the shipped example data, a scripted backend whose
//! answers look like a small model's, and a driver that runs a session to its end or steps it.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dln::config::Config;
use dln::dln::events::{Candidate, Command, Event, RunState};
use dln::llm::scripted::{unit_hash, ScriptedBackend};
use dln::llm::Prompt;
use dln::run::{RunSummary, Session, SessionOptions};

/// A config of `layers` layers over `examples/data/tiny.json`, small enough for any backend.
pub fn tiny_config_text(layers: usize) -> String {
    let data = super::example("data/tiny.json");
    let mut s = format!(
        r#"
[task]
name = "tiny"
description = "Answer the question with the letter of the correct option."

[data]
path = "{}"
input_field = "question"
target_field = "answer"
max_dev = 4
max_test = 4

[model]
context_size = 1024

[train]
iterations = 2
batch_size = 3
num_candidates = 3
num_hidden_samples = 2
val_freq = 1
seed = 7
"#,
        data.display()
    );
    for l in 0..layers {
        let hidden = l + 1 < layers;
        s.push_str("\n[[layers]]\n");
        if hidden {
            s.push_str("prompt = \"Compare the two options.\"\nforward_max_tokens = 12\n");
        } else {
            s.push_str("forward_max_tokens = 4\n");
        }
        s.push_str("backward_max_tokens = 24\n");
    }
    s
}

pub fn tiny_config(layers: usize) -> Config {
    Config::parse(&tiny_config_text(layers), Path::new("tiny.toml")).expect("tiny config parses")
}

/// Scripted answers shaped like a model's: proposals and thoughts in chat, short hidden texts in
/// raw completion, hash-based scores.
pub fn scripted() -> ScriptedBackend {
    ScriptedBackend::new().on_generate(|r, s| match &r.prompt {
        Prompt::Chat {
            assistant_prefix,
            messages,
        } if assistant_prefix.contains("instruction") => {
            let key = format!("{messages:?}{}{s}", r.seed);
            format!(
                " Read both options and pick the larger one, variant {}.",
                (unit_hash(&key) * 100.0) as u32
            )
        }
        Prompt::Chat { messages, .. } => {
            let key = format!("{messages:?}{}{s}", r.seed);
            format!(
                " The first option is compared with the second, case {}.",
                (unit_hash(&key) * 100.0) as u32
            )
        }
        Prompt::Raw { text } => format!(
            "I look at option A and B, note {}",
            (unit_hash(text) * 10.0) as u32
        ),
    })
}

pub fn options_with(backend: ScriptedBackend, out: &Path) -> SessionOptions {
    SessionOptions {
        out_dir: Some(out.to_path_buf()),
        backend: Some(Arc::new(backend)),
        ..Default::default()
    }
}

/// Runs a session to its end, collecting its live events.
/// Starts a run of `config` on `backend` in `out`, drives it to its end (which must succeed)
/// and returns its events.
pub async fn run_succeeding(config: Config, backend: ScriptedBackend, out: &Path) -> Vec<Event> {
    let session = Session::start(config, options_with(backend, out))
        .await
        .expect("start");
    let (r, events) = run_to_end(session).await;
    r.expect("the run succeeds");
    events
}

pub async fn run_to_end(mut session: Session) -> (Result<RunSummary, String>, Vec<Event>) {
    let mut events = Vec::new();
    let task = &mut session.task;
    let result = loop {
        tokio::select! {
            Some(e) = session.events.recv() => events.push(e),
            r = &mut *task => break r,
        }
    };
    while let Ok(e) = session.events.try_recv() {
        events.push(e);
    }
    let result = match result {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("task panicked: {e}")),
    };
    (result, events)
}

pub fn count(events: &[Event], pred: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| pred(e)).count()
}

/// The session's next event, failing the test after 30 s of silence.
pub async fn next_event(session: &mut Session) -> Event {
    tokio::time::timeout(Duration::from_secs(30), session.events.recv())
        .await
        .expect("an event within 30 s")
        .expect("event stream open")
}

pub fn paused(e: &Event) -> bool {
    matches!(
        e,
        Event::StateChanged {
            state: RunState::Paused
        }
    )
}

/// Starts a session paused and reads its events up to the pause (the stepping tests' start).
pub async fn start_paused(
    config: Config,
    backend: ScriptedBackend,
    out: &Path,
) -> (Session, Vec<Event>) {
    let mut opts = options_with(backend, out);
    opts.start_paused = true;
    let mut session = Session::start(config, opts).await.expect("start");
    let mut seen = Vec::new();
    until(&mut session, &mut seen, paused).await;
    (session, seen)
}

/// [`start_paused`], then [`step_until`] a stage emitted a matching event: a paused session at
/// the point a test acts on it, with the events so far.
pub async fn paused_after(
    config: Config,
    backend: ScriptedBackend,
    out: &Path,
    pred: impl Fn(&Event) -> bool,
) -> (Session, Vec<Event>) {
    let (mut session, mut seen) = start_paused(config, backend, out).await;
    step_until(&mut session, &mut seen, pred).await;
    (session, seen)
}

/// Reads events until one matches, keeping them all.
pub async fn until(session: &mut Session, seen: &mut Vec<Event>, pred: impl Fn(&Event) -> bool) {
    loop {
        let e = next_event(session).await;
        let hit = pred(&e);
        seen.push(e);
        if hit {
            return;
        }
    }
}

/// Steps a paused session stage by stage until a stage emitted a matching event (and paused).
pub async fn step_until(
    session: &mut Session,
    seen: &mut Vec<Event>,
    pred: impl Fn(&Event) -> bool,
) {
    loop {
        session.commands.send(Command::Step).expect("step");
        let at = seen.len();
        // Skip the `Running` the step itself announces, then read to the pause.
        until(session, seen, |e| {
            matches!(
                e,
                Event::StateChanged {
                    state: RunState::Running
                }
            )
        })
        .await;
        until(session, seen, paused).await;
        if seen[at..].iter().any(&pred) {
            return;
        }
    }
}

/// The reasons the run gave for the commands it refused, in order.
pub fn rejections(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::CommandRejected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// Every scoring of candidates: its iteration, layer, candidates (with their scores) and winner.
pub fn scored(events: &[Event]) -> Vec<(usize, usize, Vec<Candidate>, usize)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::CandidatesScored {
                iteration,
                layer,
                candidates,
                winner,
            } => Some((*iteration, *layer, candidates.clone(), *winner)),
            _ => None,
        })
        .collect()
}
