//! Every rule end to end, per venue: the venue's own key-introspection answer goes through
//! `keyfence_exchange::parse_key_info` and the audit, for every venue that can express what the
//! rule looks at. Where a venue cannot express it, the rule must not fire and is listed by
//! `not-checked` instead (or, for facts no venue reports, is covered by the rule's examples).

#![allow(clippy::unwrap_used, clippy::panic)] // test code: a broken fixture should fail loudly

use keyfence_audit::{
    AuditConfig, AuditInput, KeyContext, KeyReport, Purpose, RuleSet, Severity, Tier, audit,
};
use keyfence_types::Venue;
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-06-01 00:00 UTC);

/// 2026-05-20 (12 days before NOW) and 2026-01-01 (151 days), in each venue's spelling.
const RECENT_MS: i64 = 1_779_235_200_000;
const OLD_MS: i64 = 1_767_225_600_000;

#[derive(Clone, Copy)]
struct Case {
    name: &'static str,
    venue: Venue,
    body: &'static str,
    purpose: Purpose,
    /// Rules that must fire, with their severity.
    fires: &'static [(&'static str, Severity)],
    /// Rules that must not fire.
    quiet: &'static [&'static str],
    /// Rules that must be listed as not checked.
    unchecked: &'static [&'static str],
}

fn run(case: &Case, ctx: KeyContext) -> KeyReport {
    let profile = keyfence_exchange::parse_key_info(case.venue, case.body.as_bytes())
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let rules = RuleSet::bundled().unwrap();
    audit(
        &[AuditInput {
            context: ctx,
            outcome: Ok(profile),
        }],
        &rules,
        &AuditConfig::default(),
        NOW,
    )
    .remove(0)
}

fn context(case: &Case) -> KeyContext {
    let mut c = KeyContext::new("key", case.venue, "bot", case.purpose);
    c.tier = Tier::Low;
    c
}

fn check(case: &Case, report: &KeyReport) {
    let findings = report.findings();
    for (rule, severity) in case.fires {
        let f = findings
            .iter()
            .find(|f| f.rule == *rule)
            .unwrap_or_else(|| panic!("{}: `{rule}` did not fire: {findings:#?}", case.name));
        assert_eq!(f.severity, *severity, "{}: {rule}", case.name);
        assert!(
            f.remedy.to_lowercase().contains(case.venue.as_str()),
            "{}: remedy for another venue: {}",
            case.name,
            f.remedy
        );
    }
    for rule in case.quiet {
        assert!(
            findings.iter().all(|f| f.rule != *rule),
            "{}: `{rule}` fired: {findings:#?}",
            case.name
        );
    }
    let not_checked = findings
        .iter()
        .find(|f| f.rule == "not-checked")
        .map(|f| f.detail.clone())
        .unwrap_or_default();
    for rule in case.unchecked {
        assert!(
            not_checked.contains(&format!("{rule}:")),
            "{}: `{rule}` not listed as not checked: {not_checked:?}",
            case.name
        );
    }
}

const ALL_OFF_BINANCE: &str = r#"{"ipRestrict":true,"createTime":1779235200000,"enableReading":true,"enableSpotAndMarginTrading":true,"enableWithdrawals":false,"enableInternalTransfer":false,"permitsUniversalTransfer":false,"enableMargin":false,"enableFutures":false,"enableVanillaOptions":false}"#;

