//! The HTTP backend against a small fault-injecting OpenAI-compatible server on loopback
//! (written here on a tokio `TcpListener`): 429 with Retry-After, 500s, a response slower than
//! the timeout, a reset connection, a truncated body, malformed JSON, a bad key; replicas, the
//! bound on requests in flight, the capability probe and its fallbacks, and the call cache.
//!
//! The fake speaks the completions shapes llama-cpp-python sends: a token is a word with its
//! leading space, its log-probability a fixed function of its text, `text_offset` in characters.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dln::llm::cache::CachedBackend;
use dln::llm::openai::{ApiKey, Capabilities, OpenAiBackend, OpenAiConfig, ScoringMode};
use dln::llm::{Backend, ClassifyRequest, GenerateRequest, Prompt, ScoreRequest, VerbalizerReduce};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the fake does with one request.
#[derive(Clone, Debug)]
enum Fault {
    Status(u16, Option<&'static str>),
    Sleep(Duration),
    Reset,
    /// A 200 whose body stops half-way (Content-Length promises more).
    Truncated,
    /// A complete 200 whose body is not JSON.
    Malformed,
}

#[derive(Default)]
struct State {
    faults: Mutex<VecDeque<Fault>>,
    /// Faults applied to every request (a replica that is down).
    always: Mutex<Option<Fault>>,
    requests: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Answer echo requests one token off (llama-cpp-python's bug on models without BOS).
    misaligned: bool,
    /// No echo support at all (hosted APIs): echo requests get a 400.
    no_echo: bool,
    bodies: Mutex<Vec<Value>>,
    /// Bodies answered with a 200.
    answered: Mutex<Vec<Value>>,
    /// Every request after this many is refused with a 503 (a server going down mid-run).
    fail_after: Mutex<Option<usize>>,
    auth: Mutex<Vec<String>>,
    /// Delay every answer (to measure concurrency).
    delay: Mutex<Duration>,
    /// Answers an array of prompts with one choice each (vLLM, OpenAI); without it, an array
    /// of more than one prompt gets the 500 llama-cpp-python's assertion gives.
    arrays: bool,
}

struct Fake {
    addr: SocketAddr,
    state: Arc<State>,
}

impl Fake {
    async fn start(state: State) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(state);
        let s = state.clone();
        tokio::spawn(async move {
            // Bounded: the test process ends it; each accept serves one request.
            while let Ok((sock, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move { serve(sock, s).await });
            }
        });
        Fake { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    fn push(&self, f: Fault) {
        self.state.faults.lock().expect("lock").push_back(f);
    }

    fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }
}

/// The fake's log-probability of a token: a fixed function of its text.
fn lp_of(token: &str) -> f64 {
    -0.25 - 0.1 * token.chars().count() as f64
}

/// Words with their leading space: "The cat sat" -> ["The", " cat", " sat"].
fn tokens_of(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut cur = String::new();
    let mut start = 0usize;
    for (i, ch) in text.chars().enumerate() {
        if ch == ' ' && !cur.is_empty() && !cur.ends_with(' ') {
            out.push((start, std::mem::take(&mut cur)));
            start = i;
        }
        cur.push(ch);
    }
    if !cur.is_empty() {
        out.push((start, cur));
    }
    out
}

async fn read_request(sock: &mut TcpStream) -> Option<(String, Vec<String>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let header_end = loop {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let mut lines = head.lines();
    let path = lines.next()?.split_whitespace().nth(1)?.to_string();
    let headers: Vec<String> = lines.map(str::to_string).collect();
    let len = headers
        .iter()
        .find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while buf.len() < header_end + len {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    Some((path, headers, buf[header_end..header_end + len].to_vec()))
}

async fn respond(sock: &mut TcpStream, status: u16, extra: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n",
        body.len()
    );
    let _ = sock.write_all(head.as_bytes()).await;
    let _ = sock.write_all(body).await;
    let _ = sock.shutdown().await;
}

async fn serve(mut sock: TcpStream, s: Arc<State>) {
    let Some((path, headers, body)) = read_request(&mut sock).await else {
        return;
    };
    let nth = s.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    s.max_in_flight.fetch_max(now, Ordering::SeqCst);
    if let Some(a) = headers
        .iter()
        .find(|h| h.to_lowercase().starts_with("authorization:"))
    {
        s.auth.lock().expect("lock").push(a.clone());
    }
    let fault = {
        let down = s.fail_after.lock().expect("lock").is_some_and(|n| nth > n);
        let always = if down {
            Some(Fault::Status(503, None))
        } else {
            s.always.lock().expect("lock").clone()
        };
        always.or_else(|| s.faults.lock().expect("lock").pop_front())
    };
    let delay = *s.delay.lock().expect("lock");
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    s.bodies.lock().expect("lock").push(req.clone());
    match fault {
        Some(Fault::Status(code, retry_after)) => {
            let extra = retry_after
                .map(|r| format!("retry-after: {r}\r\n"))
                .unwrap_or_default();
            let msg = json!({"error": {"message": format!("injected {code}")}}).to_string();
            respond(&mut sock, code, &extra, msg.as_bytes()).await;
        }
        Some(Fault::Sleep(d)) => {
            tokio::time::sleep(d).await;
            let b = answer(&path, &req, &s);
            respond(&mut sock, 200, "", b.to_string().as_bytes()).await;
        }
        Some(Fault::Reset) => {
            // Close without answering (the client sees a reset / empty reply).
            drop(sock);
        }
        Some(Fault::Truncated) => {
            let b = answer(&path, &req, &s).to_string();
            let half = &b.as_bytes()[..b.len() / 2];
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                b.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(half).await;
            drop(sock);
        }
        Some(Fault::Malformed) => {
            respond(&mut sock, 200, "", b"{\"choices\": [{\"text\": ").await;
        }
        None if !s.arrays && prompts_of(&req).len() > 1 => {
            let msg = json!({"error": {"message": "AssertionError"}}).to_string();
            respond(&mut sock, 500, "", msg.as_bytes()).await;
        }
        None => {
            if s.no_echo && req.get("echo").and_then(Value::as_bool) == Some(true) {
                let msg = json!({"error": {"message": "echo is not supported"}}).to_string();
                respond(&mut sock, 400, "", msg.as_bytes()).await;
            } else {
                let b = answer(&path, &req, &s);
                s.answered.lock().expect("lock").push(req.clone());
                respond(&mut sock, 200, "", b.to_string().as_bytes()).await;
            }
        }
    }
    s.in_flight.fetch_sub(1, Ordering::SeqCst);
}

/// A completions answer in llama-cpp-python's shape.
fn answer(path: &str, req: &Value, s: &State) -> Value {
    if path.ends_with("/chat/completions") {
        return json!({"choices": [{"message": {"role": "assistant", "content": "yes"}, "finish_reason": "stop"}],
                      "usage": {"prompt_tokens": 3, "completion_tokens": 1}});
    }
    let prompts = prompts_of(req);
    let choices: Vec<Value> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| choice(p, i, req, s))
        .collect();
    let prompt_tokens: usize = prompts.iter().map(|p| tokens_of(p).len()).sum();
    json!({
        "id": "cmpl-1", "object": "text_completion", "model": "fake",
        "choices": choices,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": prompts.len()}
    })
}

/// The prompts of a completions request: a string, or an array of them.
fn prompts_of(req: &Value) -> Vec<String> {
    match req.get("prompt") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|p| p.as_str().unwrap_or("").to_string())
            .collect(),
        Some(p) => vec![p.as_str().unwrap_or("").to_string()],
        None => vec![String::new()],
    }
}

