//! `keyfence init` and `keyfence vault …` as a user runs them, with a temporary --home.
//! The secret-leak test runs every vault command and greps all output and files for secrets.

#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed set-up fails the test loudly

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{TempDir, unique_path};

const PASS: &str = "Tr0ub4dor&3-vault-pass";
const NEW_PASS: &str = "n3w-vault-passphrase-after-passwd";
const BN_KEY: &str = "binance-trader-key";
const BN_SECRET: &str = "binance-trader-secret-0123456789";
const OKX_SECRET: &str = "okx-trader-secret-0123456789";
const OKX_PASSPHRASE: &str = "Passphrase1!";

fn tempdir(tag: &str) -> TempDir {
    TempDir::at(unique_path(&format!("keyfence-cli-vault-{tag}")))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn coinbase_pem() -> String {
    std::fs::read_to_string(repo().join("examples/keys/coinbase-es256.pem")).unwrap()
}

/// The binary with a clean environment: a temp --home, a cheap scrypt work factor for speed.
fn kf(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keyfence"));
    c.arg("--home").arg(home);
    for v in [
        "KEYFENCE_PASSPHRASE",
        "KEYFENCE_NEW_PASSPHRASE",
        "KEYFENCE_HOME",
        "KEYFENCE_LOG",
    ] {
        c.env_remove(v);
    }
    c.env("KEYFENCE_SCRYPT_LOG_N", "10");
    c.stdin(Stdio::null());
    c
}

fn with_pass(home: &Path) -> Command {
    let mut c = kf(home);
    c.env("KEYFENCE_PASSPHRASE", PASS);
    c
}

fn run(c: &mut Command, stdin: Option<&str>) -> Output {
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(s) = stdin {
        let mut w = child.stdin.take().unwrap();
        w.write_all(s.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed ({:?}): {}", o.status, text(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[track_caller]
fn code(o: &Output, want: i32) -> String {
    assert_eq!(o.status.code(), Some(want), "{}", text(o));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn add(home: &Path, label: &str, venue: &str, service: &str, json: &str) -> Output {
    run(
        with_pass(home).args([
            "vault",
            "add",
            label,
            "--exchange",
            venue,
            "--service",
            service,
        ]),
        Some(json),
    )
}

fn bn_json() -> String {
    format!(r#"{{"api_key": "{BN_KEY}", "secret": "{BN_SECRET}"}}"#)
}

fn identity_file(dir: &Path) -> (PathBuf, String) {
    use age::secrecy::ExposeSecret as _;
    let id = age::x25519::Identity::generate();
    let p = dir.join("age.key");
    std::fs::write(&p, format!("{}\n", id.to_string().expose_secret())).unwrap();
    (p, id.to_public().to_string())
}

#[test]
fn help_teaches_with_examples() {
    let o = run(kf(Path::new("/nonexistent")).args(["--help"]), None);
    let t = ok(&o);
    for cmd in ["init", "vault"] {
        assert!(t.lines().any(|l| l.trim_start().starts_with(cmd)), "{t}");
    }
    let t = ok(&run(kf(Path::new("/x")).args(["vault", "--help"]), None));
    for cmd in [
        "add", "list", "show", "remove", "passwd", "export", "import",
    ] {
        assert!(
            t.lines().any(|l| l.trim_start().starts_with(cmd)),
            "{cmd}: {t}"
        );
    }
    let t = ok(&run(
        kf(Path::new("/x")).args(["vault", "add", "--help"]),
        None,
    ));
    assert!(
        t.contains("Examples:") && t.contains("\"api_key\"") && t.contains("okx"),
        "{t}"
    );
}

/// The README quick start, as written there.
#[test]
fn quick_start_add_list_show_remove() {
    let tmp = tempdir("quick");
    let home = tmp.join("home");
    let o = add(&home, "binance-bot", "binance", "freqtrade", &bn_json());
    let out = ok(&o);
    assert!(
        out.contains("added `binance-bot`") && out.contains("kf:"),
        "{out}"
    );
    assert!(text(&o).contains("created a new vault"));

    let list = ok(&run(with_pass(&home).args(["vault", "list"]), None));
    assert!(list.starts_with("LABEL"), "{list}");
    assert!(list.contains("binance-bot") && list.contains("freqtrade") && list.contains("kf:"));

    let json = ok(&run(
        with_pass(&home).args(["vault", "list", "--format", "json"]),
        None,
    ));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let e = &v[0];
    assert_eq!(e["label"], "binance-bot");
    assert_eq!(e["exchange"], "binance");
    assert_eq!(e["purpose"], "spot");
    assert_eq!(e["tier"], "auto");
    for k in [
        "fingerprint",
        "created",
        "last_rotated",
        "rotation_due",
        "last_grade",
    ] {
        assert!(e.get(k).is_some(), "{k} missing: {e}");
    }

    let show = ok(&run(
        with_pass(&home).args(["vault", "show", "binance-bot", "--format", "json"]),
        None,
    ));
    let s: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert_eq!(s["fingerprint"], e["fingerprint"]);

    let o = run(with_pass(&home).args(["vault", "show", "nope"]), None);
    assert!(code(&o, 2).contains("no key labelled `nope`"));
    ok(&run(
        with_pass(&home).args(["vault", "remove", "binance-bot"]),
        None,
    ));
    let list = ok(&run(with_pass(&home).args(["vault", "list"]), None));
    assert!(list.contains("no keys yet"), "{list}");
}

#[test]
fn init_creates_a_private_home_and_is_idempotent() {
    let tmp = tempdir("init");
    let home = tmp.join("a/b/home");
    let out = ok(&run(with_pass(&home).arg("init"), None));
    assert!(out.contains("created"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let m = std::fs::metadata(&home).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, 0o700);
    }
    assert!(home.join("vault.age").exists());
    let out = ok(&run(with_pass(&home).arg("init"), None));
    assert!(out.contains("already initialised"), "{out}");
    // a directory others can read is named, with the fix
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
        let o = run(with_pass(&home).args(["vault", "list"]), None);
        ok(&o);
        assert!(text(&o).contains("chmod 700"), "{}", text(&o));
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    // KEYFENCE_HOME works as --home does
    let mut c = Command::new(env!("CARGO_BIN_EXE_keyfence"));
    c.env("KEYFENCE_HOME", &home)
        .env("KEYFENCE_PASSPHRASE", PASS)
        .args(["vault", "list", "--format", "json"]);
    assert_eq!(ok(&run(&mut c, None)).trim(), "[]");
}

#[test]
fn wrong_or_missing_passphrase_exit_2_and_change_nothing() {
    let tmp = tempdir("wrong");
    let home = tmp.join("home");
    ok(&add(&home, "bn", "binance", "freqtrade", &bn_json()));
    let before = std::fs::read(home.join("vault.age")).unwrap();

    let mut c = kf(&home);
    c.env("KEYFENCE_PASSPHRASE", "not-the-passphrase")
        .args(["vault", "remove", "bn"]);
    let err = code(&run(&mut c, None), 2);
    assert!(err.contains("wrong passphrase"), "{err}");

    let err = code(&run(kf(&home).args(["vault", "list"]), None), 2);
    assert!(
        err.contains("KEYFENCE_PASSPHRASE") && err.contains("--passphrase-file"),
        "{err}"
    );
    assert_eq!(std::fs::read(home.join("vault.age")).unwrap(), before);

    // --passphrase-file works
    let pass_dir = tempdir("wrong");
    let pf = pass_dir.join("pass.txt");
    std::fs::write(&pf, format!("{PASS}\n")).unwrap();
    let o = run(
        kf(&home)
            .arg("--passphrase-file")
            .arg(&pf)
            .args(["vault", "list"]),
        None,
    );
    assert!(ok(&o).contains("bn"));
}

#[test]
fn a_tampered_vault_exits_1_and_is_left_as_is() {
    let tmp = tempdir("tamper");
    let home = tmp.join("home");
    ok(&add(&home, "bn", "binance", "freqtrade", &bn_json()));
    let path = home.join("vault.age");
    let good = std::fs::read(&path).unwrap();
    let truncated = &good[..good.len() / 2];
    std::fs::write(&path, truncated).unwrap();
    let err = code(&run(with_pass(&home).args(["vault", "list"]), None), 1);
    assert!(
        err.contains("cannot be read") && err.contains("vault.age.prev"),
        "{err}"
    );
    let err = code(
        &add(
            &home,
            "by",
            "bybit",
            "pybit",
            r#"{"api_key":"k","secret":"s"}"#,
        ),
        1,
    );
    assert!(err.contains("cannot be read"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), truncated);
}

#[test]
fn duplicates_and_bad_input_exit_2_without_echoing_secrets() {
    let tmp = tempdir("dup");
    let home = tmp.join("home");
    ok(&add(&home, "bn", "binance", "freqtrade", &bn_json()));
    let err = code(&add(&home, "bn-2", "binance", "3commas", &bn_json()), 2);
    assert!(
        err.contains("already in the vault as `bn`") && err.contains("one real key per service"),
        "{err}"
    );
    let err = code(
        &add(
            &home,
            "bn",
            "bybit",
            "x",
            r#"{"api_key":"other","secret":"s"}"#,
        ),
        2,
    );
    assert!(err.contains("already exists"), "{err}");

    for (json, want) in [
        (
            r#"{"api_key": "k", "secret": "SECRET-LEAK-1""#,
            "incomplete",
        ),
        (
            r#"{"api_key": "k", "secret": SECRET-LEAK-2}"#,
            "not valid JSON",
        ),
        (r#"{"api_key": "k", "secrte": "SECRET-LEAK-3"}"#, "unknown"),
        (
            r#"{"api_key": "k", "secret": "SECRET-LEAK-4", "passphrase": "SECRET-LEAK-5"}"#,
            "passphrase",
        ),
    ] {
        let o = add(&home, "x", "binance", "svc", json);
        let err = code(&o, 2);
        assert!(err.contains(want), "{json}: {err}");
        assert!(!text(&o).contains("SECRET-LEAK"), "{json}: {}", text(&o));
    }
    let err = code(&add(&home, "x", "nasdaq", "svc", &bn_json()), 2);
    assert!(err.contains("unknown exchange"), "{err}");
    let o = run(
        with_pass(&home).args([
            "vault",
            "add",
            "x",
            "--exchange",
            "binance",
            "--service",
            "s",
            "--tier",
            "huge",
        ]),
        Some(&bn_json()),
    );
    assert!(code(&o, 2).contains("auto, high, medium, low"));
}

#[test]
fn identity_mode_needs_no_passphrase() {
    let dir = tempdir("identity");
    let (id, _) = identity_file(&dir);
    let home = dir.join("home");
    let mut c = kf(&home);
    c.arg("--identity").arg(&id).arg("init");
    assert!(ok(&run(&mut c, None)).contains("age identity"));
    let mut c = kf(&home);
    c.arg("--identity").arg(&id).args([
        "vault",
        "add",
        "bn",
        "--exchange",
        "binance",
        "--service",
        "freqtrade",
    ]);
    ok(&run(&mut c, Some(&bn_json())));
    let mut c = kf(&home);
    c.arg("--identity").arg(&id).args(["vault", "list"]);
    assert!(ok(&run(&mut c, None)).contains("bn"));
    // without the identity: a clear usage error
    let err = code(&run(with_pass(&home).args(["vault", "list"]), None), 2);
    assert!(err.contains("--identity FILE"), "{err}");
}

#[test]
fn passwd_changes_the_passphrase() {
    let tmp = tempdir("passwd");
    let home = tmp.join("home");
    ok(&add(&home, "bn", "binance", "freqtrade", &bn_json()));
    let mut c = with_pass(&home);
    c.env("KEYFENCE_NEW_PASSPHRASE", NEW_PASS)
        .args(["vault", "passwd"]);
    ok(&run(&mut c, None));
    code(&run(with_pass(&home).args(["vault", "list"]), None), 2);
    let mut c = kf(&home);
    c.env("KEYFENCE_PASSPHRASE", NEW_PASS)
        .args(["vault", "list"]);
    assert!(ok(&run(&mut c, None)).contains("bn"));
    // too short a new passphrase is refused
    let mut c = kf(&home);
    c.env("KEYFENCE_PASSPHRASE", NEW_PASS)
        .env("KEYFENCE_NEW_PASSPHRASE", "short")
        .args(["vault", "passwd"]);
    assert!(code(&run(&mut c, None), 2).contains("shorter than 8"));
}

#[test]
fn export_import_round_trip() {
    let dir = tempdir("export");
    let (id, recipient) = identity_file(&dir);
    let home = dir.join("home");
    ok(&add(&home, "bn", "binance", "freqtrade", &bn_json()));
    let backup = dir.join("backup.age");
    let mut c = with_pass(&home);
    c.args(["vault", "export", "--recipient", &recipient, "--output"])
        .arg(&backup);
    ok(&run(&mut c, None));
    // refuses to overwrite
    let mut c = with_pass(&home);
    c.args(["vault", "export", "--recipient", &recipient, "--output"])
        .arg(&backup);
    assert!(code(&run(&mut c, None), 2).contains("exists"));

    let home2 = dir.join("home2");
    let mut c = kf(&home2);
    c.env("KEYFENCE_PASSPHRASE", NEW_PASS)
        .arg("--identity")
        .arg(&id)
        .args(["vault", "import"])
        .arg(&backup);
    assert!(ok(&run(&mut c, None)).contains("imported 1 key(s): bn"));
    let mut c = kf(&home2);
    c.env("KEYFENCE_PASSPHRASE", NEW_PASS)
        .args(["vault", "show", "bn"]);
    assert!(ok(&run(&mut c, None)).contains("freqtrade"));
    // the new vault is a passphrase vault, not bound to the backup identity
    let mut c = kf(&home2);
    c.env("KEYFENCE_PASSPHRASE", NEW_PASS)
        .arg("--identity")
        .arg(&id)
        .args(["vault", "import"])
        .arg(&backup);
    assert!(code(&run(&mut c, None), 2).contains("already exists"));
}

/// Add keys through the CLI, run every vault command (successes and failures), and search
/// everything printed and every file written for the secrets, the passphrases and the private
/// key. Vault files and the backup are included: they must hold only ciphertext.
#[test]
fn no_secret_leaks_through_output_or_files() {
    let dir = tempdir("leak");
    let home = dir.join("home");
    let keys = tempdir("leak-keys");
    let (id, recipient) = identity_file(&keys);
    let pass_file = keys.join("pass.txt");
    std::fs::write(&pass_file, format!("{PASS}\n")).unwrap();
    let pem = coinbase_pem();
    let okx = format!(
        r#"{{"api_key": "okx-trader-key", "secret": "{OKX_SECRET}", "passphrase": "{OKX_PASSPHRASE}"}}"#
    );
    let cb = serde_json::json!({"api_key": "organizations/example/apiKeys/cb", "private_key": pem})
        .to_string();

    let mut outputs: Vec<Output> = Vec::new();
    let mut go = |mut c: Command, stdin: Option<&str>| outputs.push(run(&mut c, stdin));
    let pf = |c: &mut Command| {
        c.arg("--passphrase-file").arg(&pass_file);
    };
    let cmd = |args: &[&str]| {
        let mut c = kf(&home);
        pf(&mut c);
        c.args(args);
        c
    };

    go(cmd(&["init"]), None);
    go(
        cmd(&[
            "vault",
            "add",
            "bn",
            "--exchange",
            "binance",
            "--service",
            "freqtrade",
        ]),
        Some(&bn_json()),
    );
    go(
        cmd(&[
            "vault",
            "add",
            "okx",
            "--exchange",
            "okx",
            "--service",
            "hummingbot",
            "--endpoint",
            "http://127.0.0.1:9103",
        ]),
        Some(&okx),
    );
    go(
        cmd(&[
            "vault",
            "add",
            "cb",
            "--exchange",
            "coinbase",
            "--service",
            "ccxt",
            "--purpose",
            "read-only",
            "--tier",
            "high",
        ]),
        Some(&cb),
    );
    // failures: duplicate key, bad Kraken secret, wrong passphrase, unknown label
    go(
        cmd(&[
            "vault",
            "add",
            "bn2",
            "--exchange",
            "binance",
            "--service",
            "other",
        ]),
        Some(&bn_json()),
    );
    go(
        cmd(&[
            "vault",
            "add",
            "kr",
            "--exchange",
            "kraken",
            "--service",
            "x",
        ]),
        Some(&format!(r#"{{"api_key":"k","secret":"{BN_SECRET}!"}}"#)),
    );
    go(
        cmd(&[
            "vault",
            "add",
            "cb2",
            "--exchange",
            "coinbase",
            "--service",
            "y",
        ]),
        Some(
            &serde_json::json!({"api_key": "z", "private_key": pem.replace('M', "#")}).to_string(),
        ),
    );
    let mut c = kf(&home);
    c.env("KEYFENCE_PASSPHRASE", "wrong-passphrase-guess")
        .args(["vault", "list"]);
    go(c, None);
    go(cmd(&["vault", "show", "missing"]), None);
    for f in ["table", "json"] {
        go(cmd(&["vault", "list", "--format", f]), None);
        go(cmd(&["vault", "show", "okx", "--format", f]), None);
        go(cmd(&["vault", "show", "cb", "--format", f]), None);
    }
    go(cmd(&["vault", "export", "--recipient", &recipient]), None);
    let backup = dir.join("backup.age");
    go(
        cmd(&[
            "vault",
            "export",
            "--recipient",
            &recipient,
            "--output",
            backup.to_str().unwrap(),
        ]),
        None,
    );
    go(
        cmd(&["vault", "export", "--recipient", "age1notarecipient"]),
        None,
    );
    let mut c = cmd(&["vault", "passwd"]);
    c.env("KEYFENCE_NEW_PASSPHRASE", NEW_PASS);
    go(c, None);
    let newpass = |args: &[&str]| {
        let mut c = kf(&home);
        c.env("KEYFENCE_PASSPHRASE", NEW_PASS).args(args);
        c
    };
    go(newpass(&["vault", "remove", "bn"]), None);
    let mut c = newpass(&["vault", "import", backup.to_str().unwrap()]);
    c.arg("--identity").arg(&id);
    go(c, None); // refused: okx and cb are still there
    go(newpass(&["vault", "remove", "okx"]), None);
    go(newpass(&["vault", "remove", "cb"]), None);
    let mut c = newpass(&["vault", "import", backup.to_str().unwrap()]);
    c.arg("--identity").arg(&id);
    go(c, None);
    go(newpass(&["vault", "list"]), None);

    // every command ran and succeeded or failed as intended
    let codes: Vec<i32> = outputs.iter().map(|o| o.status.code().unwrap()).collect();
    let want = [
        0, 0, 0, 0, // init, add bn, okx, cb
        2, 2, 2, 2,
        2, // duplicate key, bad Kraken secret, bad PEM, wrong passphrase, unknown label
        0, 0, 0, 0, 0, 0, // list, show okx, show cb; table and json
        0, 0, 2, // export to stdout, to a file, to a bad recipient
        0, 0, 2, 0, 0, 0,
        0, // passwd, remove bn, import refused, remove okx, cb, import, list
    ];
    assert_eq!(codes, want);
    // everything succeeded or failed as intended: the last list shows the imported keys
    let last = text(outputs.last().unwrap());
    assert!(
        last.contains("bn") && last.contains("okx") && last.contains("cb"),
        "{last}"
    );

    let mut needles: Vec<String> = vec![
        BN_SECRET.into(),
        OKX_SECRET.into(),
        OKX_PASSPHRASE.into(),
        PASS.into(),
        NEW_PASS.into(),
        "wrong-passphrase-guess".into(),
    ];
    // every line of the private key's body, and the key itself
    needles.extend(
        pem.lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 16)
            .map(String::from),
    );
    let mut haystacks: Vec<(String, String)> = outputs
        .iter()
        .enumerate()
        .map(|(i, o)| (format!("command #{i}"), text(o)))
        .collect();
    let mut files = vec![backup.clone()];
    for d in [home.as_path(), &*dir] {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                files.push(p);
            }
        }
    }
    assert!(files.iter().any(|p| p.ends_with("vault.age.prev")));
    for p in files {
        let bytes = std::fs::read(&p).unwrap();
        haystacks.push((
            p.display().to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    for (name, hay) in &haystacks {
        for n in &needles {
            assert!(!hay.contains(n.as_str()), "a secret appears in {name}");
        }
    }
}

/// The README's vault quick start, run by `sh` exactly as written there.
#[test]
fn readme_quick_start_runs_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let rest = &readme[readme.find("<!-- vault-quickstart -->").unwrap()..];
    let start = rest.find("```sh\n").unwrap() + "```sh\n".len();
    let script = &rest[start..start + rest[start..].find("```").unwrap()];
    let dir = tempdir("readme");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_keyfence")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new("sh");
    c.arg("-ec")
        .arg(script)
        .current_dir(&dir)
        .env("PATH", path)
        .env("KEYFENCE_HOME", dir.join("home"))
        .env("KEYFENCE_SCRYPT_LOG_N", "10")
        .env_remove("KEYFENCE_PASSPHRASE");
    let out = ok(&run(&mut c, None));
    let list = out
        .lines()
        .skip_while(|l| !l.starts_with("LABEL"))
        .collect::<Vec<_>>();
    assert_eq!(list.len(), 2, "{out}");
    assert!(
        list[1].starts_with("binance-bot  binance   freqtrade  spot     kf:"),
        "{out}"
    );
    assert!(!dir.join("binance-key.json").exists());
}
