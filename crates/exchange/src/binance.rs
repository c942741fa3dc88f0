//! Binance spot (`api.binance.com`, `/api/v3`, wallet `/sapi`) and USD-M futures
//! (`fapi.binance.com`, `/fapi`).
//!
//! Authentication (reference/exchanges.md §2.1): header `X-MBX-APIKEY`; the signed payload is
//! the raw query string concatenated with the raw body, no separator, without the `signature`
//! parameter, which must be the last parameter of the query or of the body. HMAC-SHA256
//! signatures are hex (case-insensitive); Ed25519 signatures are base64, percent-encoded.
//! `timestamp` is required; `recvWindow` defaults to 5000 ms, at most 60000; a request is
//! accepted iff `timestamp < now + 1000` and `now - timestamp <= recvWindow`.
//! Parameters may be split between query and body; a name sent twice (even once in each) is
//! refused, so what keyfence checks is what the exchange executes.

use std::borrow::Cow;
use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use keyfence_types::{EndpointClass, KeyProfile, Order, OrderType, Permission, Side, Venue};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::crypto::{PrivateKey, PublicKey, hmac_sha256, verify_hmac_sha256_hex};
use crate::params::{Params, parse_json_strict};
use crate::{
    AuthContext, AuthError, Authenticated, Denial, DenialKind, HttpRequest, KeyError, KeyInfoError,
    KeyLookup, NativeResponse, OrderError, OrderSpec, SignContext, SignError, SigningKey,
    SigningScheme, VerifyScheme,
};

/// The API-key header.
pub(crate) const API_KEY_HEADER: &str = "x-mbx-apikey";
const DEFAULT_RECV_WINDOW_MS: i64 = 5000;
const MAX_RECV_WINDOW_MS: i64 = 60_000;
/// How far ahead of the server's clock a timestamp may be.
const FUTURE_TOLERANCE_MS: i64 = 1000;
/// `POST /fapi/v1/batchOrders` takes at most five orders.
const MAX_BATCH_ORDERS: usize = 5;

// ---------------------------------------------------------------------------------------------
// Authentication

pub(crate) fn claimed_api_key(req: &HttpRequest) -> Option<String> {
    req.header(API_KEY_HEADER)
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
}

/// Where the `signature` parameter was found, and the payload that was signed.
struct Signed<'a> {
    /// Raw query + raw body, both without the signature parameter (borrowed when one of
    /// them is empty, as in every order a client sends).
    payload: Cow<'a, [u8]>,
    /// The decoded signature value.
    signature: String,
    /// Every other parameter, query and body together.
    params: Params<'a>,
}

/// Split `raw` into (everything before, the decoded value) when its last parameter is
/// `signature`.
fn trailing_signature(raw: &str) -> Option<(&str, String)> {
    let (before, last) = match raw.rfind('&') {
        Some(i) => (&raw[..i], &raw[i + 1..]),
        None => ("", raw),
    };
    let (name, value) = form_urlencoded::parse(last.as_bytes()).next()?;
    (name == "signature").then(|| (before, value.into_owned()))
}

/// Locate the signature and rebuild the signed payload over the raw bytes as received.
fn signed_parts(req: &HttpRequest) -> Result<Signed<'_>, AuthError> {
    let body = req
        .body_str()
        .map_err(|_| AuthError::Malformed("the body is not UTF-8".into()))?;
    let (query, body, signature) = if let Some((rest, sig)) = trailing_signature(body) {
        (req.query.as_str(), rest, sig)
    } else if let Some((rest, sig)) = trailing_signature(&req.query) {
        (rest, body, sig)
    } else {
        let all = Params::merge_query_and_body(&req.query, body.as_bytes())
            .map_err(|e| AuthError::Malformed(e.to_string()))?;
        return Err(if all.contains("signature") {
            AuthError::Malformed("`signature` must be the last parameter".into())
        } else {
            AuthError::MissingSignature
        });
    };
    let params = Params::merge_query_and_body(query, body.as_bytes())
        .map_err(|e| AuthError::Malformed(e.to_string()))?;
    if params.contains("signature") {
        return Err(AuthError::Malformed(
            "parameter `signature` is sent more than once".into(),
        ));
    }
    let payload = joined(query, body);
    Ok(Signed {
        payload,
        signature,
        params,
    })
}

/// `query` + `body`, copied only when both have bytes.
fn joined<'a>(query: &'a str, body: &'a str) -> Cow<'a, [u8]> {
    match (query.is_empty(), body.is_empty()) {
        (_, true) => Cow::Borrowed(query.as_bytes()),
        (true, false) => Cow::Borrowed(body.as_bytes()),
        (false, false) => Cow::Owned([query.as_bytes(), body.as_bytes()].concat()),
    }
}

/// `timestamp` in milliseconds (spot also takes microseconds: 16 digits).
fn timestamp_ms(params: &Params) -> Result<i64, AuthError> {
    let raw = params.get("timestamp").ok_or(AuthError::MissingTimestamp)?;
    if raw.is_empty() || raw.len() > 18 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::Malformed(format!("invalid timestamp `{raw}`")));
    }
    let ts: i64 = raw
        .parse()
        .map_err(|_| AuthError::Malformed(format!("invalid timestamp `{raw}`")))?;
    Ok(if ts >= 100_000_000_000_000 {
        ts / 1000
    } else {
        ts
    })
}

/// `recvWindow` in milliseconds (spot allows up to three decimals), default 5000, at most 60000.
fn recv_window(params: &Params) -> Result<Decimal, AuthError> {
    let Some(raw) = params.get("recvWindow") else {
        return Ok(Decimal::from(DEFAULT_RECV_WINDOW_MS));
    };
    let rw = plain_decimal(raw)
        .filter(|d| *d > Decimal::ZERO && d.scale() <= 3)
        .ok_or_else(|| AuthError::Malformed(format!("invalid recvWindow `{raw}`")))?;
    if rw > Decimal::from(MAX_RECV_WINDOW_MS) {
        return Err(AuthError::Malformed(
            "recvWindow must be less than or equal to 60000".into(),
        ));
    }
    Ok(rw)
}

pub(crate) fn authenticate(
    req: &HttpRequest,
    ctx: &AuthContext<'_>,
    keys: &dyn KeyLookup,
) -> Result<Authenticated, AuthError> {
    match req.header_count(API_KEY_HEADER) {
        0 => return Err(AuthError::MissingApiKey),
        1 => {}
        _ => {
            return Err(AuthError::Malformed(
                "header X-MBX-APIKEY is sent more than once".into(),
            ));
        }
    }
    let api_key = claimed_api_key(req).ok_or(AuthError::MissingApiKey)?;
    let signed = signed_parts(req)?;
    let ts = timestamp_ms(&signed.params)?;
    let window = recv_window(&signed.params)?;
    let key = keys.find(&api_key).ok_or(AuthError::UnknownApiKey)?;
    let valid = match &key.scheme {
        VerifyScheme::Hmac(secret) => verify_hmac_sha256_hex(
            secret.expose(),
            &signed.payload,
            signed.signature.as_bytes(),
        ),
        VerifyScheme::Public(pk @ PublicKey::Ed25519(_)) => {
            match B64.decode(signed.signature.as_bytes()) {
                Ok(sig) => pk.verify(&signed.payload, &sig),
                Err(_) => false,
            }
        }
        // Binance has no ECDSA keys.
        VerifyScheme::Public(PublicKey::EcdsaP256(_)) => false,
    };
    if !valid {
        return Err(AuthError::InvalidSignature);
    }
    let ahead_ok = ts < ctx.now_ms.saturating_add(FUTURE_TOLERANCE_MS);
    let age = Decimal::from(ctx.now_ms.saturating_sub(ts));
    if !ahead_ok || age > window {
        return Err(AuthError::TimestampOutsideWindow);
    }
    Ok(Authenticated {
        api_key,
        timestamp_ms: Some(ts),
        nonce: None,
    })
}

// ---------------------------------------------------------------------------------------------
// Signing

/// Sign as the official client does: add `timestamp` (to the query) when absent, sign the raw
/// query + body, and append `signature` as the last parameter (of the body when there is one,
/// else of the query). A `signature` already at the end (a bot's, in the gateway) is replaced.
/// On an error the request may have lost that signature already; it is not for sending.
pub(crate) fn sign(
    key: &SigningKey,
    req: &mut HttpRequest,
    ctx: &SignContext<'_>,
) -> Result<(), SignError> {
    // The body is worked on in place (moved out, cut, moved back), not copied.
    let mut body = String::from_utf8(std::mem::take(&mut req.body)).map_err(|e| {
        req.body = e.into_bytes();
        SignError::Request("the body is not UTF-8".into())
    })?;
    if let Some((rest, _)) = trailing_signature(&body) {
        let keep = rest.len();
        body.truncate(keep);
    } else if let Some((rest, _)) = trailing_signature(&req.query) {
        let keep = rest.len();
        req.query.truncate(keep);
    }
    let signed = sign_parts(key, req, &mut body, ctx);
    req.body = body.into_bytes();
    signed?;
    req.set_header(API_KEY_HEADER, &key.api_key);
    Ok(())
}

