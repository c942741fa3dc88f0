//! keyfence-store: the gateway's durable state in one SQLite file (`<home>/keyfence.db`).
//!
//! - kill-switch mode (`control`): anything unreadable reads as `Halted`;
//! - bots and their credentials (rotation bounds old credentials' validity);
//! - nonce floors (only ever rise);
//! - the hash-chained journal, written by one group-commit thread ([`Journal`]), with
//!   Ed25519-signed checkpoints; [`Store::verify`] names the first bad entry;
//! - the gateway's reservation log (`<db>.reserve-0`/`-1`): a trading request's reservation is
//!   appended there before it is forwarded, and its journal entry settles it.
//!
//! Architecture invariant: the store never holds plaintext secrets, request signatures or raw
//! query strings; bot secrets arrive sealed by the caller.

mod chain;
mod error;
mod mode;
mod model;
mod read;
mod reservations;
mod rows;
mod stamp;
mod verify;
mod writer;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

pub use chain::{CheckpointSigner, GENESIS, checkpoint_message, entry_hash};
pub use error::StoreError;
pub use mode::{ControlState, Mode, UnknownMode};
pub use model::{
    BotCredential, BotRecord, JournalEntry, JournalStats, NewEntry, Pending, Usage, VerifyReport,
};
pub use stamp::STAMP_FRESH;
pub use writer::RECOVERY_MESSAGE;
pub use writer::{Journal, Reserved};

use writer::AdminOp;

/// When a journal write counts as done. Every mode survives a crash of the process (a commit
/// is in the OS before anyone hears of it); they differ on a crash of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// Every commit is fsynced before its callers hear back (SQLite `synchronous=FULL`).
    Strict,
    /// Every commit is fsynced right after it by a second thread, the syncer (a batch of entries
    /// nobody waits for within 5 ms). Callers hear back at COMMIT; control changes resolve after
    /// the fsync. A reservation's [`Reserved::durable`] resolves after the syncer's fsync of the
    /// reservation log: the gateway forwards while it runs and answers the bot only after it.
    #[default]
    Full,
    /// The disk catches up at SQLite's checkpoints (`synchronous=NORMAL`): the last commits
    /// may be lost on power loss.
    Normal,
}

impl SyncMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Strict => "strict",
            SyncMode::Full => "full",
            SyncMode::Normal => "normal",
        }
    }
}

/// How the store writes.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub sync: SyncMode,
    /// Sign a checkpoint after this many entries…
    pub checkpoint_every: u64,
    /// …or after this long, whichever comes first.
    pub checkpoint_interval: Duration,
    /// Bytes each of the two reservation-log files holds before appends move to the other
    /// (about 200 bytes a reservation).
    pub reservation_log_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            sync: SyncMode::Full,
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(300),
            reservation_log_bytes: 2 << 20,
        }
    }
}

/// Handle to the store. Cheap to clone; all clones share one pool and one journal writer.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    journal: Journal,
    stamp_path: PathBuf,
    path: PathBuf,
    reservation_log_bytes: u64,
    /// One recovery at a time.
    recovering: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("stamp_path", &self.inner.stamp_path)
            .finish_non_exhaustive()
    }
}

/// A file beside the database: `<db><suffix>` (`-wal`, `.stamp`, `.reserve-0`).
pub(crate) fn beside(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Milliseconds since the Unix epoch (the store stamps control entries and checkpoints).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Migrations embedded in the binary (no `macros` feature needed). sqlx refuses a database
/// carrying a migration this binary does not know, i.e. one written by a newer keyfence.
fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            Cow::Borrowed("init"),
            MigrationType::Simple,
            sqlx::SqlSafeStr::into_sql_str(include_str!("../migrations/0001_init.sql")),
            false,
        ),
        Migration::new(
            2,
            Cow::Borrowed("fewer pages"),
            MigrationType::Simple,
            sqlx::SqlSafeStr::into_sql_str(include_str!("../migrations/0002_fewer_pages.sql")),
            false,
        ),
        Migration::new(
            3,
            Cow::Borrowed("reservation log"),
            MigrationType::Simple,
            sqlx::SqlSafeStr::into_sql_str(include_str!("../migrations/0003_reservation_log.sql")),
            false,
        ),
    ])
}

