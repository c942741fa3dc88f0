//! The upstream client against the simulator's fault injection.
#![allow(clippy::unwrap_used)] // test code: a failed set-up should fail the test loudly

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use keyfence_exchange::HttpRequest;
use keyfence_sim::{RunningSim, SimConfig, start};
use keyfence_types::Venue;
use keyfence_upstream::{Blame, Policy, Retry, Upstream, UpstreamError};

const CONFIG: &str = r#"
[admin]
bind = "127.0.0.1:0"

[venues.binance]
bind = "127.0.0.1:0"
prices = { BTCUSDT = "60000" }

[venues.coinbase]
bind = "127.0.0.1:0"
tls = true
prices = { BTC-USD = "60000" }
"#;

fn policy() -> Policy {
    Policy {
        timeout: Duration::from_millis(500),
        max_attempts: 3,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
    }
}

async fn sim() -> (RunningSim, Upstream) {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let sim = start(&SimConfig::parse(CONFIG, "test").unwrap())
        .await
        .unwrap();
    let up = Upstream::with_roots(policy(), &[sim.cert_pem.as_deref().unwrap()]).unwrap();
    (sim, up)
}

async fn faults(sim: &RunningSim, body: &str) {
    let mut s = tokio::net::TcpStream::connect(sim.admin).await.unwrap();
    let req = format!(
        "POST /admin/faults HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tokio::io::AsyncWriteExt::write_all(&mut s, req.as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut s, &mut out)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
}

fn time_request(calls: &AtomicU32) -> impl FnMut(u32) -> Result<HttpRequest, String> + '_ {
    move |attempt| {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok(HttpRequest::new("GET", "/api/v3/time").with_header("x-attempt", &attempt.to_string()))
    }
}

