//! HELP text of the series the Vault layer records, for the service's recorder.

/// Describes every `gha_auth_vault_*` series this layer records, so the Prometheus text has a
/// `# HELP` line for each. Call it once after installing the recorder (descriptions given
/// before a recorder exists are lost).
pub fn describe_metrics() {
    metrics::describe_counter!(
        "gha_auth_vault_logins_total",
        "Vault logins by auth method and result (ok, error)"
    );
    metrics::describe_counter!(
        "gha_auth_vault_token_renewals_total",
        "Vault token renewals by result (ok, error)"
    );
    metrics::describe_gauge!(
        "gha_auth_vault_consecutive_failures",
        "Failed Vault logins or renewals in a row (0 after a success)"
    );
    metrics::describe_gauge!(
        "gha_auth_vault_token_expiry_timestamp_seconds",
        metrics::Unit::Seconds,
        "Unix time at which the current Vault token expires"
    );
    metrics::describe_counter!(
        "gha_auth_vault_db_credentials_issued_total",
        "Dynamic database credentials issued, by role"
    );
    metrics::describe_counter!(
        "gha_auth_vault_db_credential_failures_total",
        "Failed steps of the database credential loops, by role"
    );
    metrics::describe_counter!(
        "gha_auth_vault_lease_renewals_total",
        "Database credential lease renewals, by role"
    );
    metrics::describe_counter!(
        "gha_auth_vault_static_rotations_seen_total",
        "Static-role database passwords seen rotated, by role"
    );
}
