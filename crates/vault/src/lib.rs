//! keyfence-vault: the encrypted credential store.
//!
//! One file, `vault.age` in the data directory, holds everything: an age-encrypted (scrypt
//! passphrase or X25519 recipients), ASCII-armored JSON document with every entry's metadata and
//! secrets and the random key that fingerprints are computed with. Nothing else on disk holds
//! key material. Writes are atomic and keep `vault.age.prev` (see [`disk`]).
//!
//! Secrets live in [`Credential`] (zeroizing, redacted `Debug`) and are serialised only through
//! the private [`StoredCredential`] inside the encryption boundary.

mod crypt;
pub mod disk;
mod gateway;

use std::path::PathBuf;

use keyfence_types::{Credential, SecretBytes, SecretString, Venue};
use ring::rand::SecureRandom as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub use crypt::{Key, Mode};
pub use disk::{Disk, Home, RealDisk};
pub use gateway::GatewaySecrets;

/// The document format inside the encryption.
const FORMAT_VERSION: u32 = 1;
/// Upper bound on a vault or backup file, so a hostile file cannot exhaust memory.
const MAX_FILE_BYTES: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("cannot {what} `{}`: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no data directory: set --home DIR or KEYFENCE_HOME, or HOME")]
    NoHome,
    #[error("`{}` exists and is not a directory; choose another --home", .0.display())]
    HomeNotDir(PathBuf),
    #[error("no vault in `{}`; run `keyfence init` or add a key with `keyfence vault add`", .0.display())]
    NoVault(PathBuf),
    #[error("a vault already exists in `{}`", .0.display())]
    VaultExists(PathBuf),
    #[error(
        "wrong passphrase for the vault (nothing was changed); if you are sure of it, the file's header may be damaged: restore `vault.age.prev` or a backup"
    )]
    WrongPassphrase,
    #[error("the identity file does not match the vault's recipients (nothing was changed)")]
    WrongIdentity,
    #[error("{}", match file {
        Mode::Passphrase => "the vault is encrypted with a passphrase, not an identity; give the passphrase (KEYFENCE_PASSPHRASE, --passphrase-file or the prompt)",
        Mode::Identity => "the vault is encrypted to an age identity; give it with --identity FILE",
    })]
    WrongKeyKind { file: Mode },
    #[error(
        "the vault file cannot be read: {0}; restore `vault.age.prev` or a backup (nothing was changed)"
    )]
    Damaged(&'static str),
    #[error("the file is larger than 16 MiB and is not a vault or backup")]
    TooLarge,
    #[error("the vault decrypted but its content is not a keyfence vault (format {0})")]
    BadContent(String),
    #[error("encryption failed")]
    Encrypt,
    #[error("`{}` line {line} is not an age X25519 identity (AGE-SECRET-KEY-1...); create one with `age-keygen -o FILE`", path.display())]
    BadIdentity { path: PathBuf, line: usize },
    #[error(
        "{0} is not an age X25519 recipient; give the `age1...` line that `age-keygen` prints (not the secret key)"
    )]
    BadRecipient(String),
    #[error("invalid {field} ({value}): {why}")]
    BadField {
        field: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("invalid credential for {venue}: {why}")]
    BadCredential { venue: Venue, why: String },
    #[error("a key labelled `{0}` already exists; choose another label or remove it first")]
    DuplicateLabel(String),
    #[error(
        "this {venue} key ({fingerprint}) is already in the vault as `{label}` for service `{service}`; one real key per service: create a separate API key on {venue} for this service"
    )]
    DuplicateKey {
        venue: Venue,
        fingerprint: String,
        label: String,
        service: String,
    },
    #[error("no key labelled `{0}`; `keyfence vault list` shows the labels")]
    UnknownLabel(String),
}

impl VaultError {
    /// True for errors the user fixes by changing the command or its input (exit code 2);
    /// false for a vault that cannot be read or written.
    pub fn is_usage(&self) -> bool {
        !matches!(
            self,
            VaultError::Io { .. }
                | VaultError::Damaged(_)
                | VaultError::BadContent(_)
                | VaultError::Encrypt
                | VaultError::TooLarge
        )
    }
}

