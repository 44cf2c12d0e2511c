//! How long the rest of a run takes: each stage's time, learned from the stages that ran, and
//! the plan of what is left.
//!
//! The mean of past iterations' wall time is a poor guess on a real run: an iteration resumed
//! from the call cache takes a second, a paused one hours, one with a dev evaluation twice
//! another. Instead every stage that ran is timed without the time it was held by a pause
//! ([`Pauses`]), and kept as a sample of its kind (the forward pass, proposing for layer 1, a
//! dev evaluation, ...) unless the call cache answered most of its calls. An iteration's
//! forecast is the sum of its stages' recent means; the run's adds the iterations still to
//! come (a dev evaluation only where one is due) and the test.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::StageId;
use crate::dln::state::StageTimes;
use crate::llm::Usage;

/// How many recent samples of a stage's time its forecast averages.
const KEEP: usize = 3;

/// The time a run spent held by a pause, which its stages' times leave out. The driver tells
/// it when it holds and releases the run's backends.
#[derive(Debug, Default)]
pub struct Pauses(Mutex<(Duration, Option<Instant>)>);

impl Pauses {
    pub fn hold(&self, held: bool) {
        let Ok(mut p) = self.0.lock() else { return };
        match (held, p.1) {
            (true, None) => p.1 = Some(Instant::now()),
            (false, Some(since)) => {
                p.0 += since.elapsed();
                p.1 = None;
            }
            _ => {}
        }
    }

    /// Time held so far, a hold in progress included.
    pub fn total(&self) -> Duration {
        self.0
            .lock()
            .map(|p| p.0 + p.1.map_or(Duration::ZERO, |s| s.elapsed()))
            .unwrap_or_default()
    }
}

/// Recent times of each kind of stage, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pace {
    samples: Vec<(StageId, VecDeque<u64>)>,
}

impl Pace {
    /// `stage` took `ms` (held time left out) for the calls `usage` counts. A stage whose calls
    /// came mostly from the call cache says nothing about the next one and is not kept; one
    /// that made no call at all (proposing for a pinned layer) is kept: it is that quick.
    pub fn observe(&mut self, stage: StageId, ms: u64, usage: &Usage) {
        if usage.mostly_cached() {
            return;
        }
        let i = match self.samples.iter().position(|(s, _)| *s == stage) {
            Some(i) => i,
            None => {
                self.samples.push((stage, VecDeque::new()));
                self.samples.len() - 1
            }
        };
        let times = &mut self.samples[i].1;
        if times.len() == KEEP {
            times.pop_front();
        }
        times.push_back(ms);
    }

    /// The forecast of one stage: its recent mean, 0 for selecting and finishing (they make no
    /// calls), `None` for a kind not seen yet.
    pub fn stage_ms(&self, stage: StageId) -> Option<u64> {
        if matches!(stage, StageId::Select(_) | StageId::Finish) {
            return Some(0);
        }
        let (_, times) = self.samples.iter().find(|(s, _)| *s == stage)?;
        Some(times.iter().sum::<u64>() / times.len() as u64)
    }

    /// The forecast of a list of stages: `None` until every stage of it that makes calls has
    /// been seen.
    pub fn plan_ms(&self, plan: &[StageId]) -> Option<u64> {
        plan.iter().map(|&s| self.stage_ms(s)).sum()
    }

    /// The samples as a checkpoint keeps them.
    pub fn saved(&self) -> Vec<StageTimes> {
        self.samples
            .iter()
            .map(|(s, times)| StageTimes {
                stage: key(*s),
                times_ms: times.iter().copied().collect(),
            })
            .collect()
    }

    /// The samples a checkpoint kept (kinds it does not know, from another build, are left).
    pub fn restored(saved: &[StageTimes]) -> Pace {
        Pace {
            samples: saved
                .iter()
                .filter_map(|t| {
                    let times: VecDeque<u64> =
                        t.times_ms.iter().rev().take(KEEP).rev().copied().collect();
                    Some((parse(&t.stage)?, times)).filter(|(_, t)| !t.is_empty())
                })
                .collect(),
        }
    }
}

/// A stage's name in checkpoints: `forward`, `propose:0`, ...
fn key(stage: StageId) -> String {
    match stage {
        StageId::Forward => "forward".into(),
        StageId::PosteriorSampling(l) => format!("posterior:{l}"),
        StageId::Sharpening(l) => format!("sharpen:{l}"),
        StageId::Rescore(l) => format!("rescore:{l}"),
        StageId::Propose(l) => format!("propose:{l}"),
        StageId::Score(l) => format!("score:{l}"),
        StageId::Select(l) => format!("select:{l}"),
        StageId::Evaluate => "evaluate".into(),
        StageId::Finish => "finish".into(),
    }
}

