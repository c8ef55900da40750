//! The form-encoded token request (RFC 6749 §3.2, Appendix B).

use std::collections::HashMap;
use std::fmt;

use super::OAuthError;

/// Parameters that may appear more than once (RFC 8693 §2.1, RFC 8707 §2).
const MULTI_VALUED: [&str; 2] = ["audience", "resource"];

/// The parameters this authority reads: one of these given twice is refused (RFC 6749 §3.1).
/// Any other parameter is unrecognized and ignored, however often it appears.
const RECOGNIZED: [&str; 20] = [
    "grant_type",
    "scope",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "username",
    "password",
    "tenant",
    "refresh_token",
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "requested_token_type",
    "token",
    "token_type_hint",
    "code",
    "redirect_uri",
    "code_verifier",
];

/// Parameters whose values are credentials: never logged or echoed.
const SECRET_PARAMS: [&str; 7] = [
    "client_secret",
    "token",
    "client_assertion",
    "password",
    "refresh_token",
    "subject_token",
    "actor_token",
];

/// Longest accepted parameter value, in bytes (assertions and tokens fit easily).
const MAX_VALUE_LEN: usize = 8 * 1024;

/// The parameters of a token request.
///
/// Empty values count as absent (RFC 6749 §3.1); a recognized parameter other than `audience`
/// and `resource` may appear only once; unrecognized parameters are ignored (their first value
/// is kept, never read). `Debug` hides credential values.
#[derive(Default)]
pub(crate) struct TokenForm {
    single: HashMap<String, String>,
    multi: HashMap<&'static str, Vec<String>>,
}

impl fmt::Debug for TokenForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in &self.single {
            if SECRET_PARAMS.contains(&key.as_str()) {
                map.entry(key, &"[redacted]");
            } else {
                map.entry(key, value);
            }
        }
        for (key, values) in &self.multi {
            map.entry(key, values);
        }
        map.finish()
    }
}

impl TokenForm {
    /// Parses an `application/x-www-form-urlencoded` body.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut form = Self::default();
        for (key, value) in url::form_urlencoded::parse(body) {
            if value.is_empty() {
                continue;
            }
            if value.len() > MAX_VALUE_LEN || key.len() > 128 {
                return Err(OAuthError::invalid_request("a parameter is too long"));
            }
            if let Some(name) = MULTI_VALUED.iter().find(|m| **m == key) {
                form.multi.entry(name).or_default().push(value.into_owned());
                continue;
            }
            if form.single.contains_key(key.as_ref()) {
                if let Some(name) = RECOGNIZED.iter().find(|r| **r == key) {
                    return Err(OAuthError::invalid_request(format!(
                        "parameter {name} must not be repeated"
                    )));
                }
                continue;
            }
            let key = key.into_owned();
            form.single.insert(key, value.into_owned());
        }
        Ok(form)
    }

    /// A single-valued parameter.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.single.get(name).map(String::as_str)
    }

    /// Every value of a multi-valued parameter (`audience`, `resource`).
    pub(crate) fn all(&self, name: &str) -> &[String] {
        self.multi.get(name).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_unrecognized_parameters_are_ignored() {
        // RFC 6749 §3.1: unrecognized parameters are ignored, repeated or not.
        let form =
            TokenForm::parse(b"grant_type=client_credentials&x=1&x=2&%C3%9D=a&%C3%9D=b").unwrap();
        assert_eq!(form.get("grant_type"), Some("client_credentials"));
        let err = TokenForm::parse(b"grant_type=a&x=1&grant_type=b").unwrap_err();
        assert_eq!(
            err.description(),
            "parameter grant_type must not be repeated"
        );
    }

    #[test]
    fn parses_decodes_and_ignores_empty_values() {
        let form =
            TokenForm::parse(b"grant_type=client_credentials&scope=a+b%3Ac&state=&x=1").unwrap();
        assert_eq!(form.get("grant_type"), Some("client_credentials"));
        assert_eq!(form.get("scope"), Some("a b:c"));
        assert_eq!(form.get("state"), None);
        assert_eq!(form.get("x"), Some("1"));
    }

    #[test]
    fn repeated_parameters_are_refused_except_audience_and_resource() {
        let err = TokenForm::parse(b"scope=a&scope=b").unwrap_err();
        assert_eq!(err.description(), "parameter scope must not be repeated");
        let form = TokenForm::parse(b"audience=a&audience=b&resource=https%3A%2F%2Fr").unwrap();
        assert_eq!(form.all("audience"), ["a", "b"]);
        assert_eq!(form.all("resource"), ["https://r"]);
        assert!(form.all("nothing").is_empty());
    }

    #[test]
    fn debug_hides_credentials() {
        let form =
            TokenForm::parse(b"client_id=svc&client_secret=ghac_topsecret&client_assertion=eyJ")
                .unwrap();
        let debug = format!("{form:?}");
        assert!(
            !debug.contains("topsecret") && !debug.contains("eyJ"),
            "{debug}"
        );
        assert!(debug.contains("svc"));
    }

    #[test]
    fn garbage_never_panics() {
        for body in [&b"%%%"[..], b"=&=&&", b"\xff\xfe=\x00", b"a=%ZZ", b""] {
            let _ = TokenForm::parse(body);
        }
        let long = format!("scope={}", "a".repeat(9000));
        assert!(TokenForm::parse(long.as_bytes()).is_err());
    }
}
