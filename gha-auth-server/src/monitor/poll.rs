//! One health check: `GET` the target's `/HealthCheck` and judge the answer.

use gha_auth::health::{HealthReport, HealthStatus};

use super::machine::TargetState;

/// Checks `url` within `timeout`: the outcome and, unless up, why.
pub(super) async fn check(
    client: &reqwest::Client,
    url: &url::Url,
    timeout: std::time::Duration,
) -> (TargetState, Option<String>) {
    let response = match client.get(url.clone()).timeout(timeout).send().await {
        Ok(response) => response,
        Err(e) if e.is_timeout() => {
            return (
                TargetState::Down,
                Some(format!("no answer within {}s", timeout.as_secs())),
            );
        }
        Err(e) => return (TargetState::Down, Some(e.without_url().to_string())),
    };
    let status = response.status();
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(e) => return (TargetState::Down, Some(e.without_url().to_string())),
    };
    let report = serde_json::from_slice::<HealthReport>(&body).ok();
    judge(status, report.map(|r| r.status))
}

/// The outcome of an answer with `status` and, when it parsed, the report's status.
pub(super) fn judge(
    status: reqwest::StatusCode,
    reported: Option<HealthStatus>,
) -> (TargetState, Option<String>) {
    match (status.is_success(), reported) {
        (true, Some(HealthStatus::Degraded)) => {
            (TargetState::Degraded, Some("reported Degraded".to_owned()))
        }
        (true, Some(HealthStatus::Unhealthy)) => {
            (TargetState::Down, Some("reported Unhealthy".to_owned()))
        }
        // Any other 2xx is up (a health endpoint that does not speak the report format).
        (true, _) => (TargetState::Up, None),
        (false, Some(reported)) => (
            TargetState::Down,
            Some(format!("HTTP {} ({})", status.as_u16(), reported.as_str())),
        ),
        (false, None) => (TargetState::Down, Some(format!("HTTP {}", status.as_u16()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn answers_are_judged() {
        let cases = [
            (StatusCode::OK, Some(HealthStatus::Healthy), TargetState::Up),
            (StatusCode::OK, None, TargetState::Up),
            (StatusCode::NO_CONTENT, None, TargetState::Up),
            (
                StatusCode::OK,
                Some(HealthStatus::Degraded),
                TargetState::Degraded,
            ),
            (
                StatusCode::OK,
                Some(HealthStatus::Unhealthy),
                TargetState::Down,
            ),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Some(HealthStatus::Unhealthy),
                TargetState::Down,
            ),
            (StatusCode::NOT_FOUND, None, TargetState::Down),
            (StatusCode::MOVED_PERMANENTLY, None, TargetState::Down),
        ];
        for (status, reported, expected) in cases {
            let (outcome, reason) = judge(status, reported);
            assert_eq!(outcome, expected, "{status} {reported:?}");
            assert_eq!(reason.is_none(), expected == TargetState::Up);
        }
        assert_eq!(
            judge(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(HealthStatus::Unhealthy)
            )
            .1,
            Some("HTTP 503 (Unhealthy)".to_owned())
        );
    }
}
