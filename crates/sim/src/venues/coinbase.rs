//! The simulated Coinbase: Advanced Trade v3 (`/api/v3/brokerage/...`) and the v2 endpoints on
//! the same host that ccxt's `load_markets`/`fetch_balance` and withdrawals use. Described in
//! `docs/sim/coinbase.md`.
//!
//! Key permissions are Coinbase's own names, as `GET /api/v3/brokerage/key_permissions`
//! spells them: `can_view` (every private read), `can_trade` (orders, cancels), `can_transfer`
//! (sends/withdrawals, portfolio fund moves).

use keyfence_exchange::params::parse_json_strict;
use keyfence_exchange::{
    AuthError, Denial, DenialKind, NativeResponse, OrderType, native_error, parse_orders, path,
};
use keyfence_types::{Side, Venue};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::state::{
    Kind, NewOrder, OrderRecord, OrderRef, SimError, SimKey, SimRequest, Status, Trade, VenueState,
};

/// Permissions (the venue's own names) that let a key read and trade spot.
pub(crate) const TRADING_PERMISSIONS: &[&str] = &["can_view", "can_trade"];

const VIEW: &str = "can_view";
const TRADE: &str = "can_trade";
const TRANSFER: &str = "can_transfer";
const FIAT: &[&str] = &["USD", "EUR", "GBP"];
const ORDER_ID_PREFIX: &str = "5e1a0000-0000-4000-8000-";

pub(crate) fn split_symbol(symbol: &str) -> Option<(String, String)> {
    super::split_on_dash(symbol)
}

// ---------------------------------------------------------------------------------------------
// Small helpers

fn fail(req: &SimRequest, kind: DenialKind, msg: impl Into<String>) -> NativeResponse {
    native_error(Venue::Coinbase, &Denial::new(kind, msg), req.now_ms)
}

fn ok(v: Value) -> NativeResponse {
    NativeResponse::json(200, v)
}

/// The v2 API's own error shape.
fn v2_error(status: u16, id: &str, message: &str) -> NativeResponse {
    NativeResponse::json(
        status,
        json!({ "errors": [ { "id": id, "message": message } ] }),
    )
}

fn num(d: Decimal) -> String {
    d.normalize().to_string()
}