pub use keyfence_types::{Purpose, Tier};

/// Everything about a key except its secrets. Safe to print and serialise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryMeta {
    pub label: String,
    pub exchange: Venue,
    pub service: String,
    pub purpose: Purpose,
    pub tier: Tier,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    pub fingerprint: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_rotated: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_grade: Option<String>,
}

impl EntryMeta {
    /// When the key is due for rotation, from its tier.
    pub fn rotation_due(&self) -> OffsetDateTime {
        self.last_rotated + time::Duration::days(self.tier.rotation_days())
    }

    /// The metadata as JSON, with `rotation_due` and no secrets. The stable shape of
    /// `vault list --format json` and `vault show --format json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "label": self.label,
            "exchange": self.exchange,
            "service": self.service,
            "purpose": self.purpose,
            "tier": self.tier,
            "endpoint": self.endpoint,
            "fingerprint": self.fingerprint,
            "created": rfc3339(self.created),
            "last_rotated": rfc3339(self.last_rotated),
            "rotation_due": rfc3339(self.rotation_due()),
            "last_grade": self.last_grade,
        })
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// What `vault add` says about a new key besides its credential.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub label: String,
    pub exchange: Venue,
    pub service: String,
    pub purpose: Purpose,
    pub tier: Tier,
    pub endpoint: Option<String>,
}

/// One key: metadata and its real credential.
pub struct Entry {
    pub meta: EntryMeta,
    credential: Credential,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("meta", &self.meta)
            .field("credential", &"<redacted>")
            .finish()
    }
}

impl Entry {
    /// The real credential, for the code that signs with it.
    pub fn credential(&self) -> &Credential {
        &self.credential
    }
}

/// The plaintext document inside the encryption. Private: only `Vault` builds and reads it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    format: String,
    version: u32,
    /// base64 of the 32-byte HMAC key for fingerprints.
    fingerprint_key: StoredSecret,
    entries: Vec<StoredEntry>,
    /// The gateway's own secrets, once created (absent in vaults that never ran the gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway: Option<gateway::StoredGateway>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredEntry {
    meta: EntryMeta,
    credential: StoredCredential,
}

/// The serialisable form of a secret string; exists only while a document is (de)serialised.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
struct StoredSecret(String);

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct StoredCredential {
    api_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    passphrase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    private_key: Option<String>,
}

impl StoredCredential {
    fn from_credential(c: &Credential) -> Self {
        let s = |x: &Option<SecretString>| x.as_ref().map(|v| v.expose().to_owned());
        StoredCredential {
            api_key: c.api_key.clone(),
            secret: s(&c.secret),
            passphrase: s(&c.passphrase),
            private_key: s(&c.private_key),
        }
    }

    fn to_credential(&self) -> Credential {
        let s = |x: &Option<String>| x.as_ref().map(|v| SecretString::new(v.clone()));
        Credential {
            api_key: self.api_key.clone(),
            secret: s(&self.secret),
            passphrase: s(&self.passphrase),
            private_key: s(&self.private_key),
        }
    }
}

const DOCUMENT_FORMAT: &str = "keyfence-vault";

/// The decrypted vault in memory.
pub struct Vault {
    home: Home,
    fingerprint_key: SecretBytes,
    entries: Vec<Entry>,
    gateway: Option<GatewaySecrets>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("home", &self.home)
            .field("entries", &self.entries)
            .finish()
    }
}

impl Vault {
    /// Whether the home holds a vault file, and how it is encrypted (read from the age header,
    /// without decrypting). `None` when there is no vault yet.
    pub fn probe(home: &Home) -> Result<Option<Mode>, VaultError> {
        match home.read_vault()? {
            None => Ok(None),
            Some(bytes) => crypt::file_mode(&bytes).map(Some),
        }
    }

    /// A new, empty vault, written at once. Refuses to overwrite an existing one.
    pub fn create(home: &Home, key: &Key) -> Result<Vault, VaultError> {
        home.init()?;
        if home.read_vault()?.is_some() {
            return Err(VaultError::VaultExists(home.dir().to_path_buf()));
        }
        let mut fk = Zeroizing::new(vec![0u8; 32]);
        ring::rand::SystemRandom::new()
            .fill(&mut fk)
            .map_err(|_| VaultError::Encrypt)?;
        let v = Vault {
            home: home.clone(),
            fingerprint_key: SecretBytes::new(fk.to_vec()),
            entries: Vec::new(),
            gateway: None,
        };
        v.save(key)?;
        Ok(v)
    }

