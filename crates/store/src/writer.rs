//! The journal writer: one task owns every journal write and batches whatever is queued into a
//! single `BEGIN IMMEDIATE … COMMIT` (group commit). Callers are answered only after COMMIT, so
//! a response the gateway sends is always backed by a durable entry. The chain head is read
//! inside each transaction (under SQLite's write lock), so two processes writing the same file
//! (the gateway and a `keyfence kill`) still produce one unbroken chain.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::{Row, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::chain::{self, CheckpointSigner, GENESIS};
use crate::error::StoreError;
use crate::mode::Mode;
use crate::model::{BotCredential, BotRecord, JournalEntry, JournalStats, NewEntry, Pending};
use crate::rows;

/// Most commands one transaction carries.
const MAX_BATCH: usize = 4096;
/// Queue depth before `append` waits (back-pressure instead of unbounded memory).
const QUEUE: usize = 16_384;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(crate) enum AdminOp {
    /// A fresh store starts Active and journals that; a store whose control row vanished
    /// later is left alone (and so reads as Halted).
    Init,
    SetMode {
        mode: Mode,
        who: String,
        why: String,
    },
    AddBot(BotRecord),
    RevokeBot {
        name: String,
        who: String,
    },
    RotateBot {
        name: String,
        new: BotCredential,
        old_valid_until_ms: i64,
    },
}

pub(crate) enum Cmd {
    Append(Box<NewEntry>, Reply<u64>),
    Reserve(Box<Pending>, Reply<()>),
    Admin(Box<AdminOp>, Reply<()>),
    Recover(Reply<u64>),
}

#[derive(Default)]
struct Shared {
    healthy: AtomicBool,
    commits: AtomicU64,
    commands: AtomicU64,
    entries: AtomicU64,
    max_batch: AtomicU64,
    failures: AtomicU64,
}

/// Handle to the journal writer. Cheap to clone.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Cmd>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("healthy", &self.healthy())
            .finish_non_exhaustive()
    }
}

fn gone() -> StoreError {
    StoreError::JournalUnavailable("the journal writer has stopped".to_owned())
}

impl Journal {
    /// Append (group commit: many appends share one transaction); resolves after COMMIT with
    /// the entry's seq. Removes the reservation `entry.reservation_id` in the same transaction.
    pub async fn append(&self, entry: NewEntry) -> Result<u64, StoreError> {
        self.call(|r| Cmd::Append(Box::new(entry), r)).await
    }

    /// Durable pending reservation before forwarding a trading request.
    pub async fn reserve(&self, p: Pending) -> Result<(), StoreError> {
        self.call(|r| Cmd::Reserve(Box::new(p), r)).await
    }

    /// false after a failed commit (the gateway then denies trading requests: fail closed);
    /// true again after a later commit succeeds.
    pub fn healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Acquire)
    }

    /// Group-commit counters since open.
    pub fn stats(&self) -> JournalStats {
        let s = &self.shared;
        JournalStats {
            commits: s.commits.load(Ordering::Relaxed),
            commands: s.commands.load(Ordering::Relaxed),
            entries: s.entries.load(Ordering::Relaxed),
            max_batch: s.max_batch.load(Ordering::Relaxed),
            failures: s.failures.load(Ordering::Relaxed),
        }
    }

    pub(crate) async fn admin(&self, op: AdminOp) -> Result<(), StoreError> {
        self.call(|r| Cmd::Admin(Box::new(op), r)).await
    }

    pub(crate) async fn recover(&self) -> Result<u64, StoreError> {
        self.call(Cmd::Recover).await
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Cmd) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(make(reply)).await.is_err() {
            self.shared.healthy.store(false, Ordering::Release);
            return Err(gone());
        }
        rx.await.unwrap_or_else(|_| Err(gone()))
    }
}

pub(crate) struct WriterConfig {
    pub pool: SqlitePool,
    pub signer: Option<CheckpointSigner>,
    pub checkpoint_every: u64,
    pub checkpoint_interval: Duration,
    pub stamp_path: PathBuf,
}

/// Start the writer task; it ends when every `Journal` handle is dropped.
pub(crate) fn spawn(cfg: WriterConfig) -> Journal {
    let (tx, rx) = mpsc::channel(QUEUE);
    let shared = Arc::new(Shared::default());
    shared.healthy.store(true, Ordering::Release);
    tokio::spawn(run(cfg, rx, Arc::clone(&shared)));
    Journal { tx, shared }
}

