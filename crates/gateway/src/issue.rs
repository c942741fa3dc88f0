//! Bot credentials in each venue's own shape, so a bot's client library accepts them unchanged.
//!
//! | venue    | api_key                         | secret material                     |
//! |----------|---------------------------------|-------------------------------------|
//! | binance  | 64 letters/digits               | 64-char HMAC secret, or the bot's own Ed25519 public key |
//! | bybit    | 18 letters/digits               | 36-char HMAC secret                 |
//! | okx      | UUID                            | 32 hex HMAC secret + passphrase     |
//! | coinbase | `organizations/keyfence/apiKeys/UUID` | EC P-256 private key (PEM, SEC1); keyfence keeps only the public half |
//! | kraken   | 56 chars                        | base64 of a 64-byte HMAC secret     |

use keyfence_exchange::crypto::{PrivateKey, PublicKey, generate_p256_sec1_pem};
use keyfence_exchange::{KeyError, VerifyKey};
use keyfence_types::{SecretString, Venue};
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A freshly issued credential: shown to the user once, then only its verification half is kept.
pub struct Issued {
    pub api_key: String,
    pub secret: Option<SecretString>,
    pub passphrase: Option<SecretString>,
    pub private_key: Option<SecretString>,
    /// What keyfence keeps to verify the bot (sealed before it is stored).
    pub keep: Kept,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

impl Issued {
    /// `{"api_key", "secret", "passphrase", "private_key"}` with the fields the venue uses.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("api_key".into(), self.api_key.clone().into());
        for (k, v) in [
            ("secret", &self.secret),
            ("passphrase", &self.passphrase),
            ("private_key", &self.private_key),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), v.expose().to_owned().into());
            }
        }
        serde_json::Value::Object(m)
    }
}