    /// Decrypt the vault in `home`.
    pub fn open(home: &Home, key: &Key) -> Result<Vault, VaultError> {
        let bytes = home
            .read_vault()?
            .ok_or_else(|| VaultError::NoVault(home.dir().to_path_buf()))?;
        if bytes.len() > MAX_FILE_BYTES {
            return Err(VaultError::TooLarge);
        }
        let plain = key.decrypt(&bytes)?;
        let (fingerprint_key, entries, gateway) = parse_document(&plain)?;
        Ok(Vault {
            home: home.clone(),
            fingerprint_key,
            entries,
            gateway,
        })
    }

    /// Open the vault, or create an empty one when there is none.
    pub fn open_or_create(home: &Home, key: &Key) -> Result<Vault, VaultError> {
        match home.read_vault()? {
            Some(_) => Vault::open(home, key),
            None => Vault::create(home, key),
        }
    }

    pub fn home(&self) -> &Home {
        &self.home
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The gateway's secrets, if created ([`Vault::ensure_gateway_secrets`]).
    pub fn gateway_secrets(&self) -> Option<&GatewaySecrets> {
        self.gateway.as_ref()
    }

    /// Take the gateway's secrets out of a vault that is no longer needed (the running gateway
    /// keeps them; the vault and its entries are dropped and zeroized).
    pub fn into_gateway_secrets(self) -> Option<GatewaySecrets> {
        self.gateway
    }

    /// Create the gateway's secrets if the vault has none yet (in memory; call
    /// [`Vault::save`]). Returns true when they were created now.
    pub fn ensure_gateway_secrets(&mut self) -> Result<bool, VaultError> {
        if self.gateway.is_some() {
            return Ok(false);
        }
        self.gateway = Some(GatewaySecrets::generate()?);
        Ok(true)
    }

    pub fn get(&self, label: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.meta.label == label)
    }

