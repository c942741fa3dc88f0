//! Reference prices from each venue's public ticker, refreshed in the background, with the time
//! they were fetched so the policy can refuse stale ones.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use keyfence_policy::Prices;
use keyfence_types::Venue;
use keyfence_upstream::{Retry, Upstream};
use rust_decimal::Decimal;

use crate::now_ms;

/// Where to fetch a venue's ticker.
#[derive(Debug, Clone)]
pub struct Feed {
    pub base_url: String,
    pub upstream: Upstream,
}

#[derive(Debug, Default)]
pub struct PriceBook {
    prices: RwLock<HashMap<(Venue, String), (Decimal, i64)>>,
    /// Symbols to keep fresh: seen in orders or named by policies.
    wanted: RwLock<HashSet<(Venue, String)>>,
}

impl Prices for PriceBook {
    fn reference(&self, venue: Venue, symbol: &str) -> Option<(Decimal, i64)> {
        let map = self.prices.read().ok()?;
        map.get(&(venue, symbol.to_owned())).copied()
    }
}

impl PriceBook {
    pub fn want(&self, venue: Venue, symbol: &str) {
        let key = (venue, symbol.to_owned());
        let known = self
            .wanted
            .read()
            .map(|w| w.contains(&key))
            .unwrap_or(false);
        if !known && let Ok(mut w) = self.wanted.write() {
            w.insert(key);
        }
    }

    fn set(&self, venue: Venue, symbol: &str, price: Decimal, at_ms: i64) {
        if let Ok(mut m) = self.prices.write() {
            m.insert((venue, symbol.to_owned()), (price, at_ms));
        }
    }

    /// Fetch one ticker now (for an order on a symbol with no fresh price). Failures leave the
    /// price as it was: the policy then refuses what needs it.
    pub async fn fetch(&self, feed: &Feed, venue: Venue, symbol: &str) {
        self.want(venue, symbol);
        let req = keyfence_exchange::ticker_request(venue, symbol);
        let sent = feed
            .upstream
            .send(&feed.base_url, Retry::Never, |_| Ok(req.clone()))
            .await;
        match sent {
            Ok(resp) if (200..300).contains(&resp.status) => {
                match keyfence_exchange::parse_ticker(venue, symbol, &resp.body) {
                    Ok(p) if p > Decimal::ZERO => self.set(venue, symbol, p, now_ms()),
                    Ok(_) => tracing::warn!(%venue, symbol, "ticker price is not positive"),
                    Err(e) => tracing::warn!(%venue, symbol, error = %e, "ticker unreadable"),
                }
            }
            Ok(resp) => tracing::debug!(%venue, symbol, status = resp.status, "ticker refused"),
            Err(e) => tracing::debug!(%venue, symbol, error = %e, "ticker unreachable"),
        }
    }

    /// Refresh every wanted symbol every `every`, until the task is dropped.
    pub async fn refresh_forever(self: Arc<Self>, feeds: HashMap<Venue, Feed>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let wanted: Vec<(Venue, String)> = match self.wanted.read() {
                Ok(w) => w.iter().cloned().collect(),
                Err(_) => continue,
            };
            for (venue, symbol) in wanted {
                if let Some(feed) = feeds.get(&venue) {
                    self.fetch(feed, venue, &symbol).await;
                }
            }
        }
    }
}
