//! `[session]`: browser sessions.

use serde::Deserialize;

use crate::settings::Problems;

/// Browser sessions. Off by default: with no `client_id` every `/session/*` endpoint
/// answers 404, and the CORS allow-list is empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct SessionConfig {
    /// The first-party public client sessions act for (needs the `password` and
    /// `refresh_token` grants).
    pub client_id: Option<String>,
    /// Origins (`scheme://host[:port]`) of the pages that may use sessions: CORS with
    /// credentials, and the CSRF check of every session request.
    pub allowed_origins: Vec<String>,
}

impl SessionConfig {
    /// Whether `origin` (an `Origin` header value) is allowed. Exact, case-sensitive match
    /// against the configured list, which [`SessionConfig::check`] keeps in serialized-origin form.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|allowed| allowed == origin)
    }

    /// Reports what is wrong with `[session]`.
    pub fn check(&self, out: &mut Problems) {
        match &self.client_id {
            None if !self.allowed_origins.is_empty() => out.push(
                "session.allowed_origins",
                "set session.client_id too: without it sessions are off",
            ),
            None => {}
            Some(id) => {
                if !crate::clients::is_valid_client_id(id) {
                    out.push("session.client_id", "is not a valid client id");
                }
                if self.allowed_origins.is_empty() {
                    out.push(
                        "session.allowed_origins",
                        "must list the origins of the pages that use sessions; with none every \
                         session request would be refused",
                    );
                }
            }
        }
        for origin in &self.allowed_origins {
            if let Some(problem) = origin_problem(origin) {
                out.push("session.allowed_origins", problem);
            }
        }
    }
}

/// Why `origin` is not usable in `session.allowed_origins`, if it is not. It must be written
/// exactly as browsers send `Origin` (`scheme://host[:port]`, lower case, no default port), so
/// that the runtime check can be an exact comparison.
pub(crate) fn origin_problem(origin: &str) -> Option<String> {
    let url = match url::Url::parse(origin) {
        Ok(url) => url,
        Err(e) => return Some(format!("{origin:?} is not an origin: {e}")),
    };
    let serialized = url.origin().ascii_serialization();
    if serialized != origin {
        return Some(format!(
            "{origin:?} must be written as the browser sends it: {serialized:?} (no path, \
             lower case, no default port; \"*\" is not allowed)"
        ));
    }
    match url.scheme() {
        "https" => None,
        // The session cookie is `Secure`: browsers keep it over plain http only on loopback.
        "http"
            if url
                .host()
                .is_some_and(|host| gha_auth::outbound::is_loopback(&host)) =>
        {
            None
        }
        _ => Some(format!(
            "{origin:?} must be https (plain http only for loopback pages)"
        )),
    }
}
