//! The gateway's policy: what a bot may do, decided per request, with the rule ids that decided.
//!
//! `PolicyConfig` is one `[policies.NAME]` table of the gateway config; `Ledger` holds every
//! bot's usage (today's notional and order count, the last minute's orders, net positions) and
//! `Ledger::decide` checks a request and reserves its share of the caps under one lock per bot,
//! so caps hold exactly when many requests race. The rules and their ids: `docs/policy.md`.
//!
//! **Architecture Invariant: keyfence-policy does no I/O and never reads the clock.** Time comes
//! in as `Facts::now_ms`, reference prices through the `Prices` trait, the kill-switch mode as
//! `Facts::mode`; a decision is a function of those and the ledger's state.

mod check;
mod config;
mod decision;
mod hours;
mod ledger;
mod mode;
pub mod rule;

pub use keyfence_types::{EndpointClass, Order, OrderType, Side, Venue};

pub use config::PolicyConfig;
pub use decision::{Decision, Reservation};
pub use hours::TradingHours;
pub use ledger::{BotUsage, Ledger};
pub use mode::{Mode, UnknownMode};

use rust_decimal::Decimal;

/// Milliseconds in a UTC day; `now_ms / DAY_MS` is the day number the daily caps count against.
pub const DAY_MS: i64 = 86_400_000;

/// The UTC day number of a millisecond timestamp (floor division, so times before 1970 work).
pub fn day_of(now_ms: i64) -> i64 {
    now_ms.div_euclid(DAY_MS)
}

/// Reference prices (the gateway keeps them from the venue's public ticker).
pub trait Prices {
    /// (price, fetched_at_ms) for a venue symbol, as the venue spells it.
    fn reference(&self, venue: Venue, symbol: &str) -> Option<(Decimal, i64)>;
}

/// A closure is a price source: handy for tests and for callers with their own table.
impl<F> Prices for F
where
    F: Fn(Venue, &str) -> Option<(Decimal, i64)>,
{
    fn reference(&self, venue: Venue, symbol: &str) -> Option<(Decimal, i64)> {
        self(venue, symbol)
    }
}

/// No reference prices at all: every rule that needs one denies with `reference-price-stale`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPrices;

impl Prices for NoPrices {
    fn reference(&self, _venue: Venue, _symbol: &str) -> Option<(Decimal, i64)> {
        None
    }
}

/// What the gateway knows about one request when it asks for a decision.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub bot: &'a str,
    pub venue: Venue,
    pub class: EndpointClass,
    pub orders: &'a [Order],
    pub now_ms: i64,
    pub mode: Mode,
}

/// Symbol normalisation used by `symbols`, `max_position` and positions: upper-case, drop
/// '-', '/', '_', ':'; XBT -> BTC (Kraken); so BTC-USDT == BTCUSDT; BTC-USDT-SWAP stays distinct.
///
/// Venues spell one market differently (Binance `BTCUSDT`, OKX `BTC-USDT`, Kraken `XBT/USD`),
/// and a policy names markets once; normalising both sides keeps an allowlist from being
/// bypassed by a different spelling of the same market.
pub fn normalise_symbol(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !matches!(c, '-' | '/' | '_' | ':') {
            out.extend(c.to_uppercase());
        }
    }
    if out.contains("XBT") {
        out = out.replace("XBT", "BTC");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_normalise_across_venue_spellings() {
        assert_eq!(normalise_symbol("BTC-USDT"), "BTCUSDT");
        assert_eq!(normalise_symbol("btc/usdt"), "BTCUSDT");
        assert_eq!(normalise_symbol("BTC_USDT"), "BTCUSDT");
        assert_eq!(normalise_symbol("XBT/USD"), "BTCUSD");
        assert_eq!(normalise_symbol("XBTUSD"), "BTCUSD");
        assert_eq!(normalise_symbol("BTC-USDT-SWAP"), "BTCUSDTSWAP");
        assert_ne!(
            normalise_symbol("BTC-USDT-SWAP"),
            normalise_symbol("BTC-USDT")
        );
        assert_eq!(normalise_symbol("ETH:USDT"), "ETHUSDT");
    }

    #[test]
    fn day_numbers_floor() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(DAY_MS - 1), 0);
        assert_eq!(day_of(DAY_MS), 1);
        assert_eq!(day_of(-1), -1);
    }
}
