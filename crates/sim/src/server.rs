//! Listeners (plain or TLS), the request log, fault injection and the admin interface.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use keyfence_exchange::{Denial, DenialKind, HttpRequest, MAX_BODY, NativeResponse, native_error};
use keyfence_types::Venue;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::config::SimConfig;
use crate::state::{SimRequest, VenueState};

/// Requests kept in the log; older ones are dropped first.
const LOG_CAP: usize = 200_000;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One request as received, for tests to prove what reached the exchange.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    pub seq: u64,
    pub venue: Venue,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub peer: String,
    pub time_ms: i64,
    pub status: u16,
}

/// Faults to inject on one venue; counts go down as requests consume them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Added to every answer.
    #[serde(default)]
    pub latency_ms: u64,
    /// Answer this many requests with `error_status` (default 503).
    #[serde(default)]
    pub errors: u32,
    #[serde(default)]
    pub error_status: Option<u16>,
    /// Never answer this many requests (the client times out).
    #[serde(default)]
    pub timeouts: u32,
    /// Answer this many requests with 429 and `Retry-After: retry_after_s`.
    #[serde(default)]
    pub rate_limits: u32,
    #[serde(default)]
    pub retry_after_s: Option<u64>,
    /// Answer this many requests with HTTP 200 and an HTML page (a captive portal, a CDN error).
    #[serde(default)]
    pub html: u32,
    /// Answer this many requests with the real answer cut off halfway (truncated JSON).
    #[serde(default)]
    pub truncated: u32,
}

struct Shared {
    venues: BTreeMap<Venue, Mutex<VenueState>>,
    faults: Mutex<BTreeMap<Venue, Faults>>,
    log: Mutex<Vec<LoggedRequest>>,
    seq: Mutex<u64>,
    cert_pem: Option<String>,
    addrs: BTreeMap<Venue, (SocketAddr, bool)>,
    /// Flips to true at shutdown; injected timeouts end with it.
    stopping: watch::Receiver<bool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A started simulator. Dropping it does not stop it; call [`RunningSim::shutdown`].
pub struct RunningSim {
    pub venues: BTreeMap<Venue, SocketAddr>,
    pub tls: BTreeMap<Venue, bool>,
    pub admin: SocketAddr,
    /// The self-signed certificate (PEM) the TLS listeners present, if any listener uses TLS.
    pub cert_pem: Option<String>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl RunningSim {
    /// The base URL of a venue's listener (`http://127.0.0.1:9101`).
    pub fn base_url(&self, venue: Venue) -> Option<String> {
        let addr = self.venues.get(&venue)?;
        let scheme = if self.tls.get(&venue).copied().unwrap_or(false) {
            "https"
        } else {
            "http"
        };
        Some(format!("{scheme}://{addr}"))
    }

    /// Stop accepting, let in-flight requests finish (up to 5 s), and return.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(5), drain)
            .await
            .is_err()
        {
            self.tasks.abort_all();
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr} for {what}: {source}")]
    Bind {
        what: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("simulator state for {0}: {1}")]
    State(Venue, String),
    #[error("cannot make the TLS certificate: {0}")]
    Tls(String),
}

/// Bind every listener and start serving.
pub async fn start(cfg: &SimConfig) -> Result<RunningSim, StartError> {
    let any_tls = cfg.venues.values().any(|v| v.tls);
    let tls = if any_tls { Some(make_tls()?) } else { None };

    let mut states = BTreeMap::new();
    for venue in cfg.venues.keys() {
        let st = VenueState::from_config(*venue, cfg).map_err(|e| StartError::State(*venue, e))?;
        states.insert(*venue, Mutex::new(st));
    }

    let mut listeners = Vec::new();
    let mut addrs = BTreeMap::new();
    for (venue, vc) in &cfg.venues {
        let l = TcpListener::bind(vc.bind)
            .await
            .map_err(|source| StartError::Bind {
                what: venue.to_string(),
                addr: vc.bind,
                source,
            })?;
        let addr = l.local_addr().map_err(|source| StartError::Bind {
            what: venue.to_string(),
            addr: vc.bind,
            source,
        })?;
        addrs.insert(*venue, (addr, vc.tls));
        listeners.push((*venue, l, vc.tls));
    }
    let admin_l = TcpListener::bind(cfg.admin.bind)
        .await
        .map_err(|source| StartError::Bind {
            what: "admin".into(),
            addr: cfg.admin.bind,
            source,
        })?;
    let admin_addr = admin_l.local_addr().map_err(|source| StartError::Bind {
        what: "admin".into(),
        addr: cfg.admin.bind,
        source,
    })?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        venues: states,
        faults: Mutex::new(BTreeMap::new()),
        log: Mutex::new(Vec::new()),
        seq: Mutex::new(0),
        cert_pem: tls.as_ref().map(|(_, pem)| pem.clone()),
        addrs: addrs.clone(),
        stopping: stop_rx.clone(),
    });

