//! `dln model pull|list`.
use std::process::ExitCode;

pub fn pull(_name: Option<&str>) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dln model pull` is not built yet")
}

pub fn list() -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dln model list` is not built yet")
}
