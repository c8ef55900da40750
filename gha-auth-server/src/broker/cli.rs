//! `gha-auth secrets put|get|list`: the broker's local secrets (embedded defaults, no Vault).
//!
//! Values never come from the command line (argv is visible to every user of the machine in
//! `ps` and lands in shell history): `field=@FILE` reads the file, `field=-` reads standard input
//! (a prompt without echo on a terminal). One trailing newline is removed. `get` prints field
//! names and the version; values only with `--show-values`.

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;

use chrono::DateTime;
use clap::Subcommand;
use gha_auth::SecretString;
use gha_auth::broker::SecretData;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::local::LocalSecrets;
use super::policy::is_valid_secret_path;
use crate::audit::{AuditEvent, AuditKind, AuditLog, Outcome};
use crate::terminal::Output;

/// `gha-auth secrets …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum SecretsCommand {
    /// Write a secret (a new version replacing all its fields): `put apps/billing/db
    /// password=@/run/pw username=@user.txt`, or `password=-` to read standard input.
    Put {
        /// The secret's path, e.g. apps/billing/db.
        path: String,
        /// `field=@FILE` or `field=-` (standard input, at most one field); never a literal value.
        #[arg(required = true, num_args = 1.., value_name = "FIELD=@FILE|FIELD=-")]
        fields: Vec<String>,
    },
    /// Show a secret's field names and version (values only with --show-values).
    Get {
        /// The secret's path.
        path: String,
        /// Print the values too.
        #[arg(long)]
        show_values: bool,
    },
    /// List the stored paths with their versions.
    List,
}

/// Where one field's value comes from.
#[derive(Debug, PartialEq, Eq)]
enum ValueFrom<'a> {
    File(&'a str),
    Stdin,
}

fn is_valid_field(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Parses `field=@FILE` / `field=-`; refuses literal values.
fn parse_field(arg: &str) -> Result<(&str, ValueFrom<'_>), String> {
    let Some((name, source)) = arg.split_once('=') else {
        // Not echoed: it may be a value typed by mistake.
        return Err("expected FIELD=@FILE or FIELD=- (values never on the command line)".into());
    };
    if !is_valid_field(name) {
        return Err(format!(
            "field name {name:?} must be 1-128 characters of A-Z a-z 0-9 _ - ."
        ));
    }
    if source == "-" {
        return Ok((name, ValueFrom::Stdin));
    }
    match source.strip_prefix('@') {
        Some(file) if !file.is_empty() => Ok((name, ValueFrom::File(file))),
        // Never echo what was given: it may be the secret itself.
        _ => Err(format!(
            "field {name}: values are read from a file ({name}=@FILE) or standard input ({name}=-), never from the command line"
        )),
    }
}

fn strip_newline(mut text: Zeroizing<String>) -> SecretString {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    SecretString::new(std::mem::take(&mut *text))
}

fn read_file(name: &str, path: &Path) -> Result<SecretString, String> {
    let bytes = Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| format!("field {name}: cannot read {}: {e}", path.display()))?,
    );
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| format!("field {name}: {} is not UTF-8 text", path.display()))?;
    Ok(strip_newline(Zeroizing::new(text.to_owned())))
}

fn read_stdin(name: &str) -> Result<SecretString, String> {
    if std::io::stdin().is_terminal() {
        return crate::terminal::read_secret(&format!("{name}: "), false);
    }
    let mut text = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_to_string(&mut text)
        .map_err(|e| format!("field {name}: cannot read standard input: {e}"))?;
    Ok(strip_newline(text))
}

fn read_fields(args: &[String]) -> Result<SecretData, String> {
    let parsed = args
        .iter()
        .map(|a| parse_field(a))
        .collect::<Result<Vec<_>, _>>()?;
    if parsed
        .iter()
        .filter(|(_, from)| *from == ValueFrom::Stdin)
        .count()
        > 1
    {
        return Err("at most one field can be read from standard input".into());
    }
    let mut data = SecretData::new();
    for (name, from) in parsed {
        if data.get(name).is_some() {
            return Err(format!("field {name} is given twice"));
        }
        let value = match from {
            ValueFrom::File(path) => read_file(name, Path::new(path))?,
            ValueFrom::Stdin => read_stdin(name)?,
        };
        data.insert(name, value);
    }
    Ok(data)
}

