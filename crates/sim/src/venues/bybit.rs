//! The simulated Bybit v5 (unified trade account, spot): `X-BAPI-*` HMAC authentication, the
//! `retCode`/`retMsg`/`result`/`retExtInfo`/`time` envelope, and the paths ccxt and pybit use.
//! Documented in `docs/sim/bybit.md`.
//!
//! Key permissions are Bybit's own names written `Group.Name` (`Spot.SpotTrade`,
//! `ContractTrade.Order`, `Wallet.Withdraw`, ...); `GET /v5/user/query-api` groups them back
//! into Bybit's `permissions` object. Every valid key may read.

use std::collections::BTreeMap;

use keyfence_exchange::params::{Params, parse_json_strict};
use keyfence_exchange::{
    AuthError, Denial, DenialKind, NativeResponse, Order, OrderType, native_error, parse_orders,
    path,
};
use keyfence_types::{Side, Venue};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::state::{
    Kind, Market, NewOrder, OrderRecord, OrderRef, SimKey, SimRequest, Status, Trade, VenueState,
};

/// Permissions (the venue's own names) that let a key read and trade spot.
pub(crate) const TRADING_PERMISSIONS: &[&str] = &["Spot.SpotTrade"];

/// Permission groups in the order Bybit's answer lists them (BYD `user/apikey-info.mdx`).
const PERMISSION_GROUPS: &[&str] = &[
    "ContractTrade",
    "Spot",
    "Wallet",
    "Options",
    "Derivatives",
    "CopyTrading",
    "BlockTrade",
    "Exchange",
    "NFT",
    "Affiliate",
    "Earn",
];

/// Largest quantity, price or amount the simulator takes (keeps ledger arithmetic in range).
const MAX_NUMBER: i64 = 1_000_000_000_000;
/// Most decimals the simulator takes in a number.
const MAX_SCALE: u32 = 12;

pub(crate) fn split_symbol(symbol: &str) -> Option<(String, String)> {
    super::split_by_quote_suffix(symbol, &["USDT", "USDC", "FDUSD", "BTC", "ETH", "EUR"])
}

// ---------------------------------------------------------------------------------------------
// Answers

/// `Ok(result)` for the envelope's `result`; `Err` is a complete answer (mostly an error).
type Answer = Result<Value, NativeResponse>;

fn ok(result: Value, now: i64) -> NativeResponse {
    ok_ext(result, json!({}), now)
}

fn ok_ext(result: Value, ext: Value, now: i64) -> NativeResponse {
    NativeResponse::json(
        200,
        json!({
            "retCode": 0,
            "retMsg": "OK",
            "result": result,
            "retExtInfo": ext,
            "time": now,
        }),
    )
}

fn deny(kind: DenialKind, message: impl Into<String>, now: i64) -> NativeResponse {
    native_error(Venue::Bybit, &Denial::new(kind, message), now)
}

fn bad(message: impl Into<String>, now: i64) -> NativeResponse {
    deny(DenialKind::BadRequest, message, now)
}

/// A Bybit error code the shared denial kinds do not cover.
fn code(ret_code: i64, message: &str, now: i64) -> NativeResponse {
    NativeResponse::json(
        200,
        json!({"retCode": ret_code, "retMsg": message, "result": {}, "retExtInfo": {}, "time": now}),
    )
}

fn num(d: Decimal) -> String {
    d.normalize().to_string()
}

fn ms(t: i64) -> String {
    t.to_string()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

// ---------------------------------------------------------------------------------------------
// Parameters: the query of a GET, the JSON object of a POST; each name once.

struct Args {
    map: Map<String, Value>,
    now: i64,
}

impl Args {
    fn read(req: &SimRequest, allowed: &[&str]) -> Result<Args, NativeResponse> {
        let now = req.now_ms;
        let map = if req.http.method.eq_ignore_ascii_case("GET") {
            let p = Params::parse(&req.http.query).map_err(|e| bad(e.to_string(), now))?;
            p.iter()
                .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                .collect()
        } else if req.http.body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match parse_json_strict(&req.http.body) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err(bad("the body is not a JSON object", now)),
                Err(e) => return Err(bad(e.to_string(), now)),
            }
        };
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(bad(format!("unknown parameter `{unknown}`"), now));
        }
        Ok(Args { map, now })
    }

    /// A parameter as text (strings as they are; numbers and booleans as JSON writes them).
    fn opt(&self, name: &str) -> Result<Option<String>, NativeResponse> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(bad(format!("invalid value for `{name}`"), self.now)),
        }
    }

    fn req(&self, name: &str) -> Result<String, NativeResponse> {
        self.opt(name)?
            .ok_or_else(|| bad(format!("missing parameter `{name}`"), self.now))
    }

    fn decimal(&self, name: &str) -> Result<Option<Decimal>, NativeResponse> {
        let Some(s) = self.opt(name)? else {
            return Ok(None);
        };
        checked_decimal(&s)
            .map(Some)
            .ok_or_else(|| bad(format!("invalid value for `{name}`: `{s}`"), self.now))
    }

    fn int(&self, name: &str) -> Result<Option<i64>, NativeResponse> {
        let Some(s) = self.opt(name)? else {
            return Ok(None);
        };
        s.parse::<i64>()
            .map(Some)
            .map_err(|_| bad(format!("invalid value for `{name}`: `{s}`"), self.now))
    }

    /// `limit` within `1..=max`, `default` when absent.
    fn limit(&self, default: usize, max: usize) -> Result<usize, NativeResponse> {
        match self.int("limit")? {
            None => Ok(default),
            Some(n) if n >= 1 && usize::try_from(n).is_ok_and(|n| n <= max) => {
                Ok(usize::try_from(n).unwrap_or(default))
            }
            Some(n) => Err(bad(format!("invalid value for `limit`: `{n}`"), self.now)),
        }
    }
}

fn checked_decimal(s: &str) -> Option<Decimal> {
    if s.contains(['e', 'E']) {
        return None;
    }
    s.parse::<Decimal>().ok().filter(|d| {
        *d >= Decimal::ZERO && *d <= Decimal::from(MAX_NUMBER) && d.scale() <= MAX_SCALE
    })
}

// ---------------------------------------------------------------------------------------------
// Routing

/// What a private endpoint needs beyond a valid key.
#[derive(Clone, Copy)]
enum Needs {
    /// Any valid key (Bybit keys can always read).
    Any,
    /// This permission.
    Perm(&'static str),
    /// The trading permission of the request's `category`.
    Category,
}

type Handler = fn(&mut VenueState, &SimKey, &SimRequest, &Args) -> Answer;

struct Route {
    method: &'static str,
    path: &'static str,
    needs: Needs,
    params: &'static [&'static str],
    handler: Handler,
}

const ORDER_PARAMS: &[&str] = &[
    "category",
    "symbol",
    "isLeverage",
    "side",
    "orderType",
    "qty",
    "marketUnit",
    "slippageToleranceType",
    "slippageTolerance",
    "price",
    "triggerDirection",
    "orderFilter",
    "triggerPrice",
    "triggerBy",
    "orderIv",
    "timeInForce",
    "positionIdx",
    "orderLinkId",
    "takeProfit",
    "stopLoss",
    "tpTriggerBy",
    "slTriggerBy",
    "reduceOnly",
    "closeOnTrigger",
    "smpType",
    "mmp",
    "tpslMode",
    "tpLimitPrice",
    "slLimitPrice",
    "tpOrderType",
    "slOrderType",
];

