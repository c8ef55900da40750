//! The agent's configuration file (TOML). Unknown keys are refused, every problem is reported
//! with the file entry it is in, and no secret is ever written in it: the client secret is
//! named by file.
//!
//! ```toml
//! authority = "https://auth.internal:8700"
//! client_id = "billing-api"                 # needed for [[file]] only
//! client_secret_file = "/run/secrets/gha-auth-client-secret"
//! # audience = "gha-auth-broker"    # default
//! # broker_url = "…"                # default: the authority
//! # timeout = "10s"                 # of each request
//! # stale_window = "10m"            # how long a secret is served past its max age while the broker fails
//!
//! [reload]                          # optional: run when a file changed (argv, no shell)
//! command = ["/bin/kill", "-HUP", "1"]
//! # timeout = "30s"
//!
//! [[file]]
//! secret = "apps/billing/api"       # a secret path …
//! field = "api_key"                 # … one field, written as is
//! path = "/run/secrets/api_key"
//!
//! [[file]]
//! database_role = "billing"         # … or a database role
//! format = "env"                    # all fields: "json" or "env" (NAME=value lines)
//! path = "/run/secrets/db.env"
//!
//! [edge_keys]                       # optional: public keys for HAProxy's jwt_verify (no client needed)
//! dir = "/etc/haproxy/gha-auth-keys"  # next.pem, active.pem, retired.pem
//! reload = ["/bin/sh", "-c", "kill -USR2 \"$(cat /run/haproxy.pid)\""]
//! # interval = "30s"                # how often the authority's key states are read
//! # reload_timeout = "30s"
//! # ca_file = "/etc/ssl/internal-ca.pem"
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use gha_auth::broker::DEFAULT_BROKER_AUDIENCE;
use gha_auth::outbound::UrlPolicy;
use serde::Deserialize;

use crate::settings::Duration;

/// Largest configuration file read.
const MAX_CONFIG: u64 = 1024 * 1024;

/// Why the agent's configuration is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentConfigError {
    /// The file could not be read.
    #[error("cannot read the agent configuration {}: {message}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The file is not valid TOML for the agent (unknown key, wrong type, …).
    #[error("agent configuration {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the key and line; the file holds no secret).
        message: String,
    },
    /// A value is invalid.
    #[error("agent configuration: {0}")]
    Invalid(String),
}

/// The parsed and checked configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AgentConfig {
    /// The authority's base URL (token endpoint `{authority}/oauth2/token`).
    pub authority: String,
    /// The broker's base URL (default: the authority).
    #[serde(default)]
    pub broker_url: Option<String>,
    /// This client's id (needed by `[[file]]`; `[edge_keys]` reads public data).
    #[serde(default)]
    pub client_id: Option<String>,
    /// The file holding the client secret, re-read at every token request.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// The audience of the broker's tokens.
    #[serde(default = "default_audience")]
    pub audience: String,
    /// Timeout of each request (default 10 s).
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// How long a secret is served past its `max_age` while the broker fails (default 10 min).
    #[serde(default = "default_stale_window")]
    pub stale_window: Duration,
    /// Allows plain HTTP to a non-loopback authority (behind a TLS-terminating proxy).
    #[serde(default)]
    pub danger_accept_plain_http: bool,
    /// The command to run after files changed.
    #[serde(default)]
    pub reload: Option<ReloadConfig>,
    /// The files to write.
    #[serde(default, rename = "file")]
    pub files: Vec<FileConfig>,
    /// The authority's public signing keys, in slot files for HAProxy.
    #[serde(default)]
    pub edge_keys: Option<EdgeKeysConfig>,
}

