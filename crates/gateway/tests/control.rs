//! A running gateway obeys a change made elsewhere (`keyfence kill`, `resume`, `bot revoke` in
//! another process) from the first request that starts after the change returned: the gateway
//! looks at the control stamp at most once per `STAMP_FRESH`, and a change waits twice that
//! before it returns. Reads from the same bot run alongside all along, so the gateway's look
//! at the stamp is fresh whenever a change lands (the requests right after it may skip the look).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use common::{SPOT_BTC, World, db_path, limit_order, store_options};
use keyfence_exchange::{HttpRequest, Venue};
use keyfence_store::{Mode, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_request_after_a_change_elsewhere_obeys_it() {
    let world = World::start(SPOT_BTC).await;
    let bot = world.bot("ctl", Venue::Binance, "spot", &[]).await;
    // Another process's handle on the same store, as `keyfence kill` opens it.
    let other = Store::open(&db_path(&world.home), store_options())
        .await
        .unwrap();
    let read = || {
        let mut r = HttpRequest::new("GET", "/api/v3/account?recvWindow=60000");
        bot.sign(&mut r);
        r
    };
    let stop = AtomicBool::new(false);

    // Reads pass in every mode. Each is a distinct request (two signed in the same
    // millisecond would otherwise be the same bytes, which the gateway refuses as a replay).
    let reads = async {
        let mut n = 0u32;
        while !stop.load(Ordering::Relaxed) {
            let window = 59_000 + n % 1000;
            let mut r = HttpRequest::new("GET", &format!("/api/v3/account?recvWindow={window}"));
            bot.sign(&mut r);
            let r = bot.send(r).await;
            assert!(r.ok(), "a read must pass: {} {}", r.status, r.body);
            n += 1;
        }
        n
    };
    let rounds = async {
        for round in 0..15u32 {
            other
                .set_mode(Mode::Halted, "test", "control drill")
                .await
                .unwrap();
            let mut o = limit_order(Venue::Binance, 2 * round, "30000", "0.0001");
            bot.sign(&mut o);
            let r = bot.send(o).await;
            assert!(
                !r.ok() && r.body.contains("halted"),
                "round {round}: the first order after a kill must be refused: {} {}",
                r.status,
                r.body
            );
            other
                .set_mode(Mode::Active, "test", "resume")
                .await
                .unwrap();
            let mut o = limit_order(Venue::Binance, 2 * round + 1, "30000", "0.0001");
            bot.sign(&mut o);
            let r = bot.send(o).await;
            assert!(
                r.ok(),
                "round {round}: the first order after a resume must pass: {} {}",
                r.status,
                r.body
            );
        }
        stop.store(true, Ordering::Relaxed);
    };
    let (n, ()) = tokio::join!(reads, rounds);
    assert!(n > 0, "the reads ran alongside the changes");

    assert!(bot.send(read()).await.ok());
    other.revoke_bot("ctl", "test").await.unwrap();
    let r = bot.send(read()).await;
    assert!(
        !r.ok() && r.body.contains("bot-revoked"),
        "the first request after a revoke must be refused: {} {}",
        r.status,
        r.body
    );

    other.close().await;
    world.stop().await;
}
