//! The vault's promises: round trip, wrong passphrase, damaged files, failed writes that change
//! nothing, one real key per service, identity mode, export/import, no secret in Debug.

#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed set-up fails the test loudly

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keyfence_types::{Credential, SecretString, Venue};
use keyfence_vault::{Disk, Home, Key, Mode, NewEntry, Purpose, RealDisk, Tier, Vault, VaultError};
use time::OffsetDateTime;
use time::macros::datetime;

const PASS: &str = "correct horse battery staple";
const NOW: OffsetDateTime = datetime!(2026-11-01 12:00:00 UTC);
const BN_SECRET: &str = "binance-trader-secret-0123456789";
const OKX_SECRET: &str = "okx-trader-secret-0123456789";
const OKX_PASS: &str = "Passphrase1!";
const KRAKEN_SECRET: &str = "a3Jha2VuLXRyYWRlci1zZWNyZXQtMDEyMzQ1Njc4OQ==";

#[path = "../../../tests/support/tempdir.rs"]
mod support;
use support::TempDir;

fn tempdir() -> TempDir {
    TempDir::unmade(support::unique_path("keyfence-vault-test"))
}

/// A cheap scrypt work factor so the suite stays fast; real vaults use age's calibrated one.
fn pass(p: &str) -> Key {
    Key::Passphrase {
        passphrase: p.to_owned().into(),
        log_n: Some(10),
    }
}

fn cred(api_key: &str, secret: &str) -> Credential {
    Credential {
        api_key: api_key.into(),
        secret: Some(SecretString::new(secret.into())),
        private_key: None,
        passphrase: None,
    }
}

fn coinbase_pem() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/keys/coinbase-es256.pem");
    std::fs::read_to_string(p).unwrap()
}

fn new(label: &str, venue: Venue, service: &str) -> NewEntry {
    NewEntry {
        label: label.into(),
        exchange: venue,
        service: service.into(),
        purpose: Purpose::Spot,
        tier: Tier::Auto,
        endpoint: None,
    }
}

fn four_keys(v: &mut Vault) {
    v.add(
        new("bn", Venue::Binance, "freqtrade"),
        cred("bn-key", BN_SECRET),
        NOW,
    )
    .unwrap();
    let mut okx = cred("okx-key", OKX_SECRET);
    okx.passphrase = Some(SecretString::new(OKX_PASS.into()));
    let mut n = new("okx", Venue::Okx, "hummingbot");
    n.purpose = Purpose::Futures;
    n.tier = Tier::High;
    n.endpoint = Some("http://127.0.0.1:9103".into());
    v.add(n, okx, NOW).unwrap();
    v.add(
        new("kr", Venue::Kraken, "dca"),
        cred("kr-key", KRAKEN_SECRET),
        NOW,
    )
    .unwrap();
    let cb = Credential {
        api_key: "organizations/example/apiKeys/cb".into(),
        secret: None,
        private_key: Some(SecretString::new(coinbase_pem())),
        passphrase: None,
    };
    v.add(new("cb", Venue::Coinbase, "3commas"), cb, NOW)
        .unwrap();
}

#[test]
fn round_trip_keeps_metadata_and_secrets() {
    let home_dir = tempdir();
    let home = Home::new(&*home_dir);
    let mut v = Vault::create(&home, &pass(PASS)).unwrap();
    four_keys(&mut v);
    v.save(&pass(PASS)).unwrap();

    let v2 = Vault::open(&home, &pass(PASS)).unwrap();
    assert_eq!(v2.entries().len(), 4);
    for (a, b) in v.entries().iter().zip(v2.entries()) {
        assert_eq!(a.meta, b.meta);
        assert_eq!(a.credential().api_key, b.credential().api_key);
    }
    let okx = v2.get("okx").unwrap();
    assert_eq!(
        okx.credential().secret.as_ref().unwrap().expose(),
        OKX_SECRET
    );
    assert_eq!(
        okx.credential().passphrase.as_ref().unwrap().expose(),
        OKX_PASS
    );
    assert_eq!(okx.meta.endpoint.as_deref(), Some("http://127.0.0.1:9103"));
    assert_eq!(okx.meta.purpose, Purpose::Futures);
    // high tier: 30 days; auto: also 30 (counted as high) until the audit knows the value
    assert_eq!(okx.meta.rotation_due(), datetime!(2026-12-01 12:00:00 UTC));
    assert_eq!(
        v2.get("bn").unwrap().meta.rotation_due(),
        datetime!(2026-12-01 12:00:00 UTC)
    );
    let cb = v2.get("cb").unwrap();
    assert_eq!(
        cb.credential().private_key.as_ref().unwrap().expose(),
        coinbase_pem()
    );

    // On disk: armored age, no plaintext of any secret or key id.
    let file = std::fs::read_to_string(home.vault_path()).unwrap();
    assert!(file.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
    for s in [
        BN_SECRET,
        OKX_SECRET,
        OKX_PASS,
        KRAKEN_SECRET,
        "bn-key",
        "freqtrade",
        PASS,
    ] {
        assert!(!file.contains(s), "`{s}` in the vault file");
    }
    assert_eq!(Vault::probe(&home).unwrap(), Some(Mode::Passphrase));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(home.dir()), 0o700);
        assert_eq!(mode(&home.vault_path()), 0o600);
    }
}

