//! Loading, defaults, `--set` and round trips of the whole config.
use super::*;

const MINIMAL: &str = r#"
[task]
name = "demo"
description = "Answer the question."

[data]
path = "data/demo.jsonl"

[[layers]]
prompt = "Classify."
"#;

fn minimal() -> Config {
    Config::parse(MINIMAL, Path::new("test.toml")).expect("minimal config parses")
}

#[test]
fn defaults_fill_in() {
    let c = minimal();
    assert_eq!(c.train.batch_size, 4);
    assert_eq!(c.train.num_candidates, 3);
    assert_eq!(c.train.patience(), Some(2));
    assert!(c.layers[0].trainable);
    assert_eq!(c.layers[0].backward_temperature, 0.7);
    assert_eq!(c.model.context_size, 2048);
    assert_eq!(c.train, TrainConfig::default());
}

#[test]
fn set_dotted_keys() {
    let mut c = minimal();
    c.set("train.iterations", "2").expect("iterations");
    assert_eq!(c.train.iterations, 2);
    c.apply_override("train.seed=7").expect("seed");
    assert_eq!(c.train.seed, 7);
    c.set("layers.0.prompt", "Say yes or no.")
        .expect("prompt as bare text");
    assert_eq!(c.layers[0].prompt, "Say yes or no.");
    c.set("layers.0.templates.forward", "my.toml")
        .expect("template");
    assert_eq!(c.layers[0].templates.forward, "my.toml");
    c.set("train.mode", "zero_shot").expect("mode");
    assert_eq!(c.train.mode, Mode::ZeroShot);
    c.set("data.path", "other.jsonl").expect("data key");
    assert_eq!(
        c.data.get("path").and_then(|v| v.as_str()),
        Some("other.jsonl")
    );
}

#[test]
fn set_refuses_unknown_keys_and_bad_values() {
    let mut c = minimal();
    let before = c.clone();
    let e = c.set("train.iteratons", "2").expect_err("typo");
    assert!(e.to_string().contains("train.iteratons"), "{e}");
    let e = c.set("layers.3.prompt", "x").expect_err("no such layer");
    assert!(e.to_string().contains("layers.3.prompt"), "{e}");
    let e = c.set("train.batch_size", "many").expect_err("type");
    assert!(e.to_string().contains("train.batch_size"), "{e}");
    let e = c.set("train.batch_size", "0").expect_err("range");
    assert!(e.to_string().contains("batch_size"), "{e}");
    assert!(matches!(
        c.apply_override("train.seed"),
        Err(ConfigError::BadOverride(_))
    ));
    // `[data]` keys are typed and checked as in a file.
    let e = c.set("data.pth", "x.jsonl").expect_err("typo");
    assert!(e.to_string().contains("data.pth"), "{e}");
    let e = c.set("data.format", "csv").expect_err("unknown format");
    assert!(
        e.to_string().contains("data.format") && e.to_string().contains("csv"),
        "{e}"
    );
    let e = c.set("data.train", "t.jsonl").expect_err("path and train");
    assert!(e.to_string().contains("not both"), "{e}");
    assert_eq!(c, before);
}

#[test]
fn unknown_key_in_file_is_named() {
    let text = MINIMAL.replace("[task]", "[train]\nbatchsize = 3\n[task]");
    let e = Config::parse(&text, Path::new("x.toml")).expect_err("unknown key");
    let m = e.to_string();
    assert!(m.contains("batchsize") && m.contains("x.toml"), "{m}");
}

#[test]
fn named_backends_load_and_round_trip() {
    let text = format!(
        "{MINIMAL}\n[backends.remote]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:8000/v1\"\nmodel = \"m\"\nmax_in_flight = 4\n\n[backends.local]\nkind = \"embedded\"\nmodel = \"smollm2-135m\"\n"
    )
    .replace("prompt = \"Classify.\"", "prompt = \"Classify.\"\nbackward_model = \"remote\"");
    let c = Config::parse(&text, Path::new("b.toml")).expect("backends parse");
    match c.backends.get("remote") {
        Some(BackendConfig::Openai(o)) => {
            assert_eq!(o.max_in_flight, 4);
            assert_eq!(o.api_key_env, "OPENAI_API_KEY");
        }
        other => panic!("remote: {other:?}"),
    }
    assert!(matches!(
        c.backends.get("local"),
        Some(BackendConfig::Embedded { .. })
    ));
    assert_eq!(c.layers[0].backward_model, "remote");
    let back = Config::parse(&c.to_toml().expect("toml"), Path::new("c.toml")).expect("again");
    assert_eq!(back, c);
    let mut c2 = c.clone();
    c2.set("backends.remote.max_in_flight", "2").expect("set");
    assert!(matches!(
        c2.backends.get("remote"),
        Some(BackendConfig::Openai(o)) if o.max_in_flight == 2
    ));
    // A typo in a backend table is named; an empty model is refused with the fix.
    let e = Config::parse(
        &text.replace("max_in_flight", "max_inflight"),
        Path::new("b.toml"),
    )
    .expect_err("typo");
    assert!(e.to_string().contains("max_inflight"), "{e}");
    let e = Config::parse(
        &text.replace("model = \"m\"", "model = \"\""),
        Path::new("b.toml"),
    )
    .expect_err("no model");
    assert!(e.to_string().contains("backends.remote.model"), "{e}");
    // Configs without backends serialize exactly as before.
    assert!(!minimal().to_toml().expect("toml").contains("backends"));
}

