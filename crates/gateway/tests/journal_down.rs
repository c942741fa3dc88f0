//! Fail closed: when the journal cannot be written, nothing that trades is forwarded; reads and
//! cancels still pass (they reduce risk). When it can be written again, trading resumes. The
//! same holds for a Kraken bot's nonce, which is recorded before its request goes on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{SPOT_BTC, World, db_path, limit_order, send};
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

/// A Kraken bot's nonce is the only thing that makes its requests fresh, and a restarted
/// gateway knows only the nonces that reached the store: each is recorded before its request
/// goes on. When it cannot be, an order is refused before it reaches the exchange (a
/// restarted gateway would take it again); reads and cancels still pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kraken_nonce_that_cannot_be_recorded_stops_trading() {
    let world = World::start(
        r#"
[policies.kraken]
classes = ["read", "trade", "cancel"]
"#,
    )
    .await;
    let bot = world.bot("kn", Venue::Kraken, "kraken", &[]).await;
    let log = world.sim_log();
    let url = format!("sqlite://{}", db_path(&world.home).display());
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    let balance = || {
        HttpRequest::new("POST", "/0/private/Balance")
            .with_header("content-type", "application/x-www-form-urlencoded")
    };
    // The bot's first request: its floor is read and its nonce recorded.
    assert!(bot.send(balance()).await.ok());

    for sql in [
        "CREATE TRIGGER break_insert BEFORE INSERT ON nonce_floors WHEN NEW.key LIKE 'bot:%' \
         BEGIN SELECT RAISE(ABORT, 'disk gone'); END",
        "CREATE TRIGGER break_update BEFORE UPDATE ON nonce_floors WHEN NEW.key LIKE 'bot:%' \
         BEGIN SELECT RAISE(ABORT, 'disk gone'); END",
    ] {
        sqlx::query(sql).execute(&raw).await.unwrap();
    }
    let mark = log.mark().await;
    let mut order = limit_order(Venue::Kraken, 1, "59000", "0.001");
    bot.sign(&mut order);
    let r = send(bot.addr, &order).await;
    assert!(!r.ok(), "an order went on unrecorded: {}", r.body);
    assert!(r.body.contains("journal-unavailable"), "{}", r.body);
    assert!(
        log.since(mark)
            .await
            .iter()
            .all(|q| q["path"] != "/0/private/AddOrder"),
        "the order reached the exchange"
    );
    let r = bot.send(balance()).await;
    assert!(r.ok(), "a read must pass: {} {}", r.status, r.body);

    // Repaired: the next order passes, and its nonce was in the store before its answer.
    for sql in ["DROP TRIGGER break_insert", "DROP TRIGGER break_update"] {
        sqlx::query(sql).execute(&raw).await.unwrap();
    }
    let mut order = limit_order(Venue::Kraken, 2, "59000", "0.001");
    bot.sign(&mut order);
    let r = send(bot.addr, &order).await;
    assert!(r.ok(), "{} {}", r.status, r.body);
    let floor: i64 =
        sqlx::query_scalar("SELECT MAX(floor) FROM nonce_floors WHERE key LIKE 'bot:%'")
            .fetch_one(&raw)
            .await
            .unwrap();
    assert_eq!(u64::try_from(floor).unwrap(), nonce_of(&order));
    raw.close().await;
    world.stop().await;
}
