//! The gateway's own secrets, kept inside the vault document:
//!
//! - an age X25519 identity that seals bot credentials (the store keeps them sealed, so a copied
//!   database is useless without the vault), and
//! - the Ed25519 key that signs journal checkpoints.
//!
//! Both are created the first time the gateway or `bot add` needs them.

use std::str::FromStr as _;

use age::secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::{Key, VaultError};

/// The serialised form, inside the encryption boundary only.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoredGateway {
    /// `AGE-SECRET-KEY-1...`
    seal_identity: String,
    /// base64 of the PKCS#8 document of the Ed25519 checkpoint key.
    journal_key: String,
}

/// The gateway's secrets, decrypted. `Debug` shows only public halves.
pub struct GatewaySecrets {
    seal: Key,
    recipient: String,
    journal_pkcs8: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for GatewaySecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewaySecrets")
            .field("recipient", &self.recipient)
            .finish_non_exhaustive()
    }
}

impl GatewaySecrets {
    pub(crate) fn generate() -> Result<Self, VaultError> {
        let id = age::x25519::Identity::generate();
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| VaultError::Encrypt)?;
        Ok(Self::from_parts(
            id,
            Zeroizing::new(pkcs8.as_ref().to_vec()),
        ))
    }

    fn from_parts(id: age::x25519::Identity, journal_pkcs8: Zeroizing<Vec<u8>>) -> Self {
        let recipient = id.to_public().to_string();
        GatewaySecrets {
            seal: Key::Identity(vec![id]),
            recipient,
            journal_pkcs8,
        }
    }

    pub(crate) fn to_stored(&self) -> Result<StoredGateway, VaultError> {
        use base64::Engine as _;
        let Key::Identity(ids) = &self.seal else {
            return Err(VaultError::Encrypt);
        };
        let id = ids.first().ok_or(VaultError::Encrypt)?;
        Ok(StoredGateway {
            seal_identity: id.to_string().expose_secret().to_owned(),
            journal_key: base64::engine::general_purpose::STANDARD.encode(&self.journal_pkcs8),
        })
    }

    pub(crate) fn from_stored(s: &StoredGateway) -> Result<Self, VaultError> {
        use base64::Engine as _;
        let id = age::x25519::Identity::from_str(&s.seal_identity)
            .map_err(|_| VaultError::BadContent("bad gateway identity".into()))?;
        let pkcs8 = base64::engine::general_purpose::STANDARD
            .decode(s.journal_key.as_bytes())
            .map_err(|_| VaultError::BadContent("bad journal key".into()))?;
        Ok(Self::from_parts(id, Zeroizing::new(pkcs8)))
    }

    /// The `age1...` recipient bot secrets are sealed to (public).
    pub fn recipient(&self) -> &str {
        &self.recipient
    }

    /// Encrypt a bot's secret material (ASCII-armored age).
    pub fn seal(&self, plaintext: &[u8]) -> Result<String, VaultError> {
        let bytes = self.seal.encrypt(plaintext)?;
        String::from_utf8(bytes).map_err(|_| VaultError::Encrypt)
    }

    /// Decrypt what [`GatewaySecrets::seal`] made.
    pub fn unseal(&self, armored: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        self.seal.decrypt(armored.as_bytes())
    }

    /// The PKCS#8 document of the Ed25519 key that signs journal checkpoints.
    pub fn journal_key_pkcs8(&self) -> &[u8] {
        &self.journal_pkcs8
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seal_round_trips_and_survives_storage() {
        let g = GatewaySecrets::generate().unwrap();
        let sealed = g.seal(b"bot-secret-value").unwrap();
        assert!(!sealed.contains("bot-secret-value"));
        let back = GatewaySecrets::from_stored(&g.to_stored().unwrap()).unwrap();
        assert_eq!(&*back.unseal(&sealed).unwrap(), b"bot-secret-value");
        assert_eq!(back.recipient(), g.recipient());
        assert_eq!(back.journal_key_pkcs8(), g.journal_key_pkcs8());
        let shown = format!("{g:?}");
        assert!(!shown.contains("AGE-SECRET-KEY"), "{shown}");
    }
}
