//! The server's cross-cutting HTTP behaviour, in-process on 127.0.0.1:0 with a manual clock:
//! abuse limits on the token endpoint (429 + `Retry-After`, backoff after failed client
//! authentication) and `GET /metrics`.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::TimeDelta;
use gha_auth::ManualClock;
use gha_auth_server::config::Config;
use gha_auth_server::testing::{ClientRegistration, GrantType};
use gha_auth_server::{RunningApp, build_app};
use reqwest::StatusCode;
use serde_json::Value;

const START: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

struct Server {
    app: RunningApp,
    clock: ManualClock,
    http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Server {
    async fn start(adjust: impl FnOnce(&mut Config)) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.data_dir = data.path().join("data");
        adjust(&mut config);
        let clock = ManualClock::at_unix(START);
        let app = build_app(config, clock.shared()).await.unwrap().spawn();
        Self {
            app,
            clock,
            http: reqwest::Client::new(),
            _data: data,
        }
    }

    async fn client(&self, id: &str) -> String {
        let (_, secret) = self
            .app
            .authority()
            .clients()
            .register(
                ClientRegistration::new(id)
                    .grant(GrantType::ClientCredentials)
                    .scope("orders:read")
                    .audience("mfs.api"),
                "test",
            )
            .await
            .unwrap();
        secret.unwrap().expose().to_owned()
    }

    async fn token(&self, id: &str, secret: &str) -> reqwest::Response {
        self.http
            .post(self.app.authority().token_endpoint())
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.app.base_url()))
            .send()
            .await
            .unwrap()
    }
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn assert_limited(response: reqwest::Response) -> u64 {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait = retry_after(&response);
    assert!(wait >= 1);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    wait
}

/// The first of up to 5 further token requests that is not a 200.
async fn first_refusal(server: &Server, id: &str, secret: &str) -> reqwest::Response {
    for _ in 0..5 {
        let response = server.token(id, secret).await;
        if response.status() != StatusCode::OK {
            return response;
        }
    }
    panic!("no request was refused");
}

#[tokio::test]
async fn defaults_are_on_and_secure() {
    let config = Config::default();
    let limits = &config.rate_limit;
    assert!(limits.enabled);
    assert!(limits.per_source_per_second > 0 && limits.per_client_per_second > 0);
    assert!(limits.failures_before_backoff <= 10);
}

