//! Thin wrappers over `ring` for the primitives the venues use, and key-format parsing
//! (PEM, PKCS#8, SEC1, SPKI, Coinbase's base64 Ed25519). No hand-written cryptography.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::SecureRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use zeroize::Zeroizing;

use crate::KeyError;

pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let tag = ring::hmac::sign(&k, msg);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Constant-time check of an HMAC-SHA256 tag.
pub fn verify_hmac_sha256(key: &[u8], msg: &[u8], tag: &[u8]) -> bool {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::verify(&k, msg, tag).is_ok()
}

/// [`verify_hmac_sha256`] with the tag in hex (either case), as Binance and Bybit send it;
/// anything but 64 hex digits is false. Decoded on the stack (no allocation per request).
pub fn verify_hmac_sha256_hex(key: &[u8], msg: &[u8], hex_tag: &[u8]) -> bool {
    let mut tag = [0u8; 32];
    hex::decode_to_slice(hex_tag, &mut tag).is_ok() && verify_hmac_sha256(key, msg, &tag)
}

pub fn hmac_sha512(key: &[u8], msg: &[u8]) -> [u8; 64] {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA512, key);
    let tag = ring::hmac::sign(&k, msg);
    let mut out = [0u8; 64];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Constant-time check of an HMAC-SHA512 tag.
pub fn verify_hmac_sha512(key: &[u8], msg: &[u8], tag: &[u8]) -> bool {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA512, key);
    ring::hmac::verify(&k, msg, tag).is_ok()
}

pub fn sha256(msg: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, msg);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// A private key for an asymmetric scheme.
pub enum PrivateKey {
    Ed25519(Ed25519KeyPair),
    EcdsaP256(EcdsaKeyPair),
}

impl PrivateKey {
    /// Parse a PEM (PKCS#8 `PRIVATE KEY` for Ed25519 or P-256, SEC1 `EC PRIVATE KEY` for P-256),
    /// or Coinbase's raw base64 Ed25519 form (32-byte seed, or 64-byte seed followed by the public key).
    pub fn parse(text: &str, rng: &dyn SecureRandom) -> Result<Self, KeyError> {
        let text = text.trim();
        if let Some((label, der)) = pem_decode(text) {
            return match label.as_str() {
                "PRIVATE KEY" => {
                    if let Ok(kp) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
                        Ok(PrivateKey::Ed25519(kp))
                    } else {
                        EcdsaKeyPair::from_pkcs8(
                            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                            &der,
                            rng,
                        )
                        .map(PrivateKey::EcdsaP256)
                        .map_err(|_| KeyError::Invalid("not an Ed25519 or P-256 PKCS#8 key"))
                    }
                }
                "EC PRIVATE KEY" => {
                    let pkcs8 = sec1_p256_to_pkcs8(&der);
                    EcdsaKeyPair::from_pkcs8(
                        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                        &pkcs8,
                        rng,
                    )
                    .map(PrivateKey::EcdsaP256)
                    .map_err(|_| KeyError::Invalid("not a P-256 SEC1 key"))
                }
                _ => Err(KeyError::Invalid("unsupported PEM label")),
            };
        }
        let raw = Zeroizing::new(
            B64.decode(text)
                .map_err(|_| KeyError::Invalid("neither PEM nor base64"))?,
        );
        match raw.len() {
            32 => Ed25519KeyPair::from_seed_unchecked(&raw)
                .map(PrivateKey::Ed25519)
                .map_err(|_| KeyError::Invalid("bad Ed25519 seed")),
            64 => Ed25519KeyPair::from_seed_and_public_key(&raw[..32], &raw[32..])
                .map(PrivateKey::Ed25519)
                .map_err(|_| KeyError::Invalid("Ed25519 seed and public key do not match")),
            _ => Err(KeyError::Invalid("base64 key is neither 32 nor 64 bytes")),
        }
    }

    /// Sign `msg`. Ed25519 is deterministic; P-256 returns the fixed (r||s) 64-byte form.
    pub fn sign(&self, msg: &[u8], rng: &dyn SecureRandom) -> Result<Vec<u8>, KeyError> {
        match self {
            PrivateKey::Ed25519(kp) => Ok(kp.sign(msg).as_ref().to_vec()),
            PrivateKey::EcdsaP256(kp) => kp
                .sign(rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Invalid("P-256 signing failed")),
        }
    }

    pub fn public_key(&self) -> PublicKey {
        match self {
            PrivateKey::Ed25519(kp) => {
                let mut pk = [0u8; 32];
                pk.copy_from_slice(kp.public_key().as_ref());
                PublicKey::Ed25519(pk)
            }
            PrivateKey::EcdsaP256(kp) => PublicKey::EcdsaP256(kp.public_key().as_ref().to_vec()),
        }
    }
}

