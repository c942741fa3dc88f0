//! One error type for the store. Messages say what to do; none carries a secret (the store
//! never holds plaintext secrets, and SQL parameters are not echoed).

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "database error: {0}; help: check that the keyfence home is writable and the disk is not full"
    )]
    Db(#[from] sqlx::Error),
    #[error(
        "database error: {0}; help: check that the keyfence home is writable and the disk is not full"
    )]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "cannot migrate the store: {0}; help: if this store was written by a newer keyfence, upgrade keyfence"
    )]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "the journal could not be written: {0}; trading requests are denied until a journal commit succeeds"
    )]
    JournalUnavailable(String),
    #[error(
        "the change is committed, but the control stamp could not be moved ({0}); a running gateway sees a kill-switch change within 50 ms, a bot change only at its next restart or after the next change; help: check that the keyfence home is writable, then repeat the change or restart the gateway"
    )]
    StampNotMoved(String),
    #[error("a bot with {what} `{value}` already exists; help: pick another {what}")]
    Duplicate { what: &'static str, value: String },
    #[error("no bot named `{0}`; help: `keyfence bot list` shows the bots")]
    NoSuchBot(String),
    #[error("bot `{0}` is revoked; help: add a new bot instead of rotating a revoked one")]
    Revoked(String),
    #[error("reservation `{0}` already exists; help: reservation ids must be unique per request")]
    DuplicateReservation(String),
    #[error("value out of range for the store: {0}")]
    OutOfRange(String),
    #[error("the store holds a value it cannot read: {0}; help: run `keyfence journal verify`")]
    Corrupt(String),
    #[error("invalid checkpoint signing key: {0}; help: pass an Ed25519 key in PKCS#8 form")]
    Signer(String),
    #[error("i/o error on `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// For `map_err`: an I/O error on `path`.
    pub(crate) fn io(path: &std::path::Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
