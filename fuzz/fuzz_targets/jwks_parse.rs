//! `JwkSet::parse_lenient` on arbitrary bytes: a fetched JWKS is untrusted input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = gha_auth::keys::JwkSet::parse_lenient(data) {
        for key in &parsed.keys {
            let _ = key.jwk().thumbprint();
            let _ = key.verify_signature(b"header.payload", data);
        }
    }
});
