//! `dln runs` and `dln compare` on recorded runs (issue 13): two runs of the shipped DLN-1 demo
//! recorded by `dln bench accuracy` (0-shot and DLN-1, `tests/data/runs/`, their config, result
//! and checkpoint), listed and compared by the real binary; the tables are snapshots. The
//! runs are copied to a temporary directory with fixed modification times (newest first is by
//! time), and the `when` column, which prints local time, is masked.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::run::{ok, stdout};
use insta::assert_snapshot;

/// The recorded runs under `dir/runs`, the DLN-1 run an hour newer than the 0-shot one.
fn recorded_runs(dir: &Path) {
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    for (i, name) in ["sentiment-0-shot", "sentiment-dln-1"].iter().enumerate() {
        let to = dir.join("runs").join(name);
        std::fs::create_dir_all(&to).expect("run dir");
        for file in ["config.toml", "result.json", "checkpoint.json"] {
            let from = common::fixture("runs").join(name).join(file);
            std::fs::copy(from, to.join(file)).expect("copy a recorded file");
            let f = std::fs::File::options()
                .write(true)
                .open(to.join(file))
                .expect("open");
            f.set_modified(base + Duration::from_secs(3600 * i as u64))
                .expect("set the modification time");
        }
    }
}

fn dln(dir: &Path, args: &[&str]) -> String {
    let out = common::bin()
        .args(args)
        .current_dir(dir)
        .env("DLN_DATA", dir.join("data"))
        .output()
        .expect("dln runs");
    stdout(&ok(out, &format!("dln {args:?}")))
}

/// Each row's `when` (its first 16 characters, `YYYY-MM-DD HH:MM`) masked, whatever the time zone.
fn mask_when(table: &str) -> String {
    table
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i == 0 {
                line.to_string()
            } else {
                let when: String = line.trim_start().chars().take(16).collect();
                assert!(
                    when.len() == 16 && when.as_bytes()[4] == b'-' && when.as_bytes()[13] == b':',
                    "a time first: {line}"
                );
                line.replacen(&when, "YYYY-MM-DD HH:MM", 1)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn runs_lists_the_recorded_runs_newest_first() {
    let tmp = tempfile::tempdir().expect("tmp");
    recorded_runs(tmp.path());
    let table = dln(tmp.path(), &["runs", "runs"]);
    assert_snapshot!(mask_when(&table));

    let json: serde_json::Value =
        serde_json::from_str(&dln(tmp.path(), &["runs", "--json", "runs"])).expect("json");
    let rows = json.as_array().expect("rows");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["method"], "dln-1");
    assert_eq!(rows[1]["method"], "0-shot");
    assert!(rows.iter().all(|r| r["status"] == "finished"));
}

#[test]
fn compare_shows_accuracy_and_the_best_prompts_word_by_word() {
    let tmp = tempfile::tempdir().expect("tmp");
    recorded_runs(tmp.path());
    let table = dln(
        tmp.path(),
        &["compare", "runs/sentiment-0-shot", "runs/sentiment-dln-1"],
    );
    assert_snapshot!(table);
}
