//! Rules as data: one TOML file per rule under `rules/`, compiled in. Each carries its id,
//! severity, title, why it matters, a remedy per venue, references, and positive and negative
//! example keys that [`check_bundled`] runs (`keyfence rules check`).

use std::collections::{BTreeMap, BTreeSet};

use keyfence_types::{KeyProfile, Permission, Venue};
use rust_decimal::Decimal;
use serde::Deserialize;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::eval::RULE_IDS;
use crate::{AuditConfig, AuditInput, Finding, KeyContext, Purpose, Severity, Tier};

/// The bundled rule files, by file name.
pub const BUNDLED: &[(&str, &str)] = &[
    (
        "withdraw-enabled.toml",
        include_str!("../rules/withdraw-enabled.toml"),
    ),
    (
        "transfer-enabled.toml",
        include_str!("../rules/transfer-enabled.toml"),
    ),
    (
        "key-management-enabled.toml",
        include_str!("../rules/key-management-enabled.toml"),
    ),
    (
        "no-ip-restriction.toml",
        include_str!("../rules/no-ip-restriction.toml"),
    ),
    (
        "ip-range-too-broad.toml",
        include_str!("../rules/ip-range-too-broad.toml"),
    ),
    (
        "excess-permission.toml",
        include_str!("../rules/excess-permission.toml"),
    ),
    (
        "rotation-overdue.toml",
        include_str!("../rules/rotation-overdue.toml"),
    ),
    (
        "key-expiring.toml",
        include_str!("../rules/key-expiring.toml"),
    ),
    ("key-shared.toml", include_str!("../rules/key-shared.toml")),
    (
        "master-account-key.toml",
        include_str!("../rules/master-account-key.toml"),
    ),
    (
        "cannot-trade.toml",
        include_str!("../rules/cannot-trade.toml"),
    ),
    (
        "not-checked.toml",
        include_str!("../rules/not-checked.toml"),
    ),
];

/// The time examples are evaluated at, unless an example names its own `now`.
pub const EXAMPLE_NOW: OffsetDateTime = datetime!(2026-06-01 00:00 UTC);

/// A rule file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    id: String,
    severity: String,
    title: String,
    why: String,
    remedy: BTreeMap<String, String>,
    references: Vec<String>,
    #[serde(default)]
    examples: Examples,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Examples {
    #[serde(default)]
    pub positive: Vec<Example>,
    #[serde(default)]
    pub negative: Vec<Example>,
}

/// An example key: the venue's facts (as a [`KeyProfile`] holds them) and keyfence's context.
/// Fields left out are unknown (`None`) or empty.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// What the example shows.
    pub note: String,
    pub venue: Venue,
    #[serde(default)]
    pub permissions: BTreeSet<Permission>,
    #[serde(default)]
    pub ip_restricted: Option<bool>,
    #[serde(default)]
    pub ip_allowlist: Vec<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires: Option<OffsetDateTime>,
    #[serde(default)]
    pub master_account: Option<bool>,
    #[serde(default)]
    pub purpose: Option<Purpose>,
    #[serde(default)]
    pub tier: Option<Tier>,
    #[serde(default)]
    pub account_value_usd: Option<Decimal>,
    /// keyfence's own dates for the key.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub vault_created: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_rotated: Option<OffsetDateTime>,
    #[serde(default)]
    pub shared_with: BTreeSet<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub now: Option<OffsetDateTime>,
    /// For a positive example: the severity the finding must have (default: the rule's).
    #[serde(default)]
    pub severity: Option<Severity>,
}

impl Example {
    pub fn profile(&self) -> KeyProfile {
        let mut p = KeyProfile::empty(self.venue);
        p.permissions = self.permissions.clone();
        p.raw_permissions = self
            .permissions
            .iter()
            .map(|x| crate::permission_name(*x).to_owned())
            .collect();
        p.ip_restricted = self.ip_restricted;
        p.ip_allowlist = self.ip_allowlist.clone();
        p.created = self.created;
        p.expires = self.expires;
        p.master_account = self.master_account;
        p.read_only = self.permissions.iter().all(|x| *x == Permission::Read);
        p
    }

    pub fn context(&self) -> KeyContext {
        let mut c = KeyContext::new(
            "example",
            self.venue,
            "example-bot",
            self.purpose.unwrap_or(Purpose::Spot),
        );
        c.tier = self.tier.unwrap_or(Tier::Auto);
        c.account_value_usd = self.account_value_usd;
        c.created = self.vault_created;
        c.last_rotated = self.last_rotated;
        c.shared_with = self.shared_with.clone();
        c
    }

    pub fn now(&self) -> OffsetDateTime {
        self.now.unwrap_or(EXAMPLE_NOW)
    }

    pub fn input(&self) -> AuditInput {
        AuditInput {
            context: self.context(),
            outcome: Ok(self.profile()),
        }
    }
}

/// One loaded, validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub severity: Severity,
    pub title: String,
    pub why: String,
    pub remedy: BTreeMap<Venue, String>,
    pub references: Vec<String>,
    pub examples: Examples,
}

impl Rule {
    pub(crate) fn finding(
        &self,
        venue: Venue,
        severity: Option<Severity>,
        detail: String,
    ) -> Finding {
        Finding {
            rule: self.id.clone(),
            severity: severity.unwrap_or(self.severity),
            title: self.title.clone(),
            why: self.why.clone(),
            remedy: self.remedy.get(&venue).cloned().unwrap_or_default(),
            references: self.references.clone(),
            detail,
        }
    }
}