/// [`sign`] once the bot's signature is gone: `body` goes back into `req` afterwards.
fn sign_parts(
    key: &SigningKey,
    req: &mut HttpRequest,
    body: &mut String,
    ctx: &SignContext<'_>,
) -> Result<(), SignError> {
    let params = Params::merge_query_and_body(&req.query, body.as_bytes())
        .map_err(|e| SignError::Request(e.to_string()))?;
    if params.contains("signature") {
        return Err(SignError::Request(
            "`signature` must be the last parameter".into(),
        ));
    }
    if !params.contains("timestamp") {
        if !req.query.is_empty() {
            req.query.push('&');
        }
        req.query.push_str(&format!("timestamp={}", ctx.now_ms));
    }
    let payload = joined(&req.query, body);
    let signature = match &key.scheme {
        SigningScheme::Hmac(secret) => hex::encode(hmac_sha256(secret.expose(), &payload)),
        SigningScheme::Private(pk @ PrivateKey::Ed25519(_)) => {
            let sig = pk.sign(&payload, ctx.rng)?;
            form_urlencoded::byte_serialize(B64.encode(sig).as_bytes()).collect()
        }
        SigningScheme::Private(PrivateKey::EcdsaP256(_)) => {
            return Err(SignError::Key(KeyError::Invalid(
                "Binance keys are HMAC, RSA or Ed25519, not P-256",
            )));
        }
    };
    if body.is_empty() {
        if !req.query.is_empty() {
            req.query.push('&');
        }
        req.query.push_str("signature=");
        req.query.push_str(&signature);
    } else {
        body.push_str("&signature=");
        body.push_str(&signature);
        if req.header("content-type").is_none() {
            req.set_header("content-type", "application/x-www-form-urlencoded");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Classification

use EndpointClass::{
    AccountSettings, Cancel, Deposit, KeyManagement, Public, Read, Subaccount, Trade, Transfer,
    Withdraw,
};

/// (methods, canonical path, class). Paths are lower-case, as [`crate::path::canonical`] gives.
const ENDPOINTS: &[(&[&str], &str, EndpointClass)] = &[
    // --- spot market data (no key)
    (&["GET"], "/api/v3/ping", Public),
    (&["GET"], "/api/v3/time", Public),
    (&["GET"], "/api/v3/exchangeinfo", Public),
    (&["GET"], "/api/v3/depth", Public),
    (&["GET"], "/api/v3/trades", Public),
    (&["GET"], "/api/v3/historicaltrades", Public),
    (&["GET"], "/api/v3/aggtrades", Public),
    (&["GET"], "/api/v3/klines", Public),
    (&["GET"], "/api/v3/uiklines", Public),
    (&["GET"], "/api/v3/avgprice", Public),
    (&["GET"], "/api/v3/ticker", Public),
    (&["GET"], "/api/v3/ticker/24hr", Public),
    (&["GET"], "/api/v3/ticker/tradingday", Public),
    (&["GET"], "/api/v3/ticker/price", Public),
    (&["GET"], "/api/v3/ticker/bookticker", Public),
    (&["GET"], "/sapi/v1/system/status", Public),
    // --- spot trading
    (&["POST"], "/api/v3/order", Trade),
    (&["POST"], "/api/v3/order/test", Trade),
    (&["POST"], "/api/v3/order/cancelreplace", Trade),
    (&["PUT"], "/api/v3/order/amend/keeppriority", Trade),
    (&["POST"], "/api/v3/order/oco", Trade),
    (&["POST"], "/api/v3/orderlist/oco", Trade),
    (&["POST"], "/api/v3/orderlist/oto", Trade),
    (&["POST"], "/api/v3/orderlist/otoco", Trade),
    (&["POST"], "/api/v3/orderlist/opo", Trade),
    (&["POST"], "/api/v3/orderlist/opoco", Trade),
    (&["POST"], "/api/v3/sor/order", Trade),
    (&["POST"], "/api/v3/sor/order/test", Trade),
    (&["DELETE"], "/api/v3/order", Cancel),
    (&["DELETE"], "/api/v3/openorders", Cancel),
    (&["DELETE"], "/api/v3/orderlist", Cancel),
    // --- spot reads
    (&["GET"], "/api/v3/account", Read),
    (&["GET"], "/api/v3/account/commission", Read),
    (&["GET"], "/api/v3/order", Read),
    (&["GET"], "/api/v3/openorders", Read),
    (&["GET"], "/api/v3/allorders", Read),
    (&["GET"], "/api/v3/orderlist", Read),
    (&["GET"], "/api/v3/allorderlist", Read),
    (&["GET"], "/api/v3/openorderlist", Read),
    (&["GET"], "/api/v3/mytrades", Read),
    (&["GET"], "/api/v3/mypreventedmatches", Read),
    (&["GET"], "/api/v3/myallocations", Read),
    (&["GET"], "/api/v3/myfilters", Read),
    (&["GET"], "/api/v3/order/amendments", Read),
    (&["GET"], "/api/v3/ratelimit/order", Read),
    // --- margin trading
    (&["POST"], "/sapi/v1/margin/order", Trade),
    (&["POST"], "/sapi/v1/margin/order/oco", Trade),
    (&["POST"], "/sapi/v1/margin/order/oto", Trade),
    (&["POST"], "/sapi/v1/margin/order/otoco", Trade),
    (&["DELETE"], "/sapi/v1/margin/order", Cancel),
    (&["DELETE"], "/sapi/v1/margin/openorders", Cancel),
    (&["DELETE"], "/sapi/v1/margin/orderlist", Cancel),
    (&["POST"], "/sapi/v1/margin/borrow-repay", Transfer),
    (&["POST"], "/sapi/v1/margin/transfer", Transfer),
    (&["POST"], "/sapi/v1/margin/isolated/transfer", Transfer),
    // --- wallet: withdrawals
    (&["POST"], "/sapi/v1/capital/withdraw/apply", Withdraw),
    (&["POST"], "/sapi/v1/localentity/withdraw/apply", Withdraw),
    (
        &["POST"],
        "/sapi/v1/localentity/broker/withdraw/apply",
        Withdraw,
    ),
    (&["POST"], "/sapi/v1/managed-subaccount/withdraw", Withdraw),
    (
        &["POST"],
        "/sapi/v1/account/enablefastwithdrawswitch",
        Withdraw,
    ),
    (
        &["POST"],
        "/sapi/v1/account/disablefastwithdrawswitch",
        Withdraw,
    ),
    // --- wallet: transfers and value-moving conversions
    (&["POST"], "/sapi/v1/asset/transfer", Transfer),
    (&["POST"], "/sapi/v1/futures/transfer", Transfer),
    (
        &["POST"],
        "/sapi/v1/sub-account/transfer/subtosub",
        Transfer,
    ),
    (
        &["POST"],
        "/sapi/v1/sub-account/transfer/subtomaster",
        Transfer,
    ),
    (
        &["POST"],
        "/sapi/v1/sub-account/universaltransfer",
        Transfer,
    ),
    (&["POST"], "/sapi/v1/sub-account/futures/transfer", Transfer),
    (
        &["POST"],
        "/sapi/v1/sub-account/futures/internaltransfer",
        Transfer,
    ),
    (&["POST"], "/sapi/v1/sub-account/margin/transfer", Transfer),
    (
        &["POST"],
        "/sapi/v1/sub-account/futures/move-position",
        Transfer,
    ),
    (&["POST"], "/sapi/v1/managed-subaccount/deposit", Transfer),
    (&["POST"], "/sapi/v1/asset/convert-transfer", Transfer),
    (&["POST"], "/sapi/v1/broker/transfer", Transfer),
    (&["POST"], "/sapi/v1/broker/transfer/futures", Transfer),
    (&["POST"], "/sapi/v1/broker/universaltransfer", Transfer),
    (&["POST"], "/sapi/v1/asset/dust", Transfer),
    (&["POST"], "/sapi/v1/asset/dust-btc", Transfer),
    (&["POST"], "/sapi/v1/asset/dust-convert/convert", Transfer),
    (&["POST"], "/sapi/v1/convert/getquote", Transfer),
    (&["POST"], "/sapi/v1/convert/acceptquote", Transfer),
    (&["POST"], "/fapi/v1/convert/getquote", Transfer),
    (&["POST"], "/fapi/v1/convert/acceptquote", Transfer),
    // --- sub-accounts
    (
        &["POST"],
        "/sapi/v1/sub-account/virtualsubaccount",
        Subaccount,
    ),
    (&["POST"], "/sapi/v1/sub-account/futures/enable", Subaccount),
    (&["POST"], "/sapi/v1/sub-account/margin/enable", Subaccount),
    (&["POST"], "/sapi/v1/sub-account/options/enable", Subaccount),
    (
        &["POST"],
        "/sapi/v1/sub-account/eoptions/enable",
        Subaccount,
    ),
    // --- API-key management
    (
        &["POST", "DELETE"],
        "/sapi/v1/sub-account/subaccountapi",
        KeyManagement,
    ),
    (
        &["POST"],
        "/sapi/v1/sub-account/subaccountapipermission",
        KeyManagement,
    ),
    (
        &["POST"],
        "/sapi/v2/sub-account/subaccountapi/iprestriction",
        KeyManagement,
    ),
    (
        &["DELETE"],
        "/sapi/v1/sub-account/subaccountapi/iprestriction/iplist",
        KeyManagement,
    ),
    (
        &["POST", "DELETE"],
        "/sapi/v1/broker/subaccountapi",
        KeyManagement,
    ),
    // --- deposits
    (&["GET"], "/sapi/v1/capital/deposit/address", Deposit),
    (&["GET"], "/sapi/v1/capital/deposit/address/list", Deposit),
    (&["GET"], "/sapi/v1/capital/deposit/subaddress", Deposit),
    (&["POST"], "/sapi/v1/capital/deposit/credit-apply", Deposit),
    (
        &["PUT"],
        "/sapi/v1/localentity/deposit/provide-info",
        Deposit,
    ),
    (
        &["PUT"],
        "/sapi/v2/localentity/deposit/provide-info",
        Deposit,
    ),
    // --- wallet reads
    (&["GET"], "/sapi/v1/capital/config/getall", Read),
    (&["GET"], "/sapi/v1/capital/withdraw/history", Read),
    (&["GET"], "/sapi/v1/capital/withdraw/address/list", Read),
    (&["GET"], "/sapi/v1/capital/withdraw/quota", Read),
    (&["GET"], "/sapi/v1/capital/deposit/hisrec", Read),
    (&["GET"], "/sapi/v1/capital/deposit/subhisrec", Read),
    (&["GET"], "/sapi/v1/asset/transfer", Read),
    (&["GET"], "/sapi/v1/asset/tradefee", Read),
    (&["GET"], "/sapi/v1/asset/wallet/balance", Read),
    (&["GET"], "/sapi/v1/accountsnapshot", Read),
    (&["GET"], "/sapi/v1/account/status", Read),
    (&["GET"], "/sapi/v1/account/info", Read),
    (&["GET"], "/sapi/v1/account/apirestrictions", Read),
    (
        &["GET"],
        "/sapi/v1/account/apirestrictions/iprestriction",
        Read,
    ),
    (&["GET"], "/sapi/v1/account/apitradingstatus", Read),
    (&["GET"], "/sapi/v1/margin/allpairs", Read),
    (&["GET"], "/sapi/v1/margin/isolated/allpairs", Read),
    (&["POST"], "/sapi/v1/asset/get-funding-asset", Read),
    (&["POST"], "/sapi/v3/asset/getuserasset", Read),
    // --- USD-M futures market data
    (&["GET"], "/fapi/v1/ping", Public),
    (&["GET"], "/fapi/v1/time", Public),
    (&["GET"], "/fapi/v1/exchangeinfo", Public),
    (&["GET"], "/fapi/v1/depth", Public),
    (&["GET"], "/fapi/v1/trades", Public),
    (&["GET"], "/fapi/v1/aggtrades", Public),
    (&["GET"], "/fapi/v1/klines", Public),
    (&["GET"], "/fapi/v1/premiumindex", Public),
    (&["GET"], "/fapi/v1/fundingrate", Public),
    (&["GET"], "/fapi/v1/ticker/24hr", Public),
    (&["GET"], "/fapi/v1/ticker/price", Public),
    (&["GET"], "/fapi/v2/ticker/price", Public),
    (&["GET"], "/fapi/v1/ticker/bookticker", Public),
    (&["GET"], "/fapi/v1/openinterest", Public),
    // --- COIN-M futures exchange information (ccxt's load_markets reads it)
    (&["GET"], "/dapi/v1/ping", Public),
    (&["GET"], "/dapi/v1/time", Public),
    (&["GET"], "/dapi/v1/exchangeinfo", Public),
    // --- USD-M futures trading
    (&["POST", "PUT"], "/fapi/v1/order", Trade),
    (&["POST"], "/fapi/v1/order/test", Trade),
    (&["POST", "PUT"], "/fapi/v1/batchorders", Trade),
    (&["POST"], "/fapi/v1/algoorder", Trade),
    (&["DELETE"], "/fapi/v1/order", Cancel),
    (&["DELETE"], "/fapi/v1/batchorders", Cancel),
    (&["DELETE"], "/fapi/v1/allopenorders", Cancel),
    (&["POST"], "/fapi/v1/countdowncancelall", Cancel),
    (&["DELETE"], "/fapi/v1/algoorder", Cancel),
    (&["DELETE"], "/fapi/v1/algoopenorders", Cancel),
    (&["POST"], "/fapi/v1/leverage", AccountSettings),
    (&["POST"], "/fapi/v1/margintype", AccountSettings),
    (&["POST"], "/fapi/v1/positionmargin", AccountSettings),
    (&["POST"], "/fapi/v1/positionside/dual", AccountSettings),
    (&["POST"], "/fapi/v1/multiassetsmargin", AccountSettings),
    (&["POST"], "/fapi/v1/feeburn", AccountSettings),
    // --- USD-M futures reads (listenKey: the user-data stream, read-only)
    (&["POST", "PUT", "DELETE"], "/fapi/v1/listenkey", Read),
    (&["GET"], "/fapi/v2/account", Read),
    (&["GET"], "/fapi/v3/account", Read),
    (&["GET"], "/fapi/v2/balance", Read),
    (&["GET"], "/fapi/v3/balance", Read),
    (&["GET"], "/fapi/v2/positionrisk", Read),
    (&["GET"], "/fapi/v3/positionrisk", Read),
    (&["GET"], "/fapi/v1/order", Read),
    (&["GET"], "/fapi/v1/openorder", Read),
    (&["GET"], "/fapi/v1/openorders", Read),
    (&["GET"], "/fapi/v1/allorders", Read),
    (&["GET"], "/fapi/v1/usertrades", Read),
    (&["GET"], "/fapi/v1/income", Read),
    (&["GET"], "/fapi/v1/commissionrate", Read),
    (&["GET"], "/fapi/v1/leveragebracket", Read),
    (&["GET"], "/fapi/v1/positionside/dual", Read),
    (&["GET"], "/fapi/v1/multiassetsmargin", Read),
    (&["GET"], "/fapi/v1/accountconfig", Read),
    (&["GET"], "/fapi/v1/symbolconfig", Read),
    (&["GET"], "/fapi/v1/openalgoorders", Read),
    (&["GET"], "/fapi/v1/allalgoorders", Read),
    (&["GET"], "/fapi/v1/algoorder", Read),
    (&["GET"], "/fapi/v1/forceorders", Read),
    (&["GET"], "/fapi/v1/adlquantile", Read),
    (&["GET"], "/fapi/v1/ratelimit/order", Read),
    (&["GET"], "/fapi/v1/apitradingstatus", Read),
];

pub(crate) fn classify(method: &str, path: &str, _req: &HttpRequest) -> EndpointClass {
    if let Some((_, _, class)) = ENDPOINTS
        .iter()
        .find(|(methods, p, _)| *p == path && methods.contains(&method))
    {
        return *class;
    }
    // Not on the allow-list. Name the dangerous families so logs say what was refused; every
    // answer here is one that policy denies by default, like `Unknown`.
    if path.starts_with("/sapi/") {
        if path.contains("subaccountapi") || path.contains("apikey") {
            return KeyManagement;
        }
        if path.contains("withdraw") {
            return Withdraw;
        }
        if path.contains("transfer") {
            return Transfer;
        }
        if path.contains("/sub-account/") || path.contains("/broker/subaccount") {
            return Subaccount;
        }
    }
    EndpointClass::Unknown
}

// ---------------------------------------------------------------------------------------------
// Orders

/// A decimal as Binance writes it (the shared strict form).
fn plain_decimal(s: &str) -> Option<Decimal> {
    crate::params::plain_decimal(s)
}

/// An order's fields by name: borrowed from the request's form (an order's parameters are read
/// on every request), owned where they come from a `batchOrders` JSON element.
/// Looked up by name; a dozen or so, so a list beats a map. Names are unique in both sources
/// (the form refuses a repeated name, a JSON object has none).
#[derive(Default)]
struct Fields<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Option<&Cow<'a, str>> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

fn invalid(name: &str, value: &str) -> OrderError {
    OrderError::InvalidParameter {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

fn decimal_field(f: &Fields, name: &str) -> Result<Option<Decimal>, OrderError> {
    match f.get(name) {
        None => Ok(None),
        Some(v) => plain_decimal(v).map(Some).ok_or_else(|| invalid(name, v)),
    }
}

fn bool_field(f: &Fields, name: &str) -> Result<bool, OrderError> {
    match f.get(name).map(Cow::as_ref) {
        None | Some("false") | Some("FALSE") | Some("False") => Ok(false),
        Some("true") | Some("TRUE") | Some("True") => Ok(true),
        Some(v) => Err(invalid(name, v)),
    }
}

fn required<'f>(f: &'f Fields, name: &str) -> Result<&'f str, OrderError> {
    match f.get(name) {
        Some(v) if !v.is_empty() => Ok(v),
        Some(v) => Err(invalid(name, v)),
        None => Err(OrderError::MissingParameter(name.to_owned())),
    }
}

fn side_field(f: &Fields, name: &str) -> Result<Side, OrderError> {
    match required(f, name)? {
        "BUY" => Ok(Side::Buy),
        "SELL" => Ok(Side::Sell),
        v => Err(invalid(name, v)),
    }
}

fn symbol_field(f: &Fields) -> Result<String, OrderError> {
    let s = required(f, "symbol")?;
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("symbol", s));
    }
    Ok(s.to_uppercase())
}

fn order_type(name: &str, value: &str) -> Result<OrderType, OrderError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_') {
        return Err(invalid(name, value));
    }
    Ok(match value {
        "MARKET" => OrderType::Market,
        "LIMIT" => OrderType::Limit,
        other => OrderType::Other(other.to_ascii_lowercase()),
    })
}

