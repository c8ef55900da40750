//! `ApiKey::parse` on arbitrary text: every presented client secret, refresh token and link key.
#![no_main]

use gha_auth::apikey::ApiKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(key) = ApiKey::parse(text) {
            // Whatever parses must round-trip and keep its kind.
            assert_eq!(key.expose(), text);
            assert!(ApiKey::parse_kind(text, key.kind()).is_ok());
        }
    }
});
