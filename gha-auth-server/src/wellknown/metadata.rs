//! The discovery document: RFC 8414 authorization-server metadata, which is also what OpenID
//! Connect discovery clients read at `/.well-known/openid-configuration` (with the members OIDC
//! Discovery 1.0 requires on top).

use gha_auth::keys::Algorithm;
use serde::Serialize;

use crate::oauth::client_auth::PresentedMethod;

/// RFC 8414 path of the metadata.
pub(crate) const OAUTH_PATH: &str = "/.well-known/oauth-authorization-server";
/// OpenID Connect Discovery 1.0 path of the metadata.
pub(crate) const OIDC_PATH: &str = "/.well-known/openid-configuration";

/// What the document is made from.
#[derive(Debug)]
pub(crate) struct Inputs<'a> {
    /// The issuer URL (no trailing slash).
    pub(crate) issuer: &'a str,
    /// The token endpoint's URL.
    pub(crate) token_endpoint: &'a str,
    /// The algorithms of the published signing keys.
    pub(crate) signing_algs: Vec<&'static str>,
    /// The scopes clients may be granted; `None` when they could not be read.
    pub(crate) scopes: Option<Vec<String>>,
}

/// The metadata document (RFC 8414 §2, OIDC Discovery 1.0 §3).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Metadata {
    issuer: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes_supported: Option<Vec<String>>,
    /// There is no authorization endpoint: the only response type is `none` (OAuth 2.0
    /// Multiple Response Type Encoding Practices §4), so no client expects a code or a token
    /// from an authorization response. RFC 8414 and OIDC Discovery require a non-empty list.
    response_types_supported: Vec<&'static str>,
    grant_types_supported: Vec<&'static str>,
    token_endpoint_auth_methods_supported: Vec<&'static str>,
    token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    revocation_endpoint: String,
    revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    revocation_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    introspection_endpoint: String,
    introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    introspection_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// OIDC Discovery: subjects are the same for every client.
    subject_types_supported: Vec<&'static str>,
    /// OIDC Discovery: the algorithms tokens are signed with (no ID tokens are issued; JWT
    /// handlers configured with an authority URL read this list for access tokens).
    id_token_signing_alg_values_supported: Vec<&'static str>,
    /// RFC 8693 subject token types (the legacy-key type is ours).
    token_exchange_subject_token_types_supported: Vec<&'static str>,
    /// The signed revocation feed (not an RFC 8414 member: gha-auth's own).
    revocation_feed_endpoint: String,
}

/// Client authentication at the token endpoint; public clients (`none`) only for the grants
/// that allow them.
const TOKEN_AUTH: [PresentedMethod; 4] = [
    PresentedMethod::Basic,
    PresentedMethod::Post,
    PresentedMethod::PrivateKeyJwt,
    PresentedMethod::None,
];
/// RFC 7009 lets public clients revoke their own tokens.
const REVOCATION_AUTH: [PresentedMethod; 4] = TOKEN_AUTH;
/// RFC 7662 §2.1: the caller of introspection authenticates; public clients cannot.
const INTROSPECTION_AUTH: [PresentedMethod; 3] = [
    PresentedMethod::Basic,
    PresentedMethod::Post,
    PresentedMethod::PrivateKeyJwt,
];

fn names(methods: &[PresentedMethod]) -> Vec<&'static str> {
    methods.iter().map(|m| m.as_str()).collect()
}

/// The document for `inputs`.
pub(crate) fn document(inputs: Inputs<'_>) -> Metadata {
    let base = inputs.issuer.trim_end_matches('/');
    // Client assertions may be signed with any algorithm the server verifies.
    let assertion_algs: Vec<&'static str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
    let mut signing_algs = inputs.signing_algs;
    signing_algs.sort_unstable();
    signing_algs.dedup();
    Metadata {
        issuer: base.to_owned(),
        token_endpoint: inputs.token_endpoint.to_owned(),
        jwks_uri: format!("{base}{}", super::JWKS_PATH),
        scopes_supported: inputs.scopes,
        response_types_supported: vec!["none"],
        grant_types_supported: crate::oauth::grants::supported(),
        token_endpoint_auth_methods_supported: names(&TOKEN_AUTH),
        token_endpoint_auth_signing_alg_values_supported: assertion_algs.clone(),
        revocation_endpoint: format!("{base}{}", crate::oauth::REVOKE_PATH),
        revocation_endpoint_auth_methods_supported: names(&REVOCATION_AUTH),
        revocation_endpoint_auth_signing_alg_values_supported: assertion_algs.clone(),
        introspection_endpoint: format!("{base}{}", crate::oauth::INTROSPECT_PATH),
        introspection_endpoint_auth_methods_supported: names(&INTROSPECTION_AUTH),
        introspection_endpoint_auth_signing_alg_values_supported: assertion_algs,
        subject_types_supported: vec!["public"],
        id_token_signing_alg_values_supported: signing_algs,
        token_exchange_subject_token_types_supported:
            crate::oauth::grants::token_exchange::SUBJECT_TOKEN_TYPES.to_vec(),
        revocation_feed_endpoint: format!("{base}{}", crate::revocations::FEED_PATH),
    }
}

