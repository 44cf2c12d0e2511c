//! The test kit the integration tests share (`mod common;`): the model the tests on a real model
//! run on, named once here and independent of `dln::llm::model::DEFAULT_MODEL` (the default a
//! person gets may be larger and slower; the tests stay on the small one), and the `dln` binary
//! as a command on that model. Not every test file uses every item.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

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

/// The `dln` binary on the test model (`DLN_MODEL`, which a layer's own model still overrides),
/// stdin empty, stdout and stderr captured; the caller adds the arguments.
#[allow(dead_code)]
pub fn dln() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dln"));
    c.env("DLN_MODEL", test_model())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}
