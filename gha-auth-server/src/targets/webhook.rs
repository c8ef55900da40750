//! The webhook target: a generic HTTPS endpoint that takes the link key and reports the key it
//! holds, for integrations other than Epicor.
//!
//! - **Install**: `POST {url}` with `Content-Type: application/json` and `{"key":"ghal_…"}`.
//!   Any 2xx is success.
//! - **Read back**: `GET {url}` → `200 {"key":"ghal_…"}`.
//!
//! Both calls authenticate with the configured secret:
//! - `auth = "bearer"`: `Authorization: Bearer <secret>`;
//! - `auth = "hmac"`: `X-GHA-Timestamp: <unix seconds>` and
//!   `X-GHA-Signature: sha256=<hex HMAC-SHA256(secret, "{timestamp}\n{METHOD}\n{path}\n{body}")>`
//!   (`path` is the URL's path, `body` empty for GET). The receiver should refuse timestamps
//!   more than a few minutes off, which bounds replays.
//!
//! Timeouts and 5xx answers are retried with doubling backoff; 4xx answers are not.

use std::fmt;

use futures_util::future::BoxFuture;
use gha_auth::{SecretString, SharedClock};
use ring::hmac;
use serde::Deserialize;
use url::Url;

use super::http::{self, HttpSettings};
use super::secrets::SecretSource;
use super::{LinkKeyTarget, TargetError, WebhookAuth};

/// The JSON both calls carry.
#[derive(Deserialize)]
struct KeyBody {
    key: SecretString,
}

/// A link key pushed to, and read back from, an HTTPS endpoint.
pub(crate) struct WebhookTarget {
    url: Url,
    auth: WebhookAuth,
    secret: SecretSource,
    http: reqwest::Client,
    settings: HttpSettings,
    clock: SharedClock,
}

impl fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &self.url.as_str())
            .field("auth", &self.auth)
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

impl WebhookTarget {
    pub(crate) fn new(
        url: Url,
        auth: WebhookAuth,
        secret: SecretSource,
        http: reqwest::Client,
        settings: HttpSettings,
        clock: SharedClock,
    ) -> Self {
        Self {
            url,
            auth,
            secret,
            http,
            settings,
            clock,
        }
    }

    async fn call(&self, method: reqwest::Method, body: &[u8]) -> Result<Vec<u8>, TargetError> {
        let secret = self.secret.single("secret").await?;
        let what = format!("webhook {method}");
        let answer = http::with_retries(&self.settings, &self.clock, &what, || {
            let mut request = self
                .http
                .request(method.clone(), self.url.clone())
                .header(reqwest::header::ACCEPT, "application/json");
            match self.auth {
                WebhookAuth::Bearer => {
                    request = request.bearer_auth(secret.expose());
                }
                WebhookAuth::Hmac => {
                    // A fresh timestamp per attempt: a retry is a new request.
                    let timestamp = self.clock.unix_seconds();
                    let signature =
                        sign(&secret, timestamp, method.as_str(), self.url.path(), body);
                    request = request
                        .header("x-gha-timestamp", timestamp.to_string())
                        .header("x-gha-signature", signature);
                }
            }
            if !body.is_empty() {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_vec());
            }
            http::send(request)
        })
        .await?;
        if (200..300).contains(&answer.status) {
            return Ok(answer.body);
        }
        // The endpoint's body is not ours to trust or to log; the status says enough.
        Err(TargetError::Rejected {
            status: answer.status,
            message: format!("{what} answered {}", answer.status),
        })
    }
}

/// `sha256=<hex HMAC-SHA256(secret, "{timestamp}\n{METHOD}\n{path}\n{body}")>`.
pub(crate) fn sign(
    secret: &SecretString,
    timestamp: i64,
    method: &str,
    path: &str,
    body: &[u8],
) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
    let mut context = hmac::Context::with_key(&key);
    context.update(format!("{timestamp}\n{method}\n{path}\n").as_bytes());
    context.update(body);
    format!("sha256={}", hex::encode(context.sign().as_ref()))
}

