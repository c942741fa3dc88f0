//! Tickers and balances for every venue, end to end on the simulator: the requests
//! `keyfence-exchange` builds are the ones each simulated venue serves, and its parsers read the
//! answers (prices, balances, and each venue's own refusals).
#![allow(clippy::unwrap_used, clippy::panic)] // test code

use std::fmt::Write as _;
use std::time::Duration;

use keyfence_exchange::{Credential, SecretString, Venue, crypto, spot_symbol};
use keyfence_sim::{RunningSim, SimConfig, start};
use keyfence_upstream::introspect::{IntrospectBlame, IntrospectError, Nonces, Target};
use keyfence_upstream::market::{Prices, ValueError, account_value, balances, ticker, value_all};
use keyfence_upstream::{Policy, Upstream};
use ring::rand::SystemRandom;
use rust_decimal::Decimal;

const KRAKEN_SECRET: &str = "a2V5ZmVuY2UtdGVzdC1rcmFrZW4tc2VjcmV0LTAxMjM0NTY3ODk=";

struct World {
    sim: RunningSim,
    up: Upstream,
    coinbase_pem: String,
}

/// Per venue: the quote asset of its markets, the asset names the simulator's account holds
/// (the venue's own), and the read permission (`None` where every key can read).
fn venue_facts(venue: Venue) -> (&'static str, [&'static str; 3], Option<&'static str>) {
    match venue {
        Venue::Binance => ("USDT", ["BTC", "ETH", "USDT"], Some("enableReading")),
        Venue::Bybit => ("USDT", ["BTC", "ETH", "USDT"], None),
        Venue::Okx => ("USDT", ["BTC", "ETH", "USDT"], Some("read_only")),
        Venue::Coinbase => ("USD", ["BTC", "ETH", "USD"], Some("can_view")),
        Venue::Kraken => ("USD", ["XXBT", "XETH", "ZUSD"], Some("query-funds")),
    }
}

/// The base assets as [`keyfence_exchange::parse_balances`] spells them.
fn bases(venue: Venue) -> (&'static str, &'static str) {
    match venue {
        Venue::Kraken => ("XBT", "ETH"),
        _ => ("BTC", "ETH"),
    }
}

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
        let (quote, [btc, eth, cash], read) = venue_facts(venue);
        let (b, e) = bases(venue);
        writeln!(
            cfg,
            "[venues.{venue}]\nbind = \"127.0.0.1:0\"\ntls = {}\n\
             prices = {{ {:?} = \"60000.5\", {:?} = \"3000\" }}\n\
             [[accounts]]\nvenue = \"{venue}\"\nname = \"a\"\n\
             balances = {{ {btc} = \"0.5\", {eth} = \"2\", {cash} = \"100\" }}",
            venue == Venue::Coinbase,
            spot_symbol(venue, b, quote),
            spot_symbol(venue, e, quote),
        )
        .unwrap();
        for (name, perms) in [
            ("reader", read.map_or_else(Vec::new, |p| vec![p])),
            ("blind", Vec::new()),
        ] {
            let material = match venue {
                Venue::Coinbase => format!("public_key = {public:?}"),
                Venue::Kraken => format!("secret = {KRAKEN_SECRET:?}"),
                _ => "secret = \"s3cret-0123456789\"".to_owned(),
            };
            let pass = if venue == Venue::Okx {
                "passphrase = \"P1!\"\n"
            } else {
                ""
            };
            writeln!(
                cfg,
                "[[keys]]\nvenue = \"{venue}\"\naccount = \"a\"\napi_key = \"{venue}-{name}\"\n\
                 {material}\n{pass}permissions = {perms:?}"
            )
            .unwrap();
        }
    }
    let sim = start(&SimConfig::parse(&cfg, "test").unwrap())
        .await
        .unwrap();
    let policy = Policy {
        timeout: Duration::from_secs(2),
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
    }
}

