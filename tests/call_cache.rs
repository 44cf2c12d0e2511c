//! The call cache on real files and real SQLite: answers survive a reopen, a batch killed
//! mid-write leaves all of it or none, two processes write one cache, eviction keeps the file
//! within `cache.max_mb` and keeps what was used recently, an old `calls.jsonl` is imported with
//! its bad lines counted, a damaged file is set aside without stopping a run, and
//! `dln cache stats` prints the counts.
//!
//! The crash and concurrency tests run this test binary again as a child (`child_writer`, which
//! does nothing unless `DLN_TEST_CACHE_DIR` is set), so a process really dies mid-transaction
//! and two processes really share the file.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::run::{ok, stdout, this_test};
use common::{bin, block_on};
use dln::llm::cache::{call_key, CachedBackend, CallStore, Key, CACHE_FILE};
use dln::llm::scripted::ScriptedBackend;
use dln::llm::{Backend, GenerateRequest, Generation, Prompt, ScoreRequest};

const CHILD_DIR: &str = "DLN_TEST_CACHE_DIR";

fn req(tag: &str, seed: u64) -> GenerateRequest {
    GenerateRequest {
        seed,
        ..GenerateRequest::greedy(Prompt::raw(format!("prompt {tag}")), 8, vec![])
    }
}

/// Runs `child_writer` in a new process of this test binary with `env`.
fn child(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut c = this_test("child_writer");
    c.env(CHILD_DIR, dir);
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// In a child process: `DLN_TEST_CACHE_TAG`'s `DLN_TEST_CACHE_BATCHES` batches of
/// `DLN_TEST_CACHE_SIZE` generate requests through a cache in `DLN_TEST_CACHE_DIR` (plus one
/// request every writer asks), one batch after another. Does nothing in a normal test run.
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let var = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let tag = std::env::var("DLN_TEST_CACHE_TAG").unwrap_or_default();
    let (batches, size) = (
        var("DLN_TEST_CACHE_BATCHES", 1),
        var("DLN_TEST_CACHE_SIZE", 4),
    );
    block_on(async {
        let c =
            CachedBackend::new(Arc::new(ScriptedBackend::new()), Path::new(&dir)).expect("open");
        for b in 0..batches {
            let mut batch: Vec<GenerateRequest> =
                (0..size).map(|i| req(&tag, b * 1000 + i)).collect();
            batch.push(req("shared", b));
            c.generate(batch).await.expect("generate");
        }
    });
}

#[test]
fn a_second_open_answers_from_disk_and_counts_its_hits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inner = ScriptedBackend::new();
    block_on(async {
        let first = {
            let c = CachedBackend::new(Arc::new(inner.clone()), dir.path()).expect("open");
            c.generate(vec![req("a", 1), req("a", 2)])
                .await
                .expect("gen")
        };
        assert!(dir.path().join(CACHE_FILE).is_file());
        let c = CachedBackend::new(Arc::new(inner.clone()), dir.path()).expect("reopen");
        let again = c
            .generate(vec![req("a", 2), req("a", 1)])
            .await
            .expect("gen");
        assert_eq!(again, vec![first[1].clone(), first[0].clone()]);
        assert_eq!(inner.calls().len(), 2, "the reopened cache asked nothing");
        assert_eq!(c.usage().cache_hits, 2);
        drop(c);
        let (store, _) = CallStore::open(dir.path(), u64::MAX).expect("open store");
        let stats = store.stats().expect("stats");
        assert_eq!((stats.entries, stats.hits), (2, 2));
        assert_eq!(stats.by_model[0].model, "scripted");
        assert_eq!(stats.by_model[0].op, "generate");
    });
}

