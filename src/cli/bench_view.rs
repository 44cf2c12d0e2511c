//! `dln bench view OUT…`: the benchmarks' tables in the workbench. Every report is read (and
//! every error a person can cause reported, naming the file) before the screen is taken over.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use dln::bench::accuracy::read_report;
use dln::tui::bench::{run_loop, BenchView};
use dln::tui::terminal::TerminalGuard;

pub fn view(paths: &[PathBuf], theme: Option<&str>) -> anyhow::Result<ExitCode> {
    let mut reads = Vec::with_capacity(paths.len());
    for path in paths {
        let read = read_report(path)?;
        if read.report.tasks.is_empty() || read.report.methods.is_empty() {
            anyhow::bail!("{} has no cells to show", read.path.display());
        }
        reads.push(read);
    }
    super::tui::need_terminal()?;
    let (theme, keymap) = super::tui::look(theme)?;
    let mut view = BenchView::of_tables(reads, theme, keymap);
    let rt = super::tui::runtime()?;
    rt.block_on(async move {
        let _log = dln::tui::logging::to_file(&dln::llm::model::data_dir());
        let mut guard = TerminalGuard::enter().context("cannot take over the terminal")?;
        let result = run_loop::run(&mut guard.terminal, &mut view).await;
        drop(guard);
        result.context("terminal input failed")
    })?;
    Ok(ExitCode::SUCCESS)
}