    /// The fingerprint of a real key: `kf:` and 16 hex digits of HMAC-SHA256 under this vault's
    /// random key, over the venue and the API key. Reveals nothing about the key or secret.
    pub fn fingerprint(&self, venue: Venue, api_key: &str) -> String {
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.fingerprint_key.expose());
        let mut ctx = ring::hmac::Context::with_key(&k);
        ctx.update(b"keyfence-fingerprint-v1\0");
        ctx.update(venue.as_str().as_bytes());
        ctx.update(b"\0");
        ctx.update(api_key.as_bytes());
        let tag = ctx.sign();
        format!("kf:{}", hex::encode(&tag.as_ref()[..8]))
    }

    /// Add a key in memory (call [`Vault::save`] to persist). Validates the metadata and proves
    /// the credential usable for its venue; refuses a duplicate label or a real key that is
    /// already in the vault.
    pub fn add(
        &mut self,
        new: NewEntry,
        credential: Credential,
        now: OffsetDateTime,
    ) -> Result<&Entry, VaultError> {
        validate_name("label", &new.label)?;
        validate_name("service", &new.service)?;
        if let Some(url) = &new.endpoint {
            validate_endpoint(url)?;
        }
        validate_credential(new.exchange, &credential)?;
        self.check_new(&new.label, new.exchange, &credential.api_key)?;
        let fingerprint = self.fingerprint(new.exchange, &credential.api_key);
        let now = now.replace_nanosecond(0).unwrap_or(now);
        self.entries.push(Entry {
            meta: EntryMeta {
                label: new.label,
                exchange: new.exchange,
                service: new.service,
                purpose: new.purpose,
                tier: new.tier,
                endpoint: new.endpoint,
                fingerprint,
                created: now,
                last_rotated: now,
                last_grade: None,
            },
            credential,
        });
        let last = self.entries.len() - 1;
        Ok(&self.entries[last])
    }

    fn check_new(&self, label: &str, venue: Venue, api_key: &str) -> Result<(), VaultError> {
        if self.get(label).is_some() {
            return Err(VaultError::DuplicateLabel(label.to_owned()));
        }
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| e.meta.exchange == venue && e.credential.api_key == api_key)
        {
            return Err(VaultError::DuplicateKey {
                venue,
                fingerprint: e.meta.fingerprint.clone(),
                label: e.meta.label.clone(),
                service: e.meta.service.clone(),
            });
        }
        Ok(())
    }

    /// Remove a key in memory; returns its metadata.
    pub fn remove(&mut self, label: &str) -> Result<EntryMeta, VaultError> {
        let i = self
            .entries
            .iter()
            .position(|e| e.meta.label == label)
            .ok_or_else(|| VaultError::UnknownLabel(label.to_owned()))?;
        Ok(self.entries.remove(i).meta)
    }

    /// Record the audit's grade for a key (in memory).
    pub fn set_grade(&mut self, label: &str, grade: &str) -> Result<(), VaultError> {
        let e = self
            .entries
            .iter_mut()
            .find(|e| e.meta.label == label)
            .ok_or_else(|| VaultError::UnknownLabel(label.to_owned()))?;
        e.meta.last_grade = Some(grade.to_owned());
        Ok(())
    }

    /// Encrypt to `key` and replace the vault file atomically (the old one becomes
    /// `vault.age.prev`). On error the vault file is unchanged.
    pub fn save(&self, key: &Key) -> Result<(), VaultError> {
        let plain = self.document()?;
        let file = key.encrypt(&plain)?;
        self.home.replace_vault(&file)
    }

    fn document(&self) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        use base64::Engine as _;
        let doc = Document {
            format: DOCUMENT_FORMAT.to_owned(),
            version: FORMAT_VERSION,
            fingerprint_key: StoredSecret(
                base64::engine::general_purpose::STANDARD.encode(self.fingerprint_key.expose()),
            ),
            entries: self
                .entries
                .iter()
                .map(|e| StoredEntry {
                    meta: e.meta.clone(),
                    credential: StoredCredential::from_credential(&e.credential),
                })
                .collect(),
            gateway: self.gateway.as_ref().map(|g| g.to_stored()).transpose()?,
        };
        let mut buf = Zeroizing::new(Vec::with_capacity(4096 + 4096 * self.entries.len()));
        serde_json::to_writer(&mut *buf, &doc).map_err(|_| VaultError::Encrypt)?;
        Ok(buf)
    }

    /// Every entry, encrypted to an age X25519 recipient (`age1...`), ASCII-armored: a backup
    /// that `import` reads with the matching identity.
    pub fn export(&self, recipient: &str) -> Result<Vec<u8>, VaultError> {
        let r = crypt::parse_recipient(recipient)?;
        let plain = self.document()?;
        crypt::encrypt_to(&[&r as &dyn age::Recipient], &plain)
    }

    /// Add every entry of a backup (decrypted with `key`) to this vault, in memory. All or
    /// nothing: a label or real key already present refuses the whole import. Fingerprints are
    /// recomputed with this vault's key. Returns the imported labels.
    pub fn import(&mut self, backup: &[u8], key: &Key) -> Result<Vec<String>, VaultError> {
        if backup.len() > MAX_FILE_BYTES {
            return Err(VaultError::TooLarge);
        }
        let plain = key.decrypt(backup)?;
        let (_, incoming, _) = parse_document(&plain)?;
        let mut labels = Vec::new();
        for e in &incoming {
            self.check_new(&e.meta.label, e.meta.exchange, &e.credential.api_key)?;
            if labels.contains(&e.meta.label) {
                return Err(VaultError::DuplicateLabel(e.meta.label.clone()));
            }
            labels.push(e.meta.label.clone());
        }
        for mut e in incoming {
            e.meta.fingerprint = self.fingerprint(e.meta.exchange, &e.credential.api_key);
            self.entries.push(e);
        }
        Ok(labels)
    }
}

type Parsed = (SecretBytes, Vec<Entry>, Option<GatewaySecrets>);

