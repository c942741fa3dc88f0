//! Records the store reads and writes.

use keyfence_types::Venue;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A bot known to the gateway, with all of its credentials (live and expired).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BotRecord {
    pub name: String,
    pub venue: Venue,
    pub key_label: String,
    pub policy: String,
    /// CIDRs; empty = any source address.
    pub allow_ips: Vec<String>,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
    pub credentials: Vec<BotCredential>,
}

/// One credential a bot signs with. Rotation adds a new one and bounds the old ones'
/// `valid_until_ms`, so both work during the overlap.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct BotCredential {
    pub id: String,
    pub api_key: String,
    /// The bot's secret material, age-encrypted (armored) by the caller; opaque to the store.
    pub sealed: Option<String>,
    /// A public key PEM the bot registered (Binance Ed25519) — no secret then.
    pub public_key: Option<String>,
    pub created_ms: i64,
    pub valid_until_ms: Option<i64>,
}

impl BotCredential {
    /// Usable at `now_ms`: no end of validity, or one still in the future.
    pub fn valid_at(&self, now_ms: i64) -> bool {
        self.valid_until_ms.is_none_or(|until| now_ms < until)
    }
}

/// Hand-written so the sealed blob never lands in logs, even though it is encrypted.
impl std::fmt::Debug for BotCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotCredential")
            .field("id", &self.id)
            .field("api_key", &self.api_key)
            .field("sealed", &self.sealed.as_ref().map(|_| "<sealed>"))
            .field("public_key", &self.public_key.is_some())
            .field("created_ms", &self.created_ms)
            .field("valid_until_ms", &self.valid_until_ms)
            .finish()
    }
}

/// A durable reservation written before a trading request is forwarded. If the gateway dies
/// before the outcome is journaled, `recover_pending` turns it into a "recovery" entry, so the
/// caps stay counted (the order may have reached the exchange).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub id: String,
    pub ts_ms: i64,
    pub bot: String,
    pub venue: Venue,
    pub day: i64,
    pub notional: Decimal,
    pub orders: u64,
    pub positions: Vec<(String, Decimal)>,
    pub symbol: Option<String>,
    pub side: Option<String>,
    pub class: String,
}

/// What the caller hands to `Journal::append`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewEntry {
    pub ts_ms: i64,
    /// request | control | recovery
    pub kind: String,
    pub bot: Option<String>,
    pub venue: Option<Venue>,
    pub class: Option<String>,
    pub method: Option<String>,
    /// Canonical path only, never the query string.
    pub path: Option<String>,
    pub symbol: Option<String>,
    pub side: Option<String>,
    pub quantity: Option<Decimal>,
    pub notional: Option<Decimal>,
    /// allow | deny | halted | reducing | active | revoke | ...
    pub decision: String,
    pub rules: Vec<String>,
    pub upstream_status: Option<u16>,
    pub latency_us: Option<u64>,
    pub order_id: Option<String>,
    pub message: Option<String>,
    /// The pending reservation this entry settles; deleted in the same transaction.
    pub reservation_id: Option<String>,
    /// Positions for the usage tally (allowed trades): normalised symbol -> signed base delta.
    /// Leave empty (and `orders` 0) when the exchange rejected the request and the reservation
    /// was released: `usage` counts an entry only when `decision == "allow"` and `orders > 0`.
    pub positions: Vec<(String, Decimal)>,
    pub orders: u64,
}

/// A committed journal entry. Field order is the canonical JSON order the hash covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub seq: u64,
    pub ts_ms: i64,
    pub kind: String,
    pub bot: Option<String>,
    pub venue: Option<Venue>,
    pub class: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub symbol: Option<String>,
    pub side: Option<String>,
    pub quantity: Option<Decimal>,
    pub notional: Option<Decimal>,
    pub decision: String,
    pub rules: Vec<String>,
    pub upstream_status: Option<u16>,
    pub latency_us: Option<u64>,
    pub order_id: Option<String>,
    pub message: Option<String>,
    pub positions: Vec<(String, Decimal)>,
    pub orders: u64,
    pub prev_hash: String,
    pub hash: String,
}

/// Per-bot usage for seeding the policy ledger after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub bot: String,
    pub day: i64,
    /// Notional of the day's allowed entries plus pending reservations.
    pub notional: Decimal,
    pub orders: u64,
    /// Net base position per normalised symbol, all time (journal plus pending).
    pub positions: Vec<(String, Decimal)>,
}

/// Outcome of `Store::verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub entries: u64,
    pub checkpoints: u64,
    /// The first bad seq and what is wrong with it; `None` = the journal verifies.
    pub first_bad: Option<(u64, String)>,
    /// The key the checkpoints were checked against (the pinned one, or the one they carry).
    pub public_key_hex: Option<String>,
}

/// Group-commit counters, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalStats {
    /// Transactions committed by the writer.
    pub commits: u64,
    /// Commands (appends, reservations, admin changes) carried by those commits.
    pub commands: u64,
    /// Journal entries written.
    pub entries: u64,
    /// The most commands one commit carried.
    pub max_batch: u64,
    /// Commits (or fsyncs) that failed.
    pub failures: u64,
    /// fdatasyncs of the WAL by the syncer thread (`SyncMode::Full`; under `Strict` SQLite
    /// syncs inside each commit and `Normal` leaves it to SQLite's checkpoints).
    pub fsyncs: u64,
}