async fn run(cfg: WriterConfig, mut rx: mpsc::Receiver<Cmd>, shared: Arc<Shared>) {
    let mut last_checkpoint = Instant::now();
    loop {
        let first = if cfg.signer.is_some() {
            let due = last_checkpoint + cfg.checkpoint_interval;
            tokio::select! {
                cmd = rx.recv() => cmd,
                () = tokio::time::sleep_until(due.into()) => {
                    // Idle: sign what has accumulated since the last checkpoint.
                    process(&cfg, Vec::new(), &shared, &mut last_checkpoint).await;
                    // Also when nothing was due, so an idle writer does not spin on the timer.
                    last_checkpoint = Instant::now();
                    continue;
                }
            }
        } else {
            rx.recv().await
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(cmd) => batch.push(cmd),
                Err(_) => break,
            }
        }
        process(&cfg, batch, &shared, &mut last_checkpoint).await;
    }
}

/// An answer held back until COMMIT.
enum Done {
    Seq(Reply<u64>, Result<u64, StoreError>),
    Unit(Reply<()>, Result<(), StoreError>),
}

impl Done {
    fn send(self) {
        // A caller that gave up waiting is not an error for the writer.
        match self {
            Done::Seq(r, v) => drop(r.send(v)),
            Done::Unit(r, v) => drop(r.send(v)),
        }
    }
    fn fail(self, msg: &str) {
        let err = || StoreError::JournalUnavailable(msg.to_owned());
        match self {
            Done::Seq(r, _) => drop(r.send(Err(err()))),
            Done::Unit(r, _) => drop(r.send(Err(err()))),
        }
    }
}

/// Hold a command's answer until COMMIT. Outer error: the transaction failed (the command's
/// caller is answered with the failure like everyone else in the batch); inner error: only this
/// command was refused. Returns whether the command went through.
fn settle<T>(
    done: &mut Vec<Done>,
    wrap: fn(Reply<T>, Result<T, StoreError>) -> Done,
    reply: Reply<T>,
    res: Result<Result<T, StoreError>, StoreError>,
) -> Result<bool, StoreError> {
    match res {
        Ok(inner) => {
            let ok = inner.is_ok();
            done.push(wrap(reply, inner));
            Ok(ok)
        }
        Err(e) => {
            // The value is replaced by the commit failure in `Done::fail`.
            done.push(wrap(
                reply,
                Err(StoreError::JournalUnavailable(String::new())),
            ));
            Err(e)
        }
    }
}

/// Chain head inside the transaction.
struct Head {
    seq: u64,
    hash: String,
    written: u64,
}

