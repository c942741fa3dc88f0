//! The simulated Kraken spot REST API: `/0/public/<Method>` and `POST /0/private/<Method>`,
//! Kraken's asset names (`XXBT`, `ZUSD`), pair ids (`XXBTZUSD`, altname `XBTUSD`), txids
//! (`OABCDE-FGHIJ-KLMNOP`) and error envelope (`{"error":["EGeneral:Permission denied"]}`).
//! What it serves and how permissions gate it: `docs/sim/kraken.md`.

use std::collections::{BTreeMap, BTreeSet};

use keyfence_exchange::params::{Params, parse_json_strict};
use keyfence_exchange::path::canonical;
use keyfence_exchange::{Denial, DenialKind, NativeResponse, Order, OrderType, native_error};
use keyfence_types::{Side, Venue};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::state::{
    Kind, Market, NewOrder, OrderRecord, OrderRef, SimKey, SimRequest, Status, Trade, VenueState,
};

/// Permissions (the venue's own names) that let a key read and trade spot.
pub(crate) const TRADING_PERMISSIONS: &[&str] = &[
    "query-funds",
    "query-open-trades",
    "query-closed-trades",
    "modify-trades",
    "close-trades",
];

// ---------------------------------------------------------------------------------------------
// Asset and pair names

/// Kraken's legacy assets carry an `X` (crypto) or `Z` (fiat) prefix in their ids.
fn asset_id(alt: &str) -> String {
    match alt {
        "XBT" | "ETH" | "LTC" | "XRP" | "XLM" | "XMR" | "ETC" | "ZEC" | "REP" | "MLN" | "XDG" => {
            format!("X{alt}")
        }
        "USD" | "EUR" | "GBP" | "JPY" | "CAD" | "AUD" => format!("Z{alt}"),
        other => other.to_owned(),
    }
}

/// The altname of an asset id (`XXBT` -> `XBT`, `USDT` -> `USDT`).
fn asset_alt(id: &str) -> String {
    match id.get(1..) {
        Some(rest) if id.len() == 4 && asset_id(rest) == id => rest.to_owned(),
        _ => id.to_owned(),
    }
}

fn is_legacy(id: &str) -> bool {
    asset_alt(id) != id
}

pub(crate) fn split_symbol(symbol: &str) -> Option<(String, String)> {
    // The pair-id form of two legacy assets: `XXBTZUSD`, `XETHXXBT`.
    if symbol.len() == 8 && symbol.is_ascii() {
        let (b, q) = symbol.split_at(4);
        if is_legacy(b) && is_legacy(q) {
            return Some((b.to_owned(), q.to_owned()));
        }
    }
    let (base, quote) = super::split_by_quote_suffix(
        symbol,
        &[
            "USDT", "USDC", "USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF", "XBT", "ETH", "DAI",
        ],
    )?;
    Some((asset_id(&base), asset_id(&quote)))
}

/// The pair id Kraken keys its answers by: `XXBTZUSD` for two legacy assets, else the altname.
fn pair_id(m: &Market) -> String {
    if is_legacy(&m.base) && is_legacy(&m.quote) {
        format!("{}{}", m.base, m.quote)
    } else {
        altname(m)
    }
}

fn altname(m: &Market) -> String {
    format!("{}{}", asset_alt(&m.base), asset_alt(&m.quote))
}

fn wsname(m: &Market) -> String {
    format!("{}/{}", asset_alt(&m.base), asset_alt(&m.quote))
}

/// A market by any of Kraken's spellings of it (altname, pair id, wsname).
fn find_pair<'a>(state: &'a VenueState, name: &str) -> Option<&'a Market> {
    state.markets.values().find(|m| {
        [m.symbol.clone(), altname(m), pair_id(m), wsname(m)]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
    })
}

/// Every asset the exchange knows: market legs and account balances.
fn known_assets(state: &VenueState) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for m in state.markets.values() {
        out.insert(m.base.clone());
        out.insert(m.quote.clone());
    }
    for a in state.accounts.values() {
        out.extend(a.balances.keys().cloned());
    }
    out
}

/// An asset by id or altname (`XBT`, `XXBT`).
fn find_asset(state: &VenueState, name: &str) -> Option<String> {
    known_assets(state)
        .into_iter()
        .find(|a| a.eq_ignore_ascii_case(name) || asset_alt(a).eq_ignore_ascii_case(name))
}

fn is_fiat(id: &str) -> bool {
    id.starts_with('Z') && is_legacy(id)
}

fn asset_decimals(id: &str) -> u32 {
    if is_fiat(id) {
        4
    } else if matches!(id, "USDT" | "USDC" | "DAI") {
        8
    } else {
        10
    }
}

fn pair_decimals(price: Decimal) -> u32 {
    if price >= Decimal::from(10_000) {
        1
    } else if price >= Decimal::ONE {
        2
    } else {
        5
    }
}

/// `d` with exactly `dp` decimals, as Kraken prints amounts.
fn fixed(d: Decimal, dp: u32) -> String {
    // Padded by hand: `Decimal`'s precision formatting panics on very long numbers.
    let s = d.round_dp(dp).to_string();
    let (int, frac) = s.split_once('.').unwrap_or((s.as_str(), ""));
    if dp == 0 {
        int.to_owned()
    } else {
        format!("{int}.{frac:0<width$}", width = dp as usize)
    }
}

/// Quantities and prices above this are refused before they reach the ledger, so that no
/// product of two of them can overflow a `Decimal`.
const MAX_AMOUNT: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0); // 1e12

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

// ---------------------------------------------------------------------------------------------
// Ids: Kraken's `OXXXXX-XXXXX-XXXXXX` shape, reversible to the ledger's numeric ids.

const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const SCRAMBLE: u64 = 0x9E37_79B9_7F4A_7C15;

/// 16 check bits derived from the id fill the top of the 80 bits the 16 characters carry.
fn check_bits(x: u64) -> u128 {
    u128::from(x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 48)
}

/// An odd multiplier spreads consecutive ids over all the characters; it is invertible mod 2^64.
const SPREAD: u64 = 0xBF58_476D_1CE4_E5B9;

fn spread_inverse() -> u64 {
    // Newton's iteration for the inverse of an odd number modulo 2^64.
    let mut inv = SPREAD;
    for _ in 0..6 {
        inv = inv.wrapping_mul(2_u64.wrapping_sub(SPREAD.wrapping_mul(inv)));
    }
    inv
}

fn encode_id(prefix: char, id: u64) -> String {
    let x = (id ^ SCRAMBLE).wrapping_mul(SPREAD);
    let mut v = (check_bits(x) << 64) | u128::from(x);
    let mut chars = [b'A'; 16];
    for c in chars.iter_mut().rev() {
        *c = ALPHABET[(v % 32) as usize];
        v /= 32;
    }
    let s = String::from_utf8_lossy(&chars).into_owned();
    format!("{prefix}{}-{}-{}", &s[..5], &s[5..10], &s[10..])
}

