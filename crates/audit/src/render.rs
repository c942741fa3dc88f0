//! Report formats, as pure functions of the reports: table, JSON (docs/audit-json.md),
//! Markdown and SARIF 2.1.0.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use crate::rules::RuleSet;
use crate::{EffectiveTier, Finding, KeyReport, Severity};

/// The JSON format's version; bumped only on an incompatible change.
pub const JSON_VERSION: u32 = 1;

// ---------------------------------------------------------------------------------------------
// Table

fn summary(findings: &[Finding]) -> String {
    let parts: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .filter(|s| **s != Severity::Info)
        .filter_map(|s| {
            let n = findings.iter().filter(|f| f.severity == *s).count();
            (n > 0).then(|| format!("{n} {s}"))
        })
        .collect();
    if parts.is_empty() {
        "no findings".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The tier cell: `low` when set, `medium (auto: $5,000.00)`, `high (auto: value unknown)`.
fn tier_cell(t: &EffectiveTier) -> String {
    match (t.auto, t.account_value_usd) {
        (false, _) => t.tier.to_string(),
        (true, Some(v)) => format!("{} (auto: {})", t.tier, crate::usd(v)),
        (true, None) => format!("{} (auto: value unknown)", t.tier),
    }
}

/// A plain aligned table of keys, then why each `tier = auto` key got its tier, then each key's
/// findings with their remedies.
pub fn table(reports: &[KeyReport]) -> String {
    let header = ["LABEL", "EXCHANGE", "SERVICE", "TIER", "GRADE", "FINDINGS"];
    let rows: Vec<[String; 6]> = reports
        .iter()
        .map(|r| {
            let c = &r.context;
            let (grade, what) = match &r.outcome {
                Ok(a) => (a.grade.to_string(), summary(&a.findings)),
                Err(e) => ("-".to_owned(), format!("error: {e}")),
            };
            [
                c.label.clone(),
                c.exchange.to_string(),
                c.service.clone(),
                tier_cell(&r.tier),
                grade,
                what,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: [&str; 6]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, header);
    for row in &rows {
        line(&mut out, row.each_ref().map(String::as_str));
    }
    let autos: Vec<&KeyReport> = reports.iter().filter(|r| r.tier.auto).collect();
    if !autos.is_empty() {
        out.push_str("\ntier = auto\n");
        for r in autos {
            let _ = writeln!(
                out,
                "  {}: {}, {}",
                r.context.label, r.tier.tier, r.tier.reason
            );
        }
    }
    for r in reports {
        let findings = r.findings();
        if findings.is_empty() {
            continue;
        }
        let c = &r.context;
        let _ = write!(out, "\n{} ({}, {})", c.label, c.exchange, c.service);
        if let Some(g) = r.grade() {
            let _ = write!(out, ": grade {g}");
        }
        out.push('\n');
        for f in findings {
            let sev = f.severity.as_str().to_uppercase();
            let _ = writeln!(out, "  {sev:<8}  {}: {}", f.rule, f.title);
            if !f.detail.is_empty() {
                let _ = writeln!(out, "            {}", f.detail);
            }
            let _ = writeln!(out, "            help: {}", f.remedy);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// JSON

#[derive(Serialize)]
struct JsonReport<'a> {
    version: u32,
    keys: Vec<JsonKey<'a>>,
}

#[derive(Serialize)]
struct JsonKey<'a> {
    label: &'a str,
    exchange: &'a str,
    service: &'a str,
    status: &'static str,
    error: Option<&'a str>,
    grade: Option<&'static str>,
    /// Added in version 1 (additive): the effective tier, how it was chosen, and why.
    tier: &'static str,
    tier_source: &'static str,
    account_value_usd: Option<rust_decimal::Decimal>,
    tier_reason: &'a str,
    profile: Option<&'a keyfence_types::KeyProfile>,
    findings: Vec<JsonFinding<'a>>,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    rule: &'a str,
    severity: Severity,
    title: &'a str,
    remedy: &'a str,
}

/// A USD amount with exactly two decimal places (`4000` -> `4000.00`), as documented.
fn cents(v: rust_decimal::Decimal) -> rust_decimal::Decimal {
    let mut v = v.round_dp(2);
    v.rescale(2);
    v
}

/// The JSON report, schema version 1 (docs/audit-json.md).
pub fn json(reports: &[KeyReport]) -> String {
    let keys = reports
        .iter()
        .map(|r| {
            let c = &r.context;
            let (status, error, grade, profile) = match &r.outcome {
                Ok(a) => ("ok", None, Some(a.grade.as_str()), Some(&a.profile)),
                Err(e) => ("error", Some(e.as_str()), None, None),
            };
            JsonKey {
                label: &c.label,
                exchange: c.exchange.as_str(),
                service: &c.service,
                status,
                error,
                grade,
                tier: r.tier.tier.as_str(),
                tier_source: if r.tier.auto { "auto" } else { "set" },
                account_value_usd: r.tier.account_value_usd.map(cents),
                tier_reason: &r.tier.reason,
                profile,
                findings: r
                    .findings()
                    .iter()
                    .map(|f| JsonFinding {
                        rule: &f.rule,
                        severity: f.severity,
                        title: &f.title,
                        remedy: &f.remedy,
                    })
                    .collect(),
            }
        })
        .collect();
    let report = JsonReport {
        version: JSON_VERSION,
        keys,
    };
    match serde_json::to_string_pretty(&report) {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        Err(e) => format!(
            "{{\"version\": {JSON_VERSION}, \"error\": {:?}}}\n",
            e.to_string()
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Markdown

fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// A Markdown report: a summary table, then each key's findings.
pub fn markdown(reports: &[KeyReport]) -> String {
    let mut out = String::from("# keyfence audit\n\n");
    out.push_str("| Label | Exchange | Service | Tier | Grade | Findings |\n");
    out.push_str("| --- | --- | --- | --- | --- | --- |\n");
    for r in reports {
        let c = &r.context;
        let (grade, what) = match &r.outcome {
            Ok(a) => (a.grade.to_string(), summary(&a.findings)),
            Err(e) => ("–".to_owned(), format!("error: {e}")),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | **{grade}** | {} |",
            md(&c.label),
            c.exchange,
            md(&c.service),
            md(&tier_cell(&r.tier)),
            md(&what)
        );
    }
    for r in reports {
        let c = &r.context;
        let _ = write!(
            out,
            "\n## `{}` ({}, {})\n\n",
            md(&c.label),
            c.exchange,
            md(&c.service)
        );
        if r.tier.auto {
            let _ = writeln!(out, "Tier **{}**: {}.\n", r.tier.tier, md(&r.tier.reason));
        }
        match &r.outcome {
            Err(e) => {
                let _ = writeln!(out, "Could not be audited: {}", md(e));
            }
            Ok(a) if a.findings.is_empty() => {
                let _ = writeln!(out, "Grade **{}**: no findings.", a.grade);
            }
            Ok(a) => {
                let _ = writeln!(out, "Grade **{}**.\n", a.grade);
                out.push_str("| Severity | Rule | Finding | Remedy |\n");
                out.push_str("| --- | --- | --- | --- |\n");
                for f in &a.findings {
                    let finding = if f.detail.is_empty() {
                        md(&f.title)
                    } else {
                        format!("{}: {}", md(&f.title), md(&f.detail))
                    };
                    let _ = writeln!(
                        out,
                        "| {} | `{}` | {finding} | {} |",
                        f.severity,
                        f.rule,
                        md(&f.remedy)
                    );
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// SARIF

/// The `$schema` SARIF files name.
pub const SARIF_SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub code scanning's `security-severity` (a CVSS-like score); none for info.
fn security_severity(s: Severity) -> Option<&'static str> {
    match s {
        Severity::Critical => Some("9.5"),
        Severity::High => Some("8.0"),
        Severity::Medium => Some("5.5"),
        Severity::Low => Some("3.0"),
        Severity::Info => None,
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn uri_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn pascal(id: &str) -> String {
    id.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// A SARIF 2.1.0 log for GitHub code scanning. Each finding is a result located at
/// `keyfence/keys/<exchange>/<label>` (a logical path: keys are not files); keys that could not
/// be audited are tool execution notifications, and make `executionSuccessful` false.
pub fn sarif(reports: &[KeyReport], rules: &RuleSet, tool_version: &str) -> String {
    let rule_list: Vec<&crate::Rule> = rules.iter().collect();
    let descriptors: Vec<Value> = rule_list
        .iter()
        .map(|r| {
            let mut props = json!({
                "tags": ["security", "keyfence", r.severity.as_str()],
            });
            if let (Some(s), Some(obj)) = (security_severity(r.severity), props.as_object_mut()) {
                obj.insert("security-severity".into(), json!(s));
            }
            let remedies: String = r.remedy.values().map(|t| format!("- {t}\n")).collect();
            json!({
                "id": r.id,
                "name": pascal(&r.id),
                "shortDescription": {"text": r.title},
                "fullDescription": {"text": r.why},
                "help": {
                    "text": format!("{}\n\n{}", r.why, remedies),
                    "markdown": format!("{}\n\n**Remedy**\n\n{}", r.why, remedies),
                },
                "helpUri": r.references.first().cloned().unwrap_or_default(),
                "defaultConfiguration": {"level": sarif_level(r.severity)},
                "properties": props,
            })
        })
        .collect();
    let mut results = Vec::new();
    let mut notifications = Vec::new();
    for r in reports {
        let c = &r.context;
        let uri = format!(
            "keyfence/keys/{}/{}",
            c.exchange.as_str(),
            uri_segment(&c.label)
        );
        match &r.outcome {
            Err(e) => notifications.push(json!({
                "level": "error",
                "message": {"text": format!("key `{}` ({}) could not be audited: {e}", c.label, c.exchange)},
            })),
            Ok(a) => {
                for f in &a.findings {
                    let index = rule_list.iter().position(|x| x.id == f.rule);
                    let mut text = format!("{}: {} on key `{}` ({}, service `{}`)", f.rule, f.title, c.label, c.exchange, c.service);
                    if !f.detail.is_empty() {
                        let _ = write!(text, ": {}", f.detail);
                    }
                    let _ = write!(text, ". Remedy: {}", f.remedy);
                    let mut result = json!({
                        "ruleId": f.rule,
                        "level": sarif_level(f.severity),
                        "message": {"text": text},
                        "locations": [{
                            "physicalLocation": {
                                "artifactLocation": {"uri": uri},
                                "region": {"startLine": 1},
                            },
                            "logicalLocations": [{
                                "name": c.label,
                                "fullyQualifiedName": format!("{}/{}", c.exchange, c.label),
                                "kind": "resource",
                            }],
                        }],
                        "partialFingerprints": {
                            "keyfence/v1": format!("{}/{}/{}", c.exchange, c.label, f.rule),
                        },
                        "properties": {
                            "severity": f.severity.as_str(),
                            "grade": a.grade.as_str(),
                            "service": c.service,
                        },
                    });
                    if let (Some(i), Some(obj)) = (index, result.as_object_mut()) {
                        obj.insert("ruleIndex".into(), json!(i));
                    }
                    results.push(result);
                }
            }
        }
    }
    let log = json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "keyfence",
                "version": tool_version,
                "informationUri": "https://example.invalid/keyfence",
                "rules": descriptors,
            }},
            "invocations": [{
                "executionSuccessful": notifications.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    });
    match serde_json::to_string_pretty(&log) {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        Err(e) => format!("{{\"error\": {:?}}}\n", e.to_string()),
    }
}
