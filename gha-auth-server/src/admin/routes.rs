//! The admin API's handlers and router. Each handler: the caller (401 without a token), the
//! decision (403), the feature function, and the audit row ([`Call::finish`]).

use std::sync::Arc;

use axum::extract::{FromRef, Path, Query, State};
use axum::response::Response;
use gha_auth::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::decide::{ADMIN_ROLE, Area, Target};
use super::{Admin, AdminError, AdminJson, Call, whole_seconds};
use crate::caller::{AdminApi, Caller, Callers};
use crate::clients::legacy_keys::{self, NewLegacyKey};
use crate::clients::{ClientRegistration, GrantType};

/// The name of the admin API's security scheme in `/openapi.json`.
pub(crate) const SCHEME: &str = "admin_token";

/// Adds the bearer scheme the admin routes name.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token of this authority for api_auth.admin_audience \
                         (gha-auth-admin): a client's with admin:<area> scopes, or a user's with \
                         the admin or tenant-admin role",
                    ))
                    .build(),
            ),
        );
    }
}

/// Route of one local secret (axum syntax: the path may contain `/`).
const SECRET_ROUTE: &str = "/admin/v1/broker/secrets/{*path}";

#[derive(OpenApi)]
#[openapi(
    paths(show_broker_secret, put_broker_secret),
    modifiers(&BearerScheme),
    tags((name = "admin", description = "Administration: clients, users, keys, link keys, broker, audit"))
)]
struct AdminDoc;

/// The admin API's routes.
pub(crate) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Admin>: FromRef<S>,
    Arc<Callers>: FromRef<S>,
{
    OpenApiRouter::with_openapi(AdminDoc::openapi())
        .routes(routes!(list_clients, add_client))
        .routes(routes!(show_client))
        .routes(routes!(disable_client))
        .routes(routes!(rotate_client_secret))
        .routes(routes!(list_legacy_keys, add_legacy_key))
        .routes(routes!(revoke_legacy_key))
        .routes(routes!(list_users, add_user))
        .routes(routes!(disable_user))
        .routes(routes!(set_user_password))
        .routes(routes!(set_user_roles))
        .routes(routes!(list_keys))
        .routes(routes!(rotate_keys))
        .routes(routes!(emergency_rotate_keys))
        .routes(routes!(link_keys_status))
        .routes(routes!(rotate_link_key))
        .routes(routes!(retire_previous_link_key))
        .routes(routes!(broker_state))
        .routes(routes!(list_broker_secrets))
        .route(
            SECRET_ROUTE,
            axum::routing::get(show_broker_secret).put(put_broker_secret),
        )
        .routes(routes!(audit_events))
        .routes(routes!(verify_audit))
}

fn json_of<T: serde::Serialize>(value: &T) -> Result<Value, AdminError> {
    serde_json::to_value(value).map_err(|e| AdminError::Internal(e.to_string()))
}

// ---- clients ----

/// A client to register.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct NewClient {
    id: String,
    /// Optional for a client that is only a resource server.
    #[serde(default)]
    grants: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    audiences: Vec<String>,
    /// Audiences this client is the resource server (API) of: it may introspect their tokens.
    #[serde(default)]
    resource_servers: Vec<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._~-]+$")]
    tenant: Option<String>,
    #[serde(default)]
    first_party: bool,
    #[serde(default)]
    public: bool,
    /// Public JWK for private_key_jwt (then no secret is issued).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    jwk: Option<Value>,
    /// Access-token lifetime, 1 s up to `tokens.max_lifetime` (default: `tokens.default_lifetime`).
    #[serde(default, deserialize_with = "whole_seconds")]
    #[schema(minimum = 1)]
    token_lifetime_secs: Option<i64>,
}

impl NewClient {
    fn registration(&self) -> Result<ClientRegistration, AdminError> {
        let mut registration = ClientRegistration::new(self.id.clone())
            .first_party(self.first_party)
            .public(self.public);
        for grant in &self.grants {
            registration = registration.grant(grant.parse::<GrantType>()?);
        }
        for scope in &self.scopes {
            registration = registration.scope(scope.clone());
        }
        for audience in &self.audiences {
            registration = registration.audience(audience.clone());
        }
        for audience in &self.resource_servers {
            registration = registration.resource_server(audience.clone());
        }
        if let Some(tenant) = &self.tenant {
            registration = registration.tenant(tenant.clone());
        }
        if let Some(secs) = self.token_lifetime_secs {
            let lifetime = chrono::TimeDelta::try_seconds(secs).ok_or_else(|| {
                AdminError::Invalid("token_lifetime_secs is out of range".to_owned())
            })?;
            registration = registration.token_lifetime(lifetime);
        }
        if let Some(jwk) = &self.jwk {
            registration = registration.jwk(jwk.clone());
        }
        Ok(registration)
    }
}