/// The paths the metadata is served at for an issuer whose URL has `issuer_path` (empty or
/// `/a/b`), besides [`OAUTH_PATH`] and [`OIDC_PATH`] themselves: RFC 8414 §3.1 inserts the
/// well-known segment between host and path; OIDC Discovery appends it to the issuer (that form
/// reaches the server as is when no proxy strips the issuer's path); RFC 8414 §5 also names the
/// OIDC segment inserted.
pub(crate) fn issuer_paths(issuer_path: &str) -> Vec<String> {
    let path = issuer_path.trim_end_matches('/');
    if path.is_empty() {
        return Vec::new();
    }
    vec![
        format!("{OAUTH_PATH}{path}"),
        format!("{OIDC_PATH}{path}"),
        format!("{path}{OIDC_PATH}"),
        format!("{path}{OAUTH_PATH}"),
    ]
}

/// The path of an issuer URL (`https://host/a/b` → `/a/b`; empty without one).
pub(crate) fn path_of(issuer: &str) -> String {
    let without_scheme = issuer.split_once("://").map_or(issuer, |(_, rest)| rest);
    without_scheme.find('/').map_or_else(String::new, |at| {
        without_scheme[at..].trim_end_matches('/').to_owned()
    })
}

/// The sorted, distinct scopes of the enabled clients.
pub(crate) fn scopes_of<'a>(
    clients: impl IntoIterator<Item = &'a crate::clients::Client>,
) -> Vec<String> {
    let mut scopes: Vec<String> = clients
        .into_iter()
        .filter(|c| !c.disabled)
        .flat_map(|c| c.scopes.iter().cloned())
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn doc(issuer: &str, scopes: Option<Vec<String>>) -> Value {
        serde_json::to_value(document(Inputs {
            issuer,
            token_endpoint: &format!("{issuer}/oauth2/token"),
            signing_algs: vec!["ES256", "EdDSA", "ES256"],
            scopes,
        }))
        .unwrap()
    }

    #[test]
    fn issuer_paths_insert_and_append_the_well_known_segment() {
        let cases: [(&str, &[&str]); 4] = [
            ("", &[]),
            ("/", &[]),
            (
                "/tenant",
                &[
                    "/.well-known/oauth-authorization-server/tenant",
                    "/.well-known/openid-configuration/tenant",
                    "/tenant/.well-known/openid-configuration",
                    "/tenant/.well-known/oauth-authorization-server",
                ],
            ),
            (
                "/a/b/",
                &[
                    "/.well-known/oauth-authorization-server/a/b",
                    "/.well-known/openid-configuration/a/b",
                    "/a/b/.well-known/openid-configuration",
                    "/a/b/.well-known/oauth-authorization-server",
                ],
            ),
        ];
        for (path, expected) in cases {
            assert_eq!(issuer_paths(path), expected.to_vec(), "{path:?}");
        }
    }

    #[test]
    fn path_of_takes_the_path_after_the_authority() {
        for (issuer, path) in [
            ("https://auth.example", ""),
            ("https://auth.example/", ""),
            ("https://auth.example:8443/tenant", "/tenant"),
            ("http://127.0.0.1:9/a/b/", "/a/b"),
        ] {
            assert_eq!(path_of(issuer), path, "{issuer}");
        }
    }

    #[test]
    fn response_types_are_never_empty_and_name_no_authorization_response() {
        // Regression: authlib's RFC 8414 validator refused an empty response_types_supported.
        let doc = doc("https://auth.example", None);
        assert_eq!(doc["response_types_supported"], json!(["none"]));
        assert!(doc.get("authorization_endpoint").is_none());
    }

    #[test]
    fn endpoint_auth_methods_and_algorithms_are_published() {
        let doc = doc(
            "https://auth.example/tenant",
            Some(vec!["jobs:read".into()]),
        );
        assert_eq!(doc["issuer"], "https://auth.example/tenant");
        assert_eq!(
            doc["jwks_uri"],
            "https://auth.example/tenant/.well-known/jwks.json"
        );
        assert_eq!(doc["scopes_supported"], json!(["jobs:read"]));
        assert_eq!(
            doc["introspection_endpoint_auth_methods_supported"],
            json!([
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt"
            ])
        );
        assert_eq!(
            doc["revocation_endpoint_auth_methods_supported"],
            json!([
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
                "none"
            ])
        );
        assert_eq!(doc["subject_types_supported"], json!(["public"]));
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            json!(["ES256", "EdDSA"])
        );
        for endpoint in ["token", "revocation", "introspection"] {
            let algs = &doc[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")];
            assert!(algs.as_array().is_some_and(|a| !a.is_empty()), "{endpoint}");
            assert!(
                !algs.as_array().unwrap().contains(&json!("none")),
                "{endpoint}"
            );
        }
    }

    #[test]
    fn scopes_supported_is_left_out_when_unknown() {
        assert!(
            doc("https://auth.example", None)
                .get("scopes_supported")
                .is_none()
        );
    }
}
