//! The ledger across requests: batches, day rollover, release, seed, allow details.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::*;
use keyfence_policy::{
    BotUsage, EndpointClass, Facts, Ledger, Mode, NoPrices, PolicyConfig, Prices, Side, Venue, rule,
};
use rust_decimal::Decimal;

fn all_rules() -> PolicyConfig {
    PolicyConfig {
        symbols: Some(vec!["BTCUSDT".into(), "ETH-USDT".into()]),
        max_order_notional: Some(dec("5000")),
        daily_notional: Some(dec("10000")),
        daily_orders: Some(100),
        max_position: BTreeMap::from([("BTCUSDT".to_owned(), dec("1"))]),
        orders_per_minute: Some(50),
        price_band_pct: Some(dec("2")),
        trading_hours: Some("06:00-22:00".into()),
        ..PolicyConfig::default()
    }
}

fn usage(ledger: &Ledger) -> BotUsage {
    ledger.usage(BOT).expect("the bot has usage")
}

#[test]
fn ledger_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Ledger>();
}

#[test]
fn an_allowed_trade_lists_every_checked_rule_and_reserves_its_share() {
    let ledger = Ledger::new();
    let orders = [
        limit("BTCUSDT", Side::Buy, "0.05", "60000"),
        market("ETHUSDT", Side::Sell, "0.5"),
    ];
    let d = Req::trade(&orders).decide(&ledger, &all_rules(), &Book::fresh());
    assert_allowed(&d, "all rules on");
    assert_eq!(
        d.rules,
        vec![
            rule::CLASS_NOT_ALLOWED,
            rule::TRADING_HOURS,
            rule::SYMBOL_NOT_ALLOWED,
            rule::PRICE_BAND,
            rule::MAX_ORDER_NOTIONAL,
            rule::MAX_POSITION,
            rule::DAILY_NOTIONAL,
            rule::DAILY_ORDERS,
            rule::ORDERS_PER_MINUTE,
        ]
    );
    // 0.05 × 60 000 + 0.5 × 3 000 (the reference, for the market order).
    assert_eq!(d.notional, Some(dec("4500")));
    let r = d.reservation.expect("an allowed trade reserves");
    assert_eq!(r.bot, BOT);
    assert_eq!(r.day, DAY);
    assert_eq!(r.notional, dec("4500"));
    assert_eq!(r.orders, 2);
    assert_eq!(r.minute_ms, NOON);
    assert_eq!(
        r.positions,
        vec![
            ("BTCUSDT".to_owned(), dec("0.05")),
            ("ETHUSDT".to_owned(), dec("-0.5"))
        ]
    );
    let u = usage(&ledger);
    assert_eq!((u.day, u.notional, u.orders), (DAY, dec("4500"), 2));
    assert_eq!(u.positions.get("ETHUSDT"), Some(&dec("-0.5")));
}

#[test]
fn reads_and_cancels_reserve_nothing() {
    let ledger = Ledger::new();
    for class in [EndpointClass::Read, EndpointClass::Cancel] {
        let d = Req::class(class).decide(&ledger, &all_rules(), &NoPrices);
        assert_allowed(&d, class.as_str());
        assert_eq!(d.reservation, None);
        assert_eq!(d.notional, None);
    }
    assert_eq!(ledger.usage(BOT), None);
}

#[test]
fn one_bad_order_denies_the_whole_batch_and_reserves_nothing() {
    let ledger = Ledger::new();
    let orders = [
        limit("BTCUSDT", Side::Buy, "0.01", "60000"),
        limit("DOGEUSDT", Side::Buy, "1000", "0.1"),
        limit("ETHUSDT", Side::Buy, "0.1", "3000"),
    ];
    let d = Req::trade(&orders).decide(&ledger, &all_rules(), &Book::fresh());
    assert_denied(&d, rule::SYMBOL_NOT_ALLOWED, "batch");
    assert!(
        d.message.contains("order 2 of 3, `DOGEUSDT`"),
        "{}",
        d.message
    );
    // The DOGE order also has no reference price for the band.
    assert_eq!(
        d.rules,
        vec![rule::SYMBOL_NOT_ALLOWED, rule::REFERENCE_PRICE_STALE]
    );
    let u = usage(&ledger);
    assert_eq!((u.notional, u.orders), (Decimal::ZERO, 0));
    assert!(u.positions.is_empty());
    // The good orders alone pass, with the whole of today's capacity.
    let good = [orders[0].clone(), orders[2].clone()];
    let d = Req::trade(&good).decide(&ledger, &all_rules(), &Book::fresh());
    assert_allowed(&d, "the good orders");
    assert_eq!(usage(&ledger).notional, dec("900"));
}

