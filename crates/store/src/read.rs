//! Reads: bots, journal pages, usage for seeding the policy ledger, JSONL export.

use std::collections::BTreeMap;
use std::io::Write;

use rust_decimal::Decimal;
use sqlx::Row;

use crate::Store;
use crate::error::StoreError;
use crate::model::{BotRecord, JournalEntry, Usage};
use crate::rows::{self, ENTRY_COLUMNS};

const DAY_MS: i64 = 86_400_000;

#[derive(Default)]
struct Tally {
    notional: Decimal,
    orders: u64,
    positions: BTreeMap<String, Decimal>,
}

impl Tally {
    fn add_positions(&mut self, deltas: &[(String, Decimal)]) {
        for (symbol, delta) in deltas {
            *self.positions.entry(symbol.clone()).or_default() += *delta;
        }
    }
}

impl Store {
    /// Every bot with all its credentials, by name.
    pub async fn bots(&self) -> Result<Vec<BotRecord>, StoreError> {
        let bot_rows = sqlx::query(
            "SELECT name, venue, key_label, policy, allow_ips, created_ms, revoked_ms FROM bots ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?;
        let cred_rows = sqlx::query(
            "SELECT bot, id, api_key, sealed, public_key, created_ms, valid_until_ms \
             FROM credentials ORDER BY bot, created_ms, id",
        )
        .fetch_all(self.pool())
        .await?;
        let mut creds: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for row in &cred_rows {
            let bot: String = row.try_get("bot")?;
            creds
                .entry(bot)
                .or_default()
                .push(rows::credential_from_row(row)?);
        }
        let mut bots = Vec::with_capacity(bot_rows.len());
        for row in &bot_rows {
            let name: String = row.try_get("name")?;
            let allow_ips: String = row.try_get("allow_ips")?;
            bots.push(BotRecord {
                venue: rows::venue(&row.try_get::<String, _>("venue")?)?,
                key_label: row.try_get("key_label")?,
                policy: row.try_get("policy")?,
                allow_ips: serde_json::from_str(&allow_ips)
                    .map_err(|e| StoreError::Corrupt(format!("allow_ips of `{name}`: {e}")))?,
                created_ms: row.try_get("created_ms")?,
                revoked_ms: row.try_get("revoked_ms")?,
                credentials: creds.remove(&name).unwrap_or_default(),
                name,
            });
        }
        Ok(bots)
    }

    /// Up to `limit` entries with seq > `after_seq`, in seq order.
    pub async fn entries(
        &self,
        after_seq: u64,
        limit: u64,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        self.settle().await;
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM journal WHERE seq > ? ORDER BY seq LIMIT ?");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(rows::to_i64(after_seq, "seq")?)
            .bind(rows::to_i64(limit, "limit")?)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(rows::entry_from_row)
            .collect()
    }

    /// The last `n` entries, oldest first.
    pub async fn tail(&self, n: u64) -> Result<Vec<JournalEntry>, StoreError> {
        self.settle().await;
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM journal ORDER BY seq DESC LIMIT ?");
        let mut out = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(rows::to_i64(n, "limit")?)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(rows::entry_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }

    /// Per bot: the day's notional and orders of allowed entries (`decision == "allow"` and
    /// `orders > 0`, including recovery entries) plus reservations without an outcome (this
    /// process's, once it has taken the reservation log, and the legacy table's) for that day; net
    /// positions all time. `day` is the UTC day number (ms / 86 400 000).
    pub async fn usage(&self, day: i64) -> Result<Vec<Usage>, StoreError> {
        self.settle().await;
        let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
        let counted = sqlx::query(
            "SELECT bot, ts_ms, notional, orders, positions FROM journal \
             WHERE decision = 'allow' AND orders > 0 AND bot IS NOT NULL",
        )
        .fetch_all(self.pool())
        .await?;
        let (start, end) = (day * DAY_MS, (day + 1) * DAY_MS);
        for row in &counted {
            let t = tally.entry(row.try_get("bot")?).or_default();
            t.add_positions(&rows::positions(&row.try_get::<String, _>("positions")?)?);
            let ts: i64 = row.try_get("ts_ms")?;
            if (start..end).contains(&ts) {
                if let Some(n) = row.try_get::<Option<String>, _>("notional")? {
                    t.notional += rows::decimal(&n, "notional")?;
                }
                t.orders += rows::to_u64(row.try_get("orders")?, "orders")?;
            }
        }
        let mut pending = sqlx::query("SELECT * FROM pending")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(rows::pending_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(log) = self.journal().reservations().cloned() {
            pending.extend(log.outstanding()?);
        }
        for p in pending {
            let t = tally.entry(p.bot).or_default();
            t.add_positions(&p.positions);
            if p.day == day {
                t.notional += p.notional;
                t.orders += p.orders;
            }
        }
        Ok(tally
            .into_iter()
            .map(|(bot, t)| Usage {
                bot,
                day,
                notional: t.notional,
                orders: t.orders,
                positions: t
                    .positions
                    .into_iter()
                    .filter(|(_, q)| !q.is_zero())
                    .collect(),
            })
            .collect())
    }

    /// Write entries with seq > `after_seq` as JSON lines (one `JournalEntry` per line);
    /// returns how many. Pages through the journal, so memory stays flat.
    pub async fn export_jsonl<W: Write>(
        &self,
        after_seq: u64,
        out: &mut W,
    ) -> Result<u64, StoreError> {
        let mut after = after_seq;
        let mut count = 0;
        loop {
            let page = self.entries(after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for e in &page {
                let line =
                    serde_json::to_string(e).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                writeln!(out, "{line}").map_err(|source| StoreError::Io {
                    path: "journal export".to_owned(),
                    source,
                })?;
                count += 1;
            }
        }
        Ok(count)
    }
}
