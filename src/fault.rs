//! Fault injection for the crash tests: `DLN_FAULT=NAME:N[:panic]` makes the `N`-th pass
//! (1-based) through the fault point `NAME` of this process leave what a crash at that instant
//! would leave, then die: `std::process::abort()` (like SIGKILL: no unwinding, no cleanup), or a
//! panic with `:panic` (to test the panic path). Without the variable every point is a no-op
//! after one cached environment lookup.
//!
//! Points: `atomic_write` (half of the temporary file written), `event_append` (half of an event
//! line appended), `cache_append` (half of a call-cache batch written to the WAL, uncommitted),
//! `tui_frame` (a frame of the workbench about to be drawn), `stage` (a trainer stage about to
//! run).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

struct Plan {
    name: String,
    at: u64,
    panic: bool,
}

fn plan() -> Option<&'static Plan> {
    static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let spec = std::env::var("DLN_FAULT").ok()?;
        let mut parts = spec.split(':');
        let name = parts.next()?.to_string();
        let at = parts.next()?.parse().ok()?;
        let panic = parts.next() == Some("panic");
        Some(Plan { name, at, panic })
    })
    .as_ref()
}

fn counters() -> &'static Mutex<HashMap<String, AtomicU64>> {
    static COUNTS: OnceLock<Mutex<HashMap<String, AtomicU64>>> = OnceLock::new();
    COUNTS.get_or_init(Default::default)
}

/// A fault point. `partial` writes what an interrupted operation leaves behind; it runs only
/// when this pass is the one `DLN_FAULT` names, just before the process dies.
pub fn point(name: &str, partial: impl FnOnce()) {
    let Some(plan) = plan() else { return };
    if plan.name != name {
        return;
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
    if n == plan.at {
        partial();
        if plan.panic {
            panic!("injected fault at {name} #{n} (DLN_FAULT)");
        }
        eprintln!("dln: injected crash at {name} #{n} (DLN_FAULT)");
        std::process::abort();
    }
}
