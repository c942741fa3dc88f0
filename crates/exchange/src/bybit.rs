//! Bybit v5: HMAC-SHA256 over `timestamp + api_key + recv_window + (query | body)` in
//! `X-BAPI-*` headers, JSON bodies, the `retCode`/`retMsg` envelope (exchanges.md §3).

use std::collections::BTreeSet;

use keyfence_types::{EndpointClass, KeyProfile, Order, OrderType, Permission, Side, Venue};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::params::parse_json_strict;
use crate::{
    AuthContext, AuthError, Authenticated, Denial, DenialKind, HttpRequest, KeyInfoError,
    KeyLookup, NativeResponse, OrderError, OrderSpec, SignContext, SignError, SigningKey,
    SigningScheme, VerifyScheme,
};

pub(crate) const H_API_KEY: &str = "x-bapi-api-key";
pub(crate) const H_SIGN: &str = "x-bapi-sign";
pub(crate) const H_SIGN_TYPE: &str = "x-bapi-sign-type";
pub(crate) const H_TIMESTAMP: &str = "x-bapi-timestamp";
pub(crate) const H_RECV_WINDOW: &str = "x-bapi-recv-window";

/// Window when `X-BAPI-RECV-WINDOW` is not sent (BYD `guide.mdx`).
const DEFAULT_RECV_WINDOW_MS: i64 = 5000;
/// The largest window keyfence accepts (Binance's documented maximum; Bybit documents none,
/// and an unbounded window would accept a request captured long ago).
const MAX_RECV_WINDOW_MS: i64 = 60_000;
/// How far ahead of the server clock a timestamp may be (BYD `guide.mdx`).
const FUTURE_TOLERANCE_MS: i64 = 1000;
/// Orders per `create-batch` / `amend-batch` request (BYD `batch-place.mdx`).
const BATCH_MAX_SPOT: usize = 10;
const BATCH_MAX_OTHER: usize = 20;

// ---------------------------------------------------------------------------------------------
// Authentication

pub(crate) fn claimed_api_key(req: &HttpRequest) -> Option<String> {
    req.header(H_API_KEY).map(str::to_owned)
}

/// One header value; a header sent twice is ambiguous and refused.
fn single_header<'a>(req: &'a HttpRequest, name: &str) -> Result<Option<&'a str>, AuthError> {
    match req.header_count(name) {
        0 => Ok(None),
        1 => Ok(req.header(name)),
        _ => Err(AuthError::Malformed(format!(
            "header `{name}` is sent twice"
        ))),
    }
}

fn parse_ms(name: &str, value: &str) -> Result<i64, AuthError> {
    if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::Malformed(format!("`{name}` is not a number")));
    }
    value
        .parse::<i64>()
        .map_err(|_| AuthError::Malformed(format!("`{name}` is not a number")))
}

/// The signed payload: `timestamp + api_key + recv_window + (query | body)`, as raw bytes.
fn payload(req: &HttpRequest, timestamp: &str, api_key: &str, recv_window: &str) -> Vec<u8> {
    let rest: &[u8] = if req.method.eq_ignore_ascii_case("GET") {
        req.query.as_bytes()
    } else {
        &req.body
    };
    let mut out =
        Vec::with_capacity(timestamp.len() + api_key.len() + recv_window.len() + rest.len());
    out.extend_from_slice(timestamp.as_bytes());
    out.extend_from_slice(api_key.as_bytes());
    out.extend_from_slice(recv_window.as_bytes());
    out.extend_from_slice(rest);
    out
}

pub(crate) fn authenticate(
    req: &HttpRequest,
    ctx: &AuthContext<'_>,
    keys: &dyn KeyLookup,
) -> Result<Authenticated, AuthError> {
    let api_key = single_header(req, H_API_KEY)?
        .filter(|k| !k.is_empty())
        .ok_or(AuthError::MissingApiKey)?;
    let sign = single_header(req, H_SIGN)?
        .filter(|s| !s.is_empty())
        .ok_or(AuthError::MissingSignature)?;
    let ts_raw = single_header(req, H_TIMESTAMP)?
        .filter(|s| !s.is_empty())
        .ok_or(AuthError::MissingTimestamp)?;
    let timestamp = parse_ms("X-BAPI-TIMESTAMP", ts_raw)?;
    let rw_raw = single_header(req, H_RECV_WINDOW)?;
    let recv_window = match rw_raw {
        Some(v) => {
            let w = parse_ms("X-BAPI-RECV-WINDOW", v)?;
            if w > MAX_RECV_WINDOW_MS {
                return Err(AuthError::Malformed(format!(
                    "X-BAPI-RECV-WINDOW above {MAX_RECV_WINDOW_MS} ms"
                )));
            }
            w
        }
        None => DEFAULT_RECV_WINDOW_MS,
    };
    if !req.method.eq_ignore_ascii_case("GET") && !req.query.is_empty() {
        // Bybit signs only the body of a POST: a query beside it would travel unsigned.
        return Err(AuthError::Malformed(
            "a query string on a POST is not covered by the signature".into(),
        ));
    }
    if let Some(t) = single_header(req, H_SIGN_TYPE)? {
        // 2 is HMAC-SHA256 / RSA-SHA256 as pybit and Bybit's examples send it; nothing else is known.
        if t != "2" {
            return Err(AuthError::Malformed(
                "unsupported `X-BAPI-SIGN-TYPE`".into(),
            ));
        }
    }
    // server_time - recv_window <= timestamp < server_time + 1000
    let now = ctx.now_ms;
    if timestamp < now.saturating_sub(recv_window)
        || timestamp >= now.saturating_add(FUTURE_TOLERANCE_MS)
    {
        return Err(AuthError::TimestampOutsideWindow);
    }
    let key = keys.find(api_key).ok_or(AuthError::UnknownApiKey)?;
    let msg = payload(req, ts_raw, api_key, rw_raw.unwrap_or(""));
    let ok = match &key.scheme {
        VerifyScheme::Hmac(secret) => {
            crate::crypto::verify_hmac_sha256_hex(secret.expose(), &msg, sign.as_bytes())
        }
        // Bybit's asymmetric keys are RSA; no other public-key scheme is accepted.
        VerifyScheme::Public(_) => false,
    };
    if !ok {
        return Err(AuthError::InvalidSignature);
    }
    Ok(Authenticated {
        api_key: api_key.to_owned(),
        timestamp_ms: Some(timestamp),
        nonce: None,
    })
}

// ---------------------------------------------------------------------------------------------
// Signing

