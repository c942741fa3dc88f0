//! Every audit rule, end to end, on every venue: a key configured in the simulator in the
//! venue's own terms is introspected through the real path (`introspect`), graded by
//! `keyfence_audit::audit`, and the rule must fire on the key set up to trigger it and stay
//! quiet on the clean one. Where the venue's answer cannot carry the fact, the rule must never
//! fire and must be listed under `not-checked` instead; where the venue has no such setting at
//! all, it must neither fire nor be listed. The matrix is in docs/audit.md ("Proven on the
//! simulator").
#![allow(clippy::unwrap_used, clippy::panic)] // test code

use std::fmt::Write as _;
use std::time::Duration;

use keyfence_audit::{
    AuditConfig, AuditInput, KeyContext, KeyReport, Purpose, RuleSet, Tier, audit,
};
use keyfence_exchange::{Credential, SecretString, Venue, crypto};
use keyfence_sim::{SimConfig, start};
use keyfence_upstream::introspect::{Nonces, Target, introspect};
use keyfence_upstream::{Policy, Upstream};
use ring::rand::SystemRandom;
use time::OffsetDateTime;
use time::macros::datetime;

/// The audit's clock. Far enough ahead of the wall clock that a key expiring a week after it
/// is still valid in the simulator (which checks expiry against the real time).
const NOW: OffsetDateTime = datetime!(2030-06-01 00:00 UTC);
/// 12 days before NOW: fresh for every tier.
const RECENT: &str = "2030-05-20T00:00:00Z";
/// 151 days before NOW: more than twice the high tier's 30 days.
const OLD: &str = "2030-01-01T00:00:00Z";
/// 7 days after NOW.
const SOON: &str = "2030-06-08T00:00:00Z";
/// A year after NOW.
const LATER: &str = "2031-06-01T00:00:00Z";

const KRAKEN_SECRET: &str = "a2V5ZmVuY2UtdGVzdC1rcmFrZW4tc2VjcmV0LTAxMjM0NTY3ODk=";
const OKX_PASSPHRASE: &str = "P1!";

/// A key as the simulator config holds it, in the venue's own permission names.
#[derive(Clone)]
struct Key {
    permissions: Vec<&'static str>,
    ip_allowlist: Vec<&'static str>,
    created: &'static str,
    expires: Option<&'static str>,
    master: bool,
}

/// What keyfence knows about the key besides the venue's answer.
#[derive(Clone)]
struct Ctx {
    purpose: Purpose,
    tier: Tier,
    /// keyfence's rotation date (used only when the venue gives no creation time).
    last_rotated: Option<&'static str>,
    /// The service of a second vault entry with the same fingerprint, when there is one.
    twin_service: Option<&'static str>,
}

/// What the test proves for one (rule, venue).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Fires on the trigger key, not on the clean key.
    Fires,
    /// The venue's answer cannot say: never fires, and `listed` (the rule itself, or the rule
    /// whose unknown covers it) is in `not-checked`.
    NotChecked { listed: &'static str },
    /// The venue has no such setting or does not report it and never needs to: the rule neither
    /// fires nor is listed.
    CannotHappen,
}

struct Case {
    rule: &'static str,
    venue: Venue,
    expect: Expect,
    trigger: (Key, Ctx),
    /// `None` where no key of this venue can be clean (e.g. `not-checked` on a venue that never
    /// says whether a key is on the main account).
    clean: Option<(Key, Ctx)>,
}

// --- builders -------------------------------------------------------------------------------

