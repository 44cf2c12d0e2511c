//! The HTTP side of the OpenAI backend: one connection-pooling `reqwest` client, a bound on the
//! requests in flight, replicas picked by fewest in flight (a failing one is skipped until it
//! answers again), retries with exponential backoff and jitter on 429, 5xx, timeouts and
//! connection resets (honouring `Retry-After`), and clear, non-retried errors for a bad key, a
//! wrong model or URL and a context-length refusal.
//!
//! The API key lives only in [`ApiKey`], whose `Debug` and `Display` are redacted, and is sent
//! only as the `Authorization` header; no error message built here contains it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;

use super::wire::{error_message, is_context_length};
use crate::llm::{LlmError, LlmResult};

/// A secret API key. Printing it in any form shows `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKey(Option<String>);

impl ApiKey {
    pub fn new(key: Option<String>) -> Self {
        ApiKey(key.map(|k| k.trim().to_string()).filter(|k| !k.is_empty()))
    }

    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    fn secret(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// `text` with every occurrence of the key (and of its longer fragments a server may quote)
    /// replaced by `<redacted>`.
    pub fn scrub(&self, text: &str) -> String {
        let Some(k) = self.0.as_deref() else {
            return text.to_string();
        };
        let mut out = text.replace(k, "<redacted>");
        // "Incorrect API key provided: sk-abc…xyz": a quoted head or tail of the key.
        if k.len() >= 12 {
            for part in [&k[..k.len() / 2], &k[k.len() / 2..]] {
                out = out.replace(part, "<redacted>");
            }
        }
        out
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ApiKey(<redacted>)"
        } else {
            "ApiKey(none)"
        })
    }
}

impl std::fmt::Display for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How the transport behaves under load and faults.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    pub max_in_flight: usize,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How long a replica that failed is skipped (unless every replica is failing).
    pub replica_cooldown: Duration,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            max_in_flight: 8,
            timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            max_retries: 5,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            replica_cooldown: Duration::from_secs(10),
        }
    }
}

/// One base URL of the backend.
struct Replica {
    base_url: String,
    in_flight: AtomicUsize,
    /// Until when the replica is skipped after a failure.
    failed_until: Mutex<Option<Instant>>,
}

/// What one attempt came to.
enum Attempt {
    Ok(Vec<u8>),
    /// Worth another try, after at least this long (a `Retry-After`), on another replica if any.
    Retry {
        message: String,
        after: Option<Duration>,
    },
    Fatal(LlmError),
}

/// Counters of the transport, for reports and tests.
#[derive(Debug, Default)]
pub struct TransportStats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
}

/// The pooled client over the replicas.
pub struct Transport {
    http: reqwest::Client,
    replicas: Vec<Replica>,
    key: ApiKey,
    permits: Arc<Semaphore>,
    opts: TransportOptions,
    pub stats: TransportStats,
    /// Set by a pause: no request is sent until it is released.
    pub hold: crate::llm::hold::Hold,
}