/// The verification half of a bot credential. HMAC venues need the secret itself (sealed in the
/// store); asymmetric ones only a public key (stored in the clear).
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct Kept {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

impl Kept {
    /// Whether this needs sealing (holds a secret).
    pub fn is_secret(&self) -> bool {
        self.secret.is_some() || self.passphrase.is_some()
    }

    pub fn verify_key(&self, venue: Venue) -> Result<VerifyKey, KeyError> {
        match (&self.secret, &self.public_key) {
            (Some(s), _) => VerifyKey::hmac(
                venue,
                s,
                self.passphrase
                    .as_ref()
                    .map(|p| SecretString::new(p.clone())),
            ),
            (None, Some(pem)) => VerifyKey::public_pem(pem),
            (None, None) => Err(KeyError::Invalid("a bot credential without a key")),
        }
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX_UPPER: &[u8] = b"0123456789ABCDEF";

fn random_from(alphabet: &[u8], len: usize, rng: &dyn SecureRandom) -> Result<String, KeyError> {
    // Rejection sampling keeps every character equally likely.
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        rng.fill(&mut buf)
            .map_err(|_| KeyError::Invalid("no randomness"))?;
        for b in buf {
            if (b as usize) < limit && out.len() < len {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    Ok(out)
}

fn uuid(rng: &dyn SecureRandom) -> Result<String, KeyError> {
    let mut b = [0u8; 16];
    rng.fill(&mut b)
        .map_err(|_| KeyError::Invalid("no randomness"))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// Issue a new credential for a bot on `venue`. For Binance, `bot_public_key` (a `PUBLIC KEY`
/// PEM of an Ed25519 key the bot holds) registers that key instead of issuing an HMAC secret.
pub fn issue(
    venue: Venue,
    bot_public_key: Option<&str>,
    rng: &dyn SecureRandom,
) -> Result<Issued, KeyError> {
    let secret = |s: String| Some(SecretString::new(s));
    let hmac = |api_key: String, sec: String, passphrase: Option<String>| Issued {
        api_key,
        secret: secret(sec.clone()),
        passphrase: passphrase.clone().map(SecretString::new),
        private_key: None,
        keep: Kept {
            secret: Some(sec),
            passphrase,
            public_key: None,
        },
    };
    if bot_public_key.is_some() && venue != Venue::Binance {
        return Err(KeyError::Invalid(
            "only Binance bots can register their own Ed25519 public key",
        ));
    }
    Ok(match venue {
        Venue::Binance => match bot_public_key {
            Some(pem) => {
                let pk = PublicKey::from_pem(pem)?;
                if !matches!(pk, PublicKey::Ed25519(_)) {
                    return Err(KeyError::Invalid("a Binance bot key must be Ed25519"));
                }
                Issued {
                    api_key: random_from(ALNUM, 64, rng)?,
                    secret: None,
                    passphrase: None,
                    private_key: None,
                    keep: Kept {
                        secret: None,
                        passphrase: None,
                        public_key: Some(pk.to_pem()),
                    },
                }
            }
            None => hmac(
                random_from(ALNUM, 64, rng)?,
                random_from(ALNUM, 64, rng)?,
                None,
            ),
        },
        Venue::Bybit => hmac(
            random_from(ALNUM, 18, rng)?,
            random_from(ALNUM, 36, rng)?,
            None,
        ),
        Venue::Okx => hmac(
            uuid(rng)?,
            random_from(HEX_UPPER, 32, rng)?,
            Some(random_from(ALNUM, 20, rng)?),
        ),
        Venue::Kraken => {
            use base64::Engine as _;
            let mut raw = zeroize::Zeroizing::new([0u8; 64]);
            rng.fill(raw.as_mut())
                .map_err(|_| KeyError::Invalid("no randomness"))?;
            hmac(
                random_from(ALNUM, 56, rng)?,
                base64::engine::general_purpose::STANDARD.encode(&raw[..]),
                None,
            )
        }
        Venue::Coinbase => {
            let pem = generate_p256_sec1_pem(rng)?;
            let public = PrivateKey::parse(&pem, rng)?.public_key().to_pem();
            Issued {
                api_key: format!("organizations/keyfence/apiKeys/{}", uuid(rng)?),
                secret: None,
                passphrase: None,
                private_key: secret(pem),
                keep: Kept {
                    secret: None,
                    passphrase: None,
                    public_key: Some(public),
                },
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use keyfence_exchange::{
        AuthContext, Credential, HttpRequest, SignContext, SigningKey, authenticate, sign,
    };
    use std::collections::HashMap;

    /// Every venue's issued credential signs a request (as the bot's client would) that the
    /// kept half verifies.
    #[test]
    fn issued_credentials_sign_what_the_kept_half_verifies() {
        let rng = ring::rand::SystemRandom::new();
        for venue in Venue::ALL {
            let issued = issue(venue, None, &rng).unwrap();
            let cred = Credential {
                api_key: issued.api_key.clone(),
                secret: issued.secret.clone(),
                passphrase: issued.passphrase.clone(),
                private_key: issued.private_key.clone(),
            };
            let signer = SigningKey::from_credential(venue, &cred, &rng).unwrap();
            let mut req = keyfence_exchange::key_info_request(venue);
            let now = 1_700_000_000_000;
            sign(
                venue,
                &signer,
                &mut req,
                &SignContext {
                    now_ms: now,
                    nonce: Some(1),
                    host: "127.0.0.1:8701",
                    rng: &rng,
                },
            )
            .unwrap();
            let mut keys = HashMap::new();
            keys.insert(
                issued.api_key.clone(),
                issued.keep.verify_key(venue).unwrap(),
            );
            let ok = authenticate(
                venue,
                &req,
                &AuthContext {
                    now_ms: now,
                    host: Some("127.0.0.1:8701"),
                },
                &keys,
            );
            assert!(ok.is_ok(), "{venue}: {ok:?}");
            let json = issued.to_json().to_string();
            assert!(json.contains(&issued.api_key));
            let _: HttpRequest = req;
        }
    }

    #[test]
    fn a_binance_bot_may_register_its_own_ed25519_key() {
        let rng = ring::rand::SystemRandom::new();
        let pem = keyfence_exchange::crypto::generate_ed25519_pem(&rng).unwrap();
        let public = PrivateKey::parse(&pem, &rng).unwrap().public_key().to_pem();
        let issued = issue(Venue::Binance, Some(&public), &rng).unwrap();
        assert!(issued.secret.is_none() && issued.private_key.is_none());
        assert!(!issued.keep.is_secret());
        assert!(issue(Venue::Bybit, Some(&public), &rng).is_err());
    }

    #[test]
    fn random_strings_use_the_whole_alphabet_only() {
        let rng = ring::rand::SystemRandom::new();
        let s = random_from(HEX_UPPER, 400, &rng).unwrap();
        assert_eq!(s.len(), 400);
        assert!(s.bytes().all(|b| HEX_UPPER.contains(&b)));
        assert_ne!(
            random_from(ALNUM, 32, &rng).unwrap(),
            random_from(ALNUM, 32, &rng).unwrap()
        );
    }
}
