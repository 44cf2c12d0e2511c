//! `dln cache stats|clear|vacuum`: a call cache's counts, emptying it, and compacting its file.
//! The cache is a run directory's (`RUN_DIR/cache`), a cache directory, its `calls.sqlite`, or,
//! with no path, the one `dln predict` keeps for network files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use indicatif::BinaryBytes;

use dln::llm::cache::{import::LEGACY_FILE, CallStore, OpenReport, DB_FILE};

/// The cache directory `path` names: a directory holding `calls.sqlite` or `calls.jsonl`, a run
/// directory (its `cache/`), or the database file; none: `dln predict`'s cache. A path with no
/// cache is an error (nothing is created).
pub fn locate(path: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => dln::run::predict::predict_cache_dir(),
    };
    let holds = |d: &Path| d.join(DB_FILE).is_file() || d.join(LEGACY_FILE).is_file();
    if path.is_file() && path.file_name().is_some_and(|n| n == DB_FILE) {
        return Ok(path.parent().unwrap_or(Path::new(".")).to_path_buf());
    }
    if holds(&path) {
        return Ok(path);
    }
    let in_run = path.join(dln::run::CACHE_DIR);
    if holds(&in_run) {
        return Ok(in_run);
    }
    anyhow::bail!(
        "no call cache at {} (looked for {DB_FILE} or {LEGACY_FILE} in it and in its cache/)",
        path.display()
    )
}

/// Opens the cache without a bound: looking at a cache never evicts from it.
fn open(dir: &Path) -> anyhow::Result<CallStore> {
    let (store, report) = CallStore::open(dir, u64::MAX)
        .with_context(|| format!("opening the call cache in {}", dir.display()))?;
    say_what_opening_did(&report);
    Ok(store)
}

fn say_what_opening_did(report: &OpenReport) {
    if let Some(p) = &report.set_aside {
        eprintln!(
            "the cache was damaged: moved to {} and started empty",
            p.display()
        );
    }
    if let Some(i) = &report.imported {
        eprintln!(
            "imported {} answers from {}{}{}",
            i.entries,
            i.from.display(),
            if i.skipped > 0 {
                format!(
                    ", skipped {} bad line{}",
                    i.skipped,
                    if i.skipped == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            },
            match &i.moved_to {
                Some(to) => format!(" (kept as {})", to.display()),
                None => String::new(),
            }
        );
    }
}

/// The bound a run's config gives its cache, when `dir` is a run's `cache/`.
fn run_bound(dir: &Path) -> Option<f64> {
    let config = dir.parent()?.join("config.toml");
    dln::config::Config::load(&config)
        .ok()
        .map(|c| c.cache.max_mb)
}

pub fn stats(path: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let dir = locate(path)?;
    let s = open(&dir)?.stats()?;
    let (max_mb, from) = match run_bound(&dir) {
        Some(m) => (m, "the run's cache.max_mb"),
        None => (dln::config::DEFAULT_MAX_MB, "the default cache.max_mb"),
    };
    if json {
        let mut v = serde_json::to_value(&s)?;
        v["max_mb"] = serde_json::json!(max_mb);
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", s.path.display());
    println!("entries  {}", s.entries);
    println!("hits     {} (on the entries kept)", s.hits);
    println!(
        "on disk  {} (in use {}; bound {max_mb} MiB, {from})",
        BinaryBytes(s.file_bytes),
        BinaryBytes(s.live_bytes)
    );
    if s.by_model.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let name = |m: &str| {
        if m.is_empty() {
            "(imported, not used since)".to_string()
        } else {
            m.to_string()
        }
    };
    let width = s
        .by_model
        .iter()
        .map(|m| name(&m.model).chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    println!();
    println!(
        "{:<width$}  {:<12} {:>9} {:>9} {:>11}",
        "model", "operation", "entries", "hits", "answers"
    );
    for m in &s.by_model {
        println!(
            "{:<width$}  {:<12} {:>9} {:>9} {:>11}",
            name(&m.model),
            if m.op.is_empty() { "-" } else { &m.op },
            m.entries,
            m.hits,
            BinaryBytes(m.value_bytes).to_string()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn clear(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let dir = locate(path)?;
    let store = open(&dir)?;
    let n = store.clear()?;
    println!("{}: removed {n} answers", store.path().display());
    Ok(ExitCode::SUCCESS)
}

pub fn vacuum(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let dir = locate(path)?;
    let store = open(&dir)?;
    let (before, after) = store.vacuum()?;
    println!(
        "{}: {} -> {}",
        store.path().display(),
        BinaryBytes(before),
        BinaryBytes(after)
    );
    Ok(ExitCode::SUCCESS)
}
