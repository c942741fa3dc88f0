//! Bybit v5 signing vectors (`test_data/bybit/vectors.json`, origins in `SOURCES.md`), checked
//! through the public API: `sign` must produce them and `authenticate` must accept them.

use std::collections::HashMap;

use keyfence_exchange::{
    AuthContext, AuthError, Credential, HttpRequest, SecretString, SignContext, SigningKey, Venue,
    VerifyKey, authenticate, sign,
};
use ring::rand::SystemRandom;
use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    origin: String,
    api_key: String,
    secret: String,
    method: String,
    path: String,
    query: String,
    body: String,
    timestamp_ms: i64,
    recv_window: String,
    payload: String,
    signature: String,
}

fn load() -> Result<Vec<Vector>, String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/test_data/bybit/vectors.json");
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let f: File = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    if f.vectors.is_empty() {
        return Err(format!("{path} holds no vectors"));
    }
    Ok(f.vectors)
}

fn request(v: &Vector) -> HttpRequest {
    let mut req = HttpRequest::new(&v.method, &v.path).with_body(v.body.clone());
    req.query = v.query.clone();
    req.set_header("X-BAPI-RECV-WINDOW", &v.recv_window);
    req
}

#[test]
fn every_vector_is_labelled() {
    for v in load().unwrap() {
        assert!(
            v.origin == "self-generated (not official)" || v.origin.starts_with("official"),
            "{}: origin `{}`",
            v.name,
            v.origin
        );
        let rest = if v.method == "GET" { &v.query } else { &v.body };
        assert_eq!(
            v.payload,
            format!("{}{}{}{}", v.timestamp_ms, v.api_key, v.recv_window, rest),
            "{}",
            v.name
        );
    }
}

#[test]
fn sign_produces_every_vector() {
    let rng = SystemRandom::new();
    for v in load().unwrap() {
        let cred = Credential {
            api_key: v.api_key.clone(),
            secret: Some(SecretString::new(v.secret.clone())),
            private_key: None,
            passphrase: None,
        };
        let key = SigningKey::from_credential(Venue::Bybit, &cred, &rng).unwrap();
        let mut req = request(&v);
        let ctx = SignContext {
            now_ms: v.timestamp_ms,
            nonce: None,
            host: "api.bybit.com",
            rng: &rng,
        };
        sign(Venue::Bybit, &key, &mut req, &ctx).unwrap();
        assert_eq!(
            req.header("x-bapi-sign"),
            Some(v.signature.as_str()),
            "{}",
            v.name
        );
        assert_eq!(req.header("x-bapi-api-key"), Some(v.api_key.as_str()));
        assert_eq!(
            req.header("x-bapi-timestamp"),
            Some(v.timestamp_ms.to_string().as_str())
        );
        assert_eq!(
            req.header("x-bapi-recv-window"),
            Some(v.recv_window.as_str())
        );
        assert_eq!(req.body, v.body.as_bytes(), "the body is signed as is");
    }
}

#[test]
fn authenticate_accepts_every_vector_and_refuses_a_changed_one() {
    for v in load().unwrap() {
        let keys: HashMap<String, VerifyKey> = HashMap::from([(
            v.api_key.clone(),
            VerifyKey::hmac(Venue::Bybit, &v.secret, None).unwrap(),
        )]);
        let mut req = request(&v);
        req.set_header("X-BAPI-API-KEY", &v.api_key);
        req.set_header("X-BAPI-TIMESTAMP", &v.timestamp_ms.to_string());
        req.set_header("X-BAPI-SIGN", &v.signature);
        req.set_header("X-BAPI-SIGN-TYPE", "2");
        let ctx = AuthContext {
            now_ms: v.timestamp_ms + 100,
            host: None,
        };
        let ok = authenticate(Venue::Bybit, &req, &ctx, &keys).unwrap();
        assert_eq!(ok.api_key, v.api_key);
        assert_eq!(ok.timestamp_ms, Some(v.timestamp_ms));

        let mut flipped = v.signature.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let mut bad = req.clone();
        bad.set_header("X-BAPI-SIGN", std::str::from_utf8(&flipped).unwrap());
        assert_eq!(
            authenticate(Venue::Bybit, &bad, &ctx, &keys),
            Err(AuthError::InvalidSignature),
            "{}",
            v.name
        );
        let wrong = HashMap::from([(
            v.api_key.clone(),
            VerifyKey::hmac(Venue::Bybit, "another-secret", None).unwrap(),
        )]);
        assert_eq!(
            authenticate(Venue::Bybit, &req, &ctx, &wrong),
            Err(AuthError::InvalidSignature)
        );
    }
}
