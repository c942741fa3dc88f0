//! Fail closed: when the journal cannot be written, nothing that trades is forwarded; reads and
//! cancels still pass (they reduce risk). When it can be written again, trading resumes. The
//! same holds for a Kraken bot's nonce, which is recorded before its request goes on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{SPOT_BTC, World, db_path, kraken_private, limit_order, send};
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

fn nonce_of(req: &HttpRequest) -> u64 {
    String::from_utf8_lossy(&req.body)
        .split('&')
        .find_map(|kv| kv.strip_prefix("nonce="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no nonce in the body"))
}

/// Only a cancel passes for `bot`; neither its order nor its read reaches the exchange.
async fn only_cancels_pass(bot: &common::Bot, log: &common::SimLog, n: u32) {
    let mark = log.mark().await;
    let mut order = limit_order(Venue::Kraken, n, "59000", "0.001");
    bot.sign(&mut order);
    let r = send(bot.addr, &order).await;
    assert!(
        !r.ok(),
        "{}: an order went on unrecorded: {}",
        bot.name,
        r.body
    );
    assert!(r.body.contains("journal-unavailable"), "{}", r.body);
    let r = bot.send(kraken_private("/0/private/Balance")).await;
    assert!(
        r.body.contains("journal-unavailable"),
        "{}: {}",
        bot.name,
        r.body
    );
    let reached = log.since(mark).await;
    assert!(
        reached.iter().all(|q| q["venue"] != "kraken"),
        "{}: {reached:?}",
        bot.name
    );
    let r = bot.send(kraken_private("/0/private/CancelAll")).await;
    assert!(
        r.ok(),
        "{}: a cancel must pass: {} {}",
        bot.name,
        r.status,
        r.body
    );
}

/// A Kraken bot's nonce is the only thing that makes its requests fresh, and a restarted
/// gateway knows only the nonces that reached the store: each is recorded before its request
/// goes on. When a bot's last nonce cannot be read, or the new one recorded, only cancels
/// pass: an order is refused before it reaches the exchange, and so is a read (a replayed
/// token request would hand out a token that trades).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kraken_nonce_that_cannot_be_read_or_recorded_lets_only_cancels_through() {
    let world = World::start(
        r#"
[policies.kraken]
classes = ["read", "trade", "cancel"]
"#,
    )
    .await;
    let known = world.bot("kn-known", Venue::Kraken, "kraken", &[]).await;
    let fresh = world.bot("kn-fresh", Venue::Kraken, "kraken", &[]).await;
    let log = world.sim_log();
    let url = format!("sqlite://{}", db_path(&world.home).display());
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    let balance = || kraken_private("/0/private/Balance");
    // One bot's first request: its floor is read, its nonce recorded.
    assert!(known.send(balance()).await.ok());

    // The other's floor cannot be read (the table is gone for a while).
    sqlx::query("ALTER TABLE nonce_floors RENAME TO nonce_floors_away")
        .execute(&raw)
        .await
        .unwrap();
    only_cancels_pass(&fresh, &log, 1).await;
    sqlx::query("ALTER TABLE nonce_floors_away RENAME TO nonce_floors")
        .execute(&raw)
        .await
        .unwrap();
    assert!(fresh.send(balance()).await.ok());

    // Bots' nonces cannot be recorded.
    for sql in [
        "CREATE TRIGGER break_insert BEFORE INSERT ON nonce_floors WHEN NEW.key LIKE 'bot:%' \
         BEGIN SELECT RAISE(ABORT, 'disk gone'); END",
        "CREATE TRIGGER break_update BEFORE UPDATE ON nonce_floors WHEN NEW.key LIKE 'bot:%' \
         BEGIN SELECT RAISE(ABORT, 'disk gone'); END",
    ] {
        sqlx::query(sql).execute(&raw).await.unwrap();
    }
    only_cancels_pass(&known, &log, 2).await;

    // Repaired: the next order passes, and its nonce was in the store before its answer.
    for sql in ["DROP TRIGGER break_insert", "DROP TRIGGER break_update"] {
        sqlx::query(sql).execute(&raw).await.unwrap();
    }
    let mut order = limit_order(Venue::Kraken, 3, "59000", "0.001");
    known.sign(&mut order);
    let r = send(known.addr, &order).await;
    assert!(r.ok(), "{} {}", r.status, r.body);
    let recorded: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM nonce_floors WHERE key LIKE 'bot:%' AND floor = ?",
    )
    .bind(i64::try_from(nonce_of(&order)).unwrap())
    .fetch_one(&raw)
    .await
    .unwrap();
    assert_eq!(recorded, 1, "the order's nonce is not the bot's floor");

    // A nonce the store could never hold is refused, and takes nothing from the bot.
    let mut huge = balance();
    known.sign_at(&mut huge, keyfence_gateway::now_ms(), Some(u64::MAX));
    let r = send(known.addr, &huge).await;
    assert!(!r.ok() && r.body.contains("nonce is larger"), "{}", r.body);
    assert!(
        known
            .send(kraken_private("/0/private/CancelAll"))
            .await
            .ok()
    );
    raw.close().await;
    world.stop().await;
}
