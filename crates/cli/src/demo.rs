//! `keyfence demo`: a tour on the built-in simulator that stops by itself.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow};
use keyfence_exchange::{
    Credential, HttpRequest, OrderSpec, SecretString, Side, SignContext, SigningKey, Venue, crypto,
    key_info_request, order_request, parse_key_info, sign,
};
use keyfence_upstream::{Policy, Retry, Upstream};
use ring::rand::SystemRandom;
use rust_decimal::Decimal;

/// The market each venue's tour trades: (symbol, base asset, quote asset, price).
fn market(venue: Venue) -> (&'static str, &'static str, &'static str, &'static str) {
    match venue {
        Venue::Binance => ("BTCUSDT", "BTC", "USDT", "60000"),
        Venue::Bybit => ("BTCUSDT", "BTC", "USDT", "60000"),
        Venue::Okx => ("BTC-USDT", "BTC", "USDT", "60000"),
        Venue::Coinbase => ("BTC-USD", "BTC", "USD", "60000"),
        Venue::Kraken => ("XBTUSD", "XXBT", "ZUSD", "60000"),
    }
}

struct DemoKey {
    venue: Venue,
    good: Credential,
    bad: Credential,
    toml: String,
}

fn secret(s: &str) -> Option<SecretString> {
    Some(SecretString::new(s.to_owned()))
}

