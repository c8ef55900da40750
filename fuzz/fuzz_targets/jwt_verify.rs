//! Full verification of arbitrary input.
//!
//! The first byte chooses the mode: even → the rest is the token as given; odd → the rest is a
//! claims payload that is signed with a trusted (development) key first, so the claims parser and
//! the time checks see arbitrary input too.
#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gha_auth::ManualClock;
use gha_auth::jwt::{AccessClaims, Validation, Verifier};
use gha_auth::keys::SigningKey;
use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;

struct Setup {
    key: SigningKey,
    verifier: Verifier,
    header: String,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let key = SigningKey::from_pkcs8_pem(include_str!("../../keys-dev/eddsa-dev.pem"))
            .expect("development key");
        let validation =
            Validation::new("https://auth.gha.test", ["field-service.api"]).expect("validation");
        let verifier = Verifier::new(validation, ManualClock::at_unix(1_700_000_000).shared());
        let header = format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{}"}}"#, key.kid());
        Setup {
            key,
            verifier,
            header: URL_SAFE_NO_PAD.encode(header),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let setup = setup();
    let public = setup.key.verifying_key();
    if mode % 2 == 0 {
        if let Ok(token) = std::str::from_utf8(rest) {
            let _ = setup.verifier.verify::<AccessClaims>(token, &public);
        }
    } else {
        let input = format!("{}.{}", setup.header, URL_SAFE_NO_PAD.encode(rest));
        let signature = setup.key.sign(input.as_bytes()).expect("signing");
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
        let _ = setup.verifier.verify::<AccessClaims>(&token, &public);
        let _ = setup.verifier.verify::<IgnoredAny>(&token, &public);
        let _ = setup.verifier.verify::<serde_json::Value>(&token, &public);
    }
});