#[test]
fn every_failing_rule_is_named() {
    let ledger = Ledger::new();
    let orders = [limit("SOLUSDT", Side::Buy, "1000", "150")];
    let d = Req::trade(&orders).at(at(23, 0)).decide(
        &ledger,
        &all_rules(),
        &Book::one("SOLUSDT", "100", at(23, 0)),
    );
    assert!(!d.allowed);
    assert_eq!(
        d.rules,
        vec![
            rule::TRADING_HOURS,
            rule::SYMBOL_NOT_ALLOWED,
            rule::PRICE_BAND,
            rule::MAX_ORDER_NOTIONAL,
            rule::DAILY_NOTIONAL,
        ]
    );
    for id in &d.rules {
        assert!(
            d.message.contains(&format!("keyfence policy {id}: ")),
            "{}",
            d.message
        );
    }
    assert_eq!(d.notional, Some(dec("150000")));
    assert!(
        d.message
            .contains("keyfence policy max-order-notional: order notional 150000 exceeds 5000"),
        "{}",
        d.message
    );
    assert!(
        d.message
            .contains("limit price 150 is 50% from the reference price 100, outside ±2%"),
        "{}",
        d.message
    );
}

#[test]
fn a_new_utc_day_resets_the_daily_caps_but_not_positions() {
    let policy = PolicyConfig {
        daily_notional: Some(dec("1000")),
        daily_orders: Some(2),
        ..PolicyConfig::default()
    };
    let ledger = Ledger::new();
    let late = DAY * 86_400_000 + 86_399_999; // 23:59:59.999
    let o = [quote("BTCUSDT", Side::Buy, "500")];
    for _ in 0..2 {
        assert!(
            Req::trade(&o)
                .at(late)
                .decide(&ledger, &policy, &NoPrices)
                .allowed
        );
    }
    let d = Req::trade(&o).at(late).decide(&ledger, &policy, &NoPrices);
    assert_denied(&d, rule::DAILY_NOTIONAL, "same day");
    assert!(d.rules.contains(&rule::DAILY_ORDERS));
    let midnight = late + 1;
    let d = Req::trade(&o).at(midnight).decide(
        &ledger,
        &policy,
        &Book::one("BTCUSDT", "50000", midnight),
    );
    assert_allowed(&d, "next day");
    assert_eq!(d.reservation.as_ref().map(|r| r.day), Some(DAY + 1));
    let u = usage(&ledger);
    assert_eq!((u.day, u.notional, u.orders), (DAY + 1, dec("500"), 1));
    // Positions are all-time. The first two orders had no price to size them in base units;
    // the third is 500 / 50 000.
    assert_eq!(u.positions.get("BTCUSDT"), Some(&dec("0.01")));
    // A straggler stamped with yesterday counts against today, never against a reset day.
    let d = Req::trade(&o).at(late).decide(&ledger, &policy, &NoPrices);
    assert_allowed(&d, "straggler");
    assert_eq!(d.reservation.map(|r| r.day), Some(DAY + 1));
    assert_eq!(usage(&ledger).notional, dec("1000"));
}

#[test]
fn release_gives_the_capacity_back() {
    let policy = PolicyConfig {
        daily_notional: Some(dec("1000")),
        daily_orders: Some(10),
        orders_per_minute: Some(2),
        max_position: BTreeMap::from([("BTCUSDT".to_owned(), dec("0.02"))]),
        ..PolicyConfig::default()
    };
    let ledger = Ledger::new();
    let o = [limit("BTCUSDT", Side::Buy, "0.01", "60000")];
    let first = Req::trade(&o).decide(&ledger, &policy, &NoPrices);
    assert_allowed(&first, "first");
    let d = Req::trade(&o)
        .at(NOON + 1)
        .decide(&ledger, &policy, &NoPrices);
    assert_denied(&d, rule::DAILY_NOTIONAL, "second");
    ledger.release(first.reservation.as_ref().unwrap());
    let u = usage(&ledger);
    assert_eq!((u.notional, u.orders), (Decimal::ZERO, 0));
    assert!(u.positions.is_empty(), "{u:?}");
    // Notional, orders, the minute window and the position are all free again.
    let again = Req::trade(&o)
        .at(NOON + 2)
        .decide(&ledger, &policy, &NoPrices);
    assert_allowed(&again, "after release");
    let small = [limit("BTCUSDT", Side::Buy, "0.001", "60000")];
    let d = Req::trade(&small)
        .at(NOON + 3)
        .decide(&ledger, &policy, &NoPrices);
    assert_allowed(&d, "rate window has room for one more");
    let d = Req::trade(&small)
        .at(NOON + 4)
        .decide(&ledger, &policy, &NoPrices);
    assert_denied(&d, rule::ORDERS_PER_MINUTE, "third in a minute");
}