const CASES: &[Case] = &[
    // --- withdraw-enabled, all five venues
    Case {
        name: "binance withdrawals",
        venue: Venue::Binance,
        body: r#"{"ipRestrict":true,"createTime":1779235200000,"enableReading":true,"enableSpotAndMarginTrading":true,"enableWithdrawals":true}"#,
        purpose: Purpose::Spot,
        fires: &[("withdraw-enabled", Severity::Critical)],
        quiet: &["no-ip-restriction", "excess-permission", "cannot-trade"],
        unchecked: &["ip-range-too-broad", "master-account-key"],
    },
    Case {
        name: "bybit withdrawals",
        venue: Venue::Bybit,
        body: r#"{"retCode":0,"retMsg":"","result":{"permissions":{"Spot":["SpotTrade"],"Wallet":["Withdraw"]},"ips":["203.0.113.7"],"createdAt":"2026-05-20T00:00:00Z","readOnly":0,"isMaster":false}}"#,
        purpose: Purpose::Spot,
        fires: &[("withdraw-enabled", Severity::Critical)],
        quiet: &[
            "no-ip-restriction",
            "ip-range-too-broad",
            "master-account-key",
            "not-checked",
        ],
        unchecked: &[],
    },
    Case {
        name: "okx withdrawals",
        venue: Venue::Okx,
        body: r#"{"code":"0","msg":"","data":[{"perm":"read_only,withdraw","ip":"203.0.113.7","label":"x","uid":"2","mainUid":"1"}]}"#,
        purpose: Purpose::ReadOnly,
        fires: &[("withdraw-enabled", Severity::Critical)],
        quiet: &[
            "no-ip-restriction",
            "master-account-key",
            "excess-permission",
        ],
        unchecked: &["rotation-overdue"],
    },
    Case {
        name: "coinbase transfer scope",
        venue: Venue::Coinbase,
        body: r#"{"can_view":true,"can_trade":true,"can_transfer":true,"portfolio_uuid":"p"}"#,
        purpose: Purpose::Spot,
        fires: &[
            ("withdraw-enabled", Severity::Critical),
            ("transfer-enabled", Severity::High),
        ],
        quiet: &[
            "no-ip-restriction",
            "ip-range-too-broad",
            "master-account-key",
            "cannot-trade",
        ],
        unchecked: &[
            "no-ip-restriction",
            "rotation-overdue",
            "master-account-key",
        ],
    },
    Case {
        name: "kraken withdraw funds",
        venue: Venue::Kraken,
        body: r#"{"error":[],"result":{"apiKeyName":"bot","permissions":["query-funds","modify-trades","cancel-close-orders","withdraw-funds"],"ipAllowlist":["203.0.113.7"],"createdTime":1779235200,"validUntil":0}}"#,
        purpose: Purpose::Spot,
        fires: &[("withdraw-enabled", Severity::Critical)],
        quiet: &[
            "no-ip-restriction",
            "excess-permission",
            "cannot-trade",
            "key-expiring",
        ],
        unchecked: &["master-account-key", "excess-permission"],
    },
    // --- transfer-enabled: binance, bybit, okx (its Trade permission), coinbase (above)
    Case {
        name: "binance universal transfer",
        venue: Venue::Binance,
        body: r#"{"ipRestrict":true,"createTime":1779235200000,"enableReading":true,"enableSpotAndMarginTrading":true,"permitsUniversalTransfer":true}"#,
        purpose: Purpose::Spot,
        fires: &[("transfer-enabled", Severity::High)],
        quiet: &["withdraw-enabled"],
        unchecked: &[],
    },
    Case {
        name: "bybit account transfer",
        venue: Venue::Bybit,
        body: r#"{"retCode":0,"retMsg":"","result":{"permissions":{"Spot":["SpotTrade"],"Wallet":["AccountTransfer"]},"ips":["203.0.113.7"],"createdAt":"2026-05-20T00:00:00Z","isMaster":false}}"#,
        purpose: Purpose::Spot,
        fires: &[("transfer-enabled", Severity::High)],
        quiet: &["withdraw-enabled"],
        unchecked: &[],
    },
    Case {
        name: "okx trade moves funds",
        venue: Venue::Okx,
        body: r#"{"code":"0","msg":"","data":[{"perm":"read_only,trade","ip":"203.0.113.7","uid":"2","mainUid":"1"}]}"#,
        purpose: Purpose::Spot,
        fires: &[("transfer-enabled", Severity::High)],
        // OKX's Trade covers every product: not an excess the key could drop.
        quiet: &["excess-permission", "withdraw-enabled", "cannot-trade"],
        unchecked: &["excess-permission"],
    },
    // --- no-ip-restriction: binance, bybit, okx, kraken; coinbase cannot say (above)
    Case {
        name: "binance unrestricted",
        venue: Venue::Binance,
        body: r#"{"ipRestrict":false,"createTime":1779235200000,"enableReading":true,"enableSpotAndMarginTrading":true}"#,
        purpose: Purpose::Spot,
        fires: &[("no-ip-restriction", Severity::High)],
        quiet: &["ip-range-too-broad"],
        unchecked: &[],
    },
    Case {
        name: "bybit ips *",
        venue: Venue::Bybit,
        body: r#"{"retCode":0,"retMsg":"","result":{"permissions":{"Spot":["SpotTrade"]},"ips":["*"],"createdAt":"2026-05-20T00:00:00Z","isMaster":false}}"#,
        purpose: Purpose::Spot,
        fires: &[("no-ip-restriction", Severity::High)],
        quiet: &["ip-range-too-broad"],
        unchecked: &[],
    },
    Case {
        name: "okx no ip bound",
        venue: Venue::Okx,
        body: r#"{"code":"0","msg":"","data":[{"perm":"read_only","ip":"","uid":"1","mainUid":"1"}]}"#,
        purpose: Purpose::ReadOnly,
        fires: &[
            ("no-ip-restriction", Severity::High),
            ("master-account-key", Severity::Low),
        ],
        quiet: &["excess-permission", "cannot-trade"],
        unchecked: &[],
    },
    Case {
        name: "kraken empty allowlist",
        venue: Venue::Kraken,
        body: r#"{"error":[],"result":{"permissions":["query-funds"],"ipAllowlist":[],"createdTime":1779235200}}"#,
        purpose: Purpose::ReadOnly,
        fires: &[("no-ip-restriction", Severity::High)],
        quiet: &["excess-permission", "cannot-trade"],
        unchecked: &[],
    },
    // --- ip-range-too-broad: bybit, okx, kraken list addresses; binance does not
    Case {
        name: "bybit /16",
        venue: Venue::Bybit,
        body: r#"{"retCode":0,"retMsg":"","result":{"permissions":{"Spot":["SpotTrade"]},"ips":["198.51.0.0/16"],"createdAt":"2026-05-20T00:00:00Z","isMaster":false}}"#,
        purpose: Purpose::Spot,
        fires: &[("ip-range-too-broad", Severity::Medium)],
        quiet: &["no-ip-restriction"],
        unchecked: &[],
    },
    Case {
        name: "okx 0.0.0.0/0",
        venue: Venue::Okx,
        body: r#"{"code":"0","msg":"","data":[{"perm":"read_only","ip":"203.0.113.7,0.0.0.0/0","uid":"2","mainUid":"1"}]}"#,
        purpose: Purpose::ReadOnly,
        fires: &[("ip-range-too-broad", Severity::Medium)],
        quiet: &["no-ip-restriction"],
        unchecked: &[],
    },
    Case {
        name: "kraken ipv6 /32",
        venue: Venue::Kraken,
        body: r#"{"error":[],"result":{"permissions":["query-funds"],"ipAllowlist":["2001:db8::/32"],"createdTime":1779235200}}"#,
        purpose: Purpose::ReadOnly,
        fires: &[("ip-range-too-broad", Severity::Medium)],
        quiet: &["no-ip-restriction"],
        unchecked: &[],
    },
    Case {
        name: "kraken /24 and ipv6 /48 are fine",
        venue: Venue::Kraken,
        body: r#"{"error":[],"result":{"permissions":["query-funds"],"ipAllowlist":["203.0.113.0/24","2001:db8:1::/48"],"createdTime":1779235200}}"#,
        purpose: Purpose::ReadOnly,
        fires: &[],
        quiet: &["no-ip-restriction", "ip-range-too-broad"],
        unchecked: &[],
    },
    Case {
        name: "binance restricted but unlisted",
        venue: Venue::Binance,
        body: ALL_OFF_BINANCE,
        purpose: Purpose::Spot,
        fires: &[],
        quiet: &[
            "withdraw-enabled",
            "transfer-enabled",
            "no-ip-restriction",
            "ip-range-too-broad",
            "excess-permission",
            "rotation-overdue",
            "key-expiring",
            "cannot-trade",
        ],
        unchecked: &["ip-range-too-broad"],
    },
    // --- excess-permission, all five venues
    Case {
        name: "binance spot bot with futures",
        venue: Venue::Binance,
        body: r#"{"ipRestrict":true,"createTime":1779235200000,"enableReading":true,"enableSpotAndMarginTrading":true,"enableFutures":true}"#,
        purpose: Purpose::Spot,
        fires: &[("excess-permission", Severity::Medium)],
        quiet: &["cannot-trade"],
        unchecked: &[],
    },
    Case {
        name: "bybit spot bot with contracts",
        venue: Venue::Bybit,
        body: r#"{"retCode":0,"retMsg":"","result":{"permissions":{"Spot":["SpotTrade"],"ContractTrade":["Order","Position"]},"ips":["203.0.113.7"],"createdAt":"2026-05-20T00:00:00Z","isMaster":false}}"#,
        purpose: Purpose::Spot,
        fires: &[("excess-permission", Severity::Medium)],
        quiet: &["cannot-trade"],
        unchecked: &[],
    },
    Case {
        name: "okx monitor that can trade",
        venue: Venue::Okx,
        body: r#"{"code":"0","msg":"","data":[{"perm":"read_only,trade","ip":"203.0.113.7","uid":"2","mainUid":"1"}]}"#,
        purpose: Purpose::ReadOnly,
        fires: &[("excess-permission", Severity::Medium)],
        quiet: &["cannot-trade"],
        unchecked: &[],
    },
    Case {
        name: "coinbase monitor that can trade",
        venue: Venue::Coinbase,
        body: r#"{"can_view":true,"can_trade":true,"can_transfer":false}"#,
        purpose: Purpose::ReadOnly,
        fires: &[("excess-permission", Severity::Medium)],
        quiet: &["withdraw-enabled", "transfer-enabled"],
        unchecked: &[],
    },
    Case {
        name: "kraken monitor that can cancel",
        venue: Venue::Kraken,
        body: r#"{"error":[],"result":{"permissions":["query-funds","cancel-close-orders"],"ipAllowlist":["203.0.113.7"],"createdTime":1779235200}}"#,
        purpose: Purpose::ReadOnly,
        fires: &[("excess-permission", Severity::Medium)],
        quiet: &[],
        unchecked: &[],
    },
    // --- rotation-overdue from the venue's own creation time: binance, bybit, kraken
    Case {
        name: "binance key from january, low tier",
        venue: Venue::Binance,
        body: r#"{"ipRestrict":true,"createTime":1767225600000,"enableReading":true,"enableSpotAndMarginTrading":true}"#,
        purpose: Purpose::Spot,
        fires: &[("rotation-overdue", Severity::Medium)],
        quiet: &[],
        unchecked: &[],
    },
    Case {
        name: "bybit key from january, low tier",
        venue: Venue::Bybit,
        body: r#"{"retCode":0,"retMsg":"","result":{"permissions":{"Spot":["SpotTrade"]},"ips":["203.0.113.7"],"createdAt":"2026-01-01T00:00:00Z","isMaster":false}}"#,
        purpose: Purpose::Spot,
        fires: &[("rotation-overdue", Severity::Medium)],
        quiet: &[],
        unchecked: &[],
    },
    Case {
        name: "kraken key from january, low tier",
        venue: Venue::Kraken,
        body: r#"{"error":[],"result":{"permissions":["query-funds"],"ipAllowlist":["203.0.113.7"],"createdTime":1767225600}}"#,
        purpose: Purpose::ReadOnly,
        fires: &[("rotation-overdue", Severity::Medium)],
        quiet: &[],
        unchecked: &[],
    },
    // --- key-expiring: binance, bybit, kraken give an expiry
    Case {
        name: "binance trading authority expires in 5 days",
        venue: Venue::Binance,
        body: r#"{"ipRestrict":true,"createTime":1779235200000,"enableReading":true,"enableSpotAndMarginTrading":true,"tradingAuthorityExpirationTime":1780704000000}"#,
        purpose: Purpose::Spot,
        fires: &[("key-expiring", Severity::Medium)],
        quiet: &[],
        unchecked: &[],
    },
    Case {
        name: "bybit unbound key expires in 5 days",
        venue: Venue::Bybit,
        body: r#"{"retCode":0,"retMsg":"","result":{"permissions":{"Spot":["SpotTrade"]},"ips":["*"],"createdAt":"2026-05-20T00:00:00Z","expiredAt":"2026-06-06T00:00:00Z","isMaster":false}}"#,
        purpose: Purpose::Spot,
        fires: &[
            ("key-expiring", Severity::Medium),
            ("no-ip-restriction", Severity::High),
        ],
        quiet: &[],
        unchecked: &[],
    },
    Case {
        name: "kraken key valid until in 5 days",
        venue: Venue::Kraken,
        body: r#"{"error":[],"result":{"permissions":["query-funds"],"ipAllowlist":["203.0.113.7"],"createdTime":1779235200,"validUntil":1780704000}}"#,
        purpose: Purpose::ReadOnly,
        fires: &[("key-expiring", Severity::Medium)],
        quiet: &[],
        unchecked: &[],
    },
    Case {
        name: "bybit expiry far away",
        venue: Venue::Bybit,
        body: r#"{"retCode":0,"retMsg":"","result":{"permissions":{"Spot":["SpotTrade"]},"ips":["203.0.113.7"],"createdAt":"2026-05-20T00:00:00Z","expiredAt":"2026-09-01T00:00:00Z","isMaster":false}}"#,
        purpose: Purpose::Spot,
        fires: &[],
        quiet: &["key-expiring", "not-checked"],
        unchecked: &[],
    },
    // --- master-account-key: bybit, okx say it
    Case {
        name: "bybit master key",
        venue: Venue::Bybit,
        body: r#"{"retCode":0,"retMsg":"","result":{"permissions":{"Spot":["SpotTrade"]},"ips":["203.0.113.7"],"createdAt":"2026-05-20T00:00:00Z","isMaster":true}}"#,
        purpose: Purpose::Spot,
        fires: &[("master-account-key", Severity::Low)],
        quiet: &[],
        unchecked: &[],
    },
    // --- cannot-trade, all five venues
    Case {
        name: "binance futures bot on a spot key",
        venue: Venue::Binance,
        body: ALL_OFF_BINANCE,
        purpose: Purpose::Futures,
        fires: &[
            ("cannot-trade", Severity::Info),
            ("excess-permission", Severity::Medium),
        ],
        quiet: &[],
        unchecked: &[],
    },
    Case {
        name: "bybit read-only key for a spot bot",
        venue: Venue::Bybit,
        body: r#"{"retCode":0,"retMsg":"","result":{"permissions":{},"ips":["203.0.113.7"],"readOnly":1,"createdAt":"2026-05-20T00:00:00Z","isMaster":false}}"#,
        purpose: Purpose::Spot,
        fires: &[("cannot-trade", Severity::Info)],
        quiet: &[],
        unchecked: &[],
    },
    Case {
        name: "okx read-only key for a futures bot",
        venue: Venue::Okx,
        body: r#"{"code":"0","msg":"","data":[{"perm":"read_only","ip":"203.0.113.7","uid":"2","mainUid":"1"}]}"#,
        purpose: Purpose::Futures,
        fires: &[("cannot-trade", Severity::Info)],
        quiet: &[],
        unchecked: &[],
    },
    Case {
        name: "coinbase view-only key for a spot bot",
        venue: Venue::Coinbase,
        body: r#"{"can_view":true,"can_trade":false,"can_transfer":false}"#,
        purpose: Purpose::Spot,
        fires: &[("cannot-trade", Severity::Info)],
        quiet: &["excess-permission"],
        unchecked: &[],
    },
    Case {
        name: "kraken query-only key for a trading bot",
        venue: Venue::Kraken,
        body: r#"{"error":[],"result":{"permissions":["query-funds","query-open-trades"],"ipAllowlist":["203.0.113.7"],"createdTime":1779235200}}"#,
        purpose: Purpose::Trading,
        fires: &[("cannot-trade", Severity::Info)],
        quiet: &[],
        unchecked: &[],
    },
];