#[test]
fn the_previous_version_is_kept() {
    let home_dir = tempdir();
    let home = Home::new(&*home_dir);
    let mut v = Vault::create(&home, &pass(PASS)).unwrap();
    v.add(
        new("bn", Venue::Binance, "freqtrade"),
        cred("bn-key", BN_SECRET),
        NOW,
    )
    .unwrap();
    v.save(&pass(PASS)).unwrap();
    v.remove("bn").unwrap();
    v.save(&pass(PASS)).unwrap();
    assert!(
        Vault::open(&home, &pass(PASS))
            .unwrap()
            .entries()
            .is_empty()
    );
    // vault.age.prev is the version before the last write: it still has the key
    let prev_dir = tempdir();
    let prev = Home::new(&*prev_dir);
    prev.init().unwrap();
    std::fs::copy(home.prev_path(), prev.vault_path()).unwrap();
    let old = Vault::open(&prev, &pass(PASS)).unwrap();
    assert!(old.get("bn").is_some());
}

#[test]
fn fingerprints_are_keyed_short_and_stable() {
    let home_dir = tempdir();
    let home = Home::new(&*home_dir);
    let mut v = Vault::create(&home, &pass(PASS)).unwrap();
    let fp = v
        .add(
            new("bn", Venue::Binance, "freqtrade"),
            cred("bn-key", BN_SECRET),
            NOW,
        )
        .unwrap()
        .meta
        .fingerprint
        .clone();
    assert!(fp.starts_with("kf:") && fp.len() == 19, "{fp}");
    assert!(fp[3..].chars().all(|c| c.is_ascii_hexdigit()));
    assert!(!fp.contains("bn-key"));
    v.save(&pass(PASS)).unwrap();
    let v2 = Vault::open(&home, &pass(PASS)).unwrap();
    assert_eq!(v2.fingerprint(Venue::Binance, "bn-key"), fp);
    assert_ne!(v2.fingerprint(Venue::Bybit, "bn-key"), fp);
    // another vault has another fingerprint key: fingerprints do not link vaults
    let other_dir = tempdir();
    let other = Vault::create(&Home::new(&*other_dir), &pass(PASS)).unwrap();
    assert_ne!(other.fingerprint(Venue::Binance, "bn-key"), fp);
}

#[test]
fn wrong_passphrase_is_refused_and_changes_nothing() {
    let home_dir = tempdir();
    let home = Home::new(&*home_dir);
    let mut v = Vault::create(&home, &pass(PASS)).unwrap();
    four_keys(&mut v);
    v.save(&pass(PASS)).unwrap();
    let before = std::fs::read(home.vault_path()).unwrap();
    let err = Vault::open(&home, &pass("not the passphrase")).unwrap_err();
    assert!(matches!(err, VaultError::WrongPassphrase), "{err}");
    assert!(err.to_string().contains("wrong passphrase"));
    assert!(err.is_usage());
    assert_eq!(std::fs::read(home.vault_path()).unwrap(), before);
}

fn damaged(home: &Home, bytes: &[u8]) -> VaultError {
    std::fs::write(home.vault_path(), bytes).unwrap();
    let err = Vault::open(home, &pass(PASS)).unwrap_err();
    assert_eq!(
        std::fs::read(home.vault_path()).unwrap(),
        bytes,
        "the file was changed"
    );
    err
}

