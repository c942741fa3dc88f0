//! The gateway's commands as a user runs them: `config check`, `bot add/list/revoke/rotate`,
//! `kill`/`resume`, `journal tail/verify/export`, with a temporary --home. Requests through a
//! running gateway are tested in crates/gateway/tests and tests/clients/test_gateway_*.py.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{TempDir, unique_path};

const PASS: &str = "gateway-cli-test-passphrase";
const REAL_SECRET: &str = "binance-trader-secret-0123456789";

fn tempdir(tag: &str) -> TempDir {
    TempDir::at(unique_path(&format!("keyfence-cli-gw-{tag}")))
}

fn kf(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keyfence"));
    c.arg("--home").arg(home);
    for v in ["KEYFENCE_PASSPHRASE", "KEYFENCE_HOME", "KEYFENCE_LOG"] {
        c.env_remove(v);
    }
    c.env("KEYFENCE_SCRYPT_LOG_N", "10")
        .env("KEYFENCE_PASSPHRASE", PASS);
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
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn all(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}", all(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

const CONFIG: &str = r#"
[listeners.binance]
bind = "127.0.0.1:0"
upstream = "http://127.0.0.1:9"

[policies.spot]
symbols = ["BTCUSDT"]
max_order_notional = "1000"
"#;

/// The temp dir (removed when dropped), the home, the gateway config.
fn setup(tag: &str) -> (TempDir, PathBuf, PathBuf) {
    let dir = tempdir(tag);
    let home = dir.join("home");
    let cfg = dir.join("gateway.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let cred = format!(r#"{{"api_key": "binance-trader-key", "secret": "{REAL_SECRET}"}}"#);
    ok(&run(
        kf(&home).args([
            "vault",
            "add",
            "bn-main",
            "--exchange",
            "binance",
            "--service",
            "grid",
        ]),
        Some(&cred),
    ));
    (dir, home, cfg)
}

#[test]
fn config_check_reports_every_problem_at_once() {
    let dir = tempdir("check");
    let good = dir.join("good.toml");
    std::fs::write(&good, CONFIG).unwrap();
    let o = run(kf(&dir).args(["config", "check"]).arg(&good), None);
    assert!(ok(&o).contains("ok (1 listener(s): binance; 1 policy: spot)"));

    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[listeners.binanse]\nbind = \"x\"\n[listeners.okx]\nbind = \"nowhere\"\n[policies.p]\nmax_order_notional = \"-1\"\n",
    )
    .unwrap();
    let o = run(kf(&dir).args(["config", "check"]).arg(&bad), None);
    assert_eq!(code(&o), 2, "{}", all(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    for want in [
        "4 problem(s)",
        "binanse",
        "bind `nowhere`",
        "[policies.p]",
        "no listeners",
    ] {
        assert!(err.contains(want), "missing `{want}`: {err}");
    }
    let o = run(
        kf(&dir)
            .args(["config", "check"])
            .arg(dir.join("missing.toml")),
        None,
    );
    assert_eq!(code(&o), 2);
}

#[test]
fn bot_lifecycle_and_journal_without_leaking_secrets() {
    let (_dir, home, cfg) = setup("life");
    let cfg_s = cfg.to_str().unwrap();
    let mut printed = String::new();

    // Refusals that change nothing: unknown key, unknown policy, bad allowlist, bad name.
    for (args, want) in [
        (
            vec!["bot", "add", "b1", "--key", "nope", "--policy", "spot"],
            "no vault key labelled `nope`",
        ),
        (
            vec![
                "bot", "add", "b1", "--key", "bn-main", "--policy", "wide", "--config", cfg_s,
            ],
            "no policy `wide`",
        ),
        (
            vec![
                "bot",
                "add",
                "b1",
                "--key",
                "bn-main",
                "--policy",
                "spot",
                "--allow-ip",
                "10.0.0.0/99",
            ],
            "not an IP address or CIDR",
        ),
        (
            vec!["bot", "add", "-b", "--key", "bn-main", "--policy", "spot"],
            "",
        ),
    ] {
        let o = run(kf(&home).args(&args), None);
        assert_eq!(code(&o), 2, "{args:?}: {}", all(&o));
        assert!(all(&o).contains(want), "{args:?}: {}", all(&o));
        printed.push_str(&all(&o));
    }

    let o = run(
        kf(&home).args([
            "bot",
            "add",
            "grid",
            "--key",
            "bn-main",
            "--policy",
            "spot",
            "--allow-ip",
            "127.0.0.1",
            "--config",
            cfg_s,
            "--format",
            "json",
        ]),
        None,
    );
    let issued: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    let bot_key = issued["api_key"].as_str().unwrap().to_owned();
    let bot_secret = issued["secret"].as_str().unwrap().to_owned();
    assert_eq!(bot_key.len(), 64);
    assert_eq!(bot_secret.len(), 64);
    assert!(issued.get("passphrase").is_none() && issued.get("private_key").is_none());
    assert!(String::from_utf8_lossy(&o.stderr).contains("created the gateway's secrets"));

    let o = run(
        kf(&home).args(["bot", "add", "grid", "--key", "bn-main", "--policy", "spot"]),
        None,
    );
    assert_eq!(code(&o), 2, "a duplicate bot name: {}", all(&o));
    printed.push_str(&all(&o));

    let list = ok(&run(
        kf(&home).args(["bot", "list", "--format", "json"]),
        None,
    ));
    printed.push_str(&list);
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(v[0]["name"], "grid");
    assert_eq!(v[0]["key"], "bn-main");
    assert_eq!(v[0]["allow_ips"][0], "127.0.0.1");
    assert_eq!(v[0]["credentials"][0]["live"], true);

    // Rotation: a second credential; both live during the overlap.
    let o = run(
        kf(&home).args([
            "bot",
            "rotate",
            "grid",
            "--overlap",
            "1h",
            "--format",
            "json",
        ]),
        None,
    );
    let rotated: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_ne!(rotated["api_key"], issued["api_key"]);
    let list = ok(&run(
        kf(&home).args(["bot", "list", "--format", "json"]),
        None,
    ));
    printed.push_str(&list);
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    let creds = v[0]["credentials"].as_array().unwrap();
    assert_eq!(creds.len(), 2);
    assert!(creds.iter().all(|c| c["live"] == true), "{list}");
    assert!(creds[0]["valid_until_ms"].is_i64(), "{list}");

    // Kill switch and revocation, journaled with who and why.
    printed.push_str(&ok(&run(
        kf(&home).args(["kill", "--reason", "drill"]),
        None,
    )));
    printed.push_str(&ok(&run(kf(&home).args(["resume"]), None)));
    let o = run(kf(&home).args(["kill", "--cancel-open"]), None);
    assert_eq!(code(&o), 2, "--cancel-open needs --config: {}", all(&o));
    printed.push_str(&ok(&run(kf(&home).args(["resume"]), None)));
    printed.push_str(&ok(&run(kf(&home).args(["bot", "revoke", "grid"]), None)));
    let o = run(kf(&home).args(["bot", "revoke", "nobody"]), None);
    assert_ne!(code(&o), 0);
    printed.push_str(&all(&o));
    let list = ok(&run(kf(&home).args(["bot", "list"]), None));
    assert!(list.contains("revoked"), "{list}");
    printed.push_str(&list);

    let tail = ok(&run(
        kf(&home).args(["journal", "tail", "-n", "50", "--format", "json"]),
        None,
    ));
    printed.push_str(&tail);
    let entries: serde_json::Value = serde_json::from_str(&tail).unwrap();
    let decisions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["decision"].as_str().unwrap())
        .collect();
    for want in ["active", "add-bot", "rotate", "halted", "revoke"] {
        assert!(decisions.contains(&want), "{want} not in {decisions:?}");
    }
    let halted = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["decision"] == "halted")
        .unwrap();
    assert!(
        halted["message"].as_str().unwrap().contains("drill"),
        "{halted}"
    );

    let verify = ok(&run(kf(&home).args(["journal", "verify"]), None));
    assert!(verify.starts_with("journal ok:"), "{verify}");
    let export = ok(&run(
        kf(&home).args(["journal", "export", "--format", "jsonl"]),
        None,
    ));
    printed.push_str(&export);
    assert_eq!(export.lines().count(), entries.as_array().unwrap().len());
    for line in export.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(e["hash"].as_str().unwrap().len() == 64);
    }

    // Nothing printed after issuance, and nothing on disk outside the vault, holds a secret.
    for secret in [
        &bot_secret,
        rotated["secret"].as_str().unwrap(),
        REAL_SECRET,
    ] {
        assert!(!printed.contains(secret), "a secret was printed");
        for entry in std::fs::read_dir(&home).unwrap() {
            let p = entry.unwrap().path();
            if p.is_file() && !p.to_string_lossy().contains("vault.age") {
                let bytes = std::fs::read(&p).unwrap();
                let hay = String::from_utf8_lossy(&bytes);
                assert!(!hay.contains(secret), "{} holds a secret", p.display());
            }
        }
    }
}

#[test]
fn serve_refuses_a_bad_config_and_a_missing_vault() {
    let dir = tempdir("serve");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[listeners.nowhere]\nbind = \"1\"\n").unwrap();
    let o = run(
        kf(&dir.join("home")).args(["serve", "--config"]).arg(&bad),
        None,
    );
    assert_eq!(code(&o), 2, "{}", all(&o));
    let good = dir.join("good.toml");
    std::fs::write(&good, CONFIG).unwrap();
    let o = run(
        kf(&dir.join("home")).args(["serve", "--config"]).arg(&good),
        None,
    );
    assert_eq!(code(&o), 2, "{}", all(&o));
    assert!(all(&o).contains("no vault"), "{}", all(&o));
}