fn parse_document(plain: &[u8]) -> Result<Parsed, VaultError> {
    use base64::Engine as _;
    let doc: Document = serde_json::from_slice(plain).map_err(|e| {
        VaultError::BadContent(format!(
            "unparseable at line {} column {}",
            e.line(),
            e.column()
        ))
    })?;
    if doc.format != DOCUMENT_FORMAT || doc.version != FORMAT_VERSION {
        return Err(VaultError::BadContent(format!(
            "`{}` version {}; this keyfence reads `{DOCUMENT_FORMAT}` version {FORMAT_VERSION}",
            doc.format, doc.version
        )));
    }
    let fk = base64::engine::general_purpose::STANDARD
        .decode(doc.fingerprint_key.0.as_bytes())
        .map_err(|_| VaultError::BadContent("bad fingerprint key".into()))?;
    let entries = doc
        .entries
        .iter()
        .map(|s| Entry {
            meta: s.meta.clone(),
            credential: s.credential.to_credential(),
        })
        .collect();
    let gateway = doc
        .gateway
        .as_ref()
        .map(GatewaySecrets::from_stored)
        .transpose()?;
    Ok((SecretBytes::new(fk), entries, gateway))
}

/// Labels and service names: 1-64 characters of letters, digits, `.`, `_`, `-`.
fn validate_name(field: &'static str, s: &str) -> Result<(), VaultError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !s.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(VaultError::BadField {
            field,
            value: format!("`{}`", s.chars().take(80).collect::<String>()),
            why: "use 1-64 letters, digits, `.`, `_` or `-`, not starting with `-`",
        })
    }
}

fn validate_endpoint(url: &str) -> Result<(), VaultError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let ok = match rest {
        Some(r) => {
            let host = r.split('/').next().unwrap_or("");
            !host.is_empty()
                && !host.contains('@')
                && url.len() <= 2048
                && url.chars().all(|c| c.is_ascii_graphic())
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(VaultError::BadField {
            field: "endpoint",
            // not quoted: a URL may carry credentials (`https://user:pass@host`)
            value: "not quoted, it may hold credentials".into(),
            why: "expected an http:// or https:// base URL without credentials, e.g. http://127.0.0.1:9101",
        })
    }
}

/// Which credential fields a venue uses, and proof that the credential can sign: it is parsed
/// into a `SigningKey` exactly as the gateway will. Errors name the field, never its value.
pub fn validate_credential(venue: Venue, c: &Credential) -> Result<(), VaultError> {
    let bad = |why: String| VaultError::BadCredential { venue, why };
    if c.api_key.trim().is_empty() {
        return Err(bad("`api_key` is empty".into()));
    }
    if c.api_key.len() > 512 || c.api_key.chars().any(|ch| ch.is_control() || ch == ' ') {
        return Err(bad(
            "`api_key` contains spaces or control characters, or is longer than 512".into(),
        ));
    }
    for (name, v) in [
        ("secret", &c.secret),
        ("passphrase", &c.passphrase),
        ("private_key", &c.private_key),
    ] {
        if v.as_ref().is_some_and(|s| s.expose().trim().is_empty()) {
            return Err(bad(format!("`{name}` is empty; leave it out instead")));
        }
    }
    if c.passphrase.is_some() && venue != Venue::Okx {
        return Err(bad(format!(
            "{venue} keys have no `passphrase`; leave it out"
        )));
    }
    if c.secret.is_some() && c.private_key.is_some() {
        return Err(bad(
            "give either `secret` (HMAC) or `private_key` (PEM), not both".into(),
        ));
    }
    if c.private_key.is_some() && !matches!(venue, Venue::Binance | Venue::Coinbase) {
        return Err(bad(format!("{venue} keys use `secret`, not `private_key`")));
    }
    let rng = ring::rand::SystemRandom::new();
    keyfence_exchange::SigningKey::from_credential(venue, c, &rng)
        .map(|_| ())
        .map_err(|e| {
            let field = if c.private_key.is_some() {
                "private_key"
            } else {
                "secret"
            };
            match e {
                keyfence_exchange::KeyError::Invalid(why) => {
                    bad(format!("`{field}` is not usable: {why}"))
                }
                other => bad(other.to_string()),
            }
        })
}
