//! Domain nouns shared by every keyfence crate.
//!
//! Architecture invariant: this crate does no I/O and never reads the clock.

pub mod net;
mod secret;

pub use secret::{SecretBytes, SecretString};

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// An exchange keyfence speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Venue {
    Binance,
    Bybit,
    Okx,
    Coinbase,
    Kraken,
}

impl Venue {
    pub const ALL: [Venue; 5] = [
        Venue::Binance,
        Venue::Bybit,
        Venue::Okx,
        Venue::Coinbase,
        Venue::Kraken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Venue::Binance => "binance",
            Venue::Bybit => "bybit",
            Venue::Okx => "okx",
            Venue::Coinbase => "coinbase",
            Venue::Kraken => "kraken",
        }
    }
}

impl fmt::Display for Venue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown exchange `{0}`; expected one of binance, bybit, okx, coinbase, kraken")]
pub struct UnknownVenue(pub String);

impl FromStr for Venue {
    type Err = UnknownVenue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Venue::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownVenue(s.to_owned()))
    }
}

/// What an endpoint does, for policy. Allow-list style: anything not listed is `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointClass {
    Public,
    Read,
    Trade,
    Cancel,
    Withdraw,
    Transfer,
    Deposit,
    Subaccount,
    KeyManagement,
    AccountSettings,
    Unknown,
}

impl EndpointClass {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointClass::Public => "public",
            EndpointClass::Read => "read",
            EndpointClass::Trade => "trade",
            EndpointClass::Cancel => "cancel",
            EndpointClass::Withdraw => "withdraw",
            EndpointClass::Transfer => "transfer",
            EndpointClass::Deposit => "deposit",
            EndpointClass::Subaccount => "subaccount",
            EndpointClass::KeyManagement => "key-management",
            EndpointClass::AccountSettings => "account-settings",
            EndpointClass::Unknown => "unknown",
        }
    }
}

impl fmt::Display for EndpointClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrderType {
    Market,
    Limit,
    /// Stops, take-profits, post-only variants and the like: the venue's own name, lower-case.
    Other(String),
}

/// One order as the exchange would execute it, normalised across venues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub venue: Venue,
    /// The venue's own symbol spelling (`BTCUSDT`, `BTC-USDT`, `XBTUSD`).
    pub symbol: String,
    pub side: Side,
    pub order_type: OrderType,
    /// Base-asset quantity, when the order is sized in base units (or contracts).
    pub quantity: Option<Decimal>,
    /// Quote-asset quantity, when the order is sized in quote units.
    pub quote_quantity: Option<Decimal>,
    /// Limit price, when there is one.
    pub price: Option<Decimal>,
    pub reduce_only: bool,
    pub client_id: Option<String>,
}

impl Order {
    /// Whether `quantity` counts contracts rather than units of the base asset: OKX swaps,
    /// futures and options (`BTC-USDT-SWAP`, `BTC-USD-250328`, `BTC-USD-250328-60000-C`) and
    /// Coinbase's futures (`BIT-28NOV25-CDE`), whose instrument ids have more than one dash
    /// where a spot market's have one (Coinbase's international perpetuals, `BTC-PERP-INTX`,
    /// count too: a policy that trades them names a contract value of 1). A contract stands
    /// for an amount of the base asset that the venue sets per instrument (OKX `ctVal`) and the
    /// order does not carry, so such an order cannot be valued without it (a policy's
    /// `contract_values`).
    pub fn counts_contracts(&self) -> bool {
        matches!(self.venue, Venue::Okx | Venue::Coinbase)
            && self.quote_quantity.is_none()
            && self.symbol.matches('-').count() > 1
    }

    /// Whether this is an OKX option (`BTC-USD-250328-60000-C`): priced in premium, in the
    /// underlying coin, so its size times its price is not its value in the quote currency.
    pub fn is_option(&self) -> bool {
        self.venue == Venue::Okx
            && self.symbol.matches('-').count() == 4
            && (self.symbol.ends_with("-C") || self.symbol.ends_with("-P"))
    }
}

/// Normalised permissions a key holds, across venues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// Read balances, orders, trades.
    Read,
    /// Spot trading.
    SpotTrade,
    /// Margin trading or borrowing.
    MarginTrade,
    /// Futures or perpetual swaps.
    FuturesTrade,
    /// Options.
    OptionsTrade,
    /// Withdrawals to external addresses.
    Withdraw,
    /// Moving funds between own accounts, sub-accounts or wallets.
    Transfer,
    /// Creating deposit addresses and the like.
    Deposit,
    /// Creating or managing sub-accounts.
    Subaccount,
    /// Creating, changing or deleting API keys.
    KeyManagement,
    /// Earn, staking, savings products.
    Earn,
    /// Anything else the venue grants (fiat, P2P, NFT, ...).
    Other,
}

impl Permission {
    /// Permissions that let a key change what the account holds.
    pub fn is_trading(self) -> bool {
        matches!(
            self,
            Permission::SpotTrade
                | Permission::MarginTrade
                | Permission::FuturesTrade
                | Permission::OptionsTrade
        )
    }
}

/// What a key can do, normalised from a venue's key-introspection answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyProfile {
    pub venue: Venue,
    /// Normalised permission set.
    pub permissions: BTreeSet<Permission>,
    /// The venue's own permission names, as its answer spells them.
    pub raw_permissions: Vec<String>,
    /// Whether access is restricted to listed IPs; `None` when the venue does not say.
    pub ip_restricted: Option<bool>,
    /// The IP allowlist, where the venue lists it (empty when unrestricted or unlisted).
    pub ip_allowlist: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires: Option<OffsetDateTime>,
    pub read_only: bool,
    /// True when the venue says the key belongs to the main (master) account.
    pub master_account: Option<bool>,
    /// The key's label or note at the venue, when given.
    pub label: Option<String>,
}

