//! `keyfence init` and `keyfence vault …`: the encrypted credential store on the command line.
//!
//! Exit codes: 0 success; 1 the vault could not be read or written (damaged file, I/O error,
//! full disk); 2 usage or configuration error (bad flag or input, wrong passphrase or identity,
//! unknown label, duplicate key, no passphrase source).

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use keyfence_types::{Credential, SecretString, Venue};
use keyfence_vault::{EntryMeta, Home, Key, Mode, NewEntry, Purpose, Tier, Vault, VaultError};
use zeroize::Zeroizing;

/// Flags every command that touches the data directory shares.
#[derive(Args, Debug, Clone)]
pub struct Globals {
    /// Data directory [default: $XDG_DATA_HOME/keyfence or ~/.local/share/keyfence].
    #[arg(long, global = true, env = "KEYFENCE_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Read the vault passphrase from the first line of FILE (else KEYFENCE_PASSPHRASE, else a
    /// prompt).
    #[arg(long, global = true, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// An age X25519 identity file (from `age-keygen`): unlocks a vault encrypted to it, and a
    /// new vault is encrypted to its recipient when no passphrase is given. `vault import`
    /// also decrypts the backup with it.
    #[arg(long, global = true, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum VaultCommand {
    /// Add a real exchange key (credential from a no-echo prompt or JSON on stdin, never argv).
    #[command(long_about = ADD_LONG, after_long_help = ADD_EXAMPLES)]
    Add(AddArgs),
    /// List the keys (metadata and fingerprints; never secrets).
    #[command(
        after_long_help = "Examples:\n  keyfence vault list\n  keyfence vault list --format json | jq '.[].label'"
    )]
    List {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Show one key's metadata (never its secrets).
    #[command(
        after_long_help = "Examples:\n  keyfence vault show binance-bot\n  keyfence vault show binance-bot --format json"
    )]
    Show {
        label: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Remove a key from the vault (the previous vault file is kept as vault.age.prev).
    Remove { label: String },
    /// Re-encrypt the vault with a new passphrase (KEYFENCE_NEW_PASSPHRASE, else a prompt).
    Passwd,
    /// Write an encrypted backup of every key to an age recipient (age1…).
    #[command(
        after_long_help = "Examples:\n  age-keygen -o backup.key        # prints the recipient: age1...\n  keyfence vault export --recipient age1... --output keyfence-backup.age\n  keyfence vault import keyfence-backup.age --identity backup.key   # on the new machine"
    )]
    Export {
        /// The backup's age X25519 recipient (age1…).
        #[arg(long, value_name = "AGE_RECIPIENT")]
        recipient: String,
        /// Write the backup here (refuses to overwrite) instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Add every key of a backup made by `vault export` (decrypted with --identity FILE).
    ///
    /// All or nothing: a label or real key already in the vault refuses the import.
    #[command(
        after_long_help = "Example:\n  KEYFENCE_PASSPHRASE=... keyfence vault import keyfence-backup.age --identity backup.key"
    )]
    Import {
        /// The backup file.
        file: PathBuf,
    },
}

const ADD_LONG: &str = "Add a real exchange key.

The credential is read without echo from the terminal or, when stdin is not a terminal, as ONE
JSON object on stdin with the fields the exchange needs:

  binance   api_key + secret (HMAC), or api_key + private_key (Ed25519 PEM)
  bybit     api_key + secret
  okx       api_key + secret + passphrase
  coinbase  api_key (the key name, organizations/.../apiKeys/...) + private_key (PEM)
  kraken    api_key + secret (base64, as Kraken shows it)

The credential is checked (it must be usable for signing) before it is stored. The same real
key cannot be added twice, under another label or for another service: one key per service.";

