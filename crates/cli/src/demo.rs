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
    /// Withdrawals on, no IP restriction, two years old: what the audit is for.
    risky: Credential,
    toml: String,
}

/// The permission, in the venue's own name, that lets a key withdraw.
fn withdraw_permission(venue: Venue) -> &'static str {
    match venue {
        Venue::Binance => "enableWithdrawals",
        Venue::Bybit => "Wallet.Withdraw",
        Venue::Okx => "withdraw",
        Venue::Coinbase => "can_transfer",
        Venue::Kraken => "withdraw-funds",
    }
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
    let risky_key = format!("demo-{venue}-risky");
    let (good, bad, risky, material, risky_material) = match venue {
        Venue::Coinbase => {
            let pem = crypto::generate_p256_sec1_pem(rng)?;
            let other = crypto::generate_p256_sec1_pem(rng)?;
            let risky_pem = crypto::generate_p256_sec1_pem(rng)?;
            let public = crypto::PrivateKey::parse(&pem, rng)?.public_key().to_pem();
            let risky_public = crypto::PrivateKey::parse(&risky_pem, rng)?
                .public_key()
                .to_pem();
            let mk = |name: &str, pk: &str| Credential {
                api_key: format!("organizations/demo/apiKeys/{name}"),
                secret: None,
                private_key: secret(pk),
                passphrase: None,
            };
            (
                mk(&api_key, &pem),
                mk(&api_key, &other),
                mk(&risky_key, &risky_pem),
                format!("public_key = {public:?}"),
                format!("public_key = {risky_public:?}"),
            )
        }
        Venue::Kraken => {
            // Kraken secrets are base64.
            let good = "a2V5ZmVuY2UtZGVtby1rcmFrZW4tc2VjcmV0LXZhbHVlLTAxMjM0NTY3ODk=";
            let bad = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZy1zZWNyZXQtMDAwMDA=";
            let risky = "a2V5ZmVuY2UtZGVtby1rcmFrZW4tcmlza3ktc2VjcmV0LTAxMjM0NTY3ODk=";
            let mk = |name: &str, s: &str| Credential {
                api_key: name.to_owned(),
                secret: secret(s),
                private_key: None,
                passphrase: None,
            };
            (
                mk(&api_key, good),
                mk(&api_key, bad),
                mk(&risky_key, risky),
                format!("secret = {good:?}"),
                format!("secret = {risky:?}"),
            )
        }
        _ => {
            let good = format!("demo-{venue}-secret-0123456789abcdef");
            let risky = format!("demo-{venue}-risky-secret-0123456789");
            let mk = |name: &str, s: &str| Credential {
                api_key: name.to_owned(),
                secret: secret(s),
                private_key: None,
                passphrase: (venue == Venue::Okx).then(|| SecretString::new("DemoPass1!".into())),
            };
            (
                mk(&api_key, &good),
                mk(&api_key, "not-the-secret"),
                mk(&risky_key, &risky),
                format!("secret = {good:?}"),
                format!("secret = {risky:?}"),
            )
        }
    };
    let passphrase = if venue == Venue::Okx {
        "passphrase = \"DemoPass1!\"\n"
    } else {
        ""
    };
    let (symbol, base, quote, price) = market(venue);
    // The tidy key was made last week and only works from this host.
    let recent = (time::OffsetDateTime::now_utc() - time::Duration::days(7))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "2026-01-01T00:00:00Z".to_owned());
    let withdraw = withdraw_permission(venue);
    let toml = format!(
        "[venues.{venue}]\nbind = \"127.0.0.1:0\"\nprices = {{ {symbol} = \"{price}\" }}\n\n\
         [[accounts]]\nvenue = \"{venue}\"\nname = \"demo\"\nbalances = {{ {quote} = \"100000\", {base} = \"2\" }}\n\n\
         [[keys]]\nvenue = \"{venue}\"\naccount = \"demo\"\napi_key = {:?}\n{material}\n{passphrase}\
         permissions = [{perms}]\nip_allowlist = [\"127.0.0.1\"]\ncreated = \"{recent}\"\n\n\
         [[keys]]\nvenue = \"{venue}\"\naccount = \"demo\"\napi_key = {:?}\n{risky_material}\n{passphrase}\
         permissions = [{perms}, \"{withdraw}\"]\ncreated = \"2024-01-01T00:00:00Z\"\n\n",
        good.api_key, risky.api_key
    );
    Ok(DemoKey {
        venue,
        good,
        bad,
        risky,
        toml,
    })
}

