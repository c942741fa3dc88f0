//! The key auditor: what a key can do, graded against least privilege for its purpose.
//!
//! Input per key is the venue's answer normalised into a [`KeyProfile`] (by
//! `keyfence_exchange::parse_key_info`) plus what keyfence knows about the key ([`KeyContext`]).
//! Output is a [`KeyReport`] per key: findings, each with a remedy for the key's venue, and a
//! grade from A to F. Rules are data (`rules/*.toml`, one file per rule, with examples); the
//! condition of each rule is Rust code keyed by the rule's id (`eval.rs`).
//!
//! Architecture invariant: this crate does no I/O (the rules are compiled in with
//! `include_str!`) and never reads the clock (`now` is an argument).

mod eval;
pub mod render;
pub mod rules;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use keyfence_types::{KeyProfile, Permission, Venue};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use rules::{CheckReport, Example, Rule, RuleSet, check_bundled, check_sources};

/// How much a finding matters, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity `{0}`; expected one of info, low, medium, high, critical")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownSeverity(s.to_owned()))
    }
}

/// `--fail-on`: the lowest severity that makes the audit fail, or never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    At(Severity),
    Never,
}

impl Default for FailOn {
    fn default() -> Self {
        FailOn::At(Severity::High)
    }
}

impl FromStr for FailOn {
    type Err = UnknownSeverity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "never" {
            return Ok(FailOn::Never);
        }
        s.parse()
            .map(FailOn::At)
            .map_err(|_| UnknownSeverity(format!("{s}` (or `never")))
    }
}

pub use keyfence_types::{Purpose, Tier, UnknownPurpose, UnknownTier};

/// What keyfence knows about a key beyond what its venue says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyContext {
    /// The operator's name for the key (unique in the vault).
    pub label: String,
    pub exchange: Venue,
    /// The service (bot) the key is for.
    pub service: String,
    pub purpose: Purpose,
    pub tier: Tier,
    /// The account's value in USD, for `tier = auto`.
    pub account_value_usd: Option<Decimal>,
    /// Why the account's value is unknown (`tier = auto` then picks the strictest tier), e.g.
    /// "the key cannot read balances". Shown with the tier.
    #[serde(default)]
    pub account_value_note: Option<String>,
    /// When keyfence first saw the key; used only when the venue does not say.
    #[serde(with = "time::serde::rfc3339::option")]
    pub created: Option<OffsetDateTime>,
    /// When the key was last rotated; used only when the venue does not say when it was created.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_rotated: Option<OffsetDateTime>,
    /// The vault's fingerprint of the real key: keys with equal fingerprints in one batch are
    /// one real key.
    pub fingerprint: Option<String>,
    /// Other services the same real key is known to serve.
    pub shared_with: BTreeSet<String>,
}

impl KeyContext {
    /// A context with the defaults: tier `auto`, no dates, no fingerprint, not shared.
    pub fn new(label: &str, exchange: Venue, service: &str, purpose: Purpose) -> Self {
        KeyContext {
            label: label.to_owned(),
            exchange,
            service: service.to_owned(),
            purpose,
            tier: Tier::Auto,
            account_value_usd: None,
            account_value_note: None,
            created: None,
            last_rotated: None,
            fingerprint: None,
            shared_with: BTreeSet::new(),
        }
    }
}

/// Rotation schedule per tier, in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RotationSchedule {
    pub high_days: u32,
    pub medium_days: u32,
    pub low_days: u32,
}

impl Default for RotationSchedule {
    fn default() -> Self {
        RotationSchedule {
            high_days: 30,
            medium_days: 60,
            low_days: 90,
        }
    }
}

