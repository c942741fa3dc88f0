//! The end of a request and of the gateway: a bot that hangs up while its order is at the
//! exchange does not cut the request short (its outcome is still journaled, one entry per
//! request), and a clean stop writes what the journal has queued and lets the store go.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{
    Reply, SPOT_BTC, SimLog, World, db_path, limit_order, send, store_options, wait_until,
};
use keyfence_exchange::Venue;
use keyfence_store::Store;

/// `n` orders from a new bot to an exchange that answers after 400 ms, each on a connection of
/// its own (the listener hands them to the serving threads in turn); returns at 150 ms, when
/// all are on their way and none answered: the exchange's log, its mark before them, and each
/// order's answer to come.
async fn orders_in_flight(
    world: &World,
    bot: &str,
    n: u32,
) -> (SimLog, u64, Vec<tokio::task::JoinHandle<Reply>>) {
    let bot = world.bot(bot, Venue::Binance, "spot", &[]).await;
    let log = world.sim_log();
    log.faults(Venue::Binance, serde_json::json!({ "latency_ms": 400 }))
        .await;
    let mark = log.mark().await;
    let mut sent = Vec::new();
    for i in 1..=n {
        let mut order = limit_order(Venue::Binance, i, "59000", "0.001");
        bot.sign(&mut order);
        let addr = bot.addr;
        sent.push(tokio::spawn(async move { send(addr, &order).await }));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(
        sent.iter().all(|s| !s.is_finished()),
        "an order was answered early"
    );
    (log, mark, sent)
}

/// Orders allowed and accepted by the exchange among the store's last `last` entries.
async fn orders_journaled(store: &Store, last: u64) -> usize {
    store
        .tail(last)
        .await
        .unwrap()
        .iter()
        .filter(|e| {
            e.path.as_deref() == Some("/api/v3/order")
                && e.decision == "allow"
                && e.upstream_status == Some(200)
        })
        .count()
}

/// How many orders reached the exchange since `mark`.
async fn orders_reached(log: &SimLog, mark: u64) -> usize {
    let reached = log.since(mark).await;
    reached
        .iter()
        .filter(|q| q["path"] == "/api/v3/order")
        .count()
}

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
    assert_eq!(orders_reached(&log, mark).await, 1);
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

/// A stop while orders are at the exchange, on connections spread over the serving threads:
/// each order still gets the exchange's answer, and each is journaled before the store closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_lets_the_orders_in_flight_on_every_serving_thread_finish() {
    let world = World::start(SPOT_BTC).await;
    let (log, mark, sent) = orders_in_flight(&world, "drained", 5).await;
    let World { sim, gw, home, .. } = world;
    gw.shutdown().await;
    for s in sent {
        let r = s.await.unwrap();
        assert!(r.ok(), "{} {}", r.status, r.body);
    }
    let store = Store::open(&db_path(&home), store_options()).await.unwrap();
    assert_eq!(store.recover_pending().await.unwrap(), 0);
    assert_eq!(orders_journaled(&store, 20).await, 5);
    assert_eq!(orders_reached(&log, mark).await, 5);
    store.close().await;
    sim.shutdown().await;
    drop(home);
}

/// A gateway dropped without its shutdown (an early error in its owner) stops serving, but an
/// order already at the exchange still ends: the bot gets its answer and the order its entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_dropped_mid_order_still_ends_the_order() {
    let world = World::start(SPOT_BTC).await;
    let (_, _, sent) = orders_in_flight(&world, "dropped", 1).await;
    let World { sim, gw, home, .. } = world;
    drop(gw);
    for s in sent {
        let r = s.await.unwrap();
        assert!(r.ok(), "{} {}", r.status, r.body);
    }
    // The store is free once the gateway's last task has ended.
    let mut reopened = None;
    for _ in 0..100 {
        if let Ok(store) = Store::open(&db_path(&home), store_options()).await {
            match store.recover_pending().await {
                Ok(n) => {
                    reopened = Some((store, n));
                    break;
                }
                Err(_) => store.close().await,
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (store, recovered) = reopened.expect("the dropped gateway never let the store go");
    assert_eq!(
        recovered, 0,
        "the order was not settled before the gateway let go"
    );
    assert_eq!(orders_journaled(&store, 3).await, 1);
    store.close().await;
    sim.shutdown().await;
    drop(home);
}
