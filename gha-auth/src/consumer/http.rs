//! HTTP plumbing shared by the token keeper and the secrets client: the default client, bounded
//! body reads, `Retry-After`, backoff with jitter. URLs are checked by
//! [`UrlPolicy`](crate::outbound::UrlPolicy).

use std::time::Duration;

use url::Url;

use super::error::ConsumerError;
use crate::outbound::HttpClientBuilder;

/// Largest response body read from the authority (tokens, secrets): anything larger is refused.
pub(crate) const MAX_BODY: usize = 256 * 1024;

/// The HTTP client used when none is given ([`HttpClientBuilder`]: rustls, the timeout, no
/// redirects, since a redirect to another host would carry the token there).
pub(crate) fn default_client(timeout: Duration) -> Result<reqwest::Client, ConsumerError> {
    HttpClientBuilder::new("gha-auth-consumer")
        .timeout(timeout)
        .build()
        .map_err(|e| ConsumerError::Config(e.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

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
