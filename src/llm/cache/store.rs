//! The call cache's storage: one SQLite database, `calls.sqlite`, in the cache directory.
//!
//! Why SQLite: a keyed lookup reads a few pages instead of every answer being loaded into memory
//! first; a batch's answers commit in one transaction, so a process killed mid-batch leaves all
//! of them or none; and several processes (a training run, `dln eval` or `dln predict` on the
//! same run, benchmark cells sharing a cache) read and write one cache safely: in WAL mode readers
//! go on while one writer commits, and a writer that finds the database locked waits
//! ([`BUSY_TIMEOUT`](super::file::BUSY_TIMEOUT)) instead of failing.
//!
//! Why synchronous calls from async code, not `spawn_blocking`: a lookup is a B-tree search in
//! pages the OS already holds (microseconds, about what handing the work to a blocking thread
//! and back would cost by itself), and a write is one short transaction per batch of answers. No
//! lock is held across an `.await`: every method takes the connection's mutex, runs its
//! statements and returns. The one wait that can be long is another process holding the write
//! lock, which lasts one batch's commit (or one eviction) and is bounded by [`BUSY_TIMEOUT`](super::file::BUSY_TIMEOUT).
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
//! the bound less the WAL's share ([`wal_limit`](super::file::wal_limit)); past it the log is compacted (one row per
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
//! when the file is at most [`QUICK_CHECK_MAX`](super::file::QUICK_CHECK_MAX), or always after a run saw a corruption error),
//! or that another version of dln wrote in another layout, is renamed
//! `calls.sqlite.damaged-<timestamp>` with a warning and a new cache is started: a cache never
//! stops a run. A corruption error mid-run makes lookups misses and stores no-ops (with a
//! warning) and marks the file to be checked on the next open.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::file::{
    open_checked, row_id, set_aside, suspect_marker, wal_limit, Key, StoreError, DB_FILE, UPSERT,
};
use super::import;
use super::upkeep::{checkpoint, compact_uses, evict, file_bytes, live_bytes, log_uses, shrink};

/// Hits queued in memory before they are appended to the `uses` log in one transaction (64 kB
/// of queue; a commit per 256 hits cost more than the lookups themselves).
pub const TOUCH_BATCH: usize = 4096;

/// Eviction deletes down to this share of the bound.
const EVICT_TO: f64 = 0.9;

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
