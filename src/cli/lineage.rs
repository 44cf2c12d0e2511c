//! `dln lineage RUN`: where every prompt of a run came from, per layer — the updates in order
//! (each winner with its score, rank and margin, the rejected summarised), pins, edits and
//! resets, then every winner's ancestry back to the start and the current prompt's in full.
//! `--dot` writes the same tree as Graphviz DOT, `--json` the model
//! ([`dln::dln::lineage::Lineage`]).

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use dln::dln::lineage::{LayerLineage, Lineage, Mark, Node, NodeKind, Update};
use dln::run::read_events;

/// How `dln lineage` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Dot,
    Json,
}

pub fn lineage(run: &Path, layer: Option<usize>, format: Format) -> anyhow::Result<ExitCode> {
    if !run.is_dir() {
        anyhow::bail!(
            "{} is not a directory: give a run directory (`dln runs` lists yours)",
            run.display()
        );
    }
    if !run.join(dln::run::EVENTS_FILE).is_file() {
        anyhow::bail!(
            "{} is not a run directory (it has no {}): `dln runs` lists yours",
            run.display(),
            dln::run::EVENTS_FILE
        );
    }
    let events = read_events(run)?;
    let lineage = Lineage::from_events(&events);
    if lineage.layers.is_empty() {
        anyhow::bail!(
            "{} has no recorded start (its event log has no run_started): nothing to trace",
            run.display()
        );
    }
    let layers: Vec<&LayerLineage> = match layer {
        None => lineage.layers.iter().collect(),
        Some(n) if (1..=lineage.layers.len()).contains(&n) => vec![&lineage.layers[n - 1]],
        Some(n) => anyhow::bail!(
            "--layer {n}: the run has {} layer(s); give 1 to {}",
            lineage.layers.len(),
            lineage.layers.len()
        ),
    };
    let out = match format {
        Format::Text => text(&layers),
        Format::Dot => dot(&layers),
        Format::Json => {
            let mut s = match layer {
                None => serde_json::to_string_pretty(&lineage)?,
                Some(_) => serde_json::to_string_pretty(&layers)?,
            };
            s.push('\n');
            s
        }
    };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// A text on one line, cut to `max` characters with `…`.
fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// `#3 (it 2)` or `#0 (start)`.
fn label(n: &Node) -> String {
    match n.iteration {
        Some(i) => format!("#{} (it {})", n.id, i + 1),
        None => format!("#{} (start)", n.id),
    }
}

/// The text report: per layer, its story and its winners' ancestry.
pub fn text(layers: &[&LayerLineage]) -> String {
    let mut out = String::new();
    for (k, l) in layers.iter().enumerate() {
        if k > 0 {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "layer {} · {} prompts · {} updates · now #{}{}",
            l.layer + 1,
            l.nodes.len(),
            l.updates.len(),
            l.current,
            if l.pinned { " (pinned)" } else { "" }
        );
        if let Some(start) = l.nodes.first() {
            let _ = writeln!(out, "  start   #0  {:?}", one_line(&start.prompt, 90));
        }
        for (i, u) in l.updates.iter().enumerate() {
            marks(&mut out, l, i);
            update(&mut out, l, u);
        }
        marks(&mut out, l, l.updates.len());
        let _ = writeln!(out, "  winners and their ancestry back to the start:");
        for w in l.winners() {
            let chain: Vec<String> = l.ancestry(w.id).iter().map(|n| label(n)).collect();
            let _ = writeln!(out, "    {}", chain.join(" ← "));
        }
        let _ = writeln!(out, "  the prompt now, and where it came from:");
        for n in l.ancestry(l.current).iter().rev() {
            let _ = writeln!(out, "    {} {} · {}", label(n), n.kind.name(), n.why());
            let _ = writeln!(out, "      from: {}", n.origin());
            if let Some(s) = n.source.as_ref().filter(|s| !s.message.is_empty()) {
                let _ = writeln!(out, "      message: {:?}", one_line(&s.message, 100));
            }
            for f in &n.feedback {
                let _ = writeln!(out, "      feedback: {:?}", one_line(f, 100));
            }
            for line in n.prompt.lines() {
                let _ = writeln!(out, "      │ {line}");
            }
        }
    }
    out
}

/// The marks that came after `after` updates.
fn marks(out: &mut String, l: &LayerLineage, after: usize) {
    for m in l.marks.iter().filter(|m| m.after == after) {
        mark(out, l, m);
    }
}

fn mark(out: &mut String, l: &LayerLineage, m: &Mark) {
    let Some(n) = l.node(m.node) else {
        return;
    };
    let sign = match m.what {
        dln::dln::lineage::MarkKind::Pinned => "◆",
        dln::dln::lineage::MarkKind::Unpinned => "◇",
        dln::dln::lineage::MarkKind::Edited => "✎",
        dln::dln::lineage::MarkKind::Reset => "↺",
        dln::dln::lineage::MarkKind::Parent => "⤴",
        dln::dln::lineage::MarkKind::Branched => "⑂",
    };
    let parent = n
        .parent
        .filter(|_| m.what == dln::dln::lineage::MarkKind::Edited)
        .map(|p| format!(" ← #{p}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  it {:<4} {sign} {} #{}{parent}  {:?}",
        m.iteration + 1,
        m.what.name(),
        n.id,
        one_line(&n.prompt, 70)
    );
}

fn update(out: &mut String, l: &LayerLineage, u: &Update) {
    let it = u.iteration + 1;
    let winner = u.winner.and_then(|w| l.node(w));
    match winner {
        Some(w) if w.id == u.parent => {
            let score = u
                .entries
                .iter()
                .find(|e| e.node == w.id)
                .and_then(|e| e.score);
            let _ = writeln!(
                out,
                "  it {it:<4} = kept #{}{}",
                w.id,
                score
                    .map(|s| format!(" · score {s:.2}"))
                    .unwrap_or_default()
            );
        }
        Some(w) => {
            let _ = writeln!(
                out,
                "  it {it:<4} ★ #{} ← #{} {} · {}",
                w.id,
                w.parent.unwrap_or(u.parent),
                w.kind.name(),
                w.why()
            );
            let _ = writeln!(out, "          from: {}", w.origin());
            if let Some(s) = w.source.as_ref().filter(|s| !s.message.is_empty()) {
                let _ = writeln!(out, "          message: {:?}", one_line(&s.message, 90));
            }
            let _ = writeln!(out, "          {:?}", one_line(&w.prompt, 90));
        }
        None => {
            let _ = writeln!(
                out,
                "  it {it:<4} … {} candidates, not scored yet",
                u.entries.len()
            );
        }
    }
    let rejected: Vec<(usize, f64)> = u
        .entries
        .iter()
        .filter(|e| Some(e.node) != u.winner)
        .filter_map(|e| e.score.map(|s| (e.node, s)))
        .collect();
    if winner.is_some() && !rejected.is_empty() {
        let win = u
            .entries
            .iter()
            .find(|e| Some(e.node) == u.winner)
            .and_then(|e| e.score);
        let (best, score) = rejected
            .iter()
            .copied()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0));
        let margin = win
            .map(|w| format!(", {:.2} behind", w - score))
            .unwrap_or_default();
        let from = l
            .node(best)
            .map(|n| format!(" · {}", n.origin()))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "          rejected {}: best #{best} {score:.2}{margin}{from}",
            rejected.len()
        );
    }
}

