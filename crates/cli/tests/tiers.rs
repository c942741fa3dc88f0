//! `tier = auto` and `--rotation-days` end to end: accounts of different sizes on the
//! simulator get the three tiers, and the rotation findings their schedules imply; an account
//! that cannot be valued is treated as `high` and says why; the schedule is configurable.
#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed set-up should fail loudly

mod common;

use std::path::Path;

use common::{Sim, add, kf, run, start_sim, tempdir};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

const SECRET: &str = "tier-test-secret-0123456789";
const KRAKEN_SECRET: &str = "a3Jha2VuLWF1ZGl0LXNlY3JldC0wMTIzNDU2Nzg5";

/// The venue's creation time of a key `days` old (the audit counts age from it).
fn days_ago(days: i64) -> String {
    (OffsetDateTime::now_utc() - Duration::days(days))
        .format(&Rfc3339)
        .unwrap()
}

/// Five accounts:
/// - `big` (Binance): 5,000 USDT + 0.2 BTC at 60,000 = $17,000 -> high; read by `binance-big`
///   and also by `binance-blind`, which cannot read balances.
/// - `mid` (Bybit): 1,000 USDT + 0.05 BTC = $4,000 -> medium.
/// - `small` (Kraken): 100 USD + 0.001 XBT = $160 -> low.
/// - `odd` (Bybit): 10 USDT + 1,000 DOGE, and Bybit lists no DOGE market -> unknown.
/// - `edge` (Binance): exactly $10,000 in USDT -> medium ("over $10,000" is high).
fn sim(dir: &Path) -> Sim {
    let old70 = days_ago(70);
    let old100 = days_ago(100);
    start_sim(
        dir,
        &format!(
            r#"
[admin]
bind = "127.0.0.1:0"

[venues.binance]
bind = "127.0.0.1:0"
prices = {{ BTCUSDT = "60000" }}

[venues.bybit]
bind = "127.0.0.1:0"
prices = {{ BTCUSDT = "60000" }}

[venues.kraken]
bind = "127.0.0.1:0"
prices = {{ XBTUSD = "60000" }}

[[accounts]]
venue = "binance"
name = "big"
balances = {{ USDT = "5000", BTC = "0.2" }}
[[accounts]]
venue = "binance"
name = "edge"
balances = {{ USDT = "10000" }}
[[accounts]]
venue = "bybit"
name = "mid"
balances = {{ USDT = "1000", BTC = "0.05" }}
[[accounts]]
venue = "bybit"
name = "odd"
balances = {{ USDT = "10", DOGE = "1000" }}
[[accounts]]
venue = "kraken"
name = "small"
balances = {{ ZUSD = "100", XXBT = "0.001" }}

[[keys]]
venue = "binance"
account = "big"
api_key = "binance-big"
secret = "{SECRET}"
permissions = ["enableReading", "enableSpotAndMarginTrading"]
ip_allowlist = ["127.0.0.1"]
created = "{old70}"

[[keys]]
venue = "binance"
account = "big"
api_key = "binance-blind"
secret = "{SECRET}"
permissions = ["enableSpotAndMarginTrading"]
ip_allowlist = ["127.0.0.1"]
created = "{old70}"

[[keys]]
venue = "binance"
account = "edge"
api_key = "binance-edge"
secret = "{SECRET}"
permissions = ["enableReading", "enableSpotAndMarginTrading"]
ip_allowlist = ["127.0.0.1"]
created = "{old70}"

[[keys]]
venue = "bybit"
account = "mid"
api_key = "bybit-mid"
secret = "{SECRET}"
permissions = ["Spot.SpotTrade"]
ip_allowlist = ["127.0.0.1"]
created = "{old70}"

[[keys]]
venue = "bybit"
account = "odd"
api_key = "bybit-odd"
secret = "{SECRET}"
permissions = ["Spot.SpotTrade"]
ip_allowlist = ["127.0.0.1"]
created = "{old70}"

[[keys]]
venue = "kraken"
account = "small"
api_key = "kraken-small"
secret = "{KRAKEN_SECRET}"
permissions = ["query-funds", "modify-trades"]
ip_allowlist = ["127.0.0.1"]
created = "{old100}"
"#
        ),
    )
}

