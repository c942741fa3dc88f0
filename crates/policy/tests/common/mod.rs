//! Builders shared by the policy tests: orders, prices, a request.
#![allow(dead_code)]

use keyfence_policy::{
    Decision, EndpointClass, Facts, Ledger, Mode, Order, OrderType, PolicyConfig, Prices, Side,
    Venue,
};
use rust_decimal::Decimal;

/// Day 20 000 (2024-10-04), 12:00:00 UTC.
pub const DAY: i64 = 20_000;
pub const NOON: i64 = DAY * 86_400_000 + 12 * 3_600_000;
pub const BOT: &str = "bot-1";

pub fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// Milliseconds of `hh:mm` UTC on the test day.
pub fn at(hh: i64, mm: i64) -> i64 {
    DAY * 86_400_000 + hh * 3_600_000 + mm * 60_000
}

pub fn limit(symbol: &str, side: Side, qty: &str, price: &str) -> Order {
    Order {
        venue: Venue::Binance,
        symbol: symbol.into(),
        side,
        order_type: OrderType::Limit,
        quantity: Some(dec(qty)),
        quote_quantity: None,
        price: Some(dec(price)),
        reduce_only: false,
        client_id: None,
    }
}

pub fn market(symbol: &str, side: Side, qty: &str) -> Order {
    Order {
        order_type: OrderType::Market,
        price: None,
        ..limit(symbol, side, qty, "1")
    }
}

/// A market order sized in quote currency.
pub fn quote(symbol: &str, side: Side, quote: &str) -> Order {
    Order {
        quantity: None,
        quote_quantity: Some(dec(quote)),
        ..market(symbol, side, "1")
    }
}

pub fn reduce_only(mut o: Order) -> Order {
    o.reduce_only = true;
    o
}

/// Reference prices: (venue symbol, price, fetched_at_ms).
#[derive(Clone, Default)]
pub struct Book(pub Vec<(String, Decimal, i64)>);

impl Book {
    /// BTCUSDT 60 000, ETHUSDT 3 000, both fetched one second before noon.
    pub fn fresh() -> Self {
        Book(vec![
            ("BTCUSDT".into(), dec("60000"), NOON - 1_000),
            ("ETHUSDT".into(), dec("3000"), NOON - 1_000),
        ])
    }

    pub fn one(symbol: &str, price: &str, fetched_at: i64) -> Self {
        Book(vec![(symbol.into(), dec(price), fetched_at)])
    }
}

impl Prices for Book {
    fn reference(&self, _venue: Venue, symbol: &str) -> Option<(Decimal, i64)> {
        self.0
            .iter()
            .find(|(s, _, _)| s == symbol)
            .map(|(_, p, t)| (*p, *t))
    }
}

pub struct Req<'a> {
    pub class: EndpointClass,
    pub orders: &'a [Order],
    pub now_ms: i64,
    pub mode: Mode,
}

impl<'a> Req<'a> {
    pub fn trade(orders: &'a [Order]) -> Self {
        Req {
            class: EndpointClass::Trade,
            orders,
            now_ms: NOON,
            mode: Mode::Active,
        }
    }

    pub fn class(class: EndpointClass) -> Self {
        Req {
            class,
            orders: &[],
            now_ms: NOON,
            mode: Mode::Active,
        }
    }

    pub fn at(mut self, now_ms: i64) -> Self {
        self.now_ms = now_ms;
        self
    }

    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    pub fn decide(&self, ledger: &Ledger, policy: &PolicyConfig, prices: &dyn Prices) -> Decision {
        ledger.decide(
            policy,
            &Facts {
                bot: BOT,
                venue: Venue::Binance,
                class: self.class,
                orders: self.orders,
                now_ms: self.now_ms,
                mode: self.mode,
            },
            prices,
        )
    }
}

/// Assert a denial by `rule`, with the id in `rules` and in the message; nothing reserved.
pub fn assert_denied(d: &Decision, rule: &str, case: &str) {
    assert!(!d.allowed, "{case}: expected a denial by {rule}, got {d:?}");
    assert!(
        d.rules.contains(&rule),
        "{case}: {rule} not in {:?}",
        d.rules
    );
    assert!(
        d.message.contains(&format!("keyfence policy {rule}: ")),
        "{case}: message does not name {rule}: {}",
        d.message
    );
    assert!(d.reservation.is_none(), "{case}: a denial reserved {d:?}");
}

pub fn assert_allowed(d: &Decision, case: &str) {
    assert!(d.allowed, "{case}: expected an allow, got {d:?}");
    assert!(
        d.message.starts_with("keyfence policy: allowed"),
        "{case}: {}",
        d.message
    );
}
