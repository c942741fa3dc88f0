//! Secret holders: zeroized on drop, never `Debug`/`Display`/`Serialize` in the clear,
//! compared in constant time.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Secret bytes (an HMAC key, a private key's DER). Boxed so moves do not leave copies.
#[derive(Clone)]
pub struct SecretBytes(Box<Zeroizing<Vec<u8>>>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(Box::new(Zeroizing::new(bytes)))
    }

    pub fn expose(&self) -> &[u8] {
        self.0.as_slice()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        self.expose().ct_eq(other).into()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

/// A secret string (a passphrase, an HMAC secret in its textual form).
#[derive(Clone)]
pub struct SecretString(Box<Zeroizing<String>>);

impl SecretString {
    pub fn new(s: String) -> Self {
        SecretString(Box::new(Zeroizing::new(s)))
    }

    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &str) -> bool {
        self.expose().as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretString::new("top-secret-value".into());
        let b = SecretBytes::new(b"top-secret-bytes".to_vec());
        assert!(!format!("{s:?}").contains("top-secret"));
        assert!(!format!("{b:?}").contains("top-secret"));
    }

    #[test]
    fn constant_time_equality_matches_plain_equality() {
        let s = SecretString::new("abc".into());
        assert!(s.ct_eq("abc"));
        assert!(!s.ct_eq("abd"));
        assert!(!s.ct_eq("ab"));
    }
}
