//! The journal writer: one thread owns every journal write, on its own SQLite connection, and
//! batches whatever is queued into a single `BEGIN IMMEDIATE … COMMIT` (group commit). The
//! chain head is read inside each transaction (under SQLite's write lock), so two processes
//! writing the same file (the gateway and a `keyfence kill`) still produce one unbroken chain.
//!
//! When a caller hears back depends on the [`SyncMode`]:
//!
//! - `Strict`: after COMMIT with `synchronous=FULL` (SQLite fsyncs the WAL in the commit).
//! - `Full`: COMMIT writes the WAL (`synchronous=NORMAL`: in the OS, so a killed process loses
//!   nothing) and callers of `append` hear back at once; a second thread, the syncer, fdatasyncs
//!   the WAL (one fsync for every commit made since the last one: at once when somebody waits,
//!   as a control change does, otherwise within `LAZY_SYNC`, 5 ms), so the writer never waits
//!   for the disk.
//! - `Normal`: after COMMIT (`synchronous=NORMAL`); the disk catches up at SQLite checkpoints.
//!
//! Reservations do not come here: `Journal::reserve` appends them to the reservation log
//! (`crate::reservations`) on the caller's thread; the syncer fsyncs the log (strict and full)
//! and `Reserved::durable()` resolves after that fsync. A reservation is forgotten by the log
//! once the entry that settles it is on disk (after the WAL's fsync under full).

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::oneshot;

use crate::SyncMode;
use crate::chain::{self, CheckpointSigner, GENESIS};
use crate::error::StoreError;
use crate::mode::Mode;
use crate::model::{BotCredential, BotRecord, JournalEntry, JournalStats, NewEntry, Pending};
use crate::reservations::{Logged, Reservations};
use crate::rows;

/// Most commands one transaction carries.
const MAX_BATCH: usize = 4096;

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

impl AdminOp {
    /// A change a running gateway must see from its next request on: every one but `Init`
    /// (opening a store), whose caller is not waiting to change anything.
    fn gateway_must_see(&self) -> bool {
        !matches!(self, AdminOp::Init)
    }
}

pub(crate) enum Cmd {
    Append(Box<NewEntry>, Reply<u64>),
    Admin(Box<AdminOp>, Reply<()>),
    /// Journal the reservations of the legacy `pending` table and those of the log that no
    /// entry settles.
    Recover(Vec<Logged>, Reply<u64>),
    /// Answered after the batch it is in commits (a barrier for in-process readers).
    Flush(Reply<()>),
    /// Close the connection and stop; later calls fail.
    Close(Reply<()>),
    /// Tests: the writer thread panics (as a bug in it would).
    #[cfg(test)]
    Panic,
}

impl Cmd {
    /// An entry whose caller does not wait for its commit.
    fn unawaited(&self) -> bool {
        matches!(self, Cmd::Append(_, r) if r.is_closed())
    }
}

/// How long a batch of entries nobody waits for waits for more commands. The writer sleeps
/// through it (a sender wakes no one), so one request at a time makes one commit per LINGER, not
/// one per order. A crash in between loses at most this much of entries: their reservations are
/// in the reservation log and become recovery entries.
const LINGER: Duration = Duration::from_millis(5);

/// Move whatever else is queued into `batch`, up to `MAX_BATCH`.
fn drain(rx: &mpsc::Receiver<Cmd>, batch: &mut Vec<Cmd>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(cmd) => batch.push(cmd),
            Err(_) => break,
        }
    }
}

#[derive(Default)]
struct Shared {
    healthy: AtomicBool,
    commits: AtomicU64,
    commands: AtomicU64,
    entries: AtomicU64,
    max_batch: AtomicU64,
    failures: AtomicU64,
    fsyncs: AtomicU64,
    /// The journal head as of the writer's last commit (a reservation's settling entry comes
    /// after it).
    head_seq: AtomicU64,
    /// The gateway's reservation log, once it has taken it (`Store::recover_pending`).
    log: OnceLock<Arc<Reservations>>,
    /// Reservation ids: a per-open base (the clock in ns) plus a counter.
    next_id: AtomicU64,
    /// Orders between their reservation and the submission of their entry (at the exchange,
    /// or waiting for their fsync): the syncer's hint that more reservations are coming.
    in_flight: AtomicU64,
}

impl Shared {
    /// An entry naming a reservation ends that order's time in flight.
    fn entry_for(&self, e: &NewEntry) {
        if e.reservation_id.is_some() {
            // Saturating: an entry may name a reservation this process did not make.
            let _previous = self
                .in_flight
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    }
}

/// Handle to the journal writer. Cheap to clone.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Cmd>,
    shared: Arc<Shared>,
    /// Strict and full: the syncer thread, which fsyncs the reservation log (and, under full,
    /// the WAL).
    syncer: Option<Arc<Inbox>>,
    sync: SyncMode,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("healthy", &self.healthy())
            .finish_non_exhaustive()
    }
}

/// A reservation in the log. [`Reserved::durable`] resolves once it is on disk (at once unless
/// the store runs [`SyncMode::Full`], where the fsync runs while the request is forwarded).
#[derive(Debug)]
pub struct Reserved {
    durable: Option<oneshot::Receiver<Result<(), StoreError>>>,
}

impl Reserved {
    /// Wait until the reservation is on disk. An error means the fsync failed: the journal is
    /// then unhealthy and trading requests are refused until a later commit reaches the disk.
    pub async fn durable(self) -> Result<(), StoreError> {
        match self.durable {
            None => Ok(()),
            Some(rx) => rx.await.unwrap_or_else(|_| Err(gone())),
        }
    }
}

fn gone() -> StoreError {
    StoreError::JournalUnavailable("the journal writer has stopped".to_owned())
}

