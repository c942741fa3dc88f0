//! Listeners (one per venue, plain or TLS), background tasks, and graceful shutdown.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use keyfence_exchange::{Denial, DenialKind, HttpRequest, MAX_BODY, NativeResponse, SigningKey};
use keyfence_store::{CheckpointSigner, Store, StoreOptions};
use keyfence_types::Venue;
use keyfence_upstream::Upstream;
use keyfence_vault::Vault;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::config::{GatewayConfig, TlsConfig};
use crate::finish::{Finish, Panicked};
use crate::nonce::NonceSource;
use crate::now_ms;
use crate::pipeline::{self, Gateway, RealKey};
use crate::prices::Feed;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the vault has no gateway secrets; run `keyfence bot add` first")]
    NoSecrets,
    #[error("cannot open the store `{}`: {source}", path.display())]
    Store {
        path: PathBuf,
        source: keyfence_store::StoreError,
    },
    #[error("the journal signing key in the vault is unusable")]
    JournalKey,
    #[error("vault key `{label}` cannot sign for {venue}: {why}")]
    Key {
        label: String,
        venue: Venue,
        why: String,
    },
    #[error("upstream for {venue}: {why}")]
    Upstream { venue: Venue, why: String },
    #[error("cannot bind {venue} on {addr}: {source}")]
    Bind {
        venue: Venue,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS for {venue}: {why}")]
    Tls { venue: Venue, why: String },
    #[error("cannot start a serving thread: {0}")]
    Threads(std::io::Error),
}

/// A started gateway.
pub struct RunningGateway {
    pub addrs: BTreeMap<Venue, SocketAddr>,
    /// PEM certificates of TLS listeners, by venue, and where they were written.
    pub certs: BTreeMap<Venue, PathBuf>,
    pub gateway: Arc<Gateway>,
    stop: watch::Sender<bool>,
    listeners: JoinSet<()>,
    background: JoinSet<()>,
    shards: Vec<Shard>,
    drain: Duration,
}

impl RunningGateway {
    /// Stop accepting, let in-flight requests finish (up to `drain_seconds`, also those whose
    /// bot hung up), then write what the journal has queued and close the store.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let gw = &self.gateway;
        let listeners = &mut self.listeners;
        let background = &mut self.background;
        let shards = &mut self.shards;
        let drain = async {
            // The listeners stop accepting; then each serving thread's connections end.
            while listeners.join_next().await.is_some() {}
            for shard in shards.iter_mut() {
                if let Some(done) = shard.served.take() {
                    let _ = done.await;
                }
            }
            background.abort_all();
            while background.join_next().await.is_some() {}
            // Every request's handler holds the gateway: this handle is the last one left
            // once they are done.
            while Arc::strong_count(gw) > 1 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        if tokio::time::timeout(self.drain, drain).await.is_err() {
            tracing::warn!(
                "requests still running at the end of the drain; their reservations are recovered at the next start"
            );
            self.listeners.abort_all();
        }
        self.background.abort_all();
        // The shards' runtimes end (a task still running there is dropped with them).
        for shard in self.shards.drain(..) {
            shard.release().await;
        }
        self.gateway.store.close().await;
    }
}