async fn process(
    cfg: &WriterConfig,
    batch: Vec<Cmd>,
    shared: &Shared,
    last_checkpoint: &mut Instant,
) {
    let n = batch.len() as u64;
    let mut done = Vec::with_capacity(batch.len());
    let mut cmds = batch.into_iter();
    let mut admin_changed = false;
    let mut checkpointed = false;
    let idle = n == 0;
    let result: Result<(), StoreError> = async {
        let mut tx = cfg.pool.begin_with("BEGIN IMMEDIATE").await?;
        // The chain head is read only when a command chains an entry (a batch of reservations
        // alone never touches the journal table), and then inside this transaction.
        let mut head: Option<Head> = None;
        for cmd in cmds.by_ref() {
            match cmd {
                Cmd::Append(e, r) => {
                    let h = head_of(&mut tx, &mut head).await?;
                    let res = push(&mut tx, h, *e).await.map(Ok);
                    settle(&mut done, Done::Seq, r, res)?;
                }
                Cmd::Reserve(p, r) => {
                    let res = reserve(&mut tx, &p).await;
                    settle(&mut done, Done::Unit, r, res)?;
                }
                Cmd::Recover(r) => {
                    let h = head_of(&mut tx, &mut head).await?;
                    let res = recover(&mut tx, h).await.map(Ok);
                    settle(&mut done, Done::Seq, r, res)?;
                }
                Cmd::Admin(op, r) => {
                    let h = head_of(&mut tx, &mut head).await?;
                    let res = admin(&mut tx, h, *op).await;
                    admin_changed |= settle(&mut done, Done::Unit, r, res)?;
                }
            }
        }
        // A checkpoint is due only after new entries, or on the idle timer.
        let wrote = head.as_ref().is_some_and(|h| h.written > 0);
        if let Some(signer) = &cfg.signer
            && (wrote || idle)
        {
            let h = head_of(&mut tx, &mut head).await?;
            checkpointed = checkpoint(&mut tx, h, signer, cfg, *last_checkpoint).await?;
        }
        tx.commit().await?;
        if let Some(h) = &head {
            shared.entries.fetch_add(h.written, Ordering::Relaxed);
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            shared.healthy.store(true, Ordering::Release);
            shared.commits.fetch_add(1, Ordering::Relaxed);
            shared.commands.fetch_add(n, Ordering::Relaxed);
            shared.max_batch.fetch_max(n, Ordering::Relaxed);
            if checkpointed {
                *last_checkpoint = Instant::now();
            }
            if admin_changed && let Err(e) = crate::stamp::bump(&cfg.stamp_path) {
                tracing::warn!(error = %e, "could not bump the control stamp; the gateway notices within its 50 ms poll");
            }
            done.into_iter().for_each(Done::send);
        }
        Err(e) => {
            shared.healthy.store(false, Ordering::Release);
            shared.failures.fetch_add(1, Ordering::Relaxed);
            let msg = e.to_string();
            tracing::error!(error = %msg, commands = n, "journal commit failed; failing closed");
            done.into_iter().for_each(|d| d.fail(&msg));
            // Commands never reached (the error came first) are answered too.
            for cmd in cmds {
                match cmd {
                    Cmd::Append(_, r) | Cmd::Recover(r) => {
                        drop(r.send(Err(StoreError::JournalUnavailable(msg.clone()))))
                    }
                    Cmd::Reserve(_, r) | Cmd::Admin(_, r) => {
                        drop(r.send(Err(StoreError::JournalUnavailable(msg.clone()))))
                    }
                }
            }
        }
    }
}

/// The head, read on first use within the transaction.
async fn head_of<'h>(
    conn: &mut SqliteConnection,
    head: &'h mut Option<Head>,
) -> Result<&'h mut Head, StoreError> {
    if head.is_none() {
        *head = Some(read_head(conn).await?);
    }
    head.as_mut()
        .ok_or_else(|| StoreError::JournalUnavailable("no chain head".into()))
}

async fn read_head(conn: &mut SqliteConnection) -> Result<Head, StoreError> {
    let row = sqlx::query("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(row) => Head {
            seq: rows::to_u64(row.try_get("seq")?, "seq")?,
            hash: row.try_get("hash")?,
            written: 0,
        },
        None => Head {
            seq: 0,
            hash: GENESIS.to_owned(),
            written: 0,
        },
    })
}