/// The choice answering prompt `index` of a request.
fn choice(prompt: &str, index: usize, req: &Value, s: &State) -> Value {
    let echo = req.get("echo").and_then(Value::as_bool) == Some(true);
    let logprobs = req.get("logprobs").and_then(Value::as_u64);
    // Echo requests generate another token than plain ones, so a misaligned echo shows.
    let generated = if echo { " !" } else { " ok" };
    let prompt_len = prompt.chars().count();
    let mut text = generated.to_string();
    let mut lp = Value::Null;
    if let Some(k) = logprobs {
        let mut toks = if echo { tokens_of(prompt) } else { Vec::new() };
        toks.push((prompt_len, generated.to_string()));
        let n = toks.len();
        let values: Vec<Value> = (0..n)
            .map(|i| {
                if echo && i == 0 {
                    return Value::Null;
                }
                let v = if s.misaligned && echo {
                    toks.get(i + 1).map(|t| lp_of(&t.1)).unwrap_or(-9.0)
                } else {
                    lp_of(&toks[i].1)
                };
                json!(v)
            })
            .collect();
        let top: Vec<Value> = (0..n)
            .map(|i| {
                if echo && i == 0 {
                    Value::Null
                } else if k == 0 {
                    json!({})
                } else {
                    json!({" ok": lp_of(" ok"), " yes": -1.0, " no": -2.0})
                }
            })
            .collect();
        lp = json!({
            "tokens": toks.iter().map(|t| t.1.clone()).collect::<Vec<_>>(),
            "text_offset": toks.iter().map(|t| t.0).collect::<Vec<_>>(),
            "token_logprobs": values,
            "top_logprobs": top,
        });
    }
    if echo {
        text = format!("{prompt}{generated}");
    }
    json!({"text": text, "index": index, "logprobs": lp, "finish_reason": "length"})
}

