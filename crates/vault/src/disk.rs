//! The data directory and atomic, durable file replacement.
//!
//! Every write goes: temp file in the same directory (mode 0600), write, fsync, rename over the
//! target, fsync the directory. The file being replaced is first copied to `<name>.prev` the same
//! way, so the previous version survives. Any failure removes the temp file and leaves the
//! target as it was.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::VaultError;

/// The vault file in the data directory.
pub const VAULT_FILE: &str = "vault.age";
/// The previous version of the vault file, kept on every write.
pub const PREV_FILE: &str = "vault.age.prev";

/// The few file-system operations a durable write needs. [`RealDisk`] is the only
/// implementation outside tests; tests wrap it to inject failures (a full disk, a failed rename).
pub trait Disk: Send + Sync {
    /// Create `path` (which must not exist) with mode 0600, write `bytes`, fsync it.
    fn write_new(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Atomically rename `from` onto `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Make a directory's entries durable (fsync the directory).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealDisk;

impl Disk for RealDisk {
    fn write_new(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts.open(path)?;
        f.write_all(bytes)?;
        f.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        {
            fs::File::open(dir)?.sync_all()
        }
        #[cfg(not(unix))]
        {
            let _ = dir;
            Ok(())
        }
    }
}

/// The keyfence data directory (`--home`, `KEYFENCE_HOME`, or the XDG data directory).
#[derive(Clone)]
pub struct Home {
    dir: PathBuf,
    disk: Arc<dyn Disk>,
}

impl std::fmt::Debug for Home {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Home").field("dir", &self.dir).finish()
    }
}

impl Home {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Home {
            dir: dir.into(),
            disk: Arc::new(RealDisk),
        }
    }

    /// The same directory, written through another [`Disk`] (tests inject failures this way).
    pub fn with_disk(mut self, disk: Arc<dyn Disk>) -> Self {
        self.disk = disk;
        self
    }

    /// `$XDG_DATA_HOME/keyfence`, else `$HOME/.local/share/keyfence`.
    pub fn default_dir() -> Result<PathBuf, VaultError> {
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
            let p = PathBuf::from(x);
            if p.is_absolute() {
                return Ok(p.join("keyfence"));
            }
        }
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(h) => Ok(PathBuf::from(h).join(".local/share/keyfence")),
            None => Err(VaultError::NoHome),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn vault_path(&self) -> PathBuf {
        self.dir.join(VAULT_FILE)
    }

    pub fn prev_path(&self) -> PathBuf {
        self.dir.join(PREV_FILE)
    }

    /// Create the directory (mode 0700) if it is missing. Returns whether it was created.
    pub fn init(&self) -> Result<bool, VaultError> {
        let io_err = |source| VaultError::Io {
            what: "create the data directory",
            path: self.dir.clone(),
            source,
        };
        match fs::metadata(&self.dir) {
            Ok(m) if m.is_dir() => return Ok(false),
            Ok(_) => return Err(VaultError::HomeNotDir(self.dir.clone())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
        let mut b = fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            b.mode(0o700);
        }
        b.create(&self.dir).map_err(io_err)?;
        Ok(true)
    }

    /// The directory's mode when others (group or world) may read or enter it; `None` when it
    /// is private, missing, or the platform has no modes.
    pub fn loose_mode(&self) -> Option<u32> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&self.dir).ok()?.permissions().mode() & 0o777;
            (mode & 0o077 != 0).then_some(mode)
        }
        #[cfg(not(unix))]
        None
    }

    /// Read the vault file; `None` when there is none yet.
    pub(crate) fn read_vault(&self) -> Result<Option<Vec<u8>>, VaultError> {
        let path = self.vault_path();
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(VaultError::Io {
                what: "read the vault",
                path,
                source,
            }),
        }
    }

    /// Replace the vault file with `bytes`, keeping the old one as `vault.age.prev`.
    pub(crate) fn replace_vault(&self, bytes: &[u8]) -> Result<(), VaultError> {
        self.init()?;
        if let Some(old) = self.read_vault()? {
            self.replace(&self.prev_path(), &old)?;
        }
        self.replace(&self.vault_path(), bytes)
    }

    /// temp file, fsync, rename, fsync the directory. On error the temp file is removed and
    /// `target` is untouched.
    fn replace(&self, target: &Path, bytes: &[u8]) -> Result<(), VaultError> {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = self
            .dir
            .join(format!(".{name}.tmp-{}-{}", std::process::id(), nonce()));
        let io_err = |source| VaultError::Io {
            what: "write the vault",
            path: target.to_path_buf(),
            source,
        };
        let result = self
            .disk
            .write_new(&tmp, bytes)
            .and_then(|()| self.disk.rename(&tmp, target));
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(e));
        }
        self.disk.sync_dir(&self.dir).map_err(io_err)
    }
}

fn nonce() -> String {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 6];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    hex::encode(b)
}

/// Write a new file (mode 0600) durably; refuses to overwrite.
pub fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), VaultError> {
    RealDisk
        .write_new(path, bytes)
        .map_err(|source| VaultError::Io {
            what: "write",
            path: path.to_path_buf(),
            source,
        })
}
