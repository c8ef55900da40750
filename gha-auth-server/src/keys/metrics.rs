//! The signing keys' series: rotations and transitions counted as they happen, and key-set
//! freshness computed at scrape time from the injected clock.

use chrono::{DateTime, Utc};

use super::KeyManager;

/// Series: signing keys per state.
const KEYS_METRIC: &str = "gha_auth_signing_keys";
/// Series: age of the newest signing key in each state.
const KEY_AGE_METRIC: &str = "gha_auth_signing_key_age_seconds";
/// Series: time since the key set was last loaded.
const JWKS_AGE_METRIC: &str = "gha_auth_jwks_age_seconds";

/// HELP text of the keys' series.
pub(crate) fn describe_metrics() {
    metrics::describe_gauge!(
        KEY_AGE_METRIC,
        metrics::Unit::Seconds,
        "Age of the newest signing key in each state"
    );
    metrics::describe_gauge!(KEYS_METRIC, "Signing keys per state");
    metrics::describe_gauge!(
        JWKS_AGE_METRIC,
        metrics::Unit::Seconds,
        "Time since the key set was last loaded"
    );
    super::manager::describe_metrics();
}

/// Sets the key-set gauges as of `now` (called at scrape time).
pub(crate) fn update_gauges(keys: &KeyManager, now: DateTime<Utc>) {
    let list = keys.list();
    for wanted in ["next", "active", "retired"] {
        let matching: Vec<_> = list
            .iter()
            .filter(|k| key_state_name(k.state) == wanted)
            .collect();
        metrics::gauge!(KEYS_METRIC, "state" => wanted).set(matching.len() as f64);
        // `list` is newest first, so the first match is the newest key in this state.
        let age = matching
            .first()
            .map_or(0.0, |k| (now - k.created_at).num_seconds().max(0) as f64);
        metrics::gauge!(KEY_AGE_METRIC, "state" => wanted).set(age);
    }
    let loaded = keys.snapshot().loaded_at();
    metrics::gauge!(JWKS_AGE_METRIC).set((now - loaded).num_seconds().max(0) as f64);
}

fn key_state_name(state: gha_auth::keys::KeyState) -> &'static str {
    match state {
        gha_auth::keys::KeyState::Next => "next",
        gha_auth::keys::KeyState::Active => "active",
        gha_auth::keys::KeyState::Retired => "retired",
    }
}