/// Clients within the caller's reach.
#[utoipa::path(get, path = "/admin/v1/clients", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "The clients (never a secret)", body = [Object]),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "The token lacks admin:clients (or the role)")))]
pub(crate) async fn list_clients(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
) -> Response {
    let call = Call::new(&admin, &caller, Area::Clients, "clients.list", "clients");
    let result = async {
        let reach = call.allow(Target::Area, false)?;
        let clients: Vec<_> = admin
            .oauth
            .clients
            .list()
            .await?
            .into_iter()
            .filter(|c| reach.covers(c.tenant.as_deref()))
            .collect();
        json_of(&clients)
    }
    .await;
    call.finish(result).await
}

/// Registers a client; its secret is in the answer, once.
///
/// A registration is refused (400) when its fields contradict each other: a client needs a grant
/// or a resource-server audience; a client with a grant needs an audience; a resource server is
/// not public; a public client uses neither `client_credentials` nor a JWK; the password grant is
/// only for first-party public clients; `token_lifetime_secs` is at most `tokens.max_lifetime`.
#[utoipa::path(post, path = "/admin/v1/clients", tag = "admin", security(("admin_token" = [])),
    request_body = NewClient,
    responses((status = 200, description = "{client, client_secret}", body = Object),
        (status = 400, description = "Invalid registration"),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "Not allowed (scope, role or tenant)"),
        (status = 409, description = "The client exists")))]
pub(crate) async fn add_client(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
    AdminJson(body): AdminJson<NewClient>,
) -> Response {
    let call = Call::new(&admin, &caller, Area::Clients, "clients.add", &body.id);
    let result = async {
        call.allow(Target::Tenant(body.tenant.as_deref()), false)?;
        let registration = body.registration()?;
        let (client, secret) = admin
            .oauth
            .clients
            .register(registration, &call.actor)
            .await?;
        Ok(json!({"client": client, "client_secret": secret.as_ref().map(|s| s.expose())}))
    }
    .await;
    call.finish(result).await
}

/// The client `id`, checked against the caller's reach.
async fn reachable_client(
    admin: &Admin,
    call: &Call<'_>,
    id: &str,
) -> Result<crate::clients::Client, AdminError> {
    let client = admin.oauth.clients.get(id).await?;
    call.allow(Target::Tenant(client.tenant.as_deref()), false)?;
    Ok(client)
}

/// One client.
#[utoipa::path(get, path = "/admin/v1/clients/{id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "Client id", max_length = 128, pattern = "^[A-Za-z0-9._~-]+$")),
    responses((status = 200, description = "The client (never a secret)", body = Object),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "Not allowed (scope, role or tenant)"),
        (status = 404, description = "No such client")))]
pub(crate) async fn show_client(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
    Path(id): Path<String>,
) -> Response {
    let call = Call::new(&admin, &caller, Area::Clients, "clients.show", &id);
    let result = async { json_of(&reachable_client(&admin, &call, &id).await?) }.await;
    call.finish(result).await
}

/// Disables a client and revokes its tokens.
#[utoipa::path(post, path = "/admin/v1/clients/{id}/disable", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "Client id", max_length = 128, pattern = "^[A-Za-z0-9._~-]+$")),
    responses((status = 200, description = "{client_id, disabled}", body = Object),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "Not allowed (scope, role or tenant)"),
        (status = 404, description = "No such client")))]
pub(crate) async fn disable_client(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
    Path(id): Path<String>,
) -> Response {
    let call = Call::new(&admin, &caller, Area::Clients, "clients.disable", &id);
    let result = async {
        reachable_client(&admin, &call, &id).await?;
        admin.oauth.clients.disable(&id, &call.actor).await?;
        Ok(json!({"client_id": id, "disabled": true}))
    }
    .await;
    call.finish(result).await
}

/// How to rotate a client secret.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub(crate) struct RotateSecret {
    /// How long the previous secret stays valid (default 24 h, at most 30 days).
    #[serde(default, deserialize_with = "whole_seconds")]
    #[schema(minimum = 0, maximum = 2_592_000)]
    grace_secs: Option<i64>,
    /// The secret leaked: no grace, and the client's tokens are revoked.
    #[serde(default)]
    emergency: bool,
}

/// Issues a new client secret (in the answer, once).
#[utoipa::path(post, path = "/admin/v1/clients/{id}/rotate-secret", tag = "admin",
    security(("admin_token" = [])), request_body = RotateSecret,
    params(("id" = String, Path, description = "Client id", max_length = 128, pattern = "^[A-Za-z0-9._~-]+$")),
    responses((status = 200, description = "{client_id, client_secret, previous_valid_for_secs}", body = Object),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "Not allowed (scope, role or tenant)"),
        (status = 404, description = "No such client"),
        (status = 409, description = "The client does not authenticate with a secret")))]
