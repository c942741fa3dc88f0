//! The simulated OKX v5: public time, instruments and tickers; trading-account and
//! funding-account balances; place (single and batch), cancel and query orders; open orders,
//! order history and fills; withdrawals, deposit and withdrawal history; internal transfers;
//! currencies; and the key-introspection endpoint `GET /api/v5/account/config`.
//!
//! Key permissions are OKX's own names: `read_only`, `trade`, `withdraw`. Every OKX key can
//! read, so read endpoints need any one of them; trading and transfers need `trade`; the
//! withdrawal needs `withdraw`. A key without the permission gets HTTP 200 with code `50120`.
//! Answers follow OKX's shapes: `{"code":"0","msg":"","data":[...]}`; order operations answer
//! per item with `sCode`/`sMsg` and a top-level code `1` (all failed) or `2` (some failed).
//! Documented in `docs/sim/okx.md`.

use keyfence_exchange::params::{ParamError, Params, parse_json_strict};
use keyfence_exchange::path::canonical;
use keyfence_exchange::{Denial, DenialKind, NativeResponse, native_error};
use keyfence_types::Side;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::state::{
    Account, AlgoRecord, Kind, NewOrder, OrderRecord, OrderRef, SimError, SimKey, SimRequest,
    Status, Trade, VenueState,
};

/// Permissions (the venue's own names) that let a key read and trade spot.
pub(crate) const TRADING_PERMISSIONS: &[&str] = &["read_only", "trade"];

/// Any of these lets a key read (every OKX key can read).
const READ_PERMISSIONS: &[&str] = &["read_only", "trade", "withdraw"];

/// Most items one batch request may carry.
const MAX_BATCH: usize = 20;

/// Most algo orders one `cancel-algos` request may carry.
const MAX_ALGO_CANCEL: usize = 10;

/// Algo order types the simulator parks (OKX `ordType` of `order-algo`), as the gateway
/// reads them.
use keyfence_exchange::OKX_ALGO_TYPES as ALGO_TYPES;

pub(crate) fn split_symbol(symbol: &str) -> Option<(String, String)> {
    super::split_on_dash(symbol)
}

// ---------------------------------------------------------------------------------------------
// Answers

/// An answer in OKX's shape; the error variant is already rendered.
type Answer = Result<NativeResponse, NativeResponse>;

fn ok(data: Value) -> NativeResponse {
    NativeResponse::json(200, json!({ "code": "0", "msg": "", "data": data }))
}

fn fail(status: u16, code: &str, msg: impl Into<String>) -> NativeResponse {
    NativeResponse::json(
        status,
        json!({ "code": code, "msg": msg.into(), "data": [] }),
    )
}

fn missing(name: &str) -> NativeResponse {
    fail(400, "50014", format!("Parameter {name} can not be empty."))
}

fn bad_param(name: &str) -> NativeResponse {
    fail(400, "51000", format!("Parameter {name} error"))
}

fn denial(req: &SimRequest, kind: DenialKind, msg: &str) -> NativeResponse {
    native_error(req.venue, &Denial::new(kind, msg), req.now_ms)
}

fn num(d: Decimal) -> String {
    d.normalize().to_string()
}

// ---------------------------------------------------------------------------------------------
// Parameters

fn query(req: &SimRequest) -> Result<Params<'_>, NativeResponse> {
    Params::parse(&req.http.query).map_err(|e| match e {
        ParamError::Duplicate(k) => fail(400, "51000", format!("Parameter {k} is duplicated")),
        ParamError::Malformed(m) => fail(400, "51000", m),
    })
}

/// The query value, with empty strings as absent (python-okx omits them; others may not).
fn q<'a>(p: &'a Params, name: &str) -> Option<&'a str> {
    p.get(name).filter(|v| !v.is_empty())
}

fn body_json(req: &SimRequest) -> Result<Value, NativeResponse> {
    if req.http.body.iter().all(u8::is_ascii_whitespace) {
        return Err(fail(400, "50000", "Body can not be empty."));
    }
    parse_json_strict(&req.http.body).map_err(|e| match e {
        ParamError::Duplicate(k) => fail(400, "51000", format!("Parameter {k} is duplicated")),
        ParamError::Malformed(_) => fail(400, "50002", "JSON syntax error"),
    })
}

fn body_object(req: &SimRequest) -> Result<Map<String, Value>, NativeResponse> {
    match body_json(req)? {
        Value::Object(m) => Ok(m),
        _ => Err(fail(400, "50002", "JSON syntax error")),
    }
}

/// One body item (an object, or each element of a batch array).
fn body_items(req: &SimRequest, batch: bool) -> Result<Vec<Value>, NativeResponse> {
    match (body_json(req)?, batch) {
        (Value::Object(m), false) => Ok(vec![Value::Object(m)]),
        (Value::Array(a), true) if a.is_empty() => Err(missing("orders")),
        (Value::Array(a), true) if a.len() > MAX_BATCH => Err(fail(
            400,
            "51000",
            format!("Parameter count exceeds the limit {MAX_BATCH}"),
        )),
        (Value::Array(a), true) => Ok(a),
        _ => Err(fail(400, "50002", "JSON syntax error")),
    }
}

/// A string field: `null` and `""` are absent; numbers and booleans in their JSON spelling.
fn field(m: &Map<String, Value>, name: &str) -> Result<Option<String>, NativeResponse> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(bad_param(name)),
    }
}

fn required(m: &Map<String, Value>, name: &str) -> Result<String, NativeResponse> {
    field(m, name)?.ok_or_else(|| missing(name))
}

fn known(m: &Map<String, Value>, fields: &[&str]) -> Result<(), NativeResponse> {
    match m.keys().find(|k| !fields.contains(&k.as_str())) {
        Some(k) => Err(bad_param(k)),
        None => Ok(()),
    }
}

/// Largest size, price or amount accepted: keeps the ledger's products far from `Decimal`'s range.
const MAX_NUMBER: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0); // 10^12

fn positive(name: &str, v: &str) -> Result<Decimal, NativeResponse> {
    v.parse::<Decimal>()
        .ok()
        .filter(|d| *d > Decimal::ZERO && *d <= MAX_NUMBER)
        .ok_or_else(|| bad_param(name))
}

/// The `(code, msg)` OKX puts in `sCode`/`sMsg` or the top level for a ledger error.
fn sim_error(e: &SimError, ccy: &str) -> (&'static str, String) {
    match e {
        SimError::UnknownSymbol(s) => ("51001", format!("Instrument ID {s} does not exist.")),
        SimError::InsufficientFunds => (
            "51008",
            format!("Order failed. Insufficient {ccy} balance in account."),
        ),
        SimError::InvalidQuantity => ("51000", "Parameter sz error".into()),
        SimError::InvalidPrice => ("51000", "Parameter px error".into()),
        SimError::UnknownOrder => ("51603", "Order does not exist".into()),
        SimError::NotOpen => (
            "51400",
            "Order cancellation failed as the order has been filled, canceled or does not exist."
                .into(),
        ),
        SimError::UnknownAccount => ("50026", "System error, please try again later.".into()),
    }
}

/// The text of an already-rendered error answer, for per-item `sCode`/`sMsg`.
fn code_and_msg(r: &NativeResponse) -> (String, String) {
    let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    (
        v["code"].as_str().unwrap_or("50026").to_owned(),
        v["msg"].as_str().unwrap_or("").to_owned(),
    )
}

// ---------------------------------------------------------------------------------------------
// Routing

#[derive(Clone, Copy)]
enum Need {
    Read,
    Trade,
    Withdraw,
}

type Handler = fn(&mut VenueState, &SimRequest, &SimKey) -> Answer;

fn private_route(method: &str, path: &str) -> Option<(Need, Handler)> {
    let r: (Need, Handler) = match (method, path) {
        ("GET", "/api/v5/account/config") => (Need::Read, account_config),
        ("GET", "/api/v5/account/balance") => (Need::Read, account_balance),
        ("GET", "/api/v5/asset/balances") => (Need::Read, asset_balances),
        ("GET", "/api/v5/asset/currencies") => (Need::Read, currencies),
        ("GET", "/api/v5/trade/order") => (Need::Read, get_order),
        ("GET", "/api/v5/trade/orders-pending") => (Need::Read, orders_pending),
        ("GET", "/api/v5/trade/orders-history")
        | ("GET", "/api/v5/trade/orders-history-archive") => (Need::Read, orders_history),
        ("GET", "/api/v5/trade/fills") | ("GET", "/api/v5/trade/fills-history") => {
            (Need::Read, fills)
        }
        ("GET", "/api/v5/asset/withdrawal-history") => (Need::Read, withdrawal_history),
        ("GET", "/api/v5/asset/deposit-history") => (Need::Read, deposit_history),
        ("POST", "/api/v5/trade/order") => (Need::Trade, place_single),
        ("POST", "/api/v5/trade/batch-orders") => (Need::Trade, place_batch),
        ("POST", "/api/v5/trade/cancel-order") => (Need::Trade, cancel_single),
        ("POST", "/api/v5/trade/cancel-batch-orders") => (Need::Trade, cancel_batch),
        ("POST", "/api/v5/trade/order-algo") => (Need::Trade, place_algo),
        ("GET", "/api/v5/trade/orders-algo-pending") => (Need::Read, algos_pending),
        ("POST", "/api/v5/trade/cancel-algos") => (Need::Trade, cancel_algos),
        ("POST", "/api/v5/trade/cancel-advance-algos") => (Need::Trade, cancel_advance_algos),
        // Funds transfer needs the trade permission at OKX (UNVERIFIED).
        ("POST", "/api/v5/asset/transfer") => (Need::Trade, transfer),
        ("POST", "/api/v5/asset/withdrawal") => (Need::Withdraw, withdrawal),
        _ => return None,
    };
    Some(r)
}

