//! keyfence-exchange: each venue's private API, spoken exactly as the venue speaks it.
//!
//! For every venue this crate can sign and verify requests, classify any request into an
//! [`EndpointClass`], parse the orders a trading request carries into normalised [`Order`]s,
//! parse the venue's key-introspection answer into a [`KeyProfile`], and render a denial in
//! the venue's own error shape.
//!
//! **Architecture invariant:** this crate does no I/O and never reads the clock. Time comes in
//! as an argument (`now_ms`), randomness as a `&dyn SecureRandom`.

pub mod cancel;
pub mod crypto;
pub mod params;
pub mod path;

mod binance;
mod bybit;
mod coinbase;
mod kraken;
mod market;
mod okx;

use std::fmt;

pub use keyfence_types::{
    Credential, EndpointClass, KeyProfile, Order, OrderType, Permission, SecretBytes, SecretString,
    Side, Venue,
};
use ring::rand::SecureRandom;

use crate::crypto::{PrivateKey, PublicKey};

pub use market::{balances_request, parse_balances, parse_ticker, spot_symbol, ticker_request};

/// Parameters `POST /api/v5/trade/order-algo` may carry.
pub use okx::ALGO_FIELDS as OKX_ALGO_FIELDS;
/// OKX algo order types (`ordType` of `POST /api/v5/trade/order-algo`) the gateway reads.
pub use okx::ALGO_TYPES as OKX_ALGO_TYPES;
/// The parameters an OKX order (and each `batch-orders` item) may carry; anything else is refused.
pub use okx::ORDER_FIELDS as OKX_ORDER_FIELDS;

/// Largest request body any venue handler accepts (1 MiB).
pub const MAX_BODY: usize = 1 << 20;

/// An HTTP request as received or about to be sent: raw query and body bytes, untouched.
/// `Debug` hides the headers that carry secrets (an OKX passphrase, a bearer JWT) and the body.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HttpRequest {
    /// Upper-case method (`GET`, `POST`, ...).
    pub method: String,
    /// The path as sent, without the query (`/api/v3/order`), still percent-encoded.
    pub path: String,
    /// The raw query string without the leading `?` (empty when none).
    pub query: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret_header(k) {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("headers", &headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Headers whose value is a secret or a replayable credential.
pub fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("passphrase") || name == "authorization"
}

impl HttpRequest {
    /// Build from a method and a target such as `/api/v3/order?symbol=BTCUSDT`.
    pub fn new(method: &str, target: &str) -> Self {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, q),
            None => (target, ""),
        };
        HttpRequest {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.set_header(name, value);
        self
    }

    /// First value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Number of times a header occurs (a header sent twice is ambiguous).
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    /// Replace every occurrence of a header with one value.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.remove_header(name);
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
    }

    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// `path?query`, or just the path when the query is empty.
    pub fn target(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    pub fn body_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.body)
    }
}

// ---------------------------------------------------------------------------------------------
// Keys

/// A key could not be parsed or used. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("invalid key: {0}")]
    Invalid(&'static str),
    #[error("the credential lacks `{0}`, which {1} needs")]
    Missing(&'static str, Venue),
}

/// What a verifier needs to check a request made with one API key.
pub struct VerifyKey {
    pub scheme: VerifyScheme,
    /// OKX only: the passphrase chosen when the key was created.
    pub passphrase: Option<SecretString>,
}

pub enum VerifyScheme {
    /// The HMAC key bytes (Kraken: already base64-decoded).
    Hmac(SecretBytes),
    Public(PublicKey),
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyKey")
            .field("scheme", &self.kind())
            .finish()
    }
}

impl VerifyKey {
    /// `hmac`, `ed25519` or `es256`.
    pub fn kind(&self) -> &'static str {
        match &self.scheme {
            VerifyScheme::Hmac(_) => "hmac",
            VerifyScheme::Public(PublicKey::Ed25519(_)) => "ed25519",
            VerifyScheme::Public(PublicKey::EcdsaP256(_)) => "es256",
        }
    }

    /// An HMAC key from the venue's textual secret (Kraken's is base64; the others are used as-is).
    pub fn hmac(
        venue: Venue,
        secret: &str,
        passphrase: Option<SecretString>,
    ) -> Result<Self, KeyError> {
        let bytes = hmac_key_bytes(venue, secret)?;
        Ok(VerifyKey {
            scheme: VerifyScheme::Hmac(bytes),
            passphrase,
        })
    }

    /// A public key from a `PUBLIC KEY` PEM (Binance Ed25519, Coinbase ES256/Ed25519).
    pub fn public_pem(pem: &str) -> Result<Self, KeyError> {
        Ok(VerifyKey {
            scheme: VerifyScheme::Public(PublicKey::from_pem(pem)?),
            passphrase: None,
        })
    }
}