/// The demo's throwaway home, removed when the demo returns (with an error too).
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
    let signed = sign_now(venue, cred, req, base, nonce, rng)?;
    send_raw(client, base, signed).await
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
    if !audit_tour(&sim, &keys, &client).await? {
        failures += 1;
    }
    let binance = keys
        .iter()
        .find(|k| k.venue == Venue::Binance)
        .ok_or_else(|| anyhow!("no binance key"))?;
    if !gateway_tour(&sim, binance, &client).await? {
        failures += 1;
    }
    sim.shutdown().await;
    if failures == 0 {
        println!(
            "all five venues: signed requests accepted, wrong secrets refused, orders filled, risky keys flagged;"
        );
        println!(
            "the gateway let the bot trade within its policy and refused the rest before signing."
        );
        println!("simulator stopped; nothing is left running.");
        Ok(())
    } else {
        Err(anyhow!("{failures} venue(s) did not behave as expected"))
    }
}

/// Part two: put a tidy and a risky key per venue into a throwaway vault, audit them all.
async fn audit_tour(
    sim: &keyfence_sim::RunningSim,
    keys: &[DemoKey],
    client: &Upstream,
) -> anyhow::Result<bool> {
    use keyfence_audit::{AuditConfig, AuditInput, RuleSet, audit, render};
    use keyfence_upstream::introspect::{Target, introspect_all};
    use keyfence_vault::{Home, Key, NewEntry, Purpose, Tier, Vault};

    println!("== the vault and the audit");
    let dir = Scratch(std::env::temp_dir().join(format!(
        "keyfence-demo-{}-{}",
        std::process::id(),
        now_ms()
    )));
    let home = Home::new(&dir.0);
    home.init()?;
    // A throwaway vault, encrypted to a fresh age identity that dies with the demo.
    let key = Key::Identity(vec![age::x25519::Identity::generate()]);
    let mut vault = Vault::create(&home, &key)?;
    let now = time::OffsetDateTime::now_utc();
    for k in keys {
        let base = sim
            .base_url(k.venue)
            .ok_or_else(|| anyhow!("{} did not start", k.venue))?;
        for (label, service, cred) in [
            (format!("{}-bot", k.venue), "trading-bot", &k.good),
            (format!("{}-old", k.venue), "copy-trading-service", &k.risky),
        ] {
            vault.add(
                NewEntry {
                    label,
                    exchange: k.venue,
                    service: service.to_owned(),
                    purpose: Purpose::Spot,
                    tier: Tier::Auto,
                    endpoint: Some(base.clone()),
                },
                cred.clone(),
                now,
            )?;
        }
    }
    vault.save(&key)?;
    println!(
        "  {} keys in a throwaway vault ({}), shown only by fingerprint",
        vault.entries().len(),
        home.vault_path().display()
    );
    let mut contexts = Vec::new();
    let mut targets = Vec::new();
    for e in vault.entries() {
        let m = &e.meta;
        let mut ctx = crate::audit::context(e);
        if m.label == "binance-old" {
            // Pasted into a second service too: what `key-shared` is about.
            ctx.shared_with.insert("portfolio-tracker".to_owned());
        }
        contexts.push(ctx);
        targets.push(Target {
            label: m.label.clone(),
            venue: m.exchange,
            base_url: m.endpoint.clone().unwrap_or_default(),
            credential: e.credential().clone(),
        });
    }
    let results = introspect_all(client, targets, 16, |_| {}).await;
    // `tier = auto`: value each account from its balances and the simulator's prices.
    let results = crate::audit::value_accounts(client, &mut contexts, results, 16).await;
    let inputs: Vec<AuditInput> = contexts
        .into_iter()
        .zip(results)
        .map(|(context, r)| AuditInput {
            context,
            outcome: r.map_err(|e| e.to_string()),
        })
        .collect();
    let rules = RuleSet::bundled().map_err(|p| anyhow!("bundled rules: {}", p.join("; ")))?;
    let reports = audit(&inputs, &rules, &AuditConfig::default(), now);
    // The summary of every key, then the findings of one risky key with their remedies.
    let table = render::table(&reports);
    let mut blocks = table.split("\n\n");
    println!("  keyfence audit --all\n");
    for line in blocks.next().unwrap_or_default().lines() {
        println!("    {line}");
    }
    if let Some(block) = blocks.find(|b| b.starts_with("binance-old ")) {
        println!();
        for line in block.lines() {
            println!("    {line}");
        }
    }
    println!(
        "\n  (`keyfence audit --all` shows every key's findings; --format json|markdown|sarif)\n"
    );
    drop(dir);
    let all_audited = reports.iter().all(|r| r.outcome.is_ok());
    let risky_flagged = reports
        .iter()
        .filter(|r| r.context.label.ends_with("-old"))
        .all(|r| r.findings().iter().any(|f| f.rule == "withdraw-enabled"));
    Ok(all_audited && risky_flagged)
}

