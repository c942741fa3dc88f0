//! Grades, exit codes and the report formats: JSON schema (docs/audit-json.md), SARIF (checked
//! in as `tests/data/audit.sarif`, which `tests/clients/test_audit_sarif.py` validates against
//! the official SARIF 2.1.0 schema), Markdown and the table.
//!
//! `KEYFENCE_BLESS=1 cargo test -p keyfence-audit --test render` rewrites the golden files.

#![allow(clippy::unwrap_used, clippy::panic)] // test code: a broken fixture should fail loudly

use std::collections::BTreeSet;
use std::path::PathBuf;

use keyfence_audit::render;
use keyfence_audit::{
    AuditConfig, AuditInput, FailOn, Finding, Grade, KeyContext, KeyReport, Purpose, RuleSet,
    Severity, Tier, audit, exit_code,
};
use keyfence_types::{KeyProfile, Permission, Venue};
use serde_json::Value;
use time::macros::datetime;

fn profile(venue: Venue, perms: &[Permission], ip: Option<bool>, ips: &[&str]) -> KeyProfile {
    let mut p = KeyProfile::empty(venue);
    p.permissions = perms.iter().copied().collect();
    p.raw_permissions = perms
        .iter()
        .map(|x| keyfence_audit::permission_name(*x).to_owned())
        .collect();
    p.ip_restricted = ip;
    p.ip_allowlist = ips.iter().map(|s| (*s).to_owned()).collect();
    p.created = Some(datetime!(2026-05-20 00:00 UTC));
    p.read_only = perms.iter().all(|x| *x == Permission::Read);
    p
}

/// One batch with every kind of key: clean, critical, shared, unknown facts, unreachable.
fn sample() -> Vec<KeyReport> {
    use Permission::*;
    let ctx = |label: &str, venue: Venue, service: &str, purpose: Purpose| {
        let mut c = KeyContext::new(label, venue, service, purpose);
        c.tier = Tier::Low;
        c
    };
    let mut clean = profile(
        Venue::Bybit,
        &[Read, SpotTrade],
        Some(true),
        &["203.0.113.7"],
    );
    clean.master_account = Some(false);
    let mut shared_a = ctx("okx-grid", Venue::Okx, "grid-bot", Purpose::ReadOnly);
    shared_a.fingerprint = Some("kf1:abc".into());
    let mut shared_b = ctx("okx-tax", Venue::Okx, "tax-tool", Purpose::ReadOnly);
    shared_b.fingerprint = Some("kf1:abc".into());
    let mut okx = profile(Venue::Okx, &[Read], Some(true), &["203.0.113.0/24"]);
    okx.created = None;
    okx.master_account = Some(false);
    let mut coinbase = profile(Venue::Coinbase, &[Read, SpotTrade], None, &[]);
    coinbase.created = None;
    // Coinbase gives no creation time: keyfence's own rotation date stands in (100 days).
    let mut coinbase_ctx = ctx(
        "coinbase | dca",
        Venue::Coinbase,
        "dca-script",
        Purpose::Spot,
    );
    coinbase_ctx.last_rotated = Some(datetime!(2026-02-21 00:00 UTC));
    // `tier = auto`: one account valued, one whose value could not be read.
    let mut bybit_ctx = ctx("bybit-spot", Venue::Bybit, "freqtrade", Purpose::Spot);
    bybit_ctx.tier = Tier::Auto;
    bybit_ctx.account_value_usd = Some("5000".parse().unwrap());
    let mut binance_ctx = ctx("binance-main", Venue::Binance, "hummingbot", Purpose::Spot);
    binance_ctx.tier = Tier::Auto;
    binance_ctx.account_value_note = Some("the key cannot read balances".into());
    let inputs = vec![
        AuditInput {
            context: bybit_ctx,
            outcome: Ok(clean),
        },
        AuditInput {
            context: binance_ctx,
            outcome: Ok(profile(
                Venue::Binance,
                &[Read, SpotTrade, FuturesTrade, Withdraw],
                Some(false),
                &[],
            )),
        },
        AuditInput {
            context: shared_a,
            outcome: Ok(okx.clone()),
        },
        AuditInput {
            context: shared_b,
            outcome: Ok(okx),
        },
        AuditInput {
            context: coinbase_ctx,
            outcome: Ok(coinbase),
        },
        AuditInput {
            context: ctx("kraken-old", Venue::Kraken, "passivbot", Purpose::Spot),
            outcome: Err(
                "the exchange answered with error EAPI:Invalid key: EAPI:Invalid key".into(),
            ),
        },
    ];
    audit(
        &inputs,
        &RuleSet::bundled().unwrap(),
        &AuditConfig::default(),
        datetime!(2026-06-01 00:00 UTC),
    )
}