/// Graphviz DOT: a cluster per layer, edges parent → child, winners filled, the rejected grey,
/// memory links dashed, resets dotted.
pub fn dot(layers: &[&LayerLineage]) -> String {
    let mut out = String::from(
        "digraph lineage {\n  rankdir=LR;\n  node [shape=box, style=\"rounded\", fontname=\"Helvetica\", fontsize=10];\n",
    );
    for l in layers {
        let id = |n: usize| format!("l{}n{n}", l.layer);
        let _ = writeln!(out, "  subgraph cluster_layer{} {{", l.layer);
        let _ = writeln!(out, "    label=\"layer {}\";", l.layer + 1);
        for n in &l.nodes {
            let when = n
                .iteration
                .map(|i| format!("it {}", i + 1))
                .unwrap_or_else(|| "start".into());
            let score = n.score.map(|s| format!(" · {s:.2}")).unwrap_or_default();
            let head = format!("#{} {when} · {}{score}", n.id, n.kind.name());
            let label = format!("{head}\n{}", wrap_label(&one_line(&n.prompt, 90), 30));
            let mut attrs = vec![format!("label=\"{}\"", escape(&label))];
            if n.id == l.current {
                attrs.push("style=\"rounded,filled,bold\"".into());
                attrs.push("fillcolor=\"gold\"".into());
            } else if n.won {
                attrs.push("style=\"rounded,filled,bold\"".into());
                attrs.push("fillcolor=\"palegreen\"".into());
            } else if n.lost {
                attrs.push("color=\"grey60\"".into());
                attrs.push("fontcolor=\"grey45\"".into());
            }
            if n.edited {
                attrs.push("shape=note".into());
            }
            if n.pinned {
                attrs.push("peripheries=2".into());
            }
            let _ = writeln!(out, "    {} [{}];", id(n.id), attrs.join(", "));
        }
        let _ = writeln!(out, "  }}");
        for n in &l.nodes {
            if let Some(p) = n.parent {
                let style = match n.kind {
                    NodeKind::Memory => " [style=dashed, label=\"memory\"]",
                    NodeKind::Edited => " [label=\"edited\"]",
                    _ if n.lost => " [color=\"grey60\"]",
                    _ => "",
                };
                let _ = writeln!(out, "  {} -> {}{style};", id(p), id(n.id));
            }
        }
        for m in &l.marks {
            if m.what == dln::dln::lineage::MarkKind::Reset {
                // From the prompt the reset left (the newest node before it) to where it went.
                let from = l.nodes.iter().rev().find(|n| n.won && n.id != m.node);
                if let Some(from) = from {
                    let _ = writeln!(
                        out,
                        "  {} -> {} [style=dotted, label=\"reset it {}\"];",
                        id(from.id),
                        id(m.node),
                        m.iteration + 1
                    );
                }
            }
        }
    }
    out.push_str("}\n");
    out
}

/// Words on lines of about `width` characters, joined by newlines.
fn wrap_label(text: &str, width: usize) -> String {
    let mut lines: Vec<String> = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().expect("one line");
        if !last.is_empty() && last.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines.join("\n")
}

/// A DOT string's text: quotes and backslashes escaped, newlines as `\n`.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