/// A public key for verifying asymmetric signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    Ed25519([u8; 32]),
    /// Uncompressed SEC1 point (65 bytes, leading 0x04).
    EcdsaP256(Vec<u8>),
}

const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
const P256_SPKI_PREFIX: [u8; 27] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
];

impl PublicKey {
    /// Parse a `PUBLIC KEY` (SPKI) PEM holding an Ed25519 or P-256 key.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let (label, der) = pem_decode(text.trim()).ok_or(KeyError::Invalid("not PEM"))?;
        if label != "PUBLIC KEY" {
            return Err(KeyError::Invalid("expected a PUBLIC KEY PEM"));
        }
        if der.len() == 44 && der.starts_with(&ED25519_SPKI_PREFIX) {
            let mut pk = [0u8; 32];
            pk.copy_from_slice(&der[12..]);
            return Ok(PublicKey::Ed25519(pk));
        }
        if der.len() == 91 && der.starts_with(&P256_SPKI_PREFIX) {
            return Ok(PublicKey::EcdsaP256(der[26..].to_vec()));
        }
        Err(KeyError::Invalid("public key is neither Ed25519 nor P-256"))
    }

    pub fn to_pem(&self) -> String {
        let der = match self {
            PublicKey::Ed25519(pk) => [&ED25519_SPKI_PREFIX[..], pk].concat(),
            PublicKey::EcdsaP256(pt) => [&P256_SPKI_PREFIX[..26], pt].concat(),
        };
        pem_encode("PUBLIC KEY", &der)
    }

    /// Verify; P-256 signatures are the fixed 64-byte (r||s) form.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            PublicKey::Ed25519(pk) => signature::UnparsedPublicKey::new(&signature::ED25519, pk)
                .verify(msg, sig)
                .is_ok(),
            PublicKey::EcdsaP256(pt) => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, pt)
                    .verify(msg, sig)
                    .is_ok()
            }
        }
    }
}

/// Generate a fresh Ed25519 private key as a PKCS#8 PEM (for tests, the demo and bot credentials).
pub fn generate_ed25519_pem(rng: &dyn SecureRandom) -> Result<String, KeyError> {
    let doc = Ed25519KeyPair::generate_pkcs8(rng)
        .map_err(|_| KeyError::Invalid("Ed25519 key generation failed"))?;
    Ok(pem_encode("PRIVATE KEY", doc.as_ref()))
}

/// Generate a fresh P-256 private key as a SEC1 `EC PRIVATE KEY` PEM, the form Coinbase issues.
pub fn generate_p256_sec1_pem(rng: &dyn SecureRandom) -> Result<String, KeyError> {
    let doc = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, rng)
        .map_err(|_| KeyError::Invalid("P-256 key generation failed"))?;
    let sec1 = pkcs8_p256_to_sec1(doc.as_ref())
        .and_then(|s| with_named_curve(&Zeroizing::new(s)))
        .ok_or(KeyError::Invalid("unexpected PKCS#8"))?;
    Ok(pem_encode("EC PRIVATE KEY", &sec1))
}

