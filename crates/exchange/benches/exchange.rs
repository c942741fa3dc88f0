//! Benchmark set-up failures abort the run, loudly.
#![allow(clippy::panic)]

//! Sign + verify of a typical order per venue, and classify + parse of the same request.
//! Run: `cargo bench -p keyfence-exchange --bench exchange`. Figures: docs/benchmarks.md.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use keyfence_exchange::{
    AuthContext, Credential, HttpRequest, OrderSpec, SecretString, Side, SignContext, SigningKey,
    Venue, VerifyKey, authenticate, classify, crypto, order_request, parse_orders, sign,
};
use ring::rand::SystemRandom;

const NOW: i64 = 1_700_000_000_000;
const HOST: &str = "api.coinbase.com";

struct Case {
    name: &'static str,
    venue: Venue,
    key: SigningKey,
    keys: HashMap<String, VerifyKey>,
    request: HttpRequest,
}

fn symbol(venue: Venue) -> &'static str {
    match venue {
        Venue::Binance | Venue::Bybit => "BTCUSDT",
        Venue::Okx => "BTC-USDT",
        Venue::Coinbase => "BTC-USD",
        Venue::Kraken => "XBTUSD",
    }
}

fn case(name: &'static str, venue: Venue, private_pem: Option<String>, rng: &SystemRandom) -> Case {
    let secret = match venue {
        Venue::Kraken => "a2V5ZmVuY2UtYmVuY2gta3Jha2VuLXNlY3JldC12YWx1ZS0wMTIzNDU2Nzg5".to_owned(),
        _ => "bench-secret-0123456789abcdef0123456789abcdef".to_owned(),
    };
    let api_key = if venue == Venue::Coinbase {
        "organizations/bench/apiKeys/bench-key".to_owned()
    } else {
        "bench-key".to_owned()
    };
    let cred = Credential {
        api_key: api_key.clone(),
        secret: private_pem
            .is_none()
            .then(|| SecretString::new(secret.clone())),
        private_key: private_pem.clone().map(SecretString::new),
        passphrase: (venue == Venue::Okx).then(|| SecretString::new("BenchPass1!".into())),
    };
    let key = match SigningKey::from_credential(venue, &cred, rng) {
        Ok(k) => k,
        Err(e) => panic!("bench key for {name}: {e}"),
    };
    let verify = match key.public_key() {
        Some(pk) => VerifyKey::public_pem(&pk.to_pem()),
        None => VerifyKey::hmac(
            venue,
            &secret,
            (venue == Venue::Okx).then(|| SecretString::new("BenchPass1!".into())),
        ),
    };
    let verify = match verify {
        Ok(v) => v,
        Err(e) => panic!("bench verify key for {name}: {e}"),
    };
    let spec = OrderSpec {
        symbol: symbol(venue).into(),
        side: Side::Buy,
        quantity: "0.01".parse().unwrap_or_default(),
        price: Some("59000.5".parse().unwrap_or_default()),
    };
    Case {
        name,
        venue,
        key,
        keys: HashMap::from([(api_key, verify)]),
        request: order_request(venue, &spec),
    }
}

fn sign_and_verify(c: &Case, rng: &SystemRandom, nonce: u64) -> bool {
    let mut req = c.request.clone();
    let ctx = SignContext {
        now_ms: NOW,
        nonce: Some(nonce),
        host: HOST,
        rng,
    };
    if sign(c.venue, &c.key, &mut req, &ctx).is_err() {
        return false;
    }
    let actx = AuthContext {
        now_ms: NOW,
        host: Some(HOST),
    };
    authenticate(c.venue, &req, &actx, &c.keys).is_ok()
}

fn benches(cr: &mut Criterion) {
    let rng = SystemRandom::new();
    let es256 = crypto::generate_p256_sec1_pem(&rng).ok();
    let ed25519 = crypto::generate_ed25519_pem(&rng).ok();
    let cases = vec![
        case("binance-hmac", Venue::Binance, None, &rng),
        case("binance-ed25519", Venue::Binance, ed25519.clone(), &rng),
        case("bybit-hmac", Venue::Bybit, None, &rng),
        case("okx-hmac", Venue::Okx, None, &rng),
        case("kraken-hmac", Venue::Kraken, None, &rng),
        case("coinbase-es256", Venue::Coinbase, es256, &rng),
        case("coinbase-ed25519", Venue::Coinbase, ed25519, &rng),
    ];
    let mut g = cr.benchmark_group("sign+verify");
    for c in &cases {
        assert!(
            sign_and_verify(c, &rng, 1),
            "{}: sign then verify failed",
            c.name
        );
        let mut nonce = 1;
        g.bench_function(c.name, |b| {
            b.iter(|| {
                nonce += 1;
                black_box(sign_and_verify(c, &rng, nonce))
            })
        });
    }
    g.finish();

    // The primitives alone, for scale: what the venue code adds is the difference.
    let mut g = cr.benchmark_group("primitives");
    let msg = [b'x'; 200];
    g.bench_function("hmac-sha256-200B", |b| {
        b.iter(|| black_box(crypto::hmac_sha256(b"bench-secret", black_box(&msg))))
    });
    g.bench_function("kraken-primitives-200B", |b| {
        // Kraken's API-Sign: SHA-256 then HMAC-SHA512 with a 64-byte key.
        b.iter(|| {
            let inner = crypto::sha256(black_box(&msg));
            black_box(crypto::hmac_sha512(&[7u8; 64], &inner))
        })
    });
    for (name, pem) in [
        ("ed25519", crypto::generate_ed25519_pem(&rng)),
        ("p256", crypto::generate_p256_sec1_pem(&rng)),
    ] {
        let Ok(pem) = pem else { continue };
        let Ok(key) = crypto::PrivateKey::parse(&pem, &rng) else {
            continue;
        };
        let public = key.public_key();
        let Ok(sig) = key.sign(&msg, &rng) else {
            continue;
        };
        g.bench_function(format!("{name}-sign"), |b| {
            b.iter(|| black_box(key.sign(black_box(&msg), &rng)))
        });
        g.bench_function(format!("{name}-verify"), |b| {
            b.iter(|| black_box(public.verify(black_box(&msg), &sig)))
        });
    }
    g.finish();

    let mut g = cr.benchmark_group("classify+parse");
    for c in cases.iter().filter(|c| !c.name.ends_with("ed25519")) {
        let mut req = c.request.clone();
        let ctx = SignContext {
            now_ms: NOW,
            nonce: Some(7),
            host: HOST,
            rng: &rng,
        };
        assert!(sign(c.venue, &c.key, &mut req, &ctx).is_ok());
        assert_eq!(
            parse_orders(c.venue, &req).map(|o| o.len()),
            Ok(1),
            "{}",
            c.name
        );
        g.bench_function(c.name, |b| {
            b.iter(|| {
                let class = classify(c.venue, black_box(&req));
                let orders = parse_orders(c.venue, black_box(&req));
                black_box((class, orders))
            })
        });
    }
    g.finish();
}

criterion_group!(exchange, benches);
criterion_main!(exchange);
