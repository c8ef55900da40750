//! `gha-auth clients add|list|show|rotate-secret|disable|legacy-key`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{AuthMethod, Client, ClientRegistration, ClientRegistry, GrantType};
use crate::audit::AuditLog;
use crate::settings::Duration;
use crate::store::Store;
use crate::terminal::Output;

/// `gha-auth clients …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum ClientsCommand {
    /// Register a client; prints its secret once.
    Add(AddClient),
    /// List clients.
    List,
    /// Show one client.
    Show {
        /// Client id.
        id: String,
    },
    /// Issue a new secret; the old one stays valid for the grace period. With --emergency (a
    /// leaked secret), the old one stops at once and every token issued so far is revoked.
    RotateSecret {
        /// Client id.
        id: String,
        /// How long the previous secret stays valid.
        #[arg(long, default_value = "24h", conflicts_with = "emergency")]
        grace: Duration,
        /// The secret leaked: no grace, and revoke the client's outstanding tokens.
        #[arg(long)]
        emergency: bool,
    },
    /// Disable a client: it can no longer authenticate, and the tokens it holds are revoked.
    Disable {
        /// Client id.
        id: String,
    },
    /// Legacy static API keys a client may exchange for short-lived tokens (token exchange).
    #[command(subcommand)]
    LegacyKey(super::legacy_keys::LegacyKeyCommand),
}

/// `gha-auth clients add`.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct AddClient {
    /// Client id: 1-128 characters of A-Z a-z 0-9 . _ ~ -
    pub id: String,
    /// Allowed grant (client_credentials, password, refresh_token, token-exchange); repeatable.
    /// Optional for a client that is only a resource server.
    #[arg(long = "grant", required_unless_present = "resource_servers", num_args = 1..)]
    pub grants: Vec<String>,
    /// Allowed scope; repeatable.
    #[arg(long = "scope", num_args = 1..)]
    pub scopes: Vec<String>,
    /// Allowed audience; repeatable. Optional for a client that is only a resource server.
    #[arg(long = "audience", required_unless_present = "resource_servers", num_args = 1..)]
    pub audiences: Vec<String>,
    /// Register the client as the resource server (API) for this audience: it may introspect
    /// tokens addressed to it (RFC 7662); repeatable.
    #[arg(long = "resource-server", value_name = "AUDIENCE", num_args = 1..)]
    pub resource_servers: Vec<String>,
    /// Tenant (GHA customer).
    #[arg(long)]
    pub tenant: Option<String>,
    /// First-party client (may use the password grant).
    #[arg(long)]
    pub first_party: bool,
    /// Public client: holds no secret.
    #[arg(long)]
    pub public: bool,
    /// Public JWK file for private_key_jwt (no secret is issued then).
    #[arg(long, value_name = "FILE")]
    pub jwk: Option<PathBuf>,
    /// Access-token lifetime (default: tokens.default_lifetime).
    #[arg(long, value_name = "DURATION")]
    pub token_lifetime: Option<Duration>,
}