#[tokio::test]
async fn per_source_rate_limit_answers_429_with_retry_after() {
    let server = Server::start(|c| {
        c.rate_limit.per_source_per_second = 1;
        c.rate_limit.per_source_burst = 3;
    })
    .await;
    let secret = server.client("svc").await;
    for _ in 0..3 {
        assert_eq!(server.token("svc", &secret).await.status(), StatusCode::OK);
    }
    // The burst is spent; the rate (1/s) refills slowly, so one of the next requests is refused
    // even on a slow machine.
    assert_limited(first_refusal(&server, "svc", &secret).await).await;
    // Other endpoints are not limited by the token endpoint's budget.
    assert_eq!(
        server.get("/.well-known/jwks.json").await.status(),
        StatusCode::OK
    );
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn per_client_rate_limit_counts_each_client_separately() {
    let server = Server::start(|c| {
        c.rate_limit.per_client_per_second = 1;
        c.rate_limit.per_client_burst = 2;
    })
    .await;
    let one = server.client("svc-one").await;
    let two = server.client("svc-two").await;
    for _ in 0..2 {
        assert_eq!(server.token("svc-one", &one).await.status(), StatusCode::OK);
    }
    assert_limited(first_refusal(&server, "svc-one", &one).await).await;
    assert_eq!(server.token("svc-two", &two).await.status(), StatusCode::OK);
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn failed_authentication_backs_off_exponentially_per_client_and_source() {
    let server = Server::start(|c| {
        c.rate_limit.failures_before_backoff = 3;
        c.rate_limit.source_failures_before_backoff = 100;
    })
    .await;
    let secret = server.client("svc").await;
    let wrong =
        gha_auth::apikey::ApiKey::generate(gha_auth::apikey::SecretKind::ClientSecret).unwrap();
    for _ in 0..2 {
        let r = server.token("svc", wrong.expose()).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // The third failure starts the backoff: 1 s.
    assert_eq!(
        server.token("svc", wrong.expose()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Even the right secret waits now, without being checked.
    let first = assert_limited(server.token("svc", &secret).await).await;
    assert_eq!(first, 1);
    server.clock.advance(TimeDelta::seconds(2));
    // One more failure doubles the wait.
    assert_eq!(
        server.token("svc", wrong.expose()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let second = assert_limited(server.token("svc", &secret).await).await;
    assert_eq!(second, 2);
    server.clock.advance(TimeDelta::seconds(3));
    // After the wait the right secret works and resets the counter.
    assert_eq!(server.token("svc", &secret).await.status(), StatusCode::OK);
    assert_eq!(
        server.token("svc", wrong.expose()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(server.token("svc", &secret).await.status(), StatusCode::OK);
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_source_spraying_client_ids_backs_off() {
    let server = Server::start(|c| {
        c.rate_limit.source_failures_before_backoff = 4;
    })
    .await;
    let secret = server.client("svc").await;
    let wrong =
        gha_auth::apikey::ApiKey::generate(gha_auth::apikey::SecretKind::ClientSecret).unwrap();
    for i in 0..4 {
        let r = server.token(&format!("guess-{i}"), wrong.expose()).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    assert_limited(server.token("svc", &secret).await).await;
    server.clock.advance(TimeDelta::seconds(2));
    assert_eq!(server.token("svc", &secret).await.status(), StatusCode::OK);
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_render_requests_outcomes_latency_and_keys() {
    let server = Server::start(|_| {}).await;
    let secret = server.client("svc").await;
    assert_eq!(server.token("svc", &secret).await.status(), StatusCode::OK);
    let wrong =
        gha_auth::apikey::ApiKey::generate(gha_auth::apikey::SecretKind::ClientSecret).unwrap();
    server.token("svc", wrong.expose()).await;
    let response = server.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for needle in [
        "gha_auth_token_requests_total{grant=\"client_credentials\",outcome=\"success\"}",
        "gha_auth_token_requests_total{grant=\"client_credentials\",outcome=\"invalid_client\"}",
        "gha_auth_http_requests_total{endpoint=\"/oauth2/token\",method=\"POST\",status=\"200\"}",
        "gha_auth_http_request_duration_seconds_bucket{endpoint=\"/oauth2/token\",method=\"POST\",le=\"0.01\"}",
        "gha_auth_signing_key_age_seconds{state=\"active\"}",
        "gha_auth_signing_keys{state=\"active\"} 1",
        "gha_auth_jwks_age_seconds",
        "# TYPE gha_auth_http_request_duration_seconds histogram",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
    // Rotations are counted by the process that performs them.
    server.app.authority().keys().rotate().await.unwrap();
    let text = server.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains("gha_auth_key_rotations_total{kind=\"on_demand\"}"),
        "{text}"
    );
    assert!(!text.contains(&secret), "no secret in metrics");
    gha_auth_testkit::promtool_check_metrics(&text).unwrap();
    server.app.shutdown().await.unwrap();
}

mod tls {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use super::*;

    struct Ca {
        cert: rcgen::Certificate,
        key: rcgen::KeyPair,
    }

    fn ca() -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "gha-auth test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A leaf for 127.0.0.1 signed by `ca`, written to `dir`; returns its DER.
    fn leaf(ca: &Ca, dir: &Path, name: &str) -> Vec<u8> {
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
        // Key first, then the certificate: the reloader may see the pair half-written and must
        // keep the old one until both match.
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        cert.der().to_vec()
    }

    fn client(ca: &Ca) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.cert.pem().as_bytes()).unwrap())
            .tls_info(true)
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    }

    async fn served_cert(http: &reqwest::Client, url: &str) -> Vec<u8> {
        let response = http.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate())
            .unwrap()
            .to_vec()
    }

    #[tokio::test]
    async fn serves_https_and_reloads_a_replaced_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca();
        let first = leaf(&ca, dir.path(), "first");
        let server = Server::start(|c| {
            c.tls.cert_file = Some(dir.path().join("cert.pem"));
            c.tls.key_file = Some(dir.path().join("key.pem"));
            c.tls.reload_interval = gha_auth_server::config::Duration::seconds(1);
        })
        .await;
        let base = server.app.base_url();
        assert!(base.starts_with("https://127.0.0.1:"), "{base}");
        assert!(server.app.authority().issuer().starts_with("https://"));
        let http = client(&ca);
        let url = format!("{base}/HealthCheck");
        assert_eq!(served_cert(&http, &url).await, first);

        // Tokens are issued over HTTPS.
        let secret = server.client("svc").await;
        let response = http
            .post(server.app.authority().token_endpoint())
            .basic_auth("svc", Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);

        // Plain HTTP on the TLS port gets no HTTP answer.
        let plain = reqwest::Client::new()
            .get(url.replace("https://", "http://"))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        assert!(plain.is_err() || plain.unwrap().status() != StatusCode::OK);

        // A client that does not trust the CA is refused.
        let untrusting = reqwest::Client::new();
        assert!(untrusting.get(&url).send().await.is_err());

        // Replace the files: the new certificate is served without a restart.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = leaf(&ca, dir.path(), "second");
        assert_ne!(first, second);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // A fresh client each time: a resumed TLS session would report the old certificate.
            let served = served_cert(&client(&ca), &url).await;
            if served == second {
                break;
            }
            assert!(Instant::now() < deadline, "new certificate not served");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        server.app.shutdown().await.unwrap();
    }

    /// The TLS listener has the plain one's bounds: a connection that finishes the handshake and
    /// then sends nothing, or half a header, is closed after `http.header_read_timeout`.
    #[tokio::test]
    async fn finding_08_tls_connections_are_closed_after_the_header_bound() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let dir = tempfile::tempdir().unwrap();
        let ca = ca();
        leaf(&ca, dir.path(), "bounded");
        let server = Server::start(|c| {
            c.tls.cert_file = Some(dir.path().join("cert.pem"));
            c.tls.key_file = Some(dir.path().join("key.pem"));
            c.http.header_read_timeout = gha_auth_server::config::Duration::seconds(1);
        })
        .await;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(
                ca.cert.der().to_vec(),
            ))
            .unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        for sent in [&b""[..], b"GET /HealthCheck HTTP/1.1\r\nHost: x\r\n"] {
            let tcp = tokio::net::TcpStream::connect(server.app.local_addr())
                .await
                .unwrap();
            let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
            let mut tls = connector.connect(name, tcp).await.unwrap();
            tls.write_all(sent).await.unwrap();
            tls.flush().await.unwrap();
            // Far above the 1 s bound; without it the connection stays open. (A half-sent
            // header may get a 408 before the close.)
            let mut rest = Vec::new();
            let read =
                tokio::time::timeout(Duration::from_secs(30), tls.read_to_end(&mut rest)).await;
            assert!(
                read.is_ok(),
                "the connection is still open after sending {sent:?}"
            );
        }
        server.app.shutdown().await.unwrap();
    }

    #[test]
    fn tls_lifts_the_loopback_rule_and_needs_both_files() {
        let mut config = Config::default();
        config.listen = "0.0.0.0:8700".parse().unwrap();
        assert!(config.problems().iter().any(|p| p.key == "listen"));
        config.tls.cert_file = Some("cert.pem".into());
        assert!(config.problems().iter().any(|p| p.key == "tls"));
        config.tls.key_file = Some("key.pem".into());
        assert!(config.problems().is_empty(), "{:?}", config.problems());
    }

    #[test]
    fn vault_needs_exactly_one_auth_method() {
        let mut config = Config::default();
        config.vault.address = Some("http://127.0.0.1:8200".into());
        assert!(config.problems().iter().any(|p| p.key == "vault"));
        config.vault.token_file = Some("token".into());
        assert!(config.problems().is_empty(), "{:?}", config.problems());
        assert!(config.keys_in_vault());
        config.vault.role_id_file = Some("role".into());
        assert!(config.problems().iter().any(|p| p.key == "vault"));
    }
}

/// The document is assembled from the routers that serve the routes, so what it lists is served;
/// this checks both directions over HTTP: every documented operation answers (an unmatched
/// route is axum's empty 404 or a 405), and every endpoint of the interface is documented.
#[tokio::test]
async fn openapi_document_covers_every_route() {
    let server = Server::start(|_| {}).await;
    let response = server.get("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    let client = reqwest::Client::new();
    for (path, item) in paths {
        let concrete = path.replace(['{', '}'], "");
        for (method, operation) in item.as_object().unwrap() {
            assert!(operation["responses"].is_object(), "{method} {path}");
            let url = format!("{}{concrete}", server.app.base_url());
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = client.request(method.clone(), &url).send().await.unwrap();
            let status = response.status();
            let body = response.bytes().await.unwrap();
            assert!(
                status != StatusCode::METHOD_NOT_ALLOWED
                    && !(status == StatusCode::NOT_FOUND && body.is_empty()),
                "{method} {path} is documented but not served ({status})"
            );
        }
    }
    for (method, path) in [
        ("post", "/oauth2/token"),
        ("post", "/oauth2/revoke"),
        ("post", "/oauth2/introspect"),
        ("post", "/session/login"),
        ("post", "/session/refresh"),
        ("post", "/session/logout"),
        ("get", "/.well-known/jwks.json"),
        ("get", "/.well-known/oauth-authorization-server"),
        ("get", "/.well-known/openid-configuration"),
        ("get", "/v1/keys"),
        ("get", "/v1/revocations"),
        ("get", "/v1/secrets/{path}"),
        ("post", "/v1/database/creds/{role}"),
        ("get", "/v1/link-keys/{name}"),
        ("post", "/v1/link-keys/{name}/usage"),
        ("get", "/HealthCheck"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is served but not in /openapi.json"
        );
    }
    server.app.shutdown().await.unwrap();
}

/// `GET /v1/keys` serves the JWKS's keys, in its order, with the state each is in at the moment
/// of the request: what gha-auth agent fills HAProxy's key slots from.
#[tokio::test]
async fn key_states_are_the_jwks_keys_with_their_state_as_of_now() {
    let server = Server::start(|_| {}).await;
    let states_of = |body: &Value| -> Vec<(String, String)> {
        body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["kid"].as_str().unwrap().to_owned(),
                    k["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let read = || async {
        let response = server.get("/v1/keys").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["cache-control"]
                .to_str()
                .unwrap()
                .starts_with("public, max-age="),
        );
        let states: Value = response.json().await.unwrap();
        let jwks: Value = server
            .get("/.well-known/jwks.json")
            .await
            .json()
            .await
            .unwrap();
        let jwks_of_states: Vec<&Value> = states["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| &k["jwk"])
            .collect();
        let jwks_keys: Vec<&Value> = jwks["keys"].as_array().unwrap().iter().collect();
        assert_eq!(jwks_of_states, jwks_keys, "the JWKS's keys, in its order");
        states
    };

    let first = read().await;
    let [(first_kid, state)] = states_of(&first).try_into().unwrap();
    assert_eq!(state, "active");
    assert!(first["keys"][0]["retires_at"].is_null());

    let (second_kid, activates_at) = server.app.authority().keys().rotate().await.unwrap();
    let rotated = read().await;
    assert_eq!(
        states_of(&rotated),
        [
            (second_kid.clone(), "next".to_owned()),
            (first_kid.clone(), "active".to_owned())
        ]
    );
    assert_eq!(
        rotated["keys"][0]["activates_at"].as_str().unwrap(),
        activates_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );

    // Once the next key's time has come the states say so, before any sync.
    server.clock.advance(TimeDelta::hours(2));
    let switched = read().await;
    assert_eq!(
        states_of(&switched),
        [
            (second_kid, "active".to_owned()),
            (first_kid, "retired".to_owned())
        ]
    );
    assert!(switched["keys"][1]["retires_at"].is_string());
    server.app.shutdown().await.unwrap();
}

/// A person who opens the authority's address finds what it is and where to go: HTML for a
/// browser (with a script-free Content-Security-Policy), plain text for curl, and every link
/// the page names is served.
#[tokio::test]
async fn root_page_tells_a_person_what_this_is_and_where_to_go() {
    let server = Server::start(|_| {}).await;
    let url = format!("{}/", server.app.base_url());
    let browser = server
        .http
        .get(&url)
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status(), StatusCode::OK);
    assert!(
        browser.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = browser.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    let html = browser.text().await.unwrap();
    assert!(html.contains("token authority") && html.contains("name=\"viewport\""));

    let curl = server.get("/").await;
    assert_eq!(curl.status(), StatusCode::OK);
    assert!(
        curl.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = curl.text().await.unwrap();
    let links: Vec<&str> = html
        .split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(links.len() >= 5, "{links:?}");
    for link in links {
        assert!(
            link == "/home.css" || text.contains(link),
            "{link} missing from the text page"
        );
        let response = server.get(link).await;
        assert_eq!(response.status(), StatusCode::OK, "{link}");
    }
    server.app.shutdown().await.unwrap();
}

/// A token request with `X-Forwarded-For: xff` and a wrong secret.
async fn failing_sources(server: &Server, xff: &str) -> StatusCode {
    server
        .http
        .post(server.app.authority().token_endpoint())
        .header("x-forwarded-for", xff)
        .basic_auth("svc", Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .status()
}

async fn audit_sources(server: &Server) -> Vec<String> {
    server
        .app
        .authority()
        .store()
        .audit_rows_after(0, 1_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|row| row.kind == "client.auth_failed")
        .filter_map(|row| {
            let detail: Value = serde_json::from_str(&row.detail).unwrap();
            detail["source"].as_str().map(str::to_owned)
        })
        .collect()
}

/// `http.trusted_proxies`: from a trusted peer, `X-Forwarded-For` is the client's address for
/// the per-source limits and the audit log; from any other peer it is ignored (a client cannot
/// pick a fresh address for each request).
#[tokio::test]
async fn x_forwarded_for_is_the_source_only_from_trusted_proxies() {
    for (trusted, expected) in [
        ("127.0.0.0/8", ["198.51.100.7", "198.51.100.8"]),
        ("10.0.0.0/8", ["127.0.0.1", "127.0.0.1"]),
    ] {
        let server = Server::start(|c| {
            c.http.trusted_proxies = vec![trusted.parse().unwrap()];
            c.rate_limit.per_source_per_second = 1;
            c.rate_limit.per_source_burst = 3;
        })
        .await;
        let secret = server.client("svc").await;
        // The audit log names the client behind the proxy, or the proxy.
        for xff in ["198.51.100.7", "198.51.100.8"] {
            failing_sources(&server, xff).await;
        }
        assert_eq!(audit_sources(&server).await, expected, "trusted {trusted}");
        let with_xff = |xff: &'static str| {
            server
                .http
                .post(server.app.authority().token_endpoint())
                .header("x-forwarded-for", xff)
                .basic_auth("svc", Some(&secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
        };
        // One source spends its burst...
        let mut limited = None;
        for _ in 0..6 {
            let response = with_xff("203.0.113.20").await.unwrap();
            if response.status() != StatusCode::OK {
                limited = Some(response);
                break;
            }
        }
        assert_limited(limited.expect("a request was refused")).await;
        // ...another client behind the proxy is not limited by it; without trust, the
        // header changes nothing and the limit holds.
        let other = with_xff("192.0.2.1, 203.0.113.21").await.unwrap().status();
        if trusted == "127.0.0.0/8" {
            assert_eq!(other, StatusCode::OK, "trusted {trusted}");
        } else {
            assert_eq!(other, StatusCode::TOO_MANY_REQUESTS, "trusted {trusted}");
        }
        server.app.shutdown().await.unwrap();
    }
}
