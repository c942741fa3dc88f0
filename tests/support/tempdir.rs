//! The temp dir guard of the Rust test suites (included with `#[path]` by each test crate that
//! wants it, so the crates share one copy without a crate of their own).
#![allow(dead_code, clippy::panic)] // each test crate uses its own part; a failed set-up fails the test

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A temp dir, removed when dropped. A failing test keeps it, and says where, so it can be
/// looked at.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Empty and ready at `path` (what an earlier run left there is removed first).
    pub fn at(path: PathBuf) -> TempDir {
        let guard = TempDir::unmade(path);
        std::fs::create_dir_all(&guard.0).unwrap_or_else(|e| {
            panic!("cannot create {}: {e}", guard.0.display());
        });
        guard
    }

    /// `path`, cleared but not created (for code under test that makes its own directory).
    pub fn unmade(path: PathBuf) -> TempDir {
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }
}

/// A path under the system temp dir no other test of this process uses:
/// `PREFIX-PID-COUNTER`.
pub fn unique_path(prefix: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ))
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test failed: keeping {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