fn cfg(urls: Vec<String>) -> OpenAiConfig {
    OpenAiConfig {
        base_urls: urls,
        model: "fake".into(),
        timeout_secs: 5.0,
        max_retries: 3,
        retry_base_ms: 20,
        ..OpenAiConfig::default()
    }
}

fn echo_caps() -> Capabilities {
    Capabilities {
        completions: true,
        echo: true,
        top_logprobs: Some(5),
        ..Default::default()
    }
}

fn backend(c: &OpenAiConfig) -> OpenAiBackend {
    OpenAiBackend::with_capabilities(c, ApiKey::default(), echo_caps(), 2048).expect("backend")
}

fn req(context: &str, target: &str) -> ScoreRequest {
    ScoreRequest {
        context: context.into(),
        target: target.into(),
    }
}

/// The fake's exact answer for a target of whole words after a context.
fn expected(target: &str) -> f64 {
    tokens_of(target).iter().map(|t| lp_of(&t.1)).sum()
}

#[tokio::test]
async fn scores_locate_the_target_by_offset_and_multibyte_text_is_exact() {
    let fake = Fake::start(State::default()).await;
    let b = backend(&cfg(vec![fake.url()]));
    let s = b
        .score(vec![
            req("Q: café au lait?", " Answer: oui"),
            req("The cat", " sat"),
        ])
        .await
        .expect("score");
    assert_eq!(s[0].tokens, 2);
    assert!((s[0].logprob - expected(" Answer: oui")).abs() < 1e-12);
    assert!((s[1].logprob - lp_of(" sat")).abs() < 1e-12);
    // Sent with max_tokens 1 (0 means unlimited on llama-cpp-python) and echo.
    let bodies = fake.state.bodies.lock().expect("lock").clone();
    assert!(bodies
        .iter()
        .all(|b| b["max_tokens"] == json!(1) && b["echo"] == json!(true)));
}

#[tokio::test]
async fn multi_token_verbalizers_are_scored_exactly() {
    let fake = Fake::start(State::default()).await;
    let b = backend(&cfg(vec![fake.url()]));
    let d = b
        .classify(vec![ClassifyRequest {
            context: "Is it so? Answer:".into(),
            classes: vec![vec!["very subjective".into()], vec!["objective".into()]],
            reduce: VerbalizerReduce::Sum,
        }])
        .await
        .expect("classify");
    // The fake's tokens: " very" + " subjective" vs " objective"; the unspaced variants merge
    // with ":" in the fake's tokenizer and are scored by the seam correction.
    let sent = fake.state.bodies.lock().expect("lock").clone();
    let prompts: Vec<String> = sent
        .iter()
        .filter_map(|b| b["prompt"].as_str().map(str::to_string))
        .collect();
    assert!(prompts.contains(&"Is it so? Answer: very subjective".to_string()));
    assert!(prompts.contains(&"Is it so? Answer: objective".to_string()));
    let p_sub = (expected(" very subjective")).exp();
    let p_obj = (expected(" objective")).exp();
    // The unspaced variant "very subjective" glues onto "Answer:" -> "Answer:very": the seam
    // correction scores log p("Answer:very subjective") - log p("Answer:") in the fake.
    let unspaced = |t: &str| {
        let whole: f64 = tokens_of(&format!(" Answer:{t}"))
            .iter()
            .map(|x| lp_of(&x.1))
            .sum();
        (whole - lp_of(" Answer:")).exp()
    };
    let m_sub = p_sub + unspaced("very subjective");
    let m_obj = p_obj + unspaced("objective");
    let want = m_sub / (m_sub + m_obj);
    assert!((d[0].probs[0] - want).abs() < 1e-9, "{:?} vs {want}", d[0]);
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after() {
    let fake = Fake::start(State::default()).await;
    fake.push(Fault::Status(429, Some("1")));
    let b = backend(&cfg(vec![fake.url()]));
    let t = Instant::now();
    let s = b.score(vec![req("The cat", " sat")]).await.expect("score");
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t.elapsed()
    );
    assert!((s[0].logprob - lp_of(" sat")).abs() < 1e-12);
    assert_eq!(b.attempts(), (2, 1));
}

