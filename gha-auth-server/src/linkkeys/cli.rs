//! `gha-auth link-keys status|rotate|retire-previous`, on the same link-key store as a running
//! server (Vault KV v2 or the sealed store), with compare-and-set like every other writer.
//!
//! `rotate` records a request in the link key's state; the scheduler of the running server(s)
//! begins it within `check_interval` and drives every step (the CLI never talks to the target,
//! so it needs no Epicor credentials). `retire-previous` drops PREVIOUS at once; it refuses while
//! the new key has never been seen in use unless `--force`. `status` never prints a key.

use std::fmt::Write as _;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde_json::{Value, json};

use super::LinkKeyConfig;
use super::machine::{self, Stale};
use super::model::LinkKeyState;
use super::store::{LinkKeyStore, update};
use crate::audit::{AuditEvent, AuditKind, AuditLog, Outcome};
use crate::terminal::Output;

/// The configured link keys by name (`[link_keys.<name>]`).
pub(crate) type Configured = std::collections::BTreeMap<String, LinkKeyConfig>;

/// `gha-auth link-keys …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum LinkKeysCommand {
    /// Show each link key's state: key ids, ages, the rotation in progress (never a key).
    Status {
        /// Only this link key.
        name: Option<String>,
    },
    /// Ask for a rotation now; the running server's scheduler performs it.
    Rotate {
        /// The link key.
        name: String,
    },
    /// Retire the PREVIOUS key now (before its overlap ends).
    RetirePrevious {
        /// The link key.
        name: String,
        /// Also when the new key was never reported in use.
        #[arg(long)]
        force: bool,
    },
}

fn key_json(key: Option<&super::model::StoredKey>) -> Value {
    key.map_or(Value::Null, |k| {
        json!({
            "id": k.id, "created_at": k.created_at, "last_seen": k.last_seen,
            "expires_at": k.expires_at,
        })
    })
}

fn status_json(name: &str, configured: &Configured, state: Option<&LinkKeyState>) -> Value {
    let link_key = configured.get(name);
    let policy = link_key.map(LinkKeyConfig::policy);
    let Some(state) = state else {
        return json!({"name": name, "initialized": false});
    };
    json!({
        "name": name,
        "initialized": true,
        "current": key_json(state.current.as_ref()),
        "pending": key_json(state.pending.as_ref()),
        "previous": key_json(state.previous.as_ref()),
        "last_rotated_at": state.last_rotated_at,
        "next_rotation_at": policy.and_then(|p| machine::rotation_due(state, &p)),
        "rotations": state.rotations,
        "requested": state.requested.as_ref().map(|r| json!({"at": r.at, "by": r.by})),
        "rotation": state.rotation.as_ref().map(|r| json!({
            "id": r.id, "reason": r.reason, "step": r.step, "started_at": r.started_at,
            "attempts": r.attempts, "failures": r.failures, "last_error": r.last_error,
            "next_attempt": r.next_attempt, "claimed_by": r.claimed_by,
        })),
        "scopes": link_key.map(|l| l.scopes.clone()),
        "tenant": link_key.and_then(|l| l.tenant.clone()),
    })
}

/// A time of the status JSON, for a person (`-` when absent).
fn when(at: &Value) -> String {
    serde_json::from_value::<DateTime<Utc>>(at.clone())
        .map_or_else(|_| "-".to_owned(), |t| t.to_rfc3339())
}

/// One link key's lines, from its status JSON.
fn status_text(status: &Value) -> String {
    let name = status["name"].as_str().unwrap_or("-");
    if status["initialized"] != Value::Bool(true) {
        return format!("{name}: no key yet (the server creates one at start)\n");
    }
    let id = |key: &str| status[key]["id"].as_str().unwrap_or("-").to_owned();
    let mut text = format!(
        "{name}: current {} (last seen {}), pending {}, previous {} (expires {}), rotations {}\n",
        id("current"),
        when(&status["current"]["last_seen"]),
        id("pending"),
        id("previous"),
        when(&status["previous"]["expires_at"]),
        status["rotations"],
    );
    let r = &status["rotation"];
    if r.is_object() {
        text.push_str(&format!(
            "  rotation {} at {} (failures {}, next attempt {}){}\n",
            r["id"].as_str().unwrap_or("-"),
            r["step"].as_str().unwrap_or("-"),
            r["failures"],
            when(&r["next_attempt"]),
            r["last_error"]
                .as_str()
                .map(|e| format!(", last error: {e}"))
                .unwrap_or_default(),
        ));
    }
    if !status["requested"].is_null() {
        text.push_str("  a rotation is requested\n");
    }
    text
}