/// Which fields one order (or one leg of an order list) is read from.
struct Leg<'k> {
    side: &'k str,
    /// The field that holds the type; `Err(t)`: the type is fixed (`t`).
    kind: Result<&'k str, &'k str>,
    /// Quantity fields, first present wins.
    quantity: &'k [&'k str],
    quote_quantity: Option<&'k str>,
    price: Option<&'k str>,
    client_id: Option<&'k str>,
}

const SINGLE: Leg<'static> = Leg {
    side: "side",
    kind: Ok("type"),
    quantity: &["quantity"],
    quote_quantity: Some("quoteOrderQty"),
    price: Some("price"),
    client_id: Some("newClientOrderId"),
};

fn read_leg(f: &Fields, leg: &Leg<'_>) -> Result<Order, OrderError> {
    let symbol = symbol_field(f)?;
    let side = side_field(f, leg.side)?;
    let order_type = match leg.kind {
        Ok(field) => order_type(field, required(f, field)?)?,
        Err(fixed) => order_type("type", fixed)?,
    };
    let mut quantity = None;
    for q in leg.quantity {
        if let Some(d) = decimal_field(f, q)? {
            quantity = Some(d);
            break;
        }
    }
    let quote_quantity = match leg.quote_quantity {
        Some(q) => decimal_field(f, q)?,
        None => None,
    };
    let price = match leg.price {
        Some(p) => decimal_field(f, p)?,
        None => None,
    };
    let close_position = bool_field(f, "closePosition")?;
    let reduce_only = bool_field(f, "reduceOnly")? || close_position;
    if quantity.is_none() && quote_quantity.is_none() && !close_position {
        let name = leg.quantity.first().copied().unwrap_or("quantity");
        return Err(OrderError::MissingParameter(name.to_owned()));
    }
    let pegged = f.contains_key("pegPriceType") || f.contains_key("priceMatch");
    if order_type == OrderType::Limit && price.is_none() && !pegged {
        return Err(OrderError::MissingParameter(
            leg.price.unwrap_or("price").to_owned(),
        ));
    }
    let client_id = leg
        .client_id
        .and_then(|c| f.get(c))
        .map(|c| String::from(c.as_ref()));
    Ok(Order {
        venue: Venue::Binance,
        symbol,
        side,
        order_type,
        quantity,
        quote_quantity,
        price,
        reduce_only,
        client_id,
    })
}