    let mut tasks = JoinSet::new();
    for (venue, l, use_tls) in listeners {
        let acceptor = if use_tls {
            tls.as_ref().map(|(a, _)| a.clone())
        } else {
            None
        };
        tasks.spawn(serve_venue(
            venue,
            l,
            acceptor,
            shared.clone(),
            stop_rx.clone(),
        ));
    }
    tasks.spawn(serve_admin(admin_l, shared.clone(), stop_rx));

    Ok(RunningSim {
        venues: addrs.iter().map(|(v, (a, _))| (*v, *a)).collect(),
        tls: addrs.iter().map(|(v, (_, t))| (*v, *t)).collect(),
        admin: admin_addr,
        cert_pem: shared.cert_pem.clone(),
        stop: stop_tx,
        tasks,
    })
}

fn make_tls() -> Result<(TlsAcceptor, String), StartError> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let cert =
        rcgen::generate_simple_self_signed(names).map_err(|e| StartError::Tls(e.to_string()))?;
    let cert_pem = cert.cert.pem();
    let cert_der = cert.cert.der().clone();
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(
        rustls::pki_types::PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()),
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key_der)
        .map_err(|e| StartError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), cert_pem))
}

async fn serve_venue(
    venue: Venue,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let tls = tls.clone();
                let mut stop = stop.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<Incoming>| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(answer(venue, req, peer, shared).await) }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(acceptor) => {
                            let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await else { return };
                            let conn = builder.serve_connection(TokioIo::new(stream), svc);
                            tokio::pin!(conn);
                            tokio::select! {
                                _ = conn.as_mut() => {}
                                _ = stop.changed() => { conn.as_mut().graceful_shutdown(); let _ = conn.await; }
                            }
                        }
                        None => {
                            let conn = builder.serve_connection(TokioIo::new(stream), svc);
                            tokio::pin!(conn);
                            tokio::select! {
                                _ = conn.as_mut() => {}
                                _ = stop.changed() => { conn.as_mut().graceful_shutdown(); let _ = conn.await; }
                            }
                        }
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        conns.abort_all();
    }
}

fn to_hyper(resp: NativeResponse) -> hyper::Response<Full<Bytes>> {
    let mut b = hyper::Response::builder().status(resp.status);
    for (k, v) in &resp.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    b.body(Full::new(Bytes::from(resp.body)))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}

async fn answer(
    venue: Venue,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    shared: Arc<Shared>,
) -> hyper::Response<Full<Bytes>> {
    let now = now_ms();
    let (parts, body) = req.into_parts();
    let mut http = HttpRequest::new(parts.method.as_str(), "/");
    http.path = parts.uri.path().to_owned();
    http.query = parts.uri.query().unwrap_or("").to_owned();
    http.headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let host = parts
        .headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or("")
        .to_owned();

    let too_large = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => {
            http.body = b.to_bytes().to_vec();
            false
        }
        Err(_) => true,
    };

    let resp = if too_large {
        native_error(
            venue,
            &Denial::new(
                DenialKind::PayloadTooLarge,
                "request body is larger than 1 MiB",
            ),
            now,
        )
    } else {
        match take_fault(&shared, venue) {
            Some(FaultAction::Timeout) => {
                record(&shared, venue, &http, peer, now, 0);
                let mut stopping = shared.stopping.clone();
                let _ = tokio::time::timeout(Duration::from_secs(3600), stopping.wait_for(|s| *s))
                    .await;
                return to_hyper(NativeResponse::json(504, serde_json::json!({})));
            }
            Some(FaultAction::Respond(r, latency)) => {
                tokio::time::sleep(Duration::from_millis(latency)).await;
                r
            }
            Some(FaultAction::Delay(latency)) => {
                tokio::time::sleep(Duration::from_millis(latency)).await;
                handle(venue, &shared, &http, peer, host, now)
            }
            Some(FaultAction::Truncate(latency)) => {
                tokio::time::sleep(Duration::from_millis(latency)).await;
                let mut r = handle(venue, &shared, &http, peer, host, now);
                let mut cut = r.body.len() / 2;
                while !r.body.is_char_boundary(cut) {
                    cut -= 1;
                }
                r.body.truncate(cut);
                r
            }
            None => handle(venue, &shared, &http, peer, host, now),
        }
    };
    record(&shared, venue, &http, peer, now, resp.status);
    to_hyper(resp)
}

