//! Bad input never panics: arbitrary bytes and mutated valid files given to every reader a user
//! can feed — the data readers (BBH JSON, JSON Lines with a label map, JSON arrays), the config
//! loader and `--set`, the template loaders (our TOML, the reference's YAML) and the event-log
//! reader of replay — give an error naming the file (and line where there is one), never a
//! panic. The nastiest cases found are kept as plain tests at the end.

use std::collections::BTreeMap;
use std::path::Path;

use dln::config::Config;
use dln::data::{load_dataset, DataConfig, DataFormat};
use dln::dln::events::{Event, RunState};
use dln::run::read_events;
use dln::template::Template;
use proptest::prelude::*;

/// One edit of a valid file: cut it, flip a byte, insert bytes, or duplicate a slice.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Repeat(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (
            any::<usize>(),
            prop::collection::vec(
                prop_oneof![
                    any::<u8>(),
                    Just(b'"'),
                    Just(b'{'),
                    Just(b'}'),
                    Just(b'['),
                    Just(b'\n'),
                    Just(b'=')
                ],
                1..8
            )
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Repeat(i, n)),
    ]
}

fn mutate(valid: &[u8], edits: &[Mutation]) -> Vec<u8> {
    let mut v = valid.to_vec();
    for m in edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
        match m {
            Mutation::Truncate(i) => {
                let n = at(*i, v.len());
                v.truncate(n);
            }
            Mutation::Flip(i, b) if !v.is_empty() => {
                let n = i % v.len();
                v[n] ^= b | 1;
            }
            Mutation::Flip(..) => {}
            Mutation::Insert(i, bytes) => {
                let n = at(*i, v.len());
                v.splice(n..n, bytes.iter().copied());
            }
            Mutation::Repeat(i, len) => {
                let n = at(*i, v.len());
                let end = (n + len).min(v.len());
                let slice = v[n..end].to_vec();
                v.splice(n..n, slice);
            }
        }
    }
    v
}

fn bytes_or_mutated(valid: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        prop::collection::vec(mutation(), 1..5).prop_map(move |m| mutate(valid, &m)),
    ]
}

const BBH: &[u8] = br#"{"examples": [
 {"input": "Which is larger? (A) 3 (B) 7", "target": "(B)"},
 {"input": "Which is larger? (A) 9 (B) 2", "target": "(A)"},
 {"input": "Which is larger? (A) 1 (B) 5", "target": "(B)"},
 {"input": "Which is larger? (A) 8 (B) 4", "target": "(A)"}
]}"#;

const JSONL: &[u8] = b"{\"sentence\": \"Lovely.\", \"label\": \"1\"}\n{\"sentence\": \"Awful.\", \"label\": \"0\"}\n{\"sentence\": \"Nice.\", \"label\": \"1\"}\n{\"sentence\": \"Cold soup.\", \"label\": \"0\"}\n";

const ARRAY: &[u8] = br#"[{"q": "2+2?", "a": "4"}, {"q": "3+3?", "a": "6"}, {"q": "1+1?", "a": "2"}, {"q": "5+5?", "a": "10"}]"#;

fn data_config(format: DataFormat, path: &Path) -> DataConfig {
    let mut c = DataConfig {
        format: Some(format),
        path: Some(path.to_path_buf()),
        ..DataConfig::default()
    };
    match format {
        DataFormat::Bbh => {}
        DataFormat::Jsonl => {
            c.input_field = "sentence".into();
            c.target_field = "label".into();
            c.label_map = Some(BTreeMap::from([
                ("0".to_string(), "negative".to_string()),
                ("1".to_string(), "positive".to_string()),
            ]));
        }
        DataFormat::Json => {
            c.input_field = "q".into();
            c.target_field = "a".into();
        }
    }
    c
}

/// Loads `bytes` as a data file of `format`: fine or an error naming the file.
fn check_data(format: DataFormat, bytes: &[u8]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ext = match format {
        DataFormat::Bbh | DataFormat::Json => "json",
        DataFormat::Jsonl => "jsonl",
    };
    let path = dir.path().join(format!("task.{ext}"));
    std::fs::write(&path, bytes).expect("write");
    if let Err(e) = load_dataset(&data_config(format, &path), dir.path()) {
        let msg = e.to_string();
        assert!(msg.contains("task."), "the error names the file: {msg}");
    }
}

const CONFIG: &[u8] = include_bytes!("../examples/dln2-demo.toml");