const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        path: "/v5/user/query-api",
        needs: Needs::Any,
        params: &[],
        handler: query_api,
    },
    Route {
        method: "GET",
        path: "/v5/account/info",
        needs: Needs::Any,
        params: &[],
        handler: account_info,
    },
    Route {
        method: "GET",
        path: "/v5/account/wallet-balance",
        needs: Needs::Any,
        params: &["accountType", "coin"],
        handler: wallet_balance,
    },
    Route {
        method: "GET",
        path: "/v5/asset/coin/query-info",
        needs: Needs::Any,
        params: &["coin"],
        handler: coin_info,
    },
    Route {
        method: "POST",
        path: "/v5/order/create",
        needs: Needs::Category,
        params: ORDER_PARAMS,
        handler: order_create,
    },
    Route {
        method: "POST",
        path: "/v5/order/create-batch",
        needs: Needs::Category,
        params: &["category", "request"],
        handler: order_create_batch,
    },
    Route {
        method: "POST",
        path: "/v5/order/cancel",
        needs: Needs::Category,
        params: &[
            "category",
            "symbol",
            "orderId",
            "orderLinkId",
            "orderFilter",
        ],
        handler: order_cancel,
    },
    Route {
        method: "POST",
        path: "/v5/order/cancel-all",
        needs: Needs::Category,
        params: &[
            "category",
            "symbol",
            "baseCoin",
            "settleCoin",
            "orderFilter",
            "stopOrderType",
        ],
        handler: order_cancel_all,
    },
    Route {
        method: "GET",
        path: "/v5/order/realtime",
        needs: Needs::Any,
        params: &[
            "category",
            "symbol",
            "baseCoin",
            "settleCoin",
            "orderId",
            "orderLinkId",
            "openOnly",
            "orderFilter",
            "limit",
            "cursor",
        ],
        handler: order_realtime,
    },
    Route {
        method: "GET",
        path: "/v5/order/history",
        needs: Needs::Any,
        params: &[
            "category",
            "symbol",
            "baseCoin",
            "settleCoin",
            "orderId",
            "orderLinkId",
            "orderFilter",
            "orderStatus",
            "startTime",
            "endTime",
            "limit",
            "cursor",
        ],
        handler: order_history,
    },
    Route {
        method: "GET",
        path: "/v5/execution/list",
        needs: Needs::Any,
        params: &[
            "category",
            "symbol",
            "orderId",
            "orderLinkId",
            "baseCoin",
            "startTime",
            "endTime",
            "execType",
            "limit",
            "cursor",
        ],
        handler: execution_list,
    },
    Route {
        method: "POST",
        path: "/v5/asset/withdraw/create",
        needs: Needs::Perm("Wallet.Withdraw"),
        params: &[
            "coin",
            "chain",
            "address",
            "tag",
            "amount",
            "timestamp",
            "forceChain",
            "accountType",
            "feeType",
            "requestId",
            "beneficiary",
        ],
        handler: withdraw_create,
    },
    Route {
        method: "GET",
        path: "/v5/asset/withdraw/query-record",
        needs: Needs::Any,
        params: &[
            "withdrawID",
            "txID",
            "coin",
            "withdrawType",
            "startTime",
            "endTime",
            "limit",
            "cursor",
        ],
        handler: withdraw_records,
    },
    Route {
        method: "GET",
        path: "/v5/asset/deposit/query-record",
        needs: Needs::Any,
        params: &[
            "id",
            "txID",
            "coin",
            "startTime",
            "endTime",
            "limit",
            "cursor",
        ],
        handler: deposit_records,
    },
    Route {
        method: "POST",
        path: "/v5/asset/transfer/inter-transfer",
        needs: Needs::Perm("Wallet.AccountTransfer"),
        params: &[
            "transferId",
            "coin",
            "amount",
            "fromAccountType",
            "toAccountType",
        ],
        handler: inter_transfer,
    },
    Route {
        method: "GET",
        path: "/v5/asset/transfer/query-inter-transfer-list",
        needs: Needs::Any,
        params: &[
            "transferId",
            "coin",
            "status",
            "startTime",
            "endTime",
            "limit",
            "cursor",
        ],
        handler: transfer_records,
    },
];

pub(crate) fn handle(state: &mut VenueState, req: &SimRequest) -> NativeResponse {
    let now = req.now_ms;
    let Some(canon) = path::canonical(&req.http.path) else {
        return deny(DenialKind::NotFound, "not found", now);
    };
    let method = req.http.method.to_ascii_uppercase();
    match (method.as_str(), canon.as_str()) {
        ("GET", "/v5/market/time") => return market_time(now),
        ("GET", "/v5/market/instruments-info") => return public(state, req, instruments),
        ("GET", "/v5/market/tickers") => return public(state, req, tickers),
        ("GET", "/v5/market/orderbook") => return public(state, req, orderbook),
        _ => {}
    }
    let Some(route) = ROUTES
        .iter()
        .find(|r| r.method == method && r.path == canon)
    else {
        return deny(DenialKind::NotFound, "not found", now);
    };
    let key = match state.authenticate(req) {
        Ok(k) => k,
        Err(e) => return auth_error(e, now),
    };
    let args = match Args::read(req, route.params) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let needed = match route.needs {
        Needs::Any => None,
        Needs::Perm(p) => Some(p),
        Needs::Category => match args.opt("category") {
            Ok(Some(c)) => match category_permission(&c) {
                Some(p) => Some(p),
                None => return bad(format!("invalid value for `category`: `{c}`"), now),
            },
            Ok(None) => return bad("missing parameter `category`", now),
            Err(r) => return r,
        },
    };
    if let Some(p) = needed
        && !key.has(p)
    {
        return deny(
            DenialKind::PermissionDenied,
            format!("the key lacks `{p}`"),
            now,
        );
    }
    match (route.handler)(state, &key, req, &args) {
        Ok(result) => ok(result, now),
        Err(r) => r,
    }
}

fn auth_error(e: AuthError, now: i64) -> NativeResponse {
    let message = e.to_string();
    native_error(
        Venue::Bybit,
        &Denial::new(DenialKind::Auth(e), message),
        now,
    )
}

fn category_permission(category: &str) -> Option<&'static str> {
    match category {
        "spot" => Some("Spot.SpotTrade"),
        "linear" | "inverse" => Some("ContractTrade.Order"),
        "option" => Some("Options.OptionsTrade"),
        _ => None,
    }
}

fn public(
    state: &VenueState,
    req: &SimRequest,
    f: fn(&VenueState, &Args) -> Answer,
) -> NativeResponse {
    let params: &[&str] = &[
        "category", "symbol", "baseCoin", "status", "limit", "cursor", "expDate",
    ];
    match Args::read(req, params).and_then(|a| f(state, &a)) {
        Ok(v) => ok(v, req.now_ms),
        Err(r) => r,
    }
}

// ---------------------------------------------------------------------------------------------
// Public market data

fn market_time(now: i64) -> NativeResponse {
    ok(
        json!({
            "timeSecond": (now / 1000).to_string(),
            "timeNano": format!("{now}000000"),
        }),
        now,
    )
}

/// `spot` lists the configured markets; the other categories exist but are empty here.
fn category_of(args: &Args) -> Result<String, NativeResponse> {
    let c = args.req("category")?;
    match c.as_str() {
        "spot" | "linear" | "inverse" | "option" => Ok(c),
        _ => Err(bad(
            format!("invalid value for `category`: `{c}`"),
            args.now,
        )),
    }
}

fn selected_markets<'a>(
    state: &'a VenueState,
    args: &Args,
) -> Result<Vec<&'a Market>, NativeResponse> {
    let category = category_of(args)?;
    if category != "spot" {
        return Ok(Vec::new());
    }
    match args.opt("symbol")? {
        Some(s) => state
            .market(&s)
            .map(|m| vec![m])
            .map_err(|e| deny(DenialKind::UnknownSymbol, e.to_string(), args.now)),
        None => Ok(state.markets.values().collect()),
    }
}

fn tick(price: Decimal) -> &'static str {
    if price >= Decimal::ONE {
        "0.01"
    } else {
        "0.0001"
    }
}

