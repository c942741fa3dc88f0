//! The simulated Binance: spot `/api/v3`, wallet `/sapi`, and the public `/fapi` + `/dapi`
//! exchange information ccxt reads in `load_markets` (no futures symbols are simulated).
//! Documented in `docs/sim/binance.md`.
//!
//! Keys carry Binance's own permission names, the boolean fields of
//! `GET /sapi/v1/account/apiRestrictions` (`enableReading`, `enableSpotAndMarginTrading`,
//! `enableWithdrawals`, `permitsUniversalTransfer`, ...).

use keyfence_exchange::params::Params;
use keyfence_exchange::path::canonical;
use keyfence_exchange::{
    Denial, DenialKind, NativeResponse, OrderError, OrderType, native_error, parse_orders,
};
use keyfence_types::{Side, Venue};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::state::{
    Kind, NewOrder, OrderRecord, OrderRef, SimError, SimKey, SimRequest, Status, Trade, VenueState,
};

/// Permissions (the venue's own names) that let a key read and trade spot.
pub(crate) const TRADING_PERMISSIONS: &[&str] = &["enableReading", "enableSpotAndMarginTrading"];

const READ: &str = "enableReading";
const TRADE: &str = "enableSpotAndMarginTrading";
const WITHDRAW: &str = "enableWithdrawals";
const UNIVERSAL_TRANSFER: &str = "permitsUniversalTransfer";

/// The boolean fields `apiRestrictions` always answers, true or false.
const RESTRICTION_FIELDS: &[&str] = &[
    "enableReading",
    "enableSpotAndMarginTrading",
    "enableWithdrawals",
    "enableInternalTransfer",
    "enableMargin",
    "enableFutures",
    "permitsUniversalTransfer",
    "enableVanillaOptions",
    "enableFixApiTrade",
    "enableFixReadOnly",
    "enablePortfolioMarginTrading",
];

/// Parameters every signed endpoint takes.
const SIGNED_PARAMS: &[&str] = &["timestamp", "recvWindow", "signature"];

pub(crate) fn split_symbol(symbol: &str) -> Option<(String, String)> {
    super::split_by_quote_suffix(symbol, &["USDT", "USDC", "FDUSD", "BTC", "ETH", "EUR"])
}

// ---------------------------------------------------------------------------------------------
// Answers

fn ok(body: Value) -> NativeResponse {
    NativeResponse::json(200, body)
}

fn error(status: u16, code: i64, msg: impl Into<String>) -> NativeResponse {
    NativeResponse::json(status, json!({ "code": code, "msg": msg.into() }))
}

fn denial(kind: DenialKind, message: &str, now_ms: i64) -> NativeResponse {
    native_error(Venue::Binance, &Denial::new(kind, message), now_ms)
}

fn missing(name: &str) -> NativeResponse {
    error(
        400,
        -1102,
        format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."),
    )
}

fn illegal(name: &str) -> NativeResponse {
    error(
        400,
        -1100,
        format!(
            "Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}(\\.[0-9]{{1,20}})?$'."
        ),
    )
}

fn duplicate() -> NativeResponse {
    error(400, -1101, "Duplicate values for a parameter detected.")
}

fn invalid_symbol() -> NativeResponse {
    error(400, -1121, "Invalid symbol.")
}

fn sim_error(e: &SimError, now_ms: i64) -> NativeResponse {
    match e {
        SimError::UnknownSymbol(_) => invalid_symbol(),
        SimError::InsufficientFunds => error(
            400,
            -2010,
            "Account has insufficient balance for requested action.",
        ),
        SimError::UnknownOrder | SimError::NotOpen => error(400, -2011, "Unknown order sent."),
        SimError::InvalidQuantity => error(400, -1013, "Invalid quantity."),
        SimError::InvalidPrice => error(400, -1013, "Invalid price."),
        SimError::UnknownAccount => denial(DenialKind::Internal, "", now_ms),
    }
}

fn order_error(e: &OrderError) -> NativeResponse {
    match e {
        OrderError::DuplicateParameter(_) => duplicate(),
        OrderError::MissingParameter(p) => missing(p),
        OrderError::InvalidParameter { name, .. } => match name.as_str() {
            "side" => error(400, -1117, "Invalid side."),
            "type" => error(400, -1116, "Invalid orderType."),
            n => illegal(n),
        },
        OrderError::Malformed(m) => error(400, -1102, m.clone()),
    }
}

/// Binance writes amounts as strings with eight decimals.
fn d8(d: Decimal) -> String {
    format!("{:.8}", d)
}

fn side_str(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

fn kind_str(k: Kind) -> &'static str {
    match k {
        Kind::Market => "MARKET",
        Kind::Limit => "LIMIT",
    }
}

fn status_str(s: Status) -> &'static str {
    match s {
        Status::New => "NEW",
        Status::Filled => "FILLED",
        Status::Canceled => "CANCELED",
    }
}

fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// `2019-10-12 11:12:02`, the wallet's time format.
fn wallet_time(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

// ---------------------------------------------------------------------------------------------
// Parameters

/// Refuse parameters the endpoint does not read (`-1104`), as Binance does.
fn only(params: &Params, allowed: &[&str], signed: bool) -> Result<(), NativeResponse> {
    let read = params
        .iter()
        .filter(|(k, _)| allowed.contains(k) || (signed && SIGNED_PARAMS.contains(k)))
        .count();
    if read == params.len() {
        Ok(())
    } else {
        Err(error(
            400,
            -1104,
            format!(
                "Not all sent parameters were read; read '{read}' parameter(s) but was sent '{}'.",
                params.len()
            ),
        ))
    }
}

fn get<'p>(params: &'p Params, name: &str) -> Result<&'p str, NativeResponse> {
    params
        .get(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| missing(name))
}

fn decimal(params: &Params, name: &str) -> Result<Decimal, NativeResponse> {
    let raw = get(params, name)?;
    let plain = raw.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    raw.parse::<Decimal>()
        .ok()
        .filter(|_| plain)
        .ok_or_else(|| illegal(name))
}

