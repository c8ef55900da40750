//! The lease API (`sys/leases/*`) that vaultrs lacks: renew, revoke and look up leases of
//! dynamic secrets. Lease ids are not secrets and may be logged; the secrets they lease are.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rustify::enums::RequestMethod;
use serde::Serialize;

use super::error::VaultError;
use super::raw::RawRequest;
use super::schedule::add;
use super::session::VaultSession;

/// A lease as issued: id, duration and whether it can be renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lease {
    /// The lease id (`database/creds/app/AbC…`).
    pub id: String,
    /// Its duration when issued or last renewed.
    pub duration: Duration,
    /// Whether it can be renewed.
    pub renewable: bool,
    /// When the request that created or renewed it started (our clock).
    pub issued_at: DateTime<Utc>,
    /// `issued_at + duration`.
    pub expires_at: DateTime<Utc>,
}

impl Lease {
    /// A lease valid for `duration` from `issued_at`.
    pub fn new(id: String, duration: Duration, renewable: bool, issued_at: DateTime<Utc>) -> Self {
        Self {
            id,
            duration,
            renewable,
            expires_at: add(issued_at, duration),
            issued_at,
        }
    }
}

/// Vault's view of a lease (`sys/leases/lookup`).
#[derive(Debug, Clone, serde::Deserialize)]
#[non_exhaustive]
pub struct LeaseInfo {
    /// The lease id.
    pub id: String,
    /// When it was issued.
    #[serde(default)]
    pub issue_time: Option<DateTime<Utc>>,
    /// When it expires.
    #[serde(default)]
    pub expire_time: Option<DateTime<Utc>>,
    /// When it was last renewed.
    #[serde(default)]
    pub last_renewal: Option<DateTime<Utc>>,
    /// Whether it can be renewed.
    #[serde(default)]
    pub renewable: bool,
    /// Seconds left.
    #[serde(default)]
    pub ttl: u64,
}

/// Lease operations with the session's current token.
#[derive(Debug, Clone)]
pub struct Leases {
    session: VaultSession,
}

#[derive(Serialize)]
struct LeaseBody<'a> {
    lease_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    increment: Option<u64>,
}

impl Leases {
    /// Lease operations through `session`.
    pub fn new(session: VaultSession) -> Self {
        Self { session }
    }

    /// Renews `lease_id`, asking for `increment` more (whole seconds, at least 1). Vault may
    /// grant less (max TTL); compare the returned duration with what was asked.
    pub async fn renew(&self, lease_id: &str, increment: Duration) -> Result<Lease, VaultError> {
        check_lease_id(lease_id)?;
        let started = self.session.clock().now();
        let body = LeaseBody {
            lease_id,
            increment: Some(increment.as_secs().max(1)),
        };
        let envelope = self
            .session
            .call(|| {
                RawRequest::<serde_json::Value>::with_body(
                    RequestMethod::PUT,
                    "sys/leases/renew",
                    &body,
                )
            })
            .await?;
        let id = if envelope.lease_id.is_empty() {
            lease_id.to_owned()
        } else {
            envelope.lease_id
        };
        Ok(Lease::new(
            id,
            Duration::from_secs(envelope.lease_duration),
            envelope.renewable,
            started,
        ))
    }

    /// Revokes `lease_id` now (the database user is dropped).
    pub async fn revoke(&self, lease_id: &str) -> Result<(), VaultError> {
        check_lease_id(lease_id)?;
        let body = LeaseBody {
            lease_id,
            increment: None,
        };
        self.session
            .call(|| {
                RawRequest::<serde_json::Value>::with_body(
                    RequestMethod::PUT,
                    "sys/leases/revoke",
                    &body,
                )
            })
            .await?;
        Ok(())
    }

    /// Looks `lease_id` up.
    pub async fn lookup(&self, lease_id: &str) -> Result<LeaseInfo, VaultError> {
        check_lease_id(lease_id)?;
        let body = LeaseBody {
            lease_id,
            increment: None,
        };
        self.session
            .call(|| {
                RawRequest::<LeaseInfo>::with_body(RequestMethod::PUT, "sys/leases/lookup", &body)
            })
            .await?
            .into_data("sys/leases/lookup")
    }
}

fn check_lease_id(lease_id: &str) -> Result<(), VaultError> {
    if lease_id.is_empty() || lease_id.chars().any(char::is_control) {
        return Err(VaultError::Config(format!("invalid lease id {lease_id:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_expiry_is_issue_time_plus_duration() {
        let at = DateTime::from_timestamp(1_000, 0).unwrap();
        let lease = Lease::new("db/creds/x/1".into(), Duration::from_secs(3), true, at);
        assert_eq!(lease.expires_at.timestamp(), 1_003);
    }

    #[test]
    fn lease_ids_are_checked() {
        assert!(check_lease_id("database/creds/app/AbC123").is_ok());
        assert!(check_lease_id("").is_err());
        assert!(check_lease_id("a\nb").is_err());
    }

    #[test]
    fn lookup_parses_vault_times() {
        let json = r#"{"id":"database/creds/app/x","issue_time":"2026-01-01T10:00:00.123456789Z",
            "expire_time":"2026-01-01T10:00:03.123456789Z","last_renewal":null,
            "renewable":true,"ttl":2}"#;
        let info: LeaseInfo = serde_json::from_str(json).unwrap();
        assert_eq!(info.ttl, 2);
        assert!(info.last_renewal.is_none());
        assert!(info.expire_time > info.issue_time);
    }
}
