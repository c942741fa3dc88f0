//! The control stamp: a tiny file next to the database holding a counter that changes after
//! every kill-switch or bot change. The gateway compares it per request (a stat and a read of
//! a few bytes) instead of querying SQLite, and re-reads the store when it moves. It also
//! works across processes: `keyfence kill` in another process bumps the same file.

use std::path::{Path, PathBuf};

/// `<db>.stamp`.
pub(crate) fn path_for(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".stamp");
    PathBuf::from(s)
}

/// The current counter; 0 when the file is missing or unreadable (the gateway also polls).
pub(crate) fn read(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Write counter+1 atomically (temp file, then rename) so a reader never sees half a number.
pub(crate) fn bump(path: &Path) -> std::io::Result<u64> {
    let next = read(path).wrapping_add(1);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, format!("{next}\n"))?;
    std::fs::rename(&tmp, path)?;
    Ok(next)
}
