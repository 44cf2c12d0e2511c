//! The database file: its name, layout and settings, the store's error, and opening it checked
//! (a damaged file, or one another version laid out, is set aside and a new one started).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, TransactionBehavior};

/// The database's file name inside the cache directory.
pub const DB_FILE: &str = "calls.sqlite";

/// A cache key: sha256 of model id, operation and request (see [`super::call_key`]).
pub type Key = [u8; 32];

/// How long a writer waits for another process's transaction before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Files up to this size are integrity-checked (`PRAGMA quick_check`) on every open; a larger
/// one only when a run saw a corruption error in it (checking reads the whole file).
pub const QUICK_CHECK_MAX: u64 = 64 << 20;

/// The WAL's share of the bound: an eighth of it, at most 8 MiB. SQLite checkpoints the WAL
/// into the database when it reaches half of this and truncates it to that after, which leaves
/// the other half for a batch written past it.
pub fn wal_limit(max_bytes: u64) -> u64 {
    (max_bytes / 8).min(8 << 20)
}

/// The memory map of the database file: the whole file up to the bound, at most 1 GiB.
const MMAP_MAX: u64 = 1 << 30;

/// SQLite's own page cache per connection (its `cache_size`, in KiB when negative): the store's
/// memory does not grow with the number of entries.
const PAGE_CACHE_KIB: i64 = 2048;

/// The layout this version writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

/// Written beside the database when a corruption error was seen, so the next open checks it
/// whatever its size.
const SUSPECT_SUFFIX: &str = ".suspect";

const SCHEMA: &str = "
CREATE TABLE calls (
    id    INTEGER PRIMARY KEY,
    key   BLOB NOT NULL,
    model TEXT NOT NULL,
    op    TEXT NOT NULL,
    used  INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX calls_by_use ON calls(used);
CREATE TABLE uses (
    id   INTEGER NOT NULL,
    used INTEGER NOT NULL,
    n    INTEGER NOT NULL
);
PRAGMA user_version = 1;
";

/// A row's id: the key's first 8 bytes.
pub(super) fn row_id(key: &Key) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[..8]);
    i64::from_be_bytes(b)
}

/// Inserts or replaces rows of `calls`: `?1` id, `?2` key, `?3` model, `?4` op, `?5` used,
/// `?6` value.
pub(super) const UPSERT: &str = "INSERT INTO calls (id, key, model, op, used, value)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT(id) DO UPDATE SET key = excluded.key, model = excluded.model,
     op = excluded.op, used = excluded.used, value = excluded.value";

/// A failure of the store; each names the database file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("call cache {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("call cache {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl StoreError {
    pub(super) fn sqlite(path: &Path) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the file itself is damaged (as opposed to locked, full or unreadable).
    pub(super) fn is_damage(&self) -> bool {
        matches!(self, StoreError::Sqlite { source, .. } if is_damage(source))
    }
}

fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// Opens `path`, configures it and creates the schema; checks its integrity when small or
/// suspect. Damage (or another version's layout) comes back as an error whose
/// [`StoreError::is_damage`] is true.
pub(super) fn open_checked(path: &Path, max_bytes: u64) -> Result<Connection, StoreError> {
    if !has_sqlite_header(path).map_err(StoreError::io(path))? {
        return Err(damage(path, "not a SQLite database"));
    }
    let mut conn = Connection::open(path).map_err(StoreError::sqlite(path))?;
    let mut setup = || -> rusqlite::Result<Option<String>> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Takes effect only on a new, empty database (before the first table).
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))?;
        // Durable against a killed process (what the cache must survive); a power cut may
        // lose the last batches, never the database.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
        let wal = wal_limit(max_bytes) as i64 / 2;
        conn.pragma_update(None, "journal_size_limit", wal)?;
        conn.pragma_update(None, "mmap_size", max_bytes.min(MMAP_MAX) as i64)?;
        let page: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        conn.pragma_update_and_check(None, "wal_autocheckpoint", (wal / page).max(2), |r| {
            r.get::<_, i64>(0)
        })?;
        // Under the write lock, so two processes creating the cache at once create it once.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let tables: i64 = tx.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        if version == 0 && tables == 0 {
            tx.execute_batch(SCHEMA)?;
        } else if version != SCHEMA_VERSION {
            return Ok(Some(format!(
                "written by another version of dln (layout {version}, this one reads {SCHEMA_VERSION})"
            )));
        }
        tx.commit()?;
        Ok(None)
    };
    if let Some(why) = setup().map_err(StoreError::sqlite(path))? {
        return Err(damage(path, &why));
    }
    let marker = suspect_marker(path);
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if size <= QUICK_CHECK_MAX || marker.exists() {
        let problems = quick_check(&conn).map_err(StoreError::sqlite(path))?;
        if !problems.is_empty() {
            return Err(damage(
                path,
                &format!("integrity check: {}", problems.join("; ")),
            ));
        }
        let _ = std::fs::remove_file(&marker);
    }
    Ok(conn)
}

