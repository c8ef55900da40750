//! `TokenForm::parse` on arbitrary bodies (every form-encoded POST to `/oauth2/token`,
//! `/oauth2/revoke` and `/oauth2/introspect`): a parsed form reads back every non-empty pair as
//! an independent decoder sees it, and a refusal never echoes a value.
#![no_main]

use gha_auth_server::testing::fuzzing::{FormOutcome, token_form};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let outcome = token_form(data);
    assert!(
        matches!(outcome, FormOutcome::Consistent | FormOutcome::Refused),
        "{outcome:?}"
    );
});
