//! `cancel_open` end to end on the simulator, every venue: resting orders are placed, cancelled,
//! and the simulator's own ledger (its admin state, not keyfence's parser) shows none remain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyfence_exchange::{
    Credential, OrderSpec, SecretString, Side, SignContext, SigningKey, Venue, crypto,
    order_request, sign,
};
use keyfence_sim::{RunningSim, SimConfig, start};
use keyfence_upstream::cancel::{CancelError, CancelStep, CancelSummary, cancel_open};
use keyfence_upstream::introspect::Nonces;
use keyfence_upstream::{Policy, Retry, Upstream};
use ring::rand::SystemRandom;
use serde_json::Value;

const KRAKEN_SECRET: &str = "a2V5ZmVuY2UtdGVzdC1rcmFrZW4tc2VjcmV0LTAxMjM0NTY3ODk=";

struct World {
    sim: RunningSim,
    up: Upstream,
    coinbase_pem: String,
    nonces: Nonces,
}

/// (first symbol, second symbol, quote asset) in the venue's own spelling.
fn market(venue: Venue) -> (&'static str, &'static str, &'static str) {
    match venue {
        Venue::Okx => ("BTC-USDT", "ETH-USDT", "USDT"),
        Venue::Coinbase => ("BTC-USD", "ETH-USD", "USD"),
        Venue::Kraken => ("XBTUSD", "ETHUSD", "ZUSD"),
        Venue::Binance | Venue::Bybit => ("BTCUSDT", "ETHUSDT", "USDT"),
    }
}

fn trader_perms(venue: Venue) -> &'static str {
    match venue {
        Venue::Binance => r#"["enableReading", "enableSpotAndMarginTrading"]"#,
        Venue::Bybit => r#"["Spot.SpotTrade"]"#,
        Venue::Okx => r#"["read_only", "trade"]"#,
        Venue::Coinbase => r#"["can_view", "can_trade"]"#,
        Venue::Kraken => {
            r#"["query-funds", "query-open-trades", "query-closed-trades", "modify-trades", "close-trades"]"#
        }
    }
}

/// Keys that may read orders but not cancel them.
fn reader_perms(venue: Venue) -> &'static str {
    match venue {
        Venue::Binance => r#"["enableReading"]"#,
        Venue::Bybit => "[]",
        Venue::Okx => r#"["read_only"]"#,
        Venue::Coinbase => r#"["can_view"]"#,
        Venue::Kraken => r#"["query-funds", "query-open-trades"]"#,
    }
}

fn secret(venue: Venue) -> String {
    match venue {
        Venue::Kraken => KRAKEN_SECRET.to_owned(),
        _ => format!("{venue}-secret-0123456789"),
    }
}

/// Every venue, one account `a` with quote money, a `trader` key and a `reader` key on it.
async fn world() -> World {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let rng = SystemRandom::new();
    let coinbase_pem = crypto::generate_p256_sec1_pem(&rng).unwrap();
    let public = crypto::PrivateKey::parse(&coinbase_pem, &rng)
        .unwrap()
        .public_key()
        .to_pem();
    let mut cfg = String::from("[admin]\nbind = \"127.0.0.1:0\"\n");
    for venue in Venue::ALL {
        let (a, b, quote) = market(venue);
        let tls = venue == Venue::Coinbase;
        writeln!(
            cfg,
            "[venues.{venue}]\nbind = \"127.0.0.1:0\"\ntls = {tls}\n\
             prices = {{ {a} = \"60000\", {b} = \"3000\" }}\n\
             [[accounts]]\nvenue = \"{venue}\"\nname = \"a\"\nbalances = {{ {quote} = \"1000000\" }}"
        )
        .unwrap();
        for (name, perms) in [
            ("trader", trader_perms(venue)),
            ("reader", reader_perms(venue)),
        ] {
            let material = match venue {
                Venue::Coinbase => format!("public_key = {public:?}"),
                _ => format!("secret = {:?}", secret(venue)),
            };
            let pass = if venue == Venue::Okx {
                "passphrase = \"P1!\"\n"
            } else {
                ""
            };
            writeln!(
                cfg,
                "[[keys]]\nvenue = \"{venue}\"\naccount = \"a\"\napi_key = \"{venue}-{name}\"\n{material}\n{pass}permissions = {perms}"
            )
            .unwrap();
        }
    }
    let sim = start(&SimConfig::parse(&cfg, "test").unwrap())
        .await
        .unwrap();
    let policy = Policy {
        timeout: Duration::from_secs(5),
        max_attempts: 2,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(1),
    };
    let up = Upstream::with_roots(policy, &[sim.cert_pem.as_deref().unwrap()]).unwrap();
    World {
        sim,
        up,
        coinbase_pem,
        nonces: Nonces::default(),
    }
}