pub(crate) fn sign(
    key: &SigningKey,
    req: &mut HttpRequest,
    ctx: &SignContext<'_>,
) -> Result<(), SignError> {
    let SigningScheme::Hmac(secret) = &key.scheme else {
        return Err(SignError::Request(
            "bybit keys sign with an HMAC secret".into(),
        ));
    };
    let method = req.method.to_ascii_uppercase();
    if method != "GET" && method != "POST" {
        return Err(SignError::Request(format!(
            "bybit v5 has no `{method}` endpoints"
        )));
    }
    let recv_window = match req.header(H_RECV_WINDOW) {
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => v.to_owned(),
        _ => DEFAULT_RECV_WINDOW_MS.to_string(),
    };
    let timestamp = ctx.now_ms.to_string();
    let msg = payload(req, &timestamp, &key.api_key, &recv_window);
    let tag = crate::crypto::hmac_sha256(secret.expose(), &msg);
    req.set_header(H_API_KEY, &key.api_key);
    req.set_header(H_TIMESTAMP, &timestamp);
    req.set_header(H_RECV_WINDOW, &recv_window);
    req.set_header(H_SIGN, &hex::encode(tag));
    req.set_header(H_SIGN_TYPE, "2");
    if method == "POST" && req.header("content-type").is_none() {
        req.set_header("content-type", "application/json");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Classification (BYD `<APIEndpoint>` tags; PYBIT enums; exchanges.md §3.4)

const PUBLIC_GET: &[&str] = &[
    "/v5/market/time",
    "/v5/market/kline",
    "/v5/market/mark-price-kline",
    "/v5/market/index-price-kline",
    "/v5/market/premium-index-price-kline",
    "/v5/market/instruments-info",
    "/v5/market/orderbook",
    "/v5/market/rpi_orderbook",
    "/v5/market/tickers",
    "/v5/market/funding/history",
    "/v5/market/recent-trade",
    "/v5/market/open-interest",
    "/v5/market/historical-volatility",
    "/v5/market/insurance",
    "/v5/market/risk-limit",
    "/v5/market/delivery-price",
    "/v5/market/new-delivery-price",
    "/v5/market/account-ratio",
    "/v5/market/price-limit",
    "/v5/market/index-price-components",
    "/v5/market/fee-group-info",
    "/v5/spot-margin-trade/data",
    "/v5/spot-margin-trade/interest-rate-history",
    "/v5/announcements/index",
    "/v5/system/status",
];

const READ_GET: &[&str] = &[
    "/v5/order/realtime",
    "/v5/order/history",
    "/v5/order/spot-borrow-check",
    "/v5/execution/list",
    "/v5/position/list",
    "/v5/position/closed-pnl",
    "/v5/position/get-closed-positions",
    "/v5/position/move-history",
    "/v5/account/wallet-balance",
    "/v5/account/info",
    "/v5/account/fee-rate",
    "/v5/account/transaction-log",
    "/v5/account/contract-transaction-log",
    "/v5/account/collateral-info",
    "/v5/account/borrow-history",
    "/v5/account/withdrawal",
    "/v5/account/mmp-state",
    "/v5/account/query-dcp-info",
    "/v5/account/smp-group",
    "/v5/account/user-setting-config",
    "/v5/account/instruments-info",
    "/v5/asset/coin-greeks",
    "/v5/asset/transfer/query-inter-transfer-list",
    "/v5/asset/transfer/query-universal-transfer-list",
    "/v5/asset/transfer/query-account-coins-balance",
    "/v5/asset/transfer/query-account-coin-balance",
    "/v5/asset/transfer/query-asset-info",
    "/v5/asset/transfer/query-transfer-coin-list",
    "/v5/asset/transfer/query-sub-member-list",
    "/v5/asset/withdraw/query-record",
    "/v5/asset/withdraw/query-address",
    "/v5/asset/withdraw/withdrawable-amount",
    "/v5/asset/withdraw/vasp/list",
    "/v5/asset/coin/query-info",
    "/v5/asset/asset-overview",
    "/v5/asset/delivery-record",
    "/v5/asset/settlement-record",
    "/v5/asset/exchange/order-record",
    "/v5/asset/exchange/query-coin-list",
    "/v5/asset/exchange/query-convert-history",
    "/v5/asset/exchange/convert-result-query",
    "/v5/asset/deposit/query-record",
    "/v5/asset/deposit/query-sub-member-record",
    "/v5/asset/deposit/query-internal-record",
    "/v5/asset/deposit/query-address",
    "/v5/asset/deposit/query-sub-member-address",
    "/v5/asset/deposit/query-allowed-list",
    "/v5/user/query-api",
    "/v5/user/query-sub-members",
    "/v5/user/submembers",
    "/v5/user/sub-apikeys",
    "/v5/user/get-member-type",
];

const TRADE_POST: &[&str] = &[
    "/v5/order/create",
    "/v5/order/amend",
    "/v5/order/create-batch",
    "/v5/order/amend-batch",
    "/v5/order/pre-check",
    "/v5/position/trading-stop",
];

const CANCEL_POST: &[&str] = &[
    "/v5/order/cancel",
    "/v5/order/cancel-all",
    "/v5/order/cancel-batch",
];

const WITHDRAW_POST: &[&str] = &["/v5/asset/withdraw/create", "/v5/asset/withdraw/cancel"];

const TRANSFER_POST: &[&str] = &[
    "/v5/asset/transfer/inter-transfer",
    "/v5/asset/transfer/universal-transfer",
    "/v5/asset/transfer/save-transfer-sub-member",
    "/v5/position/move-positions",
    "/v5/asset/exchange/quote-apply",
    "/v5/asset/exchange/convert-execute",
    "/v5/asset/covert/get-quote",
    "/v5/asset/covert/small-balance-execute",
    "/v5/fiat/quote-apply",
    "/v5/fiat/trade-execute",
];

const DEPOSIT_POST: &[&str] = &[
    "/v5/asset/deposit/deposit-to-account",
    "/v5/asset/travel-rule/deposit/submit",
];

const SUBACCOUNT_POST: &[&str] = &[
    "/v5/user/create-sub-member",
    "/v5/user/frozen-sub-member",
    "/v5/user/del-submember",
];

const KEY_MANAGEMENT_POST: &[&str] = &[
    "/v5/user/create-sub-api",
    "/v5/user/update-api",
    "/v5/user/update-sub-api",
    "/v5/user/delete-api",
    "/v5/user/delete-sub-api",
];

/// Settings, borrowing and repaying: never forwarded unless a policy names them.
const SETTINGS_POST: &[&str] = &[
    "/v5/order/disconnected-cancel-all",
    "/v5/position/set-leverage",
    "/v5/position/switch-mode",
    "/v5/position/switch-isolated",
    "/v5/position/set-auto-add-margin",
    "/v5/position/add-margin",
    "/v5/position/confirm-pending-mmr",
    "/v5/position/set-tpsl-mode",
    "/v5/position/set-risk-limit",
    "/v5/account/set-margin-mode",
    "/v5/account/set-collateral-switch",
    "/v5/account/set-collateral-switch-batch",
    "/v5/account/set-hedging-mode",
    "/v5/account/set-delta-mode",
    "/v5/account/set-limit-px-action",
    "/v5/account/mmp-modify",
    "/v5/account/mmp-reset",
    "/v5/account/upgrade-to-uta",
    "/v5/account/borrow",
    "/v5/account/repay",
    "/v5/account/quick-repayment",
    "/v5/account/no-convert-repay",
    "/v5/spot-margin-trade/switch-mode",
    "/v5/spot-margin-trade/set-leverage",
    "/v5/spot-margin-trade/set-auto-repay-mode",
    "/v5/spot-margin-trade/fixedborrow",
    "/v5/spot-margin-trade/fixedborrow-renew",
];

pub(crate) fn classify(method: &str, path: &str, _req: &HttpRequest) -> EndpointClass {
    let table: &[(&[&str], EndpointClass)] = match method {
        "GET" => &[
            (PUBLIC_GET, EndpointClass::Public),
            (READ_GET, EndpointClass::Read),
        ],
        "POST" => &[
            (TRADE_POST, EndpointClass::Trade),
            (CANCEL_POST, EndpointClass::Cancel),
            (WITHDRAW_POST, EndpointClass::Withdraw),
            (TRANSFER_POST, EndpointClass::Transfer),
            (DEPOSIT_POST, EndpointClass::Deposit),
            (SUBACCOUNT_POST, EndpointClass::Subaccount),
            (KEY_MANAGEMENT_POST, EndpointClass::KeyManagement),
            (SETTINGS_POST, EndpointClass::AccountSettings),
        ],
        _ => &[],
    };
    table
        .iter()
        .find(|(paths, _)| paths.contains(&path))
        .map_or(EndpointClass::Unknown, |(_, class)| *class)
}

// ---------------------------------------------------------------------------------------------
// Orders (BYD `create-order.mdx`, `batch-place.mdx`, `amend-order.mdx`; exchanges.md §3.5)

fn invalid(name: &str, value: &Value) -> OrderError {
    let shown = match value {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    OrderError::InvalidParameter {
        name: name.to_owned(),
        value: shown,
    }
}

/// A string field (Bybit sends and takes strings for `qty`, `price`, ...); absent or null is `None`.
fn opt_str<'a>(o: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, OrderError> {
    match o.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(v) => Err(invalid(name, v)),
    }
}

fn req_str<'a>(o: &'a Map<String, Value>, name: &str) -> Result<&'a str, OrderError> {
    opt_str(o, name)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| OrderError::MissingParameter(name.to_owned()))
}

