//! `dln bench cache`: the SQLite call cache against the store it replaced (every answer of
//! `calls.jsonl` loaded into a `HashMap` of JSON values), on the same synthetic entries in one
//! run: memory, the time of a hit, and the file kept within `cache.max_mb`.
//!
//! The entries are shaped like a real run's (answer sizes from the runs on the development
//! machine): 70 % class distributions (~190 bytes), 20 % generations (~3 kB with their token
//! log-probabilities) and 10 % scores (~3 kB). Each side is measured in its own process (the
//! binary runs itself with `--side`), so one side's freed memory does not hide the other's: its
//! resident set after opening the cache and answering the lookups, less the one before.
//! A hit is timed as the cache does it: the key (sha256 of model, operation and request JSON),
//! the lookup, and decoding the answer. The lookups run once one request at a time (the first hit
//! of each entry in the process), then [`ROUNDS`] times one at a time and [`ROUNDS`] times in
//! batches, each figure the median round.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::llm::cache::{CallStore, Key, DB_FILE};

mod entries;

use entries::{decode_stored, decode_value, entry, lookup_requests, request, Req};

/// The model id the entries are stored under.
const MODEL: &str = "bench-model";
/// Requests per batch when the store is filled and in the batched lookups.
pub const BATCH: usize = 16;

/// What to run.
#[derive(Debug, Clone)]
pub struct CacheBenchOptions {
    pub entries: usize,
    /// Hits timed per side (random entries), one request at a time and in batches.
    pub lookups: usize,
    /// The bound of the eviction run, in MiB.
    pub max_mb: f64,
    /// Where the files are written (a temporary directory in it).
    pub dir: PathBuf,
}

/// One side's figures, measured in its own process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SideReport {
    /// Loading the JSONL file (old) or opening the database (new).
    pub open_seconds: f64,
    /// Resident memory after opening and answering every lookup, less before opening.
    pub rss_bytes: u64,
    /// The part of `rss_bytes` that is file pages mapped into memory (the SQLite file's memory
    /// map: the OS's file cache, shared and reclaimable, at most the file's size).
    pub rss_file_bytes: u64,
    /// Mean time of the first hit of each entry in this process (the new store maps the pages
    /// it reads; the old one paid at load), one request at a time, in microseconds.
    pub first_hit_us: f64,
    /// Mean time of a hit asked alone, once every entry asked has been hit, in microseconds.
    pub hit_us: f64,
    /// Mean time of a hit per request in batches of [`BATCH`], in microseconds.
    pub batch_hit_us: f64,
    pub hits: usize,
}

/// The bounded run: every entry stored into a cache of `max_mb`.
#[derive(Debug, Clone, Serialize)]
pub struct BoundReport {
    pub max_mb: f64,
    pub stored: usize,
    /// Entries left after eviction.
    pub kept: u64,
    /// The database file (and WAL) at the end.
    pub file_bytes: u64,
    /// Whether the most recently stored entries (the last tenth) are all still there.
    pub recent_kept: bool,
}

/// Everything `dln bench cache` measures.
#[derive(Debug, Clone, Serialize)]
pub struct CacheBenchReport {
    pub entries: usize,
    pub lookups: usize,
    /// Mean answer size as JSON (the old file) and as stored (MessagePack).
    pub mean_json_bytes: f64,
    pub mean_stored_bytes: f64,
    pub jsonl_bytes: u64,
    pub sqlite_bytes: u64,
    /// Storing every entry in batches of [`BATCH`], per entry, in microseconds.
    pub insert_us: f64,
    pub old: SideReport,
    pub new: SideReport,
    /// new ÷ old resident memory.
    pub memory_ratio: f64,
    /// new ÷ old time of the first hit of an entry.
    pub first_hit_ratio: f64,
    /// new ÷ old time of a hit asked alone.
    pub hit_ratio: f64,
    /// new ÷ old time of a hit in a batch.
    pub batch_hit_ratio: f64,
    pub bound: BoundReport,
}

/// Timed rounds of the lookups after the first; the median is reported (another process on
/// the machine slows some rounds).
pub const ROUNDS: usize = 5;

/// The median over `rounds` runs of `f` (which makes `n` lookups and returns its hits) of the
/// time per lookup in microseconds, and the hits of the last run.
fn per_lookup(
    n: usize,
    rounds: usize,
    mut f: impl FnMut() -> anyhow::Result<usize>,
) -> anyhow::Result<(f64, usize)> {
    let mut times = Vec::with_capacity(rounds);
    let mut hits = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        hits = f()?;
        times.push(t.elapsed().as_secs_f64() * 1e6 / n.max(1) as f64);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], hits))
}