impl World {
    fn key(&self, venue: Venue, name: &str) -> SigningKey {
        let api_key = format!("{venue}-{name}");
        let credential = match venue {
            Venue::Coinbase => Credential {
                api_key,
                secret: None,
                private_key: Some(SecretString::new(self.coinbase_pem.clone())),
                passphrase: None,
            },
            _ => Credential {
                api_key,
                secret: Some(SecretString::new(secret(venue))),
                private_key: None,
                passphrase: (venue == Venue::Okx).then(|| SecretString::new("P1!".into())),
            },
        };
        SigningKey::from_credential(venue, &credential, &SystemRandom::new()).unwrap()
    }

    fn base(&self, venue: Venue) -> String {
        self.sim.base_url(venue).unwrap()
    }

    fn host(&self, venue: Venue) -> String {
        self.base(venue).split("://").nth(1).unwrap().to_owned()
    }

    /// Send `req` signed with the trader key; the exchange's answer.
    async fn send_signed(
        &self,
        venue: Venue,
        req: keyfence_exchange::HttpRequest,
    ) -> (u16, Vec<u8>) {
        let key = self.key(venue, "trader");
        let host = self.host(venue);
        let rng = SystemRandom::new();
        let resp = self
            .up
            .send(&self.base(venue), Retry::Never, |_| {
                let mut req = req.clone();
                let ctx = SignContext {
                    now_ms: now_ms(),
                    nonce: Some(self.nonces.next()),
                    host: &host,
                    rng: &rng,
                };
                sign(venue, &key, &mut req, &ctx).map_err(|e| e.to_string())?;
                Ok(req)
            })
            .await
            .unwrap();
        (resp.status, resp.body)
    }

    /// Place a resting limit buy (well under the market) with the trader key.
    async fn place(&self, venue: Venue, symbol: &str, price: u32) {
        let spec = OrderSpec {
            symbol: symbol.to_owned(),
            side: Side::Buy,
            quantity: "0.001".parse().unwrap(),
            price: Some(price.to_string().parse().unwrap()),
        };
        let (status, body) = self.send_signed(venue, order_request(venue, &spec)).await;
        assert_eq!(status, 200, "{venue}: {}", String::from_utf8_lossy(&body));
    }

    /// Park an OKX algo order (never triggered by the simulator) with the trader key.
    async fn place_algo(&self, body: Value) {
        let req = keyfence_exchange::HttpRequest::new("POST", "/api/v5/trade/order-algo")
            .with_header("content-type", "application/json")
            .with_body(body.to_string().into_bytes());
        let (_, answer) = self.send_signed(Venue::Okx, req).await;
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(answer["code"], "0", "{answer}");
    }

    /// Algo orders of account `a` still waiting, from the simulator's ledger.
    async fn algos_in_ledger(&self) -> usize {
        let state = self.ledger(Venue::Okx).await;
        state["accounts"]["a"]["algos"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["status"] == "new")
            .count()
    }

    /// Inject faults on the simulator (the next requests of a venue fail).
    async fn fault(&self, body: &str) {
        let admin = format!("http://{}", self.sim.admin);
        let resp = self
            .up
            .send(&admin, Retry::Never, |_| {
                Ok(keyfence_exchange::HttpRequest::new("POST", "/admin/faults")
                    .with_header("content-type", "application/json")
                    .with_body(body.as_bytes().to_vec()))
            })
            .await
            .unwrap();
        assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    }

    /// A GET on the simulator's admin listener, as JSON.
    async fn admin_get(&self, target: &str) -> Value {
        let admin = format!("http://{}", self.sim.admin);
        let resp = self
            .up
            .send(&admin, Retry::Idempotent, |_| {
                Ok(keyfence_exchange::HttpRequest::new("GET", target))
            })
            .await
            .unwrap();
        serde_json::from_slice(&resp.body).unwrap()
    }

    async fn ledger(&self, venue: Venue) -> Value {
        self.admin_get(&format!("/admin/state?venue={venue}")).await
    }

    /// What reached the simulator for `venue`: (method, path, query) of each request.
    async fn requests(&self, venue: Venue) -> Vec<(String, String, String)> {
        let all = self.admin_get("/admin/requests?since=0").await;
        let all = all.as_array().unwrap();
        let text = |r: &Value, k: &str| r[k].as_str().unwrap_or_default().to_owned();
        all.iter()
            .filter(|r| r["venue"] == venue.to_string())
            .map(|r| (text(r, "method"), text(r, "path"), text(r, "query")))
            .collect()
    }