fn integer(params: &Params, name: &str) -> Result<Option<u64>, NativeResponse> {
    match params.get(name) {
        None => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| illegal(name)),
    }
}

fn order_ref(params: &Params) -> Result<OrderRef, NativeResponse> {
    if let Some(id) = integer(params, "orderId")? {
        return Ok(OrderRef::Id(id));
    }
    match params.get("origClientOrderId").filter(|v| !v.is_empty()) {
        Some(c) => Ok(OrderRef::ClientId(c.to_owned())),
        None => Err(error(
            400,
            -1102,
            "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Routing

pub(crate) fn handle(state: &mut VenueState, req: &SimRequest) -> NativeResponse {
    let now = req.now_ms;
    let Some(path) = canonical(&req.http.path) else {
        return denial(DenialKind::NotFound, "", now);
    };
    let method = req.http.method.to_ascii_uppercase();
    if let Some(resp) = public(state, &method, &path, req) {
        return resp;
    }
    let Some(permission) = private_permission(&method, &path) else {
        return denial(DenialKind::NotFound, "", now);
    };
    let key = match state.authenticate(req) {
        Ok(k) => k,
        Err(e) => return denial(DenialKind::Auth(e), "", now),
    };
    if let Some(p) = permission {
        if !key.has(p) {
            return denial(
                DenialKind::PermissionDenied,
                &format!("the key lacks `{p}`"),
                now,
            );
        }
        // Binance only lets a key withdraw when it is restricted to trusted IPs.
        if p == WITHDRAW && key.ip_allowlist.is_empty() {
            return denial(
                DenialKind::PermissionDenied,
                "withdrawals need an IP-restricted key",
                now,
            );
        }
    }
    let params = match Params::merge_query_and_body(&req.http.query, &req.http.body) {
        Ok(p) => p,
        Err(_) => return duplicate(),
    };
    let result = match (method.as_str(), path.as_str()) {
        ("GET", "/sapi/v1/account/apirestrictions") => api_restrictions(&key, &params),
        ("GET", "/api/v3/account") => account(state, &key, &params, now),
        ("POST", "/api/v3/order") => new_order(state, &key, req, &params, false),
        ("POST", "/api/v3/order/test") => new_order(state, &key, req, &params, true),
        ("DELETE", "/api/v3/order") => cancel_order(state, &key, &params, now),
        ("DELETE", "/api/v3/openorders") => cancel_open_orders(state, &key, &params, now),
        ("GET", "/api/v3/order") => query_order(state, &key, &params),
        ("GET", "/api/v3/openorders") => open_orders(state, &key, &params),
        ("GET", "/api/v3/allorders") => all_orders(state, &key, &params),
        ("GET", "/api/v3/mytrades") => my_trades(state, &key, &params),
        ("GET", "/sapi/v1/capital/config/getall") => coins(state, &key, &params),
        ("GET", "/sapi/v1/margin/allpairs" | "/sapi/v1/margin/isolated/allpairs") => {
            only(&params, &["symbol"], true).map(|()| ok(json!([])))
        }
        ("POST", "/sapi/v1/capital/withdraw/apply") => withdraw(state, &key, &params, now),
        ("GET", "/sapi/v1/capital/withdraw/history") => withdraw_history(state, &key, &params),
        ("GET", "/sapi/v1/capital/deposit/hisrec") => deposit_history(state, &key, &params),
        ("POST", "/sapi/v1/asset/transfer") => transfer(state, &key, &params, now),
        ("GET", "/sapi/v1/asset/transfer") => transfer_history(state, &key, &params),
        _ => Err(denial(DenialKind::NotFound, "", now)),
    };
    result.unwrap_or_else(|e| e)
}

/// The permission a signed endpoint needs: `None` if it is not served, `Some(None)` if any
/// valid key may call it.
fn private_permission(method: &str, path: &str) -> Option<Option<&'static str>> {
    Some(match (method, path) {
        ("GET", "/sapi/v1/account/apirestrictions") => None,
        (
            "GET",
            "/api/v3/account"
            | "/api/v3/order"
            | "/api/v3/openorders"
            | "/api/v3/allorders"
            | "/api/v3/mytrades"
            | "/sapi/v1/capital/config/getall"
            | "/sapi/v1/margin/allpairs"
            | "/sapi/v1/margin/isolated/allpairs"
            | "/sapi/v1/capital/withdraw/history"
            | "/sapi/v1/capital/deposit/hisrec"
            | "/sapi/v1/asset/transfer",
        ) => Some(READ),
        ("POST", "/api/v3/order" | "/api/v3/order/test") => Some(TRADE),
        ("DELETE", "/api/v3/order" | "/api/v3/openorders") => Some(TRADE),
        ("POST", "/sapi/v1/capital/withdraw/apply") => Some(WITHDRAW),
        ("POST", "/sapi/v1/asset/transfer") => Some(UNIVERSAL_TRANSFER),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Public market data

fn public(
    state: &VenueState,
    method: &str,
    path: &str,
    req: &SimRequest,
) -> Option<NativeResponse> {
    if method != "GET" {
        return None;
    }
    let now = req.now_ms;
    let answer = |f: &dyn Fn(&Params) -> Result<NativeResponse, NativeResponse>| {
        Some(match Params::parse(&req.http.query) {
            Ok(p) => f(&p).unwrap_or_else(|e| e),
            Err(_) => duplicate(),
        })
    };
    match path {
        "/api/v3/ping" | "/fapi/v1/ping" | "/dapi/v1/ping" => answer(&|p| {
            only(p, &[], false)?;
            Ok(ok(json!({})))
        }),
        "/api/v3/time" | "/fapi/v1/time" | "/dapi/v1/time" => answer(&|p| {
            only(p, &[], false)?;
            Ok(ok(json!({ "serverTime": now })))
        }),
        "/sapi/v1/system/status" => answer(&|_| Ok(ok(json!({"status": 0, "msg": "normal"})))),
        "/api/v3/exchangeinfo" => answer(&|p| exchange_info(state, p, now)),
        "/fapi/v1/exchangeinfo" => answer(&|p| {
            only(p, &[], false)?;
            Ok(ok(futures_info("U_MARGINED", now)))
        }),
        "/dapi/v1/exchangeinfo" => answer(&|p| {
            only(p, &[], false)?;
            Ok(ok(futures_info("COIN_MARGINED", now)))
        }),
        "/api/v3/ticker/price" => answer(&|p| ticker(state, p, now, price_ticker)),
        "/api/v3/ticker/24hr" => answer(&|p| ticker(state, p, now, day_ticker)),
        "/api/v3/ticker/bookticker" => answer(&|p| ticker(state, p, now, book_ticker)),
        _ => None,
    }
}

fn futures_info(kind: &str, now: i64) -> Value {
    json!({
        "timezone": "UTC",
        "serverTime": now,
        "futuresType": kind,
        "rateLimits": [],
        "exchangeFilters": [],
        "assets": [],
        "symbols": [],
    })
}

/// The symbols asked for by `symbol` or `symbols` (a JSON list), or every market.
fn selected_symbols(state: &VenueState, p: &Params) -> Result<Option<Vec<String>>, NativeResponse> {
    match (p.get("symbol"), p.get("symbols")) {
        (Some(_), Some(_)) => Err(error(
            400,
            -1128,
            "Combination of optional parameters invalid.",
        )),
        (Some(s), None) => {
            if state.markets.contains_key(s) {
                Ok(Some(vec![s.to_owned()]))
            } else {
                Err(invalid_symbol())
            }
        }
        (None, Some(list)) => {
            let v: Vec<String> = serde_json::from_str(list).map_err(|_| illegal("symbols"))?;
            if v.iter().any(|s| !state.markets.contains_key(s)) {
                return Err(invalid_symbol());
            }
            Ok(Some(v))
        }
        (None, None) => Ok(None),
    }
}

fn exchange_info(
    state: &VenueState,
    p: &Params,
    now: i64,
) -> Result<NativeResponse, NativeResponse> {
    only(
        p,
        &[
            "symbol",
            "symbols",
            "permissions",
            "showPermissionSets",
            "symbolStatus",
        ],
        false,
    )?;
    let wanted = selected_symbols(state, p)?;
    let symbols: Vec<Value> = state
        .markets
        .values()
        .filter(|m| wanted.as_ref().is_none_or(|w| w.contains(&m.symbol)))
        .map(|m| {
            json!({
                "symbol": m.symbol,
                "status": "TRADING",
                "baseAsset": m.base,
                "baseAssetPrecision": 8,
                "quoteAsset": m.quote,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "baseCommissionPrecision": 8,
                "quoteCommissionPrecision": 8,
                "orderTypes": ["LIMIT", "MARKET"],
                "icebergAllowed": false,
                "ocoAllowed": false,
                "otoAllowed": false,
                "opoAllowed": false,
                "quoteOrderQtyMarketAllowed": true,
                "allowTrailingStop": false,
                "cancelReplaceAllowed": false,
                "amendAllowed": false,
                "pegInstructionsAllowed": false,
                "isSpotTradingAllowed": true,
                "isMarginTradingAllowed": false,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": "0.00000001", "maxPrice": "10000000.00000000", "tickSize": "0.00000001"},
                    {"filterType": "LOT_SIZE", "minQty": "0.00000001", "maxQty": "9000000.00000000", "stepSize": "0.00000001"},
                    {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "9000000.00000000", "stepSize": "0.00000000"},
                    {"filterType": "NOTIONAL", "minNotional": "0.00000001", "applyMinToMarket": true, "maxNotional": "9000000000.00000000", "applyMaxToMarket": false, "avgPriceMins": 5},
                ],
                "permissions": [],
                "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
            })
        })
        .collect();
    Ok(ok(json!({
        "timezone": "UTC",
        "serverTime": now,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
        ],
        "exchangeFilters": [],
        "symbols": symbols,
    })))
}

fn price_ticker(symbol: &str, price: Decimal, _now: i64) -> Value {
    json!({ "symbol": symbol, "price": d8(price) })
}

fn book_ticker(symbol: &str, price: Decimal, _now: i64) -> Value {
    json!({
        "symbol": symbol,
        "bidPrice": d8(price),
        "bidQty": d8(Decimal::ONE),
        "askPrice": d8(price),
        "askQty": d8(Decimal::ONE),
    })
}

fn day_ticker(symbol: &str, price: Decimal, now: i64) -> Value {
    let p = d8(price);
    json!({
        "symbol": symbol,
        "priceChange": d8(Decimal::ZERO),
        "priceChangePercent": "0.000",
        "weightedAvgPrice": p,
        "prevClosePrice": p,
        "lastPrice": p,
        "lastQty": d8(Decimal::ZERO),
        "bidPrice": p,
        "bidQty": d8(Decimal::ONE),
        "askPrice": p,
        "askQty": d8(Decimal::ONE),
        "openPrice": p,
        "highPrice": p,
        "lowPrice": p,
        "volume": d8(Decimal::ZERO),
        "quoteVolume": d8(Decimal::ZERO),
        "openTime": now - 86_400_000,
        "closeTime": now,
        "firstId": -1,
        "lastId": -1,
        "count": 0,
    })
}

fn ticker(
    state: &VenueState,
    p: &Params,
    now: i64,
    render: fn(&str, Decimal, i64) -> Value,
) -> Result<NativeResponse, NativeResponse> {
    only(p, &["symbol", "symbols", "type", "symbolStatus"], false)?;
    let wanted = selected_symbols(state, p)?;
    let one = p.contains("symbol");
    let list: Vec<Value> = state
        .markets
        .values()
        .filter(|m| wanted.as_ref().is_none_or(|w| w.contains(&m.symbol)))
        .map(|m| render(&m.symbol, m.price, now))
        .collect();
    if one {
        list.into_iter().next().map(ok).ok_or_else(invalid_symbol)
    } else {
        Ok(ok(Value::Array(list)))
    }
}

// ---------------------------------------------------------------------------------------------
// Key and account

fn api_restrictions(key: &SimKey, p: &Params) -> Result<NativeResponse, NativeResponse> {
    only(p, &[], true)?;
    let mut body = serde_json::Map::new();
    body.insert("ipRestrict".into(), json!(!key.ip_allowlist.is_empty()));
    body.insert("createTime".into(), json!(ms(key.created)));
    for f in RESTRICTION_FIELDS {
        body.insert((*f).into(), json!(key.has(f)));
    }
    // Grants the sim was configured with beyond the usual fields are answered too.
    for extra in &key.permissions {
        if (extra.starts_with("enable") || extra.starts_with("permits"))
            && !body.contains_key(extra)
        {
            body.insert(extra.clone(), json!(true));
        }
    }
    if let Some(exp) = key.expires {
        body.insert("tradingAuthorityExpirationTime".into(), json!(ms(exp)));
    }
    Ok(ok(Value::Object(body)))
}

fn account(
    state: &VenueState,
    key: &SimKey,
    p: &Params,
    now: i64,
) -> Result<NativeResponse, NativeResponse> {
    only(p, &["omitZeroBalances"], true)?;
    let omit = match p.get("omitZeroBalances") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(illegal("omitZeroBalances")),
    };
    let acct = state
        .account(&key.account)
        .map_err(|e| sim_error(&e, now))?;
    let balances: Vec<Value> = acct
        .balances
        .iter()
        .filter(|(_, b)| !omit || b.free + b.locked > Decimal::ZERO)
        .map(|(asset, b)| json!({"asset": asset, "free": d8(b.free), "locked": d8(b.locked)}))
        .collect();
    Ok(ok(json!({
        "makerCommission": 0,
        "takerCommission": 0,
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {"maker": d8(Decimal::ZERO), "taker": d8(Decimal::ZERO), "buyer": d8(Decimal::ZERO), "seller": d8(Decimal::ZERO)},
        "canTrade": key.has(TRADE),
        "canWithdraw": key.has(WITHDRAW),
        "canDeposit": true,
        "brokered": false,
        "requireSelfTradePrevention": false,
        "preventSor": false,
        "updateTime": now,
        "accountType": "SPOT",
        "balances": balances,
        "permissions": ["SPOT"],
        "uid": 1000,
    })))
}

// ---------------------------------------------------------------------------------------------
// Orders

const ORDER_PARAMS: &[&str] = &[
    "symbol",
    "side",
    "type",
    "timeInForce",
    "quantity",
    "quoteOrderQty",
    "price",
    "newClientOrderId",
    "newOrderRespType",
    "selfTradePreventionMode",
    "strategyId",
    "strategyType",
    "computeCommissionRates",
];

fn order_json(o: &OrderRecord) -> Value {
    json!({
        "symbol": o.symbol,
        "orderId": o.id,
        "orderListId": -1,
        "clientOrderId": o.client_id,
        "price": d8(o.price.unwrap_or(Decimal::ZERO)),
        "origQty": d8(o.quantity),
        "executedQty": d8(o.filled),
        "cummulativeQuoteQty": d8(o.filled_quote),
        "status": status_str(o.status),
        "timeInForce": "GTC",
        "type": kind_str(o.kind),
        "side": side_str(o.side),
        "stopPrice": d8(Decimal::ZERO),
        "icebergQty": d8(Decimal::ZERO),
        "time": o.created_ms,
        "updateTime": o.updated_ms,
        "isWorking": true,
        "workingTime": o.created_ms,
        "origQuoteOrderQty": d8(Decimal::ZERO),
        "selfTradePreventionMode": "NONE",
    })
}

fn fill_json(t: &Trade) -> Value {
    json!({
        "price": d8(t.price),
        "qty": d8(t.quantity),
        "commission": d8(Decimal::ZERO),
        "commissionAsset": "BNB",
        "tradeId": t.id,
    })
}

fn new_order(
    state: &mut VenueState,
    key: &SimKey,
    req: &SimRequest,
    p: &Params,
    test: bool,
) -> Result<NativeResponse, NativeResponse> {
    let now = req.now_ms;
    only(p, ORDER_PARAMS, true)?;
    let parsed = parse_orders(Venue::Binance, &req.http).map_err(|e| order_error(&e))?;
    let Some(order) = parsed.into_iter().next() else {
        return Err(missing("symbol"));
    };
    let kind = match order.order_type {
        OrderType::Market => Kind::Market,
        OrderType::Limit => Kind::Limit,
        OrderType::Other(_) => {
            return Err(error(400, -1014, "Unsupported order combination."));
        }
    };
    if kind == Kind::Limit && !p.contains("timeInForce") {
        return Err(missing("timeInForce"));
    }
    if let Some(tif) = p.get("timeInForce")
        && !["GTC", "IOC", "FOK"].contains(&tif)
    {
        return Err(error(400, -1115, "Invalid timeInForce."));
    }
    if kind == Kind::Market && p.contains("price") {
        return Err(error(
            400,
            -1106,
            "Parameter 'price' sent when not required.",
        ));
    }
    if order.quantity.is_some() && order.quote_quantity.is_some() {
        return Err(error(
            400,
            -1106,
            "Parameter 'quoteOrderQty' sent when not required.",
        ));
    }
    if kind == Kind::Limit && order.quote_quantity.is_some() {
        return Err(error(
            400,
            -1106,
            "Parameter 'quoteOrderQty' sent when not required.",
        ));
    }
    let resp_type = match p.get("newOrderRespType") {
        None => "FULL",
        Some(t @ ("ACK" | "RESULT" | "FULL")) => t,
        Some(_) => return Err(error(400, -1100, "Invalid newOrderRespType.")),
    };
    if state.market(&order.symbol).is_err() {
        return Err(invalid_symbol());
    }
    if test {
        return Ok(ok(json!({})));
    }
    let new = NewOrder {
        symbol: order.symbol,
        side: order.side,
        kind,
        quantity: order.quantity,
        quote_quantity: order.quote_quantity,
        price: order.price,
        client_id: order.client_id,
    };
    let rec = state
        .place_order(&key.account, new, now)
        .map_err(|e| sim_error(&e, now))?;
    let ack = json!({
        "symbol": rec.symbol,
        "orderId": rec.id,
        "orderListId": -1,
        "clientOrderId": rec.client_id,
        "transactTime": now,
    });
    if resp_type == "ACK" {
        return Ok(ok(ack));
    }
    let mut body = order_json(&rec);
    if let (Some(obj), Some(ack)) = (body.as_object_mut(), ack.as_object()) {
        obj.extend(ack.clone());
        for k in ["stopPrice", "icebergQty", "time", "updateTime", "isWorking"] {
            obj.remove(k);
        }
        if resp_type == "FULL" {
            let fills: Vec<Value> = state
                .trades(&key.account, Some(&rec.symbol))
                .into_iter()
                .filter(|t| t.order_id == rec.id)
                .map(fill_json)
                .collect();
            obj.insert("fills".into(), Value::Array(fills));
        }
    }
    Ok(ok(body))
}

fn known_symbol(state: &VenueState, p: &Params) -> Result<String, NativeResponse> {
    let s = get(p, "symbol")?;
    if state.markets.contains_key(s) {
        Ok(s.to_owned())
    } else {
        Err(invalid_symbol())
    }
}

fn cancel_json(o: &OrderRecord, orig_client_id: &str, now: i64) -> Value {
    let mut v = order_json(o);
    if let Some(obj) = v.as_object_mut() {
        for k in [
            "stopPrice",
            "icebergQty",
            "time",
            "updateTime",
            "isWorking",
            "workingTime",
        ] {
            obj.remove(k);
        }
        obj.insert("origClientOrderId".into(), json!(orig_client_id));
        obj.insert("clientOrderId".into(), json!(format!("cancel-{}", o.id)));
        obj.insert("transactTime".into(), json!(now));
    }
    v
}

fn cancel_order(
    state: &mut VenueState,
    key: &SimKey,
    p: &Params,
    now: i64,
) -> Result<NativeResponse, NativeResponse> {
    only(
        p,
        &[
            "symbol",
            "orderId",
            "origClientOrderId",
            "newClientOrderId",
            "cancelRestrictions",
        ],
        true,
    )?;
    let symbol = known_symbol(state, p)?;
    let r = order_ref(p)?;
    let unknown = || error(400, -2011, "Unknown order sent.");
    let found = state.find_order(&key.account, &r).map_err(|_| unknown())?;
    if found.symbol != symbol {
        return Err(unknown());
    }
    let rec = state
        .cancel_order(&key.account, &r, now)
        .map_err(|_| unknown())?;
    Ok(ok(cancel_json(&rec, &rec.client_id, now)))
}

fn cancel_open_orders(
    state: &mut VenueState,
    key: &SimKey,
    p: &Params,
    now: i64,
) -> Result<NativeResponse, NativeResponse> {
    only(p, &["symbol"], true)?;
    let symbol = known_symbol(state, p)?;
    let ids: Vec<u64> = state
        .open_orders(&key.account, Some(&symbol))
        .iter()
        .map(|o| o.id)
        .collect();
    if ids.is_empty() {
        return Err(error(400, -2011, "Unknown order sent."));
    }
    let mut out = Vec::new();
    for id in ids {
        let rec = state
            .cancel_order(&key.account, &OrderRef::Id(id), now)
            .map_err(|e| sim_error(&e, now))?;
        out.push(cancel_json(&rec, &rec.client_id, now));
    }
    Ok(ok(Value::Array(out)))
}

fn query_order(
    state: &VenueState,
    key: &SimKey,
    p: &Params,
) -> Result<NativeResponse, NativeResponse> {
    only(p, &["symbol", "orderId", "origClientOrderId"], true)?;
    let symbol = known_symbol(state, p)?;
    let r = order_ref(p)?;
    let gone = || error(400, -2013, "Order does not exist.");
    let o = state.find_order(&key.account, &r).map_err(|_| gone())?;
    if o.symbol != symbol {
        return Err(gone());
    }
    Ok(ok(order_json(o)))
}

fn open_orders(
    state: &VenueState,
    key: &SimKey,
    p: &Params,
) -> Result<NativeResponse, NativeResponse> {
    only(p, &["symbol"], true)?;
    let symbol = match p.get("symbol") {
        Some(_) => Some(known_symbol(state, p)?),
        None => None,
    };
    let list: Vec<Value> = state
        .open_orders(&key.account, symbol.as_deref())
        .into_iter()
        .map(order_json)
        .collect();
    Ok(ok(Value::Array(list)))
}

fn all_orders(
    state: &VenueState,
    key: &SimKey,
    p: &Params,
) -> Result<NativeResponse, NativeResponse> {
    only(
        p,
        &["symbol", "orderId", "startTime", "endTime", "limit"],
        true,
    )?;
    let symbol = known_symbol(state, p)?;
    let from = integer(p, "orderId")?.unwrap_or(0);
    let limit = integer(p, "limit")?.unwrap_or(500).min(1000) as usize;
    let list: Vec<Value> = state
        .orders(&key.account, Some(&symbol))
        .into_iter()
        .filter(|o| o.id >= from)
        .take(limit)
        .map(order_json)
        .collect();
    Ok(ok(Value::Array(list)))
}

fn my_trades(
    state: &VenueState,
    key: &SimKey,
    p: &Params,
) -> Result<NativeResponse, NativeResponse> {
    only(
        p,
        &[
            "symbol",
            "orderId",
            "startTime",
            "endTime",
            "fromId",
            "limit",
        ],
        true,
    )?;
    let symbol = known_symbol(state, p)?;
    let order = integer(p, "orderId")?;
    let from = integer(p, "fromId")?.unwrap_or(0);
    let limit = integer(p, "limit")?.unwrap_or(500).min(1000) as usize;
    let list: Vec<Value> = state
        .trades(&key.account, Some(&symbol))
        .into_iter()
        .filter(|t| order.is_none_or(|o| t.order_id == o) && t.id >= from)
        .take(limit)
        .map(|t| {
            json!({
                "symbol": t.symbol,
                "id": t.id,
                "orderId": t.order_id,
                "orderListId": -1,
                "price": d8(t.price),
                "qty": d8(t.quantity),
                "quoteQty": d8(t.quote_quantity),
                "commission": d8(Decimal::ZERO),
                "commissionAsset": "BNB",
                "time": t.time_ms,
                "isBuyer": t.side == Side::Buy,
                "isMaker": false,
                "isBestMatch": true,
            })
        })
        .collect();
    Ok(ok(Value::Array(list)))
}

// ---------------------------------------------------------------------------------------------
// Wallet

fn coins(state: &VenueState, key: &SimKey, p: &Params) -> Result<NativeResponse, NativeResponse> {
    only(p, &[], true)?;
    let mut assets: std::collections::BTreeSet<String> = state
        .markets
        .values()
        .flat_map(|m| [m.base.clone(), m.quote.clone()])
        .collect();
    let balances = state
        .account(&key.account)
        .map(|a| a.balances.clone())
        .unwrap_or_default();
    assets.extend(balances.keys().cloned());
    let list: Vec<Value> = assets
        .iter()
        .map(|coin| {
            let b = balances.get(coin).cloned().unwrap_or_default();
            json!({
                "coin": coin,
                "name": coin,
                "depositAllEnable": true,
                "withdrawAllEnable": true,
                "free": d8(b.free),
                "locked": d8(b.locked),
                "freeze": "0",
                "withdrawing": "0",
                "ipoing": "0",
                "ipoable": "0",
                "storage": "0",
                "isLegalMoney": false,
                "trading": true,
                "networkList": [{
                    "network": coin,
                    "coin": coin,
                    "name": coin,
                    "withdrawIntegerMultiple": "0.00000001",
                    "isDefault": true,
                    "depositEnable": true,
                    "withdrawEnable": true,
                    "depositDesc": "",
                    "withdrawDesc": "",
                    "specialTips": "",
                    "resetAddressStatus": false,
                    "addressRegex": "",
                    "memoRegex": "",
                    "withdrawFee": "0",
                    "withdrawMin": "0.00000001",
                    "withdrawMax": "9999999999",
                    "minConfirm": 1,
                    "unLockConfirm": 1,
                    "sameAddress": false,
                    "estimatedArrivalTime": 1,
                    "busy": false,
                }],
            })
        })
        .collect();
    Ok(ok(Value::Array(list)))
}

fn withdraw(
    state: &mut VenueState,
    key: &SimKey,
    p: &Params,
    now: i64,
) -> Result<NativeResponse, NativeResponse> {
    only(
        p,
        &[
            "coin",
            "withdrawOrderId",
            "network",
            "address",
            "addressTag",
            "amount",
            "transactionFeeFlag",
            "name",
            "walletType",
        ],
        true,
    )?;
    let coin = get(p, "coin")?.to_owned();
    let address = get(p, "address")?.to_owned();
    let amount = decimal(p, "amount")?;
    let network = p.get("network").map(str::to_owned);
    let w = state
        .withdraw(&key.account, &coin, amount, &address, network, now)
        .map_err(|e| sim_error(&e, now))?;
    Ok(ok(json!({ "id": w.id.to_string() })))
}

fn withdraw_history(
    state: &VenueState,
    key: &SimKey,
    p: &Params,
) -> Result<NativeResponse, NativeResponse> {
    only(
        p,
        &[
            "coin",
            "withdrawOrderId",
            "status",
            "offset",
            "limit",
            "idList",
            "startTime",
            "endTime",
        ],
        true,
    )?;
    let coin = p.get("coin");
    let acct = state.account(&key.account).map_err(|e| sim_error(&e, 0))?;
    let list: Vec<Value> = acct
        .withdrawals
        .iter()
        .filter(|w| coin.is_none_or(|c| w.asset == c))
        .map(|w| {
            json!({
                "id": w.id.to_string(),
                "amount": d8(w.amount),
                "transactionFee": d8(Decimal::ZERO),
                "coin": w.asset,
                "status": 6,
                "address": w.address,
                "txId": format!("sim-tx-{}", w.id),
                "applyTime": wallet_time(w.time_ms),
                "completeTime": wallet_time(w.time_ms),
                "network": w.network.clone().unwrap_or_else(|| w.asset.clone()),
                "transferType": 0,
                "info": "",
                "confirmNo": 1,
                "walletType": 0,
                "txKey": "",
            })
        })
        .collect();
    Ok(ok(Value::Array(list)))
}

fn deposit_history(
    state: &VenueState,
    key: &SimKey,
    p: &Params,
) -> Result<NativeResponse, NativeResponse> {
    only(
        p,
        &[
            "includeSource",
            "coin",
            "status",
            "startTime",
            "endTime",
            "offset",
            "limit",
            "txId",
        ],
        true,
    )?;
    let coin = p.get("coin");
    let acct = state.account(&key.account).map_err(|e| sim_error(&e, 0))?;
    let list: Vec<Value> = acct
        .deposits
        .iter()
        .filter(|d| coin.is_none_or(|c| d.asset == c))
        .map(|d| {
            json!({
                "id": d.id.to_string(),
                "amount": d8(d.amount),
                "coin": d.asset,
                "network": d.asset,
                "status": 1,
                "address": "",
                "addressTag": "",
                "txId": format!("sim-deposit-{}", d.id),
                "insertTime": d.time_ms,
                "completeTime": d.time_ms,
                "transferType": 0,
                "confirmTimes": "1/1",
                "unlockConfirm": 0,
                "walletType": 0,
            })
        })
        .collect();
    Ok(ok(Value::Array(list)))
}

fn transfer(
    state: &mut VenueState,
    key: &SimKey,
    p: &Params,
    now: i64,
) -> Result<NativeResponse, NativeResponse> {
    only(
        p,
        &["type", "asset", "amount", "fromSymbol", "toSymbol"],
        true,
    )?;
    let kind = get(p, "type")?;
    let Some((from, to)) = kind
        .split_once('_')
        .filter(|(f, t)| !f.is_empty() && !t.is_empty())
    else {
        return Err(illegal("type"));
    };
    let asset = get(p, "asset")?.to_owned();
    let amount = decimal(p, "amount")?;
    let t = state
        .transfer(&key.account, &asset, amount, from, to, now)
        .map_err(|e| sim_error(&e, now))?;
    Ok(ok(json!({ "tranId": t.id })))
}

fn transfer_history(
    state: &VenueState,
    key: &SimKey,
    p: &Params,
) -> Result<NativeResponse, NativeResponse> {
    only(
        p,
        &[
            "type",
            "startTime",
            "endTime",
            "current",
            "size",
            "fromSymbol",
            "toSymbol",
        ],
        true,
    )?;
    let kind = get(p, "type")?;
    let acct = state.account(&key.account).map_err(|e| sim_error(&e, 0))?;
    let rows: Vec<Value> = acct
        .transfers
        .iter()
        .filter(|t| format!("{}_{}", t.from, t.to) == kind)
        .map(|t| {
            json!({
                "asset": t.asset,
                "amount": d8(t.amount),
                "type": kind,
                "status": "CONFIRMED",
                "tranId": t.id,
                "timestamp": t.time_ms,
            })
        })
        .collect();
    Ok(ok(json!({ "total": rows.len(), "rows": rows })))
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use keyfence_exchange::{Credential, HttpRequest, SecretString, SignContext, SigningKey, sign};
    use ring::rand::SystemRandom;

    use super::*;
    use crate::config::SimConfig;

    const CONFIG: &str = r#"
        [venues.binance]
        bind = "127.0.0.1:0"
        prices = { BTCUSDT = "60000" }
        [[accounts]]
        venue = "binance"
        name = "a"
        balances = { USDT = "1000", BTC = "1" }
        [[keys]]
        venue = "binance"
        account = "a"
        api_key = "trader"
        secret = "trader-secret"
        permissions = ["enableReading", "enableSpotAndMarginTrading"]
        created = "2026-01-02T03:04:05Z"
        expires = "2027-01-01T00:00:00Z"
        [[keys]]
        venue = "binance"
        account = "a"
        api_key = "reader"
        secret = "reader-secret"
        permissions = ["enableReading"]
        [[keys]]
        venue = "binance"
        account = "a"
        api_key = "far"
        secret = "far-secret"
        permissions = ["enableReading", "enableSpotAndMarginTrading", "enableWithdrawals"]
        ip_allowlist = ["10.1.2.3"]
        [[keys]]
        venue = "binance"
        account = "a"
        api_key = "unrestricted-withdrawer"
        secret = "w-secret"
        permissions = ["enableReading", "enableWithdrawals"]
    "#;
    const NOW: i64 = 1_780_000_000_000;

    fn state() -> VenueState {
        let cfg = SimConfig::parse(CONFIG, "test").unwrap();
        VenueState::from_config(Venue::Binance, &cfg).unwrap()
    }

    fn signed(api_key: &str, secret: &str, mut http: HttpRequest) -> HttpRequest {
        let rng = SystemRandom::new();
        let cred = Credential {
            api_key: api_key.into(),
            secret: Some(SecretString::new(secret.into())),
            private_key: None,
            passphrase: None,
        };
        let key = SigningKey::from_credential(Venue::Binance, &cred, &rng).unwrap();
        let ctx = SignContext {
            now_ms: NOW,
            nonce: None,
            host: "",
            rng: &rng,
        };
        sign(Venue::Binance, &key, &mut http, &ctx).unwrap();
        http
    }

    fn call(st: &mut VenueState, http: HttpRequest) -> (u16, Value) {
        let req = SimRequest {
            venue: Venue::Binance,
            http,
            peer: IpAddr::from([127, 0, 0, 1]),
            host: "127.0.0.1:1".into(),
            now_ms: NOW,
        };
        let r = handle(st, &req);
        let v = serde_json::from_str(&r.body).unwrap();
        (r.status, v)
    }

    fn trader(st: &mut VenueState, method: &str, target: &str) -> (u16, Value) {
        call(
            st,
            signed("trader", "trader-secret", HttpRequest::new(method, target)),
        )
    }

    #[test]
    fn key_info_answers_from_the_config() {
        let mut st = state();
        let (status, v) = trader(&mut st, "GET", "/sapi/v1/account/apiRestrictions");
        assert_eq!(status, 200);
        assert_eq!(v["enableSpotAndMarginTrading"], true);
        assert_eq!(v["enableWithdrawals"], false);
        assert_eq!(v["ipRestrict"], false);
        assert_eq!(v["createTime"], 1_767_323_045_000_i64);
        assert_eq!(v["tradingAuthorityExpirationTime"], 1_798_761_600_000_i64);
        let profile =
            keyfence_exchange::parse_key_info(Venue::Binance, v.to_string().as_bytes()).unwrap();
        assert_eq!(
            profile.raw_permissions,
            vec!["enableReading", "enableSpotAndMarginTrading"]
        );
    }

    #[test]
    fn orders_fill_rest_and_cancel() {
        let mut st = state();
        let (s, v) = trader(
            &mut st,
            "POST",
            "/api/v3/order?symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01",
        );
        assert_eq!((s, v["status"].as_str()), (200, Some("FILLED")));
        assert_eq!(v["cummulativeQuoteQty"], "600.00000000");
        assert_eq!(v["fills"][0]["price"], "60000.00000000");
        let (s, v) = trader(
            &mut st,
            "POST",
            "/api/v3/order?symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=30000",
        );
        assert_eq!((s, v["status"].as_str()), (200, Some("NEW")));
        let id = v["orderId"].as_u64().unwrap();
        let (_, open) = trader(&mut st, "GET", "/api/v3/openOrders?symbol=BTCUSDT");
        assert_eq!(open.as_array().map(Vec::len), Some(1));
        let (s, v) = trader(
            &mut st,
            "DELETE",
            &format!("/api/v3/order?symbol=BTCUSDT&orderId={id}"),
        );
        assert_eq!((s, v["status"].as_str()), (200, Some("CANCELED")));
        let (s, v) = trader(
            &mut st,
            "DELETE",
            &format!("/api/v3/order?symbol=BTCUSDT&orderId={id}"),
        );
        assert_eq!((s, v["code"].as_i64()), (400, Some(-2011)));
        let (_, acct) = trader(&mut st, "GET", "/api/v3/account");
        let usdt = acct["balances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["asset"] == "USDT")
            .unwrap()
            .clone();
        assert_eq!(usdt["free"], "400.00000000");
        assert_eq!(usdt["locked"], "0.00000000");
        let (_, trades) = trader(&mut st, "GET", "/api/v3/myTrades?symbol=BTCUSDT");
        assert_eq!(trades.as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn keys_are_refused_natively() {
        let mut st = state();
        let order = "/api/v3/order?symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01";
        let cases = [
            (
                signed("reader", "reader-secret", HttpRequest::new("POST", order)),
                403,
                -1002,
            ),
            (
                signed("trader", "wrong", HttpRequest::new("POST", order)),
                401,
                -1022,
            ),
            (
                signed("far", "far-secret", HttpRequest::new("POST", order)),
                401,
                -2015,
            ),
            (
                signed("nobody", "x", HttpRequest::new("POST", order)),
                401,
                -2015,
            ),
            (HttpRequest::new("POST", order), 401, -2014),
            (
                signed(
                    "unrestricted-withdrawer",
                    "w-secret",
                    HttpRequest::new(
                        "POST",
                        "/sapi/v1/capital/withdraw/apply?coin=USDT&address=x&amount=1",
                    ),
                ),
                403,
                -1002,
            ),
        ];
        for (http, status, code) in cases {
            let target = http.target();
            let (s, v) = call(&mut st, http);
            assert_eq!((s, v["code"].as_i64()), (status, Some(code)), "{target}");
        }
        assert!(st.account("a").unwrap().withdrawals.is_empty());
        assert!(st.account("a").unwrap().orders.is_empty());
    }

    #[test]
    fn malformed_requests_get_native_errors_and_never_panic() {
        let mut st = state();
        let cases: &[(&str, &str, &[u8], u16, i64)] = &[
            ("GET", "/api/v3/ticker/price?symbols=[nope", b"", 400, -1100),
            ("GET", "/api/v3/ticker/price?symbol=NOPE", b"", 400, -1121),
            (
                "GET",
                "/api/v3/ticker/price?symbol=BTCUSDT&symbol=BTCUSDT",
                b"",
                400,
                -1101,
            ),
            ("GET", "/api/v3/time?x=1", b"", 400, -1104),
            ("GET", "/api/v3/nothing", b"", 404, -1000),
            ("GET", "/%ff", b"", 404, -1000),
        ];
        for (method, target, body, status, code) in cases {
            let http = HttpRequest::new(method, target).with_body(body.to_vec());
            let (s, v) = call(&mut st, http);
            assert_eq!((s, v["code"].as_i64()), (*status, Some(*code)), "{target}");
        }
        let signed_cases: &[(&str, &str, u16, i64)] = &[
            (
                "POST",
                "/api/v3/order?symbol=BTCUSDT&side=BUY&type=MARKET",
                400,
                -1102,
            ),
            (
                "POST",
                "/api/v3/order?symbol=BTCUSDT&side=BUY&type=MARKET&quantity=abc",
                400,
                -1100,
            ),
            (
                "POST",
                "/api/v3/order?symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&x=1",
                400,
                -1104,
            ),
            (
                "POST",
                "/api/v3/order?symbol=NOPE&side=BUY&type=MARKET&quantity=1",
                400,
                -1121,
            ),
            (
                "POST",
                "/api/v3/order?symbol=BTCUSDT&side=BUY&type=MARKET&quantity=99999999999999999999999999999",
                400,
                -1100,
            ),
            (
                "POST",
                "/api/v3/order?symbol=BTCUSDT&side=BUY&type=MARKET&quantity=100",
                400,
                -2010,
            ),
            (
                "POST",
                "/api/v3/order?symbol=BTCUSDT&side=BUY&type=STOP_LOSS&quantity=1",
                400,
                -1014,
            ),
            (
                "POST",
                "/api/v3/order?symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=1",
                400,
                -1102,
            ),
            ("GET", "/api/v3/order?symbol=BTCUSDT", 400, -1102),
            ("GET", "/api/v3/order?symbol=BTCUSDT&orderId=-1", 400, -1100),
            (
                "POST",
                "/sapi/v1/asset/transfer?type=MAIN&asset=USDT&amount=1",
                403,
                -1002,
            ),
        ];
        for (method, target, status, code) in signed_cases {
            let (s, v) = trader(&mut st, method, target);
            assert_eq!((s, v["code"].as_i64()), (*status, Some(*code)), "{target}");
        }
        // A body that is not UTF-8 is refused as a bad signature, without a panic.
        let http = HttpRequest::new("POST", "/api/v3/order")
            .with_header("x-mbx-apikey", "trader")
            .with_body(vec![0xff, 0xfe, b'&']);
        let (s, _) = call(&mut st, http);
        assert_eq!(s, 401);
    }
}
