//! The gateway's TOML configuration (`keyfence serve --config FILE`), documented in
//! `docs/gateway.md`. [`GatewayConfig::parse`] reports every problem at once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::Duration;

use keyfence_policy::PolicyConfig;
use keyfence_types::Venue;
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub gateway: GatewaySection,
    pub listeners: BTreeMap<Venue, ListenerConfig>,
    pub policies: BTreeMap<String, PolicyConfig>,
    /// Where the file was read from (relative paths in it are relative to its directory).
    pub origin: PathBuf,
}

/// `[gateway]`: everything but listeners and policies. Every field has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySection {
    /// The SQLite file (journal, bots, kill switch), relative to the data directory.
    pub database: PathBuf,
    /// When the journal reaches the disk: `full` (the default: each group commit is fsynced
    /// right after it; an answer waits for its reservation's fsync), `strict` (each commit
    /// fsynced before anyone hears of it) or `normal` (survives a crash of the process, not of
    /// the machine). See docs/gateway.md.
    pub sync: SyncMode,
    /// Sign a journal checkpoint every this many entries...
    pub checkpoint_every: u64,
    /// ...or this many seconds, whichever comes first.
    pub checkpoint_seconds: u64,
    /// How often reference prices are refreshed from the venues' public tickers.
    pub price_refresh_ms: u64,
    /// Per upstream attempt, connection included.
    pub upstream_timeout_ms: u64,
    /// On shutdown, how long in-flight requests may take to finish.
    pub drain_seconds: u64,
}

pub use keyfence_store::SyncMode;

impl Default for GatewaySection {
    fn default() -> Self {
        GatewaySection {
            database: PathBuf::from("keyfence.db"),
            sync: SyncMode::Full,
            checkpoint_every: 1000,
            checkpoint_seconds: 300,
            price_refresh_ms: 1000,
            upstream_timeout_ms: 10_000,
            drain_seconds: 10,
        }
    }
}

impl GatewaySection {
    pub fn upstream_timeout(&self) -> Duration {
        Duration::from_millis(self.upstream_timeout_ms)
    }
}

