//! The command implementations.

use std::fmt::Write as _;
use std::process::ExitCode;

use gha_auth::SystemClock;
use serde_json::json;

use super::{AddClient, AuditCommand, ClientsCommand, Command, KeysCommand, Output};
use crate::app::{Services, build_app};
use crate::atrest::MasterKey;
use crate::clients::{Client, ClientRegistration, GrantType};
use crate::config::Config;
use crate::keys::load_import_pem;

/// `gha-auth serve`.
pub(super) async fn serve(config: Config, out: &Output) -> ExitCode {
    let app = match build_app(config, SystemClock::shared()).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return out.failure(&e.to_string());
        }
    };
    match app.serve(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => out.failure(&e.to_string()),
    }
}

/// Completes on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// `gha-auth config check`: every problem, or OK. Reads but never creates anything.
pub(super) fn config_check(config: &Config, out: &Output) -> ExitCode {
    let mut problems: Vec<String> = config.problems().iter().map(ToString::to_string).collect();
    if let Some(path) = &config.keys.import_pem
        && let Err(e) = load_import_pem(path, config.dev_mode)
    {
        problems.push(format!("keys.import_pem: {e}"));
    }
    let master = config.master_key_path();
    if master.exists()
        && let Err(e) = MasterKey::load(&master)
    {
        problems.push(format!("keys.master_key_file: {e}"));
    }
    if problems.is_empty() {
        out.print(
            &json!({"ok": true, "store": crate::config::redact_url(&config.store_url())}),
            "OK: configuration is valid",
        );
        ExitCode::SUCCESS
    } else {
        let mut text = String::from("configuration problems:\n");
        for problem in &problems {
            let _ = writeln!(text, "  - {problem}");
        }
        out.print(&json!({"ok": false, "problems": problems}), &text);
        ExitCode::FAILURE
    }
}

/// Admin commands against the store.
pub(super) async fn run(command: &Command, config: Config, out: &Output) -> ExitCode {
    let actor = format!(
        "cli:{}",
        std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "unknown".into())
    );
    let services = match Services::open(&config, SystemClock::shared(), &actor).await {
        Ok(services) => services,
        Err(e) => return out.failure(&e.to_string()),
    };
    let result = match command {
        Command::Clients(command) => clients(command, &services, &actor, out).await,
        Command::Users(command) => {
            crate::users::run_cli(command, &config, &services, &actor, out).await
        }
        Command::Keys(command) => keys(command, &services, out).await,
        Command::LinkKeys(command) => {
            crate::linkkeys::run_cli(command, &config, &services, &actor, out).await
        }
        Command::Audit(AuditCommand::Verify) => audit_verify(&services, out).await,
        Command::Secrets(command) => {
            crate::broker::run_cli(command, &config, &services, &actor, out).await
        }
        _ => Err("not an admin command".to_owned()),
    };
    services.store.close().await;
    match result {
        Ok(code) => code,
        Err(message) => out.failure(&message),
    }
}

