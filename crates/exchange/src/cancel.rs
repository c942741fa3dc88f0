//! Cancelling every open order of an account, as each venue does it (`keyfence kill
//! --cancel-open`).
//!
//! Pure: this module builds the unsigned requests and reads the answers; the caller signs, sends
//! and loops. The loop is *list -> cancel -> list again*, because listings are paged (OKX 100,
//! Bybit 50, Coinbase by cursor) and orders can arrive while cancelling: the caller repeats
//! until a listing comes back empty. Where one call cancels everything and its answer says how
//! many (Kraken `CancelAll`), there is nothing to list ([`list_open_requests`] is empty).
//!
//! | venue    | list                                              | cancel                                            |
//! |----------|---------------------------------------------------|---------------------------------------------------|
//! | Binance  | `GET /api/v3/openOrders` (all symbols)            | `DELETE /api/v3/openOrders?symbol=S` per symbol   |
//! | Bybit    | `GET /v5/order/realtime` spot; linear per settle coin; inverse; option on a unified account ([`account_probe`]) | `POST /v5/order/cancel-all` per category (and symbol for linear, inverse and option) |
//! | OKX      | `GET /api/v5/trade/orders-pending`; algo orders: `GET /api/v5/trade/orders-algo-pending` per type | `POST /api/v5/trade/cancel-batch-orders`, ≤ 20 each; algo orders `POST /api/v5/trade/cancel-algos` or (trailing, iceberg, TWAP) `cancel-advance-algos`, ≤ 10 each |
//! | Coinbase | `GET /api/v3/brokerage/orders/historical/batch?order_status=OPEN` | `POST /api/v3/brokerage/orders/batch_cancel`, ≤ 100 each |
//! | Kraken   | —                                                 | `POST /0/private/CancelAll`                       |
//!
//! Every cancel request classifies as [`EndpointClass::Cancel`](crate::EndpointClass), so a
//! policy that allows cancelling while halted lets the kill switch through.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::{HttpRequest, KeyInfoError, Venue};

/// Most orders one OKX `cancel-batch-orders` request may carry (OKX docs: "maximum 20 orders").
pub const OKX_CANCEL_BATCH: usize = 20;

/// Most algo orders one OKX `cancel-algos` request may carry (OKX docs: "a maximum of 10").
pub const OKX_CANCEL_ALGOS: usize = 10;

/// The `ordType` of each OKX algo listing. OKX lists pending algo orders one type at a time
/// (`ordType` is required; only `conditional` and `oco` may be asked together). A stop or
/// trigger order left waiting would trade after the kill switch, so every type the gateway lets
/// a bot place (`okx::ALGO_TYPES`) is listed.
fn okx_algo_listings() -> impl Iterator<Item = &'static str> {
    crate::okx::ALGO_TYPES
        .iter()
        .filter(|t| **t != "oco")
        .map(|t| {
            if *t == "conditional" {
                "conditional,oco"
            } else {
                t
            }
        })
}

/// [`OpenOrder::category`] of an OKX algo order, cancelled by `algoId` through `cancel-algos`.
const OKX_ALGO: &str = "algo";

/// [`OpenOrder::category`] of OKX's "advance" algo orders (trailing, iceberg, TWAP), which
/// OKX cancels through `cancel-advance-algos` (its docs moved them to `cancel-algos` in 2025,
/// but the older endpoint is reported to still take them, and `cancel-algos` taking them is
/// not confirmed here). The kill switch lists again after cancelling: any that remain are
/// reported.
const OKX_ADVANCE_ALGO: &str = "advance-algo";

/// Algo types OKX cancels through `cancel-advance-algos` (the simulator keeps the same split).
pub const OKX_ADVANCE_ALGO_TYPES: &[&str] = &["move_order_stop", "iceberg", "twap"];

/// Most order ids one Coinbase `batch_cancel` request carries. The Advanced Trade reference
/// states no maximum; 100 keeps each request small (UNVERIFIED limit, chosen conservatively).
pub const COINBASE_CANCEL_BATCH: usize = 100;

/// Bybit spot `cancel-all` cancels only plain orders unless told otherwise (Bybit v5 docs,
/// `orderFilter`: "If not passed, Order by default"), so the kill switch asks once per kind:
/// a stop or TP/SL order left resting would trade after the switch.
const BYBIT_SPOT_FILTERS: &[&str] = &["Order", "tpslOrder", "StopOrder"];

/// Settle coins whose linear contracts are listed (Bybit requires one of symbol, baseCoin or
/// settleCoin for linear listings and cancels).
const BYBIT_LINEAR_SETTLE: &[&str] = &["USDT", "USDC"];

