//! Every rule, table-driven: each has cases that pass it and cases that fail it, and every
//! failure names its rule id in `rules` and in the message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::*;
use keyfence_policy::{EndpointClass, Ledger, Mode, Order, PolicyConfig, Side, Venue, rule};
use rust_decimal::Decimal;

enum Expect {
    /// Allowed, and these ids are listed as checked.
    Allow(&'static [&'static str]),
    /// Denied by this rule.
    Deny(&'static str),
}

/// Usage restored before a request: today's notional, orders, (symbol, net position).
type Seed = (&'static str, u64, Vec<(&'static str, &'static str)>);

struct Case {
    name: &'static str,
    policy: PolicyConfig,
    /// Usage restored before the request: today's notional, orders, positions.
    seed: Option<Seed>,
    /// Earlier trades at these times, each of which must be allowed.
    before: Vec<(Vec<Order>, i64)>,
    class: EndpointClass,
    orders: Vec<Order>,
    now: i64,
    mode: Mode,
    prices: Book,
    expect: Expect,
}

fn trade(name: &'static str, policy: PolicyConfig, orders: Vec<Order>, expect: Expect) -> Case {
    Case {
        name,
        policy,
        seed: None,
        before: vec![],
        class: EndpointClass::Trade,
        orders,
        now: NOON,
        mode: Mode::Active,
        prices: Book::fresh(),
        expect,
    }
}

fn request(name: &'static str, policy: PolicyConfig, class: EndpointClass, expect: Expect) -> Case {
    Case {
        class,
        ..trade(name, policy, vec![], expect)
    }
}

fn p() -> PolicyConfig {
    PolicyConfig::default()
}

fn buy(qty: &str, price: &str) -> Order {
    limit("BTCUSDT", Side::Buy, qty, price)
}

fn sell(qty: &str, price: &str) -> Order {
    limit("BTCUSDT", Side::Sell, qty, price)
}

use Expect::{Allow, Deny};

fn classes() -> Vec<Case> {
    let read_cancel = PolicyConfig {
        classes: vec![EndpointClass::Read, EndpointClass::Cancel],
        ..p()
    };
    let with_withdraw = PolicyConfig {
        classes: vec![EndpointClass::Withdraw],
        ..p()
    };
    let lists_unknown = PolicyConfig {
        classes: vec![EndpointClass::Unknown, EndpointClass::Public],
        ..p()
    };
    vec![
        request(
            "read passes the default classes",
            p(),
            EndpointClass::Read,
            Allow(&[rule::CLASS_NOT_ALLOWED]),
        ),
        request(
            "cancel passes the default classes",
            p(),
            EndpointClass::Cancel,
            Allow(&[rule::CLASS_NOT_ALLOWED]),
        ),
        trade(
            "trade passes the default classes",
            p(),
            vec![buy("0.01", "60000")],
            Allow(&[rule::CLASS_NOT_ALLOWED]),
        ),
        trade(
            "trade outside read+cancel",
            read_cancel.clone(),
            vec![buy("0.01", "60000")],
            Deny(rule::CLASS_NOT_ALLOWED),
        ),
        request(
            "read inside read+cancel",
            read_cancel,
            EndpointClass::Read,
            Allow(&[rule::CLASS_NOT_ALLOWED]),
        ),
        request(
            "withdraw is not a default class",
            p(),
            EndpointClass::Withdraw,
            Deny(rule::CLASS_NOT_ALLOWED),
        ),
        request(
            "transfer is not a default class",
            p(),
            EndpointClass::Transfer,
            Deny(rule::CLASS_NOT_ALLOWED),
        ),
        request(
            "key management is not a default class",
            p(),
            EndpointClass::KeyManagement,
            Deny(rule::CLASS_NOT_ALLOWED),
        ),
        request(
            "withdraw when the policy names it",
            with_withdraw.clone(),
            EndpointClass::Withdraw,
            Allow(&[rule::CLASS_NOT_ALLOWED]),
        ),
        request(
            "read when only withdraw is named",
            with_withdraw,
            EndpointClass::Read,
            Deny(rule::CLASS_NOT_ALLOWED),
        ),
        request(
            "public is never decided",
            lists_unknown.clone(),
            EndpointClass::Public,
            Deny(rule::CLASS_NOT_ALLOWED),
        ),
        request(
            "unknown is always denied",
            p(),
            EndpointClass::Unknown,
            Deny(rule::UNKNOWN_ENDPOINT),
        ),
        request(
            "unknown is denied even when listed",
            lists_unknown,
            EndpointClass::Unknown,
            Deny(rule::UNKNOWN_ENDPOINT),
        ),
        trade(
            "a trade with no readable order",
            p(),
            vec![],
            Deny(rule::NO_ORDERS),
        ),
    ]
}

fn symbols() -> Vec<Case> {
    let btc = PolicyConfig {
        symbols: Some(vec!["BTC-USDT".into()]),
        ..p()
    };
    let mut kraken = buy("0.01", "60000");
    kraken.symbol = "XBT/USDT".into();
    vec![
        trade(
            "listed symbol, other spelling",
            btc.clone(),
            vec![buy("0.01", "60000")],
            Allow(&[rule::SYMBOL_NOT_ALLOWED]),
        ),
        trade(
            "listed symbol, Kraken spelling",
            btc.clone(),
            vec![kraken],
            Allow(&[rule::SYMBOL_NOT_ALLOWED]),
        ),
        trade(
            "unlisted symbol",
            btc.clone(),
            vec![limit("ETHUSDT", Side::Buy, "1", "3000")],
            Deny(rule::SYMBOL_NOT_ALLOWED),
        ),
        trade(
            "the swap is another market",
            btc,
            vec![limit("BTC-USDT-SWAP", Side::Buy, "1", "60000")],
            Deny(rule::SYMBOL_NOT_ALLOWED),
        ),
    ]
}

fn notional() -> Vec<Case> {
    let cap = PolicyConfig {
        max_order_notional: Some(dec("1000")),
        ..p()
    };
    vec![
        trade(
            "limit under the cap",
            cap.clone(),
            vec![buy("0.01", "60000")],
            Allow(&[rule::MAX_ORDER_NOTIONAL]),
        ),
        trade(
            "limit exactly at the cap",
            cap.clone(),
            vec![buy("0.02", "50000")],
            Allow(&[rule::MAX_ORDER_NOTIONAL]),
        ),
        trade(
            "limit over the cap",
            cap.clone(),
            vec![buy("0.1", "60000")],
            Deny(rule::MAX_ORDER_NOTIONAL),
        ),
        trade(
            "market valued at the reference",
            cap.clone(),
            vec![market("BTCUSDT", Side::Buy, "0.01")],
            Allow(&[rule::MAX_ORDER_NOTIONAL]),
        ),
        trade(
            "market over the cap at the reference",
            cap.clone(),
            vec![market("BTCUSDT", Side::Sell, "0.02")],
            Deny(rule::MAX_ORDER_NOTIONAL),
        ),
        trade(
            "quote-sized under the cap",
            cap.clone(),
            vec![quote("BTCUSDT", Side::Buy, "999.99")],
            Allow(&[rule::MAX_ORDER_NOTIONAL]),
        ),
        trade(
            "quote-sized over the cap",
            cap.clone(),
            vec![quote("BTCUSDT", Side::Buy, "1000.01")],
            Deny(rule::MAX_ORDER_NOTIONAL),
        ),
        trade(
            "a negative size counts by magnitude",
            cap.clone(),
            vec![buy("-0.1", "60000")],
            Deny(rule::MAX_ORDER_NOTIONAL),
        ),
        trade(
            "sizes that overflow are refused",
            cap.clone(),
            vec![buy("79228162514264337593543950335", "2")],
            Deny(rule::MAX_ORDER_NOTIONAL),
        ),
        Case {
            prices: Book::default(),
            ..trade(
                "market without a reference price",
                cap,
                vec![market("BTCUSDT", Side::Buy, "0.01")],
                Deny(rule::REFERENCE_PRICE_STALE),
            )
        },
    ]
}

fn daily() -> Vec<Case> {
    let notional = PolicyConfig {
        daily_notional: Some(dec("1000")),
        ..p()
    };
    let orders = PolicyConfig {
        daily_orders: Some(3),
        ..p()
    };
    vec![
        Case {
            seed: Some(("900", 0, vec![])),
            ..trade(
                "daily notional reached exactly",
                notional.clone(),
                vec![buy("0.002", "50000")],
                Allow(&[rule::DAILY_NOTIONAL]),
            )
        },
        Case {
            seed: Some(("900", 0, vec![])),
            ..trade(
                "daily notional exceeded",
                notional.clone(),
                vec![buy("0.002", "50001")],
                Deny(rule::DAILY_NOTIONAL),
            )
        },
        Case {
            before: vec![(vec![quote("BTCUSDT", Side::Buy, "600")], NOON - 5_000)],
            ..trade(
                "daily notional counts earlier trades",
                notional.clone(),
                vec![quote("BTCUSDT", Side::Sell, "401")],
                Deny(rule::DAILY_NOTIONAL),
            )
        },
        Case {
            before: vec![(vec![quote("BTCUSDT", Side::Buy, "1000")], NOON - 86_400_000)],
            ..trade(
                "daily notional of yesterday is gone",
                notional.clone(),
                vec![quote("BTCUSDT", Side::Buy, "1000")],
                Allow(&[rule::DAILY_NOTIONAL]),
            )
        },
        Case {
            prices: Book::default(),
            ..trade(
                "daily notional needs a price for a market order",
                notional,
                vec![market("BTCUSDT", Side::Buy, "0.001")],
                Deny(rule::REFERENCE_PRICE_STALE),
            )
        },
        Case {
            seed: Some(("0", 2, vec![])),
            ..trade(
                "daily orders reached exactly",
                orders.clone(),
                vec![buy("0.01", "60000")],
                Allow(&[rule::DAILY_ORDERS]),
            )
        },
        Case {
            seed: Some(("0", 2, vec![])),
            ..trade(
                "daily orders: a batch counts every order",
                orders.clone(),
                vec![buy("0.01", "60000"), sell("0.01", "60000")],
                Deny(rule::DAILY_ORDERS),
            )
        },
        Case {
            seed: Some(("0", 3, vec![])),
            ..trade(
                "daily orders exceeded",
                orders,
                vec![buy("0.01", "60000")],
                Deny(rule::DAILY_ORDERS),
            )
        },
    ]
}

/// Orders sized in contracts (OKX swaps, Coinbase futures) are valued with the policy's
/// contract value, or not at all: a contract of 1,000 DOGE must not pass as 1 DOGE.
fn contracts() -> Vec<Case> {
    let okx = |symbol: &str, side, sz: &str, px: &str| Order {
        venue: Venue::Okx,
        ..limit(symbol, side, sz, px)
    };
    let capped = PolicyConfig {
        max_order_notional: Some(dec("1000")),
        ..p()
    };
    let valued = PolicyConfig {
        contract_values: BTreeMap::from([
            ("BTC-USDT-SWAP".to_owned(), dec("0.01")),
            ("DOGE-USDT-SWAP".to_owned(), dec("1000")),
        ]),
        ..capped.clone()
    };
    let position = PolicyConfig {
        max_position: BTreeMap::from([("BTC-USDT-SWAP".to_owned(), dec("0.05"))]),
        contract_values: BTreeMap::from([("BTC-USDT-SWAP".to_owned(), dec("0.01"))]),
        ..p()
    };
    let daily = PolicyConfig {
        daily_notional: Some(dec("5000")),
        ..p()
    };
    vec![
        // 1 contract at 100 is under the cap read as 1 base unit; unvalued, it is denied.
        trade(
            "no contract value under a notional cap",
            capped.clone(),
            vec![okx("BTC-USDT-SWAP", Side::Buy, "1", "100")],
            Deny(rule::MAX_ORDER_NOTIONAL),
        ),
        trade(
            "no contract value under a position cap",
            PolicyConfig {
                max_position: BTreeMap::from([("BTC-USDT-SWAP".to_owned(), dec("5"))]),
                ..p()
            },
            vec![okx("BTC-USDT-SWAP", Side::Buy, "1", "60000")],
            Deny(rule::MAX_POSITION),
        ),
        trade(
            "an option is not valued even with a contract value",
            PolicyConfig {
                contract_values: BTreeMap::from([(
                    "BTC-USD-250328-60000-C".to_owned(),
                    dec("0.01"),
                )]),
                ..capped.clone()
            },
            vec![okx("BTC-USD-250328-60000-C", Side::Buy, "1", "0.005")],
            Deny(rule::MAX_ORDER_NOTIONAL),
        ),
        trade(
            "contracts times their value under the cap",
            valued.clone(),
            vec![okx("BTC-USDT-SWAP", Side::Buy, "1", "60000")],
            Allow(&[rule::MAX_ORDER_NOTIONAL]),
        ),
        trade(
            "contracts times their value over the cap",
            valued.clone(),
            vec![okx("BTC-USDT-SWAP", Side::Buy, "2", "60000")],
            Deny(rule::MAX_ORDER_NOTIONAL),
        ),
        trade(
            "a large contract is not valued as one base unit",
            valued.clone(),
            vec![okx("DOGE-USDT-SWAP", Side::Buy, "20", "0.1")],
            Deny(rule::MAX_ORDER_NOTIONAL),
        ),
        trade(
            "spot on the same venue counts base units",
            valued,
            vec![okx("BTC-USDT", Side::Buy, "0.01", "60000")],
            Allow(&[rule::MAX_ORDER_NOTIONAL]),
        ),
        trade(
            "a position in contracts up to the cap",
            position.clone(),
            vec![okx("BTC-USDT-SWAP", Side::Buy, "5", "60000")],
            Allow(&[rule::MAX_POSITION]),
        ),
        trade(
            "a position in contracts past the cap",
            position,
            vec![okx("BTC-USDT-SWAP", Side::Sell, "6", "60000")],
            Deny(rule::MAX_POSITION),
        ),
        trade(
            "a Coinbase future with no value under a daily cap",
            daily,
            vec![Order {
                venue: Venue::Coinbase,
                ..limit("BIT-28NOV25-CDE", Side::Buy, "1", "100")
            }],
            Deny(rule::DAILY_NOTIONAL),
        ),
        trade(
            "no cap needs the value",
            p(),
            vec![okx("BTC-USDT-SWAP", Side::Buy, "1000", "60000")],
            Allow(&[]),
        ),
    ]
}

fn position() -> Vec<Case> {
    let cap = PolicyConfig {
        max_position: BTreeMap::from([("BTC-USDT".to_owned(), dec("1"))]),
        ..p()
    };
    // Kraken takes one market as `XBTUSD`, `XXBTZUSD` or `XBT/USD`: the cap holds for each.
    let kraken_cap = PolicyConfig {
        max_position: BTreeMap::from([("XBT/USD".to_owned(), dec("1"))]),
        ..p()
    };
    let kraken = |symbol: &str| Order {
        venue: Venue::Kraken,
        ..limit(symbol, Side::Buy, "2", "60000")
    };
    let seeded = |name, pos: &'static str, orders, expect| Case {
        seed: Some(("0", 0, vec![("BTCUSDT", pos)])),
        ..trade(name, cap.clone(), orders, expect)
    };
    vec![
        trade(
            "Kraken's pair id is the capped market",
            kraken_cap.clone(),
            vec![kraken("XXBTZUSD")],
            Deny(rule::MAX_POSITION),
        ),
        trade(
            "Kraken's altname is the capped market",
            kraken_cap,
            vec![kraken("XBTUSD")],
            Deny(rule::MAX_POSITION),
        ),
        seeded(
            "buy up to the cap",
            "0.8",
            vec![buy("0.2", "60000")],
            Allow(&[rule::MAX_POSITION]),
        ),
        seeded(
            "buy past the cap",
            "0.8",
            vec![buy("0.3", "60000")],
            Deny(rule::MAX_POSITION),
        ),
        seeded(
            "sell past the negative cap",
            "-0.8",
            vec![sell("0.3", "60000")],
            Deny(rule::MAX_POSITION),
        ),
        seeded(
            "sell through zero to the far side",
            "0.8",
            vec![sell("2", "60000")],
            Deny(rule::MAX_POSITION),
        ),
        seeded(
            "an order that shrinks |position| passes above the cap",
            "1.5",
            vec![sell("0.3", "60000")],
            Allow(&[rule::MAX_POSITION]),
        ),
        seeded(
            "a flip that shrinks |position| passes",
            "1.5",
            vec![sell("2.7", "60000")],
            Allow(&[rule::MAX_POSITION]),
        ),
        seeded(
            "quote-sized, at the limit price",
            "0.8",
            vec![Order {
                quantity: None,
                quote_quantity: Some(dec("12000")),
                ..buy("1", "60000")
            }],
            Allow(&[rule::MAX_POSITION]),
        ),
        seeded(
            "quote-sized market, at the reference",
            "0.8",
            vec![quote("BTCUSDT", Side::Buy, "12060")],
            Deny(rule::MAX_POSITION),
        ),
        seeded(
            "the batch moves the position order by order",
            "0.5",
            vec![
                buy("0.5", "60000"),
                buy("0.1", "60000"),
                sell("0.6", "60000"),
            ],
            Deny(rule::MAX_POSITION),
        ),
        seeded(
            "a symbol without a cap is free",
            "0.8",
            vec![limit("ETHUSDT", Side::Buy, "100", "3000")],
            Allow(&[rule::MAX_POSITION]),
        ),
        Case {
            prices: Book::default(),
            ..seeded(
                "quote-sized market without a price",
                "0",
                vec![quote("BTCUSDT", Side::Buy, "10")],
                Deny(rule::REFERENCE_PRICE_STALE),
            )
        },
    ]
}

