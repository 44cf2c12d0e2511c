//! The data loaders on the shipped example datasets and on broken files.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::write_file;

use dln::data::{load_dataset, ClassSpec, DataConfig, DataError, DataFormat, SplitSize, SplitSpec};

fn examples_dir() -> PathBuf {
    common::example("data")
}

fn sentiment_config() -> DataConfig {
    DataConfig {
        path: Some("sentiment.jsonl".into()),
        input_field: "sentence".into(),
        target_field: "label".into(),
        label_map: Some(BTreeMap::from([
            ("0".to_string(), "negative".to_string()),
            ("1".to_string(), "positive".to_string()),
        ])),
        ..DataConfig::default()
    }
}

fn jsonl_config(file: &str) -> DataConfig {
    DataConfig {
        path: Some(file.into()),
        split: SplitSpec {
            train: None,
            dev: SplitSize::Count(1),
            test: SplitSize::Count(1),
        },
        ..DataConfig::default()
    }
}

#[test]
fn jsonl_with_label_map_loads_and_splits() {
    let ds = load_dataset(&sentiment_config(), &examples_dir()).expect("sentiment loads");
    assert_eq!(ds.name, "sentiment");
    assert_eq!(ds.train.len() + ds.dev.len() + ds.test.len(), 70);
    // Default split: a quarter each for dev and test.
    assert_eq!(ds.dev.len(), 18);
    assert_eq!(ds.test.len(), 18);
    let classes = ds.classes.clone().expect("classes from the label map");
    assert_eq!(classes.labels, vec!["negative", "positive"]);
    assert!(ds
        .all()
        .all(|e| e.target == "negative" || e.target == "positive"));
    assert_eq!(classes.index_of("Positive."), Some(1));
}

#[test]
fn bbh_file_loads_with_inferred_yes_no_classes() {
    let cfg = DataConfig {
        path: Some("navigate.json".into()),
        ..DataConfig::default()
    };
    let ds = load_dataset(&cfg, &examples_dir()).expect("navigate loads");
    assert_eq!(ds.all().count(), 50);
    assert!(ds.train[0]
        .input
        .starts_with("If you follow these instructions"));
    let classes = ds.classes.expect("two distinct targets are classes");
    assert_eq!(classes.labels, vec!["No", "Yes"]);
    assert!(classes.verbalizers[1].contains(&"Yes".to_string()));
}

#[test]
fn json_array_with_custom_fields_infers_choice_classes() {
    let cfg = DataConfig {
        path: Some("tiny.json".into()),
        input_field: "question".into(),
        target_field: "answer".into(),
        ..DataConfig::default()
    };
    let ds = load_dataset(&cfg, &examples_dir()).expect("tiny loads");
    assert_eq!((ds.train.len(), ds.dev.len(), ds.test.len()), (6, 3, 3));
    let classes = ds.classes.expect("(A)/(B) are classes");
    assert_eq!(classes.labels, vec!["(A)", "(B)"]);
    assert_eq!(classes.verbalizers[0], vec!["(A)", "A"]);
    assert_eq!(classes.index_of("B"), Some(1));
}

#[test]
fn splits_are_deterministic_per_seed() {
    let dir = examples_dir();
    let a = load_dataset(&sentiment_config(), &dir).expect("load");
    let b = load_dataset(&sentiment_config(), &dir).expect("load");
    assert_eq!(a, b);
    let other = DataConfig {
        seed: 7,
        ..sentiment_config()
    };
    let c = load_dataset(&other, &dir).expect("load");
    assert_ne!(a.train, c.train, "another seed gives another split");
    let mut all_a: Vec<_> = a.all().cloned().map(|e| e.input).collect();
    let mut all_c: Vec<_> = c.all().cloned().map(|e| e.input).collect();
    all_a.sort();
    all_c.sort();
    assert_eq!(all_a, all_c, "a split is a partition of the same examples");
}

