//! Coinbase Advanced Trade (`/api/v3/brokerage/...`) and the Coinbase App v2 API on the same
//! host (`/v2/...`), spoken as `api.coinbase.com` speaks them (exchanges.md §5).
//!
//! Authentication is a CDP JWT bearer token, one per request: header `{alg, kid, nonce, typ}`,
//! claims `{sub, iss, nbf, exp, uri}`, signed ES256 (P-256, fixed `r||s`) or EdDSA (Ed25519).
//! The `uri` claim binds the token to `"METHOD host/path"` (no scheme, no query). ccxt signs
//! EdDSA tokens with a `uris` array instead, and builds the `uri` from its base URL with only
//! `https://` removed, so a plain-HTTP base URL yields `"GET http://host/path"`; both are read.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use keyfence_types::{EndpointClass, KeyProfile, Order, OrderType, Permission, Side, Venue};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::crypto::{PrivateKey, PublicKey};
use crate::params::parse_json_strict;
use crate::{
    AuthContext, AuthError, Authenticated, Denial, DenialKind, HttpRequest, KeyError, KeyInfoError,
    KeyLookup, NativeResponse, OrderError, OrderSpec, SignContext, SignError, SigningKey,
    SigningScheme, VerifyScheme,
};

/// The production host; a JWT `uri` naming it is always accepted besides the host the
/// request was sent to.
pub(crate) const PRODUCTION_HOST: &str = "api.coinbase.com";
/// "Your JWT expires after 2 minutes" (CDP docs); clients set `exp = nbf + 120`.
const MAX_LIFETIME_S: i64 = 120;
/// Clock difference tolerated between the client and us, in seconds.
const SKEW_S: i64 = 10;
/// `cdp` (official SDK, ccxt EdDSA) and `coinbase-cloud` (ccxt ES256).
const ISSUERS: [&str; 2] = ["cdp", "coinbase-cloud"];

// ---------------------------------------------------------------------------------------------
// JWT reading

struct Jwt<'a> {
    /// `header.payload` exactly as received: what the signature covers.
    signing_input: &'a str,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signature: Vec<u8>,
}

fn bearer(req: &HttpRequest) -> Result<&str, AuthError> {
    match req.header_count("authorization") {
        0 => return Err(AuthError::MissingApiKey),
        1 => {}
        _ => {
            return Err(AuthError::Malformed(
                "the authorization header is sent more than once".into(),
            ));
        }
    }
    let value = req
        .header("authorization")
        .ok_or(AuthError::MissingApiKey)?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| AuthError::Malformed("expected `Authorization: Bearer <JWT>`".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed(
            "expected `Authorization: Bearer <JWT>`".into(),
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::MissingSignature);
    }
    Ok(token)
}

fn json_part(part: &str, what: &str) -> Result<Map<String, Value>, AuthError> {
    let bytes = B64URL
        .decode(part)
        .map_err(|_| AuthError::Malformed(format!("the JWT {what} is not base64url")))?;
    match parse_json_strict(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(AuthError::Malformed(format!(
            "the JWT {what} is not a JSON object"
        ))),
    }
}

fn decode_jwt(token: &str) -> Result<Jwt<'_>, AuthError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed("a JWT has three parts".into()));
    };
    let header = json_part(h, "header")?;
    let claims = json_part(p, "payload")?;
    if s.is_empty() {
        return Err(AuthError::MissingSignature);
    }
    let signature = B64URL.decode(s).map_err(|_| AuthError::InvalidSignature)?;
    let signing_input = token
        .get(..h.len() + 1 + p.len())
        .ok_or_else(|| AuthError::Malformed("a JWT has three parts".into()))?;
    Ok(Jwt {
        signing_input,
        header,
        claims,
        signature,
    })
}

fn str_field<'a>(m: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    m.get(name).and_then(Value::as_str)
}

pub(crate) fn claimed_api_key(req: &HttpRequest) -> Option<String> {
    let token = bearer(req).ok()?;
    let jwt = decode_jwt(token).ok()?;
    str_field(&jwt.header, "kid")
        .or_else(|| str_field(&jwt.claims, "sub"))
        .map(str::to_owned)
}

/// Does `uri` (`"GET host/path"`, perhaps `"GET http://host/path"`) name this request?
fn uri_matches(uri: &str, req: &HttpRequest, ctx: &AuthContext<'_>) -> bool {
    let Some((method, rest)) = uri.split_once(' ') else {
        return false;
    };
    if method != req.method {
        return false;
    }
    let rest = rest.strip_prefix("http://").unwrap_or(rest);
    [Some(PRODUCTION_HOST), ctx.host]
        .into_iter()
        .flatten()
        .filter(|h| !h.is_empty())
        .any(|h| {
            rest.get(..h.len())
                .is_some_and(|got| got.eq_ignore_ascii_case(h))
                && rest.get(h.len()..) == Some(req.path.as_str())
        })
}

pub(crate) fn authenticate(
    req: &HttpRequest,
    ctx: &AuthContext<'_>,
    keys: &dyn KeyLookup,
) -> Result<Authenticated, AuthError> {
    let token = bearer(req)?;
    let jwt = decode_jwt(token)?;
    let alg = str_field(&jwt.header, "alg")
        .ok_or_else(|| AuthError::Malformed("the JWT header has no `alg`".into()))?;
    if jwt.header.get("typ").is_some_and(|t| t != "JWT") {
        return Err(AuthError::Malformed("the JWT `typ` is not `JWT`".into()));
    }
    if jwt.header.contains_key("crit") {
        return Err(AuthError::Malformed(
            "the JWT header has `crit` extensions".into(),
        ));
    }
    let sub = str_field(&jwt.claims, "sub").ok_or(AuthError::MissingApiKey)?;
    if let Some(kid) = jwt.header.get("kid")
        && kid.as_str() != Some(sub)
    {
        return Err(AuthError::Malformed(
            "the JWT `kid` and `sub` name different keys".into(),
        ));
    }
    let key = keys.find(sub).ok_or(AuthError::UnknownApiKey)?;
    let VerifyScheme::Public(public) = &key.scheme else {
        return Err(AuthError::InvalidSignature);
    };
    let alg_fits = matches!(
        (alg, public),
        ("ES256", PublicKey::EcdsaP256(_)) | ("EdDSA", PublicKey::Ed25519(_))
    );
    if !alg_fits || !public.verify(jwt.signing_input.as_bytes(), &jwt.signature) {
        return Err(AuthError::InvalidSignature);
    }

    // The signature holds; now the claims.
    match str_field(&jwt.claims, "iss") {
        Some(iss) if ISSUERS.contains(&iss) => {}
        _ => {
            return Err(AuthError::Malformed(
                "the JWT `iss` is not `cdp` or `coinbase-cloud`".into(),
            ));
        }
    }
    match jwt.claims.get("aud") {
        None | Some(Value::String(_)) => {}
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
        Some(_) => return Err(AuthError::Malformed("the JWT `aud` is malformed".into())),
    }
    let nbf = jwt
        .claims
        .get("nbf")
        .and_then(Value::as_i64)
        .ok_or(AuthError::MissingTimestamp)?;
    let exp = jwt
        .claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(AuthError::MissingTimestamp)?;
    if exp <= nbf
        || exp
            .checked_sub(nbf)
            .is_none_or(|life| life > MAX_LIFETIME_S)
    {
        return Err(AuthError::TimestampOutsideWindow);
    }
    let now_s = ctx.now_ms.div_euclid(1000);
    if now_s.saturating_add(SKEW_S) < nbf || now_s.saturating_sub(SKEW_S) >= exp {
        return Err(AuthError::TimestampOutsideWindow);
    }
    if let Some(iat) = jwt.claims.get("iat") {
        match iat.as_i64() {
            Some(iat) if iat <= now_s.saturating_add(SKEW_S) && iat <= exp => {}
            _ => return Err(AuthError::TimestampOutsideWindow),
        }
    }
    let bound = match (jwt.claims.get("uri"), jwt.claims.get("uris")) {
        (Some(Value::String(u)), None) => uri_matches(u, req, ctx),
        (None, Some(Value::Array(us))) if us.len() == 1 => us
            .first()
            .and_then(Value::as_str)
            .is_some_and(|u| uri_matches(u, req, ctx)),
        (None, None) => {
            return Err(AuthError::Malformed(
                "the JWT has no `uri` claim (a REST request needs one)".into(),
            ));
        }
        _ => {
            return Err(AuthError::Malformed(
                "the JWT `uri` claim is malformed".into(),
            ));
        }
    };
    if !bound {
        return Err(AuthError::InvalidSignature);
    }
    Ok(Authenticated {
        api_key: sub.to_owned(),
        timestamp_ms: nbf.checked_mul(1000),
        nonce: None,
    })
}

