//! Steering a run through the command channel (scripted backend): pin and template replacement
//! change what the next iteration uses and are recorded in the checkpoint and the events; an
//! invalid template is refused and the old one kept; a stop mid-iteration and a resume end
//! exactly as an uninterrupted run.

mod common;

use common::session::*;
use dln::dln::events::{Command, Event, TemplateRole};
use dln::llm::scripted::ScriptedCall;
use dln::run::{read_checkpoint, Session};

const MARKED: &str = r#"
name = "marked"
role = "forward"
stop = ["\n"]
template = '''
MARKER {{ prompt }}
Input: {{ input }}
Answer:
'''
"#;

#[tokio::test]
async fn pin_and_template_commands_change_the_next_iteration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run");
    let backend = scripted();
    let (session, mut seen) = paused_after(tiny_config(1), backend.clone(), &out, |e| {
        matches!(e, Event::IterationDone { iteration: 0, .. })
    })
    .await;
    let calls_before = backend.calls().len();

    let pinned = "PINNED: answer with the letter of the larger number.";
    let c = &session.commands;
    c.send(Command::Pin {
        layer: 0,
        prompt: pinned.into(),
    })
    .expect("pin");
    c.send(Command::SetTemplate {
        layer: 0,
        role: TemplateRole::Forward,
        source: MARKED.into(),
    })
    .expect("template");
    let bad_syntax = MARKED.replace("{{ input }}", "{{ input }");
    c.send(Command::SetTemplate {
        layer: 0,
        role: TemplateRole::Forward,
        source: bad_syntax,
    })
    .expect("bad");
    let unknown_var = MARKED.replace("{{ input }}", "{{ inptu }}");
    c.send(Command::SetTemplate {
        layer: 0,
        role: TemplateRole::Forward,
        source: unknown_var,
    })
    .expect("bad");
    c.send(Command::Resume).expect("resume");
    let (r, events) = run_to_end(session).await;
    r.expect("run succeeds");
    seen.extend(events);

    assert_eq!(
        count(&seen, |e| matches!(e, Event::PromptPinned { layer: 0, .. })),
        1
    );
    assert_eq!(
        count(&seen, |e| matches!(
            e,
            Event::TemplateReplaced {
                layer: 0,
                role: TemplateRole::Forward,
                ..
            }
        )),
        1
    );
    let errors = rejections(&seen);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("syntax"), "{}", errors[0]);
    assert!(errors[1].contains("inptu"), "{}", errors[1]);
    // No update of the pinned layer in iteration 1.
    assert_eq!(
        count(&seen, |e| matches!(
            e,
            Event::PromptSelected { iteration: 1, .. }
        )),
        0
    );
    // Every forward call of iteration 1 uses the pinned prompt in the new template.
    let later: Vec<ScriptedCall> = backend.calls()[calls_before..].to_vec();
    let classify: Vec<&String> = later
        .iter()
        .filter_map(|c| match c {
            ScriptedCall::Classify(r) => Some(&r.context),
            _ => None,
        })
        .collect();
    assert!(!classify.is_empty());
    for ctx in &classify {
        assert!(ctx.starts_with("MARKER "), "{ctx}");
    }
    // Iteration 1 and its dev evaluation use the pinned prompt (the final test uses the
    // best-dev prompt, which may be older).
    assert!(classify
        .iter()
        .any(|c| c.starts_with(&format!("MARKER {pinned}"))));
    let cp = read_checkpoint(&out).expect("read").expect("checkpoint");
    assert_eq!(cp.state.prompts[0], pinned);
    assert_eq!(cp.state.pinned, vec![true]);
    assert_eq!(cp.state.edited_templates[0].len(), 1);
    assert_eq!(cp.state.edited_templates[0][0].0, TemplateRole::Forward);
}

#[tokio::test]
async fn stop_mid_iteration_then_resume_matches_an_uninterrupted_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The uninterrupted run.
    let a = Session::start(
        tiny_config(2),
        options_with(scripted(), &dir.path().join("a")),
    )
    .await
    .expect("start a");
    let (ra, _) = run_to_end(a).await;
    let ra = ra.expect("run a");

    // Stopped in the middle of iteration 1, then resumed.
    let out = dir.path().join("b");
    let (b, _) = paused_after(tiny_config(2), scripted(), &out, |e| {
        matches!(e, Event::ForwardDone { iteration: 1, .. })
    })
    .await;
    b.commands.send(Command::Stop).expect("stop");
    let (rb, _) = run_to_end(b).await;
    let rb = rb.expect("stopped run");
    assert!(rb.stopped_early);
    let cp = read_checkpoint(&out).expect("read").expect("checkpoint");
    assert_eq!(cp.state.iteration, 1);
    assert!(!cp.finished);

    let resumed = Session::resume(&out, options_with(scripted(), &out))
        .await
        .expect("resume");
    let (rc, events) = run_to_end(resumed).await;
    let rc = rc.expect("resumed run");
    assert!(matches!(
        events.first(),
        Some(Event::RunStarted {
            start_iteration: 1,
            ..
        })
    ));
    assert_eq!(rc.best_prompts, ra.best_prompts);
    assert_eq!(rc.dev_accuracy, ra.dev_accuracy);
    assert_eq!(rc.test_accuracy, ra.test_accuracy);
    assert!(!rc.stopped_early);
    assert!(
        rc.usage.cache_hits > 0,
        "the repeated part of iteration 1 comes from the cache"
    );
}
