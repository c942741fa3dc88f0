//! Key introspection for every venue against the simulator: good keys, refused keys, and an
//! exchange that answers HTML, truncated JSON, 418, 429 storms or nothing at all.
#![allow(clippy::unwrap_used, clippy::panic)] // test code

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use keyfence_exchange::{Credential, SecretString, Venue, crypto};
use keyfence_sim::{RunningSim, SimConfig, start};
use keyfence_upstream::introspect::{
    IntrospectBlame, IntrospectError, Nonces, Target, introspect, introspect_all,
};
use keyfence_upstream::{Policy, Upstream};
use ring::rand::SystemRandom;

const KRAKEN_SECRET: &str = "a2V5ZmVuY2UtdGVzdC1rcmFrZW4tc2VjcmV0LTAxMjM0NTY3ODk=";

struct World {
    sim: RunningSim,
    up: Upstream,
    coinbase_pem: String,
}

fn perms(venue: Venue) -> &'static str {
    match venue {
        Venue::Binance => r#"["enableReading", "enableSpotAndMarginTrading", "enableWithdrawals"]"#,
        Venue::Bybit => r#"["Spot.SpotTrade", "Wallet.Withdraw"]"#,
        Venue::Okx => r#"["read_only", "trade"]"#,
        Venue::Coinbase => r#"["can_view", "can_trade"]"#,
        Venue::Kraken => r#"["query-funds", "modify-trades"]"#,
    }
}

fn secret_for(venue: Venue, i: usize) -> String {
    match venue {
        Venue::Kraken => KRAKEN_SECRET.to_owned(),
        _ => format!("{venue}-secret-{i}-0123456789"),
    }
}

/// `n` keys per venue (`{venue}-{i}`), plus `{venue}-fenced` whose allowlist excludes 127.0.0.1.
async fn world(n: usize) -> World {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let rng = SystemRandom::new();
    let coinbase_pem = crypto::generate_p256_sec1_pem(&rng).unwrap();
    let public = crypto::PrivateKey::parse(&coinbase_pem, &rng)
        .unwrap()
        .public_key()
        .to_pem();
    let mut cfg = String::from("[admin]\nbind = \"127.0.0.1:0\"\n");
    for venue in Venue::ALL {
        let (sym, tls) = match venue {
            Venue::Okx => ("BTC-USDT", false),
            Venue::Coinbase => ("BTC-USD", true),
            Venue::Kraken => ("XBTUSD", false),
            _ => ("BTCUSDT", false),
        };
        writeln!(
            cfg,
            "[venues.{venue}]\nbind = \"127.0.0.1:0\"\ntls = {tls}\nprices = {{ {sym} = \"60000\" }}\n\
             [[accounts]]\nvenue = \"{venue}\"\nname = \"a\""
        )
        .unwrap();
        let names = (0..n)
            .map(|i| (i.to_string(), ""))
            .chain([("fenced".to_owned(), "ip_allowlist = [\"10.1.2.3\"]\n")]);
        for (i, (name, extra)) in names.enumerate() {
            let material = match venue {
                Venue::Coinbase => format!("public_key = {public:?}"),
                _ => format!("secret = {:?}", secret_for(venue, i)),
            };
            let pass = if venue == Venue::Okx {
                "passphrase = \"P1!\"\n"
            } else {
                ""
            };
            writeln!(
                cfg,
                "[[keys]]\nvenue = \"{venue}\"\naccount = \"a\"\napi_key = \"{venue}-{name}\"\n{material}\n{pass}{extra}permissions = {}",
                perms(venue)
            )
            .unwrap();
        }
    }
    let sim = start(&SimConfig::parse(&cfg, "test").unwrap())
        .await
        .unwrap();
    let policy = Policy {
        timeout: Duration::from_millis(400),
        max_attempts: 3,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
    };
    let up = Upstream::with_roots(policy, &[sim.cert_pem.as_deref().unwrap()]).unwrap();
    World {
        sim,
        up,
        coinbase_pem,
    }
}

fn target(w: &World, venue: Venue, name: &str, i: usize, good: bool) -> Target {
    let secret = if good {
        secret_for(venue, i)
    } else {
        "wrong".to_owned()
    };
    let credential = match venue {
        Venue::Coinbase => Credential {
            api_key: format!("{venue}-{name}"),
            secret: None,
            private_key: Some(SecretString::new(if good {
                w.coinbase_pem.clone()
            } else {
                crypto::generate_p256_sec1_pem(&SystemRandom::new()).unwrap()
            })),
            passphrase: None,
        },
        Venue::Kraken => Credential {
            api_key: format!("{venue}-{name}"),
            secret: Some(SecretString::new(if good {
                KRAKEN_SECRET.to_owned()
            } else {
                "d3Jvbmc=".to_owned()
            })),
            private_key: None,
            passphrase: None,
        },
        _ => Credential {
            api_key: format!("{venue}-{name}"),
            secret: Some(SecretString::new(secret)),
            private_key: None,
            passphrase: (venue == Venue::Okx).then(|| SecretString::new("P1!".into())),
        },
    };
    Target {
        label: format!("{venue}-{name}"),
        venue,
        base_url: w.sim.base_url(venue).unwrap(),
        credential,
    }
}

