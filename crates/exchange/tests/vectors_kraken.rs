//! Kraken's published signing examples (`test_data/kraken/vectors.json`, origins in
//! `test_data/kraken/SOURCES.md`), checked through the public API: `sign` must produce the
//! published `API-Sign`, and `authenticate` must accept it and refuse any change.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use keyfence_exchange::{
    AuthContext, AuthError, Credential, HttpRequest, SecretString, SignContext, SigningKey, Venue,
    VerifyKey, authenticate, sign,
};
use ring::rand::SystemRandom;
use serde_json::Value;

struct Vector {
    id: String,
    secret: String,
    uri_path: String,
    nonce: u64,
    body_without_nonce: String,
    encoded_body: String,
    api_sign: String,
}

fn vectors() -> Vec<Vector> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/test_data/kraken/vectors.json");
    let text = std::fs::read_to_string(path).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let s = |x: &Value, k: &str| x[k].as_str().unwrap().to_owned();
    let out: Vec<Vector> = v["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| Vector {
            id: s(x, "id"),
            secret: s(x, "secret"),
            uri_path: s(x, "uri_path"),
            nonce: x["nonce"].as_u64().unwrap(),
            body_without_nonce: s(x, "body_without_nonce"),
            encoded_body: s(x, "encoded_body"),
            api_sign: s(x, "api_sign"),
        })
        .collect();
    assert!(out.len() >= 2, "expected V7 and V8");
    out
}

fn key(secret: &str) -> SigningKey {
    let cred = Credential {
        api_key: "vector-key".into(),
        secret: Some(SecretString::new(secret.to_owned())),
        private_key: None,
        passphrase: None,
    };
    SigningKey::from_credential(Venue::Kraken, &cred, &SystemRandom::new()).unwrap()
}

fn lookup(secret: &str) -> HashMap<String, VerifyKey> {
    let mut m = HashMap::new();
    m.insert(
        "vector-key".to_owned(),
        VerifyKey::hmac(Venue::Kraken, secret, None).unwrap(),
    );
    m
}

fn ctx() -> AuthContext<'static> {
    AuthContext {
        now_ms: 1_616_492_376_594,
        host: None,
    }
}

#[test]
fn sign_produces_the_published_signatures() {
    let rng = SystemRandom::new();
    for v in vectors() {
        for body in [&v.body_without_nonce, &v.encoded_body] {
            let mut req = HttpRequest::new("POST", &v.uri_path)
                .with_header("content-type", "application/x-www-form-urlencoded")
                .with_body(body.as_bytes().to_vec());
            let sc = SignContext {
                now_ms: 0,
                nonce: Some(v.nonce),
                host: "api.kraken.com",
                rng: &rng,
            };
            sign(Venue::Kraken, &key(&v.secret), &mut req, &sc).unwrap();
            assert_eq!(req.body_str().unwrap(), v.encoded_body, "{}", v.id);
            assert_eq!(
                req.header("api-sign"),
                Some(v.api_sign.as_str()),
                "{}",
                v.id
            );
            assert_eq!(req.header("api-key"), Some("vector-key"), "{}", v.id);
        }
    }
}

#[test]
fn authenticate_accepts_the_published_signatures_and_nothing_else() {
    for v in vectors() {
        let req = HttpRequest::new("POST", &v.uri_path)
            .with_header("content-type", "application/x-www-form-urlencoded")
            .with_header("api-key", "vector-key")
            .with_header("api-sign", &v.api_sign)
            .with_body(v.encoded_body.as_bytes().to_vec());
        let ok = authenticate(Venue::Kraken, &req, &ctx(), &lookup(&v.secret)).unwrap();
        assert_eq!(ok.api_key, "vector-key", "{}", v.id);
        assert_eq!(ok.nonce, Some(v.nonce), "{}", v.id);

        let mut tampered = req.clone();
        tampered.body.push(b'0');
        assert_eq!(
            authenticate(Venue::Kraken, &tampered, &ctx(), &lookup(&v.secret)),
            Err(AuthError::InvalidSignature),
            "{}",
            v.id
        );
        let other_secret = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZy1zZWNyZXQtMDAwMDA=";
        assert_eq!(
            authenticate(Venue::Kraken, &req, &ctx(), &lookup(other_secret)),
            Err(AuthError::InvalidSignature),
            "{}",
            v.id
        );
    }
}
