//! A person's hidden text after sharpening (DLN-2, scripted backend): it joins the posterior
//! samples, is scored exactly like them (likelihood under the layer above + prior under the
//! layer below), the example's weights are re-normalized and `h*` re-chosen before the prompt
//! updates that use them; a stop and resume replays it at the same point; once the updates that
//! read the weights are done, the edit is refused because the batch has moved on.
//!
//! The scripted model answers every question wrongly (it favours the smaller number, 0.9 vs 0.1)
//! unless the person's text is in the context, and gives every token of a hidden text −1.0
//! (−0.5 for the person's text), so every expected number is known in closed form.

mod common;

use common::session::*;
use dln::config::Config;
use dln::dln::events::{Command, Event, PosteriorExample, SampleOrigin};
use dln::llm::scripted::{ScriptedBackend, ScriptedCall};
use dln::llm::Prompt;
use dln::run::{read_checkpoint, RunSummary, Session};

const HUMAN: &str = "HUMAN: 76 is more than 48, so the larger number is option (A).";

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

/// The numbers of the last "(A) n (B) m" in a context.
fn options(ctx: &str) -> Option<(u64, u64)> {
    let re = regex::Regex::new(r"\(A\)\s*(\d+)\s*\(B\)\s*(\d+)").ok()?;
    let c = re.captures_iter(ctx).last()?;
    Some((c[1].parse().ok()?, c[2].parse().ok()?))
}

fn backend() -> ScriptedBackend {
    scripted()
        .on_classify(|r| {
            let class_of = |letter: &str| {
                r.classes
                    .iter()
                    .position(|v| {
                        v.iter()
                            .any(|t| t.trim().trim_matches(|c| c == '(' || c == ')') == letter)
                    })
                    .unwrap_or(0)
            };
            let (a, b) = options(&r.context).unwrap_or((1, 0));
            let (larger, smaller) = if a > b {
                (class_of("A"), class_of("B"))
            } else {
                (class_of("B"), class_of("A"))
            };
            let favoured = if r.context.contains("HUMAN") {
                larger
            } else {
                smaller
            };
            let mut m = vec![0.0; r.classes.len()];
            m[favoured] = 9f64.ln();
            m
        })
        .on_score(|r| {
            let n = r.target.split_whitespace().count().max(1);
            vec![
                if r.target.contains("HUMAN") {
                    -0.5
                } else {
                    -1.0
                };
                n
            ]
        })
}

fn config(iterations: usize) -> Config {
    let mut c = tiny_config(2);
    c.set("train.iterations", &iterations.to_string())
        .expect("iterations");
    // The whole batch is shown to the proposer, so the person's text is seen as h*.
    c.set("train.held_out_ranking", "false").expect("held out");
    c
}

async fn paused_session(out: &std::path::Path, iterations: usize) -> (Session, Vec<Event>) {
    start_paused(config(iterations), backend(), out).await
}

fn sharpened_0(e: &Event) -> bool {
    matches!(
        e,
        Event::Sharpened {
            iteration: 0,
            layer: 1,
            ..
        }
    )
}

fn sharpenings(events: &[Event]) -> Vec<Vec<PosteriorExample>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Sharpened {
                iteration: 0,
                layer: 1,
                examples,
            } => Some(examples.clone()),
            _ => None,
        })
        .collect()
}

/// Runs to a pause after iteration 0's sharpening and adds the person's text to example 0.
async fn add_after_sharpening(out: &std::path::Path, iterations: usize) -> (Session, Vec<Event>) {
    let (mut s, mut seen) = paused_session(out, iterations).await;
    step_until(&mut s, &mut seen, sharpened_0).await;
    s.commands
        .send(Command::AddHidden {
            layer: 1,
            example: 0,
            text: HUMAN.into(),
        })
        .expect("add hidden");
    until(&mut s, &mut seen, |e| {
        matches!(e, Event::HiddenAdded { .. })
    })
    .await;
    (s, seen)
}

async fn finish(s: Session, mut seen: Vec<Event>) -> (RunSummary, Vec<Event>) {
    let (r, events) = run_to_end(s).await;
    seen.extend(events);
    (r.expect("run succeeds"), seen)
}

