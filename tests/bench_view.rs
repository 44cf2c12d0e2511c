//! `dln bench view`: the benchmark table screen drawn into ratatui's TestBackend from a
//! committed fixture (`tests/data/bench-results/`: a results.json of 3 tasks × 6 methods × 2
//! seeds with a failed, a stopped and a never-run cell, and one real run directory), the
//! reducer's keys, the loop into a replay and back, and the errors a person can cause.

mod common;

use std::path::PathBuf;

use common::tui::{key, screen, term_key};
use crossterm::event::{Event as TermEvent, KeyCode};
use dln::bench::accuracy::read_report;
use dln::tui::bench::{run_loop, BenchView, Effect, Metric, Msg};
use dln::tui::{Action, KeyMap, Theme};
use insta::assert_snapshot;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// The committed benchmark results.
fn fixture() -> PathBuf {
    common::fixture("bench-results")
}

fn view() -> BenchView {
    let read = read_report(&fixture()).expect("the fixture reads");
    BenchView::new(read, Theme::mono(), KeyMap::default())
}

fn render(v: &BenchView, w: u16, h: u16) -> String {
    screen(w, h, |f| dln::tui::bench::view::draw(v, f))
}

fn act(v: &mut BenchView, actions: &[Action]) -> Option<Effect> {
    let mut last = None;
    for a in actions {
        last = v.update(Msg::Action(*a));
    }
    last
}

#[test]
fn the_fixture_is_the_type_bench_accuracy_writes() {
    let v = view();
    assert_eq!(v.report().tasks.len(), 3);
    assert_eq!(v.report().methods.len(), 6);
    assert_eq!(v.report().seeds, vec![1, 2]);
    assert_eq!(v.out(), fixture());
    // The real results of a run of `dln bench accuracy` read as well.
    let text = std::fs::read_to_string(fixture().join("results.json")).expect("read");
    dln::bench::accuracy::read::parse_report(&text).expect("parses");
}

#[test]
fn table_80x24() {
    let v = view();
    let screen = render(&v, 80, 24);
    // Narrow: a page of methods, and the title says so.
    assert!(screen.contains("methods 1-3 of 6 ▶"), "{screen}");
    assert_snapshot!(screen);
}

#[test]
fn table_120x40() {
    let mut v = view();
    // A two-layer cell: dev curve chart, output layer alone, two prompts.
    act(
        &mut v,
        &[Action::NextLayer, Action::NextLayer, Action::NextLayer],
    );
    let screen = render(&v, 120, 40);
    assert!(screen.contains("output layer alone"), "{screen}");
    assert!(screen.contains("L2 "), "{screen}");
    assert_snapshot!(screen);
}

#[test]
fn columns_page_at_80x24_and_dev_toggles() {
    let mut v = view();
    act(
        &mut v,
        &[
            Action::NextLayer,
            Action::NextLayer,
            Action::NextLayer,
            Action::NextLayer,
            Action::Down,
            Action::ToggleDiff,
        ],
    );
    assert_eq!((v.row, v.col), (1, 4));
    assert_eq!(v.metric, Metric::Dev);
    let screen = render(&v, 80, 24);
    assert!(screen.contains("◀ methods 4-6 of 6"), "{screen}");
    assert!(screen.contains("Dev accuracy"), "{screen}");
    assert_snapshot!(screen);
}

#[test]
fn a_failed_seed_and_a_missing_seed_in_the_detail_80x24() {
    let mut v = view();
    // navigate · dln-2: seed 2 failed.
    act(
        &mut v,
        &[
            Action::Down,
            Action::NextLayer,
            Action::NextLayer,
            Action::NextLayer,
            Action::ScrubForward,
        ],
    );
    let screen = render(&v, 80, 24);
    assert!(screen.contains("failed: the server"), "{screen}");
    assert!(screen.contains("n=1"), "{screen}");
    assert_snapshot!("failed_seed_80x24", screen);
    // logical_deduction · dln-2-uniform never ran: the cell is a dash, the seeds "not run".
    act(&mut v, &[Action::Down, Action::NextLayer]);
    let screen = render(&v, 80, 24);
    assert!(screen.contains("not run"), "{screen}");
    assert_eq!(act(&mut v, &[Action::Expand]), None);
    assert!(v.notice.as_deref().unwrap_or("").contains("did not run"));
}

#[test]
fn help_80x24() {
    let mut v = view();
    act(&mut v, &[Action::Help]);
    let screen = render(&v, 80, 24);
    assert!(screen.contains("bench view: keys"), "{screen}");
    assert_snapshot!(screen);
    // q closes the help first; the second one quits.
    act(&mut v, &[Action::Quit]);
    assert!(!v.help && !v.quit);
    act(&mut v, &[Action::Quit]);
    assert!(v.quit);
}

