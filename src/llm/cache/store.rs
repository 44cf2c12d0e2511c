//! The call cache's storage: one SQLite database, `calls.sqlite`, in the cache directory.
//!
//! Why SQLite: a keyed lookup reads a few pages instead of every answer being loaded into memory
//! first; a batch's answers commit in one transaction, so a process killed mid-batch leaves all
//! of them or none; and several processes (a training run, `dln eval` or `dln predict` on the
//! same run, benchmark cells sharing a cache) read and write one cache safely: in WAL mode readers
//! go on while one writer commits, and a writer that finds the database locked waits
//! ([`BUSY_TIMEOUT`]) instead of failing.
//!
//! Why synchronous calls from async code, not `spawn_blocking`: a lookup is a B-tree search in
//! pages the OS already holds (microseconds, about what handing the work to a blocking thread
//! and back would cost by itself), and a write is one short transaction per batch of answers. No
//! lock is held across an `.await`: every method takes the connection's mutex, runs its
//! statements and returns. The one wait that can be long is another process holding the write
//! lock, which lasts one batch's commit (or one eviction) and is bounded by [`BUSY_TIMEOUT`].
//!
//! Layout: a row's id is the first 8 bytes of its key (a lookup is one integer B-tree search, no
//! separate key index); the row keeps the whole key, and a lookup whose stored key differs is a
//! miss. Two keys sharing 8 bytes (about one chance in 10¹¹ among a million entries) replace each
//! other like an eviction: an answer is asked again, never given to the wrong request.
//!
//! Least-recently-used eviction: every row has a `used` clock (microseconds since the epoch, kept
//! strictly increasing within a process so that ties within a microsecond keep their order),
//! set when it is stored. A hit must not cost a write of the hit row (its page and its `used`
//! index entry: a random page per hit), so hits are queued in memory and appended,
//! [`TOUCH_BATCH`] at a time or when the store closes, to a log (`uses`: row id, clock, count;
//! about 20 bytes a hit, on sequential pages). An entry's last use is the later of its `used`
//! and its last logged hit; its hits are the counts logged for it. A hit lost to a crash only
//! makes an entry look older.
//!
//! After every write the database's size (page count × page size, O(1) pragmas) is compared with
//! the bound less the WAL's share ([`wal_limit`]); past it the log is compacted (one row per
//! entry hit), the least recently used rows are deleted until the pages in use are 90 % of that
//! (so eviction runs once per tenth of the bound written, not on every insert), the freed pages
//! are returned to the file system (`auto_vacuum = INCREMENTAL`) and the WAL is truncated.
//! SQLite checkpoints the WAL into the database at half its share and truncates it to that
//! after, so the database and its WAL stay within the bound as long as a batch is smaller than
//! the other half (a sixteenth of the bound up to 64 MiB, then 4 MiB). Reads go through a memory
//! map of the file (up to the bound), which saves a system call per page read; those pages are
//! the OS's file cache, shared and reclaimable.
//!
//! Damage: a file that is not a SQLite database, that fails `PRAGMA quick_check` on open (run
//! when the file is at most [`QUICK_CHECK_MAX`], or always after a run saw a corruption error),
//! or that another version of dln wrote in another layout, is renamed
//! `calls.sqlite.damaged-<timestamp>` with a warning and a new cache is started: a cache never
//! stops a run. A corruption error mid-run makes lookups misses and stores no-ops (with a
//! warning) and marks the file to be checked on the next open.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};

use super::import;

/// The database's file name inside the cache directory.
pub const DB_FILE: &str = "calls.sqlite";

/// A cache key: sha256 of model id, operation and request (see [`super::call_key`]).
pub type Key = [u8; 32];

/// How long a writer waits for another process's transaction before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Hits queued in memory before they are appended to the `uses` log in one transaction (64 kB
/// of queue; a commit per 256 hits cost more than the lookups themselves).
pub const TOUCH_BATCH: usize = 4096;

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

/// Eviction deletes down to this share of the bound.
const EVICT_TO: f64 = 0.9;

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

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the file itself is damaged (as opposed to locked, full or unreadable).
    fn is_damage(&self) -> bool {
        matches!(self, StoreError::Sqlite { source, .. } if is_damage(source))
    }
}

fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// What opening the store did besides opening it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenReport {
    /// Where a damaged database was moved.
    pub set_aside: Option<PathBuf>,
    /// The `calls.jsonl` import, when there was one.
    pub imported: Option<import::Imported>,
    /// Rows evicted on open (a bound lowered since the last run, or a large import).
    pub evicted: u64,
}

