//! The admin API (`/admin/v1`), in-process on 127.0.0.1:0: every route refuses a missing token
//! (401), a token without the scope or role (403) and a tenant's administrator acting outside its
//! tenant (403); every successful call leaves an audit row naming its actor.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gha_auth::{ManualClock, SecretString};
use gha_auth_server::config::Config;
use gha_auth_server::testing::{ClientRegistration, GrantType};
use gha_auth_server::{RunningApp, build_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

const START: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const ADMIN_AUDIENCE: &str = "gha-auth-admin";
const ALL_SCOPES: [&str; 6] = [
    "admin:clients",
    "admin:users",
    "admin:keys",
    "admin:link-keys",
    "admin:broker",
    "admin:audit",
];
const PASSWORD: &str = "correct horse battery";

struct Server {
    app: RunningApp,
    _clock: ManualClock,
    http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Server {
    async fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let secret_file = data.path().join("webhook-secret");
        std::fs::write(&secret_file, "webhook-signing-secret").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let mut config = Config::default();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.data_dir = data.path().join("data");
        let link_key = serde_json::from_value(json!({
            "rotation_period": "1d", "overlap": "1h", "quiet_period": "10m", "max_age": "60s",
            "validator_max_stale": "0s", "publish_ahead": "2m", "retry_base": "10s",
            "retry_max": "2m", "claim_timeout": "1m",
            "target": {"kind": "webhook", "url": "http://127.0.0.1:1/", "secret_file": secret_file},
        }))
        .unwrap();
        config.link_keys.insert("epicor".into(), link_key);
        let clock = ManualClock::at_unix(START);
        let app = build_app(config, clock.shared()).await.unwrap().spawn();
        Self {
            app,
            _clock: clock,
            http: reqwest::Client::new(),
            _data: data,
        }
    }

    /// Registers a client_credentials client for the admin audience; returns its secret.
    async fn admin_client(&self, id: &str, scopes: &[&str], tenant: Option<&str>) -> String {
        let mut registration = ClientRegistration::new(id)
            .grant(GrantType::ClientCredentials)
            .audience(ADMIN_AUDIENCE);
        for scope in scopes {
            registration = registration.scope(*scope);
        }
        if let Some(tenant) = tenant {
            registration = registration.tenant(tenant);
        }
        let (_, secret) = self
            .app
            .authority()
            .clients()
            .register(registration, "test")
            .await
            .unwrap();
        secret.unwrap().expose().to_owned()
    }

    async fn client_token(&self, id: &str, secret: &str, scopes: &[&str]) -> String {
        let scope = scopes.join(" ");
        let mut form = vec![("grant_type", "client_credentials")];
        if !scope.is_empty() {
            form.push(("scope", scope.as_str()));
        }
        let response = self
            .http
            .post(self.app.authority().token_endpoint())
            .basic_auth(id, Some(secret))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "token for {id}");
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn user_token(&self, tenant: &str, username: &str) -> String {
        let response = self
            .http
            .post(self.app.authority().token_endpoint())
            .form(&[
                ("grant_type", "password"),
                ("client_id", "console"),
                ("username", username),
                ("password", PASSWORD),
                ("tenant", tenant),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "login of {username}");
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.app.base_url()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let bytes = response.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// `admin.api_call` rows: (actor, action, outcome).
    async fn admin_calls(&self) -> Vec<(String, String, String)> {
        let rows = self
            .app
            .authority()
            .store()
            .audit_rows_after(0, 100_000)
            .await
            .unwrap();
        rows.into_iter()
            .filter(|r| r.kind == "admin.api_call")
            .map(|r| {
                let detail: Value = serde_json::from_str(&r.detail).unwrap();
                (
                    r.actor,
                    detail["action"].as_str().unwrap().to_owned(),
                    r.outcome,
                )
            })
            .collect()
    }
}

/// One route: the call on the admin's own objects (tenant `acme`, or the whole area), the same
/// call on another tenant's objects (for per-tenant areas), the action it audits and the status
/// the full administrator gets.
struct Route {
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    foreign: Option<(&'static str, Option<Value>)>,
    action: &'static str,
    expect: StatusCode,
    /// A listing: a tenant's administrator gets its own tenant's part.
    listing: bool,
}

fn route(method: &'static str, path: &'static str, action: &'static str) -> Route {
    Route {
        method,
        path,
        body: None,
        foreign: None,
        action,
        expect: StatusCode::OK,
        listing: false,
    }
}

impl Route {
    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
    fn foreign(mut self, path: &'static str, body: Option<Value>) -> Self {
        self.foreign = Some((path, body));
        self
    }
    fn listing(mut self) -> Self {
        self.listing = true;
        self
    }
    fn expect(mut self, status: StatusCode) -> Self {
        self.expect = status;
        self
    }
}

fn routes() -> Vec<Route> {
    let legacy = |id: &str| {
        json!({"subject": "legacy-user", "scopes": ["orders:read"], "id": id,
            "key": format!("legacy-key-{id}-0123456789abcdef")})
    };
    vec![
        route("GET", "/admin/v1/clients", "clients.list").listing(),
        route("POST", "/admin/v1/clients", "clients.add")
            .body(json!({"id": "new-acme", "grants": ["client_credentials"], "audiences": ["mfs.api"], "tenant": "acme"}))
            .foreign("/admin/v1/clients", Some(json!({"id": "new-globex", "grants": ["client_credentials"], "audiences": ["mfs.api"], "tenant": "globex"}))),
        route("GET", "/admin/v1/clients/acme-svc", "clients.show")
            .foreign("/admin/v1/clients/globex-svc", None),
        route("POST", "/admin/v1/clients/acme-svc/rotate-secret", "clients.rotate_secret")
            .body(json!({"grace_secs": 60}))
            .foreign("/admin/v1/clients/globex-svc/rotate-secret", Some(json!({}))),
        route("POST", "/admin/v1/clients/acme-svc/legacy-keys", "clients.legacy_keys.add")
            .body(legacy("lk-acme"))
            .foreign("/admin/v1/clients/globex-svc/legacy-keys", Some(legacy("lk-globex"))),
        route("GET", "/admin/v1/clients/acme-svc/legacy-keys", "clients.legacy_keys.list")
            .foreign("/admin/v1/clients/globex-svc/legacy-keys", None),
        route("POST", "/admin/v1/clients/acme-svc/legacy-keys/lk-acme/revoke", "clients.legacy_keys.revoke")
            .foreign("/admin/v1/clients/globex-svc/legacy-keys/lk-globex/revoke", None),
        route("POST", "/admin/v1/clients/acme-svc/disable", "clients.disable")
            .foreign("/admin/v1/clients/globex-svc/disable", None),
        route("GET", "/admin/v1/users?tenant=acme", "users.list")
            .foreign("/admin/v1/users?tenant=globex", None),
        route("POST", "/admin/v1/users", "users.add")
            .body(json!({"username": "carol", "tenant": "acme", "password": PASSWORD}))
            .foreign("/admin/v1/users", Some(json!({"username": "carol", "tenant": "globex", "password": PASSWORD}))),
        route("POST", "/admin/v1/users/carol/password?tenant=acme", "users.set_password")
            .body(json!({"password": "another good password"}))
            .foreign("/admin/v1/users/bob/password?tenant=globex", Some(json!({"password": "another good password"}))),
        route("PUT", "/admin/v1/users/carol/roles?tenant=acme", "users.set_roles")
            .body(json!({"roles": ["viewer"]}))
            .foreign("/admin/v1/users/bob/roles?tenant=globex", Some(json!({"roles": ["viewer"]}))),
        route("POST", "/admin/v1/users/carol/disable?tenant=acme", "users.disable")
            .foreign("/admin/v1/users/bob/disable?tenant=globex", None),
        route("GET", "/admin/v1/keys", "keys.list"),
        route("POST", "/admin/v1/keys/rotate", "keys.rotate"),
        route("GET", "/admin/v1/link-keys", "link_keys.status"),
        route("POST", "/admin/v1/link-keys/epicor/rotate", "link_keys.rotate"),
        route("POST", "/admin/v1/link-keys/epicor/retire-previous", "link_keys.retire_previous")
            .body(json!({}))
            .expect(StatusCode::CONFLICT),
        route("GET", "/admin/v1/broker", "broker.state"),
        route("PUT", "/admin/v1/broker/secrets/apps/billing/smtp", "broker.secrets.put")
            .body(json!({"fields": {"password": "admin-put-pw"}})),
        route("GET", "/admin/v1/broker/secrets", "broker.secrets.list"),
        route("GET", "/admin/v1/broker/secrets/apps/billing/smtp", "broker.secrets.show"),
        route("GET", "/admin/v1/audit?after=0&limit=5", "audit.list"),
        route("GET", "/admin/v1/audit/verify", "audit.verify"),
        // Last: it stops every token issued so far.
        route("POST", "/admin/v1/keys/emergency-rotate", "keys.emergency_rotate"),
    ]
}

#[tokio::test]
async fn every_route_refuses_missing_tokens_missing_rights_and_other_tenants_and_audits_the_actor()
{
    let server = Server::start().await;
    let authority = server.app.authority();
    // The objects: one client and one user in each of two tenants.
    for (id, tenant) in [("acme-svc", "acme"), ("globex-svc", "globex")] {
        authority
            .clients()
            .register(
                ClientRegistration::new(id)
                    .grant(GrantType::ClientCredentials)
                    .grant(GrantType::TokenExchange)
                    .scope("orders:read")
                    .audience("mfs.api")
                    .tenant(tenant),
                "test",
            )
            .await
            .unwrap();
    }
    authority
        .clients()
        .register(
            ClientRegistration::new("console")
                .grant(GrantType::Password)
                .audience(ADMIN_AUDIENCE)
                .first_party(true)
                .public(true),
            "test",
        )
        .await
        .unwrap();
    let password = SecretString::from(PASSWORD);
    for (tenant, name, roles) in [
        ("", "boss", vec!["admin".to_owned()]),
        ("acme", "tadmin", vec!["tenant-admin".to_owned()]),
        ("acme", "plain", vec![]),
        ("globex", "bob", vec![]),
    ] {
        authority
            .users()
            .add(tenant, name, &roles, &password, "test")
            .await
            .unwrap();
    }
    // The callers.
    let root_secret = server.admin_client("root", &ALL_SCOPES, None).await;
    let weak_secret = server.admin_client("weak", &["orders:read"], None).await;
    let acme_secret = server
        .admin_client("acme-ops", &["admin:clients", "admin:users"], Some("acme"))
        .await;
    let root = server.client_token("root", &root_secret, &ALL_SCOPES).await;
    let weak = server.client_token("weak", &weak_secret, &[]).await;
    let acme_ops = server
        .client_token("acme-ops", &acme_secret, &["admin:clients", "admin:users"])
        .await;
    let tenant_admin = server.user_token("acme", "tadmin").await;
    let plain = server.user_token("acme", "plain").await;

    for route in routes() {
        let what = format!("{} {}", route.method, route.path);
        let body = route.body.as_ref();
        let (status, _) = server.call(route.method, route.path, body, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what} without a token");
        for token in [&weak, &plain] {
            let (status, answer) = server
                .call(route.method, route.path, body, Some(token))
                .await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{what} without the scope or role"
            );
            assert_eq!(answer["error"], "forbidden");
        }
        for token in [&acme_ops, &tenant_admin] {
            let (path, body) = match &route.foreign {
                Some((path, body)) => (*path, body.as_ref()),
                // A tenant's administrator cannot reach areas that are not a tenant's.
                None => (route.path, body),
            };
            let (status, answer) = server.call(route.method, path, body, Some(token)).await;
            if route.listing {
                assert_eq!(status, StatusCode::OK, "{what} by a tenant admin");
                let tenants: Vec<&Value> = answer
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| &o["tenant"])
                    .collect();
                assert!(
                    !tenants.is_empty() && tenants.iter().all(|t| *t == "acme"),
                    "{what}: {tenants:?}"
                );
                continue;
            }
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{} {path} by a tenant admin",
                route.method
            );
        }
        let before = server.admin_calls().await.len();
        let (status, answer) = server
            .call(route.method, route.path, body, Some(&root))
            .await;
        assert_eq!(
            status, route.expect,
            "{what} by the administrator: {answer}"
        );
        let calls = server.admin_calls().await;
        let outcome = if status == StatusCode::OK {
            "success"
        } else {
            "failure"
        };
        assert!(
            calls[before..].contains(&(
                "client:root".to_owned(),
                route.action.to_owned(),
                outcome.to_owned()
            )),
            "{what}: no audit row naming the actor: {calls:?}"
        );
        assert!(
            !answer.to_string().contains("webhook-signing-secret"),
            "{what} shows a secret"
        );
    }
    // Refusals are audited with their actor too.
    let calls = server.admin_calls().await;
    assert!(calls.contains(&("client:weak".into(), "keys.list".into(), "failure".into())));
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn tenant_admins_manage_their_own_tenant_and_admins_everything() {
    let server = Server::start().await;
    let authority = server.app.authority();
    for (id, tenant) in [("acme-svc", "acme"), ("globex-svc", "globex")] {
        authority
            .clients()
            .register(
                ClientRegistration::new(id)
                    .grant(GrantType::ClientCredentials)
                    .audience("mfs.api")
                    .tenant(tenant),
                "test",
            )
            .await
            .unwrap();
    }
    authority
        .clients()
        .register(
            ClientRegistration::new("console")
                .grant(GrantType::Password)
                .audience(ADMIN_AUDIENCE)
                .first_party(true)
                .public(true),
            "test",
        )
        .await
        .unwrap();
    let password = SecretString::from(PASSWORD);
    authority
        .users()
        .add("", "boss", &["admin".to_owned()], &password, "test")
        .await
        .unwrap();
    let tadmin = authority
        .users()
        .add(
            "acme",
            "tadmin",
            &["tenant-admin".to_owned()],
            &password,
            "test",
        )
        .await
        .unwrap();
    let tenant_admin = server.user_token("acme", "tadmin").await;
    let boss = server.user_token("", "boss").await;

    // A tenant admin sees only its tenant's clients, and manages them.
    let (status, list) = server
        .call("GET", "/admin/v1/clients", None, Some(&tenant_admin))
        .await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme-svc"]);
    let (status, _) = server
        .call(
            "POST",
            "/admin/v1/clients/acme-svc/disable",
            None,
            Some(&tenant_admin),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // It adds users to its tenant, but may not hand out the admin role.
    let new_user = json!({"username": "dave", "tenant": "acme", "password": PASSWORD, "roles": ["tenant-admin"]});
    let (status, _) = server
        .call(
            "POST",
            "/admin/v1/users",
            Some(&new_user),
            Some(&tenant_admin),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .call(
            "PUT",
            "/admin/v1/users/dave/roles?tenant=acme",
            Some(&json!({"roles": ["admin"]})),
            Some(&tenant_admin),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The admin role reaches every tenant and every area.
    let (status, list) = server
        .call("GET", "/admin/v1/clients", None, Some(&boss))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 3);
    let (status, user) = server
        .call(
            "PUT",
            "/admin/v1/users/dave/roles?tenant=acme",
            Some(&json!({"roles": ["admin"]})),
            Some(&boss),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["roles"], json!(["admin"]));
    // Acting on an administrator of its own tenant is as much as granting the role: refused.
    for (method, path, body) in [
        (
            "POST",
            "/admin/v1/users/dave/password?tenant=acme",
            Some(json!({"password": "yet another password"})),
        ),
        ("POST", "/admin/v1/users/dave/disable?tenant=acme", None),
        (
            "PUT",
            "/admin/v1/users/dave/roles?tenant=acme",
            Some(json!({"roles": ["viewer"]})),
        ),
    ] {
        let (status, _) = server
            .call(method, path, body.as_ref(), Some(&tenant_admin))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
    }
    let (status, report) = server
        .call("GET", "/admin/v1/audit/verify", None, Some(&boss))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["problems"], json!([]));
    // The feature's own rows name the user too.
    let rows = authority.store().audit_rows_after(0, 10_000).await.unwrap();
    let actor = format!("user:{}", tadmin.id);
    assert!(
        rows.iter()
            .any(|r| r.kind == "admin.client_disabled" && r.actor == actor),
        "the disable is audited with the user as actor"
    );
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_admin_api_is_documented_with_its_security_scheme() {
    let server = Server::start().await;
    let (status, doc) = server.call("GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        doc["components"]["securitySchemes"]["admin_token"]["scheme"],
        "bearer"
    );
    for route in routes() {
        let path = route.path.split('?').next().unwrap();
        let documented = doc["paths"].as_object().unwrap().iter().any(|(p, item)| {
            let pattern = p
                .split('/')
                .zip(path.split('/'))
                .all(|(a, b)| a == b || a.starts_with('{'));
            // A trailing `{path}` (a secret's path) may hold several segments.
            let (documented, called) = (p.split('/').count(), path.split('/').count());
            let segments = documented == called || (p.ends_with("/{path}") && called > documented);
            pattern
                && segments
                && item[route.method.to_lowercase()]["security"][0]["admin_token"].is_array()
        });
        assert!(documented, "{} {path} is not documented", route.method);
    }
    server.app.shutdown().await.unwrap();
}

/// Found by schemathesis: out-of-range numbers in a body panicked the handler (a dropped
/// connection), and bodies of the wrong shape got the extractor's plain-text 415/422. Every
/// such body is now a JSON `invalid_request` (400) that quotes nothing of the body, and the
/// server keeps serving.
#[tokio::test]
async fn malformed_and_out_of_range_bodies_are_json_400s_and_never_panic() {
    let server = Server::start().await;
    let secret = server.admin_client("ops", &ALL_SCOPES, None).await;
    let token = server.client_token("ops", &secret, &ALL_SCOPES).await;
    let huge = json!(i64::MAX);
    let cases = [
        (
            "POST",
            "/admin/v1/clients/ops/rotate-secret",
            json!({"grace_secs": huge}),
        ),
        (
            "POST",
            "/admin/v1/clients/ops/rotate-secret",
            json!({"grace_secs": -1}),
        ),
        (
            "POST",
            "/admin/v1/clients/ops/rotate-secret",
            json!({"grace_secs": 1.5}),
        ),
        (
            "POST",
            "/admin/v1/clients",
            json!({"id": "svc", "grants": ["client_credentials"], "audiences": ["a"], "token_lifetime_secs": huge}),
        ),
        (
            "POST",
            "/admin/v1/users",
            json!({"username": {"a": 1}, "password": "s3cret-value-99"}),
        ),
        (
            "PUT",
            "/admin/v1/users/alice/roles",
            json!({"roles": [{"x": 1}]}),
        ),
    ];
    for (method, path, body) in cases {
        let (status, answer) = server.call(method, path, Some(&body), Some(&token)).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{method} {path} {body}: {answer}"
        );
        assert_eq!(
            answer["error"], "invalid_request",
            "{method} {path}: {answer}"
        );
        assert!(!answer.to_string().contains("s3cret"), "{answer}");
    }
    let response = server
        .http
        .post(format!("{}/admin/v1/users", server.app.base_url()))
        .bearer_auth(&token)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"], "invalid_request");
    let (status, _) = server
        .call("GET", "/admin/v1/clients", None, Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "the server still serves");
    server.app.shutdown().await.unwrap();
}

/// JSON Schema's `integer` admits `60.0`; so do the admin bodies (schemathesis sends it).
#[tokio::test]
async fn whole_numbers_written_with_a_zero_fraction_are_integers() {
    let server = Server::start().await;
    let secret = server.admin_client("ops", &ALL_SCOPES, None).await;
    let token = server.client_token("ops", &secret, &ALL_SCOPES).await;
    server.admin_client("svc", &[], None).await;
    let (status, answer) = server
        .call(
            "POST",
            "/admin/v1/clients/svc/rotate-secret",
            Some(&json!({"grace_secs": 60.0})),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["previous_valid_for_secs"], 60);
    let (status, answer) = server
        .call(
            "POST",
            "/admin/v1/clients",
            Some(
                &json!({"id": "svc2", "grants": ["client_credentials"], "audiences": ["a"],
                "token_lifetime_secs": 120.0}),
            ),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["client"]["token_lifetime_secs"], 120, "{answer}");
    server.app.shutdown().await.unwrap();
}

/// `GET /admin/v1/audit?tail=true`: the newest events first, filtered by kind prefix and actor,
/// paged back with `before` (what the console's audit page and link-key history read).
#[tokio::test]
async fn the_audit_tail_reads_newest_first_filtered_by_kind_and_actor() {
    let server = Server::start().await;
    let secret = server
        .admin_client("auditor", &["admin:audit", "admin:clients"], None)
        .await;
    let token = server
        .client_token("auditor", &secret, &["admin:audit", "admin:clients"])
        .await;
    for _ in 0..3 {
        let (status, _) = server
            .call("GET", "/admin/v1/clients", None, Some(&token))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let tail = |query: &'static str| {
        let (server, token) = (&server, &token);
        async move {
            let (status, body) = server
                .call(
                    "GET",
                    &format!("/admin/v1/audit?{query}"),
                    None,
                    Some(token),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            body
        }
    };
    let page = tail("tail=true&kind=admin.api&actor=client:auditor&limit=2").await;
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{page}");
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs[0] > seqs[1], "newest first: {seqs:?}");
    for event in events {
        assert_eq!(event["kind"], "admin.api_call");
        assert_eq!(event["actor"], "client:auditor");
    }
    assert_eq!(page["next_before"], seqs[1]);
    // The page back continues below the last one; the registration ("e2e" actor) never shows.
    let (status, older) = server
        .call(
            "GET",
            &format!(
                "/admin/v1/audit?tail=true&kind=admin.api&actor=client:auditor&before={}",
                seqs[1]
            ),
            None,
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let older = older["events"].as_array().unwrap();
    assert!(!older.is_empty());
    assert!(
        older
            .iter()
            .all(|e| e["seq"].as_i64().unwrap() < seqs[1] && e["actor"] == "client:auditor")
    );
    // A kind prefix that matches nothing, and the forward page still in chain order.
    let none = tail("tail=true&kind=nothing.like.this").await;
    assert_eq!(none["events"], serde_json::json!([]));
    let forward = tail("after=0&limit=3").await;
    let forward: Vec<i64> = forward["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(forward, [1, 2, 3]);
    server.app.shutdown().await.unwrap();
}