fn iso(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A stable UUID-shaped id from a seed (accounts, portfolios, users, transactions).
fn uuid_from(seed: &str) -> String {
    let h = hex::encode(&keyfence_exchange::crypto::sha256(seed.as_bytes())[..16]);
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn order_id(id: u64) -> String {
    format!("{ORDER_ID_PREFIX}{id:012x}")
}

fn parse_order_id(s: &str) -> Option<u64> {
    let rest = s.to_ascii_lowercase();
    let hexpart = rest.strip_prefix(ORDER_ID_PREFIX)?;
    (hexpart.len() == 12)
        .then(|| u64::from_str_radix(hexpart, 16).ok())
        .flatten()
}

fn account_uuid(account: &str, asset: &str) -> String {
    uuid_from(&format!("coinbase-account|{account}|{asset}"))
}

fn portfolio_uuid(account: &str) -> String {
    uuid_from(&format!("coinbase-portfolio|{account}"))
}

fn user_id(account: &str) -> String {
    uuid_from(&format!("coinbase-user|{account}"))
}

fn side_str(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

/// Query parameters in order; list parameters may repeat, the others may not.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: &str) -> Self {
        Query(
            form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name || k.strip_suffix("[]") == Some(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn one(&self, name: &str) -> Result<Option<&str>, String> {
        match self.all(name).as_slice() {
            [] => Ok(None),
            [v] => Ok(Some(v)),
            _ => Err(format!("parameter `{name}` is sent more than once")),
        }
    }

    fn limit(&self) -> Result<usize, String> {
        match self.one("limit")? {
            None => Ok(usize::MAX),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("invalid value for `limit`: `{v}`")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Routing

pub(crate) fn handle(state: &mut VenueState, req: &SimRequest) -> NativeResponse {
    let Some(canon) = path::canonical(&req.http.path) else {
        return fail(req, DenialKind::NotFound, "Not Found");
    };
    let method = req.http.method.to_ascii_uppercase();
    let segs: Vec<&str> = canon.trim_start_matches('/').split('/').collect();
    let query = Query::parse(&req.http.query);

    // Public endpoints: no authentication.
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["api", "v3", "brokerage", "time"]) => return v3_time(req),
        ("GET", ["v2", "time"]) => {
            return ok(
                json!({"data": {"iso": iso(req.now_ms), "epoch": req.now_ms.div_euclid(1000)}}),
            );
        }
        ("GET", ["api", "v3", "brokerage", "market", "products"]) => {
            return products(state, req, &query);
        }
        ("GET", ["api", "v3", "brokerage", "market", "products", id]) => {
            return product(state, req, id);
        }
        ("GET", ["api", "v3", "brokerage", "market", "products", id, "ticker"]) => {
            return ticker(state, req, id);
        }
        ("GET", ["v2", "currencies"]) => return v2_fiat_currencies(state),
        ("GET", ["v2", "currencies", "crypto"]) => return v2_crypto_currencies(state),
        ("GET", ["v2", "exchange-rates"]) => return v2_exchange_rates(state, req, &query),
        _ => {}
    }

    let private = matches!(
        (method.as_str(), segs.as_slice()),
        ("GET" | "POST", ["api", "v3", "brokerage", ..]) | ("GET" | "POST", ["v2", "accounts", ..])
    );
    if !private {
        return fail(req, DenialKind::NotFound, "Not Found");
    }
    let key = match state.authenticate(req) {
        Ok(k) => k,
        Err(e) => return auth_error(req, &e),
    };

    let needs = |perm: &str| -> Option<NativeResponse> {
        (!key.has(perm)).then(|| {
            fail(
                req,
                DenialKind::PermissionDenied,
                format!("the key lacks the `{perm}` scope"),
            )
        })
    };

    match (method.as_str(), segs.as_slice()) {
        ("GET", ["api", "v3", "brokerage", "key_permissions"]) => key_permissions(&key),
        ("GET", ["api", "v3", "brokerage", rest @ ..]) => {
            if let Some(denied) = needs(VIEW) {
                return denied;
            }
            v3_read(state, req, &key, &query, rest)
        }
        ("POST", ["api", "v3", "brokerage", "orders"]) => {
            needs(TRADE).unwrap_or_else(|| create_order(state, req, &key))
        }
        ("POST", ["api", "v3", "brokerage", "orders", "batch_cancel"]) => {
            needs(TRADE).unwrap_or_else(|| batch_cancel(state, req, &key))
        }
        ("POST", ["api", "v3", "brokerage", "portfolios", "move_funds"]) => {
            needs(TRANSFER).unwrap_or_else(|| move_funds(state, req, &key))
        }
        ("GET", ["v2", "accounts", rest @ ..]) => {
            if let Some(denied) = needs(VIEW) {
                return denied;
            }
            v2_read(state, req, &key, rest)
        }
        ("POST", ["v2", "accounts", id, "transactions"]) => {
            needs(TRANSFER).unwrap_or_else(|| v2_send(state, req, &key, id))
        }
        _ => fail(req, DenialKind::NotFound, "Not Found"),
    }
}

fn auth_error(req: &SimRequest, e: &AuthError) -> NativeResponse {
    fail(req, DenialKind::Auth(e.clone()), e.to_string())
}

fn v3_read(
    state: &VenueState,
    req: &SimRequest,
    key: &SimKey,
    query: &Query,
    rest: &[&str],
) -> NativeResponse {
    match rest {
        ["products"] => products(state, req, query),
        ["products", id] => product(state, req, id),
        ["products", id, "ticker"] => ticker(state, req, id),
        ["best_bid_ask"] => best_bid_ask(state, req, query),
        ["transaction_summary"] => transaction_summary(),
        ["accounts"] => v3_accounts(state, key, req),
        ["accounts", id] => v3_account(state, key, req, id),
        ["portfolios"] => ok(json!({"portfolios": [{
            "name": "Default",
            "uuid": portfolio_uuid(&key.account),
            "type": "DEFAULT",
            "deleted": false,
        }]})),
        ["orders", "historical", "batch"] => list_orders(state, req, key, query),
        ["orders", "historical", "fills"] => list_fills(state, req, key, query),
        ["orders", "historical", id] => get_order(state, req, key, id),
        _ => fail(req, DenialKind::NotFound, "Not Found"),
    }
}

// ---------------------------------------------------------------------------------------------
// Public market data

fn v3_time(req: &SimRequest) -> NativeResponse {
    ok(json!({
        "iso": iso(req.now_ms),
        "epochSeconds": req.now_ms.div_euclid(1000).to_string(),
        "epochMillis": req.now_ms.to_string(),
    }))
}

fn product_json(m: &crate::state::Market) -> Value {
    json!({
        "product_id": m.symbol,
        "price": num(m.price),
        "price_percentage_change_24h": "0",
        "volume_24h": "0",
        "volume_percentage_change_24h": "0",
        "base_increment": "0.00000001",
        "quote_increment": "0.01",
        "quote_min_size": "1",
        "quote_max_size": "150000000",
        "base_min_size": "0.00000001",
        "base_max_size": "3400",
        "base_name": m.base,
        "quote_name": m.quote,
        "watched": false,
        "is_disabled": false,
        "new": false,
        "status": "online",
        "cancel_only": false,
        "limit_only": false,
        "post_only": false,
        "trading_disabled": false,
        "auction_mode": false,
        "product_type": "SPOT",
        "quote_currency_id": m.quote,
        "base_currency_id": m.base,
        "fcm_trading_session_details": null,
        "mid_market_price": num(m.price),
        "alias": "",
        "alias_to": [],
        "base_display_symbol": m.base,
        "quote_display_symbol": m.quote,
        "view_only": false,
        "price_increment": "0.01",
        "display_name": m.symbol,
        "product_venue": "CBE",
    })
}

fn products(state: &VenueState, req: &SimRequest, q: &Query) -> NativeResponse {
    let product_type = match q.one("product_type") {
        Ok(t) => t,
        Err(e) => return fail(req, DenialKind::BadRequest, e),
    };
    // Spot only: asking for futures lists none.
    let list: Vec<Value> = if product_type.is_some_and(|t| t != "SPOT") {
        Vec::new()
    } else {
        let wanted = q.all("product_ids");
        state
            .markets
            .values()
            .filter(|m| wanted.is_empty() || wanted.contains(&m.symbol.as_str()))
            .map(product_json)
            .collect()
    };
    ok(json!({"num_products": list.len(), "products": list}))
}

fn product(state: &VenueState, req: &SimRequest, id: &str) -> NativeResponse {
    match state.market(&id.to_ascii_uppercase()) {
        Ok(m) => ok(product_json(m)),
        Err(_) => fail(req, DenialKind::NotFound, "ProductID is invalid"),
    }
}

fn ticker(state: &VenueState, req: &SimRequest, id: &str) -> NativeResponse {
    let Ok(m) = state.market(&id.to_ascii_uppercase()) else {
        return fail(req, DenialKind::NotFound, "ProductID is invalid");
    };
    let p = num(m.price);
    ok(json!({
        "trades": [{
            "trade_id": "1",
            "product_id": m.symbol,
            "price": p,
            "size": "0",
            "time": iso(req.now_ms),
            "side": "BUY",
            "bid": "",
            "ask": "",
            "exchange": "CBE",
        }],
        "best_bid": p,
        "best_ask": p,
    }))
}

fn best_bid_ask(state: &VenueState, req: &SimRequest, q: &Query) -> NativeResponse {
    let wanted = q.all("product_ids");
    let books: Vec<Value> = state
        .markets
        .values()
        .filter(|m| wanted.is_empty() || wanted.contains(&m.symbol.as_str()))
        .map(|m| {
            json!({
                "product_id": m.symbol,
                "bids": [{"price": num(m.price), "size": "1"}],
                "asks": [{"price": num(m.price), "size": "1"}],
                "time": iso(req.now_ms),
            })
        })
        .collect();
    ok(json!({ "pricebooks": books }))
}

fn transaction_summary() -> NativeResponse {
    ok(json!({
        "total_volume": 0,
        "total_fees": 0,
        "fee_tier": {
            "pricing_tier": "Advanced 1",
            "usd_from": "0",
            "usd_to": "1000",
            "taker_fee_rate": "0.012",
            "maker_fee_rate": "0.006",
            "aop_from": "",
            "aop_to": "",
        },
        "margin_rate": null,
        "goods_and_services_tax": null,
        "advanced_trade_only_volume": 0,
        "advanced_trade_only_fees": 0,
        "coinbase_pro_volume": 0,
        "coinbase_pro_fees": 0,
        "total_balance": "",
        "has_promo_fee": false,
    }))
}

/// Every asset the venue knows: from its markets and its accounts.
fn assets(state: &VenueState) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for m in state.markets.values() {
        out.insert(m.base.clone());
        out.insert(m.quote.clone());
    }
    for a in state.accounts.values() {
        out.extend(a.balances.keys().cloned());
    }
    out
}

fn is_fiat(asset: &str) -> bool {
    FIAT.contains(&asset)
}

fn v2_fiat_currencies(state: &VenueState) -> NativeResponse {
    let data: Vec<Value> = assets(state)
        .into_iter()
        .filter(|a| is_fiat(a))
        .map(|a| json!({"id": a, "name": a, "min_size": "0.01"}))
        .collect();
    ok(json!({ "data": data }))
}

fn v2_crypto_currencies(state: &VenueState) -> NativeResponse {
    let data: Vec<Value> = assets(state)
        .into_iter()
        .filter(|a| !is_fiat(a))
        .enumerate()
        .map(|(i, a)| {
            json!({
                "code": a,
                "name": a,
                "color": "#000000",
                "sort_index": i,
                "exponent": 8,
                "type": "crypto",
                "address_regex": "",
                "asset_id": uuid_from(&format!("coinbase-asset|{a}")),
            })
        })
        .collect();
    ok(json!({ "data": data }))
}

fn v2_exchange_rates(state: &VenueState, req: &SimRequest, q: &Query) -> NativeResponse {
    let base = match q.one("currency") {
        Ok(c) => c.unwrap_or("USD").to_ascii_uppercase(),
        Err(e) => return v2_error(400, "invalid_request", &e),
    };
    let _ = req;
    let mut rates = serde_json::Map::new();
    rates.insert(base.clone(), Value::from("1"));
    for m in state.markets.values() {
        if m.quote == base {
            let r = (Decimal::ONE / m.price).round_dp(12);
            rates.insert(m.base.clone(), Value::from(num(r)));
        }
    }
    ok(json!({"data": {"currency": base, "rates": rates}}))
}

// ---------------------------------------------------------------------------------------------
// Keys and accounts

fn key_permissions(key: &SimKey) -> NativeResponse {
    ok(json!({
        "can_view": key.has(VIEW),
        "can_trade": key.has(TRADE),
        "can_transfer": key.has(TRANSFER),
        "portfolio_uuid": portfolio_uuid(&key.account),
        "portfolio_type": "DEFAULT",
    }))
}

fn v3_account_json(account: &str, asset: &str, b: &crate::state::Balance) -> Value {
    json!({
        "uuid": account_uuid(account, asset),
        "name": format!("{asset} Wallet"),
        "currency": asset,
        "available_balance": {"value": num(b.free), "currency": asset},
        "default": true,
        "active": true,
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "deleted_at": null,
        "type": if is_fiat(asset) { "ACCOUNT_TYPE_FIAT" } else { "ACCOUNT_TYPE_CRYPTO" },
        "ready": true,
        "hold": {"value": num(b.locked), "currency": asset},
        "retail_portfolio_id": portfolio_uuid(account),
        "platform": "ACCOUNT_PLATFORM_CONSUMER",
    })
}

fn v3_accounts(state: &VenueState, key: &SimKey, req: &SimRequest) -> NativeResponse {
    let Ok(acct) = state.account(&key.account) else {
        return fail(req, DenialKind::Internal, "account not found");
    };
    let list: Vec<Value> = acct
        .balances
        .iter()
        .map(|(asset, b)| v3_account_json(&key.account, asset, b))
        .collect();
    ok(json!({"accounts": list, "has_next": false, "cursor": "", "size": list.len()}))
}

/// The asset of one of the key's accounts, by the account's UUID.
fn asset_of(state: &VenueState, key: &SimKey, uuid: &str) -> Option<String> {
    state
        .account(&key.account)
        .ok()?
        .balances
        .keys()
        .find(|a| account_uuid(&key.account, a) == uuid.to_ascii_lowercase())
        .cloned()
}

fn v3_account(state: &VenueState, key: &SimKey, req: &SimRequest, id: &str) -> NativeResponse {
    let Some(asset) = asset_of(state, key, id) else {
        return fail(req, DenialKind::NotFound, "account not found");
    };
    let b = state
        .account(&key.account)
        .ok()
        .and_then(|a| a.balances.get(&asset).cloned())
        .unwrap_or_default();
    ok(json!({"account": v3_account_json(&key.account, &asset, &b)}))
}

fn v2_account_json(account: &str, asset: &str, b: &crate::state::Balance) -> Value {
    let id = account_uuid(account, asset);
    json!({
        "id": id,
        "name": format!("{asset} Wallet"),
        "primary": true,
        "type": if is_fiat(asset) { "fiat" } else { "wallet" },
        "currency": {
            "code": asset,
            "name": asset,
            "color": "#000000",
            "sort_index": 0,
            "exponent": 8,
            "type": if is_fiat(asset) { "fiat" } else { "crypto" },
            "asset_id": uuid_from(&format!("coinbase-asset|{asset}")),
        },
        "balance": {"amount": num(b.free + b.locked), "currency": asset},
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "resource": "account",
        "resource_path": format!("/v2/accounts/{id}"),
        "allow_deposits": true,
        "allow_withdrawals": true,
    })
}

fn v2_page(data: Vec<Value>) -> NativeResponse {
    ok(json!({
        "pagination": {
            "ending_before": null,
            "starting_after": null,
            "previous_ending_before": null,
            "next_starting_after": null,
            "limit": 250,
            "order": "desc",
            "previous_uri": null,
            "next_uri": null,
        },
        "data": data,
    }))
}

fn v2_read(state: &VenueState, req: &SimRequest, key: &SimKey, rest: &[&str]) -> NativeResponse {
    let Ok(acct) = state.account(&key.account) else {
        return fail(req, DenialKind::Internal, "account not found");
    };
    if rest.is_empty() {
        return v2_page(
            acct.balances
                .iter()
                .map(|(asset, b)| v2_account_json(&key.account, asset, b))
                .collect(),
        );
    }
    let Some(asset) = asset_of(state, key, rest[0]) else {
        return v2_error(404, "not_found", "Not found");
    };
    let account_id = account_uuid(&key.account, &asset);
    let withdrawals = acct.withdrawals.iter().filter(|w| w.asset == asset);
    let deposits = acct.deposits.iter().filter(|d| d.asset == asset);
    match &rest[1..] {
        [] => {
            let b = acct.balances.get(&asset).cloned().unwrap_or_default();
            ok(json!({"data": v2_account_json(&key.account, &asset, &b)}))
        }
        ["transactions"] => {
            let mut data: Vec<(i64, Value)> = withdrawals
                .map(|w| (w.time_ms, send_json(&account_id, w)))
                .collect();
            data.extend(deposits.map(|d| {
                (
                    d.time_ms,
                    json!({
                        "id": uuid_from(&format!("coinbase-deposit|{}", d.id)),
                        "type": if is_fiat(&d.asset) { "fiat_deposit" } else { "send" },
                        "status": "completed",
                        "amount": {"amount": num(d.amount), "currency": d.asset},
                        "created_at": iso(d.time_ms),
                        "updated_at": iso(d.time_ms),
                        "resource": "transaction",
                    }),
                )
            }));
            data.extend(
                acct.transfers
                    .iter()
                    .filter(|t| t.asset == asset)
                    .map(|t| {
                        (
                            t.time_ms,
                            json!({
                                "id": uuid_from(&format!("coinbase-transfer|{}", t.id)),
                                "type": "transfer",
                                "status": "completed",
                                "amount": {"amount": num(-t.amount), "currency": t.asset},
                                "created_at": iso(t.time_ms),
                                "updated_at": iso(t.time_ms),
                                "resource": "transaction",
                                "to": {"resource": "portfolio", "id": t.to},
                            }),
                        )
                    }),
            );
            data.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
            v2_page(data.into_iter().map(|(_, v)| v).collect())
        }
        ["withdrawals"] => v2_page(
            withdrawals
                .map(|w| {
                    json!({
                        "id": uuid_from(&format!("coinbase-withdrawal|{}", w.id)),
                        "status": "completed",
                        "amount": {"amount": num(w.amount), "currency": w.asset},
                        "subtotal": {"amount": num(w.amount), "currency": w.asset},
                        "fee": {"amount": "0", "currency": w.asset},
                        "created_at": iso(w.time_ms),
                        "updated_at": iso(w.time_ms),
                        "resource": "withdrawal",
                        "committed": true,
                        "transaction": {"id": uuid_from(&format!("coinbase-send|{}", w.id)), "resource": "transaction"},
                    })
                })
                .collect(),
        ),
        ["deposits"] => v2_page(
            deposits
                .map(|d| {
                    json!({
                        "id": uuid_from(&format!("coinbase-deposit|{}", d.id)),
                        "status": "completed",
                        "amount": {"amount": num(d.amount), "currency": d.asset},
                        "subtotal": {"amount": num(d.amount), "currency": d.asset},
                        "fee": {"amount": "0", "currency": d.asset},
                        "created_at": iso(d.time_ms),
                        "updated_at": iso(d.time_ms),
                        "resource": "deposit",
                        "committed": true,
                    })
                })
                .collect(),
        ),
        _ => v2_error(404, "not_found", "Not found"),
    }
}

fn send_json(account_id: &str, w: &crate::state::Withdrawal) -> Value {
    let id = uuid_from(&format!("coinbase-send|{}", w.id));
    json!({
        "id": id,
        "type": "send",
        "status": "pending",
        "amount": {"amount": num(-w.amount), "currency": w.asset},
        "native_amount": {"amount": num(-w.amount), "currency": w.asset},
        "description": null,
        "created_at": iso(w.time_ms),
        "updated_at": iso(w.time_ms),
        "resource": "transaction",
        "resource_path": format!("/v2/accounts/{account_id}/transactions/{id}"),
        "instant_exchange": false,
        "network": {"status": "pending", "network_name": w.network.clone().unwrap_or_else(|| w.asset.to_ascii_lowercase())},
        "to": {"resource": "address", "address": w.address},
    })
}

// ---------------------------------------------------------------------------------------------
// Orders

fn status_str(s: Status) -> &'static str {
    match s {
        Status::New => "OPEN",
        Status::Filled => "FILLED",
        Status::Canceled => "CANCELLED",
    }
}

fn config_json(o: &OrderRecord) -> Value {
    match (o.kind, o.price) {
        (Kind::Limit, Some(p)) => json!({"limit_limit_gtc": {
            "base_size": num(o.quantity), "limit_price": num(p), "post_only": false
        }}),
        _ => json!({"market_market_ioc": {"base_size": num(o.quantity)}}),
    }
}

fn order_json(o: &OrderRecord, fills: usize) -> Value {
    let pct = if o.quantity > Decimal::ZERO {
        num((o.filled / o.quantity * Decimal::ONE_HUNDRED).round_dp(2))
    } else {
        "0".into()
    };
    let hold = if o.status == Status::New {
        match o.side {
            Side::Buy => (o.quantity - o.filled) * o.price.unwrap_or_default(),
            Side::Sell => o.quantity - o.filled,
        }
    } else {
        Decimal::ZERO
    };
    json!({
        "order_id": order_id(o.id),
        "product_id": o.symbol,
        "user_id": user_id(&o.account),
        "order_configuration": config_json(o),
        "side": side_str(o.side),
        "client_order_id": o.client_id,
        "status": status_str(o.status),
        "time_in_force": if o.kind == Kind::Limit { "GOOD_UNTIL_CANCELLED" } else { "IMMEDIATE_OR_CANCEL" },
        "created_time": iso(o.created_ms),
        "completion_percentage": pct,
        "filled_size": num(o.filled),
        "average_filled_price": o.average_price().map_or_else(|| "0".into(), num),
        "fee": "",
        "number_of_fills": fills.to_string(),
        "filled_value": num(o.filled_quote),
        "pending_cancel": false,
        "size_in_quote": false,
        "total_fees": "0",
        "size_inclusive_of_fees": false,
        "total_value_after_fees": num(o.filled_quote),
        "trigger_status": "INVALID_ORDER_TYPE",
        "order_type": if o.kind == Kind::Limit { "LIMIT" } else { "MARKET" },
        "reject_reason": "REJECT_REASON_UNSPECIFIED",
        "settled": o.status == Status::Filled,
        "product_type": "SPOT",
        "reject_message": "",
        "cancel_message": "",
        "order_placement_source": "RETAIL_ADVANCED",
        "outstanding_hold_amount": num(hold),
        "is_liquidation": false,
        "last_fill_time": (o.filled > Decimal::ZERO).then(|| iso(o.updated_ms)),
        "edit_history": [],
        "leverage": "",
        "margin_type": "UNKNOWN_MARGIN_TYPE",
        "retail_portfolio_id": portfolio_uuid(&o.account),
    })
}

fn fill_json(t: &Trade) -> Value {
    json!({
        "entry_id": t.id.to_string(),
        "trade_id": t.id.to_string(),
        "order_id": order_id(t.order_id),
        "trade_time": iso(t.time_ms),
        "trade_type": "FILL",
        "price": num(t.price),
        "size": num(t.quantity),
        "commission": "0",
        "product_id": t.symbol,
        "sequence_timestamp": iso(t.time_ms),
        "liquidity_indicator": "TAKER",
        "size_in_quote": false,
        "user_id": user_id(&t.account),
        "side": side_str(t.side),
        "retail_portfolio_id": portfolio_uuid(&t.account),
    })
}

/// An order-level failure: HTTP 200 with `success: false` (CBPY `CreateOrderResponse`).
fn order_failure(error: &str, message: &str, preview: &str, config: &Value) -> NativeResponse {
    ok(json!({
        "success": false,
        "failure_reason": "UNKNOWN_FAILURE_REASON",
        "order_id": "",
        "error_response": {
            "error": error,
            "message": message,
            "error_details": message,
            "preview_failure_reason": preview,
            "new_order_failure_reason": error,
        },
        "order_configuration": config,
    }))
}

fn create_order(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> NativeResponse {
    let parsed = match parse_orders(Venue::Coinbase, &req.http) {
        Ok(mut v) if v.len() == 1 => v.remove(0),
        Ok(_) => return fail(req, DenialKind::BadRequest, "expected one order"),
        Err(e) => return fail(req, DenialKind::BadRequest, e.to_string()),
    };
    let config = parse_json_strict(&req.http.body)
        .ok()
        .and_then(|v| v.get("order_configuration").cloned())
        .unwrap_or(Value::Null);
    // Idempotent on client_order_id, as Coinbase is.
    if let Some(cid) = &parsed.client_id
        && let Ok(o) = state.find_order(&key.account, &OrderRef::ClientId(cid.clone()))
    {
        return order_success(o, &config);
    }
    let kind = match parsed.order_type {
        OrderType::Market => Kind::Market,
        OrderType::Limit => Kind::Limit,
        OrderType::Other(_) => {
            return order_failure(
                "UNSUPPORTED_ORDER_CONFIGURATION",
                "the simulator fills market and limit orders only",
                "UNSUPPORTED_ORDER_CONFIGURATION",
                &config,
            );
        }
    };
    let new = NewOrder {
        symbol: parsed.symbol,
        side: parsed.side,
        kind,
        quantity: parsed.quantity,
        quote_quantity: parsed.quote_quantity,
        price: parsed.price,
        client_id: parsed.client_id,
    };
    match state.place_order(&key.account, new, req.now_ms) {
        Ok(o) => order_success(&o, &config),
        Err(SimError::UnknownSymbol(s)) => order_failure(
            "INVALID_PRODUCT_ID",
            &format!("ProductID `{s}` is invalid"),
            "PREVIEW_INVALID_PRODUCT_ID",
            &config,
        ),
        Err(SimError::InsufficientFunds) => order_failure(
            "INSUFFICIENT_FUND",
            "Insufficient balance in source account",
            "PREVIEW_INSUFFICIENT_FUND",
            &config,
        ),
        Err(SimError::InvalidQuantity) => order_failure(
            "INVALID_SIZE",
            "invalid size",
            "PREVIEW_INVALID_BASE_SIZE_TOO_SMALL",
            &config,
        ),
        Err(SimError::InvalidPrice) => order_failure(
            "INVALID_LIMIT_PRICE",
            "invalid limit price",
            "PREVIEW_INVALID_LIMIT_PRICE",
            &config,
        ),
        Err(e) => fail(req, DenialKind::Internal, e.to_string()),
    }
}

fn order_success(o: &OrderRecord, config: &Value) -> NativeResponse {
    ok(json!({
        "success": true,
        "success_response": {
            "order_id": order_id(o.id),
            "product_id": o.symbol,
            "side": side_str(o.side),
            "client_order_id": o.client_id,
        },
        "order_configuration": config,
    }))
}

fn batch_cancel(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> NativeResponse {
    if let Err(e) = parse_orders(Venue::Coinbase, &req.http) {
        return fail(req, DenialKind::BadRequest, e.to_string());
    }
    let ids: Vec<String> = parse_json_strict(&req.http.body)
        .ok()
        .and_then(|v| v.get("order_ids").cloned())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let results: Vec<Value> = ids
        .iter()
        .map(|id| {
            let done = parse_order_id(id)
                .ok_or(SimError::UnknownOrder)
                .and_then(|n| state.cancel_order(&key.account, &OrderRef::Id(n), req.now_ms));
            match done {
                Ok(_) => json!({"success": true, "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON", "order_id": id}),
                Err(_) => json!({"success": false, "failure_reason": "UNKNOWN_CANCEL_ORDER", "order_id": id}),
            }
        })
        .collect();
    ok(json!({ "results": results }))
}

fn list_orders(state: &VenueState, req: &SimRequest, key: &SimKey, q: &Query) -> NativeResponse {
    let limit = match q.limit() {
        Ok(l) => l,
        Err(e) => return fail(req, DenialKind::BadRequest, e),
    };
    let statuses = q.all("order_status");
    for s in &statuses {
        if !matches!(
            *s,
            "OPEN"
                | "FILLED"
                | "CANCELLED"
                | "EXPIRED"
                | "FAILED"
                | "PENDING"
                | "QUEUED"
                | "CANCEL_QUEUED"
                | "EDIT_QUEUED"
                | "UNKNOWN_ORDER_STATUS"
        ) {
            return fail(
                req,
                DenialKind::BadRequest,
                format!("invalid value for `order_status`: `{s}`"),
            );
        }
    }
    let mut products = q.all("product_ids");
    match q.one("product_id") {
        Ok(Some(p)) => products.push(p),
        Ok(None) => {}
        Err(e) => return fail(req, DenialKind::BadRequest, e),
    }
    let ids = q.all("order_ids");
    let trades = state.trades(&key.account, None);
    let mut orders: Vec<&OrderRecord> = state
        .orders(&key.account, None)
        .into_iter()
        .filter(|o| statuses.is_empty() || statuses.contains(&status_str(o.status)))
        .filter(|o| products.is_empty() || products.contains(&o.symbol.as_str()))
        .filter(|o| ids.is_empty() || ids.iter().any(|i| parse_order_id(i) == Some(o.id)))
        .collect();
    orders.sort_by_key(|o| std::cmp::Reverse(o.id));
    let list: Vec<Value> = orders
        .into_iter()
        .take(limit)
        .map(|o| order_json(o, trades.iter().filter(|t| t.order_id == o.id).count()))
        .collect();
    ok(json!({"orders": list, "sequence": "0", "has_next": false, "cursor": ""}))
}

fn get_order(state: &VenueState, req: &SimRequest, key: &SimKey, id: &str) -> NativeResponse {
    let found = parse_order_id(id)
        .ok_or(SimError::UnknownOrder)
        .and_then(|n| state.find_order(&key.account, &OrderRef::Id(n)));
    match found {
        Ok(o) => {
            let fills = state
                .trades(&key.account, None)
                .iter()
                .filter(|t| t.order_id == o.id)
                .count();
            ok(json!({ "order": order_json(o, fills) }))
        }
        Err(_) => fail(
            req,
            DenialKind::UnknownOrder,
            "order with this orderID was not found",
        ),
    }
}

fn list_fills(state: &VenueState, req: &SimRequest, key: &SimKey, q: &Query) -> NativeResponse {
    let limit = match q.limit() {
        Ok(l) => l,
        Err(e) => return fail(req, DenialKind::BadRequest, e),
    };
    let mut ids = q.all("order_ids");
    let mut products = q.all("product_ids");
    match (q.one("order_id"), q.one("product_id")) {
        (Ok(o), Ok(p)) => {
            ids.extend(o);
            products.extend(p);
        }
        (Err(e), _) | (_, Err(e)) => return fail(req, DenialKind::BadRequest, e),
    }
    let mut fills: Vec<&Trade> = state
        .trades(&key.account, None)
        .into_iter()
        .filter(|t| products.is_empty() || products.contains(&t.symbol.as_str()))
        .filter(|t| ids.is_empty() || ids.iter().any(|i| parse_order_id(i) == Some(t.order_id)))
        .collect();
    fills.sort_by_key(|t| std::cmp::Reverse(t.id));
    let list: Vec<Value> = fills.into_iter().take(limit).map(fill_json).collect();
    ok(json!({"fills": list, "cursor": ""}))
}

// ---------------------------------------------------------------------------------------------
// Moving funds

fn decimal_str(v: Option<&Value>) -> Option<Decimal> {
    v?.as_str()?
        .parse::<Decimal>()
        .ok()
        .filter(|d| *d > Decimal::ZERO)
}

fn move_funds(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> NativeResponse {
    let body = match parse_json_strict(&req.http.body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return fail(req, DenialKind::BadRequest, "the body is not a JSON object"),
        Err(e) => return fail(req, DenialKind::BadRequest, e.to_string()),
    };
    if let Some(k) = body.keys().find(|k| {
        !["funds", "source_portfolio_uuid", "target_portfolio_uuid"].contains(&k.as_str())
    }) {
        return fail(
            req,
            DenialKind::BadRequest,
            format!("unknown parameter `{k}`"),
        );
    }
    let funds = body.get("funds");
    let (Some(amount), Some(currency)) = (
        decimal_str(funds.and_then(|f| f.get("value"))),
        funds
            .and_then(|f| f.get("currency"))
            .and_then(Value::as_str),
    ) else {
        return fail(
            req,
            DenialKind::BadRequest,
            "`funds` needs `value` and `currency`",
        );
    };
    let (Some(source), Some(target)) = (
        body.get("source_portfolio_uuid").and_then(Value::as_str),
        body.get("target_portfolio_uuid").and_then(Value::as_str),
    ) else {
        return fail(
            req,
            DenialKind::BadRequest,
            "missing `source_portfolio_uuid` or `target_portfolio_uuid`",
        );
    };
    if source != portfolio_uuid(&key.account) {
        return fail(req, DenialKind::NotFound, "source portfolio not found");
    }
    if source == target {
        return fail(
            req,
            DenialKind::BadRequest,
            "source and target are the same portfolio",
        );
    }
    match state.transfer(&key.account, currency, amount, source, target, req.now_ms) {
        Ok(_) => ok(json!({"source_portfolio_uuid": source, "target_portfolio_uuid": target})),
        Err(e) => fail(req, e.denial().kind, e.to_string()),
    }
}

/// `POST /v2/accounts/{id}/transactions` with `type: send`: a withdrawal to an address.
fn v2_send(state: &mut VenueState, req: &SimRequest, key: &SimKey, id: &str) -> NativeResponse {
    let Some(asset) = asset_of(state, key, id) else {
        return v2_error(404, "not_found", "Not found");
    };
    let body = match parse_json_strict(&req.http.body) {
        Ok(Value::Object(m)) => m,
        Ok(_) | Err(_) => return v2_error(400, "invalid_request", "the body is not a JSON object"),
    };
    const KNOWN: &[&str] = &[
        "type",
        "to",
        "amount",
        "currency",
        "network",
        "description",
        "idem",
        "skip_notifications",
        "destination_tag",
        "to_financial_institution",
        "financial_institution_website",
        "travel_rule_data",
    ];
    if let Some(k) = body.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return v2_error(400, "param_required", &format!("unknown parameter `{k}`"));
    }
    if body.get("type").and_then(Value::as_str) != Some("send") {
        return v2_error(400, "validation_error", "`type` must be `send`");
    }
    let Some(to) = body
        .get("to")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    else {
        return v2_error(400, "param_required", "`to` is required");
    };
    let Some(amount) = decimal_str(body.get("amount")) else {
        return v2_error(400, "param_required", "`amount` is required");
    };
    if body
        .get("currency")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.eq_ignore_ascii_case(&asset))
    {
        return v2_error(
            400,
            "validation_error",
            "`currency` does not match the account",
        );
    }
    let network = body
        .get("network")
        .and_then(Value::as_str)
        .map(str::to_owned);
    match state.withdraw(&key.account, &asset, amount, to, network, req.now_ms) {
        Ok(w) => NativeResponse::json(
            201,
            json!({"data": send_json(&account_uuid(&key.account, &asset), &w)}),
        ),
        Err(SimError::InsufficientFunds) => v2_error(
            400,
            "validation_error",
            "Insufficient balance in source account",
        ),
        Err(e) => v2_error(400, "validation_error", &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SimConfig;
    use keyfence_exchange::{
        Credential, HttpRequest, SecretString, SignContext, SigningKey, crypto, sign,
    };
    use ring::rand::SystemRandom;

    const HOST: &str = "127.0.0.1:9104";
    const NOW: i64 = 1_750_000_000_000;

    struct Fixture {
        state: VenueState,
        good: Credential,
        view_only: Credential,
        rng: SystemRandom,
    }

    fn cred(name: &str, pem: &str) -> Credential {
        Credential {
            api_key: name.into(),
            secret: None,
            private_key: Some(SecretString::new(pem.into())),
            passphrase: None,
        }
    }

    fn fixture() -> Fixture {
        let rng = SystemRandom::new();
        let good = crypto::generate_p256_sec1_pem(&rng).unwrap();
        let view = crypto::generate_ed25519_pem(&rng).unwrap();
        let pubk = |pem: &str| {
            crypto::PrivateKey::parse(pem, &rng)
                .unwrap()
                .public_key()
                .to_pem()
        };
        let text = format!(
            r#"
            [venues.coinbase]
            bind = "127.0.0.1:0"
            prices = {{ "BTC-USD" = "60000", "ETH-USD" = "3000" }}
            [[accounts]]
            venue = "coinbase"
            name = "main"
            balances = {{ USD = "100000", BTC = "1" }}
            [[keys]]
            venue = "coinbase"
            account = "main"
            api_key = "organizations/o/apiKeys/good"
            public_key = {:?}
            permissions = ["can_view", "can_trade", "can_transfer"]
            [[keys]]
            venue = "coinbase"
            account = "main"
            api_key = "organizations/o/apiKeys/view"
            public_key = {:?}
            permissions = ["can_view"]
            "#,
            pubk(&good),
            pubk(&view)
        );
        let cfg = SimConfig::parse(&text, "t").unwrap();
        Fixture {
            state: VenueState::from_config(Venue::Coinbase, &cfg).unwrap(),
            good: cred("organizations/o/apiKeys/good", &good),
            view_only: cred("organizations/o/apiKeys/view", &view),
            rng,
        }
    }

    impl Fixture {
        fn call(
            &mut self,
            c: Option<&Credential>,
            method: &str,
            target: &str,
            body: &str,
        ) -> (u16, Value) {
            let mut http = HttpRequest::new(method, target).with_body(body.to_owned());
            if let Some(c) = c {
                let key = SigningKey::from_credential(Venue::Coinbase, c, &self.rng).unwrap();
                let ctx = SignContext {
                    now_ms: NOW,
                    nonce: None,
                    host: HOST,
                    rng: &self.rng,
                };
                sign(Venue::Coinbase, &key, &mut http, &ctx).unwrap();
            }
            let req = SimRequest {
                venue: Venue::Coinbase,
                http,
                peer: "127.0.0.1".parse().unwrap(),
                host: HOST.into(),
                now_ms: NOW,
            };
            let r = handle(&mut self.state, &req);
            (
                r.status,
                serde_json::from_str(&r.body).unwrap_or(Value::String(r.body)),
            )
        }
    }

    fn usd(state: &VenueState) -> (Decimal, Decimal) {
        let b = &state.accounts["main"].balances["USD"];
        (b.free, b.locked)
    }

    #[test]
    fn orders_flow_through_the_ledger() {
        let mut f = fixture();
        let good = f.good.clone_for_test();
        let (s, v) = f.call(Some(&good), "GET", "/api/v3/brokerage/key_permissions", "");
        assert_eq!(s, 200);
        assert_eq!(v["can_transfer"], true);

        let limit = r#"{"client_order_id":"a1","product_id":"BTC-USD","side":"BUY","order_configuration":{"limit_limit_gtc":{"base_size":"0.1","limit_price":"50000"}}}"#;
        let (s, v) = f.call(Some(&good), "POST", "/api/v3/brokerage/orders", limit);
        assert_eq!((s, &v["success"]), (200, &Value::Bool(true)), "{v}");
        let oid = v["success_response"]["order_id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            usd(&f.state),
            (Decimal::new(95_000, 0), Decimal::new(5_000, 0))
        );

        let (_, v) = f.call(
            Some(&good),
            "GET",
            "/api/v3/brokerage/orders/historical/batch?order_status=OPEN",
            "",
        );
        assert_eq!(v["orders"].as_array().unwrap().len(), 1);
        assert_eq!(v["orders"][0]["order_id"], oid.as_str());

        let market = r#"{"client_order_id":"m1","product_id":"BTC-USD","side":"SELL","order_configuration":{"market_market_ioc":{"base_size":"0.5"}}}"#;
        let (_, v) = f.call(Some(&good), "POST", "/api/v3/brokerage/orders", market);
        assert_eq!(v["success"], true, "{v}");
        let (_, v) = f.call(
            Some(&good),
            "GET",
            "/api/v3/brokerage/orders/historical/fills?product_id=BTC-USD",
            "",
        );
        assert_eq!(v["fills"][0]["size"], "0.5");
        assert_eq!(v["fills"][0]["price"], "60000");

        let (_, v) = f.call(
            Some(&good),
            "POST",
            "/api/v3/brokerage/orders/batch_cancel",
            &format!(r#"{{"order_ids":["{oid}","nope"]}}"#),
        );
        assert_eq!(v["results"][0]["success"], true);
        assert_eq!(v["results"][1]["success"], false);
        assert_eq!(usd(&f.state), (Decimal::new(130_000, 0), Decimal::ZERO));
        let (_, v) = f.call(
            Some(&good),
            "GET",
            &format!("/api/v3/brokerage/orders/historical/{oid}"),
            "",
        );
        assert_eq!(v["order"]["status"], "CANCELLED");

        // Order-level failures are HTTP 200 with success false.
        let broke = r#"{"client_order_id":"b1","product_id":"BTC-USD","side":"BUY","order_configuration":{"market_market_ioc":{"base_size":"100"}}}"#;
        let (s, v) = f.call(Some(&good), "POST", "/api/v3/brokerage/orders", broke);
        assert_eq!(s, 200);
        assert_eq!(
            v["error_response"]["preview_failure_reason"],
            "PREVIEW_INSUFFICIENT_FUND"
        );
        let unknown = r#"{"client_order_id":"u1","product_id":"DOGE-USD","side":"BUY","order_configuration":{"market_market_ioc":{"quote_size":"10"}}}"#;
        let (_, v) = f.call(Some(&good), "POST", "/api/v3/brokerage/orders", unknown);
        assert_eq!(v["success"], false);
        // Malformed bodies are 400 INVALID_ARGUMENT.
        for bad in [
            "{",
            r#"{"client_order_id":"x","client_order_id":"y"}"#,
            r#"{"product_id":"BTC-USD"}"#,
        ] {
            let (s, v) = f.call(Some(&good), "POST", "/api/v3/brokerage/orders", bad);
            assert_eq!(
                (s, v["error"].as_str()),
                (400, Some("INVALID_ARGUMENT")),
                "{bad}"
            );
        }
    }

    #[test]
    fn permissions_gate_endpoints_and_withdrawals_move_funds() {
        let mut f = fixture();
        let good = f.good.clone_for_test();
        let view = f.view_only.clone_for_test();
        let order = r#"{"client_order_id":"a","product_id":"BTC-USD","side":"BUY","order_configuration":{"market_market_ioc":{"quote_size":"100"}}}"#;
        let (s, v) = f.call(Some(&view), "POST", "/api/v3/brokerage/orders", order);
        assert_eq!(
            (s, v["error_details"].as_str()),
            (403, Some("Missing required scopes"))
        );
        let (s, _) = f.call(Some(&view), "GET", "/api/v3/brokerage/accounts", "");
        assert_eq!(s, 200);
        let (s, _) = f.call(None, "GET", "/api/v3/brokerage/accounts", "");
        assert_eq!(s, 401);

        let (_, accounts) = f.call(Some(&good), "GET", "/v2/accounts", "");
        let btc = accounts["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["currency"]["code"] == "BTC")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let send = r#"{"type":"send","to":"bc1qexample","amount":"0.25","currency":"BTC"}"#;
        let path = format!("/v2/accounts/{btc}/transactions");
        let (s, _) = f.call(Some(&view), "POST", &path, send);
        assert_eq!(s, 403);
        let (s, v) = f.call(Some(&good), "POST", &path, send);
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["data"]["amount"]["amount"], "-0.25");
        assert_eq!(
            f.state.accounts["main"].balances["BTC"].free,
            Decimal::new(75, 2)
        );
        let (_, v) = f.call(Some(&good), "GET", &path, "");
        assert_eq!(v["data"].as_array().unwrap().len(), 1);
        let (_, v) = f.call(
            Some(&good),
            "GET",
            &format!("/v2/accounts/{btc}/withdrawals"),
            "",
        );
        assert_eq!(v["data"].as_array().unwrap().len(), 1);

        let (_, kp) = f.call(Some(&good), "GET", "/api/v3/brokerage/key_permissions", "");
        let source = kp["portfolio_uuid"].as_str().unwrap();
        let mv = format!(
            r#"{{"funds":{{"value":"10","currency":"USD"}},"source_portfolio_uuid":"{source}","target_portfolio_uuid":"11111111-2222-4333-8444-555555555555"}}"#
        );
        let (s, _) = f.call(
            Some(&view),
            "POST",
            "/api/v3/brokerage/portfolios/move_funds",
            &mv,
        );
        assert_eq!(s, 403);
        let (s, v) = f.call(
            Some(&good),
            "POST",
            "/api/v3/brokerage/portfolios/move_funds",
            &mv,
        );
        assert_eq!(s, 200, "{v}");
        assert_eq!(f.state.accounts["main"].transfers.len(), 1);
    }

    #[test]
    fn public_endpoints_and_unknown_paths() {
        let mut f = fixture();
        let (s, v) = f.call(None, "GET", "/api/v3/brokerage/market/products", "");
        assert_eq!((s, v["products"].as_array().unwrap().len()), (200, 2));
        let (_, v) = f.call(
            None,
            "GET",
            "/api/v3/brokerage/market/products?product_type=FUTURE",
            "",
        );
        assert_eq!(v["products"].as_array().unwrap().len(), 0);
        let (_, v) = f.call(
            None,
            "GET",
            "/api/v3/brokerage/market/products/BTC-USD/ticker",
            "",
        );
        assert_eq!(v["best_bid"], "60000");
        let (s, _) = f.call(
            None,
            "GET",
            "/api/v3/brokerage/market/products/NOPE-USD",
            "",
        );
        assert_eq!(s, 404);
        let (_, v) = f.call(None, "GET", "/v2/exchange-rates", "");
        assert!(v["data"]["rates"]["BTC"].is_string());
        let (_, v) = f.call(None, "GET", "/api/v3/brokerage/time", "");
        assert_eq!(v["epochMillis"], NOW.to_string());
        let (s, _) = f.call(None, "GET", "/api/v3/brokerage/nothing_here", "");
        assert_eq!(s, 401);
        let (s, _) = f.call(None, "GET", "/nothing", "");
        assert_eq!(s, 404);
        let (s, _) = f.call(None, "GET", "/a/%252F", "");
        assert_eq!(s, 404);
    }

    trait CloneForTest {
        fn clone_for_test(&self) -> Credential;
    }

    impl CloneForTest for Credential {
        fn clone_for_test(&self) -> Credential {
            Credential {
                api_key: self.api_key.clone(),
                secret: None,
                private_key: self
                    .private_key
                    .as_ref()
                    .map(|p| SecretString::new(p.expose().to_owned())),
                passphrase: None,
            }
        }
    }
}
