//! The call cache of older runs, one JSON line per answer (`calls.jsonl`), moved into the SQLite
//! store the first time the store is opened, then renamed `calls.jsonl.imported` (kept, never
//! deleted). Bad lines (invalid UTF-8, invalid JSON, a key that is not a sha256, the torn last
//! line of a killed run) are skipped and counted, and every good line after them is kept.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, TransactionBehavior};
use serde::Deserialize;

use super::file::{row_id, Key, StoreError, UPSERT};

/// The old cache's file name inside the cache directory.
pub const LEGACY_FILE: &str = "calls.jsonl";

/// What an import read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Imported {
    /// The file imported.
    pub from: PathBuf,
    /// Good lines stored.
    pub entries: u64,
    /// Lines skipped: invalid UTF-8 or JSON, or no sha256 key.
    pub skipped: u64,
    /// Where the file was moved after the import (`None` when another process moved it first).
    pub moved_to: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Line {
    key: String,
    value: serde_json::Value,
}

/// One line's key and answer (encoded as the store keeps answers), or `None` for a bad line.
fn parse_line(bytes: &[u8]) -> Option<(Key, Vec<u8>)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let line: Line = serde_json::from_str(text).ok()?;
    let key: Key = hex::decode(line.key.trim()).ok()?.try_into().ok()?;
    Some((key, super::encode(&line.value).ok()?))
}

/// Imports `dir/calls.jsonl` into `conn` in one transaction (later lines win, as they did when the
/// file was loaded into memory; each line's `used` follows its order in the file; the model and
/// operation, which the file did not record, are filled in by the first hit) and renames the
/// file. `None` when there is no such file. A file that cannot be read is left in place with a
/// warning, to be imported on a later open: it never stops a run.
pub(super) fn import_jsonl(
    conn: &mut Connection,
    dir: &Path,
    clock: &mut i64,
    db: &Path,
) -> Result<Option<Imported>, StoreError> {
    let from = dir.join(LEGACY_FILE);
    if !from.exists() {
        return Ok(None);
    }
    // Under the write lock, so two processes opening the cache at once import it once (the
    // second finds it moved, or imports the same lines again: the result is the same).
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|source| StoreError::Sqlite {
            path: db.to_path_buf(),
            source,
        })?;
    let file = match std::fs::File::open(&from) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            tracing::warn!("cannot read {} to import it: {e}", from.display());
            return Ok(None);
        }
    };
    let mut imported = Imported {
        from: from.clone(),
        ..Imported::default()
    };
    {
        let mut stmt = tx.prepare(UPSERT).map_err(|source| StoreError::Sqlite {
            path: db.to_path_buf(),
            source,
        })?;
        let start = chrono::Utc::now().timestamp_micros().max(*clock + 1);
        for line in BufReader::new(file).split(b'\n') {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(
                        "cannot read {} to import it: {e}; left in place",
                        from.display()
                    );
                    return Ok(None);
                }
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Some((key, value)) = parse_line(&line) else {
                imported.skipped += 1;
                continue;
            };
            let used = start + imported.entries as i64;
            stmt.execute(params![row_id(&key), key, "", "", used, value])
                .map_err(|source| StoreError::Sqlite {
                    path: db.to_path_buf(),
                    source,
                })?;
            imported.entries += 1;
        }
        *clock = start + imported.entries as i64;
    }
    tx.commit().map_err(|source| StoreError::Sqlite {
        path: db.to_path_buf(),
        source,
    })?;
    imported.moved_to = move_aside(&from);
    if imported.skipped > 0 {
        tracing::warn!(
            "{}: imported {} calls into {}, skipped {} bad lines (invalid UTF-8 or JSON, or a torn last line)",
            from.display(),
            imported.entries,
            db.display(),
            imported.skipped
        );
    } else {
        tracing::info!(
            "{}: imported {} calls into {}",
            from.display(),
            imported.entries,
            db.display()
        );
    }
    Ok(Some(imported))
}

/// Renames the imported file `calls.jsonl.imported` (or `.imported-2`, … when one exists).
fn move_aside(from: &Path) -> Option<PathBuf> {
    let name = |n: u32| {
        let suffix = if n < 2 {
            String::new()
        } else {
            format!("-{n}")
        };
        from.with_file_name(format!("{LEGACY_FILE}.imported{suffix}"))
    };
    let mut to = name(0);
    let mut n = 1;
    while to.exists() {
        n += 1;
        to = name(n);
    }
    match std::fs::rename(from, &to) {
        Ok(()) => Some(to),
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(
                    "cannot rename {} after importing it: {e}; it will be imported again (no harm)",
                    from.display()
                );
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_needs_utf8_json_and_a_sha256_key() {
        let key = "ab".repeat(32);
        let good = format!("{{\"key\":\"{key}\",\"value\":[1.5,{{\"a\":\"b\"}}]}}");
        let (k, v) = parse_line(good.as_bytes()).expect("good line");
        assert_eq!(hex::encode(k), key);
        assert_eq!(
            super::super::decode::<serde_json::Value>(&v),
            Some(serde_json::json!([1.5, {"a": "b"}]))
        );
        assert!(
            parse_line(b"{\"key\":\"abc\",\"value\":1}").is_none(),
            "short key"
        );
        assert!(parse_line(b"{\"key\":\"ab").is_none(), "torn");
        let mut bad = good.clone().into_bytes();
        bad[20] = 0xff;
        assert!(parse_line(&bad).is_none(), "invalid UTF-8");
    }
}
