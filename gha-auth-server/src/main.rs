//! The `gha-auth` binary: see `gha_auth_server::cli`.
fn main() {}
