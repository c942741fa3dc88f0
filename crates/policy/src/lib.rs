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
/// '-', '/', '_', ':'; Kraken's pair ids of two legacy assets lose their asset prefixes
/// (`XXBTZUSD` -> `XBTUSD`, `XETHXXBT` -> `ETHXBT`); then Kraken's own asset names become the
/// common ones (XBT -> BTC, XDG -> DOGE). So BTC-USDT == BTCUSDT and XXBTZUSD == XBT/USD ==
/// BTCUSD; BTC-USDT-SWAP stays distinct.
///
/// Venues spell one market differently (Binance `BTCUSDT`, OKX `BTC-USDT`, Kraken `XBTUSD`,
/// `XXBTZUSD` and `XBT/USD` for one market), and a policy names markets once; normalising both
/// sides keeps an allowlist or a position cap from being bypassed by another spelling of the
/// same market.
pub fn normalise_symbol(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !matches!(c, '-' | '/' | '_' | ':') {
            out.extend(c.to_uppercase());
        }
    }
    // Repeated until nothing changes, so normalising a normal form changes nothing (`XXBTUSDT`
    // -> `XBTCUSDT` -> `BTCCUSDT`): positions are stored under their normal form and normalised
    // again when they are read back. Every step removes an `X` or a `Z`, so this ends.
    loop {
        let mut changed = false;
        if let Some(alt) = kraken_legacy_pair(&out) {
            out = alt;
            changed = true;
        }
        for (kraken, common) in [("XBT", "BTC"), ("XDG", "DOGE")] {
            if out.contains(kraken) {
                out = out.replace(kraken, common);
                changed = true;
            }
        }
        if !changed {
            return out;
        }
    }
}

/// Whether `s` is its own normal form (`normalise_symbol(s) == s`), without allocating: how a
/// configured symbol already written normalised is compared on every order.
pub(crate) fn is_normalised(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && !s.contains("XBT")
        && !s.contains("XDG")
        && kraken_legacy_pair(s).is_none()
}

/// `XXBTZUSD` -> `XBTUSD`: Kraken's pair id of two legacy assets, each an `X` (crypto) or `Z`
/// (fiat) prefix and a three-letter name, as the simulator and Kraken itself spell them. `XBTC`
/// counts as `XXBT`: it is how earlier versions stored `XXBT` pairs (`XXBTZUSD` as `XBTCZUSD`),
/// and positions kept under those keys must still count against the market's cap.
fn kraken_legacy_pair(s: &str) -> Option<String> {
    fn alt(id: &str) -> Option<&str> {
        let (prefix, name) = id.split_at_checked(1)?;
        let known = match prefix {
            "X" => [
                "XBT", "BTC", "ETH", "LTC", "XRP", "XLM", "XMR", "ETC", "ZEC", "REP", "MLN", "XDG",
            ]
            .contains(&name),
            "Z" => ["USD", "EUR", "GBP", "JPY", "CAD", "AUD"].contains(&name),
            _ => false,
        };
        known.then_some(name)
    }
    if s.len() != 8 || !s.is_ascii() {
        return None;
    }
    let (base, quote) = s.split_at(4);
    Some(format!("{}{}", alt(base)?, alt(quote)?))
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

    /// Kraken takes a market by its altname, its pair id or its wsname: all three are one
    /// market to a policy.
    #[test]
    fn kraken_pair_ids_are_the_same_market_as_their_altnames() {
        for (a, b) in [
            ("XXBTZUSD", "XBTUSD"),
            ("XXBTZUSD", "BTC/USD"),
            ("xxbtzeur", "XBT/EUR"),
            ("XETHZUSD", "ETHUSD"),
            ("XETHXXBT", "ETH/BTC"),
            ("XLTCZUSD", "LTC-USD"),
            ("XXDGZUSD", "XDGUSD"),
            ("XDGUSD", "DOGE/USD"),
        ] {
            assert_eq!(normalise_symbol(a), normalise_symbol(b), "{a} and {b}");
        }
        // Only pairs of two legacy assets lose prefixes: anything else keeps its letters.
        for (a, b) in [("XABCZUSD", "ABCUSD"), ("XXBTUSDT", "BTCUSDT")] {
            assert_ne!(normalise_symbol(a), normalise_symbol(b), "{a} and {b}");
        }
        assert_eq!(normalise_symbol("XXBTZUSD"), "BTCUSD");
        // Keys stored by earlier versions (which read `XXBTZUSD` as `XBTCZUSD`) are the market.
        assert_eq!(normalise_symbol("XBTCZUSD"), "BTCUSD");
        assert_eq!(normalise_symbol("XETHXBTC"), "ETHBTC");
    }

    /// A normal form normalises to itself: positions stored under one are read back under the
    /// same market.
    #[test]
    fn normalising_twice_changes_nothing() {
        for s in [
            "XXBTZUSD",
            "XXBTUSDT",
            "XBTCZUSD",
            "XETHXXBT",
            "XXDGZUSD",
            "XXXBTBT",
            "XDGXBTXDG",
            "ZUSDZEUR",
            "XZECZUSD",
            "btc-usdt",
            "BTC-USDT-SWAP",
            "XBT/USD",
            "ÄBC",
            "",
            "XXXX",
            "XBTXBTXBT",
            "XXBTXXBT",
        ] {
            let once = normalise_symbol(s);
            assert_eq!(normalise_symbol(&once), once, "{s}");
        }
    }

    #[test]
    fn the_quick_test_of_a_normal_form_agrees_with_normalising() {
        // "ÄBC" is its own normal form, which the quick test does not claim (it then normalises).
        for s in [
            "BTCUSDT",
            "BTCUSD",
            "BTC-USDT",
            "btcusdt",
            "XBTUSD",
            "XXBTZUSD",
            "XETHZUSD",
            "XETHXXBT",
            "XDGUSD",
            "DOGEUSD",
            "ETHUSD",
            "BTCUSDTSWAP",
            "1000SHIBUSDT",
            "XABCZUSD",
            "ZUSDXXBT",
            "X",
            "",
            "ÄBC",
            "ETH:USDT",
            "XLTCZEUR",
        ] {
            // Never "normal" when it is not (that would skip normalising a configured
            // symbol); for ASCII, exactly when it is.
            let normal = normalise_symbol(s) == s;
            assert!(normal || !is_normalised(s), "{s}");
            if s.is_ascii() {
                assert_eq!(
                    is_normalised(s),
                    normal,
                    "{s} normalises to {}",
                    normalise_symbol(s)
                );
            }
        }
    }

    #[test]
    fn day_numbers_floor() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(DAY_MS - 1), 0);
        assert_eq!(day_of(DAY_MS), 1);
        assert_eq!(day_of(-1), -1);
    }
}
