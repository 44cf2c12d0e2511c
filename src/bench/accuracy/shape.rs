//! `--shape`: a named set of settings applied to every cell of `dln bench accuracy`, so that the
//! shape a table was run in is one flag (and stays in its command line). `paper` applies nothing
//! (the shipped task configs); `laptop` is `examples/bench/laptop.toml`, `reasoning`
//! `examples/bench/reasoning.toml`; any other value is a TOML file of the same form. A shape's
//! keys are `--set` keys (`[train] iterations = 6` is `train.iterations=6`); those under
//! `[hidden]` reach the hidden layers a method adds.

use std::path::Path;

use super::plan::PlanError;

/// The built-in shapes: name, file text.
const BUILT_IN: &[(&str, &str)] = &[
    ("paper", ""),
    (
        "laptop",
        include_str!("../../../examples/bench/laptop.toml"),
    ),
    (
        "reasoning",
        include_str!("../../../examples/bench/reasoning.toml"),
    ),
];

pub fn shape_names() -> Vec<&'static str> {
    BUILT_IN.iter().map(|(n, _)| *n).collect()
}

/// The `KEY=VALUE` settings of a shape given by name or file.
pub fn shape_sets(spec: &str) -> Result<Vec<String>, PlanError> {
    let (origin, text) = match BUILT_IN.iter().find(|(n, _)| *n == spec) {
        Some((_, text)) => (format!("the built-in shape `{spec}`"), text.to_string()),
        None => {
            let path = Path::new(spec);
            let text = std::fs::read_to_string(path).map_err(|e| PlanError::Shape {
                origin: spec.to_string(),
                reason: format!(
                    "cannot read it ({e}); give a TOML file or one of: {}",
                    shape_names().join(", ")
                ),
            })?;
            (path.display().to_string(), text)
        }
    };
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| PlanError::Shape {
            origin: origin.clone(),
            reason: e.to_string(),
        })?;
    let mut out = Vec::new();
    flatten("", &toml::Value::Table(table), &mut out);
    Ok(out)
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        leaf => out.push(format!("{prefix}={leaf}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paper_shape_sets_nothing_and_laptop_cuts_the_costly_settings() {
        assert!(shape_sets("paper").unwrap().is_empty());
        let laptop = shape_sets("laptop").unwrap();
        for key in [
            "train.iterations=",
            "train.num_hidden_samples=",
            "hidden.forward_max_tokens=",
        ] {
            assert!(
                laptop.iter().any(|s| s.starts_with(key)),
                "{key} in {laptop:?}"
            );
        }
    }

    #[test]
    fn the_reasoning_shape_lets_the_hidden_layer_write_more_than_laptop() {
        let limit = |shape: &str| -> u32 {
            let sets = shape_sets(shape).unwrap();
            let s = sets
                .iter()
                .find_map(|s| s.strip_prefix("hidden.forward_max_tokens="))
                .expect("a hidden limit");
            s.parse().unwrap()
        };
        assert!(limit("reasoning") > 2 * limit("laptop"));
    }

    #[test]
    fn a_shape_file_is_flattened_to_set_keys_with_toml_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            "[train]\niterations = 2\n[layers.0]\nprompt = \"a = b\"\n",
        )
        .unwrap();
        let sets = shape_sets(path.to_str().unwrap()).unwrap();
        assert_eq!(
            sets,
            vec!["layers.0.prompt=\"a = b\"", "train.iterations=2"]
        );
    }

    #[test]
    fn an_unknown_shape_or_a_broken_file_names_itself_and_the_built_ins() {
        let err = shape_sets("nope").unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("laptop"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[train\n").unwrap();
        let err = shape_sets(path.to_str().unwrap()).unwrap_err().to_string();
        assert!(err.contains("bad.toml"), "{err}");
    }
}
