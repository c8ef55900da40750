//! Types that hold secret material.
//!
//! They never print their contents (`Debug` shows `[redacted]`, there is no `Display` and no
//! `Serialize`), wipe their memory on drop and compare in constant time. Code that needs the
//! value asks for it explicitly with `expose`, which is easy to find in review.

use std::fmt;

use serde::{Deserialize, Deserializer};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

const REDACTED: &str = "[redacted]";

/// A secret UTF-8 string: a client secret, a password, a Vault token, a database password.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps `value`; the caller's copy moves in and is wiped with this one.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret itself. Keep the borrow short and never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes (safe to reveal: it is not the secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self::new(value.to_owned())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl PartialEq for SecretString {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for SecretString {}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

/// Secret bytes: key material, peppers, random seeds.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps `value`.
    pub fn new(value: Vec<u8>) -> Self {
        Self(value)
    }

    /// The bytes themselves. Keep the borrow short and never log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(value: Vec<u8>) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{REDACTED} ({} bytes)", self.0.len())
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SecretBytes {}

/// Constant-time equality of two byte strings (length is not hidden).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = SecretString::from("hunter2-very-secret");
        let debug = format!("{secret:?} {:#?}", Some(&secret));
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("[redacted]"));

        let bytes = SecretBytes::from(b"raw-key-material".to_vec());
        let debug = format!("{bytes:?}");
        assert!(!debug.contains("raw-key"), "{debug}");
        assert_eq!(debug, "[redacted] (16 bytes)");
    }

    #[test]
    fn debug_of_a_struct_holding_a_secret_is_redacted() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Config {
            user: &'static str,
            password: SecretString,
        }
        let config = Config {
            user: "svc",
            password: SecretString::from("p@ss-123-xyz"),
        };
        let debug = format!("{config:?}");
        assert_eq!(debug, r#"Config { user: "svc", password: [redacted] }"#);
    }

    #[test]
    fn equality_compares_contents() {
        assert_eq!(SecretString::from("abc"), SecretString::from("abc"));
        assert_ne!(SecretString::from("abc"), SecretString::from("abd"));
        assert_ne!(SecretString::from("abc"), SecretString::from("abcd"));
        assert!(constant_time_eq(b"xyz", b"xyz"));
        assert!(!constant_time_eq(b"xyz", b"xy"));
    }

    #[test]
    fn deserializes_from_a_plain_string() {
        let secret: SecretString = serde_json::from_str(r#""from-config""#).unwrap();
        assert_eq!(secret.expose(), "from-config");
    }

    #[test]
    fn zeroize_wipes_the_value() {
        let mut secret = SecretString::from("wipe-me");
        secret.zeroize();
        assert!(secret.is_empty());
    }
}