impl Journal {
    /// Append (group commit: many appends share one transaction); resolves after COMMIT with
    /// the entry's seq. The entry settles the reservation `entry.reservation_id`.
    pub async fn append(&self, entry: NewEntry) -> Result<u64, StoreError> {
        self.shared.entry_for(&entry);
        self.call(|r| Cmd::Append(Box::new(entry), r)).await
    }

    /// Queue an entry without waiting for its COMMIT (the writer logs a failure and turns
    /// unhealthy). An in-process reader that must see it calls [`Journal::flush`] first.
    pub fn submit(&self, entry: NewEntry) {
        self.shared.entry_for(&entry);
        let (reply, _) = oneshot::channel();
        if self.tx.send(Cmd::Append(Box::new(entry), reply)).is_err() {
            self.shared.healthy.store(false, Ordering::Release);
            tracing::error!("the journal writer has stopped; an entry was not written");
        }
    }

    /// Tests: make the writer thread panic.
    #[cfg(test)]
    pub(crate) fn panic_writer(&self) {
        drop(self.tx.send(Cmd::Panic));
    }

    /// Resolves once every command queued before it has been committed (and, with
    /// `SyncMode::Full`, fsynced).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.call(Cmd::Flush).await
    }

    /// Record a reservation before forwarding a trading request: one append to the
    /// reservation log, on the caller's thread (`strict`: and its fsync). Await
    /// [`Reserved::durable`] before answering the bot. Only a store whose reservation log was
    /// taken ([`crate::Store::recover_pending`]) takes reservations; a failure turns the journal
    /// unhealthy (fail closed).
    pub async fn reserve(&self, p: Pending) -> Result<Reserved, StoreError> {
        let Some(log) = self.shared.log.get() else {
            return Err(StoreError::JournalUnavailable(
                "this store takes no reservations until its reservation log is recovered".into(),
            ));
        };
        let after = self.shared.head_seq.load(Ordering::Acquire);
        let id = p.id.clone();
        if let Err(e) = log.append(p, after) {
            if !matches!(e, StoreError::DuplicateReservation(_)) {
                self.shared.healthy.store(false, Ordering::Release);
            }
            return Err(e);
        }
        self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
        let reserved = match (self.sync, &self.syncer) {
            (SyncMode::Normal, _) => return Ok(Reserved { durable: None }),
            (_, None) => Err(gone()),
            (mode, Some(syncer)) => {
                let (tx, rx) = oneshot::channel();
                let in_flight = self.shared.in_flight.load(Ordering::Acquire);
                if syncer.log(tx, in_flight).is_err() {
                    Err(gone())
                } else if mode == SyncMode::Strict {
                    Reserved { durable: Some(rx) }
                        .durable()
                        .await
                        .map(|()| Reserved { durable: None })
                } else {
                    Ok(Reserved { durable: Some(rx) })
                }
            }
        };
        if reserved.is_err() {
            // Refused before forwarding: the caller's refusal entry names the reservation
            // (which settles it should the record be on disk, and ends its in-flight count).
            self.shared.healthy.store(false, Ordering::Release);
            log.settled(&[id]);
        }
        reserved
    }

    /// A fresh reservation id (no system call: a per-open base and a counter).
    pub fn reservation_id(&self) -> String {
        format!(
            "{:016x}",
            self.shared.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// false after a failed commit or fsync (the gateway then denies trading requests: fail
    /// closed); true again after a later commit that writes journal entries succeeds.
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
            fsyncs: s.fsyncs.load(Ordering::Relaxed),
        }
    }

    /// Resolves once the change is committed and the control stamp has moved, and then
    /// (for a change a gateway must see) twice [`crate::STAMP_FRESH`] later: a gateway looks at
    /// the stamp at most that often, so a request it starts after this returns sees the change.
    pub(crate) async fn admin(&self, op: AdminOp) -> Result<(), StoreError> {
        let seen = op.gateway_must_see();
        self.call(|r| Cmd::Admin(Box::new(op), r)).await?;
        if seen {
            tokio::time::sleep(2 * crate::STAMP_FRESH).await;
        }
        Ok(())
    }

    pub(crate) async fn recover(&self, logged: Vec<Logged>) -> Result<u64, StoreError> {
        self.call(|r| Cmd::Recover(logged, r)).await
    }

    /// The gateway's reservation log, once taken.
    pub(crate) fn reservations(&self) -> Option<&Arc<Reservations>> {
        self.shared.log.get()
    }

    /// Hand the (recovered, restarted) log to the journal: `reserve` works from now on.
    pub(crate) fn install(&self, log: Arc<Reservations>) -> Result<(), StoreError> {
        self.shared.log.set(log).map_err(|_| {
            StoreError::JournalUnavailable("the reservation log is already taken".into())
        })
    }

    pub(crate) async fn close(&self) {
        // Already stopped is fine.
        drop(self.call(Cmd::Close).await);
        self.shared.healthy.store(false, Ordering::Release);
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Cmd) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(make(reply)).is_err() {
            self.shared.healthy.store(false, Ordering::Release);
            return Err(gone());
        }
        rx.await.unwrap_or_else(|_| Err(gone()))
    }
}

pub(crate) struct WriterConfig {
    pub path: PathBuf,
    pub sync: SyncMode,
    pub signer: Option<CheckpointSigner>,
    pub checkpoint_every: u64,
    pub checkpoint_interval: Duration,
    pub stamp_path: PathBuf,
}