/// Chain one entry onto the head and write it; settle its reservation.
async fn push(
    conn: &mut SqliteConnection,
    head: &mut Head,
    e: NewEntry,
) -> Result<u64, StoreError> {
    let seq = head.seq + 1;
    let mut entry = JournalEntry {
        seq,
        ts_ms: e.ts_ms,
        kind: e.kind,
        bot: e.bot,
        venue: e.venue,
        class: e.class,
        method: e.method,
        path: e.path,
        symbol: e.symbol,
        side: e.side,
        quantity: e.quantity,
        notional: e.notional,
        decision: e.decision,
        rules: e.rules,
        upstream_status: e.upstream_status,
        latency_us: e.latency_us,
        order_id: e.order_id,
        message: e.message,
        positions: e.positions,
        orders: e.orders,
        prev_hash: std::mem::take(&mut head.hash),
        hash: String::new(),
    };
    entry.hash = chain::entry_hash(&entry)?;
    rows::insert_entry(conn, &entry).await?;
    if let Some(id) = e.reservation_id {
        sqlx::query("DELETE FROM pending WHERE id = ?")
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    head.seq = seq;
    head.hash = entry.hash;
    head.written += 1;
    Ok(seq)
}

/// Outer error = the transaction failed; inner error = this command was refused.
async fn reserve(
    conn: &mut SqliteConnection,
    p: &Pending,
) -> Result<Result<(), StoreError>, StoreError> {
    let done = sqlx::query(
        "INSERT INTO pending (id, ts_ms, bot, venue, day, notional, orders, positions, symbol, side, class) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
    )
    .bind(p.id.clone())
    .bind(p.ts_ms)
    .bind(p.bot.clone())
    .bind(p.venue.as_str())
    .bind(p.day)
    .bind(p.notional.to_string())
    .bind(rows::to_i64(p.orders, "orders")?)
    .bind(rows::positions_json(&p.positions)?)
    .bind(p.symbol.clone())
    .bind(p.side.clone())
    .bind(p.class.clone())
    .execute(&mut *conn)
    .await?;
    Ok(if done.rows_affected() == 0 {
        Err(StoreError::DuplicateReservation(p.id.clone()))
    } else {
        Ok(())
    })
}

/// Message of a recovery entry: the outcome of the forwarded request is unknown.
pub const RECOVERY_MESSAGE: &str =
    "outcome unknown: the gateway stopped before the exchange answered";

async fn recover(conn: &mut SqliteConnection, head: &mut Head) -> Result<u64, StoreError> {
    let pending = sqlx::query("SELECT * FROM pending ORDER BY ts_ms, id")
        .fetch_all(&mut *conn)
        .await?;
    let now = crate::now_ms();
    let mut count = 0;
    for row in &pending {
        let p = rows::pending_from_row(row)?;
        let entry = NewEntry {
            ts_ms: now,
            kind: "recovery".to_owned(),
            bot: Some(p.bot),
            venue: Some(p.venue),
            class: Some(p.class),
            symbol: p.symbol,
            side: p.side,
            notional: Some(p.notional),
            decision: "allow".to_owned(),
            message: Some(RECOVERY_MESSAGE.to_owned()),
            reservation_id: Some(p.id),
            positions: p.positions,
            orders: p.orders,
            ..NewEntry::default()
        };
        push(conn, head, entry).await?;
        count += 1;
    }
    Ok(count)
}

fn control_entry(decision: &str, bot: Option<String>, message: String) -> NewEntry {
    NewEntry {
        ts_ms: crate::now_ms(),
        kind: "control".to_owned(),
        bot,
        decision: decision.to_owned(),
        message: Some(message),
        ..NewEntry::default()
    }
}

async fn bot_state(
    conn: &mut SqliteConnection,
    name: &str,
) -> Result<Option<Option<i64>>, StoreError> {
    let row = sqlx::query("SELECT revoked_ms FROM bots WHERE name = ?")
        .bind(name.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(row) => Some(row.try_get("revoked_ms")?),
        None => None,
    })
}

