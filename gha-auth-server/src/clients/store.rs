//! Rows of the `clients` table.

use crate::store::{Store, StoreError, flag, split_list};

/// A client as stored. Holds keyed hashes of secrets, never secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientRow {
    /// The client id.
    pub id: String,
    /// The GHA customer the client belongs to.
    pub tenant: Option<String>,
    /// Allowed grant types.
    pub grants: Vec<String>,
    /// Allowed scopes.
    pub scopes: Vec<String>,
    /// Allowed audiences.
    pub audiences: Vec<String>,
    /// Audiences it serves as a resource server (may introspect tokens addressed to them).
    pub resource_audiences: Vec<String>,
    /// Access-token lifetime override, in seconds.
    pub token_lifetime_secs: Option<i64>,
    /// First-party client (may use the password grant).
    pub first_party: bool,
    /// Public client (holds no secret).
    pub public_client: bool,
    /// Registered public JWK (JSON) for `private_key_jwt`.
    pub jwk: Option<String>,
    /// Keyed hash (hex) of the current secret.
    pub secret_hash: Option<String>,
    /// Keyed hash (hex) of the previous secret during a rotation.
    pub prev_secret_hash: Option<String>,
    /// When the previous secret stops working (Unix seconds).
    pub prev_secret_expires_at: Option<i64>,
    /// Disabled clients cannot authenticate.
    pub disabled: bool,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// Last change (Unix seconds).
    pub updated_at: i64,
}

/// What registration writes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewClientRow {
    /// The client id.
    pub id: String,
    /// Tenant.
    pub tenant: Option<String>,
    /// Allowed grant types.
    pub grants: Vec<String>,
    /// Allowed scopes.
    pub scopes: Vec<String>,
    /// Allowed audiences.
    pub audiences: Vec<String>,
    /// Audiences it serves as a resource server.
    pub resource_audiences: Vec<String>,
    /// Lifetime override in seconds.
    pub token_lifetime_secs: Option<i64>,
    /// First-party flag.
    pub first_party: bool,
    /// Public flag.
    pub public_client: bool,
    /// Registered JWK (JSON).
    pub jwk: Option<String>,
    /// Keyed hash (hex) of the initial secret.
    pub secret_hash: Option<String>,
    /// Creation time.
    pub now: i64,
}

/// A secret rotation: the new hash becomes current, the current one stays valid until
/// `grace_until`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SecretRotation {
    /// Keyed hash (hex) of the new secret.
    pub new_hash: String,
    /// Until when the old secret stays valid (Unix seconds).
    pub grace_until: i64,
    /// Now (Unix seconds).
    pub now: i64,
}

impl SecretRotation {
    /// A rotation to `new_hash` keeping the old secret until `grace_until`.
    pub fn new(new_hash: String, grace_until: i64, now: i64) -> Self {
        Self {
            new_hash,
            grace_until,
            now,
        }
    }
}

#[derive(sqlx::FromRow)]
struct RawClient {
    id: String,
    tenant: Option<String>,
    grants: String,
    scopes: String,
    audiences: String,
    resource_audiences: String,
    token_lifetime_secs: Option<i64>,
    first_party: i64,
    public_client: i64,
    jwk: Option<String>,
    secret_hash: Option<String>,
    prev_secret_hash: Option<String>,
    prev_secret_expires_at: Option<i64>,
    disabled: i64,
    created_at: i64,
    updated_at: i64,
}

impl From<RawClient> for ClientRow {
    fn from(raw: RawClient) -> Self {
        Self {
            id: raw.id,
            tenant: raw.tenant,
            grants: split_list(&raw.grants),
            scopes: split_list(&raw.scopes),
            audiences: split_list(&raw.audiences),
            resource_audiences: split_list(&raw.resource_audiences),
            token_lifetime_secs: raw.token_lifetime_secs,
            first_party: flag(raw.first_party),
            public_client: flag(raw.public_client),
            jwk: raw.jwk,
            secret_hash: raw.secret_hash,
            prev_secret_hash: raw.prev_secret_hash,
            prev_secret_expires_at: raw.prev_secret_expires_at,
            disabled: flag(raw.disabled),
            created_at: raw.created_at,
            updated_at: raw.updated_at,
        }
    }
}

const COLUMNS: &str = "id, tenant, grants, scopes, audiences, resource_audiences, \
     token_lifetime_secs, first_party, public_client, jwk, secret_hash, prev_secret_hash, \
     prev_secret_expires_at, disabled, created_at, updated_at";