const ADD_EXAMPLES: &str = "Examples:
  # from a file, non-interactively (the passphrase from the environment)
  export KEYFENCE_PASSPHRASE='…'
  keyfence vault add binance-bot --exchange binance --service freqtrade < binance-key.json

  # where binance-key.json is
  {\"api_key\": \"…\", \"secret\": \"…\"}

  # against the simulator or a testnet
  keyfence vault add okx-sim --exchange okx --service ccxt-script --purpose futures \\
      --tier medium --endpoint http://127.0.0.1:9103 < okx-key.json

  # interactively: prompts for each field without echo
  keyfence vault add kraken-dca --exchange kraken --service dca-bot";

#[derive(Args, Debug)]
pub struct AddArgs {
    /// A name for the key: letters, digits, `.`, `_`, `-`.
    pub label: String,
    /// binance, bybit, okx, coinbase or kraken.
    #[arg(long, value_name = "VENUE")]
    pub exchange: Venue,
    /// The bot or service that uses this key (one real key per service).
    #[arg(long, value_name = "NAME")]
    pub service: String,
    /// What the key is for: spot, margin, futures, options, trading (any), read-only.
    #[arg(long, default_value = "spot", value_name = "P")]
    pub purpose: Purpose,
    /// Account-value tier for rotation: auto (from the account's value; 30 days until the
    /// audit knows it), high (30), medium (60), low (90).
    #[arg(long, default_value = "auto", value_name = "T")]
    pub tier: Tier,
    /// Another base URL for this key (the simulator, a testnet).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

/// A failure with its exit code.
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl From<VaultError> for Failure {
    fn from(e: VaultError) -> Self {
        Failure {
            code: if e.is_usage() { 2 } else { 1 },
            message: e.to_string(),
        }
    }
}

pub(crate) fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

fn io_failure(what: &str, e: std::io::Error) -> Failure {
    Failure {
        code: 1,
        message: format!("cannot {what}: {e}"),
    }
}

type Result<T> = std::result::Result<T, Failure>;

pub(crate) fn home(g: &Globals) -> Result<Home> {
    let dir = match &g.home {
        Some(d) => d.clone(),
        None => Home::default_dir()?,
    };
    let home = Home::new(dir);
    if let Some(mode) = home.loose_mode() {
        eprintln!(
            "warning: the data directory {} is open to other users (mode {mode:o}); run `chmod 700 {}`",
            home.dir().display(),
            home.dir().display()
        );
    }
    Ok(home)
}

/// `keyfence init`: the data directory (0700) and an empty vault.
pub fn init(g: &Globals) -> Result<()> {
    let home = home(g)?;
    home.init()?;
    match Vault::probe(&home)? {
        Some(mode) => {
            say(&format!(
                "vault already initialised at {} ({})",
                home.vault_path().display(),
                mode_name(mode)
            ));
        }
        None => {
            let key = new_key(g)?;
            Vault::create(&home, &key)?;
            say(&format!(
                "created {} ({})",
                home.vault_path().display(),
                mode_name(key.mode())
            ));
        }
    }
    Ok(())
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Passphrase => "encrypted with a passphrase",
        Mode::Identity => "encrypted to an age identity",
    }
}

pub fn run(g: &Globals, cmd: VaultCommand) -> Result<()> {
    let home = home(g)?;
    match cmd {
        VaultCommand::Add(args) => add(g, &home, args),
        VaultCommand::List { format } => list(g, &home, format),
        VaultCommand::Show { label, format } => show(g, &home, &label, format),
        VaultCommand::Remove { label } => {
            let (mut v, key) = open(g, &home)?;
            let meta = v.remove(&label)?;
            v.save(&key)?;
            say(&format!(
                "removed `{}` ({} {}); also delete the key on {}",
                meta.label, meta.exchange, meta.fingerprint, meta.exchange
            ));
            Ok(())
        }
        VaultCommand::Passwd => {
            let (v, key) = open(g, &home)?;
            if key.mode() != Mode::Passphrase {
                return Err(usage(
                    "the vault is encrypted to an age identity, not a passphrase; nothing to change",
                ));
            }
            let new = new_passphrase("KEYFENCE_NEW_PASSPHRASE", "new vault passphrase")?;
            v.save(&new)?;
            say("vault re-encrypted with the new passphrase");
            Ok(())
        }
        VaultCommand::Export { recipient, output } => {
            let (v, _) = open(g, &home)?;
            let backup = v.export(&recipient)?;
            match output {
                Some(path) => {
                    keyfence_vault::disk::write_new_file(&path, &backup).map_err(|e| match e {
                        VaultError::Io { source, .. }
                            if source.kind() == std::io::ErrorKind::AlreadyExists =>
                        {
                            usage(format!(
                                "`{}` exists; choose another --output",
                                path.display()
                            ))
                        }
                        other => Failure::from(other),
                    })?;
                    eprintln!(
                        "wrote an encrypted backup of {} key(s) to {}",
                        v.entries().len(),
                        path.display()
                    );
                }
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&backup)
                        .and_then(|()| out.flush())
                        .map_err(|e| io_failure("write the backup to stdout", e))?;
                }
            }
            Ok(())
        }
        VaultCommand::Import { file } => {
            let Some(id_path) = &g.identity else {
                return Err(usage(
                    "give the backup's identity with --identity FILE (the age-keygen file whose recipient the backup was exported to)",
                ));
            };
            let backup_key = Key::identity_file(id_path)?;
            let backup = std::fs::read(&file)
                .map_err(|e| usage(format!("cannot read the backup `{}`: {e}", file.display())))?;
            let (mut v, key) = open_or_create(g, &home)?;
            let labels = v.import(&backup, &backup_key).map_err(|e| match e {
                VaultError::WrongIdentity => usage(
                    "the identity does not match the backup's recipient (nothing was changed)",
                ),
                VaultError::WrongKeyKind { .. } => {
                    usage("the backup is not encrypted to an age identity (nothing was changed)")
                }
                other => Failure::from(other),
            })?;
            v.save(&key)?;
            say(&format!(
                "imported {} key(s): {}",
                labels.len(),
                labels.join(", ")
            ));
            Ok(())
        }
    }
}