#[test]
fn every_rule_end_to_end_per_venue() {
    for case in CASES {
        check(case, &run(case, context(case)));
    }
}

#[test]
fn the_cases_cover_every_rule_the_venues_can_express() {
    let covered = |rule: &str, venue: Venue| {
        CASES
            .iter()
            .any(|c| c.venue == venue && c.fires.iter().any(|(r, _)| *r == rule))
    };
    use Venue::*;
    let matrix: &[(&str, &[Venue])] = &[
        ("withdraw-enabled", &[Binance, Bybit, Okx, Coinbase, Kraken]),
        ("transfer-enabled", &[Binance, Bybit, Okx, Coinbase]),
        ("no-ip-restriction", &[Binance, Bybit, Okx, Kraken]),
        ("ip-range-too-broad", &[Bybit, Okx, Kraken]),
        (
            "excess-permission",
            &[Binance, Bybit, Okx, Coinbase, Kraken],
        ),
        ("rotation-overdue", &[Binance, Bybit, Kraken]),
        ("key-expiring", &[Binance, Bybit, Kraken]),
        ("master-account-key", &[Bybit, Okx]),
        ("cannot-trade", &[Binance, Bybit, Okx, Coinbase, Kraken]),
    ];
    for (rule, venues) in matrix {
        for v in *venues {
            assert!(covered(rule, *v), "no case for `{rule}` on {v}");
        }
    }
}