#[tokio::test]
async fn server_errors_resets_and_truncated_bodies_are_retried() {
    let fake = Fake::start(State::default()).await;
    fake.push(Fault::Status(500, None));
    fake.push(Fault::Reset);
    fake.push(Fault::Truncated);
    fake.push(Fault::Status(503, None));
    let b = backend(&OpenAiConfig {
        max_retries: 5,
        ..cfg(vec![fake.url()])
    });
    let s = b.score(vec![req("The cat", " sat")]).await.expect("score");
    assert!((s[0].logprob - lp_of(" sat")).abs() < 1e-12);
    assert_eq!(b.attempts(), (5, 4));
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    let fake = Fake::start(State::default()).await;
    fake.push(Fault::Sleep(Duration::from_secs(3)));
    let b = backend(&OpenAiConfig {
        timeout_secs: 0.5,
        ..cfg(vec![fake.url()])
    });
    let t = Instant::now();
    let s = b.score(vec![req("The cat", " sat")]).await.expect("score");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!((s[0].logprob - lp_of(" sat")).abs() < 1e-12);
    assert_eq!(b.attempts().1, 1);
}

#[tokio::test]
async fn giving_up_says_so_and_how_to_fix_it() {
    let fake = Fake::start(State::default()).await;
    *fake.state.always.lock().expect("lock") = Some(Fault::Status(503, None));
    let b = backend(&OpenAiConfig {
        max_retries: 2,
        ..cfg(vec![fake.url()])
    });
    let e = b
        .score(vec![req("The cat", " sat")])
        .await
        .expect_err("gives up")
        .to_string();
    assert!(e.contains("gave up after 3 attempts"), "{e}");
    assert!(e.contains("503") && e.contains("max_retries"), "{e}");
    assert_eq!(fake.requests(), 3);
}

#[tokio::test]
async fn malformed_json_is_an_error_not_a_panic() {
    let fake = Fake::start(State::default()).await;
    fake.push(Fault::Malformed);
    let b = backend(&cfg(vec![fake.url()]));
    let e = b
        .score(vec![req("The cat", " sat")])
        .await
        .expect_err("malformed")
        .to_string();
    assert!(e.contains("malformed response"), "{e}");
}

#[tokio::test]
async fn a_bad_key_is_not_retried_and_never_printed() {
    let fake = Fake::start(State::default()).await;
    fake.push(Fault::Status(401, None));
    let c = cfg(vec![fake.url()]);
    let secret = "sk-test-secret-4242";
    let b =
        OpenAiBackend::with_capabilities(&c, ApiKey::new(Some(secret.into())), echo_caps(), 2048)
            .expect("backend");
    let e = b
        .score(vec![req("The cat", " sat")])
        .await
        .expect_err("401")
        .to_string();
    assert_eq!(fake.requests(), 1, "401 must not be retried");
    assert!(e.contains("API key") && e.contains("OPENAI_API_KEY"), "{e}");
    assert!(!e.contains(secret));
    assert!(
        !e.contains("injected 401"),
        "the refusal's body is not repeated (servers quote the key they got): {e}"
    );
    assert!(!format!("{b:?}").contains(secret));
    assert!(!b.model_id().contains(secret));
    // It was sent, as a bearer token.
    let auth = fake.state.auth.lock().expect("lock").clone();
    assert_eq!(auth.len(), 1);
    assert!(auth[0].ends_with(&format!("Bearer {secret}")));
}

#[tokio::test]
async fn credentials_in_a_base_url_are_refused_without_being_shown() {
    let secret = "sk-in-the-url-7777";
    for url in [
        format!("http://user:{secret}@127.0.0.1:9/v1"),
        format!("https://{secret}@api.example.com/v1"),
    ] {
        let c = cfg(vec![url.clone()]);
        let e = c.validate("hosted").expect_err("refused").to_string();
        assert!(!e.contains(secret), "{e}");
        assert!(
            e.contains("backends.hosted") && e.contains("api_key_env"),
            "{e}"
        );
        let e = OpenAiBackend::with_capabilities(&c, ApiKey::new(None), echo_caps(), 2048)
            .expect_err("refused")
            .to_string();
        assert!(!e.contains(secret), "{e}");
        assert!(e.contains("***@"), "{e}");
    }
}

