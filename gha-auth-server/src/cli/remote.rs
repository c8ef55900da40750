//! `--server URL`: the admin commands through a running authority's admin API (`/admin/v1/`),
//! so the operator needs neither the database nor the master key.
//!
//! The token comes from `--client-id` with `--client-secret-file` (client_credentials for a
//! client with admin scopes) or from `gha-auth login` (a user's short-lived token kept in the
//! user's configuration directory, mode 0600). The output, text or `--json`, is the local
//! command's: the features' own text functions over what the API answers.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gha_auth::SecretString;
use gha_auth::outbound::{HttpClientBuilder, UrlPolicy};
use serde_json::{Value, json};

use super::Command;
use crate::audit::AuditCommand;
use crate::broker::SecretsCommand;
use crate::clients::ClientsCommand;
use crate::clients::legacy_keys::{self, LegacyKeyCommand};
use crate::keys::KeysCommand;
use crate::linkkeys::LinkKeysCommand;
use crate::terminal::{Output, read_secret};
use crate::users::UsersCommand;

/// The admin API of one server, with a token.
pub(super) struct Remote {
    http: reqwest::Client,
    base: String,
    token: SecretString,
}

/// Where `gha-auth login` keeps its token: `$XDG_CONFIG_HOME/gha-auth/token.json`, else
/// `$HOME/.config/gha-auth/token.json`.
pub(super) fn token_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("gha-auth").join("token.json"))
}

fn now() -> i64 {
    use gha_auth::Clock as _;
    gha_auth::SystemClock.unix_seconds()
}

/// The server's base URL: https, or http to a loopback address.
pub(super) fn base_url(server: &str) -> Result<String, String> {
    let url = UrlPolicy::new()
        .check(server)
        .map_err(|e| format!("--server: {e}"))?;
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn http() -> Result<reqwest::Client, String> {
    HttpClientBuilder::new("gha-auth-cli")
        .build()
        .map_err(|e| e.to_string())
}

async fn token_request(
    base: &str,
    request: reqwest::RequestBuilder,
) -> Result<(SecretString, i64), String> {
    let response = request
        .send()
        .await
        .map_err(|e| format!("cannot reach {base}: {e}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!(
            "{base} refused the login: {}",
            body["error_description"]
                .as_str()
                .or(body["error"].as_str())
                .unwrap_or(status.as_str())
        ));
    }
    let token = body["access_token"]
        .as_str()
        .ok_or_else(|| format!("{base} answered without an access token"))?;
    let expires_in = body["expires_in"].as_i64().unwrap_or(0);
    Ok((SecretString::from(token), now().saturating_add(expires_in)))
}

impl Remote {
    /// A session on `server` with a token: the client's (`client_id` and the secret in
    /// `secret_file`) or the one `gha-auth login` kept for this server.
    pub(super) async fn open(
        server: &str,
        client_id: Option<&str>,
        secret_file: Option<&Path>,
        audience: &str,
    ) -> Result<Self, String> {
        let base = base_url(server)?;
        let http = http()?;
        let token = match (client_id, secret_file) {
            (Some(id), Some(file)) => {
                let secret = std::fs::read_to_string(file)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                let secret = SecretString::from(secret.trim());
                let request = http
                    .post(format!("{base}{}", crate::oauth::TOKEN_PATH))
                    .basic_auth(id, Some(secret.expose()))
                    .form(&[("grant_type", "client_credentials"), ("audience", audience)]);
                token_request(&base, request).await?.0
            }
            (None, Some(_)) => return Err("--client-secret-file needs --client-id".to_owned()),
            _ => stored_token(&base)?,
        };
        Ok(Self { http, base, token })
    }

    /// Calls the admin API: `path` under `/admin/v1`.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut request = self
            .http
            .request(method, format!("{}/admin/v1{path}", self.base))
            .bearer_auth(self.token.expose());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {e}", self.base))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        // The server's description is the message the local command gives.
        match body["error_description"].as_str() {
            Some(reason) if status.is_client_error() => Err(reason.to_owned()),
            _ => Err(format!("{}: {status}", self.base)),
        }
    }
}

