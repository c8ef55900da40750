//! Users, the password grant, rotating refresh tokens, revocation and introspection
//! end to end: the server in-process with a manual clock, on SQLite and on PostgreSQL, over
//! real HTTP. Two replicas share one store (the same SQLite file, or one PostgreSQL database).

use chrono::TimeDelta;
use gha_auth::apikey::{ApiKey, SecretKind};
use gha_auth::jwt::{AccessClaims, Validation, Verifier};
use gha_auth::keys::JwkSet;
use gha_auth::{Clock, ManualClock, SecretString};
use gha_auth_server::config::Config;
use gha_auth_server::testing::Users;
use gha_auth_server::testing::{ClientRegistration, GrantType};
use gha_auth_server::{RunningApp, build_app};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{AUDIENCE, Backend, START, assert_audit_intact};

pub(crate) const MOBILE: &str = "mfs-mobile";
pub(crate) const PASSWORD: &str = "correct horse battery";

/// Replicas of one authority on one store, with one manual clock.
pub(crate) struct Cluster {
    replicas: Vec<Option<RunningApp>>,
    pub(crate) clock: ManualClock,
    config: Config,
    pub(crate) http: reqwest::Client,
    _data: tempfile::TempDir,
    _backend: Backend,
}

impl Cluster {
    async fn start(backend: Backend, replicas: usize) -> Self {
        Self::start_configured(backend, replicas, |_| {}).await
    }

    /// Like [`Cluster::start`], with `configure` applied to the replicas' configuration.
    pub(crate) async fn start_configured(
        backend: Backend,
        replicas: usize,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.data_dir = data.path().join("data");
        // Cheap hashes keep the tests fast; the cost itself is measured in the benchmark.
        config.users.argon2_memory_kib = 1024;
        config.users.argon2_iterations = 1;
        // The manual clock never refills token buckets; abuse limits have their own tests.
        config.rate_limit.enabled = false;
        // Short lifetimes keep the clock well inside one signing-key period.
        config.refresh.idle_lifetime = gha_auth_server::config::Duration::days(2);
        config.refresh.absolute_lifetime = gha_auth_server::config::Duration::days(5);
        if let Backend::Postgres(db) = &backend {
            config.store.url = Some(db.url().to_owned());
        }
        configure(&mut config);
        let mut cluster = Self {
            replicas: Vec::new(),
            clock: ManualClock::at_unix(START),
            config,
            http: reqwest::Client::new(),
            _data: data,
            _backend: backend,
        };
        for _ in 0..replicas {
            let app = cluster.boot(cluster.config.clone()).await;
            cluster.replicas.push(Some(app));
        }
        cluster
    }

    async fn boot(&self, config: Config) -> RunningApp {
        build_app(config, self.clock.shared())
            .await
            .expect("authority starts")
            .spawn()
    }

    pub(crate) async fn restart(&mut self, i: usize) {
        let running = self.replicas[i].take().unwrap();
        let mut config = self.config.clone();
        config.listen = running.local_addr();
        running.shutdown().await.unwrap();
        self.replicas[i] = Some(self.boot(config).await);
    }

    pub(crate) fn app(&self, i: usize) -> &RunningApp {
        self.replicas[i].as_ref().unwrap()
    }

    pub(crate) fn url(&self, i: usize, path: &str) -> String {
        format!("{}{path}", self.app(i).base_url())
    }

    pub(crate) async fn users(&self) -> Users {
        let state = self.app(0).authority();
        Users::new(
            state.store().clone(),
            state.audit().clone(),
            self.clock.shared(),
            self.config.users.clone(),
        )
        .await
        .unwrap()
    }