fn decode_id(prefix: char, txid: &str) -> Option<u64> {
    let rest = txid.strip_prefix(prefix)?;
    let parts: Vec<&str> = rest.split('-').collect();
    if parts.len() != 3 || parts[0].len() != 5 || parts[1].len() != 5 || parts[2].len() != 6 {
        return None;
    }
    let mut v: u128 = 0;
    for c in parts.concat().bytes() {
        let digit = ALPHABET.iter().position(|a| *a == c.to_ascii_uppercase())?;
        v = v * 32 + digit as u128;
    }
    let x = u64::try_from(v & u128::from(u64::MAX)).ok()?;
    (v >> 64 == check_bits(x)).then(|| x.wrapping_mul(spread_inverse()) ^ SCRAMBLE)
}

// ---------------------------------------------------------------------------------------------
// Answers

fn ok(result: Value) -> NativeResponse {
    NativeResponse::json(200, json!({ "error": [], "result": result }))
}

fn deny(req: &SimRequest, kind: DenialKind) -> NativeResponse {
    native_error(Venue::Kraken, &Denial::new(kind, ""), req.now_ms)
}

/// A Kraken error code the shared denial kinds do not cover (`EQuery:Unknown asset`).
fn kraken_error(code: &str) -> NativeResponse {
    NativeResponse::json(200, json!({ "error": [code] }))
}

type Answer = Result<Value, NativeResponse>;

// ---------------------------------------------------------------------------------------------
// Parameters

/// A request's parameters: a form (query or body) or a JSON object, read strictly (a name sent
/// twice is refused).
struct Args(BTreeMap<String, Value>);

impl Args {
    fn read(req: &SimRequest, from_query: bool) -> Result<Args, NativeResponse> {
        let bad = |_| deny(req, DenialKind::BadRequest);
        let http = &req.http;
        let ct = http
            .header("content-type")
            .unwrap_or("")
            .to_ascii_lowercase();
        if !from_query && ct.contains("json") {
            return match parse_json_strict(&http.body).map_err(bad)? {
                Value::Object(m) => Ok(Args(m.into_iter().collect())),
                _ => Err(deny(req, DenialKind::BadRequest)),
            };
        }
        let params = if from_query {
            Params::parse(&http.query).map_err(bad)?
        } else {
            Params::parse_bytes(&http.body).map_err(bad)?
        };
        Ok(Args(
            params
                .iter()
                .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                .collect(),
        ))
    }

