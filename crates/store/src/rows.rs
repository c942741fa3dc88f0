//! Row <-> record conversions. Amounts are TEXT holding exact decimal strings; unsigned
//! counters are INTEGER (i64) and checked on the way back.

use std::str::FromStr;

use keyfence_types::Venue;
use rust_decimal::Decimal;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::error::StoreError;
use crate::model::{BotCredential, JournalEntry, Pending};

pub(crate) const ENTRY_COLUMNS: &str = "seq, ts_ms, kind, bot, venue, class, method, path, symbol, side, quantity, notional, decision, rules, upstream_status, latency_us, order_id, message, positions, orders, prev_hash, hash";

pub(crate) fn to_i64(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::OutOfRange(format!("{what} {v} exceeds 2^63-1")))
}

pub(crate) fn to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} is negative ({v})")))
}

pub(crate) fn decimal(s: &str, what: &str) -> Result<Decimal, StoreError> {
    Decimal::from_str(s).map_err(|_| StoreError::Corrupt(format!("{what} `{s}` is not a decimal")))
}

fn decimal_opt(s: Option<String>, what: &str) -> Result<Option<Decimal>, StoreError> {
    s.map(|s| decimal(&s, what)).transpose()
}

pub(crate) fn venue(s: &str) -> Result<Venue, StoreError> {
    Venue::from_str(s).map_err(|_| StoreError::Corrupt(format!("venue `{s}` is unknown")))
}

pub(crate) fn positions_json(p: &[(String, Decimal)]) -> Result<String, StoreError> {
    serde_json::to_string(p).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn positions(s: &str) -> Result<Vec<(String, Decimal)>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("positions: {e}")))
}

pub(crate) fn entry_from_row(row: &SqliteRow) -> Result<JournalEntry, StoreError> {
    let rules: String = row.try_get("rules")?;
    let upstream_status: Option<i64> = row.try_get("upstream_status")?;
    let latency_us: Option<i64> = row.try_get("latency_us")?;
    Ok(JournalEntry {
        seq: to_u64(row.try_get("seq")?, "seq")?,
        ts_ms: row.try_get("ts_ms")?,
        kind: row.try_get("kind")?,
        bot: row.try_get("bot")?,
        venue: row
            .try_get::<Option<String>, _>("venue")?
            .map(|v| venue(&v))
            .transpose()?,
        class: row.try_get("class")?,
        method: row.try_get("method")?,
        path: row.try_get("path")?,
        symbol: row.try_get("symbol")?,
        side: row.try_get("side")?,
        quantity: decimal_opt(row.try_get("quantity")?, "quantity")?,
        notional: decimal_opt(row.try_get("notional")?, "notional")?,
        decision: row.try_get("decision")?,
        rules: serde_json::from_str(&rules)
            .map_err(|e| StoreError::Corrupt(format!("rules: {e}")))?,
        upstream_status: upstream_status
            .map(|s| u16::try_from(s).map_err(|_| StoreError::Corrupt(format!("status {s}"))))
            .transpose()?,
        latency_us: latency_us.map(|l| to_u64(l, "latency_us")).transpose()?,
        order_id: row.try_get("order_id")?,
        message: row.try_get("message")?,
        positions: positions(&row.try_get::<String, _>("positions")?)?,
        orders: to_u64(row.try_get("orders")?, "orders")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

pub(crate) fn pending_from_row(row: &SqliteRow) -> Result<Pending, StoreError> {
    Ok(Pending {
        id: row.try_get("id")?,
        ts_ms: row.try_get("ts_ms")?,
        bot: row.try_get("bot")?,
        venue: venue(&row.try_get::<String, _>("venue")?)?,
        day: row.try_get("day")?,
        notional: decimal(&row.try_get::<String, _>("notional")?, "notional")?,
        orders: to_u64(row.try_get("orders")?, "orders")?,
        positions: positions(&row.try_get::<String, _>("positions")?)?,
        symbol: row.try_get("symbol")?,
        side: row.try_get("side")?,
        class: row.try_get("class")?,
    })
}

pub(crate) fn credential_from_row(row: &SqliteRow) -> Result<BotCredential, StoreError> {
    Ok(BotCredential {
        id: row.try_get("id")?,
        api_key: row.try_get("api_key")?,
        sealed: row.try_get("sealed")?,
        public_key: row.try_get("public_key")?,
        created_ms: row.try_get("created_ms")?,
        valid_until_ms: row.try_get("valid_until_ms")?,
    })
}

// --- the journal writer's side (rusqlite, on its own thread)

pub(crate) fn insert_entry_rq(
    conn: &rusqlite::Connection,
    e: &JournalEntry,
    reservation: Option<&str>,
) -> Result<(), StoreError> {
    let rules = serde_json::to_string(&e.rules).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO journal (seq, ts_ms, kind, bot, venue, class, method, path, symbol, side, \
         quantity, notional, decision, rules, upstream_status, latency_us, order_id, message, \
         positions, orders, prev_hash, hash, reservation) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    stmt.execute(rusqlite::params![
        to_i64(e.seq, "seq")?,
        e.ts_ms,
        e.kind,
        e.bot,
        e.venue.map(|v| v.as_str()),
        e.class,
        e.method,
        e.path,
        e.symbol,
        e.side,
        e.quantity.map(|d| d.to_string()),
        e.notional.map(|d| d.to_string()),
        e.decision,
        rules,
        e.upstream_status.map(i64::from),
        e.latency_us.map(|l| to_i64(l, "latency_us")).transpose()?,
        e.order_id,
        e.message,
        positions_json(&e.positions)?,
        to_i64(e.orders, "orders")?,
        e.prev_hash,
        e.hash,
        reservation,
    ])?;
    Ok(())
}

pub(crate) fn pending_from_rq(row: &rusqlite::Row<'_>) -> Result<Pending, StoreError> {
    Ok(Pending {
        id: row.get("id")?,
        ts_ms: row.get("ts_ms")?,
        bot: row.get("bot")?,
        venue: venue(&row.get::<_, String>("venue")?)?,
        day: row.get("day")?,
        notional: decimal(&row.get::<_, String>("notional")?, "notional")?,
        orders: to_u64(row.get("orders")?, "orders")?,
        positions: positions(&row.get::<_, String>("positions")?)?,
        symbol: row.get("symbol")?,
        side: row.get("side")?,
        class: row.get("class")?,
    })
}

pub(crate) fn insert_credential_rq(
    conn: &rusqlite::Connection,
    bot: &str,
    c: &BotCredential,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO credentials (id, bot, api_key, sealed, public_key, created_ms, valid_until_ms) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(rusqlite::params![
        c.id,
        bot,
        c.api_key,
        c.sealed,
        c.public_key,
        c.created_ms,
        c.valid_until_ms,
    ])?;
    Ok(())
}