/// Open the writer's connection and start its thread; the thread ends when every `Journal`
/// handle is dropped or on `close`.
pub(crate) fn spawn(cfg: WriterConfig) -> Result<Journal, StoreError> {
    let conn = Connection::open(&cfg.path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let sync = if cfg.sync == SyncMode::Strict {
        "FULL"
    } else {
        "NORMAL"
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let (tx, rx) = mpsc::channel();
    let shared = Arc::new(Shared::default());
    shared.healthy.store(true, Ordering::Release);
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    shared.next_id.store(base, Ordering::Relaxed);
    let syncer = if cfg.sync != SyncMode::Normal {
        let inbox = Arc::new(Inbox::new());
        let syncer = Syncer {
            wal_path: crate::beside(&cfg.path, "-wal"),
            wal: None,
            shared: Arc::clone(&shared),
            gather: gather(cfg.sync),
            pace: pace(cfg.sync),
            last_log_sync: None,
        };
        let stx = Arc::clone(&inbox);
        let handle = std::thread::Builder::new()
            .name("keyfence-fsync".to_owned())
            .spawn(move || syncer.run(inbox))
            .map_err(|e| StoreError::JournalUnavailable(format!("cannot start the syncer: {e}")))?;
        Some((stx, handle))
    } else {
        None
    };
    let sync = cfg.sync;
    let syncer_tx = syncer.as_ref().map(|(stx, _)| Arc::clone(stx));
    let state = Writer {
        conn,
        syncer,
        cfg,
        shared: Arc::clone(&shared),
        last_checkpoint: Instant::now(),
        checkpoint_seq: None,
    };
    std::thread::Builder::new()
        .name("keyfence-journal".to_owned())
        .spawn(move || state.run(rx))
        .map_err(|e| StoreError::JournalUnavailable(format!("cannot start the writer: {e}")))?;
    Ok(Journal {
        tx,
        shared,
        syncer: syncer_tx,
        sync,
    })
}

struct Writer {
    conn: Connection,
    /// Strict and full: the syncer (under full, committed batches go there to be fsynced).
    syncer: Option<(Arc<Inbox>, std::thread::JoinHandle<()>)>,
    cfg: WriterConfig,
    shared: Arc<Shared>,
    last_checkpoint: Instant,
    /// The newest checkpoint's seq as last read (re-read before signing one).
    checkpoint_seq: Option<u64>,
}

/// An answer held back until COMMIT (and, where the mode says so, the fsync after it).
enum Done {
    Seq(Reply<u64>, Result<u64, StoreError>),
    Unit(Reply<()>, Result<(), StoreError>),
}

impl Done {
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
fn settle<R, T>(
    done: &mut Vec<Done>,
    wrap: fn(Reply<R>, Result<T, StoreError>) -> Done,
    reply: Reply<R>,
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

/// Fails the journal closed when the writer thread panics: nothing it was given will be
/// journaled any more, so nothing more that trades may be forwarded. The journal turns
/// unhealthy, the reservation log refuses appends (a request already past its check gets no
/// reservation, so it is refused too) but keeps its files locked, and the syncer fsyncs what
/// it owes and ends.
struct WriterPanic {
    shared: Arc<Shared>,
    syncer: Option<Arc<Inbox>>,
}

impl Drop for WriterPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        self.shared.healthy.store(false, Ordering::Release);
        // The files stay locked: the process still holds the store until it stops.
        if let Some(log) = self.shared.log.get() {
            log.refuse_appends("the journal writer panicked");
        }
        if let Some(syncer) = &self.syncer {
            syncer.stop();
        }
        tracing::error!(
            "the journal writer panicked; trading requests are refused until a restart"
        );
    }
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Cmd>) {
        let _panic = WriterPanic {
            shared: Arc::clone(&self.shared),
            syncer: self.syncer.as_ref().map(|(s, _)| Arc::clone(s)),
        };
        loop {
            let first = if self.cfg.signer.is_some() {
                let due = self.last_checkpoint + self.cfg.checkpoint_interval;
                match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
                    Ok(cmd) => cmd,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        // Idle: sign what has accumulated since the last checkpoint.
                        self.process(Vec::new());
                        // Also when nothing was due, so an idle writer does not spin.
                        self.last_checkpoint = Instant::now();
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(cmd) => cmd,
                    Err(_) => break,
                }
            };
            let mut batch = vec![first];
            drain(&rx, &mut batch);
            // Entries nobody waits for (`submit`) wait for company (see LINGER).
            if batch.iter().all(Cmd::unawaited) {
                std::thread::sleep(LINGER);
                drain(&rx, &mut batch);
            }
            // A close ends the thread after the commands queued before it.
            let close = batch.iter().position(|c| matches!(c, Cmd::Close(_)));
            let after = close.map(|i| batch.split_off(i));
            if !batch.is_empty() {
                self.process(batch);
            }
            if let Some(rest) = after {
                let mut rest = rest.into_iter();
                if let Some(Cmd::Close(r)) = rest.next() {
                    self.shared.healthy.store(false, Ordering::Release);
                    drop(rx);
                    for cmd in rest {
                        refuse(cmd, "the journal writer has stopped");
                    }
                    // What was committed reaches the disk before the close is answered.
                    if let Some((stx, handle)) = self.syncer.take() {
                        stx.stop();
                        drop(handle.join());
                    }
                    if let Some(log) = self.shared.log.get() {
                        log.close();
                    }
                    drop(self.conn);
                    drop(r.send(Ok(())));
                }
                return;
            }
        }
        // Every handle is gone: the syncer fsyncs what it owes and ends.
        if let Some((stx, _)) = self.syncer.take() {
            stx.stop();
        }
    }

    fn process(&mut self, batch: Vec<Cmd>) {
        let n = batch.len() as u64;
        let idle = n == 0;
        let mut done = Vec::with_capacity(batch.len());
        let mut cmds = batch.into_iter();
        let mut admin_changed = false;
        // Where in `done` the answers of the changes a gateway must see are (all but `Init`).
        let mut changes = Vec::new();
        let mut checkpointed = None;
        let mut written = 0;
        let mut head_seq = None;
        // Reservations whose settling entries this batch writes.
        let mut settled = Vec::new();
        let result: Result<(), StoreError> = (|| {
            // Cached statements: BEGIN and COMMIT are not parsed again for every batch.
            let conn = &self.conn;
            conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
            // The chain head is read only when a command chains an entry (a batch of
            // reservations alone never touches the journal table), inside the transaction.
            let mut head: Option<Head> = None;
            for cmd in cmds.by_ref() {
                match cmd {
                    Cmd::Append(e, r) => {
                        let h = head_of(conn, &mut head)?;
                        if let Some(id) = &e.reservation_id {
                            settled.push(id.clone());
                        }
                        let res = push(conn, h, *e).map(Ok);
                        settle(&mut done, Done::Seq, r, res)?;
                    }
                    Cmd::Recover(logged, r) => {
                        let h = head_of(conn, &mut head)?;
                        let res = recover(conn, h, logged).map(Ok);
                        settle(&mut done, Done::Seq, r, res)?;
                    }
                    Cmd::Admin(op, r) => {
                        let h = head_of(conn, &mut head)?;
                        let seen = op.gateway_must_see();
                        let res = admin(conn, h, *op);
                        if settle(&mut done, Done::Unit, r, res)? {
                            admin_changed = true;
                            if seen {
                                changes.push(done.len() - 1);
                            }
                        }
                    }
                    Cmd::Flush(r) => done.push(Done::Unit(r, Ok(()))),
                    // `run` splits closes off before a batch is processed; one here would
                    // not close anything, so it is not answered as done.
                    cmd @ Cmd::Close(_) => refuse(cmd, "close is handled by the writer loop"),
                    #[cfg(test)]
                    #[allow(clippy::panic)]
                    Cmd::Panic => panic!("a test made the journal writer panic"),
                }
            }
            written = head.as_ref().map_or(0, |h| h.written);
            head_seq = head.as_ref().map(|h| h.seq);
            // A checkpoint is due only after new entries, or on the idle timer.
            if let Some(signer) = &self.cfg.signer
                && (written > 0 || idle)
            {
                let h = head_of(conn, &mut head)?;
                checkpointed = checkpoint(
                    conn,
                    h,
                    signer,
                    &self.cfg,
                    self.last_checkpoint,
                    &mut self.checkpoint_seq,
                )?;
            }
            conn.prepare_cached("COMMIT")?.execute([])?;
            Ok(())
        })();
        if let Err(e) = result {
            if !self.conn.is_autocommit()
                && let Err(rb) = self.conn.execute_batch("ROLLBACK")
            {
                tracing::error!(error = %rb, "journal rollback failed");
            }
            self.checkpoint_seq = None;
            self.failed(&e, n);
            done.into_iter().for_each(|d| d.fail(&e.to_string()));
            // Commands never reached (the error came first) are answered too.
            for cmd in cmds {
                refuse(cmd, &e.to_string());
            }
            return;
        }
        self.shared.entries.fetch_add(written, Ordering::Relaxed);
        if let Some(seq) = head_seq {
            self.shared.head_seq.fetch_max(seq, Ordering::AcqRel);
        }
        if let Some(seq) = checkpointed {
            self.checkpoint_seq = Some(seq);
            self.last_checkpoint = Instant::now();
        }
        if admin_changed && let Err(e) = crate::stamp::bump(&self.cfg.stamp_path) {
            // Committed, but a running gateway may not see it: whoever made the change hears so.
            let why = format!("{}: {e}", self.cfg.stamp_path.display());
            tracing::warn!(error = %why, "could not bump the control stamp");
            for i in &changes {
                if let Some(Done::Unit(_, v)) = done.get_mut(*i) {
                    *v = Err(StoreError::StampNotMoved(why.clone()));
                }
            }
        }
        self.committed(n, written);
        let syncer = match (&self.syncer, self.cfg.sync) {
            (Some((stx, _)), SyncMode::Full) => stx,
            // Strict: the commit was fsynced; normal: nobody waits for the disk.
            _ => {
                if let Some(log) = self.shared.log.get() {
                    log.settled(&settled);
                }
                for d in done {
                    match d {
                        Done::Seq(r, v) => drop(r.send(v)),
                        Done::Unit(r, v) => drop(r.send(v)),
                    }
                }
                return;
            }
        };
        // Full: entries are answered now; the syncer answers control changes and flushes
        // after its fsync, and only then lets the reservation log forget the reservations this
        // batch settles. The commit counts as healthy at once (a failed fsync turns that back).
        let mut job = SyncJob {
            settled,
            ..SyncJob::default()
        };
        for d in done {
            match d {
                Done::Seq(r, v) => drop(r.send(v)),
                Done::Unit(r, v) => job.units.push((r, v)),
            }
        }
        if let Err(job) = syncer.job(job) {
            // The syncer is gone (it only stops with the writer): fail closed.
            self.shared.healthy.store(false, Ordering::Release);
            job.fail("the journal's fsync thread has stopped");
        }
    }

    /// Only a commit that wrote journal entries makes the journal healthy again: a batch of
    /// reservations or a flush can succeed while the journal table itself cannot be written.
    fn committed(&self, n: u64, entries: u64) {
        let s = &self.shared;
        if entries > 0 {
            s.healthy.store(true, Ordering::Release);
        }
        s.commits.fetch_add(1, Ordering::Relaxed);
        s.commands.fetch_add(n, Ordering::Relaxed);
        s.max_batch.fetch_max(n, Ordering::Relaxed);
    }

    fn failed(&self, e: &StoreError, n: u64) {
        self.shared.healthy.store(false, Ordering::Release);
        self.shared.failures.fetch_add(1, Ordering::Relaxed);
        tracing::error!(error = %e, commands = n, "journal commit failed; failing closed");
    }
}

