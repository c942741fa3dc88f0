//! kraken: not yet implemented. Every function fails closed.

use keyfence_types::{EndpointClass, KeyProfile, Order};

use crate::{
    AuthContext, AuthError, Authenticated, Denial, HttpRequest, KeyInfoError, KeyLookup,
    NativeResponse, OrderError, OrderSpec, SignContext, SignError, SigningKey,
};

pub(crate) fn claimed_api_key(_req: &HttpRequest) -> Option<String> {
    None
}

pub(crate) fn authenticate(
    _req: &HttpRequest,
    _ctx: &AuthContext<'_>,
    _keys: &dyn KeyLookup,
) -> Result<Authenticated, AuthError> {
    Err(AuthError::Malformed("not implemented".into()))
}

pub(crate) fn sign(
    _key: &SigningKey,
    _req: &mut HttpRequest,
    _ctx: &SignContext<'_>,
) -> Result<(), SignError> {
    Err(SignError::Request("not implemented".into()))
}

pub(crate) fn classify(_method: &str, _path: &str, _req: &HttpRequest) -> EndpointClass {
    EndpointClass::Unknown
}

pub(crate) fn parse_orders(_path: &str, _req: &HttpRequest) -> Result<Vec<Order>, OrderError> {
    Err(OrderError::Malformed("not implemented".into()))
}

pub(crate) fn parse_key_info(_body: &[u8]) -> Result<KeyProfile, KeyInfoError> {
    Err(KeyInfoError::Malformed("not implemented".into()))
}

pub(crate) fn native_error(denial: &Denial) -> NativeResponse {
    NativeResponse::json(403, serde_json::json!({ "error": denial.message }))
}

pub(crate) fn order_request(_spec: &OrderSpec) -> HttpRequest {
    HttpRequest::new("POST", "/not-implemented")
}