#[test]
fn tampered_and_truncated_files_are_refused() {
    let home_dir = tempdir();
    let home = Home::new(&*home_dir);
    let mut v = Vault::create(&home, &pass(PASS)).unwrap();
    four_keys(&mut v);
    v.save(&pass(PASS)).unwrap();
    let good = std::fs::read(home.vault_path()).unwrap();

    // One changed character in the payload: refused as damaged.
    let flip = |at: usize| {
        let mut bad = good.clone();
        bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
        bad
    };
    let err = damaged(&home, &flip(good.len() * 3 / 4));
    assert!(matches!(err, VaultError::Damaged(_)), "{err}");
    // One changed character in the header (the scrypt stanza): refused. A changed salt or
    // wrapped key cannot be told from a wrong passphrase, which the message says.
    let err = damaged(&home, &flip(80));
    assert!(
        matches!(err, VaultError::Damaged(_) | VaultError::WrongPassphrase),
        "{err}"
    );
    assert!(err.to_string().contains("vault.age.prev"), "{err}");
    // Truncated at several points, including inside the header and just before the end line.
    for len in [0, 10, 60, good.len() / 2, good.len() - 40] {
        let err = damaged(&home, &good[..len]);
        assert!(matches!(err, VaultError::Damaged(_)), "len {len}: {err}");
        assert!(err.to_string().contains("nothing was changed"));
        assert!(!err.is_usage());
    }
    // The good file still opens.
    std::fs::write(home.vault_path(), &good).unwrap();
    assert_eq!(Vault::open(&home, &pass(PASS)).unwrap().entries().len(), 4);
}

/// Fails one step of a durable write the way a full disk or a broken rename would.
struct FailingDisk {
    step: &'static str,
}

impl Disk for FailingDisk {
    fn write_new(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        if self.step == "write" {
            // Half the bytes land in the temp file, then the disk is full.
            std::fs::write(path, &bytes[..bytes.len() / 2])?;
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "No space left on device",
            ));
        }
        RealDisk.write_new(path, bytes)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        if self.step == "rename" {
            return Err(io::Error::other("rename failed"));
        }
        RealDisk.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        RealDisk.sync_dir(dir)
    }
}

/// This proves the write path's handling of an I/O error from the file system (injected at the
/// `Disk` trait: a short write then ENOSPC, or a failed rename): the error is reported, the
/// vault and its previous version keep their bytes, no temp file is left. It does not prove the
/// behaviour of a real full disk or of a crash mid-write (rename atomicity is the OS's promise).
#[test]
fn a_failed_write_leaves_the_old_vault_intact() {
    for step in ["write", "rename"] {
        let dir = tempdir();
        let home = Home::new(&*dir);
        let mut v = Vault::create(&home, &pass(PASS)).unwrap();
        v.add(
            new("bn", Venue::Binance, "freqtrade"),
            cred("bn-key", BN_SECRET),
            NOW,
        )
        .unwrap();
        v.save(&pass(PASS)).unwrap();
        let vault_before = std::fs::read(home.vault_path()).unwrap();
        let prev_before = std::fs::read(home.prev_path()).unwrap();

        let failing = Home::new(&*dir).with_disk(Arc::new(FailingDisk { step }));
        let mut v = Vault::open(&failing, &pass(PASS)).unwrap();
        v.add(
            new("by", Venue::Bybit, "pybit"),
            cred("by-key", "bybit-secret"),
            NOW,
        )
        .unwrap();
        let err = v.save(&pass(PASS)).unwrap_err();
        assert!(matches!(err, VaultError::Io { .. }), "{step}: {err}");
        assert!(
            err.to_string().starts_with("cannot write the vault"),
            "{err}"
        );

        assert_eq!(
            std::fs::read(home.vault_path()).unwrap(),
            vault_before,
            "{step}"
        );
        assert_eq!(
            std::fs::read(home.prev_path()).unwrap(),
            prev_before,
            "{step}"
        );
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.contains(".tmp-")),
            "{step}: {names:?}"
        );
        let reopened = Vault::open(&home, &pass(PASS)).unwrap();
        assert!(reopened.get("bn").is_some() && reopened.get("by").is_none());
    }
}

