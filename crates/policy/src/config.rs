//! One `[policies.NAME]` table of the gateway config, validated all at once.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{EndpointClass, TradingHours, normalise_symbol};

/// One `[policies.NAME]` table of the gateway config. Every cap is optional: an absent cap is
/// not checked. What each field means and which rule id enforces it: `docs/policy.md`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Endpoint classes the bot may use; default read, trade, cancel.
    #[serde(default = "default_classes")]
    pub classes: Vec<EndpointClass>,
    /// Markets the bot may trade (any venue spelling; compared normalised). None = any symbol.
    #[serde(default)]
    pub symbols: Option<Vec<String>>,
    /// Quote currency, per order.
    #[serde(default)]
    pub max_order_notional: Option<Decimal>,
    /// Quote currency, per bot per UTC day.
    #[serde(default)]
    pub daily_notional: Option<Decimal>,
    /// Orders per bot per UTC day.
    #[serde(default)]
    pub daily_orders: Option<u64>,
    /// Symbol -> max |net base quantity|.
    #[serde(default)]
    pub max_position: BTreeMap<String, Decimal>,
    /// Symbol -> the base quantity one contract stands for, for markets sized in contracts
    /// (OKX swaps, futures and options; Coinbase futures). Without it, such an order cannot be
    /// valued or counted in a position, and the caps that need that deny it.
    #[serde(default)]
    pub contract_values: BTreeMap<String, Decimal>,
    /// Orders in any sliding 60 s window.
    #[serde(default)]
    pub orders_per_minute: Option<u32>,
    /// A limit price must be within ±pct of the reference price.
    #[serde(default)]
    pub price_band_pct: Option<Decimal>,
    /// "HH:MM-HH:MM" UTC; may wrap midnight.
    #[serde(default)]
    pub trading_hours: Option<String>,
    /// How old a reference price may be, in seconds, before rules that need it deny; default 30.
    #[serde(default = "default_max_price_age")]
    pub max_price_age_s: u64,
}

fn default_classes() -> Vec<EndpointClass> {
    vec![
        EndpointClass::Read,
        EndpointClass::Trade,
        EndpointClass::Cancel,
    ]
}

fn default_max_price_age() -> u64 {
    30
}

/// The same as an empty `[policies.NAME]` table: read, trade and cancel, no caps.
impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            classes: default_classes(),
            symbols: None,
            max_order_notional: None,
            daily_notional: None,
            daily_orders: None,
            max_position: BTreeMap::new(),
            contract_values: BTreeMap::new(),
            orders_per_minute: None,
            price_band_pct: None,
            trading_hours: None,
            max_price_age_s: default_max_price_age(),
        }
    }
}

impl PolicyConfig {
    /// Every problem at once (negative caps, bad trading_hours, empty classes, `unknown` or
    /// `public` in classes, a max_position symbol outside `symbols`, ...). Empty = valid.
    ///
    /// The gateway refuses to start on any problem: a policy that says something other than
    /// what its author meant would decide wrongly, silently.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.class_problems(&mut out);
        let allowed = self.symbol_problems(&mut out);
        for (name, cap) in [
            ("max_order_notional", self.max_order_notional),
            ("daily_notional", self.daily_notional),
            ("price_band_pct", self.price_band_pct),
        ] {
            if let Some(v) = cap
                && v.is_sign_negative()
                && !v.is_zero()
            {
                out.push(format!("{name} is negative ({v}); use 0 or more"));
            }
        }
        self.position_problems(allowed.as_ref(), &mut out);
        self.contract_problems(&mut out);
        if let Some(h) = &self.trading_hours
            && let Err(e) = h.parse::<TradingHours>()
        {
            out.push(e);
        }
        if self.max_price_age_s == 0 {
            out.push(
                "max_price_age_s is 0, so every reference price is stale; use a few seconds (default 30)"
                    .to_owned(),
            );
        }
        out
    }

    fn class_problems(&self, out: &mut Vec<String>) {
        if self.classes.is_empty() {
            out.push(
                "classes is empty, so the bot can do nothing; list some of read, trade, cancel"
                    .to_owned(),
            );
        }
        let mut seen = BTreeSet::new();
        for c in &self.classes {
            match c {
                EndpointClass::Unknown => out.push(
                    "classes lists `unknown`; endpoints keyfence cannot classify are always denied, remove it"
                        .to_owned(),
                ),
                EndpointClass::Public => out.push(
                    "classes lists `public`; public endpoints are forwarded without a policy, remove it"
                        .to_owned(),
                ),
                _ => {}
            }
            if !seen.insert(*c) {
                out.push(format!("classes lists `{c}` twice"));
            }
        }
    }

    /// The allowlist, normalised, when there is one.
    fn symbol_problems(&self, out: &mut Vec<String>) -> Option<BTreeSet<String>> {
        let list = self.symbols.as_ref()?;
        if list.is_empty() && self.classes.contains(&EndpointClass::Trade) {
            out.push(
                "symbols is empty, so no trade can pass; list the markets or remove symbols to allow any"
                    .to_owned(),
            );
        }
        let mut set = BTreeSet::new();
        for s in list {
            let n = normalise_symbol(s);
            if n.is_empty() {
                out.push(format!("symbols lists `{s}`, which names no market"));
            } else if !set.insert(n.clone()) {
                out.push(format!(
                    "symbols lists `{s}` more than once (symbols compare as `{n}`)"
                ));
            }
        }
        Some(set)
    }

    fn position_problems(&self, allowed: Option<&BTreeSet<String>>, out: &mut Vec<String>) {
        for (s, n, cap) in named_markets("max_position", &self.max_position, out) {
            if cap.is_sign_negative() && !cap.is_zero() {
                out.push(format!(
                    "max_position for `{s}` is negative ({cap}); caps are on |position|, use 0 or more"
                ));
            }
            if let Some(allowed) = allowed
                && !allowed.contains(&n)
            {
                out.push(format!(
                    "max_position names `{s}`, which is not in symbols; add it to symbols or remove the cap"
                ));
            }
        }
    }

    /// The parsed trading window; `None` when there is none or it does not parse (`problems`
    /// reports that, and `decide` then denies every trade).
    pub(crate) fn hours(&self) -> Option<Result<TradingHours, String>> {
        self.trading_hours.as_deref().map(str::parse)
    }

    fn contract_problems(&self, out: &mut Vec<String>) {
        for (s, _, value) in named_markets("contract_values", &self.contract_values, out) {
            if value <= Decimal::ZERO {
                out.push(format!(
                    "contract_values for `{s}` is {value}; a contract stands for more than 0 of its base asset"
                ));
            }
        }
    }

    /// `contract_values`, keyed by normalised symbol.
    pub(crate) fn contract_value(&self, normalised: &str) -> Option<Decimal> {
        value_for(&self.contract_values, normalised)
    }

    /// `max_position`, keyed by normalised symbol.
    pub(crate) fn position_cap(&self, normalised: &str) -> Option<Decimal> {
        value_for(&self.max_position, normalised)
    }

    /// Whether the allowlist (if any) holds the normalised symbol.
    pub(crate) fn symbol_allowed(&self, normalised: &str) -> bool {
        match &self.symbols {
            None => true,
            Some(list) => list.iter().any(|s| same_market(s, normalised)),
        }
    }

    pub(crate) fn price_age_ms(&self) -> i64 {
        i64::try_from(self.max_price_age_s.saturating_mul(1000)).unwrap_or(i64::MAX)
    }
}

