//! keyfence-gateway: the signing gateway.
//!
//! A bot holds keyfence-issued credentials in its exchange's own format and points its base URL
//! at a listener here. Each request is authenticated as the exchange would (the bot's signature
//! over the raw bytes), checked against replays and the bot's IP allowlist, classified, decided
//! by the bot's policy, re-signed with the real key, forwarded, and journaled. See
//! [`pipeline`] for the order of the steps and `docs/gateway.md` for the user's view.
//!
//! **Invariant:** a request reaches the exchange only with a policy decision that allowed it,
//! and (for anything but a read or a cancel) only while the journal can be written.

pub mod bots;
pub mod cidr;
pub mod config;
mod finish;
pub mod issue;
pub mod nonce;
pub mod outcome;
pub mod pipeline;
pub mod prices;
pub mod replay;
pub mod server;

use std::time::{SystemTime, UNIX_EPOCH};

pub use config::{ConfigError, GatewayConfig};
pub use server::{RunningGateway, StartError, default_threads, start, start_with};

/// Wall-clock now in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Wall-clock now in Unix microseconds.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