/// One open order, as the venue identifies it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpenOrder {
    /// The venue's own symbol spelling (`BTCUSDT`, `BTC-USDT`, `BTC-USD`).
    pub symbol: String,
    /// The venue's order id, as a string.
    pub order_id: String,
    /// Bybit: the category the order was listed under (`spot`, `linear`, `inverse`), which its cancel
    /// request must name; OKX: `algo` or `advance-algo` for algo orders (cancelled by algo id,
    /// through their own endpoints). `None` elsewhere.
    pub category: Option<String>,
}

/// The requests that list `venue`'s open orders (unsigned; pass each to [`crate::sign`]).
/// Empty when one cancel-all call suffices and says how many it cancelled (Kraken).
pub fn list_open_requests(venue: Venue) -> Vec<HttpRequest> {
    match venue {
        Venue::Binance => vec![HttpRequest::new("GET", "/api/v3/openOrders")],
        Venue::Bybit => {
            let mut out = vec![HttpRequest::new(
                "GET",
                "/v5/order/realtime?category=spot&openOnly=0&limit=50",
            )];
            out.extend(BYBIT_LINEAR_SETTLE.iter().map(|coin| {
                HttpRequest::new(
                    "GET",
                    &format!(
                        "/v5/order/realtime?category=linear&settleCoin={coin}&openOnly=0&limit=50"
                    ),
                )
            }));
            // Inverse contracts need no symbol or coin to be listed (every account type has
            // them). Options only exist on a unified account: see `account_listings`.
            out.push(HttpRequest::new(
                "GET",
                "/v5/order/realtime?category=inverse&openOnly=0&limit=50",
            ));
            out
        }
        Venue::Okx => {
            let mut out = vec![HttpRequest::new(
                "GET",
                "/api/v5/trade/orders-pending?limit=100",
            )];
            out.extend(okx_algo_listings().map(|t| {
                let query = form_urlencoded::Serializer::new(String::new())
                    .append_pair("ordType", t)
                    .append_pair("limit", "100")
                    .finish();
                HttpRequest::new("GET", &format!("/api/v5/trade/orders-algo-pending?{query}"))
            }));
            out
        }
        Venue::Coinbase => vec![HttpRequest::new(
            "GET",
            "/api/v3/brokerage/orders/historical/batch?order_status=OPEN",
        )],
        Venue::Kraken => Vec::new(),
    }
}

/// A request whose answer says which listings the account needs beyond
/// [`list_open_requests`] (pass the answer to [`account_listings`]): Bybit's
/// `GET /v5/user/query-api` ("any permission can access this endpoint"), whose `uta` says
/// whether the account is a unified trading account, the only kind with options (Bybit v5
/// docs: classic accounts trade spot, linear and inverse). `None` elsewhere.
pub fn account_probe(venue: Venue) -> Option<HttpRequest> {
    (venue == Venue::Bybit).then(|| HttpRequest::new("GET", "/v5/user/query-api"))
}

/// The listings the answer to [`account_probe`] adds: Bybit's open option orders on a unified
/// account (without a base coin the listing covers every option, per Bybit's docs). An answer
/// without `uta` lists options too: a listing the account refuses is reported, while options
/// left open would trade after the kill switch.
pub fn account_listings(venue: Venue, body: &[u8]) -> Result<Vec<HttpRequest>, KeyInfoError> {
    if venue != Venue::Bybit {
        return Ok(Vec::new());
    }
    let v = json_body(body)?;
    let classic = bybit_result(&v)?.get("uta").and_then(Value::as_i64) == Some(0);
    Ok(if classic {
        Vec::new()
    } else {
        vec![HttpRequest::new(
            "GET",
            "/v5/order/realtime?category=option&openOnly=0&limit=50",
        )]
    })
}

/// Read the open orders out of an answer to one of [`list_open_requests`] (or
/// [`account_listings`]).
pub fn parse_open_orders(venue: Venue, body: &[u8]) -> Result<Vec<OpenOrder>, KeyInfoError> {
    let v = json_body(body)?;
    match venue {
        Venue::Binance => binance_open(&v),
        Venue::Bybit => bybit_open(&v),
        Venue::Okx => okx_open(&v),
        Venue::Coinbase => coinbase_open(&v),
        Venue::Kraken => kraken_open(&v),
    }
}