// ---------------------------------------------------------------------------------------------
// Signing

fn json_str(s: &str) -> String {
    Value::from(s).to_string()
}

/// Mint a JWT as coinbase-advanced-py's `build_jwt` does (compact JSON, this key order).
pub(crate) fn build_jwt(
    key: &PrivateKey,
    key_name: &str,
    nonce_hex: &str,
    now_s: i64,
    uri: &str,
    rng: &dyn ring::rand::SecureRandom,
) -> Result<String, SignError> {
    let alg = match key {
        PrivateKey::Ed25519(_) => "EdDSA",
        PrivateKey::EcdsaP256(_) => "ES256",
    };
    let header = format!(
        r#"{{"alg":{},"kid":{},"nonce":{},"typ":"JWT"}}"#,
        json_str(alg),
        json_str(key_name),
        json_str(nonce_hex)
    );
    let claims = format!(
        r#"{{"sub":{},"iss":"cdp","nbf":{now_s},"exp":{},"uri":{}}}"#,
        json_str(key_name),
        now_s + MAX_LIFETIME_S,
        json_str(uri)
    );
    let input = format!("{}.{}", B64URL.encode(header), B64URL.encode(claims));
    let sig = key.sign(input.as_bytes(), rng)?;
    Ok(format!("{input}.{}", B64URL.encode(sig)))
}

pub(crate) fn sign(
    key: &SigningKey,
    req: &mut HttpRequest,
    ctx: &SignContext<'_>,
) -> Result<(), SignError> {
    let SigningScheme::Private(private) = &key.scheme else {
        return Err(KeyError::Missing("private_key", Venue::Coinbase).into());
    };
    let mut nonce = [0u8; 16];
    ctx.rng
        .fill(&mut nonce)
        .map_err(|_| SignError::Request("no randomness for the JWT nonce".into()))?;
    let host = if ctx.host.is_empty() {
        PRODUCTION_HOST
    } else {
        ctx.host
    };
    let uri = format!("{} {}{}", req.method, host, req.path);
    let jwt = build_jwt(
        private,
        &key.api_key,
        &hex::encode(nonce),
        ctx.now_ms.div_euclid(1000),
        &uri,
        ctx.rng,
    )?;
    req.set_header("authorization", &format!("Bearer {jwt}"));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Classification

fn segments(path: &str) -> Vec<&str> {
    path.trim_start_matches('/').split('/').collect()
}

pub(crate) fn classify(method: &str, path: &str, _req: &HttpRequest) -> EndpointClass {
    let segs = segments(path);
    match segs.as_slice() {
        ["api", "v3", "brokerage", rest @ ..] => classify_v3(method, rest),
        ["v2", rest @ ..] => classify_v2(method, rest),
        _ => EndpointClass::Unknown,
    }
}

fn classify_v3(method: &str, rest: &[&str]) -> EndpointClass {
    use EndpointClass::*;
    match (method, rest) {
        // Public market data.
        ("GET", ["time"])
        | ("GET", ["market", "products"])
        | ("GET", ["market", "products", _])
        | ("GET", ["market", "products", _, "ticker" | "candles"])
        | ("GET", ["market", "product_book"]) => Public,
        // Reads.
        ("GET", ["accounts"])
        | ("GET", ["accounts", _])
        | ("GET", ["orders", "historical", _])
        | ("GET", ["portfolios"])
        | ("GET", ["portfolios", _])
        | (
            "GET",
            [
                "transaction_summary"
                | "key_permissions"
                | "best_bid_ask"
                | "product_book"
                | "payment_methods"
                | "products",
            ],
        )
        | ("GET", ["payment_methods", _])
        | ("GET", ["products", _])
        | ("GET", ["products", _, "ticker" | "candles"])
        | ("GET", ["cfm", "balance_summary" | "positions" | "sweeps"])
        | ("GET", ["cfm", "positions", _])
        | (
            "GET",
            [
                "cfm",
                "intraday",
                "margin_setting" | "current_margin_window",
            ],
        )
        | ("GET", ["intx", "portfolio" | "positions" | "balances", _])
        | ("GET", ["intx", "positions", _, _])
        | ("GET", ["convert", "trade", _]) => Read,
        // Trading.
        ("POST", ["orders"])
        | (
            "POST",
            [
                "orders",
                "edit" | "edit_preview" | "preview" | "close_position",
            ],
        ) => Trade,
        ("POST", ["orders", "batch_cancel"]) => Cancel,
        // Moving funds.
        ("POST", ["portfolios", "move_funds"])
        | ("POST", ["cfm", "sweeps", "schedule"])
        | ("DELETE", ["cfm", "sweeps"])
        | ("POST", ["intx", "allocate"])
        | ("POST", ["convert", "quote"])
        | ("POST", ["convert", "trade", _]) => Transfer,
        // Portfolios are Coinbase's sub-accounts.
        ("POST", ["portfolios"]) | ("PUT" | "DELETE", ["portfolios", _]) => Subaccount,
        ("POST", ["cfm", "intraday", "margin_setting"])
        | ("POST", ["intx", "multi_asset_collateral"]) => AccountSettings,
        _ => Unknown,
    }
}

/// The v2 (Coinbase App) API: deny by default; sends, withdrawals and deposits by name; reads
/// only for the listed GETs.
fn classify_v2(method: &str, rest: &[&str]) -> EndpointClass {
    use EndpointClass::*;
    match (method, rest) {
        ("GET", ["time" | "currencies" | "exchange-rates"])
        | ("GET", ["currencies", "crypto"])
        | ("GET", ["prices", _, "buy" | "sell" | "spot"]) => Public,
        ("GET", ["accounts"])
        | ("GET", ["accounts", _])
        | (
            "GET",
            [
                "accounts",
                _,
                "transactions" | "deposits" | "withdrawals" | "addresses",
            ],
        )
        | (
            "GET",
            [
                "accounts",
                _,
                "transactions" | "deposits" | "withdrawals" | "addresses",
                _,
            ],
        )
        | ("GET", ["accounts", _, "addresses", _, "transactions"])
        | ("GET", ["payment-methods"])
        | ("GET", ["payment-methods", _])
        | ("GET", ["user"])
        | ("GET", ["user", "auth"]) => Read,
        // `transactions` with type `send` is a withdrawal to an address or email.
        ("POST", ["accounts", _, "transactions"])
        | (
            "POST",
            [
                "accounts",
                _,
                "transactions",
                _,
                "complete" | "resend" | "cancel",
            ],
        )
        | ("POST", ["accounts", _, "withdrawals"])
        | ("POST", ["accounts", _, "withdrawals", _, "commit"]) => Withdraw,
        ("POST", ["accounts", _, "deposits"])
        | ("POST", ["accounts", _, "deposits", _, "commit"])
        | ("POST", ["accounts", _, "addresses"]) => Deposit,
        ("POST" | "PUT" | "DELETE", ["accounts"])
        | ("POST" | "PUT" | "DELETE", ["accounts", _])
        | ("PUT", ["user"]) => AccountSettings,
        _ => Unknown,
    }
}

// ---------------------------------------------------------------------------------------------
// Orders

/// Top-level parameters of `POST /orders` (CBPY `create_order`).
const ORDER_KEYS: &[&str] = &[
    "client_order_id",
    "product_id",
    "side",
    "order_configuration",
    "self_trade_prevention_id",
    "leverage",
    "margin_type",
    "retail_portfolio_id",
    "preview_id",
];

struct ConfigSpec {
    name: &'static str,
    required: &'static [&'static str],
    optional: &'static [&'static str],
}