/// `[edge_keys]`: the authority's published ES256 public keys kept as SubjectPublicKeyInfo PEM
/// files in three fixed slots, `next.pem`, `active.pem` and `retired.pem`, for HAProxy's
/// `jwt_verify`; the reload command runs after a slot changed. See
/// `docs/decisions/0006-edge-key-slots.md`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EdgeKeysConfig {
    /// The directory of the slot files (absolute; it must exist).
    pub dir: PathBuf,
    /// Program and arguments run after one or more slots changed (HAProxy reads the files only
    /// when it starts or reloads).
    pub reload: Vec<String>,
    /// How long the reload command may run before it is killed (default 30 s).
    #[serde(default = "default_reload_timeout")]
    pub reload_timeout: Duration,
    /// How often the key states are read (default 30 s).
    #[serde(default = "default_edge_interval")]
    pub interval: Duration,
    /// Extra CA certificates (PEM) trusted for the authority, e.g. a private CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl EdgeKeysConfig {
    /// The slot files, in the order next, active, retired.
    pub fn slot_paths(&self) -> [PathBuf; 3] {
        super::edge::SLOT_FILES.map(|name| self.dir.join(name))
    }
}

/// `[reload]`: a command run (without a shell) after one or more files changed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ReloadConfig {
    /// Program and arguments.
    pub command: Vec<String>,
    /// How long it may run before it is killed (default 30 s).
    #[serde(default = "default_reload_timeout")]
    pub timeout: Duration,
}

/// `[[file]]`: one output file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FileConfig {
    /// A secret path at the broker.
    #[serde(default)]
    pub secret: Option<String>,
    /// Or a database role at the broker.
    #[serde(default)]
    pub database_role: Option<String>,
    /// One field, written as is (`username` or `password` for a database role).
    #[serde(default)]
    pub field: Option<String>,
    /// Or all fields in one format.
    #[serde(default)]
    pub format: Option<Format>,
    /// Where to write (mode 0600; meant for a tmpfs).
    pub path: PathBuf,
}

/// A file holding all fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Format {
    /// A JSON object of the fields.
    Json,
    /// `NAME=value` lines (names `[A-Za-z_][A-Za-z0-9_]*`, values on one line).
    Env,
}

/// What a file is made of, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// A secret path.
    Secret(String),
    /// A database role.
    DatabaseRole(String),
}

/// How a file is rendered, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Content {
    /// One field as is.
    Field(String),
    /// All fields.
    All(Format),
}

impl FileConfig {
    /// The checked source and content (validated by [`AgentConfig::validate`]).
    pub fn parts(&self) -> Result<(Source, Content), AgentConfigError> {
        let at = || self.path.display().to_string();
        let source = match (&self.secret, &self.database_role) {
            (Some(path), None) => Source::Secret(path.clone()),
            (None, Some(role)) => Source::DatabaseRole(role.clone()),
            _ => {
                return Err(AgentConfigError::Invalid(format!(
                    "[[file]] {}: set exactly one of `secret` and `database_role`",
                    at()
                )));
            }
        };
        let content = match (&self.field, self.format) {
            (Some(field), None) if !field.is_empty() => Content::Field(field.clone()),
            (None, Some(format)) => Content::All(format),
            _ => {
                return Err(AgentConfigError::Invalid(format!(
                    "[[file]] {}: set exactly one of `field` and `format`",
                    at()
                )));
            }
        };
        if let (Source::DatabaseRole(_), Content::Field(field)) = (&source, &content)
            && field != "username"
            && field != "password"
        {
            return Err(AgentConfigError::Invalid(format!(
                "[[file]] {}: a database role has the fields `username` and `password`, not {field:?}",
                at()
            )));
        }
        Ok((source, content))
    }
}

fn default_audience() -> String {
    DEFAULT_BROKER_AUDIENCE.to_owned()
}

fn default_timeout() -> Duration {
    Duration::seconds(10)
}

fn default_stale_window() -> Duration {
    Duration::minutes(10)
}

fn default_reload_timeout() -> Duration {
    Duration::seconds(30)
}

fn default_edge_interval() -> Duration {
    Duration::seconds(30)
}