/// The requests that cancel `open` (unsigned; send each once, never retried). Kraken cancels
/// everything with one call whatever `open` holds; elsewhere an empty `open` needs no request.
pub fn cancel_requests(venue: Venue, open: &[OpenOrder]) -> Vec<HttpRequest> {
    match venue {
        Venue::Binance => symbols(open, |_| true)
            .into_iter()
            .map(|s| {
                let query = form_urlencoded::Serializer::new(String::new())
                    .append_pair("symbol", &s)
                    .finish();
                HttpRequest::new("DELETE", &format!("/api/v3/openOrders?{query}"))
            })
            .collect(),
        Venue::Bybit => bybit_cancels(open),
        Venue::Okx => okx_cancels(open),
        Venue::Coinbase => open
            .chunks(COINBASE_CANCEL_BATCH)
            .map(|chunk| {
                let ids: Vec<&str> = chunk.iter().map(|o| o.order_id.as_str()).collect();
                json_post(
                    "/api/v3/brokerage/orders/batch_cancel",
                    &json!({ "order_ids": ids }),
                )
            })
            .collect(),
        Venue::Kraken => vec![
            HttpRequest::new("POST", "/0/private/CancelAll")
                .with_header("content-type", "application/x-www-form-urlencoded"),
        ],
    }
}