#[test]
fn resolved_round_trip() {
    let mut c = minimal();
    c.base_dir = Some(PathBuf::from("/somewhere"));
    let text = c.to_toml().expect("serialize");
    let back = Config::parse(&text, Path::new("config.toml")).expect("reparse");
    assert_eq!(back, c);
    assert_eq!(
        back.resolve_path("d.json"),
        PathBuf::from("/somewhere/d.json")
    );
}

#[test]
fn data_errors_are_found_on_load_with_file_and_line() {
    let bad = |data: &str| {
        let text = MINIMAL.replace("path = \"data/demo.jsonl\"", data);
        Config::parse(&text, Path::new("d.toml"))
            .expect_err(data)
            .to_string()
    };
    let e = bad("path = \"x.csv\"\nformat = \"csv\"");
    assert!(
        e.contains("d.toml") && e.contains("csv") && e.contains("jsonl"),
        "{e}"
    );
    assert!(e.contains("line 8"), "the line of the key: {e}");
    let e = bad("pth = \"x.jsonl\"");
    assert!(
        e.contains("d.toml") && e.contains("line 7") && e.contains("`pth`"),
        "{e}"
    );
    let e = bad("path = \"x.jsonl\"\nsplit = { dev = 1.5 }");
    assert!(e.contains("data.split.dev") && e.contains("[0, 1]"), "{e}");
    let e = bad("path = \"x.jsonl\"\nsplit = { dev = 0.5, test = 0.5 }");
    assert!(
        e.contains("data.split.dev") && e.contains("less than 1"),
        "{e}"
    );
    let e = bad("path = \"x.jsonl\"\ntrain = \"t.jsonl\"");
    assert!(e.contains("data.path") && e.contains("not both"), "{e}");
    let e = bad("path = \"x.jsonl\"\ndev = \"d.jsonl\"");
    assert!(e.contains("data.dev") && e.contains("data.train"), "{e}");
    let e = bad("path = \"x.jsonl\"\nclasses = []");
    assert!(e.contains("data.classes"), "{e}");
    let e = bad("path = \"x.jsonl\"\nmax_dev = \"ten\"");
    assert!(
        e.contains("d.toml") && e.contains("line 8") && e.contains("max_dev"),
        "{e}"
    );
}

#[test]
fn data_given_later_or_not_at_all_loads() {
    // `--set data.path=..` may still come, and a network file needs only its classes.
    let text = MINIMAL.replace("path = \"data/demo.jsonl\"", "");
    let mut c = Config::parse(&text, Path::new("d.toml")).expect("no data file yet");
    c.set("data.path", "d.jsonl").expect("data given by --set");
    assert_eq!(c.data_config().expect("typed").path, Some("d.jsonl".into()));
    let text = MINIMAL.replace(
        "path = \"data/demo.jsonl\"",
        "classes = [{ label = \"yes\" }, { label = \"no\" }]",
    );
    Config::parse(&text, Path::new("n.toml")).expect("classes only");
}

#[test]
fn empty_tables_take_the_one_set_of_defaults() {
    let c = minimal();
    assert_eq!(
        c.layers[0],
        LayerConfig {
            prompt: "Classify.".into(),
            ..LayerConfig::default()
        }
    );
    assert_eq!(c.model, ModelConfig::default());
    let empty: TrainConfig = toml::from_str("").expect("empty [train]");
    assert_eq!(empty, TrainConfig::default());
}

