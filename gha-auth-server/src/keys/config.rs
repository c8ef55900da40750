//! `[keys]`: signing keys and their rotation schedule.

use std::path::PathBuf;

use serde::Deserialize;

use crate::settings::{Duration, Problems};

/// Where the signing-key set is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum KeyBackend {
    /// Vault KV v2 when `[vault] address` is set, else local (default).
    Auto,
    /// Vault KV v2 (`[vault]` must be configured); replicas share keys and rotate with
    /// check-and-set.
    Vault,
    /// Encrypted with the master key, in the store (which is in the data directory on embedded
    /// defaults).
    Local,
}

/// Signing algorithm of newly generated keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub enum SigningAlgorithm {
    /// ECDSA P-256 with SHA-256 (default: the customer's .NET APIs verify it).
    ES256,
    /// Ed25519.
    EdDSA,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
}

/// Signing keys and their rotation schedule (see `docs/architecture.md`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct KeysConfig {
    /// Where the key set lives.
    pub backend: KeyBackend,
    /// Algorithm of generated keys.
    pub algorithm: SigningAlgorithm,
    /// How long a key signs before the next one takes over.
    pub rotation_period: Duration,
    /// How long the next key is published before it signs; at least `jwks_max_age`.
    pub publish_ahead: Duration,
    /// `Cache-Control: max-age` of the JWKS.
    pub jwks_max_age: Duration,
    /// Clock skew allowed to verifiers; retired keys stay published this much longer.
    pub leeway: Duration,
    /// How often the scheduler re-reads the shared key state (other replicas, `keys rotate`).
    pub refresh_interval: Duration,
    /// Check `publish_ahead` against the JWKS refresh bounds of the project's middleware (on by
    /// default). Turn off only when every verifier refreshes faster (an edge proxy fed the
    /// keys directly), e.g. for a compressed test schedule.
    pub check_verifier_bounds: bool,
    /// Master key file (AES-256-GCM key for keys and the pepper at rest). Unset:
    /// `<data_dir>/master.key`, generated on first start with mode 0600.
    pub master_key_file: Option<PathBuf>,
    /// A PKCS#8 PEM private key to use as the first signing key when the store has none yet.
    /// The development keys in `keys-dev/` are refused unless `dev_mode` is on.
    pub import_pem: Option<PathBuf>,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            backend: KeyBackend::Auto,
            algorithm: SigningAlgorithm::ES256,
            rotation_period: Duration::days(30),
            publish_ahead: Duration::hours(1),
            jwks_max_age: Duration::minutes(15),
            leeway: Duration::seconds(60),
            refresh_interval: Duration::seconds(30),
            check_verifier_bounds: true,
            master_key_file: None,
            import_pem: None,
        }
    }
}

/// Slack on top of the middleware's bounds: its fetch timeout and the wait of a request for a
/// fetch in flight.
const VERIFIER_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

impl KeysConfig {
    /// Reports what is wrong with `[keys]` on its own (the checks against `[tokens]` are made
    /// where the sections meet, in `config/`).
    pub fn check(&self, out: &mut Problems) {
        let positive = [
            ("keys.rotation_period", self.rotation_period),
            ("keys.publish_ahead", self.publish_ahead),
            ("keys.jwks_max_age", self.jwks_max_age),
            ("keys.refresh_interval", self.refresh_interval),
        ];
        for (key, value) in positive {
            if value <= Duration::seconds(0) {
                out.push(key, "must be greater than zero");
            }
        }
        if self.publish_ahead < self.jwks_max_age {
            out.push(
                "keys.publish_ahead",
                format!(
                    "({}) must be at least keys.jwks_max_age ({}): verifiers caching the JWKS \
                     must see the next key before it signs",
                    self.publish_ahead, self.jwks_max_age
                ),
            );
        }
        if self.publish_ahead >= self.rotation_period {
            out.push(
                "keys.publish_ahead",
                format!(
                    "({}) must be shorter than keys.rotation_period ({})",
                    self.publish_ahead, self.rotation_period
                ),
            );
        }
        if self.check_verifier_bounds {
            // The middleware sees a new key at most its refresh interval plus its unknown-kid
            // refetch wait after a replica publishes it; a replica publishes it at most
            // refresh_interval after another generated it.
            let needed = self.refresh_interval.as_delta()
                + gha_auth::keys::verifier_key_lag(self.jwks_max_age.as_delta())
                + VERIFIER_MARGIN;
            if self.publish_ahead.as_delta() < needed {
                out.push(
                    "keys.publish_ahead",
                    format!(
                        "({}) must be at least {}: keys.refresh_interval ({}) + the middleware's \
                         JWKS refresh interval for keys.jwks_max_age ({}, held within {}s..{}s) \
                         + its wait between refetches for an unknown kid ({}s) + {}s margin; \
                         with less, APIs refuse tokens signed by a new key they have not \
                         fetched yet",
                        self.publish_ahead,
                        Duration::from(needed),
                        self.refresh_interval,
                        self.jwks_max_age,
                        gha_auth::keys::VERIFIER_MIN_REFRESH_INTERVAL.as_secs(),
                        gha_auth::keys::VERIFIER_MAX_REFRESH_INTERVAL.as_secs(),
                        gha_auth::keys::VERIFIER_UNKNOWN_KID_COOLDOWN.as_secs(),
                        VERIFIER_MARGIN.num_seconds(),
                    ),
                );
            }
        }
        if self.leeway > Duration::minutes(5) {
            out.push("keys.leeway", "must be at most 5m");
        }
        // A replica learns of a key another one generated within refresh_interval; verifiers
        // that cached its JWKS just before must still hold the key when it starts signing.
        if self.refresh_interval.as_delta() + self.jwks_max_age.as_delta()
            > self.publish_ahead.as_delta()
        {
            out.push(
                "keys.refresh_interval",
                format!(
                    "({}) plus keys.jwks_max_age ({}) must not exceed keys.publish_ahead ({}), \
                     so every replica publishes a new key in time",
                    self.refresh_interval, self.jwks_max_age, self.publish_ahead
                ),
            );
        }
    }
}

impl SigningAlgorithm {
    /// The core library's algorithm.
    pub fn algorithm(self) -> gha_auth::keys::Algorithm {
        use gha_auth::keys::Algorithm;
        match self {
            SigningAlgorithm::ES256 => Algorithm::ES256,
            SigningAlgorithm::EdDSA => Algorithm::EdDSA,
            SigningAlgorithm::RS256 => Algorithm::RS256,
        }
    }
}
