//! Finding the key a token names.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use crate::keys::{KeyRing, ParsedJwkSet, VerifyingKey};

/// Looks up a trusted verifying key by key id.
///
/// The `kid` passed in has already been checked (1–128 characters of `[A-Za-z0-9_-]`), so an
/// implementation may use it as a map key or in a path without further escaping. Returning
/// `None` refuses the token; an implementation must never build a key from the token itself.
pub trait KeyResolver {
    /// The trusted key with this id, if any.
    fn resolve(&self, kid: &str) -> Option<VerifyingKey>;
}

impl KeyResolver for VerifyingKey {
    fn resolve(&self, kid: &str) -> Option<VerifyingKey> {
        (self.kid() == kid).then(|| self.clone())
    }
}

impl KeyResolver for [VerifyingKey] {
    fn resolve(&self, kid: &str) -> Option<VerifyingKey> {
        self.iter().find(|k| k.kid() == kid).cloned()
    }
}

impl KeyResolver for Vec<VerifyingKey> {
    fn resolve(&self, kid: &str) -> Option<VerifyingKey> {
        self.as_slice().resolve(kid)
    }
}

impl<S: BuildHasher> KeyResolver for HashMap<String, VerifyingKey, S> {
    fn resolve(&self, kid: &str) -> Option<VerifyingKey> {
        self.get(kid).cloned()
    }
}

impl KeyResolver for ParsedJwkSet {
    fn resolve(&self, kid: &str) -> Option<VerifyingKey> {
        self.keys.resolve(kid)
    }
}

/// Every key in the ring (next, active and retired): what the authority itself trusts.
impl KeyResolver for KeyRing {
    fn resolve(&self, kid: &str) -> Option<VerifyingKey> {
        self.get(kid).map(|k| k.key.verifying_key())
    }
}

impl<T: KeyResolver + ?Sized> KeyResolver for &T {
    fn resolve(&self, kid: &str) -> Option<VerifyingKey> {
        (**self).resolve(kid)
    }
}

impl<T: KeyResolver + ?Sized> KeyResolver for Arc<T> {
    fn resolve(&self, kid: &str) -> Option<VerifyingKey> {
        (**self).resolve(kid)
    }
}

impl<T: KeyResolver + ?Sized> KeyResolver for Box<T> {
    fn resolve(&self, kid: &str) -> Option<VerifyingKey> {
        (**self).resolve(kid)
    }
}