/// The knobs of the audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    pub rotation: RotationSchedule,
    /// `key-expiring` fires when a key expires within this many days.
    pub expiry_warning_days: u32,
    /// `tier = auto`: an account worth more than this is `high`.
    pub auto_high_usd: Decimal,
    /// `tier = auto`: an account worth more than this (and not `high`) is `medium`.
    pub auto_medium_usd: Decimal,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            rotation: RotationSchedule::default(),
            expiry_warning_days: 14,
            auto_high_usd: Decimal::from(10_000),
            auto_medium_usd: Decimal::from(1_000),
        }
    }
}

impl AuditConfig {
    /// The tier a key is scheduled by, and how it was chosen.
    pub fn effective_tier(&self, ctx: &KeyContext) -> (Tier, &'static str) {
        match ctx.tier {
            Tier::Auto => match ctx.account_value_usd {
                Some(v) if v > self.auto_high_usd => (Tier::High, "auto: account value"),
                Some(v) if v > self.auto_medium_usd => (Tier::Medium, "auto: account value"),
                Some(_) => (Tier::Low, "auto: account value"),
                None => (Tier::High, "auto: account value unknown, so the strictest"),
            },
            t => (t, "set"),
        }
    }

    /// The tier a key is scheduled by, with the account value it came from and a one-line
    /// reason for people (`auto: account worth $12,345.67`).
    pub fn tier_of(&self, ctx: &KeyContext) -> EffectiveTier {
        let (tier, _) = self.effective_tier(ctx);
        let auto = ctx.tier == Tier::Auto;
        let reason = match (auto, ctx.account_value_usd, &ctx.account_value_note) {
            (false, _, _) => "set".to_owned(),
            (true, Some(v), _) => format!("auto: account worth {}", usd(v)),
            (true, None, Some(why)) => {
                format!("auto: account value unknown ({why}), so the strictest")
            }
            (true, None, None) => "auto: account value unknown, so the strictest".to_owned(),
        };
        EffectiveTier {
            tier,
            auto,
            account_value_usd: if auto { ctx.account_value_usd } else { None },
            reason,
        }
    }

    pub fn rotation_days(&self, tier: Tier) -> u32 {
        match tier {
            Tier::High | Tier::Auto => self.rotation.high_days,
            Tier::Medium => self.rotation.medium_days,
            Tier::Low => self.rotation.low_days,
        }
    }
}

/// The tier a key's rotation is scheduled by, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveTier {
    /// `high`, `medium` or `low` (never `auto`).
    pub tier: Tier,
    /// `tier = auto` chose it from the account's value.
    pub auto: bool,
    /// For `auto`: the value it was chosen from; `None` when unknown (or the tier was set).
    pub account_value_usd: Option<Decimal>,
    /// `set`, `auto: account worth $…`, or `auto: account value unknown (why), so the strictest`.
    pub reason: String,
}

/// `$12,345.67`: whole cents, thousands separated.
pub fn usd(v: Decimal) -> String {
    let cents = v.round_dp(2);
    let text = format!("{:.2}", cents.abs());
    let (int, frac) = text.split_once('.').unwrap_or((text.as_str(), "00"));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if cents.is_sign_negative() && !cents.is_zero() {
        "-"
    } else {
        ""
    };
    format!("{sign}${grouped}.{frac}")
}

/// One problem found with one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    pub title: String,
    /// Why it matters (the rule's text).
    pub why: String,
    /// What to change, for this key's venue.
    pub remedy: String,
    pub references: Vec<String>,
    /// What exactly was found on this key.
    pub detail: String,
}

/// A grade per key: A best, F worst. See docs/audit.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Grade {
    A,
    B,
    C,
    D,
    F,
}

