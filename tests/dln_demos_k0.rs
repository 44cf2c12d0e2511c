//! `demos = 0` (the default) keeps runs exactly as they were before demonstrations existed:
//! the events of DLN-1 and DLN-2 runs on the tiny config with the scripted backend are those the
//! build before them recorded (`tests/data/demos/`, timings and paths left out). The record was
//! made anew once since, when the proposer's prompt changed on purpose (the opening every input
//! shares shown once): the scripted proposals hash that prompt, so the events differ from the
//! first `CandidatesProposed` on and were identical before it; and again when a layer's
//! candidates came to be scored in one request: the score stage's `StageProgress` events went
//! from one per candidate to the last one only (that one, and every other event, unchanged).

mod common;

use std::path::PathBuf;

use common::session::*;
use dln::dln::events::Event;

/// An event as compared across builds: timings (and forecasts) and paths left out, the layers' templates
/// (which `RunStarted` carries since a later change than the recording) and the batch
/// examples' positions in the training split (which `ForwardDone` carries since the workbench
/// adds demonstrations), the answers counted by `Evaluated` (since evaluation counts them), and
/// a proposed candidate's provenance (`proposal`, since the lineage records it).
fn normalized(e: &Event) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(o) => {
                o.retain(|k, _| {
                    !k.ends_with("_ms")
                        && k != "run_dir"
                        && k != "path"
                        && k != "templates"
                        && k != "train_index"
                        && k != "answers"
                        && k != "proposal"
                });
                o.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(e).expect("an event serializes");
    strip(&mut v);
    v
}

fn recorded(layers: usize) -> PathBuf {
    common::fixture(&format!("demos/k0_dln{layers}.jsonl"))
}

/// `demos = 0` (the default) asks and emits what runs asked and emitted before: the events of
/// DLN-1 and DLN-2 runs on the tiny config are those recorded by the build before
/// demonstrations (`DLN_RECORD_K0=1` writes them anew).
#[tokio::test]
async fn without_demonstrations_a_run_emits_the_events_recorded_before_them() {
    for layers in [1, 2] {
        let dir = tempfile::tempdir().expect("tempdir");
        let events = run_succeeding(tiny_config(layers), scripted(), &dir.path().join("run")).await;
        // Forecasts are timings, as the `_ms` fields are.
        let lines: Vec<String> = events
            .iter()
            .filter(|e| !matches!(e, Event::Forecast { .. }))
            .map(|e| normalized(e).to_string())
            .collect();
        let path = recorded(layers);
        if std::env::var_os("DLN_RECORD_K0").is_some() {
            std::fs::create_dir_all(path.parent().expect("a folder")).expect("mkdir");
            std::fs::write(&path, lines.join("\n") + "\n").expect("write the record");
            continue;
        }
        let want = std::fs::read_to_string(&path).expect("the recorded events");
        let want: Vec<&str> = want.lines().collect();
        assert_eq!(lines.len(), want.len(), "DLN-{layers}: event count");
        for (i, (got, want)) in lines.iter().zip(want).enumerate() {
            assert_eq!(got, want, "DLN-{layers}: event {i} differs");
        }
    }
}