fn parse(key: &str) -> Option<StageId> {
    let (name, layer) = match key.split_once(':') {
        Some((n, l)) => (n, Some(l.parse().ok()?)),
        None => (key, None),
    };
    Some(match (name, layer) {
        ("forward", None) => StageId::Forward,
        ("posterior", Some(l)) => StageId::PosteriorSampling(l),
        ("sharpen", Some(l)) => StageId::Sharpening(l),
        ("rescore", Some(l)) => StageId::Rescore(l),
        ("propose", Some(l)) => StageId::Propose(l),
        ("score", Some(l)) => StageId::Score(l),
        ("select", Some(l)) => StageId::Select(l),
        ("evaluate", None) => StageId::Evaluate,
        ("finish", None) => StageId::Finish,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(calls: u64, cache_hits: u64) -> Usage {
        Usage {
            calls,
            cache_hits,
            ..Usage::default()
        }
    }

    #[test]
    fn a_stage_forecast_is_the_mean_of_its_recent_computed_runs() {
        let mut pace = Pace::default();
        assert_eq!(pace.stage_ms(StageId::Propose(0)), None);
        for ms in [100, 200, 300, 400] {
            pace.observe(StageId::Propose(0), ms, &usage(5, 1));
        }
        assert_eq!(pace.stage_ms(StageId::Propose(0)), Some(300), "the last 3");
        // Answered from the call cache (a resumed iteration): not a sample.
        pace.observe(StageId::Propose(0), 2, &usage(5, 5));
        assert_eq!(pace.stage_ms(StageId::Propose(0)), Some(300));
        assert_eq!(pace.stage_ms(StageId::Propose(1)), None, "per layer");
        // No call at all (a pinned layer proposes nothing): as quick as it was.
        pace.observe(StageId::Propose(1), 1, &usage(0, 0));
        assert_eq!(pace.stage_ms(StageId::Propose(1)), Some(1));
        assert_eq!(pace.stage_ms(StageId::Select(0)), Some(0));
    }

    #[test]
    fn a_plan_is_forecast_once_each_of_its_stages_was_seen() {
        let mut pace = Pace::default();
        let plan = [
            StageId::Forward,
            StageId::Propose(0),
            StageId::Score(0),
            StageId::Select(0),
            StageId::Finish,
        ];
        pace.observe(StageId::Forward, 10, &usage(4, 0));
        pace.observe(StageId::Propose(0), 100, &usage(4, 0));
        assert_eq!(pace.plan_ms(&plan), None);
        pace.observe(StageId::Score(0), 50, &usage(20, 4));
        assert_eq!(pace.plan_ms(&plan), Some(160));
    }

    #[test]
    fn a_checkpoint_keeps_the_samples_of_every_kind_of_stage() {
        let mut pace = Pace::default();
        let stages = [
            StageId::Forward,
            StageId::PosteriorSampling(1),
            StageId::Sharpening(1),
            StageId::Rescore(1),
            StageId::Propose(0),
            StageId::Score(2),
            StageId::Select(0),
            StageId::Evaluate,
            StageId::Finish,
        ];
        for (i, s) in stages.into_iter().enumerate() {
            pace.observe(s, 10 * i as u64 + 1, &usage(2, 0));
            pace.observe(s, 10 * i as u64 + 2, &usage(2, 0));
        }
        let saved = pace.saved();
        assert_eq!(saved[4].stage, "propose:0");
        assert_eq!(saved[4].times_ms, vec![41, 42]);
        assert_eq!(Pace::restored(&saved), pace);
        let unknown = StageTimes {
            stage: "reflect:0".into(),
            times_ms: vec![5],
        };
        assert_eq!(Pace::restored(&[unknown]), Pace::default(), "left alone");
    }

    #[test]
    fn held_time_is_counted_once_per_hold() {
        let pauses = Pauses::default();
        assert_eq!(pauses.total(), Duration::ZERO);
        pauses.hold(true);
        std::thread::sleep(Duration::from_millis(20));
        pauses.hold(true);
        assert!(
            pauses.total() >= Duration::from_millis(20),
            "a hold in progress"
        );
        pauses.hold(false);
        let held = pauses.total();
        pauses.hold(false);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(pauses.total(), held, "released");
    }
}