fn damage(path: &Path, why: &str) -> StoreError {
    StoreError::Sqlite {
        path: path.to_path_buf(),
        source: rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(why.to_string()),
        ),
    }
}

/// A missing or empty file is a new database; anything else must start with SQLite's magic.
fn has_sqlite_header(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e),
    };
    let mut head = Vec::with_capacity(16);
    f.by_ref().take(16).read_to_end(&mut head)?;
    Ok(head.is_empty() || head == b"SQLite format 3\0")
}

/// `PRAGMA quick_check`'s complaints (none when the file is sound).
fn quick_check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA quick_check")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows.into_iter().filter(|r| r != "ok").take(5).collect())
}

/// `path` with `suffix` appended to its name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

pub(super) fn suspect_marker(path: &Path) -> PathBuf {
    with_suffix(path, SUSPECT_SUFFIX)
}

/// Moves a damaged database (and its WAL) to `calls.sqlite.damaged-<timestamp>`.
pub(super) fn set_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let name = |n: u32| {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!("-{n}")
        };
        with_suffix(path, &format!(".damaged-{stamp}{suffix}"))
    };
    let mut aside = name(0);
    let mut n = 0;
    while aside.exists() {
        n += 1;
        aside = name(n);
    }
    std::fs::rename(path, &aside).map_err(StoreError::io(path))?;
    let _ = std::fs::rename(with_suffix(path, "-wal"), with_suffix(&aside, "-wal"));
    let _ = std::fs::remove_file(with_suffix(path, "-shm"));
    let _ = std::fs::remove_file(suspect_marker(path));
    Ok(aside)
}

/// Copies the store of `from_dir` into `to_dir`, which holds none yet: one transaction's view
/// (`VACUUM INTO`), so the copy is whole even while another process writes the original, which
/// it leaves as it was. `None` when `from_dir` holds no store; else the answers copied.
pub fn copy_store(from_dir: &Path, to_dir: &Path) -> Result<Option<u64>, StoreError> {
    let from = from_dir.join(DB_FILE);
    if !from.is_file() {
        return Ok(None);
    }
    if !has_sqlite_header(&from).map_err(StoreError::io(&from))? {
        return Err(damage(&from, "not a SQLite database"));
    }
    std::fs::create_dir_all(to_dir).map_err(StoreError::io(to_dir))?;
    let to = to_dir.join(DB_FILE);
    let conn = Connection::open(&from).map_err(StoreError::sqlite(&from))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(StoreError::sqlite(&from))?;
    conn.execute("VACUUM INTO ?1", [to.to_string_lossy()])
        .map_err(StoreError::sqlite(&from))?;
    let copy = Connection::open(&to).map_err(StoreError::sqlite(&to))?;
    let n: i64 = copy
        .query_row("SELECT count(*) FROM calls", [], |r| r.get(0))
        .map_err(StoreError::sqlite(&to))?;
    Ok(Some(n as u64))
}
