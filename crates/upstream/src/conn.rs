//! HTTP/1.1 to exchanges on hyper's connection API: a pool of kept-alive connections per
//! origin, TLS by rustls (ring) with the platform's roots (plus any given), nothing else in the
//! way (no proxy, no redirects, no decompression: an exchange's API needs none of them, and a
//! signing gateway should not follow a redirect with a signed request).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types};

/// How long an unused connection is kept.
const IDLE: Duration = Duration::from_secs(30);
/// Unused connections kept per origin.
const MAX_IDLE: usize = 64;

/// Where a base URL points: scheme, host and port, and what a request there carries.
#[derive(Debug, Clone)]
pub(crate) struct Base {
    pub(crate) origin: Origin,
    /// The base as parsed (requests' paths and queries are joined to it).
    pub(crate) url: url::Url,
    /// The `Host` header: the host as written, with the port unless it is the scheme's.
    pub(crate) host_header: http::HeaderValue,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    https: bool,
    host: Host,
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Host {
    Ip(IpAddr),
    Name(String),
}

impl Base {
    /// None unless `base` is an absolute http or https URL with a host.
    pub(crate) fn parse(base: &str) -> Option<Base> {
        let url = url::Url::parse(base).ok()?;
        // A user or password in the URL would be sent nowhere: refused rather than dropped.
        if !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return None,
        };
        let host = match url.host()? {
            url::Host::Ipv4(a) => Host::Ip(IpAddr::V4(a)),
            url::Host::Ipv6(a) => Host::Ip(IpAddr::V6(a)),
            url::Host::Domain(d) => Host::Name(d.to_owned()),
        };
        let port = url.port_or_known_default()?;
        let host_str = url.host_str()?;
        let host_header = match url.port() {
            Some(p) => format!("{host_str}:{p}"),
            None => host_str.to_owned(),
        };
        Some(Base {
            origin: Origin { https, host, port },
            host_header: http::HeaderValue::from_str(&host_header).ok()?,
            url,
        })
    }
}

/// Why an attempt failed, before the caller names the URL.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No connection (DNS, refused, TLS handshake).
    Connect(String),
    /// The connection failed while the request or its answer was under way.
    Transport(String),
}

/// A connection's request side.
type Conn = SendRequest<Full<Bytes>>;

/// One thread's unused connections per origin, with when each was last used.
type Idle = HashMap<Origin, Vec<(Conn, Instant)>>;

pub(crate) struct Client {
    tls: TlsConnector,
    /// What connecting (every address of a host together) may take: less than an attempt's
    /// timeout, so a host that does not answer is a connect error (nothing sent).
    connect_budget: Duration,
    /// Unused connections, by [`pool_key`]: on a single-threaded runtime each thread keeps its
    /// own. A connection is driven by a task on the runtime that opened it, so a gateway's
    /// serving thread (one runtime each) then never wakes another thread to send a request or
    /// read its answer; the workers of a multi-threaded runtime share one pool.
    idle: Mutex<HashMap<Option<ThreadId>, Idle>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// Trusts the platform's roots and `extra_roots` (DER). Needs the process's rustls crypto
    /// provider (keyfence installs ring's at start-up).
    pub(crate) fn new(
        extra_roots: Vec<pki_types::CertificateDer<'static>>,
        connect_budget: Duration,
    ) -> Result<Self, String> {
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .ok_or("no rustls crypto provider is installed")?;
        let verifier = if extra_roots.is_empty() {
            rustls_platform_verifier::Verifier::new(provider.clone())
        } else {
            rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider.clone())
        }
        .map_err(|e| format!("cannot load the certificate roots: {e}"))?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Client {
            tls: TlsConnector::from(Arc::new(config)),
            connect_budget,
            idle: Mutex::default(),
        })
    }

    /// One exchange of `req` with the origin: on a kept-alive connection when one is free
    /// (and, should it turn out closed before the request left, once more on a new one: a
    /// request that was never written is safe to send again), else on a new one.
    pub(crate) async fn send(
        &self,
        origin: &Origin,
        mut req: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<Bytes>, Failure> {
        loop {
            let (mut conn, pooled) = match self.checkout(origin).await {
                Some(c) => (c, true),
                None => (self.connect(origin).await?, false),
            };
            match conn.try_send_request(req).await {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map_err(|e| Failure::Transport(crate::source_chain(&e)))?
                        .to_bytes();
                    self.checkin(origin, conn);
                    return Ok(http::Response::from_parts(parts, body));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if pooled => req = unsent,
                    // Never written: the exchange did not get it.
                    Some(_) => return Err(Failure::Connect(crate::source_chain(e.error()))),
                    None => return Err(Failure::Transport(crate::source_chain(e.error()))),
                },
            }
        }
    }

    /// A kept-alive connection ready for a request, if one is free.
    async fn checkout(&self, origin: &Origin) -> Option<Conn> {
        loop {
            let (mut conn, since) = {
                let mut idle = self.idle.lock().ok()?;
                idle.get_mut(&pool_key())?.get_mut(origin)?.pop()?
            };
            if conn.is_closed() || since.elapsed() > IDLE {
                continue;
            }
            // Ready at once unless its last answer is still being wound up.
            if conn.ready().await.is_ok() {
                return Some(conn);
            }
        }
    }

    fn checkin(&self, origin: &Origin, conn: Conn) {
        if conn.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            let mine = idle.entry(pool_key()).or_default();
            let Some(list) = mine.get_mut(origin) else {
                mine.insert(origin.clone(), vec![(conn, Instant::now())]);
                return;
            };
            // Closed and expired ones are skipped at checkout; swept only when the list is full.
            if list.len() >= MAX_IDLE {
                list.retain(|(c, since)| !c.is_closed() && since.elapsed() <= IDLE);
            }
            if list.len() < MAX_IDLE {
                list.push((conn, Instant::now()));
            }
        }
    }

    async fn connect(&self, origin: &Origin) -> Result<Conn, Failure> {
        let connect = |e: &dyn std::error::Error| Failure::Connect(crate::source_chain(e));
        let addrs: Vec<SocketAddr> = match &origin.host {
            Host::Ip(ip) => vec![SocketAddr::new(*ip, origin.port)],
            Host::Name(name) => tokio::net::lookup_host((name.as_str(), origin.port))
                .await
                .map_err(|e| connect(&e))?
                .collect(),
        };
        let tcp = self.first_to_answer(&addrs).await?;
        tcp.set_nodelay(true).map_err(|e| connect(&e))?;
        if origin.https {
            let name = match &origin.host {
                Host::Ip(ip) => pki_types::ServerName::IpAddress((*ip).into()),
                Host::Name(n) => pki_types::ServerName::try_from(n.clone())
                    .map_err(|e| Failure::Connect(format!("bad host name: {e}")))?,
            };
            let tls = self.tls.connect(name, tcp).await.map_err(|e| connect(&e))?;
            handshake(tls).await
        } else {
            handshake(tcp).await
        }
    }
}

