//! What `dln bench accuracy` runs: tasks × methods × seeds, each cell a run configuration
//! derived from the task's own config, so every method of a task sees the same splits and (for
//! one seed) the same batches.

use std::path::{Path, PathBuf};

use crate::config::{Config, LayerConfig, LayerTemplates, Mode, Optimizer, Selection};

pub use super::method::Method;

/// The paper's tasks whose configs ship in `examples/paper` (their data is read from `--data`).
const PAPER: &[(&str, &str)] = &[
    (
        "hyperbaton",
        include_str!("../../../examples/paper/hyperbaton.toml"),
    ),
    (
        "navigate",
        include_str!("../../../examples/paper/navigate.toml"),
    ),
    (
        "date_understanding",
        include_str!("../../../examples/paper/date_understanding.toml"),
    ),
    (
        "logical_deduction_seven_objects",
        include_str!("../../../examples/paper/logical_deduction_seven_objects.toml"),
    ),
    ("subj", include_str!("../../../examples/paper/subj.toml")),
    ("mpqa", include_str!("../../../examples/paper/mpqa.toml")),
    ("trec", include_str!("../../../examples/paper/trec.toml")),
];

/// The paper configs name their data as `../../../shared/data/<rest>`; `--data` replaces that
/// prefix.
const PAPER_DATA_PREFIX: &str = "../../../shared/data/";

/// The hidden layer a method adds when the task's config has only an output layer.
pub const DEFAULT_HIDDEN_PROMPT: &str = "Decompose the problem to make it simpler.";
/// Its forward template: the model's own chat format, in which SmolLM2 writes a hidden text for
/// every input where the raw `forward_hidden` got an empty one for most (docs/RESULTS.md).
pub const DEFAULT_HIDDEN_TEMPLATE: &str = "forward_hidden_chat";
/// The hidden prompt of the "π1 fixed" ablation (the layer is not trained).
pub const FIXED_HIDDEN_PROMPT: &str = "Let's think step by step.";

/// A task of the table: a name and the config its cells derive from.
#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    pub config: Config,
}

/// A bench error a user can cause (unknown task, missing data, bad override).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("unknown task `{0}`: give a config file (.toml) or one of: {known}", known = paper_task_names().join(", "))]
    UnknownTask(String),
    #[error("task `{task}` reads {path}, which does not exist; point --data at the directory holding the paper's data (bbh/, nlu/)")]
    MissingData { task: String, path: PathBuf },
    #[error("--shape {origin}: {reason}")]
    Shape { origin: String, reason: String },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

pub fn paper_task_names() -> Vec<&'static str> {
    PAPER.iter().map(|(n, _)| *n).collect()
}

/// A task by paper name (its data under `data_dir`) or by config path.
pub fn resolve_task(spec: &str, data_dir: &Path) -> Result<Task, PlanError> {
    let as_path = Path::new(spec);
    let config = if let Some((_, text)) = PAPER.iter().find(|(n, _)| *n == spec) {
        let origin = PathBuf::from(format!("examples/paper/{spec}.toml"));
        let mut c = Config::parse(text, &origin)?;
        c.base_dir = Some(std::fs::canonicalize(data_dir).unwrap_or(data_dir.to_path_buf()));
        for key in ["path", "train", "dev", "test"] {
            if let Some(p) = data_string(&c, key) {
                if let Some(rest) = p.strip_prefix(PAPER_DATA_PREFIX) {
                    c.set(&format!("data.{key}"), &toml_string(rest))?;
                }
            }
        }
        c
    } else if as_path.extension().is_some_and(|e| e == "toml") || as_path.is_file() {
        Config::load(as_path)?
    } else {
        return Err(PlanError::UnknownTask(spec.to_string()));
    };
    for key in ["path", "train", "dev", "test"] {
        if let Some(p) = data_string(&config, key) {
            let path = config.resolve_path(&p);
            if !path.exists() {
                return Err(PlanError::MissingData {
                    task: spec.to_string(),
                    path,
                });
            }
        }
    }
    let name = if PAPER.iter().any(|(n, _)| *n == spec) {
        spec.to_string()
    } else {
        config.task.name.clone()
    };
    Ok(Task { name, config })
}

