//! OKX v5 (`https://www.okx.com`), as the fact sheet `reference/exchanges.md` §4 describes it.
//!
//! - Auth: `OK-ACCESS-SIGN` = base64 of HMAC-SHA256 keyed by the secret over
//!   `timestamp + METHOD + requestPath[?query] + body`, with `OK-ACCESS-KEY`, `OK-ACCESS-TIMESTAMP` (ISO-8601 UTC with milliseconds) and
//!   `OK-ACCESS-PASSPHRASE`. The REST timestamp window is not in the primary docs we read
//!   (UNVERIFIED; secondary write-ups say 30 s); we accept 30 s either way, as OKX states for
//!   the WebSocket login.
//! - Key introspection: `GET /api/v5/account/config` (`perm`, `ip`, `label`, `uid`, `mainUid`).
//! - Errors: `{"code":"50113","msg":"Invalid Sign","data":[]}`; the auth class answers HTTP 401.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use keyfence_types::{EndpointClass, KeyProfile, Order, OrderType, Permission, Side, Venue};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::params::parse_json_strict;
use crate::{
    AuthContext, AuthError, Authenticated, Denial, DenialKind, HttpRequest, KeyError, KeyInfoError,
    KeyLookup, NativeResponse, OrderError, OrderSpec, SignContext, SignError, SigningKey,
    SigningScheme, VerifyScheme,
};

/// How far the request timestamp may be from our clock, either way (UNVERIFIED for REST).
pub(crate) const WINDOW_MS: i64 = 30_000;

/// Most orders one `batch-orders` request may carry (OKX documents 20; UNVERIFIED).
pub(crate) const MAX_BATCH: usize = 20;

const H_KEY: &str = "ok-access-key";
const H_SIGN: &str = "ok-access-sign";
const H_TIMESTAMP: &str = "ok-access-timestamp";
const H_PASSPHRASE: &str = "ok-access-passphrase";

// `AuthError::Malformed` texts that map to their own OKX codes in `native_error`.
const MISSING_PASSPHRASE: &str = "missing header `OK-ACCESS-PASSPHRASE`";
const BAD_TIMESTAMP: &str = "`OK-ACCESS-TIMESTAMP` is not an ISO-8601 UTC time";

// ---------------------------------------------------------------------------------------------
// Authentication

pub(crate) fn claimed_api_key(req: &HttpRequest) -> Option<String> {
    req.header(H_KEY)
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
}

/// A header that must appear at most once; `Ok(None)` when absent or empty.
fn single_header<'a>(req: &'a HttpRequest, name: &str) -> Result<Option<&'a str>, AuthError> {
    if req.header_count(name) > 1 {
        return Err(AuthError::Malformed(format!(
            "header `{name}` is sent more than once"
        )));
    }
    Ok(req.header(name).filter(|v| !v.is_empty()))
}