fn finding(severity: Severity) -> Finding {
    Finding {
        rule: "x".into(),
        severity,
        title: String::new(),
        why: String::new(),
        remedy: String::new(),
        references: Vec::new(),
        detail: String::new(),
    }
}

#[test]
fn grades() {
    use Severity::*;
    let cases: &[(&[Severity], Grade)] = &[
        (&[], Grade::A),
        (&[Info, Info], Grade::A),
        (&[Low, Info], Grade::B),
        (&[Low, Medium, Medium], Grade::C),
        (&[High, Medium, Low], Grade::D),
        (&[High, High], Grade::F),
        (&[Critical], Grade::F),
        (&[Critical, Info], Grade::F),
    ];
    for (sevs, want) in cases {
        let fs: Vec<Finding> = sevs.iter().map(|s| finding(*s)).collect();
        assert_eq!(Grade::of(&fs), *want, "{sevs:?}");
    }
    let got: Vec<Option<Grade>> = sample().iter().map(KeyReport::grade).collect();
    assert_eq!(
        got,
        [
            Some(Grade::A),
            Some(Grade::F),
            Some(Grade::D),
            Some(Grade::D),
            Some(Grade::C),
            None
        ]
    );
}

#[test]
fn exit_codes() {
    let reports = sample();
    let ok_only: Vec<KeyReport> = reports
        .iter()
        .filter(|r| r.outcome.is_ok())
        .cloned()
        .collect();
    let clean = &ok_only[..1];
    let critical = &ok_only[1..2];
    let coinbase: Vec<KeyReport> = ok_only
        .iter()
        .filter(|r| r.context.exchange == Venue::Coinbase)
        .cloned()
        .collect();
    let at = |s| FailOn::At(s);
    // 0: nothing at or above the threshold.
    assert_eq!(exit_code(clean, FailOn::default()), 0);
    assert_eq!(
        exit_code(clean, at(Severity::Info)),
        0,
        "a clean key has no findings at all"
    );
    assert_eq!(exit_code(&coinbase, FailOn::default()), 0, "medium < high");
    // 1: a finding at or above it.
    assert_eq!(exit_code(&coinbase, at(Severity::Medium)), 1);
    assert_eq!(exit_code(critical, FailOn::default()), 1);
    assert_eq!(exit_code(critical, at(Severity::Critical)), 1);
    assert_eq!(exit_code(critical, FailOn::Never), 0);
    assert_eq!(exit_code(&[], FailOn::default()), 0);
    // 3: a key that could not be audited wins over findings and over `never`.
    assert_eq!(exit_code(&reports, FailOn::default()), 3);
    assert_eq!(exit_code(&reports, FailOn::Never), 3);
    // --fail-on parsing.
    assert_eq!("never".parse::<FailOn>(), Ok(FailOn::Never));
    assert_eq!("medium".parse::<FailOn>(), Ok(at(Severity::Medium)));
    assert!("severe".parse::<FailOn>().is_err());
    assert_eq!(FailOn::default(), at(Severity::High));
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

#[test]
fn json_schema_v1() {
    let text = render::json(&sample());
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(keys(&v), set(&["version", "keys"]));
    assert_eq!(v["version"], 1);
    let ks = v["keys"].as_array().unwrap();
    assert_eq!(ks.len(), 6);
    for k in ks {
        assert_eq!(
            keys(k),
            set(&[
                "label",
                "exchange",
                "service",
                "status",
                "error",
                "grade",
                "tier",
                "tier_source",
                "account_value_usd",
                "tier_reason",
                "profile",
                "findings"
            ])
        );
        for f in ["label", "exchange", "service", "tier_reason"] {
            assert!(k[f].is_string(), "{f}");
        }
        assert!(["high", "medium", "low"].contains(&k["tier"].as_str().unwrap()));
        match k["tier_source"].as_str().unwrap() {
            "set" => assert!(k["account_value_usd"].is_null()),
            "auto" => assert!(
                k["account_value_usd"].is_null()
                    || k["account_value_usd"]
                        .as_str()
                        .unwrap()
                        .parse::<rust_decimal::Decimal>()
                        .is_ok()
            ),
            other => panic!("tier_source {other}"),
        }
        assert!(Venue::ALL.iter().any(|x| k["exchange"] == x.as_str()));
        match k["status"].as_str().unwrap() {
            "ok" => {
                assert!(k["error"].is_null());
                assert!(["A", "B", "C", "D", "F"].contains(&k["grade"].as_str().unwrap()));
                let p = &k["profile"];
                assert_eq!(
                    keys(p),
                    set(&[
                        "venue",
                        "permissions",
                        "raw_permissions",
                        "ip_restricted",
                        "ip_allowlist",
                        "created",
                        "expires",
                        "read_only",
                        "master_account",
                        "label"
                    ])
                );
                assert_eq!(p["venue"], k["exchange"]);
                assert!(
                    p["permissions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(Value::is_string)
                );
                assert!(
                    p["raw_permissions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(Value::is_string)
                );
                assert!(
                    p["ip_allowlist"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(Value::is_string)
                );
                assert!(p["ip_restricted"].is_boolean() || p["ip_restricted"].is_null());
                assert!(p["master_account"].is_boolean() || p["master_account"].is_null());
                assert!(p["read_only"].is_boolean());
                for t in ["created", "expires"] {
                    assert!(
                        p[t].is_null()
                            || time::OffsetDateTime::parse(
                                p[t].as_str().unwrap(),
                                &time::format_description::well_known::Rfc3339
                            )
                            .is_ok(),
                        "{t}"
                    );
                }
                assert!(p["label"].is_string() || p["label"].is_null());
            }
            "error" => {
                assert!(k["error"].as_str().is_some_and(|e| !e.is_empty()));
                assert!(k["grade"].is_null());
                assert!(k["profile"].is_null());
                assert_eq!(k["findings"], Value::Array(vec![]));
            }
            other => panic!("status {other}"),
        }
        for f in k["findings"].as_array().unwrap() {
            assert_eq!(keys(f), set(&["rule", "severity", "title", "remedy"]));
            for x in ["rule", "title", "remedy"] {
                assert!(f[x].as_str().is_some_and(|s| !s.is_empty()), "{x}");
            }
            let sev = f["severity"].as_str().unwrap();
            assert!(Severity::ALL.iter().any(|s| s.as_str() == sev), "{sev}");
        }
    }
    // Findings are most severe first.
    let main = &ks[1]["findings"];
    assert_eq!(main[0]["rule"], "withdraw-enabled");
    assert_eq!(main[0]["severity"], "critical");
    golden("audit.json", &text);
}

fn golden(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    if std::env::var_os("KEYFENCE_BLESS").is_some() {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with KEYFENCE_BLESS=1)", path.display()));
    assert!(
        want == text,
        "{name} changed; review and rerun with KEYFENCE_BLESS=1"
    );
}

#[test]
fn sarif_log() {
    let rules = RuleSet::bundled().unwrap();
    let reports = sample();
    let text = render::sarif(&reports, &rules, "0.1.0");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "keyfence");
    let descriptors = driver["rules"].as_array().unwrap();
    assert_eq!(descriptors.len(), rules.len());
    let results = run["results"].as_array().unwrap();
    let findings: usize = reports.iter().map(|r| r.findings().len()).sum();
    assert_eq!(results.len(), findings);
    for r in results {
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(descriptors[i]["id"], r["ruleId"]);
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
        let uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap();
        assert!(uri.starts_with("keyfence/keys/"), "{uri}");
        assert!(!uri.contains(' ') && !uri.contains('|'), "{uri}");
        assert!(r["partialFingerprints"]["keyfence/v1"].is_string());
    }
    // GitHub's security severity on every rule above info.
    for d in descriptors {
        let has = d["properties"]["security-severity"].is_string();
        assert_eq!(
            has,
            d["defaultConfiguration"]["level"] != "note" || d["id"] == "master-account-key",
            "{}",
            d["id"]
        );
    }
    // The unreachable key is a failed execution, not a silent pass.
    let inv = &run["invocations"][0];
    assert_eq!(inv["executionSuccessful"], false);
    let note = inv["toolExecutionNotifications"][0]["message"]["text"]
        .as_str()
        .unwrap();
    assert!(note.contains("kraken-old"), "{note}");
    golden("audit.sarif", &text);
}

#[test]
fn markdown_and_table() {
    let reports = sample();
    let md = render::markdown(&reports);
    assert!(md.starts_with("# keyfence audit\n"));
    assert!(
        md.contains(
            "| `binance-main` | binance | hummingbot | high (auto: value unknown) | **F** | 1 critical, 1 high, 1 medium |"
        ),
        "{md}"
    );
    assert!(
        md.contains("Tier **high**: auto: account value unknown (the key cannot read balances), so the strictest."),
        "{md}"
    );
    assert!(md.contains("`coinbase \\| dca`"), "pipes are escaped: {md}");
    assert!(md.contains("Could not be audited: the exchange answered with error EAPI:Invalid key"));
    assert!(md.contains("untick 'Enable Withdrawals'"));
    let t = render::table(&reports);
    let first = t.lines().next().unwrap();
    assert!(first.starts_with("LABEL") && first.contains("GRADE"), "{t}");
    assert!(
        t.contains("CRITICAL  withdraw-enabled: Withdrawals are enabled"),
        "{t}"
    );
    assert!(t.contains("help: Binance: Account > API Management"), "{t}");
    assert!(
        t.contains("error: the exchange answered with error EAPI:Invalid key"),
        "{t}"
    );
    // Columns line up: every row's GRADE cell starts where the header's does.
    let col = first.find("GRADE").unwrap();
    for line in t.lines().skip(1).take(6) {
        let cell = line.get(col..col + 1).unwrap_or("");
        assert!(["A", "B", "C", "D", "F", "-"].contains(&cell), "{line:?}");
    }
    // Each `tier = auto` key's tier comes with its reason.
    assert!(
        t.contains("\ntier = auto\n  bybit-spot: medium, auto: account worth $5,000.00\n"),
        "{t}"
    );
    assert!(
        t.contains("  binance-main: high, auto: account value unknown (the key cannot read balances), so the strictest\n"),
        "{t}"
    );
    golden("audit.md", &md);
    golden("audit.txt", &t);
}

#[test]
fn a_profile_from_another_venue_is_an_error_not_a_grade() {
    let reports = audit(
        &[AuditInput {
            context: KeyContext::new("k", Venue::Binance, "bot", Purpose::Spot),
            outcome: Ok(KeyProfile::empty(Venue::Kraken)),
        }],
        &RuleSet::bundled().unwrap(),
        &AuditConfig::default(),
        datetime!(2026-06-01 00:00 UTC),
    );
    let err = reports[0].outcome.as_ref().unwrap_err();
    assert!(err.contains("kraken") && err.contains("binance"), "{err}");
    assert_eq!(exit_code(&reports, FailOn::Never), 3);
}