#[test]
fn rotation_falls_back_to_keyfence_dates_where_the_venue_gives_none() {
    // OKX and Coinbase report no creation time: keyfence's own rotation date is used.
    for (venue, body) in [
        (
            Venue::Okx,
            r#"{"code":"0","msg":"","data":[{"perm":"read_only","ip":"203.0.113.7","uid":"2","mainUid":"1"}]}"#,
        ),
        (
            Venue::Coinbase,
            r#"{"can_view":true,"can_trade":false,"can_transfer":false}"#,
        ),
    ] {
        let case = Case {
            name: "fallback",
            venue,
            body,
            purpose: Purpose::ReadOnly,
            fires: &[],
            quiet: &[],
            unchecked: &[],
        };
        // Low tier, 90 days: 151 days is overdue, not twice.
        let mut ctx = context(&case);
        ctx.last_rotated = OffsetDateTime::from_unix_timestamp(OLD_MS / 1000).ok();
        let r = run(&case, ctx.clone());
        let f = r
            .findings()
            .iter()
            .find(|f| f.rule == "rotation-overdue")
            .unwrap();
        assert_eq!(f.severity, Severity::Medium, "{venue}");
        assert!(f.detail.contains("last rotated 2026-01-01"), "{}", f.detail);
        // High tier (30 days): more than twice overdue.
        ctx.tier = Tier::High;
        let r = run(&case, ctx.clone());
        let f = r
            .findings()
            .iter()
            .find(|f| f.rule == "rotation-overdue")
            .unwrap();
        assert_eq!(f.severity, Severity::High, "{venue}");
        // Recently rotated: quiet.
        ctx.last_rotated = OffsetDateTime::from_unix_timestamp(RECENT_MS / 1000).ok();
        let r = run(&case, ctx.clone());
        assert!(r.findings().iter().all(|f| f.rule != "rotation-overdue"));
        // No date at all: not checked, never a finding.
        ctx.last_rotated = None;
        let r = run(&case, ctx);
        assert!(r.findings().iter().all(|f| f.rule != "rotation-overdue"));
        let nc = r
            .findings()
            .iter()
            .find(|f| f.rule == "not-checked")
            .unwrap();
        assert!(nc.detail.contains("rotation-overdue:"), "{}", nc.detail);
    }
}

