use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// What the policy says about a URL: `Ok` or the error's variant name.
fn verdict(policy: UrlPolicy, url: &str) -> Result<(), &'static str> {
    policy.check(url).map(drop).map_err(|e| match e {
        UrlError::Invalid { .. } => "invalid",
        UrlError::Scheme { .. } => "scheme",
        UrlError::Credentials { .. } => "credentials",
        UrlError::PlainHttp { .. } => "plain http",
        UrlError::Query { .. } => "query",
        UrlError::Fragment { .. } => "fragment",
    })
}

#[test]
fn the_policy_table() {
    let strict = UrlPolicy::new();
    let plain = UrlPolicy::new().allow_plain_http(true);
    let query = UrlPolicy::new().allow_query(true);
    let cases: &[(&str, UrlPolicy, Result<(), &str>)] = &[
        ("https://auth.example", strict, Ok(())),
        ("https://auth.example/base/", strict, Ok(())),
        (
            "https://auth.example:8443/.well-known/jwks.json",
            strict,
            Ok(()),
        ),
        ("HTTPS://Auth.Example", strict, Ok(())),
        ("https://10.0.0.1:8200", strict, Ok(())),
        // Plain http: loopback only, unless allowed.
        ("http://127.0.0.1:8700", strict, Ok(())),
        ("http://127.1.2.3:8700", strict, Ok(())),
        ("http://localhost:1", strict, Ok(())),
        ("http://LocalHost:1", strict, Ok(())),
        ("http://[::1]:8700", strict, Ok(())),
        ("http://auth.example", strict, Err("plain http")),
        ("http://localhost.evil.example", strict, Err("plain http")),
        ("http://128.0.0.1", strict, Err("plain http")),
        ("http://[::2]", strict, Err("plain http")),
        ("http://0.0.0.0:8700", strict, Err("plain http")),
        ("http://auth.example", plain, Ok(())),
        // Credentials: none at all, in any form and with any other allowance.
        (
            "https://user:pw@vault.example:8200",
            strict,
            Err("credentials"),
        ),
        ("https://:pw@vault.example:8200", strict, Err("credentials")),
        (
            "https://user@vault.example:8200",
            strict,
            Err("credentials"),
        ),
        (
            "https://user:@vault.example:8200",
            strict,
            Err("credentials"),
        ),
        ("http://:pw@127.0.0.1:8200", plain, Err("credentials")),
        (
            "https://:pw@hooks.example/x?sig=1",
            query,
            Err("credentials"),
        ),
        // Query and fragment.
        ("https://auth.example/x?api-key=1", strict, Err("query")),
        ("https://auth.example/x?", strict, Err("query")),
        ("https://hooks.example/x?sig=abc", query, Ok(())),
        ("https://auth.example/x#frag", strict, Err("fragment")),
        ("https://auth.example/x#frag", query, Err("fragment")),
        // Scheme and host.
        ("ftp://auth.example", plain, Err("scheme")),
        ("file:///etc/passwd", plain, Err("scheme")),
        ("unix:/run/x.sock", plain, Err("scheme")),
        ("not a url", plain, Err("invalid")),
        ("https://", plain, Err("invalid")),
        ("", plain, Err("invalid")),
    ];
    for (url, policy, expected) in cases {
        assert_eq!(verdict(*policy, url), *expected, "{url} with {policy:?}");
    }
}

#[test]
fn errors_never_echo_a_password_or_a_query() {
    let policy = UrlPolicy::new();
    for url in [
        "https://user:hunter2@auth.example/x",
        "https://:hunter2@auth.example/x",
        "http://user:hunter2@auth.example/x",
        "ftp://user:hunter2@auth.example/x",
        "https://auth.example/x?key=hunter2",
        "http://auth.example/x?key=hunter2",
        "https://auth.example/x#hunter2",
        "https://user:hunter2@[bad/x",
        "https://user:hunter 2@auth.example/x",
    ] {
        let error = policy.check(url).unwrap_err();
        let text = format!("{error} {error:?}");
        assert!(!text.contains("hunter"), "{url}: {text}");
    }
    // The rest of the URL is shown, so the operator can tell which one it was.
    let error = policy
        .check("https://:pw@vault.example:8200/v1")
        .unwrap_err();
    assert!(
        error.to_string().contains("vault.example:8200/v1"),
        "{error}"
    );
}

#[test]
fn redact_replaces_credentials_and_query() {
    let cases = [
        ("https://auth.example/x", "https://auth.example/x"),
        (
            "https://u:p@auth.example/x",
            "https://redacted@auth.example/x",
        ),
        ("https://:p@auth.example/", "https://redacted@auth.example/"),
        (
            "https://hooks.example/x?sig=s#f",
            "https://hooks.example/x?redacted",
        ),
    ];
    for (url, shown) in cases {
        assert_eq!(redact(&Url::parse(url).unwrap()), shown, "{url}");
    }
}