async fn api_key_taken(conn: &mut SqliteConnection, api_key: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("SELECT 1 FROM credentials WHERE api_key = ?")
        .bind(api_key.to_owned())
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

async fn set_control(
    conn: &mut SqliteConnection,
    mode: Mode,
    who: &str,
    why: &str,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO control (id, mode, who, why, changed_ms) VALUES (1, ?, ?, ?, ?) \
         ON CONFLICT(id) DO UPDATE SET mode = excluded.mode, who = excluded.who, \
         why = excluded.why, changed_ms = excluded.changed_ms",
    )
    .bind(mode.as_str())
    .bind(who.to_owned())
    .bind(why.to_owned())
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Checks come before writes, so a refused command leaves the transaction untouched.
async fn admin(
    conn: &mut SqliteConnection,
    head: &mut Head,
    op: AdminOp,
) -> Result<Result<(), StoreError>, StoreError> {
    match op {
        AdminOp::Init => {
            let control = sqlx::query("SELECT 1 FROM control")
                .fetch_optional(&mut *conn)
                .await?;
            if control.is_none() && head.seq == 0 {
                let entry = control_entry("active", None, "by keyfence: new store".to_owned());
                set_control(conn, Mode::Active, "keyfence", "new store", entry.ts_ms).await?;
                push(conn, head, entry).await?;
            }
        }
        AdminOp::SetMode { mode, who, why } => {
            let entry = control_entry(mode.as_str(), None, format!("by {who}: {why}"));
            set_control(conn, mode, &who, &why, entry.ts_ms).await?;
            push(conn, head, entry).await?;
        }
        AdminOp::AddBot(bot) => {
            if bot_state(conn, &bot.name).await?.is_some() {
                return Ok(Err(StoreError::Duplicate {
                    what: "name",
                    value: bot.name,
                }));
            }
            let mut seen = std::collections::BTreeSet::new();
            for c in &bot.credentials {
                if !seen.insert(c.api_key.as_str()) || api_key_taken(conn, &c.api_key).await? {
                    return Ok(Err(StoreError::Duplicate {
                        what: "api key",
                        value: c.api_key.clone(),
                    }));
                }
            }
            let allow_ips = serde_json::to_string(&bot.allow_ips)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(
                "INSERT INTO bots (name, venue, key_label, policy, allow_ips, created_ms, revoked_ms) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(bot.name.clone())
            .bind(bot.venue.as_str())
            .bind(bot.key_label.clone())
            .bind(bot.policy.clone())
            .bind(allow_ips)
            .bind(bot.created_ms)
            .bind(bot.revoked_ms)
            .execute(&mut *conn)
            .await?;
            for c in &bot.credentials {
                rows::insert_credential(conn, &bot.name, c).await?;
            }
            let mut entry = control_entry(
                "add-bot",
                Some(bot.name.clone()),
                format!(
                    "bot added with key `{}` and policy `{}`",
                    bot.key_label, bot.policy
                ),
            );
            entry.venue = Some(bot.venue);
            push(conn, head, entry).await?;
        }
        AdminOp::RevokeBot { name, who } => {
            if bot_state(conn, &name).await?.is_none() {
                return Ok(Err(StoreError::NoSuchBot(name)));
            }
            let entry = control_entry("revoke", Some(name.clone()), format!("by {who}"));
            sqlx::query("UPDATE bots SET revoked_ms = COALESCE(revoked_ms, ?) WHERE name = ?")
                .bind(entry.ts_ms)
                .bind(name)
                .execute(&mut *conn)
                .await?;
            push(conn, head, entry).await?;
        }
        AdminOp::RotateBot {
            name,
            new,
            old_valid_until_ms,
        } => {
            match bot_state(conn, &name).await? {
                None => return Ok(Err(StoreError::NoSuchBot(name))),
                Some(Some(_)) => return Ok(Err(StoreError::Revoked(name))),
                Some(None) => {}
            }
            if api_key_taken(conn, &new.api_key).await? {
                return Ok(Err(StoreError::Duplicate {
                    what: "api key",
                    value: new.api_key,
                }));
            }
            // Only shorten: a credential already ending sooner keeps its earlier end.
            sqlx::query(
                "UPDATE credentials SET valid_until_ms = ?1 \
                 WHERE bot = ?2 AND (valid_until_ms IS NULL OR valid_until_ms > ?1)",
            )
            .bind(old_valid_until_ms)
            .bind(name.clone())
            .execute(&mut *conn)
            .await?;
            rows::insert_credential(conn, &name, &new).await?;
            let entry = control_entry(
                "rotate",
                Some(name),
                format!(
                    "credential `{}` added; older credentials valid until {old_valid_until_ms}",
                    new.id
                ),
            );
            push(conn, head, entry).await?;
        }
    }
    Ok(Ok(()))
}

/// Sign the head if enough entries or time have passed since the last checkpoint.
async fn checkpoint(
    conn: &mut SqliteConnection,
    head: &Head,
    signer: &CheckpointSigner,
    cfg: &WriterConfig,
    last: Instant,
) -> Result<bool, StoreError> {
    let last_seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM checkpoints")
        .fetch_one(&mut *conn)
        .await?;
    let last_seq = rows::to_u64(last_seq.unwrap_or(0), "checkpoint seq")?;
    let unsigned = head.seq.saturating_sub(last_seq);
    if unsigned == 0
        || (unsigned < cfg.checkpoint_every && last.elapsed() < cfg.checkpoint_interval)
    {
        return Ok(false);
    }
    let ts_ms = crate::now_ms();
    let signature = signer.sign_hex(&chain::checkpoint_message(head.seq, &head.hash, ts_ms));
    sqlx::query(
        "INSERT INTO checkpoints (seq, hash, ts_ms, public_key, signature) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(rows::to_i64(head.seq, "seq")?)
    .bind(head.hash.clone())
    .bind(ts_ms)
    .bind(signer.public_key_hex())
    .bind(signature)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}
