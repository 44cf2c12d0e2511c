//! What a user can get wrong, tried on the real `dln` binary as a person would: numbers out of
//! range, a server that is down, a broken template or data file — each one clear message, a
//! non-zero exit, no panic, and nothing left behind that blocks the corrected rerun.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::run::stderr;
use common::{dln, example};

/// A config in `dir` over the shipped tiny task, with `extra` TOML appended.
fn config(dir: &Path, extra: &str) -> PathBuf {
    let text = format!(
        r#"[task]
name = "tiny"
description = "Answer with the letter of the larger number."

[data]
path = "{}"
input_field = "question"
target_field = "answer"
max_dev = 3
max_test = 3

[train]
iterations = 1
batch_size = 2

{extra}
"#,
        example("data/tiny.json").display()
    );
    let p = dir.join("run.toml");
    std::fs::write(&p, text).expect("write config");
    p
}

fn no_panic(o: &Output) {
    let e = stderr(o);
    assert!(
        !e.contains("panicked") && !e.contains("RUST_BACKTRACE"),
        "a panic: {e}"
    );
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn numbers_out_of_range_name_their_key_in_config_show_and_train() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("backends.server.timeout_secs", "inf"),
        ("backends.server.timeout_secs", "1e20"),
        ("backends.server.retry_base_ms", "99999999999"),
        ("train.posterior_temperature", "inf"),
        ("train.logp_penalty", "-1.0"),
        ("layers.0.backward_temperature", "nan"),
        ("model.context_size", "0"),
        ("model.threads", "0"),
    ];
    let path = config(
        tmp.path(),
        "[backends.server]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n\n[[layers]]\n",
    );
    for (key, value) in cases {
        for cmd in [&["config", "show"][..], &["train"][..]] {
            let o = dln()
                .args(cmd)
                .arg(&path)
                .args(["--set", &format!("{key}={value}")])
                .args(if cmd[0] == "train" {
                    &["--out"][..]
                } else {
                    &[][..]
                })
                .args(if cmd[0] == "train" {
                    vec![tmp.path().join("never")]
                } else {
                    vec![]
                })
                .output()
                .expect("dln runs");
            no_panic(&o);
            let what = format!("{} with {key} = {value}", cmd.join(" "));
            assert_eq!(o.status.code(), Some(1), "{what}: {}", stderr(&o));
            assert!(
                stderr(&o).contains(&format!("`{key}`")),
                "{what} names the key: {}",
                stderr(&o)
            );
            assert!(
                !tmp.path().join("never").exists(),
                "no run directory for a refused config"
            );
        }
    }
}

#[test]
fn a_broken_template_or_data_file_is_refused_before_a_run_directory_exists() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let template = tmp.path().join("forward.toml");
    std::fs::write(&template, "template = \"{{ prompt }\\n{{ input }}\"\n").expect("write");
    let path = config(
        tmp.path(),
        &format!(
            "[[layers]]\ntemplates = {{ forward = \"{}\" }}\n",
            template.display()
        ),
    );
    let show = dln()
        .args(["config", "show"])
        .arg(&path)
        .output()
        .expect("dln");
    no_panic(&show);
    assert_eq!(
        show.status.code(),
        Some(1),
        "config show refuses what train refuses"
    );
    assert!(stderr(&show).contains("forward.toml"), "{}", stderr(&show));
    let out = tmp.path().join("run");
    let train = dln()
        .args(["train"])
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("dln");
    no_panic(&train);
    assert_eq!(train.status.code(), Some(1));
    assert!(
        stderr(&train).contains("forward.toml"),
        "{}",
        stderr(&train)
    );
    assert!(!out.exists(), "no run directory for a refused config");

    // Bad data: refused before the run directory exists, so the fixed rerun may use the same
    // --out (it used to say "already holds a run").
    let data = tmp.path().join("bad.json");
    std::fs::write(&data, "{\"examples\": [{\"question\": 1,").expect("write");
    let text = std::fs::read_to_string(config(tmp.path(), "[[layers]]\n")).expect("read");
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        text.replace(
            &example("data/tiny.json").display().to_string(),
            &data.display().to_string(),
        ),
    )
    .expect("write");
    let show = dln()
        .args(["config", "show"])
        .arg(&bad)
        .output()
        .expect("dln");
    assert_eq!(show.status.code(), Some(1), "{}", stderr(&show));
    assert!(stderr(&show).contains("bad.json"), "{}", stderr(&show));
    let train = dln()
        .args(["train"])
        .arg(&bad)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("dln");
    no_panic(&train);
    assert_eq!(train.status.code(), Some(1));
    assert!(stderr(&train).contains("bad.json"), "{}", stderr(&train));
    assert!(!out.exists(), "no run directory for bad data");
}

#[test]
fn a_headless_run_against_a_closed_port_says_each_retry_on_stderr() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = closed_port();
    let path = config(
        tmp.path(),
        &format!(
            "[backends.server]\nkind = \"openai\"\n\
             base_url = \"http://127.0.0.1:{port}/v1\"\nmodel = \"m\"\nmax_retries = 2\n\
             retry_base_ms = 10\n[[layers]]\nmodel = \"server\"\n"
        ),
    );
    let run = |flags: &[&str]| {
        let o = dln()
            .args(flags)
            .arg("train")
            .arg(&path)
            .arg("--out")
            .arg(tmp.path().join(format!("run{}", flags.len())))
            .output()
            .expect("dln");
        no_panic(&o);
        assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
        stderr(&o)
    };
    let err = run(&[]);
    let retries: Vec<&str> = err.lines().filter(|l| l.contains("retry")).collect();
    assert!(
        retries.len() >= 2 && retries.iter().all(|l| l.contains("WARN")),
        "each retry is one warning line on stderr:\n{err}"
    );
    assert!(err.contains(&port.to_string()), "{err}");
    let quiet = run(&["-q"]);
    assert!(
        !quiet.lines().any(|l| l.contains("WARN")),
        "-q keeps warnings off:\n{quiet}"
    );
}
