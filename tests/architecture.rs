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
