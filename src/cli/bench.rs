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

/// `dln bench http`: throughput at 1 vs 8 in flight and scores against the embedded engine.
/// `compare` is `Some(model spec)` to load the embedded model for the comparison.
pub fn http(
    url: &str,
    server_model: &str,
    requests: usize,
    compare: Option<Option<&str>>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let cfg = dln::llm::openai::OpenAiConfig {
        base_url: url.to_string(),
        model: server_model.to_string(),
        timeout_secs: 600.0,
        ..Default::default()
    };
    let embedded = match compare {
        Some(model) => {
            let path = dln::llm::model::resolve(model, true)?;
            eprintln!("loading {}", path.display());
            Some(
                EmbeddedBackend::load(&path, EmbeddedOptions::default())
                    .with_context(|| format!("loading {}", path.display()))?,
            )
        }
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = runtime.block_on(dln::bench::http::run_http(
        &cfg,
        requests.max(1),
        embedded.as_ref(),
        &|what| eprintln!("{what}"),
    ))?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", dln::bench::http::render_http_table(&report));
    }
    Ok(ExitCode::SUCCESS)
}