/// A key with `permissions`, bound to 127.0.0.1 (where the test connects from), created
/// recently, never expiring, on a sub-account.
fn key(permissions: &[&'static str]) -> Key {
    Key {
        permissions: permissions.to_vec(),
        ip_allowlist: vec!["127.0.0.1"],
        created: RECENT,
        expires: None,
        master: false,
    }
}

impl Key {
    fn ips(mut self, ips: &[&'static str]) -> Self {
        self.ip_allowlist = ips.to_vec();
        self
    }
    fn created(mut self, t: &'static str) -> Self {
        self.created = t;
        self
    }
    fn expires(mut self, t: &'static str) -> Self {
        self.expires = Some(t);
        self
    }
    fn master(mut self, m: bool) -> Self {
        self.master = m;
        self
    }
    fn ctx(self, ctx: Ctx) -> (Key, Ctx) {
        (self, ctx)
    }
    /// With the default context: a spot bot, high tier, rotated recently, not shared.
    fn spot(self) -> (Key, Ctx) {
        (self, ctx())
    }
}

fn ctx() -> Ctx {
    Ctx {
        purpose: Purpose::Spot,
        tier: Tier::High,
        last_rotated: Some(RECENT),
        twin_service: None,
    }
}

impl Ctx {
    fn purpose(mut self, p: Purpose) -> Self {
        self.purpose = p;
        self
    }
    fn rotated(mut self, t: Option<&'static str>) -> Self {
        self.last_rotated = t;
        self
    }
    fn twin(mut self, service: &'static str) -> Self {
        self.twin_service = Some(service);
        self
    }
}

/// The venue's names for: read only; a spot bot's permissions; withdrawals; transfers (`None`:
/// the venue has no such permission).
struct Names {
    read: &'static [&'static str],
    spot: &'static [&'static str],
    withdraw: &'static str,
    transfer: Option<&'static str>,
}

fn names(venue: Venue) -> Names {
    match venue {
        Venue::Binance => Names {
            read: &["enableReading"],
            spot: &["enableReading", "enableSpotAndMarginTrading"],
            withdraw: "enableWithdrawals",
            transfer: Some("permitsUniversalTransfer"),
        },
        Venue::Bybit => Names {
            read: &[],
            spot: &["Spot.SpotTrade"],
            withdraw: "Wallet.Withdraw",
            transfer: Some("Wallet.AccountTransfer"),
        },
        // OKX's `trade` also moves funds between own accounts: the "transfer" key is a trading key.
        Venue::Okx => Names {
            read: &["read_only"],
            spot: &["read_only", "trade"],
            withdraw: "withdraw",
            transfer: Some("trade"),
        },
        // Coinbase's `can_transfer` covers both sends and moves.
        Venue::Coinbase => Names {
            read: &["can_view"],
            spot: &["can_view", "can_trade"],
            withdraw: "can_transfer",
            transfer: Some("can_transfer"),
        },
        Venue::Kraken => Names {
            read: &["query-funds"],
            spot: &["query-funds", "modify-trades"],
            withdraw: "withdraw-funds",
            transfer: None,
        },
    }
}

fn plus(base: &[&'static str], extra: &'static str) -> Vec<&'static str> {
    let mut v = base.to_vec();
    if !v.contains(&extra) {
        v.push(extra);
    }
    v
}

/// A permission a spot bot does not need, in the venue's names, and the purpose that makes it
/// excess. OKX's and Coinbase's trade covers every product, so there a read-only key that can
/// trade is the excess; Kraken's too, where `modify-trades` also places margin orders.
fn excess(venue: Venue) -> (Vec<&'static str>, Vec<&'static str>, Purpose) {
    let n = names(venue);
    match venue {
        Venue::Binance => (
            plus(n.spot, "enableFutures"),
            n.spot.to_vec(),
            Purpose::Spot,
        ),
        Venue::Bybit => (
            plus(n.spot, "ContractTrade.Order"),
            n.spot.to_vec(),
            Purpose::Spot,
        ),
        Venue::Okx | Venue::Coinbase | Venue::Kraken => {
            (n.spot.to_vec(), n.read.to_vec(), Purpose::ReadOnly)
        }
    }
}

// --- the table ------------------------------------------------------------------------------

