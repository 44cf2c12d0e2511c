//! `dln` (no arguments), `dln tui CONFIG`, `dln replay RUN_DIR`: the workbench.
use std::path::Path;
use std::process::ExitCode;

pub fn demo(_model: Option<&str>, _theme: Option<&str>) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the workbench is not built yet")
}

pub fn open(_config: &Path, _out: Option<&Path>, _set: &[String], _model: Option<&str>, _theme: Option<&str>) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the workbench is not built yet")
}

pub fn replay(_run_dir: &Path, _theme: Option<&str>) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the workbench is not built yet")
}
