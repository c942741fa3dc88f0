//! The simulator's TOML configuration: typed, validated all at once, safe to print.
//! Documented in `docs/sim-config.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;

use keyfence_exchange::{KeyError, VerifyKey};
use keyfence_types::{SecretString, Venue};
use rust_decimal::Decimal;
use serde::Deserialize;
use time::OffsetDateTime;

/// Largest starting balance or price (1e20): with request amounts capped at 1e14, the ledger's
/// sums and products stay far inside `Decimal`.
pub const MAX_BALANCE: u128 = 100_000_000_000_000_000_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub venues: BTreeMap<Venue, VenueConfig>,
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Where the admin HTTP interface listens (port 0: any free port).
    #[serde(default = "default_admin_bind")]
    pub bind: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            bind: default_admin_bind(),
        }
    }
}

fn default_admin_bind() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9100))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueConfig {
    pub bind: SocketAddr,
    #[serde(default)]
    pub tls: bool,
    /// Reference prices by the venue's own symbol spelling.
    #[serde(default)]
    pub prices: BTreeMap<String, Decimal>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub venue: Venue,
    pub name: String,
    /// Starting balances by the venue's own asset names.
    #[serde(default)]
    pub balances: BTreeMap<String, Decimal>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    pub venue: Venue,
    pub account: String,
    pub api_key: String,
    /// HMAC secret (Kraken: base64).
    #[serde(default)]
    pub secret: Option<String>,
    /// `PUBLIC KEY` PEM for Ed25519 (Binance, Coinbase) or P-256 (Coinbase) keys.
    #[serde(default)]
    pub public_key: Option<String>,
    /// OKX only.
    #[serde(default)]
    pub passphrase: Option<String>,
    /// The venue's own permission names, as its introspection answer spells them.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Empty: unrestricted. Entries are addresses or CIDR ranges.
    #[serde(default)]
    pub ip_allowlist: Vec<String>,
    #[serde(default = "default_created", with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires: Option<OffsetDateTime>,
    /// A note or label the venue shows for the key.
    #[serde(default)]
    pub label: Option<String>,
    /// Whether the key belongs to the main account (default true).
    #[serde(default = "yes")]
    pub master: bool,
}

fn yes() -> bool {
    true
}

fn default_created() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH
}

impl std::fmt::Debug for KeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyConfig")
            .field("venue", &self.venue)
            .field("account", &self.account)
            .field("api_key", &self.api_key)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("public_key", &self.public_key.is_some())
            .field("passphrase", &self.passphrase.as_ref().map(|_| "***"))
            .field("permissions", &self.permissions)
            .field("ip_allowlist", &self.ip_allowlist)
            .finish()
    }
}

impl KeyConfig {
    pub fn verify_key(&self) -> Result<VerifyKey, KeyError> {
        let passphrase = self.passphrase.clone().map(SecretString::new);
        match (&self.secret, &self.public_key) {
            (Some(s), None) => VerifyKey::hmac(self.venue, s, passphrase),
            (None, Some(pem)) => VerifyKey::public_pem(pem),
            _ => Err(KeyError::Invalid(
                "set exactly one of `secret` and `public_key`",
            )),
        }
    }
}

/// An IPv4/IPv6 address or CIDR range (the workspace's one CIDR type).
pub use keyfence_types::net::Cidr as IpRange;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("`{path}` is not valid simulator TOML: {message}")]
    Parse { path: String, message: String },
    #[error("`{path}` has {} problem(s):\n  - {}", .problems.len(), .problems.join("\n  - "))]
    Invalid { path: String, problems: Vec<String> },
}