fn hmac_key_bytes(venue: Venue, secret: &str) -> Result<SecretBytes, KeyError> {
    use base64::Engine as _;
    match venue {
        Venue::Kraken => base64::engine::general_purpose::STANDARD
            .decode(secret.trim())
            .map(SecretBytes::new)
            .map_err(|_| KeyError::Invalid("a Kraken secret is base64")),
        _ => Ok(SecretBytes::new(secret.as_bytes().to_vec())),
    }
}

/// Finds the verification material for an API key (a map in the simulator, the vault in the gateway).
pub trait KeyLookup {
    fn find(&self, api_key: &str) -> Option<&VerifyKey>;
}

impl KeyLookup for std::collections::HashMap<String, VerifyKey> {
    fn find(&self, api_key: &str) -> Option<&VerifyKey> {
        self.get(api_key)
    }
}

/// A key ready to sign requests. Built from a [`Credential`]; holds no `Debug` of its secrets.
pub struct SigningKey {
    pub api_key: String,
    pub(crate) scheme: SigningScheme,
    pub(crate) passphrase: Option<SecretString>,
}

// One SigningKey per credential, built once: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum SigningScheme {
    Hmac(SecretBytes),
    Private(PrivateKey),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("api_key", &self.api_key)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl SigningKey {
    pub fn from_credential(
        venue: Venue,
        cred: &Credential,
        rng: &dyn SecureRandom,
    ) -> Result<Self, KeyError> {
        let scheme = match (&cred.secret, &cred.private_key) {
            (_, Some(pk)) => SigningScheme::Private(PrivateKey::parse(pk.expose(), rng)?),
            (Some(s), None) => SigningScheme::Hmac(hmac_key_bytes(venue, s.expose())?),
            (None, None) => return Err(KeyError::Missing("secret or private_key", venue)),
        };
        if venue == Venue::Okx && cred.passphrase.is_none() {
            return Err(KeyError::Missing("passphrase", venue));
        }
        if venue == Venue::Coinbase && matches!(scheme, SigningScheme::Hmac(_)) {
            return Err(KeyError::Missing("private_key", venue));
        }
        Ok(SigningKey {
            api_key: cred.api_key.clone(),
            scheme,
            passphrase: cred.passphrase.clone(),
        })
    }

    /// The public half, for asymmetric keys (registered with the venue or the gateway).
    pub fn public_key(&self) -> Option<PublicKey> {
        match &self.scheme {
            SigningScheme::Private(k) => Some(k.public_key()),
            SigningScheme::Hmac(_) => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Authentication

/// Facts from outside the request that verification needs.
#[derive(Debug, Clone, Copy)]
pub struct AuthContext<'a> {
    /// Now, in Unix milliseconds, from the caller's clock.
    pub now_ms: i64,
    /// The `host[:port]` this server is reached at (Coinbase binds it into the JWT `uri`).
    /// Besides it, the venue's production host is always accepted.
    pub host: Option<&'a str>,
}

/// A request whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub api_key: String,
    /// The request's timestamp, where the venue sends one.
    pub timestamp_ms: Option<i64>,
    /// Kraken: the nonce in the body (the caller checks it increases per key).
    pub nonce: Option<u64>,
}

/// Why a request did not authenticate. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the request carries no API key")]
    MissingApiKey,
    #[error("unknown API key")]
    UnknownApiKey,
    #[error("the request carries no signature")]
    MissingSignature,
    #[error("the signature is not valid")]
    InvalidSignature,
    #[error("the request carries no timestamp")]
    MissingTimestamp,
    #[error("the timestamp is outside the receive window")]
    TimestampOutsideWindow,
    #[error("the passphrase is not valid")]
    InvalidPassphrase,
    #[error("the nonce is not larger than the last one")]
    InvalidNonce,
    #[error("the source IP is not in the key's allowlist")]
    IpNotAllowed,
    #[error("the key has expired")]
    KeyExpired,
    #[error("malformed authentication: {0}")]
    Malformed(String),
}

