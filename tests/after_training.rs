//! Using what was trained: `dln export` → `dln predict` on the real model reproduces the run's
//! own test accuracy; the export formats round-trip; malformed prediction inputs are reported by
//! line; `dln runs` and `dln compare` summarize recorded runs; `dln resume --set
//! train.iterations=N` trains a finished run longer with the same numbering.

mod common;

use std::path::Path;

use common::run::{export, ok, predict, result, run_dir, train};
use common::session::*;
use common::{dln, example};
use dln::config::Config;
use dln::run::export::{export_run, Format, Which};
use dln::run::{load_data, Session};

/// The test split of a run as JSON Lines in the task's own field names.
fn test_split_jsonl(run: &Path) -> String {
    let config = Config::load(&run.join("config.toml")).expect("run config");
    let data = load_data(&config).expect("data");
    let dc: toml::Value = toml::Value::Table(config.data.clone());
    let input = dc
        .get("input_field")
        .and_then(|v| v.as_str())
        .unwrap_or("input");
    let target = dc
        .get("target_field")
        .and_then(|v| v.as_str())
        .unwrap_or("target");
    data.test
        .iter()
        .map(|e| serde_json::json!({ input: e.input, target: e.target }).to_string() + "\n")
        .collect()
}

fn accuracy_of(predictions: &str) -> f64 {
    let rows: Vec<serde_json::Value> = predictions
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(!rows.is_empty());
    let right = rows.iter().filter(|r| r["correct"] == true).count();
    right as f64 / rows.len() as f64
}

#[test]
fn export_then_predict_reproduces_the_runs_test_accuracy_and_runs_compare_show_it() {
    let (tmp, run) = run_dir();
    let sets = ["train.iterations=1", "data.max_test=6"];
    let trained = train(&example("tiny.toml"), &run, &sets).output();
    ok(trained.expect("train"), "train");
    let result = result(&run);
    let test_accuracy = result["test_accuracy"].as_f64().expect("a test accuracy");

    // Export, then predict on the run's own test split from the file alone.
    let net = tmp.path().join("net.toml");
    export(&run, &net);
    let text = std::fs::read_to_string(&net).expect("network file");
    assert!(text.starts_with("# exported by dln"), "{text}");
    assert!(
        text.contains("classes"),
        "the classes travel with the network:\n{text}"
    );
    let inputs = tmp.path().join("test.jsonl");
    std::fs::write(&inputs, test_split_jsonl(&run)).expect("inputs");
    // The data file is not needed any more: move the network away from it.
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("dir");
    let moved = elsewhere.join("net.toml");
    std::fs::copy(&net, &moved).expect("copy");
    let out = ok(
        predict(&moved, &inputs).output().expect("predict"),
        "predict from the exported file",
    );
    let from_file = accuracy_of(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        from_file, test_accuracy,
        "export → predict = the run's test accuracy"
    );

    // A run directory predicts with its best prompts too, with the hidden texts on request.
    let out = ok(
        predict(&run, &inputs)
            .arg("--explain")
            .output()
            .expect("predict from the run"),
        "predict from the run directory",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(accuracy_of(&stdout), test_accuracy);
    assert!(stdout.lines().all(|l| l.contains("\"hidden\"")), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("accuracy"));

    // Plain lines in, malformed JSON reported with its line number.
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "Which number is larger? Options: (A) 3 (B) 9\n{\"question\": \"unterminated\n\n{\"no_input\": 1}\n",
    )
    .expect("bad inputs");
    let out = predict(&moved, &bad).output().expect("predict bad");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.jsonl:2:") && err.contains("not valid JSON"),
        "{err}"
    );
    assert!(err.contains("2 bad line(s)"), "{err}");
    let out = ok(
        predict(&moved, &bad)
            .arg("--skip-bad-lines")
            .output()
            .expect("predict skipping"),
        "predict --skip-bad-lines",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.jsonl:2: skipped") && err.contains("bad.jsonl:4: skipped"),
        "{err}"
    );
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["line"], 1);
    assert!(rows[0].get("correct").is_none(), "no target, no verdict");

    // `dln runs` and `dln compare` over the recorded run.
    let out = ok(
        dln()
            .args(["runs", &tmp.path().display().to_string()])
            .output()
            .expect("runs"),
        "runs",
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("tiny") && table.contains("dln-1") && table.contains("finished"),
        "{table}"
    );
    assert!(table.contains("1/1"), "{table}");
    let out = ok(
        dln()
            .args(["runs", "--json", &tmp.path().display().to_string()])
            .output()
            .expect("runs"),
        "runs --json",
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(rows[0]["status"], "finished");
    assert_eq!(rows[0]["test"].as_f64(), Some(test_accuracy));
    let out = ok(
        dln()
            .args([
                "compare",
                &run.display().to_string(),
                &run.display().to_string(),
            ])
            .output()
            .expect("compare"),
        "compare",
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("layer 1 best prompts"), "{table}");
    assert!(
        table.contains(&format!("{:.1}", test_accuracy * 100.0)),
        "{table}"
    );
}