#[tokio::test]
async fn a_404_names_the_url_and_model_fix() {
    let fake = Fake::start(State::default()).await;
    fake.push(Fault::Status(404, None));
    let b = backend(&cfg(vec![fake.url()]));
    let e = b
        .score(vec![req("The cat", " sat")])
        .await
        .expect_err("404")
        .to_string();
    assert_eq!(fake.requests(), 1);
    assert!(e.contains("base_url") && e.contains("model"), "{e}");
}

#[tokio::test]
async fn replicas_share_the_load_and_a_failing_one_is_skipped() {
    let good = Fake::start(State::default()).await;
    let bad = Fake::start(State::default()).await;
    *bad.state.always.lock().expect("lock") = Some(Fault::Status(502, None));
    let b = backend(&OpenAiConfig {
        max_in_flight: 1,
        ..cfg(vec![bad.url(), good.url()])
    });
    let reqs: Vec<ScoreRequest> = (0..10)
        .map(|i| req(&format!("Item {i} is"), " fine"))
        .collect();
    let s = b.score(reqs).await.expect("score");
    assert_eq!(s.len(), 10);
    // The bad replica failed once and was then skipped (cooling down).
    assert_eq!(bad.requests(), 1);
    assert_eq!(good.requests(), 10);

    // Two healthy replicas: requests spread by fewest in flight.
    let a = Fake::start(State::default()).await;
    let c = Fake::start(State::default()).await;
    *a.state.delay.lock().expect("lock") = Duration::from_millis(100);
    *c.state.delay.lock().expect("lock") = Duration::from_millis(100);
    let b = backend(&OpenAiConfig {
        max_in_flight: 4,
        ..cfg(vec![a.url(), c.url()])
    });
    let reqs: Vec<ScoreRequest> = (0..8)
        .map(|i| req(&format!("Item {i} is"), " fine"))
        .collect();
    b.score(reqs).await.expect("score");
    assert_eq!(a.requests() + c.requests(), 8);
    assert!(
        a.requests() >= 2 && c.requests() >= 2,
        "{} / {}",
        a.requests(),
        c.requests()
    );
}

#[tokio::test]
async fn requests_in_flight_are_bounded() {
    let fake = Fake::start(State::default()).await;
    *fake.state.delay.lock().expect("lock") = Duration::from_millis(100);
    let b = backend(&OpenAiConfig {
        max_in_flight: 3,
        ..cfg(vec![fake.url()])
    });
    let reqs: Vec<ScoreRequest> = (0..12)
        .map(|i| req(&format!("Item {i} is"), " fine"))
        .collect();
    let t = Instant::now();
    b.score(reqs).await.expect("score");
    let max = fake.state.max_in_flight.load(Ordering::SeqCst);
    assert!((2..=3).contains(&max), "max in flight {max}");
    // 12 requests of 100 ms, 3 at a time: at least 4 rounds, well under 12 sequential ones.
    let el = t.elapsed();
    assert!(
        el >= Duration::from_millis(390) && el < Duration::from_millis(2500),
        "{el:?}"
    );
}

