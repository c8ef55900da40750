//! `http.trusted_proxies`: the client address behind a load balancer. A request whose connection
//! comes from a trusted proxy carries the client's address in `X-Forwarded-For`; the layer here
//! replaces the connection's address ([`ConnectInfo`]) with it before any handler, rate limit or
//! audit event reads it. From any other peer the header is ignored, so a client cannot choose
//! its own address.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// The header the proxies set.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The client address of a request that came from `peer`: the rightmost `X-Forwarded-For`
/// entry that is not itself a trusted proxy, when `peer` is trusted; `peer` otherwise (and when
/// the header is missing or malformed). Entries are read right to left: each proxy appends the
/// address it saw, so those on the left are whatever the client claimed.
pub(crate) fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut entries = Vec::new();
    for value in headers.get_all(X_FORWARDED_FOR) {
        let Ok(text) = value.to_str() else {
            return peer;
        };
        entries.extend(text.split(',').map(str::trim));
    }
    let mut client = peer;
    for entry in entries.iter().rev() {
        let Some(ip) = parse_entry(entry) else {
            return client;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, maybe with a port (`[v6]:port`, `v4:port`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// The layer: rewrites [`ConnectInfo`] for requests from `trusted` proxies. Installed only when
/// the list is not empty.
pub(crate) async fn layer(trusted: Arc<[IpNet]>, mut request: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .copied()
    {
        let client = client_address(peer.ip(), request.headers(), &trusted);
        if client != peer.ip() {
            // The client's port is unknown: 0.
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(client, 0)));
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn x_forwarded_for_counts_only_from_trusted_peers() {
        let trusted = nets(&["10.0.0.0/29", "fd00::/64"]);
        let cases: [(&str, &[&str], &str); 11] = [
            // An untrusted peer names itself, whatever it sends.
            ("203.0.113.7", &["198.51.100.1"], "203.0.113.7"),
            // The proxy's header names the client.
            ("10.0.0.2", &["198.51.100.1"], "198.51.100.1"),
            // What the client claimed (left) is not believed past the proxy's entry.
            ("10.0.0.2", &["192.0.2.66, 198.51.100.1"], "198.51.100.1"),
            // Chained trusted proxies are skipped.
            ("10.0.0.2", &["198.51.100.1, 10.0.0.3"], "198.51.100.1"),
            ("10.0.0.2", &["198.51.100.1", "10.0.0.3"], "198.51.100.1"),
            // No header, or a malformed one: the proxy itself.
            ("10.0.0.2", &[], "10.0.0.2"),
            ("10.0.0.2", &["unknown"], "10.0.0.2"),
            ("10.0.0.2", &["198.51.100.1, not-an-ip"], "10.0.0.2"),
            // Ports and IPv6.
            ("10.0.0.2", &["198.51.100.1:5555"], "198.51.100.1"),
            ("fd00::1", &["[2001:db8::5]:443"], "2001:db8::5"),
            // Outside the trusted range by one address.
            ("10.0.0.8", &["198.51.100.1"], "10.0.0.8"),
        ];
        for (peer, values, expected) in cases {
            let client = client_address(peer.parse().unwrap(), &headers(values), &trusted);
            assert_eq!(client.to_string(), expected, "{peer} {values:?}");
        }
    }

    #[test]
    fn nothing_is_trusted_by_default() {
        let client = client_address(
            "127.0.0.1".parse().unwrap(),
            &headers(&["198.51.100.1"]),
            &[],
        );
        assert_eq!(client.to_string(), "127.0.0.1");
    }
}
