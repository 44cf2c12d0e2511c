//! `dln bench engine`: naive vs prefix-reused scoring and batched vs sequential generation on
//! the embedded model, as a table or one JSON object (`--json`).
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use dln::llm::embedded::{EmbeddedBackend, EmbeddedOptions};

use super::signals::{Ask, StopSignals};

pub fn engine(
    model: Option<&str>,
    json: bool,
    llama_bench: Option<&Path>,
    scale: dln::bench::Scale,
) -> anyhow::Result<ExitCode> {
    // The tools are looked for before the model loads, so a wrong DIR fails at once.
    let tools = llama_bench
        .map(dln::bench::limit::LlamaTools::find)
        .transpose()?;
    let path = dln::llm::model::resolve(model, true)?;
    eprintln!("loading {}", path.display());
    let backend = EmbeddedBackend::load(&path, EmbeddedOptions::default())
        .with_context(|| format!("loading {}", path.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let opts = dln::bench::EngineOptions {
        scale,
        limit: tools.map(|t| (t, path.clone())),
    };
    let report = runtime.block_on(dln::bench::run_engine(&backend, &opts, &|what| {
        eprintln!("{what}")
    }))?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", dln::bench::render_table(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// What `dln bench cache` was asked.
pub struct CacheArgs {
    pub entries: usize,
    pub lookups: usize,
    pub max_mb: f64,
    pub dir: Option<std::path::PathBuf>,
}

/// `dln bench cache`: both stores, each measured by this binary run again with `--side`, and the
/// bounded run; or, with `side` (`[old|new, DIR]`), one store's figures as JSON on stdout.
pub fn cache(args: CacheArgs, json: bool, side: Option<&[String]>) -> anyhow::Result<ExitCode> {
    use dln::bench::cache as bc;
    anyhow::ensure!(args.entries >= 10, "--entries must be at least 10");
    anyhow::ensure!(args.lookups >= 1, "--lookups must be at least 1");
    dln::config::check_max_mb(args.max_mb)
        .map_err(|e| anyhow::anyhow!(e.replace("`cache.max_mb`", "--max-mb")))?;
    if let Some([which, dir]) = side {
        let dir = Path::new(dir);
        let report = match which.as_str() {
            "old" => bc::measure_old(dir, args.entries, args.lookups)?,
            "new" => bc::measure_new(dir, args.entries, args.lookups)?,
            other => anyhow::bail!("--side takes old or new, not {other}"),
        };
        println!("{}", serde_json::to_string(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let exe = std::env::current_exe().context("cannot find the dln binary to measure a side")?;
    let side = |which: &str, dir: &Path| -> anyhow::Result<bc::SideReport> {
        let out = std::process::Command::new(&exe)
            .args(["bench", "cache", "--entries"])
            .arg(args.entries.to_string())
            .arg("--lookups")
            .arg(args.lookups.to_string())
            .arg("--side")
            .arg(which)
            .arg(dir)
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("running {} for the {which} store", exe.display()))?;
        anyhow::ensure!(
            out.status.success(),
            "measuring the {which} store failed ({})",
            out.status
        );
        serde_json::from_slice(&out.stdout)
            .with_context(|| format!("reading the {which} store's figures"))
    };
    let opts = bc::CacheBenchOptions {
        entries: args.entries,
        lookups: args.lookups,
        max_mb: args.max_mb,
        dir: args.dir.unwrap_or_else(std::env::temp_dir),
    };
    let report = bc::run_cache_bench(&opts, &side, &|what| eprintln!("{what}"))?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", bc::render_cache_table(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// `dln bench http`: throughput at 1 vs 8 in flight and scores against the embedded engine.
/// `compare` is `Some(model spec)` to load the embedded model for the comparison.
pub fn forecast(runs: &[std::path::PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    use dln::bench::forecast::{iterations, render, share_within};
    let mut all = Vec::new();
    let mut report = serde_json::Map::new();
    for run in runs {
        let events = dln::run::read_events(run)?;
        let held = iterations(&events);
        if !json {
            print!("{}", render(&run.display().to_string(), &held));
        }
        report.insert(run.display().to_string(), serde_json::to_value(&held)?);
        all.extend(held);
    }
    let (ok, n) = share_within(&all, 0.25);
    if json {
        report.insert("within_25_percent".into(), serde_json::json!([ok, n]));
        println!("{}", serde_json::Value::Object(report));
    } else if runs.len() > 1 {
        println!(
            "all runs: within 25% on {ok} of {n} iterations (reruns from the call cache left out)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn keep(out: &std::path::Path, dest: &std::path::Path) -> anyhow::Result<ExitCode> {
    let kept = dln::bench::accuracy::keep::keep(out, dest)?;
    println!(
        "kept {} finished cells, {} stopped (they resume there) and {} reports in {} ({}; {} of finished cells' call caches not copied)",
        kept.cells.len(),
        kept.stopped.len(),
        kept.reports.len(),
        dest.display(),
        indicatif::BinaryBytes(kept.bytes),
        indicatif::BinaryBytes(kept.cache_bytes),
    );
    if !kept.left.is_empty() {
        println!(
            "left {} running or never checkpointed (resume them in {}):",
            kept.left.len(),
            out.display()
        );
        for cell in &kept.left {
            println!("  {}", cell.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

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

/// `dln bench accuracy`: plans the cells, prints the estimate, runs what is not done yet (Ctrl-C
/// stops the running cell at its next stage boundary or evaluation chunk; run again to resume),
/// and writes the report. Exits 3 when a cell was stopped, 1 when one failed.
pub fn accuracy(args: &super::AccuracyArgs, model: Option<&str>) -> anyhow::Result<ExitCode> {
    use dln::bench::accuracy::{self as acc, plan, Method};

    let methods = args
        .methods
        .iter()
        .map(|m| m.parse::<Method>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let tasks = args
        .tasks
        .iter()
        .map(|t| plan::resolve_task(t, &args.data))
        .collect::<Result<Vec<_>, _>>()?;
    let mut overrides = acc::shape::shape_sets(&args.shape)?;
    overrides.extend(args.set.iter().cloned());
    let opts = plan::PlanOptions {
        methods,
        seeds: args.seeds.0.clone(),
        k: args.k,
        overrides: overrides.clone(),
        out: args.out.clone(),
    };
    let cells = plan::plan(&tasks, &opts)?;
    if !args.report_only {
        print_estimate(&cells, model)?;
        if args.estimate {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcomes = if args.report_only {
        cells
            .into_iter()
            .map(|cell| {
                let status = acc::CellStatus::of_dir(&cell.dir);
                acc::CellOutcome::read_back(cell, status)
            })
            .collect()
    } else {
        let run_opts = acc::RunOptions {
            model: model.map(str::to_string),
            keep: args.keep.clone().map(|dest| (args.out.clone(), dest)),
        };
        runtime.block_on(async move {
            let cancel = tokio_util::sync::CancellationToken::new();
            watch_signals(cancel.clone())?;
            anyhow::Ok(acc::run_cells(cells, &run_opts, &|line| eprintln!("{line}"), cancel).await)
        })?
    };
    let meta = acc::report::ReportMeta {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        hardware: hardware(),
        date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
        k: args.k,
        overrides,
    };
    let report = acc::BenchReport::new(&outcomes, &args.out, meta);
    let (written, warnings) = acc::write_outputs(&args.out, &report)
        .with_context(|| format!("writing the report into {}", args.out.display()))?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let md = acc::report::render_markdown(&report);
        // The summary tables (everything before the per-run list).
        print!("{}", md.split("## Every run").next().unwrap_or(&md));
    }
    for p in written {
        eprintln!("wrote {}", p.display());
    }
    if let Some(dest) = &args.keep {
        let kept = acc::keep::keep(&args.out, dest)
            .with_context(|| format!("keeping the benchmark in {}", dest.display()))?;
        eprintln!(
            "kept {} finished and {} stopped cells, and the reports, in {}",
            kept.cells.len(),
            kept.stopped.len(),
            dest.display()
        );
    }
    eprintln!("view the table: dln bench view {}", args.out.display());
    let stopped = outcomes.iter().any(|o| o.status.unfinished());
    let failed = outcomes
        .iter()
        .any(|o| matches!(o.status, acc::CellStatus::Failed(_)));
    Ok(if failed {
        ExitCode::from(super::exit::FAILED)
    } else if stopped {
        eprintln!("some cells are not finished; run the same command again to resume them");
        ExitCode::from(super::exit::STOPPED)
    } else {
        ExitCode::SUCCESS
    })
}

/// SIGINT/SIGTERM/SIGHUP stop the running cell at its next stage boundary (an evaluation at its
/// next chunk); a second SIGINT or SIGTERM leaves at once (everything written so far is on
/// disk), as [`super::signals`] tells them apart.
fn watch_signals(cancel: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
    let mut signals = StopSignals::watch()?;
    tokio::spawn(async move {
        loop {
            if signals.next(cancel.is_cancelled()).await == Ask::Leave {
                eprintln!("interrupted; run the same command again to resume");
                // SAFETY: `_exit` ends the process at once (see `dln train`'s second Ctrl-C).
                unsafe { libc::_exit(i32::from(super::exit::INTERRUPTED)) }
            }
            if !cancel.is_cancelled() {
                eprintln!("stopping after the current stage or evaluation chunk; press Ctrl-C again (or send SIGTERM again) to stop at once");
            }
            cancel.cancel();
        }
    });
    Ok(())
}

/// Cores, memory and CPU model, for the report.
fn hardware() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let kb: f64 = m
            .lines()
            .find(|l| l.starts_with("MemTotal:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(kb / 1024.0 / 1024.0)
    });
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
        c.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    });
    let mut s = format!("{cores} cores");
    if let Some(g) = mem_gib {
        s.push_str(&format!(", {g:.0} GiB RAM"));
    }
    if let Some(c) = cpu {
        s.push_str(&format!(", {c}"));
    }
    s.push_str(", no GPU");
    s
}

/// The estimate per task and method (mean over seeds) and in all; a task and method with
/// finished cells is timed by their measured time.
fn print_estimate(cells: &[dln::bench::accuracy::Cell], model: Option<&str>) -> anyhow::Result<()> {
    use dln::bench::accuracy::estimate::{self, estimate, CellTime};
    use dln::bench::accuracy::report::human_seconds;
    use std::collections::BTreeMap;
    let mut data_by_task: BTreeMap<String, dln::data::Dataset> = BTreeMap::new();
    let mut measured_cells = Vec::new();
    let mut speeds: Vec<dln::llm::model::Speed> = Vec::new();
    for cell in cells {
        if let Some(s) = estimate::cell_speed(cell, model) {
            if !speeds.contains(&s) {
                speeds.push(s);
            }
        }
        if !data_by_task.contains_key(&cell.task) {
            let d = dln::run::load_data(&cell.config)
                .with_context(|| format!("loading the data of task {}", cell.task))?;
            data_by_task.insert(cell.task.clone(), d);
        }
        let e = estimate(cell, &data_by_task[&cell.task], model);
        let measured = dln::run::read_result(&cell.dir)
            .ok()
            .flatten()
            .filter(|r| !r.stopped_early)
            .map(|r| r.elapsed_ms as f64 / 1000.0);
        measured_cells.push((cell.task.as_str(), cell.method.name(), e, measured));
    }
    let rows = estimate::rows(measured_cells);
    eprintln!(
        "{:<32} {:<15} {:>5} {:>8} {:>10} {:>9} {:>10}",
        "task", "method", "seeds", "calls", "prompt tok", "gen tok", "time/cell"
    );
    for r in &rows {
        let time = match r.time_per_cell() {
            CellTime::Done(s) => format!("{} done", human_seconds(s)),
            CellTime::Measured(s) => format!("{} measured", human_seconds(s)),
            CellTime::Estimated(s) => format!("~{}", human_seconds(s)),
            CellTime::OnServer => "server".to_string(),
        };
        eprintln!(
            "{:<32} {:<15} {:>5} {:>8} {:>10} {:>9} {:>10}",
            r.task,
            r.method,
            r.cells,
            r.per_cell.calls,
            r.per_cell.prompt_tokens,
            r.per_cell.generated_tokens,
            time
        );
    }
    let left: f64 = rows.iter().map(estimate::Row::seconds_to_run).sum();
    if rows.iter().any(|r| r.time_per_cell() == CellTime::OnServer) {
        eprintln!(
            "cells marked `server` call an HTTP backend: their time is the server's, not estimated (a first finished seed times the rest)"
        );
    }
    let rates: Vec<String> = speeds
        .iter()
        .map(|s| {
            let how = if s.interpolated {
                ", by its file size"
            } else {
                ""
            };
            format!(
                "{} at {:.0} tokens/s per thread{how}",
                s.model, s.tokens_per_second_per_thread
            )
        })
        .collect();
    eprintln!(
        "estimate still to run: ~{} (rough: {}; prompt tokens count a context once per output class, as the report does)",
        human_seconds(left),
        if rates.is_empty() { "no embedded model".to_string() } else { rates.join(", ") }
    );
    Ok(())
}