fn check_config(bytes: &[u8]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, bytes).expect("write");
    if let Err(e) = Config::load(&path) {
        let msg = e.to_string();
        assert!(msg.contains("bad.toml"), "the error names the file: {msg}");
    }
}

const TEMPLATE: &[u8] = include_bytes!("../templates/propose_prompt.toml");

const YAML: &[u8] = b"v3.0:\n  template: |\n    {{ prompt }}\n\n    Input: {{ input }}\n    Answer:\n  stop_tokens: ['\\n']\n";

fn check_templates(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let _ = Template::parse_toml("fuzz.toml", &text);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fuzz.yaml");
    std::fs::write(&path, bytes).expect("write");
    if let Err(e) = Template::load_reference_yaml(&path, None) {
        let msg = e.to_string();
        assert!(msg.contains("fuzz.yaml"), "the error names the file: {msg}");
    }
    let path = dir.path().join("fuzz.toml");
    std::fs::write(&path, bytes).expect("write");
    if let Err(e) = Template::load(&path) {
        let msg = e.to_string();
        assert!(msg.contains("fuzz"), "the error names the file: {msg}");
    }
}

fn events_file() -> Vec<u8> {
    let events = [
        Event::StateChanged {
            state: RunState::Running,
        },
        Event::Warning {
            message: "a \"quoted\" warning\nover two lines".into(),
        },
        Event::StateChanged {
            state: RunState::Paused,
        },
        Event::Error {
            message: "the model is gone".into(),
        },
    ];
    let mut out = Vec::new();
    for e in &events {
        out.extend(serde_json::to_vec(e).expect("event serializes"));
        out.push(b'\n');
    }
    out
}

fn check_events(bytes: &[u8]) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("events.jsonl"), bytes).expect("write");
    if let Err(e) = read_events(dir.path()) {
        let msg = e.to_string();
        assert!(
            msg.contains("events.jsonl"),
            "the error names the file: {msg}"
        );
        if msg.contains("line") {
            assert!(
                msg.chars().any(|c| c.is_ascii_digit()),
                "the error gives the line number: {msg}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, .. ProptestConfig::default() })]

    #[test]
    fn bbh_files_never_panic(bytes in bytes_or_mutated(BBH)) {
        check_data(DataFormat::Bbh, &bytes);
    }

    #[test]
    fn jsonl_files_with_a_label_map_never_panic(bytes in bytes_or_mutated(JSONL)) {
        check_data(DataFormat::Jsonl, &bytes);
    }

    #[test]
    fn json_arrays_never_panic(bytes in bytes_or_mutated(ARRAY)) {
        check_data(DataFormat::Json, &bytes);
    }

    #[test]
    fn configs_never_panic(bytes in bytes_or_mutated(CONFIG)) {
        check_config(&bytes);
    }

    #[test]
    fn set_overrides_never_panic(
        key in prop_oneof![
            "[a-z_.0-9]{0,30}",
            Just("train.iterations".to_string()),
            Just("layers.0.prompt".to_string()),
            Just("layers.99.prompt".to_string()),
            Just("data.path".to_string()),
            Just("train..seed".to_string()),
        ],
        value in prop_oneof![".{0,40}", Just("-1".to_string()), Just("1e999".to_string()), Just("[".to_string())],
        sep in prop_oneof![Just("="), Just(""), Just("=="), Just(" = ")],
    ) {
        let mut config = Config::parse(
            std::str::from_utf8(CONFIG).expect("utf-8"),
            Path::new("dln2-demo.toml"),
        ).expect("the demo config parses");
        let _ = config.apply_override(&format!("{key}{sep}{value}"));
    }

    /// Every numeric setting given a number serde takes but nothing can use (infinities, NaN,
    /// huge, negative, zero) is accepted only where it is usable, else refused naming its key;
    /// what is accepted builds the HTTP transport's options without a panic.
    #[test]
    fn numeric_settings_out_of_range_name_their_key(
        key in prop::sample::select(NUMERIC_KEYS),
        value in prop_oneof![
            prop::sample::select(&["inf", "-inf", "nan", "1e300", "-1", "0", "1e20", "-0.0",
                                   "99999999999999999999", "4294967296", "0.5", "3"][..])
                .prop_map(str::to_string),
            any::<f64>().prop_map(|v| format!("{v:e}")),
            any::<i64>().prop_map(|v| v.to_string()),
        ],
    ) {
        let mut config = Config::parse(
            &format!("{}\n[backends.server]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n",
                std::str::from_utf8(CONFIG).expect("utf-8")),
            Path::new("dln2-demo.toml"),
        ).expect("the demo config parses");
        let checked = config
            .apply_override(&format!("{key}={value}"))
            .and_then(|()| config.validate());
        match checked {
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains(key), "{key}={value}: the error names the key: {msg}");
            }
            Ok(()) => {
                if let Some(dln::config::BackendConfig::Openai(o)) = config.backends.get("server") {
                    let _ = o.transport_options();
                }
            }
        }
    }

    #[test]
    fn templates_never_panic(bytes in prop_oneof![bytes_or_mutated(TEMPLATE), bytes_or_mutated(YAML)]) {
        check_templates(&bytes);
    }

    #[test]
    fn event_logs_never_panic(edits in prop::collection::vec(mutation(), 1..5), noise in prop::collection::vec(any::<u8>(), 0..256)) {
        let valid = events_file();
        check_events(&mutate(&valid, &edits));
        check_events(&noise);
    }
}

