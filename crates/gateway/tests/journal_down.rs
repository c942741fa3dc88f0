//! Fail closed: when the journal cannot be written, nothing that trades is forwarded; reads and
//! cancels still pass (they reduce risk). When it can be written again, trading resumes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{SPOT_BTC, World, db_path, limit_order};
use keyfence_exchange::{HttpRequest, Venue};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_journal_stops_trading_but_not_reads() {
    let world = World::start(SPOT_BTC).await;
    let bot = world.bot("jd", Venue::Binance, "spot", &[]).await;
    let log = world.sim_log();

    // Another process breaks the journal: every insert into it now fails.
    let url = format!("sqlite://{}", db_path(&world.home).display());
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER break_journal BEFORE INSERT ON journal BEGIN SELECT RAISE(ABORT, 'disk gone'); END",
    )
    .execute(&raw)
    .await
    .unwrap();

    // A read still passes (its journal entry fails, which marks the journal unhealthy).
    let mut read = HttpRequest::new("GET", "/api/v3/account?recvWindow=60000");
    bot.sign(&mut read);
    let r = bot.send(read).await;
    assert!(r.ok(), "a read must pass: {} {}", r.status, r.body);
    // The read's entry is committed just after the answer; wait for that attempt.
    drop(world.gw.gateway.journal.flush().await);
    assert!(!world.gw.gateway.journal.healthy());

    // An order is refused before it reaches the exchange.
    let mark = log.mark().await;
    let mut order = limit_order(Venue::Binance, 1, "59000", "0.001");
    bot.sign(&mut order);
    let r = bot.send(order).await;
    assert!(
        !r.ok(),
        "an order was forwarded with the journal down: {}",
        r.body
    );
    assert!(r.body.contains("journal-unavailable"), "{}", r.body);
    let reached = log.since(mark).await;
    assert!(
        reached.iter().all(|q| q["path"] != "/api/v3/order"),
        "{reached:?}"
    );

    // A cancel passes.
    let mut cancel = HttpRequest::new(
        "DELETE",
        "/api/v3/openOrders?symbol=BTCUSDT&recvWindow=60000",
    );
    bot.sign(&mut cancel);
    let r = bot.send(cancel).await;
    assert!(
        !r.body.contains("journal-unavailable"),
        "a cancel must pass: {}",
        r.body
    );

    // Repaired: the next entry commits, the journal is healthy, orders pass again.
    sqlx::query("DROP TRIGGER break_journal")
        .execute(&raw)
        .await
        .unwrap();
    let mut read = HttpRequest::new("GET", "/api/v3/account?recvWindow=60000");
    bot.sign(&mut read);
    assert!(bot.send(read).await.ok());
    world.gw.gateway.journal.flush().await.unwrap();
    assert!(world.gw.gateway.journal.healthy());
    let mut order = limit_order(Venue::Binance, 2, "59000", "0.001");
    bot.sign(&mut order);
    let r = bot.send(order).await;
    assert!(r.ok(), "{} {}", r.status, r.body);
    raw.close().await;
    world.stop().await;
}
