//! Binance's published signing examples (test_data/binance/vectors.json, sources in SOURCES.md),
//! checked through the public API: `sign` must produce the published signature, and
//! `authenticate` must accept it (and refuse it once a byte changes).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use keyfence_exchange::crypto::{PrivateKey, PublicKey};
use keyfence_exchange::{
    AuthContext, AuthError, Credential, HttpRequest, SecretString, SignContext, SigningKey, Venue,
    VerifyKey, authenticate, sign,
};
use ring::rand::SystemRandom;
use serde_json::Value;

fn vectors() -> Value {
    let text = include_str!("../test_data/binance/vectors.json");
    serde_json::from_str(text).expect("vectors.json is JSON")
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("field `{k}` in {v}"))
}

fn unsigned(v: &Value) -> HttpRequest {
    let mut req = HttpRequest::new(s(v, "method"), s(v, "path"));
    req.query = s(v, "query").to_owned();
    req.body = s(v, "body").as_bytes().to_vec();
    req
}

/// The value of the `signature` parameter that `sign` appended (query, or body when non-empty).
fn appended_signature(req: &HttpRequest) -> String {
    let raw = if req.body.is_empty() {
        req.query.clone()
    } else {
        String::from_utf8(req.body.clone()).unwrap()
    };
    let (_, last) = raw.rsplit_once('&').unwrap();
    let (name, value) = form_urlencoded::parse(last.as_bytes()).next().unwrap();
    assert_eq!(name, "signature");
    value.into_owned()
}

fn check(v: &Value, cred: Credential, verify: VerifyKey, want_sig: &str) {
    let id = s(v, "id");
    let rng = SystemRandom::new();
    let ts = v["timestamp_ms"].as_i64().unwrap();
    let key = SigningKey::from_credential(Venue::Binance, &cred, &rng).unwrap();
    let mut req = unsigned(v);
    let ctx = SignContext {
        now_ms: ts,
        nonce: None,
        host: "",
        rng: &rng,
    };
    sign(Venue::Binance, &key, &mut req, &ctx).unwrap();
    assert_eq!(appended_signature(&req), want_sig, "{id}: sign");
    // The request already carried its timestamp: signing must not add another.
    let body = String::from_utf8_lossy(&req.body).into_owned();
    let stamps = req.query.matches("timestamp=").count() + body.matches("timestamp=").count();
    assert_eq!(stamps, 1, "{id}");

    let mut keys = HashMap::new();
    keys.insert(cred.api_key.clone(), verify);
    let actx = AuthContext {
        now_ms: ts + 100,
        host: None,
    };
    let ok = authenticate(Venue::Binance, &req, &actx, &keys).unwrap();
    assert_eq!(ok.api_key, cred.api_key, "{id}");
    assert_eq!(ok.timestamp_ms, Some(ts), "{id}");

    let mut tampered = req.clone();
    tampered.query = tampered.query.replacen("side=", "side=X", 1);
    assert_eq!(
        authenticate(Venue::Binance, &tampered, &actx, &keys),
        Err(AuthError::InvalidSignature),
        "{id}: tampered"
    );
}

#[test]
fn published_hmac_vectors_sign_and_verify() {
    let all = vectors();
    let list = all["hmac"].as_array().unwrap();
    assert_eq!(list.len(), 4);
    for v in list {
        let secret = s(v, "secret");
        let cred = Credential {
            api_key: s(v, "api_key").to_owned(),
            secret: Some(SecretString::new(secret.to_owned())),
            private_key: None,
            passphrase: None,
        };
        let verify = VerifyKey::hmac(Venue::Binance, secret, None).unwrap();
        check(v, cred, verify, s(v, "signature"));
    }
}

#[test]
fn ed25519_fix_logon_vector() {
    let all = vectors();
    let rng = SystemRandom::new();
    for v in all["ed25519_raw"].as_array().unwrap() {
        let key = PrivateKey::parse(s(v, "private_key_pem"), &rng).unwrap();
        let payload = hex::decode(s(v, "payload_hex")).unwrap();
        let sig = key.sign(&payload, &rng).unwrap();
        assert_eq!(B64.encode(&sig), s(v, "signature_b64"), "{}", s(v, "id"));
        let public = PublicKey::from_pem(&key.public_key().to_pem()).unwrap();
        assert!(public.verify(&payload, &sig));
        assert!(!public.verify(b"A\x01EXAMPLE\x01SPOT\x012", &sig));
    }
}

#[test]
fn ed25519_rest_vector_self_generated() {
    let all = vectors();
    let rng = SystemRandom::new();
    for v in all["ed25519_rest"].as_array().unwrap() {
        assert_eq!(s(v, "origin"), "self-generated (not official)");
        let pem = s(v, "private_key_pem");
        let public = PrivateKey::parse(pem, &rng).unwrap().public_key().to_pem();
        let cred = Credential {
            api_key: s(v, "api_key").to_owned(),
            secret: None,
            private_key: Some(SecretString::new(pem.to_owned())),
            passphrase: None,
        };
        let verify = VerifyKey::public_pem(&public).unwrap();
        check(v, cred, verify, s(v, "signature_b64"));
    }
}
