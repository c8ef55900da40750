//! OAuth clients: registration, secret rotation, disabling, and lookup for authentication.
//!
//! A confidential client gets a `ghac_` secret, shown once at registration or rotation and
//! stored only as its keyed hash. During a rotation the previous secret stays valid until its
//! grace period ends, so at most two secrets are valid at once. A client registered with a public
//! JWK authenticates with `private_key_jwt` and holds no shared secret; a public client holds
//! nothing and cannot use `client_credentials`.

mod assertion_jtis;
mod cache;
mod cli;
pub(crate) mod config;
mod jwk;
pub mod legacy_keys;
pub(crate) mod model;
mod store;

use std::fmt;
use std::sync::Arc;

use chrono::TimeDelta;
use gha_auth::SharedClock;
use gha_auth::apikey::{ApiKey, Pepper, SecretKind};
use thiserror::Error;

use crate::audit::{AuditEvent, AuditKind, AuditLog, Outcome};
use crate::store::{Store, StoreError};
use store::{NewClientRow, SecretRotation};

#[cfg(test)]
pub(crate) use store::ClientRow;

pub(crate) use assertion_jtis::{purge_assertion_jtis, record_assertion_jti};
pub(crate) use cli::{
    AddClient, ClientsCommand, created_text, describe, disabled_text, list_text, rotated_text,
    run as run_cli,
};
pub(crate) use jwk::client_key_from_json;
pub(crate) use model::{
    AuthMethod, Client, GrantType, MAX_CLIENT_ID_LEN, is_valid_audience, is_valid_client_id,
    is_valid_scope, secret_matches_no_client,
};

/// A client operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The registration or request is invalid; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// No client with this id.
    #[error("no client {0:?}")]
    NotFound(String),
    /// A client with this id exists already.
    #[error("client {0:?} already exists")]
    AlreadyExists(String),
    /// A stored client cannot be read.
    #[error("corrupt client: {0}")]
    Corrupt(String),
    /// A secret could not be generated.
    #[error("could not generate a secret")]
    Randomness,
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl ClientError {
    /// Whether the store could not be reached (see [`StoreError::is_unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, ClientError::Store(e) if e.is_unavailable())
    }
}

impl From<StoreError> for ClientError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyExists(what) => ClientError::AlreadyExists(what),
            StoreError::NotFound(what) => ClientError::NotFound(what),
            other => ClientError::Store(other),
        }
    }
}

/// What an administrator registers.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ClientRegistration {
    /// Client id.
    pub id: String,
    /// Tenant (GHA customer).
    pub tenant: Option<String>,
    /// Allowed grants.
    pub grants: Vec<GrantType>,
    /// Allowed scopes.
    pub scopes: Vec<String>,
    /// Allowed audiences.
    pub audiences: Vec<String>,
    /// Access-token lifetime, if not the default.
    pub token_lifetime: Option<TimeDelta>,
    /// First-party client.
    pub first_party: bool,
    /// Public client (no secret).
    pub public: bool,
    /// Public JWK for `private_key_jwt` (no secret is issued then).
    pub jwk: Option<serde_json::Value>,
    /// Audiences it serves as a resource server (may introspect tokens addressed to them).
    pub resource_audiences: Vec<String>,
}

