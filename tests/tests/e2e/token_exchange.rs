//! Token exchange (RFC 8693) end to end against the real authority over HTTP: a
//! legacy static API key imported by an operator, and an access token, each exchanged for a
//! short-lived token narrowed to the requested audience and scopes with `act` naming the
//! requesting client; wrong keys, widened scopes and revoked subject tokens refused.

use gha_auth::SecretString;
use gha_auth::jwt::{AccessClaims, Validation, Verifier};
use gha_auth::keys::JwkSet;
use gha_auth_server::testing::legacy_keys::{self, LEGACY_API_KEY_TOKEN_TYPE, NewLegacyKey};
use gha_auth_server::testing::{ClientRegistration, GrantType};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::START;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const LEGACY_KEY: &str = "legacy-epicor-key-7f3a9c2e11b04d5a";

type Authority = crate::support::ManualAuthority;

impl Authority {
    async fn token(&self, id: &str, secret: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.app.authority().token_endpoint())
            .basic_auth(id, Some(secret))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Exchanges the legacy key `subject` for a token for `audience`, as client `id`, with an
    /// optional `scope`.
    async fn exchange_legacy_key(
        &self,
        id: &str,
        secret: &str,
        subject: &str,
        audience: &str,
        scope: Option<&str>,
    ) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", LEGACY_API_KEY_TOKEN_TYPE),
            ("audience", audience),
        ];
        form.extend(scope.map(|scope| ("scope", scope)));
        self.token(id, secret, &form).await
    }

    async fn verify(&self, token: &str, audience: &str) -> AccessClaims {
        let jwks = self
            .http
            .get(format!("{}/.well-known/jwks.json", self.app.base_url()))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let keys = JwkSet::parse_lenient(&jwks).unwrap();
        let validation = Validation::new(self.app.authority().issuer(), [audience]).unwrap();
        Verifier::new(validation, self.clock.shared())
            .verify::<AccessClaims>(token, &keys)
            .unwrap()
            .claims
    }
}

