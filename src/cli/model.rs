//! `dln model pull|list`.
use std::process::ExitCode;

use dln::llm::model;

pub fn pull(name: Option<&str>) -> anyhow::Result<ExitCode> {
    let name = name.unwrap_or(model::DEFAULT_MODEL);
    eprintln!("fetching {name} with pip (this can take a minute)");
    let path = model::pull(name)?;
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