/// `[0] { OID prime256v1 }`: the ECPrivateKey `parameters` field.
const P256_SEC1_PARAMS: [u8; 12] = [
    0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
];

/// Inside PKCS#8 the curve is named by the outer algorithm, so ring's ECPrivateKey leaves out
/// its optional `parameters`. A bare SEC1 `EC PRIVATE KEY` has no outer algorithm: OpenSSL (and
/// so ccxt and coinbase-advanced-py, through `cryptography`) refuses one without the curve.
/// Insert `[0] prime256v1` after the private key, as `openssl ecparam -genkey` writes it.
fn with_named_curve(sec1: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let (body, hdr) = match *sec1.get(1)? {
        n if n < 0x80 => (n as usize, 2),
        0x81 => (*sec1.get(2)? as usize, 3),
        _ => return None,
    };
    if sec1.first() != Some(&0x30) || sec1.len() != hdr + body {
        return None;
    }
    // version INTEGER 1, then the private key OCTET STRING.
    let key_at = hdr + 3;
    if sec1.get(hdr..key_at)? != [0x02, 0x01, 0x01] || *sec1.get(key_at)? != 0x04 {
        return None;
    }
    let after_key = key_at + 2 + *sec1.get(key_at + 1)? as usize;
    let rest = sec1.get(after_key..)?;
    if rest.first() == Some(&0xa0) {
        return Some(Zeroizing::new(sec1.to_vec()));
    }
    let mut inner = Zeroizing::new(Vec::with_capacity(body + P256_SEC1_PARAMS.len()));
    inner.extend_from_slice(sec1.get(hdr..after_key)?);
    inner.extend_from_slice(&P256_SEC1_PARAMS);
    inner.extend_from_slice(rest);
    let mut out = Zeroizing::new(vec![0x30]);
    out.extend(der_len(inner.len()));
    out.extend_from_slice(&inner);
    Some(out)
}

// PKCS#8 v1 wrapper for a P-256 ECPrivateKey: SEQUENCE { INTEGER 0, SEQUENCE { ecPublicKey, prime256v1 },
// OCTET STRING { ECPrivateKey } }.
const P256_PKCS8_ALG: [u8; 21] = [
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x03, 0x01, 0x07,
];

fn der_len(len: usize) -> Vec<u8> {
    if len < 0x80 {
        vec![len as u8]
    } else if len < 0x100 {
        vec![0x81, len as u8]
    } else {
        vec![0x82, (len >> 8) as u8, len as u8]
    }
}

fn sec1_p256_to_pkcs8(sec1: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut inner = vec![0x02, 0x01, 0x00];
    inner.extend_from_slice(&P256_PKCS8_ALG);
    inner.push(0x04);
    inner.extend(der_len(sec1.len()));
    inner.extend_from_slice(sec1);
    let mut out = vec![0x30];
    out.extend(der_len(inner.len()));
    out.extend(inner);
    Zeroizing::new(out)
}

/// ring's generated P-256 PKCS#8 is: header, algorithm, OCTET STRING(ECPrivateKey). Take the octet string.
fn pkcs8_p256_to_sec1(pkcs8: &[u8]) -> Option<Vec<u8>> {
    let alg_at = pkcs8
        .windows(P256_PKCS8_ALG.len())
        .position(|w| w == P256_PKCS8_ALG)?;
    let rest = pkcs8.get(alg_at + P256_PKCS8_ALG.len()..)?;
    if rest.first() != Some(&0x04) {
        return None;
    }
    let (len, hdr) = match *rest.get(1)? {
        n if n < 0x80 => (n as usize, 2),
        0x81 => (*rest.get(2)? as usize, 3),
        0x82 => (((*rest.get(2)? as usize) << 8) | *rest.get(3)? as usize, 4),
        _ => return None,
    };
    rest.get(hdr..hdr + len).map(<[u8]>::to_vec)
}