#[test]
fn join_path_appends_to_the_base_path() {
    let cases = [
        (
            "https://a.example",
            "oauth2/token",
            "https://a.example/oauth2/token",
        ),
        (
            "https://a.example/",
            "oauth2/token",
            "https://a.example/oauth2/token",
        ),
        (
            "https://a.example/auth/",
            "v1/secrets/x",
            "https://a.example/auth/v1/secrets/x",
        ),
        (
            "https://a.example/auth",
            "v1/link-keys/epicor",
            "https://a.example/auth/v1/link-keys/epicor",
        ),
    ];
    for (base, path, joined) in cases {
        let base = Url::parse(base).unwrap();
        assert_eq!(join_path(&base, path).as_str(), joined);
    }
}

#[test]
fn connect_timeout_defaults_to_the_request_timeout_capped() {
    let builder = |timeout| HttpClientBuilder::new("t").timeout(timeout);
    let cases = [
        (Duration::from_secs(2), Duration::from_secs(2)),
        (Duration::from_secs(10), Duration::from_secs(5)),
        (Duration::from_secs(60), Duration::from_secs(5)),
    ];
    for (timeout, connect) in cases {
        assert_eq!(
            builder(timeout).effective_connect_timeout(),
            connect,
            "{timeout:?}"
        );
    }
    let explicit = builder(Duration::from_secs(60)).connect_timeout(Duration::from_secs(20));
    assert_eq!(
        explicit.effective_connect_timeout(),
        Duration::from_secs(20)
    );
    assert_eq!(
        builder(Duration::ZERO).build().unwrap_err(),
        ClientError::Timeout("request timeout")
    );
    assert_eq!(
        explicit
            .connect_timeout(Duration::ZERO)
            .build()
            .unwrap_err(),
        ClientError::Timeout("connect timeout")
    );
}

#[test]
fn ca_certificates_must_be_pem_certificates() {
    let builder = HttpClientBuilder::new("t");
    assert!(matches!(
        builder.clone().ca_pem(b"not pem"),
        Err(ClientError::CaCertificates { .. })
    ));
    let missing = builder
        .clone()
        .ca_file(Path::new("/nonexistent/ca.pem"))
        .unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/ca.pem"),
        "{missing}"
    );
    let dir = tempfile_dir();
    let file = dir.join("ca.pem");
    std::fs::write(&file, TEST_CA).unwrap();
    let builder = builder
        .ca_file(&file)
        .unwrap()
        .ca_pem(TEST_CA.as_bytes())
        .unwrap();
    assert!(
        format!("{builder:?}").contains("extra_roots: 2"),
        "{builder:?}"
    );
    builder.build().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gha-auth-outbound-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One request to a local server that answers with a redirect: the client names itself and does
/// not follow.
#[tokio::test]
async fn the_client_names_itself_and_never_follows_redirects() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let mut requests = Vec::new();
        // Two accepts at most: a followed redirect would be the second.
        for _ in 0..2 {
            let accepted =
                tokio::time::timeout(Duration::from_millis(500), listener.accept()).await;
            let Ok(Ok((mut stream, _))) = accepted else {
                break;
            };
            let mut buffer = vec![0u8; 4096];
            let n = stream.read(&mut buffer).await.unwrap();
            requests.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
            let answer = "HTTP/1.1 302 Found\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\
                          connection: close\r\n\r\n";
            stream.write_all(answer.as_bytes()).await.unwrap();
        }
        requests
    });
    let client = HttpClientBuilder::new("gha-auth-test").build().unwrap();
    let response = client.get(format!("{base}/start")).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let requests = server.await.unwrap();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let user_agent = format!("user-agent: gha-auth-test/{}", env!("CARGO_PKG_VERSION"));
    assert!(
        requests[0].to_ascii_lowercase().contains(&user_agent),
        "{}",
        requests[0]
    );
}

/// A self-signed CA certificate (generated for this test, no key kept).
const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBjTCCATOgAwIBAgIUKgvnPhnJVW16naFqg2QfvpOr3HMwCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQZ2hhLWF1dGggdGVzdCBDQTAgFw0yNjEyMDYwMjEwMDZaGA8y
MTI2MTExMjAyMTAwNlowGzEZMBcGA1UEAwwQZ2hhLWF1dGggdGVzdCBDQTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABJCu2mQXbx59ARKWgJbcGY4ifwwJLcR2uT+z
E4t2uUwFw3LjW/RX0N7kpAR6032ACIg1HGAtAU2eY6W7zza8ewyjUzBRMB0GA1Ud
DgQWBBQpwgctpoIX8XC0DxPtZL9tjY++zTAfBgNVHSMEGDAWgBQpwgctpoIX8XC0
DxPtZL9tjY++zTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQDu
wU0KbFei2xcpCc3g31w1TxneCTjvEGP4oOQu7JR2vAIgJOER4xWwaI9V0omvKuc9
fLAjTa7tfsiQ3IqY/CEIenc=
-----END CERTIFICATE-----
";
