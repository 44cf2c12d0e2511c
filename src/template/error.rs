//! What can be wrong with a template, each saying where.

use std::path::PathBuf;

/// `origin` is the file a template came from (or `builtin:NAME`); `line` is a line of that file
/// where it is known.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read template file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: invalid template file: {message}")]
    File { origin: String, message: String },
    #[error("{origin}:{line}: template syntax error: {message}")]
    Syntax {
        origin: String,
        line: usize,
        message: String,
    },
    #[error("{origin}{}: unknown variable `{variable}` in a {role} template (allowed: {allowed})",
        line.map(|l| format!(":{l}")).unwrap_or_default())]
    UnknownVariable {
        origin: String,
        line: Option<usize>,
        variable: String,
        role: String,
        allowed: String,
    },
    #[error("{origin}{}: cannot render: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Render {
        origin: String,
        line: Option<usize>,
        message: String,
    },
    #[error("no built-in template `{name}` (built-in: {known})")]
    UnknownBuiltin { name: String, known: String },
    #[error("{origin}: no version `{version}` (available: {available})")]
    Version {
        origin: String,
        version: String,
        available: String,
    },
}
