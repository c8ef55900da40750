//! What the HTTP targets share: a rustls client with timeouts and no redirects, URL checks, and
//! a retry loop that retries timeouts, connection failures and 5xx (never 4xx) with doubling
//! backoff on the injected clock.

use std::future::Future;
use std::path::Path;

use chrono::TimeDelta;
use gha_auth::SharedClock;
use gha_auth::outbound::{ClientError, HttpClientBuilder, UrlPolicy};
use url::Url;

use super::TargetError;
use crate::settings::Duration;

/// Largest answer body read from a target.
pub(crate) const MAX_BODY: usize = 256 * 1024;

/// Longest wait between two attempts.
const MAX_BACKOFF: TimeDelta = TimeDelta::seconds(30);

/// Timeouts and retries of one target.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpSettings {
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) retry_backoff: Duration,
}

impl HttpSettings {
    pub(crate) fn validate(&self) -> Result<(), TargetError> {
        if self.max_attempts == 0 {
            return Err(TargetError::Config(
                "max_attempts must be at least 1".into(),
            ));
        }
        if self.request_timeout.as_delta() <= TimeDelta::zero()
            || self.connect_timeout.as_delta() <= TimeDelta::zero()
        {
            return Err(TargetError::Config("timeouts must be positive".into()));
        }
        Ok(())
    }
}

/// Parses a target URL by the outbound-URL policy: https, or http to a loopback host (tests, a
/// local proxy); no credentials (they come from the secret store) and no query (it could carry a
/// key), so the URL is safe to show.
pub(crate) fn check_url(text: &str) -> Result<Url, TargetError> {
    UrlPolicy::new()
        .check(text)
        .map_err(|e| TargetError::Config(format!("target URL: {e}")))
}

/// The shared outbound client with the settings' timeouts (no redirects: one would move the
/// credentials to another host) and `ca_file` as an extra trust anchor.
pub(crate) fn client(
    settings: &HttpSettings,
    ca_file: Option<&Path>,
) -> Result<reqwest::Client, TargetError> {
    let config = |e: ClientError| TargetError::Config(format!("HTTP client: {e}"));
    let mut builder = HttpClientBuilder::new("gha-auth")
        .timeout(settings.request_timeout.as_std())
        .connect_timeout(settings.connect_timeout.as_std());
    if let Some(path) = ca_file {
        builder = builder.ca_file(path).map_err(config)?;
    }
    builder.build().map_err(config)
}

/// An answer: status and body (read up to [`MAX_BODY`]).
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

/// Sends one request and reads the answer. Transport errors are described without the URL's
/// query (there is none) and without headers.
pub(crate) async fn send(request: reqwest::RequestBuilder) -> Result<Answer, TargetError> {
    let mut response = request.send().await.map_err(transport_error)?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(TargetError::Protocol(format!(
                "answer larger than {MAX_BODY} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer { status, body })
}

fn transport_error(error: reqwest::Error) -> TargetError {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // reqwest's Display names the URL; ours never carry credentials (checked at build time).
    let url = error.url().map(|u| format!(" ({u})")).unwrap_or_default();
    TargetError::Unreachable(format!("{kind}{url}"))
}

/// Whether an attempt's outcome may be retried: timeouts, connection failures and 5xx.
fn retryable(result: &Result<Answer, TargetError>) -> bool {
    match result {
        Ok(answer) => answer.status >= 500,
        Err(error) => matches!(error, TargetError::Unreachable(_)),
    }
}

/// Runs `attempt` up to `max_attempts` times, waiting `retry_backoff`, then twice that, … (capped
/// at 30 s) after each retryable outcome. Returns the last outcome: the caller maps statuses.
pub(crate) async fn with_retries<F, Fut>(
    settings: &HttpSettings,
    clock: &SharedClock,
    what: &str,
    mut attempt: F,
) -> Result<Answer, TargetError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Answer, TargetError>>,
{
    let mut wait = settings.retry_backoff.as_delta();
    let mut tries = 0;
    loop {
        tries += 1;
        let result = attempt().await;
        if tries >= settings.max_attempts || !retryable(&result) {
            return result;
        }
        match &result {
            Ok(answer) => {
                tracing::warn!(
                    target_call = what,
                    status = answer.status,
                    attempt = tries,
                    "target answered with a server error; retrying"
                );
            }
            Err(error) => {
                tracing::warn!(target_call = what, %error, attempt = tries,
                    "target unreachable; retrying");
            }
        }
        clock.sleep(wait).await;
        wait = (wait * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(check_url("https://erp.example.com/EpicorERP").is_ok());
        assert!(check_url("http://127.0.0.1:8080/EpicorERP").is_ok());
        assert!(check_url("http://localhost:8080").is_ok());
        for bad in [
            "http://erp.example.com",
            "ftp://erp.example.com",
            "https://user:pw@erp.example.com",
            "https://erp.example.com/?api-key=x",
            "not a url",
        ] {
            let error = check_url(bad).unwrap_err().to_string();
            assert!(!error.contains("pw@"), "{error}");
            assert!(!error.contains("api-key=x"), "{error}");
        }
    }

    #[test]
    fn settings_are_validated() {
        let mut settings = HttpSettings {
            connect_timeout: Duration::seconds(1),
            request_timeout: Duration::seconds(1),
            max_attempts: 1,
            retry_backoff: Duration::seconds(0),
        };
        assert!(settings.validate().is_ok());
        settings.max_attempts = 0;
        assert!(settings.validate().is_err());
        settings.max_attempts = 1;
        settings.request_timeout = Duration::seconds(0);
        assert!(settings.validate().is_err());
    }
}