#[test]
fn a_batch_killed_mid_write_leaves_all_of_it_or_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The first batch is stored; the process dies halfway through storing the second, with
    // half its rows flushed to the WAL, uncommitted.
    let out = child(
        dir.path(),
        &[
            ("DLN_TEST_CACHE_TAG", "k"),
            ("DLN_TEST_CACHE_BATCHES", "2"),
            ("DLN_TEST_CACHE_SIZE", "7"),
            ("DLN_FAULT", "cache_append:2"),
        ],
    )
    .output()
    .expect("run the child");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("injected crash at cache_append #2"),
        "the child should die in the second batch: {}\n{stderr}",
        out.status
    );
    let (store, _) = CallStore::open(dir.path(), u64::MAX).expect("reopen");
    assert_eq!(
        store.len().expect("len"),
        8,
        "the first batch (7 + shared), nothing of the second"
    );
    drop(store);
    // The whole second batch is asked again and stored.
    let inner = ScriptedBackend::new();
    block_on(async {
        let c = CachedBackend::new(Arc::new(inner.clone()), dir.path()).expect("open");
        let mut second: Vec<GenerateRequest> = (0..7).map(|i| req("k", 1000 + i)).collect();
        second.push(req("shared", 1));
        c.generate(second).await.expect("generate");
        assert_eq!(inner.calls().len(), 8);
        assert_eq!(c.len(), 16);
    });
}

#[test]
fn two_processes_and_two_handles_write_one_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spawn = |tag: &str| {
        child(
            dir.path(),
            &[
                ("DLN_TEST_CACHE_TAG", tag),
                ("DLN_TEST_CACHE_BATCHES", "40"),
                ("DLN_TEST_CACHE_SIZE", "6"),
            ],
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn")
    };
    let (mut a, mut b) = (spawn("a"), spawn("b"));
    // Meanwhile two handles in this process write a third set.
    let inner = ScriptedBackend::new();
    block_on(async {
        let h1 = CachedBackend::new(Arc::new(inner.clone()), dir.path()).expect("open 1");
        let h2 = CachedBackend::new(Arc::new(inner.clone()), dir.path()).expect("open 2");
        for i in 0..40u64 {
            let h = if i % 2 == 0 { &h1 } else { &h2 };
            h.generate(vec![req("c", i), req("c", i + 100)])
                .await
                .expect("generate");
        }
    });
    assert!(a.wait().expect("wait a").success(), "writer a failed");
    assert!(b.wait().expect("wait b").success(), "writer b failed");
    // 40 batches of 6 per child, 40 shared requests, 80 of this process.
    let (store, _) = CallStore::open(dir.path(), u64::MAX).expect("open");
    assert_eq!(store.len().expect("len"), 2 * 240 + 40 + 80);
    drop(store);
    // Every answer is there: asking everything again reaches no model.
    let inner = ScriptedBackend::new();
    block_on(async {
        let c = CachedBackend::new(Arc::new(inner.clone()), dir.path()).expect("open");
        for tag in ["a", "b"] {
            let all: Vec<GenerateRequest> = (0..40)
                .flat_map(|b| (0..6).map(move |i| req(tag, b * 1000 + i)))
                .collect();
            c.generate(all).await.expect("generate");
        }
        c.generate((0..40).map(|b| req("shared", b)).collect())
            .await
            .expect("generate");
        assert!(
            inner.calls().is_empty(),
            "{} asked again",
            inner.calls().len()
        );
    });
}

/// A 1 kB answer, encoded as the cache stores it.
fn big_answer(i: usize) -> Vec<u8> {
    dln::llm::cache::encode(&vec![Generation {
        text: format!("{i} {}", "word ".repeat(200)),
        tokens: 200,
        token_logprobs: None,
        cut: false,
    }])
    .expect("encode")
}

fn key(i: usize) -> Key {
    call_key("m", "generate", &req("e", i as u64))
}

#[test]
fn eviction_keeps_the_file_within_the_bound_and_the_recently_used_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let max = 1 << 20;
    let (store, _) = CallStore::open(dir.path(), max).expect("open");
    let present = |store: &CallStore, i: usize| {
        store
            .get("m", "generate", &[key(i)], |_| Some(()))
            .expect("get")[0]
            .is_some()
    };
    // 4000 answers of ~1 kB (4 MB) in batches of 16; entries 0..8 are used after every batch.
    for b in 0..250 {
        let rows: Vec<(Key, Vec<u8>)> = (b * 16..(b + 1) * 16)
            .map(|i| (key(i), big_answer(i)))
            .collect();
        store.put("m", "generate", &rows).expect("put");
        if b > 0 {
            for i in 0..8 {
                assert!(present(&store, i), "entry {i} evicted after batch {b}");
            }
        }
        let stats = store.stats().expect("stats");
        assert!(
            stats.file_bytes <= max,
            "after batch {b}: {} bytes on disk, bound {max}",
            stats.file_bytes
        );
    }
    let stats = store.stats().expect("stats");
    assert!(
        stats.entries > 300 && stats.entries < 1000,
        "{} entries kept",
        stats.entries
    );
    // The recently stored are kept, the old ones never used again are gone.
    assert!((3990..4000).all(|i| present(&store, i)));
    assert!(!(8..100).any(|i| present(&store, i)));
    drop(store);
    // A bound lowered since: the next open evicts down to it.
    let (store, report) = CallStore::open(dir.path(), max / 4).expect("reopen smaller");
    assert!(report.evicted > 0);
    assert!(store.stats().expect("stats").file_bytes <= max / 4);
    assert!((0..8).all(|i| present(&store, i)) && present(&store, 3999));
}