/// Parse `2020-12-08T09:08:57.715Z` (any RFC 3339 time) into Unix milliseconds.
pub(crate) fn parse_timestamp(ts: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(ts, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Format Unix milliseconds as OKX clients do: `2020-12-08T09:08:57.715Z`.
pub(crate) fn format_timestamp(ms: i64) -> Option<String> {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt).ok()
}

/// `timestamp + METHOD + path[?query] + body`, over the bytes as sent.
fn prehash(timestamp: &str, req: &HttpRequest) -> Vec<u8> {
    let mut msg = Vec::with_capacity(timestamp.len() + req.path.len() + req.body.len() + 16);
    msg.extend_from_slice(timestamp.as_bytes());
    msg.extend_from_slice(req.method.to_ascii_uppercase().as_bytes());
    msg.extend_from_slice(req.path.as_bytes());
    if !req.query.is_empty() {
        msg.push(b'?');
        msg.extend_from_slice(req.query.as_bytes());
    }
    msg.extend_from_slice(&req.body);
    msg
}

pub(crate) fn authenticate(
    req: &HttpRequest,
    ctx: &AuthContext<'_>,
    keys: &dyn KeyLookup,
) -> Result<Authenticated, AuthError> {
    let api_key = single_header(req, H_KEY)?.ok_or(AuthError::MissingApiKey)?;
    let passphrase = single_header(req, H_PASSPHRASE)?
        .ok_or_else(|| AuthError::Malformed(MISSING_PASSPHRASE.into()))?;
    let signature = single_header(req, H_SIGN)?.ok_or(AuthError::MissingSignature)?;
    let timestamp = single_header(req, H_TIMESTAMP)?.ok_or(AuthError::MissingTimestamp)?;
    let ts_ms =
        parse_timestamp(timestamp).ok_or_else(|| AuthError::Malformed(BAD_TIMESTAMP.into()))?;
    if ctx.now_ms.abs_diff(ts_ms) > WINDOW_MS.unsigned_abs() {
        return Err(AuthError::TimestampOutsideWindow);
    }
    let key = keys.find(api_key).ok_or(AuthError::UnknownApiKey)?;
    // The signature first: only someone holding the secret learns whether a passphrase is right.
    let tag = B64
        .decode(signature.trim())
        .map_err(|_| AuthError::InvalidSignature)?;
    let ok = match &key.scheme {
        VerifyScheme::Hmac(secret) => {
            crate::crypto::verify_hmac_sha256(secret.expose(), &prehash(timestamp, req), &tag)
        }
        // OKX keys are HMAC only.
        VerifyScheme::Public(_) => false,
    };
    if !ok {
        return Err(AuthError::InvalidSignature);
    }
    match &key.passphrase {
        Some(p) if p.ct_eq(passphrase) => {}
        _ => return Err(AuthError::InvalidPassphrase),
    }
    Ok(Authenticated {
        api_key: api_key.to_owned(),
        timestamp_ms: Some(ts_ms),
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
    let passphrase = key
        .passphrase
        .as_ref()
        .ok_or(SignError::Key(KeyError::Missing("passphrase", Venue::Okx)))?;
    let SigningScheme::Hmac(secret) = &key.scheme else {
        return Err(SignError::Request("OKX signs with an HMAC secret".into()));
    };
    let timestamp = format_timestamp(ctx.now_ms)
        .ok_or_else(|| SignError::Request("the clock is out of range".into()))?;
    req.method = req.method.to_ascii_uppercase();
    let tag = crate::crypto::hmac_sha256(secret.expose(), &prehash(&timestamp, req));
    req.set_header(H_KEY, &key.api_key);
    req.set_header(H_SIGN, &B64.encode(tag));
    req.set_header(H_TIMESTAMP, &timestamp);
    req.set_header(H_PASSPHRASE, passphrase.expose());
    if req.header("content-type").is_none() {
        req.set_header("content-type", "application/json");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Classification

const PUBLIC_GET: &[&str] = &[
    "/api/v5/public/time",
    "/api/v5/public/instruments",
    "/api/v5/public/delivery-exercise-history",
    "/api/v5/public/open-interest",
    "/api/v5/public/funding-rate",
    "/api/v5/public/funding-rate-history",
    "/api/v5/public/price-limit",
    "/api/v5/public/opt-summary",
    "/api/v5/public/estimated-price",
    "/api/v5/public/discount-rate-interest-free-quota",
    "/api/v5/public/mark-price",
    "/api/v5/public/position-tiers",
    "/api/v5/public/interest-rate-loan-quota",
    "/api/v5/public/underlying",
    "/api/v5/public/insurance-fund",
    "/api/v5/public/convert-contract-coin",
    "/api/v5/public/instrument-tick-bands",
    "/api/v5/public/option-trades",
    "/api/v5/market/tickers",
    "/api/v5/market/ticker",
    "/api/v5/market/index-tickers",
    "/api/v5/market/books",
    "/api/v5/market/books-full",
    "/api/v5/market/candles",
    "/api/v5/market/history-candles",
    "/api/v5/market/index-candles",
    "/api/v5/market/history-index-candles",
    "/api/v5/market/mark-price-candles",
    "/api/v5/market/history-mark-price-candles",
    "/api/v5/market/trades",
    "/api/v5/market/history-trades",
    "/api/v5/market/option/instrument-family-trades",
    "/api/v5/market/platform-24-volume",
    "/api/v5/market/index-components",
    "/api/v5/market/exchange-rate",
    "/api/v5/market/block-tickers",
    "/api/v5/market/block-ticker",
    "/api/v5/system/status",
];

const READ_GET: &[&str] = &[
    "/api/v5/account/balance",
    "/api/v5/account/positions",
    "/api/v5/account/positions-history",
    "/api/v5/account/account-position-risk",
    "/api/v5/account/bills",
    "/api/v5/account/bills-archive",
    "/api/v5/account/config",
    "/api/v5/account/max-size",
    "/api/v5/account/max-avail-size",
    "/api/v5/account/max-withdrawal",
    "/api/v5/account/leverage-info",
    "/api/v5/account/trade-fee",
    "/api/v5/account/interest-accrued",
    "/api/v5/account/instruments",
    "/api/v5/trade/order",
    "/api/v5/trade/orders-pending",
    "/api/v5/trade/orders-history",
    "/api/v5/trade/orders-history-archive",
    "/api/v5/trade/fills",
    "/api/v5/trade/fills-history",
    "/api/v5/trade/orders-algo-pending",
    "/api/v5/trade/orders-algo-history",
    "/api/v5/trade/order-algo",
    "/api/v5/asset/balances",
    "/api/v5/asset/currencies",
    "/api/v5/asset/bills",
    "/api/v5/asset/asset-valuation",
    "/api/v5/asset/withdrawal-history",
    "/api/v5/asset/transfer-state",
    "/api/v5/users/subaccount/list",
    "/api/v5/users/subaccount/apikey",
    "/api/v5/account/subaccount/balances",
    "/api/v5/asset/subaccount/balances",
    "/api/v5/asset/subaccount/bills",
];

const DEPOSIT_GET: &[&str] = &[
    "/api/v5/asset/deposit-address",
    "/api/v5/asset/deposit-history",
    "/api/v5/asset/deposit-lightning",
    "/api/v5/asset/deposit-withdraw-status",
];

const WITHDRAW_POST: &[&str] = &[
    "/api/v5/asset/withdrawal",
    "/api/v5/asset/withdrawal-lightning",
    "/api/v5/asset/cancel-withdrawal",
];

const TRANSFER_POST: &[&str] = &[
    "/api/v5/asset/transfer",
    "/api/v5/asset/subaccount/transfer",
    "/api/v5/users/subaccount/set-transfer-out",
    "/api/v5/asset/convert-dust-assets",
    "/api/v5/asset/convert/trade",
    "/api/v5/trade/easy-convert",
    "/api/v5/trade/one-click-repay",
    "/api/v5/asset/purchase_redempt",
    "/api/v5/finance/savings/purchase-redempt",
    "/api/v5/tradingbot/grid/withdraw-income",
    "/api/v5/tradingbot/grid/margin-balance",
];

const SUBACCOUNT_POST: &[&str] = &[
    "/api/v5/users/subaccount/create-subaccount",
    "/api/v5/account/subaccount/set-loan-allocation",
];

const KEY_MANAGEMENT_POST: &[&str] = &[
    "/api/v5/users/subaccount/apikey",
    "/api/v5/users/subaccount/modify-apikey",
    "/api/v5/users/subaccount/delete-apikey",
    "/api/v5/broker/nd/subaccount/apikey",
    "/api/v5/broker/nd/subaccount/modify-apikey",
    "/api/v5/broker/nd/subaccount/delete-apikey",
];

const TRADE_POST: &[&str] = &[
    "/api/v5/trade/order",
    "/api/v5/trade/batch-orders",
    "/api/v5/trade/amend-order",
    "/api/v5/trade/amend-batch-orders",
    "/api/v5/trade/close-position",
    "/api/v5/trade/order-algo",
    "/api/v5/trade/amend-algos",
    "/api/v5/sprd/order",
    "/api/v5/sprd/amend-order",
    "/api/v5/tradingbot/grid/order-algo",
    "/api/v5/tradingbot/grid/amend-order-algo",
    "/api/v5/tradingbot/grid/close-position",
    "/api/v5/tradingbot/recurring/order-algo",
    "/api/v5/tradingbot/recurring/amend-order-algo",
];

const CANCEL_POST: &[&str] = &[
    "/api/v5/trade/cancel-order",
    "/api/v5/trade/cancel-batch-orders",
    "/api/v5/trade/cancel-algos",
    "/api/v5/trade/cancel-advance-algos",
    "/api/v5/trade/mass-cancel",
    "/api/v5/trade/cancel-all-after",
    "/api/v5/sprd/cancel-order",
    "/api/v5/sprd/mass-cancel",
    "/api/v5/tradingbot/grid/stop-order-algo",
    "/api/v5/tradingbot/grid/cancel-close-order",
    "/api/v5/tradingbot/recurring/stop-order-algo",
];

const SETTINGS_POST: &[&str] = &[
    "/api/v5/account/set-leverage",
    "/api/v5/account/set-position-mode",
    "/api/v5/account/position/margin-balance",
    "/api/v5/account/set-isolated-mode",
    "/api/v5/account/set-greeks",
    "/api/v5/account/borrow-repay",
    "/api/v5/account/set-auto-loan",
    "/api/v5/account/set-account-level",
    "/api/v5/account/activate-option",
    "/api/v5/account/set-riskoffset-type",
];

/// Allow-list classification: anything not listed, or listed for another method, is `Unknown`.
pub(crate) fn classify(method: &str, path: &str, _req: &HttpRequest) -> EndpointClass {
    let is = |list: &[&str]| list.contains(&path);
    match method {
        "GET" => {
            if is(PUBLIC_GET) {
                EndpointClass::Public
            } else if is(READ_GET) {
                EndpointClass::Read
            } else if is(DEPOSIT_GET) {
                EndpointClass::Deposit
            } else {
                EndpointClass::Unknown
            }
        }
        "POST" => {
            if is(WITHDRAW_POST) {
                EndpointClass::Withdraw
            } else if is(TRANSFER_POST) {
                EndpointClass::Transfer
            } else if is(KEY_MANAGEMENT_POST) {
                EndpointClass::KeyManagement
            } else if is(SUBACCOUNT_POST) || path.starts_with("/api/v5/broker/nd/") {
                // Broker sub-account administration: a denying class, so a prefix is safe.
                EndpointClass::Subaccount
            } else if is(TRADE_POST) {
                EndpointClass::Trade
            } else if is(CANCEL_POST) {
                EndpointClass::Cancel
            } else if is(SETTINGS_POST) {
                EndpointClass::AccountSettings
            } else {
                EndpointClass::Unknown
            }
        }
        _ => EndpointClass::Unknown,
    }
}

// ---------------------------------------------------------------------------------------------
// Orders

/// Parameters `POST /api/v5/trade/order` (and each `batch-orders` item) may carry.
pub const ORDER_FIELDS: &[&str] = &[
    "instId",
    "instIdCode",
    "tdMode",
    "ccy",
    "clOrdId",
    "tag",
    "side",
    "posSide",
    "ordType",
    "sz",
    "px",
    "pxUsd",
    "pxVol",
    "reduceOnly",
    "tgtCcy",
    "banAmend",
    "pxAmendType",
    "tradeQuoteCcy",
    "quickMgnType",
    "stpId",
    "stpMode",
    "attachAlgoOrds",
    "isElpTakerAccess",
];

/// Parameters `POST /api/v5/trade/order-algo` may carry.
pub const ALGO_FIELDS: &[&str] = &[
    "instId",
    "tdMode",
    "ccy",
    "side",
    "posSide",
    "ordType",
    "sz",
    "tag",
    "tgtCcy",
    "algoClOrdId",
    "closeFraction",
    "reduceOnly",
    "quickMgnType",
    "tradeQuoteCcy",
    "cxlOnClosePos",
    "tpTriggerPx",
    "tpTriggerPxType",
    "tpOrdPx",
    "tpOrdKind",
    "slTriggerPx",
    "slTriggerPxType",
    "slOrdPx",
    "triggerPx",
    "triggerPxType",
    "orderPx",
    "attachAlgoOrds",
    "callbackRatio",
    "callbackSpread",
    "activePx",
    "pxVar",
    "pxSpread",
    "szLimit",
    "pxLimit",
    "timeInterval",
    "chaseType",
    "chaseVal",
    "maxChaseType",
    "maxChaseVal",
    "advanceOrdType",
];

const LIMIT_TYPES: &[&str] = &[
    "limit",
    "post_only",
    "fok",
    "ioc",
    "mmp",
    "mmp_and_post_only",
    "elp",
];
const ORDER_TYPES: &[&str] = &[
    "market",
    "limit",
    "post_only",
    "fok",
    "ioc",
    "optimal_limit_ioc",
    "mmp",
    "mmp_and_post_only",
    "elp",
];
pub const ALGO_TYPES: &[&str] = &[
    "conditional",
    "oco",
    "trigger",
    "move_order_stop",
    "iceberg",
    "twap",
    "chase",
];

pub(crate) fn parse_orders(path: &str, req: &HttpRequest) -> Result<Vec<Order>, OrderError> {
    if !req.method.eq_ignore_ascii_case("POST") {
        return Ok(Vec::new());
    }
    let places_orders = TRADE_POST.contains(&path);
    // OKX reads order parameters from the JSON body only; a query string beside it is
    // ambiguous (which `sz` would the policy see?), so it is refused.
    if places_orders && !req.query.is_empty() {
        return Err(OrderError::Malformed(
            "an order request carries a query string".into(),
        ));
    }
    match path {
        "/api/v5/trade/order" => Ok(vec![parse_order(&body_object(req)?)?]),
        "/api/v5/trade/batch-orders" => {
            let items = body_array(req)?;
            items
                .iter()
                .map(|v| {
                    v.as_object()
                        .ok_or_else(|| OrderError::Malformed("each order is a JSON object".into()))
                        .and_then(parse_order)
                })
                .collect()
        }
        "/api/v5/trade/order-algo" => Ok(vec![parse_algo_order(&body_object(req)?)?]),
        // An amendment names the order by id only: the side (and so the risk) is not in the
        // request. Refuse rather than guess.
        "/api/v5/trade/amend-order" | "/api/v5/trade/amend-batch-orders" => {
            let v = parse_json_strict(&req.body)?;
            if !(v.is_object() || v.is_array()) {
                return Err(OrderError::Malformed(
                    "the body is not a JSON object".into(),
                ));
            }
            Err(OrderError::MissingParameter("side".into()))
        }
        "/api/v5/trade/amend-algos"
        | "/api/v5/trade/close-position"
        | "/api/v5/sprd/order"
        | "/api/v5/sprd/amend-order"
        | "/api/v5/tradingbot/grid/order-algo"
        | "/api/v5/tradingbot/grid/amend-order-algo"
        | "/api/v5/tradingbot/grid/close-position"
        | "/api/v5/tradingbot/recurring/order-algo"
        | "/api/v5/tradingbot/recurring/amend-order-algo" => Err(OrderError::Malformed(format!(
            "`{path}` places orders whose size keyfence cannot read"
        ))),
        _ => Ok(Vec::new()),
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

fn body_array(req: &HttpRequest) -> Result<Vec<Value>, OrderError> {
    match parse_json_strict(&req.body)? {
        Value::Array(a) if a.is_empty() => {
            Err(OrderError::Malformed("the batch carries no order".into()))
        }
        Value::Array(a) if a.len() > MAX_BATCH => Err(OrderError::Malformed(format!(
            "a batch carries at most {MAX_BATCH} orders"
        ))),
        Value::Array(a) => Ok(a),
        _ => Err(OrderError::Malformed("the body is not a JSON array".into())),
    }
}

/// A string parameter; empty strings and `null` count as absent (python-okx sends `""` for
/// every unused parameter). Numbers are accepted in their JSON spelling.
pub(crate) fn field(m: &Map<String, Value>, name: &str) -> Result<Option<String>, OrderError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(OrderError::InvalidParameter {
            name: name.to_owned(),
            value: other.to_string(),
        }),
    }
}

fn required(m: &Map<String, Value>, name: &str) -> Result<String, OrderError> {
    field(m, name)?.ok_or_else(|| OrderError::MissingParameter(name.to_owned()))
}

fn invalid(name: &str, value: &str) -> OrderError {
    OrderError::InvalidParameter {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

pub(crate) fn positive_decimal(name: &str, value: &str) -> Result<Decimal, OrderError> {
    crate::params::plain_decimal(value)
        .filter(|d| *d > Decimal::ZERO)
        .ok_or_else(|| invalid(name, value))
}

fn check_known(m: &Map<String, Value>, known: &[&str]) -> Result<(), OrderError> {
    match m.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(OrderError::Malformed(format!("unknown parameter `{k}`"))),
        None => Ok(()),
    }
}

fn parse_side(m: &Map<String, Value>) -> Result<Side, OrderError> {
    match required(m, "side")?.as_str() {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        other => Err(invalid("side", other)),
    }
}

fn parse_td_mode(m: &Map<String, Value>) -> Result<String, OrderError> {
    let td = required(m, "tdMode")?;
    if ["cash", "cross", "isolated", "spot_isolated"].contains(&td.as_str()) {
        Ok(td)
    } else {
        Err(invalid("tdMode", &td))
    }
}

fn parse_reduce_only(m: &Map<String, Value>) -> Result<bool, OrderError> {
    match field(m, "reduceOnly")?.as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(invalid("reduceOnly", other)),
    }
}

/// `BTC-USDT` (spot and margin) has one dash; swaps, futures and options have more.
pub(crate) fn is_spot_inst(inst_id: &str) -> bool {
    inst_id.matches('-').count() == 1
}

/// Whether `sz` is a quote amount: spot market orders with `tgtCcy = quote_ccy`, which is the
/// default for buys.
fn quote_sized(inst_id: &str, side: Side, tgt: Option<&str>) -> Result<bool, OrderError> {
    match tgt {
        Some("quote_ccy") => Ok(is_spot_inst(inst_id)),
        Some("base_ccy") => Ok(false),
        None => Ok(is_spot_inst(inst_id) && side == Side::Buy),
        Some(other) => Err(invalid("tgtCcy", other)),
    }
}

fn parse_order(m: &Map<String, Value>) -> Result<Order, OrderError> {
    check_known(m, ORDER_FIELDS)?;
    let inst_id = required(m, "instId")?;
    parse_td_mode(m)?;
    let side = parse_side(m)?;
    let ord_type = required(m, "ordType")?;
    if !ORDER_TYPES.contains(&ord_type.as_str()) {
        return Err(invalid("ordType", &ord_type));
    }
    let sz = positive_decimal("sz", &required(m, "sz")?)?;
    let px = field(m, "px")?
        .map(|p| positive_decimal("px", &p))
        .transpose()?;
    let is_limit = LIMIT_TYPES.contains(&ord_type.as_str());
    if is_limit && px.is_none() && field(m, "pxUsd")?.is_none() && field(m, "pxVol")?.is_none() {
        return Err(OrderError::MissingParameter("px".into()));
    }
    let tgt = field(m, "tgtCcy")?;
    // tgtCcy only changes the meaning of `sz` for spot market orders.
    let quote = ord_type == "market" && quote_sized(&inst_id, side, tgt.as_deref())?;
    if ord_type != "market"
        && let Some(t) = tgt.as_deref()
        && t != "base_ccy"
        && t != "quote_ccy"
    {
        return Err(invalid("tgtCcy", t));
    }
    let order_type = match ord_type.as_str() {
        "market" => OrderType::Market,
        "limit" => OrderType::Limit,
        other => OrderType::Other(other.to_owned()),
    };
    Ok(Order {
        venue: Venue::Okx,
        symbol: inst_id,
        side,
        order_type,
        quantity: (!quote).then_some(sz),
        quote_quantity: quote.then_some(sz),
        price: if ord_type == "market" { None } else { px },
        reduce_only: parse_reduce_only(m)?,
        client_id: field(m, "clOrdId")?,
    })
}

fn parse_algo_order(m: &Map<String, Value>) -> Result<Order, OrderError> {
    check_known(m, ALGO_FIELDS)?;
    let inst_id = required(m, "instId")?;
    parse_td_mode(m)?;
    let side = parse_side(m)?;
    let ord_type = required(m, "ordType")?;
    if !ALGO_TYPES.contains(&ord_type.as_str()) {
        return Err(invalid("ordType", &ord_type));
    }
    // `closeFraction` closes a whole position of unknown size: refuse (needs `sz`).
    let sz = positive_decimal("sz", &required(m, "sz")?)?;
    // The price the child order executes at; "-1" means market.
    let mut price = None;
    for name in ["orderPx", "pxLimit", "tpOrdPx", "slOrdPx"] {
        if let Some(p) = field(m, name)?
            && p != "-1"
        {
            price = Some(positive_decimal(name, &p)?);
            break;
        }
    }
    let tgt = field(m, "tgtCcy")?;
    // An explicit tgtCcy decides for spot; otherwise a market-priced spot buy is quote-sized.
    let sized_in_quote = quote_sized(&inst_id, side, tgt.as_deref())?;
    let quote = match tgt.as_deref() {
        Some(_) => sized_in_quote,
        None => sized_in_quote && price.is_none(),
    };
    Ok(Order {
        venue: Venue::Okx,
        symbol: inst_id,
        side,
        order_type: OrderType::Other(ord_type),
        quantity: (!quote).then_some(sz),
        quote_quantity: quote.then_some(sz),
        price,
        reduce_only: parse_reduce_only(m)?,
        client_id: field(m, "algoClOrdId")?,
    })
}

pub(crate) fn order_request(spec: &OrderSpec) -> HttpRequest {
    let side = match spec.side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    };
    let mut body = Map::new();
    body.insert("instId".into(), json!(spec.symbol));
    body.insert("tdMode".into(), json!("cash"));
    body.insert("side".into(), json!(side));
    match spec.price {
        Some(px) => {
            body.insert("ordType".into(), json!("limit"));
            body.insert("sz".into(), json!(spec.quantity.normalize().to_string()));
            body.insert("px".into(), json!(px.normalize().to_string()));
        }
        None => {
            body.insert("ordType".into(), json!("market"));
            body.insert("sz".into(), json!(spec.quantity.normalize().to_string()));
            // The spec is in base units; OKX sizes market buys in quote units by default.
            body.insert("tgtCcy".into(), json!("base_ccy"));
        }
    }
    HttpRequest::new("POST", "/api/v5/trade/order")
        .with_header("content-type", "application/json")
        .with_body(Value::Object(body).to_string())
}

// ---------------------------------------------------------------------------------------------
// Key introspection

/// OKX's envelope, `{"code":"0","msg":"","data":[...]}`: a code other than `"0"` is the
/// venue's error.
pub(crate) fn check_envelope(v: &Value) -> Result<(), KeyInfoError> {
    let code = match v.get("code") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(KeyInfoError::Malformed("no `code` field".into())),
    };
    if code == "0" {
        return Ok(());
    }
    let message = v
        .get("msg")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    Err(KeyInfoError::Venue { code, message })
}

pub(crate) fn parse_key_info(body: &[u8]) -> Result<KeyProfile, KeyInfoError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| KeyInfoError::Malformed(e.to_string()))?;
    check_envelope(&v)?;
    let first = v
        .get("data")
        .and_then(Value::as_array)
        .and_then(|d| d.first())
        .and_then(Value::as_object)
        .ok_or_else(|| KeyInfoError::Malformed("`data` holds no account configuration".into()))?;
    let text = |name: &str| first.get(name).and_then(Value::as_str);
    let perm = text("perm").ok_or_else(|| KeyInfoError::Malformed("no `perm` field".into()))?;

    let mut profile = KeyProfile::empty(Venue::Okx);
    let mut perms = BTreeSet::new();
    for p in perm.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        profile.raw_permissions.push(p.to_owned());
        match p {
            "read_only" => {
                perms.insert(Permission::Read);
            }
            // OKX's one trading permission covers every product; funds transfer between own
            // accounts is also gated by it (UNVERIFIED, so reported: over-reporting is safe).
            "trade" => {
                perms.extend([
                    Permission::Read,
                    Permission::SpotTrade,
                    Permission::MarginTrade,
                    Permission::FuturesTrade,
                    Permission::OptionsTrade,
                    Permission::Transfer,
                ]);
            }
            "withdraw" => {
                perms.insert(Permission::Withdraw);
            }
            _ => {
                perms.insert(Permission::Other);
            }
        }
    }
    profile.read_only = !perms.is_empty() && perms.iter().all(|p| *p == Permission::Read);
    profile.permissions = perms;

    match text("ip") {
        Some(ip) => {
            profile.ip_allowlist = ip
                .split([',', ' '])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            profile.ip_restricted = Some(!profile.ip_allowlist.is_empty());
        }
        None => profile.ip_restricted = None,
    }
    profile.label = text("label").filter(|l| !l.is_empty()).map(str::to_owned);
    profile.master_account = match (text("uid"), text("mainUid"), text("type")) {
        (Some(uid), Some(main), _) if !uid.is_empty() && !main.is_empty() => Some(uid == main),
        (_, _, Some(t)) => Some(t == "0"),
        _ => None,
    };
    Ok(profile)
}