fn rate() -> Vec<Case> {
    let cap = PolicyConfig {
        orders_per_minute: Some(3),
        ..p()
    };
    let two = || vec![buy("0.01", "60000"), buy("0.01", "60000")];
    vec![
        Case {
            before: vec![(two(), NOON - 59_999)],
            ..trade(
                "the third order in a minute",
                cap.clone(),
                vec![buy("0.01", "60000")],
                Allow(&[rule::ORDERS_PER_MINUTE]),
            )
        },
        Case {
            before: vec![
                (two(), NOON - 30_000),
                (vec![buy("0.01", "60000")], NOON - 1),
            ],
            ..trade(
                "the fourth order in a minute",
                cap.clone(),
                vec![buy("0.01", "60000")],
                Deny(rule::ORDERS_PER_MINUTE),
            )
        },
        Case {
            before: vec![
                (two(), NOON - 60_000),
                (vec![buy("0.01", "60000")], NOON - 10_000),
            ],
            ..trade(
                "orders 60 s old have left the window",
                cap.clone(),
                two(),
                Allow(&[rule::ORDERS_PER_MINUTE]),
            )
        },
        Case {
            before: vec![(two(), NOON - 10_000)],
            ..trade(
                "a batch counts every order",
                cap,
                two(),
                Deny(rule::ORDERS_PER_MINUTE),
            )
        },
    ]
}