/// Verify a request's signature as `venue` would, over the raw bytes as received.
pub fn authenticate(
    venue: Venue,
    req: &HttpRequest,
    ctx: &AuthContext<'_>,
    keys: &dyn KeyLookup,
) -> Result<Authenticated, AuthError> {
    match venue {
        Venue::Binance => binance::authenticate(req, ctx, keys),
        Venue::Bybit => bybit::authenticate(req, ctx, keys),
        Venue::Okx => okx::authenticate(req, ctx, keys),
        Venue::Coinbase => coinbase::authenticate(req, ctx, keys),
        Venue::Kraken => kraken::authenticate(req, ctx, keys),
    }
}

/// The API key a request claims to use, without verifying anything (for logs and lookups).
pub fn claimed_api_key(venue: Venue, req: &HttpRequest) -> Option<String> {
    match venue {
        Venue::Binance => binance::claimed_api_key(req),
        Venue::Bybit => bybit::claimed_api_key(req),
        Venue::Okx => okx::claimed_api_key(req),
        Venue::Coinbase => coinbase::claimed_api_key(req),
        Venue::Kraken => kraken::claimed_api_key(req),
    }
}

// ---------------------------------------------------------------------------------------------
// Signing

/// Facts from outside the request that signing needs.
pub struct SignContext<'a> {
    pub now_ms: i64,
    /// Kraken: the nonce to put in the body (from a per-key monotonic source).
    pub nonce: Option<u64>,
    /// Coinbase: the `host[:port]` the request goes to, for the JWT `uri` claim.
    pub host: &'a str,
    pub rng: &'a dyn SecureRandom,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("cannot sign: {0}")]
    Request(String),
}

/// Sign `req` in place as `venue`'s clients do (adds headers, or the signature parameter).
pub fn sign(
    venue: Venue,
    key: &SigningKey,
    req: &mut HttpRequest,
    ctx: &SignContext<'_>,
) -> Result<(), SignError> {
    match venue {
        Venue::Binance => binance::sign(key, req, ctx),
        Venue::Bybit => bybit::sign(key, req, ctx),
        Venue::Okx => okx::sign(key, req, ctx),
        Venue::Coinbase => coinbase::sign(key, req, ctx),
        Venue::Kraken => kraken::sign(key, req, ctx),
    }
}

// ---------------------------------------------------------------------------------------------
// Classification and orders

/// Classify any request. Paths are canonicalised as the venue would read them first
/// ([`path::canonical`]), so an encoded or disguised withdraw path is still `Withdraw`. A path
/// that cannot be canonicalised is `Unknown`, and so is an ambiguous path ([`path::is_ambiguous`])
/// that would otherwise land in a class policies may allow (public, read, trade, cancel): a
/// disguise never makes a request look harmless.
pub fn classify(venue: Venue, req: &HttpRequest) -> EndpointClass {
    let Some(canon) = path::canonical(&req.path) else {
        return EndpointClass::Unknown;
    };
    let method = req.method.to_ascii_uppercase();
    let class = match venue {
        Venue::Binance => binance::classify(&method, &canon, req),
        Venue::Bybit => bybit::classify(&method, &canon, req),
        Venue::Okx => okx::classify(&method, &canon, req),
        Venue::Coinbase => coinbase::classify(&method, &canon, req),
        Venue::Kraken => kraken::classify(&method, &canon, req),
    };
    let allowable = matches!(
        class,
        EndpointClass::Public | EndpointClass::Read | EndpointClass::Trade | EndpointClass::Cancel
    );
    if allowable && path::is_ambiguous(&req.path) {
        EndpointClass::Unknown
    } else {
        class
    }
}

/// Why the orders in a request could not be read. A request that fails here must not be forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("parameter `{0}` is sent more than once")]
    DuplicateParameter(String),
    #[error("missing parameter `{0}`")]
    MissingParameter(String),
    #[error("invalid value for `{name}`: `{value}`")]
    InvalidParameter { name: String, value: String },
    #[error("malformed request: {0}")]
    Malformed(String),
}