fn instruments(state: &VenueState, args: &Args) -> Answer {
    let category = category_of(args)?;
    let status = args.opt("status")?;
    let base = args.opt("baseCoin")?;
    let list: Vec<Value> = selected_markets(state, args)?
        .into_iter()
        .filter(|_| status.as_deref().is_none_or(|s| s == "Trading"))
        .filter(|m| base.as_deref().is_none_or(|b| m.base == b))
        .map(|m| {
            json!({
                "symbol": m.symbol,
                "baseCoin": m.base,
                "quoteCoin": m.quote,
                "innovation": "0",
                "status": "Trading",
                "marginTrading": "none",
                "stTag": "0",
                "lotSizeFilter": {
                    "basePrecision": "0.000001",
                    "quotePrecision": "0.00000001",
                    "minOrderQty": "0.000001",
                    "maxOrderQty": "100000",
                    "minOrderAmt": "1",
                    "maxOrderAmt": "100000000",
                },
                "priceFilter": {"tickSize": tick(m.price)},
                "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.05"},
            })
        })
        .collect();
    let mut result = json!({"category": category, "list": list});
    if category != "spot" {
        result["nextPageCursor"] = json!("");
    }
    Ok(result)
}

fn tickers(state: &VenueState, args: &Args) -> Answer {
    let category = category_of(args)?;
    let list: Vec<Value> = selected_markets(state, args)?
        .into_iter()
        .map(|m| {
            let p = num(m.price);
            json!({
                "symbol": m.symbol,
                "bid1Price": p,
                "bid1Size": "1",
                "ask1Price": p,
                "ask1Size": "1",
                "lastPrice": p,
                "prevPrice24h": p,
                "price24hPcnt": "0",
                "highPrice24h": p,
                "lowPrice24h": p,
                "turnover24h": "0",
                "volume24h": "0",
                "usdIndexPrice": p,
            })
        })
        .collect();
    Ok(json!({"category": category, "list": list}))
}

fn orderbook(state: &VenueState, args: &Args) -> Answer {
    category_of(args)?;
    let symbol = args.req("symbol")?;
    let m = state
        .market(&symbol)
        .map_err(|e| deny(DenialKind::UnknownSymbol, e.to_string(), args.now))?;
    let p = num(m.price);
    Ok(json!({
        "s": m.symbol,
        "b": [[p, "1"]],
        "a": [[p, "1"]],
        "ts": args.now,
        "u": 1,
        "seq": 1,
        "cts": args.now,
    }))
}

// ---------------------------------------------------------------------------------------------
// Key and account

fn query_api(state: &mut VenueState, key: &SimKey, _req: &SimRequest, args: &Args) -> Answer {
    let mut groups: BTreeMap<String, Vec<String>> = PERMISSION_GROUPS
        .iter()
        .map(|g| ((*g).to_owned(), Vec::new()))
        .collect();
    for p in &key.permissions {
        if let Some((g, n)) = p.split_once('.') {
            groups.entry(g.to_owned()).or_default().push(n.to_owned());
        }
    }
    let ips: Vec<String> = if key.ip_allowlist.is_empty() {
        vec!["*".to_owned()]
    } else {
        key.ip_allowlist.clone()
    };
    let (expired_at, deadline_day) = match key.expires {
        Some(t) => {
            let left_ms = t
                .unix_timestamp()
                .saturating_mul(1000)
                .saturating_sub(args.now);
            (rfc3339(t), left_ms.div_euclid(86_400_000))
        }
        None => ("1970-01-01T00:00:00Z".to_owned(), -1),
    };
    let user_id = user_id(state, &key.account);
    Ok(json!({
        "id": format!("{}", user_id * 10 + 1),
        "note": key.label.clone().unwrap_or_default(),
        "apiKey": key.api_key,
        "readOnly": i32::from(key.permissions.is_empty()),
        "secret": "",
        "permissions": groups,
        "ips": ips,
        "type": 1,
        "deadlineDay": deadline_day,
        "expiredAt": expired_at,
        "createdAt": rfc3339(key.created),
        "unified": 0,
        "uta": 1,
        "userID": user_id,
        "inviterID": 0,
        "vipLevel": "No VIP",
        "mktMakerLevel": "0",
        "affiliateID": 0,
        "rsaPublicKey": "",
        "isMaster": key.master,
        "parentUid": if key.master { "0".to_owned() } else { (user_id - 1).to_string() },
        "kycLevel": "LEVEL_DEFAULT",
        "kycRegion": "",
    }))
}

/// A stable user id per account.
fn user_id(state: &VenueState, account: &str) -> i64 {
    let idx = state
        .accounts
        .keys()
        .position(|a| a == account)
        .unwrap_or(0);
    100_000 + 10 * i64::try_from(idx).unwrap_or(0)
}

fn account_info(_: &mut VenueState, _: &SimKey, _: &SimRequest, args: &Args) -> Answer {
    Ok(json!({
        "marginMode": "REGULAR_MARGIN",
        "updatedTime": ms(args.now),
        "unifiedMarginStatus": 5,
        "dcpStatus": "OFF",
        "timeWindow": 10,
        "smpGroup": 0,
        "isMasterTrader": false,
        "spotHedgingStatus": "OFF",
    }))
}

fn internal(now: i64) -> NativeResponse {
    deny(DenialKind::Internal, "unknown account", now)
}

/// The value of `amount` of `coin` in USD, from the `COINUSDT` reference price.
fn usd_value(state: &VenueState, coin: &str, amount: Decimal) -> Decimal {
    if matches!(coin, "USDT" | "USDC" | "USD") {
        return amount;
    }
    state
        .markets
        .get(&format!("{coin}USDT"))
        .and_then(|m| amount.checked_mul(m.price))
        .unwrap_or(Decimal::ZERO)
}

fn wallet_balance(state: &mut VenueState, key: &SimKey, _: &SimRequest, args: &Args) -> Answer {
    let account_type = args.req("accountType")?;
    if account_type != "UNIFIED" {
        return Err(bad(
            format!("accountType only support UNIFIED, not `{account_type}`"),
            args.now,
        ));
    }
    let wanted: Option<Vec<String>> = args
        .opt("coin")?
        .map(|c| c.split(',').map(|s| s.trim().to_owned()).collect());
    let acct = state
        .account(&key.account)
        .map_err(|_| internal(args.now))?;
    let mut total = Decimal::ZERO;
    let mut coins = Vec::new();
    for (coin, b) in &acct.balances {
        if wanted.as_ref().is_some_and(|w| !w.contains(coin)) {
            continue;
        }
        let wallet = b.free + b.locked;
        let usd = usd_value(state, coin, wallet);
        total += usd;
        coins.push(json!({
            "coin": coin,
            "equity": num(wallet),
            "usdValue": num(usd),
            "walletBalance": num(wallet),
            "locked": num(b.locked),
            "spotHedgingQty": "0",
            "borrowAmount": "0",
            "availableToWithdraw": num(b.free),
            "accruedInterest": "0",
            "totalOrderIM": "0",
            "totalPositionIM": "0",
            "totalPositionMM": "0",
            "unrealisedPnl": "0",
            "cumRealisedPnl": "0",
            "bonus": "0",
            "marginCollateral": true,
            "collateralSwitch": true,
            "availableToBorrow": "",
        }));
    }
    let t = num(total);
    Ok(json!({"list": [{
        "accountType": "UNIFIED",
        "accountIMRate": "0",
        "accountMMRate": "0",
        "accountLTV": "0",
        "totalEquity": t,
        "totalWalletBalance": t,
        "totalMarginBalance": t,
        "totalAvailableBalance": t,
        "totalPerpUPL": "0",
        "totalInitialMargin": "0",
        "totalMaintenanceMargin": "0",
        "coin": coins,
    }]}))
}