/// The entries of a per-market table (`max_position`, `contract_values`) that name a market:
/// (as configured, normalised, value). One that names no market, or a market an earlier entry
/// named, is reported as `field`'s problem.
fn named_markets<'a>(
    field: &str,
    map: &'a BTreeMap<String, Decimal>,
    out: &mut Vec<String>,
) -> Vec<(&'a str, String, Decimal)> {
    let mut seen = BTreeSet::new();
    let mut named = Vec::with_capacity(map.len());
    for (s, value) in map {
        let n = normalise_symbol(s);
        if n.is_empty() {
            out.push(format!("{field} names `{s}`, which names no market"));
            continue;
        }
        if !seen.insert(n.clone()) {
            out.push(format!(
                "{field} names `{s}` more than once (symbols compare as `{n}`)"
            ));
        }
        named.push((s.as_str(), n, *value));
    }
    named
}

/// A per-market table's value for the market `normalised`.
fn value_for(map: &BTreeMap<String, Decimal>, normalised: &str) -> Option<Decimal> {
    map.iter()
        .find(|(s, _)| same_market(s, normalised))
        .map(|(_, v)| *v)
}

/// Whether a symbol as the config spells it names the market `normalised`. Config symbols are
/// usually written normalised already; comparing those directly keeps `decide` free of
/// allocations for them.
fn same_market(configured: &str, normalised: &str) -> bool {
    if crate::is_normalised(configured) {
        configured == normalised
    } else {
        normalise_symbol(configured) == normalised
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn an_empty_table_is_the_default_and_valid() {
        let p: PolicyConfig = toml::from_str("").unwrap();
        assert_eq!(p, PolicyConfig::default());
        assert_eq!(
            p.classes,
            vec![
                EndpointClass::Read,
                EndpointClass::Trade,
                EndpointClass::Cancel
            ]
        );
        assert_eq!(p.max_price_age_s, 30);
        assert!(p.problems().is_empty());
    }

    #[test]
    fn a_full_table_parses_with_numbers_or_strings_for_money() {
        let p: PolicyConfig = toml::from_str(
            r#"
            classes = ["read", "trade", "cancel", "account-settings"]
            symbols = ["BTC-USDT", "ETHUSDT"]
            max_order_notional = 1000
            daily_notional = "25000.50"
            daily_orders = 500
            max_position = { BTCUSDT = 0.5, "ETH-USDT" = "10" }
            orders_per_minute = 30
            price_band_pct = 2.5
            trading_hours = "22:00-06:00"
            max_price_age_s = 10
            "#,
        )
        .unwrap();
        assert_eq!(p.max_order_notional, Some(dec("1000")));
        assert_eq!(p.daily_notional, Some(dec("25000.50")));
        assert_eq!(p.max_position.get("BTCUSDT"), Some(&dec("0.5")));
        assert_eq!(p.price_band_pct, Some(dec("2.5")));
        assert_eq!(p.classes[3], EndpointClass::AccountSettings);
        assert!(p.problems().is_empty(), "{:?}", p.problems());
        assert_eq!(p.position_cap("ETHUSDT"), Some(dec("10")));
        assert!(p.symbol_allowed("BTCUSDT"));
        assert!(p.symbol_allowed("ETHUSDT"));
        assert!(!p.symbol_allowed("SOLUSDT"));
        assert!(!p.symbol_allowed("BTCUSDTSWAP"));
    }

    #[test]
    fn config_spellings_match_normalised_markets() {
        for (configured, market, same) in [
            ("BTCUSDT", "BTCUSDT", true),
            ("btcusdt", "BTCUSDT", true),
            ("BTC-USDT", "BTCUSDT", true),
            ("XBTUSD", "BTCUSD", true),
            ("XBT/USD", "BTCUSD", true),
            ("XXBTZUSD", "BTCUSD", true),
            ("XETHZUSD", "ETHUSD", true),
            ("XDGUSD", "DOGEUSD", true),
            ("BTCUSDT", "BTCUSDTSWAP", false),
            ("ETHUSDT", "BTCUSDT", false),
        ] {
            assert_eq!(
                same_market(configured, market),
                same,
                "{configured} vs {market}"
            );
        }
    }

    #[test]
    fn contract_values_must_be_positive_and_name_each_market_once() {
        let p: PolicyConfig = toml::from_str(
            r#"contract_values = { "BTC-USDT-SWAP" = "0.01", BTCUSDTSWAP = "0.01", "ETH-USDT-SWAP" = 0, "X-Y-Z" = "-1" }"#,
        )
        .unwrap();
        let problems = p.problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|m| m.contains("more than once")));
        assert!(problems.iter().any(|m| m.contains("`ETH-USDT-SWAP` is 0")));
        assert!(problems.iter().any(|m| m.contains("`X-Y-Z` is -1")));
        assert_eq!(p.contract_value("BTCUSDTSWAP"), Some(dec("0.01")));
        assert_eq!(p.contract_value("BTCUSDT"), None);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = toml::from_str::<PolicyConfig>("max_notional = 5").unwrap_err();
        assert!(e.to_string().contains("max_notional"), "{e}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let p = PolicyConfig {
            classes: vec![
                EndpointClass::Unknown,
                EndpointClass::Public,
                EndpointClass::Trade,
                EndpointClass::Trade,
            ],
            symbols: Some(vec!["BTCUSDT".into(), "BTC-USDT".into(), "--".into()]),
            max_order_notional: Some(dec("-1")),
            daily_notional: Some(dec("-0.01")),
            daily_orders: Some(0),
            max_position: BTreeMap::from([
                ("ETHUSDT".to_owned(), dec("1")),
                ("BTCUSDT".to_owned(), dec("-2")),
            ]),
            contract_values: BTreeMap::new(),
            orders_per_minute: None,
            price_band_pct: Some(dec("-5")),
            trading_hours: Some("8-20".into()),
            max_price_age_s: 0,
        };
        let problems = p.problems();
        let expect = [
            "classes lists `unknown`",
            "classes lists `public`",
            "classes lists `trade` twice",
            "symbols lists `BTC-USDT` more than once",
            "symbols lists `--`, which names no market",
            "max_order_notional is negative",
            "daily_notional is negative",
            "price_band_pct is negative",
            "max_position for `BTCUSDT` is negative",
            "max_position names `ETHUSDT`, which is not in symbols",
            "trading_hours `8-20`",
            "max_price_age_s is 0",
        ];
        for e in expect {
            assert!(
                problems.iter().any(|p| p.contains(e)),
                "missing `{e}` in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expect.len(), "{problems:#?}");
    }

    #[test]
    fn empty_classes_and_empty_symbols_are_problems() {
        let p = PolicyConfig {
            classes: vec![],
            ..PolicyConfig::default()
        };
        assert_eq!(p.problems().len(), 1);
        assert!(p.problems()[0].contains("classes is empty"));
        let p = PolicyConfig {
            symbols: Some(vec![]),
            ..PolicyConfig::default()
        };
        assert!(p.problems()[0].contains("symbols is empty"));
        // Without trade, an empty allowlist says nothing wrong.
        let p = PolicyConfig {
            classes: vec![EndpointClass::Read],
            symbols: Some(vec![]),
            ..PolicyConfig::default()
        };
        assert!(p.problems().is_empty());
    }

    #[test]
    fn config_round_trips_through_toml() {
        let p = PolicyConfig {
            symbols: Some(vec!["BTCUSDT".into()]),
            max_order_notional: Some(dec("1000")),
            max_position: BTreeMap::from([("BTCUSDT".to_owned(), dec("0.25"))]),
            trading_hours: Some("08:00-20:00".into()),
            ..PolicyConfig::default()
        };
        let text = toml::to_string(&p).unwrap();
        let back: PolicyConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, p);
    }
}
