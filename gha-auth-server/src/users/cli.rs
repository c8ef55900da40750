//! `gha-auth users add|set-password|disable|list`. Passwords are read from standard input (one
//! line) or, on a terminal, from a prompt without echo; never from the command line.

use std::process::ExitCode;

use clap::Subcommand;
use gha_auth::SecretString;
use serde_json::json;

use super::{User, Users};
use crate::terminal::{Output, read_secret};

/// `gha-auth users …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum UsersCommand {
    /// Create a user; the password is read from standard input or a prompt.
    Add {
        /// Login name, unique within the tenant.
        username: String,
        /// Tenant (GHA customer); none by default.
        #[arg(long, default_value = "")]
        tenant: String,
        /// Role, copied into access tokens; repeatable.
        #[arg(long = "role", num_args = 1..)]
        roles: Vec<String>,
    },
    /// Replace a user's password (read from standard input or a prompt).
    SetPassword {
        /// Login name.
        username: String,
        /// Tenant.
        #[arg(long, default_value = "")]
        tenant: String,
    },
    /// Disable a user: no more logins, and every refresh token they hold is revoked.
    Disable {
        /// Login name.
        username: String,
        /// Tenant.
        #[arg(long, default_value = "")]
        tenant: String,
    },
    /// List users.
    List {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// Reads a password: a prompt without echo on a terminal, else the first line of stdin.
fn read_password(confirm: bool) -> Result<SecretString, String> {
    read_secret("Password: ", confirm)
}

/// One user's line (`users add`, `users list`).
pub(crate) fn user_text(user: &User) -> String {
    format!(
        "{}/{}  id={}  roles={}  {}",
        user.tenant,
        user.username,
        user.id,
        if user.roles.is_empty() {
            "-".to_owned()
        } else {
            user.roles.join(",")
        },
        if user.disabled { "disabled" } else { "enabled" }
    )
}

/// The text of `users list`.
pub(crate) fn list_text(list: &[User]) -> String {
    if list.is_empty() {
        "no users".to_owned()
    } else {
        list.iter().map(user_text).collect::<Vec<_>>().join("\n")
    }
}

/// Runs a `users` command on `users`.
pub(crate) async fn run(
    command: &UsersCommand,
    users: &Users,
    actor: &str,
    out: &Output,
) -> Result<ExitCode, String> {
    match command {
        UsersCommand::Add {
            username,
            tenant,
            roles,
        } => {
            let password = read_password(true)?;
            let user = users
                .add(tenant, username, roles, &password, actor)
                .await
                .map_err(|e| e.to_string())?;
            out.print(&user, &format!("created {}", user_text(&user)));
        }
        UsersCommand::SetPassword { username, tenant } => {
            let password = read_password(true)?;
            users
                .set_password(tenant, username, &password, actor)
                .await
                .map_err(|e| e.to_string())?;
            out.print(
                &json!({"tenant": tenant, "username": username, "password_set": true}),
                &format!("password set for {tenant}/{username}"),
            );
        }
        UsersCommand::Disable { username, tenant } => {
            users
                .disable(tenant, username, actor)
                .await
                .map_err(|e| e.to_string())?;
            out.print(
                &json!({"tenant": tenant, "username": username, "disabled": true}),
                &format!("disabled {tenant}/{username}"),
            );
        }
        UsersCommand::List { tenant } => {
            let list = users
                .list(tenant.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            out.print(&list, &list_text(&list));
        }
    }
    Ok(ExitCode::SUCCESS)
}