/// A vault with one key per simulator key above, every one `tier = auto` (the default) but
/// `binance-set`, which is the big account's key with its tier set to `low`.
fn vault(dir: &Path, sim: &Sim) -> std::path::PathBuf {
    let home = dir.join("home");
    let cred = |key: &str, secret: &str| format!(r#"{{"api_key": "{key}", "secret": "{secret}"}}"#);
    for (label, venue, key, secret, extra) in [
        ("binance-big", "binance", "binance-big", SECRET, &[][..]),
        ("binance-blind", "binance", "binance-blind", SECRET, &[]),
        ("binance-edge", "binance", "binance-edge", SECRET, &[]),
        ("bybit-mid", "bybit", "bybit-mid", SECRET, &[]),
        ("bybit-odd", "bybit", "bybit-odd", SECRET, &[]),
        ("kraken-small", "kraken", "kraken-small", KRAKEN_SECRET, &[]),
    ] {
        add(
            &home,
            label,
            venue,
            label,
            &sim.url(venue),
            &cred(key, secret),
            extra,
        );
    }
    home
}

fn audit_json(home: &Path, extra: &[&str]) -> Value {
    let o = run(
        kf(home)
            .args(["audit", "--all", "--format", "json", "--fail-on", "never"])
            .args(extra),
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn key<'a>(report: &'a Value, label: &str) -> &'a Value {
    report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == label)
        .unwrap_or_else(|| panic!("no {label} in {report}"))
}