/// Captures what `tracing` warns while `f` runs.
fn warnings_of<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buf").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buf.0.lock().expect("buf")).to_string();
    (out, text)
}

#[test]
fn an_old_jsonl_is_imported_keeping_every_good_line_and_counting_the_bad() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inner = ScriptedBackend::new();
    let score = |i: usize| ScoreRequest {
        context: format!("context {i}"),
        target: " yes".into(),
    };
    let answer = |i: usize| serde_json::json!({"logprob": -0.5 - i as f64, "token_logprobs": [-0.5 - i as f64, 1e-300], "tokens": 2});
    let line = |i: usize| {
        let k = call_key(&inner.model_id(), "score", &score(i));
        format!(
            "{}\n",
            serde_json::json!({"key": hex::encode(k), "value": answer(i)})
        )
    };
    let mut bytes = Vec::new();
    bytes.extend(line(0).as_bytes());
    bytes.extend(line(1).as_bytes());
    bytes.extend(b"{\"key\":\"\xff\xfe not utf-8\",\"value\":1}\n");
    bytes.extend(line(2).as_bytes());
    bytes.extend(b"not json at all\n");
    bytes.extend(line(3).as_bytes());
    let torn = line(4);
    bytes.extend(&torn.as_bytes()[..torn.len() / 2]);
    let legacy = dir.path().join("calls.jsonl");
    std::fs::write(&legacy, &bytes).expect("write");

    let (report, warned) = warnings_of(|| CallStore::open(dir.path(), u64::MAX).expect("open").1);
    let imported = report.imported.expect("imported");
    assert_eq!((imported.entries, imported.skipped), (4, 3));
    assert!(
        warned.contains(&legacy.display().to_string()) && warned.contains("skipped 3 bad lines"),
        "{warned}"
    );
    // The old file is kept, renamed, byte for byte.
    assert!(!legacy.exists());
    let kept = imported.moved_to.expect("moved");
    assert_eq!(kept, dir.path().join("calls.jsonl.imported"));
    assert_eq!(std::fs::read(&kept).expect("read"), bytes);
    // Every good line answers exactly (floats to the last bit); the torn one is asked again.
    block_on(async {
        let c = CachedBackend::new(Arc::new(inner.clone()), dir.path()).expect("open");
        let got = c.score((0..5).map(score).collect()).await.expect("score");
        for (i, g) in got.iter().take(4).enumerate() {
            assert_eq!(
                serde_json::to_value(g).expect("json"),
                answer(i),
                "entry {i}"
            );
        }
        assert_eq!(inner.calls().len(), 1, "only the torn line's request");
    });
    // Opened again: nothing left to import.
    let (_, report) = CallStore::open(dir.path(), u64::MAX).expect("reopen");
    assert!(report.imported.is_none());
}

