//! The table people read (`results.md`): test accuracy mean ± std per task and method, then
//! tokens and time per cell with links to the runs, and the best prompts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{human_seconds, human_tokens, pct, Aggregate, BenchReport, CellRow};
use crate::bench::accuracy::Method;

/// The table people read: test accuracy (%) mean ± std per task and method, the best of each
/// row in bold; then tokens and time, every cell with a link to its run, and the best prompts.
pub fn render_markdown(r: &BenchReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Test accuracy by method\n");
    let _ = writeln!(
        s,
        "Model: `{}`{} · seeds: {} · date: {} · hardware: {}\n",
        short_model(&r.model),
        other_models_note(&r.other_models, "`"),
        r.seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        r.date,
        r.hardware
    );
    let _ = writeln!(s, "Command: `{}`\n", r.command);
    if !r.overrides.is_empty() {
        let _ = writeln!(
            s,
            "Settings changed for every cell: `{}`\n",
            r.overrides.join("`, `")
        );
    }
    let header = |s: &mut String| {
        let _ = write!(s, "| task |");
        for m in &r.methods {
            let _ = write!(s, " {} |", column_name(*m, r.k));
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "|---|{}", "---|".repeat(r.methods.len()));
    };
    let _ = writeln!(
        s,
        "Test accuracy (%), mean ± std over seeds (n = seeds that finished):\n"
    );
    header(&mut s);
    let mut rote_seen = false;
    for t in &r.tasks {
        let best = r
            .methods
            .iter()
            .filter_map(|m| r.aggregate(t, *m)?.mean)
            .fold(f64::NEG_INFINITY, f64::max);
        let _ = write!(s, "| {t} |");
        for m in &r.methods {
            let cell = match r.aggregate(t, *m) {
                Some(Aggregate {
                    mean: Some(mean),
                    std: Some(std),
                    n,
                    ..
                }) => {
                    let text = format!("{} ± {}", pct(*mean), pct(*std));
                    let text = if (*mean - best).abs() < 1e-12 {
                        format!("**{text}**")
                    } else {
                        text
                    };
                    let seeds = r.seeds.len();
                    let text = if *n < seeds {
                        format!("{text} (n={n})")
                    } else {
                        text
                    };
                    let rote = r
                        .cells
                        .iter()
                        .any(|c| &c.task == t && c.method == *m && c.one_answer().is_some());
                    rote_seen |= rote;
                    if rote {
                        format!("{text} †")
                    } else {
                        text
                    }
                }
                _ => "—".to_string(),
            };
            let _ = write!(s, " {cell} |");
        }
        let _ = writeln!(s);
    }
    if rote_seen {
        let _ = writeln!(
            s,
            "\n† On at least one seed the network gave one answer to {:.0}% or more of the test \
             examples: its accuracy there is that answer's share of the split, not what the \
             prompts teach (the answers are in \"Every run\").",
            crate::dln::trainer::ONE_ANSWER_SHARE * 100.0
        );
    }
    let _ = writeln!(s, "\nTokens and wall time per run (mean over seeds):\n");
    header(&mut s);
    for t in &r.tasks {
        let _ = write!(s, "| {t} |");
        for m in &r.methods {
            match r.aggregate(t, *m) {
                Some(a) if a.n > 0 => {
                    let _ = write!(
                        s,
                        " {} tok · {} |",
                        human_tokens(a.tokens_mean),
                        human_seconds(a.seconds_mean)
                    );
                }
                _ => {
                    let _ = write!(s, " — |");
                }
            }
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "\nMethods:\n");
    for m in &r.methods {
        let _ = writeln!(s, "- `{}`: {}", column_name(*m, r.k), m.describe());
    }
    let _ = writeln!(
        s,
        "\n![accuracy per method and task](accuracy.svg)\n\n![dev accuracy over iterations](curves.svg)\n"
    );
    let _ = writeln!(
        s,
        "## Every run\n\nEach link is a run directory: `dln replay DIR` shows it, `dln runs show DIR` summarizes it.\n"
    );
    let _ = writeln!(
        s,
        "| task | method | seed | test | dev | tokens | time | status |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for c in &r.cells {
        let acc = |a: Option<f64>| a.map_or("—".to_string(), pct);
        let rote = c
            .one_answer()
            .map_or_else(String::new, |a| format!(" † {a}"));
        let _ = writeln!(
            s,
            "| {} | {} | {} | [{}]({}){} | {} | {} | {} | {} |",
            c.task,
            column_name(c.method, r.k),
            c.seed,
            acc(c.test_accuracy),
            c.run_dir,
            rote,
            acc(c.dev_accuracy),
            human_tokens(c.tokens as f64),
            human_seconds(c.seconds),
            c.status
        );
    }
    hidden_help(&mut s, r);
    let _ = writeln!(s, "\n## Best prompts\n");
    for t in &r.tasks {
        let _ = writeln!(s, "### {t}\n");
        for c in r.cells.iter().filter(|c| &c.task == t && c.method.trains()) {
            if c.best_prompts.is_empty() {
                continue;
            }
            let _ = writeln!(s, "- {} seed {}:", column_name(c.method, r.k), c.seed);
            for (l, p) in c.best_prompts.iter().enumerate() {
                let _ = writeln!(s, "  - L{}: {}", l + 1, one_line(p));
            }
        }
        let _ = writeln!(s);
    }
    s
}

/// For the multi-layer cells: how much the hidden layers help, as dev accuracy of the network
/// against its best output prompt reading the input alone (nothing when no such cell ran).
pub(super) fn hidden_help(s: &mut String, r: &BenchReport) {
    let cells: Vec<&CellRow> = r
        .cells
        .iter()
        .filter(|c| c.output_alone_dev.is_some() && c.dev_accuracy.is_some())
        .collect();
    if cells.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n## How much the hidden layer helps\n\nDev accuracy (%) of the trained network, and of \
         its best output prompt on the input alone (a 0-shot run without the hidden text, in \
         the cell's `output-alone/`):\n"
    );
    let _ = writeln!(
        s,
        "| task | method | seed | network | output layer alone | hidden layer adds |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for c in cells {
        let (net, alone) = (
            c.dev_accuracy.unwrap_or(0.0),
            c.output_alone_dev.unwrap_or(0.0),
        );
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:+.1} |",
            c.task,
            column_name(c.method, r.k),
            c.seed,
            pct(net),
            pct(alone),
            (net - alone) * 100.0
        );
    }
}