pub(crate) async fn rotate_client_secret(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<RotateSecret>,
) -> Response {
    let call = Call::new(&admin, &caller, Area::Clients, "clients.rotate_secret", &id);
    let result = async {
        let client = reachable_client(&admin, &call, &id).await?;
        if client.auth_method != crate::clients::AuthMethod::ClientSecret {
            // The client's state, not the request, is what refuses (409).
            return Err(AdminError::Conflict(format!(
                "client {id:?} does not authenticate with a secret"
            )));
        }
        let clients = &admin.oauth.clients;
        if body.emergency {
            let secret = clients.emergency_rotate_secret(&id, &call.actor).await?;
            return Ok(json!({"client_id": id, "client_secret": secret.expose(),
                "previous_valid_for_secs": 0, "tokens_revoked": true}));
        }
        let grace = body.grace_secs.unwrap_or(24 * 3600);
        let grace_delta = chrono::TimeDelta::try_seconds(grace)
            .filter(|g| *g >= chrono::TimeDelta::zero())
            .ok_or_else(|| AdminError::Invalid("grace_secs must be between 0 and 30 days".into()))?;
        let secret = clients
            .rotate_secret(&id, grace_delta, &call.actor)
            .await?;
        Ok(json!({"client_id": id, "client_secret": secret.expose(), "previous_valid_for_secs": grace}))
    }
    .await;
    call.finish(result).await
}

/// A legacy static API key to import.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct NewLegacyKeyBody {
    /// Subject of the tokens it is exchanged for.
    subject: String,
    /// Tenant of those tokens (default: the client's).
    #[serde(default)]
    tenant: Option<String>,
    /// Scopes those tokens may have.
    scopes: Vec<String>,
    /// Id to refer to the key by (default: generated).
    #[serde(default)]
    id: Option<String>,
    /// The key itself.
    #[schema(value_type = String)]
    key: SecretString,
}

/// A client's legacy keys (never the keys).
#[utoipa::path(get, path = "/admin/v1/clients/{id}/legacy-keys", tag = "admin",
    security(("admin_token" = [])), params(("id" = String, Path, description = "Client id", max_length = 128, pattern = "^[A-Za-z0-9._~-]+$")),
    responses((status = 200, description = "The keys' ids, subjects, scopes", body = [Object]),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "Not allowed (scope, role or tenant)"),
        (status = 404, description = "No such client")))]
pub(crate) async fn list_legacy_keys(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
    Path(id): Path<String>,
) -> Response {
    let call = Call::new(
        &admin,
        &caller,
        Area::Clients,
        "clients.legacy_keys.list",
        &id,
    );
    let result = async {
        reachable_client(&admin, &call, &id).await?;
        json_of(&legacy_keys::list(&admin.oauth.store, Some(&id)).await?)
    }
    .await;
    call.finish(result).await
}

/// Imports a legacy static API key the client may exchange for tokens.
#[utoipa::path(post, path = "/admin/v1/clients/{id}/legacy-keys", tag = "admin",
    security(("admin_token" = [])), request_body = NewLegacyKeyBody,
    params(("id" = String, Path, description = "Client id", max_length = 128, pattern = "^[A-Za-z0-9._~-]+$")),
    responses((status = 200, description = "The imported key (never the key itself)", body = Object),
        (status = 400, description = "Invalid key"),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "Not allowed (scope, role or tenant)"),
        (status = 404, description = "No such client"),
        (status = 409, description = "The client lacks the token-exchange grant")))]
pub(crate) async fn add_legacy_key(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<NewLegacyKeyBody>,
) -> Response {
    let call = Call::new(
        &admin,
        &caller,
        Area::Clients,
        "clients.legacy_keys.add",
        &id,
    );
    let result = async {
        let client = reachable_client(&admin, &call, &id).await?;
        let tenant = body.tenant.clone().or(client.tenant.clone());
        call.allow(Target::Tenant(tenant.as_deref()), false)?;
        if !client.allows_grant(GrantType::TokenExchange) {
            return Err(AdminError::Conflict(format!(
                "client {id:?} does not have the token-exchange grant"
            )));
        }
        let mut spec = NewLegacyKey::new(id.clone(), body.subject.clone());
        spec.tenant = tenant;
        spec.scopes.clone_from(&body.scopes);
        spec.id.clone_from(&body.id);
        let oauth = &admin.oauth;
        let now = oauth.clock.unix_seconds();
        let added = legacy_keys::add(
            &oauth.store,
            oauth.clients.pepper(),
            &oauth.audit,
            now,
            spec,
            &body.key,
            &call.actor,
        )
        .await?;
        json_of(&added)
    }
    .await;
    call.finish(result).await
}