fn demo_key(venue: Venue, rng: &SystemRandom) -> anyhow::Result<DemoKey> {
    let api_key = format!("demo-{venue}-key");
    let perms = keyfence_sim::venues::trading_permissions(venue)
        .iter()
        .map(|p| format!("{p:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let (good, bad, material) = match venue {
        Venue::Coinbase => {
            let pem = crypto::generate_p256_sec1_pem(rng)?;
            let other = crypto::generate_p256_sec1_pem(rng)?;
            let public = crypto::PrivateKey::parse(&pem, rng)?.public_key().to_pem();
            let mk = |pk: &str| Credential {
                api_key: format!("organizations/demo/apiKeys/{api_key}"),
                secret: None,
                private_key: secret(pk),
                passphrase: None,
            };
            (mk(&pem), mk(&other), format!("public_key = {public:?}"))
        }
        Venue::Kraken => {
            // Kraken secrets are base64.
            let good = "a2V5ZmVuY2UtZGVtby1rcmFrZW4tc2VjcmV0LXZhbHVlLTAxMjM0NTY3ODk=";
            let bad = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZy1zZWNyZXQtMDAwMDA=";
            let mk = |s: &str| Credential {
                api_key: api_key.clone(),
                secret: secret(s),
                private_key: None,
                passphrase: None,
            };
            (mk(good), mk(bad), format!("secret = {good:?}"))
        }
        _ => {
            let good = format!("demo-{venue}-secret-0123456789abcdef");
            let mk = |s: &str| Credential {
                api_key: api_key.clone(),
                secret: secret(s),
                private_key: None,
                passphrase: (venue == Venue::Okx).then(|| SecretString::new("DemoPass1!".into())),
            };
            (
                mk(&good),
                mk("not-the-secret"),
                format!("secret = {good:?}"),
            )
        }
    };
    let passphrase = if venue == Venue::Okx {
        "passphrase = \"DemoPass1!\"\n"
    } else {
        ""
    };
    let (symbol, base, quote, price) = market(venue);
    let toml = format!(
        "[venues.{venue}]\nbind = \"127.0.0.1:0\"\nprices = {{ {symbol} = \"{price}\" }}\n\n\
         [[accounts]]\nvenue = \"{venue}\"\nname = \"demo\"\nbalances = {{ {quote} = \"100000\", {base} = \"2\" }}\n\n\
         [[keys]]\nvenue = \"{venue}\"\naccount = \"demo\"\napi_key = {:?}\n{material}\n{passphrase}\
         permissions = [{perms}]\ncreated = \"2026-01-01T00:00:00Z\"\n\n",
        good.api_key
    );
    Ok(DemoKey {
        venue,
        good,
        bad,
        toml,
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

/// Sign `req` with `cred` and send it once through the upstream client.
async fn send(
    client: &Upstream,
    base: &str,
    venue: Venue,
    cred: &Credential,
    req: HttpRequest,
    nonce: &mut u64,
    rng: &SystemRandom,
) -> anyhow::Result<(u16, String)> {
    let key = SigningKey::from_credential(venue, cred, rng)?;
    let host = base
        .split("://")
        .nth(1)
        .ok_or_else(|| anyhow!("bad base URL {base}"))?
        .to_owned();
    *nonce += 1;
    let n = *nonce;
    let resp = client
        .send(base, Retry::Never, |_| {
            let mut req = req.clone();
            let ctx = SignContext {
                now_ms: now_ms(),
                nonce: Some(n),
                host: &host,
                rng,
            };
            sign(venue, &key, &mut req, &ctx).map_err(|e| e.to_string())?;
            Ok(req)
        })
        .await?;
    Ok((
        resp.status,
        String::from_utf8_lossy(&resp.body).into_owned(),
    ))
}

/// The last trade of the demo account, as the simulator's ledger records it (quantity, price).
async fn last_fill(
    client: &Upstream,
    admin: &str,
    venue: Venue,
) -> anyhow::Result<Option<(String, String)>> {
    let resp = client
        .send(&format!("http://{admin}"), Retry::Idempotent, |_| {
            Ok(HttpRequest::new(
                "GET",
                &format!("/admin/state?venue={venue}"),
            ))
        })
        .await?;
    let state: serde_json::Value = serde_json::from_slice(&resp.body)?;
    let trade = state["accounts"]["demo"]["trades"]
        .as_array()
        .and_then(|t| t.last())
        .map(|t| {
            (
                t["quantity"].as_str().unwrap_or("?").to_owned(),
                t["price"].as_str().unwrap_or("?").to_owned(),
            )
        });
    Ok(trade)
}

fn short(s: &str) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 110 {
        format!("{}…", one_line.chars().take(110).collect::<String>())
    } else {
        one_line
    }
}

pub async fn run() -> anyhow::Result<()> {
    let rng = SystemRandom::new();
    let keys = Venue::ALL
        .into_iter()
        .map(|v| demo_key(v, &rng))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let toml = format!(
        "[admin]\nbind = \"127.0.0.1:0\"\n\n{}",
        keys.iter().map(|k| k.toml.as_str()).collect::<String>()
    );
    let cfg = keyfence_sim::SimConfig::parse(&toml, "demo config")?;
    let sim = keyfence_sim::start(&cfg)
        .await
        .context("cannot start the simulator")?;
    println!("keyfence demo: five paper exchanges on loopback (the simulator)\n");
    let client = Upstream::new(Policy::default())?;
    let mut failures = 0;
    let mut nonce = u64::try_from(now_ms()).unwrap_or(0) * 1000;
    for k in &keys {
        let venue = k.venue;
        let base = sim
            .base_url(venue)
            .ok_or_else(|| anyhow!("{venue} did not start"))?;
        println!("== {venue} at {base}");

        let (status, body) = send(
            &client,
            &base,
            venue,
            &k.good,
            key_info_request(venue),
            &mut nonce,
            &rng,
        )
        .await?;
        let ok = status == 200 && parse_key_info(venue, body.as_bytes()).is_ok();
        match parse_key_info(venue, body.as_bytes()) {
            Ok(p) if status == 200 => println!(
                "  signed key-info request  -> {status} accepted; permissions: {}",
                p.raw_permissions.join(", ")
            ),
            _ => println!("  signed key-info request  -> {status} {}", short(&body)),
        }

        let (status, body) = send(
            &client,
            &base,
            venue,
            &k.bad,
            key_info_request(venue),
            &mut nonce,
            &rng,
        )
        .await?;
        let refused = status != 200 || parse_key_info(venue, body.as_bytes()).is_err();
        println!(
            "  same, wrong secret       -> {status} refused: {}",
            short(&body)
        );

        let (symbol, _, _, _) = market(venue);
        let spec = OrderSpec {
            symbol: symbol.to_owned(),
            side: Side::Buy,
            quantity: Decimal::new(1, 2),
            price: None,
        };
        let (status, body) = send(
            &client,
            &base,
            venue,
            &k.good,
            order_request(venue, &spec),
            &mut nonce,
            &rng,
        )
        .await?;
        println!("  market buy 0.01 {symbol:<8} -> {status} {}", short(&body));
        let fill = last_fill(&client, &sim.admin.to_string(), venue).await?;
        let filled = status == 200 && fill.is_some();
        match fill {
            Some((qty, price)) => {
                println!("  simulator ledger         -> filled {qty} {symbol} at {price}")
            }
            None => println!("  simulator ledger         -> no fill recorded"),
        }
        if !(ok && refused && filled) {
            failures += 1;
        }
        println!();
    }
    sim.shutdown().await;
    if failures == 0 {
        println!(
            "all five venues: signed requests accepted, wrong secrets refused, orders filled."
        );
        println!("simulator stopped; nothing is left running.");
        Ok(())
    } else {
        Err(anyhow!("{failures} venue(s) did not behave as expected"))
    }
}
