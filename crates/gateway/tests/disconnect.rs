//! The end of a request and of the gateway: a bot that hangs up while its order is at the
//! exchange does not cut the request short (its outcome is still journaled, one entry per
//! request), and a clean stop writes what the journal has queued and lets the store go.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{SPOT_BTC, World, db_path, limit_order, store_options, wait_until};
use keyfence_exchange::Venue;
use keyfence_store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_hanging_up_mid_order_still_gets_its_order_journaled() {
    let world = World::start(SPOT_BTC).await;
    let bot = world.bot("hangup", Venue::Binance, "spot", &[]).await;
    let log = world.sim_log();
    // The exchange takes 300 ms to answer; the bot gives up after 50 ms and closes.
    log.faults(Venue::Binance, serde_json::json!({ "latency_ms": 300 }))
        .await;
    let mark = log.mark().await;
    let mut order = limit_order(Venue::Binance, 1, "59000", "0.001");
    bot.sign(&mut order);
    let gave_up = tokio::time::timeout(Duration::from_millis(50), bot.send(order)).await;
    assert!(gave_up.is_err(), "the answer came before the bot hung up");

    let store = world.gw.gateway.store.clone();
    let journaled = wait_until(Duration::from_secs(5), || {
        let store = store.clone();
        async move {
            store.tail(5).await.unwrap().iter().any(|e| {
                e.path.as_deref() == Some("/api/v3/order")
                    && e.decision == "allow"
                    && e.upstream_status == Some(200)
                    && e.order_id.is_some()
            })
        }
    })
    .await;
    assert!(journaled, "{:#?}", store.tail(5).await.unwrap());
    let reached = log.since(mark).await;
    assert_eq!(
        reached
            .iter()
            .filter(|q| q["path"] == "/api/v3/order")
            .count(),
        1,
        "{reached:?}"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_writes_what_is_queued_and_lets_the_store_go() {
    let world = World::start(SPOT_BTC).await;
    let bot = world.bot("stopper", Venue::Binance, "spot", &[]).await;
    let mut order = limit_order(Venue::Binance, 1, "59000", "0.001");
    bot.sign(&mut order);
    let r = bot.send(order).await;
    assert!(r.ok(), "{} {}", r.status, r.body);
    // Right after the answer: the order's entry waits in the journal's queue.
    let World { sim, gw, home, .. } = world;
    gw.shutdown().await;

    // The reservation log is free for the next gateway, and the order's own entry is there:
    // nothing is left to recover.
    let store = Store::open(&db_path(&home), store_options()).await.unwrap();
    assert_eq!(store.recover_pending().await.unwrap(), 0);
    let tail = store.tail(3).await.unwrap();
    assert!(
        tail.iter().any(|e| e.kind == "request"
            && e.path.as_deref() == Some("/api/v3/order")
            && e.upstream_status == Some(200)),
        "{tail:#?}"
    );
    store.close().await;
    sim.shutdown().await;
    drop(home);
}