/// ` (backward: b.gguf; layer 1 forward: c.gguf)` after the model's name, or nothing; each
/// name between two `quote`s (a backtick in Markdown).
pub fn other_models_note(other: &BTreeMap<String, Vec<String>>, quote: &str) -> String {
    if other.is_empty() {
        return String::new();
    }
    let roles: Vec<String> = other
        .iter()
        .map(|(role, models)| {
            let names: Vec<String> = models
                .iter()
                .map(|m| format!("{quote}{}{quote}", short_model(m)))
                .collect();
            format!("{role}: {}", names.join(", "))
        })
        .collect();
    format!(" ({})", roles.join("; "))
}

/// A model id as a person names it: the GGUF file of an embedded model, else the id itself.
pub fn short_model(id: &str) -> String {
    match id.split(':').collect::<Vec<_>>().as_slice() {
        ["llama.cpp", file, ..] => file.to_string(),
        _ => id.chars().take(60).collect(),
    }
}

pub fn column_name(m: Method, k: usize) -> String {
    if m == Method::KShot {
        format!("{k}-shot")
    } else {
        m.name().to_string()
    }
}

pub(super) fn one_line(p: &str) -> String {
    let flat = p.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() {
        "(empty)".to_string()
    } else {
        flat.replace('|', "\\|")
    }
}