fn band() -> Vec<Case> {
    let pct = PolicyConfig {
        price_band_pct: Some(dec("1")),
        ..p()
    };
    let stale = Book::one("BTCUSDT", "60000", NOON - 30_001);
    vec![
        trade(
            "at the top of the band",
            pct.clone(),
            vec![buy("0.01", "60600")],
            Allow(&[rule::PRICE_BAND]),
        ),
        trade(
            "above the band",
            pct.clone(),
            vec![buy("0.01", "60600.01")],
            Deny(rule::PRICE_BAND),
        ),
        trade(
            "at the bottom of the band",
            pct.clone(),
            vec![sell("0.01", "59400")],
            Allow(&[rule::PRICE_BAND]),
        ),
        trade(
            "below the band",
            pct.clone(),
            vec![sell("0.01", "59399.99")],
            Deny(rule::PRICE_BAND),
        ),
        trade(
            "the SYS spike: a thousand times the market",
            pct.clone(),
            vec![buy("0.01", "60000000")],
            Deny(rule::PRICE_BAND),
        ),
        trade(
            "a negative price",
            pct.clone(),
            vec![buy("0.01", "-60000")],
            Deny(rule::PRICE_BAND),
        ),
        trade(
            "market orders have no price to band",
            pct.clone(),
            vec![market("BTCUSDT", Side::Buy, "0.01")],
            Allow(&[rule::PRICE_BAND]),
        ),
        Case {
            prices: Book::one("BTCUSDT", "60000", NOON - 30_000),
            ..trade(
                "a reference exactly max_price_age_s old",
                pct.clone(),
                vec![buy("0.01", "60000")],
                Allow(&[rule::PRICE_BAND]),
            )
        },
        Case {
            prices: stale,
            ..trade(
                "a stale reference",
                pct.clone(),
                vec![buy("0.01", "60000")],
                Deny(rule::REFERENCE_PRICE_STALE),
            )
        },
        Case {
            prices: Book::default(),
            ..trade(
                "a missing reference",
                pct.clone(),
                vec![buy("0.01", "60000")],
                Deny(rule::REFERENCE_PRICE_STALE),
            )
        },
        Case {
            prices: Book::one("BTCUSDT", "0", NOON),
            ..trade(
                "a zero reference",
                pct.clone(),
                vec![buy("0.01", "60000")],
                Deny(rule::REFERENCE_PRICE_STALE),
            )
        },
        Case {
            prices: Book::one("BTCUSDT", "60000", NOON - 9_000),
            ..trade(
                "a shorter max_price_age_s",
                PolicyConfig {
                    max_price_age_s: 5,
                    ..pct
                },
                vec![buy("0.01", "60000")],
                Deny(rule::REFERENCE_PRICE_STALE),
            )
        },
    ]
}

