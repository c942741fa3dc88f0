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

use std::collections::{HashSet, VecDeque};
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

/// Fingerprints in slots of [`SLOT_MS`] by when they were first seen. A lookup asks every
/// slot still kept; whole slots are dropped once they are older than [`KEEP_MS`], so nothing
/// is scanned entry by entry and a fingerprint is kept between `KEEP_MS` and
/// `KEEP_MS + SLOT_MS`.
#[derive(Debug, Default)]
pub struct ReplayCache {
    slots: Mutex<VecDeque<Slot>>,
}

/// A slot's width.
pub const SLOT_MS: i64 = 30 * 1000;

#[derive(Debug)]
struct Slot {
    start_ms: i64,
    /// std's randomly seeded hasher: a bot cannot choose fingerprints that collide.
    seen: HashSet<[u8; 32]>,
}

impl ReplayCache {
    /// Record the request; false when it was seen before (a replay).
    pub fn first_sight(&self, venue: Venue, req: &HttpRequest, now_ms: i64) -> bool {
        let fp = fingerprint(venue, req);
        let mut slots = match self.slots.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        drop_old(&mut slots, now_ms);
        if slots.iter().any(|s| s.seen.contains(&fp)) {
            return false;
        }
        let start_ms = now_ms - now_ms.rem_euclid(SLOT_MS);
        match slots.back_mut() {
            Some(last) if last.start_ms >= start_ms => {
                last.seen.insert(fp);
            }
            _ => {
                let mut seen = HashSet::new();
                seen.insert(fp);
                slots.push_back(Slot { start_ms, seen });
            }
        }
        true
    }

    /// Drop slots older than the window (also done on every request; this frees memory when
    /// requests stop).
    pub fn prune(&self, now_ms: i64) {
        if let Ok(mut slots) = self.slots.lock() {
            drop_old(&mut slots, now_ms);
        }
    }

    /// Fingerprints kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots
            .lock()
            .map(|s| s.iter().map(|s| s.seen.len()).sum())
            .unwrap_or(0)
    }
}

/// A slot whose newest possible entry is older than the window goes.
fn drop_old(slots: &mut VecDeque<Slot>, now_ms: i64) {
    while slots
        .front()
        .is_some_and(|s| now_ms - (s.start_ms + SLOT_MS) >= KEEP_MS)
    {
        slots.pop_front();
    }
}

fn fingerprint(venue: Venue, req: &HttpRequest) -> [u8; 32] {
    // The fields, each after its length, into one buffer hashed at once (cheaper than some
    // thirty small updates of a digest context).
    let headers: usize = req.headers.iter().map(|(_, v)| v.len()).sum();
    let mut buf = Vec::with_capacity(
        64 + req.path.len() + req.query.len() + req.body.len() + headers + 8 * AUTH_HEADERS.len(),
    );
    let mut field = |b: &[u8]| {
        buf.extend_from_slice(&(b.len() as u64).to_be_bytes());
        buf.extend_from_slice(b);
    };
    field(venue.as_str().as_bytes());
    if let (Venue::Coinbase, Some(jwt)) = (venue, req.header("authorization")) {
        field(jwt.as_bytes());
        return sha256(&buf);
    }
    field(req.method.as_bytes());
    field(req.path.as_bytes());
    field(req.query.as_bytes());
    field(&req.body);
    for h in AUTH_HEADERS {
        field(req.header(h).unwrap_or("").as_bytes());
    }
    sha256(&buf)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
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
        assert!(c.first_sight(Venue::Binance, &r, 1_000 + KEEP_MS + SLOT_MS));
    }

    /// Kept for the whole window whichever slot it fell in, then dropped with its slot.
    #[test]
    fn fingerprints_stay_for_the_window_and_then_go_with_their_slot() {
        let c = ReplayCache::default();
        let req = |i: u32| HttpRequest::new("POST", &format!("/api/v3/order?n={i}&signature=x"));
        let t0 = 10 * SLOT_MS - 1; // the last moment of a slot
        for i in 0..1000 {
            assert!(c.first_sight(Venue::Binance, &req(i), t0));
        }
        // Every later moment of the window, in slots of their own: still replays.
        for t in [t0 + 1, t0 + SLOT_MS, t0 + KEEP_MS / 2, t0 + KEEP_MS - 1] {
            assert!(
                !c.first_sight(Venue::Binance, &req(7), t),
                "at +{} ms",
                t - t0
            );
            assert!(c.first_sight(Venue::Binance, &req(10_000 + t as u32), t));
        }
        assert!(c.len() >= 1000);
        // Past the window and a slot, the first 1000 are gone without a scan.
        c.prune(t0 + KEEP_MS + SLOT_MS + 1);
        assert!(c.len() < 1000, "{} kept", c.len());
        assert!(c.first_sight(Venue::Binance, &req(7), t0 + KEEP_MS + SLOT_MS + 1));
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
