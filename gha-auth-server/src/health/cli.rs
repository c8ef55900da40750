//! `gha-auth healthcheck`: exit 0 when the local server's `/HealthCheck` answers 200 (Healthy or
//! Degraded), 1 otherwise. For container health checks in images without curl.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use crate::config::Config;
use crate::terminal::Output;

/// How long the check waits for the answer (connection included).
const TIMEOUT: Duration = Duration::from_secs(3);

/// The address to reach a server listening on `listen` from the same host: a wildcard address
/// becomes loopback of the same family.
pub(crate) fn local_target(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// The URL of the health endpoint of a server configured by `config`.
pub(crate) fn health_url(config: &Config) -> String {
    let scheme = if config.tls.files().is_some() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{}/HealthCheck", local_target(config.listen))
}

/// Runs the check; prints the status (or why it failed).
pub(crate) async fn run(config: &Config, out: &Output) -> ExitCode {
    let url = health_url(config);
    // The server's own certificate names its public host, not the local address: the check
    // reads a status code from this host only, so the certificate is not verified.
    let client = match reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .no_proxy()
        .danger_accept_invalid_certs(true)
        .build()
    {
        Ok(client) => client,
        Err(e) => return out.failure(&format!("cannot build the HTTP client: {e}")),
    };
    match client.get(&url).send().await {
        Ok(response) if response.status() == reqwest::StatusCode::OK => {
            let status = response.status().as_u16();
            out.print(
                &serde_json::json!({ "url": url, "status": status }),
                &format!("{url}: {status}"),
            );
            ExitCode::SUCCESS
        }
        Ok(response) => out.failure(&format!("{url}: {}", response.status().as_u16())),
        Err(e) => out.failure(&format!("{url}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listen_address_is_checked_on_loopback() {
        for (listen, target) in [
            ("0.0.0.0:8700", "127.0.0.1:8700"),
            ("[::]:8700", "[::1]:8700"),
            ("127.0.0.1:9", "127.0.0.1:9"),
            ("10.0.0.5:8700", "10.0.0.5:8700"),
        ] {
            assert_eq!(
                local_target(listen.parse().unwrap()).to_string(),
                target,
                "{listen}"
            );
        }
    }
}