impl Grade {
    /// A: nothing above info. B: worst is low. C: worst is medium. D: one high.
    /// F: a critical, or two or more highs.
    pub fn of(findings: &[Finding]) -> Grade {
        let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
        let worst = findings.iter().map(|f| f.severity).max();
        match worst {
            None | Some(Severity::Info) => Grade::A,
            Some(Severity::Low) => Grade::B,
            Some(Severity::Medium) => Grade::C,
            Some(Severity::High) if count(Severity::High) == 1 => Grade::D,
            Some(Severity::High) | Some(Severity::Critical) => Grade::F,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Grade::A => "A",
            Grade::B => "B",
            Grade::C => "C",
            Grade::D => "D",
            Grade::F => "F",
        }
    }
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One key to audit: its context and what its venue said (or why it could not be asked).
#[derive(Debug, Clone)]
pub struct AuditInput {
    pub context: KeyContext,
    /// The normalised answer, or a one-line reason the key could not be audited.
    pub outcome: Result<KeyProfile, String>,
}

/// The audit of one key.
#[derive(Debug, Clone)]
pub struct KeyReport {
    pub context: KeyContext,
    /// The tier its rotation is scheduled by (`tier = auto` resolved), and why.
    pub tier: EffectiveTier,
    /// `Err` when the key could not be audited.
    pub outcome: Result<Audited, String>,
}

#[derive(Debug, Clone)]
pub struct Audited {
    pub profile: KeyProfile,
    /// Most severe first, then by rule id.
    pub findings: Vec<Finding>,
    pub grade: Grade,
}

impl KeyReport {
    pub fn findings(&self) -> &[Finding] {
        match &self.outcome {
            Ok(a) => &a.findings,
            Err(_) => &[],
        }
    }

