//! OKX signing vectors from `test_data/okx/vectors.json` (self-generated, not official; see
//! `test_data/okx/SOURCES.md`), checked through the crate's public API: `sign` must produce the
//! vector's headers, and `authenticate` must accept the signed request and refuse a changed one.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

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
    id: String,
    origin: String,
    api_key: String,
    secret: String,
    passphrase: String,
    now_ms: i64,
    timestamp: String,
    method: String,
    target: String,
    body: String,
    prehash: String,
    signature: String,
}

fn load() -> Vec<Vector> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/test_data/okx/vectors.json");
    let text = std::fs::read_to_string(path).unwrap();
    let file: File = serde_json::from_str(&text).unwrap();
    assert!(!file.vectors.is_empty());
    file.vectors
}

fn signed(v: &Vector, secret: &str) -> HttpRequest {
    let rng = SystemRandom::new();
    let cred = Credential {
        api_key: v.api_key.clone(),
        secret: Some(SecretString::new(secret.to_owned())),
        private_key: None,
        passphrase: Some(SecretString::new(v.passphrase.clone())),
    };
    let key = SigningKey::from_credential(Venue::Okx, &cred, &rng).unwrap();
    let mut req = HttpRequest::new(&v.method, &v.target).with_body(v.body.clone());
    let ctx = SignContext {
        now_ms: v.now_ms,
        nonce: None,
        host: "www.okx.com",
        rng: &rng,
    };
    sign(Venue::Okx, &key, &mut req, &ctx).unwrap();
    req
}

fn keys(v: &Vector) -> HashMap<String, VerifyKey> {
    let mut m = HashMap::new();
    m.insert(
        v.api_key.clone(),
        VerifyKey::hmac(
            Venue::Okx,
            &v.secret,
            Some(SecretString::new(v.passphrase.clone())),
        )
        .unwrap(),
    );
    m
}

#[test]
fn vectors_are_labelled_self_generated() {
    for v in load() {
        assert_eq!(v.origin, "self-generated (not official)", "{}", v.id);
        assert_eq!(
            v.prehash,
            format!("{}{}{}{}", v.timestamp, v.method, v.target, v.body),
            "{}",
            v.id
        );
    }
}

#[test]
fn sign_produces_the_vector_headers() {
    for v in load() {
        let req = signed(&v, &v.secret);
        assert_eq!(
            req.header("ok-access-sign"),
            Some(v.signature.as_str()),
            "{}",
            v.id
        );
        assert_eq!(
            req.header("ok-access-timestamp"),
            Some(v.timestamp.as_str()),
            "{}",
            v.id
        );
        assert_eq!(
            req.header("ok-access-key"),
            Some(v.api_key.as_str()),
            "{}",
            v.id
        );
        assert_eq!(
            req.header("ok-access-passphrase"),
            Some(v.passphrase.as_str()),
            "{}",
            v.id
        );
        assert_eq!(req.body, v.body.as_bytes(), "{}", v.id);
    }
}

#[test]
fn verify_accepts_the_vector_and_refuses_changes() {
    for v in load() {
        let ctx = AuthContext {
            now_ms: v.now_ms + 5_000,
            host: None,
        };
        // The request exactly as a client would send it, headers written by hand.
        let req = HttpRequest::new(&v.method, &v.target)
            .with_body(v.body.clone())
            .with_header("OK-ACCESS-KEY", &v.api_key)
            .with_header("OK-ACCESS-SIGN", &v.signature)
            .with_header("OK-ACCESS-TIMESTAMP", &v.timestamp)
            .with_header("OK-ACCESS-PASSPHRASE", &v.passphrase)
            .with_header("x-simulated-trading", "1");
        let ok = authenticate(Venue::Okx, &req, &ctx, &keys(&v)).unwrap();
        assert_eq!(ok.api_key, v.api_key, "{}", v.id);

        let wrong_secret = signed(&v, "some-other-secret");
        assert_eq!(
            authenticate(Venue::Okx, &wrong_secret, &ctx, &keys(&v)),
            Err(AuthError::InvalidSignature),
            "{}",
            v.id
        );

        let mut changed = req.clone();
        changed.body.extend_from_slice(b" ");
        assert_eq!(
            authenticate(Venue::Okx, &changed, &ctx, &keys(&v)),
            Err(AuthError::InvalidSignature),
            "{}",
            v.id
        );

        let stale = AuthContext {
            now_ms: v.now_ms + 60_000,
            host: None,
        };
        assert_eq!(
            authenticate(Venue::Okx, &req, &stale, &keys(&v)),
            Err(AuthError::TimestampOutsideWindow),
            "{}",
            v.id
        );
    }
}