impl Store {
    /// Inserts a new client; [`StoreError::AlreadyExists`] if the id is taken.
    pub async fn insert_client(&self, row: &NewClientRow) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO clients (id, tenant, grants, scopes, audiences, token_lifetime_secs, \
             first_party, public_client, jwk, secret_hash, disabled, created_at, updated_at, \
             resource_audiences) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $11, $12) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&row.id)
        .bind(&row.tenant)
        .bind(row.grants.join(" "))
        .bind(row.scopes.join(" "))
        .bind(row.audiences.join(" "))
        .bind(row.token_lifetime_secs)
        .bind(i64::from(row.first_party))
        .bind(i64::from(row.public_client))
        .bind(&row.jwk)
        .bind(&row.secret_hash)
        .bind(row.now)
        .bind(row.resource_audiences.join(" "))
        .execute(self.pool())
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::AlreadyExists(row.id.clone()));
        }
        Ok(())
    }

    /// The client with this id, if any.
    pub async fn client(&self, id: &str) -> Result<Option<ClientRow>, StoreError> {
        let raw: Option<RawClient> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM clients WHERE id = $1"))
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        Ok(raw.map(ClientRow::from))
    }

    /// Every client, ordered by id.
    pub async fn clients(&self) -> Result<Vec<ClientRow>, StoreError> {
        let raw: Vec<RawClient> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM clients ORDER BY id"))
                .fetch_all(self.pool())
                .await?;
        Ok(raw.into_iter().map(ClientRow::from).collect())
    }

    /// Makes `rotation.new_hash` the current secret and keeps the current one valid until
    /// `rotation.grace_until`. At most two secrets are ever valid: an older previous one is
    /// dropped.
    pub async fn rotate_client_secret(
        &self,
        id: &str,
        rotation: &SecretRotation,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE clients SET prev_secret_hash = secret_hash, prev_secret_expires_at = $1, \
             secret_hash = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(rotation.grace_until)
        .bind(&rotation.new_hash)
        .bind(rotation.now)
        .bind(id)
        .execute(self.pool())
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        Ok(())
    }

    /// Sets or clears the disabled flag.
    pub async fn set_client_disabled(
        &self,
        id: &str,
        disabled: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        let result = sqlx::query("UPDATE clients SET disabled = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::from(disabled))
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::{purge_assertion_jtis, record_assertion_jti};

    fn new_client(id: &str, now: i64) -> NewClientRow {
        NewClientRow {
            id: id.to_owned(),
            tenant: Some("acme".to_owned()),
            grants: vec!["client_credentials".to_owned()],
            scopes: vec!["orders:read".to_owned(), "orders:write".to_owned()],
            audiences: vec!["mfs.api".to_owned()],
            resource_audiences: vec!["orders.api".to_owned()],
            token_lifetime_secs: Some(300),
            first_party: false,
            public_client: false,
            jwk: None,
            secret_hash: Some("aa".repeat(32)),
            now,
        }
    }

    /// The same checks on every backend.
    async fn exercise(store: &Store) {
        // clients
        store
            .insert_client(&new_client("svc-a", 100))
            .await
            .unwrap();
        assert!(matches!(
            store.insert_client(&new_client("svc-a", 100)).await,
            Err(StoreError::AlreadyExists(_))
        ));
        store
            .insert_client(&new_client("svc-b", 100))
            .await
            .unwrap();
        let row = store.client("svc-a").await.unwrap().unwrap();
        assert_eq!(row.scopes, vec!["orders:read", "orders:write"]);
        assert_eq!(row.tenant.as_deref(), Some("acme"));
        assert_eq!(row.token_lifetime_secs, Some(300));
        assert_eq!(row.resource_audiences, vec!["orders.api"]);
        assert!(!row.disabled && !row.public_client && !row.first_party);
        assert_eq!(store.clients().await.unwrap().len(), 2);
        assert!(store.client("nope").await.unwrap().is_none());

        store
            .rotate_client_secret("svc-a", &SecretRotation::new("bb".repeat(32), 500, 200))
            .await
            .unwrap();
        let row = store.client("svc-a").await.unwrap().unwrap();
        assert_eq!(row.secret_hash, Some("bb".repeat(32)));
        assert_eq!(row.prev_secret_hash, Some("aa".repeat(32)));
        assert_eq!(row.prev_secret_expires_at, Some(500));
        assert!(matches!(
            store
                .rotate_client_secret("nope", &SecretRotation::new("cc".repeat(32), 1, 1))
                .await,
            Err(StoreError::NotFound(_))
        ));
        store.set_client_disabled("svc-a", true, 300).await.unwrap();
        assert!(store.client("svc-a").await.unwrap().unwrap().disabled);

        // jti replay
        assert!(
            record_assertion_jti(store, "svc-a", "j1", 50)
                .await
                .unwrap()
        );
        assert!(
            !record_assertion_jti(store, "svc-a", "j1", 50)
                .await
                .unwrap()
        );
        assert!(
            record_assertion_jti(store, "svc-b", "j1", 50)
                .await
                .unwrap()
        );
        assert_eq!(purge_assertion_jtis(store, 60).await.unwrap(), 2);
        assert!(
            record_assertion_jti(store, "svc-a", "j1", 70)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn on_sqlite() {
        let (store, _dir) = crate::store::testing::sqlite().await;
        exercise(&store).await;
    }

    #[tokio::test]
    async fn on_postgres() {
        let (store, _db) = crate::store::testing::postgres().await;
        exercise(&store).await;
    }
}