    pub(crate) async fn setup(&self) -> String {
        let clients = self.app(0).authority().clients();
        clients
            .register(
                ClientRegistration::new(MOBILE)
                    .grant(GrantType::Password)
                    .grant(GrantType::RefreshToken)
                    .scope("jobs:read")
                    .scope("jobs:write")
                    .audience(AUDIENCE)
                    .first_party(true)
                    .public(true),
                "e2e",
            )
            .await
            .unwrap();
        // Confidential and not first-party (registration refuses it the password grant).
        let (_, secret) = clients
            .register(
                ClientRegistration::new("svc-introspect")
                    .grant(GrantType::ClientCredentials)
                    .scope("jobs:read")
                    .audience(AUDIENCE)
                    // The API the users' tokens are for: it may introspect them.
                    .resource_server(AUDIENCE),
                "e2e",
            )
            .await
            .unwrap();
        let users = self.users().await;
        let password = SecretString::from(PASSWORD);
        users
            .add(
                "",
                "alice",
                &["technician".to_owned(), "dispatcher".to_owned()],
                &password,
                "e2e",
            )
            .await
            .unwrap();
        users.add("", "bob", &[], &password, "e2e").await.unwrap();
        users.disable("", "bob", "e2e").await.unwrap();
        users.add("", "carol", &[], &password, "e2e").await.unwrap();
        users
            .add("acme", "dave", &["planner".to_owned()], &password, "e2e")
            .await
            .unwrap();
        secret.unwrap().expose().to_owned()
    }