#[test]
fn stratify_keeps_each_class_in_proportion_in_every_split_and_cap() {
    // The shipped navigate file: 25 Yes, 25 No; the DLN-2 demo's cut (dev and test 25 % each,
    // capped at 8 and 16).
    let cfg = |stratify| DataConfig {
        path: Some("navigate.json".into()),
        max_dev: Some(8),
        max_test: Some(16),
        stratify,
        ..DataConfig::default()
    };
    let yes = |v: &[dln::data::Example]| v.iter().filter(|e| e.target == "Yes").count();
    let dir = examples_dir();
    let plain = load_dataset(&cfg(false), &dir).expect("load");
    let even = load_dataset(&cfg(true), &dir).expect("load");
    assert_eq!(
        (even.train.len(), even.dev.len(), even.test.len()),
        (plain.train.len(), plain.dev.len(), plain.test.len()),
        "stratifying changes which examples, not how many"
    );
    assert_eq!(yes(&even.dev), 4, "dev: {:?}", even.dev);
    // What the demo had before: this seed's shuffle put 1 Yes in the 8 dev examples.
    assert_eq!(yes(&plain.dev), 1, "dev: {:?}", plain.dev);
    // 13 test examples (25 % of 50, rounded) and the 24 left for train: each class within one
    // example of half.
    for (split, v) in [("test", &even.test), ("train", &even.train)] {
        let off = (2 * yes(v)) as i64 - v.len() as i64;
        assert!(off.abs() <= 1, "{split}: {} Yes of {}", yes(v), v.len());
    }
    assert_eq!((even.test.len(), even.train.len()), (13, 24));
    // The seed still decides which ones, and a split is still a partition.
    let other = load_dataset(
        &DataConfig {
            seed: 7,
            ..cfg(true)
        },
        &dir,
    )
    .expect("load");
    assert_ne!(even.dev, other.dev);
    assert_eq!(yes(&other.dev), 4);
    assert_eq!(load_dataset(&cfg(true), &dir).expect("load"), even);
}

#[test]
fn counts_fractions_and_caps() {
    let cfg = DataConfig {
        split: SplitSpec {
            train: Some(SplitSize::Count(20)),
            dev: SplitSize::Fraction(0.1),
            test: SplitSize::Count(30),
        },
        max_test: Some(25),
        ..sentiment_config()
    };
    let ds = load_dataset(&cfg, &examples_dir()).expect("load");
    assert_eq!((ds.train.len(), ds.dev.len(), ds.test.len()), (20, 7, 25));
}

#[test]
fn given_split_files_and_carved_dev() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lines = |n: usize, tag: &str| {
        (0..n)
            .map(|i| format!("{{\"input\": \"{tag} {i}\", \"target\": \"x{i}\"}}\n"))
            .collect::<String>()
    };
    write_file(tmp.path(), "train.jsonl", &lines(20, "train"));
    write_file(tmp.path(), "test.jsonl", &lines(5, "test"));
    let cfg = DataConfig {
        train: Some("train.jsonl".into()),
        test: Some("test.jsonl".into()),
        split: SplitSpec {
            train: None,
            dev: SplitSize::Count(4),
            test: SplitSize::Count(0),
        },
        ..DataConfig::default()
    };
    let ds = load_dataset(&cfg, tmp.path()).expect("load");
    assert_eq!((ds.train.len(), ds.dev.len(), ds.test.len()), (16, 4, 5));
    assert!(ds.test.iter().all(|e| e.input.starts_with("test")));
    assert!(ds.dev.iter().all(|e| e.input.starts_with("train")));
    assert!(
        ds.classes.is_none(),
        "20 distinct free-text targets are not classes"
    );
}

#[test]
fn malformed_json_line_names_file_and_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_file(
        tmp.path(),
        "bad.jsonl",
        "{\"input\": \"a\", \"target\": \"b\"}\n\n{\"input\": \"c\", \"target\": }\n",
    );
    let err = load_dataset(&jsonl_config("bad.jsonl"), tmp.path()).expect_err("malformed");
    assert!(matches!(err, DataError::Json { line: 3, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("bad.jsonl:3"), "{msg}");
}

#[test]
fn malformed_json_document_names_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_file(tmp.path(), "bad.json", "{\"examples\": [\n {\"input\": \"a\", \"target\": \"b\"},\n {\"input\": \"c\" \"target\": \"d\"}\n]}\n");
    let err = load_dataset(&jsonl_config("bad.json"), tmp.path()).expect_err("malformed");
    assert!(err.to_string().contains("bad.json:3"), "{err}");
}

