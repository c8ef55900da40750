//! Outbound HTTP: which URLs gha-auth components may call, and the one way they build an HTTP
//! client.
//!
//! Every outbound URL (the authority, the broker, a JWKS or revocation feed, Vault, an Epicor
//! target, an alert webhook) goes through [`UrlPolicy::check`]:
//!
//! - it parses, has a host, and its scheme is `https`, or `http` to a loopback host
//!   (`localhost`, 127.0.0.0/8, `::1`) unless the caller allows plain HTTP everywhere (behind a
//!   TLS-terminating proxy the operator trusts);
//! - it carries no credentials at all: no user name, no password (an empty user name with a
//!   password too). URLs end up in logs and error messages; credentials come from secret files
//!   or the secret store instead;
//! - it has no fragment, and no query unless the caller allows one (a webhook URL signed in its
//!   query).
//!
//! Errors show the URL through [`redact`], so a refused URL never echoes a password or a query;
//! a URL that does not parse is not shown at all.
//!
//! [`HttpClientBuilder`] builds every `reqwest::Client` of the workspace: rustls, a request
//! timeout and a connect timeout, no redirects (a redirect to another host would carry a bearer
//! token or a key there), a user agent naming the component, and optional extra CA certificates.
//!
//! ```
//! use gha_auth::outbound::{HttpClientBuilder, UrlPolicy};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let url = UrlPolicy::new().check("https://auth.gha.example/.well-known/jwks.json")?;
//! assert!(UrlPolicy::new().check("https://:pw@vault.example:8200").is_err());
//! let client = HttpClientBuilder::new("gha-auth-middleware").build()?;
//! # let _ = (url, client); Ok(()) }
//! ```

use std::fmt;
use std::path::Path;
use std::time::Duration;

use url::{Host, Url};

/// Default timeout of one request (connect, send, receive).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest default connect timeout: a host that does not accept a connection in this long is
/// down, whatever the request timeout.
pub const MAX_DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an outbound URL was refused. Messages show the URL with its credentials and query
/// replaced ([`redact`]), never as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Not a URL, or one without a host. The text is not repeated: unparsed, it could still hold
    /// a password.
    #[error("not a valid URL: {reason}")]
    Invalid {
        /// The parser's reason (it never quotes the input).
        reason: String,
    },
    /// A scheme other than `https` and `http`.
    #[error("{url}: scheme {scheme:?} is not allowed; use https")]
    Scheme {
        /// The URL, redacted.
        url: String,
        /// The scheme.
        scheme: String,
    },
    /// A user name or a password in the URL.
    #[error("{url}: credentials in a URL end up in logs; give them as a secret instead")]
    Credentials {
        /// The URL, redacted.
        url: String,
    },
    /// Plain HTTP to a host that is not loopback, without the caller's opt-in.
    #[error(
        "{url}: plain http only to a loopback host (localhost, 127.0.0.0/8, ::1); use https, or \
         allow plain http explicitly behind a TLS-terminating proxy you trust"
    )]
    PlainHttp {
        /// The URL, redacted.
        url: String,
    },
    /// A query where none is allowed (it could carry a key, and it ends up in logs).
    #[error("{url}: no query allowed")]
    Query {
        /// The URL, redacted.
        url: String,
    },
    /// A fragment: never sent to the server, so never meaningful in an outbound URL.
    #[error("{url}: no fragment allowed")]
    Fragment {
        /// The URL, redacted.
        url: String,
    },
}

/// What outbound URLs a caller accepts. Strict by default: see the [module docs](self).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    allow_plain_http: bool,
    allow_query: bool,
}

impl UrlPolicy {
    /// The strict policy: https (or http to loopback), no credentials, no query, no fragment.
    pub const fn new() -> Self {
        Self {
            allow_plain_http: false,
            allow_query: false,
        }
    }

    /// Also accepts `http` to any host (tokens cross the network in clear unless a proxy the
    /// operator trusts terminates TLS in front of it).
    #[must_use]
    pub const fn allow_plain_http(mut self, allow: bool) -> Self {
        self.allow_plain_http = allow;
        self
    }

    /// Also accepts a query (a webhook URL signed in its query). It is still redacted in errors.
    #[must_use]
    pub const fn allow_query(mut self, allow: bool) -> Self {
        self.allow_query = allow;
        self
    }

    /// Parses `text` and checks it.
    pub fn check(&self, text: &str) -> Result<Url, UrlError> {
        let url = Url::parse(text).map_err(|e| UrlError::Invalid {
            reason: e.to_string(),
        })?;
        self.check_parsed(&url)?;
        Ok(url)
    }

