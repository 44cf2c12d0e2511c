//! The layering docs/ARCHITECTURE.md draws, held by a test: the core (`dln/`, `run/`, `llm/`,
//! `config/`, `template/`, `data/`) knows nothing of terminals or of the commands that drive it,
//! so none of its files may name `tui`, `cli`, `ratatui` or `crossterm` in code.

use std::path::{Path, PathBuf};

/// The core's directories under src/.
const CORE: [&str; 6] = ["dln", "run", "llm", "config", "template", "data"];

/// What the core may not use: the terminal crates and the layers above it.
const FORBIDDEN: [&str; 6] = [
    "ratatui",
    "crossterm",
    "crate::tui",
    "crate::cli",
    "dln::tui",
    "dln::cli",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A line's code, without its `//` comment (a doc comment may well mention the workbench).
fn code_of(line: &str) -> &str {
    line.split("//").next().unwrap_or("")
}

/// Where the core names a forbidden path: `file:line: text` for each.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for dir in CORE {
        rust_files(&src.join(dir), &mut files);
    }
    assert!(
        files.len() > 20,
        "the core's files were not found under {}",
        src.display()
    );
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        for (i, line) in text.lines().enumerate() {
            let code = code_of(line);
            if FORBIDDEN.iter().any(|f| code.contains(f)) {
                found.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn the_core_imports_no_terminal_crate_and_no_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "the core reaches up:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_finds_a_forbidden_import() {
    let tmp = tempfile::tempdir().expect("tmp");
    for dir in CORE {
        std::fs::create_dir_all(tmp.path().join(dir)).expect("mkdir");
        for n in 0..4 {
            std::fs::write(
                tmp.path().join(dir).join(format!("f{n}.rs")),
                "// uses ratatui\n",
            )
            .expect("write");
        }
    }
    assert!(
        violations(tmp.path()).is_empty(),
        "a comment is not an import"
    );
    std::fs::write(tmp.path().join("run/bad.rs"), "use crossterm::event;\n").expect("write");
    let found = violations(tmp.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("bad.rs:1"), "{found:?}");
}

/// The longest a source file may grow: past it, a file holds more than one idea and is split.
const MAX_LINES: usize = 600;

#[test]
fn no_source_file_is_over_600_lines() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).expect("read").lines().count();
            (n > MAX_LINES).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these files:\n{}", long.join("\n"));
}

/// The library's modules (`llm::cache::store` for src/llm/cache/store.rs, `llm::cache` for its
/// mod.rs) with their files, leaving out the binary's main.rs and the modules only tests compile
/// (`#[cfg(test)] mod testing;`).
fn modules(src: &Path) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut modules: Vec<(String, PathBuf)> = files
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "main.rs"))
        .map(|f| {
            let rel = f.strip_prefix(src).expect("under src").with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
                parts.pop();
            }
            (parts.join("::"), f)
        })
        .collect();
    let test_only: Vec<String> = modules
        .iter()
        .flat_map(|(m, f)| {
            let text = std::fs::read_to_string(f).expect("read");
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            lines
                .windows(2)
                .filter(|w| w[0] == "#[cfg(test)]")
                .filter_map(|w| w[1].strip_prefix("mod ")?.strip_suffix(';'))
                .map(|name| join(m, name))
                .collect::<Vec<_>>()
        })
        .collect();
    modules.retain(|(m, _)| !test_only.contains(m));
    modules
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}::{name}")
    }
}