fn hours() -> Vec<Case> {
    let day = PolicyConfig {
        trading_hours: Some("08:00-20:00".into()),
        ..p()
    };
    let night = PolicyConfig {
        trading_hours: Some("22:00-06:00".into()),
        ..p()
    };
    let broken = PolicyConfig {
        trading_hours: Some("8am-8pm".into()),
        ..p()
    };
    let o = || vec![quote("BTCUSDT", Side::Buy, "100")];
    let when = |name, policy: &PolicyConfig, now: i64, expect| Case {
        now,
        prices: Book::one("BTCUSDT", "60000", now),
        ..trade(name, policy.clone(), o(), expect)
    };
    vec![
        when(
            "inside day hours",
            &day,
            at(12, 0),
            Allow(&[rule::TRADING_HOURS]),
        ),
        when(
            "at the day window's start",
            &day,
            at(8, 0),
            Allow(&[rule::TRADING_HOURS]),
        ),
        when(
            "at the day window's end",
            &day,
            at(20, 0),
            Deny(rule::TRADING_HOURS),
        ),
        when(
            "before day hours",
            &day,
            at(7, 59),
            Deny(rule::TRADING_HOURS),
        ),
        when(
            "late evening, night window",
            &night,
            at(23, 0),
            Allow(&[rule::TRADING_HOURS]),
        ),
        when(
            "after midnight, night window",
            &night,
            at(3, 0),
            Allow(&[rule::TRADING_HOURS]),
        ),
        when(
            "noon, night window",
            &night,
            at(12, 0),
            Deny(rule::TRADING_HOURS),
        ),
        when(
            "an unreadable window lets no trade through",
            &broken,
            at(12, 0),
            Deny(rule::TRADING_HOURS),
        ),
        Case {
            now: at(3, 0),
            ..request(
                "cancels pass outside trading hours",
                day.clone(),
                EndpointClass::Cancel,
                Allow(&[rule::CLASS_NOT_ALLOWED]),
            )
        },
        Case {
            now: at(3, 0),
            ..request(
                "reads pass outside trading hours",
                day,
                EndpointClass::Read,
                Allow(&[rule::CLASS_NOT_ALLOWED]),
            )
        },
    ]
}