/// The text of `link-keys status`, from its JSON (here or as the admin API answers it).
pub(crate) fn statuses_text(value: &Value) -> String {
    let mut text = String::new();
    let all = value["link_keys"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for status in all {
        text.push_str(&status_text(status));
    }
    if all.is_empty() {
        text.push_str("no link keys are configured\n");
    }
    let _ = writeln!(
        text,
        "state kept in: {}",
        value["store"].as_str().unwrap_or("-")
    );
    text
}

/// The text of `link-keys rotate`.
pub(crate) fn requested_text(name: &str) -> String {
    format!(
        "rotation of {name} requested; the running server performs it (see `gha-auth link-keys \
         status {name}`)"
    )
}

/// The text of `link-keys retire-previous`.
pub(crate) fn retired_text(name: &str, id: &str) -> String {
    format!("{name}: previous key {id} retired")
}

/// Why an operator's act on a link key failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum LinkKeyActError {
    /// No such link key is configured.
    #[error("{0}")]
    Unknown(String),
    /// The act does not apply to the key's state (no previous key, never seen in use).
    #[error("{0}")]
    Refused(String),
    /// The link-key store failed.
    #[error("{0}")]
    Store(String),
}

fn known<'a>(configured: &Configured, name: &'a str) -> Result<&'a str, LinkKeyActError> {
    if configured.contains_key(name) {
        Ok(name)
    } else {
        Err(LinkKeyActError::Unknown(format!(
            "no link key {name:?} is configured (known: {})",
            configured.keys().cloned().collect::<Vec<_>>().join(", ")
        )))
    }
}

/// Each link key's state (or `name`'s): its JSON form and a text for a terminal. Never a key.
pub(crate) async fn status(
    configured: &Configured,
    store: &dyn LinkKeyStore,
    name: Option<&str>,
) -> Result<(Value, String), LinkKeyActError> {
    let names: Vec<String> = match name {
        Some(name) => vec![known(configured, name)?.to_owned()],
        None => configured.keys().cloned().collect(),
    };
    let mut all = Vec::new();
    for name in &names {
        let loaded = store
            .load(name)
            .await
            .map_err(|e| LinkKeyActError::Store(e.to_string()))?;
        let state = loaded.as_ref().map(|l| &l.state);
        all.push(status_json(name, configured, state));
    }
    let value = json!({ "link_keys": all, "store": store.describe() });
    let text = statuses_text(&value);
    Ok((value, text))
}

/// Records a rotation request for `name` (the running server's scheduler performs it); audited.
pub(crate) async fn request_rotation(
    configured: &Configured,
    store: &dyn LinkKeyStore,
    audit: &AuditLog,
    name: &str,
    now: DateTime<Utc>,
    actor: &str,
) -> Result<Value, LinkKeyActError> {
    let name = known(configured, name)?;
    let result = update(store, name, |s| {
        if machine::request(s, actor, now) {
            Ok(())
        } else {
            Err(Stale("a rotation is already requested"))
        }
    })
    .await
    .map_err(|e| LinkKeyActError::Store(e.to_string()))?;
    let newly = result.is_ok();
    if newly {
        audit
            .record_or_log(AuditEvent::new(
                AuditKind::LinkKeyRotationRequested,
                actor,
                name,
                Outcome::Success,
            ))
            .await;
    }
    Ok(json!({"name": name, "requested": true, "already_requested": !newly}))
}