impl Store {
    /// Open (creating and migrating) the store at `path`, without checkpoint signing.
    pub async fn open(path: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        Self::open_with_signer(path, opts, None).await
    }

    /// Open the store; with a signer, the journal writer signs checkpoints.
    pub async fn open_with_signer(
        path: &Path,
        opts: StoreOptions,
        signer: Option<CheckpointSigner>,
    ) -> Result<Store, StoreError> {
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5))
            // The pool writes nonce floors and migrations; those are fsynced unless the
            // whole store runs `normal`.
            .synchronous(if opts.sync == SyncMode::Normal {
                SqliteSynchronous::Normal
            } else {
                SqliteSynchronous::Full
            })
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(connect)
            .await?;
        migrator().run(&pool).await?;
        let stamp_path = stamp::path_for(path);
        let journal = writer::spawn(writer::WriterConfig {
            path: path.to_owned(),
            sync: opts.sync,
            signer,
            checkpoint_every: opts.checkpoint_every.max(1),
            checkpoint_interval: opts.checkpoint_interval,
            stamp_path: stamp_path.clone(),
        })?;
        journal.admin(AdminOp::Init).await?;
        Ok(Store {
            inner: Arc::new(Inner {
                pool,
                journal,
                stamp_path,
                path: path.to_owned(),
                reservation_log_bytes: opts.reservation_log_bytes,
                recovering: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Stop the journal writer (after what is queued) and close the connection pool. Later
    /// writes fail (and `Journal::healthy` turns false); for a clean shutdown once the gateway
    /// has stopped taking requests.
    pub async fn close(&self) {
        self.inner.journal.close().await;
        self.inner.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    // --- kill switch

    /// The kill-switch state. Any error or a missing/unknown row reads as `Halted`.
    pub async fn control(&self) -> ControlState {
        let row = sqlx::query("SELECT mode, who, why, changed_ms FROM control WHERE id = 1")
            .fetch_optional(self.pool())
            .await;
        let row = match row {
            Ok(Some(row)) => row,
            Ok(None) => return ControlState::unknown("no kill-switch row".to_owned()),
            Err(e) => return ControlState::unknown(e.to_string()),
        };
        let read = || -> Result<ControlState, String> {
            let mode: String = row.try_get("mode").map_err(|e| e.to_string())?;
            Ok(ControlState {
                mode: mode.parse().map_err(|e: UnknownMode| e.to_string())?,
                who: row.try_get("who").map_err(|e| e.to_string())?,
                why: row.try_get("why").map_err(|e| e.to_string())?,
                changed_ms: row.try_get("changed_ms").map_err(|e| e.to_string())?,
            })
        };
        read().unwrap_or_else(ControlState::unknown)
    }

    /// Persist a mode change AND journal it (kind "control", who, why) in one transaction;
    /// then bump the control stamp.
    pub async fn set_mode(&self, mode: Mode, who: &str, why: &str) -> Result<(), StoreError> {
        self.inner
            .journal
            .admin(AdminOp::SetMode {
                mode,
                who: who.to_owned(),
                why: why.to_owned(),
            })
            .await
    }

    /// A cheap change counter: the length of the file `<db>.stamp`, which grows by a byte
    /// after every control/bot change. One stat; 0 when missing.
    pub fn stamp(&self) -> u64 {
        stamp::read(&self.inner.stamp_path)
    }

    // --- bots

    /// Refuses a duplicate name or api_key. Journaled (kind "control", decision "add-bot").
    pub async fn add_bot(&self, bot: &BotRecord) -> Result<(), StoreError> {
        self.inner.journal.admin(AdminOp::AddBot(bot.clone())).await
    }

    /// Journaled (kind "control", decision "revoke"). Revoking twice keeps the first time.
    pub async fn revoke_bot(&self, name: &str, who: &str) -> Result<(), StoreError> {
        self.inner
            .journal
            .admin(AdminOp::RevokeBot {
                name: name.to_owned(),
                who: who.to_owned(),
            })
            .await
    }

    /// Rotation: add `new` and set every other live credential's valid_until to
    /// `old_valid_until_ms` (never extending one that already ends sooner). Journaled.
    pub async fn rotate_bot(
        &self,
        name: &str,
        new: &BotCredential,
        old_valid_until_ms: i64,
    ) -> Result<(), StoreError> {
        self.inner
            .journal
            .admin(AdminOp::RotateBot {
                name: name.to_owned(),
                new: new.clone(),
                old_valid_until_ms,
            })
            .await
    }

    // --- nonces

    /// The persisted floor for `key`; 0 when none.
    pub async fn nonce_floor(&self, key: &str) -> Result<u64, StoreError> {
        let floor: Option<i64> = sqlx::query_scalar("SELECT floor FROM nonce_floors WHERE key = ?")
            .bind(key.to_owned())
            .fetch_optional(self.pool())
            .await?;
        rows::to_u64(floor.unwrap_or(0), "nonce floor")
    }

    /// Durable; the stored floor becomes max(old, new), so it never goes back.
    pub async fn set_nonce_floor(&self, key: &str, floor: u64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO nonce_floors (key, floor) VALUES (?, ?) \
             ON CONFLICT(key) DO UPDATE SET floor = MAX(floor, excluded.floor)",
        )
        .bind(key.to_owned())
        .bind(rows::to_i64(floor, "nonce floor")?)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    // --- journal

    /// Read-your-writes for readers in this process: wait until what this process's writer
    /// has queued (entries the gateway submits without waiting, see `Journal::submit`) is
    /// committed. A stopped writer has nothing more to commit, so its error is ignored.
    pub(crate) async fn settle(&self) {
        drop(self.inner.journal.flush().await);
    }

    /// The journal handle (cheap clone); the group-commit writer thread sits behind it.
    pub fn journal(&self) -> Journal {
        self.inner.journal.clone()
    }

    /// Take the reservation log for this process (the gateway; one per store, the files are
    /// locked) after turning every reservation a previous run left without an outcome into a
    /// journal entry (kind "recovery", decision "allow", no upstream status,
    /// [`RECOVERY_MESSAGE`]); `Journal::reserve` works from then on. Returns how many were
    /// recovered. Called again, it only recovers rows of the legacy `pending` table (the log's
    /// reservations are then this process's own, in flight).
    pub async fn recover_pending(&self) -> Result<u64, StoreError> {
        let _one = self.inner.recovering.lock().await;
        let journal = &self.inner.journal;
        if journal.reservations().is_some() {
            return journal.recover(Vec::new()).await;
        }
        let (path, bytes) = (self.inner.path.clone(), self.inner.reservation_log_bytes);
        let (log, leftover) =
            tokio::task::spawn_blocking(move || reservations::Reservations::open(&path, bytes))
                .await
                .map_err(|e| StoreError::JournalUnavailable(e.to_string()))??;
        let recovered = journal.recover(leftover).await?;
        // The recovery entries reach the disk before the log forgets what they record: the
        // WAL is fsynced here in every sync mode (`normal` included), once per start.
        journal.flush().await?;
        let log = Arc::new(log);
        let restarted = Arc::clone(&log);
        let wal = beside(&self.inner.path, "-wal");
        tokio::task::spawn_blocking(move || {
            match std::fs::File::open(&wal) {
                Ok(f) => f.sync_data().map_err(StoreError::io(&wal))?,
                // No WAL: everything is in the database file, which SQLite fsynced.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(&wal)(e)),
            }
            restarted.restart()
        })
        .await
        .map_err(|e| StoreError::JournalUnavailable(e.to_string()))??;
        journal.install(log)?;
        Ok(recovered)
    }
}