#[tokio::test]
async fn human_hidden_after_sharpening_is_scored_weighted_and_used_by_both_updates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, seen) = add_after_sharpening(&dir.path().join("run"), 1).await;
    s.commands.send(Command::Resume).expect("resume");
    let (_, events) = finish(s, seen).await;

    let sh = sharpenings(&events);
    assert_eq!(sh.len(), 2, "the sharpening, then the re-sharpening");
    let (before, after) = (&sh[0], &sh[1]);
    let b = before.len();
    let ln01 = 0.1f64.ln();
    let ln09 = 0.9f64.ln();
    // Every model sample: log p(y | ...) = ln 0.1, prior = mean token log-prob −1.0.
    for ex in before {
        for smp in &ex.samples {
            assert!(close(smp.log_likelihood.expect("ll"), ln01), "{smp:?}");
            assert!(close(smp.log_prior.expect("prior"), -1.0), "{smp:?}");
        }
    }
    // Examples 1.. are untouched; example 0 gained the person's sample, scored like the others.
    assert_eq!(&after[1..], &before[1..]);
    let ex = &after[0];
    let n = ex.samples.len();
    assert_eq!(n, before[0].samples.len() + 1);
    assert_eq!(
        &ex.samples[..n - 1]
            .iter()
            .map(|s| s.log_weight)
            .collect::<Vec<_>>(),
        &before[0]
            .samples
            .iter()
            .map(|s| s.log_weight)
            .collect::<Vec<_>>()
    );
    let h = &ex.samples[n - 1];
    assert_eq!(h.origin, SampleOrigin::Human);
    assert_eq!(h.text, HUMAN);
    assert!(close(h.log_likelihood.expect("ll"), ln09));
    assert!(close(h.log_prior.expect("prior"), -0.5));
    assert!(close(h.log_weight.expect("lw"), ln09 - 0.5));
    // w = softmax(w̃): the person's sample against n−1 samples of w̃ = ln 0.1 − 1.
    let e_h = (ln09 - 0.5f64).exp();
    let e_o = (ln01 - 1.0f64).exp();
    let z = e_h + (n - 1) as f64 * e_o;
    let w_h = e_h / z;
    assert!(
        close(h.weight.expect("w"), w_h),
        "{} vs {w_h}",
        h.weight.unwrap_or_default()
    );
    for smp in &ex.samples[..n - 1] {
        assert!(close(smp.weight.expect("w"), e_o / z));
    }
    assert_eq!(ex.best, Some(n - 1), "the person's text is h*");
    let ent = -(w_h * w_h.ln() + (n - 1) as f64 * (e_o / z) * (e_o / z).ln()) / (n as f64).ln();
    assert!(close(ex.entropy.expect("entropy"), ent));

    // Order: added, re-sharpened, then the π2 update, which uses the new weights.
    let pos = |pred: &dyn Fn(&Event) -> bool| events.iter().position(pred).expect("event");
    let added = pos(&|e| {
        matches!(
            e,
            Event::HiddenAdded {
                layer: 1,
                example: 0,
                ..
            }
        )
    });
    let resharp = events.iter().rposition(sharpened_0).expect("re-sharpened");
    let scored2 = pos(&|e| {
        matches!(
            e,
            Event::CandidatesScored {
                iteration: 0,
                layer: 1,
                ..
            }
        )
    });
    assert!(added < resharp && resharp < scored2);

    // ELBO2 = (1/b) Σ_i Σ_s w_is log p(y_i | ...): only example 0 differs from ln 0.1.
    let elbo2 = (w_h * ln09 + (1.0 - w_h) * ln01 + (b - 1) as f64 * ln01) / b as f64;
    // ELBO1 = (1/b) Σ_i Σ_s w_is · mean-token log p(h̃_is | F_h(x_i; π̃1)).
    // The scripted per-token log-probs: −0.5 for the person's text (example 0), −1 elsewhere.
    let (lp_h, lp_other) = (-0.5, -1.0);
    let elbo1 = (w_h * lp_h + (1.0 - w_h) * lp_other + (b - 1) as f64 * lp_other) / b as f64;
    for e in &events {
        if let Event::CandidatesScored {
            iteration: 0,
            layer,
            candidates,
            ..
        } = e
        {
            let want = if *layer == 1 { elbo2 } else { elbo1 };
            for c in candidates {
                assert!(
                    close(c.score.expect("score"), want),
                    "layer {layer}: {c:?} vs {want}"
                );
            }
        }
    }
    let (terms, total) = events
        .iter()
        .find_map(|e| match e {
            Event::Elbo {
                iteration: 0,
                terms,
                total,
            } => Some((terms.clone(), *total)),
            _ => None,
        })
        .expect("an ELBO event");
    assert!(close(terms[0].expect("ELBO1"), elbo1));
    assert!(close(terms[1].expect("ELBO2"), elbo2));
    assert!(close(total, elbo1 + elbo2));
}