/// Resident set size of this process and its file-backed part, in bytes (`/proc/self/statm`).
pub fn rss_bytes() -> (u64, u64) {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let field = |i: usize| {
        statm
            .split_whitespace()
            .nth(i)
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |pages| pages * 4096)
    };
    (field(1), field(2))
}

/// Resident memory now less `before`, in all and file-backed.
fn grown(before: (u64, u64)) -> (u64, u64) {
    let now = rss_bytes();
    (
        now.0.saturating_sub(before.0),
        now.1.saturating_sub(before.1),
    )
}

/// What writing the workload measured.
pub struct Prepared {
    /// Mean answer size as JSON (the old file) and as stored (MessagePack).
    pub mean_json_bytes: f64,
    pub mean_stored_bytes: f64,
    /// Storing every entry in batches of [`BATCH`], per entry, in microseconds.
    pub insert_us: f64,
}

/// Writes the workload: the old store's `calls.jsonl` and the new one's `calls.sqlite`
/// (unbounded), in `dir/old` and `dir/new`.
pub fn prepare(dir: &Path, entries: usize) -> anyhow::Result<Prepared> {
    let old = dir.join("old");
    let new = dir.join("new");
    std::fs::create_dir_all(&old)?;
    let mut jsonl = BufWriter::new(std::fs::File::create(old.join("calls.jsonl"))?);
    let (store, _) = CallStore::open(&new, u64::MAX)?;
    let mut answer_bytes = 0usize;
    let mut insert = 0.0;
    let mut stored_bytes = 0usize;
    let mut batch: Vec<(&'static str, Key, Vec<u8>)> = Vec::new();
    let flush = |batch: &mut Vec<(&'static str, Key, Vec<u8>)>, insert: &mut f64| {
        let t = Instant::now();
        // The cache stores one operation's batch at a time.
        for op in ["classify", "generate", "score"] {
            let rows: Vec<(Key, Vec<u8>)> = batch
                .iter()
                .filter(|(o, _, _)| *o == op)
                .map(|(_, k, v)| (*k, v.clone()))
                .collect();
            if !rows.is_empty() {
                store.put(MODEL, op, &rows)?;
            }
        }
        *insert += t.elapsed().as_secs_f64();
        batch.clear();
        anyhow::Ok(())
    };
    for i in 0..entries {
        let (op, key, answer) = entry(i);
        let json = answer.json();
        answer_bytes += json.len();
        writeln!(
            jsonl,
            "{{\"key\":\"{}\",\"value\":{json}}}",
            hex::encode(key)
        )?;
        let stored = answer.stored();
        stored_bytes += stored.len();
        batch.push((op, key, stored));
        if batch.len() == BATCH {
            flush(&mut batch, &mut insert)?;
        }
    }
    flush(&mut batch, &mut insert)?;
    jsonl.flush()?;
    let n = entries.max(1) as f64;
    Ok(Prepared {
        mean_json_bytes: answer_bytes as f64 / n,
        mean_stored_bytes: stored_bytes as f64 / n,
        insert_us: insert * 1e6 / n,
    })
}

/// What one store's side measures after opening: a first hit, the hit and batched hit times
/// (medians of `ROUNDS`), every lookup found, and the memory grown since `before`.
struct SideTimings<S, B> {
    name: &'static str,
    lookups: usize,
    open_seconds: f64,
    before: (u64, u64),
    single: S,
    batched: B,
}

fn side_report<S, B>(t: SideTimings<S, B>) -> anyhow::Result<SideReport>
where
    S: FnMut() -> anyhow::Result<usize>,
    B: FnMut() -> anyhow::Result<usize>,
{
    let SideTimings {
        name,
        lookups,
        open_seconds,
        before,
        mut single,
        batched,
    } = t;
    let (first_hit_us, _) = per_lookup(lookups, 1, &mut single)?;
    let (hit_us, hits) = per_lookup(lookups, ROUNDS, &mut single)?;
    let (batch_hit_us, batch_hits) = per_lookup(lookups, ROUNDS, batched)?;
    anyhow::ensure!(
        hits == lookups && batch_hits == lookups,
        "{name} missed {} of {} lookups",
        lookups - hits.min(batch_hits),
        lookups
    );
    let (rss_bytes, rss_file_bytes) = grown(before);
    Ok(SideReport {
        open_seconds,
        rss_bytes,
        rss_file_bytes,
        first_hit_us,
        hit_us,
        batch_hit_us,
        hits,
    })
}

/// The old store: every line of `calls.jsonl` parsed into a map of JSON values at open; a hit
/// clones the value and decodes it (what `CachedBackend` did before the SQLite store).
pub fn measure_old(dir: &Path, entries: usize, lookups: usize) -> anyhow::Result<SideReport> {
    #[derive(Deserialize)]
    struct Line {
        key: String,
        value: serde_json::Value,
    }
    let reqs = lookup_requests(entries, lookups);
    let before = rss_bytes();
    let t = Instant::now();
    let mut map: HashMap<String, serde_json::Value> = HashMap::new();
    let f = std::fs::File::open(dir.join("old").join("calls.jsonl"))?;
    for line in BufReader::new(f).lines() {
        let Ok(line) = line else { break };
        if let Ok(l) = serde_json::from_str::<Line>(&line) {
            map.insert(l.key, l.value);
        }
    }
    let open_seconds = t.elapsed().as_secs_f64();
    let map = std::sync::Mutex::new(map);
    let hit = |r: &Req| {
        let key = hex::encode(r.key());
        let v = map.lock().ok().and_then(|m| m.get(&key).cloned());
        v.is_some_and(|v| decode_value(r.op(), v))
    };
    let single = || Ok(reqs.iter().filter(|r| hit(r)).count());
    let batched = || {
        let mut hits = 0;
        for chunk in reqs.chunks(BATCH) {
            let keys: Vec<String> = chunk.iter().map(|r| hex::encode(r.key())).collect();
            // Looked up and decoded under the lock, as the old cache did.
            let m = map.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            hits += chunk
                .iter()
                .zip(&keys)
                .filter(|(r, k)| m.get(*k).is_some_and(|v| decode_value(r.op(), v.clone())))
                .count();
        }
        Ok(hits)
    };
    side_report(SideTimings {
        name: "the old store",
        lookups: reqs.len(),
        open_seconds,
        before,
        single,
        batched,
    })
}

/// The SQLite store: opened (not loaded), every hit a keyed lookup and a decode.
pub fn measure_new(dir: &Path, entries: usize, lookups: usize) -> anyhow::Result<SideReport> {
    let reqs = lookup_requests(entries, lookups);
    let before = rss_bytes();
    let t = Instant::now();
    let (store, _) = CallStore::open(&dir.join("new"), u64::MAX)?;
    let open_seconds = t.elapsed().as_secs_f64();
    let hit = |r: &Req| -> anyhow::Result<bool> {
        let op = r.op();
        let found = store.get(MODEL, op, &[r.key()], |v| {
            decode_stored(op, v).then_some(())
        })?;
        Ok(found[0].is_some())
    };
    let single = || {
        let mut hits = 0;
        for r in &reqs {
            hits += usize::from(hit(r)?);
        }
        Ok(hits)
    };
    let batched = || {
        let mut hits = 0;
        for chunk in reqs.chunks(BATCH) {
            // One operation per call, as the cache asks.
            for op in ["classify", "generate", "score"] {
                let keys: Vec<Key> = chunk
                    .iter()
                    .filter(|r| r.op() == op)
                    .map(Req::key)
                    .collect();
                if keys.is_empty() {
                    continue;
                }
                let found = store.get(MODEL, op, &keys, |v| decode_stored(op, v).then_some(()))?;
                hits += found.iter().flatten().count();
            }
        }
        Ok(hits)
    };
    side_report(SideTimings {
        name: "the SQLite store",
        lookups: reqs.len(),
        open_seconds,
        before,
        single,
        batched,
    })
}

/// Every entry stored into a cache bounded to `max_mb`: the file stays within the bound and
/// the last entries stored survive.
pub fn measure_bound(dir: &Path, entries: usize, max_mb: f64) -> anyhow::Result<BoundReport> {
    let path = dir.join("bounded");
    let (store, _) = CallStore::open(&path, (max_mb * 1024.0 * 1024.0) as u64)?;
    for start in (0..entries).step_by(BATCH) {
        let mut rows: HashMap<&'static str, Vec<(Key, Vec<u8>)>> = HashMap::new();
        for i in start..(start + BATCH).min(entries) {
            let (op, key, answer) = entry(i);
            rows.entry(op).or_default().push((key, answer.stored()));
        }
        for (op, rows) in rows {
            store.put(MODEL, op, &rows)?;
        }
    }
    let recent: Vec<(&'static str, Key)> = (entries - entries / 10..entries)
        .map(|i| {
            let r = request(i);
            (r.op(), r.key())
        })
        .collect();
    let mut recent_kept = true;
    for (op, key) in &recent {
        recent_kept &= store.get(MODEL, op, &[*key], |_| Some(()))?[0].is_some();
    }
    let stats = store.stats()?;
    Ok(BoundReport {
        max_mb,
        stored: entries,
        kept: stats.entries,
        file_bytes: stats.file_bytes,
        recent_kept,
    })
}

/// Runs both sides (each in a process started by `side`, which runs this binary with
/// `--side old|new`), and the bounded run, on a workload written into `opts.dir`.
pub fn run_cache_bench(
    opts: &CacheBenchOptions,
    side: &dyn Fn(&str, &Path) -> anyhow::Result<SideReport>,
    progress: &dyn Fn(&str),
) -> anyhow::Result<CacheBenchReport> {
    let tmp = tempfile::Builder::new()
        .prefix("dln-bench-cache-")
        .tempdir_in(&opts.dir)?;
    let dir = tmp.path();
    progress(&format!(
        "writing {} entries as calls.jsonl and calls.sqlite in {}",
        opts.entries,
        dir.display()
    ));
    let prepared = prepare(dir, opts.entries)?;
    let size = |p: PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
    let jsonl_bytes = size(dir.join("old").join("calls.jsonl"));
    let sqlite_bytes = size(dir.join("new").join(DB_FILE));
    progress("the old store (calls.jsonl in a HashMap), in its own process");
    let old = side("old", dir)?;
    progress("the SQLite store, in its own process");
    let new = side("new", dir)?;
    progress(&format!(
        "storing every entry into a cache of {} MiB",
        opts.max_mb
    ));
    let bound = measure_bound(dir, opts.entries, opts.max_mb)?;
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    Ok(CacheBenchReport {
        entries: opts.entries,
        lookups: opts.lookups,
        mean_json_bytes: prepared.mean_json_bytes,
        mean_stored_bytes: prepared.mean_stored_bytes,
        jsonl_bytes,
        sqlite_bytes,
        insert_us: prepared.insert_us,
        memory_ratio: ratio(new.rss_bytes as f64, old.rss_bytes as f64),
        first_hit_ratio: ratio(new.first_hit_us, old.first_hit_us),
        hit_ratio: ratio(new.hit_us, old.hit_us),
        batch_hit_ratio: ratio(new.batch_hit_us, old.batch_hit_us),
        old,
        new,
        bound,
    })
}

/// The report as a table.
pub fn render_cache_table(r: &CacheBenchReport) -> String {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let mut s = format!(
        "call cache: {} entries (answers {:.0} bytes on average as JSON, {:.0} as stored), {} lookups of random entries\n\
         calls.jsonl {:.1} MiB, calls.sqlite {:.1} MiB; storing: {:.1} µs per entry in batches of {BATCH}\n\n",
        r.entries,
        r.mean_json_bytes,
        r.mean_stored_bytes,
        r.lookups,
        mib(r.jsonl_bytes),
        mib(r.sqlite_bytes),
        r.insert_us
    );
    s.push_str(&format!(
        "{:<28} {:>14} {:>14} {:>10}\n",
        "", "old (HashMap)", "new (SQLite)", "new ÷ old"
    ));
    s.push_str(&format!(
        "{:<28} {:>12.3} s {:>12.3} s\n",
        "load / open", r.old.open_seconds, r.new.open_seconds
    ));
    s.push_str(&format!(
        "{:<28} {:>10.1} MiB {:>10.1} MiB {:>10.3}\n",
        "memory (resident)",
        mib(r.old.rss_bytes),
        mib(r.new.rss_bytes),
        r.memory_ratio
    ));
    s.push_str(&format!(
        "{:<28} {:>10.1} MiB {:>10.1} MiB\n",
        "  of which mapped file pages",
        mib(r.old.rss_file_bytes),
        mib(r.new.rss_file_bytes),
    ));
    s.push_str(&format!(
        "{:<28} {:>11.2} µs {:>11.2} µs {:>10.2}\n",
        "first hit of an entry", r.old.first_hit_us, r.new.first_hit_us, r.first_hit_ratio
    ));
    s.push_str(&format!(
        "{:<28} {:>11.2} µs {:>11.2} µs {:>10.2}\n",
        "hit, one request", r.old.hit_us, r.new.hit_us, r.hit_ratio
    ));
    s.push_str(&format!(
        "{:<28} {:>11.2} µs {:>11.2} µs {:>10.2}\n",
        format!("hit, per request of {BATCH}"),
        r.old.batch_hit_us,
        r.new.batch_hit_us,
        r.batch_hit_ratio
    ));
    s.push_str(&format!(
        "\nbounded to {} MiB: {} entries stored, {} kept, file {:.1} MiB ({}), the last tenth stored {}\n",
        r.bound.max_mb,
        r.bound.stored,
        r.bound.kept,
        mib(r.bound.file_bytes),
        if r.bound.file_bytes as f64 <= r.bound.max_mb * 1024.0 * 1024.0 {
            "within the bound"
        } else {
            "OVER the bound"
        },
        if r.bound.recent_kept { "all kept" } else { "NOT all kept" }
    ));
    s
}