impl From<params::ParamError> for OrderError {
    fn from(e: params::ParamError) -> Self {
        match e {
            params::ParamError::Duplicate(k) => OrderError::DuplicateParameter(k),
            params::ParamError::Malformed(m) => OrderError::Malformed(m),
        }
    }
}

/// Parse the orders a request would place or change (empty for requests that place none).
pub fn parse_orders(venue: Venue, req: &HttpRequest) -> Result<Vec<Order>, OrderError> {
    let Some(canon) = path::canonical(&req.path) else {
        return Err(OrderError::Malformed("path cannot be read".into()));
    };
    let orders = match venue {
        Venue::Binance => binance::parse_orders(&canon, req),
        Venue::Bybit => bybit::parse_orders(&canon, req),
        Venue::Okx => okx::parse_orders(&canon, req),
        Venue::Coinbase => coinbase::parse_orders(&canon, req),
        Venue::Kraken => kraken::parse_orders(&canon, req),
    }?;
    // Fail closed: a trading request whose orders were not read cannot be checked.
    if orders.is_empty() && classify(venue, req) == EndpointClass::Trade {
        return Err(OrderError::Malformed(format!(
            "the orders in `{} {canon}` cannot be read",
            req.method
        )));
    }
    Ok(orders)
}

/// An order to express as a venue-native request (the demo, benchmarks, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSpec {
    /// The venue's own symbol spelling.
    pub symbol: String,
    pub side: Side,
    /// Base quantity.
    pub quantity: rust_decimal::Decimal,
    /// Limit price; `None` for a market order.
    pub price: Option<rust_decimal::Decimal>,
}

/// The venue-native request that places `spec` (unsigned; pass it to [`sign`]).
pub fn order_request(venue: Venue, spec: &OrderSpec) -> HttpRequest {
    match venue {
        Venue::Binance => binance::order_request(spec),
        Venue::Bybit => bybit::order_request(spec),
        Venue::Okx => okx::order_request(spec),
        Venue::Coinbase => coinbase::order_request(spec),
        Venue::Kraken => kraken::order_request(spec),
    }
}

// ---------------------------------------------------------------------------------------------
// Key introspection

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyInfoError {
    #[error("the answer is not the expected JSON: {0}")]
    Malformed(String),
    #[error("the exchange answered with error {code}: {message}")]
    Venue { code: String, message: String },
}

/// The venue's production REST base URL (what keyfence talks to unless told otherwise).
pub fn production_base_url(venue: Venue) -> &'static str {
    match venue {
        Venue::Binance => "https://api.binance.com",
        Venue::Bybit => "https://api.bybit.com",
        Venue::Okx => "https://www.okx.com",
        Venue::Coinbase => "https://api.coinbase.com",
        Venue::Kraken => "https://api.kraken.com",
    }
}

/// The request that asks `venue` what the signing key can do (unsigned; pass it to [`sign`]).
pub fn key_info_request(venue: Venue) -> HttpRequest {
    match venue {
        Venue::Binance => HttpRequest::new("GET", "/sapi/v1/account/apiRestrictions"),
        Venue::Bybit => HttpRequest::new("GET", "/v5/user/query-api"),
        Venue::Okx => HttpRequest::new("GET", "/api/v5/account/config"),
        Venue::Coinbase => HttpRequest::new("GET", "/api/v3/brokerage/key_permissions"),
        Venue::Kraken => HttpRequest::new("POST", "/0/private/GetApiKeyInfo")
            .with_header("content-type", "application/x-www-form-urlencoded"),
    }
}

/// Parse `venue`'s key-introspection answer into a [`KeyProfile`].
pub fn parse_key_info(venue: Venue, body: &[u8]) -> Result<KeyProfile, KeyInfoError> {
    match venue {
        Venue::Binance => binance::parse_key_info(body),
        Venue::Bybit => bybit::parse_key_info(body),
        Venue::Okx => okx::parse_key_info(body),
        Venue::Coinbase => coinbase::parse_key_info(body),
        Venue::Kraken => kraken::parse_key_info(body),
    }
}

// ---------------------------------------------------------------------------------------------
// Native errors

