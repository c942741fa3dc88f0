//! A running gateway obeys a change made elsewhere (`keyfence kill`, `resume`, `bot revoke` in
//! another process) from the first request that starts after the change returned: the gateway
//! looks at the control stamp at most once per `STAMP_FRESH`, and a change waits twice that
//! before it returns. Requests in between keep the look fresh, so each round sends a few first.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

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
    let mut n = 0;
    let mut order = || {
        n += 1;
        let mut o = limit_order(Venue::Binance, n, "30000", "0.0001");
        bot.sign(&mut o);
        o
    };

    for round in 0..15 {
        // Keep the gateway's look at the stamp fresh right up to the change.
        for _ in 0..3 {
            assert!(
                bot.send(read()).await.ok(),
                "round {round}: a read must pass"
            );
        }
        other
            .set_mode(Mode::Halted, "test", "control drill")
            .await
            .unwrap();
        let r = bot.send(order()).await;
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
        let r = bot.send(order()).await;
        assert!(
            r.ok(),
            "round {round}: the first order after a resume must pass: {} {}",
            r.status,
            r.body
        );
    }

    for _ in 0..3 {
        assert!(bot.send(read()).await.ok());
    }
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
