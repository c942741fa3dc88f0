//! keyfence-upstream: the one way keyfence talks to exchanges over HTTP.
//!
//! One HTTP/1.1 client on hyper's connection API (`conn`: kept-alive connections per origin,
//! rustls on ring) with a per-attempt timeout; retries with exponential
//! backoff on connection failures, timeouts, 5xx and 429 (honouring `Retry-After`, within a cap);
//! errors that say who is at fault and whether a retry could help.
//!
//! Every attempt is built afresh by the caller's closure, because exchange signatures carry a
//! timestamp or a nonce: a retried request must be signed again, never replayed.
//! Requests that are not idempotent (placing an order) should use [`Retry::Never`]; a timeout
//! there does not mean the order was not placed.

pub mod cancel;
mod conn;
pub mod introspect;
pub mod market;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use keyfence_exchange::HttpRequest;

/// Who is at fault for a failure (pingora's `ErrorSource`, in keyfence's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The exchange: unreachable, slow, 5xx, rate limiting, a garbled answer.
    Exchange,
    /// keyfence itself or its configuration: a bad base URL, a request it could not build.
    Keyfence,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("invalid base URL `{0}`")]
    BadUrl(String),
    #[error("cannot build the request: {0}")]
    Build(String),
    #[error("{url}: no answer within {timeout_ms} ms (attempt {attempts})")]
    Timeout {
        url: String,
        timeout_ms: u128,
        attempts: u32,
    },
    #[error("{url}: cannot connect (attempt {attempts}): {reason}")]
    Connect {
        url: String,
        attempts: u32,
        reason: String,
    },
    #[error("{url}: the exchange answered {status} (attempt {attempts})")]
    Status {
        url: String,
        status: u16,
        attempts: u32,
        /// The last answer, for callers that render it.
        response: Box<UpstreamResponse>,
    },
    #[error("{url}: {reason} (attempt {attempts})")]
    Transport {
        url: String,
        attempts: u32,
        reason: String,
    },
}

impl UpstreamError {
    pub fn blame(&self) -> Blame {
        match self {
            UpstreamError::BadUrl(_) | UpstreamError::Build(_) => Blame::Keyfence,
            UpstreamError::Timeout { .. }
            | UpstreamError::Connect { .. }
            | UpstreamError::Status { .. }
            | UpstreamError::Transport { .. } => Blame::Exchange,
        }
    }

    /// Whether trying again later could succeed.
    pub fn retryable(&self) -> bool {
        match self {
            UpstreamError::BadUrl(_) | UpstreamError::Build(_) => false,
            UpstreamError::Timeout { .. }
            | UpstreamError::Connect { .. }
            | UpstreamError::Transport { .. } => true,
            UpstreamError::Status { status, .. } => *status == 429 || *status >= 500,
        }
    }
}

/// An exchange's answer. Statuses that are not retried (2xx, 3xx, 4xx but 429) come back as
/// `Ok`: what a 401 or 400 means is the caller's business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// How many attempts it took (1 = first try).
    pub attempts: u32,
}

impl UpstreamResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Whether a request may be sent more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Reads and introspection: retry on failures the exchange is to blame for.
    Idempotent,
    /// Orders, withdrawals: one attempt only.
    Never,
}

/// Timeouts and backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Per attempt, connection included.
    pub timeout: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this is not waited for: the error is returned instead.
    pub max_retry_after: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            timeout: Duration::from_secs(10),
            max_attempts: 4,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl Policy {
    /// The wait before attempt `next` (2, 3, ...), given the last answer's `Retry-After`.
    pub fn backoff(&self, next: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .base_backoff
            .saturating_mul(1u32 << next.saturating_sub(2).min(16));
        let exp = exp.min(self.max_backoff);
        match retry_after {
            Some(ra) => ra.max(exp),
            None => exp,
        }
    }
}

/// The HTTP client to exchanges. Cheap to clone; share one per process.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: Arc<conn::Client>,
    policy: Policy,
    /// Base URLs parsed once (a gateway forwards to one or two per venue): each request then
    /// adds only its path and query.
    bases: Arc<RwLock<HashMap<String, Arc<conn::Base>>>>,
}

