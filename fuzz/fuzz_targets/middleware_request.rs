//! The middleware's request decision on arbitrary headers: `Authorization` (scheme, repeats,
//! b64token), the `Cookie` header and its CSRF check (`Origin`, `Sec-Fetch-Site`, the custom
//! header), `x-api-key`, CORS preflight detection. Also `Cache-Control` values and link-key set
//! documents as the key sources read them from the authority.
//!
//! Input: the first line is the method, then `name: value` lines.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gha_auth_middleware::fuzzing::request_decision(data);
    gha_auth_middleware::fuzzing::cache_control(data);
    gha_auth_middleware::fuzzing::link_key_set(data);
});