/// The severity of `rotation-overdue` on the key, if it fired.
fn rotation(k: &Value) -> Option<String> {
    k["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "rotation-overdue")
        .map(|f| f["severity"].as_str().unwrap().to_owned())
}

#[test]
fn auto_tiers_follow_account_value_and_set_the_rotation_schedule() {
    let dir = tempdir("tiers");
    let sim = sim(&dir);
    let home = vault(&dir, &sim);
    let report = audit_json(&home, &[]);

    // (label, tier, value, rotation-overdue severity)
    let want: [(&str, &str, Option<&str>, Option<&str>); 6] = [
        // 70 days on a 30-day schedule: twice overdue.
        ("binance-big", "high", Some("17000.00"), Some("high")),
        // Exactly $10,000 is not over it: medium, and 70 days is over 60 but not twice.
        ("binance-edge", "medium", Some("10000.00"), Some("medium")),
        ("bybit-mid", "medium", Some("4000.00"), Some("medium")),
        // $160 -> low: 100 days is over 90, not twice.
        ("kraken-small", "low", Some("160.00"), Some("medium")),
        // Unknown value: the strictest schedule.
        ("binance-blind", "high", None, Some("high")),
        ("bybit-odd", "high", None, Some("high")),
    ];
    for (label, tier, value, overdue) in want {
        let k = key(&report, label);
        assert_eq!(k["status"], "ok", "{k}");
        assert_eq!(k["tier"], tier, "{label}: {k}");
        assert_eq!(k["tier_source"], "auto", "{label}");
        assert_eq!(k["account_value_usd"].as_str(), value, "{label}: {k}");
        assert_eq!(rotation(k).as_deref(), overdue, "{label}: {k}");
    }
    // Each reason says where the tier came from.
    let reason = |l: &str| key(&report, l)["tier_reason"].as_str().unwrap().to_owned();
    assert_eq!(reason("binance-big"), "auto: account worth $17,000.00");
    assert!(
        reason("binance-blind").contains("the key cannot read balances"),
        "{}",
        reason("binance-blind")
    );
    assert!(
        reason("bybit-odd").contains("no DOGE/USDT or DOGE/USD market"),
        "{}",
        reason("bybit-odd")
    );

    // The table shows the tier and value per key, and why for every auto key.
    let o = run(
        kf(&home).args(["audit", "--all", "--fail-on", "never"]),
        None,
    );
    let table = String::from_utf8(o.stdout).unwrap();
    assert!(table.lines().next().unwrap().contains("TIER"), "{table}");
    assert!(table.contains("high (auto: $17,000.00)"), "{table}");
    assert!(table.contains("low (auto: $160.00)"), "{table}");
    assert!(table.contains("high (auto: value unknown)"), "{table}");
    assert!(
        table.contains("  binance-blind: high, auto: account value unknown (the key cannot read balances), so the strictest"),
        "{table}"
    );
    drop(sim);
}

#[test]
fn a_set_tier_is_not_valued_and_the_schedule_is_configurable() {
    let dir = tempdir("schedule");
    let sim = sim(&dir);
    let home = dir.join("home");
    add(
        &home,
        "binance-set",
        "binance",
        "bot",
        &sim.url("binance"),
        &format!(r#"{{"api_key": "binance-big", "secret": "{SECRET}"}}"#),
        &["--tier", "low"],
    );
    add(
        &home,
        "bybit-mid",
        "bybit",
        "bot2",
        &sim.url("bybit"),
        &format!(r#"{{"api_key": "bybit-mid", "secret": "{SECRET}"}}"#),
        &[],
    );
    let report = audit_json(&home, &[]);
    let set = key(&report, "binance-set");
    assert_eq!(
        (&set["tier"], &set["tier_source"], &set["tier_reason"]),
        (&"low".into(), &"set".into(), &"set".into())
    );
    assert!(set["account_value_usd"].is_null(), "{set}");
    // 70 days on the default 90-day low schedule: not overdue.
    assert_eq!(rotation(set), None);
    assert_eq!(
        rotation(key(&report, "bybit-mid")).as_deref(),
        Some("medium")
    );

    // Shorter low, longer medium: the findings follow.
    let report = audit_json(
        &home,
        &["--rotation-days", "low=30", "--rotation-days", "medium=100"],
    );
    let set = key(&report, "binance-set");
    assert_eq!(rotation(set).as_deref(), Some("high"), "70 > 2 x 30: {set}");
    assert_eq!(rotation(key(&report, "bybit-mid")), None);
    let report = audit_json(&home, &["--rotation-days", "medium=40"]);
    assert_eq!(
        rotation(key(&report, "bybit-mid")).as_deref(),
        Some("medium")
    );
    // The last word for a tier wins, as with any repeated option.
    let report = audit_json(
        &home,
        &[
            "--rotation-days",
            "medium=10",
            "--rotation-days",
            "medium=65",
        ],
    );
    assert_eq!(
        rotation(key(&report, "bybit-mid")).as_deref(),
        Some("medium")
    );
    drop(sim);
}

#[test]
fn bad_rotation_days_are_usage_errors() {
    let dir = tempdir("baddays");
    let home = dir.join("home");
    for (arg, says) in [
        ("auto=10", "not a tier with a schedule"),
        ("urgent=10", "not a tier with a schedule"),
        ("high=0", "not a positive whole number"),
        ("high=-5", "not a positive whole number"),
        ("high=1.5", "not a positive whole number"),
        ("high=", "not a positive whole number"),
        ("high", "not TIER=DAYS"),
    ] {
        let o = run(
            kf(&home).args(["audit", "--all", &format!("--rotation-days={arg}")]),
            None,
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{arg}: {err}");
        assert!(err.contains(says), "{arg}: {err}");
    }
    // --help documents it.
    let o = run(kf(&home).args(["audit", "--help"]), None);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("--rotation-days <TIER=DAYS>"), "{help}");
    assert!(help.contains("--rotation-days high=14"), "{help}");
}