fn fields_of<'a>(params: &'a Params<'_>) -> Fields<'a> {
    Fields(
        params
            .iter()
            .filter(|(k, _)| *k != "signature")
            .map(|(k, v)| (Cow::Borrowed(k), Cow::Borrowed(v)))
            .collect(),
    )
}

/// One element of `batchOrders`: a flat JSON object of strings, numbers and booleans.
fn fields_of_json(v: &Value) -> Result<Fields<'static>, OrderError> {
    let obj = v.as_object().ok_or_else(|| {
        OrderError::Malformed("each element of `batchOrders` is an object".into())
    })?;
    let mut out = Fields(Vec::with_capacity(obj.len()));
    for (k, v) in obj {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => continue,
            _ => {
                return Err(OrderError::Malformed(format!(
                    "`batchOrders` field `{k}` is not a scalar"
                )));
            }
        };
        out.0.push((Cow::Owned(k.clone()), Cow::Owned(s)));
    }
    Ok(out)
}

fn batch_orders(f: &Fields, modify: bool) -> Result<Vec<Order>, OrderError> {
    let raw = required(f, "batchOrders")?;
    let list = parse_json_strict(raw.as_bytes())?;
    let items = list
        .as_array()
        .ok_or_else(|| OrderError::Malformed("`batchOrders` is a JSON list".into()))?;
    if items.is_empty() || items.len() > MAX_BATCH_ORDERS {
        return Err(invalid(
            "batchOrders",
            &format!("{} orders (1 to {MAX_BATCH_ORDERS})", items.len()),
        ));
    }
    let leg = if modify { MODIFY } else { SINGLE };
    items
        .iter()
        .map(|item| read_leg(&fields_of_json(item)?, &leg))
        .collect()
}

/// `PUT /fapi/v1/order` and `PUT /fapi/v1/batchOrders`: only LIMIT orders can be modified.
const MODIFY: Leg<'static> = Leg {
    side: "side",
    kind: Err("LIMIT"),
    quantity: &["quantity"],
    quote_quantity: None,
    price: Some("price"),
    client_id: Some("origClientOrderId"),
};

/// Deprecated `POST /api/v3/order/oco` (and margin): a LIMIT_MAKER leg at `price` and a stop
/// leg, STOP_LOSS_LIMIT at `stopLimitPrice` when given, else STOP_LOSS.
fn legacy_oco(f: &Fields) -> Result<Vec<Order>, OrderError> {
    let above = Leg {
        side: "side",
        kind: Err("LIMIT_MAKER"),
        quantity: &["quantity"],
        quote_quantity: None,
        price: Some("price"),
        client_id: Some("limitClientOrderId"),
    };
    let limit = read_leg(f, &above)?;
    if limit.price.is_none() {
        return Err(OrderError::MissingParameter("price".into()));
    }
    let stop_kind = if f.contains_key("stopLimitPrice") {
        "STOP_LOSS_LIMIT"
    } else {
        "STOP_LOSS"
    };
    let stop = read_leg(
        f,
        &Leg {
            side: "side",
            kind: Err(stop_kind),
            quantity: &["quantity"],
            quote_quantity: None,
            price: Some("stopLimitPrice"),
            client_id: Some("stopClientOrderId"),
        },
    )?;
    Ok(vec![limit, stop])
}

/// `POST /api/v3/orderList/oco`: above and below legs, same side and quantity.
fn list_oco(f: &Fields) -> Result<Vec<Order>, OrderError> {
    let leg = |kind, price, client| Leg {
        side: "side",
        kind: Ok(kind),
        quantity: &["quantity"],
        quote_quantity: None,
        price: Some(price),
        client_id: Some(client),
    };
    Ok(vec![
        read_leg(f, &leg("aboveType", "abovePrice", "aboveClientOrderId"))?,
        read_leg(f, &leg("belowType", "belowPrice", "belowClientOrderId"))?,
    ])
}

const WORKING: Leg<'static> = Leg {
    side: "workingSide",
    kind: Ok("workingType"),
    quantity: &["workingQuantity"],
    quote_quantity: None,
    price: Some("workingPrice"),
    client_id: Some("workingClientOrderId"),
};

/// `oto`/`opo`: a working order and one pending order; `otoco`/`opoco`: a working order and a
/// pending above/below pair. OPO lists carry no `pendingQuantity` (the pending order takes the
/// working order's fill), so the working quantity stands in for it.
fn list_working_pending(f: &Fields, pair: bool) -> Result<Vec<Order>, OrderError> {
    let working = read_leg(f, &WORKING)?;
    let qty: &[&str] = &["pendingQuantity", "workingQuantity"];
    let mut out = vec![working];
    if pair {
        for (kind, price, client) in [
            (
                "pendingAboveType",
                "pendingAbovePrice",
                "pendingAboveClientOrderId",
            ),
            (
                "pendingBelowType",
                "pendingBelowPrice",
                "pendingBelowClientOrderId",
            ),
        ] {
            out.push(read_leg(
                f,
                &Leg {
                    side: "pendingSide",
                    kind: Ok(kind),
                    quantity: qty,
                    quote_quantity: None,
                    price: Some(price),
                    client_id: Some(client),
                },
            )?);
        }
    } else {
        out.push(read_leg(
            f,
            &Leg {
                side: "pendingSide",
                kind: Ok("pendingType"),
                quantity: qty,
                quote_quantity: None,
                price: Some("pendingPrice"),
                client_id: Some("pendingClientOrderId"),
            },
        )?);
    }
    Ok(out)
}