/// Revokes one of the client's legacy keys.
#[utoipa::path(post, path = "/admin/v1/clients/{id}/legacy-keys/{key_id}/revoke", tag = "admin",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "Client id", max_length = 128, pattern = "^[A-Za-z0-9._~-]+$"), ("key_id" = String, Path, description = "The key's id")),
    responses((status = 200, description = "{id, revoked}", body = Object),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "Not allowed (scope, role or tenant)"),
        (status = 404, description = "No such client or key")))]
pub(crate) async fn revoke_legacy_key(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
    Path((id, key_id)): Path<(String, String)>,
) -> Response {
    let call = Call::new(
        &admin,
        &caller,
        Area::Clients,
        "clients.legacy_keys.revoke",
        &key_id,
    );
    let result = async {
        reachable_client(&admin, &call, &id).await?;
        let oauth = &admin.oauth;
        let keys = legacy_keys::list(&oauth.store, Some(&id)).await?;
        if !keys.iter().any(|k| k.id == key_id) {
            return Err(AdminError::NotFound(format!(
                "client {id:?} has no legacy key {key_id:?}"
            )));
        }
        let now = oauth.clock.unix_seconds();
        legacy_keys::revoke(&oauth.store, &oauth.audit, now, &key_id, &call.actor).await?;
        Ok(json!({"id": key_id, "revoked": true}))
    }
    .await;
    call.finish(result).await
}

// ---- users ----

/// The tenant of a user (query `tenant`; none by default).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub(crate) struct TenantQuery {
    /// The user's tenant (empty or absent: none).
    #[serde(default)]
    #[param(max_length = 128, pattern = "^[A-Za-z0-9._~-]*$")]
    tenant: Option<String>,
}

impl TenantQuery {
    fn tenant(&self) -> &str {
        self.tenant.as_deref().unwrap_or("")
    }
}

/// A list of role names in the OpenAPI document: scope tokens (RFC 6749 §3.3).
fn roles_schema() -> utoipa::openapi::Array {
    use utoipa::openapi::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(128))
                .pattern(Some("^[\\x21\\x23-\\x5b\\x5d-\\x7e]+$")),
        )
        .build()
}

/// A user to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct NewUser {
    /// Login name: no whitespace, control character or `/`.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000/]+$"
    )]
    username: String,
    #[serde(default)]
    #[schema(max_length = 128, pattern = "^[A-Za-z0-9._~-]*$")]
    tenant: String,
    #[serde(default)]
    #[schema(schema_with = roles_schema)]
    roles: Vec<String>,
    #[schema(value_type = String, min_length = 8, max_length = 1024)]
    password: SecretString,
}

/// A new password.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct NewPassword {
    #[schema(value_type = String, min_length = 8, max_length = 1024)]
    password: SecretString,
}

/// A user's roles.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct Roles {
    #[schema(schema_with = roles_schema)]
    roles: Vec<String>,
}

fn grants_admin(roles: &[String]) -> bool {
    roles.iter().any(|r| r == ADMIN_ROLE)
}

/// Whether `tenant/username` holds the admin role: acting on such a user (a new password, new
/// roles, disabling) is as much as handing out the role, so only an administrator may.
async fn is_admin_user(admin: &Admin, tenant: &str, username: &str) -> Result<bool, AdminError> {
    Ok(admin
        .oauth
        .users
        .list(Some(tenant))
        .await?
        .iter()
        .any(|u| u.username == username && grants_admin(&u.roles)))
}

/// Users within the caller's reach (optionally of one tenant).
#[utoipa::path(get, path = "/admin/v1/users", tag = "admin", security(("admin_token" = [])),
    params(TenantQuery),
    responses((status = 200, description = "The users (never a password hash)", body = [Object]),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "Not allowed (scope, role or tenant)")))]
pub(crate) async fn list_users(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
    Query(query): Query<TenantQuery>,
) -> Response {
    let call = Call::new(&admin, &caller, Area::Users, "users.list", "users");
    let result = async {
        if let Some(tenant) = &query.tenant
            && !crate::users::is_valid_tenant(tenant)
        {
            return Err(AdminError::Invalid(
                "tenant must be 1-128 of A-Z a-z 0-9 . _ ~ -".to_owned(),
            ));
        }
        let reach = match &query.tenant {
            Some(tenant) => call.allow(Target::Tenant(Some(tenant)), false)?,
            None => call.allow(Target::Area, false)?,
        };
        let users: Vec<_> = admin
            .oauth
            .users
            .list(query.tenant.as_deref())
            .await?
            .into_iter()
            .filter(|u| reach.covers(Some(u.tenant.as_str()).filter(|t| !t.is_empty())))
            .collect();
        json_of(&users)
    }
    .await;
    call.finish(result).await
}