fn coin_info(state: &mut VenueState, _: &SimKey, _: &SimRequest, args: &Args) -> Answer {
    let wanted = args.opt("coin")?;
    let mut coins: Vec<&str> = Vec::new();
    for m in state.markets.values() {
        for c in [m.base.as_str(), m.quote.as_str()] {
            if !coins.contains(&c) {
                coins.push(c);
            }
        }
    }
    coins.sort_unstable();
    let rows: Vec<Value> = coins
        .into_iter()
        .filter(|c| wanted.as_deref().is_none_or(|w| w == *c))
        .map(|c| {
            json!({
                "name": c,
                "coin": c,
                "remainAmount": "1000000",
                "chains": [{
                    "chainType": c,
                    "confirmation": "1",
                    "withdrawFee": "0",
                    "depositMin": "0",
                    "withdrawMin": "0",
                    "chain": c,
                    "chainDeposit": "1",
                    "chainWithdraw": "1",
                    "minAccuracy": "8",
                    "withdrawPercentageFee": "0",
                    "contractAddress": "",
                    "safeConfirmNumber": "1",
                }],
            })
        })
        .collect();
    Ok(json!({"rows": rows}))
}

// ---------------------------------------------------------------------------------------------
// Orders

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Buy => "Buy",
        Side::Sell => "Sell",
    }
}

/// The id a client sees for `orderLinkId`: empty when it gave none.
fn link_id(o: &OrderRecord) -> String {
    if o.client_id == format!("sim-{}", o.id) {
        String::new()
    } else {
        o.client_id.clone()
    }
}

fn order_json(state: &VenueState, o: &OrderRecord) -> Value {
    let open = o.status == Status::New;
    let leaves = if open {
        o.quantity - o.filled
    } else {
        Decimal::ZERO
    };
    let price = o.price.unwrap_or(Decimal::ZERO);
    let status = match o.status {
        Status::New => "New",
        Status::Filled => "Filled",
        Status::Canceled => "Cancelled",
    };
    let (order_type, tif, unit) = match o.kind {
        Kind::Market => ("Market", "IOC", "baseCoin"),
        Kind::Limit => ("Limit", "GTC", ""),
    };
    let base_price = state
        .markets
        .get(&o.symbol)
        .map_or_else(String::new, |m| num(m.price));
    let mut v = json!({
        "orderId": o.id.to_string(),
        "orderLinkId": link_id(o),
        "blockTradeId": "",
        "symbol": o.symbol,
        "price": num(price),
        "qty": num(o.quantity),
        "side": side_name(o.side),
        "isLeverage": "0",
        "positionIdx": 0,
        "orderStatus": status,
        "createType": "CreateByUser",
        "cancelType": if o.status == Status::Canceled { "CancelByUser" } else { "UNKNOWN" },
        "rejectReason": "EC_NoError",
        "avgPrice": o.average_price().map_or_else(String::new, num),
        "leavesQty": num(leaves),
        "leavesValue": num(leaves * price),
        "cumExecQty": num(o.filled),
        "cumExecValue": num(o.filled_quote),
        "cumExecFee": "0",
        "cumFeeDetail": {},
    });
    let rest = json!({
        "timeInForce": tif,
        "orderType": order_type,
        "stopOrderType": "",
        "orderIv": "",
        "marketUnit": unit,
        "triggerPrice": "0",
        "takeProfit": "0",
        "stopLoss": "0",
        "tpLimitPrice": "0",
        "slLimitPrice": "0",
        "tpTriggerBy": "",
        "slTriggerBy": "",
        "triggerDirection": 0,
        "triggerBy": "",
        "lastPriceOnCreated": "",
        "basePrice": base_price,
        "reduceOnly": false,
        "closeOnTrigger": false,
        "placeType": "",
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "createdTime": ms(o.created_ms),
        "updatedTime": ms(o.updated_ms),
    });
    if let (Some(m), Value::Object(r)) = (v.as_object_mut(), rest) {
        m.extend(r);
    }
    v
}

fn order_error(e: &keyfence_exchange::OrderError, now: i64) -> NativeResponse {
    bad(e.to_string(), now)
}

/// Place one parsed order for `account`; IOC/FOK limits that do not cross are cancelled at once,
/// post-only limits that would cross are refused.
fn place(
    state: &mut VenueState,
    account: &str,
    o: &Order,
    tif: Option<&str>,
    now: i64,
) -> Result<OrderRecord, NativeResponse> {
    let market = state
        .market(&o.symbol)
        .map_err(|e| deny(DenialKind::UnknownSymbol, e.to_string(), now))?
        .clone();
    for d in [o.quantity, o.quote_quantity, o.price]
        .into_iter()
        .flatten()
    {
        if d > Decimal::from(MAX_NUMBER) || d.scale() > MAX_SCALE {
            return Err(bad("a number is out of range", now));
        }
    }
    let kind = match o.order_type {
        OrderType::Market => Kind::Market,
        OrderType::Limit => Kind::Limit,
        OrderType::Other(_) => return Err(bad("unsupported orderType", now)),
    };
    if let Some(c) = &o.client_id
        && state
            .find_order(account, &OrderRef::ClientId(c.clone()))
            .is_ok()
    {
        return Err(code(170141, "Duplicate clientOrderId.", now));
    }
    let crosses = match (o.side, o.price) {
        (Side::Buy, Some(p)) => p >= market.price,
        (Side::Sell, Some(p)) => p <= market.price,
        (_, None) => true,
    };
    let tif = tif.unwrap_or("GTC");
    if kind == Kind::Limit {
        match tif {
            "GTC" | "IOC" | "FOK" => {}
            "PostOnly" if !crosses => {}
            "PostOnly" => {
                return Err(code(
                    170218,
                    "The LIMIT-MAKER order is rejected due to invalid price.",
                    now,
                ));
            }
            other => {
                return Err(bad(
                    format!("invalid value for `timeInForce`: `{other}`"),
                    now,
                ));
            }
        }
    }
    let rec = state
        .place_order(
            account,
            NewOrder {
                symbol: o.symbol.clone(),
                side: o.side,
                kind,
                quantity: o.quantity,
                quote_quantity: o.quote_quantity,
                price: o.price,
                client_id: o.client_id.clone(),
            },
            now,
        )
        .map_err(|e| native_error(Venue::Bybit, &e.denial(), now))?;
    if kind == Kind::Limit && rec.status == Status::New && matches!(tif, "IOC" | "FOK") {
        return state
            .cancel_order(account, &OrderRef::Id(rec.id), now)
            .map_err(|e| native_error(Venue::Bybit, &e.denial(), now));
    }
    Ok(rec)
}

fn spot_only(category: &str, now: i64) -> Result<(), NativeResponse> {
    if category == "spot" {
        Ok(())
    } else {
        // The simulator lists no derivatives: every symbol of another category is unknown.
        Err(deny(
            DenialKind::UnknownSymbol,
            format!("no `{category}` instruments"),
            now,
        ))
    }
}

fn order_create(state: &mut VenueState, key: &SimKey, req: &SimRequest, args: &Args) -> Answer {
    let now = args.now;
    let orders = parse_orders(Venue::Bybit, &req.http).map_err(|e| order_error(&e, now))?;
    spot_only(&args.req("category")?, now)?;
    let tif = args.opt("timeInForce")?;
    let [order] = orders.as_slice() else {
        return Err(bad("expected one order", now));
    };
    let rec = place(state, &key.account, order, tif.as_deref(), now)?;
    Ok(json!({"orderId": rec.id.to_string(), "orderLinkId": link_id(&rec)}))
}

