//! Bad inputs end in a clear error naming what is wrong — never a panic. What a config names is
//! refused before a run directory exists; a run that fails later keeps its directory (its config
//! and an `error` event stay on disk).

mod common;

use std::path::Path;

use common::write_file;

use common::session::*;
use dln::config::Config;
use dln::dln::events::Event;
use dln::run::{read_events, Session};

fn config_over(data: &Path, extra: &str) -> Config {
    let text = format!(
        r#"
[task]
name = "bad"
description = "Classify."
[data]
path = "{}"
input_field = "sentence"
target_field = "label"
{extra}
[train]
iterations = 1
batch_size = 2
[[layers]]
"#,
        data.display()
    );
    Config::parse(&text, Path::new("bad.toml")).expect("config parses")
}

/// Starts and runs a session; returns the error text. What the config names (data, templates)
/// is refused before the run directory exists, so the corrected rerun may use the same `--out`;
/// a run that fails later keeps its directory, with its config and the failure logged.
async fn failing(
    config: Config,
    backend: dln::llm::scripted::ScriptedBackend,
    dir: &Path,
) -> String {
    let out = dir.join("run");
    match Session::start(config, options_with(backend, &out)).await {
        Err(e) => {
            assert!(!out.exists(), "refused before a run directory exists: {e}");
            e.to_string()
        }
        Ok(session) => {
            let err = match run_to_end(session).await.0 {
                Err(e) => e,
                Ok(_) => panic!("the run should fail"),
            };
            assert!(
                out.join("config.toml").exists(),
                "the run directory keeps its config"
            );
            let events = read_events(&out).expect("events readable");
            assert!(
                events.iter().any(|e| matches!(e, Event::RunFailed { .. })),
                "the failure is logged"
            );
            err
        }
    }
}

const GOOD_LINES: &str =
    "{\"sentence\": \"great\", \"label\": \"1\"}\n{\"sentence\": \"awful\", \"label\": \"0\"}\n";

fn many(lines: &str, n: usize) -> String {
    lines.repeat(n)
}

#[tokio::test]
async fn malformed_json_line_names_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = write_file(
        dir.path(),
        "d.jsonl",
        &format!("{}{{\"sentence\": \"oops\"\n", many(GOOD_LINES, 4)),
    );
    let e = failing(config_over(&data, ""), scripted(), dir.path()).await;
    assert!(
        e.contains("d.jsonl:9") && e.contains("malformed JSON"),
        "{e}"
    );
}

#[tokio::test]
async fn missing_field_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = write_file(
        dir.path(),
        "d.jsonl",
        &format!("{}{{\"sentence\": \"no label\"}}\n", many(GOOD_LINES, 4)),
    );
    let e = failing(config_over(&data, ""), scripted(), dir.path()).await;
    assert!(
        e.contains("missing field `label`") && e.contains(":9"),
        "{e}"
    );
}

#[tokio::test]
async fn unknown_label_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = write_file(
        dir.path(),
        "d.jsonl",
        &format!(
            "{}{{\"sentence\": \"meh\", \"label\": \"7\"}}\n",
            many(GOOD_LINES, 4)
        ),
    );
    let e = failing(
        config_over(
            &data,
            "label_map = { \"0\" = \"negative\", \"1\" = \"positive\" }",
        ),
        scripted(),
        dir.path(),
    )
    .await;
    assert!(e.contains("unknown label `7`"), "{e}");
}

#[tokio::test]
async fn empty_dataset_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = write_file(dir.path(), "d.jsonl", "");
    let e = failing(config_over(&data, ""), scripted(), dir.path()).await;
    assert!(e.contains("d.jsonl") && e.contains("no examples"), "{e}");
}

fn with_forward_template(data: &Path, template_file: &Path) -> Config {
    let mut c = config_over(data, "");
    c.set(
        "layers.0.templates.forward",
        &template_file.display().to_string(),
    )
    .expect("set template");
    c
}

#[tokio::test]
async fn template_syntax_error_names_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = write_file(dir.path(), "d.jsonl", &many(GOOD_LINES, 5));
    let t = write_file(
        dir.path(),
        "fwd.toml",
        "role = \"forward\"\ntemplate = '''\n{{ prompt }}\n{% if input %}\n{{ input }}\n'''\n",
    );
    let e = failing(with_forward_template(&data, &t), scripted(), dir.path()).await;
    assert!(e.contains("fwd.toml") && e.contains("syntax"), "{e}");
}

#[tokio::test]
async fn unknown_template_variable_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = write_file(dir.path(), "d.jsonl", &many(GOOD_LINES, 5));
    let t = write_file(
        dir.path(),
        "fwd.toml",
        "role = \"forward\"\ntemplate = '''\n{{ prompt }}\n{{ sentence }}\nAnswer:\n'''\n",
    );
    let e = failing(with_forward_template(&data, &t), scripted(), dir.path()).await;
    assert!(
        e.contains("fwd.toml:4") && e.contains("unknown variable `sentence`"),
        "{e}"
    );
}

#[tokio::test]
async fn prompt_longer_than_the_context_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = write_file(dir.path(), "d.jsonl", &many(GOOD_LINES, 5));
    let mut c = config_over(&data, "");
    c.set(
        "layers.0.prompt",
        &"Think about the sentence very carefully. ".repeat(20),
    )
    .expect("long prompt");
    let e = failing(c, scripted().with_context_size(64), dir.path()).await;
    assert!(
        e.contains("layer 1") && e.contains("context") && e.contains("shorten the prompt"),
        "{e}"
    );
}

/// A bad `[data]` table is refused when the config is read, naming the file and the key, before
/// any run directory exists.
#[test]
fn bad_data_table_is_refused_on_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = write_file(dir.path(), "d.jsonl", &many(GOOD_LINES, 5));
    let good = format!(
        "[task]\nname = \"bad\"\n[data]\npath = \"{}\"\n[[layers]]\n",
        data.display()
    );
    for (extra, key) in [
        ("format = \"csv\"", "csv"),
        ("split = { dev = 0.6, test = 0.4 }", "data.split.dev"),
        ("max_train = -1", "max_train"),
        ("labelmap = { \"0\" = \"no\" }", "labelmap"),
    ] {
        let file = write_file(
            dir.path(),
            "bad.toml",
            &good.replace("[[layers]]", &format!("{extra}\n[[layers]]")),
        );
        let e = Config::load(&file).expect_err(extra).to_string();
        assert!(e.contains("bad.toml") && e.contains(key), "{extra}: {e}");
    }
    let file = write_file(dir.path(), "good.toml", &good);
    Config::load(&file).expect("the same table without the fault loads");
}
