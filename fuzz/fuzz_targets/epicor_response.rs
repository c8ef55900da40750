//! The Epicor REST v2 answer parsers on arbitrary bytes: whatever answers at Epicor's address is
//! untrusted input to the link-key rotation.
#![no_main]

use gha_auth_server::testing::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = wire::parse_get_by_id(data) {
        for row in &set.codes {
            let _ = format!("{row:?}");
        }
    }
    let _ = wire::parse_update_ext(data);
    let _ = wire::parse_token(data);
    let _ = wire::error_message(data);
});