fn handle(
    venue: Venue,
    shared: &Shared,
    http: &HttpRequest,
    peer: SocketAddr,
    host: String,
    now: i64,
) -> NativeResponse {
    let Some(state) = shared.venues.get(&venue) else {
        return native_error(venue, &Denial::new(DenialKind::NotFound, "not found"), now);
    };
    let req = SimRequest {
        venue,
        http: http.clone(),
        peer: peer.ip(),
        host,
        now_ms: now,
    };
    let mut st = lock(state);
    crate::venues::handle(&mut st, &req)
}

enum FaultAction {
    Timeout,
    Respond(NativeResponse, u64),
    Delay(u64),
    Truncate(u64),
}

fn take_fault(shared: &Shared, venue: Venue) -> Option<FaultAction> {
    let mut faults = lock(&shared.faults);
    let f = faults.get_mut(&venue)?;
    let latency = f.latency_ms;
    if f.timeouts > 0 {
        f.timeouts -= 1;
        return Some(FaultAction::Timeout);
    }
    if f.rate_limits > 0 {
        f.rate_limits -= 1;
        let retry = f.retry_after_s.unwrap_or(1);
        let mut r = native_error(
            venue,
            &Denial::new(
                DenialKind::RateLimited {
                    retry_after_s: retry,
                },
                "too many requests",
            ),
            now_ms(),
        );
        r.status = 429;
        return Some(FaultAction::Respond(r, latency));
    }
    if f.errors > 0 {
        f.errors -= 1;
        let mut r = native_error(
            venue,
            &Denial::new(DenialKind::Unavailable, "service unavailable (injected)"),
            now_ms(),
        );
        r.status = f.error_status.unwrap_or(503);
        return Some(FaultAction::Respond(r, latency));
    }
    if f.html > 0 {
        f.html -= 1;
        let r = NativeResponse {
            status: 200,
            headers: vec![("content-type".into(), "text/html".into())],
            body: "<html><head><title>Just a moment...</title></head><body>Checking your browser</body></html>".into(),
        };
        return Some(FaultAction::Respond(r, latency));
    }
    if f.truncated > 0 {
        f.truncated -= 1;
        return Some(FaultAction::Truncate(latency));
    }
    (latency > 0).then_some(FaultAction::Delay(latency))
}

fn record(
    shared: &Shared,
    venue: Venue,
    http: &HttpRequest,
    peer: SocketAddr,
    now: i64,
    status: u16,
) {
    let seq = {
        let mut s = lock(&shared.seq);
        *s += 1;
        *s
    };
    let entry = LoggedRequest {
        seq,
        venue,
        method: http.method.clone(),
        path: http.path.clone(),
        query: http.query.clone(),
        headers: http
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), redact_header(k, v)))
            .collect(),
        body: String::from_utf8_lossy(&http.body).into_owned(),
        peer: peer.to_string(),
        time_ms: now,
        status,
    };
    let mut log = lock(&shared.log);
    if log.len() >= LOG_CAP {
        log.drain(..LOG_CAP / 10);
    }
    log.push(entry);
}

/// Header values the log must not show: a passphrase is a secret, and a bearer JWT could be
/// replayed while it lives, so its signature is cut off (its header and claims stay, for tests
/// that check what a client sent). Signatures over one request and API keys are not secrets.
fn redact_header(name: &str, value: &str) -> String {
    if name.eq_ignore_ascii_case("authorization")
        && let Some(token) = value.strip_prefix("Bearer ")
        && let Some((signed, _signature)) = token.rsplit_once('.')
    {
        return format!("Bearer {signed}.<redacted>");
    }
    if keyfence_exchange::is_secret_header(name) {
        "***".to_owned()
    } else {
        value.to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Admin interface

async fn serve_admin(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let app = Router::new()
        .route(
            "/admin/health",
            get(|| async { Json(serde_json::json!({"ok": true})) }),
        )
        .route("/admin/venues", get(admin_venues))
        .route(
            "/admin/requests",
            get(admin_requests).delete(admin_clear_requests),
        )
        .route("/admin/price", post(admin_price))
        .route(
            "/admin/faults",
            post(admin_faults).delete(admin_clear_faults),
        )
        .route("/admin/state", get(admin_state))
        .route("/admin/cert", get(admin_cert))
        .with_state(shared);
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.changed().await;
        })
        .await;
}