/// One serving thread: a single-threaded runtime that runs the connections handed to it, from
/// their first byte to their last (the request's work, the forward on its own connections to
/// the exchange, the answer), so an order is never handed between threads on its way.
///
/// It ends by itself once its connections have ended and the gateway is gone (a request whose
/// bot hung up finishes on a task of its own there first), or when the gateway's shutdown
/// releases it after the drain (whatever still runs then, after a drain that ran out of time,
/// gets [`RELEASE_GRACE`] and is dropped).
struct Shard {
    /// Resolves when every connection handed to the shard has ended (after the listeners stop).
    served: Option<tokio::sync::oneshot::Receiver<()>>,
    /// Sent to end the shard's runtime and whatever still runs on it.
    release: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A connection accepted by a listener, on its way to a shard.
struct Accepted {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    venue: Venue,
    tls: Option<TlsAcceptor>,
    stop: watch::Receiver<bool>,
}

type ShardInbox = tokio::sync::mpsc::UnboundedSender<Accepted>;

/// What a released runtime gives its tasks to end before it drops them.
const RELEASE_GRACE: Duration = Duration::from_secs(1);

impl Shard {
    /// The shard and where to hand it connections.
    fn spawn(n: usize, gw: &Arc<Gateway>) -> std::io::Result<(Shard, ShardInbox)> {
        let (conns, mut inbox) = tokio::sync::mpsc::unbounded_channel::<Accepted>();
        let (served_tx, served) = tokio::sync::oneshot::channel();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let (built_tx, built) = std::sync::mpsc::channel::<std::io::Result<()>>();
        let gw = Arc::clone(gw);
        let thread = std::thread::Builder::new()
            .name(format!("keyfence-serve-{n}"))
            .spawn(move || {
                // Built here: a runtime may not be dropped where the caller's runs.
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => {
                        let _ = built_tx.send(Ok(()));
                        rt
                    }
                    Err(e) => {
                        let _ = built_tx.send(Err(e));
                        return;
                    }
                };
                let gone = Arc::downgrade(&gw);
                let work = async move {
                    let mut running = JoinSet::new();
                    loop {
                        tokio::select! {
                            got = inbox.recv() => match got {
                                Some(a) => { running.spawn(connection(a, gw.clone())); }
                                None => break,
                            },
                            Some(_) = running.join_next(), if !running.is_empty() => {}
                        }
                    }
                    // The shutdown counts the gateway's handles: this one goes first.
                    drop(gw);
                    while running.join_next().await.is_some() {}
                    let _ = served_tx.send(());
                    // Requests whose bot hung up finish on tasks of their own here, each
                    // holding the gateway: the runtime runs them until the gateway is gone.
                    while gone.strong_count() > 0 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                };
                rt.block_on(async move {
                    tokio::select! {
                        () = work => {}
                        Ok(()) = released => {}
                    }
                });
                rt.shutdown_timeout(RELEASE_GRACE);
            })?;
        match built.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(std::io::Error::other("the serving thread ended at start")),
        }
        Ok((
            Shard {
                served: Some(served),
                release: Some(release),
                thread: Some(thread),
            },
            conns,
        ))
    }

    /// End the shard's runtime now and wait for its thread.
    async fn release(mut self) {
        if let Some(r) = self.release.take() {
            let _ = r.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

async fn connection(a: Accepted, gw: Arc<Gateway>) {
    let Ok(stream) = tokio::net::TcpStream::from_std(a.stream) else {
        return;
    };
    let (venue, peer) = (a.venue, a.peer);
    let svc = service_fn(move |req: hyper::Request<Incoming>| {
        let gw = gw.clone();
        async move { Ok::<_, Infallible>(answer(gw, venue, req, peer).await) }
    });
    match a.tls {
        Some(acceptor) => {
            let Ok(Ok(stream)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await
            else {
                return;
            };
            drive(TokioIo::new(stream), svc, a.stop).await;
        }
        None => drive(TokioIo::new(stream), svc, a.stop).await,
    }
}

/// Serving threads when none are asked for: one per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// [`start_with`] [`default_threads`] serving threads.
pub async fn start(
    config: GatewayConfig,
    home: &Path,
    vault: Vault,
) -> Result<RunningGateway, StartError> {
    start_with(config, home, vault, default_threads()).await
}

/// Open the store, load the real keys and the bots, bind every listener and start serving on
/// `threads` serving threads (each a runtime of its own that runs the connections handed to it;
/// the caller's runtime accepts them and runs the background tasks).
pub async fn start_with(
    config: GatewayConfig,
    home: &Path,
    vault: Vault,
    threads: usize,
) -> Result<RunningGateway, StartError> {
    let rng = ring::rand::SystemRandom::new();
    let db = home.join(&config.gateway.database);
    let secrets_ref = vault.gateway_secrets().ok_or(StartError::NoSecrets)?;
    let signer = CheckpointSigner::from_pkcs8(secrets_ref.journal_key_pkcs8())
        .map_err(|_| StartError::JournalKey)?;
    let opts = StoreOptions {
        sync: config.gateway.sync,
        checkpoint_every: config.gateway.checkpoint_every,
        checkpoint_interval: Duration::from_secs(config.gateway.checkpoint_seconds),
        ..StoreOptions::default()
    };
    let store = Store::open_with_signer(&db, opts, Some(signer))
        .await
        .map_err(|source| StartError::Store {
            path: db.clone(),
            source,
        })?;

    let mut feeds = HashMap::new();
    for (venue, l) in &config.listeners {
        let roots: Vec<String> = match &l.ca_cert {
            Some(p) => vec![
                std::fs::read_to_string(p).map_err(|e| StartError::Upstream {
                    venue: *venue,
                    why: format!("cannot read ca_cert `{}`: {e}", p.display()),
                })?,
            ],
            None => Vec::new(),
        };
        let roots: Vec<&str> = roots.iter().map(String::as_str).collect();
        let policy = keyfence_upstream::Policy {
            timeout: config.gateway.upstream_timeout(),
            ..keyfence_upstream::Policy::default()
        };
        let upstream = Upstream::with_roots(policy, &roots).map_err(|e| StartError::Upstream {
            venue: *venue,
            why: e.to_string(),
        })?;
        feeds.insert(
            *venue,
            Feed {
                base_url: l.upstream.clone(),
                upstream,
            },
        );
    }

    let mut keys = HashMap::new();
    for e in vault.entries() {
        let venue = e.meta.exchange;
        if !config.listeners.contains_key(&venue) {
            continue;
        }
        let signer = SigningKey::from_credential(venue, e.credential(), &rng).map_err(|err| {
            StartError::Key {
                label: e.meta.label.clone(),
                venue,
                why: err.to_string(),
            }
        })?;
        let nonces = if venue == Venue::Kraken {
            Some(
                NonceSource::load(&store, format!("kraken:{}", e.meta.label))
                    .await
                    .map_err(|source| StartError::Store {
                        path: db.clone(),
                        source,
                    })?,
            )
        } else {
            None
        };
        keys.insert(
            e.meta.label.clone(),
            RealKey {
                venue,
                signer,
                nonces,
            },
        );
    }
    let secrets = vault.into_gateway_secrets().ok_or(StartError::NoSecrets)?;
    let refresh = Duration::from_millis(config.gateway.price_refresh_ms);
    let drain = Duration::from_secs(config.gateway.drain_seconds);
    let listener_cfgs = config.listeners.clone();

    let gw = Arc::new(Gateway::new(config, store, keys, secrets, feeds.clone()));
    gw.sync(true).await;
    gw.seed().await.map_err(|source| StartError::Store {
        path: db.clone(),
        source,
    })?;
    // Reference prices are fetched for the symbols orders name (on first use, then kept fresh).
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every listener is bound (and its TLS ready) before a serving thread starts, so a
    // start-up error leaves no thread holding the store.
    let mut bound = Vec::new();
    let mut addrs = BTreeMap::new();
    let mut certs = BTreeMap::new();
    for (venue, l) in &listener_cfgs {
        let acceptor = match &l.tls {
            None => None,
            Some(t) => {
                let (acceptor, pem_path) = tls_acceptor(*venue, t, home)?;
                if let Some(p) = pem_path {
                    certs.insert(*venue, p);
                }
                Some(acceptor)
            }
        };
        let tcp = TcpListener::bind(l.bind)
            .await
            .map_err(|source| StartError::Bind {
                venue: *venue,
                addr: l.bind,
                source,
            })?;
        let addr = tcp.local_addr().map_err(|source| StartError::Bind {
            venue: *venue,
            addr: l.bind,
            source,
        })?;
        addrs.insert(*venue, addr);
        bound.push((*venue, tcp, acceptor));
    }
    let mut shards = Vec::new();
    let mut inboxes = Vec::new();
    for n in 0..threads.max(1) {
        let (shard, inbox) = Shard::spawn(n, &gw).map_err(StartError::Threads)?;
        shards.push(shard);
        inboxes.push(inbox);
    }
    let mut listeners = JoinSet::new();
    for (venue, tcp, acceptor) in bound {
        listeners.spawn(serve(
            venue,
            tcp,
            acceptor,
            inboxes.clone(),
            stop_rx.clone(),
        ));
    }

    let mut background = JoinSet::new();
    {
        let gw = gw.clone();
        background.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tick.tick().await;
                gw.poll_mode().await;
                gw.sync(false).await;
            }
        });
    }
    {
        let gw = gw.clone();
        background.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                gw.replay.prune(now_ms());
            }
        });
    }
    background.spawn(gw.prices.clone().refresh_forever(feeds, refresh));

    Ok(RunningGateway {
        addrs,
        certs,
        gateway: gw,
        stop: stop_tx,
        listeners,
        background,
        shards,
        drain,
    })
}

