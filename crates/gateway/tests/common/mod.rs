//! One world for the gateway's reliability tests: the simulator (all five venues, in process),
//! a vault holding one real simulator key per venue in a temp dir, bots issued through
//! `keyfence_gateway::issue` and written to the store, and the gateway (in process, or the
//! built `keyfence serve` binary for the crash test).
//!
//! Requests go out over a raw HTTP/1.1 client on purpose: a URL library would resolve the
//! dot segments and case tricks the hostile corpus is made of before they reach the gateway.
#![allow(dead_code)] // each test binary uses its own part of the world

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keyfence_exchange::{Credential, HttpRequest, SignContext, SigningKey, Venue};
use keyfence_gateway::issue::issue;
use keyfence_gateway::{GatewayConfig, RunningGateway};
use keyfence_sim::{RunningSim, SimConfig};
use keyfence_store::{BotCredential, BotRecord, Store, StoreOptions};
use keyfence_types::SecretString;
use keyfence_vault::{Home, Key, NewEntry, Purpose, Tier, Vault};
use ring::rand::SystemRandom;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

pub const PASSPHRASE: &str = "reliability tests only";

/// A policy trading BTCUSDT on read, trade and cancel, with no caps.
pub const SPOT_BTC: &str = r#"
[policies.spot]
classes = ["read", "trade", "cancel"]
symbols = ["BTCUSDT"]
"#;

