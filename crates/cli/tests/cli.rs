//! The binary as a user runs it: --help, `sim` start and Ctrl-C, config errors, `demo`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::TempDir;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keyfence"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn help_lists_every_command_with_one_line() {
    let out = bin().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for (cmd, words) in [("demo", "tour"), ("sim", "simulator")] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(cmd))
            .unwrap_or_else(|| panic!("`{cmd}` missing from --help:\n{text}"));
        assert!(line.contains(words), "{line}");
    }
}

#[test]
fn a_bad_config_reports_every_problem_and_exits_2() {
    let dir =
        TempDir::at(std::env::temp_dir().join(format!("keyfence-cli-{}", std::process::id())));
    let cfg = dir.join("bad.toml");
    std::fs::write(
        &cfg,
        r#"
[venues.binance]
bind = "127.0.0.1:0"
prices = { BTCUSDT = "0" }

[[keys]]
venue = "binance"
account = "nobody"
api_key = "k"
secret = "super-secret-value"
ip_allowlist = ["999.1.1.1"]
"#,
    )
    .unwrap();
    let out = bin().args(["sim", "--config"]).arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("3 problem(s)"), "{err}");
    assert!(err.contains("price must be positive"), "{err}");
    assert!(err.contains("account `nobody` is not defined"), "{err}");
    assert!(err.contains("`999.1.1.1` is not an IP address"), "{err}");
    assert!(!err.contains("super-secret-value"), "secret leaked: {err}");

    let out = bin()
        .args(["sim", "--config", "/nonexistent/sim.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read `/nonexistent/sim.toml`"));
}

#[test]
fn sim_starts_the_example_config_and_stops_on_ctrl_c() {
    let mut child = bin()
        .args(["sim", "--config"])
        .arg(repo().join("examples/sim.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut lines = Vec::new();
    for line in stdout.by_ref() {
        let line = line.unwrap();
        let done = line.contains("Ctrl-C stops it");
        lines.push(line);
        if done {
            break;
        }
    }
    let text = lines.join("\n");
    for (venue, url) in [
        ("binance", "http://127.0.0.1:9101"),
        ("bybit", "http://127.0.0.1:9102"),
        ("okx", "http://127.0.0.1:9103"),
        ("coinbase", "https://127.0.0.1:9104"),
        ("kraken", "http://127.0.0.1:9105"),
        ("admin", "http://127.0.0.1:9100"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(venue) && l.ends_with(url)),
            "{venue} {url} missing:\n{text}"
        );
    }
    // Every venue accepts connections.
    for port in 9100..=9105 {
        std::net::TcpStream::connect_timeout(
            &format!("127.0.0.1:{port}").parse().unwrap(),
            Duration::from_secs(2),
        )
        .unwrap();
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = stdout.map(Result::unwrap).collect();
    assert_eq!(rest, ["stopping"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The ports are free again.
    std::net::TcpListener::bind("127.0.0.1:9101").unwrap();
}

#[test]
fn demo_tours_every_venue_and_stops_by_itself() {
    let out = bin().arg("demo").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for venue in ["binance", "bybit", "okx", "coinbase", "kraken"] {
        assert!(
            text.contains(&format!("== {venue} at http://127.0.0.1:")),
            "{text}"
        );
    }
    assert_eq!(text.matches("-> 200 accepted").count(), 5, "{text}");
    assert_eq!(text.matches("refused:").count(), 5, "{text}");
    assert_eq!(
        text.matches("simulator ledger         -> filled 0.01")
            .count(),
        5,
        "{text}"
    );
    assert!(text.contains("orders filled, risky keys flagged"), "{text}");
    // The audit part: ten keys, the risky ones graded F with the withdrawal finding shown.
    for venue in ["binance", "bybit", "okx", "coinbase", "kraken"] {
        assert!(text.contains(&format!("{venue}-old ")), "{text}");
    }
    assert!(text.contains("withdraw-enabled"), "{text}");
    assert!(text.contains("key-shared"), "{text}");
    // The gateway part: two orders allowed, every attack refused with its rule, the kill switch
    // refuses a new order but lets the cancel through, and the journal verifies.
    let row = |what: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(what))
            .unwrap_or_else(|| panic!("no `{what}` row in:\n{text}"))
            .to_owned()
    };
    assert!(row("limit buy 0.01 BTCUSDT at 59,900").contains("ALLOWED"));
    assert!(row("market buy 0.01 BTCUSDT (~600 USDT)").contains("ALLOWED"));
    for (what, rule) in [
        ("market buy 1 BTCUSDT", "max-order-notional"),
        ("limit buy 0.01 BTCUSDT at 30,000", "price-band"),
        ("market buy 100 DOGEUSDT", "symbol-not-allowed"),
        ("withdraw 5,000 USDT", "class-not-allowed"),
        ("the first request again, replayed", "replay"),
        ("market buy 0.01 BTCUSDT while halted", "kill-switch-halted"),
    ] {
        let r = row(what);
        assert!(r.contains("REFUSED") && r.contains(rule), "{r}");
    }
    assert!(row("cancel its open orders while halted").contains("ALLOWED"));
    assert!(
        text.contains("the exchange received 3 signed request(s)"),
        "{text}"
    );
    assert!(text.contains("keyfence journal verify  -> ok"), "{text}");
    assert!(text.contains("refused the rest before signing"), "{text}");
}

#[test]
fn rules_check_runs_every_example_and_rules_list_shows_every_rule() {
    let out = bin().args(["rules", "check"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.trim_end().ends_with("examples: ok"), "{text}");
    let out = bin().args(["rules", "list"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for id in [
        "withdraw-enabled",
        "transfer-enabled",
        "key-management-enabled",
        "no-ip-restriction",
        "ip-range-too-broad",
        "excess-permission",
        "rotation-overdue",
        "key-expiring",
        "key-shared",
        "master-account-key",
        "cannot-trade",
        "not-checked",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(id)),
            "{id} missing:\n{text}"
        );
    }
    assert!(text.contains("withdraw-enabled        critical"), "{text}");
}
