//! Signing keys, key ids, key lifecycle and JWKS.