/// `data.KEY` when it is a string (read through the config's TOML form, whatever type holds it).
fn data_string(c: &Config, key: &str) -> Option<String> {
    let v = toml::Value::try_from(c).ok()?;
    v.get("data")?.get(key)?.as_str().map(str::to_string)
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// GEPA's reflection minibatch (its authors' default).
pub const GEPA_MINIBATCH: usize = 3;
/// The iterations a GEPA cell may run at most; its token budget ends it long before.
pub const GEPA_MAX_ITERATIONS: usize = 1000;

/// One cell of the table: a task, a method and a seed, run in its own directory.
#[derive(Debug, Clone)]
pub struct Cell {
    pub task: String,
    pub method: Method,
    pub seed: u64,
    pub dir: PathBuf,
    pub config: Config,
    /// GEPA: the DLN-1 cell of the same task and seed, whose tokens (dev evaluations included,
    /// the test left out) are this cell's `train.until_tokens` when it starts.
    pub budget: Option<Box<Config>>,
}

/// Settings shared by every cell.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub methods: Vec<Method>,
    pub seeds: Vec<u64>,
    /// Demonstrations of the k-shot method.
    pub k: usize,
    /// `KEY=VALUE` overrides applied to every cell before the method's own changes; keys under
    /// `hidden.` are applied after them, to every layer before the output layer.
    pub overrides: Vec<String>,
    pub out: PathBuf,
}

/// The prefix of an override that reaches the hidden layers (`hidden.forward_max_tokens=160`).
pub const HIDDEN_PREFIX: &str = "hidden.";

/// The cells of `tasks` under `opts`, task by task, then method, then seed.
pub fn plan(tasks: &[Task], opts: &PlanOptions) -> Result<Vec<Cell>, PlanError> {
    let (hidden, rest): (Vec<&String>, Vec<&String>) = opts
        .overrides
        .iter()
        .partition(|o| o.trim_start().starts_with(HIDDEN_PREFIX));
    let config_of = |task: &Task, method, seed| -> Result<Config, PlanError> {
        let mut config = task.config.clone();
        for o in &rest {
            config.apply_override(o)?;
        }
        apply_method(&mut config, method, seed, opts.k);
        for o in &hidden {
            let o = &o.trim_start()[HIDDEN_PREFIX.len()..];
            for i in 0..config.layers.len().saturating_sub(1) {
                config.apply_override(&format!("layers.{i}.{o}"))?;
            }
        }
        config.validate()?;
        Ok(config)
    };
    let mut cells = Vec::new();
    for task in tasks {
        for method in cell_order(&opts.methods) {
            for &seed in &opts.seeds {
                let budget = match method {
                    Method::Gepa => Some(Box::new(config_of(task, Method::Dln1, seed)?)),
                    _ => None,
                };
                cells.push(Cell {
                    task: task.name.clone(),
                    method,
                    seed,
                    dir: cell_dir(&opts.out, &task.name, method, seed),
                    config: config_of(task, method, seed)?,
                    budget,
                });
            }
        }
    }
    Ok(cells)
}

/// The order cells of one task run in: as given, except that GEPA, whose token budget is
/// DLN-1's on the same task and seed, runs after DLN-1.
fn cell_order(methods: &[Method]) -> Vec<Method> {
    let mut order = methods.to_vec();
    let at = |m| order.iter().position(|&x| x == m);
    if let (Some(g), Some(d)) = (at(Method::Gepa), at(Method::Dln1)) {
        if g < d {
            let gepa = order.remove(g);
            order.insert(d, gepa);
        }
    }
    order
}