#[test]
fn missing_field_is_named_with_its_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_file(
        tmp.path(),
        "nolabel.json",
        "{\"examples\": [\n  {\"input\": \"a\", \"target\": \"b\"},\n  {\"input\": \"c\", \"answer\": \"d\"}\n]}",
    );
    let err = load_dataset(&jsonl_config("nolabel.json"), tmp.path()).expect_err("missing");
    match &err {
        DataError::MissingField {
            field, line, which, ..
        } => {
            assert_eq!((field.as_str(), *line, *which), ("target", 3, "target"));
        }
        other => panic!("expected MissingField, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("nolabel.json:3") && msg.contains("`target`") && msg.contains("answer"),
        "{msg}"
    );
}

#[test]
fn unknown_label_in_label_map_names_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_file(
        tmp.path(),
        "labels.jsonl",
        "{\"sentence\": \"good\", \"label\": \"1\"}\n{\"sentence\": \"bad\", \"label\": \"0\"}\n{\"sentence\": \"meh\", \"label\": \"2\"}\n",
    );
    let cfg = DataConfig {
        path: Some("labels.jsonl".into()),
        ..sentiment_config()
    };
    let err = load_dataset(&cfg, tmp.path()).expect_err("unknown label");
    assert!(
        matches!(&err, DataError::UnknownLabel { line: 3, label, .. } if label == "2"),
        "{err:?}"
    );
    assert!(err.to_string().contains("labels.jsonl:3"), "{err}");
}

#[test]
fn unknown_label_against_configured_classes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut text = String::new();
    for (i, t) in ["(A)", "(B)", "(A)", "(C)"].iter().enumerate() {
        text.push_str(&format!("{{\"input\": \"q{i}\", \"target\": \"{t}\"}}\n"));
    }
    write_file(tmp.path(), "mc.jsonl", &text);
    let cfg = DataConfig {
        classes: Some(vec![
            ClassSpec {
                label: "(A)".into(),
                verbalizers: vec!["A".into()],
            },
            ClassSpec {
                label: "(B)".into(),
                verbalizers: vec![],
            },
        ]),
        ..jsonl_config("mc.jsonl")
    };
    let err = load_dataset(&cfg, tmp.path()).expect_err("(C) is not a class");
    assert!(
        matches!(&err, DataError::UnknownLabel { line: 4, .. }),
        "{err:?}"
    );
}

#[test]
fn empty_file_and_empty_split_are_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_file(tmp.path(), "empty.jsonl", "\n\n");
    let err = load_dataset(&jsonl_config("empty.jsonl"), tmp.path()).expect_err("empty");
    assert!(matches!(err, DataError::Empty { .. }), "{err:?}");
    assert!(err.to_string().contains("empty.jsonl"));

    write_file(tmp.path(), "empty.json", "{\"examples\": []}");
    let err = load_dataset(&jsonl_config("empty.json"), tmp.path()).expect_err("empty");
    assert!(matches!(err, DataError::Empty { .. }), "{err:?}");

    write_file(
        tmp.path(),
        "two.jsonl",
        "{\"input\": \"a\", \"target\": \"b\"}\n{\"input\": \"c\", \"target\": \"d\"}\n",
    );
    let err = load_dataset(&jsonl_config("two.jsonl"), tmp.path()).expect_err("no train left");
    assert!(
        matches!(err, DataError::EmptySplit { split: "train", .. }),
        "{err:?}"
    );
}

#[test]
fn unreadable_file_and_bad_config_are_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = load_dataset(&jsonl_config("nowhere.jsonl"), tmp.path()).expect_err("missing file");
    assert!(matches!(err, DataError::Read { .. }));
    assert!(err.to_string().contains("nowhere.jsonl"));

    let err = load_dataset(&DataConfig::default(), tmp.path()).expect_err("no path");
    assert!(matches!(err, DataError::Config(_)));
}