#[test]
fn auto_tier_follows_account_value() {
    let config = AuditConfig::default();
    let mut ctx = KeyContext::new("k", Venue::Binance, "bot", Purpose::Spot);
    let tier = |ctx: &KeyContext| config.effective_tier(ctx).0;
    assert_eq!(tier(&ctx), Tier::High, "unknown value: strictest");
    for (usd, want) in [
        (20_000, Tier::High),
        (10_000, Tier::Medium),
        (5_000, Tier::Medium),
        (1_000, Tier::Low),
        (10, Tier::Low),
    ] {
        ctx.account_value_usd = Some(usd.into());
        assert_eq!(tier(&ctx), want, "${usd}");
    }
    ctx.tier = Tier::Medium;
    assert_eq!(tier(&ctx), Tier::Medium, "an explicit tier wins");
    assert_eq!(config.rotation_days(Tier::High), 30);
    assert_eq!(config.rotation_days(Tier::Medium), 60);
    assert_eq!(config.rotation_days(Tier::Low), 90);
}

#[test]
fn shared_keys_are_found_across_the_batch_for_every_venue() {
    let rules = RuleSet::bundled().unwrap();
    for venue in Venue::ALL {
        let profile = keyfence_types::KeyProfile::empty(venue);
        let input = |label: &str, service: &str, fp: &str| {
            let mut c = KeyContext::new(label, venue, service, Purpose::ReadOnly);
            c.fingerprint = Some(fp.to_owned());
            AuditInput {
                context: c,
                outcome: Ok(profile.clone()),
            }
        };
        let reports = audit(
            &[
                input("a", "freqtrade", "fp1"),
                input("b", "3commas", "fp1"),
                input("c", "freqtrade", "fp2"),
                input("d", "freqtrade", "fp3"),
                input("e", "freqtrade", "fp3"),
            ],
            &rules,
            &AuditConfig::default(),
            NOW,
        );
        let shared = |i: usize| {
            reports[i]
                .findings()
                .iter()
                .find(|f| f.rule == "key-shared")
                .map(|f| (f.severity, f.detail.clone()))
        };
        let (sev, detail) = shared(0).unwrap();
        assert_eq!(sev, Severity::High);
        assert!(detail.contains("3commas"), "{detail}");
        assert!(shared(1).unwrap().1.contains("freqtrade"));
        assert_eq!(shared(2), None, "{venue}: a key of its own");
        assert_eq!(
            shared(3),
            None,
            "{venue}: one service under two labels is not sharing"
        );
        let remedy = &reports[0]
            .findings()
            .iter()
            .find(|f| f.rule == "key-shared")
            .unwrap()
            .remedy;
        assert!(remedy.to_lowercase().contains(venue.as_str()));
    }
}
