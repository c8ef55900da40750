//! RFC 9068 access tokens: issue and verify.