/// How long the syncer may hold a reservation's fsync for others to share it, when other
/// orders are in flight. Strict: the order waits for this fsync before it is forwarded, so the
/// wait is short. Full: the fsync runs while the order is at the exchange, so it may wait
/// longer (a real exchange answers in milliseconds; under load the gateway's own queue does).
fn gather(mode: SyncMode) -> Duration {
    match mode {
        SyncMode::Full => Duration::from_millis(1),
        SyncMode::Strict | SyncMode::Normal => Duration::from_micros(300),
    }
}

/// Under full, while other orders are in flight, the least time between the starts of two
/// fsyncs of the reservation log (each costs the machine ~25 µs of kernel CPU on this class of
/// VM; one per order would be a quarter of a core at 10,000 orders/s). Strict: none (the order
/// waits for its fsync before it is forwarded).
fn pace(mode: SyncMode) -> Duration {
    match mode {
        SyncMode::Full => Duration::from_micros(500),
        SyncMode::Strict | SyncMode::Normal => Duration::ZERO,
    }
}

/// How long a commit nobody waits on (entries only) may stay unsynced: it shares the next
/// awaited fsync (the next reservation's), or is fsynced when this has passed.
const LAZY_SYNC: Duration = Duration::from_millis(5);

/// The syncer's inbox: reservations waiting for the log's fsync, committed batches waiting for
/// the WAL's. A sender wakes the syncer only when it has something to do at once: when it
/// sleeps idle, when a reservation completes the group it gathers (or an awaited batch comes),
/// or to stop. Otherwise a sender only queues (no system call): while the syncer gathers or
/// fsyncs, orders in flight join the next fsync without waking anyone.
struct Inbox {
    state: std::sync::Mutex<Queued>,
    wake: std::sync::Condvar,
}

