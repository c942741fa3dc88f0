//! Refuses an exact replay of a signed request inside its venue's time window.
//!
//! The fingerprint is SHA-256 over everything the bot signed (method, path, query, body) and the
//! authentication headers; a request seen before is refused until it has aged out of every
//! venue's window (after which the venue's own timestamp check refuses it anyway).
//!
//! Coinbase is different: its JWT signs the method, host and path but not the body, so the same
//! JWT on a different order would pass as a new request. There the JWT itself is the
//! fingerprint: each one is good for one request, which is what Coinbase's own clients do (a
//! fresh JWT, with a random nonce, per request).

use std::collections::HashMap;
use std::sync::Mutex;

use keyfence_exchange::HttpRequest;
use keyfence_types::Venue;

/// Longer than any venue's window (Binance's maximum recvWindow is 60 s; Coinbase JWTs live 120 s).
pub const KEEP_MS: i64 = 5 * 60 * 1000;

const AUTH_HEADERS: &[&str] = &[
    "x-mbx-apikey",
    "x-bapi-api-key",
    "x-bapi-sign",
    "x-bapi-timestamp",
    "x-bapi-recv-window",
    "ok-access-key",
    "ok-access-sign",
    "ok-access-timestamp",
    "authorization",
    "api-key",
    "api-sign",
];

#[derive(Debug, Default)]
pub struct ReplayCache {
    seen: Mutex<HashMap<[u8; 32], i64>>,
}

impl ReplayCache {
    /// Record the request; false when it was seen before (a replay).
    pub fn first_sight(&self, venue: Venue, req: &HttpRequest, now_ms: i64) -> bool {
        let fp = fingerprint(venue, req);
        let mut seen = match self.seen.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if seen.len() > 100_000 {
            seen.retain(|_, t| now_ms - *t < KEEP_MS);
        }
        match seen.get(&fp) {
            Some(t) if now_ms - *t < KEEP_MS => false,
            _ => {
                seen.insert(fp, now_ms);
                true
            }
        }
    }

    /// Drop entries older than the window (called periodically).
    pub fn prune(&self, now_ms: i64) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.retain(|_, t| now_ms - *t < KEEP_MS);
        }
    }
}

fn fingerprint(venue: Venue, req: &HttpRequest) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut field = |b: &[u8]| {
        ctx.update(&(b.len() as u64).to_be_bytes());
        ctx.update(b);
    };
    field(venue.as_str().as_bytes());
    if let (Venue::Coinbase, Some(jwt)) = (venue, req.header("authorization")) {
        field(jwt.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        return out;
    }
    field(req.method.as_bytes());
    field(req.path.as_bytes());
    field(req.query.as_bytes());
    field(&req.body);
    for h in AUTH_HEADERS {
        field(req.header(h).unwrap_or("").as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_is_refused_until_it_ages_out() {
        let c = ReplayCache::default();
        let r = HttpRequest::new("POST", "/api/v3/order?symbol=BTCUSDT&signature=ab");
        assert!(c.first_sight(Venue::Binance, &r, 1_000));
        assert!(!c.first_sight(Venue::Binance, &r, 2_000));
        let other = HttpRequest::new("POST", "/api/v3/order?symbol=BTCUSDT&signature=ac");
        assert!(c.first_sight(Venue::Binance, &other, 2_000));
        assert!(c.first_sight(Venue::Binance, &r, 1_000 + KEEP_MS));
    }

    /// A Coinbase JWT does not sign the body: reusing it on another order is a replay.
    #[test]
    fn a_coinbase_jwt_is_good_for_one_request() {
        let c = ReplayCache::default();
        let order = |body: &str, jwt: &str| {
            HttpRequest::new("POST", "/api/v3/brokerage/orders")
                .with_header("authorization", &format!("Bearer {jwt}"))
                .with_body(body.as_bytes().to_vec())
        };
        assert!(c.first_sight(Venue::Coinbase, &order("{\"a\":1}", "jwt-1"), 1_000));
        assert!(!c.first_sight(Venue::Coinbase, &order("{\"a\":2}", "jwt-1"), 2_000));
        assert!(c.first_sight(Venue::Coinbase, &order("{\"a\":2}", "jwt-2"), 2_000));
        // Elsewhere the body is part of what is signed, so it stays in the fingerprint.
        let bybit = |body: &str| {
            HttpRequest::new("POST", "/v5/order/create")
                .with_header("x-bapi-sign", "same")
                .with_body(body.as_bytes().to_vec())
        };
        assert!(c.first_sight(Venue::Bybit, &bybit("{\"a\":1}"), 1_000));
        assert!(c.first_sight(Venue::Bybit, &bybit("{\"a\":2}"), 1_000));
    }
}
