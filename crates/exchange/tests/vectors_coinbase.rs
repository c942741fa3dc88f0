//! Coinbase vectors from `test_data/coinbase/` (origins in `SOURCES.md`), checked through the
//! public API only.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use keyfence_exchange::crypto::{PrivateKey, PublicKey};
use keyfence_exchange::{
    AuthContext, AuthError, Credential, HttpRequest, SecretString, SignContext, SigningKey, Venue,
    VerifyKey, authenticate, sign,
};
use ring::rand::SystemRandom;
use serde_json::Value;

fn data() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/test_data/coinbase/vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_else(|| panic!("{k}")).to_owned()
}

fn signing_key(name: &str, private: &str) -> SigningKey {
    let cred = Credential {
        api_key: name.to_owned(),
        secret: None,
        private_key: Some(SecretString::new(private.to_owned())),
        passphrase: None,
    };
    SigningKey::from_credential(Venue::Coinbase, &cred, &SystemRandom::new()).unwrap()
}

fn lookup(name: &str, public: &PublicKey) -> HashMap<String, VerifyKey> {
    HashMap::from([(
        name.to_owned(),
        VerifyKey::public_pem(&public.to_pem()).unwrap(),
    )])
}

#[test]
fn s5_verifies_and_signing_reproduces_it() {
    let d = data();
    let rng = SystemRandom::new();
    for v in d["jwt"].as_array().unwrap() {
        let name = s(v, "key_name");
        let jwt = s(v, "jwt");
        let key = signing_key(&name, &s(v, "private_key"));
        let public = key.public_key().unwrap();
        let expected_pk = STANDARD.decode(s(v, "public_key_b64")).unwrap();
        assert_eq!(
            public,
            PublicKey::Ed25519(expected_pk.try_into().unwrap()),
            "{}",
            s(v, "id")
        );
        let keys = lookup(&name, &public);
        let host = s(v, "host");

        // Verify the published token at the vector's time.
        let req = HttpRequest::new(&s(v, "method"), &s(v, "path"))
            .with_header("authorization", &format!("Bearer {jwt}"));
        let ctx = AuthContext {
            now_ms: v["verify_at_ms"].as_i64().unwrap(),
            host: Some(&host),
        };
        let ok = authenticate(Venue::Coinbase, &req, &ctx, &keys).unwrap();
        assert_eq!(ok.api_key, name);
        // Ten minutes later it is stale.
        let late = AuthContext {
            now_ms: ctx.now_ms + 600_000,
            host: Some(&host),
        };
        assert_eq!(
            authenticate(Venue::Coinbase, &req, &late, &keys),
            Err(AuthError::TimestampOutsideWindow)
        );

        // The parts decode to the documented header and payload.
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(parts[0]).unwrap(),
            s(v, "header").as_bytes()
        );
        assert_eq!(
            URL_SAFE_NO_PAD.decode(parts[1]).unwrap(),
            s(v, "payload").as_bytes()
        );

        // `sign` makes the same payload byte for byte; the header differs only in the nonce.
        let mut mine = HttpRequest::new(&s(v, "method"), &s(v, "path"));
        let sc = SignContext {
            now_ms: v["now_ms"].as_i64().unwrap(),
            nonce: None,
            host: &host,
            rng: &rng,
        };
        sign(Venue::Coinbase, &key, &mut mine, &sc).unwrap();
        let token = mine
            .header("authorization")
            .unwrap()
            .strip_prefix("Bearer ")
            .unwrap()
            .to_owned();
        let my_parts: Vec<&str> = token.split('.').collect();
        assert_eq!(my_parts[1], parts[1]);
        let my_header = String::from_utf8(URL_SAFE_NO_PAD.decode(my_parts[0]).unwrap()).unwrap();
        let my_nonce = serde_json::from_str::<Value>(&my_header).unwrap()["nonce"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(my_nonce.len(), 32);
        assert_eq!(my_header.replace(&my_nonce, &s(v, "nonce")), s(v, "header"));
        assert!(authenticate(Venue::Coinbase, &mine, &ctx, &keys).is_ok());

        // Ed25519 is deterministic: the vector's signing input signs to the vector's signature.
        let pk = PrivateKey::parse(&s(v, "private_key"), &rng).unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        let sig = pk.sign(input.as_bytes(), &rng).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.encode(sig), parts[2]);
    }
}

#[test]
fn sdk_test_keys_sign_tokens_their_public_key_accepts() {
    let d = data();
    let rng = SystemRandom::new();
    let keys_data = d["keys"].as_array().unwrap();
    for v in keys_data {
        let name = s(v, "key_name");
        let key = signing_key(&name, &s(v, "private_key"));
        let mut req = HttpRequest::new("POST", "/api/v3/brokerage/orders").with_body("{}");
        let sc = SignContext {
            now_ms: 1_700_000_000_000,
            nonce: None,
            host: "api.coinbase.com",
            rng: &rng,
        };
        sign(Venue::Coinbase, &key, &mut req, &sc).unwrap();
        let token = req.header("authorization").unwrap().to_owned();
        let header = token
            .strip_prefix("Bearer ")
            .and_then(|t| t.split('.').next())
            .unwrap();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        assert_eq!(header["alg"], v["alg"], "{}", s(v, "id"));
        let ctx = AuthContext {
            now_ms: 1_700_000_001_000,
            host: None,
        };
        let good = lookup(&name, &key.public_key().unwrap());
        assert!(
            authenticate(Venue::Coinbase, &req, &ctx, &good).is_ok(),
            "{}",
            s(v, "id")
        );
        // Any other key of the set with a different public key refuses it.
        for other in keys_data {
            let ok = signing_key(&name, &s(other, "private_key"));
            if ok.public_key() == key.public_key() {
                continue;
            }
            let bad = lookup(&name, &ok.public_key().unwrap());
            assert_eq!(
                authenticate(Venue::Coinbase, &req, &ctx, &bad),
                Err(AuthError::InvalidSignature)
            );
        }
    }
}
