//! The conditions of the rules, keyed by rule id. The rule files carry the text, the severity
//! and the examples; this module decides whether a rule fires on one key.
//!
//! A fact the venue does not report (`None` in the profile) never makes a rule fire: the rule
//! answers [`Check::Unknown`] and the engine reports all such rules in one info finding,
//! `not-checked`.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use keyfence_types::{KeyProfile, Permission, Venue};
use time::OffsetDateTime;

use crate::rules::RuleSet;
use crate::{AuditConfig, EffectiveTier, Finding, KeyContext, Purpose, Severity, permission_name};

/// Every rule id the engine knows. A rule file with another id is refused.
pub(crate) const RULE_IDS: &[&str] = &[
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
    NOT_CHECKED,
];

/// The rule that lists what could not be checked on a key.
pub(crate) const NOT_CHECKED: &str = "not-checked";

/// The outcome of one rule on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check {
    Pass,
    /// The rule fires; `severity` overrides the rule's own (e.g. twice overdue).
    Fail {
        severity: Option<Severity>,
        detail: String,
    },
    /// The venue does not report what the rule needs.
    Unknown(String),
}

fn fail(detail: impl Into<String>) -> Check {
    Check::Fail {
        severity: None,
        detail: detail.into(),
    }
}

pub(crate) struct Facts<'a> {
    pub profile: &'a KeyProfile,
    pub ctx: &'a KeyContext,
    pub shared_with: &'a BTreeSet<String>,
    pub config: &'a AuditConfig,
    pub now: OffsetDateTime,
}

/// Runs every rule of `rules` on one key; most severe finding first.
pub(crate) fn evaluate(
    rules: &RuleSet,
    profile: &KeyProfile,
    ctx: &KeyContext,
    shared_with: &BTreeSet<String>,
    config: &AuditConfig,
    now: OffsetDateTime,
) -> Vec<Finding> {
    let facts = Facts {
        profile,
        ctx,
        shared_with,
        config,
        now,
    };
    let venue = profile.venue;
    let mut findings = Vec::new();
    let mut unknown = Vec::new();
    for rule in rules.iter() {
        match check(&rule.id, &facts) {
            Check::Pass => {}
            Check::Fail { severity, detail } => {
                findings.push(rule.finding(venue, severity, detail));
            }
            Check::Unknown(why) => unknown.push(format!("{}: {why}", rule.id)),
        }
    }
    if !unknown.is_empty()
        && let Some(rule) = rules.get(NOT_CHECKED)
    {
        findings.push(rule.finding(venue, None, unknown.join("; ")));
    }
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.rule.cmp(&b.rule)));
    findings
}

/// The condition of rule `id`. An id the engine does not know never passes silently: it is
/// refused when the rules are loaded, and answers `Unknown` here.
pub(crate) fn check(id: &str, f: &Facts<'_>) -> Check {
    let p = f.profile;
    match id {
        // The title says it all; the detail names nothing more.
        "withdraw-enabled" => flag(p.can(Permission::Withdraw)),
        "transfer-enabled" => flag(p.can(Permission::Transfer)),
        "key-management-enabled" => flag(p.can(Permission::KeyManagement)),
        "no-ip-restriction" => match p.ip_restricted {
            Some(false) => fail(""),
            Some(true) => Check::Pass,
            None => Check::Unknown(format!("{} does not report IP restrictions", p.venue)),
        },
        "ip-range-too-broad" => ip_range_too_broad(p),
        "excess-permission" => excess_permission(p, f.ctx.purpose),
        "rotation-overdue" => rotation_overdue(f),
        "key-expiring" => key_expiring(f),
        "key-shared" => {
            if f.shared_with.is_empty() {
                Check::Pass
            } else {
                let others: Vec<&str> = f.shared_with.iter().map(String::as_str).collect();
                fail(format!(
                    "the same real key also serves {} besides `{}`",
                    others.join(", "),
                    f.ctx.service
                ))
            }
        }
        "master-account-key" => match p.master_account {
            Some(true) => fail(""),
            Some(false) => Check::Pass,
            None => Check::Unknown(format!(
                "{} does not say whether the key is on the main account",
                p.venue
            )),
        },
        "cannot-trade" => cannot_trade(p, f.ctx.purpose),
        // Filled in by `evaluate` from the other rules' unknowns.
        NOT_CHECKED => Check::Pass,
        other => Check::Unknown(format!("no condition for rule `{other}`")),
    }
}

fn flag(on: bool) -> Check {
    if on { fail("") } else { Check::Pass }
}

