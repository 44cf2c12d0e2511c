//! The CLI documents itself: every command's `--help` has an example, the top-level help lists
//! every environment variable dln reads, completions and the man page come from the same
//! definition, and `dln config show` says where each effective setting came from.

mod common;

fn dln(args: &[&str]) -> (bool, String, String) {
    let out = common::bin()
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("DLN_MODEL")
        .output()
        .expect("run dln");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn every_command_has_an_example_and_the_help_lists_the_environment() {
    let (ok, help, _) = dln(&["--help"]);
    assert!(ok);
    for var in [
        "DLN_MODEL",
        "DLN_DATA",
        "DLN_CONFIG",
        "DLN_LOG",
        "DLN_FETCH_TIMEOUT",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "NO_COLOR",
    ] {
        assert!(help.contains(var), "{var} missing from --help");
    }
    for cmd in [
        "tui",
        "train",
        "resume",
        "export",
        "predict",
        "runs",
        "compare",
        "lineage",
        "eval",
        "replay",
        "model",
        "cache",
        "completions",
        "man",
    ] {
        let (ok, h, e) = dln(&[cmd, "--help"]);
        assert!(ok, "{cmd}: {e}");
        assert!(
            h.contains("Example: dln") || h.contains("| dln"),
            "{cmd} --help has no example:\n{h}"
        );
    }
    let (_, h, _) = dln(&["bench", "accuracy", "--help"]);
    assert!(h.contains("Example: dln bench accuracy"), "{h}");
    for sub in ["view", "keep"] {
        let (_, h, _) = dln(&["bench", sub, "--help"]);
        assert!(h.contains(&format!("Example: dln bench {sub}")), "{h}");
    }
    for sub in ["stats", "clear", "vacuum"] {
        let (_, h, _) = dln(&["cache", sub, "--help"]);
        assert!(h.contains(&format!("Example: dln cache {sub}")), "{h}");
    }
    let (_, h, _) = dln(&["bench", "cache", "--help"]);
    assert!(h.contains("Example: dln bench cache"), "{h}");
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    let (ok, bash, _) = dln(&["completions", "bash"]);
    assert!(
        ok && bash.contains("_dln()") && bash.contains("predict"),
        "{bash}"
    );
    let (ok, zsh, _) = dln(&["completions", "zsh"]);
    assert!(ok && zsh.contains("#compdef dln"));
    let (ok, man, _) = dln(&["man"]);
    assert!(
        ok && man.contains(".TH dln 1") && man.contains("export"),
        "{man}"
    );
    let (ok, _, err) = dln(&["completions", "tcsh"]);
    assert!(!ok && err.contains("possible values"), "{err}");
}

#[test]
fn config_show_says_where_each_setting_came_from() {
    let (ok, out, err) = dln(&[
        "config",
        "show",
        "examples/dln1-demo.toml",
        "--set",
        "train.iterations=9",
    ]);
    assert!(ok, "{err}");
    let line = |key: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("{key} missing:\n{out}"))
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
    };
    assert_eq!(line("train.iterations"), ["--set", "9"]);
    assert_eq!(line("train.batch_size"), ["file", "4"]);
    assert_eq!(line("train.backward_top_p"), ["default", "0.95"]);
    assert_eq!(line("layers.0.backward_temperature"), ["file", "0.7"]);
    assert_eq!(line("cache.max_mb"), ["default", "1024.0"]);
    let (ok, json, _) = dln(&["config", "show", "examples/dln1-demo.toml", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert!(ok && v["settings"].as_array().is_some_and(|s| s.len() > 20));
    let (ok, _, err) = dln(&["config", "show", "examples/nope.toml"]);
    assert!(!ok && err.contains("examples/nope.toml"), "{err}");
    let (ok, _, err) = dln(&[
        "config",
        "show",
        "examples/dln1-demo.toml",
        "--set",
        "train.nope=1",
    ]);
    assert!(!ok && err.contains("train.nope"), "{err}");
}

#[test]
fn the_help_and_the_readme_name_every_built_in_model() {
    let (ok, help, _) = dln(&["--help"]);
    assert!(ok);
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let row = readme
        .lines()
        .find(|l| l.starts_with("| `dln model pull"))
        .expect("README's `dln model pull` row");
    let (ok, list, _) = dln(&["model", "list"]);
    assert!(ok);
    for m in dln::llm::model::BUILTIN_MODELS {
        assert!(
            help.contains(m.name),
            "--model's help lacks {}:\n{help}",
            m.name
        );
        assert!(
            row.contains(&format!("`{}`", m.name)),
            "README lacks {}: {row}",
            m.name
        );
        let line = list
            .lines()
            .find(|l| l.starts_with(&format!("{} ", m.name)))
            .unwrap_or_else(|| panic!("`dln model list` lacks {}:\n{list}", m.name));
        for field in [m.parameters, m.licence] {
            assert!(line.contains(field), "{field} missing: {line}");
        }
    }
}
