//! `Store::verify`: recompute the chain from genesis and check every checkpoint, naming the
//! first bad seq. Detects an altered entry (hash mismatch), a removed one (seq gap), reordered
//! ones (prev_hash does not link), entries removed after a signed checkpoint, and checkpoints
//! whose signature (or key, when pinned) is wrong. Truncation after the last checkpoint cannot
//! be detected from the file alone; keep the last checkpoint elsewhere for that.

use sqlx::Row;

use crate::Store;
use crate::chain::{self, GENESIS};
use crate::error::StoreError;
use crate::model::VerifyReport;
use crate::rows::{self, ENTRY_COLUMNS};

const PAGE: i64 = 2000;

impl Store {
    /// Check the whole journal. `pinned_public_key`: the raw 32-byte Ed25519 key checkpoints
    /// must be signed with; without it, each checkpoint is checked against the key it carries.
    pub async fn verify(
        &self,
        pinned_public_key: Option<&[u8]>,
    ) -> Result<VerifyReport, StoreError> {
        self.settle().await;
        let pinned = pinned_public_key.map(hex::encode);
        let mut problems: Vec<(u64, String)> = Vec::new();

        // The chain.
        let mut expected = 1u64;
        let mut prev = GENESIS.to_owned();
        let mut hashes = std::collections::BTreeMap::new();
        let mut entries = 0u64;
        let mut after = i64::MIN;
        'pages: loop {
            let sql =
                format!("SELECT {ENTRY_COLUMNS} FROM journal WHERE seq > ? ORDER BY seq LIMIT ?");
            let page = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(after)
                .bind(PAGE)
                .fetch_all(self.pool())
                .await?;
            if page.is_empty() {
                break;
            }
            for row in &page {
                let raw_seq: i64 = row.try_get("seq")?;
                after = raw_seq;
                entries += 1;
                let seq = u64::try_from(raw_seq).unwrap_or(0);
                if seq != expected {
                    let why = if seq > expected {
                        format!("removed: entries {expected}..{} are missing", seq - 1)
                    } else {
                        format!(
                            "removed or renumbered: found seq {raw_seq} where {expected} was expected"
                        )
                    };
                    problems.push((expected, why));
                    break 'pages;
                }
                let entry = match rows::entry_from_row(row) {
                    Ok(e) => e,
                    Err(e) => {
                        problems.push((seq, format!("altered: the row cannot be read ({e})")));
                        break 'pages;
                    }
                };
                if entry.prev_hash != prev {
                    problems.push((
                        seq,
                        "reordered or removed: prev_hash does not match the hash of the entry before".to_owned(),
                    ));
                    break 'pages;
                }
                if chain::entry_hash(&entry)? != entry.hash {
                    problems.push((seq, "altered: content does not match its hash".to_owned()));
                    break 'pages;
                }
                prev = entry.hash.clone();
                hashes.insert(seq, entry.hash);
                expected += 1;
            }
        }
        let last_seq = expected - 1;

        // The checkpoints.
        let cps = sqlx::query(
            "SELECT seq, hash, ts_ms, public_key, signature FROM checkpoints ORDER BY seq",
        )
        .fetch_all(self.pool())
        .await?;
        let mut key_seen = None;
        for row in &cps {
            let seq = rows::to_u64(row.try_get("seq")?, "checkpoint seq")?;
            let hash: String = row.try_get("hash")?;
            let ts_ms: i64 = row.try_get("ts_ms")?;
            let key: String = row.try_get("public_key")?;
            let sig: String = row.try_get("signature")?;
            let msg = chain::checkpoint_message(seq, &hash, ts_ms);
            if let Some(p) = &pinned
                && !p.eq_ignore_ascii_case(&key)
            {
                problems.push((
                    seq,
                    format!("checkpoint at {seq} is signed by key {key}, not the pinned key"),
                ));
                continue;
            }
            if !chain::checkpoint_valid(&key, &sig, &msg) {
                problems.push((seq, format!("checkpoint at {seq}: signature invalid")));
                continue;
            }
            key_seen = Some(key);
            if problems.is_empty() && seq > last_seq {
                problems.push((
                    last_seq + 1,
                    format!("removed: the signed checkpoint at {seq} covers entries after the last one ({last_seq})"),
                ));
            } else if let Some(h) = hashes.get(&seq)
                && *h != hash
            {
                problems.push((
                    seq,
                    format!("altered: entry {seq} does not match the signed checkpoint"),
                ));
            }
        }

        problems.sort_by_key(|(seq, _)| *seq);
        Ok(VerifyReport {
            entries,
            checkpoints: cps.len() as u64,
            first_bad: problems.into_iter().next(),
            public_key_hex: pinned.or(key_seen),
        })
    }
}