fn names(perms: &BTreeSet<Permission>) -> String {
    perms
        .iter()
        .map(|p| permission_name(*p))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Permissions a venue grants only together with one the purpose needs: a key cannot be
/// made narrower there, so holding them is not a finding.
fn inseparable(venue: Venue, purpose: Purpose, p: Permission) -> bool {
    match venue {
        // Kraken's "Create & Modify Orders" also places margin orders.
        Venue::Kraken => {
            p == Permission::MarginTrade && purpose.trade_needs().contains(&Permission::SpotTrade)
        }
        // OKX's one "Trade" permission covers every product.
        Venue::Okx => purpose.trades() && p.is_trading(),
        _ => false,
    }
}

fn excess_permission(p: &KeyProfile, purpose: Purpose) -> Check {
    // Withdraw, transfer and key management have rules of their own.
    let own_rule = [
        Permission::Withdraw,
        Permission::Transfer,
        Permission::KeyManagement,
    ];
    let mut excess = BTreeSet::new();
    let mut bundled = BTreeSet::new();
    for &perm in &p.permissions {
        if own_rule.contains(&perm) || purpose.allows(perm) {
            continue;
        }
        // `other` is a grant the venue names but keyfence does not model (Kraken's cancel
        // permission, Bybit's convert): excess only for a key that should just read.
        if perm == Permission::Other && purpose.trades() {
            continue;
        }
        if inseparable(p.venue, purpose, perm) {
            bundled.insert(perm);
        } else {
            excess.insert(perm);
        }
    }
    if !excess.is_empty() {
        return fail(format!(
            "a {purpose} key needs no {}",
            names(&excess).replace(", ", " or ")
        ));
    }
    if !bundled.is_empty() {
        return Check::Unknown(format!(
            "{} grants {} together with the trading a {purpose} key needs",
            p.venue,
            names(&bundled)
        ));
    }
    Check::Pass
}

fn cannot_trade(p: &KeyProfile, purpose: Purpose) -> Check {
    if !purpose.trades() {
        return Check::Pass;
    }
    let missing: BTreeSet<Permission> = purpose
        .trade_needs()
        .iter()
        .copied()
        .filter(|n| !p.can(*n))
        .collect();
    if purpose == Purpose::Trading && !p.permissions.iter().any(|x| x.is_trading()) {
        return fail("a trading key that cannot place any order");
    }
    if missing.is_empty() {
        Check::Pass
    } else {
        fail(format!("a {purpose} key without {}", names(&missing)))
    }
}

/// How one allowlist entry reads: the number of addresses it admits, as a prefix length.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    V4(u8),
    V6(u8),
    Any,
}

fn parse_entry(s: &str) -> Option<Entry> {
    let s = s.trim();
    if s == "*" {
        return Some(Entry::Any);
    }
    if let Some((addr, len)) = s.split_once('/') {
        let len: u8 = len.parse().ok()?;
        if addr.parse::<Ipv4Addr>().is_ok() && len <= 32 {
            return Some(if len == 0 { Entry::Any } else { Entry::V4(len) });
        }
        if addr.parse::<Ipv6Addr>().is_ok() && len <= 128 {
            return Some(if len == 0 { Entry::Any } else { Entry::V6(len) });
        }
        return None;
    }
    if let Some((a, b)) = s.split_once('-') {
        let (a, b) = (
            a.trim().parse::<Ipv4Addr>().ok()?,
            b.trim().parse::<Ipv4Addr>().ok()?,
        );
        let span = u64::from(u32::from(b)).checked_sub(u64::from(u32::from(a)))? + 1;
        // The shortest prefix that holds the span.
        let bits = 64 - (span - 1).leading_zeros();
        let len = 32u32.saturating_sub(bits);
        return Some(if len == 0 {
            Entry::Any
        } else {
            Entry::V4(len as u8)
        });
    }
    if s.contains('*') {
        // 1.2.3.* style wildcards.
        let parts: Vec<&str> = s.split('.').collect();
        if parts.len() != 4 {
            return None;
        }
        let fixed = parts.iter().take_while(|p| **p != "*").count();
        if parts[fixed..].iter().any(|p| *p != "*")
            || parts[..fixed].iter().any(|p| p.parse::<u8>().is_err())
        {
            return None;
        }
        return Some(if fixed == 0 {
            Entry::Any
        } else {
            Entry::V4(fixed as u8 * 8)
        });
    }
    if let Ok(a) = s.parse::<Ipv4Addr>() {
        return Some(if a.is_unspecified() {
            Entry::Any
        } else {
            Entry::V4(32)
        });
    }
    if let Ok(a) = s.parse::<Ipv6Addr>() {
        return Some(if a.is_unspecified() {
            Entry::Any
        } else {
            Entry::V6(128)
        });
    }
    None
}

