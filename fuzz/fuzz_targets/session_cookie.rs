//! The session cookie reader on arbitrary `Cookie` header values: a value is returned only when
//! a pair named exactly `__Host-gha-session` carries it, and it is non-empty, trimmed and holds
//! no `;`.
//!
//! Input: header values separated by NUL bytes.
#![no_main]

use gha_auth_server::testing::fuzzing::session_cookie;
use libfuzzer_sys::fuzz_target;

const NAME: &str = "__Host-gha-session";

fuzz_target!(|data: &[u8]| {
    let values: Vec<&[u8]> = data.split(|&b| b == 0).collect();
    if let Some(value) = session_cookie(&values) {
        assert!(!value.is_empty());
        assert_eq!(value.trim(), value);
        assert!(!value.contains(';'));
        let named = values.iter().any(|v| {
            String::from_utf8_lossy(v)
                .split(';')
                .any(|pair| pair.trim_start().starts_with(&format!("{NAME}=")))
        });
        assert!(named, "returned without a cookie of that name");
    }
});