/// Counts of one model and operation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelCount {
    /// The model's id; empty for entries imported from `calls.jsonl` that no run has hit since
    /// (the old file did not record it).
    pub model: String,
    pub op: String,
    pub entries: u64,
    pub hits: u64,
    /// Bytes of the stored answers.
    pub value_bytes: u64,
}

/// What `dln cache stats` prints.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Stats {
    pub path: PathBuf,
    pub entries: u64,
    /// Hits recorded on the entries still stored.
    pub hits: u64,
    /// The database file and its WAL on disk.
    pub file_bytes: u64,
    /// Pages in use × page size (what the bound is compared with).
    pub live_bytes: u64,
    pub by_model: Vec<ModelCount>,
}

struct Inner {
    /// `None` once a corruption error was seen: the rest of the process runs uncached.
    conn: Option<Connection>,
    /// Hits not yet logged: row id and clock.
    touches: Vec<(i64, i64)>,
    /// Imported rows hit for the first time: row id, the model and operation they answered.
    names: Vec<(i64, Arc<str>, &'static str)>,
    clock: i64,
}

impl Inner {
    fn tick(&mut self) -> i64 {
        let now = chrono::Utc::now().timestamp_micros();
        self.clock = now.max(self.clock + 1);
        self.clock
    }
}

/// The SQLite call store. Methods are synchronous and short (see the module's doc).
pub struct CallStore {
    path: PathBuf,
    max_bytes: u64,
    inner: Mutex<Inner>,
}

impl CallStore {
    /// Opens (or creates) the store in `dir` bounded to `max_bytes`; sets a damaged database
    /// aside, imports an old `calls.jsonl`, and evicts down to the bound.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<(CallStore, OpenReport), StoreError> {
        std::fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
        let path = dir.join(DB_FILE);
        let mut report = OpenReport::default();
        let conn = match open_checked(&path, max_bytes) {
            Ok(c) => c,
            Err(e) if e.is_damage() => {
                let aside = set_aside(&path)?;
                tracing::warn!(
                    "{e}; moved to {} and starting an empty call cache",
                    aside.display()
                );
                report.set_aside = Some(aside);
                open_checked(&path, max_bytes)?
            }
            Err(e) => return Err(e),
        };
        let store = CallStore {
            path,
            max_bytes,
            inner: Mutex::new(Inner {
                conn: Some(conn),
                touches: Vec::new(),
                names: Vec::new(),
                clock: 0,
            }),
        };
        {
            let mut inner = store.lock();
            let Inner { conn, clock, .. } = &mut *inner;
            if let Some(conn) = conn.as_mut() {
                report.imported = import::import_jsonl(conn, dir, clock, &store.path)?;
            }
        }
        report.evicted = store.evict_if_over()?;
        Ok((store, report))
    }

    /// Where the database is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bound in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves at worst queued touches: go on with them.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stored answers of `keys` that `decode` accepts (it reads the stored bytes in place),
    /// `None` for a miss; the hits are counted as used by `model`'s `op`.
    pub fn get<T>(
        &self,
        model: &str,
        op: &'static str,
        keys: &[Key],
        decode: impl Fn(&[u8]) -> Option<T>,
    ) -> Result<Vec<Option<T>>, StoreError> {
        let miss = || (0..keys.len()).map(|_| None).collect();
        let mut inner = self.lock();
        let found = match inner.conn.as_ref() {
            Some(conn) => read(conn, keys, &decode).map_err(StoreError::sqlite(&self.path)),
            None => return Ok(miss()),
        };
        let found = match found {
            Ok(f) => f,
            Err(e) if e.is_damage() => {
                self.disable(&mut inner, &e);
                return Ok(miss());
            }
            Err(e) => return Err(e),
        };
        let mut out = Vec::with_capacity(found.len());
        let mut model_arc: Option<Arc<str>> = None;
        for (key, row) in keys.iter().zip(found) {
            let answer = row.and_then(|r| {
                let a = r.answer?;
                let id = row_id(key);
                let t = inner.tick();
                inner.touches.push((id, t));
                if r.unnamed {
                    let m = model_arc.get_or_insert_with(|| Arc::from(model)).clone();
                    inner.names.push((id, m, op));
                }
                Some(a)
            });
            out.push(answer);
        }
        if inner.touches.len() >= TOUCH_BATCH {
            let r = self.write(&mut inner, |_, _| Ok(()));
            self.tolerate(&mut inner, r)?;
            drop(inner);
            self.evict_if_over()?;
        }
        Ok(out)
    }