/// The numeric settings a config can hold (the demo has two layers and a backend `server`).
const NUMERIC_KEYS: &[&str] = &[
    "model.context_size",
    "model.threads",
    "train.iterations",
    "train.batch_size",
    "train.num_candidates",
    "train.num_hidden_samples",
    "train.val_freq",
    "train.patience",
    "train.memory",
    "train.posterior_temperature",
    "train.trust_factor",
    "train.logp_penalty",
    "train.backward_top_p",
    "train.proposal_rounds",
    "train.burn_in",
    "train.k_shot",
    "train.budget_tokens",
    "train.budget_cost",
    "layers.0.forward_temperature",
    "layers.0.backward_temperature",
    "layers.0.forward_max_tokens",
    "layers.1.backward_max_tokens",
    "layers.1.demos",
    "backends.server.timeout_secs",
    "backends.server.max_retries",
    "backends.server.retry_base_ms",
    "backends.server.max_in_flight",
    "backends.server.prompts_per_request",
    "backends.server.context_size",
    "backends.server.prompt_price",
];

// The nastiest cases, kept as plain tests.

fn deep(open: &str, close: &str, n: usize) -> Vec<u8> {
    format!("{}{}", open.repeat(n), close.repeat(n)).into_bytes()
}

#[test]
fn corpus_of_nasty_data_files() {
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\0\0\0\0".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x7b],
        b"{\"examples\": {}}".to_vec(),
        b"{\"examples\": [null, 1, \"x\", []]}".to_vec(),
        b"{\"examples\": [{\"input\": 1e999, \"target\": null}]}".to_vec(),
        deep("[", "]", 100_000),
        deep("{\"a\":", "}", 50_000),
        b"{\"sentence\": \"ok\", \"label\": \"7\"}\n{\"sentence\": \"ok\", \"label\": 0}\n"
            .to_vec(),
        b"\n\n\n\r\n".to_vec(),
        "{\"sentence\": \"\u{202e}\u{0}\", \"label\": \"1\"}\n"
            .as_bytes()
            .to_vec(),
    ];
    for c in &cases {
        for f in [DataFormat::Bbh, DataFormat::Jsonl, DataFormat::Json] {
            check_data(f, c);
        }
    }
}

#[test]
fn corpus_of_nasty_configs_templates_and_event_logs() {
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        vec![0xff, 0xfe, 0xfd],
        deep("a = [", "]", 100_000),
        deep("[", "]", 100_000),
        b"[[layers]]\n[[layers]]\n[[layers]]\n".to_vec(),
        b"[train]\niterations = -1\nbatch_size = 0\n".to_vec(),
        b"[train]\niterations = 99999999999999999999999\n".to_vec(),
        b"template = \"{% for %}\"\n".to_vec(),
        b"template = \"{{ a.b.c.d( }}\"\n".to_vec(),
        deep("- ", "", 20_000),
        deep("{a: ", "}", 20_000),
        b"v3.0: &a [*a]\n".to_vec(),
        b"{\"event\": \"state_changed\"".to_vec(),
        b"{\"event\": \"state_changed\", \"state\": \"running\"}\n{\"event\": \"nope\"}\n{\"event\": \"warning\", \"message\": \"x\"}\n".to_vec(),
    ];
    for c in &cases {
        check_config(c);
        check_templates(c);
        check_events(c);
    }
}