fn tls_acceptor(
    venue: Venue,
    t: &TlsConfig,
    home: &Path,
) -> Result<(TlsAcceptor, Option<PathBuf>), StartError> {
    let err = |why: String| StartError::Tls { venue, why };
    let (certs, key, written) = match t {
        TlsConfig::SelfSigned => {
            let names = vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ];
            let made = rcgen::generate_simple_self_signed(names).map_err(|e| err(e.to_string()))?;
            let dir = home.join("tls");
            std::fs::create_dir_all(&dir).map_err(|e| err(e.to_string()))?;
            let path = dir.join(format!("{venue}.pem"));
            std::fs::write(&path, made.cert.pem()).map_err(|e| err(e.to_string()))?;
            let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
                rustls::pki_types::PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()),
            );
            (vec![made.cert.der().clone()], key, Some(path))
        }
        TlsConfig::Files { cert, key } => {
            use rustls::pki_types::pem::PemObject as _;
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(cert)
                .map_err(|e| err(format!("`{}`: {e}", cert.display())))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| err(format!("`{}`: {e}", cert.display())))?;
            let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key)
                .map_err(|e| err(format!("`{}`: {e}", key.display())))?;
            (certs, key, None)
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| err(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), written))
}

/// Accept connections and hand them to the shards in turn.
async fn serve(
    venue: Venue,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shards: Vec<ShardInbox>,
    mut stop: watch::Receiver<bool>,
) {
    let mut next = 0usize;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let Ok(stream) = stream.into_std() else { continue };
                let Some(shard) = shards.get(next % shards.len().max(1)) else { break };
                next = next.wrapping_add(1);
                let handed = shard.send(Accepted {
                    stream,
                    peer,
                    venue,
                    tls: tls.clone(),
                    stop: stop.clone(),
                });
                if handed.is_err() {
                    tracing::error!(venue = %venue, "a serving thread has stopped; a connection was dropped");
                }
            }
        }
    }
}