#[test]
fn one_real_key_per_service() {
    let home_dir = tempdir();
    let home = Home::new(&*home_dir);
    let mut v = Vault::create(&home, &pass(PASS)).unwrap();
    v.add(
        new("bn", Venue::Binance, "freqtrade"),
        cred("bn-key", BN_SECRET),
        NOW,
    )
    .unwrap();
    // same venue + api_key under another label and service: refused, naming the holder
    let err = v
        .add(
            new("bn2", Venue::Binance, "3commas"),
            cred("bn-key", "other-secret"),
            NOW,
        )
        .unwrap_err();
    assert!(matches!(err, VaultError::DuplicateKey { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("`bn`")
            && msg.contains("freqtrade")
            && msg.contains("one real key per service"),
        "{msg}"
    );
    assert!(!msg.contains("bn-key") && !msg.contains(BN_SECRET));
    // the same label twice: refused
    let err = v
        .add(
            new("bn", Venue::Bybit, "x"),
            cred("other", "other-secret"),
            NOW,
        )
        .unwrap_err();
    assert!(matches!(err, VaultError::DuplicateLabel(_)));
    // the same api_key string on another venue is another key
    v.add(
        new("by", Venue::Bybit, "pybit"),
        cred("bn-key", "bybit-secret"),
        NOW,
    )
    .unwrap();
    assert_eq!(v.entries().len(), 2);
}

#[test]
fn malformed_credentials_name_the_field_never_the_value() {
    let home_dir = tempdir();
    let home = Home::new(&*home_dir);
    let mut v = Vault::create(&home, &pass(PASS)).unwrap();
    let bad_pem =
        "-----BEGIN EC PRIVATE KEY-----\nTOPSECRETnotbase64\n-----END EC PRIVATE KEY-----\n";
    let cases: Vec<(Venue, Credential, &str)> = vec![
        (Venue::Okx, cred("k", "TOPSECRET-okx"), "passphrase"),
        (Venue::Kraken, cred("k", "TOPSECRET-not-base64!"), "secret"),
        (Venue::Coinbase, cred("k", "TOPSECRET-hmac"), "private_key"),
        (
            Venue::Coinbase,
            Credential {
                api_key: "k".into(),
                secret: None,
                private_key: Some(SecretString::new(bad_pem.into())),
                passphrase: None,
            },
            "private_key",
        ),
        (Venue::Binance, cred("", "TOPSECRET"), "api_key"),
        (
            Venue::Bybit,
            Credential {
                passphrase: Some(SecretString::new("TOPSECRET-pass".into())),
                ..cred("k", "TOPSECRET")
            },
            "passphrase",
        ),
    ];
    for (venue, c, field) in cases {
        let err = v.add(new("x", venue, "s"), c, NOW).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, VaultError::BadCredential { .. }), "{msg}");
        assert!(
            msg.contains(field),
            "{venue}: `{msg}` does not name {field}"
        );
        assert!(
            !msg.contains("TOPSECRET"),
            "{venue}: `{msg}` echoes the secret"
        );
    }
    let err = v
        .add(
            new("bad label!", Venue::Binance, "s"),
            cred("k", BN_SECRET),
            NOW,
        )
        .unwrap_err();
    assert!(err.to_string().contains("label"));
    let mut n = new("x", Venue::Binance, "s");
    n.endpoint = Some("https://user:TOPSECRET@example.com".into());
    let err = v
        .add(n.clone(), cred("k", BN_SECRET), NOW)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("endpoint") && !err.contains("TOPSECRET"),
        "{err}"
    );
    n.endpoint = Some("ftp://example.com".into());
    assert!(
        v.add(n, cred("k", BN_SECRET), NOW)
            .unwrap_err()
            .to_string()
            .contains("endpoint")
    );
    assert!(v.entries().is_empty());
}

fn identity_file(dir: &Path, name: &str) -> (PathBuf, String) {
    use age::secrecy::ExposeSecret as _;
    let id = age::x25519::Identity::generate();
    let path = dir.join(name);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        &path,
        format!("# created: test\n{}\n", id.to_string().expose_secret()),
    )
    .unwrap();
    (path, id.to_public().to_string())
}

#[test]
fn identity_mode_for_unattended_servers() {
    let keys = tempdir();
    let (id_path, _) = identity_file(&keys, "server.key");
    let (other_path, _) = identity_file(&keys, "other.key");
    let home_dir = tempdir();
    let home = Home::new(&*home_dir);
    let key = Key::identity_file(&id_path).unwrap();
    let mut v = Vault::create(&home, &key).unwrap();
    four_keys(&mut v);
    v.save(&key).unwrap();
    assert_eq!(Vault::probe(&home).unwrap(), Some(Mode::Identity));

    let v2 = Vault::open(&home, &Key::identity_file(&id_path).unwrap()).unwrap();
    assert_eq!(v2.entries().len(), 4);
    let err = Vault::open(&home, &Key::identity_file(&other_path).unwrap()).unwrap_err();
    assert!(matches!(err, VaultError::WrongIdentity), "{err}");
    let err = Vault::open(&home, &pass(PASS)).unwrap_err();
    assert!(
        matches!(
            err,
            VaultError::WrongKeyKind {
                file: Mode::Identity
            }
        ),
        "{err}"
    );

    // a malformed identity file: the error names the line, not its content
    let bad = keys.join("bad.key");
    std::fs::write(&bad, "AGE-SECRET-KEY-1TOPSECRETGARBAGE\n").unwrap();
    let err = Key::identity_file(&bad).unwrap_err().to_string();
    assert!(
        err.contains("line 1") && !err.contains("TOPSECRET"),
        "{err}"
    );
}