    /// Open orders of account `a`, from the simulator's ledger.
    async fn open_in_ledger(&self, venue: Venue) -> usize {
        let state = self.ledger(venue).await;
        state["accounts"]["a"]["orders"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["status"] == "new")
            .count()
    }

    async fn cancel(&self, venue: Venue, name: &str) -> Result<CancelSummary, CancelError> {
        let key = self.key(venue, name);
        let mut nonce = || self.nonces.next();
        cancel_open(
            &self.up,
            &self.base(venue),
            venue,
            &key,
            &mut nonce,
            &self.host(venue),
        )
        .await
    }
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_venue_cancels_all_open_orders_and_a_read_only_key_is_refused() {
    let w = world().await;
    for venue in Venue::ALL {
        let (a, b, _) = market(venue);
        w.place(venue, a, 30000).await;
        w.place(venue, a, 30001).await;
        w.place(venue, b, 1000).await;
        assert_eq!(w.open_in_ledger(venue).await, 3, "{venue}");

        // A key that may read but not cancel: an error naming the venue, and nothing cancelled.
        let e = w.cancel(venue, "reader").await.unwrap_err();
        assert_eq!(e.venue(), venue, "{e:?}");
        assert_eq!(e.step(), Some(CancelStep::Cancel), "{venue}: {e:?}");
        assert!(matches!(e, CancelError::Refused { .. }), "{venue}: {e:?}");
        let text = e.to_string();
        assert!(text.starts_with(&format!("{venue}: ")), "{text}");
        assert!(!text.contains(&secret(venue)), "{text}");
        assert!(!text.contains("signature="), "{text}");
        assert_eq!(w.open_in_ledger(venue).await, 3, "{venue}");

        let summary = w
            .cancel(venue, "trader")
            .await
            .unwrap_or_else(|e| panic!("{venue}: {e}"));
        let listed = (venue != Venue::Kraken).then_some(3);
        assert_eq!(
            summary,
            CancelSummary {
                listed,
                cancelled: 3
            },
            "{venue}"
        );
        assert_eq!(w.open_in_ledger(venue).await, 0, "{venue}");
        if venue == Venue::Bybit {
            // The simulator's account is unified (`uta` 1): its options are listed too.
            let reqs = w.requests(venue).await;
            let sent = |path: &str, query: &str| {
                reqs.iter()
                    .any(|(m, p, q)| m == "GET" && p == path && q.contains(query))
            };
            assert!(sent("/v5/user/query-api", ""), "{reqs:?}");
            assert!(sent("/v5/order/realtime", "category=option"), "{reqs:?}");
        }

        // Nothing left: a second run lists nothing and cancels nothing.
        let again = w.cancel(venue, "trader").await.unwrap();
        assert_eq!(
            again,
            CancelSummary {
                listed: listed.map(|_| 0),
                cancelled: 0
            },
            "{venue}"
        );
    }
    w.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_orders_than_one_page_or_batch_take_several_requests() {
    let w = world().await;
    // OKX cancels at most 20 per batch; Bybit lists 50 per page; Coinbase 100 per batch_cancel
    // is not reached, but many ids go in one request.
    for (venue, n) in [(Venue::Okx, 45), (Venue::Bybit, 60), (Venue::Coinbase, 30)] {
        let (a, _, _) = market(venue);
        for i in 0..n {
            w.place(venue, a, 30000 + i).await;
        }
        let n = n as usize;
        assert_eq!(w.open_in_ledger(venue).await, n, "{venue}");
        let summary = w.cancel(venue, "trader").await.unwrap();
        // Bybit's listing pages at 50, but its spot cancel-all takes every order at once: the
        // first round sees 50 and cancels all 60, the second lists none.
        let listed = if venue == Venue::Bybit { 50 } else { n };
        assert_eq!(
            summary,
            CancelSummary {
                listed: Some(listed),
                cancelled: n
            },
            "{venue}"
        );
        assert_eq!(w.open_in_ledger(venue).await, 0, "{venue}");
    }
    w.sim.shutdown().await;
}

/// OKX keeps stop and trigger orders apart from orders (its "algo" orders): left waiting, they
/// would trade after the kill switch. They are listed per type and cancelled by algo id, ten
/// per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_algo_orders_are_cancelled_with_the_orders() {
    let w = world().await;
    w.place(Venue::Okx, "BTC-USDT", 30000).await;
    w.place(Venue::Okx, "ETH-USDT", 1000).await;
    let mut algos = 0;
    for (ord_type, n, trigger) in [
        ("trigger", 6, "triggerPx"),
        ("conditional", 3, "slTriggerPx"),
        ("oco", 2, "tpTriggerPx"),
        ("move_order_stop", 1, "activePx"),
        ("twap", 1, "triggerPx"),
    ] {
        for i in 0..n {
            w.place_algo(serde_json::json!({
                "instId": "BTC-USDT", "tdMode": "cash", "side": "sell", "ordType": ord_type,
                "sz": "0.001", trigger: format!("{}", 50000 + i), "orderPx": "-1",
            }))
            .await;
            algos += 1;
        }
    }
    assert_eq!(w.algos_in_ledger().await, algos);

    // A key that may read but not cancel cancels nothing.
    let e = w.cancel(Venue::Okx, "reader").await.unwrap_err();
    assert_eq!(e.step(), Some(CancelStep::Cancel), "{e:?}");
    assert_eq!(w.algos_in_ledger().await, algos);

    let summary = w.cancel(Venue::Okx, "trader").await.unwrap();
    assert_eq!(
        summary,
        CancelSummary {
            listed: Some(algos + 2),
            cancelled: algos + 2
        }
    );
    assert_eq!(w.algos_in_ledger().await, 0);
    assert_eq!(w.open_in_ledger(Venue::Okx).await, 0);

    // A listing that fails (here the first, of the orders) does not stop the others: the algo
    // orders they list are cancelled, then the failure is told; the next run gets the rest.
    w.place(Venue::Okx, "BTC-USDT", 30000).await;
    for ord_type in ["trigger", "iceberg"] {
        w.place_algo(serde_json::json!({
            "instId": "BTC-USDT", "tdMode": "cash", "side": "sell", "ordType": ord_type,
            "sz": "0.001", "triggerPx": "50000", "orderPx": "-1",
        }))
        .await;
    }
    w.fault(r#"{"venue": "okx", "errors": 1, "error_status": 400}"#)
        .await;
    let e = w.cancel(Venue::Okx, "trader").await.unwrap_err();
    assert_eq!(e.step(), Some(CancelStep::List), "{e:?}");
    assert_eq!(w.algos_in_ledger().await, 0);
    assert_eq!(w.open_in_ledger(Venue::Okx).await, 1);
    let summary = w.cancel(Venue::Okx, "trader").await.unwrap();
    assert_eq!(
        summary,
        CancelSummary {
            listed: Some(1),
            cancelled: 1
        }
    );
    w.sim.shutdown().await;
}

/// Bybit's account kind (which says whether options exist) cannot be read: the usual
/// listings still run and what they list is cancelled, then the failure is told; the next run
/// asks again and finds nothing left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bybit_account_of_unknown_kind_still_has_its_orders_cancelled() {
    let w = world().await;
    w.place(Venue::Bybit, "BTCUSDT", 30000).await;
    w.place(Venue::Bybit, "ETHUSDT", 1000).await;
    // The first request of the run, the probe, is refused.
    w.fault(r#"{"venue": "bybit", "errors": 1, "error_status": 400}"#)
        .await;
    let e = w.cancel(Venue::Bybit, "trader").await.unwrap_err();
    assert_eq!(e.step(), Some(CancelStep::List), "{e:?}");
    assert_eq!(w.open_in_ledger(Venue::Bybit).await, 0);
    let refused = w.requests(Venue::Bybit).await;
    assert!(
        !refused
            .iter()
            .any(|(_, _, q)| q.contains("category=option")),
        "options listed without knowing the account: {refused:?}"
    );
    let again = w.cancel(Venue::Bybit, "trader").await.unwrap();
    assert_eq!(
        again,
        CancelSummary {
            listed: Some(0),
            cancelled: 0
        }
    );
    w.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_exchange_is_an_error_naming_the_venue_and_the_step() {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let up = Upstream::new(Policy {
        timeout: Duration::from_millis(300),
        max_attempts: 1,
        ..Policy::default()
    })
    .unwrap();
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cred = Credential {
        api_key: "k".into(),
        secret: Some(SecretString::new("binance-secret-0123456789".into())),
        private_key: None,
        passphrase: None,
    };
    let key = SigningKey::from_credential(Venue::Binance, &cred, &SystemRandom::new()).unwrap();
    let nonces = Nonces::default();
    let mut nonce = || nonces.next();
    let e = cancel_open(
        &up,
        &format!("http://127.0.0.1:{port}"),
        Venue::Binance,
        &key,
        &mut nonce,
        "127.0.0.1",
    )
    .await
    .unwrap_err();
    assert_eq!(e.venue(), Venue::Binance);
    assert_eq!(e.step(), Some(CancelStep::List));
    assert!(
        matches!(
            e,
            CancelError::Upstream {
                retryable: true,
                ..
            }
        ),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.starts_with("binance: listing open orders failed"),
        "{text}"
    );
    assert!(!text.contains("signature"), "{text}");
    assert!(!text.contains("binance-secret"), "{text}");
}