/// Runs a `clients` command on `registry` (legacy keys live in `store`).
pub(crate) async fn run(
    command: &ClientsCommand,
    registry: &ClientRegistry,
    store: &Store,
    audit: &AuditLog,
    actor: &str,
    out: &Output,
) -> Result<ExitCode, String> {
    match command {
        ClientsCommand::Add(args) => {
            let registration = registration(args)?;
            let (client, secret) = registry
                .register(registration, actor)
                .await
                .map_err(|e| e.to_string())?;
            let secret = secret.as_ref().map(|s| s.expose());
            out.print(
                &json!({"client": client, "client_secret": secret}),
                &created_text(&client, secret),
            );
        }
        ClientsCommand::List => {
            let clients = registry.list().await.map_err(|e| e.to_string())?;
            out.print(&clients, &list_text(&clients));
        }
        ClientsCommand::Show { id } => {
            let client = registry.get(id).await.map_err(|e| e.to_string())?;
            out.print(&client, &describe(&client));
        }
        ClientsCommand::RotateSecret {
            id,
            emergency: true,
            ..
        } => {
            let secret = registry
                .emergency_rotate_secret(id, actor)
                .await
                .map_err(|e| e.to_string())?;
            out.print(
                &json!({"client_id": id, "client_secret": secret.expose(), "previous_valid_for_secs": 0, "tokens_revoked": true}),
                &rotated_text(id, secret.expose(), None),
            );
        }
        ClientsCommand::RotateSecret { id, grace, .. } => {
            let secret = registry
                .rotate_secret(id, grace.as_delta(), actor)
                .await
                .map_err(|e| e.to_string())?;
            out.print(
                &json!({"client_id": id, "client_secret": secret.expose(), "previous_valid_for_secs": grace.as_secs()}),
                &rotated_text(id, secret.expose(), Some(grace)),
            );
        }
        ClientsCommand::LegacyKey(command) => {
            return super::legacy_keys::run_cli(command, registry, store, audit, actor, out).await;
        }
        ClientsCommand::Disable { id } => {
            registry
                .disable(id, actor)
                .await
                .map_err(|e| e.to_string())?;
            out.print(
                &json!({"client_id": id, "disabled": true}),
                &disabled_text(id),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn registration(args: &AddClient) -> Result<ClientRegistration, String> {
    let mut registration = ClientRegistration::new(args.id.clone())
        .first_party(args.first_party)
        .public(args.public);
    for grant in &args.grants {
        registration = registration.grant(grant.parse::<GrantType>().map_err(|e| e.to_string())?);
    }
    for scope in &args.scopes {
        registration = registration.scope(scope.clone());
    }
    for audience in &args.audiences {
        registration = registration.audience(audience.clone());
    }
    for audience in &args.resource_servers {
        registration = registration.resource_server(audience.clone());
    }
    if let Some(tenant) = &args.tenant {
        registration = registration.tenant(tenant.clone());
    }
    if let Some(lifetime) = args.token_lifetime {
        registration = registration.token_lifetime(lifetime.as_delta());
    }
    if let Some(path) = &args.jwk {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let jwk = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
        registration = registration.jwk(jwk);
    }
    Ok(registration)
}

/// The text of `clients add`: the secret, shown once, or how the client authenticates.
pub(crate) fn created_text(client: &Client, secret: Option<&str>) -> String {
    let mut text = format!("Created client {}.\n", client.id);
    match secret {
        Some(secret) => {
            let _ = write!(
                text,
                "client_secret: {secret}\nStore this secret now: it is shown only once and \
                 cannot be recovered."
            );
        }
        None if client.auth_method == AuthMethod::PrivateKeyJwt => text.push_str(
            "No secret: the client authenticates with an assertion signed by its private \
             key (private_key_jwt), verified with the registered public key.",
        ),
        None => text.push_str("No secret: a public client authenticates with its id alone."),
    }
    text
}

/// The text of `clients rotate-secret`: with the grace of the previous secret, or none (an
/// emergency rotation).
pub(crate) fn rotated_text(id: &str, secret: &str, grace: Option<&Duration>) -> String {
    match grace {
        Some(grace) => format!(
            "New secret for {id}: {secret}\nThe previous secret stays valid for {grace}. Store \
             this secret now: it is shown only once."
        ),
        None => format!(
            "New secret for {id}: {secret}\nThe previous secret no longer works and every token \
             issued to {id} so far is revoked. Store this secret now: it is shown only once."
        ),
    }
}

/// The text of `clients disable`.
pub(crate) fn disabled_text(id: &str) -> String {
    format!("Disabled {id}.")
}

/// The text of `clients list`.
pub(crate) fn list_text(clients: &[Client]) -> String {
    let mut text = String::new();
    for c in clients {
        let grants: Vec<&str> = c.grants.iter().map(|g| g.as_str()).collect();
        let _ = writeln!(
            text,
            "{}\t{}\t{}\t{}{}",
            c.id,
            c.tenant.as_deref().unwrap_or("-"),
            grants.join(","),
            c.audiences.join(","),
            if c.disabled { "\t(disabled)" } else { "" }
        );
    }
    if clients.is_empty() {
        text.push_str("no clients");
    }
    text
}

/// The text of `clients show`.
pub(crate) fn describe(c: &Client) -> String {
    let grants: Vec<&str> = c.grants.iter().map(|g| g.as_str()).collect();
    let mut text = String::new();
    let _ = writeln!(text, "client_id:    {}", c.id);
    let _ = writeln!(text, "tenant:       {}", c.tenant.as_deref().unwrap_or("-"));
    let _ = writeln!(text, "grants:       {}", grants.join(" "));
    let _ = writeln!(text, "scopes:       {}", c.scopes.join(" "));
    let _ = writeln!(text, "audiences:    {}", c.audiences.join(" "));
    if !c.resource_audiences.is_empty() {
        let _ = writeln!(
            text,
            "resource server for: {}",
            c.resource_audiences.join(" ")
        );
    }
    let _ = writeln!(text, "auth method:  {}", c.auth_method.as_str());
    let lifetime = c
        .token_lifetime_secs
        .map_or_else(|| "default".to_owned(), |s| format!("{s}s"));
    let _ = writeln!(text, "lifetime:     {lifetime}");
    let _ = writeln!(text, "first-party:  {}", c.first_party);
    let _ = writeln!(text, "public:       {}", c.public);
    let _ = writeln!(text, "disabled:     {}", c.disabled);
    if let Some(until) = c.previous_secret_valid_until {
        let until = chrono::DateTime::from_timestamp(until, 0).unwrap_or_default();
        let _ = writeln!(text, "old secret:   valid until {}", until.to_rfc3339());
    }
    let _ = writeln!(text, "created:      {}", c.created_at.to_rfc3339());
    text
}
