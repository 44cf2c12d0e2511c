//! Deterministic, seeded train / dev / test splits and size caps.

use std::collections::HashMap;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{DataConfig, DataError, Example};

pub(crate) struct Splits {
    pub train: Vec<Example>,
    pub dev: Vec<Example>,
    pub test: Vec<Example>,
}

/// Cuts the missing splits from `pool` (a seeded shuffle, dev first, then test, train from the
/// rest), shuffles given split files with the same seed, and applies the caps. The same data and
/// seed always give the same splits. An empty train split is an error; so is an empty dev or test
/// split unless it was asked for (a count of 0 or a cap of 0).
pub(crate) fn assign(
    mut pool: Vec<Example>,
    dev: Option<Vec<Example>>,
    test: Option<Vec<Example>>,
    cfg: &DataConfig,
    pool_path: &Path,
) -> Result<Splits, DataError> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    pool.shuffle(&mut rng);
    let spread = |v: Vec<Example>| if cfg.stratify { in_proportion(v) } else { v };
    let pool = spread(pool);
    let total = pool.len();
    let mut rest = pool.into_iter();

    let mut cut = |size: usize| -> Vec<Example> { rest.by_ref().take(size).collect() };
    let dev = match dev {
        Some(mut given) => {
            given.shuffle(&mut rng);
            spread(given)
        }
        None => cut(cfg.split.dev.of(total)),
    };
    let test = match test {
        Some(mut given) => {
            given.shuffle(&mut rng);
            spread(given)
        }
        None => cut(cfg.split.test.of(total)),
    };
    let remaining: Vec<Example> = rest.collect();
    let train_size = cfg.split.train.map_or(remaining.len(), |s| s.of(total));
    let mut train = remaining;
    train.truncate(train_size);

    let mut splits = Splits { train, dev, test };
    cap(&mut splits.train, cfg.max_train);
    cap(&mut splits.dev, cfg.max_dev);
    cap(&mut splits.test, cfg.max_test);

    let detail = |what: &str| format!("{} holds {total} examples; {what}", pool_path.display());
    if splits.train.is_empty() {
        return Err(DataError::EmptySplit {
            split: "train",
            detail: detail("lower `data.split.dev` / `data.split.test` or add examples"),
        });
    }
    let asked_none = |size: super::SplitSize, max: Option<usize>| {
        size == super::SplitSize::Count(0) || max == Some(0)
    };
    if splits.dev.is_empty() && !asked_none(cfg.split.dev, cfg.max_dev) {
        return Err(DataError::EmptySplit {
            split: "dev",
            detail: detail("raise `data.split.dev` or give a `data.dev` file"),
        });
    }
    if splits.test.is_empty() && !asked_none(cfg.split.test, cfg.max_test) {
        return Err(DataError::EmptySplit {
            split: "test",
            detail: detail("raise `data.split.test` or give a `data.test` file"),
        });
    }
    Ok(splits)
}

/// `v` reordered so that every first n examples hold each target in about its share of `v`:
/// the k-th of a target's c examples (in `v`'s order) goes at (k + ½) / c of the way, ties kept
/// in `v`'s order (a stable sort). A cut or a cap that takes a prefix then keeps the classes in
/// proportion.
fn in_proportion(v: Vec<Example>) -> Vec<Example> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for e in &v {
        *count.entry(e.target.as_str()).or_default() += 1;
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let keys: Vec<f64> = v
        .iter()
        .map(|e| {
            let k = seen.entry(e.target.as_str()).or_default();
            *k += 1;
            (*k as f64 - 0.5) / count[e.target.as_str()] as f64
        })
        .collect();
    let mut keyed: Vec<(f64, Example)> = keys.into_iter().zip(v).collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
    keyed.into_iter().map(|(_, e)| e).collect()
}

fn cap(v: &mut Vec<Example>, max: Option<usize>) {
    if let Some(max) = max {
        v.truncate(max);
    }
}