fn order_create_batch(
    state: &mut VenueState,
    key: &SimKey,
    req: &SimRequest,
    args: &Args,
) -> Answer {
    let now = args.now;
    let orders = parse_orders(Venue::Bybit, &req.http).map_err(|e| order_error(&e, now))?;
    let category = args.req("category")?;
    spot_only(&category, now)?;
    let items = match args.map.get("request") {
        Some(Value::Array(a)) => a.clone(),
        _ => return Err(bad("missing parameter `request`", now)),
    };
    let mut list = Vec::new();
    let mut ext = Vec::new();
    for (o, item) in orders.iter().zip(items.iter()) {
        if let Some(unknown) = item
            .as_object()
            .and_then(|m| m.keys().find(|k| !ORDER_PARAMS.contains(&k.as_str())))
        {
            return Err(bad(format!("unknown parameter `{unknown}`"), now));
        }
        let tif = item.get("timeInForce").and_then(Value::as_str);
        match place(state, &key.account, o, tif, now) {
            Ok(rec) => {
                list.push(json!({
                    "category": category,
                    "symbol": rec.symbol,
                    "orderId": rec.id.to_string(),
                    "orderLinkId": link_id(&rec),
                    "createAt": ms(rec.created_ms),
                }));
                ext.push(json!({"code": 0, "msg": "OK"}));
            }
            Err(resp) => {
                let v: Value = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
                list.push(json!({
                    "category": category,
                    "symbol": o.symbol,
                    "orderId": "",
                    "orderLinkId": o.client_id.clone().unwrap_or_default(),
                    "createAt": "",
                }));
                ext.push(json!({"code": v["retCode"], "msg": v["retMsg"]}));
            }
        }
    }
    // Per-order outcomes go in the envelope's `retExtInfo`: a complete answer.
    Err(ok_ext(json!({"list": list}), json!({"list": ext}), now))
}

fn order_ref(args: &Args) -> Result<OrderRef, NativeResponse> {
    if let Some(id) = args.opt("orderId")? {
        return id
            .parse::<u64>()
            .map(OrderRef::Id)
            .map_err(|_| deny(DenialKind::UnknownOrder, "unknown order", args.now));
    }
    match args.opt("orderLinkId")? {
        Some(c) => Ok(OrderRef::ClientId(c)),
        None => Err(bad(
            "missing parameter `orderId` or `orderLinkId`",
            args.now,
        )),
    }
}

fn order_cancel(state: &mut VenueState, key: &SimKey, _: &SimRequest, args: &Args) -> Answer {
    let now = args.now;
    spot_only(&args.req("category")?, now)?;
    let symbol = args.req("symbol")?;
    let r = order_ref(args)?;
    let found = state
        .find_order(&key.account, &r)
        .map_err(|e| native_error(Venue::Bybit, &e.denial(), now))?;
    if found.symbol != symbol {
        return Err(deny(DenialKind::UnknownOrder, "unknown order", now));
    }
    let rec = state
        .cancel_order(&key.account, &r, now)
        .map_err(|e| native_error(Venue::Bybit, &e.denial(), now))?;
    Ok(json!({"orderId": rec.id.to_string(), "orderLinkId": link_id(&rec)}))
}

fn order_cancel_all(state: &mut VenueState, key: &SimKey, _: &SimRequest, args: &Args) -> Answer {
    let now = args.now;
    spot_only(&args.req("category")?, now)?;
    let symbol = args.opt("symbol")?;
    let base = args.opt("baseCoin")?;
    let ids: Vec<u64> = state
        .open_orders(&key.account, symbol.as_deref())
        .into_iter()
        .filter(|o| {
            base.as_deref()
                .is_none_or(|b| split_symbol(&o.symbol).is_some_and(|(ob, _)| ob == b))
        })
        .map(|o| o.id)
        .collect();
    let mut list = Vec::new();
    for id in ids {
        if let Ok(rec) = state.cancel_order(&key.account, &OrderRef::Id(id), now) {
            list.push(json!({"orderId": rec.id.to_string(), "orderLinkId": link_id(&rec)}));
        }
    }
    Ok(json!({"list": list, "success": "1"}))
}

/// Orders newest first, filtered by the common query parameters.
fn listed_orders(
    state: &VenueState,
    key: &SimKey,
    args: &Args,
    keep: impl Fn(&OrderRecord) -> bool,
    max: usize,
) -> Answer {
    let category = category_of(args)?;
    let limit = args.limit(20, max)?;
    let symbol = args.opt("symbol")?;
    let by_id = args.opt("orderId")?;
    let by_link = args.opt("orderLinkId")?;
    let base = args.opt("baseCoin")?;
    let list: Vec<Value> = if category == "spot" {
        state
            .orders(&key.account, symbol.as_deref())
            .into_iter()
            .rev()
            .filter(|o| by_id.as_deref().is_none_or(|i| o.id.to_string() == i))
            .filter(|o| by_link.as_deref().is_none_or(|c| o.client_id == c))
            .filter(|o| {
                base.as_deref()
                    .is_none_or(|b| split_symbol(&o.symbol).is_some_and(|(ob, _)| ob == b))
            })
            .filter(|o| by_id.is_some() || by_link.is_some() || keep(o))
            .take(limit)
            .map(|o| order_json(state, o))
            .collect()
    } else {
        Vec::new()
    };
    Ok(json!({"category": category, "list": list, "nextPageCursor": ""}))
}

fn order_realtime(state: &mut VenueState, key: &SimKey, _: &SimRequest, args: &Args) -> Answer {
    let closed = match args.opt("openOnly")?.as_deref() {
        None | Some("0") => false,
        Some("1") => true,
        Some(other) => {
            return Err(bad(
                format!("invalid value for `openOnly`: `{other}`"),
                args.now,
            ));
        }
    };
    listed_orders(
        state,
        key,
        args,
        |o| (o.status == Status::New) != closed,
        50,
    )
}

fn order_history(state: &mut VenueState, key: &SimKey, _: &SimRequest, args: &Args) -> Answer {
    let status = args.opt("orderStatus")?;
    let start = args.int("startTime")?;
    let end = args.int("endTime")?;
    listed_orders(
        state,
        key,
        args,
        |o| {
            let name = match o.status {
                Status::New => "New",
                Status::Filled => "Filled",
                Status::Canceled => "Cancelled",
            };
            let status_ok = match status.as_deref() {
                Some(s) => s == name,
                None => o.status != Status::New,
            };
            status_ok
                && start.is_none_or(|t| o.created_ms >= t)
                && end.is_none_or(|t| o.created_ms <= t)
        },
        50,
    )
}

fn execution_json(state: &VenueState, t: &Trade) -> Value {
    let order = state
        .account(&t.account)
        .ok()
        .and_then(|a| a.orders.iter().find(|o| o.id == t.order_id));
    let (link, order_type, order_price, order_qty, maker) = match order {
        Some(o) => (
            link_id(o),
            if o.kind == Kind::Market {
                "Market"
            } else {
                "Limit"
            },
            o.price.map_or_else(|| "0".to_owned(), num),
            num(o.quantity),
            o.kind == Kind::Limit && t.time_ms > o.created_ms,
        ),
        None => (String::new(), "Market", "0".into(), num(t.quantity), false),
    };
    let fee_currency = split_symbol(&t.symbol)
        .map(|(b, q)| if t.side == Side::Buy { b } else { q })
        .unwrap_or_default();
    json!({
        "symbol": t.symbol,
        "orderId": t.order_id.to_string(),
        "orderLinkId": link,
        "side": side_name(t.side),
        "orderPrice": order_price,
        "orderQty": order_qty,
        "leavesQty": "0",
        "createType": "CreateByUser",
        "orderType": order_type,
        "stopOrderType": "",
        "execFee": "0",
        "feeCurrency": fee_currency,
        "execId": t.id.to_string(),
        "execPrice": num(t.price),
        "execQty": num(t.quantity),
        "execType": "Trade",
        "execValue": num(t.quote_quantity),
        "execTime": ms(t.time_ms),
        "isMaker": maker,
        "feeRate": "0",
        "tradeIv": "",
        "markIv": "",
        "markPrice": "",
        "indexPrice": "",
        "underlyingPrice": "",
        "blockTradeId": "",
        "closedSize": "",
        "seq": t.id,
        "extraFees": "",
    })
}