    /// Stores a batch of answers (encoded, see [`super::encode`]) of `model`'s `op` in one
    /// transaction, then evicts if the store has outgrown its bound.
    pub fn put(
        &self,
        model: &str,
        op: &'static str,
        answers: &[(Key, Vec<u8>)],
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let r = self.write(&mut inner, |tx, used| {
            let mut stmt = tx.prepare_cached(UPSERT)?;
            for (i, (key, value)) in answers.iter().enumerate() {
                if i == answers.len() / 2 {
                    // A kill here leaves half the batch written to the WAL, uncommitted; a
                    // full disk or an I/O error fails the transaction.
                    crate::fault::io_point("cache_append", || {
                        let _ = tx.cache_flush();
                    })
                    .map_err(|e| {
                        rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
                            Some(e.to_string()),
                        )
                    })?;
                }
                stmt.execute(params![row_id(key), key, model, op, used, value])?;
            }
            Ok(())
        });
        self.tolerate(&mut inner, r)?;
        drop(inner);
        self.evict_if_over().map(|_| ())
    }

    /// Runs `f` in one write transaction (after logging the queued hits), with a fresh clock.
    fn write(
        &self,
        inner: &mut Inner,
        f: impl FnOnce(&rusqlite::Transaction<'_>, i64) -> rusqlite::Result<()>,
    ) -> Result<(), StoreError> {
        let used = inner.tick();
        let Inner {
            conn,
            touches,
            names,
            ..
        } = inner;
        let Some(conn) = conn.as_mut() else {
            return Ok(());
        };
        let run = || -> rusqlite::Result<()> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            log_uses(&tx, touches, names)?;
            f(&tx, used)?;
            tx.commit()
        };
        run().map_err(StoreError::sqlite(&self.path))
    }

    /// A corruption error turns the cache off for this process (a warning, the file marked for
    /// a check on the next open); any other error is returned.
    fn tolerate<T: Default>(
        &self,
        inner: &mut Inner,
        r: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match r {
            Err(e) if e.is_damage() => {
                self.disable(inner, &e);
                Ok(T::default())
            }
            other => other,
        }
    }

    fn disable(&self, inner: &mut Inner, e: &StoreError) {
        tracing::warn!("{e}; the rest of this run is not cached, and the file is checked (and set aside if damaged) when next opened");
        inner.conn = None;
        inner.touches.clear();
        inner.names.clear();
        let _ = std::fs::write(suspect_marker(&self.path), b"");
    }

    /// Number of stored answers.
    pub fn len(&self) -> Result<u64, StoreError> {
        let inner = self.lock();
        let Some(conn) = inner.conn.as_ref() else {
            return Ok(0);
        };
        conn.query_row("SELECT count(*) FROM calls", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(StoreError::sqlite(&self.path))
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        self.len().map(|n| n == 0)
    }

    /// Evicts least recently used rows down to 90 % of the bound (less the WAL's share) when the
    /// live size is over it; returns how many.
    pub fn evict_if_over(&self) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let max = self.max_bytes.saturating_sub(wal_limit(self.max_bytes));
        let Some(conn) = inner.conn.as_ref() else {
            return Ok(0);
        };
        let size = file_bytes(conn).map_err(StoreError::sqlite(&self.path));
        if self.tolerate(&mut inner, size)? <= max {
            return Ok(0);
        }
        // Recently hit rows must not look old.
        let r = self.write(&mut inner, |_, _| Ok(()));
        self.tolerate(&mut inner, r)?;
        let Some(conn) = inner.conn.as_mut() else {
            return Ok(0);
        };
        let r = evict(conn, (max as f64 * EVICT_TO) as u64).map_err(StoreError::sqlite(&self.path));
        self.tolerate(&mut inner, r)
    }

    /// Entries, bytes and per-model counts.
    pub fn stats(&self) -> Result<Stats, StoreError> {
        let mut inner = self.lock();
        let r = self.write(&mut inner, |_, _| Ok(()));
        self.tolerate(&mut inner, r)?;
        let file_bytes = [DB_FILE, "calls.sqlite-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(self.path.with_file_name(f)).ok())
            .map(|m| m.len())
            .sum();
        let Some(conn) = inner.conn.as_ref() else {
            return Err(StoreError::Io {
                path: self.path.clone(),
                source: std::io::Error::other("the database is damaged"),
            });
        };
        let q = || -> rusqlite::Result<(u64, Vec<ModelCount>)> {
            let mut stmt = conn.prepare(
                "SELECT c.model, c.op, count(*), coalesce(sum(u.n), 0),
                 sum(length(c.value))
                 FROM calls AS c LEFT JOIN (SELECT id, sum(n) AS n FROM uses GROUP BY id) AS u
                 ON u.id = c.id
                 GROUP BY c.model, c.op ORDER BY c.model, c.op",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(ModelCount {
                    model: r.get(0)?,
                    op: r.get(1)?,
                    entries: r.get::<_, i64>(2)? as u64,
                    hits: r.get::<_, i64>(3)? as u64,
                    value_bytes: r.get::<_, i64>(4)? as u64,
                })
            })?;
            let by_model = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((live_bytes(conn)?, by_model))
        };
        let (live_bytes, by_model) = q().map_err(StoreError::sqlite(&self.path))?;
        Ok(Stats {
            path: self.path.clone(),
            entries: by_model.iter().map(|m| m.entries).sum(),
            hits: by_model.iter().map(|m| m.hits).sum(),
            file_bytes,
            live_bytes,
            by_model,
        })
    }

    /// Deletes every answer and returns the freed pages to the file system; returns how many.
    pub fn clear(&self) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        inner.touches.clear();
        inner.names.clear();
        let Some(conn) = inner.conn.as_mut() else {
            return Ok(0);
        };
        let mut run = || -> rusqlite::Result<u64> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM uses", [])?;
            let n = tx.execute("DELETE FROM calls", [])?;
            tx.commit()?;
            shrink(conn)?;
            checkpoint(conn)?;
            Ok(n as u64)
        };
        run().map_err(StoreError::sqlite(&self.path))
    }

    /// Compacts the hit log, rebuilds the file (`VACUUM`) and truncates the WAL; returns the
    /// bytes on disk before and after.
    pub fn vacuum(&self) -> Result<(u64, u64), StoreError> {
        let before = self.stats()?.file_bytes;
        {
            let mut inner = self.lock();
            let r = self.write(&mut inner, |tx, _| compact_uses(tx));
            self.tolerate(&mut inner, r)?;
            let Some(conn) = inner.conn.as_ref() else {
                return Ok((before, before));
            };
            conn.execute_batch("VACUUM")
                .and_then(|()| checkpoint(conn))
                .map_err(StoreError::sqlite(&self.path))?;
        }
        Ok((before, self.stats()?.file_bytes))
    }
}

