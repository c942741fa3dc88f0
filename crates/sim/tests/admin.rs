#![allow(clippy::unwrap_used)] // test code: a failed set-up should fail the test loudly

//! The simulator's admin interface: fault injection, the request log, the body limit, shutdown.

use std::time::{Duration, Instant};

use keyfence_sim::{SimConfig, start};
use serde_json::{Value, json};

const CONFIG: &str = r#"
[admin]
bind = "127.0.0.1:0"

[venues.binance]
bind = "127.0.0.1:0"
prices = { BTCUSDT = "60000" }

[[accounts]]
venue = "binance"
name = "main"
balances = { USDT = "1000" }
"#;

fn client() -> reqwest::Client {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// GET `url` and decode its JSON body.
async fn get_json<T: serde::de::DeserializeOwned>(c: &reqwest::Client, url: String) -> T {
    c.get(url).send().await.unwrap().json().await.unwrap()
}

/// A started simulator, its admin URL, the Binance listener's base URL, and a client.
async fn setup() -> (keyfence_sim::RunningSim, String, String, reqwest::Client) {
    let sim = start(&SimConfig::parse(CONFIG, "test").unwrap())
        .await
        .unwrap();
    let admin = format!("http://{}", sim.admin);
    let base = sim.base_url(keyfence_types::Venue::Binance).unwrap();
    (sim, admin, base, client())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_injected_in_order_and_every_request_is_logged() {
    let (sim, admin, base, c) = setup().await;

    let r = c
        .post(format!("{admin}/admin/faults"))
        .json(&json!({"venue": "binance", "timeouts": 1, "rate_limits": 1, "retry_after_s": 7, "errors": 2, "error_status": 502}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // 1: the injected timeout never answers.
    let hung = c
        .get(format!("{base}/api/v3/time"))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(hung.unwrap_err().is_timeout());
    // 2: a 429 with Retry-After.
    let r = c.get(format!("{base}/api/v3/time")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    // 3 and 4: the error status, twice.
    for _ in 0..2 {
        let r = c.get(format!("{base}/api/v3/time")).send().await.unwrap();
        assert_eq!(r.status(), 502);
    }
    // 5: faults used up; the venue answers for itself.
    let r = c.get(format!("{base}/api/v3/time")).send().await.unwrap();
    assert!(r.status() != 502 && r.status() != 429);

    let log: Vec<Value> = get_json(&c, format!("{admin}/admin/requests?venue=binance")).await;
    let statuses: Vec<u64> = log.iter().map(|e| e["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses[..4], [0, 429, 502, 502]);
    assert_eq!(statuses.len(), 5);
    assert!(log.iter().all(|e| e["path"] == "/api/v3/time"));
    assert!(
        log.iter()
            .all(|e| e["peer"].as_str().unwrap().starts_with("127.0.0.1:"))
    );

    // `since` returns only newer entries; DELETE clears.
    let seq = log[2]["seq"].as_u64().unwrap();
    let newer: Vec<Value> = get_json(&c, format!("{admin}/admin/requests?since={seq}")).await;
    assert_eq!(newer.len(), 2);
    c.delete(format!("{admin}/admin/requests"))
        .send()
        .await
        .unwrap();
    let empty: Vec<Value> = get_json(&c, format!("{admin}/admin/requests")).await;
    assert!(empty.is_empty());

    // Shutdown ends the hung request too, promptly.
    let t = Instant::now();
    sim.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "shutdown took {:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_and_truncated_answers_can_be_injected() {
    let (sim, admin, base, c) = setup().await;
    c.post(format!("{admin}/admin/faults"))
        .json(&json!({"venue": "binance", "html": 1, "truncated": 1}))
        .send()
        .await
        .unwrap();
    let html = c.get(format!("{base}/api/v3/time")).send().await.unwrap();
    assert_eq!(html.status(), 200);
    assert!(html.text().await.unwrap().starts_with("<html>"));
    let cut = c.get(format!("{base}/api/v3/time")).send().await.unwrap();
    let cut = cut.text().await.unwrap();
    let whole = c
        .get(format!("{base}/api/v3/time"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(serde_json::from_str::<Value>(&whole).is_ok(), "{whole}");
    assert!(serde_json::from_str::<Value>(&cut).is_err(), "{cut}");
    assert!(whole.starts_with(&cut) && cut.len() < whole.len());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_is_added_to_every_answer() {
    let (sim, admin, base, c) = setup().await;
    c.post(format!("{admin}/admin/faults"))
        .json(&json!({"venue": "binance", "latency_ms": 200}))
        .send()
        .await
        .unwrap();
    let t = Instant::now();
    c.get(format!("{base}/api/v3/time")).send().await.unwrap();
    // A lower bound: the injected delay happened (not a speed claim).
    assert!(t.elapsed() >= Duration::from_millis(200));
    c.delete(format!("{admin}/admin/faults"))
        .send()
        .await
        .unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_bodies_are_refused_and_logged() {
    let (sim, admin, base, c) = setup().await;
    let r = c
        .post(format!("{base}/api/v3/order"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; (1 << 20) + 1])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let log: Vec<Value> = get_json(&c, format!("{admin}/admin/requests")).await;
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0]["status"].as_u64(),
        Some(u64::from(r.status().as_u16()))
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn price_changes_fill_resting_orders_and_state_is_readable() {
    let sim = start(&SimConfig::parse(CONFIG, "test").unwrap())
        .await
        .unwrap();
    let admin = format!("http://{}", sim.admin);
    let c = client();
    let r: Value = c
        .post(format!("{admin}/admin/price"))
        .json(&json!({"venue": "binance", "symbol": "BTCUSDT", "price": "61000"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r, json!({"ok": true, "filled": 0}));
    let st: Value = get_json(&c, format!("{admin}/admin/state?venue=binance")).await;
    assert_eq!(st["markets"]["BTCUSDT"]["price"], "61000");
    assert_eq!(st["accounts"]["main"]["balances"]["USDT"]["free"], "1000");
    let bad = c
        .post(format!("{admin}/admin/price"))
        .json(&json!({"venue": "binance", "symbol": "NOPE", "price": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    sim.shutdown().await;
}