async fn faults(w: &World, body: &str) {
    let mut s = tokio::net::TcpStream::connect(w.sim.admin).await.unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_venue_is_introspected_and_bad_keys_are_blamed_on_the_key() {
    let w = world(1).await;
    let nonces = Nonces::default();
    for venue in Venue::ALL {
        let p = introspect(&w.up, &target(&w, venue, "0", 0, true), &nonces)
            .await
            .unwrap_or_else(|e| panic!("{venue}: {e}"));
        assert_eq!(p.venue, venue);
        assert!(!p.raw_permissions.is_empty(), "{venue}: {p:?}");
        assert!(
            p.can(keyfence_exchange::Permission::Read) || venue == Venue::Kraken,
            "{venue}: {p:?}"
        );

        let e = introspect(&w.up, &target(&w, venue, "0", 0, false), &nonces)
            .await
            .unwrap_err();
        assert!(
            matches!(e, IntrospectError::Refused { .. }),
            "{venue}: {e:?}"
        );
        assert_eq!(e.blame(), IntrospectBlame::Key, "{venue}: {e}");
        assert!(!e.to_string().contains("secret-0"), "{e}");

        let e = introspect(&w.up, &target(&w, venue, "fenced", 1, true), &nonces)
            .await
            .unwrap_err();
        assert!(
            matches!(e, IntrospectError::Refused { .. }),
            "{venue}: {e:?}"
        );
    }
    w.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_exchange_is_blamed_on_the_exchange() {
    let w = world(1).await;
    let nonces = Nonces::default();
    let t = target(&w, Venue::Binance, "0", 0, true);

    faults(&w, r#"{"venue":"binance","html":1}"#).await;
    let e = introspect(&w.up, &t, &nonces).await.unwrap_err();
    assert!(
        matches!(e, IntrospectError::Garbage { status: 200, .. }),
        "{e:?}"
    );
    assert_eq!(e.blame(), IntrospectBlame::Exchange);

    faults(&w, r#"{"venue":"binance","truncated":1}"#).await;
    let e = introspect(&w.up, &t, &nonces).await.unwrap_err();
    assert!(matches!(e, IntrospectError::Garbage { .. }), "{e:?}");

    faults(&w, r#"{"venue":"binance","errors":10,"error_status":418}"#).await;
    let e = introspect(&w.up, &t, &nonces).await.unwrap_err();
    assert_eq!(e.blame(), IntrospectBlame::Exchange, "{e:?}");

    faults(
        &w,
        r#"{"venue":"binance","rate_limits":10,"retry_after_s":0}"#,
    )
    .await;
    let e = introspect(&w.up, &t, &nonces).await.unwrap_err();
    assert!(matches!(e, IntrospectError::Upstream(_)), "{e:?}");
    assert_eq!(e.blame(), IntrospectBlame::Exchange);

    faults(&w, r#"{"venue":"binance","timeouts":10}"#).await;
    let e = introspect(&w.up, &t, &nonces).await.unwrap_err();
    assert!(e.to_string().contains("no answer within"), "{e}");
    assert_eq!(e.blame(), IntrospectBlame::Exchange);

    // Faults on one venue leave the others alone, and the key is fine once the exchange is.
    faults(&w, r#"{"venue":"binance"}"#).await;
    introspect(&w.up, &t, &nonces).await.unwrap();
    w.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_keys_concurrently_in_order() {
    let n = 10;
    let w = world(n).await;
    let mut targets = Vec::new();
    for venue in Venue::ALL {
        for i in 0..n {
            targets.push(target(&w, venue, &i.to_string(), i, true));
        }
    }
    targets.push(target(&w, Venue::Okx, "0", 0, false));
    let done = Arc::new(AtomicUsize::new(0));
    let seen = done.clone();
    let results = introspect_all(&w.up, targets, 8, move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
    })
    .await;
    assert_eq!(results.len(), 5 * n + 1);
    assert_eq!(done.load(Ordering::SeqCst), 5 * n + 1);
    for (t, r) in &results[..5 * n] {
        assert!(r.is_ok(), "{}: {:?}", t.label, r.as_ref().err());
    }
    assert!(results[5 * n].1.is_err());
    assert_eq!(results[0].0.label, "binance-0");
    assert_eq!(results[5 * n - 1].0.label, format!("kraken-{}", n - 1));
    w.sim.shutdown().await;
}
