//! Progress within a stage. A stage says how many model requests it will make
//! ([`Trainer::expect`](super::Trainer)); while its calls run, a watcher reads how many requests
//! the network's backends have answered and emits `StageProgress` whenever the stage's counter
//! moves, so a client's `N/M` advances request by request instead of jumping at the stage's end.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::dln::events::{Event, Stage};
use crate::dln::network::Network;
use crate::llm::SharedBackend;

use super::EventSink;

/// How often the watcher reads the backends' counters.
const TICK: Duration = Duration::from_millis(200);

/// What the running stage expects: its `total` (the unit its events count: examples, samples,
/// candidates) reached after `requests` model requests, counted from `answered_before`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Expected {
    pub iteration: usize,
    pub stage: Stage,
    pub total: usize,
    pub requests: usize,
    pub answered_before: f64,
}

/// The stage's counter after `answered` requests of `requests`: `total` only when all are
/// answered.
pub(super) fn done_of(total: usize, requests: usize, answered: f64) -> usize {
    if requests == 0 || total == 0 {
        return 0;
    }
    let fraction = (answered / requests as f64).clamp(0.0, 1.0);
    ((fraction * total as f64 + 1e-9).floor() as usize).min(total)
}

/// The stage's expectation, shared between the trainer (which sets it) and the watcher.
pub(super) type Expectation = Arc<Mutex<Option<Expected>>>;

/// Requests answered by the network's distinct backends.
pub(super) fn answered(backends: &[SharedBackend]) -> f64 {
    backends.iter().map(|b| b.answered()).sum()
}

/// The network's distinct backends (a backend shared by layers is read once).
pub(super) fn backends(net: &Network) -> Vec<SharedBackend> {
    let mut out: Vec<SharedBackend> = Vec::new();
    for l in &net.layers {
        for b in [&l.backends.forward, &l.backends.backward] {
            if !out.iter().any(|o| Arc::ptr_eq(o, b)) {
                out.push(Arc::clone(b));
            }
        }
    }
    out
}

/// Runs `work` (a stage), emitting `StageProgress` as the backends answer what it expects.
pub(super) async fn watched<T>(
    work: impl Future<Output = T>,
    backends: Vec<SharedBackend>,
    expectation: Expectation,
    sink: Arc<dyn EventSink>,
) -> T {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(work);
    // The last counter emitted, per expectation (a new stage starts from its StageStarted's 0).
    let mut last: Option<(Expected, usize)> = None;
    loop {
        tokio::select! {
            biased;
            out = &mut work => return out,
            _ = tick.tick() => {
                let Some(e) = expectation.lock().ok().and_then(|g| *g) else {
                    continue;
                };
                let done = done_of(e.total, e.requests, answered(&backends) - e.answered_before);
                let shown = match last {
                    Some((le, d)) if le == e => d,
                    _ => 0,
                };
                if done > shown {
                    sink.emit(Event::StageProgress {
                        iteration: e.iteration,
                        stage: e.stage,
                        done,
                        total: e.total,
                        usage: None,
                    });
                    last = Some((e, done));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_reaches_the_total_only_when_every_request_is_answered() {
        assert_eq!(done_of(8, 8, 0.0), 0);
        assert_eq!(done_of(8, 8, 3.0), 3);
        assert_eq!(done_of(8, 16, 7.9), 3, "two requests per example");
        assert_eq!(done_of(8, 16, 15.5), 7);
        assert_eq!(done_of(8, 16, 16.0), 8);
        assert_eq!(done_of(8, 16, 40.0), 8, "never past the total");
        assert_eq!(done_of(6, 0, 3.0), 0, "nothing expected, nothing shown");
        // Three classify requests of three items each, answered item by item.
        let answered: f64 = (0..9).map(|_| 1.0 / 3.0).sum();
        assert_eq!(done_of(3, 3, answered), 3, "rounding keeps whole answers");
    }
}
