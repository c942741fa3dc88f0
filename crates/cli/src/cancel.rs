//! `keyfence kill --cancel-open`: cancel the open orders of every real key a bot trades through,
//! at the upstream the gateway config names for its venue.

use std::collections::BTreeSet;

use keyfence_exchange::SigningKey;
use keyfence_gateway::config::GatewayConfig;
use keyfence_store::BotRecord;
use keyfence_upstream::{Policy, Upstream};
use keyfence_vault::Vault;

pub struct CancelReport {
    pub lines: Vec<String>,
    pub failed: usize,
}

pub async fn cancel_open(cfg: &GatewayConfig, vault: &Vault, bots: &[BotRecord]) -> CancelReport {
    let mut report = CancelReport {
        lines: Vec::new(),
        failed: 0,
    };
    let labels: BTreeSet<&str> = bots.iter().map(|b| b.key_label.as_str()).collect();
    let rng = ring::rand::SystemRandom::new();
    for label in labels {
        let fail = |report: &mut CancelReport, why: String| {
            report.failed += 1;
            report.lines.push(format!("{label}: not cancelled: {why}"));
        };
        let Some(entry) = vault.get(label) else {
            fail(&mut report, "not in the vault".into());
            continue;
        };
        let venue = entry.meta.exchange;
        let Some(listener) = cfg.listeners.get(&venue) else {
            fail(
                &mut report,
                format!("the config has no [listeners.{venue}]"),
            );
            continue;
        };
        let roots = match &listener.ca_cert {
            Some(p) => match std::fs::read_to_string(p) {
                Ok(pem) => vec![pem],
                Err(e) => {
                    fail(
                        &mut report,
                        format!("cannot read ca_cert `{}`: {e}", p.display()),
                    );
                    continue;
                }
            },
            None => Vec::new(),
        };
        let roots: Vec<&str> = roots.iter().map(String::as_str).collect();
        let up = match Upstream::with_roots(Policy::default(), &roots) {
            Ok(u) => u,
            Err(e) => {
                fail(&mut report, e.to_string());
                continue;
            }
        };
        let key = match SigningKey::from_credential(venue, entry.credential(), &rng) {
            Ok(k) => k,
            Err(e) => {
                fail(&mut report, e.to_string());
                continue;
            }
        };
        let host = listener
            .upstream
            .split("://")
            .nth(1)
            .unwrap_or("")
            .split('/')
            .next()
            .unwrap_or("")
            .to_owned();
        let mut last = 0u64;
        let mut nonce = move || {
            last = keyfence_gateway::now_us().max(last + 1);
            last
        };
        match keyfence_upstream::cancel::cancel_open(
            &up,
            &listener.upstream,
            venue,
            &key,
            &mut nonce,
            &host,
        )
        .await
        {
            Ok(s) => report.lines.push(match s.listed {
                Some(n) => format!(
                    "{label} ({venue}): {n} open order(s) found, {} cancelled",
                    s.cancelled
                ),
                None => format!("{label} ({venue}): {} open order(s) cancelled", s.cancelled),
            }),
            Err(e) => fail(&mut report, e.to_string()),
        }
    }
    report
}