/// The seeds of `--seeds`: `N` is 1..=N; `A-B` the range A..=B; `A,B,…` exactly those (a
/// benchmark split over processes or machines runs disjoint seeds into one output directory).
pub fn parse_seeds(s: &str) -> Result<Vec<u64>, String> {
    let bad = || {
        format!("`--seeds {s}`: expected N (seeds 1 to N), A-B (A to B) or A,B,… (seeds from 1)")
    };
    let num = |t: &str| t.trim().parse::<u64>().ok().filter(|&n| n >= 1);
    let seeds: Vec<u64> = if let Some((a, b)) = s.split_once('-') {
        let (a, b) = (num(a).ok_or_else(bad)?, num(b).ok_or_else(bad)?);
        if a > b {
            return Err(bad());
        }
        (a..=b).collect()
    } else if s.contains(',') {
        let mut v = s
            .split(',')
            .map(|t| num(t).ok_or_else(bad))
            .collect::<Result<Vec<_>, _>>()?;
        v.sort_unstable();
        v.dedup();
        v
    } else {
        (1..=num(s).ok_or_else(bad)?).collect()
    };
    Ok(seeds)
}

/// Where a benchmark's cells are, inside its output directory.
pub const RUNS_DIR: &str = "runs";

pub fn cell_dir(out: &Path, task: &str, method: Method, seed: u64) -> PathBuf {
    out.join(RUNS_DIR)
        .join(task)
        .join(method.name())
        .join(format!("seed-{seed}"))
}

