//! Prices and balances from an exchange, and what an account is worth in USD (the audit's
//! `tier = auto`). All of it is reads, retried like introspection.
//!
//! Valuing fails closed: an account is worth a number only when every asset it holds was
//! priced. A value too low would give the key a laxer rotation schedule than it needs, so any
//! doubt leaves the value unknown (and the audit then picks the strictest tier).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keyfence_exchange::{
    Venue, balances_request, parse_balances, parse_ticker, spot_symbol, ticker_request,
};
use rust_decimal::Decimal;
use tokio::sync::Semaphore;

use crate::introspect::{IntrospectError, Nonces, Target, answer, signed};
use crate::{Retry, Upstream};

/// Assets counted at one US dollar each.
pub const DOLLARS: &[&str] = &["USD", "USDT", "USDC"];

/// The quotes an asset is priced in, in order of preference.
const QUOTES: &[&str] = &["USDT", "USD"];

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

/// Why an account could not be valued. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    #[error("its balances could not be read: {0}")]
    Balances(IntrospectError),
    #[error("{venue} lists no {asset}/USDT or {asset}/USD market to price `{asset}` with")]
    NoPrice { venue: Venue, asset: String },
    #[error("the account's value is too large to add up")]
    Overflow,
    #[error("`{asset}` could not be priced: {error}")]
    Price {
        asset: String,
        error: IntrospectError,
    },
}

/// Prices already asked for in this run, by base URL and asset: `None` when the venue lists no
/// market for the asset. Shared by every valuation of one audit so that twenty keys on one
/// exchange ask for the BTC price once (more or less: concurrent askers may both ask).
#[derive(Debug, Default, Clone)]
pub struct Prices(Arc<Mutex<PriceMap>>);

/// `(base URL, asset)` -> the asset's USD price there, `None` when it has no market.
type PriceMap = HashMap<(String, String), Option<Decimal>>;

impl Prices {
    fn get(&self, base_url: &str, asset: &str) -> Option<Option<Decimal>> {
        let map = self.0.lock().ok()?;
        map.get(&(base_url.to_owned(), asset.to_owned())).copied()
    }

    fn put(&self, base_url: &str, asset: &str, price: Option<Decimal>) {
        if let Ok(mut map) = self.0.lock() {
            map.insert((base_url.to_owned(), asset.to_owned()), price);
        }
    }
}

/// The USD price of one `asset` on the venue: its market against USDT, else against USD.
/// `Ok(None)` when the venue lists neither (it refused both symbols).
async fn usd_price(
    up: &Upstream,
    target: &Target,
    asset: &str,
    prices: &Prices,
) -> Result<Option<Decimal>, IntrospectError> {
    if let Some(known) = prices.get(&target.base_url, asset) {
        return Ok(known);
    }
    for quote in QUOTES {
        let symbol = spot_symbol(target.venue, asset, quote);
        match ticker(up, &target.base_url, target.venue, &symbol).await {
            Ok(p) => {
                prices.put(&target.base_url, asset, Some(p));
                return Ok(Some(p));
            }
            // The venue's own "no such market": try the next quote.
            Err(IntrospectError::Refused { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    prices.put(&target.base_url, asset, None);
    Ok(None)
}

/// What the target key's account is worth in USD: every balance, dollars and dollar
/// stablecoins ([`DOLLARS`]) at one, other assets at the venue's own last price against USDT or
/// USD. Any balance that cannot be priced makes the value unknown (an error), never a guess.
pub async fn account_value(
    up: &Upstream,
    target: &Target,
    nonces: &Nonces,
    prices: &Prices,
) -> Result<Decimal, ValueError> {
    let held = balances(up, target, nonces)
        .await
        .map_err(ValueError::Balances)?;
    let mut total = Decimal::ZERO;
    for (asset, amount) in held {
        let price = if DOLLARS.contains(&asset.as_str()) {
            Decimal::ONE
        } else {
            match usd_price(up, target, &asset, prices).await {
                Ok(Some(p)) => p,
                Ok(None) => {
                    return Err(ValueError::NoPrice {
                        venue: target.venue,
                        asset,
                    });
                }
                Err(error) => return Err(ValueError::Price { asset, error }),
            }
        };
        total = amount
            .checked_mul(price)
            .and_then(|v| total.checked_add(v))
            .ok_or(ValueError::Overflow)?;
    }
    Ok(total)
}

/// Value every target's account, at most `concurrency` at a time; results in the targets'
/// order. Prices are shared across the targets.
pub async fn value_all(
    up: &Upstream,
    targets: Vec<Target>,
    concurrency: usize,
) -> Vec<(Target, Result<Decimal, ValueError>)> {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let nonces = Arc::new(Nonces::default());
    let prices = Prices::default();
    let mut set = tokio::task::JoinSet::new();
    for (i, t) in targets.into_iter().enumerate() {
        let (sem, up, nonces, prices) = (sem.clone(), up.clone(), nonces.clone(), prices.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let r = account_value(&up, &t, &nonces, &prices).await;
            (i, t, r)
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Ok(item) = joined {
            out.push(item);
        }
    }
    out.sort_by_key(|(i, _, _)| *i);
    out.into_iter().map(|(_, t, r)| (t, r)).collect()
}