// ---------------------------------------------------------------------------------------------
// Native errors

/// OKX's code, HTTP status and message for a denial. Codes from OKXD "Error Code"; the mapping
/// to ccxt's classes is in `ccxt/okx.py` `exceptions.exact` (4.5.90).
fn code_for(denial: &Denial) -> (u16, &'static str, String) {
    let msg = |s: &str| s.to_owned();
    match &denial.kind {
        DenialKind::Auth(e) => match e {
            AuthError::MissingApiKey => (
                401,
                "50103",
                msg("Request header OK-ACCESS-KEY can not be empty."),
            ),
            AuthError::UnknownApiKey | AuthError::KeyExpired => {
                (401, "50111", msg("Invalid OK-ACCESS-KEY."))
            }
            AuthError::MissingSignature => (
                401,
                "50106",
                msg("Request header OK-ACCESS-SIGN can not be empty."),
            ),
            AuthError::InvalidSignature => (401, "50113", msg("Invalid Sign")),
            AuthError::MissingTimestamp => (
                401,
                "50107",
                msg("Request header OK-ACCESS-TIMESTAMP can not be empty."),
            ),
            AuthError::TimestampOutsideWindow | AuthError::InvalidNonce => {
                (401, "50102", msg("Timestamp request expired."))
            }
            AuthError::InvalidPassphrase => (401, "50105", msg("OK-ACCESS-PASSPHRASE incorrect.")),
            AuthError::IpNotAllowed => (
                401,
                "50110",
                msg("Your IP is not included in your API key's IP whitelist."),
            ),
            AuthError::Malformed(m) if m == MISSING_PASSPHRASE => (
                401,
                "50104",
                msg("Request header OK-ACCESS-PASSPHRASE can not be empty."),
            ),
            AuthError::Malformed(m) if m == BAD_TIMESTAMP => {
                (401, "50112", msg("Invalid OK-ACCESS-TIMESTAMP."))
            }
            AuthError::Malformed(_) => (401, "50114", msg("Invalid authorization.")),
        },
        // ccxt 4.5.90 has no class for 50120 and raises its generic ExchangeError.
        DenialKind::PermissionDenied => (200, "50120", denial.message.clone()),
        DenialKind::RateLimited { .. } => (429, "50011", msg("Too Many Requests")),
        DenialKind::BadRequest => (400, "51000", denial.message.clone()),
        DenialKind::UnknownSymbol => (200, "51001", denial.message.clone()),
        DenialKind::InsufficientFunds => (200, "51008", denial.message.clone()),
        DenialKind::UnknownOrder => (200, "51603", denial.message.clone()),
        // OKX's answer for an unknown path is not documented (UNVERIFIED).
        DenialKind::NotFound => (404, "404", msg("Not Found")),
        DenialKind::PayloadTooLarge => (413, "50002", denial.message.clone()),
        DenialKind::Unavailable => (503, "50013", denial.message.clone()),
        DenialKind::Internal => (500, "50026", denial.message.clone()),
    }
}

