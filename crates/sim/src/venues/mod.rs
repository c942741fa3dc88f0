//! One module per venue: HTTP in the venue's own paths and shapes, onto the ledger in
//! [`crate::state`]. Each module exports `split_symbol` and `handle`.

use keyfence_exchange::NativeResponse;
use keyfence_types::Venue;

use crate::state::{SimRequest, VenueState};

mod binance;
mod bybit;
mod coinbase;
mod kraken;
mod okx;

/// Split a venue symbol into (base asset, quote asset), in the venue's own asset names.
pub fn split_symbol(venue: Venue, symbol: &str) -> Option<(String, String)> {
    match venue {
        Venue::Binance => binance::split_symbol(symbol),
        Venue::Bybit => bybit::split_symbol(symbol),
        Venue::Okx => okx::split_symbol(symbol),
        Venue::Coinbase => coinbase::split_symbol(symbol),
        Venue::Kraken => kraken::split_symbol(symbol),
    }
}

/// Answer one request. Called with the venue's state locked; must not block.
pub fn handle(state: &mut VenueState, req: &SimRequest) -> NativeResponse {
    match req.venue {
        Venue::Binance => binance::handle(state, req),
        Venue::Bybit => bybit::handle(state, req),
        Venue::Okx => okx::handle(state, req),
        Venue::Coinbase => coinbase::handle(state, req),
        Venue::Kraken => kraken::handle(state, req),
    }
}

/// Split `BTCUSDT`-style symbols by a known quote suffix.
pub(crate) fn split_by_quote_suffix(symbol: &str, quotes: &[&str]) -> Option<(String, String)> {
    quotes.iter().find_map(|q| {
        symbol
            .strip_suffix(q)
            .filter(|b| !b.is_empty())
            .map(|b| (b.to_owned(), (*q).to_owned()))
    })
}

/// Split `BTC-USDT`-style symbols on the dash.
pub(crate) fn split_on_dash(symbol: &str) -> Option<(String, String)> {
    let (b, q) = symbol.split_once('-')?;
    (!b.is_empty() && !q.is_empty() && !q.contains('-')).then(|| (b.to_owned(), q.to_owned()))
}

/// Permissions, in the venue's own names, that let a key read and trade spot (for the demo
/// and tests that need a working key).
pub fn trading_permissions(venue: Venue) -> &'static [&'static str] {
    match venue {
        Venue::Binance => binance::TRADING_PERMISSIONS,
        Venue::Bybit => bybit::TRADING_PERMISSIONS,
        Venue::Okx => okx::TRADING_PERMISSIONS,
        Venue::Coinbase => coinbase::TRADING_PERMISSIONS,
        Venue::Kraken => kraken::TRADING_PERMISSIONS,
    }
}