#[test]
fn export_import_round_trip() {
    let keys = tempdir();
    let (id_path, recipient) = identity_file(&keys, "backup.key");
    let home_dir = tempdir();
    let home = Home::new(&*home_dir);
    let mut v = Vault::create(&home, &pass(PASS)).unwrap();
    four_keys(&mut v);
    v.save(&pass(PASS)).unwrap();
    let backup = v.export(&recipient).unwrap();
    let text = String::from_utf8(backup.clone()).unwrap();
    assert!(text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
    assert!(!text.contains(BN_SECRET));

    let home2_dir = tempdir();
    let home2 = Home::new(&*home2_dir);
    let mut v2 = Vault::create(&home2, &pass("another passphrase")).unwrap();
    let id = Key::identity_file(&id_path).unwrap();
    let mut labels = v2.import(&backup, &id).unwrap();
    labels.sort();
    assert_eq!(labels, ["bn", "cb", "kr", "okx"]);
    v2.save(&pass("another passphrase")).unwrap();
    let v3 = Vault::open(&home2, &pass("another passphrase")).unwrap();
    let kr = v3.get("kr").unwrap();
    assert_eq!(
        kr.credential().secret.as_ref().unwrap().expose(),
        KRAKEN_SECRET
    );
    assert_eq!(kr.meta.service, "dca");
    // fingerprints are recomputed under the new vault's key
    assert_eq!(kr.meta.fingerprint, v3.fingerprint(Venue::Kraken, "kr-key"));
    assert_ne!(kr.meta.fingerprint, v.get("kr").unwrap().meta.fingerprint);

    // importing again: all refused, nothing added
    let mut v4 = Vault::open(&home2, &pass("another passphrase")).unwrap();
    let err = v4.import(&backup, &id).unwrap_err();
    assert!(matches!(
        err,
        VaultError::DuplicateLabel(_) | VaultError::DuplicateKey { .. }
    ));
    assert_eq!(v4.entries().len(), 4);

    // the wrong identity, a bad recipient
    let (other, _) = identity_file(&keys, "other.key");
    let err = v4
        .import(&backup, &Key::identity_file(&other).unwrap())
        .unwrap_err();
    assert!(matches!(err, VaultError::WrongIdentity));
    assert!(matches!(
        v.export("age1nope").unwrap_err(),
        VaultError::BadRecipient(_)
    ));
    // an identity pasted where the recipient goes is refused without being echoed
    use age::secrecy::ExposeSecret as _;
    let secret = age::x25519::Identity::generate().to_string();
    let err = v.export(secret.expose_secret()).unwrap_err().to_string();
    assert!(
        !err.contains("AGE-SECRET-KEY") && err.contains("age1"),
        "{err}"
    );
}

#[test]
fn debug_output_has_no_secrets() {
    let home_dir = tempdir();
    let home = Home::new(&*home_dir);
    let mut v = Vault::create(&home, &pass(PASS)).unwrap();
    four_keys(&mut v);
    let dbg = format!("{v:?} {:?} {:?}", v.entries(), pass(PASS));
    for s in [
        BN_SECRET,
        OKX_SECRET,
        OKX_PASS,
        KRAKEN_SECRET,
        PASS,
        "BEGIN EC PRIVATE KEY",
    ] {
        assert!(!dbg.contains(s), "`{s}` in Debug output");
    }
}

#[test]
fn open_without_a_vault_says_what_to_do() {
    let home_dir = tempdir();
    let home = Home::new(&*home_dir);
    assert_eq!(Vault::probe(&home).unwrap(), None);
    let err = Vault::open(&home, &pass(PASS)).unwrap_err();
    assert!(err.to_string().contains("keyfence init"), "{err}");
    let v = Vault::open_or_create(&home, &pass(PASS)).unwrap();
    assert!(v.entries().is_empty());
    assert!(matches!(
        Vault::create(&home, &pass(PASS)).unwrap_err(),
        VaultError::VaultExists(_)
    ));
}
