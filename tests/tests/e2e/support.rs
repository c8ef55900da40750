//! Setup shared by the areas that run the authority in-process on a manual clock.

use gha_auth_server::testing::Store;
use gha_auth_server::testing::VerifyReport;
use gha_auth_server::testing::{ClientRegistration, ClientRegistry, GrantType};
use std::time::{Duration, Instant};

use gha_auth_testkit::PgDatabase;

/// The manual clocks' start: 2026-01-01T00:00:00Z.
pub(crate) const START: i64 = 1_767_225_600;
/// The audience the test clients are registered for.
pub(crate) const AUDIENCE: &str = "mfs.api";

/// Where the store lives for one test.
pub(crate) enum Backend {
    Sqlite,
    Postgres(PgDatabase),
}

impl Backend {
    /// A throwaway database on the shared PostgreSQL, dropped with the value.
    pub(crate) async fn postgres() -> Self {
        Backend::Postgres(
            PgDatabase::create()
                .await
                .expect("throwaway PostgreSQL database"),
        )
    }
}

/// Registers a confidential client-credentials client for [`AUDIENCE`] as `actor`; returns its
/// secret.
pub(crate) async fn register_service_client(
    clients: &ClientRegistry,
    id: &str,
    actor: &str,
) -> String {
    let (_, secret) = clients
        .register(
            ClientRegistration::new(id)
                .grant(GrantType::ClientCredentials)
                .audience(AUDIENCE),
            actor,
        )
        .await
        .unwrap();
    secret.unwrap().expose().to_owned()
}

/// Verifies the audit hash chain of `store`, failing the test on any problem; returns the report.
pub(crate) async fn assert_audit_intact(store: &Store) -> VerifyReport {
    let report = gha_auth_server::testing::verify(store).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    report
}

/// A TCP forwarder on a fixed local port that can be cut and restored, to take Vault away and
/// bring it back at the same address.
pub(crate) struct Proxy {
    pub(crate) port: u16,
    target: u16,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    pub(crate) async fn start(target: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = Some(tokio::spawn(forward(listener, target)));
        Self { port, target, task }
    }

    /// Closes the listener and every forwarded connection.
    pub(crate) fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    pub(crate) async fn restore(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(e) if Instant::now() > deadline => panic!("rebinding {}: {e}", self.port),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        self.task = Some(tokio::spawn(forward(listener, self.target)));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

async fn forward(listener: tokio::net::TcpListener, target: u16) {
    // Dropping the set (when this task is aborted) aborts every connection task.
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((mut inbound, _)) = listener.accept().await {
        connections.spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

/// An authority in-process on 127.0.0.1:0 on a manual clock, rate limits off (the token
/// exchange and penetration-test areas add their own request helpers in their own `impl`).
pub(crate) struct ManualAuthority {
    pub(crate) app: gha_auth_server::RunningApp,
    pub(crate) clock: gha_auth::ManualClock,
    pub(crate) http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl ManualAuthority {
    pub(crate) async fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config = gha_auth_server::config::Config::default();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.data_dir = data.path().join("data");
        config.rate_limit.enabled = false;
        let clock = gha_auth::ManualClock::at_unix(START);
        let app = gha_auth_server::build_app(config, clock.shared())
            .await
            .unwrap()
            .spawn();
        Self {
            app,
            clock,
            http: reqwest::Client::new(),
            _data: data,
        }
    }

    /// Registers `registration`; its secret.
    pub(crate) async fn register(&self, registration: ClientRegistration) -> String {
        let (_, secret) = self
            .app
            .authority()
            .clients()
            .register(registration, "e2e")
            .await
            .unwrap();
        secret.unwrap().expose().to_owned()
    }
}

/// OpenBao's JWT auth enabled at `auth/jwt` with `config` (how it finds the keys, and the issuer)
/// and a role `field-sync` for the tokens of the client `field-sync` for [`AUDIENCE`]; then a
/// `client_credentials` token of that client from `app`, to log in with.
pub(crate) async fn openbao_jwt_login_token(
    bao: &gha_auth_testkit::OpenBao,
    config: serde_json::Value,
    app: &gha_auth_server::RunningApp,
    secret: &str,
) -> String {
    use gha_auth_testkit::Method;
    use serde_json::json;
    bao.sys_call(Method::POST, "sys/auth/jwt", Some(json!({ "type": "jwt" })))
        .await
        .unwrap();
    bao.sys_call(Method::POST, "auth/jwt/config", Some(config))
        .await
        .unwrap_or_else(|e| panic!("OpenBao refused the JWT auth configuration: {e}"));
    bao.sys_call(
        Method::POST,
        "auth/jwt/role/field-sync",
        Some(json!({
            "role_type": "jwt",
            "bound_audiences": [AUDIENCE],
            "user_claim": "sub",
            "bound_claims": { "client_id": "field-sync" },
            "token_policies": ["default"],
            "token_ttl": "5m",
        })),
    )
    .await
    .unwrap();
    let token: serde_json::Value = reqwest::Client::new()
        .post(app.authority().token_endpoint())
        .basic_auth("field-sync", Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["access_token"].as_str().unwrap().to_owned()
}