fn target(w: &World, venue: Venue, name: &str) -> Target {
    let secret = |s: &str| Some(SecretString::new(s.to_owned()));
    let credential = Credential {
        api_key: format!("{venue}-{name}"),
        secret: match venue {
            Venue::Coinbase => None,
            Venue::Kraken => secret(KRAKEN_SECRET),
            _ => secret("s3cret-0123456789"),
        },
        private_key: (venue == Venue::Coinbase).then(|| SecretString::new(w.coinbase_pem.clone())),
        passphrase: (venue == Venue::Okx).then(|| SecretString::new("P1!".into())),
    };
    Target {
        label: format!("{venue}-{name}"),
        venue,
        base_url: w.sim.base_url(venue).unwrap(),
        credential,
    }
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_venue_serves_tickers_the_exchange_layer_reads() {
    let w = world().await;
    for venue in Venue::ALL {
        let base = w.sim.base_url(venue).unwrap();
        let (quote, _, _) = venue_facts(venue);
        let (b, e) = bases(venue);
        let btc = ticker(&w.up, &base, venue, &spot_symbol(venue, b, quote))
            .await
            .unwrap_or_else(|e| panic!("{venue}: {e}"));
        assert_eq!(btc, d("60000.5"), "{venue}");
        let eth = ticker(&w.up, &base, venue, &spot_symbol(venue, e, quote))
            .await
            .unwrap_or_else(|e| panic!("{venue}: {e}"));
        assert_eq!(eth, d("3000"), "{venue}");

        // A market the venue does not list is the venue's own refusal, not garbage.
        let err = ticker(&w.up, &base, venue, &spot_symbol(venue, "DOGE", quote))
            .await
            .unwrap_err();
        assert!(
            matches!(err, IntrospectError::Refused { .. }),
            "{venue}: {err:?}"
        );
    }
    w.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_venue_serves_balances_to_a_key_that_can_read() {
    let w = world().await;
    let nonces = Nonces::default();
    for venue in Venue::ALL {
        let (quote, _, read) = venue_facts(venue);
        let (b, e) = bases(venue);
        let got = balances(&w.up, &target(&w, venue, "reader"), &nonces)
            .await
            .unwrap_or_else(|e| panic!("{venue}: {e}"));
        let mut want = vec![
            (b.to_owned(), d("0.5")),
            (e.to_owned(), d("2")),
            (quote.to_owned(), d("100")),
        ];
        want.sort();
        assert_eq!(got, want, "{venue}");

        // A key without the read permission is refused by the venue, and blamed on the key.
        if read.is_some() {
            let err = balances(&w.up, &target(&w, venue, "blind"), &nonces)
                .await
                .unwrap_err();
            assert!(
                matches!(err, IntrospectError::Refused { .. }),
                "{venue}: {err:?}"
            );
            assert_eq!(err.blame(), IntrospectBlame::Key, "{venue}");
        }
    }
    w.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_venue_account_is_valued_in_usd() {
    let w = world().await;
    let nonces = Nonces::default();
    let prices = Prices::default();
    for venue in Venue::ALL {
        // 0.5 BTC at 60,000.5 + 2 ETH at 3,000 + 100 dollars.
        let usd = account_value(&w.up, &target(&w, venue, "reader"), &nonces, &prices)
            .await
            .unwrap_or_else(|e| panic!("{venue}: {e}"));
        assert_eq!(usd, d("36100.25"), "{venue}");

        // A key that cannot read balances leaves the value unknown, and says so.
        if venue_facts(venue).2.is_some() {
            let err = account_value(&w.up, &target(&w, venue, "blind"), &nonces, &prices)
                .await
                .unwrap_err();
            assert!(matches!(err, ValueError::Balances(_)), "{venue}: {err}");
            assert!(
                err.to_string().contains("balances could not be read"),
                "{err}"
            );
        }
    }
    // Many keys at once: results in order, prices shared.
    let targets: Vec<Target> = Venue::ALL
        .iter()
        .map(|v| target(&w, *v, "reader"))
        .collect();
    let all = value_all(&w.up, targets, 3).await;
    assert_eq!(all.len(), 5);
    for ((t, r), venue) in all.iter().zip(Venue::ALL) {
        assert_eq!(t.venue, venue);
        assert_eq!(r.as_ref().unwrap(), &d("36100.25"), "{venue}");
    }
    w.sim.shutdown().await;
}
