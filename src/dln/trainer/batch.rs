//! What the trainer draws from the task's data: the k-shot demonstrations and each iteration's
//! minibatch, each from a random stream of its own, and the checks the data must pass first.

use crate::config::{Mode, TrainConfig};
use crate::data::{Dataset, Example};
use crate::dln::demos::Demo;
use crate::dln::error::DlnError;
use crate::dln::math;
use crate::dln::network::Network;
use crate::dln::ops::{self, Draw};

/// Checks that `data` suits the `[train]` settings and draws the k-shot demonstrations (none
/// unless `mode = "k_shot"`): what a trainer and an evaluation outside a run start from.
pub fn prepare_shots(train: &TrainConfig, data: &Dataset) -> Result<Vec<Example>, DlnError> {
    check_data(train, data)?;
    if train.mode != Mode::KShot {
        return Ok(Vec::new());
    }
    let idx = k_shot_draw(train, data, train.k_shot);
    Ok(idx.into_iter().map(|i| data.train[i].clone()).collect())
}

/// The training-split positions of iteration `iteration`'s minibatch, from the batch stream of
/// this iteration alone: the same seed gives the same batches whatever else the run does.
pub(super) fn batch_indices(train: &TrainConfig, data: &Dataset, iteration: usize) -> Vec<usize> {
    let mut rng = ops::stream(train.seed, iteration, Draw::Batch, 0, 0);
    draw_examples(data, train.batch_size, train.class_balanced, &mut rng)
}

/// The first demonstrations of the layers that learn some and were given none: `k` training
/// examples for the output layer, drawn as the k-shot baseline draws its `k` (class-balanced
/// when the batches are, from the same stream), so a layer learning `k` demonstrations starts
/// from exactly the k-shot prompt of its seed and its first dev evaluation is that baseline's.
/// A hidden layer's demonstrations show its best posterior text `h*`, which exists only once
/// an update has sampled one, so they grow from the batches' posteriors by add moves.
pub(super) fn initial_demos(train: &TrainConfig, data: &Dataset, net: &mut Network) {
    let output = net.output();
    let Some(layer) = net.layers.get_mut(output) else {
        return;
    };
    if layer.max_demos == 0 || !layer.demos.is_empty() || train.mode != Mode::Dln {
        return;
    }
    let idx = k_shot_draw(train, data, layer.max_demos);
    layer.demos = idx.into_iter().map(|i| demo_of(data, i)).collect();
}

/// The `k` training examples the k-shot baseline of `train.seed` shows, in order.
fn k_shot_draw(train: &TrainConfig, data: &Dataset, k: usize) -> Vec<usize> {
    let mut rng = ops::stream(train.seed, 0, Draw::KShot, 0, 0);
    draw_examples(data, k, train.class_balanced, &mut rng)
}

/// Training example `i` as a demonstration of the output layer (its target as the output).
pub(super) fn demo_of(data: &Dataset, i: usize) -> Demo {
    Demo {
        index: i,
        input: data.train[i].input.clone(),
        output: data.train[i].target.clone(),
    }
}

/// Dev evaluation after `completed` iterations: every `val_freq`, and after the last.
pub(super) fn eval_due(train: &TrainConfig, completed: usize) -> bool {
    completed.is_multiple_of(train.val_freq) || completed == train.iterations
}

/// `n` training example indices, class-balanced when asked and the task has classes.
fn draw_examples<R: rand::Rng>(
    data: &Dataset,
    n: usize,
    balanced: bool,
    rng: &mut R,
) -> Vec<usize> {
    match (&data.classes, balanced) {
        (Some(c), true) => {
            let labels: Vec<Option<usize>> =
                data.train.iter().map(|e| c.index_of(&e.target)).collect();
            math::balanced_batch(&labels, n, rng)
        }
        _ => math::random_batch(data.train.len(), n, rng),
    }
}

pub(super) fn check_data(train: &TrainConfig, data: &Dataset) -> Result<(), DlnError> {
    if train.mode == Mode::Dln && train.iterations > 0 && data.train.is_empty() {
        return Err(DlnError::Data(format!(
            "the task `{}` has no training examples",
            data.name
        )));
    }
    if train.mode == Mode::KShot && data.train.len() < train.k_shot {
        return Err(DlnError::Data(format!(
            "k-shot needs {} training examples but the task has {}",
            train.k_shot,
            data.train.len()
        )));
    }
    if let Some(c) = &data.classes {
        for e in data.all() {
            ops::class_of(c, &e.target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dln::trainer::testing::{dataset, network};

    #[test]
    fn batches_are_a_function_of_the_seed_and_the_iteration() {
        let data = dataset(10);
        let train = TrainConfig {
            batch_size: 4,
            ..TrainConfig::default()
        };
        assert_eq!(
            batch_indices(&train, &data, 3),
            batch_indices(&train, &data, 3)
        );
        assert_eq!(batch_indices(&train, &data, 3).len(), 4);
        assert_ne!(
            batch_indices(&train, &data, 3),
            batch_indices(&train, &data, 4)
        );
    }

    #[test]
    fn dev_evaluations_fall_every_val_freq_and_after_the_last_iteration() {
        let train = TrainConfig {
            val_freq: 2,
            iterations: 5,
            ..TrainConfig::default()
        };
        let due: Vec<usize> = (1..=5).filter(|c| eval_due(&train, *c)).collect();
        assert_eq!(due, vec![2, 4, 5]);
    }

    #[test]
    fn k_shot_draws_its_demonstrations_and_other_modes_none() {
        let data = dataset(6);
        let k_shot = TrainConfig {
            mode: Mode::KShot,
            k_shot: 2,
            ..TrainConfig::default()
        };
        assert_eq!(prepare_shots(&k_shot, &data).unwrap().len(), 2);
        assert!(prepare_shots(&TrainConfig::default(), &data)
            .unwrap()
            .is_empty());
        let too_many = TrainConfig {
            k_shot: 7,
            ..k_shot
        };
        assert!(prepare_shots(&too_many, &data).is_err());
    }

    #[test]
    fn a_layer_learning_k_demonstrations_starts_from_the_k_shot_prompt_of_its_seed() {
        let data = dataset(12);
        for seed in [1, 2, 3] {
            let train = TrainConfig {
                seed,
                k_shot: 3,
                ..TrainConfig::default()
            };
            let mut net = network(1);
            net.layers[0].max_demos = 3;
            initial_demos(&train, &data, &mut net);
            let shots = prepare_shots(
                &TrainConfig {
                    mode: Mode::KShot,
                    ..train.clone()
                },
                &data,
            )
            .unwrap();
            let shown: Vec<Example> = net.layers[0].demos.iter().map(|d| d.example()).collect();
            assert_eq!(shown, shots, "seed {seed}");
            // A layer given its demonstrations keeps them.
            let given = net.layers[0].demos.clone();
            initial_demos(
                &TrainConfig {
                    seed: seed + 10,
                    ..train
                },
                &data,
                &mut net,
            );
            assert_eq!(net.layers[0].demos, given);
        }
    }
}