    pub(crate) async fn post(
        &self,
        i: usize,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.http
            .post(self.url(i, path))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn login(
        &self,
        i: usize,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        self.post(
            i,
            "/oauth2/token",
            &[
                ("grant_type", "password"),
                ("client_id", MOBILE),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    pub(crate) async fn refresh(&self, i: usize, token: &str) -> reqwest::Response {
        self.post(
            i,
            "/oauth2/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", MOBILE),
                ("refresh_token", token),
            ],
        )
        .await
    }

    pub(crate) async fn verify(&self, token: &str) -> AccessClaims {
        let body = self
            .http
            .get(self.url(0, "/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let keys = JwkSet::parse_lenient(&body).unwrap();
        let issuer = self.app(0).authority().issuer().to_owned();
        Verifier::new(
            Validation::new(issuer, [AUDIENCE]).unwrap(),
            self.clock.shared(),
        )
        .verify::<AccessClaims>(token, &keys)
        .unwrap()
        .claims
    }

    pub(crate) async fn introspect(&self, secret: &str, token: &str) -> Value {
        let response = self
            .http
            .post(self.url(0, "/oauth2/introspect"))
            .basic_auth("svc-introspect", Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        response.json().await.unwrap()
    }

    pub(crate) async fn audit_kinds(&self) -> Vec<(String, String)> {
        self.app(0)
            .authority()
            .store()
            .audit_rows_after(0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.kind, r.detail))
            .collect()
    }

    pub(crate) async fn shutdown(mut self) {
        for running in self.replicas.iter_mut().filter_map(Option::take) {
            running.shutdown().await.unwrap();
        }
    }
}

/// A 200 token response: (access token, refresh token).
pub(crate) async fn tokens(response: reqwest::Response) -> (String, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// An RFC 6749 error: (status, error code, description).
pub(crate) async fn error_of(response: reqwest::Response) -> (StatusCode, String, String) {
    let status = response.status();
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "never a 500");
    let body: Value = response.json().await.expect("error bodies are JSON");
    (
        status,
        body["error"].as_str().unwrap().to_owned(),
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

async fn login_and_rotate(backend: Backend) {
    let mut cluster = Cluster::start(backend, 2).await;
    cluster.setup().await;

    // Login: an access token with roles, and a ghar_ refresh token.
    let (access, r0) = tokens(cluster.login(0, "alice", PASSWORD).await).await;
    assert!(r0.starts_with("ghar_"));
    let claims = cluster.verify(&access).await;
    assert!(claims.sub.starts_with("u-"));
    assert_eq!(claims.client_id, MOBILE);
    assert_eq!(claims.roles, ["technician", "dispatcher"]);
    assert_eq!(claims.scope.as_deref(), Some("jobs:read jobs:write"));

    // Refresh: a new token, and a fresh access token for the same user.
    let (access1, r1) = tokens(cluster.refresh(0, &r0).await).await;
    assert_ne!(r1, r0);
    assert_eq!(cluster.verify(&access1).await.sub, claims.sub);

    // The same request again within the grace window (the response was lost): the SAME
    // successor, and a fresh access token.
    cluster.clock.advance(TimeDelta::seconds(10));
    let (access1b, r1b) = tokens(cluster.refresh(0, &r0).await).await;
    assert_eq!(
        r1b, r1,
        "a repeat within the grace window gets the same successor"
    );
    assert_ne!(access1b, access1);
    // ... also on the other replica.
    let (_, r1c) = tokens(cluster.refresh(1, &r0).await).await;
    assert_eq!(r1c, r1);

    // A refresh on one replica continues on the other.
    let (_, r2) = tokens(cluster.refresh(1, &r1).await).await;
    let (_, r3) = tokens(cluster.refresh(0, &r2).await).await;

    // Concurrent refreshes of one token on two replicas do not fork the family.
    let (a, b) = tokio::join!(cluster.refresh(0, &r3), cluster.refresh(1, &r3));
    let ((_, r4a), (_, r4b)) = (tokens(a).await, tokens(b).await);
    assert_eq!(r4a, r4b, "both replicas hand out the one successor");

    // A restart loses no family.
    cluster.restart(0).await;
    cluster.restart(1).await;
    let (_, r5) = tokens(cluster.refresh(0, &r4a).await).await;

    // Replay after the grace window: the family is revoked, the live successor dies with it,
    // and the reuse is audited.
    cluster.clock.advance(TimeDelta::seconds(31));
    let (status, error, _) = error_of(cluster.refresh(1, &r4a).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let (_, error, _) = error_of(cluster.refresh(0, &r5).await).await;
    assert_eq!(error, "invalid_grant", "the whole family is revoked");
    let audit = cluster.audit_kinds().await;
    assert!(audit.iter().any(|(k, _)| k == "refresh.reuse_detected"));
    for (_, detail) in &audit {
        assert!(!detail.contains("ghar_") && !detail.contains(PASSWORD));
    }

    // A fresh login is unaffected.
    let (_, s0) = tokens(cluster.login(1, "alice", PASSWORD).await).await;
    tokens(cluster.refresh(0, &s0).await).await;

    // A reuse within the window after the successor was itself used is reuse too.
    let (_, t0) = tokens(cluster.login(0, "alice", PASSWORD).await).await;
    let (_, t1) = tokens(cluster.refresh(0, &t0).await).await;
    tokens(cluster.refresh(0, &t1).await).await;
    let (_, error, _) = error_of(cluster.refresh(0, &t0).await).await;
    assert_eq!(error, "invalid_grant");

    // Sliding lifetime: an unused token dies after refresh.idle_lifetime (2 days here).
    let (_, u0) = tokens(cluster.login(0, "alice", PASSWORD).await).await;
    cluster.clock.advance(TimeDelta::days(2));
    let (_, error, _) = error_of(cluster.refresh(0, &u0).await).await;
    assert_eq!(error, "invalid_grant");

    // Absolute lifetime (5 days here): refreshing every 36 hours ends 5 days after login,
    // although the last token alone would slide on for 2 more days.
    let (_, mut v) = tokens(cluster.login(0, "alice", PASSWORD).await).await;
    for _ in 0..3 {
        cluster.clock.advance(TimeDelta::hours(36));
        v = tokens(cluster.refresh(0, &v).await).await.1;
    }
    cluster.clock.advance(TimeDelta::hours(12));
    let (_, error, _) = error_of(cluster.refresh(0, &v).await).await;
    assert_eq!(error, "invalid_grant");

    // Housekeeping (also run by the server's maintenance task as the clock moves) drops
    // families after their absolute end, and nothing live.
    let state = cluster.app(0).authority();
    let store = state.store();
    gha_auth_server::testing::purge_expired(store, cluster.clock.unix_seconds())
        .await
        .unwrap();
    let first = ApiKey::parse_kind(&r0, SecretKind::RefreshToken).unwrap();
    assert!(
        gha_auth_server::testing::lookup(state.families(), &first)
            .await
            .unwrap()
            .is_none(),
        "the first family has ended and is gone"
    );
    let (_, live) = tokens(cluster.login(0, "alice", PASSWORD).await).await;
    gha_auth_server::testing::purge_expired(store, cluster.clock.unix_seconds())
        .await
        .unwrap();
    tokens(cluster.refresh(1, &live).await).await;

    assert_audit_intact(cluster.app(0).authority().store()).await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn sqlite_login_refresh_grace_reuse_replicas_restart() {
    login_and_rotate(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_login_refresh_grace_reuse_replicas_restart() {
    login_and_rotate(Backend::postgres().await).await;
}

async fn bad_input(backend: Backend) {
    let cluster = Cluster::start(backend, 1).await;
    let secret = cluster.setup().await;
    let invalid_grant = (
        StatusCode::BAD_REQUEST,
        "invalid_grant".to_owned(),
        "the username or password is wrong".to_owned(),
    );

    // Wrong password, unknown user, disabled user: one answer.
    assert_eq!(
        error_of(cluster.login(0, "alice", "wrong password").await).await,
        invalid_grant
    );
    assert_eq!(
        error_of(cluster.login(0, "mallory", PASSWORD).await).await,
        invalid_grant
    );
    assert_eq!(
        error_of(cluster.login(0, "bob", PASSWORD).await).await,
        invalid_grant
    );
    // ... to the byte, headers included (all but Date): nothing tells who exists. (Timing: an
    // unknown or disabled user costs one Argon2id verification against a dummy hash, see
    // `Users::login`; not asserted here, tests make no timing claims.)
    let mut answers = Vec::new();
    for (user, password) in [
        ("alice", "another wrong one"),
        ("mallory", PASSWORD),
        ("bob", PASSWORD),
    ] {
        let response = cluster.login(0, user, password).await;
        let mut headers: Vec<_> = response
            .headers()
            .iter()
            .filter(|(name, _)| *name != "date")
            .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap()))
            .collect();
        headers.sort();
        answers.push((response.status(), headers, response.text().await.unwrap()));
    }
    assert_eq!(answers[0], answers[1], "wrong password vs unknown user");
    assert_eq!(answers[0], answers[2], "wrong password vs disabled user");

    // A public client trying client_credentials.
    let response = cluster
        .post(
            0,
            "/oauth2/token",
            &[("grant_type", "client_credentials"), ("client_id", MOBILE)],
        )
        .await;
    assert_eq!(error_of(response).await.1, "invalid_client");

    // A confidential client that is not first-party trying password.
    let response = cluster
        .http
        .post(cluster.url(0, "/oauth2/token"))
        .basic_auth("svc-introspect", Some(&secret))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.1, "unauthorized_client");

    // Malformed bodies.
    let token_url = cluster.url(0, "/oauth2/token");
    let response = cluster
        .http
        .post(&token_url)
        .header("content-type", "application/json")
        .body(r#"{"grant_type":"password"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.1, "invalid_request");
    for body in [
        "grant_type=password&client_id=mfs-mobile&password=x",
        "grant_type=password&client_id=mfs-mobile&username=alice",
        "grant_type=password&client_id=mfs-mobile&username=a&username=b&password=x",
        "grant_type=refresh_token&client_id=mfs-mobile",
        "%%%&&=",
        "grant_type=password&client_id=mfs-mobile&username=alice&password=%FF%FE",
    ] {
        let response = cluster
            .http
            .post(&token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, error, _) = error_of(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            ["invalid_request", "invalid_grant", "invalid_client"].contains(&error.as_str()),
            "{body}: {error}"
        );
    }
    for token in [
        "nonsense",
        "ghar_00000000000000000000000000000000000000000000000000",
    ] {
        let (_, error, _) = error_of(cluster.refresh(0, token).await).await;
        assert_eq!(error, "invalid_grant");
    }

    // Backoff: after 5 failures from this source carol backs off there, even with the right
    // password, until the backoff has passed: 429 with Retry-After.
    for _ in 0..5 {
        error_of(cluster.login(0, "carol", "wrong password").await).await;
    }
    let response = cluster.login(0, "carol", PASSWORD).await;
    assert!(response.headers().contains_key("retry-after"));
    let (status, error, _) = error_of(response).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error, "rate_limited");
    cluster.clock.advance(TimeDelta::seconds(2));
    tokens(cluster.login(0, "carol", PASSWORD).await).await;

    // A client without a tenant names the user's tenant with `tenant`; the token carries it.
    let response = cluster
        .post(
            0,
            "/oauth2/token",
            &[
                ("grant_type", "password"),
                ("client_id", MOBILE),
                ("tenant", "acme"),
                ("username", "dave"),
                ("password", PASSWORD),
            ],
        )
        .await;
    let (access, _) = tokens(response).await;
    let claims = cluster.verify(&access).await;
    assert_eq!(claims.tenant.as_deref(), Some("acme"));
    assert_eq!(claims.roles, ["planner"]);
    assert_eq!(
        error_of(cluster.login(0, "dave", PASSWORD).await).await,
        invalid_grant,
        "dave is not in the empty tenant"
    );

    // Every failure is audited, without the password.
    let audit = cluster.audit_kinds().await;
    let failures: Vec<_> = audit
        .iter()
        .filter(|(k, _)| k == "user.auth_failed")
        .collect();
    assert!(failures.len() >= 9, "{failures:?}");
    assert!(failures.iter().any(|(_, d)| d.contains("unknown_user")));
    assert!(failures.iter().any(|(_, d)| d.contains("user_disabled")));
    assert!(audit.iter().any(|(k, _)| k == "user.login_backoff"));
    assert!(
        audit
            .iter()
            .all(|(_, d)| !d.contains(PASSWORD) && !d.contains("wrong password"))
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn sqlite_bad_input_gets_rfc6749_errors() {
    bad_input(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_bad_input_gets_rfc6749_errors() {
    bad_input(Backend::postgres().await).await;
}

async fn revoke_and_introspect(backend: Backend) {
    let cluster = Cluster::start(backend, 1).await;
    let secret = cluster.setup().await;
    let (access, refresh) = tokens(cluster.login(0, "alice", PASSWORD).await).await;

    // Introspection needs an authenticated, confidential caller.
    let response = cluster
        .post(
            0,
            "/oauth2/introspect",
            &[("token", &access), ("client_id", MOBILE)],
        )
        .await;
    assert_eq!(error_of(response).await.1, "invalid_client");
    let response = cluster
        .post(0, "/oauth2/introspect", &[("token", &access)])
        .await;
    assert_eq!(error_of(response).await.1, "invalid_client");

    let body = cluster.introspect(&secret, &access).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["client_id"], MOBILE);
    assert!(body["sub"].as_str().unwrap().starts_with("u-"));
    assert_eq!(body["roles"][0], "technician");
    // A refresh token is addressed to no API: only its own client may learn about it.
    assert_eq!(
        cluster.introspect(&secret, &refresh).await,
        serde_json::json!({"active": false})
    );
    for junk in [
        "x",
        "ghar_00000000000000000000000000000000000000000000000000",
        "a.b.c",
    ] {
        assert_eq!(
            cluster.introspect(&secret, junk).await,
            serde_json::json!({"active": false})
        );
    }

    // Revocation: unknown tokens are fine; another client's token is left alone.
    let response = cluster
        .post(
            0,
            "/oauth2/revoke",
            &[("token", "whatever"), ("client_id", MOBILE)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = cluster
        .http
        .post(cluster.url(0, "/oauth2/revoke"))
        .basic_auth("svc-introspect", Some(&secret))
        .form(&[("token", refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Left alone: the refresh below still works with it.
    // A missing token is a bad request.
    let response = cluster
        .post(0, "/oauth2/revoke", &[("client_id", MOBILE)])
        .await;
    assert_eq!(error_of(response).await.1, "invalid_request");

    // The owner revokes the access token: introspection says inactive.
    let response = cluster
        .post(
            0,
            "/oauth2/revoke",
            &[("token", &access), ("client_id", MOBILE)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(cluster.introspect(&secret, &access).await["active"], false);

    // Revoking a refresh token revokes its family: the successor stops working too.
    let (_, successor) = tokens(cluster.refresh(0, &refresh).await).await;
    assert_eq!(
        cluster.introspect(&secret, &refresh).await["active"],
        false,
        "used"
    );
    let response = cluster
        .post(
            0,
            "/oauth2/revoke",
            &[
                ("token", &refresh),
                ("token_type_hint", "refresh_token"),
                ("client_id", MOBILE),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        cluster.introspect(&secret, &successor).await["active"],
        false
    );
    let (_, error, _) = error_of(cluster.refresh(0, &successor).await).await;
    assert_eq!(error, "invalid_grant");
    let audit = cluster.audit_kinds().await;
    assert_eq!(
        audit.iter().filter(|(k, _)| k == "token.revoked").count(),
        2
    );

    // Disabling a user ends their logins at once: every family is revoked.
    let (_, w0) = tokens(cluster.login(0, "alice", PASSWORD).await).await;
    cluster
        .users()
        .await
        .disable("", "alice", "e2e")
        .await
        .unwrap();
    assert_eq!(cluster.introspect(&secret, &w0).await["active"], false);
    let (_, error, _) = error_of(cluster.refresh(0, &w0).await).await;
    assert_eq!(error, "invalid_grant");
    cluster.shutdown().await;
}

#[tokio::test]
async fn sqlite_revoke_and_introspect() {
    revoke_and_introspect(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_revoke_and_introspect() {
    revoke_and_introspect(Backend::postgres().await).await;
}