/// Turns a task's config into `method`'s: the output layer is the task's last layer; a hidden
/// layer is the task's first layer when it has two or more, else one starting from
/// [`DEFAULT_HIDDEN_PROMPT`] in the [`DEFAULT_HIDDEN_TEMPLATE`] on the output layer's models
/// (its `model` and `backward_model`, so `--set layers.0.backward_model=…` on a one-layer task
/// reaches the hidden layer DLN-2 adds as well).
pub fn apply_method(config: &mut Config, method: Method, seed: u64, k: usize) {
    let output = config.layers.last().cloned().unwrap_or_default();
    let hidden = if config.layers.len() >= 2 {
        config.layers[0].clone()
    } else {
        LayerConfig {
            prompt: DEFAULT_HIDDEN_PROMPT.to_string(),
            templates: LayerTemplates {
                forward: DEFAULT_HIDDEN_TEMPLATE.to_string(),
                ..LayerTemplates::default()
            },
            model: output.model.clone(),
            backward_model: output.backward_model.clone(),
            ..LayerConfig::default()
        }
    };
    config.train.seed = seed;
    config.train.mode = Mode::Dln;
    config.train.train_layers = None;
    config.layers = match method {
        Method::ZeroShot
        | Method::KShot
        | Method::Dln1
        | Method::Dln1Demos
        | Method::Dln1Random
        | Method::Gepa => vec![output],
        Method::Dln2 | Method::Dln2Uniform | Method::Dln2NoPrior | Method::Dln2FixedHidden => {
            vec![hidden, output]
        }
        Method::Dln3 => vec![hidden.clone(), hidden, output],
    };
    // A method names what is learned: only DLN-1 + demos learns demonstrations, whatever the
    // task's config ships (the paper configs learn them where dev says so).
    for layer in config.layers.iter_mut() {
        layer.demos = 0;
        layer.demonstrations.clear();
    }
    match method {
        Method::ZeroShot => config.train.mode = Mode::ZeroShot,
        Method::KShot => {
            config.train.mode = Mode::KShot;
            config.train.k_shot = k.max(1);
        }
        Method::Dln2Uniform => {
            // w ∝ exp(w̃ / T): a huge temperature makes every sample weigh the same.
            config.train.posterior_temperature = 1e9;
        }
        Method::Dln2NoPrior => config.train.include_prior = false,
        Method::Dln2FixedHidden => {
            config.layers[0].prompt = FIXED_HIDDEN_PROMPT.to_string();
            config.layers[0].trainable = false;
        }
        Method::Dln1Demos => config.layers[0].demos = k.max(1),
        Method::Dln1Random => config.train.selection = Selection::Random,
        Method::Gepa => {
            config.train.optimizer = Optimizer::Gepa;
            config.train.batch_size = GEPA_MINIBATCH;
            // The token budget ends training (`until_tokens`, set from DLN-1's cell when the cell
            // starts); the iterations are only a cap.
            config.train.iterations = GEPA_MAX_ITERATIONS;
        }
        Method::Dln1 | Method::Dln2 | Method::Dln3 => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_layer() -> Config {
        Config::parse(
            "[task]\nname = \"t\"\ndescription = \"d\"\n[data]\npath = \"x.jsonl\"\n[[layers]]\nprompt = \"p\"\n",
            Path::new("t.toml"),
        )
        .expect("config")
    }

    #[test]
    fn methods_shape_the_network_and_the_baselines() {
        let base = one_layer();
        let shaped = |m: Method| {
            let mut c = base.clone();
            apply_method(&mut c, m, 7, 3);
            c.validate().expect("valid");
            c
        };
        let z = shaped(Method::ZeroShot);
        assert_eq!(
            (z.layers.len(), z.train.mode, z.train.seed),
            (1, Mode::ZeroShot, 7)
        );
        let k = shaped(Method::KShot);
        assert_eq!((k.train.mode, k.train.k_shot), (Mode::KShot, 3));
        let d2 = shaped(Method::Dln2);
        assert_eq!(d2.layers.len(), 2);
        assert_eq!(d2.layers[0].prompt, DEFAULT_HIDDEN_PROMPT);
        assert_eq!(d2.layers[0].templates.forward, DEFAULT_HIDDEN_TEMPLATE);
        assert_eq!(d2.layers[1].prompt, "p");
        assert!(d2.layers[1].templates.forward.is_empty());
        assert_eq!(shaped(Method::Dln3).layers.len(), 3);
        let fixed = shaped(Method::Dln2FixedHidden);
        assert!(!fixed.layers[0].trainable && fixed.layers[1].trainable);
        assert_eq!(fixed.layers[0].prompt, FIXED_HIDDEN_PROMPT);
        assert!(!shaped(Method::Dln2NoPrior).train.include_prior);
        assert!(shaped(Method::Dln2Uniform).train.posterior_temperature > 1e6);
        // DLN-1 + demos: one trained layer learning k demonstrations; plain DLN-1 learns none.
        let demos = shaped(Method::Dln1Demos);
        assert_eq!((demos.layers.len(), demos.train.mode), (1, Mode::Dln));
        assert_eq!(demos.layers[0].demos, 3);
        assert_eq!(shaped(Method::Dln1).layers[0].demos, 0);
        // A task config that learns demonstrations does not make the other methods learn them.
        let mut with_demos = base.clone();
        with_demos.layers[0].demos = 3;
        for m in Method::ALL {
            let mut c = with_demos.clone();
            apply_method(&mut c, m, 1, 3);
            let want = if m == Method::Dln1Demos { 3 } else { 0 };
            assert!(c.layers.iter().all(|l| l.demos == want), "{m:?}");
        }
        assert!(Method::Dln1Demos.trains());
        assert_eq!("dln1-demos".parse::<Method>(), Ok(Method::Dln1Demos));
        // A two-layer task keeps its own hidden layer; its 1-layer methods keep the output one.
        let mut two = base.clone();
        two.layers.insert(
            0,
            LayerConfig {
                prompt: "h".into(),
                ..LayerConfig::default()
            },
        );
        let mut d1 = two.clone();
        apply_method(&mut d1, Method::Dln1, 1, 3);
        assert_eq!(d1.layers.len(), 1);
        assert_eq!(d1.layers[0].prompt, "p");
        let mut d2 = two;
        apply_method(&mut d2, Method::Dln2, 1, 3);
        assert_eq!(d2.layers[0].prompt, "h");
    }

    #[test]
    fn seeds_are_a_count_a_range_or_a_list() {
        assert_eq!(parse_seeds("3"), Ok(vec![1, 2, 3]));
        assert_eq!(parse_seeds("2-3"), Ok(vec![2, 3]));
        assert_eq!(parse_seeds("3,1,3"), Ok(vec![1, 3]));
        for bad in ["0", "", "3-2", "a", "1,0", "-2"] {
            let e = parse_seeds(bad).expect_err(bad);
            assert!(e.contains("--seeds"), "{e}");
        }
    }

    #[test]
    fn the_hidden_layer_dln2_adds_runs_on_the_task_layers_models() {
        let mut c = one_layer();
        c.layers[0].backward_model = "big".into();
        c.layers[0].model = "small".into();
        apply_method(&mut c, Method::Dln2, 1, 3);
        assert_eq!(c.layers.len(), 2);
        assert_eq!(c.layers[0].prompt, DEFAULT_HIDDEN_PROMPT);
        assert_eq!(c.layers[0].backward_model, "big");
        assert_eq!(c.layers[0].model, "small");
    }

    #[test]
    fn hidden_overrides_reach_the_layers_before_the_output_and_only_them() {
        let task = Task {
            name: "t".into(),
            config: one_layer(),
        };
        let opts = PlanOptions {
            methods: vec![Method::Dln1, Method::Dln2, Method::Dln3],
            seeds: vec![1],
            k: 3,
            overrides: vec![
                "hidden.forward_max_tokens=160".into(),
                "layers.0.forward_max_tokens=4".into(),
            ],
            out: PathBuf::from("/o"),
        };
        let cells = plan(&[task], &opts).expect("plan");
        let max = |c: &Cell| -> Vec<Option<u32>> {
            c.config
                .layers
                .iter()
                .map(|l| l.forward_max_tokens)
                .collect()
        };
        assert_eq!(max(&cells[0]), vec![Some(4)]);
        assert_eq!(max(&cells[1]), vec![Some(160), Some(4)]);
        assert_eq!(max(&cells[2]), vec![Some(160), Some(160), Some(4)]);
    }

    #[test]
    fn cells_share_the_task_config_and_differ_by_method_and_seed() {
        let task = Task {
            name: "t".into(),
            config: one_layer(),
        };
        let opts = PlanOptions {
            methods: vec![Method::ZeroShot, Method::Dln1],
            seeds: vec![1, 2],
            k: 3,
            overrides: vec!["train.iterations=2".into()],
            out: PathBuf::from("/o"),
        };
        let cells = plan(&[task], &opts).expect("plan");
        assert_eq!(cells.len(), 4);
        assert_eq!(cells[1].dir, PathBuf::from("/o/runs/t/0-shot/seed-2"));
        assert!(cells.iter().all(|c| c.config.train.iterations == 2));
        assert_eq!(cells[1].config.train.seed, 2);
        let bad = PlanOptions {
            overrides: vec!["train.nope=1".into()],
            ..opts
        };
        assert!(plan(
            &[Task {
                name: "t".into(),
                config: one_layer()
            }],
            &bad
        )
        .is_err());
    }

    #[test]
    fn paper_tasks_read_their_data_under_the_given_directory() {
        let dir = tempfile::tempdir().expect("tmp");
        let err = resolve_task("navigate", dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("bbh/navigate.json") && err.to_string().contains("--data"),
            "{err}"
        );
        std::fs::create_dir_all(dir.path().join("bbh")).expect("mkdir");
        std::fs::write(dir.path().join("bbh/navigate.json"), "{}").expect("write");
        let t = resolve_task("navigate", dir.path()).expect("task");
        assert_eq!(t.name, "navigate");
        assert_eq!(t.config.layers.len(), 2);
        let err = resolve_task("nonesuch", dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("hyperbaton") && err.contains("trec"), "{err}");
    }
}