/// The order configurations Coinbase documents (CBPY `orders_types.py`); any other is refused.
const CONFIGS: &[ConfigSpec] = &[
    ConfigSpec {
        name: "market_market_ioc",
        required: &[],
        optional: &["quote_size", "base_size"],
    },
    ConfigSpec {
        name: "sor_limit_ioc",
        required: &["base_size", "limit_price"],
        optional: &[],
    },
    ConfigSpec {
        name: "limit_limit_gtc",
        required: &["base_size", "limit_price"],
        optional: &["post_only"],
    },
    ConfigSpec {
        name: "limit_limit_gtd",
        required: &["base_size", "limit_price", "end_time"],
        optional: &["post_only"],
    },
    ConfigSpec {
        name: "limit_limit_fok",
        required: &["base_size", "limit_price"],
        optional: &[],
    },
    ConfigSpec {
        name: "stop_limit_stop_limit_gtc",
        required: &["base_size", "limit_price", "stop_price", "stop_direction"],
        optional: &["reduce_only"],
    },
    ConfigSpec {
        name: "stop_limit_stop_limit_gtd",
        required: &[
            "base_size",
            "limit_price",
            "stop_price",
            "stop_direction",
            "end_time",
        ],
        optional: &["reduce_only"],
    },
    ConfigSpec {
        name: "trigger_bracket_gtc",
        required: &["base_size", "limit_price", "stop_trigger_price"],
        optional: &[],
    },
    ConfigSpec {
        name: "trigger_bracket_gtd",
        required: &["base_size", "limit_price", "stop_trigger_price", "end_time"],
        optional: &[],
    },
];

fn body_json(req: &HttpRequest) -> Result<Map<String, Value>, OrderError> {
    match parse_json_strict(&req.body)? {
        Value::Object(m) => Ok(m),
        _ => Err(OrderError::Malformed(
            "the body is not a JSON object".into(),
        )),
    }
}

fn invalid(name: &str, value: &Value) -> OrderError {
    let value = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    OrderError::InvalidParameter {
        name: name.to_owned(),
        value,
    }
}

fn required_str<'a>(m: &'a Map<String, Value>, name: &str) -> Result<&'a str, OrderError> {
    match m.get(name) {
        None | Some(Value::Null) => Err(OrderError::MissingParameter(name.to_owned())),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(v) => Err(invalid(name, v)),
    }
}

/// A size or price: Coinbase sends them as decimal strings; positive.
fn amount(m: &Map<String, Value>, name: &str) -> Result<Option<Decimal>, OrderError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::String(s)) => crate::params::plain_decimal(s)
            .filter(|d| *d > Decimal::ZERO)
            .map(Some)
            .ok_or_else(|| invalid(name, v)),
        Some(v) => Err(invalid(name, v)),
    }
}

fn parse_create(body: &Map<String, Value>, needs_client_id: bool) -> Result<Order, OrderError> {
    if let Some(k) = body.keys().find(|k| !ORDER_KEYS.contains(&k.as_str())) {
        return Err(OrderError::Malformed(format!("unknown parameter `{k}`")));
    }
    let client_id = if needs_client_id {
        Some(required_str(body, "client_order_id")?.to_owned())
    } else {
        match body.get("client_order_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => return Err(invalid("client_order_id", v)),
        }
    };
    let symbol = required_str(body, "product_id")?.to_owned();
    let side = match required_str(body, "side")? {
        "BUY" => Side::Buy,
        "SELL" => Side::Sell,
        other => return Err(invalid("side", &Value::from(other))),
    };
    let configs = match body.get("order_configuration") {
        None | Some(Value::Null) => {
            return Err(OrderError::MissingParameter("order_configuration".into()));
        }
        Some(Value::Object(m)) => m,
        Some(v) => return Err(invalid("order_configuration", v)),
    };
    let mut entries = configs.iter();
    let (Some((name, cfg)), None) = (entries.next(), entries.next()) else {
        return Err(OrderError::Malformed(
            "`order_configuration` must hold exactly one configuration".into(),
        ));
    };
    let spec = CONFIGS
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| invalid("order_configuration", &Value::from(name.as_str())))?;
    let Value::Object(cfg) = cfg else {
        return Err(invalid(name, cfg));
    };
    if let Some(k) = cfg
        .keys()
        .find(|k| !spec.required.contains(&k.as_str()) && !spec.optional.contains(&k.as_str()))
    {
        return Err(OrderError::Malformed(format!(
            "unknown parameter `{k}` in `{name}`"
        )));
    }
    for r in spec.required {
        if matches!(cfg.get(*r), None | Some(Value::Null)) {
            return Err(OrderError::MissingParameter(format!("{name}.{r}")));
        }
    }
    for flag in ["post_only", "reduce_only"] {
        if let Some(v) = cfg.get(flag)
            && !matches!(v, Value::Bool(_) | Value::Null)
        {
            return Err(invalid(flag, v));
        }
    }
    if let Some(v) = cfg.get("end_time")
        && !v.is_string()
    {
        return Err(invalid("end_time", v));
    }
    if let Some(v) = cfg.get("stop_direction")
        && !matches!(
            v.as_str(),
            Some("STOP_DIRECTION_STOP_UP" | "STOP_DIRECTION_STOP_DOWN")
        )
    {
        return Err(invalid("stop_direction", v));
    }
    let base = amount(cfg, "base_size")?;
    let quote = amount(cfg, "quote_size")?;
    let price = amount(cfg, "limit_price")?;
    amount(cfg, "stop_price")?;
    amount(cfg, "stop_trigger_price")?;
    let reduce_only = cfg.get("reduce_only") == Some(&Value::Bool(true));
    let order_type = match name.as_str() {
        "market_market_ioc" => {
            if base.is_some() == quote.is_some() {
                return Err(OrderError::Malformed(
                    "`market_market_ioc` needs exactly one of `base_size` and `quote_size`".into(),
                ));
            }
            OrderType::Market
        }
        "sor_limit_ioc" | "limit_limit_gtc" | "limit_limit_gtd" | "limit_limit_fok" => {
            OrderType::Limit
        }
        other => OrderType::Other(other.to_owned()),
    };
    Ok(Order {
        venue: Venue::Coinbase,
        symbol,
        side,
        order_type,
        quantity: base,
        quote_quantity: quote,
        price,
        reduce_only,
        client_id,
    })
}