#[tokio::test]
async fn the_probe_picks_echo_and_caches_it() {
    let fake = Fake::start(State::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let c = cfg(vec![fake.url()]);
    let b = OpenAiBackend::connect(&c, dir.path(), 2048, Some(dir.path()))
        .await
        .expect("connect");
    assert_eq!(b.scoring_mode(), ScoringMode::Echo);
    assert!(b.has_logprobs());
    assert!(b.report().line().contains("scoring by echo"));
    assert!(!b.report().cached_probe);
    let n = fake.requests();
    let b2 = OpenAiBackend::connect(&c, dir.path(), 2048, Some(dir.path()))
        .await
        .expect("connect again");
    assert_eq!(
        fake.requests(),
        n,
        "the second connect must use the cached probe"
    );
    assert!(b2.report().cached_probe);
}

/// A server that answers arrays of prompts gets several prompts per scoring request (up to
/// `prompts_per_request`, in prefix order, through the call cache, which stores each request's
/// answers), with the scores of one-by-one requests; one that refuses arrays (as
/// llama-cpp-python does, with a 500) is probed once, without retries, and gets one each.
#[tokio::test]
async fn prompts_are_batched_where_the_server_takes_arrays_and_not_where_it_refuses() {
    let targets: Vec<String> = (0..10).map(|i| format!(" answer number {i}")).collect();
    let requests: Vec<ScoreRequest> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| req(if i % 2 == 0 { "Even: the" } else { "Odd: the" }, t))
        .collect();
    for arrays in [true, false] {
        let fake = Fake::start(State {
            arrays,
            ..State::default()
        })
        .await;
        let dir = tempfile::tempdir().expect("tempdir");
        let c = OpenAiConfig {
            prompts_per_request: 4,
            ..cfg(vec![fake.url()])
        };
        let b = OpenAiBackend::connect(&c, dir.path(), 2048, None)
            .await
            .expect("connect");
        let line = b.report().line();
        assert_eq!(b.report().capabilities.prompt_arrays, arrays, "{line}");
        assert!(
            line.contains(if arrays {
                "prompt arrays"
            } else {
                "no prompt arrays"
            }),
            "{line}"
        );
        let probed = fake.requests();
        let (_, retries) = b.attempts();
        assert_eq!(retries, 0, "a refused array is not retried");
        let cached = CachedBackend::new(Arc::new(b), &dir.path().join("cache")).expect("cache");
        let scores = cached.score(requests.clone()).await.expect("scores");
        for (s, t) in scores.iter().zip(&targets) {
            assert!((s.logprob - expected(t)).abs() < 1e-9, "{t}: {}", s.logprob);
        }
        let sent: Vec<Value> = fake.state.bodies.lock().expect("lock")[probed..].to_vec();
        let per_request: Vec<usize> = sent
            .iter()
            .map(|b| b["prompt"].as_array().map_or(1, Vec::len))
            .collect();
        if arrays {
            assert_eq!(per_request.iter().sum::<usize>(), 10);
            assert_eq!(sent.len(), 3, "10 prompts, 4 per request: {per_request:?}");
            // Prefix order: the "Even" prompts go out together, before the "Odd" ones.
            let mut all: Vec<String> = sent.iter().flat_map(prompts_of).collect();
            let in_order = all.clone();
            all.sort();
            assert_eq!(in_order, all);
        } else {
            assert_eq!(per_request, vec![1; 10]);
        }
        // Asked again, the call cache answers everything.
        let n = fake.requests();
        cached.score(requests.clone()).await.expect("cached scores");
        assert_eq!(fake.requests(), n);
    }
}