fn time(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0).map_or_else(|| unix.to_string(), |t| t.to_rfc3339())
}

fn checked_path(path: &str) -> Result<&str, String> {
    if is_valid_secret_path(path) {
        Ok(path)
    } else {
        Err(format!(
            "{path:?} is not a secret path (segments of A-Z a-z 0-9 . _ - separated by /)"
        ))
    }
}

/// Why an act on the local secrets failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SecretsActError {
    /// A bad path or field name (never a value).
    #[error("{0}")]
    Invalid(String),
    /// No secret at the path.
    #[error("{0}")]
    NotFound(String),
    /// With [vault] configured the broker serves Vault KV v2: the secrets are managed there.
    #[error("{0}")]
    InVault(String),
    /// The store failed.
    #[error("{0}")]
    Store(String),
}

/// Refuses when the broker serves Vault KV v2 (`vault_mount`): its secrets are managed there.
pub(crate) fn local_only(vault_mount: Option<&str>) -> Result<(), SecretsActError> {
    match vault_mount {
        Some(mount) => Err(SecretsActError::InVault(format!(
            "with [vault] configured the broker serves Vault KV v2 (mount {mount:?}); manage the \
             secrets there (e.g. `bao kv put -mount={mount} <path> field=@file`)"
        ))),
        None => Ok(()),
    }
}

fn checked(path: &str) -> Result<&str, SecretsActError> {
    checked_path(path).map_err(SecretsActError::Invalid)
}

/// Writes `data` at `path` (a new version replacing all its fields); audited without values.
/// Returns `{path, version, fields}`.
pub(crate) async fn put(
    local: &LocalSecrets,
    audit: &AuditLog,
    path: &str,
    data: &SecretData,
    actor: &str,
) -> Result<Value, SecretsActError> {
    let path = checked(path)?;
    if data.is_empty() {
        return Err(SecretsActError::Invalid(
            "a secret needs at least one field".into(),
        ));
    }
    if let Some(bad) = data.keys().find(|name| !is_valid_field(name)) {
        return Err(SecretsActError::Invalid(format!(
            "field name {bad:?} must be 1-128 characters of A-Z a-z 0-9 _ - ."
        )));
    }
    let names: Vec<String> = data.keys().map(str::to_owned).collect();
    let version = local
        .put(path, data, actor)
        .await
        .map_err(|e| SecretsActError::Store(e.to_string()))?;
    audit
        .record_or_log(
            AuditEvent::new(
                AuditKind::BrokerSecretWritten,
                actor,
                path,
                Outcome::Success,
            )
            .detail("version", version)
            .detail("fields", names.join(",")),
        )
        .await;
    Ok(json!({"path": path, "version": version, "fields": names}))
}

/// The text of `secrets put`, from its JSON.
pub(crate) fn put_text(value: &Value) -> String {
    format!(
        "{}: version {} written ({})",
        value["path"].as_str().unwrap_or("-"),
        value["version"],
        names(&value["fields"]).join(", ")
    )
}

fn names(fields: &Value) -> Vec<&str> {
    fields
        .as_array()
        .map(|all| all.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The secret at `path`: `{path, version, updated_at, fields}`, and `values` when `show_values`.
pub(crate) async fn get(
    local: &LocalSecrets,
    path: &str,
    show_values: bool,
) -> Result<Value, SecretsActError> {
    let path = checked(path)?;
    let Some(secret) = local
        .get(path)
        .await
        .map_err(|e| SecretsActError::Store(e.to_string()))?
    else {
        return Err(SecretsActError::NotFound(format!("no secret at {path}")));
    };
    let names: Vec<&str> = secret.data.keys().collect();
    let mut value = json!({
        "path": path, "version": secret.version, "updated_at": time(secret.updated_at),
        "fields": names,
    });
    if show_values {
        let values: Map<String, Value> = secret
            .data
            .iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v.expose().to_owned())))
            .collect();
        value["values"] = Value::Object(values);
    }
    Ok(value)
}