impl Drop for CallStore {
    /// The queued hits are logged, so the next run sees what this one used.
    fn drop(&mut self) {
        let mut inner = self.lock();
        if !inner.touches.is_empty() || !inner.names.is_empty() {
            if let Err(e) = self.write(&mut inner, |_, _| Ok(())) {
                tracing::warn!("cannot record the call cache's last uses: {e}");
            }
        }
    }
}

/// Opens `path`, configures it and creates the schema; checks its integrity when small or
/// suspect. Damage (or another version's layout) comes back as an error whose
/// [`StoreError::is_damage`] is true.
fn open_checked(path: &Path, max_bytes: u64) -> Result<Connection, StoreError> {
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

fn suspect_marker(path: &Path) -> PathBuf {
    with_suffix(path, SUSPECT_SUFFIX)
}

/// Moves a damaged database (and its WAL) to `calls.sqlite.damaged-<timestamp>`.
fn set_aside(path: &Path) -> Result<PathBuf, StoreError> {
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

/// A row found by [`read`]: whether it still lacks its model (imported), and its answer if it
/// decoded.
struct Row<T> {
    unnamed: bool,
    answer: Option<T>,
}

fn read<T>(
    conn: &Connection,
    keys: &[Key],
    decode: &impl Fn(&[u8]) -> Option<T>,
) -> rusqlite::Result<Vec<Option<Row<T>>>> {
    let lookup = |conn: &Connection| -> rusqlite::Result<Vec<Option<Row<T>>>> {
        let mut stmt =
            conn.prepare_cached("SELECT key, model = '', value FROM calls WHERE id = ?1")?;
        keys.iter()
            .map(|k| {
                let row = stmt
                    .query_row([row_id(k)], |r| {
                        if r.get_ref(0)?.as_blob().ok() != Some(&k[..]) {
                            // Another key with the same first 8 bytes.
                            return Ok(None);
                        }
                        // Anything but bytes that decode is a miss.
                        let answer = r.get_ref(2)?.as_blob().ok().and_then(decode);
                        Ok(Some(Row {
                            unnamed: r.get(1)?,
                            answer,
                        }))
                    })
                    .optional()?;
                Ok(row.flatten())
            })
            .collect()
    };
    if keys.len() <= 1 {
        return lookup(conn);
    }
    // One snapshot for the whole batch.
    let tx = conn.unchecked_transaction()?;
    let found = lookup(&tx)?;
    tx.commit()?;
    Ok(found)
}

/// Appends the queued hits to the `uses` log and names the imported rows hit.
fn log_uses(
    tx: &rusqlite::Transaction<'_>,
    touches: &mut Vec<(i64, i64)>,
    names: &mut Vec<(i64, Arc<str>, &'static str)>,
) -> rusqlite::Result<()> {
    if !touches.is_empty() {
        // One statement for the whole queue: `[[id, used], ...]` unpacked by SQLite's json_each.
        use std::fmt::Write;
        let mut pairs = String::with_capacity(touches.len() * 40 + 2);
        for (id, used) in touches.iter() {
            pairs.push(if pairs.is_empty() { '[' } else { ',' });
            let _ = write!(pairs, "[{id},{used}]");
        }
        pairs.push(']');
        tx.prepare_cached(
            "INSERT INTO uses (id, used, n) SELECT value ->> 0, value ->> 1, 1 FROM json_each(?1)",
        )?
        .execute([pairs])?;
        touches.clear();
    }
    if !names.is_empty() {
        let mut stmt =
            tx.prepare_cached("UPDATE calls SET model = ?2, op = ?3 WHERE id = ?1 AND model = ''")?;
        for (id, model, op) in names.iter() {
            stmt.execute(params![id, &**model, op])?;
        }
        names.clear();
    }
    Ok(())
}

/// Replaces the hit log by one row per entry still stored (latest use, summed count).
fn compact_uses(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let last: Option<i64> = tx.query_row("SELECT max(rowid) FROM uses", [], |r| r.get(0))?;
    let Some(last) = last else {
        return Ok(());
    };
    tx.execute(
        "INSERT INTO uses (id, used, n)
         SELECT id, max(used), sum(n) FROM uses
         WHERE rowid <= ?1 AND id IN (SELECT id FROM calls) GROUP BY id",
        [last],
    )?;
    tx.execute("DELETE FROM uses WHERE rowid <= ?1", [last])?;
    Ok(())
}

/// A pragma's number (`page_count`, `freelist_count`, `page_size`), its statement cached.
fn pragma(conn: &Connection, name: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached(&format!("PRAGMA {name}"))?
        .query_row([], |r| r.get(0))
}

/// Pages in use × page size.
fn live_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    let pages = pragma(conn, "page_count")? - pragma(conn, "freelist_count")?;
    Ok((pages.max(0) * pragma(conn, "page_size")?) as u64)
}

/// The database's size as committed (free pages included): what the file holds once the WAL is
/// checkpointed.
fn file_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    Ok((pragma(conn, "page_count")?.max(0) * pragma(conn, "page_size")?) as u64)
}

/// Compacts the hit log, then deletes the least recently used rows (by the later of `used` and
/// the last logged hit) until the live size is at most `target`, in chunks sized from the mean
/// row, one transaction each, with their logged hits; then gives the freed pages back and
/// truncates the WAL.
fn evict(conn: &mut Connection, target: u64) -> rusqlite::Result<u64> {
    {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        compact_uses(&tx)?;
        tx.commit()?;
    }
    let mut rows: i64 = conn.query_row("SELECT count(*) FROM calls", [], |r| r.get(0))?;
    let mut evicted = 0u64;
    for _ in 0..64 {
        let live = live_bytes(conn)?;
        if live <= target || rows <= 0 {
            break;
        }
        let per_row = (live / rows as u64).max(1);
        let n = ((live - target) / per_row + 1).min(rows as u64) as i64;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "CREATE TEMP TABLE IF NOT EXISTS evicted (id INTEGER PRIMARY KEY)",
            [],
        )?;
        tx.execute("DELETE FROM temp.evicted", [])?;
        tx.execute(
            "INSERT OR IGNORE INTO temp.evicted
             SELECT c.id FROM calls AS c
             LEFT JOIN (SELECT id, max(used) AS used FROM uses GROUP BY id) AS u ON u.id = c.id
             ORDER BY max(c.used, coalesce(u.used, 0)) LIMIT ?1",
            [n],
        )?;
        let gone = tx.execute(
            "DELETE FROM calls WHERE id IN (SELECT id FROM temp.evicted)",
            [],
        )? as i64;
        tx.execute(
            "DELETE FROM uses WHERE id IN (SELECT id FROM temp.evicted)",
            [],
        )?;
        tx.commit()?;
        evicted += gone as u64;
        rows -= gone;
        if gone == 0 {
            break;
        }
    }
    shrink(conn)?;
    checkpoint(conn)?;
    Ok(evicted)
}

/// Gives free pages back to the file system, and copies the WAL into the database as far as no
/// other process is reading it (no waiting).
fn shrink(conn: &Connection) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    drop(rows);
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

/// Copies the whole WAL into the database and truncates it (waiting for readers, up to the busy
/// timeout).
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}