fn kill_switch() -> Vec<Case> {
    let withdraw = PolicyConfig {
        classes: vec![
            EndpointClass::Read,
            EndpointClass::Trade,
            EndpointClass::Cancel,
            EndpointClass::Withdraw,
        ],
        ..p()
    };
    let in_mode = |c: Case, mode| Case { mode, ..c };
    use Mode::{Halted, Reducing};
    vec![
        in_mode(
            request(
                "halted: reads pass",
                p(),
                EndpointClass::Read,
                Allow(&[rule::KILL_SWITCH_HALTED]),
            ),
            Halted,
        ),
        in_mode(
            request(
                "halted: cancels pass",
                p(),
                EndpointClass::Cancel,
                Allow(&[rule::KILL_SWITCH_HALTED]),
            ),
            Halted,
        ),
        in_mode(
            trade(
                "halted: trades stop",
                p(),
                vec![buy("0.01", "60000")],
                Deny(rule::KILL_SWITCH_HALTED),
            ),
            Halted,
        ),
        in_mode(
            trade(
                "halted: even reduce-only trades stop",
                p(),
                vec![reduce_only(sell("0.01", "60000"))],
                Deny(rule::KILL_SWITCH_HALTED),
            ),
            Halted,
        ),
        in_mode(
            request(
                "halted: an allowed withdraw stops",
                withdraw.clone(),
                EndpointClass::Withdraw,
                Deny(rule::KILL_SWITCH_HALTED),
            ),
            Halted,
        ),
        in_mode(
            request(
                "reducing: reads pass",
                p(),
                EndpointClass::Read,
                Allow(&[rule::KILL_SWITCH_REDUCING]),
            ),
            Reducing,
        ),
        in_mode(
            request(
                "reducing: cancels pass",
                p(),
                EndpointClass::Cancel,
                Allow(&[rule::KILL_SWITCH_REDUCING]),
            ),
            Reducing,
        ),
        in_mode(
            trade(
                "reducing: reduce-only trades pass",
                p(),
                vec![
                    reduce_only(sell("0.01", "60000")),
                    reduce_only(sell("0.01", "60000")),
                ],
                Allow(&[rule::KILL_SWITCH_REDUCING]),
            ),
            Reducing,
        ),
        in_mode(
            trade(
                "reducing: other trades stop",
                p(),
                vec![buy("0.01", "60000")],
                Deny(rule::KILL_SWITCH_REDUCING),
            ),
            Reducing,
        ),
        in_mode(
            trade(
                "reducing: one order not reduce-only stops the batch",
                p(),
                vec![reduce_only(sell("0.01", "60000")), buy("0.01", "60000")],
                Deny(rule::KILL_SWITCH_REDUCING),
            ),
            Reducing,
        ),
        in_mode(
            request(
                "reducing: an allowed withdraw stops",
                withdraw,
                EndpointClass::Withdraw,
                Deny(rule::KILL_SWITCH_REDUCING),
            ),
            Reducing,
        ),
    ]
}

