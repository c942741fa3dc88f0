//! age encryption of the vault document: a passphrase (scrypt) or X25519 identities.
//! No cryptography is written here; this maps age's API and errors onto the vault's.

use std::io::Read as _;
use std::path::Path;
use std::str::FromStr as _;

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age::secrecy::{ExposeSecret as _, SecretString};
use zeroize::Zeroizing;

use crate::VaultError;

/// What unlocks (and, on write, locks) a vault.
pub enum Key {
    /// scrypt passphrase. `log_n` overrides age's calibrated work factor (tests only).
    Passphrase {
        passphrase: SecretString,
        log_n: Option<u8>,
    },
    /// X25519 identities from an age identity file; the vault is encrypted to their recipients.
    Identity(Vec<age::x25519::Identity>),
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Key::Passphrase { .. } => "Key::Passphrase(<redacted>)",
            Key::Identity(_) => "Key::Identity(<redacted>)",
        })
    }
}

/// How an existing vault file is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Passphrase,
    Identity,
}

impl Key {
    pub fn passphrase(passphrase: String) -> Key {
        Key::Passphrase {
            passphrase: SecretString::from(passphrase),
            log_n: None,
        }
    }

    /// Read an age identity file (`AGE-SECRET-KEY-1…` lines, `#` comments). Errors never quote
    /// the file's content.
    pub fn identity_file(path: &Path) -> Result<Key, VaultError> {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| VaultError::Io {
                    what: "read the identity file",
                    path: path.to_path_buf(),
                    source,
                })?,
            );
        let mut ids = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let id =
                age::x25519::Identity::from_str(line).map_err(|_| VaultError::BadIdentity {
                    path: path.to_path_buf(),
                    line: i + 1,
                })?;
            ids.push(id);
        }
        if ids.is_empty() {
            return Err(VaultError::BadIdentity {
                path: path.to_path_buf(),
                line: 0,
            });
        }
        Ok(Key::Identity(ids))
    }

    pub fn mode(&self) -> Mode {
        match self {
            Key::Passphrase { .. } => Mode::Passphrase,
            Key::Identity(_) => Mode::Identity,
        }
    }

    /// Encrypt `plaintext` to this key, ASCII-armored.
    pub(crate) fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        match self {
            Key::Passphrase { passphrase, log_n } => {
                let mut r = age::scrypt::Recipient::new(passphrase.clone());
                if let Some(n) = log_n.filter(|n| (1..64).contains(n)) {
                    r.set_work_factor(n);
                }
                encrypt_to(&[&r as &dyn age::Recipient], plaintext)
            }
            Key::Identity(ids) => {
                let rs: Vec<age::x25519::Recipient> = ids.iter().map(|i| i.to_public()).collect();
                let refs: Vec<&dyn age::Recipient> =
                    rs.iter().map(|r| r as &dyn age::Recipient).collect();
                encrypt_to(&refs, plaintext)
            }
        }
    }

    /// Decrypt an age file (armored or binary) with this key.
    pub(crate) fn decrypt(&self, file: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(file))
            .map_err(|e| VaultError::Damaged(header_problem(&e)))?;
        let mode = if decryptor.is_scrypt() {
            Mode::Passphrase
        } else {
            Mode::Identity
        };
        if mode != self.mode() {
            return Err(VaultError::WrongKeyKind { file: mode });
        }
        let reader = match self {
            Key::Passphrase { passphrase, .. } => {
                let id = age::scrypt::Identity::new(SecretString::from(
                    passphrase.expose_secret().to_owned(),
                ));
                decryptor.decrypt(std::iter::once(&id as &dyn age::Identity))
            }
            Key::Identity(ids) => decryptor.decrypt(ids.iter().map(|i| i as &dyn age::Identity)),
        };
        let mut reader = reader.map_err(|e| match e {
            age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => match mode {
                Mode::Passphrase => VaultError::WrongPassphrase,
                Mode::Identity => VaultError::WrongIdentity,
            },
            age::DecryptError::ExcessiveWork { .. } => {
                VaultError::Damaged("its scrypt work factor is too high to try")
            }
            other => VaultError::Damaged(header_problem(&other)),
        })?;
        let mut out = Zeroizing::new(Vec::with_capacity(file.len()));
        reader
            .read_to_end(&mut out)
            .map_err(|_| VaultError::Damaged("the encrypted content is truncated or altered"))?;
        Ok(out)
    }
}

/// The mode an age file is encrypted in, without decrypting it.
pub(crate) fn file_mode(file: &[u8]) -> Result<Mode, VaultError> {
    let d = age::Decryptor::new_buffered(ArmoredReader::new(file))
        .map_err(|e| VaultError::Damaged(header_problem(&e)))?;
    Ok(if d.is_scrypt() {
        Mode::Passphrase
    } else {
        Mode::Identity
    })
}

fn header_problem(e: &age::DecryptError) -> &'static str {
    match e {
        age::DecryptError::InvalidMac => "its header was altered (MAC mismatch)",
        age::DecryptError::UnknownFormat => "it is not in a known age format",
        _ => "it is not a complete age file (truncated or altered)",
    }
}

pub(crate) fn encrypt_to(
    recipients: &[&dyn age::Recipient],
    plaintext: &[u8],
) -> Result<Vec<u8>, VaultError> {
    use std::io::Write as _;
    let enc = age::Encryptor::with_recipients(recipients.iter().copied())
        .map_err(|_| VaultError::Encrypt)?;
    let mut out = Vec::with_capacity(plaintext.len() * 2 + 512);
    let armored = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor)
        .map_err(|_| VaultError::Encrypt)?;
    let mut w = enc.wrap_output(armored).map_err(|_| VaultError::Encrypt)?;
    w.write_all(plaintext).map_err(|_| VaultError::Encrypt)?;
    w.finish()
        .and_then(|a| a.finish())
        .map_err(|_| VaultError::Encrypt)?;
    Ok(out)
}

/// Parse an `age1…` recipient.
pub(crate) fn parse_recipient(s: &str) -> Result<age::x25519::Recipient, VaultError> {
    age::x25519::Recipient::from_str(s.trim()).map_err(|_| {
        // Quote it only when it looks like a recipient: a pasted secret key must not be echoed.
        let t = s.trim();
        let shown = if t.len() <= 100 && t.to_ascii_lowercase().starts_with("age1") {
            format!("`{t}`")
        } else {
            "the value given".to_owned()
        };
        VaultError::BadRecipient(shown)
    })
}