/// Creates a user.
#[utoipa::path(post, path = "/admin/v1/users", tag = "admin", security(("admin_token" = [])),
    request_body = NewUser,
    responses((status = 200, description = "The user", body = Object),
        (status = 400, description = "Invalid name, role or password"),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "Not allowed (scope, role, tenant, or the admin role)"),
        (status = 409, description = "The user exists")))]
pub(crate) async fn add_user(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
    AdminJson(body): AdminJson<NewUser>,
) -> Response {
    let subject = format!("{}/{}", body.tenant, body.username);
    let call = Call::new(&admin, &caller, Area::Users, "users.add", subject);
    let result = async {
        call.allow(
            Target::Tenant(Some(&body.tenant)),
            grants_admin(&body.roles),
        )?;
        let user = admin
            .oauth
            .users
            .add(
                &body.tenant,
                &body.username,
                &body.roles,
                &body.password,
                &call.actor,
            )
            .await?;
        json_of(&user)
    }
    .await;
    call.finish(result).await
}

/// Disables a user and revokes their tokens.
#[utoipa::path(post, path = "/admin/v1/users/{username}/disable", tag = "admin",
    security(("admin_token" = [])), params(("username" = String, Path, description = "Login name: no whitespace, control character or /",
        max_length = 128, pattern = "^[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000/]+$"), TenantQuery),
    responses((status = 200, description = "{tenant, username, disabled}", body = Object),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "Not allowed (scope, role or tenant)"),
        (status = 404, description = "No such user")))]
pub(crate) async fn disable_user(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
    Path(username): Path<String>,
    Query(query): Query<TenantQuery>,
) -> Response {
    let tenant = query.tenant();
    let call = Call::new(
        &admin,
        &caller,
        Area::Users,
        "users.disable",
        format!("{tenant}/{username}"),
    );
    let result = async {
        let target_admin = is_admin_user(&admin, tenant, &username).await?;
        call.allow(Target::Tenant(Some(tenant)), target_admin)?;
        admin
            .oauth
            .users
            .disable(tenant, &username, &call.actor)
            .await?;
        Ok(json!({"tenant": tenant, "username": username, "disabled": true}))
    }
    .await;
    call.finish(result).await
}

/// Replaces a user's password (tokens issued before stop working).
#[utoipa::path(post, path = "/admin/v1/users/{username}/password", tag = "admin",
    security(("admin_token" = [])), request_body = NewPassword,
    params(("username" = String, Path, description = "Login name: no whitespace, control character or /",
        max_length = 128, pattern = "^[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000/]+$"), TenantQuery),
    responses((status = 200, description = "{tenant, username, password_set}", body = Object),
        (status = 400, description = "The password is refused by the policy"),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "Not allowed (scope, role or tenant)"),
        (status = 404, description = "No such user")))]
pub(crate) async fn set_user_password(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
    Path(username): Path<String>,
    Query(query): Query<TenantQuery>,
    AdminJson(body): AdminJson<NewPassword>,
) -> Response {
    let tenant = query.tenant();
    let call = Call::new(
        &admin,
        &caller,
        Area::Users,
        "users.set_password",
        format!("{tenant}/{username}"),
    );
    let result = async {
        let target_admin = is_admin_user(&admin, tenant, &username).await?;
        call.allow(Target::Tenant(Some(tenant)), target_admin)?;
        admin
            .oauth
            .users
            .set_password(tenant, &username, &body.password, &call.actor)
            .await?;
        Ok(json!({"tenant": tenant, "username": username, "password_set": true}))
    }
    .await;
    call.finish(result).await
}

/// Replaces a user's roles.
#[utoipa::path(put, path = "/admin/v1/users/{username}/roles", tag = "admin",
    security(("admin_token" = [])), request_body = Roles,
    params(("username" = String, Path, description = "Login name: no whitespace, control character or /",
        max_length = 128, pattern = "^[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000/]+$"), TenantQuery),
    responses((status = 200, description = "The user", body = Object),
        (status = 400, description = "Invalid role"),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "Not allowed (scope, role, tenant, or the admin role)"),
        (status = 404, description = "No such user")))]
pub(crate) async fn set_user_roles(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
    Path(username): Path<String>,
    Query(query): Query<TenantQuery>,
    AdminJson(body): AdminJson<Roles>,
) -> Response {
    let tenant = query.tenant();
    let call = Call::new(
        &admin,
        &caller,
        Area::Users,
        "users.set_roles",
        format!("{tenant}/{username}"),
    );
    let result = async {
        let target_admin = is_admin_user(&admin, tenant, &username).await?;
        call.allow(
            Target::Tenant(Some(tenant)),
            target_admin || grants_admin(&body.roles),
        )?;
        let user = admin
            .oauth
            .users
            .set_roles(tenant, &username, &body.roles, &call.actor)
            .await?;
        json_of(&user)
    }
    .await;
    call.finish(result).await
}