#[test]
fn prices_and_budgets_load_round_trip_and_refuse_negative_values() {
    let text = format!(
        "{MINIMAL}\n[backends.remote]\nkind = \"openai\"\nmodel = \"m\"\nprompt_price = 0.15\ngenerated_price = 0.6\n\n[backends.local]\nkind = \"embedded\"\ngenerated_price = 2\n"
    );
    let mut c = Config::parse(&text, Path::new("p.toml")).expect("prices parse");
    let price = |name: &str, c: &Config| c.backends.get(name).and_then(BackendConfig::price);
    assert_eq!(
        price("remote", &c),
        Some(crate::llm::price::Price {
            prompt: 0.15,
            generated: 0.6
        })
    );
    assert_eq!(
        price("local", &c).map(|p| (p.prompt, p.generated)),
        Some((0.0, 2.0)),
        "an unset half of a price is free"
    );
    assert_eq!(c.train.budget_tokens, None);
    c.set("train.budget_tokens", "1000").expect("tokens");
    c.set("train.budget_cost", "5")
        .expect("an integer cost reads as a number");
    assert_eq!(c.train.budget_tokens, Some(1000));
    assert_eq!(c.train.budget_cost, Some(5.0));
    let back = Config::parse(&c.to_toml().expect("toml"), Path::new("c.toml")).expect("again");
    assert_eq!(back, c);
    let e = c
        .set("train.budget_cost", "-1")
        .expect_err("negative budget");
    assert!(e.to_string().contains("budget_cost"), "{e}");
    let e = Config::parse(
        &text.replace("prompt_price = 0.15", "prompt_price = -0.15"),
        Path::new("p.toml"),
    )
    .expect_err("negative price");
    assert!(
        e.to_string().contains("backends.remote.prompt_price"),
        "{e}"
    );
    let e = Config::parse(
        &text.replace("generated_price = 2", "generated_price = -2"),
        Path::new("p.toml"),
    )
    .expect_err("negative price");
    assert!(
        e.to_string().contains("backends.local.generated_price"),
        "{e}"
    );
}

#[test]
fn the_cache_bound_has_a_default_and_refuses_what_is_not_a_size() {
    let mut c = minimal();
    assert_eq!(c.cache.max_mb, crate::config::DEFAULT_MAX_MB);
    c.set("cache.max_mb", "64")
        .expect("an integer reads as MiB");
    assert_eq!(c.cache.max_bytes(), 64 << 20);
    c.set("cache.max_mb", "0.5").expect("a fraction");
    let back = Config::parse(&c.to_toml().expect("toml"), Path::new("c.toml")).expect("again");
    assert_eq!(back.cache.max_mb, 0.5);
    for bad in ["0", "-3", "inf", "nan", "-inf"] {
        let e = c.set("cache.max_mb", bad).expect_err(bad);
        assert!(e.to_string().contains("`cache.max_mb`"), "{bad}: {e}");
    }
    let e = Config::parse(
        &format!("{MINIMAL}\n[cache]\nmax_mb = 0\n"),
        Path::new("z.toml"),
    )
    .expect_err("zero in a file");
    assert!(
        e.to_string().contains("z.toml") && e.to_string().contains("`cache.max_mb`"),
        "{e}"
    );
    let e = Config::parse(
        &format!("{MINIMAL}\n[cache]\nmax_gb = 1\n"),
        Path::new("u.toml"),
    )
    .expect_err("unknown key");
    assert!(e.to_string().contains("max_gb"), "{e}");
}

#[test]
fn gepa_trains_the_output_layer_only_and_a_token_budget_is_positive() {
    let mut c = minimal();
    c.set("train.optimizer", "gepa").expect("optimizer");
    c.set("train.until_tokens", "5000").expect("budget");
    assert!(c.train.gepa());
    c.validate().expect("one layer under GEPA");
    let mut two = c.clone();
    two.layers.insert(0, two.layers[0].clone());
    let e = two
        .validate()
        .expect_err("a trained hidden layer")
        .to_string();
    assert!(
        e.contains("output layer only") && e.contains("layers.0.trainable = false"),
        "{e}"
    );
    two.set("layers.0.trainable", "false").expect("fixed");
    two.validate().expect("the hidden layer fixed");
    let e = c
        .set("train.until_tokens", "0")
        .expect_err("zero")
        .to_string();
    assert!(e.contains("train.until_tokens"), "{e}");
    // The reflective template is GEPA's default proposer, and only GEPA's.
    let spec = |c: &Config| {
        crate::dln::network::layer_templates(c, 0, &[])
            .expect("templates")
            .into_iter()
            .find(|(r, _)| *r == crate::template::TemplateRole::ProposePrompt)
            .map(|(_, t)| t.name)
    };
    c.set("train.until_tokens", "5000").expect("budget");
    assert_eq!(spec(&c).as_deref(), Some("propose_reflective"));
    assert_eq!(spec(&minimal()).as_deref(), Some("propose_prompt"));
}
