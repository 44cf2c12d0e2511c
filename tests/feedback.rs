//! A person's written feedback on a layer, on the real small model: the note reaches the next
//! proposal request (read from a recording backend under the session), not when
//! `train.person_feedback` is off; `--feedback` sends one headless, and a run killed and resumed
//! keeps it.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::run::{alone_and_killed, mid_iteration, ok, read_json, result, resume, train};
use common::session::{run_to_end, tiny_config, until};
use dln::dln::events::{Command, Event, RunState};
use dln::llm::{Backend, GenerateRequest, Generation, LlmResult, Prompt};
use dln::run::{Session, SessionOptions};

const NOTE: &str = "Say which option is larger before you name its letter.";

/// The embedded test model, recording every generation request it answers.
struct Recording {
    asked: Arc<Mutex<Vec<GenerateRequest>>>,
}

#[async_trait::async_trait]
impl dln::llm::BackendLayer for Recording {
    fn inner(&self) -> &dyn Backend {
        common::embedded()
    }
    async fn generate(&self, r: Vec<GenerateRequest>) -> LlmResult<Vec<Vec<Generation>>> {
        self.asked.lock().expect("lock").extend(r.iter().cloned());
        common::embedded().generate(r).await
    }
}

/// The text of every prompt-proposal request (the chat that opens "New instruction:").
fn proposal_texts(asked: &[GenerateRequest]) -> Vec<String> {
    asked
        .iter()
        .filter_map(|r| match &r.prompt {
            Prompt::Chat {
                messages,
                assistant_prefix,
            } if assistant_prefix.starts_with("New instruction") => {
                Some(messages.iter().map(|m| m.content.clone()).collect())
            }
            _ => None,
        })
        .collect()
}

/// A one-iteration DLN-1 run on the test model, a note written on its layer while it waits
/// paused at the start; the proposal requests it sent and its events.
async fn run_with_a_note(out: &Path, person_feedback: bool) -> (Vec<String>, Vec<Event>) {
    let mut config = tiny_config(1);
    config.set("train.iterations", "1").expect("iterations");
    config
        .set("train.person_feedback", &person_feedback.to_string())
        .expect("switch");
    let asked = Arc::new(Mutex::new(Vec::new()));
    let opts = SessionOptions {
        out_dir: Some(out.to_path_buf()),
        backend: Some(Arc::new(Recording {
            asked: asked.clone(),
        })),
        start_paused: true,
        ..Default::default()
    };
    let mut session = Session::start(config, opts).await.expect("start");
    let mut seen = Vec::new();
    until(&mut session, &mut seen, |e| {
        matches!(
            e,
            Event::StateChanged {
                state: RunState::Paused
            }
        )
    })
    .await;
    for c in [
        Command::AddFeedback {
            layer: 0,
            example: None,
            text: NOTE.into(),
        },
        Command::Resume,
    ] {
        session.commands.send(c).expect("send");
    }
    let (r, events) = run_to_end(session).await;
    r.expect("the run succeeds");
    seen.extend(events);
    let texts = proposal_texts(&asked.lock().expect("lock"));
    (texts, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_reaches_the_next_proposal_request_unless_switched_off() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (shown, events) = run_with_a_note(&tmp.path().join("on"), true).await;
    assert!(!shown.is_empty(), "the run proposed");
    for text in &shown {
        assert!(
            text.contains(&format!(
                "A reviewer's notes on this instruction:\n- {NOTE}"
            )),
            "every proposal request shows the note:\n{text}"
        );
        assert!(text.contains("(wrong, the correct answer is") || text.contains("(right)"));
    }
    assert!(events.iter().any(|e| matches!(
        e,
        Event::FeedbackAdded { layer: 0, text, .. } if text == NOTE
    )));
    // The note is recorded in the run's log and checkpoint all the same with the switch off,
    // and its requests do not show it.
    let (hidden, events) = run_with_a_note(&tmp.path().join("off"), false).await;
    assert!(!hidden.is_empty());
    assert!(hidden
        .iter()
        .all(|t| !t.contains(NOTE) && !t.contains("reviewer")));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::FeedbackAdded { .. })));
    let cp = read_json(&tmp.path().join("off/checkpoint.json"));
    assert_eq!(cp["state"]["feedback"][0][0]["text"], NOTE, "{cp}");
}

const SETS: [&str; 3] = ["train.iterations=2", "train.seed=5", "train.batch_size=2"];

/// `dln train --feedback` on the test model, killed in the middle of its second iteration and
/// resumed: the checkpoint holds the note, the resumed run starts with it in force, and it ends
/// as the run left alone did.
#[test]
fn a_note_given_headless_survives_a_kill_and_resume() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = |out: &Path| {
        let mut c = train(&common::example("tiny.toml"), out, &SETS);
        c.args(["--feedback", &format!("1:{NOTE}")]);
        c
    };
    let (alone, killed) =
        alone_and_killed(tmp.path(), Duration::from_secs(600), run, mid_iteration);
    let lines = common::run::event_lines(&alone);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"feedback_added\"") && l.contains(NOTE)),
        "the note is in the log"
    );
    let cp = read_json(&killed.join("checkpoint.json"));
    assert_eq!(cp["state"]["feedback"][0][0]["text"], NOTE, "{cp}");
    let out = ok(resume(&killed).output().expect("resume"), "resume");
    assert!(out.status.success());
    let events = common::events(&killed);
    let restarted = events
        .iter()
        .rfind(|e| e["event"] == "run_started")
        .expect("a run_started");
    assert_eq!(restarted["layers"][0]["feedback"][0]["text"], NOTE);
    let (a, b) = (result(&alone), result(&killed));
    assert_eq!(a["best_prompts"], b["best_prompts"]);
    assert_eq!(a["final_prompts"], b["final_prompts"]);
}

#[test]
fn a_feedback_option_naming_a_missing_layer_is_one_clear_message() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = train(&common::example("tiny.toml"), &tmp.path().join("r"), &[])
        .args(["--feedback", "2:too high"])
        .output()
        .expect("dln");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--feedback names layer 2, but the network has 1 layer(s)"),
        "{err}"
    );
    assert!(!tmp.path().join("r").exists(), "no run directory is made");
    let out = common::dln()
        .args(["train", "x.toml", "--feedback", "first:note"])
        .output()
        .expect("dln");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`first` is not a layer number"), "{err}");
}