/// The proxy variables set (non-empty) in an environment read through `get`: the client
/// never uses them, and start-up names each in a warning.
fn proxy_settings(get: impl Fn(&str) -> Option<std::ffi::OsString>) -> Vec<&'static str> {
    [
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "HTTP_PROXY",
        "http_proxy",
    ]
    .into_iter()
    .filter(|var| get(var).is_some_and(|v| !v.is_empty()))
    .collect()
}

/// A base URL as an error may show it: anything before an `@` in its authority (a user and
/// password, refused as a base) is replaced, whether or not the rest parses.
fn shown(base: &str) -> String {
    let Some((scheme, rest)) = base.split_once("://") else {
        return base.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => base.to_owned(),
    }
}

/// Sent unless the request carries its own.
const USER_AGENT: &str = concat!("keyfence/", env!("CARGO_PKG_VERSION"));

impl Upstream {
    /// A client with `policy`. The process must have installed a rustls crypto provider
    /// (keyfence installs ring's at start-up).
    pub fn new(policy: Policy) -> Result<Self, UpstreamError> {
        Self::with_roots(policy, &[])
    }

    /// As [`Upstream::new`], also trusting these PEM certificates (the simulator's, in tests).
    pub fn with_roots(policy: Policy, extra_roots_pem: &[&str]) -> Result<Self, UpstreamError> {
        use tokio_rustls::rustls::pki_types::{CertificateDer, pem::PemObject};
        let mut roots = Vec::new();
        for pem in extra_roots_pem {
            let before = roots.len();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                roots.push(
                    cert.map_err(|e| UpstreamError::Build(format!("bad root certificate: {e}")))?,
                );
            }
            if roots.len() == before {
                return Err(UpstreamError::Build(
                    "bad root certificate: no certificate in the PEM text".into(),
                ));
            }
        }
        for var in proxy_settings(|v| std::env::var_os(v)) {
            tracing::warn!(
                variable = var,
                "keyfence connects to exchanges directly; this proxy setting is not used"
            );
        }
        // Connecting gets nine tenths of an attempt's time (see conn::Client).
        let client = conn::Client::new(roots, policy.timeout.mul_f64(0.9))
            .map_err(|e| UpstreamError::Build(format!("cannot build the HTTP client: {e}")))?;
        Ok(Upstream {
            client: Arc::new(client),
            policy,
            bases: Arc::default(),
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Send to `base_url` the request `build(attempt)` makes (attempt counts from 1; sign it
    /// there). Retries per `retry` and the policy.
    pub async fn send<F>(
        &self,
        base_url: &str,
        retry: Retry,
        mut build: F,
    ) -> Result<UpstreamResponse, UpstreamError>
    where
        F: FnMut(u32) -> Result<HttpRequest, String>,
    {
        let base = base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(UpstreamError::BadUrl(shown(base_url)));
        }
        let max = match retry {
            Retry::Idempotent => self.policy.max_attempts.max(1),
            Retry::Never => 1,
        };
        let mut attempt = 1;
        loop {
            let req = build(attempt).map_err(UpstreamError::Build)?;
            // Errors name the URL without its query: Binance signs in the query, and an error
            // message (to a bot, a log, the journal) must not hand out a replayable request.
            let url = format!("{base}{}", req.path);
            let result = self.once(base, &url, &req, attempt).await;
            let retry_after = match &result {
                Ok(resp) => match resp.status {
                    429 | 500..=599 => resp.header("retry-after").and_then(parse_retry_after),
                    _ => return Ok(resp.clone()),
                },
                Err(e) if !e.retryable() => return result,
                Err(_) => None,
            };
            if attempt >= max {
                return match result {
                    Ok(resp) => Err(UpstreamError::Status {
                        url,
                        status: resp.status,
                        attempts: attempt,
                        response: Box::new(resp),
                    }),
                    Err(e) => Err(e),
                };
            }
            if retry_after.is_some_and(|ra| ra > self.policy.max_retry_after) {
                return match result {
                    Ok(resp) => Err(UpstreamError::Status {
                        url,
                        status: resp.status,
                        attempts: attempt,
                        response: Box::new(resp),
                    }),
                    Err(e) => Err(e),
                };
            }
            let wait = self.policy.backoff(attempt + 1, retry_after);
            tracing::debug!(%url, attempt, wait_ms = wait.as_millis() as u64, "retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn once(
        &self,
        base: &str,
        url: &str,
        req: &HttpRequest,
        attempt: u32,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let (base, request) = self.request(base, req)?;
        let answer =
            tokio::time::timeout(self.policy.timeout, self.client.send(&base.origin, request))
                .await
                .map_err(|_| UpstreamError::Timeout {
                    url: url.to_owned(),
                    timeout_ms: self.policy.timeout.as_millis(),
                    attempts: attempt,
                })?
                .map_err(|f| match f {
                    conn::Failure::Connect(reason) => UpstreamError::Connect {
                        url: url.to_owned(),
                        attempts: attempt,
                        reason,
                    },
                    conn::Failure::Transport(reason) => UpstreamError::Transport {
                        url: url.to_owned(),
                        attempts: attempt,
                        reason,
                    },
                })?;
        let (parts, body) = answer.into_parts();
        let headers = parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        Ok(UpstreamResponse {
            status: parts.status.as_u16(),
            headers,
            body: body.into(),
            attempts: attempt,
        })
    }
}

impl Upstream {
    /// The base's origin, and the request to send there: `base`'s path + the request's path
    /// and query as the target (what parsing `{base}{path}?{query}` gives), `Host` from the
    /// base, the request's headers, a `User-Agent` and `Accept` unless it has its own.
    fn request(
        &self,
        base: &str,
        req: &HttpRequest,
    ) -> Result<(Arc<conn::Base>, http::Request<Full<Bytes>>), UpstreamError> {
        let known = self
            .bases
            .read()
            .ok()
            .and_then(|bases| bases.get(base).cloned());
        let b = match known {
            Some(b) => b,
            None => {
                let b = Arc::new(
                    conn::Base::parse(base).ok_or_else(|| UpstreamError::BadUrl(shown(base)))?,
                );
                if let Ok(mut bases) = self.bases.write() {
                    // Bounded: a process talks to a handful of bases.
                    if bases.len() >= 64 {
                        bases.clear();
                    }
                    bases.insert(base.to_owned(), Arc::clone(&b));
                }
                b
            }
        };
        let method = http::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| UpstreamError::Build(format!("bad method `{}`", req.method)))?;
        let mut builder = http::Request::builder()
            .method(method)
            .uri(target(&b.url, req))
            .header(http::header::HOST, b.host_header.clone());
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let mut request = builder
            .body(Full::new(Bytes::from(req.body.clone())))
            .map_err(|e| UpstreamError::Build(e.to_string()))?;
        let headers = request.headers_mut();
        for (name, value) in [
            (http::header::USER_AGENT, USER_AGENT),
            (http::header::ACCEPT, "*/*"),
        ] {
            if !headers.contains_key(&name) {
                headers.insert(name, http::HeaderValue::from_static(value));
            }
        }
        Ok((b, request))
    }
}

/// The request target (path and query) of `base` joined with the request's path and query:
/// what parsing `{base}{path}?{query}` as a URL gives (dot segments resolved, what a URL may not
/// carry percent-encoded), as the client that came before this one sent it.
fn target(base: &url::Url, req: &HttpRequest) -> String {
    if let Some(t) = plain_target(base, req) {
        return t;
    }
    let mut url = base.clone();
    let path = format!("{}{}", url.path().trim_end_matches('/'), req.path);
    url.set_path(&path);
    url.set_query((!req.query.is_empty()).then_some(req.query.as_str()));
    url[url::Position::BeforePath..].to_owned()
}

/// [`target`] without a URL parse, when the parse would change nothing: the base has no path,
/// and the path and query hold only bytes that a URL keeps as they are, with no dot segment
/// (no `.` after a `/`, no encoded dot) and no backslash. An exchange's own paths and signed
/// queries are of this kind; anything else takes the parse.
fn plain_target(base: &url::Url, req: &HttpRequest) -> Option<String> {
    // Kept as they are in a path and in a query (special schemes), and never a separator
    // other than `/` in the path or `&`/`=` in the query.
    fn plain(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"-_~!$&()*+,;=:@/%".contains(&b)
    }
    let path = req.path.as_bytes();
    let query = req.query.as_bytes();
    let no_dots =
        !req.path.contains("/.") && !req.path.contains("%2e") && !req.path.contains("%2E");
    let dots_ok = |b: &[u8]| b.iter().all(|&c| plain(c) || c == b'.');
    if base.path() != "/"
        || base.query().is_some()
        || base.fragment().is_some()
        || path.first() != Some(&b'/')
        || !no_dots
        || !dots_ok(path)
        || !query.iter().all(|&c| plain(c) || c == b'.' || c == b'?')
    {
        return None;
    }
    let mut t = String::with_capacity(req.path.len() + 1 + req.query.len());
    t.push_str(&req.path);
    if !req.query.is_empty() {
        t.push('?');
        t.push_str(&req.query);
    }
    Some(t)
}

pub(crate) fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// `Retry-After` in seconds (the HTTP-date form is not used by the venues; it counts as absent).
fn parse_retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cached base plus path and query is the target (and `Host`) a parse of the whole URL
    /// gives.
    #[test]
    fn a_cached_base_joins_as_a_full_parse_would() {
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let up = Upstream::new(Policy::default()).unwrap();
        let cases = [
            (
                "http://127.0.0.1:9101",
                "/api/v3/order",
                "symbol=BTCUSDT&signature=ab%2Fc",
            ),
            ("https://api.example.com/prefix", "/v5/order/create", ""),
            (
                "http://[::1]:8080",
                "/0/private/Add%20Order",
                "a=1&b=%E2%82%AC",
            ),
            ("http://localhost:1/base/", "/a//b/", "x=y+z"),
        ];
        for _ in 0..2 {
            // Twice: the second time from the cache.
            for (base, path, query) in cases {
                let mut req = HttpRequest::new("GET", path);
                req.query = query.to_owned();
                let base = base.trim_end_matches('/');
                let whole = url::Url::parse(&format!("{base}{}", req.target())).unwrap();
                let (_, sent) = up.request(base, &req).unwrap();
                assert_eq!(
                    sent.uri().to_string(),
                    &whole[url::Position::BeforePath..],
                    "{base} {path} {query}"
                );
                let host = sent.headers()[http::header::HOST].to_str().unwrap();
                assert_eq!(
                    host,
                    &whole[url::Position::BeforeHost..url::Position::AfterPort]
                );
            }
        }
        assert!(matches!(
            up.request("not a url", &HttpRequest::new("GET", "/")),
            Err(UpstreamError::BadUrl(_))
        ));
    }

    /// The shortcut gives what the URL parse gives, whenever it is taken; here over every
    /// path and query made of up to three pieces from an alphabet of the bytes it accepts,
    /// the separators, dots and what a URL encodes or rewrites, and over paths of the venues.
    #[test]
    fn the_plain_target_is_what_the_parse_gives() {
        let alphabet = [
            "a", "Z", "0", "-", "_", "~", "!", "$", "&", "'", "(", ")", "*", "+", ",", ";", "=",
            ":", "@", "/", "%", "%2e", "%2E", "%41", ".", "..", "?", "#", " ", "\\", "\"", "<",
            ">", "`", "{", "|", "^", "[", "\u{7f}", "\u{1}", "\u{e9}",
        ];
        let mut words = vec![String::new()];
        for _ in 0..3 {
            let longer: Vec<String> = words
                .iter()
                .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
                .collect();
            words.extend(longer);
        }
        words.sort();
        words.dedup();
        let base = url::Url::parse("http://127.0.0.1:9101").unwrap();
        let parsed = |req: &HttpRequest| {
            let mut url = base.clone();
            let path = format!("{}{}", url.path().trim_end_matches('/'), req.path);
            url.set_path(&path);
            url.set_query((!req.query.is_empty()).then_some(req.query.as_str()));
            url[url::Position::BeforePath..].to_owned()
        };
        let mut taken = 0;
        let mut check = |path: &str, query: &str| {
            let mut req = HttpRequest::new("POST", "/");
            req.path = path.to_owned();
            req.query = query.to_owned();
            if let Some(fast) = plain_target(&base, &req) {
                taken += 1;
                assert_eq!(fast, parsed(&req), "path {path:?} query {query:?}");
            }
        };
        for w in &words {
            check(&format!("/{w}"), "a=1");
            check("/api/v3/order", w);
            check(&format!("/v5/{w}/x"), &format!("k={w}"));
        }
        for (path, query) in [
            (
                "/api/v3/order",
                "symbol=BTCUSDT&side=BUY&timestamp=1&signature=ab12",
            ),
            ("/api/v3/order", ""),
            ("/0/private/AddOrder", ""),
            ("/api/v5/trade/order", ""),
            (
                "/api/v3/brokerage/orders/historical/batch",
                "order_status=OPEN&limit=100",
            ),
        ] {
            check(path, query);
        }
        assert!(taken > 1000, "the shortcut was taken only {taken} times");
        for other in [
            "https://api.example.com/prefix",
            "http://127.0.0.1:9101/?k=v",
            "http://127.0.0.1:9101/#f",
        ] {
            let other = url::Url::parse(other).unwrap();
            assert!(plain_target(&other, &HttpRequest::new("GET", "/x")).is_none());
        }
    }

    /// Binance signs in the query: no error text may carry it.
    #[tokio::test]
    async fn error_text_never_carries_a_signed_query() {
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let up = Upstream::new(Policy {
            max_attempts: 1,
            timeout: Duration::from_secs(2),
            ..Policy::default()
        })
        .unwrap();
        let e = up
            .send("http://127.0.0.1:1", Retry::Never, |_| {
                Ok(HttpRequest::new(
                    "GET",
                    "/api/v3/openOrders?symbol=BTCUSDT&timestamp=1&signature=abcdef0123",
                ))
            })
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, UpstreamError::Connect { .. }), "{text}");
        assert!(
            !text.contains("signature") && !text.contains("abcdef0123"),
            "{text}"
        );
        assert!(
            text.contains("http://127.0.0.1:1/api/v3/openOrders"),
            "{text}"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_honours_retry_after() {
        let p = Policy {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(700),
            ..Policy::default()
        };
        assert_eq!(p.backoff(2, None), Duration::from_millis(100));
        assert_eq!(p.backoff(3, None), Duration::from_millis(200));
        assert_eq!(p.backoff(4, None), Duration::from_millis(400));
        assert_eq!(p.backoff(5, None), Duration::from_millis(700));
        assert_eq!(p.backoff(60, None), Duration::from_millis(700));
        assert_eq!(
            p.backoff(2, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn a_bad_base_url_is_shown_without_its_credentials() {
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let up = Upstream::new(Policy::default()).unwrap();
        for base in [
            "https://user:hunter2@api.example.com",
            "https://user:hunter2@api.example.com/x?y=1",
            "http://user:hunter2@",
            "http://user:hunter2@[::1",
        ] {
            let e = up.request(base, &HttpRequest::new("GET", "/")).unwrap_err();
            let text = e.to_string();
            assert!(matches!(e, UpstreamError::BadUrl(_)), "{base}: {e:?}");
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("://***@"), "{text}");
        }
        assert_eq!(shown("not a url"), "not a url");
        assert_eq!(shown("http://a.example/p@q"), "http://a.example/p@q");
    }

    #[test]
    fn every_proxy_variable_set_is_named() {
        let env = |set: &'static [(&'static str, &'static str)]| {
            move |v: &str| {
                set.iter()
                    .find(|(k, _)| *k == v)
                    .map(|(_, x)| std::ffi::OsString::from(x))
            }
        };
        assert!(proxy_settings(env(&[])).is_empty());
        assert_eq!(
            proxy_settings(env(&[
                ("https_proxy", "http://proxy:3128"),
                ("HTTP_PROXY", "http://proxy:3128"),
                ("ALL_PROXY", ""),
                ("NO_PROXY", "localhost"),
            ])),
            ["https_proxy", "HTTP_PROXY"]
        );
    }

    #[test]
    fn errors_know_who_is_at_fault_and_whether_to_retry() {
        let e = UpstreamError::BadUrl("ftp://x".into());
        assert_eq!((e.blame(), e.retryable()), (Blame::Keyfence, false));
        let t = UpstreamError::Timeout {
            url: "u".into(),
            timeout_ms: 1,
            attempts: 1,
        };
        assert_eq!((t.blame(), t.retryable()), (Blame::Exchange, true));
    }
}