/// The rules an audit runs, in file order.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    /// The bundled rules. An error lists every problem (a test keeps this from happening).
    pub fn bundled() -> Result<RuleSet, Vec<String>> {
        load(BUNDLED)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter()
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Joins the lines of each paragraph: rule files wrap their prose, reports should not.
fn reflow(text: &str) -> String {
    text.trim()
        .split("\n\n")
        .map(|para| para.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn parse_one(file: &str, text: &str, problems: &mut Vec<String>) -> Option<Rule> {
    let raw: RuleFile = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            problems.push(format!("{file}: not a rule file: {}", e.message()));
            return None;
        }
    };
    let before = problems.len();
    let mut problem = |m: String| problems.push(format!("{file}: {m}"));
    if !RULE_IDS.contains(&raw.id.as_str()) {
        problem(format!(
            "unknown rule id `{}`: the engine has no condition for it",
            raw.id
        ));
    }
    if file.strip_suffix(".toml") != Some(raw.id.as_str()) {
        problem(format!("file name does not match id `{}`", raw.id));
    }
    let severity = match raw.severity.parse::<Severity>() {
        Ok(s) => Some(s),
        Err(e) => {
            problem(e.to_string());
            None
        }
    };
    for (what, text) in [("title", &raw.title), ("why", &raw.why)] {
        if text.trim().is_empty() {
            problem(format!("empty `{what}`"));
        }
    }
    let mut remedy = BTreeMap::new();
    for (name, text) in &raw.remedy {
        match name.parse::<Venue>() {
            Ok(v) if !text.trim().is_empty() => {
                remedy.insert(v, text.trim().to_owned());
            }
            Ok(v) => problem(format!("empty remedy for {v}")),
            Err(e) => problem(format!("remedy: {e}")),
        }
    }
    for v in Venue::ALL {
        if !raw.remedy.contains_key(v.as_str()) {
            problem(format!("missing remedy for {v}"));
        }
    }
    if raw.references.is_empty() {
        problem("no references".into());
    }
    if raw.examples.positive.is_empty() || raw.examples.negative.is_empty() {
        problem("needs at least one positive and one negative example".into());
    }
    let severity = severity?;
    (problems.len() == before).then(|| Rule {
        id: raw.id,
        severity,
        title: raw.title.trim().to_owned(),
        why: reflow(&raw.why),
        remedy,
        references: raw.references,
        examples: raw.examples,
    })
}

/// Loads and validates rule files; every problem is reported, not just the first.
pub fn load(sources: &[(&str, &str)]) -> Result<RuleSet, Vec<String>> {
    let mut problems = Vec::new();
    let mut rules: Vec<Rule> = Vec::new();
    for (file, text) in sources {
        if let Some(rule) = parse_one(file, text, &mut problems) {
            if rules.iter().any(|r| r.id == rule.id) {
                problems.push(format!("{file}: rule `{}` is defined twice", rule.id));
            } else {
                rules.push(rule);
            }
        }
    }
    for id in RULE_IDS {
        if !sources
            .iter()
            .any(|(f, _)| f.strip_suffix(".toml") == Some(*id))
        {
            problems.push(format!("no rule file for `{id}`"));
        }
    }
    if problems.is_empty() {
        Ok(RuleSet { rules })
    } else {
        Err(problems)
    }
}

/// What `rules check` found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub rules: usize,
    pub examples: usize,
    pub problems: Vec<String>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// `keyfence rules check` over the bundled rules.
pub fn check_bundled() -> CheckReport {
    check_sources(BUNDLED)
}

/// Loads and validates `sources`, then runs every example through the whole engine: a positive
/// example must produce the rule's finding (with the expected severity), a negative one must not.
pub fn check_sources(sources: &[(&str, &str)]) -> CheckReport {
    let set = match load(sources) {
        Ok(s) => s,
        Err(problems) => {
            return CheckReport {
                rules: 0,
                examples: 0,
                problems,
            };
        }
    };
    let config = AuditConfig::default();
    let mut report = CheckReport {
        rules: set.len(),
        ..CheckReport::default()
    };
    for rule in set.iter() {
        let cases = rule
            .examples
            .positive
            .iter()
            .map(|e| (true, e))
            .chain(rule.examples.negative.iter().map(|e| (false, e)));
        for (positive, example) in cases {
            report.examples += 1;
            let reports = crate::audit(&[example.input()], &set, &config, example.now());
            let found = reports
                .first()
                .and_then(|r| r.findings().iter().find(|f| f.rule == rule.id).cloned());
            let kind = if positive { "positive" } else { "negative" };
            let name = format!("{}: {kind} example `{}`", rule.id, example.note);
            match (positive, found) {
                (true, None) => report
                    .problems
                    .push(format!("{name}: the rule did not fire")),
                (true, Some(f)) => {
                    let want = example.severity.unwrap_or(rule.severity);
                    if f.severity != want {
                        report
                            .problems
                            .push(format!("{name}: severity {} not {want}", f.severity));
                    }
                }
                (false, Some(f)) => report
                    .problems
                    .push(format!("{name}: the rule fired ({})", f.detail)),
                (false, None) => {}
            }
        }
    }
    report
}
