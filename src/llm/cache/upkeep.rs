//! The store's upkeep: logging hits, compacting the hit log, measuring the file, evicting the
//! least recently used rows and giving the pages back (the module doc of `store` says when).

use std::sync::Arc;

use rusqlite::{params, Connection, TransactionBehavior};

/// Appends the queued hits to the `uses` log and names the imported rows hit.
pub(super) fn log_uses(
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
pub(super) fn compact_uses(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
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
pub(super) fn live_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    let pages = pragma(conn, "page_count")? - pragma(conn, "freelist_count")?;
    Ok((pages.max(0) * pragma(conn, "page_size")?) as u64)
}

/// The database's size as committed (free pages included): what the file holds once the WAL is
/// checkpointed.
pub(super) fn file_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    Ok((pragma(conn, "page_count")?.max(0) * pragma(conn, "page_size")?) as u64)
}

/// Compacts the hit log, then deletes the least recently used rows (by the later of `used` and
/// the last logged hit) until the live size is at most `target`, in chunks sized from the mean
/// row, one transaction each, with their logged hits; then gives the freed pages back and
/// truncates the WAL.
pub(super) fn evict(conn: &mut Connection, target: u64) -> rusqlite::Result<u64> {
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
pub(super) fn shrink(conn: &Connection) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    drop(rows);
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

/// Copies the whole WAL into the database and truncates it (waiting for readers, up to the busy
/// timeout).
pub(super) fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}