fn damaged_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("calls.sqlite.damaged-") && !n.ends_with("-wal"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_damaged_file_is_set_aside_and_the_cache_starts_again() {
    // Not a database at all.
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join(CACHE_FILE);
    std::fs::write(
        &db,
        b"this is not SQLite, it is a text file that took its name\n",
    )
    .expect("write");
    let (report, warned) = warnings_of(|| {
        CallStore::open(dir.path(), u64::MAX)
            .expect("opens anyway")
            .1
    });
    let aside = report.set_aside.expect("set aside");
    assert_eq!(damaged_files(dir.path()).len(), 1);
    assert!(
        std::fs::read(&aside)
            .expect("kept")
            .starts_with(b"this is not SQLite"),
        "the damaged file is kept as it was"
    );
    assert!(warned.contains("moved to"), "{warned}");

    // A real database with a page overwritten: the integrity check finds it.
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (store, _) = CallStore::open(dir.path(), u64::MAX).expect("open");
        let rows: Vec<(Key, Vec<u8>)> = (0..200).map(|i| (key(i), big_answer(i))).collect();
        store.put("m", "generate", &rows).expect("put");
        store.vacuum().expect("vacuum");
    }
    let db = dir.path().join(CACHE_FILE);
    let mut bytes = std::fs::read(&db).expect("read");
    assert!(bytes.len() > 12 * 4096);
    for b in &mut bytes[4096 * 2..4096 * 12] {
        *b = 0x5a;
    }
    std::fs::write(&db, &bytes).expect("write");
    let (store, report) = CallStore::open(dir.path(), u64::MAX).expect("opens anyway");
    assert!(
        report.set_aside.is_some(),
        "the integrity check found nothing"
    );
    assert_eq!(store.len().expect("len"), 0);
    store
        .put("m", "generate", &[(key(1), big_answer(1))])
        .expect("the new cache works");
}

#[tokio::test]
async fn a_run_on_a_damaged_cache_goes_on() {
    use common::session::*;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run");
    std::fs::create_dir_all(out.join("cache")).expect("mkdir");
    std::fs::write(out.join("cache").join(CACHE_FILE), vec![0xa5u8; 10_000]).expect("write");
    let events = run_succeeding(tiny_config(1), scripted(), &out).await;
    assert!(!events.is_empty());
    assert_eq!(damaged_files(&out.join("cache")).len(), 1);
    let (store, _) = CallStore::open(&out.join("cache"), u64::MAX).expect("open");
    assert!(store.len().expect("len") > 0, "the run filled a new cache");
}

#[test]
fn dln_cache_stats_clear_and_vacuum_on_a_real_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    block_on(async {
        let c =
            CachedBackend::new(Arc::new(ScriptedBackend::new()), &run.join("cache")).expect("open");
        c.generate((0..3).map(|i| req("s", i)).collect())
            .await
            .expect("generate");
        let scores: Vec<ScoreRequest> = (0..2)
            .map(|i| ScoreRequest {
                context: format!("c{i}"),
                target: " t".into(),
            })
            .collect();
        c.score(scores.clone()).await.expect("score");
        c.score(scores).await.expect("score again: 2 hits");
    });
    let dln = |args: &[&str]| {
        let out = bin()
            .args(args)
            .env("DLN_DATA", dir.path().join("data"))
            .output()
            .expect("run dln");
        stdout(&ok(out, &format!("dln {args:?}")))
    };
    let run_dir = run.to_str().expect("utf-8 path");
    let text = dln(&["cache", "stats", run_dir]);
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
            .to_string()
    };
    assert_eq!(field("entries"), "5", "{text}");
    assert_eq!(field("hits"), "2", "{text}");
    let row = |op: &str| {
        text.lines()
            .find(|l| l.starts_with("scripted") && l.contains(op))
            .unwrap_or_else(|| panic!("no scripted {op} row:\n{text}"))
            .split_whitespace()
            .skip(2)
            .take(2)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("generate"), ["3", "0"]);
    assert_eq!(row("score"), ["2", "2"]);
    let json: serde_json::Value =
        serde_json::from_str(&dln(&["cache", "stats", run_dir, "--json"])).expect("json");
    assert_eq!(json["entries"], 5);
    assert_eq!(json["max_mb"], 1024.0);
    assert!(dln(&["cache", "vacuum", run_dir]).contains("calls.sqlite"));
    assert!(dln(&["cache", "clear", &format!("{run_dir}/cache")]).contains("removed 5 answers"));
    assert!(dln(&["cache", "stats", run_dir]).contains("entries  0"));
    // No cache there: an error naming the path, nothing created.
    let out = bin()
        .args([
            "cache",
            "stats",
            dir.path().join("nowhere").to_str().expect("utf-8"),
        ])
        .output()
        .expect("run dln");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere"));
    assert!(!dir.path().join("nowhere").exists());
}