/// A decimal given as a string; an empty string counts as absent (Bybit's own convention).
fn opt_decimal(o: &Map<String, Value>, name: &str) -> Result<Option<Decimal>, OrderError> {
    let Some(s) = opt_str(o, name)?.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let d = crate::params::plain_decimal(s).ok_or_else(|| OrderError::InvalidParameter {
        name: name.to_owned(),
        value: s.to_owned(),
    })?;
    Ok(Some(d))
}

fn opt_bool(o: &Map<String, Value>, name: &str) -> Result<bool, OrderError> {
    match o.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" => Ok(true),
        Some(Value::String(s)) if s == "false" || s.is_empty() => Ok(false),
        Some(v) => Err(invalid(name, v)),
    }
}

fn body_object(req: &HttpRequest) -> Result<Map<String, Value>, OrderError> {
    match parse_json_strict(&req.body)? {
        Value::Object(m) => Ok(m),
        _ => Err(OrderError::Malformed(
            "the body is not a JSON object".into(),
        )),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Category {
    Spot,
    Linear,
    Inverse,
    Option,
}

fn category(o: &Map<String, Value>) -> Result<Category, OrderError> {
    match req_str(o, "category")? {
        "spot" => Ok(Category::Spot),
        "linear" => Ok(Category::Linear),
        "inverse" => Ok(Category::Inverse),
        "option" => Ok(Category::Option),
        other => Err(OrderError::InvalidParameter {
            name: "category".into(),
            value: other.to_owned(),
        }),
    }
}

fn side(o: &Map<String, Value>) -> Result<Side, OrderError> {
    match req_str(o, "side")? {
        "Buy" => Ok(Side::Buy),
        "Sell" => Ok(Side::Sell),
        other => Err(OrderError::InvalidParameter {
            name: "side".into(),
            value: other.to_owned(),
        }),
    }
}

/// One order of `/v5/order/create` or one item of `create-batch`.
fn parse_create(cat: Category, o: &Map<String, Value>) -> Result<Order, OrderError> {
    let symbol = req_str(o, "symbol")?.to_owned();
    let side = side(o)?;
    let order_type = match req_str(o, "orderType")? {
        "Market" => OrderType::Market,
        "Limit" => OrderType::Limit,
        other => {
            return Err(OrderError::InvalidParameter {
                name: "orderType".into(),
                value: other.to_owned(),
            });
        }
    };
    let qty = opt_decimal(o, "qty")?.ok_or_else(|| OrderError::MissingParameter("qty".into()))?;
    let price = match order_type {
        // "Market order will ignore this field"
        OrderType::Market => None,
        _ => Some(
            opt_decimal(o, "price")?.ok_or_else(|| OrderError::MissingParameter("price".into()))?,
        ),
    };
    let market_unit = opt_str(o, "marketUnit")?.filter(|s| !s.is_empty());
    if let Some(u) = market_unit
        && u != "baseCoin"
        && u != "quoteCoin"
    {
        return Err(OrderError::InvalidParameter {
            name: "marketUnit".into(),
            value: u.to_owned(),
        });
    }
    // Spot market orders: buys are sized in quote unless marketUnit=baseCoin, sells in base
    // unless marketUnit=quoteCoin. Inverse contracts are sized in USD (quote). Everything else
    // is sized in base units or contracts.
    let quote_sized = match (cat, &order_type) {
        (Category::Spot, OrderType::Market) => match (side, market_unit) {
            (_, Some(u)) => u == "quoteCoin",
            (Side::Buy, None) => true,
            (Side::Sell, None) => false,
        },
        (Category::Inverse, _) => true,
        _ => false,
    };
    let (quantity, quote_quantity) = if quote_sized {
        (None, Some(qty))
    } else {
        (Some(qty), None)
    };
    let client_id = opt_str(o, "orderLinkId")?
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Ok(Order {
        venue: Venue::Bybit,
        symbol,
        side,
        order_type,
        quantity,
        quote_quantity,
        price,
        reduce_only: opt_bool(o, "reduceOnly")? || opt_bool(o, "closeOnTrigger")?,
        client_id,
    })
}

/// An amendment: the new `qty` and/or `price` of an existing order. Bybit's amend does not
/// carry the side, so [`both_sides`] reports it once as a buy and once as a sell: a policy
/// passes it only if either side would pass.
fn parse_amend(cat: Category, o: &Map<String, Value>) -> Result<Order, OrderError> {
    let symbol = req_str(o, "symbol")?.to_owned();
    let order_id = opt_str(o, "orderId")?.filter(|s| !s.is_empty());
    let link_id = opt_str(o, "orderLinkId")?.filter(|s| !s.is_empty());
    if order_id.is_none() && link_id.is_none() {
        return Err(OrderError::MissingParameter("orderId".into()));
    }
    let qty = opt_decimal(o, "qty")?;
    let (quantity, quote_quantity) = match cat {
        Category::Inverse => (None, qty),
        _ => (qty, None),
    };
    Ok(Order {
        venue: Venue::Bybit,
        symbol,
        side: Side::Buy,
        order_type: OrderType::Other("amend".into()),
        quantity,
        quote_quantity,
        price: opt_decimal(o, "price")?,
        reduce_only: false,
        client_id: link_id.or(order_id).map(str::to_owned),
    })
}

/// Each order once as a buy and once as a sell (for requests that do not say the side).
fn both_sides(orders: Vec<Order>) -> Vec<Order> {
    orders
        .into_iter()
        .flat_map(|o| {
            let sell = Order {
                side: Side::Sell,
                ..o.clone()
            };
            [
                Order {
                    side: Side::Buy,
                    ..o
                },
                sell,
            ]
        })
        .collect()
}

fn parse_batch(
    o: &Map<String, Value>,
    item: fn(Category, &Map<String, Value>) -> Result<Order, OrderError>,
) -> Result<Vec<Order>, OrderError> {
    let cat = category(o)?;
    let list = match o.get("request") {
        Some(Value::Array(a)) => a,
        Some(v) => return Err(invalid("request", v)),
        None => return Err(OrderError::MissingParameter("request".into())),
    };
    let max = if cat == Category::Spot {
        BATCH_MAX_SPOT
    } else {
        BATCH_MAX_OTHER
    };
    if list.is_empty() || list.len() > max {
        return Err(OrderError::InvalidParameter {
            name: "request".into(),
            value: format!("{} orders (1 to {max} allowed)", list.len()),
        });
    }
    list.iter()
        .map(|v| match v {
            Value::Object(m) => {
                // An item may not name another category than the request's.
                if let Some(c) = m.get("category")
                    && c != o.get("category").unwrap_or(&Value::Null)
                {
                    return Err(invalid("category", c));
                }
                item(cat, m)
            }
            other => Err(invalid("request", other)),
        })
        .collect()
}

pub(crate) fn parse_orders(path: &str, req: &HttpRequest) -> Result<Vec<Order>, OrderError> {
    if !req.method.eq_ignore_ascii_case("POST") {
        return Ok(Vec::new());
    }
    if !req.query.is_empty()
        && classify(&req.method.to_ascii_uppercase(), path, req) == EndpointClass::Trade
    {
        return Err(OrderError::Malformed(
            "order parameters in the query of a POST are not read".into(),
        ));
    }
    match path {
        "/v5/order/create" => {
            let o = body_object(req)?;
            Ok(vec![parse_create(category(&o)?, &o)?])
        }
        "/v5/order/create-batch" => parse_batch(&body_object(req)?, parse_create),
        "/v5/order/amend" => {
            let o = body_object(req)?;
            Ok(both_sides(vec![parse_amend(category(&o)?, &o)?]))
        }
        "/v5/order/amend-batch" => Ok(both_sides(parse_batch(&body_object(req)?, parse_amend)?)),
        _ => Ok(Vec::new()),
    }
}

pub(crate) fn order_request(spec: &OrderSpec) -> HttpRequest {
    let side = match spec.side {
        Side::Buy => "Buy",
        Side::Sell => "Sell",
    };
    let body = match spec.price {
        None => json!({
            "category": "spot",
            "symbol": spec.symbol,
            "side": side,
            "orderType": "Market",
            "qty": spec.quantity.normalize().to_string(),
            "marketUnit": "baseCoin",
        }),
        Some(p) => json!({
            "category": "spot",
            "symbol": spec.symbol,
            "side": side,
            "orderType": "Limit",
            "qty": spec.quantity.normalize().to_string(),
            "price": p.normalize().to_string(),
            "timeInForce": "GTC",
        }),
    };
    HttpRequest::new("POST", "/v5/order/create")
        .with_header("content-type", "application/json")
        .with_body(body.to_string())
}

// ---------------------------------------------------------------------------------------------
// Key introspection (BYD `user/apikey-info.mdx`; exchanges.md §3.3)

/// The normalised meaning of one `Group.Name` permission.
pub(crate) fn permission_of(group: &str, name: &str) -> Permission {
    match (group, name) {
        ("Spot", "SpotTrade") => Permission::SpotTrade,
        ("ContractTrade", "Order" | "Position") => Permission::FuturesTrade,
        ("Derivatives", "DerivativesTrade") => Permission::FuturesTrade,
        ("Options", "OptionsTrade") => Permission::OptionsTrade,
        ("Wallet", "Withdraw") => Permission::Withdraw,
        ("Wallet", "AccountTransfer" | "SubMemberTransfer" | "SubMemberTransferList") => {
            Permission::Transfer
        }
        ("Earn", "Earn") => Permission::Earn,
        // Convert, fiat, NFT, affiliate, block and copy trading, and anything not known yet.
        _ => Permission::Other,
    }
}

fn ret_code(v: &Value) -> Option<i64> {
    match v.get("retCode").or_else(|| v.get("ret_code"))? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn parse_time(v: Option<&Value>) -> Result<Option<OffsetDateTime>, KeyInfoError> {
    let Some(s) = v.and_then(Value::as_str).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let t = OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|_| KeyInfoError::Malformed(format!("`{s}` is not an RFC 3339 time")))?;
    // Bybit answers the epoch for "never expires".
    Ok((t.unix_timestamp() > 0).then_some(t))
}

/// Bybit's envelope, `{"retCode":0,"retMsg":"OK","result":{...}}`: a non-zero code is the
/// venue's error.
pub(crate) fn check_envelope(v: &Value) -> Result<(), KeyInfoError> {
    let code = ret_code(v).ok_or_else(|| KeyInfoError::Malformed("no `retCode`".into()))?;
    if code == 0 {
        return Ok(());
    }
    let message = v
        .get("retMsg")
        .or_else(|| v.get("ret_msg"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    Err(KeyInfoError::Venue {
        code: code.to_string(),
        message,
    })
}

pub(crate) fn parse_key_info(body: &[u8]) -> Result<KeyProfile, KeyInfoError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| KeyInfoError::Malformed(format!("not JSON: {e}")))?;
    check_envelope(&v)?;
    let r = v
        .get("result")
        .and_then(Value::as_object)
        .ok_or_else(|| KeyInfoError::Malformed("no `result` object".into()))?;
    let perms = r
        .get("permissions")
        .and_then(Value::as_object)
        .ok_or_else(|| KeyInfoError::Malformed("no `permissions` object".into()))?;
    let mut profile = KeyProfile::empty(Venue::Bybit);
    // Every Bybit key can read (the introspection call itself needs no permission).
    let mut set = BTreeSet::from([Permission::Read]);
    for (group, names) in perms {
        let names = names.as_array().ok_or_else(|| {
            KeyInfoError::Malformed(format!("`permissions.{group}` is not a list"))
        })?;
        for n in names {
            let n = n.as_str().ok_or_else(|| {
                KeyInfoError::Malformed(format!("`permissions.{group}` holds a non-string"))
            })?;
            set.insert(permission_of(group, n));
            profile.raw_permissions.push(format!("{group}.{n}"));
        }
    }
    profile.permissions = set;
    let ips: Vec<String> = match r.get("ips") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| KeyInfoError::Malformed("`ips` holds a non-string".into()))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(KeyInfoError::Malformed("`ips` is not a list".into())),
    };
    let unrestricted = ips.is_empty() || ips.iter().any(|i| i == "*");
    profile.ip_restricted = Some(!unrestricted);
    if !unrestricted {
        profile.ip_allowlist = ips;
    }
    profile.created = parse_time(r.get("createdAt"))?;
    profile.expires = parse_time(r.get("expiredAt"))?;
    profile.read_only = match r.get("readOnly") {
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        Some(Value::String(s)) => s == "1",
        _ => false,
    };
    profile.master_account = r.get("isMaster").and_then(Value::as_bool);
    profile.label = r
        .get("note")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Ok(profile)
}