/// `[listeners.VENUE]`.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub bind: SocketAddr,
    /// The exchange's base URL (default: the venue's production URL).
    pub upstream: String,
    pub tls: Option<TlsConfig>,
    /// A PEM certificate to trust for the upstream (the simulator's, in tests).
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsConfig {
    /// A self-signed certificate made at start-up, written to `<home>/tls/<venue>.pem`.
    SelfSigned,
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    bind: String,
    #[serde(default)]
    upstream: Option<String>,
    #[serde(default)]
    tls: Option<toml::Value>,
    #[serde(default)]
    ca_cert: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{origin}` has {} problem(s):\n  - {}", problems.len(), problems.join("\n  - "))]
    Invalid {
        origin: String,
        problems: Vec<String>,
    },
}

impl GatewayConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parse and validate; every problem found is reported, not just the first.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let invalid = |problems: Vec<String>| ConfigError::Invalid {
            origin: origin.display().to_string(),
            problems,
        };
        let table: toml::Table = toml::from_str(text).map_err(|e| invalid(vec![e.to_string()]))?;
        let base = origin.parent().unwrap_or(Path::new("."));

        let mut gateway = GatewaySection::default();
        let mut listeners = BTreeMap::new();
        let mut policies = BTreeMap::new();
        for (key, value) in table {
            match key.as_str() {
                "gateway" => match value.try_into::<GatewaySection>() {
                    Ok(g) => gateway = g,
                    Err(e) => problems.push(format!("[gateway]: {}", one_line(&e))),
                },
                "listeners" => {
                    let Some(t) = value.as_table() else {
                        problems.push("`listeners` must be a table of [listeners.VENUE]".into());
                        continue;
                    };
                    for (name, v) in t {
                        let venue = match Venue::from_str(name) {
                            Ok(v) => v,
                            Err(e) => {
                                problems.push(format!("[listeners.{name}]: {e}"));
                                continue;
                            }
                        };
                        match listener(venue, v.clone(), base) {
                            Ok(l) => {
                                listeners.insert(venue, l);
                            }
                            Err(mut p) => problems.append(&mut p),
                        }
                    }
                }
                "policies" => {
                    let Some(t) = value.as_table() else {
                        problems.push("`policies` must be a table of [policies.NAME]".into());
                        continue;
                    };
                    for (name, v) in t {
                        if !valid_name(name) {
                            problems.push(format!(
                                "[policies.{name}]: a policy name is 1-64 letters, digits, `.`, `_` or `-`"
                            ));
                        }
                        match v.clone().try_into::<PolicyConfig>() {
                            Ok(p) => {
                                for problem in p.problems() {
                                    problems.push(format!("[policies.{name}]: {problem}"));
                                }
                                policies.insert(name.clone(), p);
                            }
                            Err(e) => problems.push(format!("[policies.{name}]: {}", one_line(&e))),
                        }
                    }
                }
                other => problems.push(format!(
                    "unknown section `{other}`; expected [gateway], [listeners.VENUE] or [policies.NAME]"
                )),
            }
        }
        if listeners.is_empty() {
            problems.push("no listeners: add at least one [listeners.VENUE] with `bind`".into());
        }
        let mut binds: BTreeMap<SocketAddr, Venue> = BTreeMap::new();
        for (venue, l) in &listeners {
            if l.bind.port() != 0
                && let Some(other) = binds.insert(l.bind, *venue)
            {
                problems.push(format!(
                    "[listeners.{venue}] and [listeners.{other}] both bind {}",
                    l.bind
                ));
            }
        }
        if gateway.checkpoint_every == 0 {
            problems.push("[gateway] checkpoint_every must be at least 1".into());
        }
        if gateway.checkpoint_seconds == 0 {
            problems.push("[gateway] checkpoint_seconds must be at least 1".into());
        }
        if gateway.price_refresh_ms < 100 {
            problems.push("[gateway] price_refresh_ms must be at least 100".into());
        }
        if gateway.upstream_timeout_ms == 0 {
            problems.push("[gateway] upstream_timeout_ms must be positive".into());
        }
        if problems.is_empty() {
            Ok(GatewayConfig {
                gateway,
                listeners,
                policies,
                origin: origin.to_path_buf(),
            })
        } else {
            Err(invalid(problems))
        }
    }
}

fn listener(venue: Venue, v: toml::Value, base: &Path) -> Result<ListenerConfig, Vec<String>> {
    let at = format!("[listeners.{venue}]");
    let raw: RawListener = v
        .try_into()
        .map_err(|e| vec![format!("{at}: {}", one_line(&e))])?;
    let mut problems = Vec::new();
    let bind = match SocketAddr::from_str(&raw.bind) {
        Ok(a) => Some(a),
        Err(_) => {
            problems.push(format!(
                "{at} bind `{}` is not an address:port such as 127.0.0.1:8701",
                raw.bind
            ));
            None
        }
    };
    let upstream = raw
        .upstream
        .unwrap_or_else(|| keyfence_exchange::production_base_url(venue).to_owned());
    let host_ok = upstream
        .strip_prefix("http://")
        .or_else(|| upstream.strip_prefix("https://"))
        .is_some_and(|r| {
            let host = r.split('/').next().unwrap_or("");
            !host.is_empty() && !host.contains('@')
        });
    if !host_ok || upstream.trim_end_matches('/').matches('/').count() > 2 {
        problems.push(format!(
            "{at} upstream must be a base URL such as http://127.0.0.1:9101 (no path, no credentials)"
        ));
    }
    let tls = match raw.tls {
        None | Some(toml::Value::Boolean(false)) => None,
        Some(toml::Value::Boolean(true)) => Some(TlsConfig::SelfSigned),
        Some(toml::Value::Table(t)) => {
            let get = |k: &str| t.get(k).and_then(|v| v.as_str()).map(|s| base.join(s));
            match (get("cert"), get("key"), t.len()) {
                (Some(cert), Some(key), 2) => {
                    for p in [&cert, &key] {
                        if !p.is_file() {
                            problems
                                .push(format!("{at} tls file `{}` does not exist", p.display()));
                        }
                    }
                    Some(TlsConfig::Files { cert, key })
                }
                _ => {
                    problems.push(format!(
                        "{at} tls is true, false, or {{ cert = \"FILE\", key = \"FILE\" }} (PEM)"
                    ));
                    None
                }
            }
        }
        Some(_) => {
            problems.push(format!(
                "{at} tls is true, false, or {{ cert = \"FILE\", key = \"FILE\" }} (PEM)"
            ));
            None
        }
    };
    let ca_cert = raw.ca_cert.map(|p| base.join(p));
    if let Some(p) = &ca_cert
        && !p.is_file()
    {
        problems.push(format!("{at} ca_cert `{}` does not exist", p.display()));
    }
    match (bind, problems.is_empty()) {
        (Some(bind), true) => Ok(ListenerConfig {
            bind,
            upstream: upstream.trim_end_matches('/').to_owned(),
            tls,
            ca_cert,
        }),
        _ => Err(problems),
    }
}

/// Policy and bot names: 1-64 letters, digits, `.`, `_`, `-`, not starting with `-`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn one_line(e: &toml::de::Error) -> String {
    e.message().replace('\n', " ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn the_issue_example_parses() {
        let text = r#"
[listeners.binance]
bind = "127.0.0.1:8701"
upstream = "http://127.0.0.1:9101"

[policies.spot-conservative]
classes = ["read", "trade", "cancel"]
symbols = ["BTCUSDT", "ETHUSDT"]
max_order_notional = "1000"
daily_notional = "10000"
daily_orders = 500
max_position = { BTCUSDT = "0.5" }
orders_per_minute = 60
price_band_pct = "2"
"#;
        let c = GatewayConfig::parse(text, Path::new("gw.toml")).unwrap();
        assert_eq!(
            c.listeners[&Venue::Binance].upstream,
            "http://127.0.0.1:9101"
        );
        assert!(c.policies.contains_key("spot-conservative"));
        assert_eq!(c.gateway.sync, SyncMode::Full);
    }

    const LISTENER: &str = "[listeners.binance]\nbind = \"127.0.0.1:0\"\n";

    #[test]
    fn sync_modes_parse_and_an_unknown_one_is_refused() {
        for (text, want) in [
            ("strict", SyncMode::Strict),
            ("full", SyncMode::Full),
            ("normal", SyncMode::Normal),
        ] {
            let c = GatewayConfig::parse(
                &format!("[gateway]\nsync = \"{text}\"\n{LISTENER}"),
                Path::new("gw.toml"),
            )
            .unwrap();
            assert_eq!(c.gateway.sync, want);
        }
        let text = format!("[gateway]\nsync = \"fast\"\n{LISTENER}");
        let err = GatewayConfig::parse(&text, Path::new("gw.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("fast"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
[gateway]
checkpoint_every = 0

[listeners.binanse]
bind = "127.0.0.1:1"

[listeners.bybit]
bind = "nowhere"
upstream = "ftp://x"

[policies.p]
classes = ["read"]
max_order_notional = "-5"

[extra]
"#;
        let Err(ConfigError::Invalid { problems, .. }) =
            GatewayConfig::parse(text, Path::new("gw.toml"))
        else {
            panic!("accepted a bad config");
        };
        let all = problems.join("\n");
        for want in [
            "checkpoint_every",
            "binanse",
            "bind `nowhere`",
            "upstream must be",
            "[policies.p]",
            "unknown section `extra`",
        ] {
            assert!(all.contains(want), "missing `{want}` in:\n{all}");
        }
    }

    #[test]
    fn the_upstream_defaults_to_production() {
        let c = GatewayConfig::parse(
            "[listeners.kraken]\nbind = \"127.0.0.1:0\"\n",
            Path::new("gw.toml"),
        )
        .unwrap();
        assert_eq!(
            c.listeners[&Venue::Kraken].upstream,
            "https://api.kraken.com"
        );
    }
}