pub(crate) fn handle(state: &mut VenueState, req: &SimRequest) -> NativeResponse {
    let Some(path) = canonical(&req.http.path) else {
        return denial(req, DenialKind::NotFound, "Not Found");
    };
    let method = req.http.method.to_ascii_uppercase();
    let public: Option<fn(&VenueState, &SimRequest) -> Answer> =
        match (method.as_str(), path.as_str()) {
            ("GET", "/api/v5/public/time") => Some(server_time),
            ("GET", "/api/v5/public/instruments") => Some(instruments),
            ("GET", "/api/v5/market/ticker") => Some(ticker),
            ("GET", "/api/v5/market/tickers") => Some(tickers),
            ("GET", "/api/v5/system/status") => Some(|_, _| Ok(ok(json!([])))),
            _ => None,
        };
    if let Some(f) = public {
        return f(state, req).unwrap_or_else(|e| e);
    }
    let Some((need, handler)) = private_route(&method, &path) else {
        return denial(req, DenialKind::NotFound, "Not Found");
    };
    let key = match state.authenticate(req) {
        Ok(k) => k,
        Err(e) => {
            let msg = e.to_string();
            return denial(req, DenialKind::Auth(e), &msg);
        }
    };
    let allowed = match need {
        Need::Read => READ_PERMISSIONS.iter().any(|p| key.has(p)),
        Need::Trade => key.has("trade"),
        Need::Withdraw => key.has("withdraw"),
    };
    if !allowed {
        return denial(
            req,
            DenialKind::PermissionDenied,
            "This API key doesn't have permission to use this function",
        );
    }
    handler(state, req, &key).unwrap_or_else(|e| e)
}

// ---------------------------------------------------------------------------------------------
// Public

fn server_time(_: &VenueState, req: &SimRequest) -> Answer {
    Ok(ok(json!([{ "ts": req.now_ms.to_string() }])))
}

/// `SPOT` lists the markets; the other instrument types exist but are empty here.
fn inst_type_is_spot(p: &Params, required: bool) -> Result<bool, NativeResponse> {
    match q(p, "instType") {
        Some("SPOT") => Ok(true),
        Some("MARGIN" | "SWAP" | "FUTURES" | "OPTION") => Ok(false),
        Some(_) => Err(bad_param("instType")),
        None if required => Err(missing("instType")),
        None => Ok(true),
    }
}

fn instruments(state: &VenueState, req: &SimRequest) -> Answer {
    let p = query(req)?;
    if !inst_type_is_spot(&p, true)? {
        return Ok(ok(json!([])));
    }
    let inst_id = q(&p, "instId");
    let data: Vec<Value> = state
        .markets
        .values()
        .filter(|m| inst_id.is_none_or(|i| i == m.symbol))
        .map(|m| {
            json!({
                "instType": "SPOT", "instId": m.symbol, "uly": "", "instFamily": "",
                "baseCcy": m.base, "quoteCcy": m.quote, "settleCcy": "", "ctVal": "",
                "ctMult": "", "ctValCcy": "", "optType": "", "stk": "", "listTime": "1606468572000",
                "expTime": "", "lever": "", "tickSz": "0.01", "lotSz": "0.00000001",
                "minSz": "0.00001", "ctType": "", "alias": "", "state": "live",
                "ruleType": "normal", "maxLmtSz": "10000000", "maxMktSz": "1000000",
                "maxLmtAmt": "20000000", "maxMktAmt": "1000000", "maxTwapSz": "10000000",
                "maxIcebergSz": "10000000", "maxTriggerSz": "10000000", "maxStopSz": "1000000",
                "category": "1"
            })
        })
        .collect();
    Ok(ok(Value::Array(data)))
}

fn ticker_json(m: &crate::state::Market, now_ms: i64) -> Value {
    let px = num(m.price);
    json!({
        "instType": "SPOT", "instId": m.symbol, "last": px, "lastSz": "0.01",
        "askPx": px, "askSz": "10", "bidPx": px, "bidSz": "10", "open24h": px,
        "high24h": px, "low24h": px, "volCcy24h": "0", "vol24h": "0",
        "sodUtc0": px, "sodUtc8": px, "ts": now_ms.to_string()
    })
}

fn ticker(state: &VenueState, req: &SimRequest) -> Answer {
    let p = query(req)?;
    let inst_id = q(&p, "instId").ok_or_else(|| missing("instId"))?;
    let m = state.market(inst_id).map_err(|e| {
        let (code, msg) = sim_error(&e, "");
        fail(200, code, msg)
    })?;
    Ok(ok(json!([ticker_json(m, req.now_ms)])))
}

fn tickers(state: &VenueState, req: &SimRequest) -> Answer {
    let p = query(req)?;
    if !inst_type_is_spot(&p, true)? {
        return Ok(ok(json!([])));
    }
    Ok(ok(Value::Array(
        state
            .markets
            .values()
            .map(|m| ticker_json(m, req.now_ms))
            .collect(),
    )))
}

// ---------------------------------------------------------------------------------------------
// Account

/// A stable pseudo user id for an account name (FNV-1a), 17 digits like OKX's.
fn uid(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{}", 10_000_000_000_000_000 + h % 90_000_000_000_000_000)
}

fn account_config(_: &mut VenueState, _: &SimRequest, key: &SimKey) -> Answer {
    let uid_s = uid(&key.account);
    let main_uid = if key.master {
        uid_s.clone()
    } else {
        uid(&format!("main-of-{}", key.account))
    };
    // OKX spells them in this order in its answer.
    let perm: Vec<&str> = ["read_only", "withdraw", "trade"]
        .into_iter()
        .filter(|p| key.has(p))
        .chain(
            key.permissions
                .iter()
                .map(String::as_str)
                .filter(|p| !["read_only", "withdraw", "trade"].contains(p)),
        )
        .collect();
    Ok(ok(json!([{
        "uid": uid_s, "mainUid": main_uid, "acctLv": "1", "acctStpMode": "cancel_maker",
        "posMode": "net_mode", "autoLoan": false, "greeksType": "PA", "level": "Lv1",
        "levelTmp": "", "ctIsoMode": "automatic", "mgnIsoMode": "automatic",
        "spotOffsetType": "", "roleType": "0", "traderInsts": [], "spotRoleType": "0",
        "spotTraderInsts": [], "opAuth": "0", "kycLv": "2",
        "label": key.label.clone().unwrap_or_default(),
        "ip": key.ip_allowlist.join(","),
        "perm": perm.join(","),
        "liquidationGear": "-1", "enableSpotBorrow": false, "spotBorrowAutoRepay": false,
        "type": if key.master { "0" } else { "1" },
        "settleCcy": "USDT", "settleCcyList": ["USD", "USDC", "USDG"]
    }])))
}

fn account_of<'a>(state: &'a VenueState, key: &SimKey) -> Result<&'a Account, NativeResponse> {
    state.account(&key.account).map_err(|e| {
        let (code, msg) = sim_error(&e, "");
        fail(500, code, msg)
    })
}

/// Requested currencies (`ccy=BTC,USDT`), or every currency with a balance.
fn wanted_ccys(p: &Params) -> Option<Vec<String>> {
    q(p, "ccy").map(|c| c.split(',').map(|s| s.trim().to_owned()).collect())
}

fn usd_value(state: &VenueState, ccy: &str, amount: Decimal) -> Decimal {
    if ["USDT", "USD", "USDC"].contains(&ccy) {
        return amount;
    }
    ["USDT", "USD", "USDC"]
        .iter()
        .find_map(|q| state.markets.get(&format!("{ccy}-{q}")))
        .map_or(Decimal::ZERO, |m| amount * m.price)
}

