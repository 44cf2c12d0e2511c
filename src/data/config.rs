//! The `[data]` table of a run configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::DataError;

/// The layout of a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// BIG-Bench Hard: `{"examples": [{"input": .., "target": ..}, ..]}`.
    Bbh,
    /// JSON Lines: one object per line.
    Jsonl,
    /// A JSON array of objects.
    Json,
}

impl DataFormat {
    /// The format a file's extension suggests (`.jsonl` is JSON Lines, `.json` is BBH or an
    /// array, told apart by its first character when read).
    pub fn from_extension(path: &Path) -> Option<DataFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" => Some(DataFormat::Jsonl),
            "json" => Some(DataFormat::Json),
            _ => None,
        }
    }
}

/// The size of a split: a count (`dev = 50`) or a fraction of the examples (`dev = 0.25`).
/// TOML integers are counts, TOML floats are fractions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SplitSize {
    Count(usize),
    Fraction(f64),
}

impl SplitSize {
    /// How many of `total` examples this size takes (fractions round to nearest).
    pub fn of(self, total: usize) -> usize {
        match self {
            SplitSize::Count(n) => n,
            SplitSize::Fraction(f) => ((total as f64) * f.clamp(0.0, 1.0)).round() as usize,
        }
    }
}

/// How a single file (or a train file without dev/test files) is cut: dev and test are taken
/// from a seeded shuffle first, train gets `train` of what remains (all of it by default).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SplitSpec {
    pub train: Option<SplitSize>,
    pub dev: SplitSize,
    pub test: SplitSize,
}

impl Default for SplitSpec {
    fn default() -> Self {
        SplitSpec {
            train: None,
            dev: SplitSize::Fraction(0.25),
            test: SplitSize::Fraction(0.25),
        }
    }
}

/// An output class given in the config: its label (as it appears in the targets after the label
/// map) and the words the model may say for it (the label itself when empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassSpec {
    pub label: String,
    #[serde(default)]
    pub verbalizers: Vec<String>,
}

/// Where a task's data comes from and how it is cut. Every field has a default, so a config
/// needs only `path` (or `train`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// The task's name (default: the file's stem).
    pub name: Option<String>,
    /// The file layout (default: from the extension; a `.json` file starting with `{` is BBH).
    pub format: Option<DataFormat>,
    /// One file holding every example, split by `split` and `seed`.
    pub path: Option<PathBuf>,
    /// Given split files; a missing dev or test split is cut from `train` by `split`.
    pub train: Option<PathBuf>,
    pub dev: Option<PathBuf>,
    pub test: Option<PathBuf>,
    /// The field holding `x` (`input` in BBH, `sentence` in the NLU files).
    pub input_field: String,
    /// The field holding `y` (`target` in BBH, `label` in the NLU files).
    pub target_field: String,
    /// Raw target to label, e.g. `{"0" = "negative", "1" = "positive"}`.
    pub label_map: Option<BTreeMap<String, String>>,
    pub split: SplitSpec,
    /// Seed of the shuffle behind the splits and the caps.
    pub seed: u64,
    /// Keep each class's share of the examples in every split and under every cap: after the
    /// seeded shuffle, the examples are ordered so that any first n of them hold the classes in
    /// proportion (a dev set of 8 from a half-Yes task holds 4 of each, not whatever 8 the
    /// shuffle gave). Off by default, so existing splits stay as they were.
    pub stratify: bool,
    pub max_train: Option<usize>,
    pub max_dev: Option<usize>,
    pub max_test: Option<usize>,
    /// The output classes; when absent they are inferred (see `infer_classes`).
    pub classes: Option<Vec<ClassSpec>>,
    /// Infer classes from the targets when there are few distinct ones (at most
    /// `max_inferred_classes`, each seen at least twice on average), or from the label map.
    pub infer_classes: bool,
    pub max_inferred_classes: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            name: None,
            format: None,
            path: None,
            train: None,
            dev: None,
            test: None,
            input_field: "input".to_string(),
            target_field: "target".to_string(),
            label_map: None,
            split: SplitSpec::default(),
            seed: 42,
            stratify: false,
            max_train: None,
            max_dev: None,
            max_test: None,
            classes: None,
            infer_classes: true,
            max_inferred_classes: 10,
        }
    }
}

/// The files a config names, resolved against the config's directory.
pub(crate) struct Files {
    /// `path`, or `train`: the file splits are cut from when not given.
    pub pool: PathBuf,
    pub dev: Option<PathBuf>,
    pub test: Option<PathBuf>,
}

impl DataConfig {
    /// Checks what can be checked without reading a file, so `Config::load` reports it: which
    /// files go together, split sizes, the class list. That no file is named at all is left to
    /// loading: `--set data.path=..` may still come, and an exported network needs only
    /// `data.classes`.
    pub fn check(&self) -> Result<(), DataError> {
        self.check_sources()?;
        self.split.check(self.cuts_dev_and_test())?;
        super::classes::check_specs(self)
    }

    /// `path` excludes `train`, and `dev` / `test` go with `train`.
    fn check_sources(&self) -> Result<(), DataError> {
        let bad = |m: &str| Err(DataError::Config(m.to_string()));
        match (&self.path, &self.train) {
            (Some(_), Some(_)) => bad(
                "give either `data.path` (one file, split by seed) or `data.train` \
                 (with optional `data.dev` / `data.test`), not both",
            ),
            (Some(_), None) if self.dev.is_some() || self.test.is_some() => {
                bad("`data.dev` / `data.test` go with `data.train`, not with `data.path`")
            }
            _ => Ok(()),
        }
    }

    /// Whether both dev and test are cut from one file (no dev or test file given).
    fn cuts_dev_and_test(&self) -> bool {
        self.dev.is_none() && self.test.is_none()
    }

    /// The files to read; [`DataConfig::check`] has passed.
    pub(crate) fn files(&self, base_dir: &Path) -> Result<Files, DataError> {
        let at = |p: &PathBuf| crate::files::resolve(base_dir, p);
        match (&self.path, &self.train) {
            (Some(path), _) => Ok(Files {
                pool: at(path),
                dev: None,
                test: None,
            }),
            (None, Some(train)) => Ok(Files {
                pool: at(train),
                dev: self.dev.as_ref().map(at),
                test: self.test.as_ref().map(at),
            }),
            (None, None) => Err(DataError::Config(
                "no data: set `data.path` to a data file, or `data.train` (and optionally \
                 `data.dev`, `data.test`) to split files"
                    .to_string(),
            )),
        }
    }
}

impl SplitSpec {
    /// Fractions are in [0, 1], and dev and test cut from one file (`both_cut`) leave train
    /// something: fractions summing to 1 or more always leave it empty.
    fn check(&self, both_cut: bool) -> Result<(), DataError> {
        let sizes = [
            ("train", self.train),
            ("dev", Some(self.dev)),
            ("test", Some(self.test)),
        ];
        for (key, size) in sizes {
            if let Some(SplitSize::Fraction(f)) = size {
                if !(0.0..=1.0).contains(&f) {
                    return Err(DataError::Config(format!(
                        "`data.split.{key}` is {f}; a fraction must be in [0, 1] (or give a \
                         count of examples as an integer)"
                    )));
                }
            }
        }
        if let (true, SplitSize::Fraction(dev), SplitSize::Fraction(test)) =
            (both_cut, self.dev, self.test)
        {
            if dev + test >= 1.0 {
                return Err(DataError::Config(format!(
                    "`data.split.dev` ({dev}) and `data.split.test` ({test}) take every \
                     example, leaving none to train on; make their sum less than 1"
                )));
            }
        }
        Ok(())
    }
}