/// Retires `name`'s PREVIOUS key now (refused while the current one was never seen in use,
/// unless `force`); audited either way. Returns the retired key's id.
pub(crate) async fn retire_previous(
    configured: &Configured,
    store: &dyn LinkKeyStore,
    audit: &AuditLog,
    name: &str,
    force: bool,
    actor: &str,
) -> Result<String, LinkKeyActError> {
    let name = known(configured, name)?;
    let result = update(store, name, |s| {
        let Some(previous) = &s.previous else {
            return Err(Stale("there is no previous key"));
        };
        if !force && s.current.as_ref().is_none_or(|c| c.last_seen.is_none()) {
            return Err(Stale(
                "the current key was never reported in use; retiring the previous one may \
                 reject the integration (use --force to do it anyway)",
            ));
        }
        let id = previous.id.clone();
        machine::retire(s, &id)?;
        Ok(id)
    })
    .await
    .map_err(|e| LinkKeyActError::Store(e.to_string()))?;
    let outcome = if result.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    let mut event = AuditEvent::new(AuditKind::LinkKeyRetireRequested, actor, name, outcome)
        .detail("force", force);
    match &result {
        Ok((id, _)) => event = event.detail("key_id", id.clone()),
        Err(Stale(reason)) => event = event.detail("reason", *reason),
    }
    audit.record_or_log(event).await;
    result
        .map(|(id, _)| id)
        .map_err(|Stale(reason)| LinkKeyActError::Refused(format!("{name}: {reason}")))
}

/// Runs a `link-keys` command.
pub(crate) async fn run_cli(
    command: &LinkKeysCommand,
    configured: &Configured,
    store: &dyn LinkKeyStore,
    audit: &AuditLog,
    now: DateTime<Utc>,
    actor: &str,
    out: &Output,
) -> Result<ExitCode, String> {
    match command {
        LinkKeysCommand::Status { name } => {
            let (value, text) = status(configured, store, name.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            out.print(&value, &text);
        }
        LinkKeysCommand::Rotate { name } => {
            let value = request_rotation(configured, store, audit, name, now, actor)
                .await
                .map_err(|e| e.to_string())?;
            out.print(&value, &requested_text(name));
        }
        LinkKeysCommand::RetirePrevious { name, force } => {
            let id = retire_previous(configured, store, audit, name, *force, actor)
                .await
                .map_err(|e| e.to_string())?;
            out.print(
                &json!({"name": name, "retired": id}),
                &retired_text(name, &id),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text is made from the status JSON (so `--server` prints it from the admin API's
    /// answer): every key, the rotation in progress and a pending request are named.
    #[test]
    fn status_text_names_keys_rotation_and_request_from_the_json() {
        let key = |id: &str, last_seen: Value, expires_at: Value| {
            json!({"id": id, "key": "ghal_not-shown", "rotation_id": "rot-x",
                "created_at": "2026-01-01T00:00:00Z", "last_seen": last_seen,
                "expires_at": expires_at})
        };
        let state: LinkKeyState = serde_json::from_value(json!({
            "format": 1, "name": "epicor",
            "current": key("lk-b", json!("2026-01-02T00:00:00Z"), Value::Null),
            "previous": key("lk-a", Value::Null, json!("2026-01-03T00:00:00Z")),
            "rotation": {"id": "rot-c", "reason": "requested", "started_by": "cli",
                "started_at": "2026-01-02T00:00:00Z", "step": "set", "attempts": 2,
                "last_error": "target down", "failures": 1,
                "next_attempt": "2026-01-02T01:00:00Z"},
            "requested": {"at": "2026-01-02T00:00:00Z", "by": "cli:ops"},
            "rotations": 3,
        }))
        .unwrap();
        let value = json!({
            "link_keys": [
                status_json("epicor", &Configured::new(), Some(&state)),
                status_json("webhook", &Configured::new(), None),
            ],
            "store": "the store",
        });
        assert_eq!(
            statuses_text(&value),
            "epicor: current lk-b (last seen 2026-01-02T00:00:00+00:00), pending -, previous lk-a \
             (expires 2026-01-03T00:00:00+00:00), rotations 3\n  rotation rot-c at set (failures \
             1, next attempt 2026-01-02T01:00:00+00:00), last error: target down\n  a rotation is \
             requested\nwebhook: no key yet (the server creates one at start)\nstate kept in: the \
             store\n"
        );
        assert!(!statuses_text(&value).contains("ghal_"));
        let none = json!({"link_keys": [], "store": "the store"});
        assert_eq!(
            statuses_text(&none),
            "no link keys are configured\nstate kept in: the store\n"
        );
    }
}
