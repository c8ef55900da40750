//! `parse_header` on arbitrary text: the first thing the middleware does with a bearer token.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = gha_auth::jwt::parse_header(token);
    }
});
