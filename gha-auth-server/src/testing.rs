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
pub use crate::targets::epicor::wire;
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
        /// Parsed, and every non-empty pair of the body reads back as it was sent.
        Consistent,
        /// Parsed, but a pair reads back otherwise (a bug).
        Inconsistent,
        /// Refused with an error description that echoes no value of the body.
        Refused,
        /// Refused with a description that contains a value of the body (a leak).
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
                    _ => form.get(key) == Some(value.as_str()),
                });
                if consistent {
                    FormOutcome::Consistent
                } else {
                    FormOutcome::Inconsistent
                }
            }
            Err(error) => {
                let description = error.description();
                // A repeated parameter's name may be shown; a value never. Values of four bytes
                // or more that are not part of a name (shorter ones occur in any sentence).
                let echoes = pairs.iter().any(|(_, value)| {
                    value.len() >= 4
                        && description.contains(value.as_str())
                        && !pairs.iter().any(|(key, _)| key.contains(value.as_str()))
                });
                if echoes {
                    FormOutcome::RefusedEchoingAValue
                } else {
                    FormOutcome::Refused
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

    /// The session cookie's value from `Cookie` header values; `None` when a value is not a
    /// valid header value or the cookie is absent.
    pub fn session_cookie(values: &[&[u8]]) -> Option<String> {
        let map = headers(COOKIE, values)?;
        crate::session::cookie::read(&map).map(|value| value.expose().to_owned())
    }
}