impl LinkKeyTarget for WebhookTarget {
    fn install<'a>(&'a self, key: &'a SecretString) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async move {
            let body = serde_json::to_vec(&serde_json::json!({ "key": key.expose() }))
                .map_err(|e| TargetError::Config(format!("webhook body: {e}")))?;
            let body = zeroize::Zeroizing::new(body);
            self.call(reqwest::Method::POST, &body).await?;
            Ok(())
        })
    }

    fn read_back(&self) -> BoxFuture<'_, Result<SecretString, TargetError>> {
        Box::pin(async move {
            let body = self.call(reqwest::Method::GET, &[]).await?;
            let parsed: KeyBody = serde_json::from_slice(&body).map_err(|_| {
                TargetError::Protocol("webhook GET answer is not {\"key\":\"…\"}".into())
            })?;
            Ok(parsed.key)
        })
    }

    fn describe(&self) -> String {
        let auth = match self.auth {
            WebhookAuth::Bearer => "bearer",
            WebhookAuth::Hmac => "hmac",
        };
        format!("webhook {} ({auth})", self.url)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;
    use gha_auth::SystemClock;

    use super::*;
    use crate::settings::Duration;
    use crate::targets::{TargetConfig, TargetDeps, WebhookTargetConfig, build_target};

    /// A receiver that checks the auth the way an integration would, and holds the key.
    #[derive(Clone, Default)]
    struct Receiver {
        secret: String,
        hmac: bool,
        key: Arc<Mutex<Option<String>>>,
        status: Arc<Mutex<Option<StatusCode>>>,
        calls: Arc<Mutex<u32>>,
    }

    fn authorized(receiver: &Receiver, method: &str, headers: &HeaderMap, body: &[u8]) -> bool {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if receiver.hmac {
            let Some(timestamp) = header("x-gha-timestamp").and_then(|t| t.parse::<i64>().ok())
            else {
                return false;
            };
            let expected = sign(
                &SecretString::from(receiver.secret.as_str()),
                timestamp,
                method,
                "/hook",
                body,
            );
            header("x-gha-signature") == Some(expected.as_str())
        } else {
            header("authorization") == Some(format!("Bearer {}", receiver.secret).as_str())
        }
    }

    async fn post_key(
        State(r): State<Receiver>,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> StatusCode {
        *r.calls.lock().unwrap() += 1;
        if let Some(status) = *r.status.lock().unwrap() {
            return status;
        }
        if !authorized(&r, "POST", &headers, &body) {
            return StatusCode::UNAUTHORIZED;
        }
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        *r.key.lock().unwrap() = value["key"].as_str().map(str::to_owned);
        StatusCode::NO_CONTENT
    }

    async fn get_key(
        State(r): State<Receiver>,
        headers: HeaderMap,
    ) -> Result<axum::Json<serde_json::Value>, StatusCode> {
        *r.calls.lock().unwrap() += 1;
        if !authorized(&r, "GET", &headers, b"") {
            return Err(StatusCode::UNAUTHORIZED);
        }
        let key = r.key.lock().unwrap().clone();
        Ok(axum::Json(serde_json::json!({ "key": key })))
    }

    async fn start(receiver: Receiver) -> String {
        let app = Router::new()
            .route("/hook", get(get_key).post(post_key))
            .with_state(receiver);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/hook")
    }

    async fn webhook(
        url: String,
        auth: WebhookAuth,
        secret: &str,
    ) -> (Arc<dyn LinkKeyTarget>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hook-secret");
        std::fs::write(&path, format!("{secret}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = WebhookTargetConfig {
            url,
            auth,
            secret_vault_mount: "secret".into(),
            secret_vault_path: None,
            secret_file: Some(path),
            ca_file: None,
            connect_timeout: Duration::seconds(5),
            request_timeout: Duration::seconds(10),
            max_attempts: 3,
            retry_backoff: Duration::seconds(0),
        };
        let target = build_target(
            &TargetConfig::Webhook(config),
            TargetDeps::new(SystemClock::shared()),
        )
        .await
        .unwrap();
        (target, dir)
    }

    #[tokio::test]
    async fn bearer_and_hmac_install_and_read_back() {
        for (auth, hmac) in [(WebhookAuth::Bearer, false), (WebhookAuth::Hmac, true)] {
            let receiver = Receiver {
                secret: "hook-secret".into(),
                hmac,
                ..Receiver::default()
            };
            let url = start(receiver.clone()).await;
            let (target, _dir) = webhook(url, auth, "hook-secret").await;
            target
                .install(&SecretString::from("ghal_one"))
                .await
                .unwrap();
            assert_eq!(receiver.key.lock().unwrap().as_deref(), Some("ghal_one"));
            assert_eq!(target.read_back().await.unwrap().expose(), "ghal_one");
            assert!(!target.describe().contains("hook-secret"));
        }
    }

    #[tokio::test]
    async fn wrong_secret_is_rejected_once_and_server_errors_are_retried() {
        let receiver = Receiver {
            secret: "right".into(),
            hmac: true,
            ..Receiver::default()
        };
        let url = start(receiver.clone()).await;
        let (target, _dir) = webhook(url.clone(), WebhookAuth::Hmac, "wrong").await;
        let error = target
            .install(&SecretString::from("ghal_one"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, TargetError::Rejected { status: 401, .. }),
            "{error}"
        );
        assert!(!error.to_string().contains("ghal_one"));
        assert_eq!(*receiver.calls.lock().unwrap(), 1, "4xx is not retried");

        *receiver.status.lock().unwrap() = Some(StatusCode::BAD_GATEWAY);
        let (target, _dir) = webhook(url, WebhookAuth::Hmac, "right").await;
        let error = target
            .install(&SecretString::from("ghal_one"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, TargetError::Rejected { status: 502, .. }),
            "{error}"
        );
        assert_eq!(*receiver.calls.lock().unwrap(), 4, "1 + max_attempts 3");
    }

    #[test]
    fn signature_covers_every_part() {
        let secret = SecretString::from("k");
        let base = sign(&secret, 1, "POST", "/hook", b"{}");
        assert!(
            base.starts_with("sha256=") && base.len() == 7 + 64,
            "{base}"
        );
        assert_ne!(base, sign(&secret, 2, "POST", "/hook", b"{}"));
        assert_ne!(base, sign(&secret, 1, "GET", "/hook", b"{}"));
        assert_ne!(base, sign(&secret, 1, "POST", "/other", b"{}"));
        assert_ne!(base, sign(&secret, 1, "POST", "/hook", b"{ }"));
        assert_ne!(
            base,
            sign(&SecretString::from("j"), 1, "POST", "/hook", b"{}")
        );
    }
}
