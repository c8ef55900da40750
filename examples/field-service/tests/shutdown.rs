//! The `field-service` binary stops gracefully on SIGTERM (what Kubernetes and a managed
//! restart send): it stops accepting connections, finishes the request in flight, logs the
//! stop and exits 0.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use chrono::TimeDelta;
use gha_auth::jwt::{AccessClaims, issue};
use gha_auth::keys::{Algorithm, JwkSet, SigningKey};
use gha_auth::{Clock, SystemClock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Serves `key`'s JWKS as the authority would; returns its base URL.
async fn jwks_server(key: &SigningKey) -> String {
    let jwks = JwkSet {
        keys: vec![key.public_jwk().clone()],
    }
    .to_json()
    .unwrap();
    let router = Router::new().route(
        "/.well-known/jwks.json",
        get(move || std::future::ready(([("cache-control", "max-age=300")], jwks.clone()))),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

/// Reads from `stream` until `needle` has arrived (or the peer closes); returns all of it.
async fn read_until(stream: &mut TcpStream, needle: &str) -> String {
    let mut received = Vec::new();
    let mut buffer = [0_u8; 4096];
    while !String::from_utf8_lossy(&received).contains(needle) {
        let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buffer))
            .await
            .expect("the server answers within 30 s")
            .unwrap();
        if read == 0 {
            break;
        }
        received.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_and_exits_0() {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let authority = jwks_server(&key).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_field-service"))
        .args(["--authority", &authority, "--listen", &addr.to_string()])
        .env("RUST_LOG", "field_service=info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap().to_string();

    let mut connected = None;
    for _ in 0..200 {
        if let Ok(stream) = TcpStream::connect(addr).await {
            connected = Some(stream);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut stream = connected.expect("the binary listens");

    // A job creation whose body is still on its way: with `Expect: 100-continue` the server
    // says "100 Continue" once the handler starts reading the body, i.e. the request is in
    // flight past the auth layer.
    let mut claims = AccessClaims::new(
        &authority,
        "tech-7",
        "field-service",
        "mfs-app",
        SystemClock.unix_seconds(),
        TimeDelta::minutes(10),
    )
    .unwrap()
    .with_scopes(["jobs:write"]);
    claims.tenant = Some("acme".into());
    let token = issue(&key, &claims).unwrap();
    let body = br#"{"title":"Fix pump"}"#;
    let head = format!(
        "POST /jobs HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The auth layer needs the key set first; the binary fetches it at start.
    let interim = read_until(&mut stream, "\r\n\r\n").await;
    assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim}");
    stream.write_all(&body[..5]).await.unwrap();

    let kill = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(kill.success());

    // New connections are refused while the request is still open...
    let mut refused = false;
    for _ in 0..200 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(refused, "the listener closes on SIGTERM");

    // ...and the request in flight completes.
    stream.write_all(&body[5..]).await.unwrap();
    let response = read_until(&mut stream, r#""Fix pump""#).await;
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");

    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the binary exits after the request")
        .unwrap();
    let log = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{log}");
    assert!(
        log.contains(r#"stopping: finishing the requests in flight signal="SIGTERM""#),
        "{log}"
    );
    assert!(log.contains("field-service stopped"), "{log}");
}