async fn drive<I, S>(io: I, svc: S, mut stop: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<Incoming>,
            Response = hyper::Response<Full<Bytes>>,
            Error = Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    let stopped = async move {
        loop {
            if *stop.borrow_and_update() {
                break;
            }
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopped => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
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
    gw: Arc<Gateway>,
    venue: Venue,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> hyper::Response<Full<Bytes>> {
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
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => http.body = Vec::from(b.to_bytes()),
        Err(_) => {
            let d = Denial::new(
                DenialKind::PayloadTooLarge,
                "keyfence payload-too-large: the request body is larger than 1 MiB",
            );
            return to_hyper(pipeline::refuse_unread(&gw, venue, &http.path, d).await);
        }
    }
    // hyper drops this future when the bot hangs up, and a request that was forwarded must
    // still be journaled and its reservation settled: `Finish` then ends it on a task of its own.
    let handled = Finish::new(async move {
        pipeline::handle(
            &gw,
            pipeline::Incoming {
                venue,
                req: http,
                peer: peer.ip(),
                host: &host,
            },
        )
        .await
    });
    let resp = handled.await.unwrap_or_else(|Panicked| {
        tracing::error!("a request's handler panicked");
        let d = Denial::new(DenialKind::Unavailable, "keyfence internal error");
        keyfence_exchange::native_error(venue, &d, crate::now_ms())
    });
    to_hyper(resp)
}
