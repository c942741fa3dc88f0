//! Prices and balances, for valuing an account (the audit's `tier = auto`).
//!
//! A ticker is the venue's public last-trade price for one spot symbol; balances are what the
//! key's (spot / trading / unified) account holds, per asset. Both are read strictly: an answer
//! that is not the venue's documented shape is [`KeyInfoError::Malformed`], the venue's own
//! error envelope is [`KeyInfoError::Venue`]. Nothing here is ever guessed, because an account
//! valued too low would get a laxer rotation schedule than it needs.

use std::collections::BTreeMap;

use keyfence_types::Venue;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::params::plain_decimal;
use crate::{HttpRequest, KeyInfoError, binance, bybit, coinbase, kraken, okx};

/// Coinbase pages its account list; one page this large covers any ordinary account, and a
/// longer list is refused rather than valued from its first page.
const COINBASE_PAGE: u32 = 250;

/// What a symbol keeps unencoded in a query value: the characters symbols are spelled with.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');
/// In a path segment a dot is encoded too, so that no symbol can read as `..`.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');

/// `base` quoted in `quote` in the venue's own symbol spelling, from the asset codes that
/// [`parse_balances`] returns: `BTCUSDT` (Binance, Bybit), `BTC-USDT` (OKX, Coinbase),
/// `XBTUSDT` (Kraken's altname form).
pub fn spot_symbol(venue: Venue, base: &str, quote: &str) -> String {
    match venue {
        Venue::Binance | Venue::Bybit | Venue::Kraken => format!("{base}{quote}"),
        Venue::Okx | Venue::Coinbase => format!("{base}-{quote}"),
    }
}

/// The venue's public ticker request for one spot symbol (its own spelling); unsigned, and it
/// needs no key.
pub fn ticker_request(venue: Venue, symbol: &str) -> HttpRequest {
    let q = |s: &str| utf8_percent_encode(s, QUERY_VALUE).to_string();
    match venue {
        Venue::Binance => {
            HttpRequest::new("GET", &format!("/api/v3/ticker/price?symbol={}", q(symbol)))
        }
        Venue::Bybit => HttpRequest::new(
            "GET",
            &format!("/v5/market/tickers?category=spot&symbol={}", q(symbol)),
        ),
        Venue::Okx => HttpRequest::new(
            "GET",
            &format!("/api/v5/market/ticker?instId={}", q(symbol)),
        ),
        // `limit` is required by the real endpoint; the last trade is all we need.
        Venue::Coinbase => HttpRequest::new(
            "GET",
            &format!(
                "/api/v3/brokerage/market/products/{}/ticker?limit=1",
                utf8_percent_encode(symbol, PATH_SEGMENT)
            ),
        ),
        Venue::Kraken => HttpRequest::new("GET", &format!("/0/public/Ticker?pair={}", q(symbol))),
    }
}

/// The last trade price in `venue`'s ticker answer for `symbol`.
pub fn parse_ticker(venue: Venue, symbol: &str, body: &[u8]) -> Result<Decimal, KeyInfoError> {
    let v = json(body)?;
    let price = match venue {
        Venue::Binance => binance_ticker(symbol, &v)?,
        Venue::Bybit => bybit_ticker(symbol, &v)?,
        Venue::Okx => okx_ticker(symbol, &v)?,
        Venue::Coinbase => coinbase_ticker(symbol, &v)?,
        Venue::Kraken => kraken_ticker(symbol, &v)?,
    };
    if price <= Decimal::ZERO {
        return Err(KeyInfoError::Malformed(format!(
            "the price of `{symbol}` is not positive"
        )));
    }
    Ok(price)
}

/// The venue's request for the key's balances (unsigned; pass it to [`crate::sign`]). It needs
/// a key that can read: Binance `GET /api/v3/account` (spot wallet), Bybit
/// `GET /v5/account/wallet-balance` (unified account), OKX `GET /api/v5/account/balance`
/// (trading account), Coinbase `GET /api/v3/brokerage/accounts`, Kraken `POST /0/private/Balance`.
pub fn balances_request(venue: Venue) -> HttpRequest {
    match venue {
        Venue::Binance => HttpRequest::new("GET", "/api/v3/account?omitZeroBalances=true"),
        Venue::Bybit => HttpRequest::new("GET", "/v5/account/wallet-balance?accountType=UNIFIED"),
        Venue::Okx => HttpRequest::new("GET", "/api/v5/account/balance"),
        Venue::Coinbase => HttpRequest::new(
            "GET",
            &format!("/api/v3/brokerage/accounts?limit={COINBASE_PAGE}"),
        ),
        Venue::Kraken => HttpRequest::new("POST", "/0/private/Balance")
            .with_header("content-type", "application/x-www-form-urlencoded"),
    }
}