/// Part three: a scripted bot trades through the signing gateway with keyfence-issued
/// credentials. Allowed and refused requests side by side, the kill switch, `journal verify`.
async fn gateway_tour(
    sim: &keyfence_sim::RunningSim,
    binance: &DemoKey,
    client: &Upstream,
) -> anyhow::Result<bool> {
    use keyfence_gateway::GatewayConfig;
    use keyfence_store::{BotCredential, BotRecord, Mode};
    use keyfence_vault::{Home, Key, NewEntry, Purpose, Tier, Vault};

    println!("== the signing gateway (keyfence serve)");
    let venue = Venue::Binance;
    let base = sim
        .base_url(venue)
        .ok_or_else(|| anyhow!("binance did not start"))?;
    let dir = Scratch(std::env::temp_dir().join(format!(
        "keyfence-demo-gw-{}-{}",
        std::process::id(),
        now_ms()
    )));
    let home = Home::new(&dir.0);
    home.init()?;
    let key = Key::Identity(vec![age::x25519::Identity::generate()]);
    let mut vault = Vault::create(&home, &key)?;
    vault.add(
        NewEntry {
            label: "binance-main".into(),
            exchange: venue,
            service: "grid-bot".into(),
            purpose: Purpose::Spot,
            tier: Tier::Auto,
            endpoint: Some(base.clone()),
        },
        binance.good.clone(),
        time::OffsetDateTime::now_utc(),
    )?;
    vault.ensure_gateway_secrets()?;
    vault.save(&key)?;
    let toml = format!(
        r#"[gateway]
sync = "normal"

[listeners.binance]
bind = "127.0.0.1:0"
upstream = "{base}"

[policies.spot-conservative]
symbols = ["BTCUSDT", "ETHUSDT"]
max_order_notional = "1000"
daily_notional = "10000"
price_band_pct = "2"
"#
    );
    println!("  gateway config:");
    for line in toml.lines().filter(|l| !l.is_empty()) {
        println!("    {line}");
    }
    let cfg_path = dir.0.join("gateway.toml");
    std::fs::write(&cfg_path, &toml)?;
    let cfg = GatewayConfig::load(&cfg_path)?;

    // The bot's credentials, issued as `keyfence bot add grid-bot --key binance-main` would.
    let rng = SystemRandom::new();
    let issued = keyfence_gateway::issue::issue(venue, None, &rng)?;
    let secrets = vault
        .gateway_secrets()
        .ok_or_else(|| anyhow!("no gateway secrets"))?;
    let sealed = secrets.seal(&serde_json::to_vec(&issued.keep)?)?;
    let running = keyfence_gateway::start(cfg, home.dir(), vault).await?;
    let gw = running.gateway.clone();
    gw.store
        .add_bot(&BotRecord {
            name: "grid-bot".into(),
            venue,
            key_label: "binance-main".into(),
            policy: "spot-conservative".into(),
            allow_ips: vec!["127.0.0.1".into()],
            created_ms: now_ms(),
            revoked_ms: None,
            credentials: vec![BotCredential {
                id: "demo".into(),
                api_key: issued.api_key.clone(),
                sealed: Some(sealed),
                public_key: None,
                created_ms: now_ms(),
                valid_until_ms: None,
            }],
        })
        .await?;
    gw.sync(true).await;
    let addr = running
        .addrs
        .get(&venue)
        .ok_or_else(|| anyhow!("no binance listener"))?;
    let gw_url = format!("http://{addr}");
    println!(
        "\n  bot `grid-bot` got its own Binance-format key ({}…) and points its base URL at {gw_url};",
        &issued.api_key[..8]
    );
    println!("  the real key never leaves keyfence.\n");
    let bot = Credential {
        api_key: issued.api_key.clone(),
        secret: issued.secret.clone(),
        passphrase: None,
        private_key: None,
    };
    let sim_requests_before = sim_request_count(client, &sim.admin.to_string()).await?;

    let spec = |qty: i64, scale: u32, price: Option<&str>, symbol: &str| OrderSpec {
        symbol: symbol.to_owned(),
        side: Side::Buy,
        quantity: Decimal::new(qty, scale),
        price: price.and_then(|p| p.parse().ok()),
    };
    let withdraw = HttpRequest::new(
        "POST",
        "/sapi/v1/capital/withdraw/apply?coin=USDT&network=TRX&address=TXattacker&amount=5000",
    );
    let mut nonce = 0u64;
    let mut forwarded = 0usize;
    let mut wrong = 0usize;
    println!(
        "  {:<44} {:<9} {:<22} exchange answer",
        "the bot asks", "keyfence", "rule"
    );
    let mut step = |what: &str, want_allow: bool, decision: &str, rule: &str, answer: &str| {
        let ok = (decision == "allow") == want_allow;
        if !ok {
            wrong += 1;
        }
        println!(
            "  {:<44} {:<9} {:<22} {}",
            what,
            if decision == "allow" {
                "ALLOWED"
            } else {
                "REFUSED"
            },
            rule,
            short(answer)
        );
    };
    let cases: Vec<(&str, bool, HttpRequest)> = vec![
        (
            "limit buy 0.01 BTCUSDT at 59,900",
            true,
            order_request(venue, &spec(1, 2, Some("59900"), "BTCUSDT")),
        ),
        (
            "market buy 0.01 BTCUSDT (~600 USDT)",
            true,
            order_request(venue, &spec(1, 2, None, "BTCUSDT")),
        ),
        (
            "market buy 1 BTCUSDT (~60,000 USDT)",
            false,
            order_request(venue, &spec(1, 0, None, "BTCUSDT")),
        ),
        (
            "limit buy 0.01 BTCUSDT at 30,000 (-50%)",
            false,
            order_request(venue, &spec(1, 2, Some("30000"), "BTCUSDT")),
        ),
        (
            "market buy 100 DOGEUSDT (not allowed)",
            false,
            order_request(venue, &spec(100, 0, None, "DOGEUSDT")),
        ),
        ("withdraw 5,000 USDT to an outside address", false, withdraw),
    ];
    let mut replay: Option<HttpRequest> = None;
    for (what, want_allow, req) in cases {
        let signed = sign_now(venue, &bot, req, &gw_url, &mut nonce, &rng)?;
        if replay.is_none() {
            replay = Some(signed.clone());
        }
        let (status, body) = send_raw(client, &gw_url, signed).await?;
        let (decision, rule) = last_decision(&gw).await?;
        if decision == "allow" {
            forwarded += 1;
        }
        step(
            what,
            want_allow,
            &decision,
            &rule,
            &format!("{status} {body}"),
        );
    }
    if let Some(r) = replay {
        let (status, body) = send_raw(client, &gw_url, r).await?;
        let (decision, rule) = last_decision(&gw).await?;
        step(
            "the first request again, replayed",
            false,
            &decision,
            &rule,
            &format!("{status} {body}"),
        );
    }

    println!("\n  $ keyfence kill --reason \"exchange incident\"");
    gw.store
        .set_mode(Mode::Halted, "demo", "exchange incident")
        .await?;
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let signed = sign_now(
        venue,
        &bot,
        order_request(venue, &spec(1, 2, None, "BTCUSDT")),
        &gw_url,
        &mut nonce,
        &rng,
    )?;
    let (status, body) = send_raw(client, &gw_url, signed).await?;
    let (decision, rule) = last_decision(&gw).await?;
    step(
        "market buy 0.01 BTCUSDT while halted",
        false,
        &decision,
        &rule,
        &format!("{status} {body}"),
    );
    let open = HttpRequest::new("DELETE", "/api/v3/openOrders?symbol=BTCUSDT");
    let signed = sign_now(venue, &bot, open, &gw_url, &mut nonce, &rng)?;
    let (status, body) = send_raw(client, &gw_url, signed).await?;
    let (decision, rule) = last_decision(&gw).await?;
    if decision == "allow" {
        forwarded += 1;
    }
    step(
        "cancel its open orders while halted",
        true,
        &decision,
        &rule,
        &format!("{status} {body}"),
    );
    println!("  $ keyfence resume");
    gw.store
        .set_mode(Mode::Active, "demo", "incident over")
        .await?;

    let reached = sim_request_count(client, &sim.admin.to_string()).await? - sim_requests_before;
    // Forwarded requests may also have fetched a reference price (public ticker) first.
    let tickers = reached.saturating_sub(forwarded);
    println!(
        "\n  the exchange received {forwarded} signed request(s) (plus {tickers} public ticker read(s)); none of the refused ones"
    );
    let report = gw.store.verify(None).await?;
    let verified = report.first_bad.is_none();
    println!(
        "  $ keyfence journal verify  -> {} ({} entries, hash-chained)",
        if verified { "ok" } else { "BAD" },
        report.entries
    );
    // Shutdown waits for every holder of the gateway to let go.
    drop(gw);
    running.shutdown().await;
    drop(dir);
    println!();
    Ok(wrong == 0 && verified && tickers <= 2)
}