    fn str(&self, name: &str) -> Option<String> {
        match self.0.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    fn flag(&self, name: &str) -> bool {
        self.str(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }

    /// Refuse parameters the endpoint does not know (`nonce` and `otp` are always allowed).
    fn only(&self, allowed: &[&str]) -> bool {
        self.0
            .keys()
            .all(|k| k == "nonce" || k == "otp" || allowed.contains(&k.as_str()))
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.str(name)
            .map(|s| {
                s.split(',')
                    .map(|x| x.trim().to_owned())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Routing

struct Endpoint {
    name: &'static str,
    /// Any one of these permissions lets a key call the endpoint; empty: none needed.
    permissions: &'static [&'static str],
    params: &'static [&'static str],
    run: fn(&mut VenueState, &SimRequest, &SimKey, &Args) -> Answer,
}

const ORDER_PARAMS: &[&str] = &[
    "pair",
    "type",
    "ordertype",
    "volume",
    "displayvol",
    "price",
    "price2",
    "trigger",
    "leverage",
    "reduce_only",
    "stptype",
    "stp_type",
    "oflags",
    "timeinforce",
    "starttm",
    "expiretm",
    "close[ordertype]",
    "close[price]",
    "close[price2]",
    "deadline",
    "validate",
    "userref",
    "cl_ord_id",
    "asset_class",
];

const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        name: "getapikeyinfo",
        permissions: &[],
        params: &[],
        run: api_key_info,
    },
    Endpoint {
        name: "balance",
        permissions: &["query-funds"],
        params: &["rebase_multiplier"],
        run: balance,
    },
    Endpoint {
        name: "balanceex",
        permissions: &["query-funds"],
        params: &["rebase_multiplier"],
        run: balance_ex,
    },
    Endpoint {
        name: "tradebalance",
        permissions: &["query-funds"],
        params: &["asset", "aclass", "rebase_multiplier"],
        run: trade_balance,
    },
    Endpoint {
        name: "addorder",
        permissions: &["modify-trades"],
        params: ORDER_PARAMS,
        run: add_order,
    },
    Endpoint {
        name: "addorderbatch",
        permissions: &["modify-trades"],
        params: &["orders", "pair", "deadline", "validate", "asset_class"],
        run: add_order_batch,
    },
    Endpoint {
        name: "cancelorder",
        permissions: &["close-trades"],
        params: &["txid", "cl_ord_id"],
        run: cancel_order,
    },
    Endpoint {
        name: "cancelall",
        permissions: &["close-trades"],
        params: &[],
        run: cancel_all,
    },
    Endpoint {
        name: "openorders",
        permissions: &["query-open-trades"],
        params: &["trades", "userref", "cl_ord_id", "rebase_multiplier"],
        run: open_orders,
    },
    Endpoint {
        name: "closedorders",
        permissions: &["query-closed-trades"],
        params: &[
            "trades",
            "userref",
            "cl_ord_id",
            "start",
            "end",
            "ofs",
            "closetime",
            "consolidate_taker",
            "without_count",
            "rebase_multiplier",
        ],
        run: closed_orders,
    },
    Endpoint {
        name: "queryorders",
        permissions: &["query-open-trades", "query-closed-trades"],
        params: &[
            "txid",
            "trades",
            "userref",
            "consolidate_taker",
            "rebase_multiplier",
        ],
        run: query_orders,
    },
    Endpoint {
        name: "tradeshistory",
        permissions: &["query-open-trades", "query-closed-trades"],
        params: &[
            "type",
            "trades",
            "start",
            "end",
            "ofs",
            "consolidate_taker",
            "ledgers",
            "without_count",
            "rebase_multiplier",
        ],
        run: trades_history,
    },
    Endpoint {
        name: "querytrades",
        permissions: &["query-open-trades", "query-closed-trades"],
        params: &["txid", "trades", "rebase_multiplier"],
        run: query_trades,
    },
    Endpoint {
        name: "withdraw",
        permissions: &["withdraw-funds"],
        params: &["asset", "key", "amount", "address", "max_fee", "aclass"],
        run: withdraw,
    },
    Endpoint {
        name: "withdrawstatus",
        permissions: &["withdraw-funds", "query-funds"],
        params: &[
            "asset",
            "aclass",
            "method",
            "start",
            "end",
            "cursor",
            "limit",
            "rebase_multiplier",
        ],
        run: withdraw_status,
    },
    Endpoint {
        name: "depositstatus",
        permissions: &["deposit-funds", "query-funds"],
        params: &[
            "asset",
            "aclass",
            "method",
            "start",
            "end",
            "cursor",
            "limit",
            "rebase_multiplier",
        ],
        run: deposit_status,
    },
    Endpoint {
        name: "depositmethods",
        permissions: &["deposit-funds"],
        params: &["asset", "aclass", "rebase_multiplier"],
        run: deposit_methods,
    },
    Endpoint {
        name: "wallettransfer",
        permissions: &["withdraw-funds"],
        params: &["asset", "from", "to", "amount"],
        run: wallet_transfer,
    },
];

pub(crate) fn handle(state: &mut VenueState, req: &SimRequest) -> NativeResponse {
    let Some(path) = canonical(&req.http.path) else {
        return deny(req, DenialKind::NotFound);
    };
    if let Some(method) = path.strip_prefix("/0/public/") {
        return public(state, req, method);
    }
    let Some(method) = path.strip_prefix("/0/private/") else {
        return deny(req, DenialKind::NotFound);
    };
    let Some(ep) = ENDPOINTS.iter().find(|e| e.name == method) else {
        return deny(req, DenialKind::NotFound);
    };
    if req.http.method != "POST" {
        return deny(req, DenialKind::NotFound);
    }
    let key = match state.authenticate(req) {
        Ok(k) => k,
        Err(e) => return deny(req, DenialKind::Auth(e)),
    };
    if !ep.permissions.is_empty() && !ep.permissions.iter().any(|p| key.has(p)) {
        return deny(req, DenialKind::PermissionDenied);
    }
    let args = match Args::read(req, false) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if !args.only(ep.params) {
        return deny(req, DenialKind::BadRequest);
    }
    match (ep.run)(state, req, &key, &args) {
        Ok(result) => ok(result),
        Err(r) => r,
    }
}

// ---------------------------------------------------------------------------------------------
// Public market data

fn public(state: &VenueState, req: &SimRequest, method: &str) -> NativeResponse {
    let from_query = req.http.method != "POST";
    let args = match Args::read(req, from_query) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let answer = match method {
        "time" => Ok(server_time(req.now_ms)),
        "systemstatus" => Ok(json!({
            "status": "online",
            "timestamp": rfc3339(req.now_ms),
        })),
        "assets" => assets(state, req, &args),
        "assetpairs" => asset_pairs(state, req, &args),
        "ticker" => ticker(state, req, &args),
        _ => Err(deny(req, DenialKind::NotFound)),
    };
    match answer {
        Ok(v) => ok(v),
        Err(r) => r,
    }
}

fn datetime(now_ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(now_ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn rfc3339(now_ms: i64) -> String {
    datetime(now_ms)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn server_time(now_ms: i64) -> Value {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year repr:last_two] [hour]:[minute]:[second] +0000"
    );
    json!({
        "unixtime": now_ms.div_euclid(1000),
        "rfc1123": datetime(now_ms).format(&fmt).unwrap_or_default(),
    })
}

fn assets(state: &VenueState, _req: &SimRequest, args: &Args) -> Answer {
    let all = known_assets(state);
    let wanted = args.list("asset");
    let mut chosen = Vec::new();
    if wanted.is_empty() {
        chosen.extend(all);
    } else {
        for w in &wanted {
            match find_asset(state, w) {
                Some(a) => chosen.push(a),
                None => return Err(kraken_error("EQuery:Unknown asset")),
            }
        }
    }
    let mut out = Map::new();
    for id in chosen {
        let fiat = is_fiat(&id);
        out.insert(
            id.clone(),
            json!({
                "aclass": "currency",
                "altname": asset_alt(&id),
                "decimals": asset_decimals(&id),
                "display_decimals": if fiat { 2 } else { 5 },
                "collateral_value": 1.0,
                "status": "enabled",
            }),
        );
    }
    Ok(Value::Object(out))
}

fn chosen_pairs<'a>(state: &'a VenueState, args: &Args) -> Result<Vec<&'a Market>, NativeResponse> {
    let wanted = args.list("pair");
    if wanted.is_empty() {
        return Ok(state.markets.values().collect());
    }
    wanted
        .iter()
        .map(|w| find_pair(state, w).ok_or_else(|| kraken_error("EQuery:Unknown asset pair")))
        .collect()
}

fn asset_pairs(state: &VenueState, _req: &SimRequest, args: &Args) -> Answer {
    let mut out = Map::new();
    for m in chosen_pairs(state, args)? {
        let pd = pair_decimals(m.price);
        out.insert(
            pair_id(m),
            json!({
                "altname": altname(m),
                "wsname": wsname(m),
                "aclass_base": "currency",
                "base": m.base,
                "aclass_quote": "currency",
                "quote": m.quote,
                "lot": "unit",
                "cost_decimals": asset_decimals(&m.quote).min(5),
                "pair_decimals": pd,
                "lot_decimals": 8,
                "lot_multiplier": 1,
                "leverage_buy": [],
                "leverage_sell": [],
                "fees": [[0, 0.4], [10000, 0.35], [50000, 0.24]],
                "fees_maker": [[0, 0.25], [10000, 0.2], [50000, 0.14]],
                "fee_volume_currency": "ZUSD",
                "margin_call": 80,
                "margin_stop": 40,
                "ordermin": "0.0001",
                "costmin": "0.5",
                "tick_size": fixed(Decimal::new(1, pd), pd),
                "status": "online",
            }),
        );
    }
    Ok(Value::Object(out))
}

fn ticker(state: &VenueState, _req: &SimRequest, args: &Args) -> Answer {
    let mut out = Map::new();
    for m in chosen_pairs(state, args)? {
        let p = fixed(m.price, pair_decimals(m.price));
        out.insert(
            pair_id(m),
            json!({
                "a": [p, "1", "1.000"],
                "b": [p, "1", "1.000"],
                "c": [p, "0.00100000"],
                "v": ["0.00000000", "0.00000000"],
                "p": [p, p],
                "t": [0, 0],
                "l": [p, p],
                "h": [p, p],
                "o": p,
            }),
        );
    }
    Ok(Value::Object(out))
}

// ---------------------------------------------------------------------------------------------
// Account data

fn api_key_info(state: &mut VenueState, req: &SimRequest, key: &SimKey, _: &Args) -> Answer {
    let nonce = state.last_nonce.get(&key.api_key).copied().unwrap_or(0);
    let created = key.created.unix_timestamp().to_string();
    Ok(json!({
        "apiKeyName": key.label.clone().unwrap_or_else(|| key.api_key.clone()),
        "apiKey": key.api_key,
        "nonce": nonce.to_string(),
        "nonceWindow": 0,
        "permissions": key.permissions.iter().collect::<Vec<_>>(),
        "iban": format!("KF00 SIM0 {}", key.account.to_ascii_uppercase()),
        "validUntil": key.expires.map_or_else(|| "0".to_owned(), |e| e.unix_timestamp().to_string()),
        "queryFrom": "0",
        "queryTo": "0",
        "createdTime": created,
        "modifiedTime": created,
        "ipAllowlist": key.ip_allowlist,
        "lastUsed": req.now_ms.div_euclid(1000).to_string(),
    }))
}

fn account_of<'a>(
    state: &'a VenueState,
    req: &SimRequest,
    key: &SimKey,
) -> Result<&'a crate::state::Account, NativeResponse> {
    state
        .account(&key.account)
        .map_err(|e| deny(req, e.denial().kind))
}