#[derive(Default)]
struct Queued {
    logs: Vec<oneshot::Sender<Result<(), StoreError>>>,
    jobs: Vec<SyncJob>,
    /// When the oldest of `jobs` came.
    jobs_since: Option<Instant>,
    stop: bool,
    /// What would wake the syncer now.
    waiting: Waiting,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// Awake (it looks at the queue before it sleeps again).
    #[default]
    Busy,
    /// Asleep with nothing queued: anything wakes it.
    Idle,
    /// Asleep until its oldest unawaited batch is due: a reservation or an awaited batch.
    Lazy,
    /// Gathering reservations: the one that completes the group, or an awaited batch.
    Gathering,
    /// Waiting out the pace between fsyncs: only an awaited batch.
    Pacing,
}

impl Inbox {
    fn new() -> Self {
        Inbox {
            state: std::sync::Mutex::new(Queued::default()),
            wake: std::sync::Condvar::new(),
        }
    }

    /// The queue, even after a panic elsewhere while it was held (it stays consistent: every
    /// change is a push, a take or a flag).
    fn lock(&self) -> std::sync::MutexGuard<'_, Queued> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The syncer sleeps as `waiting` says (what may wake it), at most `for_` when given.
    fn sleep<'a>(
        &'a self,
        mut q: std::sync::MutexGuard<'a, Queued>,
        waiting: Waiting,
        for_: Option<Duration>,
    ) -> std::sync::MutexGuard<'a, Queued> {
        q.waiting = waiting;
        let mut q = match for_ {
            Some(d) => self
                .wake
                .wait_timeout(q, d)
                .map_or_else(|p| p.into_inner().0, |(q, _)| q),
            None => self
                .wake
                .wait(q)
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        };
        q.waiting = Waiting::Busy;
        q
    }

    fn rouse(&self, q: &mut Queued) {
        q.waiting = Waiting::Busy;
        self.wake.notify_one();
    }

    /// A reservation appended to the log; `Err` when the syncer has stopped.
    fn log(
        &self,
        tx: oneshot::Sender<Result<(), StoreError>>,
        in_flight: u64,
    ) -> Result<(), oneshot::Sender<Result<(), StoreError>>> {
        let mut q = self.lock();
        if q.stop {
            return Err(tx);
        }
        q.logs.push(tx);
        let now = match q.waiting {
            Waiting::Idle | Waiting::Lazy => true,
            Waiting::Gathering => q.logs.len() as u64 >= in_flight,
            Waiting::Pacing | Waiting::Busy => false,
        };
        if now {
            self.rouse(&mut q);
        }
        Ok(())
    }

    /// A committed batch (full); `Err` when the syncer has stopped.
    fn job(&self, job: SyncJob) -> Result<(), SyncJob> {
        let mut q = self.lock();
        if q.stop {
            return Err(job);
        }
        let now = match q.waiting {
            // An idle syncer starts the lazy clock.
            Waiting::Idle => true,
            Waiting::Lazy | Waiting::Gathering | Waiting::Pacing => job.awaited(),
            Waiting::Busy => false,
        };
        q.jobs_since.get_or_insert_with(Instant::now);
        q.jobs.push(job);
        if now {
            self.rouse(&mut q);
        }
        Ok(())
    }

    /// The syncer fsyncs what it owes, then ends.
    fn stop(&self) {
        let mut q = self.lock();
        q.stop = true;
        self.rouse(&mut q);
    }
}

/// Ends the syncer's queue however its thread ends (a panic included): nothing more is taken,
/// and whoever still waits hears that the journal is unavailable instead of waiting forever.
struct Closing(Arc<Inbox>);

