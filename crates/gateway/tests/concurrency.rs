//! 200 signed orders race one bot's daily notional cap through the gateway, each on its own
//! connection, all at once. The exchange must never accept more than the cap, and the journal's
//! allowed entries must add up to exactly what the exchange accepted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::str::FromStr as _;
use std::sync::Arc;

use common::{World, send};
use keyfence_exchange::{HttpRequest, Venue};
use rust_decimal::Decimal;

const ORDERS: usize = 200;
/// Each order: 0.002 BTC at 50 000 = 100 USDT; the cap fits exactly 50 of them.
const QTY: &str = "0.002";
const PRICE: &str = "50000";
const CAP: &str = "5000";

const POLICIES: &str = r#"
[policies.capped]
classes = ["read", "trade", "cancel"]
symbols = ["BTCUSDT"]
daily_notional = "5000"
"#;

fn order(i: usize) -> HttpRequest {
    HttpRequest::new(
        "POST",
        &format!(
            "/api/v3/order?symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC\
             &quantity={QTY}&price={PRICE}&newClientOrderId=race-{i}&recvWindow=60000"
        ),
    )
}

fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_orders_never_exceed_the_daily_notional_cap() {
    let world = World::start(POLICIES).await;
    let bot = Arc::new(world.bot("racer", Venue::Binance, "capped", &[]).await);
    let log = world.sim_log();
    let mark = log.mark().await;

    // Sign everything first, then release all 200 at once (recvWindow=60000: a busy machine
    // may take seconds to get through them, and a stale timestamp is not what this tests).
    let start = Arc::new(tokio::sync::Barrier::new(ORDERS));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..ORDERS {
        let mut req = order(i);
        bot.sign(&mut req);
        let (bot, start) = (bot.clone(), start.clone());
        tasks.spawn(async move {
            start.wait().await;
            send(bot.addr, &req).await
        });
    }
    let mut allowed = 0usize;
    let mut refused_by_cap = 0usize;
    let mut other = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let r = r.unwrap();
        if r.ok() {
            allowed += 1;
        } else if r.body.contains("daily-notional") {
            refused_by_cap += 1;
        } else {
            other.push(format!("{} {}", r.status, r.body));
        }
    }
    assert!(other.is_empty(), "unexpected answers: {other:#?}");

    let cap = Decimal::from_str(CAP).unwrap();
    let each = Decimal::from_str(QTY).unwrap() * Decimal::from_str(PRICE).unwrap();

    // What the exchange accepted, from its request log.
    let accepted: Vec<_> = log
        .since(mark)
        .await
        .into_iter()
        .filter(|r| r["path"] == "/api/v3/order" && r["status"] == 200)
        .collect();
    let sim_notional: Decimal = accepted
        .iter()
        .map(|r| {
            let q = r["query"].as_str().unwrap();
            Decimal::from_str(param(q, "quantity").unwrap()).unwrap()
                * Decimal::from_str(param(q, "price").unwrap()).unwrap()
        })
        .sum();
    assert!(
        sim_notional <= cap,
        "the exchange accepted {sim_notional} against a cap of {cap}"
    );
    // Nothing is lost to the race either: the cap is used up exactly.
    assert_eq!(sim_notional, cap);
    assert_eq!(accepted.len(), allowed);
    assert_eq!(Decimal::from(allowed) * each, cap);
    assert_eq!(allowed + refused_by_cap, ORDERS);

    // The journal tells the same story.
    let store = &world.gw.gateway.store;
    let entries = store.entries(0, 100_000).await.unwrap();
    let journaled: Decimal = entries
        .iter()
        .filter(|e| {
            e.kind == "request"
                && e.decision == "allow"
                && e.bot.as_deref() == Some("racer")
                && e.orders > 0
        })
        .filter_map(|e| e.notional)
        .sum();
    assert_eq!(journaled, sim_notional);
    let denied = entries
        .iter()
        .filter(|e| e.decision == "deny" && e.rules.iter().any(|r| r == "daily-notional"))
        .count();
    assert_eq!(denied, refused_by_cap);
    let day = keyfence_gateway::now_ms().div_euclid(86_400_000);
    let usage = store.usage(day).await.unwrap();
    let racer = usage.iter().find(|u| u.bot == "racer").unwrap();
    assert_eq!(racer.notional, cap);
    assert_eq!(store.verify(None).await.unwrap().first_bad, None);

    world.stop().await;
}