    /// Checks a URL parsed elsewhere (a configuration file's `url::Url` field).
    pub fn check_parsed(&self, url: &Url) -> Result<(), UrlError> {
        let shown = || redact(url);
        let plain = match url.scheme() {
            "https" => false,
            "http" => true,
            scheme => {
                return Err(UrlError::Scheme {
                    url: shown(),
                    scheme: scheme.to_owned(),
                });
            }
        };
        // The parser gives every http(s) URL a host; a URL built by hand might lack one.
        let Some(host) = url.host() else {
            return Err(UrlError::Invalid {
                reason: "no host".to_owned(),
            });
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Credentials { url: shown() });
        }
        if plain && !self.allow_plain_http && !is_loopback(&host) {
            return Err(UrlError::PlainHttp { url: shown() });
        }
        if url.query().is_some() && !self.allow_query {
            return Err(UrlError::Query { url: shown() });
        }
        if url.fragment().is_some() {
            return Err(UrlError::Fragment { url: shown() });
        }
        Ok(())
    }
}

/// Whether `host` is this machine: `localhost` (any case), 127.0.0.0/8 or `::1`.
pub fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(domain) => domain.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// `url` for a message: a user name and password become `redacted`, a query becomes
/// `redacted`, a fragment is dropped.
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    if !url.username().is_empty() || url.password().is_some() {
        // Both only fail for URLs that cannot have credentials, which these have.
        let _ = shown.set_username("redacted");
        let _ = shown.set_password(None);
    }
    if url.query().is_some() {
        shown.set_query(Some("redacted"));
    }
    shown.set_fragment(None);
    shown.into()
}

/// `base` with `path` (no leading slash) appended to its path: `https://a/auth/` and
/// `https://a/auth` both give `https://a/auth/<path>`. Query and fragment are dropped.
pub fn join_path(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}/{path}", base.path().trim_end_matches('/'));
    url.set_path(&joined);
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// Why an HTTP client could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A CA certificate file that cannot be read or holds no usable certificate.
    #[error("CA certificates {source_name}: {reason}")]
    CaCertificates {
        /// The file (or `PEM` for certificates given in memory).
        source_name: String,
        /// Why.
        reason: String,
    },
    /// A timeout of zero.
    #[error("{0} must be positive")]
    Timeout(&'static str),
    /// reqwest refused the settings (e.g. the TLS backend could not start).
    #[error("HTTP client: {0}")]
    Build(String),
}

/// Builds a `reqwest::Client`: rustls, timeouts, no redirects, a user agent, extra CAs.
#[derive(Clone)]
pub struct HttpClientBuilder {
    user_agent: String,
    timeout: Duration,
    connect_timeout: Option<Duration>,
    roots: Vec<reqwest::Certificate>,
}

impl fmt::Debug for HttpClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClientBuilder")
            .field("user_agent", &self.user_agent)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.effective_connect_timeout())
            .field("extra_roots", &self.roots.len())
            .finish()
    }
}

impl HttpClientBuilder {
    /// A client whose user agent is `<component>/<version>`, with the defaults: 10 s per
    /// request, connecting within 5 s, the Mozilla root certificates (webpki-roots) as the
    /// only trust anchors.
    pub fn new(component: &str) -> Self {
        Self {
            user_agent: format!("{component}/{}", env!("CARGO_PKG_VERSION")),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: None,
            roots: Vec::new(),
        }
    }

    /// Timeout of a whole request, from connecting to the end of the body (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Timeout of connecting, TLS included (default: the request timeout, at most 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Also trusts the CA certificates in `pem` (one or more `CERTIFICATE` blocks).
    pub fn ca_pem(mut self, pem: &[u8]) -> Result<Self, ClientError> {
        self.add_roots("PEM", pem)?;
        Ok(self)
    }

    /// Also trusts the CA certificates in the PEM file at `path`.
    pub fn ca_file(mut self, path: &Path) -> Result<Self, ClientError> {
        let name = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| ClientError::CaCertificates {
            source_name: name.clone(),
            reason: e.kind().to_string(),
        })?;
        self.add_roots(&name, &pem)?;
        Ok(self)
    }

    fn add_roots(&mut self, name: &str, pem: &[u8]) -> Result<(), ClientError> {
        let invalid = |reason: String| ClientError::CaCertificates {
            source_name: name.to_owned(),
            reason,
        };
        let certs =
            reqwest::Certificate::from_pem_bundle(pem).map_err(|e| invalid(e.to_string()))?;
        if certs.is_empty() {
            return Err(invalid("no CERTIFICATE block".to_owned()));
        }
        self.roots.extend(certs);
        Ok(())
    }

    fn effective_connect_timeout(&self) -> Duration {
        self.connect_timeout
            .unwrap_or_else(|| self.timeout.min(MAX_DEFAULT_CONNECT_TIMEOUT))
    }

    /// The client.
    pub fn build(self) -> Result<reqwest::Client, ClientError> {
        if self.timeout.is_zero() {
            return Err(ClientError::Timeout("request timeout"));
        }
        let connect_timeout = self.effective_connect_timeout();
        if connect_timeout.is_zero() {
            return Err(ClientError::Timeout("connect timeout"));
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(self.timeout)
            .connect_timeout(connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(self.user_agent);
        for root in self.roots {
            builder = builder.add_root_certificate(root);
        }
        builder
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))
    }
}

/// An error and its sources, `: `-separated, each source only when the text so far does not
/// already say it. For network errors (a TLS or connection failure is in the sources), whose text
/// names the URL and the failure, never request or response content.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let next = inner.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests;
