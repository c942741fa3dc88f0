//! `keyfence serve` killed with SIGKILL under load, then restarted: the journal still verifies
//! (`keyfence journal verify`), the daily notional cap holds across the crash (usage is seeded
//! from the journal, and reservations in flight at the kill are recovered and still count), and
//! the Kraken nonces the exchange sees keep increasing across the restart (a Kraken request
//! captured before the crash is refused as a replay after it).
//!
//! The world (simulator, vault, issued bots) is the gateway crate's shared test module; this
//! test lives here because only this crate's tests can find the built binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../gateway/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use common::{Bot, SimLog, send, wait_until};
use keyfence_exchange::{HttpRequest, Venue};
use keyfence_store::Store;
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// 0.002 BTC at 50 000: 100 USDT an order; the cap fits 100 of them.
const CAP: &str = "10000";
const WORKERS: usize = 6;

const POLICIES: &str = r#"
[gateway]
checkpoint_every = 25

[policies.capped]
classes = ["read", "trade", "cancel"]
symbols = ["BTCUSDT"]
daily_notional = "10000"

[policies.reader]
classes = ["read"]
"#;

struct Serve {
    child: Child,
    addrs: BTreeMap<Venue, SocketAddr>,
}

/// A failed test does not leave the gateway running.
impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keyfence(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keyfence"));
    c.env("KEYFENCE_HOME", home)
        .env("KEYFENCE_PASSPHRASE", common::PASSPHRASE);
    c
}

/// Start `keyfence serve` and read the listeners' addresses from what it prints.
fn serve(home: &Path, config: &Path, run: u32) -> Serve {
    let log = std::fs::File::create(home.join(format!("serve-{run}.log"))).unwrap();
    let mut child = keyfence(home)
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut addrs = BTreeMap::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                let err = std::fs::read_to_string(home.join(format!("serve-{run}.log")));
                panic!("`keyfence serve` did not start: {err:?}")
            });
        if line.starts_with("gateway running") {
            break;
        }
        let mut words = line.split_whitespace();
        if let (Some(venue), Some(url)) = (words.next(), words.next())
            && let (Ok(venue), Some(addr)) = (Venue::from_str(venue), url.strip_prefix("http://"))
        {
            addrs.insert(venue, addr.parse().unwrap());
        }
    }
    // Keep draining stdout so the gateway never blocks on a full pipe.
    std::thread::spawn(move || while rx.recv().is_ok() {});
    assert_eq!(addrs.len(), Venue::ALL.len(), "listeners: {addrs:?}");
    Serve { child, addrs }
}

fn order(n: u32) -> HttpRequest {
    HttpRequest::new(
        "POST",
        &format!(
            "/api/v3/order?symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC\
             &quantity=0.002&price=50000&newClientOrderId=crash-{n}&recvWindow=60000"
        ),
    )
}

/// Binance orders from `WORKERS` connections at once, until `stop`, a refusal by the cap, or
/// the gateway going away. Returns (allowed, refused by the cap).
async fn load(bot: Arc<Bot>, addr: SocketAddr, stop: Arc<AtomicBool>) -> (u32, u32) {
    static N: AtomicU32 = AtomicU32::new(0);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let (bot, stop) = (bot.clone(), stop.clone());
        tasks.spawn(async move {
            let (mut ok, mut capped) = (0, 0);
            while !stop.load(Ordering::SeqCst) {
                let mut req = order(N.fetch_add(1, Ordering::SeqCst));
                bot.sign(&mut req);
                let r = send(addr, &req).await;
                if r.status == 0 {
                    break; // the gateway is gone
                }
                if r.ok() {
                    ok += 1;
                } else if r.body.contains("daily-notional") {
                    capped += 1;
                    break;
                } else {
                    panic!("unexpected answer {}: {}", r.status, r.body);
                }
            }
            (ok, capped)
        });
    }
    let (mut ok, mut capped) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        let (o, c) = r.unwrap();
        ok += o;
        capped += c;
    }
    (ok, capped)
}

/// Kraken balance reads, one after another (a Kraken key's nonces must arrive in order).
/// Returns the last request sent.
async fn kraken_reads(bot: &Bot, addr: SocketAddr, n: usize) -> HttpRequest {
    let mut last = None;
    for _ in 0..n {
        let mut req = common::kraken_private("/0/private/Balance");
        bot.sign(&mut req);
        let r = send(addr, &req).await;
        assert!(r.ok(), "kraken read refused ({}): {}", r.status, r.body);
        last = Some(req);
    }
    last.unwrap()
}