/// How many orders an answer to one of [`cancel_requests`] says were cancelled. A venue error
/// for the whole request is [`KeyInfoError::Venue`]; orders that could not be cancelled one by
/// one (already filled, already gone) are simply not counted.
pub fn cancelled_count(venue: Venue, body: &[u8]) -> Result<usize, KeyInfoError> {
    let v = json_body(body)?;
    match venue {
        Venue::Binance => binance_cancelled(&v),
        Venue::Bybit => bybit_result(&v).and_then(|r| {
            r.get("list")
                .and_then(Value::as_array)
                .map(Vec::len)
                .ok_or_else(|| malformed("`result.list` is missing"))
        }),
        Venue::Okx => okx_cancelled(&v),
        Venue::Coinbase => coinbase_cancelled(&v),
        Venue::Kraken => kraken_result(&v).and_then(|r| {
            r.get("count")
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| malformed("`result.count` is missing"))
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

fn json_body(body: &[u8]) -> Result<Value, KeyInfoError> {
    serde_json::from_slice(body).map_err(|e| malformed(&format!("not JSON ({e})")))
}

fn malformed(detail: &str) -> KeyInfoError {
    KeyInfoError::Malformed(detail.to_owned())
}

fn venue_error(code: impl ToString, message: Option<&Value>) -> KeyInfoError {
    KeyInfoError::Venue {
        code: code.to_string(),
        message: message
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    }
}

fn json_post(path: &str, body: &Value) -> HttpRequest {
    HttpRequest::new("POST", path)
        .with_header("content-type", "application/json")
        .with_body(body.to_string())
}

/// A field that venues send as a string or a number, as a string.
fn text(v: &Value, name: &str) -> Result<String, KeyInfoError> {
    match v.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(malformed(&format!("an order lacks `{name}`"))),
    }
}

/// Distinct symbols of the orders `keep` selects, sorted (one request per symbol).
fn symbols(open: &[OpenOrder], keep: impl Fn(&OpenOrder) -> bool) -> BTreeSet<String> {
    open.iter()
        .filter(|o| keep(o))
        .map(|o| o.symbol.clone())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Binance: a bare array on success, `{"code": -2011, "msg": ...}` on failure.

fn binance_error(v: &Value) -> Option<KeyInfoError> {
    let code = v.get("code").and_then(Value::as_i64)?;
    Some(venue_error(code, v.get("msg")))
}

fn binance_open(v: &Value) -> Result<Vec<OpenOrder>, KeyInfoError> {
    if let Some(e) = binance_error(v) {
        return Err(e);
    }
    let list = v
        .as_array()
        .ok_or_else(|| malformed("expected an array of orders"))?;
    list.iter()
        .map(|o| {
            Ok(OpenOrder {
                symbol: text(o, "symbol")?,
                order_id: text(o, "orderId")?,
                category: None,
            })
        })
        .collect()
}

fn binance_cancelled(v: &Value) -> Result<usize, KeyInfoError> {
    match binance_error(v) {
        // -2011 "Unknown order sent.": nothing was open on the symbol any more (filled or
        // cancelled since the listing). Nothing to cancel is not a failure to cancel.
        Some(KeyInfoError::Venue { code, .. }) if code == "-2011" => return Ok(0),
        Some(e) => return Err(e),
        None => {}
    }
    let list = v
        .as_array()
        .ok_or_else(|| malformed("expected an array of cancelled orders"))?;
    // Plain orders carry `orderId`; an order list (OCO, OTO) carries its legs in `orderReports`.
    Ok(list
        .iter()
        .map(|o| match o.get("orderReports").and_then(Value::as_array) {
            Some(legs) => legs.len(),
            None => usize::from(o.get("orderId").is_some()),
        })
        .sum())
}

// ---------------------------------------------------------------------------------------------
// Bybit: `{"retCode": 0, "retMsg": "OK", "result": {...}}`.

fn bybit_result(v: &Value) -> Result<&Value, KeyInfoError> {
    match v.get("retCode").and_then(Value::as_i64) {
        Some(0) => v
            .get("result")
            .ok_or_else(|| malformed("`result` is missing")),
        Some(code) => Err(venue_error(code, v.get("retMsg"))),
        None => Err(malformed("`retCode` is missing")),
    }
}

fn bybit_open(v: &Value) -> Result<Vec<OpenOrder>, KeyInfoError> {
    let r = bybit_result(v)?;
    let category = r
        .get("category")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| malformed("`result.category` is missing"))?;
    let list = r
        .get("list")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("`result.list` is missing"))?;
    list.iter()
        .map(|o| {
            Ok(OpenOrder {
                symbol: text(o, "symbol")?,
                order_id: text(o, "orderId")?,
                category: Some(category.to_owned()),
            })
        })
        .collect()
}

/// Spot: one account-wide `cancel-all` per order kind. Linear, inverse and option: one per
/// symbol, because Bybit requires a symbol, base coin or settle coin for linear and the
/// listing names the symbol.
fn bybit_cancels(open: &[OpenOrder]) -> Vec<HttpRequest> {
    let categories: BTreeSet<&str> = open.iter().filter_map(|o| o.category.as_deref()).collect();
    let mut out = Vec::new();
    for category in categories {
        if category == "spot" {
            out.extend(BYBIT_SPOT_FILTERS.iter().map(|f| {
                json_post(
                    "/v5/order/cancel-all",
                    &json!({"category": "spot", "orderFilter": f}),
                )
            }));
        } else {
            out.extend(
                symbols(open, |o| o.category.as_deref() == Some(category))
                    .into_iter()
                    .map(|s| {
                        json_post(
                            "/v5/order/cancel-all",
                            &json!({"category": category, "symbol": s}),
                        )
                    }),
            );
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// OKX: `{"code": "0", "msg": "", "data": [...]}`; batches answer "1" (all failed) or "2"
// (partly) with a per-item `sCode`.

fn okx_code(v: &Value) -> Result<String, KeyInfoError> {
    match v.get("code") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(malformed("`code` is missing")),
    }
}

fn okx_data(v: &Value) -> Result<&Vec<Value>, KeyInfoError> {
    v.get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("`data` is missing"))
}

/// Orders and algo orders alike, told apart by `ordType`: an algo order's is an algo type
/// (`trigger`, `iceberg`, ...) and it is cancelled by its `algoId`, even when it carries the
/// `ordId` of a child order it has already placed (an iceberg or TWAP part-way); an order's is
/// an order type (`limit`, `market`, ...) and it is cancelled by its `ordId`, even when an
/// algo order placed it and it carries that `algoId`.
fn okx_open(v: &Value) -> Result<Vec<OpenOrder>, KeyInfoError> {
    let code = okx_code(v)?;
    if code != "0" {
        return Err(venue_error(code, v.get("msg")));
    }
    okx_data(v)?
        .iter()
        .map(|o| {
            let symbol = text(o, "instId")?;
            let ord_type = o.get("ordType").and_then(Value::as_str).unwrap_or_default();
            if !crate::okx::ALGO_TYPES.contains(&ord_type) {
                return Ok(OpenOrder {
                    symbol,
                    order_id: text(o, "ordId")?,
                    category: None,
                });
            }
            let category = if OKX_ADVANCE_ALGO_TYPES.contains(&ord_type) {
                OKX_ADVANCE_ALGO
            } else {
                OKX_ALGO
            };
            Ok(OpenOrder {
                symbol,
                order_id: text(o, "algoId")?,
                category: Some(category.to_owned()),
            })
        })
        .collect()
}

/// Orders by `ordId` in batches of 20, algo orders by `algoId` in batches of 10 (advance ones
/// through their own endpoint).
fn okx_cancels(open: &[OpenOrder]) -> Vec<HttpRequest> {
    let of = |category: Option<&str>| -> Vec<&OpenOrder> {
        open.iter()
            .filter(|o| o.category.as_deref() == category)
            .collect()
    };
    let (orders, algos, advance) = (of(None), of(Some(OKX_ALGO)), of(Some(OKX_ADVANCE_ALGO)));
    let batches = |list: &[&OpenOrder], size: usize, id: &str, path: &str| -> Vec<HttpRequest> {
        list.chunks(size)
            .map(|chunk| {
                let items: Vec<Value> = chunk
                    .iter()
                    .map(|o| json!({"instId": o.symbol, id: o.order_id}))
                    .collect();
                json_post(path, &Value::Array(items))
            })
            .collect()
    };
    let mut out = batches(
        &orders,
        OKX_CANCEL_BATCH,
        "ordId",
        "/api/v5/trade/cancel-batch-orders",
    );
    out.extend(batches(
        &algos,
        OKX_CANCEL_ALGOS,
        "algoId",
        "/api/v5/trade/cancel-algos",
    ));
    out.extend(batches(
        &advance,
        OKX_CANCEL_ALGOS,
        "algoId",
        "/api/v5/trade/cancel-advance-algos",
    ));
    out
}

fn okx_cancelled(v: &Value) -> Result<usize, KeyInfoError> {
    let code = okx_code(v)?;
    if !matches!(code.as_str(), "0" | "1" | "2") {
        return Err(venue_error(code, v.get("msg")));
    }
    Ok(okx_data(v)?
        .iter()
        .filter(|item| item.get("sCode").and_then(Value::as_str) == Some("0"))
        .count())
}

// ---------------------------------------------------------------------------------------------
// Coinbase: plain objects on success, `{"error": "PERMISSION_DENIED", "message": ...}` on failure.

fn coinbase_error(v: &Value) -> Option<KeyInfoError> {
    let code = v.get("error").and_then(Value::as_str)?;
    Some(venue_error(code, v.get("message")))
}

fn coinbase_open(v: &Value) -> Result<Vec<OpenOrder>, KeyInfoError> {
    if let Some(e) = coinbase_error(v) {
        return Err(e);
    }
    let list = v
        .get("orders")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("`orders` is missing"))?;
    list.iter()
        .map(|o| {
            Ok(OpenOrder {
                symbol: text(o, "product_id")?,
                order_id: text(o, "order_id")?,
                category: None,
            })
        })
        .collect()
}

fn coinbase_cancelled(v: &Value) -> Result<usize, KeyInfoError> {
    if let Some(e) = coinbase_error(v) {
        return Err(e);
    }
    let results = v
        .get("results")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("`results` is missing"))?;
    Ok(results
        .iter()
        .filter(|r| r.get("success").and_then(Value::as_bool) == Some(true))
        .count())
}

