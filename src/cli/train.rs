//! `dln train`, `dln resume`, `dln eval`: the headless CLI.
use std::path::Path;
use std::process::ExitCode;

pub fn train(_config: &Path, _out: Option<&Path>, _set: &[String], _model: Option<&str>) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dln train` is not built yet")
}

pub fn resume(_run_dir: &Path, _model: Option<&str>) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dln resume` is not built yet")
}

pub fn eval(_config: &Path, _run: &Path, _split: &str, _model: Option<&str>) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dln eval` is not built yet")
}
