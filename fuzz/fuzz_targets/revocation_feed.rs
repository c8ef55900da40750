//! The revocation feed (`GET /v1/revocations`), as a middleware reads it from the network.
//!
//! The first byte chooses the mode: even → the rest is the document as given (header, size
//! and signature checks); odd → the rest is a payload that is signed with a trusted
//! (development) key first, so the strict payload parser and the time checks see arbitrary
//! input too. The payload parser is also run on the raw bytes.
#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gha_auth::ManualClock;
use gha_auth::keys::SigningKey;
use gha_auth::revocation::{FEED_TYPE, FeedVerifier, RevocationFeed};
use libfuzzer_sys::fuzz_target;

struct Setup {
    key: SigningKey,
    verifier: FeedVerifier,
    header: String,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let key = SigningKey::from_pkcs8_pem(include_str!("../../keys-dev/eddsa-dev.pem"))
            .expect("development key");
        let verifier = FeedVerifier::new(
            "https://auth.gha.test",
            ManualClock::at_unix(1_700_000_000).shared(),
        )
        .with_max_bytes(64 * 1024);
        let header = format!(
            r#"{{"alg":"EdDSA","typ":"{FEED_TYPE}","kid":"{}"}}"#,
            key.kid()
        );
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
    let _ = RevocationFeed::parse(rest);
    if mode % 2 == 0 {
        if let Ok(text) = std::str::from_utf8(rest) {
            let _ = setup.verifier.verify(text, &public);
        }
    } else {
        let input = format!("{}.{}", setup.header, URL_SAFE_NO_PAD.encode(rest));
        let signature = setup.key.sign(input.as_bytes()).expect("signing");
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
        if let Ok(feed) = setup.verifier.verify(&token, &public) {
            // Whatever passed must satisfy the documented invariants.
            assert!(feed.check().is_ok());
        }
    }
});