pub(crate) fn parse_orders(path: &str, req: &HttpRequest) -> Result<Vec<Order>, OrderError> {
    let method = req.method.to_ascii_uppercase();
    let params = Params::merge_query_and_body(&req.query, &req.body)?;
    let f = fields_of(&params);
    match (method.as_str(), path) {
        (
            "POST",
            "/api/v3/order"
            | "/api/v3/order/test"
            | "/api/v3/order/cancelreplace"
            | "/api/v3/sor/order"
            | "/api/v3/sor/order/test"
            | "/sapi/v1/margin/order"
            | "/fapi/v1/order"
            | "/fapi/v1/order/test"
            | "/fapi/v1/algoorder",
        ) => Ok(vec![read_leg(&f, &SINGLE)?]),
        ("PUT", "/fapi/v1/order") => Ok(vec![read_leg(&f, &MODIFY)?]),
        ("POST", "/fapi/v1/batchorders") => batch_orders(&f, false),
        ("PUT", "/fapi/v1/batchorders") => batch_orders(&f, true),
        ("POST", "/api/v3/order/oco" | "/sapi/v1/margin/order/oco") => legacy_oco(&f),
        ("POST", "/api/v3/orderlist/oco") => list_oco(&f),
        (
            "POST",
            "/api/v3/orderlist/oto" | "/api/v3/orderlist/opo" | "/sapi/v1/margin/order/oto",
        ) => list_working_pending(&f, false),
        (
            "POST",
            "/api/v3/orderlist/otoco" | "/api/v3/orderlist/opoco" | "/sapi/v1/margin/order/otoco",
        ) => list_working_pending(&f, true),
        _ => {
            // Fail closed: a trading endpoint whose orders are not read here must not pass.
            if classify(&method, path, req) == Trade {
                Err(OrderError::Malformed(format!(
                    "the orders sent to `{method} {path}` cannot be read"
                )))
            } else {
                Ok(Vec::new())
            }
        }
    }
}

pub(crate) fn order_request(spec: &OrderSpec) -> HttpRequest {
    let side = match spec.side {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    };
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("symbol", &spec.symbol);
    q.append_pair("side", side);
    match spec.price {
        Some(price) => {
            q.append_pair("type", "LIMIT");
            q.append_pair("timeInForce", "GTC");
            q.append_pair("quantity", &spec.quantity.normalize().to_string());
            q.append_pair("price", &price.normalize().to_string());
        }
        None => {
            q.append_pair("type", "MARKET");
            q.append_pair("quantity", &spec.quantity.normalize().to_string());
        }
    }
    HttpRequest::new("POST", &format!("/api/v3/order?{}", q.finish()))
}

// ---------------------------------------------------------------------------------------------
// Key introspection

/// `GET /sapi/v1/account/apiRestrictions` field -> the permissions it grants.
const PERMISSION_FIELDS: &[(&str, &[Permission])] = &[
    ("enableReading", &[Permission::Read]),
    ("enableSpotAndMarginTrading", &[Permission::SpotTrade]),
    ("enableMargin", &[Permission::MarginTrade]),
    ("enableFutures", &[Permission::FuturesTrade]),
    ("enableVanillaOptions", &[Permission::OptionsTrade]),
    (
        "enablePortfolioMarginTrading",
        &[Permission::MarginTrade, Permission::FuturesTrade],
    ),
    ("enableFixApiTrade", &[Permission::SpotTrade]),
    ("enableFixReadOnly", &[Permission::Read]),
    ("enableWithdrawals", &[Permission::Withdraw]),
    ("enableInternalTransfer", &[Permission::Transfer]),
    ("permitsUniversalTransfer", &[Permission::Transfer]),
];

fn ms_to_time(v: &Value) -> Option<time::OffsetDateTime> {
    let ms = v.as_i64().filter(|ms| *ms > 0)?;
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// The venue's error envelopes: `{"code":-2015,"msg":...}` and `{"msg":...,"success":false}`.
pub(crate) fn venue_error(obj: &serde_json::Map<String, Value>) -> Option<KeyInfoError> {
    let failed = obj.get("success").and_then(Value::as_bool) == Some(false);
    if !obj.contains_key("code") && !failed {
        return None;
    }
    let code = match obj.get("code") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let message = obj
        .get("msg")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    Some(KeyInfoError::Venue { code, message })
}

pub(crate) fn parse_key_info(body: &[u8]) -> Result<KeyProfile, KeyInfoError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| KeyInfoError::Malformed(e.to_string()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| KeyInfoError::Malformed("expected a JSON object".into()))?;
    if let Some(e) = venue_error(obj) {
        return Err(e);
    }
    let mut profile = KeyProfile::empty(Venue::Binance);
    let mut known = false;
    for (name, value) in obj {
        let is_flag = name.starts_with("enable") || name.starts_with("permits");
        if !is_flag {
            continue;
        }
        let Some(on) = value.as_bool() else {
            return Err(KeyInfoError::Malformed(format!(
                "`{name}` is not a boolean"
            )));
        };
        known = true;
        if !on {
            continue;
        }
        profile.raw_permissions.push(name.clone());
        match PERMISSION_FIELDS.iter().find(|(n, _)| n == name) {
            Some((_, perms)) => profile.permissions.extend(perms.iter().copied()),
            // A grant we do not know yet is still a grant.
            None => {
                profile.permissions.insert(Permission::Other);
            }
        }
    }
    if !known {
        return Err(KeyInfoError::Malformed(
            "no permission fields in the answer".into(),
        ));
    }
    profile.ip_restricted = match obj.get("ipRestrict") {
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(KeyInfoError::Malformed(
                "`ipRestrict` is not a boolean".into(),
            ));
        }
        None => None,
    };
    profile.created = obj.get("createTime").and_then(ms_to_time);
    profile.expires = obj
        .get("tradingAuthorityExpirationTime")
        .and_then(ms_to_time);
    let only_read: BTreeSet<Permission> = [Permission::Read].into_iter().collect();
    profile.read_only = profile.permissions == only_read;
    Ok(profile)
}

// ---------------------------------------------------------------------------------------------
// Native errors

/// The message ccxt matches (broadly) to raise `PermissionDenied`.
const NO_PRIVILEGE: &str = "has no operation privilege";

fn with_detail(base: &str, detail: &str) -> String {
    if detail.is_empty() {
        base.to_owned()
    } else {
        format!("{base} ({detail})")
    }
}