/// A cheap scrypt work factor: these vaults guard simulator keys for a few seconds.
pub fn vault_key() -> Key {
    Key::Passphrase {
        passphrase: PASSPHRASE.to_owned().into(),
        log_n: Some(10),
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[path = "../../../../tests/support/tempdir.rs"]
mod support;
pub use support::TempDir;

pub fn tempdir(tag: &str) -> TempDir {
    TempDir::at(support::unique_path(&format!("keyfence-gw-{tag}")))
}

/// The vault label of each venue's real key.
pub fn label(venue: Venue) -> String {
    format!("{venue}-main")
}

/// The simulator from `examples/sim.toml`, on free ports, plain HTTP, with deep pockets so caps
/// (not balances) decide what trades.
pub async fn start_sim() -> RunningSim {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let text = std::fs::read_to_string(repo().join("examples/sim.toml")).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let line = if line.starts_with("bind = ") {
            "bind = \"127.0.0.1:0\"".to_owned()
        } else if line.starts_with("tls = ") {
            "tls = false".to_owned()
        } else {
            line.replace("\"10000\"", "\"100000000\"")
                .replace("= \"1\" }", "= \"1000\" }")
        };
        out.push_str(&line);
        out.push('\n');
    }
    keyfence_sim::start(&SimConfig::parse(&out, "examples/sim.toml (test ports)").unwrap())
        .await
        .unwrap()
}

/// The example keys of `examples/sim.toml`, one trading key per venue.
fn real_credential(venue: Venue) -> Credential {
    let s = |v: &str| Some(SecretString::new(v.to_owned()));
    let (api_key, secret, passphrase, private_key) = match venue {
        Venue::Binance => (
            "binance-trader-key",
            s("binance-trader-secret-0123456789"),
            None,
            None,
        ),
        Venue::Bybit => (
            "bybit-trader-key",
            s("bybit-trader-secret-0123456789"),
            None,
            None,
        ),
        Venue::Okx => (
            "okx-trader-key",
            s("okx-trader-secret-0123456789"),
            s("Passphrase1!"),
            None,
        ),
        Venue::Coinbase => (
            "organizations/example/apiKeys/coinbase-trader-key",
            None,
            None,
            s(&std::fs::read_to_string(repo().join("examples/keys/coinbase-es256.pem")).unwrap()),
        ),
        Venue::Kraken => (
            "kraken-trader-key",
            s("a3Jha2VuLXRyYWRlci1zZWNyZXQtMDEyMzQ1Njc4OQ=="),
            None,
            None,
        ),
    };
    Credential {
        api_key: api_key.to_owned(),
        secret,
        passphrase,
        private_key,
    }
}

/// A vault in `home` with every venue's real key and the gateway's secrets, saved to disk.
pub fn make_vault(home: &Path) -> Vault {
    let home = Home::new(home);
    home.init().unwrap();
    let key = vault_key();
    let mut vault = Vault::create(&home, &key).unwrap();
    for venue in Venue::ALL {
        vault
            .add(
                NewEntry {
                    label: label(venue),
                    exchange: venue,
                    service: format!("{venue}-bots"),
                    purpose: Purpose::Spot,
                    tier: Tier::Auto,
                    endpoint: None,
                },
                real_credential(venue),
                time::OffsetDateTime::now_utc(),
            )
            .unwrap();
    }
    vault.ensure_gateway_secrets().unwrap();
    vault.save(&key).unwrap();
    vault
}

/// The gateway config: a listener per venue in front of the simulator, and the policies the
/// tests use. `extra` is appended (more policies, `[gateway]` settings).
pub fn gateway_toml(sim: &RunningSim, binds: &BTreeMap<Venue, SocketAddr>, extra: &str) -> String {
    let mut t = String::new();
    for venue in Venue::ALL {
        let bind = binds
            .get(&venue)
            .map_or_else(|| "127.0.0.1:0".to_owned(), ToString::to_string);
        t.push_str(&format!(
            "[listeners.{venue}]\nbind = \"{bind}\"\nupstream = \"{}\"\n\n",
            sim.base_url(venue).unwrap()
        ));
    }
    t.push_str(extra);
    t
}

/// What a bot holds: its credential, signed the way its exchange client signs.
pub struct Bot {
    pub name: String,
    pub venue: Venue,
    pub api_key: String,
    pub secret: Option<String>,
    pub key: SigningKey,
    /// `host:port` of the gateway listener the bot talks to.
    pub addr: SocketAddr,
    /// Kraken: the bot's own nonce counter.
    nonce: AtomicU64,
}

impl Bot {
    fn from_issued(
        name: &str,
        venue: Venue,
        issued: &keyfence_gateway::issue::Issued,
        addr: SocketAddr,
    ) -> Bot {
        let rng = SystemRandom::new();
        let cred = Credential {
            api_key: issued.api_key.clone(),
            secret: issued.secret.clone(),
            passphrase: issued.passphrase.clone(),
            private_key: issued.private_key.clone(),
        };
        Bot {
            name: name.to_owned(),
            venue,
            api_key: issued.api_key.clone(),
            secret: issued.secret.as_ref().map(|s| s.expose().to_owned()),
            key: SigningKey::from_credential(venue, &cred, &rng).unwrap(),
            addr,
            nonce: AtomicU64::new(keyfence_gateway::now_us()),
        }
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn next_nonce(&self) -> u64 {
        self.nonce.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Sign as the bot's client would, at `now_ms` (a skewed clock for the timestamp cases).
    pub fn sign_at(&self, req: &mut HttpRequest, now_ms: i64, nonce: Option<u64>) {
        let rng = SystemRandom::new();
        let nonce = match (self.venue, nonce) {
            (Venue::Kraken, None) => Some(self.next_nonce()),
            (_, n) => n,
        };
        keyfence_exchange::sign(
            self.venue,
            &self.key,
            req,
            &SignContext {
                now_ms,
                nonce,
                host: &self.host(),
                rng: &rng,
            },
        )
        .unwrap();
    }

    pub fn sign(&self, req: &mut HttpRequest) {
        self.sign_at(req, keyfence_gateway::now_ms(), None);
    }

    /// Sign and send.
    pub async fn send(&self, mut req: HttpRequest) -> Reply {
        self.sign(&mut req);
        send(self.addr, &req).await
    }
}

/// Issue a credential for a new bot and write it to the store (as `keyfence bot add` does).
pub async fn add_bot(
    store: &Store,
    secrets: &keyfence_vault::GatewaySecrets,
    name: &str,
    venue: Venue,
    policy: &str,
    allow_ips: &[&str],
    addr: SocketAddr,
) -> Bot {
    let (issued, cred) = new_credential(secrets, venue);
    store
        .add_bot(&BotRecord {
            name: name.to_owned(),
            venue,
            key_label: label(venue),
            policy: policy.to_owned(),
            allow_ips: allow_ips.iter().map(|s| (*s).to_owned()).collect(),
            created_ms: keyfence_gateway::now_ms(),
            revoked_ms: None,
            credentials: vec![cred],
        })
        .await
        .unwrap();
    Bot::from_issued(name, venue, &issued, addr)
}

/// Rotate a bot's credential; the old one stays valid until `old_valid_until_ms`.
pub async fn rotate_bot(
    store: &Store,
    secrets: &keyfence_vault::GatewaySecrets,
    old: &Bot,
    old_valid_until_ms: i64,
) -> Bot {
    let (issued, cred) = new_credential(secrets, old.venue);
    store
        .rotate_bot(&old.name, &cred, old_valid_until_ms)
        .await
        .unwrap();
    Bot::from_issued(&old.name, old.venue, &issued, old.addr)
}

fn new_credential(
    secrets: &keyfence_vault::GatewaySecrets,
    venue: Venue,
) -> (keyfence_gateway::issue::Issued, BotCredential) {
    let rng = SystemRandom::new();
    let issued = issue(venue, None, &rng).unwrap();
    let sealed = issued.keep.is_secret().then(|| {
        secrets
            .seal(&serde_json::to_vec(&issued.keep).unwrap())
            .unwrap()
    });
    let mut id = [0u8; 8];
    ring::rand::SecureRandom::fill(&rng, &mut id).unwrap();
    let cred = BotCredential {
        id: hex::encode(id),
        api_key: issued.api_key.clone(),
        public_key: if sealed.is_none() {
            issued.keep.public_key.clone()
        } else {
            None
        },
        sealed,
        created_ms: keyfence_gateway::now_ms(),
        valid_until_ms: None,
    };
    (issued, cred)
}

pub fn store_options() -> StoreOptions {
    StoreOptions {
        sync: keyfence_store::SyncMode::Normal,
        checkpoint_every: 100,
        checkpoint_interval: Duration::from_secs(60),
        // Small, so the tests' orders move the log between its files many times.
        reservation_log_bytes: 64 * 1024,
    }
}

/// The store file the gateway config's default `database` names.
pub fn db_path(home: &Path) -> PathBuf {
    home.join("keyfence.db")
}

/// An in-process world: simulator, vault, gateway; bots are added by each test.
pub struct World {
    pub sim: RunningSim,
    pub gw: RunningGateway,
    /// Removed with the world, after the gateway and the simulator (kept if the test fails).
    pub home: TempDir,
    pub admin: String,
}

impl World {
    /// `policies`: TOML for `[policies.*]` (and `[gateway]` if wanted).
    pub async fn start(policies: &str) -> World {
        let sim = start_sim().await;
        let home = tempdir("world");
        let vault = make_vault(&home);
        let cfg_path = home.join("gateway.toml");
        let text = gateway_toml(&sim, &BTreeMap::new(), policies);
        std::fs::write(&cfg_path, &text).unwrap();
        let config = GatewayConfig::parse(&text, &cfg_path).unwrap();
        // Two serving threads whatever the machine: every test crosses threads as production
        // does on a multi-core host (the listener hands connections to them in turn).
        let gw = keyfence_gateway::start_with(config, &home, vault, 2)
            .await
            .unwrap();
        let admin = format!("http://{}", sim.admin);
        World {
            sim,
            gw,
            home,
            admin,
        }
    }

    pub fn addr(&self, venue: Venue) -> SocketAddr {
        self.gw.addrs[&venue]
    }

    /// Add a bot and make the running gateway see it now.
    pub async fn bot(&self, name: &str, venue: Venue, policy: &str, allow_ips: &[&str]) -> Bot {
        let g = &self.gw.gateway;
        let bot = add_bot(
            &g.store,
            &g.secrets,
            name,
            venue,
            policy,
            allow_ips,
            self.addr(venue),
        )
        .await;
        g.sync(true).await;
        bot
    }

    pub fn sim_log(&self) -> SimLog {
        SimLog {
            admin: self.admin.clone(),
        }
    }

    pub async fn stop(self) {
        self.gw.shutdown().await;
        self.sim.shutdown().await;
        drop(self.home);
    }
}

/// The simulator's request log (`/admin/requests`): what reached the exchange.
#[derive(Clone)]
pub struct SimLog {
    pub admin: String,
}

impl SimLog {
    pub fn new(sim: &RunningSim) -> SimLog {
        SimLog {
            admin: format!("http://{}", sim.admin),
        }
    }

    /// Every request after `since` (a seq), price-feed tickers left out: the gateway fetches
    /// those itself, in the background, whatever the bots send.
    pub async fn since(&self, since: u64) -> Vec<Value> {
        self.all(since)
            .await
            .into_iter()
            .filter(|r| !is_price_feed(r))
            .collect()
    }

    async fn all(&self, since: u64) -> Vec<Value> {
        let v = self.get(&format!("/admin/requests?since={since}")).await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// The newest seq in the log (0 when empty).
    pub async fn mark(&self) -> u64 {
        let all = self.all(0).await;
        all.last().and_then(|r| r["seq"].as_u64()).unwrap_or(0)
    }

    /// The simulator's state of a venue (markets and accounts).
    pub async fn state(&self, venue: Venue) -> Value {
        self.get(&format!("/admin/state?venue={venue}")).await
    }

    /// `POST /admin/faults` for one venue.
    pub async fn faults(&self, venue: Venue, faults: Value) {
        let mut body = faults;
        body["venue"] = Value::String(venue.to_string());
        let req = HttpRequest::new("POST", "/admin/faults")
            .with_header("content-type", "application/json")
            .with_body(body.to_string().into_bytes());
        let r = send(self.addr(), &req).await;
        assert_eq!(r.status, 200, "faults refused: {}", r.body);
    }

    fn addr(&self) -> SocketAddr {
        self.admin.trim_start_matches("http://").parse().unwrap()
    }

    async fn get(&self, target: &str) -> Value {
        let r = send(self.addr(), &HttpRequest::new("GET", target)).await;
        assert_eq!(r.status, 200, "admin GET {target}: {}", r.body);
        serde_json::from_str(&r.body).unwrap()
    }
}

fn is_price_feed(r: &Value) -> bool {
    let path = r["path"].as_str().unwrap_or("");
    r["method"] == "GET"
        && (path == "/api/v3/ticker/price"
            || path == "/v5/market/tickers"
            || path == "/api/v5/market/ticker"
            || path == "/0/public/Ticker"
            || (path.starts_with("/api/v3/brokerage/market/products/")
                && path.ends_with("/ticker")))
}

/// An answer: status and body (status 0 when the connection closed without one).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status) && !self.refused_in_body()
    }

    /// Venues that answer refusals with HTTP 200 and an error code in the body.
    fn refused_in_body(&self) -> bool {
        let Ok(v) = serde_json::from_str::<Value>(&self.body) else {
            return false;
        };
        let nonzero = |k: &str| match &v[k] {
            Value::Number(n) => n.as_i64() != Some(0),
            Value::String(s) => s != "0",
            _ => false,
        };
        nonzero("retCode")
            || nonzero("code")
            || v["error"].as_array().is_some_and(|e| !e.is_empty())
            || v["success"] == false
    }
}

/// Send `req` exactly as it is (path, query and body bytes untouched) over a new connection.
pub async fn send(addr: SocketAddr, req: &HttpRequest) -> Reply {
    let mut head = format!("{} {}", req.method, req.path);
    if !req.query.is_empty() {
        head.push('?');
        head.push_str(&req.query);
    }
    head.push_str(" HTTP/1.1\r\n");
    head.push_str(&format!("host: {addr}\r\nconnection: close\r\n"));
    for (k, v) in &req.headers {
        if k.eq_ignore_ascii_case("host") || k.eq_ignore_ascii_case("content-length") {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !req.body.is_empty() || req.method != "GET" {
        head.push_str(&format!("content-length: {}\r\n", req.body.len()));
    }
    head.push_str("\r\n");
    let closed = Reply {
        status: 0,
        body: String::new(),
    };
    let Ok(Ok(stream)) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    else {
        return closed;
    };
    let (mut rd, mut wr) = stream.into_split();
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&req.body);
    // Write while reading: an oversize body may be answered (and the socket closed) early.
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&bytes).await;
        let _ = wr.flush().await;
        wr
    });
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut chunk = [0u8; 8192];
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    drop(writer.await);
    if read.is_err() {
        return closed;
    }
    parse_reply(&buf)
}