impl AgentConfig {
    /// Reads, parses and checks `path`.
    pub fn load(path: &Path) -> Result<Self, AgentConfigError> {
        let read = |message: String| AgentConfigError::Read {
            path: path.to_owned(),
            message,
        };
        let metadata = std::fs::metadata(path).map_err(|e| read(e.kind().to_string()))?;
        if metadata.len() > MAX_CONFIG {
            return Err(read(format!("larger than {MAX_CONFIG} bytes")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| read(e.kind().to_string()))?;
        Self::parse(&text).map_err(|e| match e {
            AgentConfigError::Parse { message, .. } => AgentConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses and checks TOML text.
    pub fn parse(text: &str) -> Result<Self, AgentConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| AgentConfigError::Parse {
            path: PathBuf::new(),
            message: e.message().to_owned()
                + &e.span()
                    .map(|span| format!(" (at byte {})", span.start))
                    .unwrap_or_default(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: something to do; a client for `[[file]]`; one source and one
    /// content per file, distinct absolute paths; reload commands with a program; positive
    /// timeouts; an authority URL the outbound policy accepts for `[edge_keys]`.
    pub fn validate(&self) -> Result<(), AgentConfigError> {
        let invalid = |m: String| Err(AgentConfigError::Invalid(m));
        if self.files.is_empty() && self.edge_keys.is_none() {
            return invalid("nothing to do: add [[file]] entries or an [edge_keys] section".into());
        }
        if self.timeout.as_secs() <= 0 {
            return invalid("timeout must be positive".into());
        }
        if let Some(secret_file) = &self.client_secret_file
            && !secret_file.is_absolute()
        {
            return invalid(format!(
                "client_secret_file {} must be an absolute path",
                secret_file.display()
            ));
        }
        if !self.files.is_empty() {
            if self.client_id.as_deref().is_none_or(str::is_empty) {
                return invalid("[[file]] entries need client_id (the broker's client)".into());
            }
            if self.client_secret_file.is_none() {
                return invalid("[[file]] entries need client_secret_file".into());
            }
        } else if self.reload.is_some() {
            return invalid(
                "[reload] runs after [[file]] changes and there is none; [edge_keys] has its own \
                 `reload`"
                    .into(),
            );
        }
        let mut paths = BTreeSet::new();
        for file in &self.files {
            file.parts()?;
            if !file.path.is_absolute() || file.path.file_name().is_none() {
                return invalid(format!(
                    "[[file]] path {} must be an absolute file path",
                    file.path.display()
                ));
            }
            if !paths.insert(file.path.clone()) {
                return invalid(format!(
                    "[[file]] path {} is written by two entries",
                    file.path.display()
                ));
            }
            if self.client_secret_file.as_ref() == Some(&file.path) {
                return invalid(format!(
                    "[[file]] path {} is the client secret file",
                    file.path.display()
                ));
            }
        }
        if let Some(reload) = &self.reload {
            if reload
                .command
                .first()
                .is_none_or(|program| program.is_empty())
            {
                return invalid("[reload] command must name a program".into());
            }
            if reload.timeout.as_secs() <= 0 {
                return invalid("[reload] timeout must be positive".into());
            }
        }
        if let Some(edge) = &self.edge_keys {
            self.validate_edge(edge, &paths)?;
        }
        Ok(())
    }

    fn validate_edge(
        &self,
        edge: &EdgeKeysConfig,
        file_paths: &BTreeSet<PathBuf>,
    ) -> Result<(), AgentConfigError> {
        let invalid = |m: String| Err(AgentConfigError::Invalid(m));
        UrlPolicy::new()
            .allow_plain_http(self.danger_accept_plain_http)
            .check(&self.authority)
            .map_err(|e| AgentConfigError::Invalid(format!("authority: {e}")))?;
        if !edge.dir.is_absolute() {
            return invalid(format!(
                "[edge_keys] dir {} must be an absolute path",
                edge.dir.display()
            ));
        }
        if edge.reload.first().is_none_or(|program| program.is_empty()) {
            return invalid(
                "[edge_keys] reload must name a program: HAProxy reads the key files only when \
                 it starts or reloads"
                    .into(),
            );
        }
        if edge.reload_timeout.as_secs() <= 0 {
            return invalid("[edge_keys] reload_timeout must be positive".into());
        }
        if edge.interval.as_secs() <= 0 {
            return invalid("[edge_keys] interval must be at least 1s".into());
        }
        if let Some(ca_file) = &edge.ca_file
            && !ca_file.is_absolute()
        {
            return invalid(format!(
                "[edge_keys] ca_file {} must be an absolute path",
                ca_file.display()
            ));
        }
        for slot in edge.slot_paths() {
            if file_paths.contains(&slot) || self.client_secret_file.as_ref() == Some(&slot) {
                return invalid(format!(
                    "{} is an [edge_keys] slot and another entry's file",
                    slot.display()
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
        authority = "http://127.0.0.1:8700"
        client_id = "svc"
        client_secret_file = "/run/secrets/client"
    "#;

    fn with(rest: &str) -> Result<AgentConfig, AgentConfigError> {
        AgentConfig::parse(&format!("{BASE}\n{rest}"))
    }

    #[test]
    fn a_full_configuration_parses_with_defaults() {
        let config = with(
            r#"
            [reload]
            command = ["/bin/kill", "-HUP", "1"]

            [[file]]
            secret = "apps/x"
            field = "api_key"
            path = "/run/out/api_key"

            [[file]]
            database_role = "app"
            format = "env"
            path = "/run/out/db.env"
            "#,
        )
        .unwrap();
        assert_eq!(config.audience, DEFAULT_BROKER_AUDIENCE);
        assert_eq!(config.timeout.as_secs(), 10);
        assert_eq!(config.stale_window.as_secs(), 600);
        assert_eq!(config.reload.as_ref().unwrap().timeout.as_secs(), 30);
        assert_eq!(
            config.files[0].parts().unwrap(),
            (
                Source::Secret("apps/x".into()),
                Content::Field("api_key".into())
            )
        );
        assert_eq!(
            config.files[1].parts().unwrap(),
            (
                Source::DatabaseRole("app".into()),
                Content::All(Format::Env)
            )
        );
    }

    #[test]
    fn bad_configurations_are_refused_with_a_reason() {
        let file = |body: &str| format!("[[file]]\n{body}\n");
        let one = file("secret = \"a\"\nfield = \"f\"\npath = \"/o\"");
        let table: Vec<(String, &str)> = vec![
            (String::new(), "nothing to do"),
            (
                file("secret = \"a\"\nfield = \"f\"\npath = \"rel/path\""),
                "absolute",
            ),
            (
                file("secret = \"a\"\npath = \"/o\""),
                "exactly one of `field`",
            ),
            (
                file("secret = \"a\"\nfield = \"f\"\nformat = \"json\"\npath = \"/o\""),
                "exactly one of `field`",
            ),
            (
                file("secret = \"a\"\ndatabase_role = \"r\"\nfield = \"f\"\npath = \"/o\""),
                "exactly one of `secret`",
            ),
            (
                file("database_role = \"r\"\nfield = \"pw\"\npath = \"/o\""),
                "username",
            ),
            (
                file("secret = \"a\"\nformat = \"yaml\"\npath = \"/o\""),
                "unknown variant",
            ),
            (
                file("secret = \"a\"\nfield = \"f\"\npath = \"/o\"\nmode = \"0644\""),
                "unknown field",
            ),
            (format!("{one}{one}"), "two entries"),
            (
                format!("[reload]\ncommand = []\n{one}"),
                "must name a program",
            ),
        ];
        for (rest, expected) in table {
            let error = with(&rest).unwrap_err().to_string();
            assert!(error.contains(expected), "{rest}: {error}");
        }
        let error = AgentConfig::parse("client_secret = \"inline\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field"), "{error}");
        assert!(!error.contains("inline"), "{error}");
    }

    #[test]
    fn edge_keys_alone_need_no_client() {
        let config = AgentConfig::parse(
            r#"
            authority = "https://auth.example:8700"
            [edge_keys]
            dir = "/etc/haproxy/gha-auth-keys"
            reload = ["/bin/kill", "-USR2", "1"]
            "#,
        )
        .unwrap();
        assert!(config.client_id.is_none() && config.client_secret_file.is_none());
        let edge = config.edge_keys.unwrap();
        assert_eq!(edge.interval.as_secs(), 30);
        assert_eq!(edge.reload_timeout.as_secs(), 30);
        assert_eq!(
            edge.slot_paths().map(|p| p.display().to_string()),
            [
                "/etc/haproxy/gha-auth-keys/next.pem",
                "/etc/haproxy/gha-auth-keys/active.pem",
                "/etc/haproxy/gha-auth-keys/retired.pem",
            ]
        );
    }

    #[test]
    fn bad_edge_configurations_are_refused_with_a_reason() {
        let edge = |authority: &str, body: &str| {
            AgentConfig::parse(&format!(
                "authority = \"{authority}\"\n[edge_keys]\n{body}\n"
            ))
        };
        let ok = "dir = \"/k\"\nreload = [\"/bin/true\"]";
        let table: Vec<(String, String, &str)> = vec![
            (
                "https://a".into(),
                "dir = \"/k\"".into(),
                "missing field `reload`",
            ),
            (
                "https://a".into(),
                "dir = \"k\"\nreload = [\"/bin/true\"]".into(),
                "absolute",
            ),
            (
                "https://a".into(),
                "dir = \"/k\"\nreload = []".into(),
                "must name a program",
            ),
            (
                "https://a".into(),
                format!("{ok}\ninterval = \"0s\""),
                "at least 1s",
            ),
            (
                "https://a".into(),
                format!("{ok}\nreload_timeout = \"0s\""),
                "reload_timeout",
            ),
            (
                "https://a".into(),
                format!("{ok}\nca_file = \"ca.pem\""),
                "ca_file",
            ),
            (
                "https://a".into(),
                format!("{ok}\njwks_url = \"https://a/j\""),
                "unknown field",
            ),
            ("http://auth.example".into(), ok.into(), "plain http"),
            ("https://u:pw@a".into(), ok.into(), "credentials"),
        ];
        for (authority, body, expected) in table {
            let error = edge(&authority, &body).unwrap_err().to_string();
            assert!(error.contains(expected), "{body}: {error}");
            assert!(!error.contains("pw@"), "{error}");
        }
        // A [[file]] needs the client; a [reload] without [[file]] would never run.
        let error = AgentConfig::parse(&format!(
            "authority = \"https://a\"\n[edge_keys]\n{ok}\n[[file]]\nsecret = \"s\"\nfield = \"f\"\npath = \"/o\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(error.contains("need client_id"), "{error}");
        let error = AgentConfig::parse(&format!(
            "authority = \"https://a\"\n[reload]\ncommand = [\"/bin/true\"]\n[edge_keys]\n{ok}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(error.contains("[edge_keys] has its own"), "{error}");
        // A slot cannot also be a secret file.
        let error = with(
            "[edge_keys]\ndir = \"/k\"\nreload = [\"/bin/true\"]\n[[file]]\nsecret = \"s\"\nfield = \"f\"\npath = \"/k/active.pem\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("slot"), "{error}");
    }

    #[test]
    fn the_edge_sample_file_is_valid() {
        let config =
            AgentConfig::parse(include_str!("../../../config/agent-edge.sample.toml")).unwrap();
        assert!(config.files.is_empty() && config.client_id.is_none());
        assert!(config.edge_keys.is_some());
    }

    #[test]
    fn the_sample_file_is_valid() {
        let config = AgentConfig::parse(include_str!("../../../config/agent.sample.toml")).unwrap();
        assert_eq!(config.files.len(), 2);
        assert!(config.reload.is_some());
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let error = AgentConfig::load(Path::new("/nonexistent/agent.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("/nonexistent/agent.toml"), "{error}");
    }
}
