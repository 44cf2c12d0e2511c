//! Tests of fetching, checking and listing the built-in models (wheels served from a
//! temporary directory; nothing is downloaded).

use std::io::Write;

use sha2::{Digest, Sha256};

use super::catalog::part;
use super::pull::{lock_parts, pull_model, space_needed};
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
            let mut bytes: Vec<u8> = (0..*len).map(|i| ((i * 31 + p * 7) % 251) as u8).collect();
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
        tokens_per_second_per_thread: None,
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
    let err = resolve_with(Some("/no/such/model.gguf"), false, &config(dir.path())).unwrap_err();
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
