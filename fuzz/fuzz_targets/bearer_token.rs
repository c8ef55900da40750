//! `gha_auth::bearer::bearer_token` on arbitrary `Authorization` headers, checked against the
//! rule it implements: a token is returned only for exactly one header of the form
//! `Bearer 1*SP b64token`, and every other answer is 401 without an error code (no header, another
//! scheme) or 400 `invalid_request`.
//!
//! Input: header values separated by NUL bytes (no input, no header).
#![no_main]

use gha_auth::bearer::{BearerError, bearer_token, is_b64token};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let values: Vec<&[u8]> = if data.is_empty() {
        Vec::new()
    } else {
        data.split(|&b| b == 0).collect()
    };
    match bearer_token(values.iter().copied()) {
        Ok(token) => {
            assert_eq!(values.len(), 1);
            let value = values[0];
            assert!(is_b64token(token.as_bytes()));
            assert!(value.ends_with(token.as_bytes()));
            let head = &value[..value.len() - token.len()];
            assert!(head.len() > 6 && head[..6].eq_ignore_ascii_case(b"bearer"));
            assert!(head[6..].iter().all(|&b| b == b' '));
        }
        Err(BearerError::Missing) => {
            assert!(values.len() <= 1);
            if let Some(value) = values.first() {
                let scheme = value.split(|&b| b == b' ').next().unwrap_or_default();
                assert!(!scheme.eq_ignore_ascii_case(b"bearer"));
                assert!(value.iter().all(|&b| (b' '..=b'~').contains(&b)));
            }
        }
        Err(error) => {
            assert_eq!(error.status(), 400);
            assert_eq!(error.error_code(), Some("invalid_request"));
            if values.len() > 1 {
                assert_eq!(error, BearerError::RepeatedHeader);
            }
        }
    }
});