fn execution_list(state: &mut VenueState, key: &SimKey, _: &SimRequest, args: &Args) -> Answer {
    let category = category_of(args)?;
    let limit = args.limit(50, 100)?;
    let symbol = args.opt("symbol")?;
    let by_id = args.opt("orderId")?;
    let start = args.int("startTime")?;
    let end = args.int("endTime")?;
    let exec_type = args.opt("execType")?;
    let list: Vec<Value> =
        if category == "spot" && exec_type.as_deref().is_none_or(|e| e == "Trade") {
            state
                .trades(&key.account, symbol.as_deref())
                .into_iter()
                .rev()
                .filter(|t| by_id.as_deref().is_none_or(|i| t.order_id.to_string() == i))
                .filter(|t| start.is_none_or(|s| t.time_ms >= s))
                .filter(|t| end.is_none_or(|e| t.time_ms <= e))
                .take(limit)
                .map(|t| execution_json(state, t))
                .collect()
        } else {
            Vec::new()
        };
    Ok(json!({"category": category, "list": list, "nextPageCursor": ""}))
}

// ---------------------------------------------------------------------------------------------
// Withdrawals, deposits, transfers

fn withdraw_create(state: &mut VenueState, key: &SimKey, _: &SimRequest, args: &Args) -> Answer {
    let now = args.now;
    let coin = args.req("coin")?;
    let address = args.req("address")?;
    let amount = args
        .decimal("amount")?
        .ok_or_else(|| bad("missing parameter `amount`", now))?;
    args.req("timestamp")?;
    let chain = args.opt("chain")?;
    let w = state
        .withdraw(&key.account, &coin, amount, &address, chain, now)
        .map_err(|e| native_error(Venue::Bybit, &e.denial(), now))?;
    Ok(json!({"id": w.id.to_string()}))
}

fn withdraw_records(state: &mut VenueState, key: &SimKey, _: &SimRequest, args: &Args) -> Answer {
    let coin = args.opt("coin")?;
    let id = args.opt("withdrawID")?;
    let limit = args.limit(50, 50)?;
    let acct = state
        .account(&key.account)
        .map_err(|_| internal(args.now))?;
    let rows: Vec<Value> = acct
        .withdrawals
        .iter()
        .rev()
        .filter(|w| coin.as_deref().is_none_or(|c| w.asset == c))
        .filter(|w| id.as_deref().is_none_or(|i| w.id.to_string() == i))
        .take(limit)
        .map(|w| {
            json!({
                "coin": w.asset,
                "chain": w.network.clone().unwrap_or_else(|| w.asset.clone()),
                "amount": num(w.amount),
                "txID": format!("sim-tx-{}", w.id),
                "status": "success",
                "toAddress": w.address,
                "tag": "",
                "withdrawFee": "0",
                "createTime": ms(w.time_ms),
                "updateTime": ms(w.time_ms),
                "withdrawId": w.id.to_string(),
                "withdrawType": 0,
            })
        })
        .collect();
    Ok(json!({"rows": rows, "nextPageCursor": ""}))
}

fn deposit_records(state: &mut VenueState, key: &SimKey, _: &SimRequest, args: &Args) -> Answer {
    let coin = args.opt("coin")?;
    let limit = args.limit(50, 50)?;
    let acct = state
        .account(&key.account)
        .map_err(|_| internal(args.now))?;
    let rows: Vec<Value> = acct
        .deposits
        .iter()
        .rev()
        .filter(|d| coin.as_deref().is_none_or(|c| d.asset == c))
        .take(limit)
        .map(|d| {
            json!({
                "id": d.id.to_string(),
                "coin": d.asset,
                "chain": d.asset,
                "amount": num(d.amount),
                "txID": format!("sim-tx-{}", d.id),
                "status": 3,
                "toAddress": "",
                "tag": "",
                "depositFee": "",
                "successAt": ms(d.time_ms),
                "confirmations": "1",
                "txIndex": "0",
                "blockHash": "",
                "batchReleaseLimit": "-1",
                "depositType": "0",
            })
        })
        .collect();
    Ok(json!({"rows": rows, "nextPageCursor": ""}))
}

const ACCOUNT_TYPES: &[&str] = &[
    "UNIFIED",
    "FUND",
    "CONTRACT",
    "SPOT",
    "OPTION",
    "INVESTMENT",
];

fn inter_transfer(state: &mut VenueState, key: &SimKey, _: &SimRequest, args: &Args) -> Answer {
    let now = args.now;
    let transfer_id = args.req("transferId")?;
    let coin = args.req("coin")?;
    let amount = args
        .decimal("amount")?
        .ok_or_else(|| bad("missing parameter `amount`", now))?;
    let from = args.req("fromAccountType")?;
    let to = args.req("toAccountType")?;
    for t in [&from, &to] {
        if !ACCOUNT_TYPES.contains(&t.as_str()) {
            return Err(bad(format!("invalid account type `{t}`"), now));
        }
    }
    if from == to {
        return Err(bad("fromAccountType and toAccountType are the same", now));
    }
    state
        .transfer(&key.account, &coin, amount, &from, &to, now)
        .map_err(|e| native_error(Venue::Bybit, &e.denial(), now))?;
    Ok(json!({"transferId": transfer_id, "status": "SUCCESS"}))
}

fn transfer_records(state: &mut VenueState, key: &SimKey, _: &SimRequest, args: &Args) -> Answer {
    let coin = args.opt("coin")?;
    let limit = args.limit(20, 50)?;
    let acct = state
        .account(&key.account)
        .map_err(|_| internal(args.now))?;
    let list: Vec<Value> = acct
        .transfers
        .iter()
        .rev()
        .filter(|t| coin.as_deref().is_none_or(|c| t.asset == c))
        .take(limit)
        .map(|t| {
            json!({
                "transferId": t.id.to_string(),
                "coin": t.asset,
                "amount": num(t.amount),
                "fromAccountType": t.from,
                "toAccountType": t.to,
                "timestamp": ms(t.time_ms),
                "status": "SUCCESS",
            })
        })
        .collect();
    Ok(json!({"list": list, "nextPageCursor": ""}))
}

#[cfg(test)]
mod tests {
    use keyfence_exchange::{
        Credential, HttpRequest, SecretString, SignContext, SigningKey, parse_key_info, sign,
    };
    use keyfence_types::Permission;
    use ring::rand::SystemRandom;

    use super::*;
    use crate::config::SimConfig;

    const NOW: i64 = 1_800_000_000_000;

    const CONFIG: &str = r#"
        [venues.bybit]
        bind = "127.0.0.1:0"
        prices = { BTCUSDT = "60000" }
        [[accounts]]
        venue = "bybit"
        name = "a"
        balances = { USDT = "10000", BTC = "1" }
        [[keys]]
        venue = "bybit"
        account = "a"
        api_key = "trader"
        secret = "trader-secret"
        permissions = ["Spot.SpotTrade", "Wallet.AccountTransfer"]
        label = "bot"
        created = "2026-01-01T00:00:00Z"
        expires = "2030-01-01T00:00:00Z"
        [[keys]]
        venue = "bybit"
        account = "a"
        api_key = "reader"
        secret = "reader-secret"
        [[keys]]
        venue = "bybit"
        account = "a"
        api_key = "far"
        secret = "far-secret"
        permissions = ["Spot.SpotTrade"]
        ip_allowlist = ["10.1.2.3"]
        [[keys]]
        venue = "bybit"
        account = "a"
        api_key = "old"
        secret = "old-secret"
        permissions = ["Spot.SpotTrade"]
        expires = "2020-01-01T00:00:00Z"
        [[keys]]
        venue = "bybit"
        account = "a"
        api_key = "payer"
        secret = "payer-secret"
        permissions = ["Wallet.Withdraw"]
        master = false
    "#;

