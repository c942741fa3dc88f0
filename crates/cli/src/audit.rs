//! `keyfence audit`: ask each exchange what each key in the vault can do, grade it against its
//! purpose, and say what to change.

use std::collections::BTreeSet;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::{Args, ValueEnum};
use keyfence_audit::{
    AuditConfig, AuditInput, FailOn, KeyContext, RuleSet, Tier, audit, exit_code,
};
use keyfence_exchange::{KeyProfile, Permission, Venue, production_base_url};
use keyfence_upstream::introspect::{IntrospectError, Target, introspect_all};
use keyfence_upstream::market::value_all;
use keyfence_upstream::{Policy, Upstream};
use keyfence_vault::Entry;

use crate::vault::{Failure, Globals, home, open, usage};

const EXAMPLES: &str = "Examples:
  keyfence audit --all                          # every key in the vault, as a table
  keyfence audit binance-main okx-bot           # some keys
  keyfence audit --all --format sarif > keyfence.sarif   # for GitHub code scanning
  keyfence audit --all --format json --fail-on critical  # in CI: fail only on critical
  keyfence audit --all --rotation-days high=14 --rotation-days low=120

Tiers: a key's tier (`vault add --tier`) sets its rotation schedule: high 30 days, medium 60,
low 90 unless --rotation-days says otherwise. `auto` (the default) values the account in USD
from its balances and the exchange's prices when the key can read them: over $10,000 is high,
over $1,000 medium, else low; a value that cannot be read is treated as high, and the report
says why.

Exit codes: 0 no finding at or above --fail-on; 1 such findings; 2 usage or configuration
error; 3 at least one key could not be audited (each is reported; the others still are).";

#[derive(Args, Debug)]
#[command(after_long_help = EXAMPLES)]
pub struct AuditArgs {
    /// Labels of the keys to audit (see `keyfence vault list`).
    #[arg(
        value_name = "LABEL",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub labels: Vec<String>,
    /// Audit every key in the vault.
    #[arg(long)]
    pub all: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: AuditFormat,
    /// Fail (exit 1) on a finding at or above this severity: critical, high, medium, low,
    /// info, or never.
    #[arg(long, default_value = "high", value_name = "SEVERITY")]
    pub fail_on: FailOn,
    /// How many exchanges to ask at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub concurrency: usize,
    /// Also trust this PEM certificate (the simulator's: `GET /admin/cert`).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Rotate keys of TIER (high, medium or low) every DAYS days (default: high=30,
    /// medium=60, low=90). Repeat for several tiers.
    #[arg(long = "rotation-days", value_name = "TIER=DAYS", value_parser = parse_rotation_days)]
    pub rotation_days: Vec<(Tier, u32)>,
}

/// `TIER=DAYS`: a tier other than `auto` (which is not a schedule of its own) and a positive
/// number of days.
fn parse_rotation_days(s: &str) -> Result<(Tier, u32), String> {
    let Some((tier, days)) = s.split_once('=') else {
        return Err(format!(
            "`{s}` is not TIER=DAYS; for example `--rotation-days high=14`"
        ));
    };
    let tier = match tier.trim().parse::<Tier>() {
        Ok(Tier::Auto) | Err(_) => {
            return Err(format!(
                "`{tier}` is not a tier with a schedule; use high, medium or low"
            ));
        }
        Ok(t) => t,
    };
    match days.trim().parse::<u32>() {
        Ok(d) if d > 0 => Ok((tier, d)),
        _ => Err(format!("`{days}` is not a positive whole number of days")),
    }
}

/// The audit's configuration: the defaults with the command line's rotation schedule.
fn config(args: &AuditArgs) -> AuditConfig {
    let mut config = AuditConfig::default();
    for (tier, days) in &args.rotation_days {
        match tier {
            Tier::High => config.rotation.high_days = *days,
            Tier::Medium => config.rotation.medium_days = *days,
            Tier::Low => config.rotation.low_days = *days,
            Tier::Auto => {}
        }
    }
    config
}

/// Can this key read the balances `tier = auto` needs? Kraken's read permissions are separate
/// per kind of data: only "Query Funds" reads balances.
fn can_read_balances(profile: &KeyProfile) -> bool {
    match profile.venue {
        Venue::Kraken => profile.raw_permissions.iter().any(|p| p == "query-funds"),
        _ => profile.can(Permission::Read),
    }
}