fn stored_token(base: &str) -> Result<SecretString, String> {
    let missing = || {
        format!(
            "no credentials for {base}: pass --client-id and --client-secret-file, or run \
             `gha-auth --server {base} login`"
        )
    };
    let file = token_file().ok_or_else(missing)?;
    let Ok(text) = std::fs::read_to_string(&file) else {
        return Err(missing());
    };
    let stored: Value = serde_json::from_str(&text).map_err(|_| missing())?;
    if stored["server"].as_str() != Some(base) {
        return Err(missing());
    }
    if stored["expires_at"].as_i64().unwrap_or(0) <= now().saturating_add(30) {
        return Err(format!(
            "the login to {base} has expired: run `gha-auth --server {base} login` again"
        ));
    }
    stored["access_token"]
        .as_str()
        .map(SecretString::from)
        .ok_or_else(missing)
}

/// `gha-auth login`: a user's password grant for the admin audience, kept 0600 in the user's
/// configuration directory.
pub(super) async fn login(
    server: &str,
    client_id: &str,
    username: &str,
    tenant: &str,
    audience: &str,
    out: &Output,
) -> Result<ExitCode, String> {
    let base = base_url(server)?;
    let http = http()?;
    let password = read_secret("Password: ", false)?;
    let mut form = vec![
        ("grant_type", "password"),
        ("client_id", client_id),
        ("username", username),
        ("password", password.expose()),
        ("audience", audience),
    ];
    if !tenant.is_empty() {
        form.push(("tenant", tenant));
    }
    let request = http
        .post(format!("{base}{}", crate::oauth::TOKEN_PATH))
        .form(&form);
    let (token, expires_at) = token_request(&base, request).await?;
    let file = token_file().ok_or("no configuration directory: set HOME or XDG_CONFIG_HOME")?;
    let stored = json!({"server": base, "access_token": token.expose(), "expires_at": expires_at});
    write_private(&file, stored.to_string().as_bytes())?;
    let until = chrono::DateTime::from_timestamp(expires_at, 0).unwrap_or_default();
    out.print(
        &json!({"server": base, "expires_at": expires_at, "token_file": file}),
        &format!(
            "logged in to {base} until {}; the token is kept in {}",
            until.to_rfc3339(),
            file.display()
        ),
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to `file`, readable by its owner only (the directory too).
fn write_private(file: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", file.display());
    if let Some(dir) = file.parent() {
        crate::atrest::create_private_dir(dir).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut handle = options.open(file).map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        handle
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(fail)?;
    }
    handle.write_all(bytes).map_err(fail)
}

/// Legacy keys of `client_id`, or of every client within reach (the admin API lists them per
/// client).
async fn legacy_keys(
    remote: &Remote,
    client_id: Option<&str>,
) -> Result<Vec<legacy_keys::LegacyKey>, String> {
    let ids: Vec<String> = match client_id {
        Some(id) => vec![id.to_owned()],
        None => {
            let clients: Vec<crate::clients::Client> =
                typed(&remote.call("GET", "/clients", None).await?)?;
            clients.into_iter().map(|c| c.id).collect()
        }
    };
    let mut keys = Vec::new();
    for id in ids {
        let path = format!("/clients/{}/legacy-keys", encode(&id));
        let mut some: Vec<legacy_keys::LegacyKey> = typed(&remote.call("GET", &path, None).await?)?;
        keys.append(&mut some);
    }
    keys.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(keys)
}

/// `clients legacy-key …` through the admin API: the same JSON and text as on the store.
async fn legacy_key(
    command: &LegacyKeyCommand,
    remote: &Remote,
) -> Result<(Printed, String), String> {
    match command {
        LegacyKeyCommand::Add {
            client_id,
            subject,
            tenant,
            scopes,
            id,
        } => {
            let key = legacy_keys::read_key()?;
            let body = json!({"subject": subject, "tenant": tenant, "scopes": scopes, "id": id,
                "key": key.expose()});
            let path = format!("/clients/{}/legacy-keys", encode(client_id));
            let value = remote.call("POST", &path, Some(body)).await?;
            let key: legacy_keys::LegacyKey = typed(&value)?;
            let text = legacy_keys::imported_text(&key);
            Ok((Printed::LegacyKey(key), text))
        }
        LegacyKeyCommand::List { client_id } => {
            let keys = legacy_keys(remote, client_id.as_deref()).await?;
            let text = legacy_keys::list_text(&keys);
            Ok((Printed::LegacyKeys(keys), text))
        }
        LegacyKeyCommand::Revoke { id } => {
            // The admin API revokes a key under its client: find which.
            let keys = legacy_keys(remote, None).await?;
            let Some(key) = keys.iter().find(|k| &k.id == id) else {
                return Err(format!("legacy key {id:?} not found"));
            };
            let path = format!(
                "/clients/{}/legacy-keys/{}/revoke",
                encode(&key.client_id),
                encode(id)
            );
            let value = remote.call("POST", &path, None).await?;
            Ok((value.into(), legacy_keys::revoked_text(id)))
        }
    }
}

/// What a command prints with `--json`: the feature's own type where the local command prints
/// one (so the fields come in the same order), else the API's JSON.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Printed {
    Value(Value),
    Clients(Vec<crate::clients::Client>),
    Client(Box<crate::clients::Client>),
    Users(Vec<crate::users::User>),
    User(crate::users::User),
    LegacyKeys(Vec<legacy_keys::LegacyKey>),
    LegacyKey(legacy_keys::LegacyKey),
}

impl From<Value> for Printed {
    fn from(value: Value) -> Self {
        Printed::Value(value)
    }
}

/// Reads a typed value back from the admin API's JSON (to print the text the local command
/// prints).
fn typed<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, String> {
    serde_json::from_value(value.clone())
        .map_err(|e| format!("unexpected answer from the server: {e}"))
}

fn add_client_body(args: &crate::clients::AddClient) -> Result<Value, String> {
    let jwk = match &args.jwk {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Some(
                serde_json::from_str::<Value>(&text)
                    .map_err(|e| format!("{} is not JSON: {e}", path.display()))?,
            )
        }
        None => None,
    };
    Ok(json!({
        "id": args.id, "grants": args.grants, "scopes": args.scopes, "audiences": args.audiences,
        "resource_servers": args.resource_servers, "tenant": args.tenant,
        "first_party": args.first_party, "public": args.public, "jwk": jwk,
        "token_lifetime_secs": args.token_lifetime.map(|d| d.as_delta().num_seconds()),
    }))
}

