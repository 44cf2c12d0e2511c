//! `dln bench engine`: naive vs prefix-reused scoring and batched vs sequential generation on
//! the embedded model, as a table or one JSON object (`--json`).
use std::process::ExitCode;

use anyhow::Context;

use dln::llm::embedded::{EmbeddedBackend, EmbeddedOptions};

pub fn engine(model: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let path = dln::llm::model::resolve(model, true)?;
    eprintln!("loading {}", path.display());
    let backend = EmbeddedBackend::load(&path, EmbeddedOptions::default())
        .with_context(|| format!("loading {}", path.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(dln::bench::run_engine(&backend, &|what| {
        eprintln!("{what}")
    }))?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", dln::bench::render_table(&report));
    }
    Ok(ExitCode::SUCCESS)
}