impl Client {
    /// A connection to the first of `addrs` that answers, each tried in turn for its share of
    /// the connect budget, so an address that drops packets does not use up the attempt (which
    /// would then end as a timeout, "outcome unknown", though nothing was sent).
    async fn first_to_answer(&self, addrs: &[SocketAddr]) -> Result<TcpStream, Failure> {
        let share = self.connect_budget / addrs.len().max(1) as u32;
        let mut last = String::from("the host name resolved to no address");
        for addr in addrs {
            match tokio::time::timeout(share, TcpStream::connect(addr)).await {
                Ok(Ok(tcp)) => return Ok(tcp),
                Ok(Err(e)) => last = format!("{addr}: {}", crate::source_chain(&e)),
                Err(_) => last = format!("{addr}: no answer within {} ms", share.as_millis()),
            }
        }
        Err(Failure::Connect(last))
    }
}

/// Whose idle connections a caller takes and returns: its thread's, on a single-threaded
/// runtime (where the connections it opened are driven); otherwise the shared pool.
fn pool_key() -> Option<ThreadId> {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread => {
            Some(std::thread::current().id())
        }
        _ => None,
    }
}

async fn handshake<T>(io: T) -> Result<Conn, Failure>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| Failure::Connect(crate::source_chain(&e)))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream connection ended");
        }
    });
    Ok(send)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_name_their_origin_path_and_host_header() {
        let b = Base::parse("https://api.binance.com").unwrap();
        assert_eq!((b.origin.https, b.origin.port), (true, 443));
        assert_eq!(b.origin.host, Host::Name("api.binance.com".into()));
        assert_eq!(b.host_header, "api.binance.com");
        let b = Base::parse("http://127.0.0.1:9101/prefix/").unwrap();
        assert_eq!((b.origin.https, b.origin.port), (false, 9101));
        assert_eq!(b.host_header, "127.0.0.1:9101");
        let b = Base::parse("http://[::1]:80").unwrap();
        assert_eq!(b.origin.host, Host::Ip("::1".parse().unwrap()));
        assert_eq!(
            (b.origin.port, b.host_header.to_str().unwrap()),
            (80, "[::1]")
        );
        for bad in [
            "not a url",
            "ftp://x.example",
            "unix:/tmp/sock",
            "http://",
            "https://user:pass@api.example.com",
        ] {
            assert!(Base::parse(bad).is_none(), "{bad}");
        }
    }

    /// A listener whose accept queue is full drops new SYNs: a loopback address that does not
    /// answer. Tried first, it gets its share of the budget and the next address is reached.
    #[tokio::test]
    async fn an_address_that_does_not_answer_gets_only_its_share() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let silent = socket.listen(0).unwrap();
        let silent_addr = silent.local_addr().unwrap();
        // Fills the queue (nobody accepts).
        let _filler = TcpStream::connect(silent_addr).await.unwrap();
        let good = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let good_addr = good.local_addr().unwrap();
        let client = Client::new(Vec::new(), Duration::from_millis(800)).unwrap();
        // Within less than the whole budget: the silent address had only its half (400 ms).
        let tcp = tokio::time::timeout(
            Duration::from_millis(700),
            client.first_to_answer(&[silent_addr, good_addr]),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(tcp.peer_addr().unwrap(), good_addr);
        // Alone, it uses the whole budget and is a connect error (nothing was sent).
        match client.first_to_answer(&[silent_addr]).await {
            Err(Failure::Connect(why)) => assert!(why.contains("no answer within 800 ms"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