fn run(case: &Case) {
    let ledger = Ledger::new();
    if let Some((notional, orders, positions)) = &case.seed {
        let positions: Vec<(String, Decimal)> = positions
            .iter()
            .map(|(s, q)| ((*s).to_owned(), dec(q)))
            .collect();
        ledger.seed(BOT, DAY, dec(notional), *orders, &positions);
    }
    for (orders, when) in &case.before {
        let prices = Book::one("BTCUSDT", "60000", *when);
        let d = Req::trade(orders)
            .at(*when)
            .decide(&ledger, &case.policy, &prices);
        assert!(d.allowed, "{}: setup trade denied: {d:?}", case.name);
    }
    let req = Req {
        class: case.class,
        orders: &case.orders,
        now_ms: case.now,
        mode: case.mode,
    };
    let d = req.decide(&ledger, &case.policy, &case.prices);
    match case.expect {
        Allow(ids) => {
            assert_allowed(&d, case.name);
            for id in ids {
                assert!(
                    d.rules.contains(id),
                    "{}: {id} not listed in {:?}",
                    case.name,
                    d.rules
                );
            }
            assert_eq!(
                d.reservation.is_some(),
                case.class == EndpointClass::Trade,
                "{}",
                case.name
            );
        }
        Deny(id) => {
            assert_denied(&d, id, case.name);
            // A denial leaves usage as it was.
            let before = ledger.usage(BOT);
            let again = req.decide(&ledger, &case.policy, &case.prices);
            assert_eq!(again, d, "{}: deciding twice differs", case.name);
            assert_eq!(
                ledger.usage(BOT),
                before,
                "{}: a denial changed usage",
                case.name
            );
        }
    }
}

