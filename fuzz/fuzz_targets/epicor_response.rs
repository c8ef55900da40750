//! The Epicor REST v2 answer parsers on arbitrary bytes: whatever answers at Epicor's address is
//! untrusted input to the link-key rotation.
#![no_main]

use gha_auth_server::testing::fuzzing::epicor_response;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = epicor_response(data);
});