fn ip_range_too_broad(p: &KeyProfile) -> Check {
    match p.ip_restricted {
        Some(true) => {}
        // Unrestricted is `no-ip-restriction`'s finding; unknown is reported there.
        Some(false) | None => return Check::Pass,
    }
    if p.ip_allowlist.is_empty() {
        return Check::Unknown(format!(
            "{} says the key is IP-restricted but does not list the addresses",
            p.venue
        ));
    }
    let mut broad = Vec::new();
    let mut unreadable = Vec::new();
    for entry in &p.ip_allowlist {
        match parse_entry(entry) {
            Some(Entry::Any) => broad.push(format!("`{entry}` admits every address")),
            Some(Entry::V4(len)) if len < 24 => {
                broad.push(format!("`{entry}` is wider than a /24"));
            }
            Some(Entry::V6(len)) if len < 48 => {
                broad.push(format!("`{entry}` is wider than a /48"));
            }
            Some(_) => {}
            None => unreadable.push(format!("`{entry}`")),
        }
    }
    if !broad.is_empty() {
        return fail(broad.join("; "));
    }
    if !unreadable.is_empty() {
        return Check::Unknown(format!(
            "allowlist entries not readable as addresses or ranges: {}",
            unreadable.join(", ")
        ));
    }
    Check::Pass
}

fn date(t: OffsetDateTime) -> String {
    t.date().to_string()
}

fn rotation_overdue(f: &Facts<'_>) -> Check {
    // The venue's creation time is the truth about the real key; keyfence's own dates stand in
    // only when the venue does not say.
    let since = f
        .profile
        .created
        .map(|t| (t, "created"))
        .or(f.ctx.last_rotated.map(|t| (t, "last rotated")))
        .or(f.ctx.created.map(|t| (t, "added to keyfence")));
    let Some((since, what)) = since else {
        return Check::Unknown(format!(
            "{} does not report when the key was created and keyfence has no date for it",
            f.profile.venue
        ));
    };
    let EffectiveTier {
        tier, reason: how, ..
    } = f.config.tier_of(f.ctx);
    let days = i64::from(f.config.rotation_days(tier));
    let age = (f.now - since).whole_days();
    if age <= days {
        return Check::Pass;
    }
    let severity = (age > 2 * days).then_some(Severity::High);
    Check::Fail {
        severity,
        detail: format!(
            "{what} {} ({age} days ago); tier {tier} ({how}) rotates every {days} days",
            date(since)
        ),
    }
}

fn key_expiring(f: &Facts<'_>) -> Check {
    // No expiry date: the key does not expire, or the venue does not say; nothing to warn of.
    let Some(expires) = f.profile.expires else {
        return Check::Pass;
    };
    let left = (expires - f.now).whole_days();
    if expires <= f.now {
        fail(format!("expired on {}", date(expires)))
    } else if left <= i64::from(f.config.expiry_warning_days) {
        fail(format!("expires on {} (in {left} days)", date(expires)))
    } else {
        Check::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_entries_read_as_prefixes() {
        let cases = [
            ("1.2.3.4", Some(Entry::V4(32))),
            ("1.2.3.0/24", Some(Entry::V4(24))),
            ("1.2.0.0/16", Some(Entry::V4(16))),
            ("0.0.0.0/0", Some(Entry::Any)),
            ("0.0.0.0", Some(Entry::Any)),
            ("*", Some(Entry::Any)),
            ("::/0", Some(Entry::Any)),
            ("::", Some(Entry::Any)),
            ("2001:db8::/32", Some(Entry::V6(32))),
            ("2001:db8::/48", Some(Entry::V6(48))),
            ("2001:db8::1", Some(Entry::V6(128))),
            ("1.2.3.*", Some(Entry::V4(24))),
            ("1.2.*.*", Some(Entry::V4(16))),
            ("*.*.*.*", Some(Entry::Any)),
            ("1.2.3.0-1.2.3.255", Some(Entry::V4(24))),
            ("1.2.3.0-1.2.4.0", Some(Entry::V4(23))),
            ("0.0.0.0-255.255.255.255", Some(Entry::Any)),
            ("1.2.3.4/33", None),
            ("example.com", None),
            ("1.*.3.*", None),
            ("1.2.3.9-1.2.3.1", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_entry(s), want, "{s}");
        }
    }
}
