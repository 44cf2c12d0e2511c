//! What can be wrong with task data, each saying where.

use std::path::PathBuf;

/// A problem with the data a config names. Every variant that comes from a file names the file,
/// and the line where there is one.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read data file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: malformed JSON: {message}", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}:{line}: missing field `{field}` (the record has: {}); set `data.{which}_field` if the file names it differently",
        path.display(), available.join(", "))]
    MissingField {
        path: PathBuf,
        line: usize,
        field: String,
        /// `input` or `target`: which config key names the field.
        which: &'static str,
        available: Vec<String>,
    },
    #[error("{}:{line}: field `{field}` must be {expected}", path.display())]
    FieldType {
        path: PathBuf,
        line: usize,
        field: String,
        expected: &'static str,
    },
    #[error("{}:{line}: unknown label `{label}` (known: {}); add it to `data.label_map` or `data.classes`",
        path.display(), known.join(", "))]
    UnknownLabel {
        path: PathBuf,
        line: usize,
        label: String,
        known: Vec<String>,
    },
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },
    #[error("{}: no examples", path.display())]
    Empty { path: PathBuf },
    #[error("the {split} split is empty ({detail})")]
    EmptySplit { split: &'static str, detail: String },
    #[error("data config: {0}")]
    Config(String),
}
