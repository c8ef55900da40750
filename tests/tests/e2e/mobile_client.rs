//! The mobile-client example against the real authority and the field-service
//! example, with a proxy in front of the authority that loses the first refresh response (the
//! request reaches the authority and is answered; the answer never reaches the app).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use field_service::{JobStore, app, with_cors};
use gha_auth::{SecretString, SystemClock};
use gha_auth_middleware::AuthLayer;
use gha_auth_server::config::Config;
use gha_auth_server::testing::Users;
use gha_auth_server::testing::{ClientRegistration, GrantType};
use gha_auth_server::{RunningApp, build_app};
use mobile_client::{ClientError, MobileClient, run};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub(crate) const API_AUDIENCE: &str = "field-service";
pub(crate) const TENANT: &str = "acme";
pub(crate) const USER_PASSWORD: &str = "pump seals all day";
pub(crate) const JOB_TITLE: &str = "Replace pump seal";

/// The authority (real clock: the API checks token times against the wall clock), the
/// field-service API and a first job in tenant `acme`.
pub(crate) struct Stack {
    pub(crate) authority: RunningApp,
    pub(crate) api: String,
    _data: tempfile::TempDir,
}

impl Stack {
    /// Starts the authority with `configure` applied, the API allowing `cors` origins, and
    /// registers `client` (first-party, public, password + refresh) and user `alice`.
    pub(crate) async fn start(
        client: &str,
        cors: &[String],
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.data_dir = data.path().join("data");
        config.users.argon2_memory_kib = 1024;
        config.users.argon2_iterations = 1;
        configure(&mut config);
        let users_config = config.users.clone();
        let authority = build_app(config, SystemClock::shared())
            .await
            .unwrap()
            .spawn();
        let state = authority.authority();
        state
            .clients()
            .register(
                ClientRegistration::new(client)
                    .grant(GrantType::Password)
                    .grant(GrantType::RefreshToken)
                    .scope("jobs:read")
                    .audience(API_AUDIENCE)
                    .tenant(TENANT)
                    .first_party(true)
                    .public(true),
                "e2e",
            )
            .await
            .unwrap();
        let users = Users::new(
            state.store().clone(),
            state.audit().clone(),
            SystemClock::shared(),
            users_config,
        )
        .await
        .unwrap();
        users
            .add(
                TENANT,
                "alice",
                &["technician".to_owned()],
                &SecretString::from(USER_PASSWORD),
                "e2e",
            )
            .await
            .unwrap();

        let auth = AuthLayer::builder()
            .issuer(state.issuer())
            .audience(API_AUDIENCE)
            .jwks_url(format!("{}/.well-known/jwks.json", authority.base_url()))
            .build()
            .unwrap();
        assert!(
            auth.wait_ready(Duration::from_secs(30)).await,
            "JWKS fetched"
        );
        let router =
            with_cors(app(auth, JobStore::new(SystemClock::shared()), None), cors).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });

        // A first job, created by a service.
        let (_, secret) = state
            .clients()
            .register(
                ClientRegistration::new("mfs-sync")
                    .grant(GrantType::ClientCredentials)
                    .scope("jobs:write")
                    .audience(API_AUDIENCE)
                    .tenant(TENANT),
                "e2e",
            )
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let token: Value = http
            .post(state.token_endpoint())
            .basic_auth("mfs-sync", Some(secret.unwrap().expose()))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let created = http
            .post(format!("{api}/jobs"))
            .bearer_auth(token["access_token"].as_str().unwrap())
            .json(&json!({ "title": JOB_TITLE }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        Self {
            authority,
            api,
            _data: data,
        }
    }

    /// Audit events as (kind, detail).
    pub(crate) async fn audit(&self) -> Vec<(String, String)> {
        self.authority
            .authority()
            .store()
            .audit_rows_after(0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.kind, r.detail))
            .collect()
    }
}

/// A TCP proxy to the authority that, when armed, forwards the next refresh request, reads the
/// authority's answer and closes the app's connection without passing it on.
struct LossyProxy {
    url: String,
    armed: Arc<AtomicBool>,
    refreshes: Arc<AtomicUsize>,
    /// Refresh tokens in the answers that were lost.
    lost: Arc<Mutex<Vec<String>>>,
}