// ---------------------------------------------------------------------------------------------
// Native errors (BYD `error.mdx`, `rate-limit.mdx`; ccxt `bybit.py` exceptions map)

/// The v5 envelope for an error.
pub(crate) fn envelope(code: i64, message: &str, now_ms: i64) -> Value {
    json!({
        "retCode": code,
        "retMsg": message,
        "result": {},
        "retExtInfo": {},
        "time": now_ms,
    })
}

pub(crate) fn native_error(denial: &Denial, now_ms: i64) -> NativeResponse {
    let msg = denial.message.as_str();
    let (status, code, text): (u16, i64, String) = match &denial.kind {
        DenialKind::Auth(e) => match e {
            AuthError::MissingApiKey | AuthError::UnknownApiKey => {
                (200, 10003, "API key is invalid.".into())
            }
            AuthError::MissingSignature
            | AuthError::InvalidSignature
            | AuthError::InvalidPassphrase => (
                200,
                10004,
                "Error sign, please check your signature generation algorithm.".into(),
            ),
            AuthError::MissingTimestamp | AuthError::Malformed(_) => {
                (200, 10001, format!("{msg}: openapi sign params error!"))
            }
            AuthError::TimestampOutsideWindow | AuthError::InvalidNonce => (
                200,
                10002,
                "invalid request, please check your server timestamp or recv_window param".into(),
            ),
            AuthError::IpNotAllowed => (
                200,
                10010,
                "Unmatched IP, please check your API key's bound IP addresses.".into(),
            ),
            AuthError::KeyExpired => (200, 33004, "Your api key has expired.".into()),
        },
        DenialKind::PermissionDenied => (
            200,
            10005,
            format!("Permission denied, please check your API key permissions. {msg}"),
        ),
        DenialKind::RateLimited { retry_after_s } => {
            let reset = now_ms.saturating_add(
                i64::try_from(*retry_after_s)
                    .unwrap_or(i64::MAX / 1000)
                    .saturating_mul(1000),
            );
            let mut r = NativeResponse::json(200, envelope(10006, "Too many visits!", now_ms));
            r.headers.push(("x-bapi-limit-status".into(), "0".into()));
            r.headers
                .push(("x-bapi-limit-reset-timestamp".into(), reset.to_string()));
            return r;
        }
        DenialKind::BadRequest => (200, 10001, format!("params error: {msg}")),
        DenialKind::UnknownSymbol => (200, 10001, "Not supported symbols".into()),
        DenialKind::InsufficientFunds => (200, 170131, "Insufficient balance.".into()),
        DenialKind::UnknownOrder => (200, 170213, "Order does not exist.".into()),
        DenialKind::NotFound => (404, 10017, "Route not found".into()),
        DenialKind::PayloadTooLarge => (413, 10001, "request body is too large".into()),
        DenialKind::Unavailable => {
            // What the front door answers when the service is down: not the JSON envelope, so
            // clients raise their "exchange not available" errors.
            return NativeResponse {
                status: 503,
                headers: vec![("content-type".into(), "text/plain".into())],
                body: "503 Service Temporarily Unavailable".into(),
            };
        }
        DenialKind::Internal => (200, 10016, "Internal System Error.".into()),
    };
    NativeResponse::json(status, envelope(code, &text, now_ms))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use keyfence_types::{Credential, SecretString};
    use ring::rand::SystemRandom;

    use super::*;
    use crate::{VerifyKey, classify as classify_any, parse_orders as parse_any};

    // pybit's test credentials (PYBIT `tests/test_pybit.py`); S1/S2 in exchanges.md §3.2.
    const KEY: &str = "CFEJUGQEQPPHGOHGHM";
    const SECRET: &str = "VDFZSSPUTKRJMXAVMJXBHEXIPZNZJIZUBVRQ";

    fn signing_key(secret: &str) -> SigningKey {
        let cred = Credential {
            api_key: KEY.into(),
            secret: Some(SecretString::new(secret.into())),
            private_key: None,
            passphrase: None,
        };
        SigningKey::from_credential(Venue::Bybit, &cred, &SystemRandom::new()).unwrap()
    }

    fn keys() -> HashMap<String, VerifyKey> {
        HashMap::from([(
            KEY.to_owned(),
            VerifyKey::hmac(Venue::Bybit, SECRET, None).unwrap(),
        )])
    }

    fn signed(mut req: HttpRequest, secret: &str, now_ms: i64) -> HttpRequest {
        let rng = SystemRandom::new();
        let ctx = SignContext {
            now_ms,
            nonce: None,
            host: "api.bybit.com",
            rng: &rng,
        };
        sign(&signing_key(secret), &mut req, &ctx).unwrap();
        req
    }

    fn auth(req: &HttpRequest, now_ms: i64) -> Result<Authenticated, AuthError> {
        let ctx = AuthContext { now_ms, host: None };
        authenticate(req, &ctx, &keys())
    }

    const T1: i64 = 1_658_384_314_791;

    #[test]
    fn signing_reproduces_the_self_generated_vectors() {
        let get = signed(
            HttpRequest::new(
                "GET",
                "/v5/order/realtime?category=option&symbol=BTC-29JUL22-25000-C",
            ),
            SECRET,
            T1,
        );
        assert_eq!(
            get.header("X-BAPI-SIGN"),
            Some("0bfc5f1d29d38ee7f4d451a9f265f4c3b5a57119d175917df05068384d7955c7")
        );
        assert_eq!(get.header("X-BAPI-API-KEY"), Some(KEY));
        assert_eq!(get.header("X-BAPI-TIMESTAMP"), Some("1658384314791"));
        assert_eq!(get.header("X-BAPI-RECV-WINDOW"), Some("5000"));
        assert_eq!(get.header("X-BAPI-SIGN-TYPE"), Some("2"));
        let post = signed(
            HttpRequest::new("POST", "/v5/order/cancel-all").with_body(r#"{"category": "option"}"#),
            SECRET,
            1_658_385_579_423,
        );
        assert_eq!(
            post.header("X-BAPI-SIGN"),
            Some("7da1f1187f9d354ada1258023a22d9aef67163261c0d42ad52bb27cc30a3fc0d")
        );
        assert_eq!(post.header("content-type"), Some("application/json"));
    }

    #[test]
    fn signed_requests_authenticate_and_every_flaw_is_refused() {
        let get = signed(
            HttpRequest::new("GET", "/v5/account/wallet-balance?accountType=UNIFIED"),
            SECRET,
            T1,
        );
        let post = signed(
            HttpRequest::new("POST", "/v5/order/create")
                .with_body(r#"{"category":"spot","symbol":"BTCUSDT"}"#),
            SECRET,
            T1,
        );
        for req in [&get, &post] {
            let ok = auth(req, T1 + 10).unwrap();
            assert_eq!(ok.api_key, KEY);
            assert_eq!(ok.timestamp_ms, Some(T1));
        }
        let mut tampered_query = get.clone();
        tampered_query.query = "accountType=CONTRACT".into();
        let tampered_body = post
            .clone()
            .with_body(r#"{"category":"spot","symbol":"ETHUSDT"}"#);
        let wrong_secret = signed(
            HttpRequest::new("GET", "/v5/account/wallet-balance?accountType=UNIFIED"),
            "not-the-secret",
            T1,
        );
        let mut unknown_key = get.clone();
        unknown_key.set_header("X-BAPI-API-KEY", "someone-else");
        let mut twice = get.clone();
        twice.headers.push(("x-bapi-sign".into(), "00".into()));
        let mut not_hex = get.clone();
        not_hex.set_header("X-BAPI-SIGN", "zz");
        let mut bad_ts = get.clone();
        bad_ts.set_header("X-BAPI-TIMESTAMP", "-5");
        let mut post_query = post.clone();
        post_query.query = "qty=100".into();
        let mut bad_type = get.clone();
        bad_type.set_header("X-BAPI-SIGN-TYPE", "1");
        let without = |h: &str| {
            let mut r = get.clone();
            r.remove_header(h);
            r
        };
        let cases: Vec<(&str, HttpRequest, i64, AuthError)> = vec![
            (
                "tampered query",
                tampered_query,
                T1,
                AuthError::InvalidSignature,
            ),
            (
                "tampered body",
                tampered_body,
                T1,
                AuthError::InvalidSignature,
            ),
            (
                "wrong secret",
                wrong_secret,
                T1,
                AuthError::InvalidSignature,
            ),
            ("not hex", not_hex, T1, AuthError::InvalidSignature),
            ("unknown key", unknown_key, T1, AuthError::UnknownApiKey),
            (
                "no key",
                without("X-BAPI-API-KEY"),
                T1,
                AuthError::MissingApiKey,
            ),
            (
                "no sign",
                without("X-BAPI-SIGN"),
                T1,
                AuthError::MissingSignature,
            ),
            (
                "no timestamp",
                without("X-BAPI-TIMESTAMP"),
                T1,
                AuthError::MissingTimestamp,
            ),
            (
                "stale",
                get.clone(),
                T1 + 5001,
                AuthError::TimestampOutsideWindow,
            ),
            (
                "from the future",
                get.clone(),
                T1 - 1000,
                AuthError::TimestampOutsideWindow,
            ),
        ];
        for (name, req, now, want) in cases {
            assert_eq!(auth(&req, now), Err(want), "{name}");
        }
        for (name, req) in [
            ("header twice", twice),
            ("bad timestamp", bad_ts),
            ("sign type", bad_type),
            ("query on a POST", post_query),
        ] {
            assert!(
                matches!(auth(&req, T1), Err(AuthError::Malformed(_))),
                "{name}"
            );
        }
        // The window's edges: now - recv_window is in, now + 1000 is out, now + 999 is in.
        assert!(auth(&get, T1 + 5000).is_ok());
        assert!(auth(&get, T1 - 999).is_ok());
        // Without the recv-window header the default 5000 applies and "" is signed in its place.
        let mut no_rw = HttpRequest::new("GET", "/v5/user/query-api");
        no_rw.set_header("X-BAPI-API-KEY", KEY);
        no_rw.set_header("X-BAPI-TIMESTAMP", &T1.to_string());
        let tag = crate::crypto::hmac_sha256(SECRET.as_bytes(), format!("{T1}{KEY}").as_bytes());
        no_rw.set_header("X-BAPI-SIGN", &hex::encode(tag));
        assert!(auth(&no_rw, T1 + 4999).is_ok());
        assert_eq!(
            auth(&no_rw, T1 + 5001),
            Err(AuthError::TimestampOutsideWindow)
        );
        assert_eq!(claimed_api_key(&get), Some(KEY.to_owned()));
    }

    #[test]
    fn signing_keys_do_not_show_their_secret() {
        let shown = format!("{:?}", signing_key(SECRET));
        assert!(!shown.contains(SECRET));
        assert!(shown.contains(KEY));
        assert!(!format!("{:?}", keys()).contains(SECRET));
    }

    #[test]
    fn every_class_is_recognised_and_everything_else_is_unknown() {
        use EndpointClass::*;
        let cases = [
            ("GET", "/v5/market/time", Public),
            ("GET", "/v5/market/instruments-info?category=spot", Public),
            ("GET", "/v5/market/tickers", Public),
            ("GET", "/v5/account/wallet-balance", Read),
            ("GET", "/v5/order/realtime", Read),
            ("GET", "/v5/execution/list", Read),
            ("GET", "/v5/user/query-api", Read),
            ("GET", "/v5/asset/withdraw/query-record", Read),
            ("GET", "/v5/asset/deposit/query-record", Read),
            ("GET", "/v5/asset/coin/query-info", Read),
            ("POST", "/v5/order/create", Trade),
            ("POST", "/v5/order/create-batch", Trade),
            ("POST", "/v5/order/amend", Trade),
            ("POST", "/v5/order/amend-batch", Trade),
            ("POST", "/v5/order/cancel", Cancel),
            ("POST", "/v5/order/cancel-all", Cancel),
            ("POST", "/v5/order/cancel-batch", Cancel),
            ("POST", "/v5/asset/withdraw/create", Withdraw),
            ("POST", "/v5/asset/withdraw/cancel", Withdraw),
            ("POST", "/v5/asset/transfer/inter-transfer", Transfer),
            ("POST", "/v5/asset/transfer/universal-transfer", Transfer),
            ("POST", "/v5/position/move-positions", Transfer),
            ("POST", "/v5/asset/exchange/convert-execute", Transfer),
            ("POST", "/v5/asset/deposit/deposit-to-account", Deposit),
            ("POST", "/v5/user/create-sub-member", Subaccount),
            ("POST", "/v5/user/del-submember", Subaccount),
            ("POST", "/v5/user/create-sub-api", KeyManagement),
            ("POST", "/v5/user/update-api", KeyManagement),
            ("POST", "/v5/user/delete-api", KeyManagement),
            ("POST", "/v5/position/set-leverage", AccountSettings),
            ("POST", "/v5/account/set-margin-mode", AccountSettings),
            ("POST", "/v5/account/borrow", AccountSettings),
            // Disguised withdrawals are still withdrawals.
            ("POST", "/v5/asset/withdraw%2Fcreate", Withdraw),
            ("POST", "/v5/asset/withdraw%2fcreate", Withdraw),
            ("POST", "//v5/asset//withdraw/create/", Withdraw),
            ("POST", "/V5/Asset/Withdraw/Create", Withdraw),
            ("POST", "/v5/asset/./withdraw/create", Withdraw),
            ("POST", "/v5/asset/x/../withdraw/create", Withdraw),
            ("POST", "/v5/asset/withdraw/create;jsessionid=1", Withdraw),
            ("POST", "/v5/asset/withdraw/%63reate", Withdraw),
            ("POST", "/v5/order/../asset/withdraw/create", Withdraw),
            ("POST", "/v5/asset/transfer%2Finter-transfer", Transfer),
            // Unknown: unlisted paths, wrong methods, unreadable paths.
            ("GET", "/v5/asset/withdraw/create", Unknown),
            ("POST", "/v5/asset/withdraw/query-record", Unknown),
            ("GET", "/v5/order/create", Unknown),
            ("POST", "/v5/user/query-api", Unknown),
            ("DELETE", "/v5/order/cancel", Unknown),
            ("PUT", "/v5/order/create", Unknown),
            ("POST", "/v5/asset/withdraw/create-new", Unknown),
            ("POST", "/v5/asset/withdraw", Unknown),
            ("GET", "/v5/market", Unknown),
            ("GET", "/v3/private/order/list", Unknown),
            ("POST", "/v5/asset/withdraw%252Fcreate", Unknown),
            ("POST", "/v5/asset/withdraw/create%00", Unknown),
            ("POST", "/../v5/asset/withdraw/create", Unknown),
            ("GET", "/", Unknown),
        ];
        for (method, target, want) in cases {
            let req = HttpRequest::new(method, target);
            assert_eq!(classify_any(Venue::Bybit, &req), want, "{method} {target}");
        }
    }

    fn orders(path: &str, body: &str) -> Result<Vec<Order>, OrderError> {
        parse_any(
            Venue::Bybit,
            &HttpRequest::new("POST", path).with_body(body),
        )
    }

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn single_orders_follow_bybit_sizing_rules() {
        // (body, quantity, quote_quantity, price, type, side)
        let cases: [(
            &str,
            Option<&str>,
            Option<&str>,
            Option<&str>,
            OrderType,
            Side,
        ); 7] = [
            (
                r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.5","price":"30000","timeInForce":"GTC","orderLinkId":"c1"}"#,
                Some("0.5"),
                None,
                Some("30000"),
                OrderType::Limit,
                Side::Buy,
            ),
            // Spot market buys are quote-sized by default...
            (
                r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"100"}"#,
                None,
                Some("100"),
                None,
                OrderType::Market,
                Side::Buy,
            ),
            // ...unless marketUnit=baseCoin.
            (
                r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"0.01","marketUnit":"baseCoin"}"#,
                Some("0.01"),
                None,
                None,
                OrderType::Market,
                Side::Buy,
            ),
            (
                r#"{"category":"spot","symbol":"BTCUSDT","side":"Sell","orderType":"Market","qty":"0.01"}"#,
                Some("0.01"),
                None,
                None,
                OrderType::Market,
                Side::Sell,
            ),
            (
                r#"{"category":"spot","symbol":"BTCUSDT","side":"Sell","orderType":"Market","qty":"600","marketUnit":"quoteCoin"}"#,
                None,
                Some("600"),
                None,
                OrderType::Market,
                Side::Sell,
            ),
            // Perpetuals are sized in base (contracts); the market price field is ignored.
            (
                r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"2","price":"1"}"#,
                Some("2"),
                None,
                None,
                OrderType::Market,
                Side::Buy,
            ),
            // Inverse contracts are sized in USD.
            (
                r#"{"category":"inverse","symbol":"BTCUSD","side":"Sell","orderType":"Limit","qty":"1000","price":"61000"}"#,
                None,
                Some("1000"),
                Some("61000"),
                OrderType::Limit,
                Side::Sell,
            ),
        ];
        for (body, q, qq, p, t, s) in cases.clone() {
            let got = orders("/v5/order/create", body).unwrap();
            assert_eq!(got.len(), 1, "{body}");
            let o = &got[0];
            assert_eq!(o.venue, Venue::Bybit);
            assert_eq!(o.quantity, q.map(d), "{body}");
            assert_eq!(o.quote_quantity, qq.map(d), "{body}");
            assert_eq!(o.price, p.map(d), "{body}");
            assert_eq!(o.order_type, t, "{body}");
            assert_eq!(o.side, s, "{body}");
        }
        let o = &orders("/v5/order/create", cases[0].0).unwrap()[0];
        assert_eq!(o.symbol, "BTCUSDT");
        assert_eq!(o.client_id.as_deref(), Some("c1"));
        assert!(!o.reduce_only);
        let ro = orders(
            "/v5/order/create",
            r#"{"category":"linear","symbol":"BTCUSDT","side":"Sell","orderType":"Market","qty":"1","reduceOnly":true}"#,
        )
        .unwrap();
        assert!(ro[0].reduce_only);
        // Disguised order path: still parsed.
        let p = parse_any(
            Venue::Bybit,
            &HttpRequest::new("POST", "/v5/order%2Fcreate").with_body(cases[0].0),
        )
        .unwrap();
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn batches_carry_every_order() {
        let body = r#"{"category":"spot","request":[
            {"symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.1","price":"50000"},
            {"symbol":"ETHUSDT","side":"Sell","orderType":"Market","qty":"2"},
            {"symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"250","orderLinkId":"b3"}]}"#;
        let got = orders("/v5/order/create-batch", body).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].price, Some(d("50000")));
        assert_eq!(got[1].symbol, "ETHUSDT");
        assert_eq!(got[1].quantity, Some(d("2")));
        assert_eq!(got[2].quote_quantity, Some(d("250")));
        assert_eq!(got[2].client_id.as_deref(), Some("b3"));
        let amend = orders(
            "/v5/order/amend-batch",
            r#"{"category":"linear","request":[{"symbol":"BTCUSDT","orderId":"1","qty":"3"},{"symbol":"ETHUSDT","orderLinkId":"x","price":"10"}]}"#,
        )
        .unwrap();
        // An amend does not say its side: each is reported as a buy and as a sell.
        assert_eq!(amend.len(), 4);
        assert_eq!(amend[0].order_type, OrderType::Other("amend".into()));
        assert_eq!(amend[0].quantity, Some(d("3")));
        assert_eq!((amend[0].side, amend[1].side), (Side::Buy, Side::Sell));
        assert_eq!(amend[1].quantity, Some(d("3")));
        assert_eq!(amend[2].price, Some(d("10")));
        assert_eq!(amend[3].price, Some(d("10")));
        let one = orders(
            "/v5/order/amend",
            r#"{"category":"spot","symbol":"BTCUSDT","orderId":"9","price":"70000"}"#,
        )
        .unwrap();
        assert_eq!(one.len(), 2);
        assert_eq!(one[0].price, Some(d("70000")));
        assert_eq!(one[1].side, Side::Sell);
        assert_eq!(one[0].quantity, None);
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn ambiguous_or_incomplete_orders_are_refused() {
        let dup = |e: &str| Err(OrderError::DuplicateParameter(e.into()));
        let cases: Vec<(&str, &str, Result<Vec<Order>, OrderError>)> = vec![
            (
                "/v5/order/create",
                r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"1","qty":"100","price":"1"}"#,
                dup("qty"),
            ),
            (
                "/v5/order/create-batch",
                r#"{"category":"spot","request":[{"symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"1","side":"Sell"}]}"#,
                dup("side"),
            ),
            (
                "/v5/order/create",
                r#"{"category":"spot","category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"1"}"#,
                dup("category"),
            ),
            (
                "/v5/order/create",
                r#"{"category":"spot","side":"Buy","orderType":"Market","qty":"1"}"#,
                Err(OrderError::MissingParameter("symbol".into())),
            ),
            (
                "/v5/order/create",
                r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market"}"#,
                Err(OrderError::MissingParameter("qty".into())),
            ),
            (
                "/v5/order/create",
                r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"1"}"#,
                Err(OrderError::MissingParameter("price".into())),
            ),
            (
                "/v5/order/create",
                r#"{"symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"1"}"#,
                Err(OrderError::MissingParameter("category".into())),
            ),
            (
                "/v5/order/amend",
                r#"{"category":"spot","symbol":"BTCUSDT","qty":"1"}"#,
                Err(OrderError::MissingParameter("orderId".into())),
            ),
            (
                "/v5/order/create-batch",
                r#"{"category":"spot"}"#,
                Err(OrderError::MissingParameter("request".into())),
            ),
        ];
        for (path, body, want) in cases {
            assert_eq!(orders(path, body), want, "{body}");
        }
        for body in [
            r#"{"category":"spot","symbol":"BTCUSDT","side":"buy","orderType":"Market","qty":"1"}"#,
            r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Stop","qty":"1"}"#,
            r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":1}"#,
            r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"-1"}"#,
            r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"1e9"}"#,
            r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"1","marketUnit":"coin"}"#,
            r#"{"category":"futures","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"1"}"#,
            r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"1","reduceOnly":"yes"}"#,
        ] {
            assert!(
                matches!(
                    orders("/v5/order/create", body),
                    Err(OrderError::InvalidParameter { .. })
                ),
                "{body}"
            );
        }
        let eleven = format!(
            r#"{{"category":"spot","request":[{}]}}"#,
            [r#"{"symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"1"}"#; 11].join(",")
        );
        assert!(matches!(
            orders("/v5/order/create-batch", &eleven),
            Err(OrderError::InvalidParameter { .. })
        ));
        let mixed = r#"{"category":"spot","request":[{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"1"}]}"#;
        assert!(orders("/v5/order/create-batch", mixed).is_err());
        for body in ["", "not json", "[]", r#"{"category":"spot"} x"#] {
            assert!(
                matches!(
                    orders("/v5/order/create", body),
                    Err(OrderError::Malformed(_))
                ),
                "{body}"
            );
        }
        // A query beside an order body is refused rather than ignored.
        let q = HttpRequest::new("POST", "/v5/order/create?qty=100").with_body(
            r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"1"}"#,
        );
        assert!(matches!(
            parse_any(Venue::Bybit, &q),
            Err(OrderError::Malformed(_))
        ));
        // Requests that place nothing.
        assert_eq!(
            orders("/v5/order/cancel", r#"{"category":"spot"}"#),
            Ok(vec![])
        );
        assert_eq!(
            parse_any(
                Venue::Bybit,
                &HttpRequest::new("GET", "/v5/order/realtime?category=spot")
            ),
            Ok(vec![])
        );
    }

    #[test]
    fn order_requests_are_bybit_native_and_sign() {
        let market = order_request(&OrderSpec {
            symbol: "BTCUSDT".into(),
            side: Side::Buy,
            quantity: d("0.01"),
            price: None,
        });
        assert_eq!(market.method, "POST");
        assert_eq!(market.path, "/v5/order/create");
        let parsed = parse_any(Venue::Bybit, &market).unwrap();
        assert_eq!(parsed[0].quantity, Some(d("0.01")));
        assert_eq!(parsed[0].order_type, OrderType::Market);
        let v: Value = serde_json::from_slice(&market.body).unwrap();
        assert_eq!(v["marketUnit"], "baseCoin");
        assert_eq!(v["qty"], "0.01");
        let limit = order_request(&OrderSpec {
            symbol: "ETHUSDT".into(),
            side: Side::Sell,
            quantity: d("1.50"),
            price: Some(d("3500.0")),
        });
        let v: Value = serde_json::from_slice(&limit.body).unwrap();
        assert_eq!(v["price"], "3500");
        assert_eq!(v["qty"], "1.5");
        assert_eq!(v["timeInForce"], "GTC");
        assert_eq!(v["side"], "Sell");
        let s = signed(limit, SECRET, T1);
        assert!(auth(&s, T1).is_ok());
    }

    // BYD `docs/v5/user/apikey-info.mdx` @ 6533ba6e (response example).
    const DOC_SAMPLE: &str = r#"{"retCode":0,"retMsg":"","result":{"id":"13770661","note":"readwrite api key","apiKey":"XXXXXX","readOnly":0,"secret":"","permissions":{"ContractTrade":["Order","Position"],"Spot":["SpotTrade"],"Wallet":["AccountTransfer","SubMemberTransfer"],"Options":["OptionsTrade"],"Derivatives":[],"CopyTrading":[],"BlockTrade":[],"Exchange":[],"NFT":[],"Affiliate":[],"Earn":[]},"ips":["*"],"type":1,"deadlineDay":66,"expiredAt":"2023-12-22T07:20:25Z","createdAt":"2022-10-16T02:24:40Z","unified":0,"uta":0,"userID":24617703,"inviterID":0,"vipLevel":"No VIP","mktMakerLevel":"0","affiliateID":0,"rsaPublicKey":"","isMaster":true,"parentUid":"0","kycLevel":"LEVEL_DEFAULT","kycRegion":""},"retExtInfo":{},"time":1697525990798}"#;
    // exchanges.md §3.3, trimmed from BYD `docs/v5/user/apikey-info.mdx` @ 072c197d.
    const DOC_SAMPLE_IPS: &str = r#"{"retCode":0,"retMsg":"","result":{"id":"2208369","note":"testnet","apiKey":"XXXXXXXX","readOnly":1,"secret":"","permissions":{"ContractTrade":["Order","Position"],"Spot":["SpotTrade"],"Wallet":["AccountTransfer","SubMemberTransfer"],"Options":[],"Derivatives":["DerivativesTrade"],"CopyTrading":[],"BlockTrade":[],"Exchange":["ExchangeHistory"],"NFT":[],"Affiliate":[],"Earn":["Earn"]},"ips":["18.181.170.164","13.212.45.47","13.212.45.48"],"type":1,"deadlineDay":-2,"expiredAt":"1970-01-01T00:00:00Z","createdAt":"2025-10-13T03:20:45Z","uta":1,"userID":1448939,"isMaster":true,"parentUid":"0","rsaPublicKey":""},"retExtInfo":{},"time":1776149990532}"#;

    #[test]
    fn key_info_samples_from_the_docs_parse() {
        use Permission::*;
        let p = parse_key_info(DOC_SAMPLE.as_bytes()).unwrap();
        assert_eq!(p.venue, Venue::Bybit);
        assert_eq!(
            p.permissions,
            BTreeSet::from([Read, SpotTrade, FuturesTrade, OptionsTrade, Transfer])
        );
        assert_eq!(
            p.raw_permissions,
            [
                "ContractTrade.Order",
                "ContractTrade.Position",
                "Options.OptionsTrade",
                "Spot.SpotTrade",
                "Wallet.AccountTransfer",
                "Wallet.SubMemberTransfer"
            ]
        );
        assert_eq!(p.ip_restricted, Some(false));
        assert!(p.ip_allowlist.is_empty());
        assert!(!p.read_only);
        assert_eq!(p.master_account, Some(true));
        assert_eq!(p.label.as_deref(), Some("readwrite api key"));
        assert_eq!(p.created.map(|t| t.unix_timestamp()), Some(1_665_887_080));
        assert_eq!(p.expires.map(|t| t.unix_timestamp()), Some(1_703_229_625));

        let p = parse_key_info(DOC_SAMPLE_IPS.as_bytes()).unwrap();
        assert!(p.read_only);
        assert_eq!(p.ip_restricted, Some(true));
        assert_eq!(p.ip_allowlist.len(), 3);
        assert_eq!(p.expires, None, "the epoch means no expiry");
        assert!(p.can(Earn) && p.can(FuturesTrade) && p.can(Other));
        assert!(!p.can(Withdraw));

        let withdraw = DOC_SAMPLE.replace(
            r#""SubMemberTransfer"]"#,
            r#""SubMemberTransfer","Withdraw"]"#,
        );
        assert!(parse_key_info(withdraw.as_bytes()).unwrap().can(Withdraw));
    }

    #[test]
    fn key_info_errors_are_reported() {
        let err = br#"{"retCode":10003,"retMsg":"API key is invalid.","result":{},"retExtInfo":{},"time":1}"#;
        assert_eq!(
            parse_key_info(err),
            Err(KeyInfoError::Venue {
                code: "10003".into(),
                message: "API key is invalid.".into()
            })
        );
        for bad in [
            &b"<html>"[..],
            br#"{"retMsg":"x"}"#,
            br#"{"retCode":0,"result":{}}"#,
            br#"{"retCode":0,"result":{"permissions":{"Spot":"SpotTrade"}}}"#,
            br#"{"retCode":0,"result":{"permissions":{},"createdAt":"yesterday"}}"#,
        ] {
            assert!(matches!(
                parse_key_info(bad),
                Err(KeyInfoError::Malformed(_))
            ));
        }
    }

    #[test]
    fn denials_use_the_codes_clients_map() {
        let code = |kind: DenialKind| {
            let r = native_error(&Denial::new(kind, "rule `x`"), 42);
            let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
            (r.status, v["retCode"].as_i64())
        };
        let cases = [
            (
                DenialKind::Auth(AuthError::InvalidSignature),
                (200, Some(10004)),
            ),
            (
                DenialKind::Auth(AuthError::MissingSignature),
                (200, Some(10004)),
            ),
            (
                DenialKind::Auth(AuthError::UnknownApiKey),
                (200, Some(10003)),
            ),
            (
                DenialKind::Auth(AuthError::MissingApiKey),
                (200, Some(10003)),
            ),
            (
                DenialKind::Auth(AuthError::MissingTimestamp),
                (200, Some(10001)),
            ),
            (
                DenialKind::Auth(AuthError::TimestampOutsideWindow),
                (200, Some(10002)),
            ),
            (
                DenialKind::Auth(AuthError::IpNotAllowed),
                (200, Some(10010)),
            ),
            (DenialKind::Auth(AuthError::KeyExpired), (200, Some(33004))),
            (DenialKind::PermissionDenied, (200, Some(10005))),
            (
                DenialKind::RateLimited { retry_after_s: 2 },
                (200, Some(10006)),
            ),
            (DenialKind::BadRequest, (200, Some(10001))),
            (DenialKind::UnknownSymbol, (200, Some(10001))),
            (DenialKind::InsufficientFunds, (200, Some(170131))),
            (DenialKind::UnknownOrder, (200, Some(170213))),
            (DenialKind::NotFound, (404, Some(10017))),
            (DenialKind::PayloadTooLarge, (413, Some(10001))),
            (DenialKind::Unavailable, (503, None)),
            (DenialKind::Internal, (200, Some(10016))),
        ];
        for (kind, want) in cases {
            assert_eq!(code(kind.clone()), want, "{kind:?}");
        }
        let r = native_error(
            &Denial::new(DenialKind::PermissionDenied, "rule `no-withdraw`"),
            42,
        );
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["time"], 42);
        assert_eq!(v["result"], json!({}));
        assert_eq!(v["retExtInfo"], json!({}));
        assert!(v["retMsg"].as_str().unwrap().contains("no-withdraw"));
        // ccxt matches "openapi sign params error!" broadly as an authentication error.
        let r = native_error(
            &Denial::new(DenialKind::Auth(AuthError::MissingTimestamp), "m"),
            1,
        );
        assert!(r.body.contains("openapi sign params error!"));
        let r = crate::native_error(
            Venue::Bybit,
            &Denial::new(DenialKind::RateLimited { retry_after_s: 2 }, "slow down"),
            1000,
        );
        assert!(
            r.headers
                .contains(&("x-bapi-limit-reset-timestamp".into(), "3000".into()))
        );
        assert!(r.headers.contains(&("retry-after".into(), "2".into())));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bodies_and_headers_never_panic(
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            json_ish in "[{}\\[\\]\":,a-zA-Z0-9. ]{0,120}",
            ts in "[0-9a-z-]{0,25}",
            sig in "[0-9a-fA-Fz]{0,70}",
        ) {
            for path in ["/v5/order/create", "/v5/order/create-batch", "/v5/order/amend", "/v5/order/amend-batch"] {
                let _ = parse_any(Venue::Bybit, &HttpRequest::new("POST", path).with_body(body.clone()));
                let _ = parse_any(Venue::Bybit, &HttpRequest::new("POST", path).with_body(json_ish.clone()));
            }
            let _ = parse_key_info(&body);
            let _ = parse_key_info(json_ish.as_bytes());
            let req = HttpRequest::new("POST", "/v5/order/create")
                .with_body(body)
                .with_header("X-BAPI-API-KEY", KEY)
                .with_header("X-BAPI-TIMESTAMP", &ts)
                .with_header("X-BAPI-RECV-WINDOW", &ts)
                .with_header("X-BAPI-SIGN", &sig);
            proptest::prop_assert!(auth(&req, T1).is_err());
        }
    }
}