fn cases() -> Vec<Case> {
    use Expect::*;
    let mut t = Vec::new();
    for venue in Venue::ALL {
        let n = names(venue);
        let spot = || key(n.spot);
        let reports_ip_list = matches!(venue, Venue::Bybit | Venue::Okx | Venue::Kraken);
        let reports_master = matches!(venue, Venue::Bybit | Venue::Okx);
        let reports_created = matches!(venue, Venue::Binance | Venue::Bybit | Venue::Kraken);
        let reports_expiry = reports_created;

        t.push(Case {
            rule: "withdraw-enabled",
            venue,
            expect: Fires,
            trigger: key(&plus(n.spot, n.withdraw)).spot(),
            clean: Some(spot().spot()),
        });

        t.push(match n.transfer {
            Some(name) => Case {
                rule: "transfer-enabled",
                venue,
                expect: Fires,
                trigger: key(&plus(n.spot, name)).spot(),
                // On OKX the clean key is a read-only one: `trade` always brings transfers.
                clean: Some(if venue == Venue::Okx {
                    key(n.read).ctx(ctx().purpose(Purpose::ReadOnly))
                } else {
                    spot().spot()
                }),
            },
            // Kraken has no transfer permission: the broadest key still cannot transfer.
            None => Case {
                rule: "transfer-enabled",
                venue,
                expect: CannotHappen,
                trigger: key(&[
                    "query-funds",
                    "modify-trades",
                    "close-trades",
                    "withdraw-funds",
                    "deposit-funds",
                ])
                .spot(),
                clean: Some(spot().spot()),
            },
        });

        // No venue's introspection answer reports key-management rights.
        t.push(Case {
            rule: "key-management-enabled",
            venue,
            expect: CannotHappen,
            trigger: key(&plus(
                &plus(n.spot, n.withdraw),
                n.transfer.unwrap_or(n.withdraw),
            ))
            .master(true)
            .spot(),
            clean: Some(spot().spot()),
        });

        t.push(Case {
            rule: "no-ip-restriction",
            venue,
            expect: if venue == Venue::Coinbase {
                NotChecked {
                    listed: "no-ip-restriction",
                }
            } else {
                Fires
            },
            trigger: spot().ips(&[]).spot(),
            clean: Some(spot().spot()),
        });

        t.push(Case {
            rule: "ip-range-too-broad",
            venue,
            expect: match venue {
                _ if reports_ip_list => Fires,
                // Restricted, but the addresses are not listed.
                Venue::Binance => NotChecked {
                    listed: "ip-range-too-broad",
                },
                // Nothing about IPs at all: covered by `no-ip-restriction`'s entry.
                _ => NotChecked {
                    listed: "no-ip-restriction",
                },
            },
            trigger: spot().ips(&["127.0.0.0/8"]).spot(),
            clean: Some(spot().ips(&["127.0.0.0/24"]).spot()),
        });

        let (extra, enough, purpose) = excess(venue);
        t.push(Case {
            rule: "excess-permission",
            venue,
            expect: Fires,
            trigger: key(&extra).ctx(ctx().purpose(purpose)),
            clean: Some(key(&enough).ctx(ctx().purpose(purpose))),
        });

        // High tier: 30 days. Where the venue gives no creation time, keyfence's date counts.
        t.push(if reports_created {
            Case {
                rule: "rotation-overdue",
                venue,
                expect: Fires,
                trigger: spot().created(OLD).ctx(ctx().rotated(None)),
                clean: Some(spot().created(RECENT).ctx(ctx().rotated(Some(OLD)))),
            }
        } else {
            Case {
                rule: "rotation-overdue",
                venue,
                expect: Fires,
                trigger: spot().created(RECENT).ctx(ctx().rotated(Some(OLD))),
                clean: Some(spot().created(OLD).ctx(ctx().rotated(Some(RECENT)))),
            }
        });

        t.push(Case {
            rule: "key-expiring",
            venue,
            expect: if reports_expiry { Fires } else { CannotHappen },
            trigger: spot().expires(SOON).spot(),
            clean: Some(spot().expires(LATER).spot()),
        });

        t.push(Case {
            rule: "key-shared",
            venue,
            expect: Fires,
            trigger: spot().ctx(ctx().twin("tax-tool")),
            // One service under two labels is not sharing.
            clean: Some(spot().ctx(ctx().twin("bot"))),
        });

        t.push(Case {
            rule: "master-account-key",
            venue,
            expect: if reports_master {
                Fires
            } else {
                NotChecked {
                    listed: "master-account-key",
                }
            },
            trigger: spot().master(true).spot(),
            clean: Some(spot().master(false).spot()),
        });

        t.push(Case {
            rule: "cannot-trade",
            venue,
            expect: Fires,
            trigger: key(n.read).spot(),
            clean: Some(spot().spot()),
        });

        // `not-checked` itself: fires when something is unknown. A venue that never says
        // whether a key is on the main account always has it; OKX has it when keyfence has no
        // date for the key; Bybit's answer carries everything.
        t.push(match venue {
            Venue::Bybit => Case {
                rule: "not-checked",
                venue,
                expect: CannotHappen,
                trigger: spot().ips(&[]).master(true).ctx(ctx().rotated(None)),
                clean: Some(spot().spot()),
            },
            Venue::Okx => Case {
                rule: "not-checked",
                venue,
                expect: Fires,
                trigger: key(n.read).ctx(ctx().purpose(Purpose::ReadOnly).rotated(None)),
                clean: Some(key(n.read).ctx(ctx().purpose(Purpose::ReadOnly))),
            },
            _ => Case {
                rule: "not-checked",
                venue,
                expect: Fires,
                trigger: key(n.read).ctx(ctx().purpose(Purpose::ReadOnly)),
                clean: None,
            },
        });
    }
    t
}