fn balance(state: &mut VenueState, req: &SimRequest, key: &SimKey, _: &Args) -> Answer {
    let acct = account_of(state, req, key)?;
    let out: Map<String, Value> = acct
        .balances
        .iter()
        .map(|(a, b)| {
            (
                a.clone(),
                Value::String(fixed(b.free + b.locked, asset_decimals(a))),
            )
        })
        .collect();
    Ok(Value::Object(out))
}

fn balance_ex(state: &mut VenueState, req: &SimRequest, key: &SimKey, _: &Args) -> Answer {
    let acct = account_of(state, req, key)?;
    let out: Map<String, Value> = acct
        .balances
        .iter()
        .map(|(a, b)| {
            let dp = asset_decimals(a);
            (
                a.clone(),
                json!({
                    "balance": fixed(b.free + b.locked, dp),
                    "hold_trade": fixed(b.locked, dp),
                }),
            )
        })
        .collect();
    Ok(Value::Object(out))
}

fn trade_balance(state: &mut VenueState, req: &SimRequest, key: &SimKey, args: &Args) -> Answer {
    let target = match args.str("asset") {
        Some(a) => find_asset(state, &a).ok_or_else(|| kraken_error("EQuery:Unknown asset"))?,
        None => "ZUSD".to_owned(),
    };
    let acct = account_of(state, req, key)?;
    let mut total = Decimal::ZERO;
    for (asset, b) in &acct.balances {
        let amount = b.free + b.locked;
        if *asset == target {
            total += amount;
            continue;
        }
        for m in state.markets.values() {
            let value = if m.base == *asset && m.quote == target {
                amount.checked_mul(m.price)
            } else if m.quote == *asset && m.base == target {
                amount.checked_div(m.price)
            } else {
                continue;
            };
            total = value
                .and_then(|v| total.checked_add(v))
                .unwrap_or(Decimal::MAX);
            break;
        }
    }
    let t = fixed(total, 4);
    Ok(json!({
        "eb": t, "tb": t, "m": "0.0000", "uv": "0.0000", "n": "0.0000",
        "c": "0.0000", "v": "0.0000", "e": t, "mf": t,
    }))
}

// ---------------------------------------------------------------------------------------------
// Orders

fn txid(o: &OrderRecord) -> String {
    encode_id('O', o.id)
}

fn trade_txid(t: &Trade) -> String {
    encode_id('T', t.id)
}

fn side_str(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn kind_str(k: Kind) -> &'static str {
    match k {
        Kind::Market => "market",
        Kind::Limit => "limit",
    }
}

fn describe(side: Side, volume: Decimal, alt: &str, kind: Kind, price: Option<Decimal>) -> String {
    match (kind, price) {
        (Kind::Limit, Some(p)) => format!(
            "{} {} {alt} @ limit {}",
            side_str(side),
            fixed(volume, 8),
            p.normalize()
        ),
        _ => format!("{} {} {alt} @ market", side_str(side), fixed(volume, 8)),
    }
}

/// `cl_ord_id` is kept as the ledger's client id; a `userref` as `userref:<n>`.
fn userref(o: &OrderRecord) -> i64 {
    o.client_id
        .strip_prefix("userref:")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn cl_ord_id(o: &OrderRecord) -> Option<&str> {
    let c = o.client_id.as_str();
    (!c.starts_with("userref:") && !c.starts_with("sim-")).then_some(c)
}

fn order_json(state: &VenueState, o: &OrderRecord, with_trades: bool) -> Value {
    let market = state.markets.get(&o.symbol);
    let alt = market.map_or_else(|| o.symbol.clone(), altname);
    let pd = market.map_or(2, |m| pair_decimals(m.price));
    let status = match o.status {
        Status::New => "open",
        Status::Filled => "closed",
        Status::Canceled => "canceled",
    };
    let mut v = json!({
        "refid": null,
        "userref": userref(o),
        "status": status,
        "opentm": secs(o.created_ms),
        "starttm": 0,
        "expiretm": 0,
        "descr": {
            "pair": alt,
            "type": side_str(o.side),
            "ordertype": kind_str(o.kind),
            "price": fixed(o.price.unwrap_or(Decimal::ZERO), pd),
            "price2": "0",
            "leverage": "none",
            "order": describe(o.side, o.quantity, &alt, o.kind, o.price),
            "close": "",
        },
        "vol": fixed(o.quantity, 8),
        "vol_exec": fixed(o.filled, 8),
        "cost": fixed(o.filled_quote, 5),
        "fee": "0.00000",
        "price": fixed(o.average_price().unwrap_or(Decimal::ZERO), pd),
        "stopprice": "0.00000",
        "limitprice": "0.00000",
        "misc": "",
        "oflags": "fciq",
    });
    if let Some(obj) = v.as_object_mut() {
        if o.status != Status::New {
            obj.insert("closetm".into(), json!(secs(o.updated_ms)));
            let reason = if o.status == Status::Canceled {
                json!("User requested")
            } else {
                Value::Null
            };
            obj.insert("reason".into(), reason);
        }
        if let Some(c) = cl_ord_id(o) {
            obj.insert("cl_ord_id".into(), json!(c));
        }
        if with_trades {
            let tids: Vec<String> = state
                .accounts
                .get(&o.account)
                .map(|a| {
                    a.trades
                        .iter()
                        .filter(|t| t.order_id == o.id)
                        .map(trade_txid)
                        .collect()
                })
                .unwrap_or_default();
            if !tids.is_empty() {
                obj.insert("trades".into(), json!(tids));
            }
        }
    }
    v
}

fn trade_json(state: &VenueState, t: &Trade) -> Value {
    let market = state.markets.get(&t.symbol);
    let pd = market.map_or(2, |m| pair_decimals(m.price));
    let ordertype = state
        .accounts
        .get(&t.account)
        .and_then(|a| a.orders.iter().find(|o| o.id == t.order_id))
        .map_or("market", |o| kind_str(o.kind));
    json!({
        "ordertxid": encode_id('O', t.order_id),
        "postxid": encode_id('P', t.order_id),
        "pair": market.map_or_else(|| t.symbol.clone(), pair_id),
        "aclass": "forex",
        "time": secs(t.time_ms),
        "type": side_str(t.side),
        "ordertype": ordertype,
        "price": fixed(t.price, pd),
        "cost": fixed(t.quote_quantity, 5),
        "fee": "0.00000",
        "vol": fixed(t.quantity, 8),
        "margin": "0.00000",
        "leverage": "0",
        "misc": "",
        "trade_id": t.id,
        "maker": false,
    })
}

/// Place one parsed order on the ledger; the answer is `{descr, txid}` (or `{descr}` when
/// only validating).
fn place(
    state: &mut VenueState,
    req: &SimRequest,
    key: &SimKey,
    order: &Order,
    validate: bool,
) -> Answer {
    let market = find_pair(state, &order.symbol)
        .cloned()
        .ok_or_else(|| deny(req, DenialKind::UnknownSymbol))?;
    let kind = match order.order_type {
        OrderType::Market => Kind::Market,
        OrderType::Limit => Kind::Limit,
        // The simulator fills market and limit orders only.
        OrderType::Other(_) => return Err(deny(req, DenialKind::BadRequest)),
    };
    let volume = order
        .quantity
        .or(order.quote_quantity)
        .unwrap_or(Decimal::ZERO);
    if volume > MAX_AMOUNT || order.price.is_some_and(|p| p > MAX_AMOUNT) {
        return Err(deny(req, DenialKind::BadRequest));
    }
    let descr = describe(order.side, volume, &altname(&market), kind, order.price);
    if validate {
        return Ok(json!({ "descr": { "order": descr } }));
    }
    let client_id = order.client_id.as_ref().map(|c| {
        if !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
            format!("userref:{c}")
        } else {
            c.clone()
        }
    });
    let new = NewOrder {
        symbol: market.symbol.clone(),
        side: order.side,
        kind,
        quantity: order.quantity,
        quote_quantity: order.quote_quantity,
        price: order.price,
        client_id,
    };
    let rec = state
        .place_order(&key.account, new, req.now_ms)
        .map_err(|e| deny(req, e.denial().kind))?;
    Ok(json!({ "descr": { "order": descr }, "txid": [txid(&rec)] }))
}