impl Transport {
    pub fn new(base_urls: &[String], key: ApiKey, opts: TransportOptions) -> LlmResult<Self> {
        if base_urls.is_empty() {
            return Err(LlmError::InvalidRequest(
                "no base URL: set `base_url` on the backend or OPENAI_BASE_URL".into(),
            ));
        }
        let mut replicas = Vec::new();
        for u in base_urls {
            let u = u.trim().trim_end_matches('/').to_string();
            let parsed = reqwest::Url::parse(&u).map_err(|e| {
                LlmError::InvalidRequest(format!(
                    "base URL {:?} is not a URL ({e}); write it like http://127.0.0.1:8000/v1",
                    redacted_url(&u)
                ))
            })?;
            if !parsed.username().is_empty() || parsed.password().is_some() {
                return Err(LlmError::InvalidRequest(credentials_in_url(&u)));
            }
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(LlmError::InvalidRequest(format!(
                    "base URL {u:?} must start with http:// or https://"
                )));
            }
            replicas.push(Replica {
                base_url: u,
                in_flight: AtomicUsize::new(0),
                failed_until: Mutex::new(None),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .pool_max_idle_per_host(opts.max_in_flight.max(1))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| LlmError::Backend(format!("cannot create the HTTP client: {e}")))?;
        Ok(Transport {
            http,
            replicas,
            key,
            permits: Arc::new(Semaphore::new(opts.max_in_flight.max(1))),
            opts,
            stats: TransportStats::default(),
            hold: Default::default(),
        })
    }

    /// The first base URL (what the probe cache and messages name).
    pub fn base_url(&self) -> &str {
        &self.replicas[0].base_url
    }

    pub fn base_urls(&self) -> Vec<String> {
        self.replicas.iter().map(|r| r.base_url.clone()).collect()
    }

    pub fn options(&self) -> &TransportOptions {
        &self.opts
    }

    /// The replica to use next: fewest in flight among those not cooling down after a failure
    /// (all of them when every one is).
    fn pick(&self, avoid: Option<usize>) -> usize {
        let now = Instant::now();
        let healthy = |i: usize| {
            self.replicas[i]
                .failed_until
                .lock()
                .map(|f| f.is_none_or(|t| t <= now))
                .unwrap_or(true)
        };
        let candidates: Vec<usize> = (0..self.replicas.len())
            .filter(|i| healthy(*i) && Some(*i) != avoid)
            .collect();
        let candidates = if candidates.is_empty() {
            (0..self.replicas.len())
                .filter(|i| Some(*i) != avoid || self.replicas.len() == 1)
                .collect()
        } else {
            candidates
        };
        candidates
            .into_iter()
            .min_by_key(|i| self.replicas[*i].in_flight.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// POSTs `body` to `path` (relative to a base URL, e.g. `/completions`) and returns the
    /// response body, retrying what is worth retrying.
    pub async fn post<B: Serialize>(&self, path: &str, body: &B) -> LlmResult<Vec<u8>> {
        self.post_tries(path, body, self.opts.max_retries).await
    }

    /// [`post`](Self::post) with no retry: for the probe's questions, where a refusal (even a
    /// 500) is the answer.
    pub async fn post_once<B: Serialize>(&self, path: &str, body: &B) -> LlmResult<Vec<u8>> {
        self.post_tries(path, body, 0).await
    }

    async fn post_tries<B: Serialize>(
        &self,
        path: &str,
        body: &B,
        max_retries: u32,
    ) -> LlmResult<Vec<u8>> {
        let body = serde_json::to_vec(body)
            .map_err(|e| LlmError::InvalidRequest(format!("cannot encode the request: {e}")))?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| LlmError::Backend("the HTTP backend was shut down".into()))?;
        let mut last_replica = None;
        let mut attempt = 0u32;
        let mut delays = self.backoff_schedule(max_retries);
        loop {
            self.hold.wait().await;
            let _working = self.hold.working();
            let r = self.pick(last_replica.filter(|_| self.replicas.len() > 1));
            let replica = &self.replicas[r];
            let url = format!("{}{path}", replica.base_url);
            replica.in_flight.fetch_add(1, Ordering::Relaxed);
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let outcome = self.attempt(&url, &body).await;
            replica.in_flight.fetch_sub(1, Ordering::Relaxed);
            match outcome {
                Attempt::Ok(bytes) => {
                    if let Ok(mut f) = replica.failed_until.lock() {
                        *f = None;
                    }
                    return Ok(bytes);
                }
                Attempt::Fatal(e) => return Err(e),
                Attempt::Retry { message, after } => {
                    if let Ok(mut f) = replica.failed_until.lock() {
                        *f = Some(Instant::now() + self.opts.replica_cooldown);
                    }
                    let Some(delay) = delays.next().filter(|_| attempt < max_retries) else {
                        return Err(LlmError::Unavailable(format!(
                            "{url}: {message}; gave up after {} attempts (raise `max_retries` or \
                             `timeout_secs` on the backend, or check the server)",
                            attempt + 1
                        )));
                    };
                    // Never sooner than the server's `Retry-After`.
                    let wait =
                        after.map_or(delay, |ra| ra.max(delay.min(ra + self.opts.backoff_base)));
                    tracing::warn!(
                        "{url}: {message}; retry {} of {} in {:.1}s",
                        attempt + 1,
                        max_retries,
                        wait.as_secs_f64()
                    );
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    last_replica = Some(r);
                }
            }
        }
    }

    /// The waits before each retry (backon's exponential schedule): from `backoff_base`,
    /// doubling up to `backoff_max`, each with a random jitter of up to itself again.
    fn backoff_schedule(&self, max_retries: u32) -> impl Iterator<Item = Duration> {
        use backon::BackoffBuilder;
        backon::ExponentialBuilder::default()
            .with_min_delay(self.opts.backoff_base)
            .with_max_delay(self.opts.backoff_max)
            .with_max_times(max_retries as usize)
            .with_jitter()
            .build()
    }

    async fn attempt(&self, url: &str, body: &[u8]) -> Attempt {
        let mut req = self
            .http
            .post(url)
            .timeout(self.opts.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(k) = self.key.secret() {
            // Marked sensitive: kept out of reqwest's and hyper's debug output.
            req = req.bearer_auth(k);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return transport_error(&e, self.opts.timeout),
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = match resp.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) => return transport_error(&e, self.opts.timeout),
        };
        if status.is_success() {
            return Attempt::Ok(bytes);
        }
        let message = self.key.scrub(&error_message(&bytes));
        let code = status.as_u16();
        match code {
            // The body of a refused key is not repeated: servers quote the key they got.
            401 | 403 => Attempt::Fatal(LlmError::Backend(format!(
                "{url}: the server refused the API key ({code}); set the key in the environment \
                 variable the backend's `api_key_env` names (default OPENAI_API_KEY) or in the \
                 file `api_key_file` names"
            ))),
            404 => Attempt::Fatal(LlmError::Backend(format!(
                "{url}: not found (404: {message}); check the backend's `base_url` (it usually \
                 ends in /v1) and `model` (the server's /v1/models lists its names)"
            ))),
            408 | 409 | 425 | 429 => Attempt::Retry {
                message: format!("{code}: {message}"),
                after: retry_after,
            },
            500..=599 => {
                if is_context_length(&message) {
                    Attempt::Fatal(context_error(url, &message))
                } else {
                    Attempt::Retry {
                        message: format!("{code}: {message}"),
                        after: retry_after,
                    }
                }
            }
            _ if is_context_length(&message) => Attempt::Fatal(context_error(url, &message)),
            _ => Attempt::Fatal(LlmError::InvalidRequest(format!(
                "{url}: the server refused the request ({code}: {message})"
            ))),
        }
    }
}

/// `url` with any user name and password replaced by `***` (for messages about a URL that may
/// hold them).
pub fn redacted_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

/// The refusal of a base URL with credentials in it, which would be copied into every message,
/// event and cache naming the server.
pub fn credentials_in_url(url: &str) -> String {
    format!(
        "base URL {} holds a user name or password; take it out of the URL and give the key in \
         the environment variable the backend's `api_key_env` names (default OPENAI_API_KEY) or \
         in the file `api_key_file` names",
        redacted_url(url)
    )
}

fn context_error(url: &str, message: &str) -> LlmError {
    LlmError::Backend(format!(
        "{url}: the prompt is longer than the model's context ({message}); shorten the prompt \
         or the examples, lower `forward_max_tokens`, or serve the model with a longer context"
    ))
}

/// Timeouts, refused or reset connections and torn bodies are retried; a request that could
/// not even be built is not.
fn transport_error(e: &reqwest::Error, timeout: Duration) -> Attempt {
    if e.is_builder() {
        return Attempt::Fatal(LlmError::InvalidRequest(format!("bad request: {e}")));
    }
    let message = if e.is_timeout() {
        format!("no answer within {:.0}s (timeout)", timeout.as_secs_f64())
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        // The URL is in reqwest's own text; the key never is (it is a header).
        format!("connection failed ({})", without_url(e))
    };
    Attempt::Retry {
        message,
        after: None,
    }
}

/// reqwest's error text without the URL it prefixes (ours is already in the message).
fn without_url(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

/// `Retry-After` in seconds or as an HTTP date (RFC 9110), at most 10 minutes ahead; a date
/// in the past is no wait.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    let wait = match v.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Duration::from_secs_f64(s.min(600.0)),
        Ok(_) => return None,
        Err(_) => httpdate::parse_http_date(v)
            .ok()?
            .duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(Duration::from_secs(600)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_key_is_scrubbed_and_urls_lose_their_credentials() {
        let k = ApiKey::new(Some("sk-abcdef0123456789".into()));
        let quoted = "Incorrect API key provided: sk-abcdef01****. Or sk-abcdef0123456789";
        let s = k.scrub(quoted);
        assert!(!s.contains("sk-abcdef01") && !s.contains("23456789"), "{s}");
        assert_eq!(
            redacted_url("https://u:sk-x@host:8000/v1?q=a@b"),
            "https://***@host:8000/v1?q=a@b"
        );
        assert_eq!(
            redacted_url("http://127.0.0.1:8000/v1"),
            "http://127.0.0.1:8000/v1"
        );
    }

    #[test]
    fn key_never_prints() {
        let k = ApiKey::new(Some("sk-secret123".into()));
        assert!(!format!("{k:?}").contains("secret"));
        assert!(!format!("{k}").contains("secret"));
        assert!(k.is_set());
        assert!(!ApiKey::new(Some("  ".into())).is_set());
    }

    #[test]
    fn retry_after_is_read_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO),
            "a date in the past: no wait"
        );
        let soon = std::time::SystemTime::now() + Duration::from_secs(30);
        let w = parse_retry_after(&httpdate::fmt_http_date(soon)).expect("a date");
        assert!(
            w > Duration::from_secs(27) && w <= Duration::from_secs(30),
            "{w:?}"
        );
    }

    #[test]
    fn backoff_grows_to_its_cap_and_ends_after_the_retries() {
        let t = Transport::new(
            &["http://127.0.0.1:1/v1".to_string()],
            ApiKey::default(),
            TransportOptions {
                backoff_base: Duration::from_millis(100),
                backoff_max: Duration::from_millis(800),
                ..Default::default()
            },
        )
        .expect("transport");
        for _ in 0..20 {
            let d: Vec<Duration> = t.backoff_schedule(6).collect();
            assert_eq!(d.len(), 6, "one wait per retry");
            assert!(d[0] >= Duration::from_millis(100) && d[0] <= Duration::from_millis(200));
            assert!(d[5] >= Duration::from_millis(800) && d[5] <= Duration::from_millis(1600));
        }
    }

    #[test]
    fn bad_urls_are_refused_with_the_fix() {
        let e = Transport::new(
            &["localhost:8000".to_string()],
            ApiKey::default(),
            TransportOptions::default(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("http://"), "{e}");
    }
}