    fn state() -> VenueState {
        let cfg = SimConfig::parse(CONFIG, "test").unwrap();
        VenueState::from_config(Venue::Bybit, &cfg).unwrap()
    }

    fn request(key: &str, secret: &str, method: &str, target: &str, body: &str) -> SimRequest {
        let rng = SystemRandom::new();
        let cred = Credential {
            api_key: key.into(),
            secret: Some(SecretString::new(secret.into())),
            private_key: None,
            passphrase: None,
        };
        let signing = SigningKey::from_credential(Venue::Bybit, &cred, &rng).unwrap();
        let mut http = HttpRequest::new(method, target).with_body(body);
        let ctx = SignContext {
            now_ms: NOW,
            nonce: None,
            host: "127.0.0.1",
            rng: &rng,
        };
        sign(Venue::Bybit, &signing, &mut http, &ctx).unwrap();
        SimRequest {
            venue: Venue::Bybit,
            http,
            peer: "127.0.0.1".parse().unwrap(),
            host: "127.0.0.1".into(),
            now_ms: NOW,
        }
    }

    fn call(
        st: &mut VenueState,
        key: &str,
        method: &str,
        target: &str,
        body: &str,
    ) -> (u16, Value) {
        let secret = format!("{key}-secret");
        let r = handle(st, &request(key, &secret, method, target, body));
        (
            r.status,
            serde_json::from_str(&r.body).unwrap_or(Value::Null),
        )
    }

    fn ret(v: &Value) -> i64 {
        v["retCode"].as_i64().unwrap()
    }