impl ClientRegistration {
    /// A registration for `id` with nothing allowed yet.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            ..Self::default()
        }
    }

    /// Allows `grant`.
    #[must_use]
    pub fn grant(mut self, grant: GrantType) -> Self {
        self.grants.push(grant);
        self
    }

    /// Allows `scope`.
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// Allows `audience`.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Sets the tenant.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Sets the access-token lifetime.
    #[must_use]
    pub fn token_lifetime(mut self, lifetime: TimeDelta) -> Self {
        self.token_lifetime = Some(lifetime);
        self
    }

    /// Marks the client first-party.
    #[must_use]
    pub fn first_party(mut self, yes: bool) -> Self {
        self.first_party = yes;
        self
    }

    /// Marks the client public.
    #[must_use]
    pub fn public(mut self, yes: bool) -> Self {
        self.public = yes;
        self
    }

    /// Registers it as the resource server for `audience`: it may introspect tokens addressed
    /// to it.
    #[must_use]
    pub fn resource_server(mut self, audience: impl Into<String>) -> Self {
        self.resource_audiences.push(audience.into());
        self
    }

    /// Registers a public JWK for `private_key_jwt`.
    #[must_use]
    pub fn jwk(mut self, jwk: serde_json::Value) -> Self {
        self.jwk = Some(jwk);
        self
    }

    fn validate(&mut self, max_lifetime: TimeDelta) -> Result<(), ClientError> {
        let invalid = |m: String| Err(ClientError::Invalid(m));
        if !is_valid_client_id(&self.id) {
            return invalid(format!(
                "client id must be 1-{MAX_CLIENT_ID_LEN} characters of A-Z a-z 0-9 . _ ~ -"
            ));
        }
        if let Some(tenant) = &self.tenant
            && !is_valid_client_id(tenant)
        {
            return invalid("tenant must be 1-128 characters of A-Z a-z 0-9 . _ ~ -".into());
        }
        // A resource server only introspects: it needs no grant or audience of its own.
        let resource_server = !self.resource_audiences.is_empty();
        if self.grants.is_empty() && !resource_server {
            return invalid("at least one --grant is required".into());
        }
        dedup(&mut self.grants);
        dedup(&mut self.scopes);
        dedup(&mut self.audiences);
        dedup(&mut self.resource_audiences);
        if let Some(bad) = self
            .resource_audiences
            .iter()
            .find(|a| !is_valid_audience(a))
        {
            return invalid(format!("invalid resource server audience {bad:?}"));
        }
        if resource_server && self.public {
            return invalid(
                "a resource server must authenticate to introspect; drop --public".into(),
            );
        }
        if let Some(bad) = self.scopes.iter().find(|s| !is_valid_scope(s)) {
            return invalid(format!("invalid scope {bad:?} (RFC 6749 §3.3 scope token)"));
        }
        if let Some(bad) = self.audiences.iter().find(|a| !is_valid_audience(a)) {
            return invalid(format!("invalid audience {bad:?}"));
        }
        if self.audiences.is_empty() && !self.grants.is_empty() {
            return invalid("at least one --audience is required".into());
        }
        if let Some(lifetime) = self.token_lifetime
            && (lifetime <= TimeDelta::zero() || lifetime > max_lifetime)
        {
            return invalid(format!(
                "token lifetime must be between 1s and tokens.max_lifetime ({}s)",
                max_lifetime.num_seconds()
            ));
        }
        if self.public {
            if self.grants.contains(&GrantType::ClientCredentials) {
                return invalid(
                    "a public client cannot use client_credentials (RFC 6749 §4.4)".into(),
                );
            }
            if self.jwk.is_some() {
                return invalid("a public client holds no key; drop --jwk or --public".into());
            }
        }
        if self.grants.contains(&GrantType::Password) && !(self.first_party && self.public) {
            return invalid("the password grant is only for first-party public clients".into());
        }
        if let Some(jwk) = &self.jwk {
            client_key_from_json(jwk).map_err(ClientError::Invalid)?;
        }
        Ok(())
    }
}

fn dedup<T: PartialEq>(items: &mut Vec<T>) {
    let mut seen: Vec<T> = Vec::with_capacity(items.len());
    for item in items.drain(..) {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    *items = seen;
}

/// A secret to show to the operator once. Never logged; `Debug` is redacted.
pub struct IssuedSecret(ApiKey);

impl IssuedSecret {
    /// The secret text, to print once.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for IssuedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IssuedSecret([redacted])")
    }
}

/// Registers and changes clients, writing an audit event for every change.
#[derive(Debug, Clone)]
pub struct ClientRegistry {
    store: Store,
    pepper: Arc<Pepper>,
    audit: Arc<AuditLog>,
    clock: SharedClock,
    max_lifetime: TimeDelta,
    cache: Arc<cache::ClientCache>,
}

