//! The control stamp: a file next to the database that grows by one byte after every
//! kill-switch or bot change, so its length is a change counter. The gateway compares the
//! length (one `stat`, no open or read; at most once per [`STAMP_FRESH`]) instead of querying
//! SQLite, and re-reads the store when it moves. It works across processes: `keyfence kill` in another process
//! appends to the same file. Appending one byte is atomic and the length never goes back, so
//! no two states share a value (a file rewritten in place or renamed over could).

use std::io::Write;
use std::time::Duration;

/// How long a gateway may go on with what it last read after looking at the stamp: a request
/// looks at the stamp only when the last look is older (one `stat` per millisecond under
/// load, not one per request). Every change through the store waits twice this long after
/// the stamp moved before it returns, so a request that starts after a `keyfence bot revoke`
/// or `keyfence kill` has returned is decided with the change.
pub const STAMP_FRESH: Duration = Duration::from_millis(1);
use std::path::{Path, PathBuf};

/// `<db>.stamp`.
pub(crate) fn path_for(db: &Path) -> PathBuf {
    crate::beside(db, ".stamp")
}

/// The current counter (the file's length); 0 when the file is missing or unreadable (the
/// gateway also polls the kill switch every 50 ms).
pub(crate) fn read(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Append one byte (a file of a million changes is a megabyte).
pub(crate) fn bump(path: &Path) -> std::io::Result<u64> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(b".")?;
    Ok(f.metadata()?.len())
}