fn add(g: &Globals, home: &Home, args: AddArgs) -> Result<()> {
    // Read the credential before the passphrase: stdin may carry the credential JSON.
    let cred = read_credential(args.exchange)?;
    keyfence_vault::validate_credential(args.exchange, &cred)?;
    let (mut v, key) = open_or_create(g, home)?;
    let now = time::OffsetDateTime::now_utc();
    let entry = v.add(
        NewEntry {
            label: args.label,
            exchange: args.exchange,
            service: args.service,
            purpose: args.purpose,
            tier: args.tier,
            endpoint: args.endpoint,
        },
        cred,
        now,
    )?;
    let meta = entry.meta.clone();
    v.save(&key)?;
    say(&format!(
        "added `{}`: {} key {} for service `{}`, rotation due {}",
        meta.label,
        meta.exchange,
        meta.fingerprint,
        meta.service,
        date(meta.rotation_due())
    ));
    Ok(())
}

fn list(g: &Globals, home: &Home, format: Format) -> Result<()> {
    let metas: Vec<EntryMeta> = if Vault::probe(home)?.is_none() {
        Vec::new()
    } else {
        let (v, _) = open(g, home)?;
        v.entries().iter().map(|e| e.meta.clone()).collect()
    };
    match format {
        Format::Json => {
            let arr: Vec<_> = metas.iter().map(EntryMeta::to_json).collect();
            say(&serde_json::Value::Array(arr).to_string());
        }
        Format::Table => {
            if metas.is_empty() {
                say(
                    "no keys yet; add one with `keyfence vault add LABEL --exchange VENUE --service NAME`",
                );
                return Ok(());
            }
            let mut rows = vec![
                [
                    "LABEL",
                    "EXCHANGE",
                    "SERVICE",
                    "PURPOSE",
                    "FINGERPRINT",
                    "CREATED",
                    "ROTATED",
                    "ROTATION DUE",
                    "GRADE",
                ]
                .map(String::from),
            ];
            for m in &metas {
                rows.push([
                    m.label.clone(),
                    m.exchange.to_string(),
                    m.service.clone(),
                    m.purpose.as_str().to_owned(),
                    m.fingerprint.clone(),
                    date(m.created),
                    date(m.last_rotated),
                    date(m.rotation_due()),
                    m.last_grade.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
            let mut widths = [0usize; 9];
            for r in &rows {
                for (w, c) in widths.iter_mut().zip(r) {
                    *w = (*w).max(c.chars().count());
                }
            }
            for r in &rows {
                let line: Vec<String> = r
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                say(line.join("  ").trim_end());
            }
        }
    }
    Ok(())
}

fn show(g: &Globals, home: &Home, label: &str, format: Format) -> Result<()> {
    if Vault::probe(home)?.is_none() {
        return Err(VaultError::UnknownLabel(label.to_owned()).into());
    }
    let (v, _) = open(g, home)?;
    let m = &v
        .get(label)
        .ok_or_else(|| VaultError::UnknownLabel(label.to_owned()))?
        .meta;
    match format {
        Format::Json => say(&m.to_json().to_string()),
        Format::Table => {
            let rows = [
                ("label", m.label.clone()),
                ("exchange", m.exchange.to_string()),
                ("service", m.service.clone()),
                ("purpose", m.purpose.as_str().to_owned()),
                ("tier", m.tier.as_str().to_owned()),
                (
                    "endpoint",
                    m.endpoint
                        .clone()
                        .unwrap_or_else(|| "(exchange default)".into()),
                ),
                ("fingerprint", m.fingerprint.clone()),
                ("created", rfc3339(m.created)),
                ("last rotated", rfc3339(m.last_rotated)),
                ("rotation due", rfc3339(m.rotation_due())),
                (
                    "last grade",
                    m.last_grade
                        .clone()
                        .unwrap_or_else(|| "(not audited)".into()),
                ),
            ];
            for (k, val) in rows {
                say(&format!("{k:<13} {val}"));
            }
        }
    }
    Ok(())
}

fn date(t: time::OffsetDateTime) -> String {
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Unlocking

/// Open the existing vault with the key its header asks for.
pub(crate) fn open(g: &Globals, home: &Home) -> Result<(Vault, Key)> {
    let mode = Vault::probe(home)?.ok_or_else(|| VaultError::NoVault(home.dir().to_path_buf()))?;
    let key = match mode {
        Mode::Identity => match &g.identity {
            Some(p) => Key::identity_file(p)?,
            None => {
                return Err(VaultError::WrongKeyKind {
                    file: Mode::Identity,
                }
                .into());
            }
        },
        Mode::Passphrase => Key::Passphrase {
            passphrase: existing_passphrase(g)?,
            log_n: scrypt_log_n()?,
        },
    };
    let v = Vault::open(home, &key)?;
    Ok((v, key))
}

/// Open the vault, creating it (implied `init`) when there is none.
fn open_or_create(g: &Globals, home: &Home) -> Result<(Vault, Key)> {
    if Vault::probe(home)?.is_some() {
        return open(g, home);
    }
    let key = new_key(g)?;
    let v = Vault::create(home, &key)?;
    eprintln!(
        "created a new vault at {} ({})",
        home.vault_path().display(),
        mode_name(key.mode())
    );
    Ok((v, key))
}

/// The key for a new vault: a passphrase when one is given (file or environment), else the
/// identity file's recipients when `--identity` is given, else a prompted passphrase.
fn new_key(g: &Globals) -> Result<Key> {
    let have_passphrase =
        g.passphrase_file.is_some() || std::env::var_os("KEYFENCE_PASSPHRASE").is_some();
    if let (false, Some(p)) = (have_passphrase, &g.identity) {
        return Ok(Key::identity_file(p)?);
    }
    let pass = if have_passphrase {
        existing_passphrase(g)?
    } else {
        prompt_new("choose a vault passphrase")?
    };
    check_new_passphrase(&pass)?;
    Ok(Key::Passphrase {
        passphrase: pass,
        log_n: scrypt_log_n()?,
    })
}

fn new_passphrase(env: &str, what: &str) -> Result<Key> {
    let pass = match std::env::var(env) {
        Ok(p) => age::secrecy::SecretString::from(p),
        Err(_) => prompt_new(what)?,
    };
    check_new_passphrase(&pass)?;
    Ok(Key::Passphrase {
        passphrase: pass,
        log_n: scrypt_log_n()?,
    })
}

fn check_new_passphrase(p: &age::secrecy::SecretString) -> Result<()> {
    use age::secrecy::ExposeSecret as _;
    if p.expose_secret().chars().count() < 8 {
        return Err(usage(
            "the new vault passphrase is shorter than 8 characters; choose a longer one",
        ));
    }
    Ok(())
}

/// `--passphrase-file`, else `KEYFENCE_PASSPHRASE`, else a prompt when a person is at a terminal.
fn existing_passphrase(g: &Globals) -> Result<age::secrecy::SecretString> {
    if let Some(path) = &g.passphrase_file {
        return read_passphrase_file(path);
    }
    if let Ok(p) = std::env::var("KEYFENCE_PASSPHRASE") {
        return Ok(age::secrecy::SecretString::from(p));
    }
    if !std::io::stderr().is_terminal() {
        return Err(no_passphrase_source());
    }
    prompt("vault passphrase: ")
}

fn no_passphrase_source() -> Failure {
    usage(
        "no vault passphrase: set KEYFENCE_PASSPHRASE, pass --passphrase-file FILE, or run in a terminal to be prompted (an unattended server can use --identity FILE instead)",
    )
}

fn read_passphrase_file(path: &Path) -> Result<age::secrecy::SecretString> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        usage(format!(
            "cannot read the passphrase file `{}`: {e}",
            path.display()
        ))
    })?);
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(usage(format!(
            "the passphrase file `{}` is empty; its first line is the passphrase",
            path.display()
        )));
    }
    Ok(age::secrecy::SecretString::from(line.to_owned()))
}