// --- the simulator --------------------------------------------------------------------------

fn api_key(c: &Case, side: &str) -> String {
    format!("{}-{}-{side}", c.rule, c.venue)
}

fn toml_list(v: &[&str]) -> String {
    let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(", "))
}

fn sim_config(cases: &[Case], coinbase_public: &str) -> String {
    let mut cfg = String::from("[admin]\nbind = \"127.0.0.1:0\"\n");
    for venue in Venue::ALL {
        let tls = venue == Venue::Coinbase;
        writeln!(
            cfg,
            "[venues.{venue}]\nbind = \"127.0.0.1:0\"\ntls = {tls}\n\
             [[accounts]]\nvenue = \"{venue}\"\nname = \"a\""
        )
        .unwrap();
    }
    for c in cases {
        let sides = [("trigger", Some(&c.trigger)), ("clean", c.clean.as_ref())];
        for (side, k) in sides {
            let Some((k, _)) = k else { continue };
            let material = match c.venue {
                Venue::Coinbase => format!("public_key = {coinbase_public:?}"),
                Venue::Kraken => format!("secret = {KRAKEN_SECRET:?}"),
                v => format!("secret = \"{v}-secret-0123456789\""),
            };
            let pass = if c.venue == Venue::Okx {
                format!("passphrase = {OKX_PASSPHRASE:?}\n")
            } else {
                String::new()
            };
            let expires = k
                .expires
                .map(|e| format!("expires = {e:?}\n"))
                .unwrap_or_default();
            writeln!(
                cfg,
                "[[keys]]\nvenue = \"{}\"\naccount = \"a\"\napi_key = {:?}\n{material}\n{pass}\
                 permissions = {}\nip_allowlist = {}\ncreated = {:?}\n{expires}master = {}",
                c.venue,
                api_key(c, side),
                toml_list(&k.permissions),
                toml_list(&k.ip_allowlist),
                k.created,
                k.master,
            )
            .unwrap();
        }
    }
    cfg
}

fn credential(venue: Venue, api_key: String, coinbase_pem: &str) -> Credential {
    let (secret, private_key, passphrase) = match venue {
        Venue::Coinbase => (None, Some(coinbase_pem.to_owned()), None),
        Venue::Kraken => (Some(KRAKEN_SECRET.to_owned()), None, None),
        Venue::Okx => (
            Some(format!("{venue}-secret-0123456789")),
            None,
            Some(OKX_PASSPHRASE.to_owned()),
        ),
        _ => (Some(format!("{venue}-secret-0123456789")), None, None),
    };
    Credential {
        api_key,
        secret: secret.map(SecretString::new),
        private_key: private_key.map(SecretString::new),
        passphrase: passphrase.map(SecretString::new),
    }
}

fn context(c: &Case, side: &str, ctx: &Ctx, service: &str) -> KeyContext {
    let mut k = KeyContext::new(&api_key(c, side), c.venue, service, ctx.purpose);
    k.tier = ctx.tier;
    k.last_rotated = ctx
        .last_rotated
        .map(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap());
    k.fingerprint = Some(format!("fp-{}", api_key(c, side)));
    k
}

