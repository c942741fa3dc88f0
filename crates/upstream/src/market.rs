//! Prices and balances from an exchange: a public ticker, and the balances a key can read.
//! Both are reads, so both are retried like introspection.

use keyfence_exchange::{Venue, balances_request, parse_balances, parse_ticker, ticker_request};
use rust_decimal::Decimal;

use crate::introspect::{IntrospectError, Nonces, Target, answer, signed};
use crate::{Retry, Upstream};

/// The last trade price of one spot `symbol` (the venue's spelling) at `base_url`. Public: no key.
pub async fn ticker(
    up: &Upstream,
    base_url: &str,
    venue: Venue,
    symbol: &str,
) -> Result<Decimal, IntrospectError> {
    let resp = up
        .send(base_url, Retry::Idempotent, |_| {
            Ok(ticker_request(venue, symbol))
        })
        .await?;
    answer(venue, &resp, parse_ticker(venue, symbol, &resp.body))
}

/// What the target key's account holds, per asset (see [`parse_balances`]). Needs a key that
/// can read.
pub async fn balances(
    up: &Upstream,
    target: &Target,
    nonces: &Nonces,
) -> Result<Vec<(String, Decimal)>, IntrospectError> {
    let venue = target.venue;
    signed(up, target, nonces, balances_request, |body| {
        parse_balances(venue, body)
    })
    .await
}
