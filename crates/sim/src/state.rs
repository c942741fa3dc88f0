//! One venue's paper exchange: keys, markets, accounts, orders, fills, withdrawals, transfers.
//! Venue modules (`venues/*.rs`) translate HTTP into these operations and back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use keyfence_exchange::{
    AuthContext, AuthError, Denial, DenialKind, HttpRequest, VerifyKey, authenticate,
};
use keyfence_types::{Side, Venue};
use rust_decimal::Decimal;
use serde::Serialize;
use time::OffsetDateTime;

use crate::config::{IpRange, KeyConfig, SimConfig};

/// One request as a venue module sees it.
#[derive(Debug, Clone)]
pub struct SimRequest {
    pub venue: Venue,
    pub http: HttpRequest,
    pub peer: IpAddr,
    /// The `Host` header (`127.0.0.1:9104`), for Coinbase's JWT `uri` check.
    pub host: String,
    pub now_ms: i64,
}

/// A key as the simulated exchange knows it.
#[derive(Debug, Clone)]
pub struct SimKey {
    pub api_key: String,
    pub account: String,
    /// The venue's own permission names.
    pub permissions: BTreeSet<String>,
    pub ip_allowlist: Vec<String>,
    pub ip_ranges: Vec<IpRange>,
    pub created: OffsetDateTime,
    pub expires: Option<OffsetDateTime>,
    pub label: Option<String>,
    pub master: bool,
    /// `hmac`, `ed25519` or `es256`.
    pub kind: &'static str,
}