/// Every asset the account holds (total of free and locked), as `(asset, amount)` sorted by
/// asset, without zero balances. Assets are spelled as the venue spells them in its symbols
/// (Kraken's `XXBT` is `XBT`, `ZUSD` is `USD`; its earn variants such as `XBT.F` count as `XBT`),
/// so that [`spot_symbol`] can price them.
pub fn parse_balances(venue: Venue, body: &[u8]) -> Result<Vec<(String, Decimal)>, KeyInfoError> {
    let v = json(body)?;
    let list = match venue {
        Venue::Binance => binance_balances(&v)?,
        Venue::Bybit => bybit_balances(&v)?,
        Venue::Okx => okx_balances(&v)?,
        Venue::Coinbase => coinbase_balances(&v)?,
        Venue::Kraken => kraken_balances(&v)?,
    };
    let mut out: BTreeMap<String, Decimal> = BTreeMap::new();
    for (asset, amount) in list {
        if asset.is_empty() {
            return Err(KeyInfoError::Malformed("a balance without an asset".into()));
        }
        let sum = out.entry(asset).or_default();
        *sum = sum
            .checked_add(amount)
            .ok_or_else(|| KeyInfoError::Malformed("a balance overflows".into()))?;
    }
    Ok(out.into_iter().filter(|(_, d)| !d.is_zero()).collect())
}

// ---------------------------------------------------------------------------------------------
// Reading

fn json(body: &[u8]) -> Result<Value, KeyInfoError> {
    serde_json::from_slice(body).map_err(|e| KeyInfoError::Malformed(format!("not JSON: {e}")))
}

fn malformed(what: &str) -> KeyInfoError {
    KeyInfoError::Malformed(what.to_owned())
}

/// An amount as every venue here writes it: a JSON string of plain digits, optionally negative
/// (a unified account's borrowed coin). A JSON number is refused, as the venues never send one.
fn amount(v: Option<&Value>, what: &str) -> Result<Decimal, KeyInfoError> {
    let s = v
        .and_then(Value::as_str)
        .ok_or_else(|| KeyInfoError::Malformed(format!("`{what}` is not a string amount")))?;
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let d = plain_decimal(digits)
        .ok_or_else(|| KeyInfoError::Malformed(format!("`{what}` is not an amount: `{s}`")))?;
    Ok(if negative { -d } else { d })
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, KeyInfoError> {
    v.as_object()
        .ok_or_else(|| KeyInfoError::Malformed(format!("`{what}` is not an object")))
}

fn array<'a>(v: Option<&'a Value>, what: &str) -> Result<&'a Vec<Value>, KeyInfoError> {
    v.and_then(Value::as_array)
        .ok_or_else(|| KeyInfoError::Malformed(format!("`{what}` is not a list")))
}

fn text<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

/// The one entry of `list` whose `field` is `symbol`.
fn entry_for<'a>(list: &'a [Value], field: &str, symbol: &str) -> Result<&'a Value, KeyInfoError> {
    list.iter()
        .find(|e| text(e, field).is_some_and(|s| s.eq_ignore_ascii_case(symbol)))
        .ok_or_else(|| KeyInfoError::Malformed(format!("the answer does not price `{symbol}`")))
}

// ---------------------------------------------------------------------------------------------
// Binance: {"symbol":"BTCUSDT","price":"60000.00000000"}; {"balances":[{"asset","free","locked"}]}

fn binance_ticker(symbol: &str, v: &Value) -> Result<Decimal, KeyInfoError> {
    let obj = object(v, "ticker")?;
    if let Some(e) = binance::venue_error(obj) {
        return Err(e);
    }
    entry_for(std::slice::from_ref(v), "symbol", symbol)?;
    amount(obj.get("price"), "price")
}