/// Why a request is refused, independent of venue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenialKind {
    Auth(AuthError),
    /// The key (or keyfence's policy) does not allow this action.
    PermissionDenied,
    RateLimited {
        retry_after_s: u64,
    },
    /// Missing, unknown or malformed parameter; bad JSON.
    BadRequest,
    UnknownSymbol,
    InsufficientFunds,
    UnknownOrder,
    /// No such endpoint.
    NotFound,
    PayloadTooLarge,
    /// The exchange (or upstream) is unavailable.
    Unavailable,
    Internal,
}

/// A refusal with a human message (for keyfence policy denials, the message names the rule id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub kind: DenialKind,
    pub message: String,
}

impl Denial {
    pub fn new(kind: DenialKind, message: impl Into<String>) -> Self {
        Denial {
            kind,
            message: message.into(),
        }
    }
}

/// An HTTP answer in the venue's own shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl NativeResponse {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        NativeResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }
}

/// Render a denial as `venue` would, so that its clients (ccxt, the official SDKs) raise their own
/// authentication / permission / rate-limit errors.
pub fn native_error(venue: Venue, denial: &Denial, now_ms: i64) -> NativeResponse {
    let mut resp = match venue {
        Venue::Binance => binance::native_error(denial),
        Venue::Bybit => bybit::native_error(denial, now_ms),
        Venue::Okx => okx::native_error(denial),
        Venue::Coinbase => coinbase::native_error(denial),
        Venue::Kraken => kraken::native_error(denial),
    };
    if let DenialKind::RateLimited { retry_after_s } = denial.kind {
        resp.headers
            .push(("retry-after".into(), retry_after_s.to_string()));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disguise_never_makes_a_request_look_harmless() {
        let cases = [
            // Encoded or disguised withdrawals are still withdrawals.
            (
                Venue::Binance,
                "POST",
                "/sapi/v1/capital%2Fwithdraw/apply",
                EndpointClass::Withdraw,
            ),
            (
                Venue::Binance,
                "POST",
                "/SAPI/v1/capital/withdraw/apply/",
                EndpointClass::Withdraw,
            ),
            (
                Venue::Kraken,
                "POST",
                "/0/private/withdraw",
                EndpointClass::Withdraw,
            ),
            // A harmless class reached through dot segments, `//`, `;` or `%2F` is unknown.
            (
                Venue::Binance,
                "POST",
                "/sapi/v1/capital/withdraw/apply/../../../../../api/v3/order",
                EndpointClass::Unknown,
            ),
            (
                Venue::Binance,
                "POST",
                "/api/v3//order",
                EndpointClass::Unknown,
            ),
            (
                Venue::Bybit,
                "POST",
                "/v5/order/create;x=1",
                EndpointClass::Unknown,
            ),
            (
                Venue::Okx,
                "GET",
                "/api/v5%2Faccount/balance",
                EndpointClass::Unknown,
            ),
            // Case and a trailing slash alone are read as the exchange reads them.
            (
                Venue::Binance,
                "POST",
                "/API/V3/ORDER/",
                EndpointClass::Trade,
            ),
        ];
        for (venue, method, path, want) in cases {
            assert_eq!(
                classify(venue, &HttpRequest::new(method, path)),
                want,
                "{venue} {path}"
            );
        }
    }

    #[test]
    fn a_trading_request_whose_orders_cannot_be_read_is_refused() {
        let req = HttpRequest::new("POST", "/v5/position/trading-stop")
            .with_body(r#"{"category":"linear","symbol":"BTCUSDT","takeProfit":"1"}"#);
        assert_eq!(classify(Venue::Bybit, &req), EndpointClass::Trade);
        assert!(matches!(
            parse_orders(Venue::Bybit, &req),
            Err(OrderError::Malformed(_))
        ));
    }

    #[test]
    fn request_debug_hides_secret_headers_and_the_body() {
        let req = HttpRequest::new("POST", "/api/v5/trade/order")
            .with_header("OK-ACCESS-PASSPHRASE", "pass-phrase-value")
            .with_header("Authorization", "Bearer header.claims.sig")
            .with_header("ok-access-key", "public-key")
            .with_body("secret-body-bytes");
        let shown = format!("{req:?}");
        assert!(!shown.contains("pass-phrase-value"), "{shown}");
        assert!(!shown.contains("header.claims.sig"), "{shown}");
        assert!(!shown.contains("secret-body-bytes"), "{shown}");
        assert!(shown.contains("public-key"), "{shown}");
    }
}