impl Drop for Closing {
    fn drop(&mut self) {
        let (logs, jobs) = {
            let mut q = self.0.lock();
            q.stop = true;
            (std::mem::take(&mut q.logs), std::mem::take(&mut q.jobs))
        };
        let msg = "the journal's fsync thread has stopped";
        for t in logs {
            drop(t.send(Err(StoreError::JournalUnavailable(msg.to_owned()))));
        }
        jobs.into_iter().for_each(|j| j.fail(msg));
    }
}

/// What the syncer owes the callers of one committed batch.
#[derive(Default)]
struct SyncJob {
    units: Vec<(Reply<()>, Result<(), StoreError>)>,
    /// Reservations the batch settled: the log forgets them once the batch is on disk.
    settled: Vec<String>,
}

impl SyncJob {
    /// Somebody waits for this fsync (a control change, a flush).
    fn awaited(&self) -> bool {
        !self.units.is_empty()
    }

    fn fail(self, msg: &str) {
        let err = || StoreError::JournalUnavailable(msg.to_owned());
        self.units
            .into_iter()
            .for_each(|(r, _)| drop(r.send(Err(err()))));
    }
}

/// The syncer thread (strict and full): fdatasyncs the reservation log for the reservations
/// waiting on it (one fsync for all that arrived while the previous one ran) and, under full,
/// the WAL (what `synchronous=FULL` does inside each commit) for the batches committed since.
struct Syncer {
    wal_path: PathBuf,
    /// Opened on first use (the writer's first commit creates it at the latest).
    wal: Option<File>,
    shared: Arc<Shared>,
    gather: Duration,
    pace: Duration,
    /// When the last fsync of the log started.
    last_log_sync: Option<Instant>,
}

impl Syncer {
    fn run(mut self, inbox: Arc<Inbox>) {
        let _closing = Closing(Arc::clone(&inbox));
        let mut q = inbox.lock();
        loop {
            if !q.logs.is_empty() {
                // Group commit under concurrency: while other orders are in flight, their
                // bots' next reservations are on the way; wait for them (up to `gather`) to
                // share the fsync, and (full) start log fsyncs at most one per `pace`, as a
                // gateway whose own thread is the bottleneck has more reservations queued than
                // it has taken so far. One order at a time, nobody else is in flight and
                // nothing waits. `in_flight` also counts orders whose reservation is already on
                // disk and which wait at the exchange, so under load the group rarely looks
                // complete and the wait runs to `gather`: measured, that is the best of the
                // settings tried (docs/benchmarks.md, "the fsync pacing is where it should be").
                let deadline = Instant::now() + self.gather;
                let paced = self.last_log_sync.map(|t| t + self.pace);
                while !q.stop && !q.jobs.iter().any(SyncJob::awaited) {
                    let in_flight = self.shared.in_flight.load(Ordering::Acquire);
                    let (until, waiting) = if (q.logs.len() as u64) < in_flight {
                        (deadline, Waiting::Gathering)
                    } else if in_flight > 1
                        && let Some(p) = paced
                    {
                        (p.min(deadline), Waiting::Pacing)
                    } else {
                        break;
                    };
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    q = inbox.sleep(q, waiting, Some(left));
                }
                self.last_log_sync = Some(Instant::now());
                let logs = std::mem::take(&mut q.logs);
                drop(q);
                self.sync_log(logs);
                q = inbox.lock();
                // On to the WAL's batches if any is due: reservations arriving during every
                // log fsync must not hold off an awaited batch (a kill switch) or a due one.
            }
            let due = q.jobs_since.map(|t| LAZY_SYNC.saturating_sub(t.elapsed()));
            if !q.jobs.is_empty()
                && (q.stop
                    || q.jobs.iter().any(SyncJob::awaited)
                    || due.is_some_and(|d| d.is_zero()))
            {
                let jobs = std::mem::take(&mut q.jobs);
                q.jobs_since = None;
                drop(q);
                self.sync_wal(jobs);
                q = inbox.lock();
                continue;
            }
            if !q.logs.is_empty() {
                continue;
            }
            if q.stop {
                return;
            }
            let waiting = match due {
                Some(_) => Waiting::Lazy,
                None => Waiting::Idle,
            };
            q = inbox.sleep(q, waiting, due);
        }
    }

    fn fail(&self, what: &str, e: &dyn std::fmt::Display) -> String {
        let msg = format!("fsync of the {what}: {e}");
        self.shared.healthy.store(false, Ordering::Release);
        self.shared.failures.fetch_add(1, Ordering::Relaxed);
        tracing::error!(error = %msg, "journal fsync failed; failing closed");
        StoreError::JournalUnavailable(msg).to_string()
    }

    /// One fsync of the reservation log for all of `waiters`.
    fn sync_log(&mut self, waiters: Vec<oneshot::Sender<Result<(), StoreError>>>) {
        let res = match self.shared.log.get() {
            Some(log) => log.sync(),
            None => Err(StoreError::JournalUnavailable(
                "no reservation log".to_owned(),
            )),
        };
        match res {
            Ok(()) => {
                self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
                waiters.into_iter().for_each(|t| drop(t.send(Ok(()))));
            }
            Err(e) => {
                let msg = self.fail("reservation log", &e);
                for t in waiters {
                    drop(t.send(Err(StoreError::JournalUnavailable(msg.clone()))));
                }
            }
        }
    }

    /// One fsync of the WAL for all of `jobs`.
    fn sync_wal(&mut self, jobs: Vec<SyncJob>) {
        if jobs.is_empty() {
            return;
        }
        match self.fsync() {
            Ok(()) => {
                self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
                for job in jobs {
                    if let Some(log) = self.shared.log.get() {
                        log.settled(&job.settled);
                    }
                    job.units.into_iter().for_each(|(r, v)| drop(r.send(v)));
                }
            }
            Err(e) => {
                let msg = self.fail("journal", &e);
                jobs.into_iter().for_each(|j| j.fail(&msg));
            }
        }
    }

