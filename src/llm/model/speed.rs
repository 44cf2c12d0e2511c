//! How fast a model runs DLN's calls on the embedded engine, for the pre-run estimates of
//! `dln bench accuracy`: the built-in models' measured rates, and for any other file a rate
//! interpolated by its size between them (a model's time per token grows with its weights).

use std::path::Path;

use super::catalog::BUILTIN_MODELS;
use super::{builtin, given_or_env, DEFAULT_MODEL};

/// The model a spec names and its tokens per second per thread.
#[derive(Debug, Clone, PartialEq)]
pub struct Speed {
    /// The built-in name, or the file's name.
    pub model: String,
    pub tokens_per_second_per_thread: f64,
    /// Interpolated by file size rather than measured on this model.
    pub interpolated: bool,
}

/// The speed of the model `spec` names (a built-in name or a GGUF path), else `DLN_MODEL`'s,
/// else the default model's. A file of a built-in model's size is timed as that model; a path that
/// does not exist as the default model.
pub fn speed(spec: Option<&str>) -> Speed {
    let spec = given_or_env(spec);
    let spec = spec.as_deref().unwrap_or(DEFAULT_MODEL);
    if let Some(m) = builtin(spec) {
        let measured = m.tokens_per_second_per_thread;
        return Speed {
            model: m.name.to_string(),
            tokens_per_second_per_thread: measured.unwrap_or_else(|| by_size(m.size)),
            interpolated: measured.is_none(),
        };
    }
    match std::fs::metadata(spec) {
        Ok(meta) if meta.is_file() => {
            // A built-in model's file under another name (its cache path, a copy).
            if let Some(m) = BUILTIN_MODELS.iter().find(|m| m.size == meta.len()) {
                return speed(Some(m.name));
            }
            Speed {
                model: Path::new(spec)
                    .file_name()
                    .map_or_else(|| spec.to_string(), |n| n.to_string_lossy().into_owned()),
                tokens_per_second_per_thread: by_size(meta.len()),
                interpolated: true,
            }
        }
        _ => speed(Some(DEFAULT_MODEL)),
    }
}

/// The rate of a model file of `size` bytes: a power law between the two measured built-in
/// models nearest in size (beyond the smallest or the largest, the law of the nearest pair).
pub fn by_size(size: u64) -> f64 {
    let mut measured: Vec<(f64, f64)> = BUILTIN_MODELS
        .iter()
        .filter_map(|m| Some(((m.size as f64).ln(), m.tokens_per_second_per_thread?.ln())))
        .collect();
    measured.sort_by(|a, b| a.0.total_cmp(&b.0));
    let x = (size.max(1) as f64).ln();
    let pair = measured
        .windows(2)
        .find(|w| x <= w[1].0)
        .or_else(|| measured.windows(2).last());
    match pair {
        Some([(x0, y0), (x1, y1)]) => (y0 + (x - x0) * (y1 - y0) / (x1 - x0)).exp(),
        _ => measured.first().map_or(1.0, |&(_, y)| y.exp()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(name: &str) -> f64 {
        builtin(name)
            .and_then(|m| m.tokens_per_second_per_thread)
            .expect("a measured built-in model")
    }

    #[test]
    fn measured_models_keep_their_rates_and_others_fall_between_by_size() {
        let small = builtin("smollm2-135m").expect("built in");
        let half = builtin("qwen2.5-coder-0.5b").expect("built in");
        assert!((by_size(small.size) - rate("smollm2-135m")).abs() < 1e-9);
        assert!((by_size(half.size) - rate("qwen2.5-coder-0.5b")).abs() < 1e-9);
        let gemma = speed(Some("gemma3-270m"));
        assert!(gemma.interpolated, "nothing measured on Gemma");
        assert!(
            gemma.tokens_per_second_per_thread < rate("smollm2-135m")
                && gemma.tokens_per_second_per_thread > rate("qwen2.5-coder-0.5b"),
            "{gemma:?}"
        );
        assert!(
            by_size(4_000_000_000) < rate("qwen2.5-coder-1.5b") / 2.0,
            "a 4 GB file runs slower than the 1.5B: {}",
            by_size(4_000_000_000)
        );
        assert!(by_size(10_000_000) > rate("smollm2-135m"));
    }

    #[test]
    fn a_file_is_timed_by_its_size_and_a_missing_one_as_the_default_model() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("other.gguf");
        let f = std::fs::File::create(&file).expect("create");
        let large = builtin("qwen2.5-coder-1.5b").expect("built in").size;
        f.set_len(large + 1).expect("sparse file");
        let s = speed(Some(file.to_str().expect("utf-8")));
        assert_eq!(s.model, "other.gguf");
        assert!(s.interpolated);
        assert!((s.tokens_per_second_per_thread - rate("qwen2.5-coder-1.5b")).abs() < 1e-3);
        f.set_len(large).expect("sparse file");
        let s = speed(Some(file.to_str().expect("utf-8")));
        assert_eq!(
            s.model, "qwen2.5-coder-1.5b",
            "the built-in model's own file"
        );
        assert!(!s.interpolated);
        let missing = speed(Some(
            dir.path().join("absent.gguf").to_str().expect("utf-8"),
        ));
        assert_eq!(missing.model, DEFAULT_MODEL);
    }
}
