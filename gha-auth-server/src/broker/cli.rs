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
    if let Some(mount) = vault_mount {
        return Err(format!(
            "with [vault] configured the broker serves Vault KV v2 (mount {mount:?}); manage the \
             secrets there (e.g. `bao kv put -mount={mount} <path> field=@file`)"
        ));
    }
    match command {
        SecretsCommand::Put { path, fields } => {
            let path = checked_path(path)?;
            let data = read_fields(fields)?;
            let names: Vec<String> = data.keys().map(str::to_owned).collect();
            let version = local
                .put(path, &data, actor)
                .await
                .map_err(|e| e.to_string())?;
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
            out.print(
                &json!({"path": path, "version": version, "fields": names}),
                &format!("{path}: version {version} written ({})", names.join(", ")),
            );
            Ok(ExitCode::SUCCESS)
        }
        SecretsCommand::Get { path, show_values } => {
            let path = checked_path(path)?;
            let Some(secret) = local.get(path).await.map_err(|e| e.to_string())? else {
                return Err(format!("no secret at {path}"));
            };
            let names: Vec<&str> = secret.data.keys().collect();
            let mut text = format!(
                "{path}: version {} written {}\nfields: {}\n",
                secret.version,
                time(secret.updated_at),
                names.join(", ")
            );
            let mut value = json!({
                "path": path, "version": secret.version, "updated_at": time(secret.updated_at),
                "fields": names,
            });
            if *show_values {
                let values: Map<String, Value> = secret
                    .data
                    .iter()
                    .map(|(k, v)| (k.to_owned(), Value::String(v.expose().to_owned())))
                    .collect();
                for (k, v) in secret.data.iter() {
                    text.push_str(&format!("{k}={}\n", v.expose()));
                }
                value["values"] = Value::Object(values);
            }
            out.print(&value, &text);
            Ok(ExitCode::SUCCESS)
        }
        SecretsCommand::List => {
            let all = local.list().await.map_err(|e| e.to_string())?;
            let text = if all.is_empty() {
                "no secrets are stored\n".to_owned()
            } else {
                all.iter()
                    .map(|(path, version, at)| {
                        format!("{path}  version {version}  {}\n", time(*at))
                    })
                    .collect()
            };
            let list: Vec<Value> = all
                .iter()
                .map(|(path, version, at)| json!({"path": path, "version": version, "updated_at": time(*at)}))
                .collect();
            out.print(&json!({ "secrets": list }), &text);
            Ok(ExitCode::SUCCESS)
        }
    }
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
