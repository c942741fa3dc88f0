//! The hash chain and checkpoint signatures: pure functions, so writer and verifier agree.

use ring::digest;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::Serialize;

use keyfence_types::{SecretBytes, Venue};
use rust_decimal::Decimal;

use crate::error::StoreError;
use crate::model::JournalEntry;

/// prev_hash of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const ENTRY_DOMAIN: &[u8] = b"keyfence-journal-v1\0";

/// The entry without its hash, in canonical field order (the order of `JournalEntry`).
#[derive(Serialize)]
struct Body<'a> {
    seq: u64,
    ts_ms: i64,
    kind: &'a str,
    bot: &'a Option<String>,
    venue: &'a Option<Venue>,
    class: &'a Option<String>,
    method: &'a Option<String>,
    path: &'a Option<String>,
    symbol: &'a Option<String>,
    side: &'a Option<String>,
    quantity: &'a Option<Decimal>,
    notional: &'a Option<Decimal>,
    decision: &'a str,
    rules: &'a [String],
    upstream_status: Option<u16>,
    latency_us: Option<u64>,
    order_id: &'a Option<String>,
    message: &'a Option<String>,
    positions: &'a [(String, Decimal)],
    orders: u64,
    prev_hash: &'a str,
}

/// `hex(SHA-256("keyfence-journal-v1\0" || prev_hash || canonical_json(entry without hash)))`.
/// Canonical JSON: serde_json of the fields in declaration order, no whitespace, decimals as
/// their exact strings.
pub fn entry_hash(e: &JournalEntry) -> Result<String, StoreError> {
    let body = Body {
        seq: e.seq,
        ts_ms: e.ts_ms,
        kind: &e.kind,
        bot: &e.bot,
        venue: &e.venue,
        class: &e.class,
        method: &e.method,
        path: &e.path,
        symbol: &e.symbol,
        side: &e.side,
        quantity: &e.quantity,
        notional: &e.notional,
        decision: &e.decision,
        rules: &e.rules,
        upstream_status: e.upstream_status,
        latency_us: e.latency_us,
        order_id: &e.order_id,
        message: &e.message,
        positions: &e.positions,
        orders: e.orders,
        prev_hash: &e.prev_hash,
    };
    let json = serde_json::to_vec(&body).map_err(|err| StoreError::Corrupt(err.to_string()))?;
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(ENTRY_DOMAIN);
    ctx.update(e.prev_hash.as_bytes());
    ctx.update(&json);
    Ok(hex::encode(ctx.finish()))
}

/// The bytes a checkpoint signature covers.
pub fn checkpoint_message(seq: u64, hash: &str, ts_ms: i64) -> Vec<u8> {
    format!("keyfence-checkpoint-v1\0{seq}\0{hash}\0{ts_ms}").into_bytes()
}

/// Check one checkpoint signature (hex key and signature as stored).
pub fn checkpoint_valid(public_key_hex: &str, signature_hex: &str, msg: &[u8]) -> bool {
    let (Ok(pk), Ok(sig)) = (hex::decode(public_key_hex), hex::decode(signature_hex)) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, pk)
        .verify(msg, &sig)
        .is_ok()
}

/// The Ed25519 key the journal writer signs checkpoints with. Not `Clone`, and `Debug` shows
/// only the public key.
pub struct CheckpointSigner {
    pair: Ed25519KeyPair,
}

impl CheckpointSigner {
    /// Wrap a PKCS#8 (v1 or v2) Ed25519 private key.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, StoreError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|e| StoreError::Signer(e.to_string()))?;
        Ok(CheckpointSigner { pair })
    }

    /// A fresh PKCS#8 v2 Ed25519 key, for `keyfence init` to seal into the vault.
    pub fn generate_pkcs8() -> Result<SecretBytes, StoreError> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|e| StoreError::Signer(e.to_string()))?;
        Ok(SecretBytes::new(doc.as_ref().to_vec()))
    }

    /// Raw 32-byte public key; pin it to `verify` to refuse checkpoints signed by anyone else.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    pub fn public_key_hex(&self) -> String {
        hex::encode(self.public_key())
    }

    pub(crate) fn sign_hex(&self, msg: &[u8]) -> String {
        hex::encode(self.pair.sign(msg).as_ref())
    }
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("public_key", &self.public_key_hex())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn entry() -> JournalEntry {
        JournalEntry {
            seq: 1,
            ts_ms: 5,
            kind: "request".to_owned(),
            bot: Some("b".to_owned()),
            venue: Some(Venue::Kraken),
            class: None,
            method: None,
            path: None,
            symbol: None,
            side: None,
            quantity: Some("1.50".parse().unwrap()),
            notional: None,
            decision: "deny".to_owned(),
            rules: vec!["price-band".to_owned()],
            upstream_status: None,
            latency_us: None,
            order_id: None,
            message: None,
            positions: vec![],
            orders: 0,
            prev_hash: GENESIS.to_owned(),
            hash: String::new(),
        }
    }

    #[test]
    fn the_hash_covers_every_field_and_the_exact_decimal_spelling() {
        let base = entry_hash(&entry()).unwrap();
        assert_eq!(base.len(), 64);
        // The stored hash itself is not part of what is hashed.
        let mut e = entry();
        e.hash = "whatever".to_owned();
        assert_eq!(entry_hash(&e).unwrap(), base);
        let mut e = entry();
        e.quantity = Some("1.5".parse().unwrap());
        assert_ne!(entry_hash(&e).unwrap(), base);
        let mut e = entry();
        e.seq = 2;
        assert_ne!(entry_hash(&e).unwrap(), base);
        let mut e = entry();
        e.prev_hash = "1".repeat(64);
        assert_ne!(entry_hash(&e).unwrap(), base);
    }

    #[test]
    fn checkpoint_signatures_verify_and_debug_shows_no_private_key() {
        let pkcs8 = CheckpointSigner::generate_pkcs8().unwrap();
        let signer = CheckpointSigner::from_pkcs8(pkcs8.expose()).unwrap();
        let msg = checkpoint_message(7, &"a".repeat(64), 99);
        let sig = signer.sign_hex(&msg);
        assert!(checkpoint_valid(&signer.public_key_hex(), &sig, &msg));
        assert!(!checkpoint_valid(&signer.public_key_hex(), &sig, b"other"));
        let debug = format!("{signer:?}");
        assert!(debug.contains(&signer.public_key_hex()));
        assert!(!debug.contains(&hex::encode(pkcs8.expose())));
        assert!(CheckpointSigner::from_pkcs8(b"not a key").is_err());
    }
}