#[test]
fn non_object_records_and_wrong_field_types_are_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_file(
        tmp.path(),
        "arr.jsonl",
        "{\"input\": \"a\", \"target\": \"b\"}\n[1, 2]\n",
    );
    let err = load_dataset(&jsonl_config("arr.jsonl"), tmp.path()).expect_err("array record");
    assert!(err.to_string().contains("arr.jsonl:2"), "{err}");

    write_file(
        tmp.path(),
        "obj.jsonl",
        "{\"input\": {\"x\": 1}, \"target\": \"b\"}\n",
    );
    let err = load_dataset(&jsonl_config("obj.jsonl"), tmp.path()).expect_err("object field");
    assert!(
        matches!(&err, DataError::FieldType { line: 1, field, .. } if field == "input"),
        "{err:?}"
    );
}

#[test]
fn numeric_labels_and_explicit_format() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut text = String::new();
    for i in 0..8 {
        text.push_str(&format!("{{\"input\": \"n{i}\", \"target\": {}}}\n", i % 2));
    }
    // An odd extension: the format comes from the config.
    write_file(tmp.path(), "nums.txt", &text);
    let cfg = DataConfig {
        format: Some(DataFormat::Jsonl),
        label_map: Some(BTreeMap::from([
            ("0".to_string(), "even".to_string()),
            ("1".to_string(), "odd".to_string()),
        ])),
        ..jsonl_config("nums.txt")
    };
    let ds = load_dataset(&cfg, tmp.path()).expect("numeric labels map");
    assert!(ds.all().all(|e| e.target == "even" || e.target == "odd"));
}

#[test]
fn data_config_reads_from_toml() {
    let cfg: DataConfig = toml::from_str(
        r#"
        path = "sentiment.jsonl"
        input_field = "sentence"
        target_field = "label"
        label_map = { "0" = "negative", "1" = "positive" }
        split = { dev = 10, test = 0.25 }
        seed = 3
        max_train = 12
        "#,
    )
    .expect("valid [data] table");
    assert_eq!(cfg.split.dev, SplitSize::Count(10));
    assert_eq!(cfg.split.test, SplitSize::Fraction(0.25));
    let ds = load_dataset(&cfg, &examples_dir()).expect("load");
    assert_eq!((ds.train.len(), ds.dev.len(), ds.test.len()), (12, 10, 18));
    assert!(
        toml::from_str::<DataConfig>("pth = \"x\"").is_err(),
        "unknown keys are rejected"
    );
}

#[test]
fn file_free_checks_run_before_reading() {
    let both = DataConfig {
        path: Some("a.jsonl".into()),
        train: Some("b.jsonl".into()),
        ..DataConfig::default()
    };
    assert!(both
        .check()
        .expect_err("path and train")
        .to_string()
        .contains("not both"));
    let all_held_out = DataConfig {
        split: SplitSpec {
            train: None,
            dev: SplitSize::Fraction(0.5),
            test: SplitSize::Fraction(0.5),
        },
        ..jsonl_config("sentiment.jsonl")
    };
    let e = all_held_out.check().expect_err("nothing left to train on");
    assert!(e.to_string().contains("less than 1"), "{e}");
    // The same check refuses the config in load_dataset, before any file is read.
    let e = load_dataset(&all_held_out, Path::new("/nonexistent")).expect_err("checked first");
    assert!(matches!(e, DataError::Config(_)), "{e}");
    // Given dev and test files, split fractions cut nothing and are not summed.
    let files = DataConfig {
        dev: Some("d.jsonl".into()),
        ..all_held_out.clone()
    };
    files.check().expect_err("dev goes with train, not path");
    let with_train = DataConfig {
        path: None,
        train: Some("t.jsonl".into()),
        dev: Some("d.jsonl".into()),
        test: Some("e.jsonl".into()),
        ..all_held_out
    };
    with_train
        .check()
        .expect("fractions unused with split files");
    DataConfig::default()
        .check()
        .expect("no file yet is loading's concern");
}