fn tenant_query(tenant: &str) -> String {
    if tenant.is_empty() {
        String::new()
    } else {
        format!("?tenant={}", encode(tenant))
    }
}

/// Percent-encodes a path segment or query value (ids are `A-Z a-z 0-9 . _ ~ -`; anything else
/// is encoded).
fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Percent-encodes each segment of a secret path, keeping its `/`.
fn encode_path(path: &str) -> String {
    path.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// Runs an admin command through `remote`.
pub(super) async fn run(
    command: &Command,
    remote: &Remote,
    out: &Output,
) -> Result<ExitCode, String> {
    let (value, text): (Printed, String) = match command {
        Command::Clients(command) => match command {
            ClientsCommand::List => {
                let value = remote.call("GET", "/clients", None).await?;
                let clients: Vec<crate::clients::Client> = typed(&value)?;
                let text = crate::clients::list_text(&clients);
                (Printed::Clients(clients), text)
            }
            ClientsCommand::Show { id } => {
                let value = remote
                    .call("GET", &format!("/clients/{}", encode(id)), None)
                    .await?;
                let client: crate::clients::Client = typed(&value)?;
                let text = crate::clients::describe(&client);
                (Printed::Client(Box::new(client)), text)
            }
            ClientsCommand::Add(args) => {
                let value = remote
                    .call("POST", "/clients", Some(add_client_body(args)?))
                    .await?;
                let client: crate::clients::Client = typed(&value["client"])?;
                let text = crate::clients::created_text(&client, value["client_secret"].as_str());
                (value.into(), text)
            }
            ClientsCommand::RotateSecret {
                id,
                grace,
                emergency,
            } => {
                let body = json!({"grace_secs": grace.as_secs(), "emergency": emergency});
                let path = format!("/clients/{}/rotate-secret", encode(id));
                let value = remote.call("POST", &path, Some(body)).await?;
                let secret = value["client_secret"].as_str().unwrap_or_default();
                let text = crate::clients::rotated_text(id, secret, (!*emergency).then_some(grace));
                (value.into(), text)
            }
            ClientsCommand::Disable { id } => {
                let path = format!("/clients/{}/disable", encode(id));
                let value = remote.call("POST", &path, None).await?;
                (value.into(), crate::clients::disabled_text(id))
            }
            ClientsCommand::LegacyKey(command) => legacy_key(command, remote).await?,
        },
        Command::Users(command) => match command {
            UsersCommand::List { tenant } => {
                let query = tenant.as_deref().map(tenant_query).unwrap_or_default();
                let value = remote.call("GET", &format!("/users{query}"), None).await?;
                let users: Vec<crate::users::User> = typed(&value)?;
                let text = crate::users::list_text(&users);
                (Printed::Users(users), text)
            }
            UsersCommand::Add {
                username,
                tenant,
                roles,
            } => {
                let password = read_secret("Password: ", true)?;
                let body = json!({"username": username, "tenant": tenant, "roles": roles,
                    "password": password.expose()});
                let value = remote.call("POST", "/users", Some(body)).await?;
                let user: crate::users::User = typed(&value)?;
                let text = format!("created {}", crate::users::user_text(&user));
                (Printed::User(user), text)
            }
            UsersCommand::SetPassword { username, tenant } => {
                let password = read_secret("Password: ", true)?;
                let path = format!(
                    "/users/{}/password{}",
                    encode(username),
                    tenant_query(tenant)
                );
                let value = remote
                    .call("POST", &path, Some(json!({"password": password.expose()})))
                    .await?;
                (
                    value.into(),
                    format!("password set for {tenant}/{username}"),
                )
            }
            UsersCommand::Disable { username, tenant } => {
                let path = format!(
                    "/users/{}/disable{}",
                    encode(username),
                    tenant_query(tenant)
                );
                let value = remote.call("POST", &path, None).await?;
                (value.into(), format!("disabled {tenant}/{username}"))
            }
        },
        Command::Keys(KeysCommand::List) => {
            let value = remote.call("GET", "/keys", None).await?;
            let text = crate::keys::list_text(&value)?;
            (value.into(), text)
        }
        Command::Keys(KeysCommand::Rotate { emergency }) => {
            let path = if *emergency {
                "/keys/emergency-rotate"
            } else {
                "/keys/rotate"
            };
            let value = remote.call("POST", path, None).await?;
            let kid = value["kid"].as_str().unwrap_or_default();
            let text = if *emergency {
                let removed: Vec<String> = typed(&value["removed"])?;
                crate::keys::emergency_text(kid, &removed)
            } else {
                crate::keys::rotated_text(kid, typed(&value["activates_at"])?)
            };
            (value.into(), text)
        }
        Command::LinkKeys(command) => match command {
            LinkKeysCommand::Status { name } => {
                let query = name
                    .as_deref()
                    .map(|n| format!("?name={}", encode(n)))
                    .unwrap_or_default();
                let value = remote
                    .call("GET", &format!("/link-keys{query}"), None)
                    .await?;
                let text = crate::linkkeys::cli::statuses_text(&value);
                (value.into(), text)
            }
            LinkKeysCommand::Rotate { name } => {
                let path = format!("/link-keys/{}/rotate", encode(name));
                let value = remote.call("POST", &path, None).await?;
                (value.into(), crate::linkkeys::cli::requested_text(name))
            }
            LinkKeysCommand::RetirePrevious { name, force } => {
                let path = format!("/link-keys/{}/retire-previous", encode(name));
                let value = remote
                    .call("POST", &path, Some(json!({"force": force})))
                    .await?;
                let text = crate::linkkeys::cli::retired_text(
                    name,
                    value["retired"].as_str().unwrap_or("-"),
                );
                (value.into(), text)
            }
        },
        Command::Audit(AuditCommand::Verify) => {
            let value = remote.call("GET", "/audit/verify", None).await?;
            return Ok(crate::audit::print_report(&typed(&value)?, out));
        }
        Command::Secrets(command) => {
            use crate::broker::cli as secrets;
            match command {
                SecretsCommand::Put { path, fields } => {
                    let data = secrets::fields_to_put(path, fields)?;
                    let fields: serde_json::Map<String, Value> = data
                        .iter()
                        .map(|(k, v)| (k.to_owned(), Value::String(v.expose().to_owned())))
                        .collect();
                    let route = format!("/broker/secrets/{}", encode_path(path));
                    let value = remote
                        .call("PUT", &route, Some(json!({ "fields": fields })))
                        .await?;
                    let text = secrets::put_text(&value);
                    (value.into(), text)
                }
                SecretsCommand::Get { path, show_values } => {
                    let query = if *show_values {
                        "?show_values=true"
                    } else {
                        ""
                    };
                    let route = format!("/broker/secrets/{}{query}", encode_path(path));
                    let value = remote.call("GET", &route, None).await?;
                    let text = secrets::get_text(&value);
                    (value.into(), text)
                }
                SecretsCommand::List => {
                    let value = remote.call("GET", "/broker/secrets", None).await?;
                    let text = secrets::list_text(&value);
                    (value.into(), text)
                }
            }
        }
        Command::Serve(_)
        | Command::Config(_)
        | Command::Agent(_)
        | Command::Login(_)
        | Command::Healthcheck => {
            return Err("not an admin command".to_owned());
        }
    };
    out.print(&value, &text);
    Ok(ExitCode::SUCCESS)
}