fn add_order(state: &mut VenueState, req: &SimRequest, key: &SimKey, args: &Args) -> Answer {
    let orders = keyfence_exchange::parse_orders(Venue::Kraken, &req.http)
        .map_err(|_| deny(req, DenialKind::BadRequest))?;
    // Conditional close orders (a second order) are not simulated.
    let [order] = orders.as_slice() else {
        return Err(deny(req, DenialKind::BadRequest));
    };
    place(state, req, key, order, args.flag("validate"))
}

fn add_order_batch(state: &mut VenueState, req: &SimRequest, key: &SimKey, args: &Args) -> Answer {
    let orders = keyfence_exchange::parse_orders(Venue::Kraken, &req.http)
        .map_err(|_| deny(req, DenialKind::BadRequest))?;
    let count = args
        .0
        .get("orders")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if orders.len() != count || orders.len() > 15 {
        return Err(deny(req, DenialKind::BadRequest));
    }
    if let Some(o) = orders.first()
        && find_pair(state, &o.symbol).is_none()
    {
        return Err(deny(req, DenialKind::UnknownSymbol));
    }
    let validate = args.flag("validate");
    let mut out = Vec::new();
    for o in &orders {
        match place(state, req, key, o, validate) {
            Ok(v) => {
                let mut entry = v;
                if let Some(obj) = entry.as_object_mut()
                    && let Some(Value::Array(t)) = obj.remove("txid")
                    && let Some(first) = t.into_iter().next()
                {
                    obj.insert("txid".into(), first);
                }
                out.push(entry);
            }
            Err(r) => {
                let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
                out.push(json!({ "error": v["error"][0].clone() }));
            }
        }
    }
    Ok(json!({ "orders": out }))
}

/// The orders a `txid` value names: a txid, a numeric `userref`, or a client order id.
fn order_refs(state: &VenueState, account: &str, value: &str) -> Vec<OrderRef> {
    if let Some(id) = decode_id('O', value) {
        return vec![OrderRef::Id(id)];
    }
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        let tag = format!("userref:{value}");
        return state
            .open_orders(account, None)
            .into_iter()
            .filter(|o| o.client_id == tag)
            .map(|o| OrderRef::Id(o.id))
            .collect();
    }
    vec![OrderRef::ClientId(value.to_owned())]
}

fn cancel_order(state: &mut VenueState, req: &SimRequest, key: &SimKey, args: &Args) -> Answer {
    let refs = match (args.str("txid"), args.str("cl_ord_id")) {
        (Some(t), None) => order_refs(state, &key.account, &t),
        (None, Some(c)) => vec![OrderRef::ClientId(c)],
        _ => return Err(deny(req, DenialKind::BadRequest)),
    };
    if refs.is_empty() {
        return Err(deny(req, DenialKind::UnknownOrder));
    }
    let mut count = 0;
    for r in &refs {
        state
            .cancel_order(&key.account, r, req.now_ms)
            .map_err(|e| deny(req, e.denial().kind))?;
        count += 1;
    }
    Ok(json!({ "count": count }))
}

fn cancel_all(state: &mut VenueState, req: &SimRequest, key: &SimKey, _: &Args) -> Answer {
    let ids: Vec<u64> = state
        .open_orders(&key.account, None)
        .iter()
        .map(|o| o.id)
        .collect();
    for id in &ids {
        state
            .cancel_order(&key.account, &OrderRef::Id(*id), req.now_ms)
            .map_err(|e| deny(req, e.denial().kind))?;
    }
    Ok(json!({ "count": ids.len() }))
}

fn matches_filters(o: &OrderRecord, args: &Args) -> bool {
    let by_userref = args
        .str("userref")
        .is_none_or(|u| u.parse::<i64>().ok() == Some(userref(o)));
    let by_client = args
        .str("cl_ord_id")
        .is_none_or(|c| cl_ord_id(o) == Some(c.as_str()));
    by_userref && by_client
}

fn open_orders(state: &mut VenueState, _req: &SimRequest, key: &SimKey, args: &Args) -> Answer {
    let trades = args.flag("trades");
    let open: Map<String, Value> = state
        .open_orders(&key.account, None)
        .into_iter()
        .filter(|o| matches_filters(o, args))
        .map(|o| (txid(o), order_json(state, o, trades)))
        .collect();
    Ok(json!({ "open": open }))
}

fn closed_orders(state: &mut VenueState, _req: &SimRequest, key: &SimKey, args: &Args) -> Answer {
    let trades = args.flag("trades");
    let mut list: Vec<&OrderRecord> = state
        .orders(&key.account, None)
        .into_iter()
        .filter(|o| o.status != Status::New && matches_filters(o, args))
        .collect();
    list.reverse();
    let count = list.len();
    let closed: Map<String, Value> = list
        .into_iter()
        .map(|o| (txid(o), order_json(state, o, trades)))
        .collect();
    Ok(json!({ "closed": closed, "count": count }))
}