pub(crate) fn parse_orders(path: &str, req: &HttpRequest) -> Result<Vec<Order>, OrderError> {
    let method = req.method.to_ascii_uppercase();
    let segs = segments(path);
    let ["api", "v3", "brokerage", "orders", rest @ ..] = segs.as_slice() else {
        return Ok(Vec::new());
    };
    if method != "POST" {
        return Ok(Vec::new());
    }
    match rest {
        [] => Ok(vec![parse_create(&body_json(req)?, true)?]),
        ["preview"] => Ok(vec![parse_create(&body_json(req)?, false)?]),
        ["edit_preview"] => {
            body_json(req)?;
            Ok(Vec::new())
        }
        ["batch_cancel"] => {
            let body = body_json(req)?;
            match body.get("order_ids") {
                Some(Value::Array(ids)) if ids.iter().all(Value::is_string) => Ok(Vec::new()),
                Some(v) => Err(invalid("order_ids", v)),
                None => Err(OrderError::MissingParameter("order_ids".into())),
            }
        }
        ["edit"] => {
            body_json(req)?;
            Err(OrderError::Malformed(
                "an order edit names neither product nor side, so it cannot be checked".into(),
            ))
        }
        ["close_position"] => {
            body_json(req)?;
            Err(OrderError::Malformed(
                "closing a position names no side or size, so it cannot be checked".into(),
            ))
        }
        _ => Ok(Vec::new()),
    }
}

pub(crate) fn order_request(spec: &OrderSpec) -> HttpRequest {
    let side = match spec.side {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    };
    let quantity = spec.quantity.normalize().to_string();
    let config = match spec.price {
        None => serde_json::json!({ "market_market_ioc": { "base_size": quantity } }),
        Some(p) => serde_json::json!({
            "limit_limit_gtc": { "base_size": quantity, "limit_price": p.normalize().to_string() }
        }),
    };
    let seed = format!(
        "{}|{side}|{quantity}|{}",
        spec.symbol,
        spec.price
            .map(|p| p.normalize().to_string())
            .unwrap_or_default()
    );
    let digest = crate::crypto::sha256(seed.as_bytes());
    let client_order_id = format!("keyfence-{}", hex::encode(&digest[..12]));
    let body = serde_json::json!({
        "client_order_id": client_order_id,
        "product_id": spec.symbol,
        "side": side,
        "order_configuration": config,
    });
    HttpRequest::new("POST", "/api/v3/brokerage/orders")
        .with_header("content-type", "application/json")
        .with_body(body.to_string())
}

// ---------------------------------------------------------------------------------------------
// Key introspection

/// Coinbase's error shapes: Advanced Trade's `{"error","message","error_details"}` and the v2
/// API's `{"errors":[{"id","message"}]}`.
pub(crate) fn venue_error(m: &Map<String, Value>) -> Option<KeyInfoError> {
    if let Some(code) = str_field(m, "error") {
        let message = str_field(m, "message")
            .filter(|s| !s.is_empty())
            .or_else(|| str_field(m, "error_details"))
            .or_else(|| str_field(m, "error_description"))
            .unwrap_or("")
            .to_owned();
        return Some(KeyInfoError::Venue {
            code: code.to_owned(),
            message,
        });
    }
    let first = m
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|a| a.first())?;
    Some(KeyInfoError::Venue {
        code: first
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned(),
        message: first
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
    })
}

pub(crate) fn parse_key_info(body: &[u8]) -> Result<KeyProfile, KeyInfoError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| KeyInfoError::Malformed(e.to_string()))?;
    let Value::Object(m) = v else {
        return Err(KeyInfoError::Malformed("expected a JSON object".into()));
    };
    if let Some(e) = venue_error(&m) {
        return Err(e);
    }
    let flag = |name: &str| -> Result<Option<bool>, KeyInfoError> {
        match m.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(KeyInfoError::Malformed(format!(
                "`{name}` is not a boolean"
            ))),
        }
    };
    let missing = |name: &str| KeyInfoError::Malformed(format!("missing `{name}`"));
    let can_view = flag("can_view")?.ok_or_else(|| missing("can_view"))?;
    let can_trade = flag("can_trade")?.ok_or_else(|| missing("can_trade"))?;
    // The SDK's own test mock spells it `can_withdraw`; read either, fail closed on neither.
    let can_transfer = match (flag("can_transfer")?, flag("can_withdraw")?) {
        (None, None) => return Err(missing("can_transfer")),
        (a, b) => a.unwrap_or(false) || b.unwrap_or(false),
    };
    let mut profile = KeyProfile::empty(Venue::Coinbase);
    for (on, raw, perms) in [
        (can_view, "can_view", &[Permission::Read][..]),
        (can_trade, "can_trade", &[Permission::SpotTrade][..]),
        (
            can_transfer,
            "can_transfer",
            &[Permission::Withdraw, Permission::Transfer][..],
        ),
    ] {
        if on {
            profile.raw_permissions.push(raw.to_owned());
            profile.permissions.extend(perms.iter().copied());
        }
    }
    profile.read_only = can_view && !can_trade && !can_transfer;
    // No IP allowlist, creation, expiry or label in this answer (they live in the CDP portal),
    // so those stay unknown rather than guessed.
    Ok(profile)
}

// ---------------------------------------------------------------------------------------------
// Native errors

/// The gRPC-gateway error body the v3 API uses.
fn grpc(status: u16, error: &str, details: &str, message: &str) -> NativeResponse {
    NativeResponse::json(
        status,
        serde_json::json!({ "error": error, "error_details": details, "message": message }),
    )
}

fn text(status: u16, body: &str) -> NativeResponse {
    NativeResponse {
        status,
        headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
        body: body.to_owned(),
    }
}