#[test]
fn a_release_after_midnight_leaves_the_new_day_alone() {
    let policy = PolicyConfig {
        daily_notional: Some(dec("1000")),
        ..PolicyConfig::default()
    };
    let ledger = Ledger::new();
    let o = [quote("BTCUSDT", Side::Buy, "400")];
    let yesterday = Req::trade(&o).decide(&ledger, &policy, &Book::fresh());
    let tomorrow = NOON + 86_400_000;
    let today = Req::trade(&o)
        .at(tomorrow)
        .decide(&ledger, &policy, &NoPrices);
    assert!(yesterday.allowed && today.allowed);
    ledger.release(yesterday.reservation.as_ref().unwrap());
    let u = usage(&ledger);
    assert_eq!((u.day, u.notional, u.orders), (DAY + 1, dec("400"), 1));
    // The position from yesterday's order is given back all the same.
    assert!(u.positions.is_empty(), "{u:?}");
}

#[test]
fn seed_restores_usage_after_a_restart() {
    let policy = PolicyConfig {
        daily_notional: Some(dec("1000")),
        daily_orders: Some(5),
        max_position: BTreeMap::from([("BTCUSDT".to_owned(), dec("1"))]),
        ..PolicyConfig::default()
    };
    let ledger = Ledger::new();
    ledger.seed(
        BOT,
        DAY,
        dec("900"),
        4,
        &[
            ("BTC-USDT".to_owned(), dec("0.6")),
            ("XBT/USDT".to_owned(), dec("0.3")),
        ],
    );
    let u = usage(&ledger);
    assert_eq!((u.day, u.notional, u.orders), (DAY, dec("900"), 4));
    assert_eq!(
        u.positions,
        BTreeMap::from([("BTCUSDT".to_owned(), dec("0.9"))])
    );
    let big = [limit("BTCUSDT", Side::Buy, "0.002", "60000")];
    let d = Req::trade(&big).decide(&ledger, &policy, &NoPrices);
    assert_denied(&d, rule::DAILY_NOTIONAL, "120 over 900 of 1000");
    let over = [limit("BTCUSDT", Side::Buy, "0.2", "1")];
    let d = Req::trade(&over).decide(&ledger, &policy, &NoPrices);
    assert_denied(&d, rule::MAX_POSITION, "0.9 + 0.2");
    let fits = [limit("BTCUSDT", Side::Buy, "0.1", "1000")];
    assert_allowed(
        &Req::trade(&fits).decide(&ledger, &policy, &NoPrices),
        "fits",
    );
    let d = Req::trade(&fits).decide(&ledger, &policy, &NoPrices);
    assert_denied(&d, rule::DAILY_ORDERS, "sixth order");
    // Seeding again replaces, it does not add.
    ledger.seed(BOT, DAY, Decimal::ZERO, 0, &[]);
    let u = usage(&ledger);
    assert_eq!(
        (u.notional, u.orders, u.positions.len()),
        (Decimal::ZERO, 0, 0)
    );
}

#[test]
fn bots_have_their_own_caps() {
    let policy = PolicyConfig {
        daily_orders: Some(1),
        ..PolicyConfig::default()
    };
    let ledger = Ledger::new();
    let o = [limit("BTCUSDT", Side::Buy, "0.01", "60000")];
    for bot in ["a", "b"] {
        let facts = Facts {
            bot,
            venue: Venue::Okx,
            class: EndpointClass::Trade,
            orders: &o,
            now_ms: NOON,
            mode: Mode::Active,
        };
        assert!(ledger.decide(&policy, &facts, &NoPrices).allowed, "{bot}");
        assert!(!ledger.decide(&policy, &facts, &NoPrices).allowed, "{bot}");
    }
}

#[test]
fn a_closure_is_a_price_source() {
    let prices = |_: Venue, s: &str| (s == "BTCUSDT").then(|| (dec("100"), NOON));
    assert_eq!(
        prices.reference(Venue::Binance, "BTCUSDT"),
        Some((dec("100"), NOON))
    );
    let policy = PolicyConfig {
        max_order_notional: Some(dec("100")),
        ..PolicyConfig::default()
    };
    let ledger = Ledger::new();
    let o = [market("BTCUSDT", Side::Buy, "1")];
    assert_allowed(&Req::trade(&o).decide(&ledger, &policy, &prices), "closure");
}