fn query_orders(state: &mut VenueState, req: &SimRequest, key: &SimKey, args: &Args) -> Answer {
    let ids = args.list("txid");
    if ids.is_empty() || ids.len() > 50 {
        return Err(deny(req, DenialKind::BadRequest));
    }
    let trades = args.flag("trades");
    let mut out = Map::new();
    for t in &ids {
        let id = decode_id('O', t).ok_or_else(|| deny(req, DenialKind::UnknownOrder))?;
        let o = state
            .find_order(&key.account, &OrderRef::Id(id))
            .map_err(|e| deny(req, e.denial().kind))?;
        out.insert(t.clone(), order_json(state, o, trades));
    }
    Ok(Value::Object(out))
}

fn trades_history(state: &mut VenueState, _req: &SimRequest, key: &SimKey, _: &Args) -> Answer {
    let mut list = state.trades(&key.account, None);
    list.reverse();
    let count = list.len();
    let trades: Map<String, Value> = list
        .into_iter()
        .map(|t| (trade_txid(t), trade_json(state, t)))
        .collect();
    Ok(json!({ "trades": trades, "count": count }))
}

fn query_trades(state: &mut VenueState, req: &SimRequest, key: &SimKey, args: &Args) -> Answer {
    let ids = args.list("txid");
    if ids.is_empty() || ids.len() > 20 {
        return Err(deny(req, DenialKind::BadRequest));
    }
    let mut out = Map::new();
    for tid in &ids {
        let id = decode_id('T', tid).ok_or_else(|| kraken_error("EQuery:Unknown trade"))?;
        let t = state
            .trades(&key.account, None)
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| kraken_error("EQuery:Unknown trade"))?;
        out.insert(tid.clone(), trade_json(state, t));
    }
    Ok(Value::Object(out))
}

// ---------------------------------------------------------------------------------------------
// Funding

fn positive_amount(req: &SimRequest, args: &Args, name: &str) -> Result<Decimal, NativeResponse> {
    args.str(name)
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
        .and_then(|s| s.parse::<Decimal>().ok())
        .filter(|d| *d > Decimal::ZERO)
        .ok_or_else(|| deny(req, DenialKind::BadRequest))
}

fn required_asset(
    state: &VenueState,
    req: &SimRequest,
    args: &Args,
) -> Result<String, NativeResponse> {
    let name = args
        .str("asset")
        .ok_or_else(|| deny(req, DenialKind::BadRequest))?;
    find_asset(state, &name).ok_or_else(|| kraken_error("EFunding:Unknown asset"))
}

fn withdraw(state: &mut VenueState, req: &SimRequest, key: &SimKey, args: &Args) -> Answer {
    let asset = required_asset(state, req, args)?;
    let withdraw_key = args
        .str("key")
        .filter(|k| !k.is_empty())
        .ok_or_else(|| deny(req, DenialKind::BadRequest))?;
    let amount = positive_amount(req, args, "amount")?;
    let address = args.str("address").unwrap_or_else(|| withdraw_key.clone());
    let w = state
        .withdraw(
            &key.account,
            &asset,
            amount,
            &address,
            Some(withdraw_key),
            req.now_ms,
        )
        .map_err(|e| deny(req, e.denial().kind))?;
    Ok(json!({ "refid": encode_id('A', w.id) }))
}

fn funding_filter(state: &VenueState, args: &Args) -> Result<Option<String>, NativeResponse> {
    match args.str("asset") {
        Some(a) => find_asset(state, &a)
            .map(Some)
            .ok_or_else(|| kraken_error("EFunding:Unknown asset")),
        None => Ok(None),
    }
}

fn withdraw_status(state: &mut VenueState, req: &SimRequest, key: &SimKey, args: &Args) -> Answer {
    let only = funding_filter(state, args)?;
    let acct = account_of(state, req, key)?;
    let list: Vec<Value> = acct
        .withdrawals
        .iter()
        .filter(|w| only.as_ref().is_none_or(|a| *a == w.asset))
        .map(|w| {
            json!({
                "method": asset_alt(&w.asset),
                "aclass": "currency",
                "asset": w.asset,
                "refid": encode_id('A', w.id),
                "txid": format!("{:064x}", u128::from(w.id) * 0x9E37_79B9),
                "info": w.address,
                "key": w.network,
                "amount": fixed(w.amount, asset_decimals(&w.asset)),
                "fee": "0.0000000000",
                "time": w.time_ms.div_euclid(1000),
                "status": "Success",
            })
        })
        .collect();
    Ok(Value::Array(list))
}

fn deposit_status(state: &mut VenueState, req: &SimRequest, key: &SimKey, args: &Args) -> Answer {
    let only = funding_filter(state, args)?;
    let acct = account_of(state, req, key)?;
    let list: Vec<Value> = acct
        .deposits
        .iter()
        .filter(|d| only.as_ref().is_none_or(|a| *a == d.asset))
        .map(|d| {
            json!({
                "method": asset_alt(&d.asset),
                "aclass": "currency",
                "asset": d.asset,
                "refid": encode_id('Q', d.id),
                "txid": format!("{:064x}", u128::from(d.id) * 0x9E37_79B9),
                "info": "",
                "amount": fixed(d.amount, asset_decimals(&d.asset)),
                "fee": "0.0000000000",
                "time": d.time_ms.div_euclid(1000),
                "status": "Success",
            })
        })
        .collect();
    Ok(Value::Array(list))
}

fn deposit_methods(state: &mut VenueState, req: &SimRequest, _key: &SimKey, args: &Args) -> Answer {
    let asset = required_asset(state, req, args)?;
    Ok(json!([{
        "method": asset_alt(&asset),
        "limit": false,
        "fee": "0.0000000000",
        "gen-address": true,
        "minimum": "0.00010000",
    }]))
}

