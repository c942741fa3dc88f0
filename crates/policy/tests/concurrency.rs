//! Caps hold exactly when requests race: 200 threads against one bot's daily_notional.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Barrier, Mutex};
use std::thread;

use common::*;
use keyfence_policy::{
    EndpointClass, Facts, Ledger, Mode, NoPrices, PolicyConfig, Side, Venue, rule,
};
use rust_decimal::Decimal;

const THREADS: usize = 200;

#[test]
fn racing_threads_never_exceed_daily_notional_and_fill_it_exactly() {
    let cap = dec("10000");
    let policy = PolicyConfig {
        daily_notional: Some(cap),
        ..PolicyConfig::default()
    };
    let ledger = Ledger::new();
    let start = Barrier::new(THREADS);
    let allowed: Mutex<Vec<Decimal>> = Mutex::new(Vec::new());
    thread::scope(|s| {
        for i in 0..THREADS {
            let (ledger, policy, start, allowed) = (&ledger, &policy, &start, &allowed);
            s.spawn(move || {
                // Sizes of 25, 50, 75 or 100 until the cap refuses, then 25s to fill any gap:
                // the cap is a multiple of 25, so it must end exactly full.
                let big = Decimal::from(25 * (1 + i % 4));
                let mut mine = Vec::new();
                start.wait();
                for size in [big, Decimal::from(25)] {
                    loop {
                        let o = [quote("BTCUSDT", Side::Buy, &size.to_string())];
                        let facts = Facts {
                            bot: BOT,
                            venue: Venue::Binance,
                            class: EndpointClass::Trade,
                            orders: &o,
                            now_ms: NOON,
                            mode: Mode::Active,
                        };
                        let d = ledger.decide(policy, &facts, &NoPrices);
                        if !d.allowed {
                            assert_eq!(d.rules, vec![rule::DAILY_NOTIONAL]);
                            break;
                        }
                        mine.push(d.reservation.unwrap().notional);
                    }
                }
                allowed.lock().unwrap().extend(mine);
            });
        }
    });
    let allowed = allowed.into_inner().unwrap();
    let sum: Decimal = allowed.iter().sum();
    assert!(sum <= cap, "allowed {sum} over the cap {cap}");
    assert_eq!(sum, cap, "the cap was not reached");
    assert!(allowed.len() >= 100, "{} orders", allowed.len());
    assert_eq!(ledger.usage(BOT).unwrap().notional, cap);
}

#[test]
fn racing_decides_and_releases_keep_usage_exact() {
    let policy = PolicyConfig {
        daily_notional: Some(dec("1000")),
        daily_orders: Some(1_000_000),
        ..PolicyConfig::default()
    };
    let ledger = Ledger::new();
    let start = Barrier::new(THREADS);
    let kept: Mutex<Decimal> = Mutex::new(Decimal::ZERO);
    thread::scope(|s| {
        for i in 0..THREADS {
            let (ledger, policy, start, kept) = (&ledger, &policy, &start, &kept);
            s.spawn(move || {
                start.wait();
                for round in 0..20 {
                    let o = [quote("ETHUSDT", Side::Sell, "10")];
                    let facts = Facts {
                        bot: BOT,
                        venue: Venue::Bybit,
                        class: EndpointClass::Trade,
                        orders: &o,
                        now_ms: NOON,
                        mode: Mode::Active,
                    };
                    let d = ledger.decide(policy, &facts, &NoPrices);
                    if let Some(r) = d.reservation {
                        // Half the allowed requests are "rejected by the exchange".
                        if (i + round) % 2 == 0 {
                            ledger.release(&r);
                        } else {
                            *kept.lock().unwrap() += r.notional;
                        }
                    }
                }
            });
        }
    });
    let kept = kept.into_inner().unwrap();
    let u = ledger.usage(BOT).unwrap();
    assert_eq!(u.notional, kept);
    assert!(kept <= dec("1000"));
}