#[tokio::test]
async fn the_pi1_proposer_is_shown_the_human_text_as_the_correct_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run");
    let b = backend();
    let (s, seen) = paused_after(config(1), b.clone(), &out, sharpened_0).await;
    let calls_before = b.calls().len();
    s.commands
        .send(Command::AddHidden {
            layer: 1,
            example: 0,
            text: HUMAN.into(),
        })
        .expect("add");
    s.commands.send(Command::Resume).expect("resume");
    finish(s, seen).await;
    let shown: Vec<String> = b.calls()[calls_before..]
        .iter()
        .filter_map(|c| match c {
            ScriptedCall::Generate(r) => match &r.prompt {
                Prompt::Chat { messages, .. } => Some(format!("{messages:?}")),
                Prompt::Raw { .. } => None,
            },
            _ => None,
        })
        .filter(|m| m.contains("the correct answer is HUMAN"))
        .collect();
    assert!(
        !shown.is_empty(),
        "no proposal showed the person's text: {:#?}",
        &b.calls()[calls_before..]
    );
}

#[tokio::test]
async fn a_stop_after_the_edit_and_a_resume_reproduce_the_uninterrupted_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Uninterrupted.
    let (s, seen) = add_after_sharpening(&dir.path().join("a"), 2).await;
    s.commands.send(Command::Resume).expect("resume");
    let (ra, ea) = finish(s, seen).await;

    // Stopped right after the edit, before the re-sharpening ran.
    let out = dir.path().join("b");
    let (s, seen) = add_after_sharpening(&out, 2).await;
    s.commands.send(Command::Stop).expect("stop");
    let (rb, _) = finish(s, seen).await;
    assert!(rb.stopped_early);
    let cp = read_checkpoint(&out).expect("read").expect("checkpoint");
    assert_eq!(cp.state.iteration, 0);
    assert_eq!(cp.state.hidden_edits.len(), 1);
    // Forward, posterior sampling and sharpening were done when the text came.
    assert_eq!(cp.state.hidden_edits[0].after_stages, 3);
    assert_eq!(
        cp.state.hidden_edits[0].command,
        Command::AddHidden {
            layer: 1,
            example: 0,
            text: HUMAN.into()
        }
    );

    let resumed = Session::resume(&out, options_with(backend(), &out))
        .await
        .expect("resume");
    let (rc, ec) = run_to_end(resumed).await;
    let rc = rc.expect("resumed run");
    assert_eq!(sharpenings(&ec), sharpenings(&ea));
    let elbo = |ev: &[Event]| -> Vec<f64> {
        ev.iter()
            .filter_map(|e| match e {
                Event::Elbo { total, .. } => Some(*total),
                _ => None,
            })
            .collect()
    };
    assert_eq!(elbo(&ec), elbo(&ea));
    assert_eq!(rc.best_prompts, ra.best_prompts);
    assert_eq!(rc.dev_accuracy, ra.dev_accuracy);
    assert_eq!(rc.test_accuracy, ra.test_accuracy);
    let cp = read_checkpoint(&out).expect("read").expect("checkpoint");
    assert!(cp.finished && cp.state.hidden_edits.is_empty());
}

fn error_after(seen: &[Event], at: usize) -> Option<String> {
    rejections(&seen[at..]).into_iter().next()
}