#[tokio::test]
async fn a_misaligned_echo_falls_back_and_an_explicit_echo_is_refused() {
    let fake = Fake::start(State {
        misaligned: true,
        ..State::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let c = cfg(vec![fake.url()]);
    let b = OpenAiBackend::connect(&c, dir.path(), 2048, None)
        .await
        .expect("connect");
    assert_eq!(b.scoring_mode(), ScoringMode::TopLogprobs);
    assert!(!b.has_logprobs());
    assert!(b.report().capabilities.echo_misaligned);
    let e = OpenAiBackend::connect(
        &OpenAiConfig {
            scoring: ScoringMode::Echo,
            ..c.clone()
        },
        dir.path(),
        2048,
        None,
    )
    .await
    .expect_err("explicit echo")
    .to_string();
    assert!(e.contains("shifted by one") && e.contains("auto"), "{e}");
    // Free-text scoring is refused with the reason; classes come from the top log-probs.
    let e = b
        .score(vec![req("The cat", " sat")])
        .await
        .expect_err("no free text")
        .to_string();
    assert!(e.contains("no prompt log-probabilities"), "{e}");
    let d = b
        .classify(vec![ClassifyRequest {
            context: "Answer:".into(),
            classes: vec![vec!["yes".into()], vec!["no".into()]],
            reduce: VerbalizerReduce::Sum,
        }])
        .await
        .expect("classify");
    let want = (-1.0f64).exp() / ((-1.0f64).exp() + (-2.0f64).exp());
    assert!((d[0].probs[0] - want).abs() < 1e-9, "{:?}", d[0]);
}

#[tokio::test]
async fn a_server_without_echo_gives_top_logprobs() {
    let fake = Fake::start(State {
        no_echo: true,
        ..State::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let b = OpenAiBackend::connect(&cfg(vec![fake.url()]), dir.path(), 2048, None)
        .await
        .expect("connect");
    assert_eq!(b.scoring_mode(), ScoringMode::TopLogprobs);
    assert_eq!(b.report().capabilities.top_logprobs, Some(20));
}

#[tokio::test]
async fn the_call_cache_re_sends_nothing_answered_before() {
    let fake = Fake::start(State::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let reqs = vec![req("The cat", " sat"), req("A dog", " ran far")];
    let first = {
        let c = CachedBackend::new(Arc::new(backend(&cfg(vec![fake.url()]))), dir.path())
            .expect("cache");
        c.score(reqs.clone()).await.expect("score")
    };
    let sent = fake.requests();
    assert_eq!(sent, 2);
    let c =
        CachedBackend::new(Arc::new(backend(&cfg(vec![fake.url()]))), dir.path()).expect("reopen");
    let mut more = reqs.clone();
    more.push(req("A bird", " flew"));
    let again = c.score(more).await.expect("score");
    assert_eq!(again[..2], first[..]);
    assert_eq!(
        fake.requests(),
        sent + 1,
        "only the new request reached the server"
    );
}

#[tokio::test]
async fn generation_keeps_dln_stop_rules_and_per_sample_seeds() {
    let fake = Fake::start(State::default()).await;
    let b = backend(&cfg(vec![fake.url()]));
    let g = b
        .generate(vec![GenerateRequest {
            n: 3,
            seed: 7,
            temperature: 0.7,
            ..GenerateRequest::greedy(Prompt::raw("Say:"), 8, vec!["\n".into()])
        }])
        .await
        .expect("generate");
    assert_eq!(g[0].len(), 3);
    assert!(g[0].iter().all(|s| s.text == " ok"));
    let bodies = fake.state.bodies.lock().expect("lock").clone();
    let seeds: std::collections::HashSet<u64> =
        bodies.iter().filter_map(|b| b["seed"].as_u64()).collect();
    assert_eq!(seeds.len(), 3, "one seed per sample");
    assert!(bodies.iter().all(|b| b["stop"] == json!(["\n"])));
}

/// The HTTP backend, recording every request (at the `Backend` level) it answered.
struct Recording {
    inner: OpenAiBackend,
    answered: Arc<Mutex<Vec<String>>>,
}

impl Recording {
    fn note<R: serde::Serialize>(&self, op: &str, reqs: &[R]) {
        let mut a = self.answered.lock().expect("lock");
        for r in reqs {
            a.push(format!(
                "{op} {}",
                serde_json::to_string(r).unwrap_or_default()
            ));
        }
    }
}

/// A recorder notes what it answered and changes nothing else: every other method (the chat
/// text, requests per call, progress) is the inner backend's, as production sees it.
#[async_trait::async_trait]
impl dln::llm::BackendLayer for Recording {
    fn inner(&self) -> &dyn Backend {
        &self.inner
    }
    async fn generate(
        &self,
        r: Vec<GenerateRequest>,
    ) -> dln::llm::LlmResult<Vec<Vec<dln::llm::Generation>>> {
        let out = self.inner.generate(r.clone()).await?;
        self.note("generate", &r);
        Ok(out)
    }
    async fn score(&self, r: Vec<ScoreRequest>) -> dln::llm::LlmResult<Vec<dln::llm::Score>> {
        let out = self.inner.score(r.clone()).await?;
        self.note("score", &r);
        Ok(out)
    }
    async fn classify(
        &self,
        r: Vec<ClassifyRequest>,
    ) -> dln::llm::LlmResult<Vec<dln::llm::ClassDistribution>> {
        let out = self.inner.classify(r.clone()).await?;
        self.note("classify", &r);
        Ok(out)
    }
}

/// A run whose server goes down mid-run is left paused (not failed) after its retries, saying
/// why, with a checkpoint; resumed once the server is back — in the same session, or after a
/// stop by `dln resume` — it finishes with the same prompts as an undisturbed run and asks
/// nothing that was answered before the failure (the call cache stores each HTTP answer as it
/// arrives, so even a batch cut short keeps what it got).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_server_fails_after_retries_pauses_and_resumes_without_resending() {
    use dln::config::Config;
    use dln::dln::events::{Command, Event, RunState, StopReason};
    use dln::run::{Session, SessionOptions};

    let config = || {
        let mut c = Config::parse(
            &common::session::tiny_config_text(1),
            std::path::Path::new("t.toml"),
        )
        .expect("config");
        c.set("train.iterations", "2").expect("iterations");
        c
    };
    let options =
        |out: &std::path::Path, url: String, log: Arc<Mutex<Vec<String>>>| SessionOptions {
            out_dir: Some(out.to_path_buf()),
            backend: Some(Arc::new(Recording {
                inner: backend(&OpenAiConfig {
                    max_retries: 1,
                    retry_base_ms: 5,
                    ..cfg(vec![url])
                }),
                answered: log,
            })),
            ..Default::default()
        };
    let unavailable = |e: &Event| matches!(e, Event::BackendUnavailable { .. });
    let no_failure = |seen: &[Event]| {
        assert!(
            !seen.iter().any(|e| matches!(
                e,
                Event::RunFailed { .. }
                    | Event::StateChanged {
                        state: RunState::Failed
                    }
            )),
            "a server that is down fails no run: {seen:?}"
        );
    };
    let no_resend = |log: &[String], at: usize| {
        for r in &log[at..] {
            assert!(
                !log[..at].contains(r),
                "asked again for a request answered before the failure: {r}"
            );
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");

    // Undisturbed, for reference.
    let calm = Fake::start(State::default()).await;
    let all = Arc::new(Mutex::new(Vec::new()));
    let s = Session::start(
        config(),
        options(&dir.path().join("calm"), calm.url(), all.clone()),
    )
    .await
    .expect("start");
    let (reference, _) = common::session::run_to_end(s).await;
    let reference = reference.expect("the undisturbed run finishes");
    let total = calm.requests();
    assert!(total > 10, "{total}");
    let mut reference_asked = all.lock().expect("lock").clone();
    reference_asked.sort();

    // The server goes down half-way: the run pauses and says why.
    let fake = Fake::start(State::default()).await;
    *fake.state.fail_after.lock().expect("lock") = Some(total / 2);
    let run_dir = dir.path().join("run");
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut s = Session::start(config(), options(&run_dir, fake.url(), log.clone()))
        .await
        .expect("start");
    let mut seen = Vec::new();
    common::session::until(&mut s, &mut seen, unavailable).await;
    common::session::until(&mut s, &mut seen, common::session::paused).await;
    let Some(Event::BackendUnavailable { message }) = seen.iter().find(|e| unavailable(e)) else {
        unreachable!()
    };
    assert!(
        message.contains("503") && message.contains("gave up after 2 attempts"),
        "{message}"
    );
    no_failure(&seen);
    assert!(
        run_dir.join("checkpoint.json").is_file(),
        "a checkpoint on pause"
    );
    let at = log.lock().expect("lock").len();
    assert!(at > 0);

    // Resumed while still down: it tries again and pauses again.
    s.commands.send(Command::Resume).expect("resume");
    common::session::until(&mut s, &mut seen, unavailable).await;
    common::session::until(&mut s, &mut seen, common::session::paused).await;
    assert_eq!(
        log.lock().expect("lock").len(),
        at,
        "nothing answered while down"
    );

    // Back up: resumed, it finishes as the undisturbed run did.
    *fake.state.fail_after.lock().expect("lock") = None;
    s.commands.send(Command::Resume).expect("resume");
    let (resumed, rest) = common::session::run_to_end(s).await;
    seen.extend(rest);
    no_failure(&seen);
    let resumed = resumed.expect("the resumed run finishes");
    assert!(!resumed.stopped_early);
    assert_eq!(resumed.best_prompts, reference.best_prompts);
    let mut asked = log.lock().expect("lock").clone();
    no_resend(&asked, at);
    asked.sort();
    assert_eq!(
        asked, reference_asked,
        "together, exactly what the undisturbed run asked"
    );

    // Down again in another run, and nobody resumes it (a headless run): a stop leaves it
    // resumable, saying why; `dln resume` once the server is back finishes it.
    let fake = Fake::start(State::default()).await;
    *fake.state.fail_after.lock().expect("lock") = Some(total / 2);
    let run_dir = dir.path().join("stopped");
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut s = Session::start(config(), options(&run_dir, fake.url(), log.clone()))
        .await
        .expect("start");
    let mut seen = Vec::new();
    common::session::until(&mut s, &mut seen, common::session::paused).await;
    s.commands.send(Command::Stop).expect("stop");
    let (stopped, rest) = common::session::run_to_end(s).await;
    seen.extend(rest);
    no_failure(&seen);
    let stopped = stopped.expect("a stopped run ends without error");
    assert!(stopped.stopped_early);
    assert_eq!(stopped.stop_reason, Some(StopReason::BackendUnavailable));
    let info = dln::run::runs::run_info(&run_dir).expect("a run");
    assert_eq!(info.status_label(), "stopped (backend unavailable)");
    let at = log.lock().expect("lock").len();
    *fake.state.fail_after.lock().expect("lock") = None;
    let s = Session::resume(&run_dir, options(&run_dir, fake.url(), log.clone()))
        .await
        .expect("resume");
    let (resumed, _) = common::session::run_to_end(s).await;
    let resumed = resumed.expect("the resumed run finishes");
    assert_eq!(resumed.best_prompts, reference.best_prompts);
    let mut asked = log.lock().expect("lock").clone();
    no_resend(&asked, at);
    asked.sort();
    assert_eq!(asked, reference_asked);
}
