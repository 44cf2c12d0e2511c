//! The event loop headless (ratatui's TestBackend, terminal events from a channel): redraws are
//! capped at ~30 fps and coalesced under a flood of engine events, a key is answered within a
//! frame while the flood goes on, an idle screen does not redraw, and quitting stops the run.

mod common;

use std::time::{Duration, Instant};

use common::tui::term_key;
use crossterm::event::{Event as TermEvent, KeyCode};
use dln::dln::events::{Command, Event, Stage};
use dln::tui::run_loop::{run_with, Link, FRAME};
use dln::tui::Exit;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_are_capped_keys_answer_within_a_frame_and_idle_is_idle() {
    let mut app = common::tui::app();
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("test terminal");
    let (etx, erx) = mpsc::unbounded_channel::<Event>();
    let (ctx, mut crx) = mpsc::unbounded_channel::<Command>();
    let (ktx, krx) = futures::channel::mpsc::unbounded::<std::io::Result<TermEvent>>();
    let link = Link {
        commands: Some(ctx),
        events: Some(erx),
    };

    let flood = 20_000usize;
    let driver = async move {
        for e in common::tui::dln1_running() {
            etx.send(e).expect("send");
        }
        // A flood of progress events for ~1 s, with a key pressed in the middle.
        let start = Instant::now();
        let mut pause_latency = None;
        for i in 0..flood {
            etx.send(Event::StageProgress {
                iteration: 2,
                stage: Stage::Score,
                done: i,
                total: flood,
                usage: None,
            })
            .expect("send");
            if i % 100 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if i == flood / 2 {
                let sent = Instant::now();
                ktx.unbounded_send(term_key(KeyCode::Char(' ')))
                    .expect("key");
                let cmd = tokio::time::timeout(Duration::from_secs(2), crx.recv()).await;
                assert_eq!(cmd.ok().flatten(), Some(Command::Pause));
                pause_latency = Some(sent.elapsed());
            }
        }
        let flood_time = start.elapsed();
        // Idle for a second: nothing arrives, nothing should be drawn.
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Quit: confirm, Stop is sent; the engine "ends" by closing its stream.
        ktx.unbounded_send(term_key(KeyCode::Char('q')))
            .expect("key");
        ktx.unbounded_send(term_key(KeyCode::Char('y')))
            .expect("key");
        let stop = tokio::time::timeout(Duration::from_secs(2), crx.recv()).await;
        assert_eq!(stop.ok().flatten(), Some(Command::Stop));
        drop(etx);
        (flood_time, pause_latency)
    };
    let started = Instant::now();
    let (stats, (flood_time, pause_latency)) =
        tokio::join!(run_with(&mut terminal, krx, &mut app, link), driver);
    let stats = stats.expect("loop ends cleanly");
    let total = started.elapsed();

    assert_eq!(app.exit, Exit::Now);
    assert_eq!(
        stats.events as usize,
        common::tui::dln1_running().len() + flood
    );
    let pause_latency = pause_latency.expect("measured");
    // Frames: at most one per FRAME during the flood, plus a handful for the keys and the end;
    // a busy redraw during the idle second would add ~30.
    let cap = (flood_time.as_millis() / FRAME.as_millis()) as u64 + 8;
    eprintln!(
        "loop: {} events in {:.2}s drawn in {} frames (cap {cap}); total {:.2}s; key → command {:?}",
        stats.events,
        flood_time.as_secs_f64(),
        stats.frames,
        total.as_secs_f64(),
        pause_latency
    );
    assert!(
        stats.frames <= cap,
        "{} frames for a {:?} flood",
        stats.frames,
        flood_time
    );
    assert!(stats.frames >= 3, "the screen was redrawn during the flood");
    assert!(
        pause_latency < FRAME * 3,
        "key answered in {pause_latency:?}"
    );
    // Every event was applied, and the last frame shows the quit confirmation.
    assert_eq!(app.run.stage.as_ref().map(|s| s.done), Some(flood - 1));
    let screen = terminal.backend().to_string();
    assert!(screen.contains("Stop it and quit?"), "{screen}");
}