fn parse_reply(buf: &[u8]) -> Reply {
    let Some(split) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Reply {
            status: 0,
            body: String::new(),
        };
    };
    let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    let body = &buf[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_vec()
    };
    Reply {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&b[..eol]);
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        let rest = &b[eol + 2..];
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        b = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// Poll `f` until it is true or `limit` passes.
pub async fn wait_until<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An unsigned Kraken private call with an empty form body (the bot's signing adds the nonce).
pub fn kraken_private(path: &str) -> HttpRequest {
    HttpRequest::new("POST", path).with_header("content-type", "application/x-www-form-urlencoded")
}

/// A limit order in the venue's own request shape; `n` varies the quantity so that orders are
/// distinct requests (no two alike, so none is an exact replay of another).
pub fn limit_order(venue: Venue, n: u32, price: &str, base_qty: &str) -> HttpRequest {
    use rust_decimal::Decimal;
    use std::str::FromStr as _;
    let symbol = match venue {
        Venue::Binance | Venue::Bybit => "BTCUSDT",
        Venue::Okx => "BTC-USDT",
        Venue::Coinbase => "BTC-USD",
        Venue::Kraken => "XBTUSD",
    };
    let qty = Decimal::from_str(base_qty).unwrap() + Decimal::new(i64::from(n), 8);
    keyfence_exchange::order_request(
        venue,
        &keyfence_exchange::OrderSpec {
            symbol: symbol.to_owned(),
            side: keyfence_exchange::Side::Buy,
            quantity: qty,
            price: Some(Decimal::from_str(price).unwrap()),
        },
    )
}
