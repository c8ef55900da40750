//! The scanner-friendly secret format and keyed hashing for storage.
//!
//! Every high-entropy secret gha-auth hands out looks like `ghac_…` (client secret), `ghar_…`
//! (refresh token) or `ghal_…` (link key): a type prefix, 43 random base62 characters (256 bits)
//! and a 6-character base62 CRC32 checksum. Secret scanners can recognise them without false
//! positives, and [`ApiKey::parse`] rejects typos and truncations before any store lookup.
//!
//! The store never holds a secret, only its [`KeyedHash`] (HMAC-SHA256 under a server
//! [`Pepper`]): microseconds to check, and useless to whoever steals the database without the
//! pepper.

mod format;
mod hash;

pub use format::{ApiKey, ENCODED_LEN, FormatError, SecretKind};
pub use hash::{KeyedHash, MIN_PEPPER_LEN, Pepper, PepperError};