impl ClientRegistry {
    /// A registry over `store`; secrets are hashed under `pepper`.
    pub fn new(
        store: Store,
        pepper: Arc<Pepper>,
        audit: Arc<AuditLog>,
        clock: SharedClock,
        max_lifetime: TimeDelta,
    ) -> Self {
        Self {
            store,
            pepper,
            audit,
            clock,
            max_lifetime,
            cache: Arc::new(cache::ClientCache::new(
                TimeDelta::zero(),
                TimeDelta::zero(),
            )),
        }
    }

    /// Caches clients for authentication for `ttl` (zero: no cache). See
    /// [`ClientRegistry::find_for_auth`].
    #[must_use]
    #[cfg(test)]
    pub fn with_cache_ttl(self, ttl: TimeDelta) -> Self {
        self.with_cache(ttl, TimeDelta::zero())
    }

    /// Caches clients for authentication for `ttl`, and while the store is unreachable serves
    /// entries read within `outage_window` (zero: never). See
    /// [`ClientRegistry::find_for_auth`].
    #[must_use]
    pub fn with_cache(mut self, ttl: TimeDelta, outage_window: TimeDelta) -> Self {
        self.cache = Arc::new(cache::ClientCache::new(ttl, outage_window));
        self
    }

    /// The client with this id for authenticating a request: from the cache when it is fresh
    /// and `fresh` is false, else from the store. Changes made through this registry are seen at
    /// once; changes by other processes within the cache TTL. Callers re-read with `fresh` when a
    /// credential does not match a cached client. While the store is unreachable, a client read
    /// within the outage window is served from the cache (not when `fresh`).
    pub async fn find_for_auth(
        &self,
        id: &str,
        fresh: bool,
    ) -> Result<Option<Client>, ClientError> {
        let now = self.clock.now();
        if !fresh && let Some(client) = self.cache.get(id, now) {
            return Ok(Some(client));
        }
        let client = match self.find(id).await {
            Ok(client) => client,
            Err(e) if !fresh && e.is_unavailable() => {
                if let Some(client) = self.cache.get_during_outage(id, now) {
                    tracing::debug!(client_id = %id, "store unreachable: client served from the cache");
                    return Ok(Some(client));
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        match &client {
            Some(client) => self.cache.put(client, now),
            None => self.cache.invalidate(id),
        }
        Ok(client)
    }

    /// Registers a client. Returns it and, for a client that authenticates with a secret, the
    /// secret (the only time it is ever available).
    pub async fn register(
        &self,
        mut registration: ClientRegistration,
        actor: &str,
    ) -> Result<(Client, Option<IssuedSecret>), ClientError> {
        registration.validate(self.max_lifetime)?;
        let secret = if registration.public || registration.jwk.is_some() {
            None
        } else {
            Some(ApiKey::generate(SecretKind::ClientSecret).map_err(|_| ClientError::Randomness)?)
        };
        let row = NewClientRow {
            id: registration.id.clone(),
            tenant: registration.tenant.clone(),
            grants: registration
                .grants
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            scopes: registration.scopes.clone(),
            audiences: registration.audiences.clone(),
            resource_audiences: registration.resource_audiences.clone(),
            token_lifetime_secs: registration.token_lifetime.map(|d| d.num_seconds()),
            first_party: registration.first_party,
            public_client: registration.public,
            jwk: registration.jwk.as_ref().map(serde_json::Value::to_string),
            secret_hash: secret.as_ref().map(|s| self.pepper.hash(s).to_hex()),
            now: self.clock.unix_seconds(),
        };
        self.store.insert_client(&row).await?;
        let client = self.get(&registration.id).await?;
        self.audit
            .record_or_log(
                AuditEvent::new(
                    AuditKind::ClientCreated,
                    actor,
                    &client.id,
                    Outcome::Success,
                )
                .detail("grants", join(&client.grants))
                .detail("scopes", client.scopes.join(" "))
                .detail("audiences", client.audiences.join(" "))
                .detail("resource_audiences", client.resource_audiences.join(" "))
                .detail("tenant", client.tenant.clone().unwrap_or_default())
                .detail("auth_method", format!("{:?}", client.auth_method)),
            )
            .await;
        Ok((client, secret.map(IssuedSecret)))
    }

    /// Issues a new secret; the current one stays valid for `grace`.
    pub async fn rotate_secret(
        &self,
        id: &str,
        grace: TimeDelta,
        actor: &str,
    ) -> Result<IssuedSecret, ClientError> {
        if grace < TimeDelta::zero() || grace > TimeDelta::days(30) {
            return Err(ClientError::Invalid(
                "grace must be between 0s and 30d".into(),
            ));
        }
        let client = self.get(id).await?;
        if client.auth_method != AuthMethod::ClientSecret {
            return Err(ClientError::Invalid(format!(
                "client {id:?} does not authenticate with a secret"
            )));
        }
        let secret =
            ApiKey::generate(SecretKind::ClientSecret).map_err(|_| ClientError::Randomness)?;
        let now = self.clock.unix_seconds();
        let grace_until = now + grace.num_seconds();
        self.store
            .rotate_client_secret(
                id,
                &SecretRotation::new(self.pepper.hash(&secret).to_hex(), grace_until, now),
            )
            .await?;
        self.cache.invalidate(id);
        self.audit
            .record_or_log(
                AuditEvent::new(AuditKind::ClientSecretRotated, actor, id, Outcome::Success)
                    .detail("previous_valid_until", grace_until),
            )
            .await;
        Ok(IssuedSecret(secret))
    }

    /// Emergency rotation for a leaked secret: a new secret, the old one invalid at once, and
    /// every token issued to the client so far revoked (published in the revocation feed).
    pub async fn emergency_rotate_secret(
        &self,
        id: &str,
        actor: &str,
    ) -> Result<IssuedSecret, ClientError> {
        let secret = self.rotate_secret(id, TimeDelta::zero(), actor).await?;
        crate::revocations::revoke_client(
            &self.store,
            &self.audit,
            self.clock.unix_seconds(),
            id,
            actor,
            "secret_rotated_emergency",
        )
        .await?;
        Ok(secret)
    }

    /// Disables a client: it can no longer authenticate, and the tokens it holds are revoked
    /// (published in the revocation feed).
    pub async fn disable(&self, id: &str, actor: &str) -> Result<(), ClientError> {
        let now = self.clock.unix_seconds();
        self.store.set_client_disabled(id, true, now).await?;
        self.cache.invalidate(id);
        crate::revocations::revoke_client(
            &self.store,
            &self.audit,
            now,
            id,
            actor,
            "client_disabled",
        )
        .await?;
        self.audit
            .record_or_log(AuditEvent::new(
                AuditKind::ClientDisabled,
                actor,
                id,
                Outcome::Success,
            ))
            .await;
        Ok(())
    }

    /// The client with this id.
    pub async fn get(&self, id: &str) -> Result<Client, ClientError> {
        self.find(id)
            .await?
            .ok_or_else(|| ClientError::NotFound(id.to_owned()))
    }

    /// The client with this id, if any.
    pub async fn find(&self, id: &str) -> Result<Option<Client>, ClientError> {
        match self.store.client(id).await? {
            Some(row) => Ok(Some(Client::from_row(row)?)),
            None => Ok(None),
        }
    }

    /// Every client, by id.
    pub async fn list(&self) -> Result<Vec<Client>, ClientError> {
        self.store
            .clients()
            .await?
            .into_iter()
            .map(Client::from_row)
            .collect()
    }

    /// The pepper secrets are hashed under.
    pub fn pepper(&self) -> &Pepper {
        &self.pepper
    }

    /// The pepper, shared (refresh-token families key their hashes with it too).
    pub fn pepper_arc(&self) -> Arc<Pepper> {
        Arc::clone(&self.pepper)
    }
}

fn join(grants: &[GrantType]) -> String {
    grants
        .iter()
        .map(|g| g.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
