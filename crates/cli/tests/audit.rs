//! `keyfence audit` end to end: keys in a vault, the simulator as every exchange.
#![allow(clippy::unwrap_used)] // test code: a failed set-up should fail the test loudly

mod common;

use std::path::Path;

use common::{Sim, add as add_with, kf, run, tempdir};
use serde_json::Value;

const PASS: &str = common::PASS;
const BINANCE_SECRET: &str = "binance-audit-secret-0123456789";
const OKX_SECRET: &str = "okx-audit-secret-0123456789";
const KRAKEN_SECRET: &str = "a3Jha2VuLWF1ZGl0LXNlY3JldC0wMTIzNDU2Nzg5";

fn start_sim(dir: &Path) -> Sim {
    common::start_sim(
        dir,
        &format!(
            r#"
[admin]
bind = "127.0.0.1:0"

[venues.binance]
bind = "127.0.0.1:0"
prices = {{ BTCUSDT = "60000" }}

[venues.okx]
bind = "127.0.0.1:0"
prices = {{ BTC-USDT = "60000" }}

[venues.kraken]
bind = "127.0.0.1:0"
prices = {{ XBTUSD = "60000" }}

[[accounts]]
venue = "binance"
name = "a"
[[accounts]]
venue = "okx"
name = "a"
[[accounts]]
venue = "kraken"
name = "a"

[[keys]]                      # withdrawals on, no IP restriction, old
venue = "binance"
account = "a"
api_key = "binance-risky"
secret = "{BINANCE_SECRET}"
permissions = ["enableReading", "enableSpotAndMarginTrading", "enableWithdrawals"]
created = "2024-01-01T00:00:00Z"

[[keys]]                      # read and trade only, IP-restricted to this host
venue = "okx"
account = "a"
api_key = "okx-tidy"
secret = "{OKX_SECRET}"
passphrase = "P1!"
permissions = ["read_only"]
ip_allowlist = ["127.0.0.1"]

[[keys]]
venue = "kraken"
account = "a"
api_key = "kraken-bot"
secret = "{KRAKEN_SECRET}"
permissions = ["query-funds", "query-open-trades", "modify-trades"]
"#
        ),
    )
}

fn add(home: &Path, label: &str, venue: &str, service: &str, endpoint: &str, cred: &str) {
    add_with(home, label, venue, service, endpoint, cred, &[]);
}

#[test]
fn audit_reports_findings_grades_and_exit_codes() {
    let dir = tempdir("main");
    let sim = start_sim(&dir);
    let home = dir.join("home");
    let url = |v: &str| sim.urls[v]["base_url"].as_str().unwrap().to_owned();
    add(
        &home,
        "binance-main",
        "binance",
        "freqtrade",
        &url("binance"),
        &format!(r#"{{"api_key": "binance-risky", "secret": "{BINANCE_SECRET}"}}"#),
    );
    add(
        &home,
        "okx-tracker",
        "okx",
        "portfolio",
        &url("okx"),
        &format!(r#"{{"api_key": "okx-tidy", "secret": "{OKX_SECRET}", "passphrase": "P1!"}}"#),
    );
    add(
        &home,
        "kraken-bot",
        "kraken",
        "hummingbot",
        &url("kraken"),
        &format!(r#"{{"api_key": "kraken-bot", "secret": "{KRAKEN_SECRET}"}}"#),
    );

    let o = run(kf(&home).args(["audit", "--all", "--format", "json"]), None);
    let text = String::from_utf8(o.stdout.clone()).unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{text}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["version"], 1);
    let keys = report["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    let by_label = |l: &str| keys.iter().find(|k| k["label"] == l).unwrap();
    let rules = |k: &Value| -> Vec<String> {
        k["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule"].as_str().unwrap().to_owned())
            .collect()
    };
    let bn = by_label("binance-main");
    assert_eq!(bn["status"], "ok");
    assert!(rules(bn).contains(&"withdraw-enabled".to_owned()), "{bn}");
    assert!(rules(bn).contains(&"no-ip-restriction".to_owned()), "{bn}");
    assert_eq!(bn["grade"], "F");
    let okx = by_label("okx-tracker");
    assert_eq!(okx["status"], "ok", "{okx}");
    assert!(
        !rules(okx).contains(&"withdraw-enabled".to_owned()),
        "{okx}"
    );
    assert!(
        !rules(okx).contains(&"no-ip-restriction".to_owned()),
        "{okx}"
    );
    assert_eq!(by_label("kraken-bot")["status"], "ok");

    // The grade is remembered in the vault.
    let o = run(
        kf(&home).args(["vault", "show", "binance-main", "--format", "json"]),
        None,
    );
    let shown: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(shown["last_grade"], "F");

    // --fail-on never passes; one label only; SARIF and markdown render.
    let o = run(
        kf(&home).args(["audit", "--all", "--fail-on", "never"]),
        None,
    );
    assert_eq!(o.status.code(), Some(0));
    let table = String::from_utf8(o.stdout).unwrap();
    assert!(
        table.contains("binance-main") && table.contains("withdraw-enabled"),
        "{table}"
    );
    let o = run(
        kf(&home).args([
            "audit",
            "okx-tracker",
            "--format",
            "sarif",
            "--fail-on",
            "critical",
        ]),
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sarif: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");

    // Usage errors exit 2 and name the problem.
    let o = run(kf(&home).args(["audit", "nope"]), None);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no key labelled `nope`"));

    // Secrets never reach the output.
    let o = run(
        kf(&home).args(["audit", "--all", "--format", "markdown"]),
        None,
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for secret in [BINANCE_SECRET, OKX_SECRET, KRAKEN_SECRET, PASS, "P1!"] {
        assert!(!all.contains(secret), "secret leaked");
    }
    drop(sim);
}

#[test]
fn an_unreachable_exchange_is_reported_per_key_and_exits_3() {
    let dir = tempdir("down");
    let sim = start_sim(&dir);
    let home = dir.join("home");
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    add(
        &home,
        "okx-tracker",
        "okx",
        "portfolio",
        sim.urls["okx"]["base_url"].as_str().unwrap(),
        &format!(r#"{{"api_key": "okx-tidy", "secret": "{OKX_SECRET}", "passphrase": "P1!"}}"#),
    );
    add(
        &home,
        "binance-gone",
        "binance",
        "freqtrade",
        &dead,
        &format!(r#"{{"api_key": "binance-risky", "secret": "{BINANCE_SECRET}"}}"#),
    );
    let o = run(
        kf(&home).args(["audit", "--all", "--format", "json", "--fail-on", "never"]),
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let keys = report["keys"].as_array().unwrap();
    let gone = keys.iter().find(|k| k["label"] == "binance-gone").unwrap();
    assert_eq!(gone["status"], "error");
    assert!(
        gone["error"].as_str().unwrap().contains("cannot connect"),
        "{gone}"
    );
    let ok = keys.iter().find(|k| k["label"] == "okx-tracker").unwrap();
    assert_eq!(ok["status"], "ok");
    drop(sim);
}