    fn fsync(&mut self) -> std::io::Result<()> {
        if self.wal.is_none() {
            self.wal = Some(File::open(&self.wal_path)?);
        }
        match &self.wal {
            Some(f) => f.sync_data(),
            None => Ok(()),
        }
    }
}

/// Answer a command that will not run.
fn refuse(cmd: Cmd, msg: &str) {
    let err = || StoreError::JournalUnavailable(msg.to_owned());
    match cmd {
        Cmd::Append(_, r) | Cmd::Recover(_, r) => drop(r.send(Err(err()))),
        Cmd::Admin(_, r) | Cmd::Flush(r) | Cmd::Close(r) => drop(r.send(Err(err()))),
        #[cfg(test)]
        Cmd::Panic => {}
    }
}

/// The head, read on first use within the transaction.
fn head_of<'h>(conn: &Connection, head: &'h mut Option<Head>) -> Result<&'h mut Head, StoreError> {
    if head.is_none() {
        *head = Some(read_head(conn)?);
    }
    head.as_mut()
        .ok_or_else(|| StoreError::JournalUnavailable("no chain head".into()))
}

fn read_head(conn: &Connection) -> Result<Head, StoreError> {
    let row = conn
        .prepare_cached("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .optional()?;
    Ok(match row {
        Some((seq, hash)) => Head {
            seq: rows::to_u64(seq, "seq")?,
            hash,
            written: 0,
        },
        None => Head {
            seq: 0,
            hash: GENESIS.to_owned(),
            written: 0,
        },
    })
}

/// Chain one entry onto the head and write it (with the id of the reservation it settles).
fn push(conn: &Connection, head: &mut Head, e: NewEntry) -> Result<u64, StoreError> {
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
    rows::insert_entry_rq(conn, &entry, e.reservation_id.as_deref())?;
    head.seq = seq;
    head.hash = entry.hash;
    head.written += 1;
    Ok(seq)
}

/// Message of a recovery entry: the outcome of the forwarded request is unknown.
pub const RECOVERY_MESSAGE: &str =
    "outcome unknown: the gateway stopped before the exchange answered";

/// Journal as "recovery" entries the reservations no entry settles: the rows of the legacy
/// `pending` table (stores of schema v2 and older; emptied here) and the log's records whose
/// id no journal entry after their `after` carries.
fn recover(conn: &Connection, head: &mut Head, logged: Vec<Logged>) -> Result<u64, StoreError> {
    let mut pending: Vec<Pending> = {
        let mut stmt = conn.prepare("SELECT * FROM pending ORDER BY ts_ms, id")?;
        let mut rows_iter = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows_iter.next()? {
            out.push(rows::pending_from_rq(row)?);
        }
        out
    };
    conn.execute("DELETE FROM pending", [])?;
    if let Some(after) = logged.iter().map(|l| l.after).min() {
        let mut settled = std::collections::HashSet::new();
        let mut stmt = conn
            .prepare("SELECT reservation FROM journal WHERE seq > ? AND reservation IS NOT NULL")?;
        let mut found = stmt.query([rows::to_i64(after, "seq")?])?;
        while let Some(row) = found.next()? {
            settled.insert(row.get::<_, String>(0)?);
        }
        let mut open: Vec<Pending> = logged
            .into_iter()
            .map(|l| l.pending)
            .filter(|p| !settled.contains(&p.id))
            .collect();
        open.sort_by(|a, b| (a.ts_ms, &a.id).cmp(&(b.ts_ms, &b.id)));
        pending.extend(open);
    }
    let now = crate::now_ms();
    let mut count = 0;
    for p in pending {
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
        push(conn, head, entry)?;
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

/// None: no such bot; Some(revoked_ms).
fn bot_state(conn: &Connection, name: &str) -> Result<Option<Option<i64>>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT revoked_ms FROM bots WHERE name = ?")?
        .query_row([name], |r| r.get::<_, Option<i64>>(0))
        .optional()?)
}

fn api_key_taken(conn: &Connection, api_key: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM credentials WHERE api_key = ?")?
        .exists([api_key])?)
}

fn set_control(
    conn: &Connection,
    mode: Mode,
    who: &str,
    why: &str,
    at: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO control (id, mode, who, why, changed_ms) VALUES (1, ?, ?, ?, ?) \
         ON CONFLICT(id) DO UPDATE SET mode = excluded.mode, who = excluded.who, \
         why = excluded.why, changed_ms = excluded.changed_ms",
    )?
    .execute(rusqlite::params![mode.as_str(), who, why, at])?;
    Ok(())
}

