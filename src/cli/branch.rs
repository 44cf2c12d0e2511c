//! `dln branch RUN [--at IT] [--set KEY=VALUE]… [--out DIR] [--tui]`.

use std::process::ExitCode;

use dln::run::{branch as make_branch, BranchRequest};

/// What `--tui` opens the branch with.
pub struct Open<'a> {
    pub model: Option<&'a str>,
    pub theme: Option<&'a str>,
}

pub fn branch(req: BranchRequest, open: Option<Open<'_>>) -> anyhow::Result<ExitCode> {
    if open.is_some() {
        super::tui::need_terminal()?;
    }
    let made = make_branch(&req)?;
    let dir = made.run_dir.display();
    let changes = if made.of.changes.is_empty() {
        String::new()
    } else {
        format!(" with {}", made.of.changes.join(" "))
    };
    eprintln!(
        "branched {} after iteration {}{changes} into {dir}",
        made.of.parent.display(),
        made.of.iteration
    );
    if let Some(note) = made.cache.note() {
        eprintln!("{note}");
    }
    match open {
        Some(o) => super::tui::resume_opening(&made.run_dir, &[], o.model, o.theme, true),
        None => {
            eprintln!("continue it with: dln resume {dir}   (or in the workbench: dln tui --resume {dir})");
            println!("{dir}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
