//! After training: `dln export`, `dln predict`, `dln runs`, `dln compare`.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use dln::run::export::{export_run, Format, Which};
use dln::run::predict::{fields, open_network, predict, read_inputs};
use dln::run::runs::{default_roots, find_runs, run_info, RunInfo};
use dln::run::{atomic_write, SessionOptions};

pub fn export(
    run_dir: &Path,
    format: Format,
    which: Which,
    output: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let exported = export_run(run_dir, which)?;
    let text = exported.render(format)?;
    match output {
        Some(path) => {
            atomic_write(path, text.as_bytes())?;
            eprintln!("wrote {} ({})", path.display(), exported.provenance);
        }
        None => {
            std::io::stdout().write_all(text.as_bytes())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Options of `dln predict`.
pub struct PredictArgs<'a> {
    pub network: &'a Path,
    pub input: Option<&'a Path>,
    pub output: Option<&'a Path>,
    pub explain: bool,
    pub skip_bad_lines: bool,
    pub model: Option<&'a str>,
}

pub fn predict_cmd(a: PredictArgs<'_>) -> anyhow::Result<ExitCode> {
    let net = open_network(a.network)?;
    let (source, text) = match a.input {
        Some(p) if p != Path::new("-") => (
            p.display().to_string(),
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
        _ => {
            if std::io::stdin().is_terminal() {
                eprintln!("reading inputs from the terminal, one per line; end with Ctrl-D");
            }
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read the inputs from stdin")?;
            ("stdin".to_string(), s)
        }
    };
    let (input_field, target_field) = fields(&net.config);
    let inputs = read_inputs(&text, &input_field, &target_field);
    if let Some(first) = inputs.bad.first() {
        if !a.skip_bad_lines {
            anyhow::bail!(
                "{source}:{}: {} ({} bad line(s) in all; --skip-bad-lines answers the others)",
                first.line,
                first.message,
                inputs.bad.len()
            );
        }
        for b in &inputs.bad {
            eprintln!("{source}:{}: skipped: {}", b.line, b.message);
        }
    }
    let opts = SessionOptions {
        model: a.model.map(str::to_string),
        ..SessionOptions::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let answers = rt.block_on(predict(&net, &inputs.examples, a.explain, opts))?;
    let mut out = String::new();
    for p in &answers {
        out.push_str(&serde_json::to_string(p)?);
        out.push('\n');
    }
    let scored: Vec<bool> = answers.iter().filter_map(|p| p.correct).collect();
    match a.output {
        Some(path) => atomic_write(path, out.as_bytes())?,
        None => std::io::stdout().write_all(out.as_bytes())?,
    }
    if !scored.is_empty() {
        let right = scored.iter().filter(|c| **c).count();
        eprintln!(
            "accuracy {:.3} ({right}/{} inputs with a target)",
            right as f64 / scored.len() as f64,
            scored.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn pct(a: Option<f64>) -> String {
    a.map_or("—".into(), |a| format!("{:.1}", a * 100.0))
}

fn roots(dirs: &[PathBuf]) -> Vec<PathBuf> {
    if dirs.is_empty() {
        default_roots()
    } else {
        dirs.to_vec()
    }
}

pub fn runs(dirs: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let found = find_runs(&roots(dirs));
    if json {
        println!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(ExitCode::SUCCESS);
    }
    if found.is_empty() {
        eprintln!(
            "no runs in {}",
            roots(dirs)
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", runs_table(&found));
    Ok(ExitCode::SUCCESS)
}

/// The table of `dln runs`, newest first.
pub fn runs_table(runs: &[RunInfo]) -> String {
    let rows = runs.iter().map(|r| {
        let when: String = r
            .when
            .chars()
            .take(16)
            .collect::<String>()
            .replace('T', " ");
        vec![
            when,
            truncate(&r.task, 16),
            r.method.clone(),
            r.status_label().to_string(),
            format!("{}/{}", r.iterations_done, r.iterations),
            pct(r.best_dev),
            pct(r.test),
            r.branch_label(),
            r.run_dir.display().to_string(),
        ]
    });
    let header = [
        "when",
        "task",
        "method",
        "state",
        "its",
        "dev%",
        "test%",
        "branch of",
        "run directory",
    ];
    family_table(&header, &[4, 5, 6], 7, runs, rows)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

pub fn show(run: &Path) -> anyhow::Result<ExitCode> {
    let r = run_info(run)
        .with_context(|| format!("{} is not a readable run directory", run.display()))?;
    println!("run       {}", r.run_dir.display());
    println!("task      {} · {} · {}", r.task, r.method, r.model);
    for (role, model) in &r.other_models {
        println!("          {role}: {model}");
    }
    println!(
        "state     {} · iteration {}/{} · {}",
        r.status_label(),
        r.iterations_done,
        r.iterations,
        r.when
    );
    println!(
        "accuracy  best dev {} % · test {} %",
        pct(r.best_dev),
        pct(r.test)
    );
    println!("tokens    {}", r.total_tokens);
    if let Some(b) = &r.branch_of {
        println!(
            "branch of {} after iteration {}{}",
            b.parent.display(),
            b.iteration,
            if b.changes.is_empty() {
                String::new()
            } else {
                format!(" · {}", b.changes.join(" "))
            }
        );
    }
    // Its own branches, wherever runs are looked for and beside it.
    let mut near = default_roots();
    near.extend(r.run_dir.parent().map(Path::to_path_buf));
    for child in find_runs(&near).iter().filter(|c| r.is_parent_of(c)) {
        let at = child.branch_of.as_ref().map_or(0, |b| b.iteration);
        println!(
            "branched  after iteration {at} → {} ({}, {}/{})",
            child.run_dir.display(),
            child.status_label(),
            child.iterations_done,
            child.iterations
        );
    }
    for (l, p) in r.best_prompts.iter().enumerate() {
        println!(
            "\nlayer {} best prompt:\n  {}",
            l + 1,
            p.replace('\n', "\n  ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn compare(runs: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let infos: Vec<RunInfo> = runs
        .iter()
        .map(|r| {
            run_info(r).with_context(|| format!("{} is not a readable run directory", r.display()))
        })
        .collect::<anyhow::Result<_>>()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&infos)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", compare_table(&infos));
    Ok(ExitCode::SUCCESS)
}

/// The accuracy table of `dln compare`, then each layer's best prompts with the words that
/// differ from the first run's marked `[-removed-]` / `{+added+}`.
pub fn compare_table(infos: &[RunInfo]) -> String {
    let rows = infos.iter().enumerate().map(|(i, r)| {
        vec![
            (i + 1).to_string(),
            truncate(&r.task, 16),
            r.method.clone(),
            pct(r.best_dev),
            pct(r.test),
            r.total_tokens.to_string(),
            r.elapsed_ms
                .map_or("—".into(), |ms| format!("{:.1}s", ms as f64 / 1000.0)),
            family(infos, r),
            r.run_dir.display().to_string(),
        ]
    });
    let header = [
        "#",
        "task",
        "method",
        "dev%",
        "test%",
        "tokens",
        "time",
        "branch of",
        "run directory",
    ];
    let mut out = family_table(&header, &[3, 4, 5, 6], 7, infos, rows);
    let layers = infos
        .iter()
        .map(|r| r.best_prompts.len())
        .max()
        .unwrap_or(0);
    for l in 0..layers {
        out.push_str(&format!("\nlayer {} best prompts\n", l + 1));
        let first = infos
            .first()
            .and_then(|r| r.best_prompts.get(l))
            .cloned()
            .unwrap_or_default();
        for (i, r) in infos.iter().enumerate() {
            let p = r.best_prompts.get(l).cloned().unwrap_or_default();
            let shown = if i == 0 { p } else { word_diff(&first, &p) };
            out.push_str(&format!("  {}  {}\n", i + 1, shown.replace('\n', " ")));
        }
    }
    out
}

/// A table of runs whose column `family` ("branch of") is left out when no run is a branch.
fn family_table(
    header: &[&str],
    right: &[usize],
    family: usize,
    runs: &[RunInfo],
    rows: impl Iterator<Item = Vec<String>>,
) -> String {
    if runs.iter().any(|r| r.branch_of.is_some()) {
        return super::table::plain(header, right, rows);
    }
    let mut header = header.to_vec();
    header.remove(family);
    let rows = rows.map(|mut row| {
        row.remove(family);
        row
    });
    super::table::plain(&header, right, rows)
}

/// Where a compared run came from: `#k@N` when its parent is compared too (row `k`), else the
/// parent's name; empty for a run that is no branch.
fn family(infos: &[RunInfo], r: &RunInfo) -> String {
    let Some(b) = &r.branch_of else {
        return String::new();
    };
    match infos.iter().position(|p| p.is_parent_of(r)) {
        Some(k) => format!("#{}@{}", k + 1, b.iteration),
        None => r.branch_label(),
    }
}

fn word_diff(old: &str, new: &str) -> String {
    use similar::{ChangeTag, TextDiff};
    // Consecutive changed words (and the spaces between them) read as one `[-…-]{+…+}` group.
    fn flush(out: &mut String, removed: &mut String, added: &mut String) {
        let (r, a) = (removed.trim(), added.trim());
        let leading =
            removed.starts_with(char::is_whitespace) || added.starts_with(char::is_whitespace);
        if leading && !(r.is_empty() && a.is_empty()) && !out.ends_with(char::is_whitespace) {
            out.push(' ');
        }
        if !r.is_empty() {
            out.push_str(&format!("[-{r}-]"));
        }
        if !a.is_empty() {
            out.push_str(&format!("{{+{a}+}}"));
        }
        let trailing =
            if removed.ends_with(char::is_whitespace) || added.ends_with(char::is_whitespace) {
                " "
            } else {
                ""
            };
        if !(r.is_empty() && a.is_empty()) {
            out.push_str(trailing);
        }
        removed.clear();
        added.clear();
    }
    let diff = TextDiff::from_words(old, new);
    let (mut out, mut removed, mut added) = (String::new(), String::new(), String::new());
    for c in diff.iter_all_changes() {
        match c.tag() {
            // A space between two changed words belongs to the change around it.
            ChangeTag::Equal
                if c.value().trim().is_empty() && !(removed.is_empty() && added.is_empty()) =>
            {
                removed.push_str(c.value());
                added.push_str(c.value());
            }
            ChangeTag::Equal => {
                flush(&mut out, &mut removed, &mut added);
                out.push_str(c.value());
            }
            ChangeTag::Delete => removed.push_str(c.value()),
            ChangeTag::Insert => added.push_str(c.value()),
        }
    }
    flush(&mut out, &mut removed, &mut added);
    out
}

#[cfg(test)]
mod tests {
    use super::word_diff;

    #[test]
    fn a_word_diff_groups_neighbouring_changes_and_keeps_the_spaces() {
        assert_eq!(
            word_diff(
                "Is the sentiment positive or negative?",
                "The sentiment is not positive."
            ),
            "[-Is the-]{+The+} sentiment [-positive or negative?-]{+is not positive.+}"
        );
        assert_eq!(word_diff("a b c", "a b"), "a b [-c-]");
        assert_eq!(word_diff("a b", "a b c d"), "a b {+c d+}");
        assert_eq!(word_diff("same text", "same text"), "same text");
    }
}