impl LossyProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let proxy = Self {
            url,
            armed: Arc::new(AtomicBool::new(false)),
            refreshes: Arc::new(AtomicUsize::new(0)),
            lost: Arc::new(Mutex::new(Vec::new())),
        };
        let (armed, refreshes, lost) = (
            proxy.armed.clone(),
            proxy.refreshes.clone(),
            proxy.lost.clone(),
        );
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                let (armed, refreshes, lost) = (armed.clone(), refreshes.clone(), lost.clone());
                tokio::spawn(async move {
                    let _ = relay(inbound, upstream, &armed, &refreshes, &lost).await;
                });
            }
        });
        proxy
    }
}

/// One request per connection: read it, forward it with `Connection: close`, read the whole
/// answer, then pass it on or (armed, refresh) drop it.
async fn relay(
    mut inbound: TcpStream,
    upstream: SocketAddr,
    armed: &AtomicBool,
    refreshes: &AtomicUsize,
    lost: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        let n = inbound.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
        if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while request.len() < head_end + length {
        let n = inbound.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let is_refresh =
        String::from_utf8_lossy(&request[head_end..]).contains("grant_type=refresh_token");
    let line_end = request.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let mut forwarded = request[..line_end].to_vec();
    forwarded.extend_from_slice(b"Connection: close\r\n");
    forwarded.extend_from_slice(&request[line_end..]);
    let mut out = TcpStream::connect(upstream).await?;
    out.write_all(&forwarded).await?;
    let mut answer = Vec::new();
    out.read_to_end(&mut answer).await?;
    if is_refresh {
        refreshes.fetch_add(1, Ordering::SeqCst);
        if armed.swap(false, Ordering::SeqCst) {
            let text = String::from_utf8_lossy(&answer);
            let token = text
                .split("\"refresh_token\":\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default()
                .to_owned();
            lost.lock().unwrap().push(token);
            // The answer is lost: close without a byte.
            return Ok(());
        }
    }
    inbound.write_all(&answer).await?;
    inbound.shutdown().await
}

#[tokio::test]
async fn mobile_client_logs_in_calls_the_api_refreshes_and_survives_a_lost_refresh_response() {
    let stack = Stack::start("mfs-mobile", &[], |_| {}).await;
    let proxy = LossyProxy::start(stack.authority.local_addr()).await;
    let password = SecretString::from(USER_PASSWORD);
    let client = MobileClient::new(&proxy.url, &stack.api)
        .unwrap()
        .retries(4, Duration::from_millis(50));

    // The whole flow, with the first refresh answer lost on the way.
    proxy.armed.store(true, Ordering::SeqCst);
    let (report, tokens) = run(&client, "alice", &password, None).await.unwrap();
    for jobs in [&report.jobs_after_login, &report.jobs_after_refresh] {
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].title, JOB_TITLE);
    }
    let lost = proxy.lost.lock().unwrap().clone();
    assert_eq!(lost.len(), 1, "one answer was lost");
    assert!(lost[0].starts_with("ghar_"), "{lost:?}");
    assert_eq!(
        proxy.refreshes.load(Ordering::SeqCst),
        2,
        "the app sent the same refresh again"
    );
    assert_eq!(
        tokens.refresh_token.expose(),
        lost[0],
        "the repeat got the same successor as the lost answer"
    );

    // The session goes on: the successor works, no family was revoked.
    let next = client.refresh(&tokens).await.unwrap();
    assert_eq!(client.jobs(&next).await.unwrap().len(), 1);
    let audit = stack.audit().await;
    assert!(
        !audit.iter().any(|(k, _)| k == "refresh.reuse_detected"),
        "{audit:?}"
    );

    // Without the retry, a lost answer is an error the app can tell from "log in again".
    let impatient = MobileClient::new(&proxy.url, &stack.api)
        .unwrap()
        .retries(1, Duration::from_millis(50));
    proxy.armed.store(true, Ordering::SeqCst);
    let error = impatient.refresh(&next).await.unwrap_err();
    assert!(matches!(error, ClientError::Unreachable { .. }), "{error}");
    assert!(!error.login_required());
    // A wrong password is a refusal, and says nothing about the password.
    let error = client
        .login("alice", &SecretString::from("not the password"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::Refused { error, .. } if error == "invalid_grant"),
        "{error}"
    );
    assert!(!error.to_string().contains("not the password"));
    stack.authority.shutdown().await.unwrap();
}