fn account_balance(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> Answer {
    let p = query(req)?;
    let acct = account_of(state, key)?;
    let want = wanted_ccys(&p);
    let now = req.now_ms.to_string();
    let mut total_usd = Decimal::ZERO;
    let mut details = Vec::new();
    for (ccy, b) in &acct.balances {
        let total = b.free + b.locked;
        let listed = match &want {
            Some(w) => w.contains(ccy),
            None => total > Decimal::ZERO,
        };
        if !listed {
            continue;
        }
        let usd = usd_value(state, ccy, total);
        total_usd += usd;
        details.push(json!({
            "ccy": ccy, "eq": num(total), "cashBal": num(total), "availBal": num(b.free),
            "availEq": num(b.free), "frozenBal": num(b.locked), "ordFrozen": num(b.locked),
            "disEq": num(usd), "eqUsd": num(usd), "fixedBal": "0", "upl": "0", "uTime": now,
            "borrowFroz": "", "crossLiab": "", "imr": "", "interest": "", "isoEq": "0",
            "isoLiab": "", "isoUpl": "0", "liab": "", "maxLoan": "", "mgnRatio": "", "mmr": "",
            "notionalLever": "", "stgyEq": "0", "twap": "0", "uplLiab": "", "spotInUseAmt": "",
            "spotBal": "", "openAvgPx": "", "accAvgPx": "", "spotUpl": "", "spotUplRatio": "",
            "totalPnl": "", "totalPnlRatio": ""
        }));
    }
    Ok(ok(json!([{
        "adjEq": "", "availEq": "", "borrowFroz": "", "details": details, "imr": "",
        "isoEq": "0", "mgnRatio": "", "mmr": "", "notionalUsd": "", "ordFroz": "",
        "totalEq": num(total_usd), "uTime": now, "upl": ""
    }])))
}

/// The simulator keeps one wallet per account: the funding view shows the same balances.
fn asset_balances(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> Answer {
    let p = query(req)?;
    let acct = account_of(state, key)?;
    let want = wanted_ccys(&p);
    let data: Vec<Value> = acct
        .balances
        .iter()
        .filter(|(ccy, b)| match &want {
            Some(w) => w.contains(ccy),
            None => b.free + b.locked > Decimal::ZERO,
        })
        .map(|(ccy, b)| {
            json!({
                "ccy": ccy, "bal": num(b.free + b.locked), "availBal": num(b.free),
                "frozenBal": num(b.locked)
            })
        })
        .collect();
    Ok(ok(Value::Array(data)))
}

fn currencies(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> Answer {
    let p = query(req)?;
    let want = wanted_ccys(&p);
    let mut ccys: std::collections::BTreeSet<String> = state
        .markets
        .values()
        .flat_map(|m| [m.base.clone(), m.quote.clone()])
        .collect();
    ccys.extend(account_of(state, key)?.balances.keys().cloned());
    let data: Vec<Value> = ccys
        .iter()
        .filter(|c| want.as_ref().is_none_or(|w| w.contains(c)))
        .map(|c| {
            let chain = if c == "BTC" {
                "BTC-Bitcoin".to_owned()
            } else {
                format!("{c}-ERC20")
            };
            json!({
                "ccy": c, "name": c, "chain": chain, "canDep": true, "canWd": true,
                "canInternal": true, "minDep": "0.00000001", "minWd": "0.0001",
                "minInternal": "0.0001", "maxWd": "1000000", "wdTickSz": "8",
                "wdQuota": "10000000", "usedWdQuota": "0", "fee": "0", "minFee": "0",
                "maxFee": "0", "mainNet": true, "needTag": false, "minDepArrivalConfirm": "1",
                "minWdUnlockConfirm": "1", "depQuotaFixed": "", "usedDepQuotaFixed": "",
                "depQuoteDailyLayer2": "", "logoLink": "", "ctAddr": "", "burningFeeRate": ""
            })
        })
        .collect();
    Ok(ok(Value::Array(data)))
}

// ---------------------------------------------------------------------------------------------
// Orders

/// The same list the exchange layer checks orders against.
const ORDER_FIELDS: &[&str] = keyfence_exchange::OKX_ORDER_FIELDS;

fn client_id(rec: &OrderRecord) -> String {
    // The ledger names orders placed without a client id `sim-<id>`; OKX answers "".
    if rec.client_id == format!("sim-{}", rec.id) {
        String::new()
    } else {
        rec.client_id.clone()
    }
}

fn order_json(state: &VenueState, rec: &OrderRecord) -> Value {
    let (base, quote) = split_symbol(&rec.symbol).unwrap_or_default();
    let last_trade: Option<&Trade> = state
        .account(&rec.account)
        .ok()
        .and_then(|a| a.trades.iter().rev().find(|t| t.order_id == rec.id));
    let state_s = match rec.status {
        Status::New => "live",
        Status::Filled => "filled",
        Status::Canceled => "canceled",
    };
    let side = match rec.side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    };
    let fee_ccy = match rec.side {
        Side::Buy => base,
        Side::Sell => quote.clone(),
    };
    let e = || Value::String(String::new());
    let s = |v: String| Value::String(v);
    let fields: Vec<(&str, Value)> = vec![
        ("instType", s("SPOT".into())),
        ("instId", s(rec.symbol.clone())),
        ("tgtCcy", e()),
        ("ccy", e()),
        ("ordId", s(rec.id.to_string())),
        ("clOrdId", s(client_id(rec))),
        ("tag", e()),
        ("px", s(rec.price.map(num).unwrap_or_default())),
        ("pxUsd", e()),
        ("pxVol", e()),
        ("pxType", e()),
        ("sz", s(num(rec.quantity))),
        ("pnl", s("0".into())),
        (
            "ordType",
            s(match rec.kind {
                Kind::Market => "market",
                Kind::Limit => "limit",
            }
            .into()),
        ),
        ("side", s(side.into())),
        ("posSide", s("net".into())),
        ("tdMode", s("cash".into())),
        ("accFillSz", s(num(rec.filled))),
        (
            "fillPx",
            s(last_trade.map(|t| num(t.price)).unwrap_or_default()),
        ),
        (
            "tradeId",
            s(last_trade.map(|t| t.id.to_string()).unwrap_or_default()),
        ),
        (
            "fillSz",
            s(last_trade.map(|t| num(t.quantity)).unwrap_or_default()),
        ),
        (
            "fillTime",
            s(last_trade
                .map(|t| t.time_ms.to_string())
                .unwrap_or_default()),
        ),
        ("avgPx", s(rec.average_price().map(num).unwrap_or_default())),
        ("state", s(state_s.into())),
        ("lever", e()),
        ("attachAlgoClOrdId", e()),
        ("tpTriggerPx", e()),
        ("tpTriggerPxType", e()),
        ("tpOrdPx", e()),
        ("slTriggerPx", e()),
        ("slTriggerPxType", e()),
        ("slOrdPx", e()),
        ("attachAlgoOrds", json!([])),
        ("linkedAlgoOrd", json!({ "algoId": "" })),
        ("stpId", e()),
        ("stpMode", s("cancel_maker".into())),
        ("feeCcy", s(fee_ccy)),
        ("fee", s("0".into())),
        ("rebateCcy", s(quote)),
        ("rebate", s("0".into())),
        ("source", e()),
        ("category", s("normal".into())),
        ("reduceOnly", s("false".into())),
        ("isTpLimit", s("false".into())),
        ("cancelSource", e()),
        ("cancelSourceReason", e()),
        ("quickMgnType", e()),
        ("algoClOrdId", e()),
        ("algoId", e()),
        ("tradeQuoteCcy", e()),
        ("uTime", s(rec.updated_ms.to_string())),
        ("cTime", s(rec.created_ms.to_string())),
    ];
    Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// Validate one order item and place it: the per-item answer, or `(sCode, sMsg)`.
fn place_item(
    state: &mut VenueState,
    req: &SimRequest,
    key: &SimKey,
    item: &Value,
) -> Result<Value, (String, String)> {
    let m = item
        .as_object()
        .ok_or_else(|| ("50002".to_owned(), "JSON syntax error".to_owned()))?;
    let rendered = |r: NativeResponse| code_and_msg(&r);
    known(m, ORDER_FIELDS).map_err(rendered)?;
    let inst_id = required(m, "instId").map_err(rendered)?;
    let td_mode = required(m, "tdMode").map_err(rendered)?;
    if td_mode != "cash" {
        // The simulator is spot only.
        return Err(rendered(bad_param("tdMode")));
    }
    let side = match required(m, "side").map_err(rendered)?.as_str() {
        "buy" => Side::Buy,
        "sell" => Side::Sell,
        _ => return Err(rendered(bad_param("side"))),
    };
    let kind = match required(m, "ordType").map_err(rendered)?.as_str() {
        "market" => Kind::Market,
        "limit" => Kind::Limit,
        _ => return Err(rendered(bad_param("ordType"))),
    };
    let sz = positive("sz", &required(m, "sz").map_err(rendered)?).map_err(rendered)?;
    let px = match field(m, "px").map_err(rendered)? {
        Some(p) => Some(positive("px", &p).map_err(rendered)?),
        None if kind == Kind::Limit => return Err(rendered(missing("px"))),
        None => None,
    };
    let cl = field(m, "clOrdId").map_err(rendered)?;
    if let Some(c) = &cl
        && (c.len() > 32 || !c.chars().all(|ch| ch.is_ascii_alphanumeric()))
    {
        return Err(rendered(bad_param("clOrdId")));
    }
    let tgt = field(m, "tgtCcy").map_err(rendered)?;
    let quote_sized = match tgt.as_deref() {
        None => kind == Kind::Market && side == Side::Buy,
        Some("quote_ccy") => kind == Kind::Market,
        Some("base_ccy") => false,
        Some(_) => return Err(rendered(bad_param("tgtCcy"))),
    };
    let market = state
        .market(&inst_id)
        .map_err(|e| {
            let (c, msg) = sim_error(&e, "");
            (c.to_owned(), msg)
        })?
        .clone();
    let (quantity, quote_quantity) = match (quote_sized, side) {
        (false, _) => (Some(sz), None),
        (true, Side::Buy) => (None, Some(sz)),
        // A quote-sized market sell: the base amount worth `sz` at the reference price.
        (true, Side::Sell) => (
            Some(
                (sz / market.price)
                    .round_dp_with_strategy(8, rust_decimal::RoundingStrategy::ToZero),
            ),
            None,
        ),
    };
    let pay = match side {
        Side::Buy => market.quote.clone(),
        Side::Sell => market.base.clone(),
    };
    let order = NewOrder {
        symbol: inst_id,
        side,
        kind,
        quantity,
        quote_quantity,
        price: px,
        client_id: cl,
    };
    let rec = state
        .place_order(&key.account, order, req.now_ms)
        .map_err(|e| {
            let (c, msg) = sim_error(&e, &pay);
            (c.to_owned(), msg)
        })?;
    Ok(json!({
        "clOrdId": client_id(&rec), "ordId": rec.id.to_string(),
        "tag": field(m, "tag").ok().flatten().unwrap_or_default(),
        "ts": req.now_ms.to_string(), "sCode": "0", "sMsg": "Order placed", "subCode": ""
    }))
}

/// OKX's answer to an order operation: per-item results, code 0 / 1 (all failed) / 2 (some).
fn order_op_answer(
    req: &SimRequest,
    results: Vec<Result<Value, (String, String)>>,
) -> NativeResponse {
    let failed = results.iter().filter(|r| r.is_err()).count();
    let (code, msg) = match failed {
        0 => ("0", ""),
        n if n == results.len() => ("1", "All operations failed"),
        _ => ("2", "Bulk operation partially succeeded"),
    };
    let data: Vec<Value> = results
        .into_iter()
        .map(|r| match r {
            Ok(v) => v,
            Err((c, m)) => json!({
                "clOrdId": "", "ordId": "", "tag": "", "ts": req.now_ms.to_string(),
                "sCode": c, "sMsg": m, "subCode": ""
            }),
        })
        .collect();
    NativeResponse::json(
        200,
        json!({
            "code": code, "msg": msg, "data": data,
            "inTime": req.now_ms.saturating_mul(1000).to_string(),
            "outTime": req.now_ms.saturating_mul(1000).to_string()
        }),
    )
}

fn place(state: &mut VenueState, req: &SimRequest, key: &SimKey, batch: bool) -> Answer {
    let items = body_items(req, batch)?;
    let results = items
        .iter()
        .map(|i| place_item(state, req, key, i))
        .collect();
    Ok(order_op_answer(req, results))
}

fn place_single(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> Answer {
    place(state, req, key, false)
}

fn place_batch(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> Answer {
    place(state, req, key, true)
}

fn order_ref(ord_id: Option<String>, cl: Option<String>) -> Result<OrderRef, NativeResponse> {
    match (ord_id, cl) {
        (Some(id), _) => id
            .parse::<u64>()
            .map(OrderRef::Id)
            .map_err(|_| bad_param("ordId")),
        (None, Some(c)) => Ok(OrderRef::ClientId(c)),
        (None, None) => Err(missing("ordId")),
    }
}

fn cancel_item(
    state: &mut VenueState,
    req: &SimRequest,
    key: &SimKey,
    item: &Value,
) -> Result<Value, (String, String)> {
    let m = item
        .as_object()
        .ok_or_else(|| ("50002".to_owned(), "JSON syntax error".to_owned()))?;
    let rendered = |r: NativeResponse| code_and_msg(&r);
    known(m, &["instId", "instIdCode", "ordId", "clOrdId"]).map_err(rendered)?;
    let inst_id = required(m, "instId").map_err(rendered)?;
    let r = order_ref(
        field(m, "ordId").map_err(rendered)?,
        field(m, "clOrdId").map_err(rendered)?,
    )
    .map_err(rendered)?;
    let not_found = || {
        (
            "51400".to_owned(),
            "Order cancellation failed as the order has been filled, canceled or does not exist."
                .to_owned(),
        )
    };
    let existing = state
        .find_order(&key.account, &r)
        .map_err(|_| not_found())?;
    if existing.symbol != inst_id {
        return Err(not_found());
    }
    match existing.status {
        Status::Canceled => {
            return Err((
                "51401".into(),
                "Order cancellation failed as the order has been canceled.".into(),
            ));
        }
        Status::Filled => {
            return Err((
                "51402".into(),
                "Order cancellation failed as the order has been completed.".into(),
            ));
        }
        Status::New => {}
    }
    let rec = state
        .cancel_order(&key.account, &r, req.now_ms)
        .map_err(|_| not_found())?;
    Ok(json!({
        "clOrdId": client_id(&rec), "ordId": rec.id.to_string(),
        "ts": req.now_ms.to_string(), "sCode": "0", "sMsg": "", "subCode": ""
    }))
}

fn cancel(state: &mut VenueState, req: &SimRequest, key: &SimKey, batch: bool) -> Answer {
    let items = body_items(req, batch)?;
    let results = items
        .iter()
        .map(|i| cancel_item(state, req, key, i))
        .collect();
    Ok(order_op_answer(req, results))
}

fn cancel_single(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> Answer {
    cancel(state, req, key, false)
}

fn cancel_batch(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> Answer {
    cancel(state, req, key, true)
}

// ---------------------------------------------------------------------------------------------
// Algo orders: parked until a trigger the simulator never reaches; listed and cancelled.

fn algo_json(a: &AlgoRecord) -> Value {
    let s = |v: String| Value::String(v);
    json!({
        "instType": "SPOT", "instId": a.symbol, "ccy": "", "ordId": "", "ordIdList": [],
        "algoId": a.id.to_string(), "clOrdId": "", "algoClOrdId": a.client_id,
        "sz": num(a.quantity), "closeFraction": "", "ordType": a.ord_type,
        "side": match a.side { Side::Buy => "buy", Side::Sell => "sell" },
        "posSide": "net", "tdMode": "cash", "tgtCcy": "",
        "state": if a.status == Status::New { "live" } else { "canceled" },
        "triggerPx": s(a.trigger_price.map(num).unwrap_or_default()),
        "triggerPxType": "last", "ordPx": "", "tag": "",
        "cTime": a.created_ms.to_string(), "uTime": a.updated_ms.to_string(),
    })
}

fn place_algo_item(
    state: &mut VenueState,
    req: &SimRequest,
    key: &SimKey,
) -> Result<Value, (String, String)> {
    let rendered = |r: NativeResponse| code_and_msg(&r);
    let m = body_object(req).map_err(rendered)?;
    known(&m, keyfence_exchange::OKX_ALGO_FIELDS).map_err(rendered)?;
    let inst_id = required(&m, "instId").map_err(rendered)?;
    required(&m, "tdMode").map_err(rendered)?;
    let side = match required(&m, "side").map_err(rendered)?.as_str() {
        "buy" => Side::Buy,
        "sell" => Side::Sell,
        _ => return Err(rendered(bad_param("side"))),
    };
    let ord_type = required(&m, "ordType").map_err(rendered)?;
    if !ALGO_TYPES.contains(&ord_type.as_str()) {
        return Err(rendered(bad_param("ordType")));
    }
    let sz = positive("sz", &required(&m, "sz").map_err(rendered)?).map_err(rendered)?;
    let mut trigger = None;
    for name in ["triggerPx", "slTriggerPx", "tpTriggerPx", "activePx"] {
        if let Some(p) = field(&m, name).map_err(rendered)? {
            trigger = Some(positive(name, &p).map_err(rendered)?);
            break;
        }
    }
    let algo = AlgoRecord {
        id: 0,
        client_id: field(&m, "algoClOrdId")
            .map_err(rendered)?
            .unwrap_or_default(),
        symbol: inst_id,
        side,
        ord_type,
        quantity: sz,
        trigger_price: trigger,
        status: Status::New,
        created_ms: req.now_ms,
        updated_ms: req.now_ms,
    };
    let placed = state.place_algo(&key.account, algo).map_err(|e| {
        let (c, m) = sim_error(&e, "");
        (c.to_owned(), m)
    })?;
    Ok(json!({
        "algoId": placed.id.to_string(), "clOrdId": "", "algoClOrdId": placed.client_id,
        "tag": "", "sCode": "0", "sMsg": ""
    }))
}

fn place_algo(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> Answer {
    let placed = place_algo_item(state, req, key);
    Ok(order_op_answer(req, vec![placed]))
}

/// `ordType` is required and names one type, or `conditional,oco` together.
fn algos_pending(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> Answer {
    let p = query(req)?;
    let wanted = q(&p, "ordType").ok_or_else(|| missing("ordType"))?;
    let types: Vec<&str> = wanted.split(',').collect();
    let valid = match types.as_slice() {
        [one] => ALGO_TYPES.contains(one),
        [a, b] => [*a, *b] == ["conditional", "oco"] || [*a, *b] == ["oco", "conditional"],
        _ => false,
    };
    if !valid {
        return Err(bad_param("ordType"));
    }
    let n = limit(&p)?;
    let data: Vec<Value> = state
        .open_algos(&key.account, &types, q(&p, "instId"))
        .into_iter()
        .rev()
        .take(n)
        .map(algo_json)
        .collect();
    Ok(ok(Value::Array(data)))
}

/// Algo types cancelled through `cancel-advance-algos` (OKX's older split, which the simulator
/// keeps: `cancel-algos` refuses them, and the other endpoint refuses the rest).
use keyfence_exchange::cancel::OKX_ADVANCE_ALGO_TYPES as ADVANCE_TYPES;

fn cancel_algo_item(
    state: &mut VenueState,
    req: &SimRequest,
    key: &SimKey,
    item: &Value,
    advance: bool,
) -> Result<Value, (String, String)> {
    let rendered = |r: NativeResponse| code_and_msg(&r);
    let m = item
        .as_object()
        .ok_or_else(|| ("50002".to_owned(), "JSON syntax error".to_owned()))?;
    known(m, &["instId", "algoId", "algoClOrdId"]).map_err(rendered)?;
    let inst_id = required(m, "instId").map_err(rendered)?;
    let id = required(m, "algoId")
        .map_err(rendered)?
        .parse::<u64>()
        .map_err(|_| rendered(bad_param("algoId")))?;
    let gone = || {
        (
            "51400".to_owned(),
            "Cancellation failed as the order does not exist or is no longer live.".to_owned(),
        )
    };
    let ord_type = state
        .account(&key.account)
        .ok()
        .and_then(|a| a.algos.iter().find(|o| o.id == id))
        .map(|o| o.ord_type.clone())
        .ok_or_else(gone)?;
    if ADVANCE_TYPES.contains(&ord_type.as_str()) != advance {
        return Err((
            "51000".to_owned(),
            format!("Parameter algoId error: a {ord_type} order is not cancelled here"),
        ));
    }
    let rec = state
        .cancel_algo(&key.account, id, &inst_id, req.now_ms)
        .map_err(|_| gone())?;
    Ok(
        json!({"algoId": rec.id.to_string(), "algoClOrdId": rec.client_id, "sCode": "0", "sMsg": ""}),
    )
}

fn cancel_algos(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> Answer {
    cancel_algos_on(state, req, key, false)
}

fn cancel_advance_algos(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> Answer {
    cancel_algos_on(state, req, key, true)
}

fn cancel_algos_on(
    state: &mut VenueState,
    req: &SimRequest,
    key: &SimKey,
    advance: bool,
) -> Answer {
    let items = match body_json(req)? {
        Value::Array(a) if a.is_empty() => return Err(missing("algoId")),
        Value::Array(a) if a.len() > MAX_ALGO_CANCEL => {
            return Err(fail(
                400,
                "51000",
                format!("At most {MAX_ALGO_CANCEL} algo orders can be canceled per request"),
            ));
        }
        Value::Array(a) => a,
        _ => return Err(fail(400, "50002", "JSON syntax error")),
    };
    let results = items
        .iter()
        .map(|i| cancel_algo_item(state, req, key, i, advance))
        .collect();
    Ok(order_op_answer(req, results))
}

fn get_order(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> Answer {
    let p = query(req)?;
    let inst_id = q(&p, "instId").ok_or_else(|| missing("instId"))?;
    let r = order_ref(
        q(&p, "ordId").map(str::to_owned),
        q(&p, "clOrdId").map(str::to_owned),
    )?;
    match state.find_order(&key.account, &r) {
        Ok(rec) if rec.symbol == inst_id => Ok(ok(json!([order_json(state, rec)]))),
        _ => Err(fail(200, "51603", "Order does not exist")),
    }
}

/// The page size OKX allows (default and most: 100).
fn limit(p: &Params) -> Result<usize, NativeResponse> {
    match q(p, "limit") {
        None => Ok(100),
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| bad_param("limit")),
    }
}

fn list_orders(
    state: &VenueState,
    p: &Params,
    key: &SimKey,
    open: bool,
    inst_type_required: bool,
) -> Answer {
    if !inst_type_is_spot(p, inst_type_required)? {
        return Ok(ok(json!([])));
    }
    let n = limit(p)?;
    let ord_type = q(p, "ordType");
    let want_state = q(p, "state");
    let list = if open {
        state.open_orders(&key.account, q(p, "instId"))
    } else {
        state
            .orders(&key.account, q(p, "instId"))
            .into_iter()
            .filter(|o| o.status != Status::New)
            .collect()
    };
    let data: Vec<Value> = list
        .into_iter()
        .rev()
        .map(|o| order_json(state, o))
        .filter(|v| ord_type.is_none_or(|t| v["ordType"] == t))
        .filter(|v| want_state.is_none_or(|s| v["state"] == s))
        .take(n)
        .collect();
    Ok(ok(Value::Array(data)))
}

fn orders_pending(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> Answer {
    list_orders(state, &query(req)?, key, true, false)
}

fn orders_history(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> Answer {
    list_orders(state, &query(req)?, key, false, true)
}

fn fills(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> Answer {
    let p = query(req)?;
    if !inst_type_is_spot(&p, false)? {
        return Ok(ok(json!([])));
    }
    let n = limit(&p)?;
    let ord_id = q(&p, "ordId");
    let data: Vec<Value> = state
        .trades(&key.account, q(&p, "instId"))
        .into_iter()
        .rev()
        .filter(|t| ord_id.is_none_or(|o| o == t.order_id.to_string()))
        .take(n)
        .map(|t| {
            let (base, quote) = split_symbol(&t.symbol).unwrap_or_default();
            let cl = state
                .find_order(&key.account, &OrderRef::Id(t.order_id))
                .map(client_id)
                .unwrap_or_default();
            let (side, fee_ccy) = match t.side {
                Side::Buy => ("buy", base),
                Side::Sell => ("sell", quote),
            };
            json!({
                "instType": "SPOT", "instId": t.symbol, "tradeId": t.id.to_string(),
                "ordId": t.order_id.to_string(), "clOrdId": cl, "billId": t.id.to_string(),
                "subType": "1", "tag": "", "fillPx": num(t.price), "fillSz": num(t.quantity),
                "fillIdxPx": "", "fillPnl": "0", "fillPxVol": "", "fillPxUsd": "",
                "fillMarkVol": "", "fillFwdPx": "", "fillMarkPx": "", "side": side,
                "posSide": "net", "execType": "T", "feeCcy": fee_ccy, "fee": "0",
                "ts": t.time_ms.to_string(), "fillTime": t.time_ms.to_string(),
                "feeRate": "0", "tradeQuoteCcy": ""
            })
        })
        .collect();
    Ok(ok(Value::Array(data)))
}

// ---------------------------------------------------------------------------------------------
// Funding

fn withdrawal(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> Answer {
    let m = body_object(req)?;
    known(
        &m,
        &[
            "ccy",
            "amt",
            "dest",
            "toAddr",
            "toAddrType",
            "chain",
            "areaCode",
            "clientId",
            "rcvrInfo",
            "fee",
        ],
    )?;
    let ccy = required(&m, "ccy")?;
    let amt = positive("amt", &required(&m, "amt")?)?;
    let dest = required(&m, "dest")?;
    if dest != "3" && dest != "4" {
        return Err(bad_param("dest"));
    }
    let to_addr = required(&m, "toAddr")?;
    let chain = field(&m, "chain")?;
    let client = field(&m, "clientId")?.unwrap_or_default();
    let w = state
        .withdraw(&key.account, &ccy, amt, &to_addr, chain.clone(), req.now_ms)
        .map_err(|e| match e {
            SimError::InsufficientFunds => fail(200, "58350", "Insufficient balance."),
            other => {
                let (c, msg) = sim_error(&other, &ccy);
                fail(200, c, msg)
            }
        })?;
    Ok(ok(json!([{
        "amt": num(w.amount), "wdId": w.id.to_string(), "ccy": w.asset,
        "clientId": client, "chain": chain.unwrap_or_default()
    }])))
}

fn withdrawal_history(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> Answer {
    let p = query(req)?;
    let n = limit(&p)?;
    let ccy = q(&p, "ccy");
    let wd_id = q(&p, "wdId");
    let data: Vec<Value> = account_of(state, key)?
        .withdrawals
        .iter()
        .rev()
        .filter(|w| ccy.is_none_or(|c| c == w.asset))
        .filter(|w| wd_id.is_none_or(|i| i == w.id.to_string()))
        .take(n)
        .map(|w| {
            json!({
                "chain": w.network.clone().unwrap_or_default(), "fee": "0", "feeCcy": w.asset,
                "ccy": w.asset, "clientId": "", "amt": num(w.amount), "txId": "",
                "from": "", "areaCodeFrom": "", "to": w.address, "areaCodeTo": "",
                "toAddrType": "1", "state": "2", "ts": w.time_ms.to_string(),
                "nonTradableAsset": false, "wdId": w.id.to_string(), "addrEx": null,
                "tag": "", "pmtId": "", "memo": ""
            })
        })
        .collect();
    Ok(ok(Value::Array(data)))
}

fn deposit_history(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> Answer {
    let p = query(req)?;
    let n = limit(&p)?;
    let ccy = q(&p, "ccy");
    let data: Vec<Value> = account_of(state, key)?
        .deposits
        .iter()
        .rev()
        .filter(|d| ccy.is_none_or(|c| c == d.asset))
        .take(n)
        .map(|d| {
            json!({
                "actualDepBlkConfirm": "2", "amt": num(d.amount), "areaCodeFrom": "",
                "ccy": d.asset, "chain": "", "depId": d.id.to_string(), "from": "",
                "fromWdId": "", "state": "2", "to": "", "ts": d.time_ms.to_string(),
                "txId": ""
            })
        })
        .collect();
    Ok(ok(Value::Array(data)))
}

fn wallet_name(code: &str) -> Option<&'static str> {
    match code {
        "6" => Some("funding"),
        "18" => Some("trading"),
        _ => None,
    }
}

fn transfer(state: &mut VenueState, req: &SimRequest, key: &SimKey) -> Answer {
    let m = body_object(req)?;
    known(
        &m,
        &[
            "ccy",
            "amt",
            "from",
            "to",
            "type",
            "subAcct",
            "loanTrans",
            "omitPosRisk",
            "clientId",
            "instId",
            "toInstId",
        ],
    )?;
    let ccy = required(&m, "ccy")?;
    let amt = positive("amt", &required(&m, "amt")?)?;
    let from_code = required(&m, "from")?;
    let to_code = required(&m, "to")?;
    let from = wallet_name(&from_code).ok_or_else(|| bad_param("from"))?;
    let to_wallet = wallet_name(&to_code).ok_or_else(|| bad_param("to"))?;
    let kind = field(&m, "type")?.unwrap_or_else(|| "0".into());
    let sub = field(&m, "subAcct")?;
    let (from_s, to_s) = match kind.as_str() {
        "0" if from == to_wallet => return Err(bad_param("to")),
        "0" => (from.to_owned(), to_wallet.to_owned()),
        "1" | "2" | "3" | "4" => {
            let s = sub.ok_or_else(|| missing("subAcct"))?;
            match kind.as_str() {
                "1" => (from.to_owned(), format!("sub:{s}:{to_wallet}")),
                _ => (format!("sub:{s}:{from}"), to_wallet.to_owned()),
            }
        }
        _ => return Err(bad_param("type")),
    };
    let client = field(&m, "clientId")?.unwrap_or_default();
    let t = state
        .transfer(&key.account, &ccy, amt, &from_s, &to_s, req.now_ms)
        .map_err(|e| match e {
            SimError::InsufficientFunds => fail(200, "58350", "Insufficient balance."),
            other => {
                let (c, msg) = sim_error(&other, &ccy);
                fail(200, c, msg)
            }
        })?;
    Ok(ok(json!([{
        "transId": t.id.to_string(), "ccy": t.asset, "clientId": client,
        "from": from_code, "amt": num(t.amount), "to": to_code
    }])))
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use keyfence_exchange::{Credential, HttpRequest, SecretString, SignContext, SigningKey, sign};
    use keyfence_types::Venue;
    use ring::rand::SystemRandom;

    use super::*;
    use crate::SimConfig;

    const NOW: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    const CONFIG: &str = r#"
        [venues.okx]
        bind = "127.0.0.1:0"
        prices = { "BTC-USDT" = "60000", "ETH-USDT" = "3000" }

        [[accounts]]
        venue = "okx"
        name = "okx-unit"
        balances = { USDT = "100000", BTC = "2" }

        [[keys]]
        venue = "okx"
        account = "okx-unit"
        api_key = "trader"
        secret = "trader-secret"
        passphrase = "Pass1"
        permissions = ["read_only", "trade"]
        label = "unit trader"

        [[keys]]
        venue = "okx"
        account = "okx-unit"
        api_key = "reader"
        secret = "reader-secret"
        passphrase = "Pass1"
        permissions = ["read_only"]
        master = false

        [[keys]]
        venue = "okx"
        account = "okx-unit"
        api_key = "withdrawer"
        secret = "withdrawer-secret"
        passphrase = "Pass1"
        permissions = ["read_only", "withdraw"]

        [[keys]]
        venue = "okx"
        account = "okx-unit"
        api_key = "fenced"
        secret = "fenced-secret"
        passphrase = "Pass1"
        permissions = ["read_only", "trade"]
        ip_allowlist = ["10.1.2.3"]
    "#;

    fn state() -> VenueState {
        let cfg = SimConfig::parse(CONFIG, "unit").unwrap();
        VenueState::from_config(Venue::Okx, &cfg).unwrap()
    }

    fn request(key: Option<(&str, &str)>, method: &str, target: &str, body: &str) -> SimRequest {
        let mut http = HttpRequest::new(method, target).with_body(body);
        if let Some((api_key, secret)) = key {
            let rng = SystemRandom::new();
            let cred = Credential {
                api_key: api_key.into(),
                secret: Some(SecretString::new(secret.into())),
                private_key: None,
                passphrase: Some(SecretString::new("Pass1".into())),
            };
            let k = SigningKey::from_credential(Venue::Okx, &cred, &rng).unwrap();
            let ctx = SignContext {
                now_ms: NOW,
                nonce: None,
                host: "127.0.0.1",
                rng: &rng,
            };
            sign(Venue::Okx, &k, &mut http, &ctx).unwrap();
        }
        SimRequest {
            venue: Venue::Okx,
            http,
            peer: IpAddr::from([127, 0, 0, 1]),
            host: "127.0.0.1:1".into(),
            now_ms: NOW,
        }
    }

    fn call(
        st: &mut VenueState,
        key: Option<(&str, &str)>,
        method: &str,
        target: &str,
        body: &str,
    ) -> (u16, Value) {
        let r = handle(st, &request(key, method, target, body));
        (r.status, serde_json::from_str(&r.body).unwrap())
    }

    const TRADER: Option<(&str, &str)> = Some(("trader", "trader-secret"));

    #[test]
    fn public_endpoints_answer_without_a_key() {
        let mut st = state();
        let (s, v) = call(&mut st, None, "GET", "/api/v5/public/time", "");
        assert_eq!((s, v["code"].as_str()), (200, Some("0")));
        assert_eq!(v["data"][0]["ts"], NOW.to_string());
        let (_, v) = call(
            &mut st,
            None,
            "GET",
            "/api/v5/public/instruments?instType=SPOT",
            "",
        );
        assert_eq!(v["data"].as_array().unwrap().len(), 2);
        assert_eq!(v["data"][0]["instId"], "BTC-USDT");
        assert_eq!(v["data"][0]["baseCcy"], "BTC");
        let (_, v) = call(
            &mut st,
            None,
            "GET",
            "/api/v5/public/instruments?instType=SWAP",
            "",
        );
        assert_eq!(v["data"], json!([]));
        let (s, v) = call(&mut st, None, "GET", "/api/v5/public/instruments", "");
        assert_eq!((s, v["code"].as_str()), (400, Some("50014")));
        let (_, v) = call(
            &mut st,
            None,
            "GET",
            "/api/v5/market/ticker?instId=BTC-USDT",
            "",
        );
        assert_eq!(v["data"][0]["last"], "60000");
        let (_, v) = call(
            &mut st,
            None,
            "GET",
            "/api/v5/market/ticker?instId=DOGE-USDT",
            "",
        );
        assert_eq!(v["code"], "51001");
        let (s, _) = call(&mut st, None, "GET", "/api/v5/nope", "");
        assert_eq!(s, 404);
    }

    #[test]
    fn auth_failures_are_okx_native() {
        let mut st = state();
        let (s, v) = call(&mut st, None, "GET", "/api/v5/account/balance", "");
        assert_eq!((s, v["code"].as_str()), (401, Some("50103")));
        let (s, v) = call(
            &mut st,
            Some(("trader", "wrong")),
            "GET",
            "/api/v5/account/balance",
            "",
        );
        assert_eq!((s, v["code"].as_str()), (401, Some("50113")));
        let (s, v) = call(
            &mut st,
            Some(("fenced", "fenced-secret")),
            "GET",
            "/api/v5/account/balance",
            "",
        );
        assert_eq!((s, v["code"].as_str()), (401, Some("50110")));
        let mut stale = request(TRADER, "GET", "/api/v5/account/balance", "");
        stale.now_ms += 31_000;
        let r = handle(&mut st, &stale);
        assert_eq!(r.status, 401);
        assert!(r.body.contains("50102"));
    }

    #[test]
    fn key_info_answers_from_the_config() {
        let mut st = state();
        let (_, v) = call(&mut st, TRADER, "GET", "/api/v5/account/config", "");
        let d = &v["data"][0];
        assert_eq!(d["perm"], "read_only,trade");
        assert_eq!(d["ip"], "");
        assert_eq!(d["label"], "unit trader");
        assert_eq!(d["uid"], d["mainUid"]);
        let p = keyfence_exchange::parse_key_info(Venue::Okx, v.to_string().as_bytes()).unwrap();
        assert_eq!(p.raw_permissions, ["read_only", "trade"]);
        assert_eq!(p.master_account, Some(true));
        let (_, v) = call(
            &mut st,
            Some(("reader", "reader-secret")),
            "GET",
            "/api/v5/account/config",
            "",
        );
        assert_eq!(v["data"][0]["perm"], "read_only");
        assert_ne!(v["data"][0]["uid"], v["data"][0]["mainUid"]);
    }

    #[test]
    fn orders_fill_rest_and_cancel() {
        let mut st = state();
        let (_, v) = call(
            &mut st,
            TRADER,
            "POST",
            "/api/v5/trade/order",
            r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"0.01","tgtCcy":"base_ccy"}"#,
        );
        assert_eq!(v["code"], "0", "{v}");
        let market_id = v["data"][0]["ordId"].as_str().unwrap().to_owned();
        // Quote-sized by default: 600 USDT buys 0.01 BTC.
        let (_, v) = call(
            &mut st,
            TRADER,
            "POST",
            "/api/v5/trade/order",
            r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"600","px":"","clOrdId":""}"#,
        );
        assert_eq!(v["code"], "0", "{v}");
        let (_, v) = call(
            &mut st,
            TRADER,
            "POST",
            "/api/v5/trade/batch-orders",
            r#"[{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"0.001","px":"30000","clOrdId":"rest1"},
                {"instId":"DOGE-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"1","px":"1"}]"#,
        );
        assert_eq!(v["code"], "2", "{v}");
        assert_eq!(v["data"][0]["sCode"], "0");
        assert_eq!(v["data"][1]["sCode"], "51001");
        let limit_id = v["data"][0]["ordId"].as_str().unwrap().to_owned();

        let (_, v) = call(
            &mut st,
            TRADER,
            "GET",
            &format!("/api/v5/trade/order?instId=BTC-USDT&ordId={market_id}"),
            "",
        );
        assert_eq!(v["data"][0]["state"], "filled");
        assert_eq!(v["data"][0]["accFillSz"], "0.01");
        assert_eq!(v["data"][0]["avgPx"], "60000");

        let (_, v) = call(&mut st, TRADER, "GET", "/api/v5/trade/orders-pending", "");
        let pending = v["data"].as_array().unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0]["ordId"], limit_id.as_str());
        assert_eq!(pending[0]["clOrdId"], "rest1");

        let (_, v) = call(
            &mut st,
            TRADER,
            "GET",
            "/api/v5/account/balance?ccy=USDT",
            "",
        );
        let usdt = &v["data"][0]["details"][0];
        assert_eq!(usdt["availBal"], "98770"); // 100000 - 600 - 600 - 30 locked
        assert_eq!(usdt["frozenBal"], "30");

        let (_, v) = call(
            &mut st,
            TRADER,
            "GET",
            "/api/v5/trade/fills?instType=SPOT",
            "",
        );
        assert_eq!(v["data"].as_array().unwrap().len(), 2);

        let (_, v) = call(
            &mut st,
            TRADER,
            "POST",
            "/api/v5/trade/cancel-order",
            r#"{"instId":"BTC-USDT","clOrdId":"rest1"}"#,
        );
        assert_eq!(v["code"], "0", "{v}");
        let (_, v) = call(
            &mut st,
            TRADER,
            "POST",
            "/api/v5/trade/cancel-order",
            &format!(r#"{{"instId":"BTC-USDT","ordId":"{limit_id}"}}"#),
        );
        assert_eq!(v["code"], "1");
        assert_eq!(v["data"][0]["sCode"], "51401");
        let (_, v) = call(
            &mut st,
            TRADER,
            "GET",
            "/api/v5/trade/orders-history?instType=SPOT&state=canceled",
            "",
        );
        assert_eq!(v["data"].as_array().unwrap().len(), 1);
        let (_, v) = call(
            &mut st,
            TRADER,
            "GET",
            "/api/v5/trade/order?instId=BTC-USDT&ordId=424242",
            "",
        );
        assert_eq!(v["code"], "51603");
    }

    #[test]
    fn algo_orders_wait_are_listed_by_type_and_cancel_ten_at_a_time() {
        let mut st = state();
        let place = |st: &mut VenueState, ord_type: &str| {
            let body = format!(
                r#"{{"instId":"BTC-USDT","tdMode":"cash","side":"sell","ordType":"{ord_type}","sz":"0.1","triggerPx":"50000","orderPx":"-1"}}"#
            );
            let (_, v) = call(st, TRADER, "POST", "/api/v5/trade/order-algo", &body);
            assert_eq!(v["code"], "0", "{v}");
            v["data"][0]["algoId"].as_str().unwrap().to_owned()
        };
        let ids: Vec<String> = (0..11).map(|_| place(&mut st, "trigger")).collect();
        place(&mut st, "oco");
        let listed = |st: &mut VenueState, q: &str| {
            let (_, v) = call(
                st,
                TRADER,
                "GET",
                &format!("/api/v5/trade/orders-algo-pending?{q}"),
                "",
            );
            v
        };
        let count = |st: &mut VenueState, q: &str| listed(st, q)["data"].as_array().unwrap().len();
        let v = listed(&mut st, "ordType=trigger");
        assert_eq!(v["data"].as_array().unwrap().len(), 11, "{v}");
        assert_eq!(v["data"][0]["ordId"], "");
        assert_eq!(v["data"][0]["state"], "live");
        assert_eq!(count(&mut st, "ordType=conditional%2Coco"), 1);
        // ordType is required, and only conditional and oco go together.
        for q in ["", "ordType=trigger%2Coco", "ordType=market"] {
            let v = listed(&mut st, q);
            assert_ne!(v["code"], "0", "{q}: {v}");
        }
        // Ten per request at most.
        let items = |ids: &[String]| {
            let list: Vec<Value> = ids
                .iter()
                .map(|i| json!({"instId": "BTC-USDT", "algoId": i}))
                .collect();
            Value::Array(list).to_string()
        };
        let (s, v) = call(
            &mut st,
            TRADER,
            "POST",
            "/api/v5/trade/cancel-algos",
            &items(&ids),
        );
        assert_eq!((s, v["code"].as_str()), (400, Some("51000")), "{v}");
        let (_, v) = call(
            &mut st,
            TRADER,
            "POST",
            "/api/v5/trade/cancel-algos",
            &items(&ids[..10]),
        );
        assert_eq!(v["code"], "0", "{v}");
        // Cancelled twice, or on another market: that item fails, the rest pass.
        let mut again = ids[9..].to_vec();
        again.push("1".into());
        let (_, v) = call(
            &mut st,
            TRADER,
            "POST",
            "/api/v5/trade/cancel-algos",
            &items(&again),
        );
        assert_eq!(v["code"], "2", "{v}");
        assert_eq!(count(&mut st, "ordType=trigger"), 0);
        // An iceberg is cancelled through cancel-advance-algos, not cancel-algos.
        let iceberg = place(&mut st, "iceberg");
        let one = items(std::slice::from_ref(&iceberg));
        let (_, v) = call(&mut st, TRADER, "POST", "/api/v5/trade/cancel-algos", &one);
        assert_eq!(
            (v["code"].as_str(), v["data"][0]["sCode"].as_str()),
            (Some("1"), Some("51000")),
            "{v}"
        );
        let (_, v) = call(
            &mut st,
            TRADER,
            "POST",
            "/api/v5/trade/cancel-advance-algos",
            &one,
        );
        assert_eq!(v["code"], "0", "{v}");
        assert_eq!(count(&mut st, "ordType=iceberg"), 0);
    }

    #[test]
    fn malformed_orders_get_okx_errors_and_never_panic() {
        let mut st = state();
        let cases = [
            ("{not json", 400, "50002"),
            ("", 400, "50000"),
            (r#"{"instId":"BTC-USDT","instId":"ETH-USDT"}"#, 400, "51000"),
            ("[1,2]", 400, "50002"),
        ];
        for (body, status, code) in cases {
            let (s, v) = call(&mut st, TRADER, "POST", "/api/v5/trade/order", body);
            assert_eq!((s, v["code"].as_str()), (status, Some(code)), "{body}");
        }
        let items = [
            (
                r#"{"tdMode":"cash","side":"buy","ordType":"market","sz":"1"}"#,
                "50014",
            ),
            (
                r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"1"}"#,
                "50014",
            ),
            (
                r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"1","bogus":"1"}"#,
                "51000",
            ),
            (
                r#"{"instId":"BTC-USDT","tdMode":"cash","side":"up","ordType":"market","sz":"1"}"#,
                "51000",
            ),
            (
                r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"abc"}"#,
                "51000",
            ),
            (
                r#"{"instId":"BTC-USDT","tdMode":"cross","side":"buy","ordType":"market","sz":"1"}"#,
                "51000",
            ),
            (
                r#"{"instId":"NOPE-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"1"}"#,
                "51001",
            ),
            (
                r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"100","px":"60000"}"#,
                "51008",
            ),
            (
                r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":[1]}"#,
                "51000",
            ),
        ];
        for (body, code) in items {
            let (s, v) = call(&mut st, TRADER, "POST", "/api/v5/trade/order", body);
            assert_eq!((s, v["code"].as_str()), (200, Some("1")), "{body}");
            assert_eq!(v["data"][0]["sCode"], code, "{body}");
        }
        let (s, v) = call(
            &mut st,
            TRADER,
            "GET",
            "/api/v5/trade/order?instId=BTC-USDT",
            "",
        );
        assert_eq!((s, v["code"].as_str()), (400, Some("50014")));
        let (s, v) = call(
            &mut st,
            TRADER,
            "GET",
            "/api/v5/trade/order?instId=BTC-USDT&ordId=1&ordId=2",
            "",
        );
        assert_eq!((s, v["code"].as_str()), (400, Some("51000")));
    }

    #[test]
    fn garbage_never_panics_and_answers_in_okx_shape() {
        assert_eq!(MAX_NUMBER, Decimal::from(1_000_000_000_000u64));
        let mut st = state();
        let routes = [
            ("GET", "/api/v5/account/config"),
            ("GET", "/api/v5/account/balance"),
            ("GET", "/api/v5/asset/balances"),
            ("GET", "/api/v5/asset/currencies"),
            ("GET", "/api/v5/trade/order"),
            ("GET", "/api/v5/trade/orders-pending"),
            ("GET", "/api/v5/trade/orders-history"),
            ("GET", "/api/v5/trade/fills"),
            ("GET", "/api/v5/asset/withdrawal-history"),
            ("GET", "/api/v5/asset/deposit-history"),
            ("POST", "/api/v5/trade/order"),
            ("POST", "/api/v5/trade/batch-orders"),
            ("POST", "/api/v5/trade/cancel-order"),
            ("POST", "/api/v5/trade/cancel-batch-orders"),
            ("POST", "/api/v5/asset/transfer"),
            ("POST", "/api/v5/asset/withdrawal"),
            ("GET", "/api/v5/public/instruments"),
            ("GET", "/api/v5/market/ticker"),
            ("GET", "/api/v5/market/tickers"),
        ];
        let queries = [
            "",
            "?instType=SPOT&limit=0",
            "?limit=99999999999999999999",
            "?ccy=&instId=%FF",
            "?ordId=abc&instId=BTC-USDT",
            "?a=1&a=2",
        ];
        let bodies = [
            "",
            "null",
            "[]",
            "{}",
            "[{}]",
            "[null, 1, \"x\"]",
            "{\"instId\":{\"a\":1}}",
            r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"79228162514264337593543950335"}"#,
            r#"{"instId":"BTC-USDT","tdMode":"cash","side":"sell","ordType":"market","sz":"1e30","tgtCcy":"quote_ccy"}"#,
            r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"999999999999","px":"999999999999"}"#,
            r#"{"ccy":"USDT","amt":"99999999999999999999999999","from":"6","to":"18","dest":"4","toAddr":"x"}"#,
            "\u{0}\u{1}binary",
        ];
        let keys = [
            TRADER,
            Some(("withdrawer", "withdrawer-secret")),
            Some(("trader", "bad")),
        ];
        for (method, path) in routes {
            for query in queries {
                for body in bodies {
                    for key in keys {
                        let target = format!("{path}{query}");
                        let r = handle(&mut st, &request(key, method, &target, body));
                        let v: Value = serde_json::from_str(&r.body).unwrap();
                        assert!(
                            v["code"].is_string(),
                            "{method} {target} {body}: {}",
                            r.body
                        );
                        assert!(v["data"].is_array(), "{method} {target} {body}: {}", r.body);
                    }
                }
            }
        }
    }

    #[test]
    fn permissions_gate_endpoints() {
        let mut st = state();
        let reader = Some(("reader", "reader-secret"));
        let withdrawer = Some(("withdrawer", "withdrawer-secret"));
        let order =
            r#"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"10"}"#;
        let (s, v) = call(&mut st, reader, "POST", "/api/v5/trade/order", order);
        assert_eq!((s, v["code"].as_str()), (200, Some("50120")));
        let (_, v) = call(&mut st, reader, "GET", "/api/v5/asset/balances", "");
        assert_eq!(v["code"], "0");
        let wd = r#"{"ccy":"USDT","amt":"100","dest":"4","toAddr":"0xabc","chain":"USDT-ERC20"}"#;
        let (_, v) = call(&mut st, TRADER, "POST", "/api/v5/asset/withdrawal", wd);
        assert_eq!(v["code"], "50120");
        let (_, v) = call(&mut st, withdrawer, "POST", "/api/v5/asset/withdrawal", wd);
        assert_eq!(v["code"], "0", "{v}");
        assert_eq!(
            st.account("okx-unit").unwrap().balances["USDT"].free,
            Decimal::from(99_900)
        );
        let (_, v) = call(
            &mut st,
            withdrawer,
            "GET",
            "/api/v5/asset/withdrawal-history",
            "",
        );
        assert_eq!(v["data"][0]["to"], "0xabc");
        assert_eq!(v["data"][0]["amt"], "100");
        let big = r#"{"ccy":"USDT","amt":"1000000","dest":"4","toAddr":"0xabc"}"#;
        let (_, v) = call(&mut st, withdrawer, "POST", "/api/v5/asset/withdrawal", big);
        assert_eq!(v["code"], "58350");
        let (_, v) = call(
            &mut st,
            withdrawer,
            "POST",
            "/api/v5/asset/transfer",
            r#"{"ccy":"USDT","amt":"1","from":"6","to":"18"}"#,
        );
        assert_eq!(v["code"], "50120");
        let (_, v) = call(
            &mut st,
            TRADER,
            "POST",
            "/api/v5/asset/transfer",
            r#"{"ccy":"USDT","amt":"5","from":"6","to":"18"}"#,
        );
        assert_eq!(v["code"], "0", "{v}");
        assert_eq!(st.account("okx-unit").unwrap().transfers.len(), 1);
        let (_, v) = call(
            &mut st,
            TRADER,
            "POST",
            "/api/v5/asset/transfer",
            r#"{"ccy":"USDT","amt":"5","from":"6","to":"99"}"#,
        );
        assert_eq!(v["code"], "51000");
        let (_, v) = call(&mut st, TRADER, "GET", "/api/v5/asset/deposit-history", "");
        assert_eq!(v["data"], json!([]));
        let (_, v) = call(&mut st, TRADER, "GET", "/api/v5/asset/currencies", "");
        assert!(
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["ccy"] == "BTC")
        );
    }
}
