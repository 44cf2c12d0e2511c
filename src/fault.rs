//! Fault injection for the crash tests: `DLN_FAULT=NAME:N[:MODE]` makes the `N`-th pass
//! (1-based) through the fault point `NAME` of this process leave what a crash at that instant
//! would leave, then die: `std::process::abort()` (like SIGKILL: no unwinding, no cleanup), or a
//! panic with `:panic` (to test the panic path). At a write point ([`io_point`]) two more modes
//! fail the write instead, after the part of it a failing disk lets through: `:enospc` (the disk
//! is full from that pass on: every later pass fails too) and `:eio` (that one write fails).
//! Without the variable every point is a no-op after one cached environment lookup.
//!
//! Points: `atomic_write` (half of the temporary file written), `event_append` (half of an event
//! line appended), `cache_append` (half of a call-cache batch written to the WAL, uncommitted),
//! `tui_frame` (a frame of the workbench about to be drawn), `stage` (a trainer stage about to
//! run).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Abort,
    Panic,
    Enospc,
    Eio,
}

struct Plan {
    name: String,
    at: u64,
    mode: Mode,
}

fn plan() -> Option<&'static Plan> {
    static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let spec = std::env::var("DLN_FAULT").ok()?;
        let mut parts = spec.split(':');
        let name = parts.next()?.to_string();
        let at = parts.next()?.parse().ok()?;
        let mode = match parts.next() {
            None | Some("") | Some("abort") => Mode::Abort,
            Some("panic") => Mode::Panic,
            Some("enospc") => Mode::Enospc,
            Some("eio") => Mode::Eio,
            Some(_) => return None,
        };
        Some(Plan { name, at, mode })
    })
    .as_ref()
}

fn counters() -> &'static Mutex<HashMap<String, AtomicU64>> {
    static COUNTS: OnceLock<Mutex<HashMap<String, AtomicU64>>> = OnceLock::new();
    COUNTS.get_or_init(Default::default)
}

/// This pass's number through `name` when `DLN_FAULT` names it (counted whatever the mode).
fn pass(name: &str) -> Option<(&'static Plan, u64)> {
    let plan = plan()?;
    if plan.name != name {
        return None;
    }
    let n = {
        let mut map = match counters().lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.entry(name.to_string())
            .or_insert_with(|| AtomicU64::new(0))
            .fetch_add(1, Ordering::SeqCst)
            + 1
    };
    Some((plan, n))
}

fn die(plan: &Plan, name: &str, n: u64) -> ! {
    if plan.mode == Mode::Panic {
        panic!("injected fault at {name} #{n} (DLN_FAULT)");
    }
    eprintln!("dln: injected crash at {name} #{n} (DLN_FAULT)");
    std::process::abort();
}

/// A fault point. `partial` writes what an interrupted operation leaves behind; it runs only
/// when this pass is the one `DLN_FAULT` names, just before the process dies. (The write-failure
/// modes do nothing here: they belong to [`io_point`].)
pub fn point(name: &str, partial: impl FnOnce()) {
    let Some((plan, n)) = pass(name) else { return };
    if n == plan.at && matches!(plan.mode, Mode::Abort | Mode::Panic) {
        partial();
        die(plan, name, n);
    }
}

/// A write point: as [`point`] for a crash, and for `:enospc` / `:eio` the write fails here
/// with that error after `partial` has written what a failing disk lets through.
pub fn io_point(name: &str, partial: impl FnOnce()) -> std::io::Result<()> {
    let Some((plan, n)) = pass(name) else {
        return Ok(());
    };
    let errno = match plan.mode {
        Mode::Abort | Mode::Panic if n == plan.at => {
            partial();
            die(plan, name, n)
        }
        Mode::Enospc if n >= plan.at => libc::ENOSPC,
        Mode::Eio if n == plan.at => libc::EIO,
        _ => return Ok(()),
    };
    partial();
    Err(std::io::Error::from_raw_os_error(errno))
}