/// The modules `module`'s code (its tests left out) names with `crate::…` or `super::…` (a
/// `{…}` group opened into its members), each resolved to the deepest module of the path; its
/// own ancestors and descendants are not counted (a parent re-exporting its child, a child using
/// its parent's items, are one unit).
fn imports(module: &str, file: &Path, known: &[String]) -> Vec<String> {
    let text = std::fs::read_to_string(file).expect("read");
    let lines: Vec<&str> = text.lines().map(code_of).collect();
    let end = lines
        .windows(2)
        .position(|w| w[0].trim() == "#[cfg(test)]" && w[1].trim().starts_with("mod tests"))
        .unwrap_or(lines.len());
    let code = lines[..end].join("\n");
    let parent = module.rsplit_once("::").map(|(p, _)| p).unwrap_or("");
    let is_path = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    let mut paths = Vec::new();
    for (prefix, base) in [("crate::", ""), ("super::", parent)] {
        for (at, _) in code.match_indices(prefix) {
            if code[..at].chars().last().is_some_and(is_path) {
                continue;
            }
            let rest = &code[at + prefix.len()..];
            let path: String = rest.chars().take_while(|c| is_path(*c)).collect();
            let path = path.trim_end_matches(':').to_string();
            paths.push(join(base, &path));
            // `…::{a, b::C}`: each member's path too.
            if let Some(group) = rest[path.len()..].strip_prefix("::{") {
                let mut depth = 0;
                let close = group
                    .char_indices()
                    .find(|(_, c)| {
                        depth += match c {
                            '{' => 1,
                            '}' => -1,
                            _ => 0,
                        };
                        depth < 0
                    })
                    .map_or(group.len(), |(i, _)| i);
                for member in group[..close].split([',', '{']) {
                    let member: String =
                        member.trim().chars().take_while(|c| is_path(*c)).collect();
                    if !member.is_empty() {
                        paths.push(join(&join(base, &path), member.trim_end_matches(':')));
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    for path in paths {
        let mut parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        while !parts.is_empty() && !known.contains(&parts.join("::")) {
            parts.pop();
        }
        if parts.is_empty() {
            continue;
        }
        let target = parts.join("::");
        let related = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}::"));
        if !related(module, &target) && !related(&target, module) && !found.contains(&target) {
            found.push(target);
        }
    }
    found
}

/// Every circle of imports among the modules: `a → b → a` for each.
fn circles(src: &Path) -> Vec<String> {
    let modules = modules(src);
    let known: Vec<String> = modules.iter().map(|(m, _)| m.clone()).collect();
    let edges: Vec<Vec<usize>> = modules
        .iter()
        .map(|(m, f)| {
            imports(m, f, &known)
                .iter()
                .filter_map(|t| known.iter().position(|k| k == t))
                .collect()
        })
        .collect();
    // A depth-first search from every module; a path back to a module on the stack is a circle.
    fn visit(
        at: usize,
        edges: &[Vec<usize>],
        stack: &mut Vec<usize>,
        done: &mut [bool],
        found: &mut Vec<Vec<usize>>,
    ) {
        if let Some(start) = stack.iter().position(|s| *s == at) {
            found.push(stack[start..].to_vec());
            return;
        }
        if done[at] {
            return;
        }
        stack.push(at);
        for &next in &edges[at] {
            visit(next, edges, stack, done, found);
        }
        stack.pop();
        done[at] = true;
    }
    let mut done = vec![false; modules.len()];
    let mut found = Vec::new();
    for m in 0..modules.len() {
        visit(m, &edges, &mut Vec::new(), &mut done, &mut found);
    }
    found
        .iter()
        .map(|c| {
            let mut names: Vec<&str> = c.iter().map(|i| known[*i].as_str()).collect();
            names.push(names[0]);
            names.join(" → ")
        })
        .collect()
}

#[test]
fn no_two_modules_import_each_other_even_through_others() {
    let found = circles(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

#[test]
fn the_check_finds_a_circle_and_not_a_parent_and_its_child() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = tmp.path().join("run");
    std::fs::create_dir_all(&run).expect("mkdir");
    let write = |name: &str, text: &str| std::fs::write(run.join(name), text).expect("write");
    write("mod.rs", "mod a;\nmod b;\npub use a::A;\n");
    write("a.rs", "use crate::run::RunError;\nuse super::b::B;\n");
    write("b.rs", "// use super::a::A;\npub struct B;\n");
    assert!(circles(tmp.path()).is_empty(), "{:?}", circles(tmp.path()));
    write(
        "b.rs",
        "use crate::run::{\n    a::A,\n    RunError,\n};\npub struct B;\n",
    );
    assert_eq!(circles(tmp.path()), ["run::a → run::b → run::a"]);
}
