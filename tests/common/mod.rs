//! The test kit the integration tests share (`mod common;`): the model the tests on a real model
//! run on, named once here and independent of `dln::llm::model::DEFAULT_MODEL` (the default a
//! person gets may be larger and slower; the tests stay on the small one), the `dln` binary as a
//! command on that model, and the repository's examples and recorded fixtures. Its submodules:
//! [`run`], the binary's runs and their directories; [`session`], sessions in process on a
//! scripted backend; [`tmux`], the workbench in a terminal; [`tui`], the workbench's App without
//! one. Not every test file uses every item.

pub mod run;
pub mod session;
pub mod tmux;
pub mod tui;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use dln::llm::embedded::{EmbeddedBackend, EmbeddedOptions};

/// The repository's root (where `examples/` and `tests/data/` are).
#[allow(dead_code)]
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A shipped example, by its path under `examples/` (`tiny.toml`, `data/tiny.json`).
#[allow(dead_code)]
pub fn example(name: &str) -> PathBuf {
    repo().join("examples").join(name)
}

/// A recorded fixture, by its path under `tests/data/` (runs, event logs, HTTP bodies).
#[allow(dead_code)]
pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/data").join(name)
}

/// Writes `text` to the file `name` in `dir`; its path.
#[allow(dead_code)]
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a test file");
    path
}

/// The built-in model every test on a real model runs on: SmolLM2-135M, small and fast.
#[allow(dead_code)]
pub const TEST_MODEL: &str = "smollm2-135m";

/// The test model's file, fetched into the data directory when it is not there yet (`DLN_MODEL`
/// is not consulted: the tests name their model). Resolved once per test binary: its tests run
/// in parallel, and a second pull while the first holds the cache's lock would be refused.
#[allow(dead_code)]
pub fn test_model() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        dln::llm::model::resolve(Some(TEST_MODEL), true)
            .expect("the test model smollm2-135m (scripts/test pulls it)")
    })
    .clone()
}

/// The `dln` binary, stdin empty, stdout and stderr captured, on no model in particular (for
/// what needs none); the caller adds the arguments.
#[allow(dead_code)]
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dln"));
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// [`bin`] on the test model (`DLN_MODEL`, which a layer's own model still overrides).
#[allow(dead_code)]
pub fn dln() -> Command {
    let mut c = bin();
    c.env("DLN_MODEL", test_model());
    c
}

/// The embedded backend on the test model, default options, loaded once per test binary and
/// shared by its tests (loading is the slow part).
#[allow(dead_code)]
pub fn embedded() -> &'static EmbeddedBackend {
    static BACKEND: OnceLock<EmbeddedBackend> = OnceLock::new();
    BACKEND.get_or_init(|| {
        EmbeddedBackend::load(&test_model(), EmbeddedOptions::default()).expect("the model loads")
    })
}

/// Runs a future to its end on a runtime of its own (a test calling the async `Backend` API).
#[allow(dead_code)]
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// `cmd train CONFIG --set … --out <new dir>` from the repository's root (so `examples/…`
/// resolves), asserting it succeeds; the temporary directory holding the run comes back with the
/// run's path. `cmd` is [`dln`], with another model set where the test needs one.
#[allow(dead_code)]
pub fn train_with(mut cmd: Command, config: &str, sets: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = tmp.path().join("run");
    cmd.args(["train", config]);
    for set in sets {
        cmd.args(["--set", set]);
    }
    let out = cmd
        .arg("--out")
        .arg(&run)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("dln runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    (tmp, run)
}

/// The events of a run directory's `events.jsonl`, as JSON values.
#[allow(dead_code)]
pub fn events(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("events.jsonl"))
        .expect("events.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("an event per line"))
        .collect()
}