// ---- signing keys ----

/// The signing keys and their states.
#[utoipa::path(get, path = "/admin/v1/keys", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "kid, alg, state, activates_at, remove_at of each key", body = [Object]),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "The token lacks admin:keys (or the role)")))]
pub(crate) async fn list_keys(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
) -> Response {
    let call = Call::new(&admin, &caller, Area::Keys, "keys.list", "keys");
    let result = async {
        call.allow(Target::Area, false)?;
        json_of(&admin.oauth.keys.list())
    }
    .await;
    call.finish(result).await
}

/// Publishes a next key that signs after `keys.publish_ahead`.
#[utoipa::path(post, path = "/admin/v1/keys/rotate", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "{kid, activates_at}", body = Object),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "The token lacks admin:keys (or the role)"),
        (status = 409, description = "A next key is already published")))]
pub(crate) async fn rotate_keys(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
) -> Response {
    let call = Call::new(&admin, &caller, Area::Keys, "keys.rotate", "keys");
    let result = async {
        call.allow(Target::Area, false)?;
        let (kid, activates_at) = admin.oauth.keys.rotate().await?;
        Ok(json!({"kid": kid, "activates_at": activates_at}))
    }
    .await;
    call.finish(result).await
}

/// Replaces every key at once (a leaked key): every outstanding token stops verifying.
#[utoipa::path(post, path = "/admin/v1/keys/emergency-rotate", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "{kid, removed}", body = Object),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "The token lacks admin:keys (or the role)")))]
pub(crate) async fn emergency_rotate_keys(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
) -> Response {
    let call = Call::new(&admin, &caller, Area::Keys, "keys.emergency_rotate", "keys");
    let result = async {
        call.allow(Target::Area, false)?;
        let (kid, removed) = admin.oauth.keys.emergency_rotate().await?;
        Ok(json!({"kid": kid, "removed": removed}))
    }
    .await;
    call.finish(result).await
}

// ---- link keys ----

/// Which link key to show (all by default).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub(crate) struct LinkKeyQuery {
    /// Only this link key.
    #[serde(default)]
    name: Option<String>,
}

/// Each configured link key's state: key ids, ages, the rotation in progress (never a key).
#[utoipa::path(get, path = "/admin/v1/link-keys", tag = "admin", security(("admin_token" = [])),
    params(LinkKeyQuery),
    responses((status = 200, description = "{link_keys, store}", body = Object),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "The token lacks admin:link-keys (or the role)"),
        (status = 404, description = "No such link key is configured")))]
pub(crate) async fn link_keys_status(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
    Query(query): Query<LinkKeyQuery>,
) -> Response {
    let call = Call::new(
        &admin,
        &caller,
        Area::LinkKeys,
        "link_keys.status",
        "link_keys",
    );
    let result = async {
        call.allow(Target::Area, false)?;
        let (value, _) = crate::linkkeys::cli::status(
            &admin.link_keys,
            &*admin.link_key_store,
            query.name.as_deref(),
        )
        .await?;
        Ok(value)
    }
    .await;
    call.finish(result).await
}

/// Asks for a rotation of link key `name` now; the scheduler performs it.
#[utoipa::path(post, path = "/admin/v1/link-keys/{name}/rotate", tag = "admin",
    security(("admin_token" = [])), params(("name" = String, Path, description = "The link key")),
    responses((status = 200, description = "{name, requested, already_requested}", body = Object),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "The token lacks admin:link-keys (or the role)"),
        (status = 404, description = "No such link key is configured")))]
pub(crate) async fn rotate_link_key(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
    Path(name): Path<String>,
) -> Response {
    let call = Call::new(&admin, &caller, Area::LinkKeys, "link_keys.rotate", &name);
    let result = async {
        call.allow(Target::Area, false)?;
        let now = admin.oauth.clock.now();
        Ok(crate::linkkeys::cli::request_rotation(
            &admin.link_keys,
            &*admin.link_key_store,
            &admin.oauth.audit,
            &name,
            now,
            &call.actor,
        )
        .await?)
    }
    .await;
    call.finish(result).await
}

/// Whether to retire PREVIOUS even when the new key was never reported in use.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub(crate) struct Retire {
    #[serde(default)]
    force: bool,
}

/// Retires link key `name`'s PREVIOUS key now.
#[utoipa::path(post, path = "/admin/v1/link-keys/{name}/retire-previous", tag = "admin",
    security(("admin_token" = [])), request_body = Retire,
    params(("name" = String, Path, description = "The link key")),
    responses((status = 200, description = "{name, retired}", body = Object),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "The token lacks admin:link-keys (or the role)"),
        (status = 404, description = "No such link key is configured"),
        (status = 409, description = "No previous key, or the new key was never seen in use")))]
