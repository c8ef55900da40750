//! HTTP plumbing shared by the token keeper and the secrets client: URL checks, the default
//! client, bounded body reads, `Retry-After`, backoff with jitter.

use std::time::Duration;

use url::Url;

use super::error::ConsumerError;

/// Largest response body read from the authority (tokens, secrets): anything larger is refused.
pub(crate) const MAX_BODY: usize = 256 * 1024;

/// Parses and checks an authority URL: https, or http to a loopback host (or anywhere with
/// `accept_plain_http`); no credentials in it (URLs end up in logs).
pub(crate) fn check_url(url: &str, accept_plain_http: bool) -> Result<Url, ConsumerError> {
    let parsed = Url::parse(url).map_err(|e| {
        // Unparsed, it may still hold credentials: say only that it did not parse.
        let shown = if url.contains('@') { "<redacted>" } else { url };
        ConsumerError::Config(format!("invalid authority URL {shown}: {e}"))
    })?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ConsumerError::Config(
            "the authority URL must not contain credentials".into(),
        ));
    }
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        None => {
            return Err(ConsumerError::Config(format!(
                "authority URL {parsed} has no host"
            )));
        }
    };
    match parsed.scheme() {
        "https" => {}
        "http" if loopback || accept_plain_http => {}
        "http" => {
            return Err(ConsumerError::Config(format!(
                "authority URL {parsed}: plain http only to a loopback address"
            )));
        }
        other => {
            return Err(ConsumerError::Config(format!(
                "authority URL scheme {other:?}: expected https"
            )));
        }
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(ConsumerError::Config(format!(
            "authority URL {parsed}: no query or fragment"
        )));
    }
    Ok(parsed)
}

/// `base` with `path` (no leading slash) appended to its path.
pub(crate) fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}/{path}", base.path().trim_end_matches('/'));
    url.set_path(&joined);
    url
}

/// The HTTP client used when none is given: rustls, the timeout, no redirects (a redirect to
/// another host would carry the token there).
pub(crate) fn default_client(timeout: Duration) -> Result<reqwest::Client, ConsumerError> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("gha-auth-consumer/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ConsumerError::Config(format!("HTTP client: {e}")))
}

/// A transport error, without the URL's query (there is none) and without any body.
pub(crate) fn unreachable(url: &Url, error: &reqwest::Error) -> ConsumerError {
    let message = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "connection failed".to_owned()
    } else {
        // reqwest's Display names the URL, which we give ourselves; keep the cause chain.
        std::error::Error::source(error).map_or_else(|| error.to_string(), ToString::to_string)
    };
    ConsumerError::Unreachable {
        url: url.to_string(),
        message,
    }
}

/// Reads the body, refusing more than [`MAX_BODY`] bytes.
pub(crate) async fn read_body(
    url: &Url,
    mut response: reqwest::Response,
) -> Result<Vec<u8>, ConsumerError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(too_large(url));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(url, &e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large(url));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn too_large(url: &Url) -> ConsumerError {
    ConsumerError::InvalidResponse {
        url: url.to_string(),
        message: format!("body larger than {MAX_BODY} bytes"),
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by gha-auth), capped at an hour.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(3600)))
}

/// Backoff before retry number `attempt` (1 for the first): `min × 2^(attempt-1)` capped at
/// `max`, minus up to 20 % of jitter (`unit` in `[0, 1)`).
pub(crate) fn backoff(attempt: u32, min: Duration, max: Duration, unit: f64) -> Duration {
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let exponent = attempt.saturating_sub(1).min(30);
    let min = min.as_secs_f64();
    let raw = (min * f64::from(1u32 << exponent)).min(max.as_secs_f64().max(min));
    Duration::from_secs_f64(raw * (1.0 - 0.2 * unit))
}

/// A uniform random number in `[0, 1)` for jitter (0.5 if the system RNG fails).
pub(crate) fn random_unit() -> f64 {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// `instant + duration`, saturating.
pub(crate) fn add(
    instant: chrono::DateTime<chrono::Utc>,
    duration: Duration,
) -> chrono::DateTime<chrono::Utc> {
    chrono::TimeDelta::from_std(duration)
        .ok()
        .and_then(|delta| instant.checked_add_signed(delta))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_urls_are_checked() {
        for ok in [
            "https://auth.example",
            "https://auth.example/base/",
            "http://127.0.0.1:8700",
            "http://localhost:1",
            "http://[::1]:8700",
        ] {
            assert!(check_url(ok, false).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("http://auth.example", "loopback"),
            ("ftp://auth.example", "scheme"),
            ("https://user:pw@auth.example", "credentials"),
            ("https://auth.example/?x=1", "query"),
            ("not a url", "invalid"),
        ] {
            let error = check_url(bad, false).unwrap_err().to_string();
            assert!(error.contains(why), "{bad}: {error}");
            assert!(!error.contains("pw@"), "{error}");
        }
        assert!(check_url("http://auth.example", true).is_ok());
        // An unparseable URL with credentials is not repeated.
        let error = check_url("https://user:se cret@[bad", false)
            .unwrap_err()
            .to_string();
        assert!(!error.contains("se cret"), "{error}");
    }

    #[test]
    fn join_appends_to_the_base_path() {
        let base = check_url("https://a.example/auth/", false).unwrap();
        assert_eq!(
            join(&base, "oauth2/token").as_str(),
            "https://a.example/auth/oauth2/token"
        );
        let base = check_url("https://a.example", false).unwrap();
        assert_eq!(
            join(&base, "v1/secrets/x").as_str(),
            "https://a.example/v1/secrets/x"
        );
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_bounded_jitter() {
        let (min, max) = (Duration::from_millis(500), Duration::from_secs(10));
        let table = [
            (1, 0.0, 0.5),
            (2, 0.0, 1.0),
            (3, 0.0, 2.0),
            (6, 0.0, 10.0),
            (u32::MAX, 0.0, 10.0),
            (1, 1.0, 0.4),
            (1, f64::NAN, 0.45),
        ];
        for (attempt, unit, expected) in table {
            let got = backoff(attempt, min, max, unit).as_secs_f64();
            assert!((got - expected).abs() < 1e-9, "{attempt}: {got}");
        }
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_capped() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(reqwest::header::RETRY_AFTER, "999999".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3600)));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