impl KeyProfile {
    pub fn empty(venue: Venue) -> Self {
        KeyProfile {
            venue,
            permissions: BTreeSet::new(),
            raw_permissions: Vec::new(),
            ip_restricted: None,
            ip_allowlist: Vec::new(),
            created: None,
            expires: None,
            read_only: false,
            master_account: None,
            label: None,
        }
    }

    pub fn can(&self, p: Permission) -> bool {
        self.permissions.contains(&p)
    }
}

/// What a key is for. Decides which permissions it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// Spot trading only.
    Spot,
    /// Spot and margin trading.
    Margin,
    /// Futures or perpetual swaps.
    Futures,
    /// Options.
    Options,
    /// Any kind of trading (a multi-product bot).
    Trading,
    /// Reading balances, orders and trades (portfolio trackers, tax tools, monitors).
    ReadOnly,
}

impl Purpose {
    pub const ALL: [Purpose; 6] = [
        Purpose::Spot,
        Purpose::Margin,
        Purpose::Futures,
        Purpose::Options,
        Purpose::Trading,
        Purpose::ReadOnly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Spot => "spot",
            Purpose::Margin => "margin",
            Purpose::Futures => "futures",
            Purpose::Options => "options",
            Purpose::Trading => "trading",
            Purpose::ReadOnly => "read-only",
        }
    }

    /// The trading permissions the purpose needs, all of them (empty: needs no trading).
    pub fn trade_needs(self) -> &'static [Permission] {
        match self {
            Purpose::Spot => &[Permission::SpotTrade],
            Purpose::Margin => &[Permission::SpotTrade, Permission::MarginTrade],
            Purpose::Futures => &[Permission::FuturesTrade],
            Purpose::Options => &[Permission::OptionsTrade],
            // Any one trading permission will do; see `cannot-trade`.
            Purpose::Trading => &[],
            Purpose::ReadOnly => &[],
        }
    }

    /// Whether the purpose places orders.
    pub fn trades(self) -> bool {
        !matches!(self, Purpose::ReadOnly)
    }

    /// Every permission the purpose may use; anything else is excess.
    pub fn allows(self, p: Permission) -> bool {
        match p {
            Permission::Read => true,
            _ if self == Purpose::Trading => p.is_trading(),
            _ => self.trade_needs().contains(&p),
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown purpose `{0}`; expected one of spot, margin, futures, options, trading, read-only"
)]
pub struct UnknownPurpose(pub String);

impl FromStr for Purpose {
    type Err = UnknownPurpose;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Purpose::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownPurpose(s.to_owned()))
    }
}

/// The account-value tier that sets a key's rotation schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Chosen from the account's value in USD (the audit configuration); `high` when the value is unknown.
    Auto,
    High,
    Medium,
    Low,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Auto, Tier::High, Tier::Medium, Tier::Low];

    /// Default days between rotations: high 30, medium 60, low 90; `auto` counts as high
    /// until an audit has seen the account's value (the strict choice, as the audit makes it).
    pub fn rotation_days(self) -> i64 {
        match self {
            Tier::High | Tier::Auto => 30,
            Tier::Medium => 60,
            Tier::Low => 90,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Auto => "auto",
            Tier::High => "high",
            Tier::Medium => "medium",
            Tier::Low => "low",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tier `{0}`; expected one of auto, high, medium, low")]
pub struct UnknownTier(pub String);

impl FromStr for Tier {
    type Err = UnknownTier;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Tier::Auto, Tier::High, Tier::Medium, Tier::Low]
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownTier(s.to_owned()))
    }
}

/// A real exchange credential, as the vault holds it. Not `Debug` beyond a redacted form; a
/// clone is as zeroizing as the original.
#[derive(Clone)]
pub struct Credential {
    pub api_key: String,
    /// HMAC secret (the venue's string form: Binance/Bybit/OKX raw, Kraken base64).
    pub secret: Option<SecretString>,
    /// PEM private key (Binance Ed25519, Coinbase ES256/Ed25519) or Coinbase's base64 Ed25519 form.
    pub private_key: Option<SecretString>,
    /// OKX passphrase.
    pub passphrase: Option<SecretString>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("api_key", &self.api_key)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "passphrase",
                &self.passphrase.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venue_round_trips_through_its_name() {
        for v in Venue::ALL {
            assert_eq!(v.as_str().parse::<Venue>(), Ok(v));
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{v}\""));
        }
        assert!("ftx".parse::<Venue>().is_err());
    }

    #[test]
    fn credential_debug_does_not_show_secrets() {
        let c = Credential {
            api_key: "public-key".into(),
            secret: Some(SecretString::new("hunter2-secret".into())),
            private_key: None,
            passphrase: Some(SecretString::new("my-passphrase".into())),
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("my-passphrase"));
        assert!(shown.contains("public-key"));
    }

    #[test]
    fn endpoint_class_serialises_kebab_case() {
        assert_eq!(
            serde_json::to_string(&EndpointClass::KeyManagement).unwrap(),
            "\"key-management\""
        );
        assert_eq!(EndpointClass::AccountSettings.as_str(), "account-settings");
    }
}