pub(crate) async fn retire_previous_link_key(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
    Path(name): Path<String>,
    AdminJson(body): AdminJson<Retire>,
) -> Response {
    let call = Call::new(
        &admin,
        &caller,
        Area::LinkKeys,
        "link_keys.retire_previous",
        &name,
    );
    let result = async {
        call.allow(Target::Area, false)?;
        let id = crate::linkkeys::cli::retire_previous(
            &admin.link_keys,
            &*admin.link_key_store,
            &admin.oauth.audit,
            &name,
            body.force,
            &call.actor,
        )
        .await?;
        Ok(json!({"name": name, "retired": id}))
    }
    .await;
    call.finish(result).await
}

// ---- broker ----

/// The broker's grants, source and cache (paths, versions, read times; never a value).
#[utoipa::path(get, path = "/admin/v1/broker", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "{grants, source, cache, database}", body = Object),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "The token lacks admin:broker (or the role)")))]
pub(crate) async fn broker_state(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
) -> Response {
    let call = Call::new(&admin, &caller, Area::Broker, "broker.state", "broker");
    let result = async {
        call.allow(Target::Area, false)?;
        Ok(admin.broker.state())
    }
    .await;
    call.finish(result).await
}

/// Whether to show a secret's values.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub(crate) struct ShowValues {
    /// Include the values (default: field names and version only).
    #[serde(default)]
    show_values: bool,
}

/// A secret's fields in the OpenAPI document: at least one, names of 1-128 `A-Z a-z 0-9 _ - .`,
/// string values.
fn secret_fields_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .min_properties(Some(1))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[A-Za-z0-9_.-]{1,128}$")),
        ))
        .additional_properties(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

/// A new version of a local secret: its fields (all of them; the version replaces the last).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct NewSecret {
    /// Field names to values (strings); at least one.
    #[schema(schema_with = secret_fields_schema)]
    fields: std::collections::BTreeMap<String, SecretString>,
}

/// The broker's local secrets (embedded defaults): paths, versions, write times; never a value.
#[utoipa::path(get, path = "/admin/v1/broker/secrets", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "{secrets: [{path, version, updated_at}]}", body = Object),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "The token lacks admin:broker (or the role)"),
        (status = 409, description = "The broker serves Vault KV v2: its secrets are managed there")))]
pub(crate) async fn list_broker_secrets(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
) -> Response {
    let call = Call::new(
        &admin,
        &caller,
        Area::Broker,
        "broker.secrets.list",
        "broker",
    );
    let result = async {
        call.allow(Target::Area, false)?;
        crate::broker::cli::local_only(admin.secrets_vault_mount.as_deref())?;
        Ok(crate::broker::cli::list(&admin.local_secrets).await?)
    }
    .await;
    call.finish(result).await
}

/// One local secret: field names and version (the values only with `show_values`).
#[utoipa::path(get, path = "/admin/v1/broker/secrets/{path}", tag = "admin",
    security(("admin_token" = [])),
    params(("path" = String, Path, description = "The secret's path (may contain /)",
        max_length = 512, pattern = "^(?:[A-Za-z0-9_-][A-Za-z0-9._-]*|\\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\\.\\.[A-Za-z0-9._-]+)(?:/(?:[A-Za-z0-9_-][A-Za-z0-9._-]*|\\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\\.\\.[A-Za-z0-9._-]+))*$"), ShowValues),
    responses((status = 200, description = "{path, version, updated_at, fields, values?}", body = Object),
        (status = 400, description = "Malformed path"),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "The token lacks admin:broker (or the role)"),
        (status = 404, description = "No secret at the path"),
        (status = 409, description = "The broker serves Vault KV v2: its secrets are managed there")))]
pub(crate) async fn show_broker_secret(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
    Path(path): Path<String>,
    Query(query): Query<ShowValues>,
) -> Response {
    let action = if query.show_values {
        "broker.secrets.show_values"
    } else {
        "broker.secrets.show"
    };
    let call = Call::new(&admin, &caller, Area::Broker, action, &path);
    let result = async {
        call.allow(Target::Area, false)?;
        crate::broker::cli::local_only(admin.secrets_vault_mount.as_deref())?;
        Ok(crate::broker::cli::get(&admin.local_secrets, &path, query.show_values).await?)
    }
    .await;
    call.finish(result).await
}