fn nonce_of(body: &str) -> u64 {
    body.split('&')
        .find_map(|kv| kv.strip_prefix("nonce="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no nonce in `{body}`"))
}

fn order_notional(r: &Value) -> Decimal {
    let q = r["query"].as_str().unwrap();
    let p = |name: &str| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .map(|v| Decimal::from_str(v).unwrap())
            .unwrap()
    };
    p("quantity") * p("price")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_gateway_restarts_with_its_journal_caps_and_nonces_intact() {
    let sim = common::start_sim().await;
    let log = SimLog::new(&sim);
    let home = common::tempdir("crash");
    let vault = common::make_vault(&home);
    let config = home.join("gateway.toml");
    std::fs::write(
        &config,
        common::gateway_toml(&sim, &BTreeMap::new(), POLICIES),
    )
    .unwrap();

    // Bots are issued into the store before the gateway first starts (as `bot add` would).
    let placeholder: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let store = Store::open(&common::db_path(&home), common::store_options())
        .await
        .unwrap();
    let secrets = vault.gateway_secrets().unwrap();
    let trader = Arc::new(
        common::add_bot(
            &store,
            secrets,
            "trader",
            Venue::Binance,
            "capped",
            &[],
            placeholder,
        )
        .await,
    );
    let kraken = common::add_bot(
        &store,
        secrets,
        "kraken-reader",
        Venue::Kraken,
        "reader",
        &[],
        placeholder,
    )
    .await;
    store.close().await;

    // Upstream latency keeps orders in flight, so the kill lands mid-request.
    log.faults(Venue::Binance, json!({"latency_ms": 50})).await;
    let first = serve(&home, &config, 1);
    let captured = kraken_reads(&kraken, first.addrs[&Venue::Kraken], 5).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load_a = tokio::spawn(load(
        trader.clone(),
        first.addrs[&Venue::Binance],
        stop.clone(),
    ));
    let accepted_orders = || async {
        log.since(0)
            .await
            .iter()
            .filter(|r| r["path"] == "/api/v3/order" && r["status"] == 200)
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(60), || async {
            accepted_orders().await >= 15
        })
        .await,
        "the load did not get going"
    );
    // One order the exchange never answers: its reservation is certainly pending at the kill.
    log.faults(Venue::Binance, json!({"latency_ms": 50, "timeouts": 1}))
        .await;
    assert!(
        wait_until(Duration::from_secs(30), || async {
            log.since(0).await.iter().any(|r| r["status"] == 0)
        })
        .await,
        "no request hung"
    );
    let mut first = first;
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    let (before_ok, before_capped) = load_a.await.unwrap();
    assert_eq!(before_capped, 0, "the cap was reached before the crash");
    assert!(before_ok >= 15);
    let before_kill = log.mark().await;

    // Restart and push until the cap refuses.
    log.faults(Venue::Binance, json!({"latency_ms": 5})).await;
    let mut second = serve(&home, &config, 2);
    // A Kraken request captured before the crash is still a replay after it (Kraken requests
    // carry no time: the nonce the gateway recorded is all that stops it). These nonces were
    // recorded long before the kill; that each is recorded before its request goes on is
    // shown in crates/gateway/tests/journal_down.rs.
    let r = send(second.addrs[&Venue::Kraken], &captured).await;
    assert!(
        !r.ok() && r.body.contains("replay"),
        "a request from before the crash was taken again ({}): {}",
        r.status,
        r.body
    );
    kraken_reads(&kraken, second.addrs[&Venue::Kraken], 5).await;
    let (after_ok, after_capped) = load(
        trader.clone(),
        second.addrs[&Venue::Binance],
        Arc::new(AtomicBool::new(false)),
    )
    .await;
    assert!(after_capped > 0, "the cap never refused after the restart");
    assert!(after_ok > 0, "nothing was allowed after the restart");
    kraken_reads(&kraken, second.addrs[&Venue::Kraken], 3).await;
    let status = Command::new("kill")
        .args(["-INT", &second.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(second.child.wait().unwrap().success());

    // The journal verifies, through the CLI.
    let out = keyfence(&home)
        .args(["journal", "verify", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "journal verify failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The cap held across the crash: what the exchange accepted never exceeds it, and the
    // journal (allowed entries plus recovered reservations) counts it as full.
    let cap = Decimal::from_str(CAP).unwrap();
    let reached = log.since(0).await;
    let accepted: Decimal = reached
        .iter()
        .filter(|r| r["path"] == "/api/v3/order" && r["status"] == 200)
        .map(order_notional)
        .sum();
    assert!(
        accepted <= cap,
        "the exchange accepted {accepted} against a cap of {cap}"
    );
    let store = Store::open(&common::db_path(&home), common::store_options())
        .await
        .unwrap();
    let entries = store.entries(0, 1_000_000).await.unwrap();
    let recovered: Vec<_> = entries.iter().filter(|e| e.kind == "recovery").collect();
    assert!(
        !recovered.is_empty(),
        "the hung order's reservation was not recovered"
    );
    let counted: Decimal = entries
        .iter()
        .filter(|e| e.decision == "allow" && e.orders > 0 && e.bot.as_deref() == Some("trader"))
        .filter_map(|e| e.notional)
        .sum();
    assert_eq!(counted, cap, "usage after the restart is not the cap");
    let journaled_requests: Decimal = entries
        .iter()
        .filter(|e| e.kind == "request" && e.decision == "allow" && e.orders > 0)
        .filter(|e| e.bot.as_deref() == Some("trader"))
        .filter_map(|e| e.notional)
        .sum();
    assert!(
        journaled_requests <= accepted,
        "the journal holds allowed orders ({journaled_requests}) the exchange never accepted ({accepted})"
    );
    store.close().await;

    // Kraken nonces kept increasing, across the restart too, and the exchange took every one
    // (and never the replayed one).
    let kraken_private: Vec<&Value> = reached
        .iter()
        .filter(|r| r["venue"] == "kraken" && r["path"] == "/0/private/Balance")
        .collect();
    assert_eq!(kraken_private.len(), 13);
    assert!(kraken_private.iter().all(|r| r["status"] == 200));
    let nonces: Vec<u64> = kraken_private
        .iter()
        .map(|r| nonce_of(r["body"].as_str().unwrap()))
        .collect();
    assert!(
        nonces.windows(2).all(|w| w[0] < w[1]),
        "nonces not increasing: {nonces:?}"
    );
    assert!(
        kraken_private
            .iter()
            .any(|r| r["seq"].as_u64().unwrap() > before_kill),
        "no Kraken request after the restart"
    );

    sim.shutdown().await;
    drop(home);
}