pub(crate) fn native_error(denial: &Denial) -> NativeResponse {
    let msg = denial.message.as_str();
    match &denial.kind {
        // Coinbase answers a bad JWT with a bare `401 Unauthorized`: ccxt maps the status to
        // AuthenticationError, coinbase-advanced-py raises HTTPError(401).
        DenialKind::Auth(_) => text(401, "Unauthorized"),
        // coinbase-advanced-py looks for this exact `error_details`; ccxt maps PERMISSION_DENIED.
        DenialKind::PermissionDenied => {
            grpc(403, "PERMISSION_DENIED", "Missing required scopes", msg)
        }
        // ccxt's exact map: `rate_limit_exceeded` -> RateLimitExceeded.
        DenialKind::RateLimited { .. } => grpc(429, "rate_limit_exceeded", msg, msg),
        DenialKind::BadRequest | DenialKind::UnknownSymbol => {
            grpc(400, "INVALID_ARGUMENT", msg, msg)
        }
        DenialKind::InsufficientFunds => grpc(400, "INSUFFICIENT_FUND", msg, msg),
        DenialKind::UnknownOrder | DenialKind::NotFound => grpc(404, "NOT_FOUND", msg, msg),
        DenialKind::PayloadTooLarge => grpc(413, "INVALID_ARGUMENT", msg, msg),
        // A plain body lets ccxt fall back to the status (503 -> ExchangeNotAvailable).
        DenialKind::Unavailable => text(503, "Service Unavailable"),
        DenialKind::Internal => grpc(500, "INTERNAL", msg, msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{VerifyKey, crypto};
    use keyfence_types::{Credential, SecretString};
    use ring::rand::SystemRandom;
    use std::collections::HashMap;

    const KEY_NAME: &str = "organizations/test-organization/apiKeys/test-api-key";
    /// CBPY `tests/constants.py` Ed25519 test key (64-byte seed||public form).
    const ED_KEY: &str =
        "k0BUni0p0vZG1BdpVjS6ogBJ7kxm630AJ2dN+tuputDOKsRAwgyrpEQLeBtS1znTmzPX6Xr2eOWpzx6nW8knkA==";
    /// CBPY `tests/constants.py` ES256 test key.
    const EC_KEY: &str = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIKwf3Uox30cRWzRBOPoPOH5p0Gpb0Dt8zUKXUEM5fMkGoAoGCCqGSM49\nAwEHoUQDQgAEbAtpLlSZYVOwYICz+uEyxcS29vRIujiES/gQ1DC7FV4zK4JuYE9v\nqDyGZQYjdXHLM7I6f/QnnOITL+dXYWBHRA==\n-----END EC PRIVATE KEY-----\n";
    /// exchanges.md §5.2 S5 (self-generated, not official).
    const S5: &str = "eyJhbGciOiJFZERTQSIsImtpZCI6Im9yZ2FuaXphdGlvbnMvdGVzdC1vcmdhbml6YXRpb24vYXBpS2V5cy90ZXN0LWFwaS1rZXkiLCJub25jZSI6IjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwIiwidHlwIjoiSldUIn0.eyJzdWIiOiJvcmdhbml6YXRpb25zL3Rlc3Qtb3JnYW5pemF0aW9uL2FwaUtleXMvdGVzdC1hcGkta2V5IiwiaXNzIjoiY2RwIiwibmJmIjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDAxMjAsInVyaSI6IkdFVCBhcGkuY29pbmJhc2UuY29tL2FwaS92My9icm9rZXJhZ2UvYWNjb3VudHMifQ._iZ1I6Qsi9Qtpt-31UP9MyoKFSjW3TZNNR0DjNvWs6TDX7Y6fh7nbS7oFvFGM0Q1zjPXhN48swgeJQcNeEUxCQ";
    const NOW_MS: i64 = 1_700_000_060_000;

    fn credential(pk: &str) -> Credential {
        Credential {
            api_key: KEY_NAME.into(),
            secret: None,
            private_key: Some(SecretString::new(pk.into())),
            passphrase: None,
        }
    }

    fn signing_key(pk: &str) -> SigningKey {
        SigningKey::from_credential(Venue::Coinbase, &credential(pk), &SystemRandom::new()).unwrap()
    }

    fn keys_for(pk: &str) -> HashMap<String, VerifyKey> {
        let public = signing_key(pk).public_key().unwrap().to_pem();
        HashMap::from([(KEY_NAME.to_owned(), VerifyKey::public_pem(&public).unwrap())])
    }

    fn ctx(now_ms: i64) -> AuthContext<'static> {
        AuthContext {
            now_ms,
            host: Some("127.0.0.1:9104"),
        }
    }

    fn signed(pk: &str, method: &str, target: &str, host: &str, now_ms: i64) -> HttpRequest {
        let rng = SystemRandom::new();
        let mut req = HttpRequest::new(method, target);
        let sc = SignContext {
            now_ms,
            nonce: None,
            host,
            rng: &rng,
        };
        crate::sign(Venue::Coinbase, &signing_key(pk), &mut req, &sc).unwrap();
        req
    }

    fn auth(
        req: &HttpRequest,
        keys: &HashMap<String, VerifyKey>,
        now_ms: i64,
    ) -> Result<Authenticated, AuthError> {
        crate::authenticate(Venue::Coinbase, req, &ctx(now_ms), keys)
    }

    #[test]
    fn s5_vector_verifies_and_is_reproduced_byte_for_byte() {
        let keys = keys_for(ED_KEY);
        let req = HttpRequest::new("GET", "/api/v3/brokerage/accounts")
            .with_header("authorization", &format!("Bearer {S5}"));
        let ok = auth(&req, &keys, NOW_MS).unwrap();
        assert_eq!(ok.api_key, KEY_NAME);
        assert_eq!(ok.timestamp_ms, Some(1_700_000_000_000));
        let rng = SystemRandom::new();
        let SigningScheme::Private(pk) = &signing_key(ED_KEY).scheme else {
            panic!("private key expected")
        };
        let jwt = build_jwt(
            pk,
            KEY_NAME,
            "00000000000000000000000000000000",
            1_700_000_000,
            "GET api.coinbase.com/api/v3/brokerage/accounts",
            &rng,
        )
        .unwrap();
        assert_eq!(jwt, S5);
        assert_eq!(
            crate::claimed_api_key(Venue::Coinbase, &req).as_deref(),
            Some(KEY_NAME)
        );
    }

    #[test]
    fn sign_then_verify_for_both_algorithms_and_hosts() {
        for pk in [ED_KEY, EC_KEY] {
            let keys = keys_for(pk);
            for host in ["127.0.0.1:9104", "api.coinbase.com"] {
                let req = signed(pk, "POST", "/api/v3/brokerage/orders", host, NOW_MS);
                assert!(req.header("authorization").unwrap().starts_with("Bearer "));
                assert_eq!(auth(&req, &keys, NOW_MS).unwrap().api_key, KEY_NAME);
            }
            // A token bound to another host or path is refused.
            let other = signed(
                pk,
                "GET",
                "/api/v3/brokerage/accounts",
                "evil.example:1",
                NOW_MS,
            );
            assert_eq!(
                auth(&other, &keys, NOW_MS),
                Err(AuthError::InvalidSignature)
            );
            let mut moved = signed(
                pk,
                "GET",
                "/api/v3/brokerage/accounts",
                "api.coinbase.com",
                NOW_MS,
            );
            moved.path = "/v2/accounts".into();
            assert_eq!(
                auth(&moved, &keys, NOW_MS),
                Err(AuthError::InvalidSignature)
            );
            let mut method = signed(
                pk,
                "GET",
                "/api/v3/brokerage/orders",
                "api.coinbase.com",
                NOW_MS,
            );
            method.method = "POST".into();
            assert_eq!(
                auth(&method, &keys, NOW_MS),
                Err(AuthError::InvalidSignature)
            );
        }
    }

    #[test]
    fn wrong_key_stale_and_future_tokens_and_missing_headers_are_refused() {
        let keys = keys_for(EC_KEY);
        let rng = SystemRandom::new();
        let other = crypto::generate_p256_sec1_pem(&rng).unwrap();
        let wrong = signed(
            &other,
            "GET",
            "/api/v3/brokerage/accounts",
            "api.coinbase.com",
            NOW_MS,
        );
        assert_eq!(
            auth(&wrong, &keys, NOW_MS),
            Err(AuthError::InvalidSignature)
        );
        // Ed25519 token for a P-256 key: the algorithm does not fit.
        let ed = signed(
            ED_KEY,
            "GET",
            "/api/v3/brokerage/accounts",
            "api.coinbase.com",
            NOW_MS,
        );
        assert_eq!(auth(&ed, &keys, NOW_MS), Err(AuthError::InvalidSignature));

        let req = signed(
            EC_KEY,
            "GET",
            "/api/v3/brokerage/accounts",
            "api.coinbase.com",
            NOW_MS,
        );
        for (now, want) in [
            (NOW_MS + 119_000, Ok(())),
            (NOW_MS + 131_000, Err(AuthError::TimestampOutsideWindow)),
            (NOW_MS - 5_000, Ok(())),
            (NOW_MS - 11_000, Err(AuthError::TimestampOutsideWindow)),
        ] {
            assert_eq!(auth(&req, &keys, now).map(|_| ()), want, "now {now}");
        }

        let bare = HttpRequest::new("GET", "/api/v3/brokerage/accounts");
        assert_eq!(auth(&bare, &keys, NOW_MS), Err(AuthError::MissingApiKey));
        let token = req.header("authorization").unwrap().to_owned();
        let mut twice = req.clone();
        twice.headers.push(("authorization".into(), token.clone()));
        assert!(matches!(
            auth(&twice, &keys, NOW_MS),
            Err(AuthError::Malformed(_))
        ));
        for bad in ["Basic abc", "Bearer", "Bearer a.b", "Bearer !!.??.xx"] {
            let r = bare.clone().with_header("authorization", bad);
            assert!(auth(&r, &keys, NOW_MS).is_err(), "{bad}");
        }
        let no_sig = bare.clone().with_header(
            "authorization",
            &format!("{}.", token.rsplit_once('.').unwrap().0),
        );
        assert_eq!(
            auth(&no_sig, &keys, NOW_MS),
            Err(AuthError::MissingSignature)
        );
        let unknown = HashMap::new();
        assert_eq!(auth(&req, &unknown, NOW_MS), Err(AuthError::UnknownApiKey));
    }

    /// Tokens as ccxt mints them: ES256 with `iss: coinbase-cloud`, `aud`, `iat`; EdDSA with a
    /// `uris` array; an `http://` base URL left in the uri.
    #[test]
    fn ccxt_token_shapes_are_accepted() {
        let rng = SystemRandom::new();
        let now_s = NOW_MS / 1000;
        for (pk, alg, claims) in [
            (
                EC_KEY,
                "ES256",
                format!(
                    r#"{{"aud":["retail_rest_api_proxy"],"iss":"coinbase-cloud","nbf":{now_s},"exp":{},"sub":"{KEY_NAME}","iat":{now_s},"uri":"GET 127.0.0.1:9104/api/v3/brokerage/accounts"}}"#,
                    now_s + 120
                ),
            ),
            (
                ED_KEY,
                "EdDSA",
                format!(
                    r#"{{"aud":["cdp_service"],"iss":"cdp","nbf":{now_s},"exp":{},"sub":"{KEY_NAME}","iat":{now_s},"uris":["GET http://127.0.0.1:9104/api/v3/brokerage/accounts"]}}"#,
                    now_s + 120
                ),
            ),
        ] {
            let header =
                format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{KEY_NAME}","nonce":"1f2e"}}"#);
            let input = format!("{}.{}", B64URL.encode(header), B64URL.encode(claims));
            let SigningScheme::Private(k) = &signing_key(pk).scheme else {
                panic!("private key expected")
            };
            let sig = k.sign(input.as_bytes(), &rng).unwrap();
            let req = HttpRequest::new("GET", "/api/v3/brokerage/accounts?limit=250").with_header(
                "authorization",
                &format!("Bearer {input}.{}", B64URL.encode(sig)),
            );
            assert_eq!(auth(&req, &keys_for(pk), NOW_MS).unwrap().api_key, KEY_NAME);
        }
    }

    #[test]
    fn claims_that_break_the_rules_are_refused() {
        let rng = SystemRandom::new();
        let now_s = NOW_MS / 1000;
        let uri = "\"uri\":\"GET api.coinbase.com/api/v3/brokerage/accounts\"";
        let cases = [
            // lifetime over 120 s
            format!(
                r#"{{"sub":"{KEY_NAME}","iss":"cdp","nbf":{now_s},"exp":{},{uri}}}"#,
                now_s + 600
            ),
            // unknown issuer
            format!(
                r#"{{"sub":"{KEY_NAME}","iss":"me","nbf":{now_s},"exp":{},{uri}}}"#,
                now_s + 100
            ),
            // no uri
            format!(
                r#"{{"sub":"{KEY_NAME}","iss":"cdp","nbf":{now_s},"exp":{}}}"#,
                now_s + 100
            ),
            // no nbf
            format!(
                r#"{{"sub":"{KEY_NAME}","iss":"cdp","exp":{},{uri}}}"#,
                now_s + 100
            ),
            // duplicate claim
            format!(
                r#"{{"sub":"{KEY_NAME}","sub":"x","iss":"cdp","nbf":{now_s},"exp":{},{uri}}}"#,
                now_s + 100
            ),
            // uri with a query string
            format!(
                r#"{{"sub":"{KEY_NAME}","iss":"cdp","nbf":{now_s},"exp":{},"uri":"GET api.coinbase.com/api/v3/brokerage/accounts?x=1"}}"#,
                now_s + 100
            ),
        ];
        let SigningScheme::Private(k) = &signing_key(ED_KEY).scheme else {
            panic!("private key expected")
        };
        // `alg: none` and HMAC algorithms never verify.
        for alg in ["none", "HS256"] {
            let header = format!(r#"{{"alg":"{alg}","kid":"{KEY_NAME}","typ":"JWT"}}"#);
            let claims = format!(
                r#"{{"sub":"{KEY_NAME}","iss":"cdp","nbf":{now_s},"exp":{},{uri}}}"#,
                now_s + 100
            );
            let input = format!("{}.{}", B64URL.encode(header), B64URL.encode(&claims));
            for sig in ["", "AAAA"] {
                let req = HttpRequest::new("GET", "/api/v3/brokerage/accounts")
                    .with_header("authorization", &format!("Bearer {input}.{sig}"));
                assert!(
                    auth(&req, &keys_for(ED_KEY), NOW_MS).is_err(),
                    "{alg} {sig}"
                );
            }
        }
        for claims in cases {
            let header = format!(r#"{{"alg":"EdDSA","kid":"{KEY_NAME}","typ":"JWT"}}"#);
            let input = format!("{}.{}", B64URL.encode(header), B64URL.encode(&claims));
            let sig = k.sign(input.as_bytes(), &rng).unwrap();
            let req = HttpRequest::new("GET", "/api/v3/brokerage/accounts").with_header(
                "authorization",
                &format!("Bearer {input}.{}", B64URL.encode(sig)),
            );
            assert!(auth(&req, &keys_for(ED_KEY), NOW_MS).is_err(), "{claims}");
        }
    }

    #[test]
    fn signing_needs_a_private_key() {
        let cred = Credential {
            api_key: KEY_NAME.into(),
            secret: Some(SecretString::new("hmac".into())),
            private_key: None,
            passphrase: None,
        };
        assert!(SigningKey::from_credential(Venue::Coinbase, &cred, &SystemRandom::new()).is_err());
        let shown = format!("{:?}", signing_key(EC_KEY));
        assert!(!shown.contains("MHcCAQEE"), "{shown}");
    }

    fn class(method: &str, path: &str) -> EndpointClass {
        crate::classify(Venue::Coinbase, &HttpRequest::new(method, path))
    }

    #[test]
    fn every_class_is_recognised_and_the_rest_is_unknown() {
        use EndpointClass::*;
        let table = [
            ("GET", "/api/v3/brokerage/time", Public),
            ("GET", "/api/v3/brokerage/market/products", Public),
            (
                "GET",
                "/api/v3/brokerage/market/products/BTC-USD/ticker",
                Public,
            ),
            ("GET", "/v2/currencies/crypto", Public),
            ("GET", "/v2/exchange-rates", Public),
            ("GET", "/api/v3/brokerage/accounts", Read),
            (
                "GET",
                "/api/v3/brokerage/accounts/8bfc20d7-f7c6-4422-bf07-8243ca4169fe",
                Read,
            ),
            ("GET", "/api/v3/brokerage/orders/historical/batch", Read),
            ("GET", "/api/v3/brokerage/orders/historical/fills", Read),
            ("GET", "/api/v3/brokerage/orders/historical/0000-1", Read),
            ("GET", "/api/v3/brokerage/key_permissions", Read),
            ("GET", "/api/v3/brokerage/best_bid_ask", Read),
            ("GET", "/api/v3/brokerage/products/BTC-USD", Read),
            ("GET", "/api/v3/brokerage/portfolios", Read),
            ("GET", "/api/v3/brokerage/transaction_summary", Read),
            ("GET", "/v2/accounts", Read),
            ("GET", "/v2/accounts/abc/transactions", Read),
            ("GET", "/v2/accounts/abc/withdrawals", Read),
            ("GET", "/v2/user", Read),
            ("POST", "/api/v3/brokerage/orders", Trade),
            ("POST", "/api/v3/brokerage/orders/edit", Trade),
            ("POST", "/api/v3/brokerage/orders/preview", Trade),
            ("POST", "/api/v3/brokerage/orders/close_position", Trade),
            ("POST", "/api/v3/brokerage/orders/batch_cancel", Cancel),
            ("POST", "/api/v3/brokerage/portfolios/move_funds", Transfer),
            ("POST", "/api/v3/brokerage/convert/quote", Transfer),
            ("POST", "/api/v3/brokerage/convert/trade/abc", Transfer),
            ("DELETE", "/api/v3/brokerage/cfm/sweeps", Transfer),
            ("POST", "/api/v3/brokerage/intx/allocate", Transfer),
            ("POST", "/api/v3/brokerage/portfolios", Subaccount),
            ("DELETE", "/api/v3/brokerage/portfolios/abc", Subaccount),
            (
                "POST",
                "/api/v3/brokerage/cfm/intraday/margin_setting",
                AccountSettings,
            ),
            ("POST", "/v2/accounts/abc/transactions", Withdraw),
            ("POST", "/v2/accounts/abc/transactions/tx/resend", Withdraw),
            ("POST", "/v2/accounts/abc/withdrawals", Withdraw),
            ("POST", "/v2/accounts/abc/withdrawals/w1/commit", Withdraw),
            ("POST", "/v2/accounts/abc/deposits", Deposit),
            ("POST", "/v2/accounts/abc/addresses", Deposit),
            ("PUT", "/v2/user", AccountSettings),
            ("DELETE", "/v2/accounts/abc", AccountSettings),
            // Not on the list: unknown.
            ("POST", "/v2/accounts/abc/buys", Unknown),
            ("GET", "/v2/notifications", Unknown),
            ("DELETE", "/api/v3/brokerage/orders", Unknown),
            ("GET", "/api/v3/brokerage/orders", Unknown),
            ("PUT", "/api/v3/brokerage/orders", Unknown),
            ("GET", "/api/v3/brokerage/something_new", Unknown),
            ("POST", "/api/v3/brokerage/key_permissions", Unknown),
            ("GET", "/api/v2/brokerage/accounts", Unknown),
            ("GET", "/", Unknown),
        ];
        for (m, p, want) in table {
            assert_eq!(class(m, p), want, "{m} {p}");
        }
    }

    #[test]
    fn disguised_withdraw_paths_are_still_withdrawals() {
        for p in [
            "/v2/accounts/abc/transactions",
            "/V2/Accounts/ABC/Transactions",
            "/v2//accounts/abc/transactions/",
            "/v2/accounts/abc%2Ftransactions",
            "/v2/accounts/abc/transactions;x=1",
            "/api/v3/brokerage/../../../v2/accounts/abc/transactions",
            "/v2/accounts/./abc/%74ransactions",
        ] {
            assert_eq!(class("POST", p), EndpointClass::Withdraw, "{p}");
        }
        assert_eq!(
            class("POST", "/api/v3/brokerage/portfolios%2Fmove_funds"),
            EndpointClass::Transfer
        );
        assert_eq!(
            class("POST", "/v2/accounts/%252Ftransactions"),
            EndpointClass::Unknown
        );
    }

    fn order_req(path: &str, body: &str) -> HttpRequest {
        HttpRequest::new("POST", path).with_body(body)
    }

    fn orders(body: &str) -> Result<Vec<Order>, OrderError> {
        crate::parse_orders(
            Venue::Coinbase,
            &order_req("/api/v3/brokerage/orders", body),
        )
    }

    #[test]
    fn order_configurations_parse_to_normalised_orders() {
        let dec = |s: &str| s.parse::<Decimal>().ok();
        let cases = [
            (
                r#"{"client_order_id":"c1","product_id":"BTC-USD","side":"BUY","order_configuration":{"market_market_ioc":{"quote_size":"100"}}}"#,
                OrderType::Market,
                Side::Buy,
                None,
                dec("100"),
                None,
            ),
            (
                r#"{"client_order_id":"c2","product_id":"BTC-USD","side":"SELL","order_configuration":{"market_market_ioc":{"base_size":"0.01"}}}"#,
                OrderType::Market,
                Side::Sell,
                dec("0.01"),
                None,
                None,
            ),
            (
                r#"{"client_order_id":"c3","product_id":"ETH-USD","side":"BUY","order_configuration":{"limit_limit_gtc":{"base_size":"2","limit_price":"1500.5","post_only":false}}}"#,
                OrderType::Limit,
                Side::Buy,
                dec("2"),
                None,
                dec("1500.5"),
            ),
            (
                r#"{"client_order_id":"c4","product_id":"BTC-USD","side":"SELL","order_configuration":{"stop_limit_stop_limit_gtc":{"base_size":"1","limit_price":"50000","stop_price":"51000","stop_direction":"STOP_DIRECTION_STOP_DOWN"}}}"#,
                OrderType::Other("stop_limit_stop_limit_gtc".into()),
                Side::Sell,
                dec("1"),
                None,
                dec("50000"),
            ),
            (
                r#"{"client_order_id":"c5","product_id":"BTC-USD","side":"BUY","order_configuration":{"limit_limit_gtd":{"base_size":"1","limit_price":"10","end_time":"2030-01-01T00:00:00Z","post_only":true}}}"#,
                OrderType::Limit,
                Side::Buy,
                dec("1"),
                None,
                dec("10"),
            ),
        ];
        for (body, ty, side, qty, quote, price) in cases {
            let got = orders(body).unwrap();
            assert_eq!(got.len(), 1, "{body}");
            let o = &got[0];
            assert_eq!(
                (&o.order_type, o.side, o.quantity, o.quote_quantity, o.price),
                (&ty, side, qty, quote, price),
                "{body}"
            );
            assert_eq!(o.venue, Venue::Coinbase);
            assert!(o.client_id.is_some());
            assert!(!o.counts_contracts(), "{body}");
        }
        // A futures product counts contracts in base_size.
        let future = orders(
            r#"{"client_order_id":"f1","product_id":"BIT-28NOV25-CDE","side":"BUY","order_configuration":{"limit_limit_gtc":{"base_size":"2","limit_price":"60000"}}}"#,
        )
        .unwrap();
        assert_eq!(future[0].quantity, dec("2"));
        assert!(future[0].counts_contracts());
    }

    #[test]
    fn bad_order_bodies_are_refused() {
        for body in [
            // duplicate parameter, top level and nested
            r#"{"client_order_id":"c","product_id":"BTC-USD","product_id":"DOGE-USD","side":"BUY","order_configuration":{"market_market_ioc":{"quote_size":"1"}}}"#,
            r#"{"client_order_id":"c","product_id":"BTC-USD","side":"BUY","order_configuration":{"market_market_ioc":{"quote_size":"1","quote_size":"1000000"}}}"#,
            // two configurations
            r#"{"client_order_id":"c","product_id":"BTC-USD","side":"BUY","order_configuration":{"market_market_ioc":{"quote_size":"1"},"limit_limit_gtc":{"base_size":"1","limit_price":"1"}}}"#,
            // unknown configuration
            r#"{"client_order_id":"c","product_id":"BTC-USD","side":"BUY","order_configuration":{"twap_limit_gtd":{"base_size":"1"}}}"#,
            // unknown parameter inside a configuration
            r#"{"client_order_id":"c","product_id":"BTC-USD","side":"BUY","order_configuration":{"limit_limit_gtc":{"base_size":"1","limit_price":"1","iceberg":"1"}}}"#,
            // unknown top-level parameter
            r#"{"client_order_id":"c","product_id":"BTC-USD","side":"BUY","attached_order_configuration":{},"order_configuration":{"market_market_ioc":{"quote_size":"1"}}}"#,
            // both sizes, no size, numbers instead of strings, zero, bad side, missing fields
            r#"{"client_order_id":"c","product_id":"BTC-USD","side":"BUY","order_configuration":{"market_market_ioc":{"quote_size":"1","base_size":"1"}}}"#,
            r#"{"client_order_id":"c","product_id":"BTC-USD","side":"BUY","order_configuration":{"market_market_ioc":{}}}"#,
            r#"{"client_order_id":"c","product_id":"BTC-USD","side":"BUY","order_configuration":{"market_market_ioc":{"quote_size":100}}}"#,
            r#"{"client_order_id":"c","product_id":"BTC-USD","side":"BUY","order_configuration":{"market_market_ioc":{"quote_size":"0"}}}"#,
            r#"{"client_order_id":"c","product_id":"BTC-USD","side":"buy","order_configuration":{"market_market_ioc":{"quote_size":"1"}}}"#,
            r#"{"client_order_id":"c","product_id":"BTC-USD","side":"BUY","order_configuration":{"limit_limit_gtc":{"base_size":"1"}}}"#,
            r#"{"product_id":"BTC-USD","side":"BUY","order_configuration":{"market_market_ioc":{"quote_size":"1"}}}"#,
            r#"{"client_order_id":"c","side":"BUY","order_configuration":{"market_market_ioc":{"quote_size":"1"}}}"#,
            r#"{"client_order_id":"c","product_id":"BTC-USD","side":"BUY"}"#,
            r#"["not an object"]"#,
            r#"{"client_order_id":"c""#,
        ] {
            assert!(orders(body).is_err(), "{body}");
        }
        assert!(matches!(
            orders(r#"{"client_order_id":"c","product_id":"A-B","product_id":"C-D","side":"BUY","order_configuration":{}}"#),
            Err(OrderError::DuplicateParameter(k)) if k == "product_id"
        ));
    }

    #[test]
    fn other_order_endpoints() {
        let p =
            |path: &str, body: &str| crate::parse_orders(Venue::Coinbase, &order_req(path, body));
        // Preview: same body, client_order_id optional; it places nothing but is still read.
        let prev = p(
            "/api/v3/brokerage/orders/preview",
            r#"{"product_id":"BTC-USD","side":"BUY","order_configuration":{"market_market_ioc":{"quote_size":"5"}}}"#,
        )
        .unwrap();
        assert_eq!(prev.len(), 1);
        // Batch cancel with several orders: places none.
        assert_eq!(
            p(
                "/api/v3/brokerage/orders/batch_cancel",
                r#"{"order_ids":["a","b","c"]}"#
            )
            .unwrap(),
            vec![]
        );
        assert!(
            p(
                "/api/v3/brokerage/orders/batch_cancel",
                r#"{"order_ids":["a"],"order_ids":["b"]}"#
            )
            .is_err()
        );
        assert!(p("/api/v3/brokerage/orders/batch_cancel", r#"{}"#).is_err());
        // Edits and position closes cannot be checked: refused.
        assert!(
            p(
                "/api/v3/brokerage/orders/edit",
                r#"{"order_id":"a","price":"1","size":"1"}"#
            )
            .is_err()
        );
        assert!(
            p(
                "/api/v3/brokerage/orders/close_position",
                r#"{"client_order_id":"a","product_id":"BIT-28JUL23-CDE"}"#
            )
            .is_err()
        );
        // Reads place nothing.
        let get = HttpRequest::new("GET", "/api/v3/brokerage/accounts");
        assert_eq!(crate::parse_orders(Venue::Coinbase, &get).unwrap(), vec![]);
    }

    #[test]
    fn order_request_round_trips_through_parse_orders() {
        for price in [None, Some(Decimal::new(50_000, 0))] {
            let spec = OrderSpec {
                symbol: "BTC-USD".into(),
                side: Side::Buy,
                quantity: Decimal::new(1, 2),
                price,
            };
            let req = crate::order_request(Venue::Coinbase, &spec);
            assert_eq!(crate::classify(Venue::Coinbase, &req), EndpointClass::Trade);
            let got = crate::parse_orders(Venue::Coinbase, &req).unwrap();
            assert_eq!(got[0].quantity, Some(spec.quantity));
            assert_eq!(got[0].price, price);
            assert_eq!(got[0].symbol, "BTC-USD");
            // Deterministic client id.
            assert_eq!(crate::order_request(Venue::Coinbase, &spec), req);
        }
    }

    #[test]
    fn key_info_samples() {
        // CBD get-api-key-permissions shape.
        let p = crate::parse_key_info(
            Venue::Coinbase,
            br#"{"can_view":true,"can_trade":true,"can_transfer":false,"portfolio_uuid":"7d7d7d7d-0000-4000-8000-000000000001","portfolio_type":"DEFAULT"}"#,
        )
        .unwrap();
        assert!(p.can(Permission::Read) && p.can(Permission::SpotTrade));
        assert!(!p.can(Permission::Withdraw) && !p.read_only);
        assert_eq!(p.raw_permissions, ["can_view", "can_trade"]);
        assert_eq!(p.ip_restricted, None);
        // CBPY tests/rest/test_data_api.py mock (spells can_withdraw).
        let p = crate::parse_key_info(
            Venue::Coinbase,
            br#"{"can_view":true,"can_trade":false,"can_withdraw":false,"portfolio_uuid":"portfolio1","portfolio_type":"SPOT"}"#,
        )
        .unwrap();
        assert!(p.read_only);
        let p = crate::parse_key_info(
            Venue::Coinbase,
            br#"{"can_view":true,"can_trade":true,"can_transfer":true}"#,
        )
        .unwrap();
        assert!(p.can(Permission::Withdraw) && p.can(Permission::Transfer));
        // Errors.
        assert_eq!(
            crate::parse_key_info(
                Venue::Coinbase,
                br#"{"error":"PERMISSION_DENIED","error_details":"Missing required scopes","message":"Missing required scopes"}"#
            ),
            Err(KeyInfoError::Venue {
                code: "PERMISSION_DENIED".into(),
                message: "Missing required scopes".into()
            })
        );
        assert!(matches!(
            crate::parse_key_info(Venue::Coinbase, br#"{"errors":[{"id":"authentication_error","message":"invalid signature"}]}"#),
            Err(KeyInfoError::Venue { code, .. }) if code == "authentication_error"
        ));
        for bad in [
            &b"Unauthorized"[..],
            br#"{"can_view":true}"#,
            br#"{"can_view":"yes","can_trade":true,"can_transfer":true}"#,
        ] {
            assert!(matches!(
                crate::parse_key_info(Venue::Coinbase, bad),
                Err(KeyInfoError::Malformed(_))
            ));
        }
    }

    #[test]
    fn native_errors_have_the_shapes_clients_map() {
        let e =
            |k: DenialKind| crate::native_error(Venue::Coinbase, &Denial::new(k, "rule `r1`"), 0);
        let a = e(DenialKind::Auth(AuthError::InvalidSignature));
        assert_eq!((a.status, a.body.as_str()), (401, "Unauthorized"));
        let p = e(DenialKind::PermissionDenied);
        assert_eq!(p.status, 403);
        assert!(
            p.body
                .contains(r#""error_details":"Missing required scopes""#)
        );
        assert!(p.body.contains(r#""error":"PERMISSION_DENIED""#));
        assert!(p.body.contains("rule `r1`"));
        let r = e(DenialKind::RateLimited { retry_after_s: 3 });
        assert_eq!(r.status, 429);
        assert!(r.headers.contains(&("retry-after".into(), "3".into())));
        assert!(r.body.contains("rate_limit_exceeded"));
        assert_eq!(e(DenialKind::BadRequest).status, 400);
        assert!(
            e(DenialKind::InsufficientFunds)
                .body
                .contains("INSUFFICIENT_FUND")
        );
        assert_eq!(e(DenialKind::NotFound).status, 404);
        assert_eq!(e(DenialKind::Unavailable).status, 503);
    }
}
