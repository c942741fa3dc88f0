//! Shared helpers: a real SQLite file in a temp dir that is removed on drop, a raw connection
//! for tampering, and entry builders.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use keyfence_store::{CheckpointSigner, NewEntry, Store, StoreOptions};
use keyfence_types::Venue;
use rust_decimal::Decimal;
use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnectOptions;

#[path = "../../../../tests/support/tempdir.rs"]
mod support;
pub use support::TempDir;

impl TempDir {
    /// A fresh directory for one test's store.
    pub fn new(name: &str) -> TempDir {
        TempDir::at(support::unique_path(&format!("keyfence-store-{name}")))
    }
    pub fn db(&self) -> PathBuf {
        self.join("keyfence.db")
    }
}

pub fn opts() -> StoreOptions {
    StoreOptions {
        sync: keyfence_store::SyncMode::Normal,
        checkpoint_every: 1000,
        checkpoint_interval: Duration::from_secs(3600),
        reservation_log_bytes: 64 * 1024,
    }
}

pub async fn open(db: &Path) -> Store {
    Store::open(db, opts()).await.unwrap()
}

/// A store that signs a checkpoint every `every` entries; returns the signer's public key.
pub async fn open_signed(db: &Path, pkcs8: &[u8], every: u64) -> (Store, Vec<u8>) {
    let signer = CheckpointSigner::from_pkcs8(pkcs8).unwrap();
    let pk = signer.public_key().to_vec();
    let o = StoreOptions {
        checkpoint_every: every,
        ..opts()
    };
    (
        Store::open_with_signer(db, o, Some(signer)).await.unwrap(),
        pk,
    )
}

/// A second, independent connection to the same file, as an attacker with file access has.
pub async fn raw(db: &Path) -> SqlitePool {
    SqlitePool::connect_with(SqliteConnectOptions::new().filename(db))
        .await
        .unwrap()
}

pub fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// A request entry; `i` makes each one distinct.
pub fn request(bot: &str, i: u64) -> NewEntry {
    NewEntry {
        ts_ms: 1_700_000_000_000 + i as i64,
        kind: "request".to_owned(),
        bot: Some(bot.to_owned()),
        venue: Some(Venue::Binance),
        class: Some("trade".to_owned()),
        method: Some("POST".to_owned()),
        path: Some("/api/v3/order".to_owned()),
        symbol: Some("BTCUSDT".to_owned()),
        side: Some("buy".to_owned()),
        quantity: Some(d("0.01")),
        notional: Some(d("650.50")),
        decision: "deny".to_owned(),
        rules: vec!["max-order-notional".to_owned()],
        upstream_status: None,
        latency_us: Some(120 + i),
        order_id: None,
        message: Some(format!("entry {i}")),
        reservation_id: None,
        positions: Vec::new(),
        orders: 0,
    }
}