#[tokio::test]
async fn late_edits_count_where_they_still_can_and_are_refused_once_the_batch_moved_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut s, mut seen) = paused_session(&dir.path().join("run"), 1).await;
    step_until(&mut s, &mut seen, sharpened_0).await;
    let before = sharpenings(&seen).last().expect("sharpened")[2].clone();

    // Excluding a sample after sharpening re-normalizes that example at once.
    s.commands
        .send(Command::ExcludeSample {
            layer: 1,
            example: 2,
            sample: 0,
        })
        .expect("exclude");
    until(&mut s, &mut seen, sharpened_0).await;
    let sh = sharpenings(&seen);
    let ex = &sh[sh.len() - 1][2];
    let live = ex.samples.len() - 1;
    assert_eq!(ex.samples[0].weight, Some(0.0));
    for smp in &ex.samples[1..] {
        // Every other sample has the same w̃: uniform over the live ones.
        assert!(close(smp.weight.expect("w"), 1.0 / live as f64));
    }

    // Including it again undoes the exclusion: the example's weights are as they were.
    s.commands
        .send(Command::IncludeSample {
            layer: 1,
            example: 2,
            sample: 0,
        })
        .expect("include");
    until(&mut s, &mut seen, sharpened_0).await;
    assert!(seen.iter().any(|e| matches!(
        e,
        Event::SampleIncluded {
            layer: 1,
            example: 2,
            sample: 0
        }
    )));
    let sh = sharpenings(&seen);
    let again = &sh[sh.len() - 1][2];
    assert!(!again.samples[0].excluded);
    for (a, b) in again.samples.iter().zip(&before.samples) {
        assert!(
            close(a.weight.expect("w"), b.weight.expect("w")),
            "{a:?} {b:?}"
        );
    }
    assert_eq!(again.best, before.best);

    // After π2's candidates were scored: accepted for π1's update, with a note.
    step_until(&mut s, &mut seen, |e| {
        matches!(
            e,
            Event::CandidatesScored {
                iteration: 0,
                layer: 1,
                ..
            }
        )
    })
    .await;
    let at = seen.len();
    s.commands
        .send(Command::AddHidden {
            layer: 1,
            example: 1,
            text: HUMAN.into(),
        })
        .expect("add");
    until(&mut s, &mut seen, |e| matches!(e, Event::Warning { .. })).await;
    assert!(seen[at..]
        .iter()
        .any(|e| matches!(e, Event::HiddenAdded { example: 1, .. })));
    assert!(
        matches!(seen.last(), Some(Event::Warning { message }) if message.contains("layer 1's update only")),
        "{:?}",
        seen.last()
    );
    step_until(&mut s, &mut seen, sharpened_0).await;
    let sh = sharpenings(&seen);
    let last = &sh[sh.len() - 1][1];
    assert_eq!(
        last.samples.last().map(|s| s.origin),
        Some(SampleOrigin::Human)
    );
    assert_eq!(last.best, Some(last.samples.len() - 1));

    // After π1's candidates were scored: nothing left to apply it to.
    step_until(&mut s, &mut seen, |e| {
        matches!(
            e,
            Event::CandidatesScored {
                iteration: 0,
                layer: 0,
                ..
            }
        )
    })
    .await;
    for cmd in [
        Command::AddHidden {
            layer: 1,
            example: 0,
            text: HUMAN.into(),
        },
        Command::ExcludeSample {
            layer: 1,
            example: 0,
            sample: 1,
        },
    ] {
        let at = seen.len();
        s.commands.send(cmd).expect("send");
        until(&mut s, &mut seen, |e| {
            matches!(e, Event::CommandRejected { .. })
        })
        .await;
        let m = error_after(&seen, at).expect("an error");
        assert!(
            m.contains("moved on") && m.contains("layer 1's prompt update"),
            "{m}"
        );
    }

    // After the iteration: the batch is gone.
    step_until(&mut s, &mut seen, |e| {
        matches!(e, Event::IterationDone { iteration: 0, .. })
    })
    .await;
    let at = seen.len();
    s.commands
        .send(Command::AddHidden {
            layer: 1,
            example: 0,
            text: HUMAN.into(),
        })
        .expect("send");
    until(&mut s, &mut seen, |e| {
        matches!(e, Event::CommandRejected { .. })
    })
    .await;
    let m = error_after(&seen, at).expect("an error");
    assert!(m.contains("moved on") && m.contains("iteration 1"), "{m}");
    assert_eq!(
        count(&seen, |e| matches!(e, Event::HiddenAdded { .. })),
        1,
        "refused edits add nothing"
    );
    s.commands.send(Command::Resume).expect("resume");
    let (r, _) = run_to_end(s).await;
    r.expect("run completes");
}