/// Checks come before writes, so a refused command leaves the transaction untouched.
fn admin(
    conn: &Connection,
    head: &mut Head,
    op: AdminOp,
) -> Result<Result<(), StoreError>, StoreError> {
    match op {
        AdminOp::Init => {
            let control = conn.prepare_cached("SELECT 1 FROM control")?.exists([])?;
            if !control && head.seq == 0 {
                let entry = control_entry("active", None, "by keyfence: new store".to_owned());
                set_control(conn, Mode::Active, "keyfence", "new store", entry.ts_ms)?;
                push(conn, head, entry)?;
            }
        }
        AdminOp::SetMode { mode, who, why } => {
            let entry = control_entry(mode.as_str(), None, format!("by {who}: {why}"));
            set_control(conn, mode, &who, &why, entry.ts_ms)?;
            push(conn, head, entry)?;
        }
        AdminOp::AddBot(bot) => {
            if bot_state(conn, &bot.name)?.is_some() {
                return Ok(Err(StoreError::Duplicate {
                    what: "name",
                    value: bot.name,
                }));
            }
            let mut seen = std::collections::BTreeSet::new();
            for c in &bot.credentials {
                if !seen.insert(c.api_key.as_str()) || api_key_taken(conn, &c.api_key)? {
                    return Ok(Err(StoreError::Duplicate {
                        what: "api key",
                        value: c.api_key.clone(),
                    }));
                }
            }
            let allow_ips = serde_json::to_string(&bot.allow_ips)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            conn.prepare_cached(
                "INSERT INTO bots (name, venue, key_label, policy, allow_ips, created_ms, revoked_ms) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(rusqlite::params![
                bot.name,
                bot.venue.as_str(),
                bot.key_label,
                bot.policy,
                allow_ips,
                bot.created_ms,
                bot.revoked_ms,
            ])?;
            for c in &bot.credentials {
                rows::insert_credential_rq(conn, &bot.name, c)?;
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
            push(conn, head, entry)?;
        }
        AdminOp::RevokeBot { name, who } => {
            if bot_state(conn, &name)?.is_none() {
                return Ok(Err(StoreError::NoSuchBot(name)));
            }
            let entry = control_entry("revoke", Some(name.clone()), format!("by {who}"));
            conn.prepare_cached(
                "UPDATE bots SET revoked_ms = COALESCE(revoked_ms, ?) WHERE name = ?",
            )?
            .execute(rusqlite::params![entry.ts_ms, name])?;
            push(conn, head, entry)?;
        }
        AdminOp::RotateBot {
            name,
            new,
            old_valid_until_ms,
        } => {
            match bot_state(conn, &name)? {
                None => return Ok(Err(StoreError::NoSuchBot(name))),
                Some(Some(_)) => return Ok(Err(StoreError::Revoked(name))),
                Some(None) => {}
            }
            if api_key_taken(conn, &new.api_key)? {
                return Ok(Err(StoreError::Duplicate {
                    what: "api key",
                    value: new.api_key,
                }));
            }
            // Only shorten: a credential already ending sooner keeps its earlier end.
            conn.prepare_cached(
                "UPDATE credentials SET valid_until_ms = ?1 \
                 WHERE bot = ?2 AND (valid_until_ms IS NULL OR valid_until_ms > ?1)",
            )?
            .execute(rusqlite::params![old_valid_until_ms, name])?;
            rows::insert_credential_rq(conn, &name, &new)?;
            let entry = control_entry(
                "rotate",
                Some(name),
                format!(
                    "credential `{}` added; older credentials valid until {old_valid_until_ms}",
                    new.id
                ),
            );
            push(conn, head, entry)?;
        }
    }
    Ok(Ok(()))
}

/// Sign the head if enough entries or time have passed since the last checkpoint. Returns the
/// signed seq. `known` caches the newest checkpoint's seq between batches; it is re-read from
/// the table before signing (another process may have signed one).
fn checkpoint(
    conn: &Connection,
    head: &Head,
    signer: &CheckpointSigner,
    cfg: &WriterConfig,
    last: Instant,
    known: &mut Option<u64>,
) -> Result<Option<u64>, StoreError> {
    let due = |last_seq: u64| {
        let unsigned = head.seq.saturating_sub(last_seq);
        unsigned > 0
            && (unsigned >= cfg.checkpoint_every || last.elapsed() >= cfg.checkpoint_interval)
    };
    if let Some(k) = *known
        && !due(k)
    {
        return Ok(None);
    }
    let last_seq: Option<i64> = conn
        .prepare_cached("SELECT MAX(seq) FROM checkpoints")?
        .query_row([], |r| r.get(0))?;
    let last_seq = rows::to_u64(last_seq.unwrap_or(0), "checkpoint seq")?;
    *known = Some(last_seq);
    if !due(last_seq) {
        return Ok(None);
    }
    let ts_ms = crate::now_ms();
    let signature = signer.sign_hex(&chain::checkpoint_message(head.seq, &head.hash, ts_ms));
    conn.prepare_cached(
        "INSERT INTO checkpoints (seq, hash, ts_ms, public_key, signature) VALUES (?, ?, ?, ?, ?)",
    )?
    .execute(rusqlite::params![
        rows::to_i64(head.seq, "seq")?,
        head.hash,
        ts_ms,
        signer.public_key_hex(),
        signature,
    ])?;
    Ok(Some(head.seq))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::reservations::tests::pending;
    use crate::{Store, StoreOptions};

    /// A panic in the writer thread stops trading (fail closed): the journal turns unhealthy
    /// and takes no reservation, while one made before the panic still reaches the disk.
    #[tokio::test]
    async fn a_panicking_writer_refuses_every_later_reservation() {
        let dir =
            std::env::temp_dir().join(format!("keyfence-writer-panic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir.join("k.db"), StoreOptions::default())
            .await
            .unwrap();
        store.recover_pending().await.unwrap();
        let journal = store.journal();
        let before = journal.reserve(pending("r1")).await.unwrap();
        journal.panic_writer();
        let deadline = Instant::now() + Duration::from_secs(10);
        while journal.healthy() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            !journal.healthy(),
            "the journal is still healthy after the writer panicked"
        );
        before.durable().await.unwrap();
        let after = journal.reserve(pending("r2")).await;
        assert!(
            matches!(after, Err(StoreError::JournalUnavailable(_))),
            "{:?}",
            after.map(|_| ())
        );
        // The process still holds the store: another gateway cannot take its log.
        let other = crate::reservations::Reservations::open(&dir.join("k.db"), 64 * 1024);
        assert!(
            matches!(other, Err(StoreError::JournalUnavailable(ref m)) if m.contains("another keyfence gateway")),
            "{:?}",
            other.map(|_| ())
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
