//! `dln bench engine`.
use std::process::ExitCode;

pub fn engine(_model: Option<&str>, _json: bool) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dln bench engine` is not built yet")
}