impl SimConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: display.clone(),
            source,
        })?;
        Self::parse(&text, &display)
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let cfg: SimConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
        })?;
        let problems = cfg.problems();
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Invalid {
                path: origin.to_owned(),
                problems,
            })
        }
    }

    /// Every problem at once.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut binds = BTreeSet::new();
        for (venue, vc) in &self.venues {
            if vc.bind.port() != 0 && !binds.insert(vc.bind) {
                out.push(format!(
                    "venues.{venue}: bind address {} is used twice",
                    vc.bind
                ));
            }
            for (sym, price) in &vc.prices {
                if *price > Decimal::from(MAX_BALANCE) {
                    out.push(format!(
                        "venues.{venue}.prices.{sym}: price is above {MAX_BALANCE}"
                    ));
                }
                if *price <= Decimal::ZERO {
                    out.push(format!(
                        "venues.{venue}.prices.{sym}: price must be positive"
                    ));
                }
                if crate::venues::split_symbol(*venue, sym).is_none() {
                    out.push(format!(
                        "venues.{venue}.prices.{sym}: cannot tell base and quote asset apart"
                    ));
                }
            }
        }
        let mut accounts = BTreeSet::new();
        for a in &self.accounts {
            if !self.venues.contains_key(&a.venue) {
                out.push(format!(
                    "account `{}`: venue {} has no [venues.{}] table",
                    a.name, a.venue, a.venue
                ));
            }
            if !accounts.insert((a.venue, a.name.as_str())) {
                out.push(format!(
                    "account `{}` on {} is defined twice",
                    a.name, a.venue
                ));
            }
            for (asset, amount) in &a.balances {
                if *amount < Decimal::ZERO {
                    out.push(format!(
                        "account `{}`: balance of {asset} is negative",
                        a.name
                    ));
                }
                if *amount > Decimal::from(MAX_BALANCE) {
                    out.push(format!(
                        "account `{}`: balance of {asset} is above {MAX_BALANCE}",
                        a.name
                    ));
                }
            }
        }
        let mut key_ids = BTreeSet::new();
        for k in &self.keys {
            let who = format!("key `{}` ({})", k.api_key, k.venue);
            if k.api_key.is_empty() {
                out.push(format!("{who}: api_key is empty"));
            }
            if !key_ids.insert((k.venue, k.api_key.as_str())) {
                out.push(format!("{who}: defined twice"));
            }
            if !accounts.contains(&(k.venue, k.account.as_str())) {
                out.push(format!("{who}: account `{}` is not defined", k.account));
            }
            if let Err(e) = k.verify_key() {
                out.push(format!("{who}: {e}"));
            }
            if k.venue == Venue::Okx && k.passphrase.is_none() {
                out.push(format!("{who}: OKX keys need a passphrase"));
            }
            for ip in &k.ip_allowlist {
                if let Err(e) = ip.parse::<IpRange>() {
                    out.push(format!("{who}: {e}"));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_ranges_match_like_cidr() {
        let r: IpRange = "10.0.0.0/8".parse().unwrap();
        assert!(r.contains("10.1.2.3".parse().unwrap()));
        assert!(!r.contains("11.0.0.1".parse().unwrap()));
        let one: IpRange = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(one.contains("::ffff:127.0.0.1".parse().unwrap()));
        let all: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!("1.2.3.4/33".parse::<IpRange>().is_err());
        assert!("nope".parse::<IpRange>().is_err());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
            [venues.binance]
            bind = "127.0.0.1:0"
            prices = { BTCUSDT = "-1" }
            [[accounts]]
            venue = "okx"
            name = "x"
            [[keys]]
            venue = "binance"
            account = "missing"
            api_key = "k"
            ip_allowlist = ["300.1.1.1"]
        "#;
        let Err(ConfigError::Invalid { problems, .. }) = SimConfig::parse(text, "t.toml") else {
            panic!("expected invalid");
        };
        assert!(problems.len() >= 4, "{problems:#?}");
        assert!(problems.iter().all(|p| !p.contains("secret =")));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = SimConfig::parse("[venues.binance]\nbind = \"127.0.0.1:0\"\nport = 1\n", "t")
            .unwrap_err();
        assert!(err.to_string().contains("port"), "{err}");
    }
}
