//! HTTP Basic client authentication (`parse_basic`) on arbitrary `Authorization` header values:
//! whatever it accepts has a non-empty id and secret, and the same credentials encoded again
//! (RFC 6749 §2.3.1) parse to the same pair.
//!
//! Input: header values separated by NUL bytes.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gha_auth_server::testing::fuzzing::basic_credentials;
use libfuzzer_sys::fuzz_target;

fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fuzz_target!(|data: &[u8]| {
    let values: Vec<&[u8]> = data.split(|&b| b == 0).collect();
    if let Some((id, secret)) = basic_credentials(&values) {
        assert_eq!(values.len(), 1);
        assert!(!id.is_empty() && !secret.is_empty());
        let again = format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", form_encode(&id), form_encode(&secret)))
        );
        assert_eq!(
            basic_credentials(&[again.as_bytes()]),
            Some((id, secret)),
            "round trip"
        );
    }
});