/// Writes a new version of a local secret (audited without its values). Servers serve it once
/// their cached version is due (`broker.cache_ttl`).
#[utoipa::path(put, path = "/admin/v1/broker/secrets/{path}", tag = "admin",
    security(("admin_token" = [])), request_body = NewSecret,
    params(("path" = String, Path, description = "The secret's path (may contain /)",
        max_length = 512, pattern = "^(?:[A-Za-z0-9_-][A-Za-z0-9._-]*|\\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\\.\\.[A-Za-z0-9._-]+)(?:/(?:[A-Za-z0-9_-][A-Za-z0-9._-]*|\\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\\.\\.[A-Za-z0-9._-]+))*$")),
    responses((status = 200, description = "{path, version, fields}", body = Object),
        (status = 400, description = "Malformed path or field name, or no field"),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "The token lacks admin:broker (or the role)"),
        (status = 409, description = "The broker serves Vault KV v2: its secrets are managed there")))]
pub(crate) async fn put_broker_secret(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
    Path(path): Path<String>,
    AdminJson(body): AdminJson<NewSecret>,
) -> Response {
    let call = Call::new(&admin, &caller, Area::Broker, "broker.secrets.put", &path);
    let result = async {
        call.allow(Target::Area, false)?;
        crate::broker::cli::local_only(admin.secrets_vault_mount.as_deref())?;
        let mut data = gha_auth::broker::SecretData::new();
        for (name, value) in body.fields {
            data.insert(name, value);
        }
        Ok(crate::broker::cli::put(
            &admin.local_secrets,
            &admin.oauth.audit,
            &path,
            &data,
            &call.actor,
        )
        .await?)
    }
    .await;
    call.finish(result).await
}

// ---- audit ----

/// A page of the audit log: forward from `after`, or the tail (newest first) with `tail`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub(crate) struct Page {
    /// Events after this sequence number (default 0: from the first).
    #[serde(default)]
    after: i64,
    /// Most events (default 100, at most 1000).
    #[serde(default)]
    limit: Option<i64>,
    /// The newest events instead, newest first (before `before` when given); `kind` and `actor`
    /// filter them.
    #[serde(default)]
    tail: bool,
    /// With `tail`: only events before this sequence number (the next page back).
    #[serde(default)]
    before: Option<i64>,
    /// With `tail`: only kinds starting with this (`link_keys.`, `admin.api_call`).
    #[serde(default)]
    kind: Option<String>,
    /// With `tail`: only this actor (`user:<sub>`, `client:<id>`, `scheduler`, …).
    #[serde(default)]
    actor: Option<String>,
}

fn event_json(r: crate::audit::AuditRow) -> Value {
    json!({"seq": r.seq, "at": r.at, "kind": r.kind, "actor": r.actor,
        "subject": r.subject, "outcome": r.outcome,
        "detail": serde_json::from_str::<Value>(&r.detail).unwrap_or(Value::Null),
        "hash": r.hash})
}

/// A page of audit events in chain order, or the tail newest first.
#[utoipa::path(get, path = "/admin/v1/audit", tag = "admin", security(("admin_token" = [])),
    params(Page),
    responses((status = 200, description = "{events, next_after}: next_after is absent on the last page; with tail, {events, next_before} newest first", body = Object),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "The token lacks admin:audit (or the role)")))]
pub(crate) async fn audit_events(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
    Query(page): Query<Page>,
) -> Response {
    let call = Call::new(&admin, &caller, Area::Audit, "audit.list", "audit");
    let result = async {
        call.allow(Target::Area, false)?;
        let limit = page.limit.unwrap_or(100).clamp(1, 1000);
        let store = &admin.oauth.store;
        let rows = if page.tail {
            let before = page.before.unwrap_or(i64::MAX);
            let (kind, actor) = (page.kind.as_deref(), page.actor.as_deref());
            store
                .audit_rows_before(before, kind.unwrap_or(""), actor.unwrap_or(""), limit)
                .await?
        } else {
            store.audit_rows_after(page.after, limit).await?
        };
        let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) == limit;
        let next = rows.last().map(|r| r.seq).filter(|_| full);
        let events: Vec<Value> = rows.into_iter().map(event_json).collect();
        if page.tail {
            return Ok(json!({"events": events, "next_before": next}));
        }
        Ok(json!({"events": events, "next_after": next}))
    }
    .await;
    call.finish(result).await
}

/// Recomputes the audit hash chain.
#[utoipa::path(get, path = "/admin/v1/audit/verify", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "{rows, problems, head_seq, head_hash}: problems is empty when the chain is intact", body = Object),
        (status = 401, description = "No or invalid admin token"),
        (status = 403, description = "The token lacks admin:audit (or the role)")))]
pub(crate) async fn verify_audit(
    State(admin): State<Arc<Admin>>,
    caller: Caller<AdminApi>,
) -> Response {
    let call = Call::new(&admin, &caller, Area::Audit, "audit.verify", "audit");
    let result = async {
        call.allow(Target::Area, false)?;
        json_of(&crate::audit::verify(&admin.oauth.store).await?)
    }
    .await;
    call.finish(result).await
}