    pub fn grade(&self) -> Option<Grade> {
        self.outcome.as_ref().ok().map(|a| a.grade)
    }
}

/// Audits a batch of keys. Keys with equal fingerprints and different services are one real
/// key shared by several services (`key-shared`).
pub fn audit(
    inputs: &[AuditInput],
    rules: &RuleSet,
    config: &AuditConfig,
    now: OffsetDateTime,
) -> Vec<KeyReport> {
    let mut by_fingerprint: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for i in inputs {
        if let Some(fp) = i.context.fingerprint.as_deref() {
            by_fingerprint
                .entry(fp)
                .or_default()
                .insert(i.context.service.as_str());
        }
    }
    inputs
        .iter()
        .map(|input| {
            let ctx = &input.context;
            let mut shared: BTreeSet<String> = ctx.shared_with.clone();
            if let Some(services) = ctx
                .fingerprint
                .as_deref()
                .and_then(|fp| by_fingerprint.get(fp))
            {
                shared.extend(services.iter().map(|s| (*s).to_owned()));
            }
            shared.remove(&ctx.service);
            let outcome = match &input.outcome {
                // A profile from another venue would get another venue's remedies.
                Ok(profile) if profile.venue != ctx.exchange => Err(format!(
                    "the answer describes a {} key, but `{}` is a {} key",
                    profile.venue, ctx.label, ctx.exchange
                )),
                Ok(profile) => {
                    let findings = eval::evaluate(rules, profile, ctx, &shared, config, now);
                    Ok(Audited {
                        profile: profile.clone(),
                        grade: Grade::of(&findings),
                        findings,
                    })
                }
                Err(e) => Err(e.clone()),
            };
            KeyReport {
                context: ctx.clone(),
                tier: config.tier_of(ctx),
                outcome,
            }
        })
        .collect()
}

/// The process exit code for a finished audit.
///
/// 3 when at least one key could not be audited (an incomplete audit cannot pass, whatever
/// the others show); otherwise 1 when a finding is at or above `fail_on`; otherwise 0. Usage
/// and configuration errors (2) are decided before an audit runs.
pub fn exit_code(reports: &[KeyReport], fail_on: FailOn) -> u8 {
    if reports.iter().any(|r| r.outcome.is_err()) {
        return 3;
    }
    let FailOn::At(threshold) = fail_on else {
        return 0;
    };
    let failing = reports
        .iter()
        .flat_map(|r| r.findings())
        .any(|f| f.severity >= threshold);
    u8::from(failing)
}

/// The kebab-case name of a permission, as JSON spells it.
pub fn permission_name(p: Permission) -> &'static str {
    match p {
        Permission::Read => "read",
        Permission::SpotTrade => "spot-trade",
        Permission::MarginTrade => "margin-trade",
        Permission::FuturesTrade => "futures-trade",
        Permission::OptionsTrade => "options-trade",
        Permission::Withdraw => "withdraw",
        Permission::Transfer => "transfer",
        Permission::Deposit => "deposit",
        Permission::Subaccount => "subaccount",
        Permission::KeyManagement => "key-management",
        Permission::Earn => "earn",
        Permission::Other => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usd_amounts_read_as_people_write_them() {
        for (v, want) in [
            ("0", "$0.00"),
            ("5", "$5.00"),
            ("999.999", "$1,000.00"),
            ("1234567.891", "$1,234,567.89"),
            ("100000", "$100,000.00"),
            ("-2500.5", "-$2,500.50"),
        ] {
            assert_eq!(usd(v.parse().unwrap()), want, "{v}");
        }
    }

    #[test]
    fn an_auto_tier_says_why() {
        let config = AuditConfig::default();
        let mut ctx = KeyContext::new("k", Venue::Okx, "bot", Purpose::Spot);
        let t = config.tier_of(&ctx);
        assert_eq!(
            (t.tier, t.auto, t.account_value_usd),
            (Tier::High, true, None)
        );
        assert_eq!(t.reason, "auto: account value unknown, so the strictest");
        ctx.account_value_note = Some("okx answered 50113".into());
        assert_eq!(
            config.tier_of(&ctx).reason,
            "auto: account value unknown (okx answered 50113), so the strictest"
        );
        ctx.account_value_usd = Some(Decimal::from(1500));
        let t = config.tier_of(&ctx);
        assert_eq!(
            (t.tier, t.reason.as_str()),
            (Tier::Medium, "auto: account worth $1,500.00")
        );
        ctx.tier = Tier::Low;
        let t = config.tier_of(&ctx);
        assert_eq!(
            (t.tier, t.auto, t.account_value_usd),
            (Tier::Low, false, None)
        );
        assert_eq!(t.reason, "set");
    }

    #[test]
    fn names_round_trip() {
        for s in Severity::ALL {
            assert_eq!(s.as_str().parse::<Severity>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        for p in Purpose::ALL {
            assert_eq!(p.as_str().parse::<Purpose>(), Ok(p));
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{p}\""));
        }
        for t in [Tier::Auto, Tier::High, Tier::Medium, Tier::Low] {
            assert_eq!(t.as_str().parse::<Tier>(), Ok(t));
        }
        assert!("spot-ish".parse::<Purpose>().is_err());
        assert!("urgent".parse::<Tier>().is_err());
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
    }

    #[test]
    fn permission_names_match_serde() {
        use Permission::*;
        for p in [
            Read,
            SpotTrade,
            MarginTrade,
            FuturesTrade,
            OptionsTrade,
            Withdraw,
            Transfer,
            Deposit,
            Subaccount,
            KeyManagement,
            Earn,
            Other,
        ] {
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", permission_name(p))
            );
        }
    }

    #[test]
    fn purposes_allow_only_what_they_trade() {
        use Permission::*;
        assert!(Purpose::Spot.allows(SpotTrade) && !Purpose::Spot.allows(FuturesTrade));
        assert!(Purpose::Margin.allows(MarginTrade) && Purpose::Margin.allows(SpotTrade));
        assert!(Purpose::Futures.allows(FuturesTrade) && !Purpose::Futures.allows(SpotTrade));
        assert!(Purpose::Trading.allows(OptionsTrade) && !Purpose::Trading.allows(Withdraw));
        assert!(!Purpose::ReadOnly.allows(SpotTrade) && Purpose::ReadOnly.allows(Read));
        assert!(!Purpose::ReadOnly.trades());
    }
}