async fn clients(
    command: &ClientsCommand,
    services: &Services,
    actor: &str,
    out: &Output,
) -> Result<ExitCode, String> {
    let registry = &services.clients;
    match command {
        ClientsCommand::Add(args) => {
            let registration = registration(args)?;
            let (client, secret) = registry
                .register(registration, actor)
                .await
                .map_err(|e| e.to_string())?;
            let mut text = format!("Created client {}.\n", client.id);
            match &secret {
                Some(secret) => {
                    let _ = write!(
                        text,
                        "client_secret: {}\nStore this secret now: it is shown only once and \
                         cannot be recovered.",
                        secret.expose()
                    );
                }
                None => text.push_str("No secret: the client authenticates without one."),
            }
            out.print(
                &json!({"client": client, "client_secret": secret.as_ref().map(|s| s.expose())}),
                &text,
            );
        }
        ClientsCommand::List => {
            let clients = registry.list().await.map_err(|e| e.to_string())?;
            let mut text = String::new();
            for c in &clients {
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
            out.print(&clients, &text);
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
                &format!(
                    "New secret for {id}: {}\nThe previous secret no longer works and every token \
                     issued to {id} so far is revoked. Store this secret now: it is shown only once.",
                    secret.expose()
                ),
            );
        }
        ClientsCommand::RotateSecret { id, grace, .. } => {
            let secret = registry
                .rotate_secret(id, grace.as_delta(), actor)
                .await
                .map_err(|e| e.to_string())?;
            out.print(
                &json!({"client_id": id, "client_secret": secret.expose(), "previous_valid_for_secs": grace.as_secs()}),
                &format!(
                    "New secret for {id}: {}\nThe previous secret stays valid for {grace}. Store \
                     this secret now: it is shown only once.",
                    secret.expose()
                ),
            );
        }
        ClientsCommand::LegacyKey(command) => {
            return crate::legacy_keys::run_cli(command, services, actor, out).await;
        }
        ClientsCommand::Disable { id } => {
            registry
                .disable(id, actor)
                .await
                .map_err(|e| e.to_string())?;
            out.print(
                &json!({"client_id": id, "disabled": true}),
                &format!("Disabled {id}."),
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

fn describe(c: &Client) -> String {
    let grants: Vec<&str> = c.grants.iter().map(|g| g.as_str()).collect();
    let mut text = String::new();
    let _ = writeln!(text, "client_id:    {}", c.id);
    let _ = writeln!(text, "tenant:       {}", c.tenant.as_deref().unwrap_or("-"));
    let _ = writeln!(text, "grants:       {}", grants.join(" "));
    let _ = writeln!(text, "scopes:       {}", c.scopes.join(" "));
    let _ = writeln!(text, "audiences:    {}", c.audiences.join(" "));
    let _ = writeln!(text, "auth method:  {:?}", c.auth_method);
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

async fn keys(
    command: &KeysCommand,
    services: &Services,
    out: &Output,
) -> Result<ExitCode, String> {
    let manager = &services.keys;
    match command {
        KeysCommand::List => {
            let keys = manager.list();
            let mut text = String::new();
            for k in &keys {
                let _ = writeln!(
                    text,
                    "{}\t{}\t{:?}\tactivates {}{}",
                    k.kid,
                    k.alg,
                    k.state,
                    k.activates_at.to_rfc3339(),
                    k.remove_at
                        .map(|t| format!("\tremoved {}", t.to_rfc3339()))
                        .unwrap_or_default()
                );
            }
            out.print(&keys, &text);
        }
        KeysCommand::Rotate { emergency: false } => {
            let (kid, activates_at) = manager.rotate().await.map_err(|e| e.to_string())?;
            out.print(
                &json!({"kid": kid, "activates_at": activates_at}),
                &format!(
                    "Published next key {kid}; it starts signing at {} (running servers pick it \
                     up within keys.refresh_interval).",
                    activates_at.to_rfc3339()
                ),
            );
        }
        KeysCommand::Rotate { emergency: true } => {
            let (kid, removed) = manager
                .emergency_rotate()
                .await
                .map_err(|e| e.to_string())?;
            out.print(
                &json!({"kid": kid, "removed": removed}),
                &format!(
                    "Emergency rotation: {kid} signs now; removed {}. Tokens signed by the removed \
                     keys stop verifying once verifiers refetch the JWKS.",
                    removed.join(", ")
                ),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn audit_verify(services: &Services, out: &Output) -> Result<ExitCode, String> {
    let report = crate::audit::verify(&services.store)
        .await
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    if report.ok() {
        let _ = write!(
            text,
            "OK: {} audit events, chain intact (head {} {})",
            report.rows,
            report.head_seq.unwrap_or(0),
            report.head_hash.as_deref().unwrap_or("-")
        );
    } else {
        let _ = writeln!(
            text,
            "BROKEN: the audit chain has {} problem(s):",
            report.problems.len()
        );
        for problem in &report.problems {
            let _ = writeln!(text, "  - {problem}");
        }
    }
    out.print(&report, &text);
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
