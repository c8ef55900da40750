//! The crate's internals that the workspace's end-to-end tests drive directly (link-key drivers
//! with injected faults, stores, registries). Only with the `test-util` feature; not an API.

pub use crate::agent::config::AgentConfig;
pub use crate::agent::run as run_agent;
pub use crate::atrest::MasterKey;
pub use crate::audit::AuditLog;
pub use crate::audit::store::AuditRow;
pub use crate::audit::verify::{VerifyReport, verify};
pub use crate::clients::legacy_keys;
pub use crate::clients::model::GrantType;
pub use crate::clients::{ClientRegistration, ClientRegistry};
pub use crate::linkkeys::driver::{DriverSettings, FaultPlan, FaultPoint, Rotator};
pub use crate::linkkeys::machine::Policy;
pub use crate::linkkeys::model::{LinkKeyState, ServedState, Step, digest_hex};
pub use crate::linkkeys::store::{LinkKeyStore, LocalLinkKeyStore, VaultLinkKeyStore};
pub use crate::refresh::{lookup, purge_expired};
pub use crate::services::Services;
pub use crate::store::Store;
pub use crate::targets::{TargetConfig, TargetDeps, build_target};
pub use crate::users::Users;

/// Narrow entries for the fuzz targets (`fuzz/`): the server's parsers of untrusted input
/// behind plain types, each with the checks a target asserts.
pub mod fuzzing {
    use axum::http::header::{AUTHORIZATION, COOKIE};
    use axum::http::{HeaderMap, HeaderValue};

    use crate::oauth::TokenForm;

    /// What [`token_form`] found.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[non_exhaustive]
    pub enum FormOutcome {
        /// Parsed, and every non-empty recognized pair of the body reads back as it was sent
        /// (an unrecognized one not at all).
        Consistent,
        /// Parsed, but a pair reads back otherwise (a bug).
        Inconsistent,
        /// Refused with one of the parser's fixed descriptions (at most naming a parameter).
        Refused,
        /// Refused with any other description: it may carry a value of the body (a leak).
        RefusedEchoingAValue,
    }

    /// `TokenForm::parse` on `body`, checked against an independent decoding of the same body.
    pub fn token_form(body: &[u8]) -> FormOutcome {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body)
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        match TokenForm::parse(body) {
            Ok(form) => {
                let consistent = pairs.iter().all(|(key, value)| match key.as_str() {
                    "audience" | "resource" => form.all(key).contains(value),
                    // Unrecognized parameters are dropped; a recognized one reads back as sent.
                    _ if !crate::oauth::form::is_recognized(key) => form.get(key).is_none(),
                    _ => form.get(key) == Some(value.as_str()),
                });
                if consistent {
                    FormOutcome::Consistent
                } else {
                    FormOutcome::Inconsistent
                }
            }
            Err(error) => {
                // The only descriptions: a fixed sentence, or one naming a repeated recognized
                // parameter. Anything else may carry a value. (Comparing values against the text
                // would flag a value made of the sentence's own words.)
                let description = error.description();
                let names_a_key = description
                    .strip_prefix("parameter ")
                    .and_then(|rest| rest.strip_suffix(" must not be repeated"))
                    .is_some_and(|shown| pairs.iter().any(|(key, _)| key == shown));
                if names_a_key || description == "a parameter is too long" {
                    FormOutcome::Refused
                } else {
                    FormOutcome::RefusedEchoingAValue
                }
            }
        }
    }

    fn headers(name: axum::http::HeaderName, values: &[&[u8]]) -> Option<HeaderMap> {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(name.clone(), HeaderValue::from_bytes(value).ok()?);
        }
        Some(map)
    }

    /// HTTP Basic client credentials (`parse_basic`) from `Authorization` header values; `None`
    /// when a value is not a valid header value or the credentials are malformed. The secret
    /// is returned in clear for the target's checks.
    pub fn basic_credentials(values: &[&[u8]]) -> Option<(String, String)> {
        let map = headers(AUTHORIZATION, values)?;
        crate::oauth::client_auth::parse_basic(&map)
            .ok()
            .map(|(id, secret)| (id, secret.expose().to_owned()))
    }

    /// Every Epicor REST v2 answer parser on `body` (whatever answers at Epicor's address is
    /// untrusted input to the link-key rotation); how many user codes a `GetByID` answer held.
    pub fn epicor_response(body: &[u8]) -> Option<usize> {
        use crate::targets::epicor::wire;
        let _ = wire::parse_update_ext(body);
        let _ = wire::parse_token(body);
        let _ = wire::error_message(body);
        wire::parse_get_by_id(body).ok().map(|set| {
            for row in &set.codes {
                let _ = format!("{row:?}");
            }
            set.codes.len()
        })
    }

    /// The session cookie's value from `Cookie` header values; `None` when a value is not a
    /// valid header value or the cookie is absent.
    pub fn session_cookie(values: &[&[u8]]) -> Option<String> {
        let map = headers(COOKIE, values)?;
        crate::session::cookie::read(&map).map(|value| value.expose().to_owned())
    }
}