impl SimKey {
    pub fn has(&self, permission: &str) -> bool {
        self.permissions.contains(permission)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Market {
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub price: Decimal,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Balance {
    pub free: Decimal,
    pub locked: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Market,
    Limit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    New,
    Filled,
    Canceled,
}

/// What a venue module asks the ledger to place.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub symbol: String,
    pub side: Side,
    pub kind: Kind,
    /// Base quantity; for a market buy the module may give `quote_quantity` instead.
    pub quantity: Option<Decimal>,
    pub quote_quantity: Option<Decimal>,
    pub price: Option<Decimal>,
    pub client_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderRecord {
    pub id: u64,
    pub client_id: String,
    pub account: String,
    pub symbol: String,
    pub side: Side,
    pub kind: Kind,
    pub quantity: Decimal,
    pub price: Option<Decimal>,
    pub filled: Decimal,
    /// Quote amount spent or received by fills.
    pub filled_quote: Decimal,
    pub status: Status,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl OrderRecord {
    pub fn average_price(&self) -> Option<Decimal> {
        (self.filled > Decimal::ZERO).then(|| self.filled_quote / self.filled)
    }
}

/// A conditional order parked at the venue until its trigger (OKX's algo orders: `trigger`,
/// `conditional`, `oco`, ...). The simulator keeps it, lists it and cancels it; it never
/// triggers, and it locks no funds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlgoRecord {
    pub id: u64,
    pub client_id: String,
    pub symbol: String,
    pub side: Side,
    /// The venue's own name of the type.
    pub ord_type: String,
    pub quantity: Decimal,
    pub trigger_price: Option<Decimal>,
    pub status: Status,
    pub created_ms: i64,
    pub updated_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trade {
    pub id: u64,
    pub order_id: u64,
    pub account: String,
    pub symbol: String,
    pub side: Side,
    pub price: Decimal,
    pub quantity: Decimal,
    pub quote_quantity: Decimal,
    pub time_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Withdrawal {
    pub id: u64,
    pub account: String,
    pub asset: String,
    pub amount: Decimal,
    pub address: String,
    pub network: Option<String>,
    pub time_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transfer {
    pub id: u64,
    pub account: String,
    pub asset: String,
    pub amount: Decimal,
    pub from: String,
    pub to: String,
    pub time_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deposit {
    pub id: u64,
    pub account: String,
    pub asset: String,
    pub amount: Decimal,
    pub time_ms: i64,
}

#[derive(Debug, Default, Serialize)]
pub struct Account {
    pub name: String,
    pub balances: BTreeMap<String, Balance>,
    pub orders: Vec<OrderRecord>,
    /// Conditional orders waiting for their trigger (OKX).
    pub algos: Vec<AlgoRecord>,
    pub trades: Vec<Trade>,
    pub withdrawals: Vec<Withdrawal>,
    pub transfers: Vec<Transfer>,
    pub deposits: Vec<Deposit>,
}

/// What went wrong with a ledger operation; venue modules render it natively.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("unknown symbol `{0}`")]
    UnknownSymbol(String),
    #[error("insufficient balance")]
    InsufficientFunds,
    #[error("unknown order")]
    UnknownOrder,
    #[error("invalid quantity")]
    InvalidQuantity,
    #[error("invalid price")]
    InvalidPrice,
    #[error("unknown account")]
    UnknownAccount,
    #[error("order is not open")]
    NotOpen,
}

impl SimError {
    pub fn denial(&self) -> Denial {
        let kind = match self {
            SimError::UnknownSymbol(_) => DenialKind::UnknownSymbol,
            SimError::InsufficientFunds => DenialKind::InsufficientFunds,
            SimError::UnknownOrder | SimError::NotOpen => DenialKind::UnknownOrder,
            SimError::InvalidQuantity | SimError::InvalidPrice => DenialKind::BadRequest,
            SimError::UnknownAccount => DenialKind::Internal,
        };
        Denial::new(kind, self.to_string())
    }
}

/// How to find an order.
#[derive(Debug, Clone)]
pub enum OrderRef {
    Id(u64),
    ClientId(String),
}

pub struct VenueState {
    pub venue: Venue,
    pub keys: HashMap<String, SimKey>,
    verify: HashMap<String, VerifyKey>,
    pub markets: BTreeMap<String, Market>,
    pub accounts: BTreeMap<String, Account>,
    /// Kraken: last nonce seen per key.
    pub last_nonce: HashMap<String, u64>,
    next_id: u64,
}

impl VenueState {
    pub fn from_config(venue: Venue, cfg: &SimConfig) -> Result<Self, String> {
        let mut markets = BTreeMap::new();
        if let Some(vc) = cfg.venues.get(&venue) {
            for (symbol, price) in &vc.prices {
                let (base, quote) = crate::venues::split_symbol(venue, symbol)
                    .ok_or_else(|| format!("cannot split symbol `{symbol}`"))?;
                markets.insert(
                    symbol.clone(),
                    Market {
                        symbol: symbol.clone(),
                        base,
                        quote,
                        price: *price,
                    },
                );
            }
        }
        let mut accounts = BTreeMap::new();
        for a in cfg.accounts.iter().filter(|a| a.venue == venue) {
            accounts.insert(
                a.name.clone(),
                Account {
                    name: a.name.clone(),
                    balances: a
                        .balances
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                Balance {
                                    free: *v,
                                    locked: Decimal::ZERO,
                                },
                            )
                        })
                        .collect(),
                    ..Account::default()
                },
            );
        }
        let mut keys = HashMap::new();
        let mut verify = HashMap::new();
        for k in cfg.keys.iter().filter(|k| k.venue == venue) {
            let vk = k.verify_key().map_err(|e| e.to_string())?;
            keys.insert(k.api_key.clone(), sim_key(k, vk.kind())?);
            verify.insert(k.api_key.clone(), vk);
        }
        Ok(VenueState {
            venue,
            keys,
            verify,
            markets,
            accounts,
            last_nonce: HashMap::new(),
            next_id: 1000,
        })
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Authenticate as the venue does: the signature over the raw bytes, then the key's IP
    /// allowlist, its expiry, and (Kraken) an increasing nonce. Returns the key.
    pub fn authenticate(&mut self, req: &SimRequest) -> Result<SimKey, AuthError> {
        let ctx = AuthContext {
            now_ms: req.now_ms,
            host: Some(req.host.as_str()),
        };
        let ok = authenticate(self.venue, &req.http, &ctx, &self.verify)?;
        let key = self
            .keys
            .get(&ok.api_key)
            .cloned()
            .ok_or(AuthError::UnknownApiKey)?;
        if !key.ip_ranges.is_empty() && !key.ip_ranges.iter().any(|r| r.contains(req.peer)) {
            return Err(AuthError::IpNotAllowed);
        }
        if let Some(exp) = key.expires
            && exp.unix_timestamp() * 1000 <= req.now_ms
        {
            return Err(AuthError::KeyExpired);
        }
        if let Some(nonce) = ok.nonce {
            let last = self.last_nonce.entry(ok.api_key.clone()).or_insert(0);
            if nonce <= *last {
                return Err(AuthError::InvalidNonce);
            }
            *last = nonce;
        }
        Ok(key)
    }

    pub fn market(&self, symbol: &str) -> Result<&Market, SimError> {
        self.markets
            .get(symbol)
            .ok_or_else(|| SimError::UnknownSymbol(symbol.to_owned()))
    }

    pub fn account(&self, name: &str) -> Result<&Account, SimError> {
        self.accounts.get(name).ok_or(SimError::UnknownAccount)
    }

    fn account_mut(&mut self, name: &str) -> Result<&mut Account, SimError> {
        self.accounts.get_mut(name).ok_or(SimError::UnknownAccount)
    }

    /// Place an order. Market orders fill at once at the reference price; limit orders fill at
    /// once when they cross it (at the reference price), otherwise rest with funds locked.
    pub fn place_order(
        &mut self,
        account: &str,
        order: NewOrder,
        now_ms: i64,
    ) -> Result<OrderRecord, SimError> {
        let market = self.market(&order.symbol)?.clone();
        let ref_price = market.price;
        let quantity = match (order.quantity, order.quote_quantity) {
            (Some(q), _) => q,
            (None, Some(quote)) if order.kind == Kind::Market => quote
                .checked_div(ref_price)
                .ok_or(SimError::InvalidQuantity)?
                .round_dp_with_strategy(8, rust_decimal::RoundingStrategy::ToZero),
            _ => return Err(SimError::InvalidQuantity),
        };
        if quantity <= Decimal::ZERO {
            return Err(SimError::InvalidQuantity);
        }
        let limit = match order.kind {
            Kind::Limit => Some(
                order
                    .price
                    .filter(|p| *p > Decimal::ZERO)
                    .ok_or(SimError::InvalidPrice)?,
            ),
            Kind::Market => None,
        };
        let crosses = match (order.side, limit) {
            (_, None) => true,
            (Side::Buy, Some(p)) => p >= ref_price,
            (Side::Sell, Some(p)) => p <= ref_price,
        };
        // Funds needed: buys pay quote, sells pay base.
        // Checked: an amount read from a request must not overflow the ledger.
        let price = if crosses {
            ref_price
        } else {
            limit.unwrap_or(ref_price)
        };
        // Checked against the larger price: every later product (fill, lock) is at most this.
        if quantity.checked_mul(price.max(ref_price)).is_none() {
            return Err(SimError::InvalidQuantity);
        }
        let (pay_asset, pay_amount) = match order.side {
            Side::Buy => (market.quote.clone(), quantity * price),
            Side::Sell => (market.base.clone(), quantity),
        };
        let id = self.next_id();
        let acct = self.account_mut(account)?;
        let bal = acct.balances.entry(pay_asset.clone()).or_default();
        if bal.free < pay_amount {
            return Err(SimError::InsufficientFunds);
        }
        let mut rec = OrderRecord {
            id,
            client_id: order.client_id.unwrap_or_else(|| format!("sim-{id}")),
            account: account.to_owned(),
            symbol: market.symbol.clone(),
            side: order.side,
            kind: order.kind,
            quantity,
            price: limit,
            filled: Decimal::ZERO,
            filled_quote: Decimal::ZERO,
            status: Status::New,
            created_ms: now_ms,
            updated_ms: now_ms,
        };
        if crosses {
            bal.free -= pay_amount;
            let trade_id = id * 10 + 1;
            fill(acct, &market, &mut rec, ref_price, trade_id, now_ms);
        } else {
            bal.free -= pay_amount;
            bal.locked += pay_amount;
        }
        acct.orders.push(rec.clone());
        Ok(rec)
    }

    pub fn find_order(&self, account: &str, r: &OrderRef) -> Result<&OrderRecord, SimError> {
        self.account(account)?
            .orders
            .iter()
            .find(|o| match r {
                OrderRef::Id(id) => o.id == *id,
                OrderRef::ClientId(c) => o.client_id == *c,
            })
            .ok_or(SimError::UnknownOrder)
    }

    /// Cancel an open order and release its locked funds.
    pub fn cancel_order(
        &mut self,
        account: &str,
        r: &OrderRef,
        now_ms: i64,
    ) -> Result<OrderRecord, SimError> {
        let markets = self.markets.clone();
        let acct = self.account_mut(account)?;
        let idx = acct
            .orders
            .iter()
            .position(|o| match r {
                OrderRef::Id(id) => o.id == *id,
                OrderRef::ClientId(c) => o.client_id == *c,
            })
            .ok_or(SimError::UnknownOrder)?;
        if acct.orders[idx].status != Status::New {
            return Err(SimError::NotOpen);
        }
        let o = acct.orders[idx].clone();
        let market = markets
            .get(&o.symbol)
            .ok_or_else(|| SimError::UnknownSymbol(o.symbol.clone()))?;
        let (asset, amount) = locked_for(&o, market);
        let bal = acct.balances.entry(asset).or_default();
        bal.locked -= amount;
        bal.free += amount;
        let o = &mut acct.orders[idx];
        o.status = Status::Canceled;
        o.updated_ms = now_ms;
        Ok(o.clone())
    }

    /// Park a conditional order on a known market; its id is assigned here.
    pub fn place_algo(
        &mut self,
        account: &str,
        mut algo: AlgoRecord,
    ) -> Result<AlgoRecord, SimError> {
        self.market(&algo.symbol)?;
        if algo.quantity <= Decimal::ZERO {
            return Err(SimError::InvalidQuantity);
        }
        algo.id = self.next_id();
        algo.status = Status::New;
        self.account_mut(account)?.algos.push(algo.clone());
        Ok(algo)
    }

    /// Conditional orders still waiting, of these types, optionally on one market.
    pub fn open_algos(
        &self,
        account: &str,
        types: &[&str],
        symbol: Option<&str>,
    ) -> Vec<&AlgoRecord> {
        self.accounts
            .get(account)
            .map(|a| {
                a.algos
                    .iter()
                    .filter(|o| o.status == Status::New && types.contains(&o.ord_type.as_str()))
                    .filter(|o| symbol.is_none_or(|s| o.symbol == s))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Cancel a waiting conditional order (its market must match).
    pub fn cancel_algo(
        &mut self,
        account: &str,
        id: u64,
        symbol: &str,
        now_ms: i64,
    ) -> Result<AlgoRecord, SimError> {
        let algo = self
            .account_mut(account)?
            .algos
            .iter_mut()
            .find(|o| o.id == id && o.symbol == symbol)
            .ok_or(SimError::UnknownOrder)?;
        if algo.status != Status::New {
            return Err(SimError::NotOpen);
        }
        algo.status = Status::Canceled;
        algo.updated_ms = now_ms;
        Ok(algo.clone())
    }

    pub fn open_orders(&self, account: &str, symbol: Option<&str>) -> Vec<&OrderRecord> {
        self.accounts
            .get(account)
            .map(|a| {
                a.orders
                    .iter()
                    .filter(|o| o.status == Status::New)
                    .filter(|o| symbol.is_none_or(|s| o.symbol == s))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn orders(&self, account: &str, symbol: Option<&str>) -> Vec<&OrderRecord> {
        self.accounts
            .get(account)
            .map(|a| {
                a.orders
                    .iter()
                    .filter(|o| symbol.is_none_or(|s| o.symbol == s))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn trades(&self, account: &str, symbol: Option<&str>) -> Vec<&Trade> {
        self.accounts
            .get(account)
            .map(|a| {
                a.trades
                    .iter()
                    .filter(|t| symbol.is_none_or(|s| t.symbol == s))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Move funds out of the account to an external address.
    pub fn withdraw(
        &mut self,
        account: &str,
        asset: &str,
        amount: Decimal,
        address: &str,
        network: Option<String>,
        now_ms: i64,
    ) -> Result<Withdrawal, SimError> {
        if amount <= Decimal::ZERO {
            return Err(SimError::InvalidQuantity);
        }
        let id = self.next_id();
        let acct = self.account_mut(account)?;
        let bal = acct.balances.entry(asset.to_owned()).or_default();
        if bal.free < amount {
            return Err(SimError::InsufficientFunds);
        }
        bal.free -= amount;
        let w = Withdrawal {
            id,
            account: account.to_owned(),
            asset: asset.to_owned(),
            amount,
            address: address.to_owned(),
            network,
            time_ms: now_ms,
        };
        acct.withdrawals.push(w.clone());
        Ok(w)
    }

    /// Record an internal transfer (between the account's wallets or to a sub-account). The
    /// simulator keeps one wallet per account, so the balance stays; the record is what counts.
    pub fn transfer(
        &mut self,
        account: &str,
        asset: &str,
        amount: Decimal,
        from: &str,
        to: &str,
        now_ms: i64,
    ) -> Result<Transfer, SimError> {
        if amount <= Decimal::ZERO {
            return Err(SimError::InvalidQuantity);
        }
        let id = self.next_id();
        let acct = self.account_mut(account)?;
        let free = acct.balances.get(asset).map_or(Decimal::ZERO, |b| b.free);
        if free < amount {
            return Err(SimError::InsufficientFunds);
        }
        let t = Transfer {
            id,
            account: account.to_owned(),
            asset: asset.to_owned(),
            amount,
            from: from.to_owned(),
            to: to.to_owned(),
            time_ms: now_ms,
        };
        acct.transfers.push(t.clone());
        Ok(t)
    }

    /// Change a reference price and fill the resting limit orders it crosses.
    pub fn set_price(
        &mut self,
        symbol: &str,
        price: Decimal,
        now_ms: i64,
    ) -> Result<usize, SimError> {
        if price <= Decimal::ZERO {
            return Err(SimError::InvalidPrice);
        }
        let market = {
            let m = self
                .markets
                .get_mut(symbol)
                .ok_or_else(|| SimError::UnknownSymbol(symbol.to_owned()))?;
            m.price = price;
            m.clone()
        };
        let mut filled = 0;
        let mut ids = Vec::new();
        for acct in self.accounts.values() {
            for o in &acct.orders {
                ids.push((acct.name.clone(), o.id));
            }
        }
        for (name, oid) in ids {
            let trade_id = self.next_id();
            let Some(acct) = self.accounts.get_mut(&name) else {
                continue;
            };
            let Some(idx) = acct.orders.iter().position(|o| o.id == oid) else {
                continue;
            };
            let o = &acct.orders[idx];
            if o.status != Status::New || o.symbol != symbol {
                continue;
            }
            let crosses = match (o.side, o.price) {
                (Side::Buy, Some(p)) => p >= price,
                (Side::Sell, Some(p)) => p <= price,
                _ => false,
            };
            if !crosses {
                continue;
            }
            let mut rec = o.clone();
            let (asset, amount) = locked_for(&rec, &market);
            let bal = acct.balances.entry(asset).or_default();
            bal.locked -= amount;
            // A resting limit order fills at its own price: the buyer paid at most the limit.
            let fill_price = rec.price.unwrap_or(price);
            fill(acct, &market, &mut rec, fill_price, trade_id, now_ms);
            acct.orders[idx] = rec;
            filled += 1;
        }
        Ok(filled)
    }
}

/// Funds a resting order holds locked.
fn locked_for(o: &OrderRecord, m: &Market) -> (String, Decimal) {
    let open = o.quantity - o.filled;
    match o.side {
        Side::Buy => (m.quote.clone(), open * o.price.unwrap_or(m.price)),
        Side::Sell => (m.base.clone(), open),
    }
}

/// Fill `rec` completely at `price`: credit what was bought. The paid side was already debited
/// (from free at once, or from locked by the caller).
fn fill(
    acct: &mut Account,
    m: &Market,
    rec: &mut OrderRecord,
    price: Decimal,
    trade_id: u64,
    now_ms: i64,
) {
    let qty = rec.quantity - rec.filled;
    let quote = qty * price;
    match rec.side {
        Side::Buy => acct.balances.entry(m.base.clone()).or_default().free += qty,
        Side::Sell => acct.balances.entry(m.quote.clone()).or_default().free += quote,
    }
    rec.filled += qty;
    rec.filled_quote += quote;
    rec.status = Status::Filled;
    rec.updated_ms = now_ms;
    acct.trades.push(Trade {
        id: trade_id,
        order_id: rec.id,
        account: acct.name.clone(),
        symbol: rec.symbol.clone(),
        side: rec.side,
        price,
        quantity: qty,
        quote_quantity: quote,
        time_ms: now_ms,
    });
}

fn sim_key(k: &KeyConfig, kind: &'static str) -> Result<SimKey, String> {
    let ip_ranges = k
        .ip_allowlist
        .iter()
        .map(|s| s.parse::<IpRange>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SimKey {
        api_key: k.api_key.clone(),
        account: k.account.clone(),
        permissions: k.permissions.iter().cloned().collect(),
        ip_allowlist: k.ip_allowlist.clone(),
        ip_ranges,
        created: k.created,
        expires: k.expires,
        label: k.label.clone(),
        master: k.master,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn state() -> VenueState {
        let cfg = SimConfig::parse(
            r#"
            [venues.binance]
            bind = "127.0.0.1:0"
            prices = { BTCUSDT = "60000" }
            [[accounts]]
            venue = "binance"
            name = "main"
            balances = { USDT = "10000", BTC = "1" }
            "#,
            "test",
        )
        .unwrap();
        VenueState::from_config(Venue::Binance, &cfg).unwrap()
    }

    fn order(side: Side, kind: Kind, qty: &str, price: Option<&str>) -> NewOrder {
        NewOrder {
            symbol: "BTCUSDT".into(),
            side,
            kind,
            quantity: Some(qty.parse().unwrap()),
            quote_quantity: None,
            price: price.map(|p| p.parse().unwrap()),
            client_id: None,
        }
    }

    fn bal(st: &VenueState, asset: &str) -> Balance {
        st.account("main").unwrap().balances[asset].clone()
    }

    #[test]
    fn market_buy_fills_at_the_reference_price() {
        let mut st = state();
        let o = st
            .place_order("main", order(Side::Buy, Kind::Market, "0.1", None), 1)
            .unwrap();
        assert_eq!(o.status, Status::Filled);
        assert_eq!(o.average_price(), Some(dec("60000")));
        assert_eq!(bal(&st, "USDT").free, dec("4000"));
        assert_eq!(bal(&st, "BTC").free, dec("1.1"));
        assert_eq!(st.trades("main", None).len(), 1);
    }

    #[test]
    fn quote_sized_market_buy_converts_at_the_reference_price() {
        let mut st = state();
        let mut o = order(Side::Buy, Kind::Market, "0", None);
        o.quantity = None;
        o.quote_quantity = Some(dec("600"));
        let rec = st.place_order("main", o, 1).unwrap();
        assert_eq!(rec.filled, dec("0.01"));
        assert_eq!(bal(&st, "USDT").free, dec("9400"));
    }

    #[test]
    fn limit_order_rests_locks_funds_and_cancel_releases_them() {
        let mut st = state();
        let o = st
            .place_order(
                "main",
                order(Side::Buy, Kind::Limit, "0.1", Some("50000")),
                1,
            )
            .unwrap();
        assert_eq!(o.status, Status::New);
        assert_eq!(bal(&st, "USDT").free, dec("5000"));
        assert_eq!(bal(&st, "USDT").locked, dec("5000"));
        assert_eq!(st.open_orders("main", Some("BTCUSDT")).len(), 1);
        let c = st.cancel_order("main", &OrderRef::Id(o.id), 2).unwrap();
        assert_eq!(c.status, Status::Canceled);
        assert_eq!(bal(&st, "USDT").free, dec("10000"));
        assert_eq!(bal(&st, "USDT").locked, Decimal::ZERO);
        assert_eq!(
            st.cancel_order("main", &OrderRef::Id(o.id), 3),
            Err(SimError::NotOpen)
        );
        assert!(st.open_orders("main", None).is_empty());
    }

    #[test]
    fn crossing_limit_fills_now_and_a_price_move_fills_resting_orders() {
        let mut st = state();
        let now = st
            .place_order(
                "main",
                order(Side::Sell, Kind::Limit, "0.5", Some("59000")),
                1,
            )
            .unwrap();
        assert_eq!(now.status, Status::Filled);
        assert_eq!(bal(&st, "USDT").free, dec("40000"));
        let rest = st
            .place_order(
                "main",
                order(Side::Sell, Kind::Limit, "0.5", Some("61000")),
                1,
            )
            .unwrap();
        assert_eq!(rest.status, Status::New);
        assert_eq!(st.set_price("BTCUSDT", dec("60500"), 2).unwrap(), 0);
        assert_eq!(st.set_price("BTCUSDT", dec("61500"), 3).unwrap(), 1);
        let filled = st.find_order("main", &OrderRef::Id(rest.id)).unwrap();
        assert_eq!(filled.status, Status::Filled);
        assert_eq!(filled.average_price(), Some(dec("61000")));
        assert_eq!(bal(&st, "BTC").free, Decimal::ZERO);
        assert_eq!(bal(&st, "BTC").locked, Decimal::ZERO);
        assert_eq!(bal(&st, "USDT").free, dec("70500"));
    }

    #[test]
    fn refusals_change_nothing() {
        let mut st = state();
        assert_eq!(
            st.place_order("main", order(Side::Buy, Kind::Market, "1", None), 1)
                .unwrap_err(),
            SimError::InsufficientFunds
        );
        let mut o = order(Side::Buy, Kind::Market, "1", None);
        o.symbol = "DOGEUSDT".into();
        assert!(matches!(
            st.place_order("main", o, 1),
            Err(SimError::UnknownSymbol(_))
        ));
        assert_eq!(
            st.place_order("main", order(Side::Buy, Kind::Limit, "0.1", None), 1)
                .unwrap_err(),
            SimError::InvalidPrice
        );
        assert_eq!(
            st.place_order("main", order(Side::Buy, Kind::Market, "-1", None), 1)
                .unwrap_err(),
            SimError::InvalidQuantity
        );
        assert_eq!(bal(&st, "USDT").free, dec("10000"));
        assert!(st.account("main").unwrap().orders.is_empty());
    }

    #[test]
    fn huge_amounts_are_refused_not_overflowed() {
        let mut st = state();
        let max = Decimal::MAX.to_string();
        assert_eq!(
            st.place_order("main", order(Side::Buy, Kind::Market, &max, None), 1)
                .unwrap_err(),
            SimError::InvalidQuantity
        );
        assert_eq!(
            st.place_order("main", order(Side::Sell, Kind::Limit, &max, Some("2")), 1)
                .unwrap_err(),
            SimError::InvalidQuantity
        );
    }

    #[test]
    fn withdrawals_move_funds_out_and_are_recorded() {
        let mut st = state();
        let w = st
            .withdraw("main", "USDT", dec("100"), "addr", None, 5)
            .unwrap();
        assert_eq!(w.amount, dec("100"));
        assert_eq!(bal(&st, "USDT").free, dec("9900"));
        assert_eq!(
            st.withdraw("main", "USDT", dec("1000000"), "addr", None, 6),
            Err(SimError::InsufficientFunds)
        );
        let t = st
            .transfer("main", "USDT", dec("10"), "spot", "funding", 7)
            .unwrap();
        assert_eq!(t.to, "funding");
        let acct = st.account("main").unwrap();
        assert_eq!(acct.withdrawals.len(), 1);
        assert_eq!(acct.transfers.len(), 1);
    }
}