/// HTTP status and `{"code","msg"}` as Binance sends them. Statuses are chosen so that the
/// official SDK (`binance_common`) raises `UnauthorizedError` (401) for authentication failures,
/// `ForbiddenError` (403) for permission denials and `TooManyRequestsError` (429) for rate
/// limits; ccxt reads `code`/`msg`: -1022/-2014/-2015 raise `AuthenticationError`, the
/// "has no operation privilege" message raises `PermissionDenied`, 429 `DDoSProtection`.
pub(crate) fn native_error(denial: &Denial) -> NativeResponse {
    let m = denial.message.as_str();
    let (status, code, msg): (u16, i64, String) = match &denial.kind {
        DenialKind::Auth(e) => match e {
            AuthError::MissingApiKey => (401, -2014, with_detail("API-key format invalid.", m)),
            AuthError::UnknownApiKey | AuthError::IpNotAllowed | AuthError::KeyExpired => (
                401,
                -2015,
                with_detail("Invalid API-key, IP, or permissions for action.", m),
            ),
            // Binance itself says -1102 (mandatory parameter) here; -1022 keeps every
            // authentication failure an authentication error in ccxt.
            AuthError::MissingSignature => (
                401,
                -1022,
                "Signature for this request is not valid. (mandatory parameter 'signature' was not sent)"
                    .to_owned(),
            ),
            AuthError::MissingTimestamp => (
                401,
                -1022,
                "Signature for this request is not valid. (mandatory parameter 'timestamp' was not sent)"
                    .to_owned(),
            ),
            AuthError::TimestampOutsideWindow | AuthError::InvalidNonce => (
                401,
                -1021,
                "Timestamp for this request is outside of the recvWindow.".to_owned(),
            ),
            AuthError::InvalidSignature
            | AuthError::InvalidPassphrase
            | AuthError::Malformed(_) => (
                401,
                -1022,
                with_detail("Signature for this request is not valid.", m),
            ),
        },
        DenialKind::PermissionDenied => (
            403,
            -1002,
            format!(
                "You are not authorized to execute this request: the API key {NO_PRIVILEGE}{}",
                if m.is_empty() {
                    String::new()
                } else {
                    format!(" ({m})")
                }
            ),
        ),
        DenialKind::RateLimited { .. } => (
            429,
            -1003,
            with_detail(
                "Too many requests; please use the websocket for live updates.",
                m,
            ),
        ),
        DenialKind::BadRequest => (
            400,
            -1102,
            if m.is_empty() {
                "A mandatory parameter was not sent, was empty/null, or malformed.".to_owned()
            } else {
                m.to_owned()
            },
        ),
        DenialKind::UnknownSymbol => (400, -1121, "Invalid symbol.".to_owned()),
        DenialKind::InsufficientFunds => (
            400,
            -2010,
            "Account has insufficient balance for requested action.".to_owned(),
        ),
        DenialKind::UnknownOrder => (400, -2013, "Order does not exist.".to_owned()),
        DenialKind::NotFound => (404, -1000, with_detail("Not found.", m)),
        DenialKind::PayloadTooLarge => {
            (413, -1000, with_detail("The request body is too large.", m))
        }
        DenialKind::Unavailable => (
            503,
            -1001,
            with_detail(
                "Internal error; unable to process your request. Please try again.",
                m,
            ),
        ),
        DenialKind::Internal => (
            500,
            -1000,
            "An unknown error occurred while processing the request.".to_owned(),
        ),
    };
    NativeResponse::json(status, json!({ "code": code, "msg": msg }))
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use ring::rand::SystemRandom;

    use super::*;
    use crate::{Credential, SecretString, VerifyKey, crypto};

    const SPOT_KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
    const SPOT_SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
    const V1_QUERY: &str = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";
    const V1_SIG: &str = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71";
    const V1_TS: i64 = 1_499_827_319_559;

    fn keys() -> HashMap<String, VerifyKey> {
        let mut m = HashMap::new();
        m.insert(
            SPOT_KEY.to_owned(),
            VerifyKey::hmac(Venue::Binance, SPOT_SECRET, None).unwrap(),
        );
        m
    }

    fn ctx(now_ms: i64) -> AuthContext<'static> {
        AuthContext { now_ms, host: None }
    }

    fn v1_request() -> HttpRequest {
        HttpRequest::new(
            "POST",
            &format!("/api/v3/order?{V1_QUERY}&signature={V1_SIG}"),
        )
        .with_header("X-MBX-APIKEY", SPOT_KEY)
    }

    fn auth(req: &HttpRequest, now: i64) -> Result<Authenticated, AuthError> {
        crate::authenticate(Venue::Binance, req, &ctx(now), &keys())
    }

    #[test]
    fn the_documented_hmac_request_authenticates() {
        let ok = auth(&v1_request(), V1_TS + 10).unwrap();
        assert_eq!(ok.api_key, SPOT_KEY);
        assert_eq!(ok.timestamp_ms, Some(V1_TS));
        // Hex is case-insensitive.
        let upper = HttpRequest::new(
            "POST",
            &format!(
                "/api/v3/order?{V1_QUERY}&signature={}",
                V1_SIG.to_uppercase()
            ),
        )
        .with_header("x-mbx-apikey", SPOT_KEY);
        assert!(auth(&upper, V1_TS).is_ok());
    }

    #[test]
    fn authentication_failures_are_told_apart() {
        let base = v1_request();
        let cases: Vec<(&str, HttpRequest, i64, AuthError)> = vec![
            (
                "no key header",
                {
                    let mut r = base.clone();
                    r.remove_header("x-mbx-apikey");
                    r
                },
                V1_TS,
                AuthError::MissingApiKey,
            ),
            (
                "unknown key",
                base.clone().with_header("X-MBX-APIKEY", "someone-else"),
                V1_TS,
                AuthError::UnknownApiKey,
            ),
            (
                "no signature",
                HttpRequest::new("POST", &format!("/api/v3/order?{V1_QUERY}"))
                    .with_header("X-MBX-APIKEY", SPOT_KEY),
                V1_TS,
                AuthError::MissingSignature,
            ),
            (
                "tampered quantity",
                HttpRequest::new(
                    "POST",
                    &format!(
                        "/api/v3/order?{}&signature={V1_SIG}",
                        V1_QUERY.replace("quantity=1", "quantity=100")
                    ),
                )
                .with_header("X-MBX-APIKEY", SPOT_KEY),
                V1_TS,
                AuthError::InvalidSignature,
            ),
            (
                "stale timestamp",
                base.clone(),
                V1_TS + 5001,
                AuthError::TimestampOutsideWindow,
            ),
            (
                "from the future",
                base.clone(),
                V1_TS - 1000,
                AuthError::TimestampOutsideWindow,
            ),
            (
                "no timestamp",
                HttpRequest::new("GET", "/api/v3/account?recvWindow=5000&signature=00")
                    .with_header("X-MBX-APIKEY", SPOT_KEY),
                V1_TS,
                AuthError::MissingTimestamp,
            ),
        ];
        for (name, req, now, want) in cases {
            assert_eq!(auth(&req, now), Err(want), "{name}");
        }
        // Window edges: exactly recvWindow old passes; 999 ms ahead passes.
        assert!(auth(&base, V1_TS + 5000).is_ok());
        assert!(auth(&base, V1_TS - 999).is_ok());
    }

    #[test]
    fn wrong_secret_is_an_invalid_signature() {
        let rng = SystemRandom::new();
        let cred = Credential {
            api_key: SPOT_KEY.into(),
            secret: Some(SecretString::new("not-the-secret".into())),
            private_key: None,
            passphrase: None,
        };
        let key = SigningKey::from_credential(Venue::Binance, &cred, &rng).unwrap();
        let mut req = HttpRequest::new("GET", "/api/v3/account");
        let sctx = SignContext {
            now_ms: V1_TS,
            nonce: None,
            host: "",
            rng: &rng,
        };
        crate::sign(Venue::Binance, &key, &mut req, &sctx).unwrap();
        assert_eq!(auth(&req, V1_TS), Err(AuthError::InvalidSignature));
    }

    #[test]
    fn signature_placement_and_duplicates() {
        let cases = [
            // signature not last
            format!("/api/v3/order?signature={V1_SIG}&{V1_QUERY}"),
            // signature twice
            format!("/api/v3/order?{V1_QUERY}&signature={V1_SIG}&signature={V1_SIG}"),
            // a parameter twice
            format!("/api/v3/order?{V1_QUERY}&quantity=1&signature={V1_SIG}"),
        ];
        for target in cases {
            let req = HttpRequest::new("POST", &target).with_header("X-MBX-APIKEY", SPOT_KEY);
            assert!(
                matches!(auth(&req, V1_TS), Err(AuthError::Malformed(_))),
                "{target}"
            );
        }
        // once in the query and once in the body
        let req = HttpRequest::new("POST", &format!("/api/v3/order?{V1_QUERY}"))
            .with_body(format!("quantity=1&signature={V1_SIG}"))
            .with_header("X-MBX-APIKEY", SPOT_KEY);
        assert!(matches!(auth(&req, V1_TS), Err(AuthError::Malformed(_))));
        // the key header twice
        let mut req = v1_request();
        req.headers.push(("x-mbx-apikey".into(), SPOT_KEY.into()));
        assert!(matches!(auth(&req, V1_TS), Err(AuthError::Malformed(_))));
        // recvWindow above 60000
        let req = HttpRequest::new(
            "GET",
            "/api/v3/account?recvWindow=60001&timestamp=1&signature=00",
        )
        .with_header("X-MBX-APIKEY", SPOT_KEY);
        assert!(matches!(auth(&req, 1), Err(AuthError::Malformed(_))));
    }

    #[test]
    fn ed25519_requests_sign_and_verify() {
        let rng = SystemRandom::new();
        let pem = crypto::generate_ed25519_pem(&rng).unwrap();
        let cred = Credential {
            api_key: "ed-key".into(),
            secret: None,
            private_key: Some(SecretString::new(pem)),
            passphrase: None,
        };
        let key = SigningKey::from_credential(Venue::Binance, &cred, &rng).unwrap();
        let public = key.public_key().unwrap().to_pem();
        let mut map = HashMap::new();
        map.insert("ed-key".to_owned(), VerifyKey::public_pem(&public).unwrap());
        let mut req = HttpRequest::new("POST", "/api/v3/order?symbol=BTCUSDT&side=BUY")
            .with_body("type=MARKET&quantity=0.01");
        let sctx = SignContext {
            now_ms: 1_700_000_000_000,
            nonce: None,
            host: "",
            rng: &rng,
        };
        crate::sign(Venue::Binance, &key, &mut req, &sctx).unwrap();
        assert!(req.body_str().unwrap().contains("&signature="));
        let ok = crate::authenticate(Venue::Binance, &req, &ctx(1_700_000_000_100), &map);
        assert_eq!(ok.unwrap().api_key, "ed-key");
        req.body = b"type=MARKET&quantity=1&signature=x".to_vec();
        assert!(crate::authenticate(Venue::Binance, &req, &ctx(1_700_000_000_100), &map).is_err());
    }

    #[test]
    fn signing_replaces_a_trailing_signature_and_keeps_the_timestamp() {
        let rng = SystemRandom::new();
        let cred = Credential {
            api_key: SPOT_KEY.into(),
            secret: Some(SecretString::new(SPOT_SECRET.into())),
            private_key: None,
            passphrase: None,
        };
        let key = SigningKey::from_credential(Venue::Binance, &cred, &rng).unwrap();
        let mut req = HttpRequest::new("POST", &format!("/api/v3/order?{V1_QUERY}&signature=bot"));
        let sctx = SignContext {
            now_ms: 42,
            nonce: None,
            host: "",
            rng: &rng,
        };
        crate::sign(Venue::Binance, &key, &mut req, &sctx).unwrap();
        assert_eq!(req.query, format!("{V1_QUERY}&signature={V1_SIG}"));
        assert_eq!(req.header("x-mbx-apikey"), Some(SPOT_KEY));
        let debug = format!("{key:?}");
        assert!(!debug.contains(SPOT_SECRET));
    }

    #[test]
    fn classification_covers_every_class() {
        use EndpointClass::*;
        let table: &[(&str, &str, EndpointClass)] = &[
            ("GET", "/api/v3/exchangeInfo", Public),
            ("GET", "/api/v3/ticker/price", Public),
            ("GET", "/fapi/v1/exchangeInfo", Public),
            ("GET", "/api/v3/account", Read),
            ("GET", "/api/v3/myTrades", Read),
            ("GET", "/sapi/v1/account/apiRestrictions", Read),
            ("GET", "/sapi/v1/capital/withdraw/history", Read),
            ("GET", "/fapi/v2/positionRisk", Read),
            ("POST", "/api/v3/order", Trade),
            ("POST", "/api/v3/order/test", Trade),
            ("POST", "/api/v3/order/cancelReplace", Trade),
            ("POST", "/api/v3/orderList/otoco", Trade),
            ("POST", "/api/v3/sor/order", Trade),
            ("POST", "/fapi/v1/order", Trade),
            ("PUT", "/fapi/v1/order", Trade),
            ("POST", "/fapi/v1/batchOrders", Trade),
            ("DELETE", "/api/v3/order", Cancel),
            ("DELETE", "/api/v3/openOrders", Cancel),
            ("DELETE", "/fapi/v1/allOpenOrders", Cancel),
            ("POST", "/sapi/v1/capital/withdraw/apply", Withdraw),
            ("POST", "/sapi/v1/localentity/withdraw/apply", Withdraw),
            ("POST", "/sapi/v1/asset/transfer", Transfer),
            ("POST", "/sapi/v1/sub-account/transfer/subToSub", Transfer),
            ("GET", "/sapi/v1/capital/deposit/address", Deposit),
            ("POST", "/sapi/v1/sub-account/virtualSubAccount", Subaccount),
            ("POST", "/sapi/v1/sub-account/subAccountApi", KeyManagement),
            (
                "POST",
                "/sapi/v2/sub-account/subAccountApi/ipRestriction",
                KeyManagement,
            ),
            ("POST", "/fapi/v1/leverage", AccountSettings),
            ("POST", "/fapi/v1/marginType", AccountSettings),
            // not listed
            ("GET", "/api/v3/somethingNew", Unknown),
            ("POST", "/api/v3/account", Unknown),
            ("PATCH", "/api/v3/order", Unknown),
            ("GET", "/", Unknown),
            ("GET", "/api/v3/order/%252Ftest", Unknown),
            // dangerous families off the list are still named
            ("POST", "/sapi/v9/capital/withdraw/new", Withdraw),
            ("POST", "/sapi/v1/sub-account/newThing", Subaccount),
        ];
        for (method, path, want) in table {
            let req = HttpRequest::new(method, path);
            assert_eq!(
                crate::classify(Venue::Binance, &req),
                *want,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn disguised_withdraw_paths_are_withdrawals() {
        for path in [
            "/sapi/v1/capital/withdraw/apply",
            "/SAPI/V1/CAPITAL/WITHDRAW/APPLY",
            "/sapi/v1/capital%2Fwithdraw%2Fapply",
            "//sapi/v1//capital/withdraw/apply/",
            "/sapi/v1/capital/withdraw/apply;jsessionid=1",
            "/sapi/v1/./capital/deposit/../withdraw/apply",
            "/sapi/v1/capital/withdraw/%61pply",
            "/api/v3/../../sapi/v1/capital/withdraw/apply",
        ] {
            let req = HttpRequest::new("POST", &format!("{path}?coin=BTC&amount=1"));
            assert_eq!(
                crate::classify(Venue::Binance, &req),
                EndpointClass::Withdraw,
                "{path}"
            );
        }
    }

    fn orders(method: &str, target: &str, body: &str) -> Result<Vec<Order>, OrderError> {
        crate::parse_orders(
            Venue::Binance,
            &HttpRequest::new(method, target).with_body(body),
        )
    }

    #[test]
    fn spot_orders_are_read_from_query_and_body() {
        let o = orders(
            "POST",
            &format!("/api/v3/order?{V1_QUERY}&signature={V1_SIG}"),
            "",
        )
        .unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].symbol, "LTCBTC");
        assert_eq!(o[0].side, Side::Buy);
        assert_eq!(o[0].order_type, OrderType::Limit);
        assert_eq!(o[0].quantity, Some(Decimal::ONE));
        assert_eq!(o[0].price, Some(Decimal::new(1, 1)));
        let o = orders(
            "POST",
            "/api/v3/order?symbol=BTCUSDT&side=SELL",
            "type=MARKET&quoteOrderQty=100&newClientOrderId=abc",
        )
        .unwrap();
        assert_eq!(o[0].order_type, OrderType::Market);
        assert_eq!(o[0].quote_quantity, Some(Decimal::from(100)));
        assert_eq!(o[0].quantity, None);
        assert_eq!(o[0].client_id.as_deref(), Some("abc"));
        // reads place nothing
        assert_eq!(
            orders("GET", "/api/v3/openOrders?symbol=BTCUSDT", ""),
            Ok(vec![])
        );
        assert_eq!(
            orders("DELETE", "/api/v3/order?symbol=BTCUSDT&orderId=1", ""),
            Ok(vec![])
        );
    }

    #[test]
    fn bad_orders_are_refused() {
        let cases: &[(&str, &str, OrderError)] = &[
            (
                "/api/v3/order?symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1",
                "quantity=100",
                OrderError::DuplicateParameter("quantity".into()),
            ),
            (
                "/api/v3/order?symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&quantity=100",
                "",
                OrderError::DuplicateParameter("quantity".into()),
            ),
            (
                "/api/v3/order?symbol=BTCUSDT&side=BUY&type=MARKET",
                "",
                OrderError::MissingParameter("quantity".into()),
            ),
            (
                "/api/v3/order?symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1",
                "",
                OrderError::MissingParameter("price".into()),
            ),
            (
                "/api/v3/order?side=BUY&type=MARKET&quantity=1",
                "",
                OrderError::MissingParameter("symbol".into()),
            ),
            (
                "/api/v3/order?symbol=BTCUSDT&side=buy&type=MARKET&quantity=1",
                "",
                OrderError::InvalidParameter {
                    name: "side".into(),
                    value: "buy".into(),
                },
            ),
            (
                "/api/v3/order?symbol=BTCUSDT&side=BUY&type=MARKET&quantity=-1",
                "",
                OrderError::InvalidParameter {
                    name: "quantity".into(),
                    value: "-1".into(),
                },
            ),
            (
                "/api/v3/order?symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1e3",
                "",
                OrderError::InvalidParameter {
                    name: "quantity".into(),
                    value: "1e3".into(),
                },
            ),
        ];
        for (target, body, want) in cases {
            assert_eq!(
                orders("POST", target, body),
                Err(want.clone()),
                "{target} {body}"
            );
        }
        // a trading endpoint whose orders are not read fails closed
        assert!(
            orders(
                "PUT",
                "/api/v3/order/amend/keepPriority?symbol=BTCUSDT&newQty=1",
                ""
            )
            .is_err()
        );
    }

    #[test]
    fn futures_batches_carry_several_orders() {
        let batch = r#"[{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":"0.01","price":"50000","timeInForce":"GTC"},{"symbol":"ETHUSDT","side":"SELL","type":"MARKET","quantity":"1","reduceOnly":"true"},{"symbol":"BTCUSDT","side":"SELL","type":"STOP_MARKET","closePosition":"true","stopPrice":"40000"}]"#;
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("batchOrders", batch)
            .append_pair("timestamp", "1")
            .finish();
        let o = orders("POST", "/fapi/v1/batchOrders", &body).unwrap();
        assert_eq!(o.len(), 3);
        assert_eq!(o[0].price, Some(Decimal::from(50000)));
        assert_eq!(o[1].side, Side::Sell);
        assert!(o[1].reduce_only);
        assert_eq!(o[2].order_type, OrderType::Other("stop_market".into()));
        assert!(o[2].reduce_only && o[2].quantity.is_none());

        let dup = r#"[{"symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":"1","quantity":"100"}]"#;
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("batchOrders", dup)
            .finish();
        assert_eq!(
            orders("POST", "/fapi/v1/batchOrders", &body),
            Err(OrderError::DuplicateParameter("quantity".into()))
        );
        let six = format!(
            "[{}]",
            [r#"{"symbol":"BTCUSDT","side":"BUY","type":"MARKET","quantity":"1"}"#; 6].join(",")
        );
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("batchOrders", &six)
            .finish();
        assert!(orders("POST", "/fapi/v1/batchOrders", &body).is_err());
        assert!(orders("POST", "/fapi/v1/batchOrders?batchOrders=notjson", "").is_err());
        assert_eq!(
            orders("POST", "/fapi/v1/batchOrders", ""),
            Err(OrderError::MissingParameter("batchOrders".into()))
        );
    }

    #[test]
    fn order_lists_carry_each_leg() {
        let o = orders(
            "POST",
            "/api/v3/orderList/oco?symbol=BTCUSDT&side=SELL&quantity=1&aboveType=LIMIT_MAKER&abovePrice=70000&belowType=STOP_LOSS&belowStopPrice=50000",
            "",
        )
        .unwrap();
        assert_eq!(o.len(), 2);
        assert_eq!(o[0].price, Some(Decimal::from(70000)));
        assert_eq!(o[1].order_type, OrderType::Other("stop_loss".into()));
        let o = orders(
            "POST",
            "/api/v3/orderList/otoco?symbol=BTCUSDT&workingType=LIMIT&workingSide=BUY&workingPrice=60000&workingQuantity=2&pendingSide=SELL&pendingQuantity=2&pendingAboveType=LIMIT_MAKER&pendingAbovePrice=70000&pendingBelowType=STOP_LOSS&pendingBelowStopPrice=50000",
            "",
        )
        .unwrap();
        assert_eq!(o.len(), 3);
        assert_eq!(
            (o[0].side, o[1].side, o[2].side),
            (Side::Buy, Side::Sell, Side::Sell)
        );
        assert!(o.iter().all(|o| o.quantity == Some(Decimal::from(2))));
        let o = orders(
            "POST",
            "/api/v3/order/oco?symbol=BTCUSDT&side=SELL&quantity=1&price=70000&stopPrice=50000&stopLimitPrice=49000&stopLimitTimeInForce=GTC",
            "",
        )
        .unwrap();
        assert_eq!(o.len(), 2);
        assert_eq!(o[1].price, Some(Decimal::from(49000)));
    }

    #[test]
    fn key_info_from_the_docs() {
        let doc = br#"{
            "ipRestrict": false,
            "createTime": 1698645219000,
            "enableReading": true,
            "enableWithdrawals": false,
            "enableInternalTransfer": false,
            "enableMargin": false,
            "enableFutures": false,
            "permitsUniversalTransfer": false,
            "enableVanillaOptions": false,
            "enableFixApiTrade": false,
            "enableFixReadOnly": true,
            "enableSpotAndMarginTrading": false,
            "enablePortfolioMarginTrading": true
        }"#;
        let p = crate::parse_key_info(Venue::Binance, doc).unwrap();
        assert_eq!(p.ip_restricted, Some(false));
        assert!(p.can(Permission::Read) && p.can(Permission::MarginTrade));
        assert!(!p.can(Permission::Withdraw));
        assert!(!p.read_only);
        assert_eq!(p.created.map(|t| t.unix_timestamp()), Some(1_698_645_219));
        assert!(
            p.raw_permissions
                .contains(&"enablePortfolioMarginTrading".to_owned())
        );

        let read_only = br#"{"ipRestrict":true,"createTime":1,"enableReading":true,"enableWithdrawals":false,"enableSpotAndMarginTrading":false,"tradingAuthorityExpirationTime":1800000000000}"#;
        let p = crate::parse_key_info(Venue::Binance, read_only).unwrap();
        assert!(p.read_only);
        assert_eq!(p.ip_restricted, Some(true));
        assert_eq!(p.expires.map(|t| t.unix_timestamp()), Some(1_800_000_000));

        let withdraw = br#"{"ipRestrict":true,"enableReading":true,"enableWithdrawals":true,"enableSomethingNew":true}"#;
        let p = crate::parse_key_info(Venue::Binance, withdraw).unwrap();
        assert!(p.can(Permission::Withdraw) && p.can(Permission::Other));

        assert_eq!(
            crate::parse_key_info(
                Venue::Binance,
                br#"{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}"#
            ),
            Err(KeyInfoError::Venue {
                code: "-2015".into(),
                message: "Invalid API-key, IP, or permissions for action.".into()
            })
        );
        assert!(matches!(
            crate::parse_key_info(
                Venue::Binance,
                br#"{"msg":"You don't have permission.","success":false}"#
            ),
            Err(KeyInfoError::Venue { .. })
        ));
        assert!(matches!(
            crate::parse_key_info(Venue::Binance, b"[]"),
            Err(KeyInfoError::Malformed(_))
        ));
        assert!(matches!(
            crate::parse_key_info(Venue::Binance, br#"{"enableReading":"yes"}"#),
            Err(KeyInfoError::Malformed(_))
        ));
    }

    #[test]
    fn native_errors_use_codes_clients_understand() {
        let cases = [
            (DenialKind::Auth(AuthError::InvalidSignature), 401, -1022),
            (DenialKind::Auth(AuthError::UnknownApiKey), 401, -2015),
            (DenialKind::Auth(AuthError::IpNotAllowed), 401, -2015),
            (
                DenialKind::Auth(AuthError::TimestampOutsideWindow),
                401,
                -1021,
            ),
            (DenialKind::PermissionDenied, 403, -1002),
            (DenialKind::RateLimited { retry_after_s: 3 }, 429, -1003),
            (DenialKind::UnknownSymbol, 400, -1121),
            (DenialKind::InsufficientFunds, 400, -2010),
            (DenialKind::UnknownOrder, 400, -2013),
        ];
        for (kind, status, code) in cases {
            let r = crate::native_error(Venue::Binance, &Denial::new(kind.clone(), "rule r1"), 0);
            assert_eq!(r.status, status, "{kind:?}");
            let v: Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(v["code"], code, "{kind:?}");
            assert!(v["msg"].is_string());
        }
        let r = crate::native_error(
            Venue::Binance,
            &Denial::new(DenialKind::PermissionDenied, "policy rule `no-withdraw`"),
            0,
        );
        assert!(r.body.contains(NO_PRIVILEGE) && r.body.contains("no-withdraw"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Untrusted bytes never panic the parsers, and a request that is not signed with the
        /// key never authenticates.
        #[test]
        fn arbitrary_requests_never_panic(
            method in "(GET|POST|PUT|DELETE)",
            path in "/[a-zA-Z0-9/%._;-]{0,40}",
            query in "[a-zA-Z0-9=&%+._-]{0,80}",
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
        ) {
            let req = HttpRequest::new(&method, &path)
                .with_header("x-mbx-apikey", SPOT_KEY)
                .with_body(body);
            let mut req = req;
            req.query = query;
            let _ = crate::classify(Venue::Binance, &req);
            let _ = crate::parse_orders(Venue::Binance, &req);
            let _ = crate::parse_key_info(Venue::Binance, &req.body);
            proptest::prop_assert!(auth(&req, V1_TS).is_err());
        }
    }

    #[test]
    fn order_request_is_the_native_new_order() {
        let spec = OrderSpec {
            symbol: "BTCUSDT".into(),
            side: Side::Buy,
            quantity: Decimal::new(1, 2),
            price: None,
        };
        let r = crate::order_request(Venue::Binance, &spec);
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.target(),
            "/api/v3/order?symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01"
        );
        let spec = OrderSpec {
            price: Some(Decimal::new(500000, 1)),
            side: Side::Sell,
            ..spec
        };
        let r = crate::order_request(Venue::Binance, &spec);
        assert_eq!(
            r.query,
            "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.01&price=50000"
        );
        let o = crate::parse_orders(Venue::Binance, &r).unwrap();
        assert_eq!(o[0].price, Some(Decimal::from(50000)));
    }
}