fn binance_balances(v: &Value) -> Result<Vec<(String, Decimal)>, KeyInfoError> {
    let obj = object(v, "account")?;
    if let Some(e) = binance::venue_error(obj) {
        return Err(e);
    }
    array(obj.get("balances"), "balances")?
        .iter()
        .map(|b| {
            let asset = text(b, "asset").ok_or_else(|| malformed("a balance without `asset`"))?;
            let total = amount(b.get("free"), "free")? + amount(b.get("locked"), "locked")?;
            Ok((asset.to_owned(), total))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Bybit: {"retCode":0,"result":{"list":[{"symbol","lastPrice"}]}};
// {"retCode":0,"result":{"list":[{"accountType":"UNIFIED","coin":[{"coin","walletBalance"}]}]}}

fn bybit_ticker(symbol: &str, v: &Value) -> Result<Decimal, KeyInfoError> {
    bybit::check_envelope(v)?;
    let list = array(v.pointer("/result/list"), "result.list")?;
    amount(
        entry_for(list, "symbol", symbol)?.get("lastPrice"),
        "lastPrice",
    )
}

fn bybit_balances(v: &Value) -> Result<Vec<(String, Decimal)>, KeyInfoError> {
    bybit::check_envelope(v)?;
    let mut out = Vec::new();
    for account in array(v.pointer("/result/list"), "result.list")? {
        for c in array(account.get("coin"), "coin")? {
            let coin = text(c, "coin").ok_or_else(|| malformed("a balance without `coin`"))?;
            out.push((
                coin.to_owned(),
                amount(c.get("walletBalance"), "walletBalance")?,
            ));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// OKX: {"code":"0","data":[{"instId","last"}]}; {"code":"0","data":[{"details":[{"ccy","eq"}]}]}

fn okx_ticker(symbol: &str, v: &Value) -> Result<Decimal, KeyInfoError> {
    okx::check_envelope(v)?;
    let data = array(v.get("data"), "data")?;
    amount(entry_for(data, "instId", symbol)?.get("last"), "last")
}

fn okx_balances(v: &Value) -> Result<Vec<(String, Decimal)>, KeyInfoError> {
    okx::check_envelope(v)?;
    let mut out = Vec::new();
    for account in array(v.get("data"), "data")? {
        for d in array(account.get("details"), "details")? {
            let ccy = text(d, "ccy").ok_or_else(|| malformed("a balance without `ccy`"))?;
            out.push((ccy.to_owned(), amount(d.get("eq"), "eq")?));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Coinbase: {"trades":[{"product_id","price"}],"best_bid","best_ask"};
// {"accounts":[{"currency","available_balance":{"value"},"hold":{"value"}}],"has_next":false}

fn coinbase_ticker(symbol: &str, v: &Value) -> Result<Decimal, KeyInfoError> {
    if let Some(e) = coinbase::venue_error(object(v, "ticker")?) {
        return Err(e);
    }
    let trades = array(v.get("trades"), "trades")?;
    amount(
        entry_for(trades, "product_id", symbol)?.get("price"),
        "price",
    )
}

fn coinbase_balances(v: &Value) -> Result<Vec<(String, Decimal)>, KeyInfoError> {
    if let Some(e) = coinbase::venue_error(object(v, "accounts")?) {
        return Err(e);
    }
    if v.get("has_next").and_then(Value::as_bool) == Some(true) {
        return Err(KeyInfoError::Malformed(format!(
            "more than {COINBASE_PAGE} accounts; keyfence does not value a partial list"
        )));
    }
    array(v.get("accounts"), "accounts")?
        .iter()
        .map(|a| {
            let ccy =
                text(a, "currency").ok_or_else(|| malformed("an account without `currency`"))?;
            let free = amount(
                a.pointer("/available_balance/value"),
                "available_balance.value",
            )?;
            // `hold` is absent on some account types; absent means nothing on hold.
            let hold = match a.pointer("/hold/value") {
                None => Decimal::ZERO,
                held => amount(held, "hold.value")?,
            };
            Ok((ccy.to_owned(), free + hold))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Kraken: {"error":[],"result":{"XXBTZUSD":{"c":["60000.0","0.1"],...}}};
// {"error":[],"result":{"XXBT":"1.0000000000","ZUSD":"100.0000"}}

fn kraken_result(v: &Value) -> Result<&Map<String, Value>, KeyInfoError> {
    if let Some(e) = kraken::venue_error(v) {
        return Err(e);
    }
    v.get("result")
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("no `result` object"))
}

fn kraken_ticker(symbol: &str, v: &Value) -> Result<Decimal, KeyInfoError> {
    let result = kraken_result(v)?;
    // Kraken keys the answer by its pair id (`XXBTZUSD` for `XBTUSD`): the one entry, or the
    // entry spelled as asked.
    let entry = match result.len() {
        1 => result.values().next(),
        _ => result
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(symbol))
            .map(|(_, e)| e),
    }
    .ok_or_else(|| KeyInfoError::Malformed(format!("the answer does not price `{symbol}`")))?;
    amount(entry.pointer("/c/0"), "c")
}

fn kraken_balances(v: &Value) -> Result<Vec<(String, Decimal)>, KeyInfoError> {
    kraken_result(v)?
        .iter()
        .map(|(asset, amt)| Ok((kraken_asset(asset), amount(Some(amt), asset)?)))
        .collect()
}

/// Kraken's balance key as it appears in pair names: the legacy `X`/`Z` prefix dropped
/// (`XXBT` -> `XBT`, `ZUSD` -> `USD`) and the earn/staking suffix too (`XBT.F` -> `XBT`).
fn kraken_asset(id: &str) -> String {
    let id = id.split_once('.').map_or(id, |(a, _)| a);
    const LEGACY: &[&str] = &[
        "XBT", "ETH", "LTC", "XRP", "XLM", "XMR", "ETC", "ZEC", "REP", "MLN", "XDG", "USD", "EUR",
        "GBP", "JPY", "CAD", "AUD",
    ];
    match id.get(1..) {
        Some(rest)
            if id.len() == 4
                && (id.starts_with('X') || id.starts_with('Z'))
                && LEGACY.contains(&rest) =>
        {
            rest.to_owned()
        }
        _ => id.to_owned(),
    }
}

#[cfg(test)]
#[path = "market_tests.rs"]
mod tests;