fn prompt(label: &str) -> Result<age::secrecy::SecretString> {
    rpassword::prompt_password(label)
        .map(age::secrecy::SecretString::from)
        .map_err(|_| no_passphrase_source())
}

fn prompt_new(what: &str) -> Result<age::secrecy::SecretString> {
    use age::secrecy::ExposeSecret as _;
    if !std::io::stderr().is_terminal() {
        return Err(no_passphrase_source());
    }
    let a = prompt(&format!("{what}: "))?;
    let b = prompt("repeat it: ")?;
    if a.expose_secret() != b.expose_secret() {
        return Err(usage("the two passphrases differ; nothing was changed"));
    }
    Ok(a)
}

/// `KEYFENCE_SCRYPT_LOG_N`: lowers the scrypt work factor of new encryptions, for tests only.
fn scrypt_log_n() -> Result<Option<u8>> {
    match std::env::var("KEYFENCE_SCRYPT_LOG_N") {
        Err(_) => Ok(None),
        Ok(s) => match s.parse::<u8>() {
            Ok(n) if (1..=22).contains(&n) => Ok(Some(n)),
            _ => Err(usage(format!(
                "KEYFENCE_SCRYPT_LOG_N `{s}` is not a number from 1 to 22; unset it to use the calibrated default"
            ))),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Reading a credential

/// The stdin JSON form. Fields zeroized on drop.
#[derive(serde::Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct CredentialInput {
    api_key: String,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    passphrase: Option<String>,
    #[serde(default)]
    private_key: Option<String>,
}

fn read_credential(venue: Venue) -> Result<Credential> {
    if std::io::stdin().is_terminal() {
        return prompt_credential(venue);
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(16 * 1024));
    std::io::stdin()
        .lock()
        .take(1 << 20)
        .read_to_end(&mut buf)
        .map_err(|e| io_failure("read the credential from stdin", e))?;
    let input: CredentialInput = serde_json::from_slice(&buf).map_err(|e| {
        // serde_json's messages may quote input; say where, never what.
        let what = match e.classify() {
            serde_json::error::Category::Eof => "is incomplete",
            serde_json::error::Category::Syntax => "is not valid JSON",
            serde_json::error::Category::Data => {
                "has a missing, unknown or non-string field (expected api_key, and secret, passphrase or private_key as the exchange needs)"
            }
            serde_json::error::Category::Io => "could not be read",
        };
        usage(format!(
            "the credential on stdin {what} (line {}, column {}); give one JSON object like {{\"api_key\": \"...\", \"secret\": \"...\"}}",
            e.line(),
            e.column()
        ))
    })?;
    let s = |x: &Option<String>| x.as_ref().map(|v| SecretString::new(v.clone()));
    Ok(Credential {
        api_key: input.api_key.clone(),
        secret: s(&input.secret),
        passphrase: s(&input.passphrase),
        private_key: s(&input.private_key),
    })
}

fn prompt_credential(venue: Venue) -> Result<Credential> {
    let ask = |label: &str| -> Result<Option<SecretString>> {
        let v = rpassword::prompt_password(label)
            .map_err(|e| io_failure("read from the terminal", e))?;
        let v = Zeroizing::new(v);
        let t = v.trim();
        Ok((!t.is_empty()).then(|| SecretString::new(t.replace("\\n", "\n"))))
    };
    eprintln!(
        "enter the {venue} credential (input is not echoed; for a multi-line PEM paste it with \\n escapes or pipe JSON on stdin)"
    );
    let api_key = ask("api key: ")?
        .map(|s| s.expose().to_owned())
        .unwrap_or_default();
    let (secret, private_key) = match venue {
        Venue::Coinbase => (None, ask("private key (PEM): ")?),
        Venue::Binance => {
            let s = ask("secret (empty for an Ed25519 key): ")?;
            match s {
                Some(s) => (Some(s), None),
                None => (None, ask("Ed25519 private key (PEM): ")?),
            }
        }
        _ => (ask("secret: ")?, None),
    };
    let passphrase = if venue == Venue::Okx {
        ask("passphrase: ")?
    } else {
        None
    };
    Ok(Credential {
        api_key,
        secret,
        passphrase,
        private_key,
    })
}

/// Print a line; a closed stdout must not turn into a panic.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