/// `req` signed now with `cred` for `base` (the next nonce, for Kraken).
fn sign_now(
    venue: Venue,
    cred: &Credential,
    mut req: HttpRequest,
    base: &str,
    nonce: &mut u64,
    rng: &SystemRandom,
) -> anyhow::Result<HttpRequest> {
    let key = SigningKey::from_credential(venue, cred, rng)?;
    let host = base
        .split("://")
        .nth(1)
        .ok_or_else(|| anyhow!("bad base URL {base}"))?
        .to_owned();
    *nonce += 1;
    sign(
        venue,
        &key,
        &mut req,
        &SignContext {
            now_ms: now_ms(),
            nonce: Some(*nonce),
            host: &host,
            rng,
        },
    )?;
    Ok(req)
}

async fn send_raw(
    client: &Upstream,
    base: &str,
    req: HttpRequest,
) -> anyhow::Result<(u16, String)> {
    let resp = match client.send(base, Retry::Never, |_| Ok(req.clone())).await {
        Ok(r) => r,
        Err(keyfence_upstream::UpstreamError::Status { response, .. }) => *response,
        Err(e) => return Err(e.into()),
    };
    Ok((
        resp.status,
        String::from_utf8_lossy(&resp.body).into_owned(),
    ))
}

async fn last_decision(
    gw: &keyfence_gateway::pipeline::Gateway,
) -> anyhow::Result<(String, String)> {
    let last = gw.store.tail(1).await?;
    let e = last.last().ok_or_else(|| anyhow!("empty journal"))?;
    let rule = if e.decision == "allow" {
        "-".to_owned()
    } else {
        e.rules.join(",")
    };
    Ok((e.decision.clone(), rule))
}

async fn sim_request_count(client: &Upstream, admin: &str) -> anyhow::Result<usize> {
    let resp = client
        .send(&format!("http://{admin}"), Retry::Idempotent, |_| {
            Ok(HttpRequest::new("GET", "/admin/requests"))
        })
        .await?;
    let v: serde_json::Value = serde_json::from_slice(&resp.body)?;
    Ok(v.as_array().map_or(0, Vec::len))
}