async fn admin_venues(State(s): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let v: BTreeMap<String, serde_json::Value> = s
        .addrs
        .iter()
        .map(|(v, (a, tls))| {
            let scheme = if *tls { "https" } else { "http" };
            (v.to_string(), serde_json::json!({"addr": a.to_string(), "tls": tls, "base_url": format!("{scheme}://{a}")}))
        })
        .collect();
    Json(serde_json::json!(v))
}

#[derive(Deserialize)]
struct RequestsQuery {
    venue: Option<Venue>,
    since: Option<u64>,
}

async fn admin_requests(
    State(s): State<Arc<Shared>>,
    Query(q): Query<RequestsQuery>,
) -> Json<Vec<LoggedRequest>> {
    let log = lock(&s.log);
    Json(
        log.iter()
            .filter(|r| q.venue.is_none_or(|v| r.venue == v))
            .filter(|r| q.since.is_none_or(|n| r.seq > n))
            .cloned()
            .collect(),
    )
}

async fn admin_clear_requests(State(s): State<Arc<Shared>>) -> Json<serde_json::Value> {
    lock(&s.log).clear();
    Json(serde_json::json!({"ok": true}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceChange {
    venue: Venue,
    symbol: String,
    price: Decimal,
}

async fn admin_price(
    State(s): State<Arc<Shared>>,
    Json(p): Json<PriceChange>,
) -> (hyper::StatusCode, Json<serde_json::Value>) {
    let Some(st) = s.venues.get(&p.venue) else {
        return (
            hyper::StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "venue not running"})),
        );
    };
    match lock(st).set_price(&p.symbol, p.price, now_ms()) {
        Ok(filled) => (
            hyper::StatusCode::OK,
            Json(serde_json::json!({"ok": true, "filled": filled})),
        ),
        Err(e) => (
            hyper::StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": e.to_string()})),
        ),
    }
}

#[derive(Deserialize)]
struct FaultsBody {
    venue: Venue,
    #[serde(flatten)]
    faults: Faults,
}

async fn admin_faults(
    State(s): State<Arc<Shared>>,
    Json(f): Json<FaultsBody>,
) -> Json<serde_json::Value> {
    lock(&s.faults).insert(f.venue, f.faults);
    Json(serde_json::json!({"ok": true}))
}

async fn admin_clear_faults(State(s): State<Arc<Shared>>) -> Json<serde_json::Value> {
    lock(&s.faults).clear();
    Json(serde_json::json!({"ok": true}))
}

#[derive(Deserialize)]
struct StateQuery {
    venue: Venue,
}

async fn admin_state(
    State(s): State<Arc<Shared>>,
    Query(q): Query<StateQuery>,
) -> (hyper::StatusCode, Json<serde_json::Value>) {
    let Some(st) = s.venues.get(&q.venue) else {
        return (
            hyper::StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "venue not running"})),
        );
    };
    let st = lock(st);
    (
        hyper::StatusCode::OK,
        Json(serde_json::json!({
            "markets": st.markets,
            "accounts": st.accounts,
        })),
    )
}

async fn admin_cert(State(s): State<Arc<Shared>>) -> (hyper::StatusCode, String) {
    match &s.cert_pem {
        Some(p) => (hyper::StatusCode::OK, p.clone()),
        None => (hyper::StatusCode::NOT_FOUND, "no TLS listener".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_header;

    #[test]
    fn the_request_log_hides_passphrases() {
        assert_eq!(redact_header("ok-access-passphrase", "Secret1!"), "***");
        assert_eq!(redact_header("OK-ACCESS-PASSPHRASE", "Secret1!"), "***");
        assert_eq!(
            redact_header("Authorization", "Bearer head.claims.signature"),
            "Bearer head.claims.<redacted>"
        );
        assert_eq!(redact_header("authorization", "Basic dXNlcjpwYXNz"), "***");
        assert_eq!(redact_header("ok-access-key", "public"), "public");
    }
}