    #[test]
    fn key_info_comes_from_the_config_and_parses() {
        let mut st = state();
        let (status, v) = call(&mut st, "trader", "GET", "/v5/user/query-api", "");
        assert_eq!((status, ret(&v)), (200, 0));
        let r = &v["result"];
        assert_eq!(r["permissions"]["Spot"], json!(["SpotTrade"]));
        assert_eq!(r["permissions"]["Wallet"], json!(["AccountTransfer"]));
        assert_eq!(r["permissions"]["ContractTrade"], json!([]));
        assert_eq!(r["ips"], json!(["*"]));
        assert_eq!(r["readOnly"], 0);
        let p = parse_key_info(Venue::Bybit, &serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(p.can(Permission::SpotTrade) && p.can(Permission::Transfer));
        assert!(!p.can(Permission::Withdraw));
        assert_eq!(p.label.as_deref(), Some("bot"));
        assert_eq!(p.expires.map(|t| t.year()), Some(2030));
        assert_eq!(p.ip_restricted, Some(false));

        let (_, v) = call(&mut st, "reader", "GET", "/v5/user/query-api", "");
        assert_eq!(v["result"]["readOnly"], 1);
        assert_eq!(v["result"]["expiredAt"], "1970-01-01T00:00:00Z");
        let (_, v) = call(&mut st, "payer", "GET", "/v5/user/query-api", "");
        assert_eq!(v["result"]["isMaster"], false);
        assert_eq!(v["result"]["permissions"]["Wallet"], json!(["Withdraw"]));
    }

    #[test]
    fn authentication_failures_use_bybit_codes() {
        let mut st = state();
        let wrong = request("trader", "nope", "GET", "/v5/user/query-api", "");
        let r = handle(&mut st, &wrong);
        assert!(r.body.contains("10004"), "{}", r.body);
        for (key, code) in [("far", 10010), ("old", 33004), ("nobody", 10003)] {
            let (_, v) = call(
                &mut st,
                key,
                "GET",
                "/v5/account/wallet-balance?accountType=UNIFIED",
                "",
            );
            assert_eq!(ret(&v), code, "{key}");
        }
        let mut stale = request("trader", "trader-secret", "GET", "/v5/user/query-api", "");
        stale.now_ms = NOW + 60_000;
        let r = handle(&mut st, &stale);
        assert!(r.body.contains("10002"), "{}", r.body);
        let mut unsigned = request("trader", "trader-secret", "GET", "/v5/user/query-api", "");
        unsigned.http.remove_header("x-bapi-sign");
        assert!(handle(&mut st, &unsigned).body.contains("10004"));
    }

    #[test]
    fn orders_fill_rest_and_cancel() {
        let mut st = state();
        let limit = r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.1","price":"50000","orderLinkId":"l1"}"#;
        let (_, v) = call(&mut st, "trader", "POST", "/v5/order/create", limit);
        assert_eq!(ret(&v), 0, "{v}");
        assert_eq!(v["result"]["orderLinkId"], "l1");
        let (_, v) = call(&mut st, "trader", "POST", "/v5/order/create", limit);
        assert_eq!(ret(&v), 170141, "duplicate orderLinkId");
        // Quote-sized market buy: 600 USDT at 60000 buys 0.01 BTC.
        let (_, v) = call(
            &mut st,
            "trader",
            "POST",
            "/v5/order/create",
            r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"600"}"#,
        );
        assert_eq!(ret(&v), 0, "{v}");
        let (_, v) = call(
            &mut st,
            "trader",
            "POST",
            "/v5/order/create",
            r#"{"category":"spot","symbol":"BTCUSDT","side":"Sell","orderType":"Limit","qty":"0.1","price":"70000","timeInForce":"IOC"}"#,
        );
        let ioc = v["result"]["orderId"].as_str().unwrap().to_owned();
        let (_, v) = call(
            &mut st,
            "trader",
            "GET",
            &format!("/v5/order/realtime?category=spot&orderId={ioc}"),
            "",
        );
        assert_eq!(v["result"]["list"][0]["orderStatus"], "Cancelled");
        let (_, v) = call(
            &mut st,
            "trader",
            "GET",
            "/v5/order/realtime?category=spot",
            "",
        );
        let open = v["result"]["list"].as_array().unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0]["orderLinkId"], "l1");
        assert_eq!(open[0]["leavesQty"], "0.1");
        let (_, v) = call(
            &mut st,
            "trader",
            "GET",
            "/v5/account/wallet-balance?accountType=UNIFIED&coin=USDT",
            "",
        );
        let usdt = &v["result"]["list"][0]["coin"][0];
        assert_eq!(
            (usdt["walletBalance"].as_str(), usdt["locked"].as_str()),
            (Some("9400"), Some("5000"))
        );
        let (_, v) = call(
            &mut st,
            "trader",
            "POST",
            "/v5/order/cancel",
            r#"{"category":"spot","symbol":"BTCUSDT","orderLinkId":"l1"}"#,
        );
        assert_eq!(ret(&v), 0, "{v}");
        let (_, v) = call(
            &mut st,
            "trader",
            "POST",
            "/v5/order/cancel",
            r#"{"category":"spot","symbol":"BTCUSDT","orderLinkId":"l1"}"#,
        );
        assert_eq!(ret(&v), 170213, "already cancelled");
        let (_, v) = call(
            &mut st,
            "trader",
            "GET",
            "/v5/execution/list?category=spot",
            "",
        );
        let fills = v["result"]["list"].as_array().unwrap();
        assert_eq!(fills.len(), 1);
        assert_eq!(
            (fills[0]["execQty"].as_str(), fills[0]["execPrice"].as_str()),
            (Some("0.01"), Some("60000"))
        );
        let (_, v) = call(
            &mut st,
            "trader",
            "GET",
            "/v5/order/history?category=spot",
            "",
        );
        assert_eq!(v["result"]["list"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn batches_report_each_order() {
        let mut st = state();
        let body = r#"{"category":"spot","request":[
            {"symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.01","price":"40000"},
            {"symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"100","price":"40000"}]}"#;
        let (_, v) = call(&mut st, "trader", "POST", "/v5/order/create-batch", body);
        assert_eq!(ret(&v), 0, "{v}");
        assert_eq!(v["retExtInfo"]["list"][0]["code"], 0);
        assert_eq!(v["retExtInfo"]["list"][1]["code"], 170131);
        assert_ne!(v["result"]["list"][0]["orderId"], "");
        let (_, v) = call(
            &mut st,
            "trader",
            "POST",
            "/v5/order/cancel-all",
            r#"{"category":"spot"}"#,
        );
        assert_eq!(v["result"]["list"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn permissions_gate_writes() {
        let mut st = state();
        let order = r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"10"}"#;
        let (_, v) = call(&mut st, "reader", "POST", "/v5/order/create", order);
        assert_eq!(ret(&v), 10005);
        let (_, v) = call(
            &mut st,
            "reader",
            "GET",
            "/v5/account/wallet-balance?accountType=UNIFIED",
            "",
        );
        assert_eq!(ret(&v), 0, "any key reads");
        let linear = r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"1"}"#;
        let (_, v) = call(&mut st, "trader", "POST", "/v5/order/create", linear);
        assert_eq!(ret(&v), 10005, "contract trading needs ContractTrade.Order");
        let withdraw = r#"{"coin":"USDT","address":"0xabc","amount":"100","timestamp":1}"#;
        let (_, v) = call(
            &mut st,
            "trader",
            "POST",
            "/v5/asset/withdraw/create",
            withdraw,
        );
        assert_eq!(ret(&v), 10005);
        let (_, v) = call(
            &mut st,
            "payer",
            "POST",
            "/v5/asset/withdraw/create",
            withdraw,
        );
        assert_eq!(ret(&v), 0, "{v}");
        assert_eq!(st.account("a").unwrap().withdrawals.len(), 1);
        let (_, v) = call(
            &mut st,
            "payer",
            "GET",
            "/v5/asset/withdraw/query-record",
            "",
        );
        assert_eq!(v["result"]["rows"][0]["amount"], "100");
        let transfer = r#"{"transferId":"t1","coin":"USDT","amount":"1","fromAccountType":"UNIFIED","toAccountType":"FUND"}"#;
        let (_, v) = call(
            &mut st,
            "payer",
            "POST",
            "/v5/asset/transfer/inter-transfer",
            transfer,
        );
        assert_eq!(ret(&v), 10005);
        let (_, v) = call(
            &mut st,
            "trader",
            "POST",
            "/v5/asset/transfer/inter-transfer",
            transfer,
        );
        assert_eq!(v["result"]["status"], "SUCCESS");
    }

    #[test]
    fn malformed_requests_get_bybit_errors_and_never_panic() {
        let mut st = state();
        let huge = "9".repeat(40);
        let cases: Vec<(&str, String, String, u16, i64)> = vec![
            ("POST", "/v5/order/create".into(), "{".into(), 200, 10001),
            ("POST", "/v5/order/create".into(), "[1]".into(), 200, 10001),
            ("POST", "/v5/order/create".into(), r#"{"category":"spot","category":"spot"}"#.into(), 200, 10001),
            ("POST", "/v5/order/create".into(), r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"1","x":1}"#.into(), 200, 10001),
            ("POST", "/v5/order/create".into(), r#"{"category":"spot","symbol":"DOGEUSDT","side":"Buy","orderType":"Market","qty":"1"}"#.into(), 200, 10001),
            ("POST", "/v5/order/create".into(), format!(r#"{{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"{huge}","price":"{huge}"}}"#), 200, 10001),
            ("POST", "/v5/order/create".into(), r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"1000000000000","price":"1000000000000"}"#.into(), 200, 170131),
            ("POST", "/v5/order/create".into(), r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0","price":"1"}"#.into(), 200, 10001),
            ("POST", "/v5/order/create".into(), r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"1","price":"1","timeInForce":"Never"}"#.into(), 200, 10001),
            ("POST", "/v5/order/create".into(), r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.01","price":"70000","timeInForce":"PostOnly"}"#.into(), 200, 170218),
            ("POST", "/v5/order/create-batch".into(), r#"{"category":"spot","request":{}}"#.into(), 200, 10001),
            ("POST", "/v5/order/cancel".into(), r#"{"category":"spot","symbol":"BTCUSDT"}"#.into(), 200, 10001),
            ("POST", "/v5/order/cancel".into(), r#"{"category":"spot","symbol":"BTCUSDT","orderId":"abc"}"#.into(), 200, 170213),
            ("POST", "/v5/order/cancel".into(), r#"{"category":"nope","symbol":"BTCUSDT","orderId":"1"}"#.into(), 200, 10001),
            ("GET", "/v5/order/realtime".into(), String::new(), 200, 10001),
            ("GET", "/v5/order/realtime?category=spot&limit=0".into(), String::new(), 200, 10001),
            ("GET", "/v5/order/realtime?category=spot&category=spot".into(), String::new(), 200, 10001),
            ("GET", "/v5/order/realtime?category=spot&openOnly=7".into(), String::new(), 200, 10001),
            ("GET", "/v5/account/wallet-balance?accountType=SPOT".into(), String::new(), 200, 10001),
            ("GET", "/v5/execution/list?category=spot&startTime=x".into(), String::new(), 200, 10001),
            ("POST", "/v5/asset/transfer/inter-transfer".into(), r#"{"transferId":"t","coin":"USDT","amount":"1","fromAccountType":"FUND","toAccountType":"FUND"}"#.into(), 200, 10001),
            ("POST", "/v5/asset/transfer/inter-transfer".into(), format!(r#"{{"transferId":"t","coin":"USDT","amount":"{huge}","fromAccountType":"FUND","toAccountType":"UNIFIED"}}"#), 200, 10001),
            ("GET", "/v5/market/tickers?category=spot&symbol=NOPE".into(), String::new(), 200, 10001),
            ("GET", "/v5/market/instruments-info?category=futures".into(), String::new(), 200, 10001),
            ("GET", "/v5/market/instruments-info".into(), String::new(), 200, 10001),
            ("GET", "/v5/nothing/here".into(), String::new(), 404, 10017),
            ("POST", "/v5/user/query-api".into(), String::new(), 404, 10017),
            ("GET", "/v5/%ff".into(), String::new(), 404, 10017),
        ];
        for (method, target, body, status, code) in cases {
            let (s, v) = call(&mut st, "trader", method, &target, &body);
            assert_eq!(
                (s, v["retCode"].as_i64()),
                (status, Some(code)),
                "{method} {target} {body}"
            );
            assert!(v["retMsg"].is_string() && v["result"].is_object() && v["time"].is_i64());
        }
    }

    #[test]
    fn public_market_data() {
        let mut st = state();
        let r = handle(
            &mut st,
            &SimRequest {
                venue: Venue::Bybit,
                http: HttpRequest::new("GET", "/v5/market/instruments-info?category=spot"),
                peer: "127.0.0.1".parse().unwrap(),
                host: String::new(),
                now_ms: NOW,
            },
        );
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["result"]["list"][0]["symbol"], "BTCUSDT");
        assert_eq!(v["result"]["list"][0]["baseCoin"], "BTC");
        let r = handle(
            &mut st,
            &SimRequest {
                venue: Venue::Bybit,
                http: HttpRequest::new("GET", "/v5/market/time"),
                peer: "127.0.0.1".parse().unwrap(),
                host: String::new(),
                now_ms: NOW,
            },
        );
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["result"]["timeSecond"], "1800000000");
        assert_eq!(v["time"], NOW);
    }
}
