//! `dln bench forecast`: did the ETA hold? For every iteration of recorded runs, the forecast
//! made as it started (its first [`Event::Forecast`], before its forward pass; none until each
//! kind of stage has run once) against the time it took,
//! pauses left out. An iteration rerun from the call cache (a resumed one: most of its calls
//! answered there) is shown but kept out of the summary: no forecast can know what a cache
//! holds.

use serde::Serialize;

use crate::dln::events::Event;
use crate::llm::Usage;

/// One iteration's forecast against its time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Held {
    pub iteration: usize,
    pub forecast_ms: u64,
    /// Wall time less the time it was paused.
    pub actual_ms: u64,
    /// Most of its calls came from the call cache.
    pub replayed: bool,
}

impl Held {
    /// (forecast − actual) ÷ actual.
    pub fn error(&self) -> f64 {
        (self.forecast_ms as f64 - self.actual_ms as f64) / self.actual_ms.max(1) as f64
    }
}

/// The iterations of one run's events that were forecast at their start.
pub fn iterations(events: &[Event]) -> Vec<Held> {
    // The iteration's first forecast, made at its start: `None` inside when it had none.
    let mut forecast: Option<(usize, Option<u64>)> = None;
    let mut out = Vec::new();
    for e in events {
        match e {
            Event::Forecast {
                iteration,
                iteration_left_ms,
                ..
            } if forecast.is_none_or(|(it, _)| it != *iteration) => {
                forecast = Some((*iteration, *iteration_left_ms));
            }
            Event::IterationDone {
                iteration,
                usage,
                elapsed_ms,
                paused_ms,
                ..
            } => {
                if let Some((_, Some(ms))) = forecast.filter(|(it, _)| it == iteration) {
                    let mut total = Usage::default();
                    usage.iter().for_each(|u| total.add(&u.usage));
                    out.push(Held {
                        iteration: *iteration,
                        forecast_ms: ms,
                        actual_ms: elapsed_ms.saturating_sub(*paused_ms),
                        replayed: total.mostly_cached(),
                    });
                }
                forecast = None;
            }
            // A resumed run starts its interrupted iteration again: a new forecast.
            Event::RunStarted { .. } => forecast = None,
            _ => {}
        }
    }
    out
}

/// How many of `held` (replayed ones left out) were within `within` of their time, of how many.
pub fn share_within(held: &[Held], within: f64) -> (usize, usize) {
    let kept: Vec<&Held> = held.iter().filter(|h| !h.replayed).collect();
    let ok = kept.iter().filter(|h| h.error().abs() <= within).count();
    (ok, kept.len())
}

/// The table `dln bench forecast` prints for one run (iterations numbered from 1, as every
/// progress line does).
pub fn render(name: &str, held: &[Held]) -> String {
    let mut s = format!("{name}\n  iteration  forecast   actual   error\n");
    for h in held {
        s += &format!(
            "  {:>9}  {:>7.1}s {:>7.1}s {:>+6.0}%{}\n",
            h.iteration + 1,
            h.forecast_ms as f64 / 1000.0,
            h.actual_ms as f64 / 1000.0,
            h.error() * 100.0,
            if h.replayed {
                "  (rerun from the call cache)"
            } else {
                ""
            }
        );
    }
    let (ok, n) = share_within(held, 0.25);
    s += &format!("  within 25%: {ok} of {n}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dln::events::UsageEntry;
    use crate::dln::ops::Operation;

    fn forecast(iteration: usize, ms: u64) -> Event {
        Event::Forecast {
            iteration,
            iteration_left_ms: Some(ms),
            stage_ms: Some(ms / 4),
            run_left_ms: Some(ms * 3),
        }
    }

    fn done(iteration: usize, elapsed_ms: u64, paused_ms: u64, hits: u64) -> Event {
        Event::IterationDone {
            iteration,
            train_accuracy: 0.5,
            elbo: None,
            usage: vec![UsageEntry {
                layer: 0,
                operation: Operation::Propose,
                usage: Usage {
                    calls: 10,
                    cache_hits: hits,
                    ..Usage::default()
                },
            }],
            elapsed_ms,
            paused_ms,
        }
    }

    #[test]
    fn each_iteration_is_held_against_its_first_forecast_with_pauses_left_out() {
        let none = Event::Forecast {
            iteration: 0,
            iteration_left_ms: None,
            stage_ms: None,
            run_left_ms: None,
        };
        let events = vec![
            none,
            forecast(0, 10), // a later stage's, knowing more: not the iteration's forecast
            done(0, 900, 0, 0),
            forecast(1, 1000),
            forecast(1, 500), // a later stage's: not the iteration's forecast
            done(1, 1600, 400, 0),
            forecast(2, 1000),
            done(2, 2000, 0, 0),
            forecast(3, 1000),
            done(3, 30, 0, 9),
        ];
        let held = iterations(&events);
        assert_eq!(held.len(), 3, "iteration 0 had no forecast");
        assert_eq!((held[0].forecast_ms, held[0].actual_ms), (1000, 1200));
        assert!((held[0].error() + 1.0 / 6.0).abs() < 1e-9);
        assert!((held[1].error() + 0.5).abs() < 1e-9);
        assert!(held[2].replayed);
        assert_eq!(share_within(&held, 0.25), (1, 2), "the rerun is left out");
        let table = render("run", &held);
        assert!(table.contains("within 25%: 1 of 2"), "{table}");
        assert!(table.contains("rerun from the call cache"), "{table}");
    }
}