// ---------------------------------------------------------------------------------------------
// Kraken: `{"error": [], "result": {...}}`.

fn kraken_result(v: &Value) -> Result<&Value, KeyInfoError> {
    let errors = v
        .get("error")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("`error` is missing"))?;
    if let Some(first) = errors.first() {
        let all: Vec<&str> = errors.iter().filter_map(Value::as_str).collect();
        return Err(KeyInfoError::Venue {
            code: first.as_str().unwrap_or_default().to_owned(),
            message: all.join("; "),
        });
    }
    v.get("result")
        .ok_or_else(|| malformed("`result` is missing"))
}

/// Kraken's `OpenOrders` answer (`result.open` keyed by txid). Not part of the cancel flow,
/// which needs no listing, but read the same way when a caller lists anyway.
fn kraken_open(v: &Value) -> Result<Vec<OpenOrder>, KeyInfoError> {
    let open = kraken_result(v)?
        .get("open")
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("`result.open` is missing"))?;
    open.iter()
        .map(|(txid, o)| {
            let symbol = o
                .get("descr")
                .and_then(|d| d.get("pair"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            Ok(OpenOrder {
                symbol,
                order_id: txid.clone(),
                category: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EndpointClass, classify};

    fn order(symbol: &str, id: &str, category: Option<&str>) -> OpenOrder {
        OpenOrder {
            symbol: symbol.into(),
            order_id: id.into(),
            category: category.map(str::to_owned),
        }
    }

    fn sample(venue: Venue) -> Vec<OpenOrder> {
        match venue {
            Venue::Binance => (0..3)
                .map(|i| order(["BTCUSDT", "ETHUSDT"][i % 2], &i.to_string(), None))
                .collect(),
            Venue::Bybit => vec![
                order("BTCUSDT", "1", Some("spot")),
                order("BTCUSDT", "2", Some("linear")),
                order("ETHUSDT", "3", Some("linear")),
                order("BTCUSD", "4", Some("inverse")),
            ],
            Venue::Okx => (0..45)
                .map(|i| order("BTC-USDT", &i.to_string(), None))
                .chain((0..12).map(|i| order("ETH-USDT", &format!("a{i}"), Some(OKX_ALGO))))
                .chain((0..3).map(|i| order("ETH-USDT", &format!("v{i}"), Some(OKX_ADVANCE_ALGO))))
                .collect(),
            Venue::Coinbase => (0..150)
                .map(|i| order("BTC-USD", &format!("id-{i}"), None))
                .collect(),
            Venue::Kraken => Vec::new(),
        }
    }

    #[test]
    fn every_cancel_request_classifies_as_cancel_and_every_listing_as_read() {
        for venue in Venue::ALL {
            let cancels = cancel_requests(venue, &sample(venue));
            assert!(!cancels.is_empty(), "{venue}");
            for req in &cancels {
                assert_eq!(
                    classify(venue, req),
                    EndpointClass::Cancel,
                    "{venue} {req:?}"
                );
            }
            for req in list_open_requests(venue) {
                assert_eq!(
                    classify(venue, &req),
                    EndpointClass::Read,
                    "{venue} {req:?}"
                );
            }
        }
    }

    #[test]
    fn batches_respect_the_venue_limits_and_cover_every_order() {
        // 45 orders in batches of 20 by ordId, 12 algo orders in batches of 10 by algoId, 3
        // advance algo orders through their own endpoint.
        let okx = cancel_requests(Venue::Okx, &sample(Venue::Okx));
        let paths: Vec<&str> = okx.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/api/v5/trade/cancel-batch-orders",
                "/api/v5/trade/cancel-batch-orders",
                "/api/v5/trade/cancel-batch-orders",
                "/api/v5/trade/cancel-algos",
                "/api/v5/trade/cancel-algos",
                "/api/v5/trade/cancel-advance-algos",
            ]
        );
        let mut ids = Vec::new();
        let mut algo_ids = Vec::new();
        for req in &okx {
            let items: Vec<Value> = serde_json::from_slice(&req.body).unwrap();
            let (limit, name, into) = if req.path.ends_with("algos") {
                (OKX_CANCEL_ALGOS, "algoId", &mut algo_ids)
            } else {
                (OKX_CANCEL_BATCH, "ordId", &mut ids)
            };
            assert!(items.len() <= limit, "{}", req.path);
            for i in &items {
                assert!(i["instId"].is_string());
                into.push(i[name].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(ids.len(), 45);
        assert_eq!(algo_ids.len(), 15);
        let advance: Vec<Value> = serde_json::from_slice(&okx[5].body).unwrap();
        assert!(
            advance
                .iter()
                .all(|i| i["algoId"].as_str().unwrap().starts_with('v'))
        );

        let cb = cancel_requests(Venue::Coinbase, &sample(Venue::Coinbase));
        assert_eq!(cb.len(), 2);
        let first: Value = serde_json::from_slice(&cb[0].body).unwrap();
        assert_eq!(first["order_ids"].as_array().unwrap().len(), 100);
    }

    /// Bybit: spot, linear per settle coin (Bybit requires one there) and inverse (no coin or
    /// symbol needed) are listed for every account; options on a unified account only.
    #[test]
    fn bybit_lists_spot_linear_per_settle_coin_and_inverse() {
        let listed: Vec<(String, Option<String>)> = list_open_requests(Venue::Bybit)
            .iter()
            .map(|r| {
                assert_eq!(
                    (r.method.as_str(), r.path.as_str()),
                    ("GET", "/v5/order/realtime")
                );
                let p = crate::params::Params::parse(&r.query).unwrap();
                assert_eq!(p.get("openOnly"), Some("0"), "{}", r.query);
                (
                    p.get("category").unwrap().to_owned(),
                    p.get("settleCoin").map(str::to_owned),
                )
            })
            .collect();
        let want = |c: &str, coin: Option<&str>| (c.to_owned(), coin.map(str::to_owned));
        assert_eq!(
            listed,
            [
                want("spot", None),
                want("linear", Some("USDT")),
                want("linear", Some("USDC")),
                want("inverse", None),
            ]
        );
    }

    /// Options exist on a unified account only (`uta` 1 in `query-api`'s answer, as in the
    /// Bybit docs' samples); an answer without `uta` lists them too. Listed option orders are
    /// cancelled per symbol.
    #[test]
    fn bybit_lists_options_on_a_unified_account_and_cancels_them_per_symbol() {
        let probe = account_probe(Venue::Bybit).unwrap();
        assert_eq!(probe.target(), "/v5/user/query-api");
        assert!(
            Venue::ALL
                .iter()
                .filter(|v| **v != Venue::Bybit)
                .all(|v| account_probe(*v).is_none())
        );
        let answer = |uta: &str| {
            format!(r#"{{"retCode":0,"retMsg":"","result":{{"apiKey":"k","readOnly":0{uta}}}}}"#)
        };
        let classic = account_listings(Venue::Bybit, answer(r#","uta":0"#).as_bytes()).unwrap();
        assert!(classic.is_empty());
        for body in [answer(r#","uta":1"#), answer("")] {
            let listed = account_listings(Venue::Bybit, body.as_bytes()).unwrap();
            let targets: Vec<String> = listed.iter().map(HttpRequest::target).collect();
            assert_eq!(
                targets,
                ["/v5/order/realtime?category=option&openOnly=0&limit=50"],
                "{body}"
            );
        }
        let refused = r#"{"retCode":10003,"retMsg":"API key is invalid.","result":{}}"#;
        assert!(account_listings(Venue::Bybit, refused.as_bytes()).is_err());

        let option = |id: &str, symbol: &str| OpenOrder {
            symbol: symbol.to_owned(),
            order_id: id.to_owned(),
            category: Some("option".to_owned()),
        };
        let open = [
            option("1", "BTC-27DEC26-80000-C"),
            option("2", "BTC-27DEC26-80000-C"),
            option("3", "ETH-27DEC26-3000-P"),
        ];
        let bodies: Vec<Value> = cancel_requests(Venue::Bybit, &open)
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        assert_eq!(
            bodies,
            [
                json!({"category": "option", "symbol": "BTC-27DEC26-80000-C"}),
                json!({"category": "option", "symbol": "ETH-27DEC26-3000-P"}),
            ]
        );
    }

    /// Every algo type a bot may place through the gateway is listed by the kill switch.
    #[test]
    fn okx_lists_every_algo_type_the_gateway_lets_through() {
        let listed: Vec<String> = list_open_requests(Venue::Okx)
            .iter()
            .filter(|r| r.path == "/api/v5/trade/orders-algo-pending")
            .flat_map(|r| {
                let p = crate::params::Params::parse(&r.query).unwrap();
                p.get("ordType")
                    .unwrap()
                    .split(',')
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        for t in crate::okx::ALGO_TYPES {
            assert!(
                listed.iter().any(|l| l == t),
                "{t} is not listed: {listed:?}"
            );
        }
    }

    #[test]
    fn binance_cancels_once_per_symbol() {
        let reqs = cancel_requests(Venue::Binance, &sample(Venue::Binance));
        let targets: Vec<String> = reqs.iter().map(HttpRequest::target).collect();
        assert_eq!(
            targets,
            [
                "/api/v3/openOrders?symbol=BTCUSDT",
                "/api/v3/openOrders?symbol=ETHUSDT"
            ]
        );
        assert!(reqs.iter().all(|r| r.method == "DELETE"));
        assert!(cancel_requests(Venue::Binance, &[]).is_empty());
    }

    #[test]
    fn bybit_cancels_spot_per_kind_and_contracts_per_symbol() {
        let reqs = cancel_requests(Venue::Bybit, &sample(Venue::Bybit));
        let bodies: Vec<Value> = reqs
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        assert_eq!(
            bodies,
            [
                json!({"category": "inverse", "symbol": "BTCUSD"}),
                json!({"category": "linear", "symbol": "BTCUSDT"}),
                json!({"category": "linear", "symbol": "ETHUSDT"}),
                json!({"category": "spot", "orderFilter": "Order"}),
                json!({"category": "spot", "orderFilter": "tpslOrder"}),
                json!({"category": "spot", "orderFilter": "StopOrder"}),
            ]
        );
        assert!(cancel_requests(Venue::Bybit, &[]).is_empty());
    }

    #[test]
    fn kraken_needs_no_listing_and_one_cancel_all() {
        assert!(list_open_requests(Venue::Kraken).is_empty());
        let reqs = cancel_requests(Venue::Kraken, &[]);
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].target(), "/0/private/CancelAll");
    }

    #[test]
    fn listings_parse_in_each_venue_shape() {
        let cases: [(Venue, &str, Vec<OpenOrder>); 5] = [
            (
                Venue::Binance,
                r#"[{"symbol":"LTCBTC","orderId":1,"status":"NEW"}]"#,
                vec![order("LTCBTC", "1", None)],
            ),
            (
                Venue::Bybit,
                r#"{"retCode":0,"retMsg":"OK","result":{"category":"linear","list":[{"symbol":"BTCUSDT","orderId":"fd4300ae"}],"nextPageCursor":""}}"#,
                vec![order("BTCUSDT", "fd4300ae", Some("linear"))],
            ),
            // Orders (one an algo order placed carries both ids), an algo order waiting, and an
            // iceberg part-way (its latest child's ordId is filled in): algo orders go by algoId.
            (
                Venue::Okx,
                r#"{"code":"0","msg":"","data":[{"instId":"BTC-USDT","ordId":"312269865356374016","algoId":"","ordType":"limit"},{"instId":"BTC-USDT","ordId":"312269865356374017","algoId":"681096944655273984","ordType":"limit"},{"instId":"ETH-USDT","ordId":"","algoId":"681096944655273985","ordType":"trigger"},{"instId":"ETH-USDT","ordId":"312269865356374018","algoId":"681096944655273986","ordType":"iceberg"}]}"#,
                vec![
                    order("BTC-USDT", "312269865356374016", None),
                    order("BTC-USDT", "312269865356374017", None),
                    order("ETH-USDT", "681096944655273985", Some(OKX_ALGO)),
                    order("ETH-USDT", "681096944655273986", Some(OKX_ADVANCE_ALGO)),
                ],
            ),
            (
                Venue::Coinbase,
                r#"{"orders":[{"order_id":"0000-000000-000000","product_id":"BTC-USD"}],"has_next":false}"#,
                vec![order("BTC-USD", "0000-000000-000000", None)],
            ),
            (
                Venue::Kraken,
                r#"{"error":[],"result":{"open":{"OQCLML-BW3P3-BUCMWZ":{"descr":{"pair":"XBTUSD"}}}}}"#,
                vec![order("XBTUSD", "OQCLML-BW3P3-BUCMWZ", None)],
            ),
        ];
        for (venue, body, want) in cases {
            assert_eq!(
                parse_open_orders(venue, body.as_bytes()).unwrap(),
                want,
                "{venue}"
            );
        }
    }

    #[test]
    fn venue_errors_are_reported_with_their_code() {
        let cases = [
            (
                Venue::Binance,
                r#"{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}"#,
                "-2015",
            ),
            (
                Venue::Bybit,
                r#"{"retCode":10005,"retMsg":"Permission denied","result":{}}"#,
                "10005",
            ),
            (
                Venue::Okx,
                r#"{"code":"50120","msg":"API key doesn't have permission","data":[]}"#,
                "50120",
            ),
            (
                Venue::Coinbase,
                r#"{"error":"PERMISSION_DENIED","message":"Missing required scopes"}"#,
                "PERMISSION_DENIED",
            ),
            (
                Venue::Kraken,
                r#"{"error":["EGeneral:Permission denied"]}"#,
                "EGeneral:Permission denied",
            ),
        ];
        for (venue, body, want) in cases {
            let e = cancelled_count(venue, body.as_bytes()).unwrap_err();
            assert!(
                matches!(&e, KeyInfoError::Venue { code, .. } if code == want),
                "{venue}: {e:?}"
            );
            if venue != Venue::Kraken {
                let e = parse_open_orders(venue, body.as_bytes()).unwrap_err();
                assert!(matches!(e, KeyInfoError::Venue { .. }), "{venue}: {e:?}");
            }
        }
        assert!(matches!(
            parse_open_orders(Venue::Okx, b"<html>"),
            Err(KeyInfoError::Malformed(_))
        ));
    }

    #[test]
    fn cancel_answers_count_only_what_was_cancelled() {
        let cases = [
            (
                Venue::Binance,
                r#"[{"symbol":"BTCUSDT","orderId":1},{"symbol":"BTCUSDT","orderId":2},
                    {"orderListId":7,"orderReports":[{"orderId":3},{"orderId":4}]}]"#,
                4,
            ),
            (
                Venue::Binance,
                r#"{"code":-2011,"msg":"Unknown order sent."}"#,
                0,
            ),
            (
                Venue::Bybit,
                r#"{"retCode":0,"retMsg":"OK","result":{"list":[{"orderId":"1"},{"orderId":"2"}],"success":"1"}}"#,
                2,
            ),
            (
                Venue::Okx,
                r#"{"code":"2","msg":"Bulk operation partially succeeded","data":[{"ordId":"1","sCode":"0"},{"ordId":"","sCode":"51400"}]}"#,
                1,
            ),
            (
                Venue::Coinbase,
                r#"{"results":[{"success":true,"order_id":"a"},{"success":false,"order_id":"b"}]}"#,
                1,
            ),
            (Venue::Kraken, r#"{"error":[],"result":{"count":3}}"#, 3),
        ];
        for (venue, body, want) in cases {
            assert_eq!(
                cancelled_count(venue, body.as_bytes()).unwrap(),
                want,
                "{venue}"
            );
        }
    }
}
