//! The hostile corpus: requests a thief, a replaying man in the middle or a confused bot would
//! send. Each one must be refused by the gateway AND must not appear in the simulator's request
//! log (nothing reached the exchange). The corpus is the `CORPUS` table: one line per case.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Bot, World, limit_order, send};
use keyfence_exchange::{HttpRequest, Venue};
use keyfence_gateway::now_ms;

use Attack::*;
use Venue::{Binance, Bybit, Coinbase, Kraken, Okx};
use Who::*;

/// Which bot sends the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// The venue's ordinary trading bot (policy `strict`).
    Trader,
    /// A Binance bot with `allow_ips = ["10.9.9.9"]`; the tests call from 127.0.0.1.
    IpBound,
    /// A Binance bot revoked before the corpus runs.
    Revoked,
    /// A Binance bot's first credential, rotated with an overlap that has already ended.
    Rotated,
}

#[derive(Debug, Clone, Copy)]
enum Attack {
    /// `method target body`, signed correctly now.
    Signed(&'static str, &'static str, &'static str),
    /// `target`, with `field=<json, form-encoded>` as the body (Binance batches), signed now.
    FormBatch(&'static str, &'static str, &'static str),
    /// A fresh order signed with the bot's clock off by this many milliseconds.
    Skewed(i64),
    /// A fresh order that passes, then the very same bytes again.
    Replay,
    /// Coinbase: a fresh order passes; its JWT is reused on a second, different order.
    JwtReuse,
    /// Kraken: a fresh order passes; a second, different order reuses its nonce.
    NonceReuse,
    /// Binance: `symbol` both in the query and in the body, signed over both.
    ParamTwice,
    /// A fresh order signed, then a query string added (a man in the middle's parameters).
    UnsignedQuery(&'static str),
    /// A 1 MiB + 1 byte body.
    Oversize,
    /// A fresh, ordinary order (refused for who sends it).
    Order,
}

struct Case {
    name: &'static str,
    venue: Venue,
    who: Who,
    attack: Attack,
    /// A substring the refusal must contain (the rule that fired, or the venue's own words).
    says: &'static str,
}

const fn case(
    name: &'static str,
    venue: Venue,
    who: Who,
    attack: Attack,
    says: &'static str,
) -> Case {
    Case {
        name,
        venue,
        who,
        attack,
        says,
    }
}

const W_BN: &str = "coin=BTC&address=bc1qattacker&amount=0.5";
const W_BY: &str =
    r#"{"coin":"BTC","chain":"BTC","address":"bc1qattacker","amount":"0.5","timestamp":1}"#;
const W_OKX: &str = r#"{"ccy":"BTC","amt":"0.5","dest":"4","toAddr":"bc1qattacker","fee":"0.0001","chain":"BTC-Bitcoin"}"#;
const W_KR: &str = "asset=XBT&key=attacker&amount=0.5";
const W_CB: &str = r#"{"type":"send","to":"bc1qattacker","amount":"0.5","currency":"BTC"}"#;

const BN_BATCH: &str = r#"[{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":"0.001","price":"50000","timeInForce":"GTC"},{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":"2","price":"50000","timeInForce":"GTC"}]"#;
const BY_BATCH: &str = r#"{"category":"spot","request":[{"symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.001","price":"50000","timeInForce":"GTC"},{"symbol":"DOGEUSDT","side":"Buy","orderType":"Limit","qty":"10","price":"0.1","timeInForce":"GTC"}]}"#;
const OKX_BATCH: &str = r#"[{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"0.001","px":"50000"},{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"2","px":"50000"}]"#;

/// Refusal words: the rule ids the gateway puts in its messages.
const REPLAY: &str = "replay";
/// Timestamp refusals keep each venue's own code, so clients resync their clocks as usual.
const BN_TIME: &str = "-1021";
const BY_TIME: &str = "10002";
const OKX_TIME: &str = "50102";
const CB_AUTH: &str = "Unauthorized";
const WITHDRAW: &str = "class-not-allowed";
const UNKNOWN: &str = "unknown-endpoint";

#[rustfmt::skip]
const CORPUS: &[Case] = &[
    // exact replays, per venue
    case("binance exact replay", Binance, Trader, Replay, REPLAY),
    case("bybit exact replay", Bybit, Trader, Replay, REPLAY),
    case("okx exact replay", Okx, Trader, Replay, REPLAY),
    case("coinbase exact replay", Coinbase, Trader, Replay, REPLAY),
    case("kraken exact replay", Kraken, Trader, Replay, REPLAY),
    case("coinbase JWT reused on another order", Coinbase, Trader, JwtReuse, REPLAY),
    case("kraken nonce reused on another order", Kraken, Trader, NonceReuse, REPLAY),
    // timestamps outside the window
    case("binance timestamp 70 s old", Binance, Trader, Skewed(-70_000), BN_TIME),
    case("binance timestamp 10 s ahead", Binance, Trader, Skewed(10_000), BN_TIME),
    case("bybit timestamp 70 s old", Bybit, Trader, Skewed(-70_000), BY_TIME),
    case("bybit timestamp 10 s ahead", Bybit, Trader, Skewed(10_000), BY_TIME),
    case("okx timestamp 70 s old", Okx, Trader, Skewed(-70_000), OKX_TIME),
    case("okx timestamp 70 s ahead", Okx, Trader, Skewed(70_000), OKX_TIME),
    case("coinbase JWT expired", Coinbase, Trader, Skewed(-300_000), CB_AUTH),
    case("coinbase JWT from the future", Coinbase, Trader, Skewed(300_000), CB_AUTH),
    // parameter pollution
    case("binance symbol in query and body", Binance, Trader, ParamTwice, "more than once"),
    case("bybit unsigned query on a POST", Bybit, Trader, UnsignedQuery("symbol=DOGEUSDT&qty=1000"), "not covered"),
    case("okx unsigned query on a POST", Okx, Trader, UnsignedQuery("instId=DOGE-USDT&sz=1000"), "50113"),
    case("kraken unsigned query on a POST", Kraken, Trader, UnsignedQuery("pair=DOGEUSD&volume=1000"), "not the query"),
    case("coinbase unsigned query on a POST", Coinbase, Trader, UnsignedQuery("product_id=DOGE-USD"), CB_AUTH),
    // withdrawals, plain and disguised
    case("binance withdraw", Binance, Trader, Signed("POST", "/sapi/v1/capital/withdraw/apply", W_BN), WITHDRAW),
    case("binance withdraw %2F", Binance, Trader, Signed("POST", "/sapi/v1/capital/withdraw%2Fapply", W_BN), WITHDRAW),
    case("binance withdraw %2f", Binance, Trader, Signed("POST", "/sapi/v1/capital%2fwithdraw%2fapply", W_BN), WITHDRAW),
    case("binance withdraw //", Binance, Trader, Signed("POST", "/sapi/v1/capital//withdraw/apply", W_BN), WITHDRAW),
    case("binance withdraw leading //", Binance, Trader, Signed("POST", "//sapi/v1/capital/withdraw/apply", W_BN), WITHDRAW),
    case("binance withdraw upper case", Binance, Trader, Signed("POST", "/SAPI/V1/CAPITAL/WITHDRAW/APPLY", W_BN), WITHDRAW),
    case("binance withdraw trailing /", Binance, Trader, Signed("POST", "/sapi/v1/capital/withdraw/apply/", W_BN), WITHDRAW),
    case("binance withdraw ;param", Binance, Trader, Signed("POST", "/sapi/v1/capital/withdraw/apply;jsessionid=1", W_BN), WITHDRAW),
    case("binance withdraw mid ;param", Binance, Trader, Signed("POST", "/sapi/v1/capital/withdraw;x=1/apply", W_BN), WITHDRAW),
    case("binance withdraw ./", Binance, Trader, Signed("POST", "/sapi/v1/./capital/withdraw/apply", W_BN), WITHDRAW),
    case("binance withdraw ../", Binance, Trader, Signed("POST", "/api/v3/../../sapi/v1/capital/withdraw/apply", W_BN), WITHDRAW),
    case("binance withdraw %2e%2e", Binance, Trader, Signed("POST", "/api/v3/%2e%2e/%2e%2e/sapi/v1/capital/withdraw/apply", W_BN), WITHDRAW),
    case("binance withdraw %61pply", Binance, Trader, Signed("POST", "/sapi/v1/capital/withdraw/%61pply", W_BN), WITHDRAW),
    case("binance withdraw double-encoded", Binance, Trader, Signed("POST", "/sapi/v1/capital/withdraw%252Fapply", W_BN), "path cannot be read"),
    case("bybit withdraw", Bybit, Trader, Signed("POST", "/v5/asset/withdraw/create", W_BY), WITHDRAW),
    case("bybit withdraw %2F", Bybit, Trader, Signed("POST", "/v5/asset/withdraw%2Fcreate", W_BY), WITHDRAW),
    case("bybit withdraw case", Bybit, Trader, Signed("POST", "/V5/Asset/Withdraw/Create", W_BY), WITHDRAW),
    case("bybit withdraw via ../", Bybit, Trader, Signed("POST", "/v5/order/../asset/withdraw/create", W_BY), WITHDRAW),
    case("okx withdraw", Okx, Trader, Signed("POST", "/api/v5/asset/withdrawal", W_OKX), WITHDRAW),
    case("okx withdraw %2F", Okx, Trader, Signed("POST", "/api/v5/asset%2Fwithdrawal", W_OKX), WITHDRAW),
    case("okx withdraw trailing /", Okx, Trader, Signed("POST", "/api/v5/asset/withdrawal/", W_OKX), WITHDRAW),
    case("okx withdraw //", Okx, Trader, Signed("POST", "/api/v5//asset/withdrawal", W_OKX), WITHDRAW),
    case("kraken withdraw", Kraken, Trader, Signed("POST", "/0/private/Withdraw", W_KR), WITHDRAW),
    case("kraken withdraw lower case", Kraken, Trader, Signed("POST", "/0/private/withdraw", W_KR), WITHDRAW),
    case("kraken withdraw ./", Kraken, Trader, Signed("POST", "/0/private/./Withdraw", W_KR), WITHDRAW),
    case("kraken withdraw ;param", Kraken, Trader, Signed("POST", "/0/private/Withdraw;x", W_KR), WITHDRAW),
    case("coinbase send", Coinbase, Trader, Signed("POST", "/v2/accounts/abc/transactions", W_CB), WITHDRAW),
    case("coinbase send %2F", Coinbase, Trader, Signed("POST", "/v2/accounts/abc%2Ftransactions", W_CB), WITHDRAW),
    case("coinbase send trailing /", Coinbase, Trader, Signed("POST", "/v2/accounts/abc/transactions/", W_CB), WITHDRAW),
    // a trading path in disguise is not a trading path
    case("binance order ;param", Binance, Trader, Signed("POST", "/api/v3/order;x=1", "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=50000"), UNKNOWN),
    // batches where one order breaks the policy
    case("binance futures batch, one over max notional", Binance, Trader, FormBatch("/fapi/v1/batchOrders", "batchOrders", BN_BATCH), "max-order-notional"),
    case("bybit batch, one symbol not allowed", Bybit, Trader, Signed("POST", "/v5/order/create-batch", BY_BATCH), "symbol"),
    case("okx batch, one over max notional", Okx, Trader, Signed("POST", "/api/v5/trade/batch-orders", OKX_BATCH), "max-order-notional"),
    // unknown endpoints
    case("binance unknown endpoint", Binance, Trader, Signed("POST", "/sapi/v9/brand/new", "x=1"), UNKNOWN),
    case("bybit unknown endpoint", Bybit, Trader, Signed("POST", "/v5/brand/new", "{}"), UNKNOWN),
    case("okx unknown endpoint", Okx, Trader, Signed("GET", "/api/v5/brand/new", ""), UNKNOWN),
    case("coinbase unknown endpoint", Coinbase, Trader, Signed("GET", "/api/v3/brokerage/brand/new", ""), UNKNOWN),
    case("kraken unknown endpoint", Kraken, Trader, Signed("POST", "/0/private/BrandNew", "x=1"), UNKNOWN),
    // oversize body
    case("binance body over 1 MiB", Binance, Trader, Oversize, "large"),
    case("bybit body over 1 MiB", Bybit, Trader, Oversize, "large"),
    // who is asking
    case("wrong source IP", Binance, IpBound, Order, "ip-not-allowed"),
    case("revoked credential", Binance, Revoked, Order, "bot-revoked"),
    case("rotated credential after its overlap", Binance, Rotated, Order, "credential-expired"),
];

const POLICIES: &str = r#"
[policies.strict]
classes = ["read", "trade", "cancel"]
symbols = ["BTCUSDT", "ETHUSDT", "BTCUSD", "ETHUSD"]
max_order_notional = "1000"
"#;

struct Bots {
    traders: Vec<Bot>,
    ip_bound: Bot,
    revoked: Bot,
    rotated: Bot,
}

impl Bots {
    fn get(&self, who: Who, venue: Venue) -> &Bot {
        match who {
            Trader => self.traders.iter().find(|b| b.venue == venue).unwrap(),
            IpBound => &self.ip_bound,
            Revoked => &self.revoked,
            Rotated => &self.rotated,
        }
    }
}

fn content_type(body: &str) -> Option<&'static str> {
    match body.as_bytes().first() {
        None => None,
        Some(b'{' | b'[') => Some("application/json"),
        Some(_) => Some("application/x-www-form-urlencoded"),
    }
}

fn request(method: &str, target: &str, body: &str) -> HttpRequest {
    let mut r = HttpRequest::new(method, target).with_body(body.as_bytes().to_vec());
    if let Some(ct) = content_type(body) {
        r = r.with_header("content-type", ct);
    }
    r
}

/// A fresh order for `bot`: every call is a different request.
fn fresh_order(bot: &Bot) -> HttpRequest {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(1);
    limit_order(
        bot.venue,
        N.fetch_add(1, Ordering::SeqCst),
        "50000",
        "0.001",
    )
}

/// What must pass before the attack (so the attack is a replay of something real).
async fn must_pass(bot: &Bot, req: &HttpRequest, name: &str) {
    let r = send(bot.addr, req).await;
    assert!(
        r.ok(),
        "{name}: the genuine request was refused ({}): {}",
        r.status,
        r.body
    );
}

/// Build (and, for replays, first send the genuine request), then return the hostile request.
async fn hostile(bot: &Bot, attack: Attack, name: &str) -> HttpRequest {
    match attack {
        Signed(method, target, body) => {
            let mut r = request(method, target, body);
            bot.sign(&mut r);
            r
        }
        FormBatch(target, field, json) => {
            let body: String = form_urlencoded::Serializer::new(String::new())
                .append_pair(field, json)
                .finish();
            let mut r = request("POST", target, &body);
            bot.sign(&mut r);
            r
        }
        Skewed(ms) => {
            let mut r = fresh_order(bot);
            bot.sign_at(&mut r, now_ms() + ms, None);
            r
        }
        Replay => {
            let mut r = fresh_order(bot);
            bot.sign(&mut r);
            must_pass(bot, &r, name).await;
            r
        }
        JwtReuse => {
            let mut first = fresh_order(bot);
            bot.sign(&mut first);
            must_pass(bot, &first, name).await;
            let mut second = fresh_order(bot);
            let jwt = first.header("authorization").unwrap().to_owned();
            second.set_header("authorization", &jwt);
            second
        }
        NonceReuse => {
            let nonce = bot.next_nonce();
            let mut first = fresh_order(bot);
            bot.sign_at(&mut first, now_ms(), Some(nonce));
            must_pass(bot, &first, name).await;
            let mut second = fresh_order(bot);
            bot.sign_at(&mut second, now_ms(), Some(nonce));
            second
        }
        ParamTwice => {
            let secret = bot.secret.as_deref().unwrap();
            let query = format!(
                "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=50000&timestamp={}",
                now_ms()
            );
            let body = "symbol=ETHUSDT";
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
            let sig = hex::encode(ring::hmac::sign(&key, format!("{query}{body}").as_bytes()));
            request(
                "POST",
                &format!("/api/v3/order?{query}"),
                &format!("{body}&signature={sig}"),
            )
            .with_header("x-mbx-apikey", &bot.api_key)
        }
        UnsignedQuery(query) => {
            let mut r = fresh_order(bot);
            bot.sign(&mut r);
            r.query = query.to_owned();
            r
        }
        Oversize => {
            let mut r = fresh_order(bot);
            bot.sign(&mut r);
            let pad = "a".repeat(keyfence_exchange::MAX_BODY + 1);
            r.body = match bot.venue {
                Venue::Bybit | Venue::Okx | Venue::Coinbase => {
                    format!("{{\"pad\":\"{pad}\"}}").into_bytes()
                }
                _ => format!("pad={pad}").into_bytes(),
            };
            r
        }
        Order => {
            let mut r = fresh_order(bot);
            bot.sign(&mut r);
            r
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_hostile_request_reaches_the_exchange() {
    let world = World::start(POLICIES).await;
    let mut traders = Vec::new();
    for venue in Venue::ALL {
        traders.push(
            world
                .bot(&format!("trader-{venue}"), venue, "strict", &[])
                .await,
        );
    }
    let ip_bound = world
        .bot("ip-bound", Binance, "strict", &["10.9.9.9"])
        .await;
    let revoked = world.bot("revoked", Binance, "strict", &[]).await;
    let rotated = world.bot("rotated", Binance, "strict", &[]).await;
    let g = &world.gw.gateway;
    // Each bot works before it is made hostile: the refusals below are about the attack.
    for bot in [&revoked, &rotated] {
        must_pass(bot, &hostile(bot, Order, "set-up").await, "set-up").await;
    }
    g.store.revoke_bot("revoked", "hostile test").await.unwrap();
    let successor = common::rotate_bot(&g.store, &g.secrets, &rotated, now_ms()).await;
    g.sync(true).await;
    // The successor credential works; the old one must not (its overlap ended at rotation).
    must_pass(
        &successor,
        &hostile(&successor, Order, "successor").await,
        "successor",
    )
    .await;
    let bots = Bots {
        traders,
        ip_bound,
        revoked,
        rotated,
    };

    let log = world.sim_log();
    let mut failures = Vec::new();
    for c in CORPUS {
        let bot = bots.get(c.who, c.venue);
        assert_eq!(
            bot.venue, c.venue,
            "{}: the bot is on another venue",
            c.name
        );
        let req = hostile(bot, c.attack, c.name).await;
        let mark = log.mark().await;
        let reply = send(bot.addr, &req).await;
        let reached = log.since(mark).await;
        if reply.ok() {
            failures.push(format!(
                "{}: accepted ({}): {}",
                c.name, reply.status, reply.body
            ));
        } else if !reply.body.contains(c.says) {
            failures.push(format!(
                "{}: refused ({}) without `{}`: {}",
                c.name, reply.status, c.says, reply.body
            ));
        }
        if !reached.is_empty() {
            let paths: Vec<String> = reached
                .iter()
                .map(|r| format!("{} {} -> {}", r["method"], r["path"], r["status"]))
                .collect();
            failures.push(format!("{}: reached the simulator: {paths:?}", c.name));
        }
    }
    // A refused credential that keyfence knows is journaled under its bot: who tried matters
    // most when a credential leaked.
    g.journal.flush().await.unwrap();
    let entries = g.store.entries(0, 1_000_000).await.unwrap();
    for (rule, bot) in [
        ("ip-not-allowed", "ip-bound"),
        ("bot-revoked", "revoked"),
        ("credential-expired", "rotated"),
    ] {
        let refused: Vec<_> = entries
            .iter()
            .filter(|e| e.rules.iter().any(|r| r == rule))
            .collect();
        if refused.is_empty() || refused.iter().any(|e| e.bot.as_deref() != Some(bot)) {
            failures.push(format!(
                "{rule}: journaled as {:?}, not under bot `{bot}`",
                refused.iter().map(|e| &e.bot).collect::<Vec<_>>()
            ));
        }
    }
    world.stop().await;
    assert!(
        failures.is_empty(),
        "{} of {} hostile cases failed:\n  {}",
        failures.len(),
        CORPUS.len(),
        failures.join("\n  ")
    );
}