// --- the check ------------------------------------------------------------------------------

fn not_checked(report: &KeyReport) -> String {
    report
        .findings()
        .iter()
        .find(|f| f.rule == "not-checked")
        .map(|f| f.detail.clone())
        .unwrap_or_default()
}

fn listed(report: &KeyReport, rule: &str) -> bool {
    not_checked(report)
        .split("; ")
        .any(|entry| entry.starts_with(&format!("{rule}:")))
}

fn fired(report: &KeyReport, rule: &str) -> bool {
    report.findings().iter().any(|f| f.rule == rule)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_on_every_venue_through_the_simulator() {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let rng = SystemRandom::new();
    let coinbase_pem = crypto::generate_p256_sec1_pem(&rng).unwrap();
    let coinbase_public = crypto::PrivateKey::parse(&coinbase_pem, &rng)
        .unwrap()
        .public_key()
        .to_pem();

    let cases = cases();
    // Every bundled rule has a row for every venue.
    let rules = RuleSet::bundled().unwrap();
    for rule in rules.iter() {
        for venue in Venue::ALL {
            assert!(
                cases.iter().any(|c| c.rule == rule.id && c.venue == venue),
                "{}/{venue}: no case",
                rule.id
            );
        }
    }

    let sim = start(&SimConfig::parse(&sim_config(&cases, &coinbase_public), "test").unwrap())
        .await
        .unwrap();
    let policy = Policy {
        timeout: Duration::from_secs(5),
        max_attempts: 2,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(1),
    };
    let up = Upstream::with_roots(policy, &[sim.cert_pem.as_deref().unwrap()]).unwrap();
    let nonces = Nonces::default();
    let config = AuditConfig::default();

    let mut checked = 0;
    for c in &cases {
        let name = format!("{} on {}", c.rule, c.venue);
        let sides = [("trigger", Some(&c.trigger)), ("clean", c.clean.as_ref())];
        for (side, pair) in sides {
            let Some((_, ctx)) = pair else { continue };
            let target = Target {
                label: api_key(c, side),
                venue: c.venue,
                base_url: sim.base_url(c.venue).unwrap(),
                credential: credential(c.venue, api_key(c, side), &coinbase_pem),
            };
            let profile = introspect(&up, &target, &nonces)
                .await
                .unwrap_or_else(|e| panic!("{name}, {side} key: introspection failed: {e}"));
            let mut inputs = vec![AuditInput {
                context: context(c, side, ctx, "bot"),
                outcome: Ok(profile.clone()),
            }];
            if let Some(service) = ctx.twin_service {
                let mut twin = context(c, side, ctx, service);
                twin.label.push_str("-twin");
                inputs.push(AuditInput {
                    context: twin,
                    outcome: Ok(profile.clone()),
                });
            }
            let report = audit(&inputs, &rules, &config, NOW).remove(0);
            let fires = fired(&report, c.rule);
            let findings: Vec<(&str, &str)> = report
                .findings()
                .iter()
                .map(|f| (f.rule.as_str(), f.detail.as_str()))
                .collect();
            let what = format!("{name}, {side} key: profile {profile:?}, findings {findings:?}");
            match (c.expect, side) {
                (Expect::Fires, "trigger") => assert!(fires, "{what}: `{}` did not fire", c.rule),
                (Expect::Fires, _) => assert!(!fires, "{what}: `{}` fired", c.rule),
                (Expect::NotChecked { listed: l }, _) => {
                    assert!(!fires, "{what}: `{}` fired on an unknown", c.rule);
                    assert!(
                        listed(&report, l),
                        "{what}: `{l}` not listed as not checked"
                    );
                }
                (Expect::CannotHappen, _) => {
                    assert!(!fires, "{what}: `{}` fired", c.rule);
                    assert!(
                        !listed(&report, c.rule),
                        "{what}: `{}` listed as not checked",
                        c.rule
                    );
                }
            }
            checked += 1;
        }
    }
    sim.shutdown().await;
    // 12 rules x 5 venues, a trigger and a clean key each, minus the three venues where no key
    // can be clean of `not-checked`.
    assert_eq!(cases.len(), 60);
    assert_eq!(checked, 117);
}