#[test]
fn tiny_and_odd_sizes_do_not_panic() {
    let mut v = view();
    for (w, h) in [(1, 1), (10, 5), (40, 10), (80, 8), (200, 60)] {
        render(&v, w, h);
    }
    act(&mut v, &[Action::Help]);
    for (w, h) in [(1, 1), (20, 6)] {
        render(&v, w, h);
    }
}

#[test]
fn keys_move_the_cursor_within_the_table_and_pick_seeds() {
    let mut v = view();
    // The keymap's keys: hjkl and arrows.
    v.handle_key(key(KeyCode::Char('j')));
    v.handle_key(key(KeyCode::Right));
    assert_eq!((v.row, v.col), (1, 1));
    v.handle_key(key(KeyCode::Char('k')));
    v.handle_key(key(KeyCode::Char('h')));
    v.handle_key(key(KeyCode::Left));
    v.handle_key(key(KeyCode::Up));
    assert_eq!((v.row, v.col), (0, 0), "clamped at the top-left");
    act(&mut v, &[Action::Bottom]);
    for _ in 0..10 {
        act(&mut v, &[Action::NextLayer]);
    }
    assert_eq!((v.row, v.col), (2, 5), "clamped at the bottom-right");
    act(&mut v, &[Action::Top]);
    assert_eq!(v.row, 0);

    // Seeds: ] and [ clamp; Tab, which goes to the next table, has none to go to.
    assert_eq!(v.seed_number(), Some(1));
    v.handle_key(key(KeyCode::Char(']')));
    v.handle_key(key(KeyCode::Char(']')));
    assert_eq!(v.seed_number(), Some(2));
    v.handle_key(key(KeyCode::Tab));
    assert_eq!((v.shown, v.seed_number()), (0, Some(2)));
    v.handle_key(key(KeyCode::Char('[')));
    v.handle_key(key(KeyCode::Char('[')));
    assert_eq!(v.seed_number(), Some(1));

    // d toggles dev and back; PgDn scrolls the detail, a move starts it at the top again.
    v.handle_key(key(KeyCode::Char('d')));
    assert_eq!(v.metric, Metric::Dev);
    v.handle_key(key(KeyCode::Char('d')));
    assert_eq!(v.metric, Metric::Test);
    v.handle_key(key(KeyCode::PageDown));
    assert!(v.detail_scroll > 0);
    v.handle_key(key(KeyCode::Char('j')));
    assert_eq!(v.detail_scroll, 0);

    // ? then Esc; q quits.
    v.handle_key(key(KeyCode::Char('?')));
    assert!(v.help);
    v.handle_key(key(KeyCode::Esc));
    assert!(!v.help);
    v.handle_key(key(KeyCode::Char('q')));
    assert!(v.quit);
}

#[test]
fn enter_opens_the_selected_seeds_run_directory() {
    let mut v = view();
    let effect = v.handle_key(key(KeyCode::Enter));
    assert_eq!(
        effect,
        Some(Effect::OpenRun {
            dir: fixture().join("runs/hyperbaton/0-shot/seed-1"),
            what: "hyperbaton · 0-shot · seed 1".into(),
        })
    );
    act(&mut v, &[Action::ScrubForward, Action::NextLayer]);
    match act(&mut v, &[Action::Expand]) {
        Some(Effect::OpenRun { dir, what }) => {
            assert!(dir.ends_with("runs/hyperbaton/k-shot/seed-2"), "{dir:?}");
            assert_eq!(what, "hyperbaton · 3-shot · seed 2");
        }
        other => panic!("{other:?}"),
    }
    // The loop says when it is gone; the status line shows it.
    v.update(Msg::RunUnavailable("cannot open it: gone".into()));
    assert!(render(&v, 80, 24).contains("cannot open it: gone"));
    v.update(Msg::ReplayClosed);
    assert_eq!(v.notice, None);
}