/// For `tier = auto` keys that were introspected: the account's value, or why it is unknown.
/// Never fails the audit: an unknown value only makes the tier `high`.
pub(crate) async fn value_accounts(
    up: &Upstream,
    contexts: &mut [KeyContext],
    results: Vec<(Target, Result<KeyProfile, IntrospectError>)>,
    concurrency: usize,
) -> Vec<Result<KeyProfile, IntrospectError>> {
    let mut outcomes = Vec::with_capacity(results.len());
    let mut to_value: Vec<(usize, Target)> = Vec::new();
    for (i, (target, outcome)) in results.into_iter().enumerate() {
        if let (Some(ctx), Ok(profile)) = (contexts.get_mut(i), &outcome)
            && ctx.tier == Tier::Auto
        {
            if can_read_balances(profile) {
                to_value.push((i, target));
            } else {
                ctx.account_value_note = Some("the key cannot read balances".to_owned());
            }
        }
        outcomes.push(outcome);
    }
    let (indices, targets): (Vec<usize>, Vec<Target>) = to_value.into_iter().unzip();
    let values = value_all(up, targets, concurrency).await;
    for (i, (target, value)) in indices.into_iter().zip(values) {
        let Some(ctx) = contexts.get_mut(i) else {
            continue;
        };
        if ctx.label != target.label {
            continue;
        }
        match value {
            Ok(usd) => ctx.account_value_usd = Some(usd),
            Err(e) => ctx.account_value_note = Some(e.to_string()),
        }
    }
    outcomes
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditFormat {
    Table,
    Json,
    Markdown,
    Sarif,
}

/// What the audit needs to know about a vault entry beyond what its venue says.
pub(crate) fn context(e: &Entry) -> KeyContext {
    let m = &e.meta;
    let mut ctx = KeyContext::new(&m.label, m.exchange, &m.service, m.purpose);
    ctx.tier = m.tier;
    ctx.created = Some(m.created);
    ctx.last_rotated = Some(m.last_rotated);
    ctx.fingerprint = Some(m.fingerprint.clone());
    ctx.shared_with = BTreeSet::new();
    ctx
}

/// Run the audit; the exit code is the audit's (0, 1, 3) or 2 for usage errors.
pub async fn run(g: &Globals, args: AuditArgs) -> Result<u8, Failure> {
    let rules = RuleSet::bundled().map_err(|p| Failure {
        code: 2,
        message: format!("the bundled rules are invalid: {}", p.join("; ")),
    })?;
    let home = home(g)?;
    let (mut vault, key) = open(g, &home)?;
    let entries: Vec<&Entry> = if args.all {
        vault.entries().iter().collect()
    } else {
        let mut out = Vec::new();
        for label in &args.labels {
            out.push(vault.get(label).ok_or_else(|| {
                usage(format!(
                    "no key labelled `{label}` in the vault; `keyfence vault list` shows them"
                ))
            })?);
        }
        out
    };
    if entries.is_empty() {
        return Err(usage(
            "the vault holds no keys; add one with `keyfence vault add`",
        ));
    }

    let roots = match &args.ca_cert {
        Some(p) => vec![std::fs::read_to_string(p).map_err(|e| Failure {
            code: 2,
            message: format!("cannot read `{}`: {e}", p.display()),
        })?],
        None => Vec::new(),
    };
    let roots: Vec<&str> = roots.iter().map(String::as_str).collect();
    let up = Upstream::with_roots(Policy::default(), &roots).map_err(|e| Failure {
        code: 2,
        message: e.to_string(),
    })?;

    let contexts: Vec<KeyContext> = entries.iter().map(|e| context(e)).collect();
    let targets: Vec<Target> = entries
        .iter()
        .map(|e| Target {
            label: e.meta.label.clone(),
            venue: e.meta.exchange,
            base_url: e
                .meta
                .endpoint
                .clone()
                .unwrap_or_else(|| production_base_url(e.meta.exchange).to_owned()),
            credential: e.credential().clone(),
        })
        .collect();
    let total = targets.len();
    let progress = std::io::stderr().is_terminal() && std::io::stdout().is_terminal();
    let done = Arc::new(AtomicUsize::new(0));
    let seen = done.clone();
    let results = introspect_all(&up, targets, args.concurrency, move |label| {
        let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
        if progress {
            eprint!("\raudited {n}/{total} keys ({label})\x1b[K");
        }
    })
    .await;
    if progress {
        eprint!("\r\x1b[K");
    }
    let mut contexts = contexts;
    let results = value_accounts(&up, &mut contexts, results, args.concurrency).await;

    let inputs: Vec<AuditInput> = contexts
        .into_iter()
        .zip(results)
        .map(|(context, r)| AuditInput {
            context,
            outcome: r.map_err(|e| {
                format!(
                    "{e} (at fault: {})",
                    match e.blame() {
                        keyfence_upstream::introspect::IntrospectBlame::Key =>
                            "the key or its settings",
                        keyfence_upstream::introspect::IntrospectBlame::Exchange => "the exchange",
                        keyfence_upstream::introspect::IntrospectBlame::Keyfence =>
                            "keyfence's configuration",
                    }
                )
            }),
        })
        .collect();
    let now = time::OffsetDateTime::now_utc();
    let reports = audit(&inputs, &rules, &config(&args), now);

    let out = match args.format {
        AuditFormat::Table => keyfence_audit::render::table(&reports),
        AuditFormat::Json => keyfence_audit::render::json(&reports),
        AuditFormat::Markdown => keyfence_audit::render::markdown(&reports),
        AuditFormat::Sarif => {
            keyfence_audit::render::sarif(&reports, &rules, env!("CARGO_PKG_VERSION"))
        }
    };
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(out.as_bytes());
        if !out.ends_with('\n') {
            let _ = stdout.write_all(b"\n");
        }
        let _ = stdout.flush();
    }

    // Remember each key's grade in the vault (shown by `vault list`).
    let mut changed = false;
    for r in &reports {
        if let Some(grade) = r.grade() {
            vault.set_grade(&r.context.label, grade.as_str())?;
            changed = true;
        }
    }
    if changed {
        vault.save(&key)?;
    }
    Ok(exit_code(&reports, args.fail_on))
}