/// Decode a single PEM block into (label, DER).
pub fn pem_decode(text: &str) -> Option<(String, Zeroizing<Vec<u8>>)> {
    let text = text.trim();
    let first = text.lines().next()?.trim();
    let label = first.strip_prefix("-----BEGIN ")?.strip_suffix("-----")?;
    let end = format!("-----END {label}-----");
    let body: Zeroizing<String> = text
        .lines()
        .skip(1)
        .take_while(|l| l.trim() != end)
        .flat_map(|l| l.trim().chars())
        .collect::<String>()
        .into();
    if !text.contains(&end) {
        return None;
    }
    let der = B64.decode(body.as_bytes()).ok()?;
    Some((label.to_owned(), Zeroizing::new(der)))
}

pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    #[test]
    fn a_hex_tag_is_64_hex_digits_of_either_case() {
        let tag = hex::encode(hmac_sha256(b"key", b"message"));
        assert!(verify_hmac_sha256_hex(b"key", b"message", tag.as_bytes()));
        assert!(verify_hmac_sha256_hex(
            b"key",
            b"message",
            tag.to_uppercase().as_bytes()
        ));
        assert!(!verify_hmac_sha256_hex(b"key", b"messagE", tag.as_bytes()));
        assert!(!verify_hmac_sha256_hex(b"kez", b"message", tag.as_bytes()));
        assert!(!verify_hmac_sha256_hex(
            b"key",
            b"message",
            &tag.as_bytes()[..62]
        ));
        assert!(!verify_hmac_sha256_hex(
            b"key",
            b"message",
            format!("{tag}00").as_bytes()
        ));
        assert!(!verify_hmac_sha256_hex(b"key", b"message", b""));
        let mut bad = tag.clone().into_bytes();
        bad[0] = b'g';
        assert!(!verify_hmac_sha256_hex(b"key", b"message", &bad));
    }

    #[test]
    fn generated_keys_sign_and_verify_through_pem() {
        let rng = SystemRandom::new();
        for pem in [
            generate_ed25519_pem(&rng).unwrap(),
            generate_p256_sec1_pem(&rng).unwrap(),
        ] {
            let key = PrivateKey::parse(&pem, &rng).unwrap();
            let sig = key.sign(b"hello", &rng).unwrap();
            let public = PublicKey::from_pem(&key.public_key().to_pem()).unwrap();
            assert!(public.verify(b"hello", &sig));
            assert!(!public.verify(b"hellO", &sig));
        }
    }

    /// OpenSSL-based clients (ccxt, coinbase-advanced-py) refuse a SEC1 key without its curve:
    /// the generated key names prime256v1, in the layout `openssl ecparam -genkey` writes.
    #[test]
    fn generated_p256_sec1_names_its_curve() {
        let rng = SystemRandom::new();
        let pem = generate_p256_sec1_pem(&rng).unwrap();
        let (label, der) = pem_decode(&pem).unwrap();
        assert_eq!(label, "EC PRIVATE KEY");
        // SEQUENCE(119) { INTEGER 1, OCTET STRING(32), [0] prime256v1, [1] BIT STRING(66) }
        assert_eq!(der.len(), 121);
        assert_eq!(&der[..7], &[0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20]);
        assert_eq!(&der[39..51], &P256_SEC1_PARAMS);
        assert_eq!(&der[51..53], &[0xa1, 0x44]);
        // A key that already names its curve is left as it is.
        assert_eq!(with_named_curve(&der).unwrap().as_slice(), &der[..]);
    }

    #[test]
    fn hmac_verification_rejects_a_flipped_bit() {
        let tag = hmac_sha256(b"k", b"m");
        assert!(verify_hmac_sha256(b"k", b"m", &tag));
        let mut bad = tag;
        bad[0] ^= 1;
        assert!(!verify_hmac_sha256(b"k", b"m", &bad));
    }
}