pub(crate) fn native_error(denial: &Denial) -> NativeResponse {
    let (status, code, msg) = code_for(denial);
    NativeResponse::json(status, json!({ "code": code, "msg": msg, "data": [] }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use ring::rand::SystemRandom;

    use super::*;
    use crate::{Credential, SecretString, VerifyKey};

    const SECRET: &str = "22582BD0CFF14C41EDBF1AB98506286D";
    const PASS: &str = "Pass-phrase1";
    // 2020-12-08T09:08:57.715Z
    const TS_MS: i64 = 1_607_418_537_715;

    fn keys() -> HashMap<String, VerifyKey> {
        let mut m = HashMap::new();
        m.insert(
            "k1".to_owned(),
            VerifyKey::hmac(Venue::Okx, SECRET, Some(SecretString::new(PASS.into()))).unwrap(),
        );
        m
    }

    fn signed(method: &str, target: &str, body: &str, secret: &str, now_ms: i64) -> HttpRequest {
        let rng = SystemRandom::new();
        let cred = Credential {
            api_key: "k1".into(),
            secret: Some(SecretString::new(secret.into())),
            private_key: None,
            passphrase: Some(SecretString::new(PASS.into())),
        };
        let key = SigningKey::from_credential(Venue::Okx, &cred, &rng).unwrap();
        let mut req = HttpRequest::new(method, target).with_body(body);
        let ctx = SignContext {
            now_ms,
            nonce: None,
            host: "www.okx.com",
            rng: &rng,
        };
        crate::sign(Venue::Okx, &key, &mut req, &ctx).unwrap();
        req
    }

    fn auth(req: &HttpRequest, now_ms: i64) -> Result<Authenticated, AuthError> {
        let ctx = AuthContext { now_ms, host: None };
        crate::authenticate(Venue::Okx, req, &ctx, &keys())
    }

    #[test]
    fn self_generated_vectors_s3_s4() {
        let s3 = signed("GET", "/api/v5/account/balance?ccy=BTC", "", SECRET, TS_MS);
        assert_eq!(
            s3.header("ok-access-timestamp"),
            Some("2020-12-08T09:08:57.715Z")
        );
        assert_eq!(
            s3.header("ok-access-sign"),
            Some("HiZhvSfMtWJA3uUIVXV3a/bSXNPCWvYFXoGCVS8V4zY=")
        );
        let s4 = signed(
            "POST",
            "/api/v5/account/set-leverage",
            r#"{"instId":"BTC-USDT","lever":"5","mgnMode":"isolated"}"#,
            SECRET,
            TS_MS,
        );
        assert_eq!(
            s4.header("ok-access-sign"),
            Some("eCnnCgWLjlQ9XnpUkrcny3qNq3WW/81KNrDr/XR6Xv8=")
        );
        assert!(auth(&s3, TS_MS + 1000).is_ok());
        assert!(auth(&s4, TS_MS - 1000).is_ok());
    }

    #[test]
    fn authentication_failures_are_specific() {
        let good = signed("GET", "/api/v5/account/config", "", SECRET, TS_MS);
        let ok = auth(&good, TS_MS).unwrap();
        assert_eq!(ok.api_key, "k1");
        assert_eq!(ok.timestamp_ms, Some(TS_MS));

        let wrong = signed("GET", "/api/v5/account/config", "", "not-the-secret", TS_MS);
        assert_eq!(auth(&wrong, TS_MS), Err(AuthError::InvalidSignature));

        type Mutation = Box<dyn Fn(&mut HttpRequest)>;
        let cases: Vec<(&str, Mutation, AuthError)> = vec![
            (
                "no key",
                Box::new(|r| r.remove_header("ok-access-key")),
                AuthError::MissingApiKey,
            ),
            (
                "no sign",
                Box::new(|r| r.remove_header("ok-access-sign")),
                AuthError::MissingSignature,
            ),
            (
                "no timestamp",
                Box::new(|r| r.remove_header("ok-access-timestamp")),
                AuthError::MissingTimestamp,
            ),
            (
                "no passphrase",
                Box::new(|r| r.remove_header("ok-access-passphrase")),
                AuthError::Malformed(MISSING_PASSPHRASE.into()),
            ),
            (
                "wrong passphrase",
                Box::new(|r| r.set_header("ok-access-passphrase", "nope")),
                AuthError::InvalidPassphrase,
            ),
            (
                "unknown key",
                Box::new(|r| r.set_header("ok-access-key", "k2")),
                AuthError::UnknownApiKey,
            ),
            (
                "bad timestamp",
                Box::new(|r| r.set_header("ok-access-timestamp", "1607418537")),
                AuthError::Malformed(BAD_TIMESTAMP.into()),
            ),
            (
                "sign not base64",
                Box::new(|r| r.set_header("ok-access-sign", "%%%")),
                AuthError::InvalidSignature,
            ),
            (
                "key twice",
                Box::new(|r| r.headers.push(("ok-access-key".into(), "k1".into()))),
                AuthError::Malformed("header `ok-access-key` is sent more than once".into()),
            ),
            (
                "tampered query",
                Box::new(|r| r.query = "ccy=ETH".into()),
                AuthError::InvalidSignature,
            ),
            (
                "tampered body",
                Box::new(|r| r.body = b"{}".to_vec()),
                AuthError::InvalidSignature,
            ),
            (
                "tampered method",
                Box::new(|r| r.method = "POST".into()),
                AuthError::InvalidSignature,
            ),
        ];
        for (name, mutate, want) in cases {
            let mut r = good.clone();
            mutate(&mut r);
            assert_eq!(auth(&r, TS_MS), Err(want), "{name}");
        }
    }

    #[test]
    fn the_timestamp_window_is_thirty_seconds_either_way() {
        let req = signed("GET", "/api/v5/account/config", "", SECRET, TS_MS);
        assert!(auth(&req, TS_MS + WINDOW_MS).is_ok());
        assert!(auth(&req, TS_MS - WINDOW_MS).is_ok());
        assert_eq!(
            auth(&req, TS_MS + WINDOW_MS + 1),
            Err(AuthError::TimestampOutsideWindow)
        );
        assert_eq!(
            auth(&req, TS_MS - WINDOW_MS - 1),
            Err(AuthError::TimestampOutsideWindow)
        );
    }

    #[test]
    fn signing_never_shows_the_secret_and_needs_a_passphrase() {
        let rng = SystemRandom::new();
        let cred = Credential {
            api_key: "k1".into(),
            secret: Some(SecretString::new(SECRET.into())),
            private_key: None,
            passphrase: None,
        };
        assert!(SigningKey::from_credential(Venue::Okx, &cred, &rng).is_err());
        let req = signed("GET", "/api/v5/account/config", "", SECRET, TS_MS);
        // The passphrase travels in a header; Debug must not show it (nor the secret).
        assert_eq!(req.header("ok-access-passphrase"), Some(PASS));
        let shown = format!("{req:?}");
        assert!(!shown.contains(PASS), "{shown}");
        assert!(!shown.contains(SECRET), "{shown}");
    }

    fn class(method: &str, path: &str) -> EndpointClass {
        crate::classify(Venue::Okx, &HttpRequest::new(method, path))
    }

    #[test]
    fn classification_covers_every_class() {
        use EndpointClass::*;
        let table = [
            ("GET", "/api/v5/public/time", Public),
            ("GET", "/api/v5/public/instruments?instType=SPOT", Public),
            ("GET", "/api/v5/market/ticker?instId=BTC-USDT", Public),
            ("GET", "/api/v5/account/balance", Read),
            ("GET", "/api/v5/account/config", Read),
            ("GET", "/api/v5/trade/order?instId=BTC-USDT&ordId=1", Read),
            ("GET", "/api/v5/trade/orders-pending", Read),
            ("GET", "/api/v5/trade/fills-history", Read),
            ("GET", "/api/v5/asset/withdrawal-history", Read),
            ("GET", "/api/v5/users/subaccount/apikey", Read),
            ("GET", "/api/v5/asset/deposit-address?ccy=BTC", Deposit),
            ("GET", "/api/v5/asset/deposit-history", Deposit),
            ("POST", "/api/v5/trade/order", Trade),
            ("POST", "/api/v5/trade/batch-orders", Trade),
            ("POST", "/api/v5/trade/amend-order", Trade),
            ("POST", "/api/v5/trade/order-algo", Trade),
            ("POST", "/api/v5/trade/cancel-order", Cancel),
            ("POST", "/api/v5/trade/cancel-batch-orders", Cancel),
            ("POST", "/api/v5/trade/cancel-algos", Cancel),
            ("POST", "/api/v5/asset/withdrawal", Withdraw),
            ("POST", "/api/v5/asset/withdrawal-lightning", Withdraw),
            ("POST", "/api/v5/asset/cancel-withdrawal", Withdraw),
            ("POST", "/api/v5/asset/transfer", Transfer),
            ("POST", "/api/v5/asset/subaccount/transfer", Transfer),
            ("POST", "/api/v5/tradingBot/grid/withdraw-income", Transfer),
            (
                "POST",
                "/api/v5/users/subaccount/create-subaccount",
                Subaccount,
            ),
            ("POST", "/api/v5/broker/nd/create-subaccount", Subaccount),
            ("POST", "/api/v5/users/subaccount/apikey", KeyManagement),
            (
                "POST",
                "/api/v5/users/subaccount/modify-apikey",
                KeyManagement,
            ),
            (
                "POST",
                "/api/v5/users/subaccount/delete-apikey",
                KeyManagement,
            ),
            ("POST", "/api/v5/broker/nd/subaccount/apikey", KeyManagement),
            ("POST", "/api/v5/account/set-leverage", AccountSettings),
            (
                "POST",
                "/api/v5/account/set-riskOffset-type",
                AccountSettings,
            ),
            // Wrong method, unlisted paths, other verbs.
            ("GET", "/api/v5/asset/withdrawal", Unknown),
            ("POST", "/api/v5/account/balance", Unknown),
            ("DELETE", "/api/v5/trade/order", Unknown),
            ("GET", "/api/v5/asset/new-thing", Unknown),
            ("POST", "/api/v5/copytrading/first-copy-settings", Unknown),
            ("GET", "/", Unknown),
            ("POST", "/api/v5/asset/%252Fwithdrawal", Unknown),
        ];
        for (method, path, want) in table {
            assert_eq!(class(method, path), want, "{method} {path}");
        }
    }

    #[test]
    fn disguised_withdrawal_paths_are_still_withdrawals() {
        for path in [
            "/api/v5/asset/withdrawal/",
            "/API/V5/Asset/Withdrawal",
            "/api/v5/asset%2Fwithdrawal",
            "//api//v5/asset/withdrawal",
            "/api/v5/trade/../asset/withdrawal",
            "/api/v5/./asset/withdrawal;x=1",
            "/api/v5/asset/withdr%61wal",
        ] {
            assert_eq!(
                class("POST", path),
                EndpointClass::Withdraw,
                "{path} must be a withdrawal"
            );
        }
    }

    fn orders(path: &str, body: &str) -> Result<Vec<Order>, OrderError> {
        crate::parse_orders(Venue::Okx, &HttpRequest::new("POST", path).with_body(body))
    }

    #[test]
    fn single_orders_follow_okx_sizing_rules() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let table = [
            // Spot market buy: quote-sized by default.
            (
                r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"100"}"#,
                OrderType::Market,
                None,
                Some(d("100")),
                None,
            ),
            // ... unless tgtCcy says base.
            (
                r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"0.01","tgtCcy":"base_ccy"}"#,
                OrderType::Market,
                Some(d("0.01")),
                None,
                None,
            ),
            // Spot market sell: base-sized by default; quote when asked.
            (
                r#"{"instId":"BTC-USDT","tdMode":"cash","side":"sell","ordType":"market","sz":"0.5"}"#,
                OrderType::Market,
                Some(d("0.5")),
                None,
                None,
            ),
            (
                r#"{"instId":"BTC-USDT","tdMode":"cash","side":"sell","ordType":"market","sz":"50","tgtCcy":"quote_ccy"}"#,
                OrderType::Market,
                None,
                Some(d("50")),
                None,
            ),
            // Limit: base size and price; python-okx's empty strings are absent.
            (
                r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"0.001","px":"30000","ccy":"","clOrdId":"","tgtCcy":"","attachAlgoOrds":null}"#,
                OrderType::Limit,
                Some(d("0.001")),
                None,
                Some(d("30000")),
            ),
            // Swap market buy: contracts, tgtCcy does not apply.
            (
                r#"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"3"}"#,
                OrderType::Market,
                Some(d("3")),
                None,
                None,
            ),
            (
                r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"post_only","sz":"1","px":"10"}"#,
                OrderType::Other("post_only".into()),
                Some(d("1")),
                None,
                Some(d("10")),
            ),
        ];
        for (body, ty, qty, quote, px) in table {
            let got = orders("/api/v5/trade/order", body).unwrap();
            assert_eq!(got.len(), 1, "{body}");
            let o = &got[0];
            assert_eq!(o.venue, Venue::Okx);
            assert_eq!(o.order_type, ty, "{body}");
            assert_eq!(o.quantity, qty, "{body}");
            assert_eq!(o.quote_quantity, quote, "{body}");
            assert_eq!(o.price, px, "{body}");
            // Only the swap counts contracts (the policy values them with contract_values).
            assert_eq!(o.counts_contracts(), o.symbol.ends_with("-SWAP"), "{body}");
        }
    }

    #[test]
    fn batches_carry_several_orders() {
        let body = r#"[
            {"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"0.1","px":"50000","clOrdId":"a1"},
            {"instId":"ETH-USDT","tdMode":"cash","side":"sell","ordType":"market","sz":"2","reduceOnly":false},
            {"instId":"BTC-USDT-SWAP","tdMode":"isolated","side":"sell","ordType":"limit","sz":"5","px":"70000","reduceOnly":"true"}
        ]"#;
        let got = orders("/api/v5/trade/batch-orders", body).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].client_id.as_deref(), Some("a1"));
        assert_eq!(got[1].symbol, "ETH-USDT");
        assert_eq!(got[1].side, Side::Sell);
        assert!(got[2].reduce_only);
        // One bad item refuses the whole batch.
        let bad = r#"[{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"1","px":"1"},{"instId":"BTC-USDT"}]"#;
        assert!(orders("/api/v5/trade/batch-orders", bad).is_err());
        assert!(orders("/api/v5/trade/batch-orders", "[]").is_err());
        assert!(orders("/api/v5/trade/batch-orders", r#"{"instId":"BTC-USDT"}"#).is_err());
        let many = format!(
            "[{}]",
            vec![r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"1","px":"1"}"#; MAX_BATCH + 1].join(",")
        );
        assert!(orders("/api/v5/trade/batch-orders", &many).is_err());
    }

    #[test]
    fn bad_orders_are_refused() {
        let table = [
            (
                r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"1","sz":"100"}"#,
                OrderError::DuplicateParameter("sz".into()),
            ),
            (
                r#"[{"instId":"BTC-USDT","side":"buy","side":"sell"}]"#,
                OrderError::DuplicateParameter("side".into()),
            ),
            (
                r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"1"}"#,
                OrderError::MissingParameter("px".into()),
            ),
            (
                r#"{"tdMode":"cash","side":"buy","ordType":"market","sz":"1"}"#,
                OrderError::MissingParameter("instId".into()),
            ),
            (
                r#"{"instId":"BTC-USDT","tdMode":"cash","side":"hold","ordType":"market","sz":"1"}"#,
                OrderError::InvalidParameter {
                    name: "side".into(),
                    value: "hold".into(),
                },
            ),
            (
                r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"-1"}"#,
                OrderError::InvalidParameter {
                    name: "sz".into(),
                    value: "-1".into(),
                },
            ),
            (
                r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"1","tgtCcy":"usd"}"#,
                OrderError::InvalidParameter {
                    name: "tgtCcy".into(),
                    value: "usd".into(),
                },
            ),
            (
                r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"stop","sz":"1"}"#,
                OrderError::InvalidParameter {
                    name: "ordType".into(),
                    value: "stop".into(),
                },
            ),
            (
                r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"1","size":"9"}"#,
                OrderError::Malformed("unknown parameter `size`".into()),
            ),
        ];
        for (body, want) in table {
            let path = if body.starts_with('[') {
                "/api/v5/trade/batch-orders"
            } else {
                "/api/v5/trade/order"
            };
            assert_eq!(orders(path, body), Err(want), "{body}");
        }
        assert!(matches!(
            orders("/api/v5/trade/order", "{not json"),
            Err(OrderError::Malformed(_))
        ));
    }

    #[test]
    fn algo_amend_and_other_endpoints() {
        let algo = orders(
            "/api/v5/trade/order-algo",
            r#"{"instId":"BTC-USDT","tdMode":"cash","side":"sell","ordType":"trigger","sz":"0.2","triggerPx":"55000","orderPx":"54000"}"#,
        )
        .unwrap();
        assert_eq!(algo[0].order_type, OrderType::Other("trigger".into()));
        assert_eq!(algo[0].quantity, Some(Decimal::new(2, 1)));
        assert_eq!(algo[0].price, Some(Decimal::new(54000, 0)));
        let market_algo = orders(
            "/api/v5/trade/order-algo",
            r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"trigger","sz":"100","triggerPx":"55000","orderPx":"-1"}"#,
        )
        .unwrap();
        assert_eq!(market_algo[0].quote_quantity, Some(Decimal::new(100, 0)));
        assert_eq!(market_algo[0].price, None);
        assert!(
            orders(
                "/api/v5/trade/order-algo",
                r#"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"sell","ordType":"conditional","closeFraction":"1","slTriggerPx":"1"}"#
            )
            .is_err()
        );
        assert_eq!(
            orders(
                "/api/v5/trade/amend-order",
                r#"{"instId":"BTC-USDT","ordId":"1","newSz":"2"}"#
            ),
            Err(OrderError::MissingParameter("side".into()))
        );
        assert!(
            orders(
                "/api/v5/trade/close-position",
                r#"{"instId":"BTC-USDT-SWAP"}"#
            )
            .is_err()
        );
        assert_eq!(
            orders(
                "/api/v5/trade/cancel-order",
                r#"{"instId":"BTC-USDT","ordId":"1"}"#
            ),
            Ok(vec![])
        );
        let with_query = HttpRequest::new("POST", "/api/v5/trade/order?sz=100").with_body(
            r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"1"}"#,
        );
        assert!(matches!(
            crate::parse_orders(Venue::Okx, &with_query),
            Err(OrderError::Malformed(_))
        ));
        let get = HttpRequest::new("GET", "/api/v5/trade/order?instId=BTC-USDT&ordId=1");
        assert_eq!(crate::parse_orders(Venue::Okx, &get), Ok(vec![]));
    }

    #[test]
    fn order_request_is_a_base_sized_spot_order() {
        let spec = OrderSpec {
            symbol: "BTC-USDT".into(),
            side: Side::Buy,
            quantity: Decimal::new(1, 2),
            price: None,
        };
        let req = crate::order_request(Venue::Okx, &spec);
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/api/v5/trade/order");
        let back = crate::parse_orders(Venue::Okx, &req).unwrap();
        assert_eq!(back[0].quantity, Some(Decimal::new(1, 2)));
        assert_eq!(back[0].order_type, OrderType::Market);
        let limit = crate::order_request(
            Venue::Okx,
            &OrderSpec {
                price: Some(Decimal::new(30000, 0)),
                ..spec
            },
        );
        let back = crate::parse_orders(Venue::Okx, &limit).unwrap();
        assert_eq!(back[0].price, Some(Decimal::new(30000, 0)));
        assert_eq!(back[0].order_type, OrderType::Limit);
    }

    #[test]
    fn key_info_from_the_docs_example() {
        let body = br#"{"code":"0","data":[{"acctLv":"2","autoLoan":false,"ip":"","type":"0","kycLv":"3","label":"v5 test","level":"Lv1",
 "mainUid":"44705892343619584","perm":"read_only,withdraw,trade","posMode":"long_short_mode","uid":"44705892343619584",
 "roleType":"0","spotRoleType":"0","settleCcy":"USDC"}],"msg":""}"#;
        let p = crate::parse_key_info(Venue::Okx, body).unwrap();
        assert_eq!(p.raw_permissions, ["read_only", "withdraw", "trade"]);
        assert!(p.can(Permission::Withdraw));
        assert!(p.can(Permission::SpotTrade));
        assert!(!p.read_only);
        assert_eq!(p.ip_restricted, Some(false));
        assert!(p.ip_allowlist.is_empty());
        assert_eq!(p.label.as_deref(), Some("v5 test"));
        assert_eq!(p.master_account, Some(true));
        assert_eq!(p.created, None);
        assert_eq!(p.expires, None);
    }

    #[test]
    fn key_info_read_only_sub_account_with_ips() {
        let body = br#"{"code":"0","msg":"","data":[{"perm":"read_only","ip":"1.2.3.4,5.6.7.8","label":"","uid":"2","mainUid":"1"}]}"#;
        let p = crate::parse_key_info(Venue::Okx, body).unwrap();
        assert!(p.read_only);
        assert_eq!(
            p.permissions.iter().copied().collect::<Vec<_>>(),
            [Permission::Read]
        );
        assert_eq!(p.ip_restricted, Some(true));
        assert_eq!(p.ip_allowlist, ["1.2.3.4", "5.6.7.8"]);
        assert_eq!(p.label, None);
        assert_eq!(p.master_account, Some(false));
    }

    #[test]
    fn key_info_errors() {
        assert_eq!(
            crate::parse_key_info(
                Venue::Okx,
                br#"{"code":"50113","msg":"Invalid Sign","data":[]}"#
            ),
            Err(KeyInfoError::Venue {
                code: "50113".into(),
                message: "Invalid Sign".into()
            })
        );
        for bad in [
            &b"not json"[..],
            br#"{"code":"0","data":[]}"#,
            br#"{"code":"0","data":[{"ip":""}]}"#,
            br#"{"data":[]}"#,
        ] {
            assert!(matches!(
                crate::parse_key_info(Venue::Okx, bad),
                Err(KeyInfoError::Malformed(_))
            ));
        }
    }

    #[test]
    fn native_errors_use_okx_codes_and_statuses() {
        let table = [
            (DenialKind::Auth(AuthError::InvalidSignature), 401, "50113"),
            (DenialKind::Auth(AuthError::InvalidPassphrase), 401, "50105"),
            (DenialKind::Auth(AuthError::IpNotAllowed), 401, "50110"),
            (DenialKind::Auth(AuthError::UnknownApiKey), 401, "50111"),
            (DenialKind::Auth(AuthError::MissingApiKey), 401, "50103"),
            (
                DenialKind::Auth(AuthError::TimestampOutsideWindow),
                401,
                "50102",
            ),
            (DenialKind::PermissionDenied, 200, "50120"),
            (DenialKind::RateLimited { retry_after_s: 2 }, 429, "50011"),
            (DenialKind::BadRequest, 400, "51000"),
            (DenialKind::UnknownSymbol, 200, "51001"),
            (DenialKind::InsufficientFunds, 200, "51008"),
            (DenialKind::UnknownOrder, 200, "51603"),
        ];
        for (kind, status, code) in table {
            let r = crate::native_error(Venue::Okx, &Denial::new(kind.clone(), "rule x"), 0);
            assert_eq!(r.status, status, "{kind:?}");
            let v: Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(v["code"], code, "{kind:?}");
            assert_eq!(v["data"], json!([]));
            assert!(v["msg"].is_string());
        }
        let r = crate::native_error(
            Venue::Okx,
            &Denial::new(DenialKind::PermissionDenied, "denied by rule `no-withdraw`"),
            0,
        );
        assert!(r.body.contains("no-withdraw"));
    }

    #[test]
    fn timestamps_round_trip() {
        assert_eq!(
            format_timestamp(TS_MS).as_deref(),
            Some("2020-12-08T09:08:57.715Z")
        );
        assert_eq!(parse_timestamp("2020-12-08T09:08:57.715Z"), Some(TS_MS));
        assert_eq!(parse_timestamp("2020-12-08 09:08:57"), None);
    }
}