#[test]
fn export_formats_round_trip() {
    let (tmp, dir) = run_dir();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(run_succeeding(tiny_config(2), scripted(), &dir));
    let exported = export_run(&dir, Which::Best).expect("export");
    for (format, ext) in [
        (Format::Toml, "toml"),
        (Format::Json, "json"),
        (Format::Yaml, "yaml"),
    ] {
        let path = tmp.path().join(format!("net.{ext}"));
        std::fs::write(&path, exported.render(format).expect("render")).expect("write");
        let mut back = Config::load(&path).unwrap_or_else(|e| panic!("{ext}: {e}"));
        back.base_dir = exported.config.base_dir.clone();
        assert_eq!(back, exported.config, "{ext} round-trips");
        let prompts: Vec<String> = back.layers.iter().map(|l| l.prompt.clone()).collect();
        assert_eq!(prompts, exported.prompts);
        assert!(
            back.layers[1].templates.forward.contains('\n'),
            "templates are inline"
        );
    }
    let text = exported.render(Format::Text).expect("text");
    for p in &exported.prompts {
        assert!(text.contains(p.as_str()), "{text}");
    }
    // Iteration 0 is the starting prompts; an iteration never evaluated is a clear error.
    let start = export_run(&dir, Which::Iteration(0));
    if let Ok(e) = start {
        assert_eq!(e.prompts[0], "Compare the two options.");
    }
    let err = export_run(&dir, Which::Iteration(99)).expect_err("no such iteration");
    assert!(
        err.to_string()
            .contains("no dev evaluation at iteration 99"),
        "{err}"
    );
}

#[test]
fn resume_with_more_iterations_trains_a_finished_run_longer_with_the_same_numbering() {
    let (_tmp, dir) = run_dir();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let session = Session::start(tiny_config(1), options_with(scripted(), &dir))
            .await
            .expect("start");
        let (r, _) = run_to_end(session).await;
        assert_eq!(r.expect("run").iterations, 2);
        // A person's note in the run's config survives the edit `--set` makes.
        let path = dir.join("config.toml");
        let noted = format!(
            "# tried on the small model first\n{}",
            std::fs::read_to_string(&path).expect("config")
        );
        std::fs::write(&path, noted).expect("note");
        let mut opts = options_with(scripted(), &dir);
        opts.overrides = vec!["train.iterations=4".into()];
        let session = Session::resume(&dir, opts).await.expect("resume");
        let (r, events) = run_to_end(session).await;
        assert_eq!(r.expect("longer run").iterations, 4);
        let done: Vec<usize> = events
            .iter()
            .filter_map(|e| match e {
                dln::dln::events::Event::IterationDone { iteration, .. } => Some(*iteration),
                _ => None,
            })
            .collect();
        assert_eq!(done, vec![2, 3], "the numbering continues");
        let mut opts = options_with(scripted(), &dir);
        opts.overrides = vec!["layers.0.prompt=x".into()];
        let err = Session::resume(&dir, opts).await.err().expect("refused");
        assert!(err.to_string().contains("only `train.*`"), "{err}");
    });
    let config = Config::load(&dir.join("config.toml")).expect("config");
    assert_eq!(
        config.train.iterations, 4,
        "the run's config records the change"
    );
    let text = std::fs::read_to_string(dir.join("config.toml")).expect("config");
    assert!(
        text.starts_with("# tried on the small model first\n"),
        "the person's comment is kept: {text}"
    );
}