/// Enter on a cell whose run directory is gone says so in the status line; Enter on one that
/// exists opens its replay, and quitting the replay lands back on the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_replays_a_run_and_comes_back_to_the_table() {
    let mut v = view();
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).expect("test terminal");
    let (ktx, krx) = futures::channel::mpsc::unbounded::<std::io::Result<TermEvent>>();
    // k-shot seed 1 has no run directory in the fixture; 0-shot seed 1 has one.
    for k in [KeyCode::Char('l'), KeyCode::Enter] {
        ktx.unbounded_send(term_key(k)).expect("key");
    }
    let driver = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        // Left, then Enter: the replay; q leaves it.
        for k in [KeyCode::Char('h'), KeyCode::Enter] {
            ktx.unbounded_send(term_key(k)).expect("key");
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        ktx.unbounded_send(term_key(KeyCode::Char('q')))
            .expect("key");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    let looped = async {
        let r = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            run_loop::run_with(&mut terminal, krx, &mut v),
        )
        .await;
        r
    };
    let (_, r) = tokio::join!(driver, looped);
    // Still running: back on the table, waiting for keys (the channel is still open).
    assert!(r.is_err(), "the loop ended early: {r:?}");
    let screen = terminal.backend().to_string();
    assert!(screen.contains("accuracy (%)"), "not the table: {screen}");
    assert_eq!(v.notice, None, "the replay closed cleanly");
    assert!(!v.quit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_run_is_a_message_in_the_status_line() {
    let mut v = view();
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("test terminal");
    let (ktx, krx) = futures::channel::mpsc::unbounded::<std::io::Result<TermEvent>>();
    for k in [KeyCode::Char('l'), KeyCode::Enter] {
        ktx.unbounded_send(term_key(k)).expect("key");
    }
    drop(ktx);
    run_loop::run_with(&mut terminal, krx, &mut v)
        .await
        .expect("the loop");
    let notice = v.notice.clone().unwrap_or_default();
    assert!(
        notice.contains("hyperbaton · 3-shot · seed 1") && notice.contains("is gone"),
        "{notice}"
    );
}

fn dln(args: &[&str]) -> std::process::Output {
    common::bin().args(args).output().expect("runs dln")
}

#[test]
fn errors_a_person_can_cause_name_the_file_before_the_screen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let gone = d.join("no-such-bench");
    let out = dln(&["bench", "view", gone.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no-such-bench") && err.contains("does not exist"),
        "{err}"
    );

    let empty = d.join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let out = dln(&["bench", "view", empty.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("has no results.json"), "{err}");

    let bad = d.join("bad");
    std::fs::create_dir(&bad).expect("mkdir");
    std::fs::write(
        bad.join("results.json"),
        "{\"model\": \"m\",\n  \"cells\": [}",
    )
    .expect("w");
    for arg in [bad.clone(), bad.join("results.json")] {
        let out = dln(&["bench", "view", arg.to_str().expect("utf-8")]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("results.json") && err.contains("line 2"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }

    // A good report without a terminal: says it needs one (nothing drawn into a pipe).
    let out = dln(&["bench", "view", fixture().to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("needs a terminal"), "{err}");
}

/// Two benchmarks (one per model): Tab shows the next table at the same task, method and seed,
/// wherever that task sits in it, and the title says which table it is; Shift-Tab goes back.
#[test]
fn tab_goes_from_one_models_table_to_the_next_at_the_same_cell() {
    let first = read_report(&fixture()).expect("the fixture reads");
    let mut second = read_report(&fixture()).expect("the fixture reads");
    second.report.tasks.reverse();
    second.report.model = "qwen2.5-coder-1.5b.gguf".into();
    let mut v = BenchView::of_tables(vec![first, second], Theme::mono(), KeyMap::default());
    act(
        &mut v,
        &[Action::Down, Action::NextLayer, Action::NextLayer],
    );
    v.handle_key(key(KeyCode::Char(']')));
    let (task, method, seed) = (v.task().map(str::to_string), v.method(), v.seed_number());
    assert_eq!(v.row, 1);
    assert!(!render(&v, 120, 30).contains("table 2 of 2"));
    v.handle_key(key(KeyCode::Tab));
    assert_eq!(v.shown, 1);
    assert_eq!(v.task().map(str::to_string), task);
    assert_eq!((v.method(), v.seed_number()), (method, seed));
    let screen = render(&v, 120, 30);
    assert!(
        screen.contains("table 2 of 2: qwen2.5-coder-1.5b"),
        "{screen}"
    );
    assert!(
        screen.contains("table"),
        "the status line names the key: {screen}"
    );
    // The last task of one is the first of the other: the cursor follows the task.
    act(&mut v, &[Action::Bottom]);
    let last = v.task().map(str::to_string);
    v.handle_key(key(KeyCode::BackTab));
    assert_eq!((v.shown, v.row), (0, 0));
    assert_eq!(v.task().map(str::to_string), last);
    v.handle_key(key(KeyCode::BackTab));
    assert_eq!(v.shown, 1, "Shift-Tab wraps");
}