async fn error_of(response: reqwest::Response) -> (StatusCode, String, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn legacy_keys_and_access_tokens_are_exchanged_for_narrowed_tokens() {
    let authority = Authority::start().await;
    let state = authority.app.authority();
    // The integration that used to send a static key, now a registered client.
    let bridge = authority
        .register(
            ClientRegistration::new("epicor-bridge")
                .grant(GrantType::TokenExchange)
                .scope("jobs:read")
                .scope("jobs:epicor-update")
                .scope("jobs:write")
                .audience("field-service")
                .audience("ap.api")
                .tenant("acme"),
        )
        .await;
    // A client holding someone else's key may not use it.
    let other = authority
        .register(
            ClientRegistration::new("other-bridge")
                .grant(GrantType::TokenExchange)
                .scope("jobs:read")
                .audience("field-service")
                .tenant("acme"),
        )
        .await;
    let mut spec = NewLegacyKey::new("epicor-bridge", "epicor");
    spec.tenant = Some("acme".into());
    spec.scopes = vec!["jobs:read".into(), "jobs:epicor-update".into()];
    let key = SecretString::new(LEGACY_KEY.to_owned());
    legacy_keys::add(
        state.store(),
        state.clients().pepper(),
        state.audit(),
        START,
        spec,
        &key,
        "e2e",
    )
    .await
    .unwrap();

    // The metadata publishes the grant and the legacy-key token type.
    let metadata: Value = authority
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            authority.app.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        metadata["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from(EXCHANGE))
    );
    assert!(
        metadata["token_exchange_subject_token_types_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from(LEGACY_API_KEY_TOKEN_TYPE))
    );

    // 1. The legacy key → a token for the field service, narrowed to one scope.
    let response = authority
        .exchange_legacy_key(
            "epicor-bridge",
            &bridge,
            LEGACY_KEY,
            "field-service",
            Some("jobs:epicor-update"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["issued_token_type"], ACCESS);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "jobs:epicor-update");
    let from_key = body["access_token"].as_str().unwrap().to_owned();
    let claims = authority.verify(&from_key, "field-service").await;
    assert_eq!(claims.sub, "epicor");
    assert_eq!(claims.client_id, "epicor-bridge");
    assert_eq!(claims.tenant.as_deref(), Some("acme"));
    assert_eq!(
        claims.act,
        Some(serde_json::json!({"sub": "epicor-bridge"}))
    );
    assert!(claims.exp - claims.iat <= 600, "short-lived");

    // Without a scope: everything the key and the client both allow (never jobs:write, which
    // only the client has).
    let response = authority
        .exchange_legacy_key("epicor-bridge", &bridge, LEGACY_KEY, "field-service", None)
        .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "jobs:read jobs:epicor-update");

    // Widened scopes are refused: beyond the key, and beyond the client.
    for scope in ["jobs:write", "admin"] {
        let response = authority
            .exchange_legacy_key(
                "epicor-bridge",
                &bridge,
                LEGACY_KEY,
                "field-service",
                Some(scope),
            )
            .await;
        let (status, error, _) = error_of(response).await;
        assert_eq!(
            (status, error.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_scope")
        );
    }
    // An audience the client is not registered for.
    let response = authority
        .exchange_legacy_key("epicor-bridge", &bridge, LEGACY_KEY, "payroll.api", None)
        .await;
    assert_eq!(error_of(response).await.1, "invalid_target");

    // Wrong key, unknown key, another client's key: one invalid_grant that says nothing more.
    let mut descriptions = Vec::new();
    for (id, secret, subject) in [
        (
            "epicor-bridge",
            bridge.as_str(),
            "legacy-epicor-key-7f3a9c2e11b04d5b",
        ),
        ("epicor-bridge", bridge.as_str(), "x"),
        ("other-bridge", other.as_str(), LEGACY_KEY),
    ] {
        let response = authority
            .exchange_legacy_key(id, secret, subject, "field-service", None)
            .await;
        let (status, error, description) = error_of(response).await;
        assert_eq!(
            (status, error.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_grant")
        );
        assert!(!description.contains(LEGACY_KEY) && !description.contains("7f3a"));
        descriptions.push(description);
    }
    assert!(
        descriptions.windows(2).all(|w| w[0] == w[1]),
        "{descriptions:?}"
    );

    // Malformed requests: RFC 8693 invalid_request.
    for form in [
        vec![("grant_type", EXCHANGE), ("subject_token_type", ACCESS)],
        vec![("grant_type", EXCHANGE), ("subject_token", "x")],
        vec![
            ("grant_type", EXCHANGE),
            ("subject_token", "x"),
            ("subject_token_type", "urn:example:saml"),
        ],
        vec![
            ("grant_type", EXCHANGE),
            ("subject_token", LEGACY_KEY),
            ("subject_token_type", LEGACY_API_KEY_TOKEN_TYPE),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            ),
        ],
    ] {
        let response = authority.token("epicor-bridge", &bridge, &form).await;
        assert_eq!(error_of(response).await.1, "invalid_request", "{form:?}");
    }

    // 2. An access token (from the exchange above) → a token for another API of the client,
    // narrowed further; the delegation chain grows.
    let response = authority
        .token(
            "epicor-bridge",
            &bridge,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &from_key),
                ("subject_token_type", ACCESS),
                ("audience", "ap.api"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "jobs:epicor-update");
    let chained = authority
        .verify(body["access_token"].as_str().unwrap(), "ap.api")
        .await;
    assert_eq!(chained.sub, "epicor");
    assert_eq!(
        chained.act,
        Some(serde_json::json!({"sub": "epicor-bridge", "act": {"sub": "epicor-bridge"}}))
    );
    assert!(
        chained.exp <= claims.exp,
        "never outlives the subject token"
    );
    // Scope the subject token lacks is refused even though the client has it.
    let response = authority
        .token(
            "epicor-bridge",
            &bridge,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &from_key),
                ("subject_token_type", ACCESS),
                ("audience", "ap.api"),
                ("scope", "jobs:read"),
            ],
        )
        .await;
    assert_eq!(error_of(response).await.1, "invalid_scope");

    // 3. A revoked subject token is refused.
    let response = authority
        .http
        .post(format!("{}/oauth2/revoke", authority.app.base_url()))
        .basic_auth("epicor-bridge", Some(&bridge))
        .form(&[("token", from_key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = authority
        .token(
            "epicor-bridge",
            &bridge,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &from_key),
                ("subject_token_type", ACCESS),
                ("audience", "ap.api"),
            ],
        )
        .await;
    assert_eq!(error_of(response).await.1, "invalid_grant");

    // A revoked legacy key is refused too.
    let id = legacy_keys::list(state.store(), Some("epicor-bridge"))
        .await
        .unwrap()[0]
        .id
        .clone();
    legacy_keys::revoke(state.store(), state.audit(), START + 1, &id, "e2e")
        .await
        .unwrap();
    let response = authority
        .exchange_legacy_key("epicor-bridge", &bridge, LEGACY_KEY, "field-service", None)
        .await;
    assert_eq!(error_of(response).await.1, "invalid_grant");

    // Every exchange is audited (successes and refusals), and the key never appears.
    let rows = state.store().audit_rows_after(0, 10_000).await.unwrap();
    let exchanged: Vec<&str> = rows
        .iter()
        .filter(|r| r.kind == "token.exchanged")
        .map(|r| r.outcome.as_str())
        .collect();
    assert!(exchanged.iter().filter(|o| **o == "success").count() >= 3);
    assert!(exchanged.iter().filter(|o| **o == "failure").count() >= 5);
    assert!(rows.iter().all(|r| !r.detail.contains(LEGACY_KEY)));
    crate::support::assert_audit_intact(state.store()).await;

    authority.app.shutdown().await.unwrap();
}
