//! Reading a benchmark's `results.json` back (`dln bench view`): the same [`BenchReport`] that
//! `dln bench accuracy` wrote, with errors that name the file and say what to do.

use std::path::{Path, PathBuf};

use super::BenchReport;

/// The file a benchmark's report is read from, inside its output directory.
pub const RESULTS_JSON: &str = "results.json";

/// Why a benchmark's results cannot be shown; every message names the path.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path} does not exist (give the --out directory of `dln bench accuracy`, or its results.json)")]
    Missing { path: PathBuf },
    #[error("{dir} has no {RESULTS_JSON}: run `dln bench accuracy TASKS... --out {dir}` (or add --report-only to write it from the runs already there)")]
    NoResults { dir: PathBuf },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a benchmark report: line {line}, column {column}: {message}")]
    Malformed {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

/// A report and the directory its cells' `run_dir`s are relative to.
#[derive(Debug, Clone)]
pub struct ReadReport {
    pub report: BenchReport,
    /// The benchmark's output directory (the one holding `results.json`).
    pub out: PathBuf,
    /// The file read.
    pub path: PathBuf,
}

/// Reads `OUT/results.json`; `path` is the output directory or the JSON file itself.
pub fn read_report(path: &Path) -> Result<ReadReport, ReadError> {
    if !path.exists() {
        return Err(ReadError::Missing {
            path: path.to_path_buf(),
        });
    }
    let (file, out) = if path.is_dir() {
        let file = path.join(RESULTS_JSON);
        if !file.exists() {
            return Err(ReadError::NoResults {
                dir: path.to_path_buf(),
            });
        }
        (file, path.to_path_buf())
    } else {
        let out = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        (path.to_path_buf(), out)
    };
    let text = std::fs::read_to_string(&file).map_err(|source| ReadError::Io {
        path: file.clone(),
        source,
    })?;
    let report = parse_report(&text).map_err(|e| ReadError::Malformed {
        path: file.clone(),
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })?;
    Ok(ReadReport {
        report,
        out,
        path: file,
    })
}

/// The report in a `results.json` text.
pub fn parse_report(text: &str) -> Result<BenchReport, serde_json::Error> {
    serde_json::from_str(text)
}

/// serde_json ends its messages with " at line L column C", which the error says already.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::accuracy::report::{BenchReport, ReportMeta};

    #[test]
    fn a_written_report_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = ReportMeta {
            command: "dln bench accuracy".into(),
            hardware: "2 cores".into(),
            date: "2026-01-01".into(),
            k: 3,
            overrides: vec!["train.iterations=2".into()],
        };
        let report = BenchReport::new(&[], dir.path(), meta);
        let text = serde_json::to_string_pretty(&report).expect("json");
        std::fs::write(dir.path().join(RESULTS_JSON), text).expect("write");
        for path in [dir.path().to_path_buf(), dir.path().join(RESULTS_JSON)] {
            let back = read_report(&path).expect("reads back");
            assert_eq!(back.report.k, 3);
            assert_eq!(back.report.overrides, vec!["train.iterations=2"]);
            assert_eq!(back.out, dir.path());
        }
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gone = dir.path().join("nowhere");
        let e = read_report(&gone).expect_err("missing").to_string();
        assert!(e.contains("nowhere") && e.contains("does not exist"), "{e}");
        let e = read_report(dir.path()).expect_err("no results").to_string();
        assert!(e.contains("has no results.json"), "{e}");
        let file = dir.path().join(RESULTS_JSON);
        std::fs::write(&file, "{\n  \"model\": 3\n}").expect("write");
        let e = read_report(dir.path()).expect_err("malformed").to_string();
        assert!(e.contains("results.json") && e.contains("line 2"), "{e}");
        assert!(!e.contains(" at line "), "{e}");
    }
}