/// The text of `secrets get`, from its JSON (values only when it holds them).
pub(crate) fn get_text(value: &Value) -> String {
    let mut text = format!(
        "{}: version {} written {}\nfields: {}\n",
        value["path"].as_str().unwrap_or("-"),
        value["version"],
        value["updated_at"].as_str().unwrap_or("-"),
        names(&value["fields"]).join(", ")
    );
    if let Some(values) = value["values"].as_object() {
        for (k, v) in values {
            text.push_str(&format!("{k}={}\n", v.as_str().unwrap_or_default()));
        }
    }
    text
}

/// Every stored path with its version: `{secrets: [{path, version, updated_at}]}`.
pub(crate) async fn list(local: &LocalSecrets) -> Result<Value, SecretsActError> {
    let all = local
        .list()
        .await
        .map_err(|e| SecretsActError::Store(e.to_string()))?;
    let list: Vec<Value> = all
        .iter()
        .map(|(path, version, at)| json!({"path": path, "version": version, "updated_at": time(*at)}))
        .collect();
    Ok(json!({ "secrets": list }))
}

/// The text of `secrets list`, from its JSON.
pub(crate) fn list_text(value: &Value) -> String {
    let all = value["secrets"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if all.is_empty() {
        return "no secrets are stored\n".to_owned();
    }
    all.iter()
        .map(|s| {
            format!(
                "{}  version {}  {}\n",
                s["path"].as_str().unwrap_or("-"),
                s["version"],
                s["updated_at"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

/// Reads the fields of `secrets put` (`field=@FILE`, `field=-`), checking the path first.
pub(crate) fn fields_to_put(path: &str, fields: &[String]) -> Result<SecretData, String> {
    checked_path(path)?;
    read_fields(fields)
}

/// Runs a `secrets` command.
///
/// `vault_mount` is the broker's KV v2 mount when Vault is configured: the secrets are managed
/// there, not here.
pub(crate) async fn run_cli(
    command: &SecretsCommand,
    local: &LocalSecrets,
    vault_mount: Option<&str>,
    audit: &AuditLog,
    actor: &str,
    out: &Output,
) -> Result<ExitCode, String> {
    let act = |e: SecretsActError| e.to_string();
    local_only(vault_mount).map_err(act)?;
    let (value, text) = match command {
        SecretsCommand::Put { path, fields } => {
            let data = fields_to_put(path, fields)?;
            let value = put(local, audit, path, &data, actor).await.map_err(act)?;
            let text = put_text(&value);
            (value, text)
        }
        SecretsCommand::Get { path, show_values } => {
            let value = get(local, path, *show_values).await.map_err(act)?;
            let text = get_text(&value);
            (value, text)
        }
        SecretsCommand::List => {
            let value = list(local).await.map_err(act)?;
            let text = list_text(&value);
            (value, text)
        }
    };
    out.print(&value, &text);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_come_from_files_or_stdin_never_argv() {
        assert_eq!(
            parse_field("password=@/run/pw").unwrap(),
            ("password", ValueFrom::File("/run/pw"))
        );
        assert_eq!(
            parse_field("password=-").unwrap(),
            ("password", ValueFrom::Stdin)
        );
        for bad in [
            "password=hunter2",
            "password=",
            "password=@",
            "hunter2",
            "=@f",
            "a b=@f",
        ] {
            let error = parse_field(bad).unwrap_err();
            assert!(!error.contains("hunter2"), "{error}");
        }
        assert!(read_fields(&["a=-".into(), "b=-".into()]).is_err());
    }

    #[test]
    fn files_lose_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "file-pw\r\n").unwrap();
        let arg = format!("pw=@{}", file.display());
        let data = read_fields(std::slice::from_ref(&arg)).unwrap();
        assert_eq!(data.get("pw").unwrap().expose(), "file-pw");
        std::fs::write(&file, "two\n\n").unwrap();
        assert_eq!(
            read_fields(std::slice::from_ref(&arg))
                .unwrap()
                .get("pw")
                .unwrap()
                .expose(),
            "two\n"
        );
        assert!(read_fields(&[arg.clone(), arg]).is_err(), "duplicate field");
    }
}