fn wallet_transfer(state: &mut VenueState, req: &SimRequest, key: &SimKey, args: &Args) -> Answer {
    let asset = required_asset(state, req, args)?;
    let from = args
        .str("from")
        .ok_or_else(|| deny(req, DenialKind::BadRequest))?;
    let to = args
        .str("to")
        .ok_or_else(|| deny(req, DenialKind::BadRequest))?;
    let amount = positive_amount(req, args, "amount")?;
    let t = state
        .transfer(&key.account, &asset, amount, &from, &to, req.now_ms)
        .map_err(|e| deny(req, e.denial().kind))?;
    Ok(json!({ "refid": encode_id('B', t.id) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SimConfig;
    use keyfence_exchange::{Credential, HttpRequest, SecretString, SignContext, SigningKey, sign};
    use ring::rand::SystemRandom;

    const SECRET: &str = "a2V5ZmVuY2UtZGVtby1rcmFrZW4tc2VjcmV0LXZhbHVlLTAxMjM0NTY3ODk=";

    fn state() -> VenueState {
        let toml = format!(
            r#"
            [venues.kraken]
            bind = "127.0.0.1:0"
            prices = {{ XBTUSD = "60000", ETHUSD = "3000" }}
            [[accounts]]
            venue = "kraken"
            name = "a"
            balances = {{ ZUSD = "10000", XXBT = "1" }}
            [[keys]]
            venue = "kraken"
            account = "a"
            api_key = "k"
            secret = "{SECRET}"
            permissions = ["query-funds", "query-open-trades", "query-closed-trades", "modify-trades", "close-trades"]
            "#
        );
        let cfg = SimConfig::parse(&toml, "test").unwrap();
        VenueState::from_config(Venue::Kraken, &cfg).unwrap()
    }

    fn request(http: HttpRequest, now_ms: i64) -> SimRequest {
        SimRequest {
            venue: Venue::Kraken,
            http,
            peer: "127.0.0.1".parse().unwrap(),
            host: "127.0.0.1:1".into(),
            now_ms,
        }
    }

    fn signed(path: &str, ct: &str, body: &str, nonce: u64) -> SimRequest {
        let rng = SystemRandom::new();
        let cred = Credential {
            api_key: "k".into(),
            secret: Some(SecretString::new(SECRET.into())),
            private_key: None,
            passphrase: None,
        };
        let key = SigningKey::from_credential(Venue::Kraken, &cred, &rng).unwrap();
        let mut http = HttpRequest::new("POST", path)
            .with_header("content-type", ct)
            .with_body(body);
        let ctx = SignContext {
            now_ms: 0,
            nonce: Some(nonce),
            host: "h",
            rng: &rng,
        };
        sign(Venue::Kraken, &key, &mut http, &ctx).unwrap();
        request(http, 1_800_000_000_000)
    }

    const FORM: &str = "application/x-www-form-urlencoded";

    /// Sign a body as is (`sign` itself refuses a repeated parameter).
    fn signed_raw(path: &str, body: &str, nonce: u64) -> SimRequest {
        use base64::Engine as _;
        use keyfence_exchange::crypto::{hmac_sha512, sha256};
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut msg = path.as_bytes().to_vec();
        msg.extend_from_slice(&sha256(format!("{nonce}{body}").as_bytes()));
        let tag = hmac_sha512(&b64.decode(SECRET).unwrap(), &msg);
        let http = HttpRequest::new("POST", path)
            .with_header("content-type", FORM)
            .with_header("api-key", "k")
            .with_header("api-sign", &b64.encode(tag))
            .with_body(body);
        request(http, 1_800_000_000_000)
    }

    fn call(st: &mut VenueState, req: &SimRequest) -> (u16, Value) {
        let r = handle(st, req);
        (r.status, serde_json::from_str(&r.body).unwrap())
    }

    #[test]
    fn malformed_requests_get_kraken_errors() {
        let mut st = state();
        let cases: Vec<(SimRequest, u16, &str)> = vec![
            (
                signed(
                    "/0/private/AddOrder",
                    FORM,
                    "ordertype=market&type=buy&pair=XBTUSD",
                    1,
                ),
                200,
                "EGeneral:Invalid arguments",
            ),
            (
                signed_raw(
                    "/0/private/AddOrder",
                    "nonce=2&ordertype=market&type=buy&volume=1&volume=2&pair=XBTUSD",
                    2,
                ),
                200,
                "EGeneral:Invalid arguments",
            ),
            (
                signed("/0/private/Balance", FORM, "bogus=1", 3),
                200,
                "EGeneral:Invalid arguments",
            ),
            (
                signed(
                    "/0/private/AddOrder",
                    FORM,
                    "ordertype=market&type=buy&volume=1&pair=DOGEUSD",
                    4,
                ),
                200,
                "EQuery:Unknown asset pair",
            ),
            (
                signed(
                    "/0/private/AddOrder",
                    FORM,
                    "ordertype=market&type=buy&volume=100&pair=XBTUSD",
                    5,
                ),
                200,
                "EOrder:Insufficient funds",
            ),
            (
                signed(
                    "/0/private/AddOrder",
                    FORM,
                    "ordertype=stop-loss&type=buy&volume=1&price=1&pair=XBTUSD",
                    6,
                ),
                200,
                "EGeneral:Invalid arguments",
            ),
            (
                signed("/0/private/Withdraw", FORM, "asset=XBT&key=x&amount=1", 7),
                200,
                "EGeneral:Permission denied",
            ),
            (
                signed(
                    "/0/private/CancelOrder",
                    FORM,
                    "txid=OAAAAA-AAAAA-AAAAAA",
                    8,
                ),
                200,
                "EOrder:Unknown order",
            ),
            (
                signed("/0/private/QueryOrders", FORM, "", 9),
                200,
                "EGeneral:Invalid arguments",
            ),
            (
                signed("/0/private/Balance", FORM, "", 9),
                200,
                "EAPI:Invalid nonce",
            ),
            (
                signed("/0/private/NoSuchThing", FORM, "", 10),
                404,
                "EGeneral:Unknown method",
            ),
            (
                signed(
                    "/0/private/AddOrderBatch",
                    "application/json",
                    r#"{"pair":"XBTUSD","orders":[{"ordertype":"market"}]}"#,
                    11,
                ),
                200,
                "EGeneral:Invalid arguments",
            ),
            (
                request(HttpRequest::new("GET", "/0/private/Balance"), 0),
                404,
                "EGeneral:Unknown method",
            ),
            (
                request(
                    HttpRequest::new("POST", "/0/private/Balance").with_body("nonce=1"),
                    0,
                ),
                200,
                "EAPI:Invalid key",
            ),
            (
                request(
                    HttpRequest::new("POST", "/0/private/Balance")
                        .with_header("content-type", "application/json")
                        .with_body(&b"{\"nonce\":"[..]),
                    0,
                ),
                200,
                "EAPI:Invalid key",
            ),
            (
                request(
                    HttpRequest::new("POST", "/0/private/Balance").with_body(vec![0xff, 0xfe]),
                    0,
                ),
                200,
                "EAPI:Invalid key",
            ),
            (
                request(HttpRequest::new("GET", "/0/public/Ticker?pair=NOPE"), 0),
                200,
                "EQuery:Unknown asset pair",
            ),
            (
                request(
                    HttpRequest::new("GET", "/0/public/Ticker?pair=XBTUSD&pair=ETHUSD"),
                    0,
                ),
                200,
                "EGeneral:Invalid arguments",
            ),
            (
                request(HttpRequest::new("GET", "/0/public/Nope"), 0),
                404,
                "EGeneral:Unknown method",
            ),
            (
                request(HttpRequest::new("GET", "/%ff/x"), 0),
                404,
                "EGeneral:Unknown method",
            ),
        ];
        for (i, (req, status, code)) in cases.iter().enumerate() {
            let (s, v) = call(&mut st, req);
            assert_eq!(
                (s, v["error"][0].as_str()),
                (*status, Some(*code)),
                "case {i}: {v}"
            );
            assert!(v.get("result").is_none(), "case {i}");
        }
        let (_, v) = call(
            &mut st,
            &signed(
                "/0/private/AddOrder",
                FORM,
                "ordertype=limit&type=buy&volume=9999999999999999999999999&pair=XBTUSD&price=60000",
                20,
            ),
        );
        assert_eq!(v["error"][0], "EGeneral:Invalid arguments");
        // Nothing was placed by any of them.
        assert!(st.account("a").unwrap().orders.is_empty());
    }

    #[test]
    fn orders_rest_fill_and_cancel() {
        let mut st = state();
        let (_, v) = call(
            &mut st,
            &signed(
                "/0/private/AddOrder",
                FORM,
                "ordertype=limit&type=sell&volume=0.5&pair=XBTUSD&price=70000",
                1,
            ),
        );
        let txid = v["result"]["txid"][0].as_str().unwrap().to_owned();
        assert_eq!(
            v["result"]["descr"]["order"],
            "sell 0.50000000 XBTUSD @ limit 70000"
        );
        let (_, v) = call(&mut st, &signed("/0/private/OpenOrders", FORM, "", 2));
        assert_eq!(v["result"]["open"][&txid]["status"], "open");
        let (_, v) = call(&mut st, &signed("/0/private/BalanceEx", FORM, "", 3));
        assert_eq!(
            v["result"]["XXBT"],
            json!({"balance": "1.0000000000", "hold_trade": "0.5000000000"})
        );
        st.set_price("XBTUSD", Decimal::from(71_000), 0).unwrap();
        let (_, v) = call(
            &mut st,
            &signed(
                "/0/private/QueryOrders",
                FORM,
                &format!("txid={txid}&trades=true"),
                4,
            ),
        );
        assert_eq!(v["result"][&txid]["status"], "closed");
        assert_eq!(
            v["result"][&txid]["trades"].as_array().map(Vec::len),
            Some(1)
        );
        let (_, v) = call(&mut st, &signed("/0/private/Balance", FORM, "", 5));
        assert_eq!(v["result"]["ZUSD"], "45000.0000");
        // A crossing limit buy fills at once; validate places nothing.
        let (_, v) = call(
            &mut st,
            &signed(
                "/0/private/AddOrder",
                FORM,
                "ordertype=limit&type=buy&volume=0.1&pair=XXBTZUSD&price=80000&validate=true",
                6,
            ),
        );
        assert!(v["result"].get("txid").is_none());
        let (_, v) = call(
            &mut st,
            &signed(
                "/0/private/AddOrder",
                FORM,
                "ordertype=limit&type=buy&volume=0.1&pair=XXBTZUSD&price=80000&userref=7",
                7,
            ),
        );
        assert!(v["result"]["txid"][0].is_string());
        let (_, v) = call(
            &mut st,
            &signed("/0/private/ClosedOrders", FORM, "userref=7", 8),
        );
        assert_eq!(v["result"]["count"], 1);
        let (_, v) = call(&mut st, &signed("/0/private/TradesHistory", FORM, "", 9));
        assert_eq!(v["result"]["count"], 2);
        let (_, v) = call(
            &mut st,
            &signed(
                "/0/private/AddOrder",
                FORM,
                "ordertype=limit&type=buy&volume=0.1&pair=XBTUSD&price=1000&userref=9",
                10,
            ),
        );
        assert!(v["error"].as_array().unwrap().is_empty());
        let (_, v) = call(
            &mut st,
            &signed("/0/private/CancelOrder", FORM, "txid=9", 11),
        );
        assert_eq!(v["result"]["count"], 1);
        let (_, v) = call(&mut st, &signed("/0/private/GetApiKeyInfo", FORM, "", 12));
        assert_eq!(v["result"]["nonce"], "12");
        assert_eq!(v["result"]["permissions"].as_array().map(Vec::len), Some(5));
    }

    #[test]
    fn symbols_split_into_kraken_asset_names() {
        let cases = [
            ("XBTUSD", ("XXBT", "ZUSD")),
            ("ETHUSD", ("XETH", "ZUSD")),
            ("XBTUSDT", ("XXBT", "USDT")),
            ("SOLUSD", ("SOL", "ZUSD")),
            ("ETHXBT", ("XETH", "XXBT")),
            ("XXBTZUSD", ("XXBT", "ZUSD")),
            ("XBTEUR", ("XXBT", "ZEUR")),
        ];
        for (sym, (b, q)) in cases {
            assert_eq!(split_symbol(sym), Some((b.into(), q.into())), "{sym}");
        }
        assert_eq!(split_symbol("USD"), None);
        assert_eq!(split_symbol("NOPE"), None);
    }

    #[test]
    fn pair_ids_follow_kraken() {
        let m = |sym: &str| {
            let (base, quote) = split_symbol(sym).unwrap();
            Market {
                symbol: sym.into(),
                base,
                quote,
                price: Decimal::ONE,
            }
        };
        assert_eq!(pair_id(&m("XBTUSD")), "XXBTZUSD");
        assert_eq!(altname(&m("XBTUSD")), "XBTUSD");
        assert_eq!(wsname(&m("XBTUSD")), "XBT/USD");
        assert_eq!(pair_id(&m("XBTUSDT")), "XBTUSDT");
        assert_eq!(pair_id(&m("SOLUSD")), "SOLUSD");
    }

    #[test]
    fn txids_round_trip_and_look_like_kraken() {
        for id in [0_u64, 1, 1001, 123_456_789, u64::MAX] {
            let t = encode_id('O', id);
            assert_eq!(t.len(), 19, "{t}");
            assert_eq!(decode_id('O', &t), Some(id), "{t}");
            assert_eq!(decode_id('T', &t), None);
        }
        assert_eq!(decode_id('O', "OU22CG-KLAF2-FWUDD"), None);
        let (a, b) = (encode_id('O', 1001), encode_id('O', 1002));
        let same = a.bytes().zip(b.bytes()).filter(|(x, y)| x == y).count();
        assert!(same < 10, "{a} {b}");
        assert_eq!(decode_id('O', "garbage"), None);
    }

    #[test]
    fn amounts_are_printed_with_fixed_decimals() {
        assert_eq!(fixed(Decimal::new(15, 1), 4), "1.5000");
        assert_eq!(fixed(Decimal::new(123_456, 5), 2), "1.23");
        assert_eq!(fixed(Decimal::MAX, 10).len(), 29 + 11);
        assert_eq!(fixed(Decimal::new(-25, 1), 3), "-2.500");
        assert_eq!(fixed(Decimal::new(7, 0), 0), "7");
        assert_eq!(MAX_AMOUNT, Decimal::from(1_000_000_000_000_u64));
    }
}