#[test]
fn every_rule_allows_and_denies_as_documented() {
    let tables = [
        classes(),
        symbols(),
        notional(),
        daily(),
        position(),
        contracts(),
        rate(),
        band(),
        hours(),
        kill_switch(),
    ];
    let mut denied: Vec<&str> = Vec::new();
    let mut n = 0;
    for table in &tables {
        for case in table {
            run(case);
            n += 1;
            if let Deny(id) = case.expect {
                denied.push(id);
            }
        }
    }
    // Every rule id has at least one case that fails it.
    for id in rule::ALL {
        assert!(denied.contains(&id), "no denying case for {id}");
    }
    assert!(n > 80, "only {n} cases");
}

#[test]
fn a_class_outside_the_policy_fails_before_the_kill_switch_matters() {
    let policy = PolicyConfig {
        classes: vec![EndpointClass::Trade],
        ..p()
    };
    let ledger = Ledger::new();
    let d =
        Req::class(EndpointClass::Read)
            .mode(Mode::Halted)
            .decide(&ledger, &policy, &Book::fresh());
    assert_denied(
        &d,
        rule::CLASS_NOT_ALLOWED,
        "read outside classes while halted",
    );
    // Withdraw outside classes while halted: both rules failed, both named.
    let d = Req::class(EndpointClass::Withdraw)
        .mode(Mode::Halted)
        .decide(&ledger, &policy, &Book::fresh());
    assert_eq!(
        d.rules,
        vec![rule::CLASS_NOT_ALLOWED, rule::KILL_SWITCH_HALTED]
    );
    assert!(
        d.message.contains("keyfence policy kill-switch-halted: "),
        "{}",
        d.message
    );
}