#[tokio::test]
async fn server_errors_are_retried_with_a_freshly_built_request() {
    let (sim, up) = sim().await;
    faults(&sim, r#"{"venue":"binance","errors":2,"error_status":503}"#).await;
    let calls = AtomicU32::new(0);
    let base = sim.base_url(Venue::Binance).unwrap();
    let resp = up
        .send(&base, Retry::Idempotent, time_request(&calls))
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.attempts, 3);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn retries_stop_at_the_limit_and_blame_the_exchange() {
    let (sim, up) = sim().await;
    faults(
        &sim,
        r#"{"venue":"binance","errors":10,"error_status":502}"#,
    )
    .await;
    let calls = AtomicU32::new(0);
    let base = sim.base_url(Venue::Binance).unwrap();
    let err = up
        .send(&base, Retry::Idempotent, time_request(&calls))
        .await
        .unwrap_err();
    match &err {
        UpstreamError::Status {
            status, attempts, ..
        } => assert_eq!((*status, *attempts), (502, 3)),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!((err.blame(), err.retryable()), (Blame::Exchange, true));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn requests_that_must_not_repeat_are_sent_once() {
    let (sim, up) = sim().await;
    faults(&sim, r#"{"venue":"binance","errors":1}"#).await;
    let calls = AtomicU32::new(0);
    let base = sim.base_url(Venue::Binance).unwrap();
    let err = up
        .send(&base, Retry::Never, time_request(&calls))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        UpstreamError::Status {
            status: 503,
            attempts: 1,
            ..
        }
    ));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn retry_after_is_honoured_and_a_long_one_is_not_waited_for() {
    let (sim, up) = sim().await;
    let base = sim.base_url(Venue::Binance).unwrap();
    faults(
        &sim,
        r#"{"venue":"binance","rate_limits":1,"retry_after_s":1}"#,
    )
    .await;
    let calls = AtomicU32::new(0);
    let t = Instant::now();
    let resp = up
        .send(&base, Retry::Idempotent, time_request(&calls))
        .await
        .unwrap();
    assert_eq!((resp.status, resp.attempts), (200, 2));
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        t.elapsed()
    );

    faults(
        &sim,
        r#"{"venue":"binance","rate_limits":1,"retry_after_s":600}"#,
    )
    .await;
    let err = up
        .send(&base, Retry::Idempotent, time_request(&calls))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            UpstreamError::Status {
                status: 429,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn timeouts_are_retried_and_reported() {
    let (sim, up) = sim().await;
    let base = sim.base_url(Venue::Binance).unwrap();
    faults(&sim, r#"{"venue":"binance","timeouts":1}"#).await;
    let calls = AtomicU32::new(0);
    let resp = up
        .send(&base, Retry::Idempotent, time_request(&calls))
        .await
        .unwrap();
    assert_eq!((resp.status, resp.attempts), (200, 2));

    faults(&sim, r#"{"venue":"binance","timeouts":5}"#).await;
    let err = up
        .send(&base, Retry::Idempotent, time_request(&calls))
        .await
        .unwrap_err();
    assert!(
        matches!(err, UpstreamError::Timeout { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(err.blame(), Blame::Exchange);
    sim.shutdown().await;
}

#[tokio::test]
async fn refused_connections_and_bad_urls_are_told_apart() {
    let (sim, up) = sim().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let calls = AtomicU32::new(0);
    let err = up
        .send(
            &format!("http://127.0.0.1:{port}"),
            Retry::Idempotent,
            time_request(&calls),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, UpstreamError::Connect { attempts: 3, .. }),
        "{err:?}"
    );
    let err = up
        .send("ftp://127.0.0.1:1", Retry::Idempotent, time_request(&calls))
        .await
        .unwrap_err();
    assert_eq!((err.blame(), err.retryable()), (Blame::Keyfence, false));
    sim.shutdown().await;
}

#[tokio::test]
async fn tls_with_the_simulators_certificate() {
    let (sim, up) = sim().await;
    let base = sim.base_url(Venue::Coinbase).unwrap();
    assert!(base.starts_with("https://"));
    let resp = up
        .send(&base, Retry::Idempotent, |_| {
            Ok(HttpRequest::new("GET", "/api/v3/brokerage/time"))
        })
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    // Without the simulator's root the certificate is refused (after the bounded retries).
    let plain = Upstream::new(policy()).unwrap();
    let err = plain
        .send(&base, Retry::Idempotent, |_| {
            Ok(HttpRequest::new("GET", "/api/v3/brokerage/time"))
        })
        .await
        .unwrap_err();
    assert_eq!(err.blame(), Blame::Exchange, "{err:?}");
    sim.shutdown().await;
}

/// A server that answers `per_conn` requests on each connection, then closes it without
/// saying so (no `connection: close`), as an exchange's load balancer may. Counts connections.
async fn closing_server(per_conn: usize) -> (String, std::sync::Arc<AtomicU32>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let conns = std::sync::Arc::new(AtomicU32::new(0));
    let counted = conns.clone();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut s = BufReader::new(s);
                for _ in 0..per_conn {
                    // Requests without a body: the head ends at an empty line.
                    loop {
                        let mut line = String::new();
                        if s.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
                    if s.get_mut().write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (base, conns)
}

#[tokio::test]
async fn connections_are_kept_alive_and_a_closed_one_is_not_used_again() {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let up = Upstream::new(policy()).unwrap();
    let calls = AtomicU32::new(0);
    // Kept alive: ten requests, one after another, on one connection.
    let (base, conns) = closing_server(usize::MAX).await;
    for _ in 0..10 {
        let resp = up
            .send(&base, Retry::Never, time_request(&calls))
            .await
            .unwrap();
        assert_eq!((resp.status, resp.body.as_slice()), (200, &b"{}"[..]));
    }
    assert_eq!(conns.load(Ordering::SeqCst), 1);
    // Closed by the server after each answer: every request still succeeds, once each, on a
    // connection of its own (a request that must not repeat is never sent on a dead one).
    let (base, conns) = closing_server(1).await;
    calls.store(0, Ordering::SeqCst);
    for _ in 0..5 {
        let resp = up
            .send(&base, Retry::Never, time_request(&calls))
            .await
            .unwrap();
        assert_eq!(resp.status, 200);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    assert_eq!(conns.load(Ordering::SeqCst), 5);
}

/// A redirect is the exchange's answer, returned as it is: the signed request is not sent on
/// to where `Location` points (docs/gateway.md).
#[tokio::test]
async fn redirects_are_returned_not_followed() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    // Where the redirect points: counts the connections it gets.
    let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let elsewhere_addr = elsewhere.local_addr().unwrap();
    let reached = std::sync::Arc::new(AtomicU32::new(0));
    let counted = reached.clone();
    tokio::spawn(async move {
        while elsewhere.accept().await.is_ok() {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let mut s = BufReader::new(s);
        loop {
            let mut line = String::new();
            if s.read_line(&mut line).await.unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
        }
        let answer = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://{elsewhere_addr}/api/v3/time\r\ncontent-length: 0\r\n\r\n"
        );
        s.get_mut().write_all(answer.as_bytes()).await.unwrap();
    });
    let up = Upstream::new(policy()).unwrap();
    let calls = AtomicU32::new(0);
    let resp = up
        .send(&base, Retry::Never, time_request(&calls))
        .await
        .unwrap();
    assert_eq!(resp.status, 307);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(reached.load(Ordering::SeqCst), 0);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
