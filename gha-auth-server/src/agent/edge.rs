//! `[edge_keys]`: the authority's published ES256 public keys as SubjectPublicKeyInfo PEM files in
//! three fixed slots (`next.pem`, `active.pem`, `retired.pem`) for HAProxy's `jwt_verify`, which
//! reads key files only when it starts or reloads.
//!
//! Every `interval` the agent reads `GET {authority}/v1/keys` (public: no client, no token),
//! assigns the slots ([`super::slots::assign`]), writes each slot file atomically (mode 0644) only
//! when its content changes, and then runs the reload command once. An empty slot is an empty
//! file: HAProxy 2.6 starts with it and verifies nothing against it. A failed read keeps the
//! files as they are; a failed reload is retried at every poll until it succeeds. Why the states
//! come from `/v1/keys` and not the JWKS: `docs/decisions/0006-edge-key-slots.md`.

use std::path::PathBuf;
use std::time::Duration;

use gha_auth::keys::VerifyingKey;
use gha_auth::outbound::{HttpClientBuilder, UrlPolicy, join_path};
use url::Url;

use super::config::{AgentConfig, AgentConfigError, EdgeKeysConfig};
use super::slots::{self, SlotKey, Slots};
use super::write::{PUBLIC_FILE_MODE, write_if_changed_with_mode};
use super::{AgentError, reload};
use crate::wellknown::{KEY_STATES_PATH, KeyStates};

/// The slot files, in the order next, active, retired.
pub(crate) const SLOT_FILES: [&str; 3] = ["next.pem", "active.pem", "retired.pem"];

/// Largest `/v1/keys` body read (the authority publishes a handful of keys).
const MAX_BODY: usize = 256 * 1024;

/// Why a poll of the key states failed (the slot files are kept).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum PollError {
    /// The request failed.
    #[error("cannot read the key states: {0}")]
    Request(String),
    /// The authority answered with another status.
    #[error("the key states answered HTTP {0}")]
    Status(u16),
    /// The body is not the key states.
    #[error("the key states are unreadable: {0}")]
    Body(String),
}

/// The edge key slots of one agent.
pub(crate) struct EdgeKeys {
    url: Url,
    http: reqwest::Client,
    paths: [PathBuf; 3],
    reload: Vec<String>,
    reload_timeout: Duration,
    interval: Duration,
    /// The slots last written (for the log: which key moved where).
    written: Slots,
    /// A change was written and the reload command has not succeeded since.
    reload_due: bool,
}

impl EdgeKeys {
    /// The poller for `edge`, reading the keys of `config.authority`.
    pub(crate) fn new(config: &AgentConfig, edge: &EdgeKeysConfig) -> Result<Self, AgentError> {
        let invalid = |m: String| AgentError::Config(AgentConfigError::Invalid(m));
        let base = UrlPolicy::new()
            .allow_plain_http(config.danger_accept_plain_http)
            .check(&config.authority)
            .map_err(|e| invalid(format!("authority: {e}")))?;
        let mut builder = HttpClientBuilder::new("gha-auth-agent").timeout(config.timeout.as_std());
        if let Some(ca_file) = &edge.ca_file {
            builder = builder
                .ca_file(ca_file)
                .map_err(|e| invalid(format!("[edge_keys] {e}")))?;
        }
        let http = builder
            .build()
            .map_err(|e| invalid(format!("[edge_keys] {e}")))?;
        Ok(Self {
            url: join_path(&base, KEY_STATES_PATH.trim_start_matches('/')),
            http,
            paths: edge.slot_paths(),
            reload: edge.reload.clone(),
            reload_timeout: edge.reload_timeout.as_std(),
            interval: edge.interval.as_std(),
            written: Slots::default(),
            reload_due: false,
        })
    }

    /// How long between polls.
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// Reads the key states and writes the slots that changed; returns whether any did. A
    /// failed read or write leaves the files as they were.
    pub(crate) async fn refresh(&mut self) -> Result<bool, AgentError> {
        let states = self
            .fetch()
            .await
            .map_err(|e| AgentError::EdgeKeys(e.to_string()))?;
        let slots = slots::assign(&states.keys);
        let mut changed = false;
        for ((path, slot), before) in self
            .paths
            .iter()
            .zip(slots.in_order())
            .zip(self.written.in_order())
        {
            let wrote =
                write_if_changed_with_mode(path, &render(slot), PUBLIC_FILE_MODE).map_err(|e| {
                    AgentError::Write {
                        path: path.clone(),
                        message: e.kind().to_string(),
                    }
                })?;
            changed |= wrote;
            if wrote || slot != before {
                tracing::info!(
                    path = %path.display(),
                    kid = slot.map_or("(empty)", |k| k.kid.as_str()),
                    wrote,
                    "edge key slot"
                );
            }
        }
        self.written = slots;
        self.reload_due |= changed;
        Ok(changed)
    }

    /// Runs the reload command if a change is waiting for it; returns whether it ran and
    /// succeeded.
    pub(crate) async fn reload_if_due(&mut self) -> bool {
        if !self.reload_due {
            return false;
        }
        let program = self.reload.first().map(String::as_str).unwrap_or_default();
        match reload::run(&self.reload, self.reload_timeout).await {
            Ok(()) => {
                self.reload_due = false;
                tracing::info!(program, "edge keys: reload command ran");
                true
            }
            Err(error) => {
                tracing::error!(error = %error, "edge keys: reload command failed; retried at the next poll");
                false
            }
        }
    }

    /// Forgets a pending reload (at start, when nothing may be running yet to reload).
    pub(crate) fn forget_reload(&mut self) {
        self.reload_due = false;
    }

    async fn fetch(&self) -> Result<KeyStates, PollError> {
        let mut response = self
            .http
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| PollError::Request(gha_auth::outbound::error_chain(&e.without_url())))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(PollError::Status(response.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| PollError::Request(gha_auth::outbound::error_chain(&e.without_url())))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(PollError::Body(format!("larger than {MAX_BODY} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| PollError::Body(e.to_string()))
    }
}

/// The content of a slot file: the key's SubjectPublicKeyInfo PEM, or nothing. A key that does
/// not parse (never published by the authority, which checks its own keys) leaves the slot empty.
fn render(slot: Option<&SlotKey>) -> Vec<u8> {
    let Some(slot) = slot else {
        return Vec::new();
    };
    match VerifyingKey::from_jwk(&slot.jwk).and_then(|key| key.to_spki_pem()) {
        Ok(pem) => pem.into_bytes(),
        Err(error) => {
            tracing::error!(kid = %slot.kid, error = %error, "edge keys: a published key is unusable; its slot stays empty");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use gha_auth::keys::{Algorithm, KeyState, SigningKey};

    use super::*;
    use crate::wellknown::KeyStatus;

    /// The DER inside a `PUBLIC KEY` block.
    fn der_of(pem: &[u8]) -> Vec<u8> {
        use base64::Engine;
        let text = std::str::from_utf8(pem).unwrap();
        let body = text
            .strip_prefix("-----BEGIN PUBLIC KEY-----\n")
            .and_then(|rest| rest.strip_suffix("-----END PUBLIC KEY-----\n"))
            .unwrap();
        base64::engine::general_purpose::STANDARD
            .decode(body.replace('\n', ""))
            .unwrap()
    }

    #[test]
    fn a_slot_is_the_keys_spki_pem_or_empty() {
        assert!(render(None).is_empty());
        let key = SigningKey::generate(Algorithm::ES256).unwrap();
        let status = KeyStatus {
            kid: key.kid().to_owned(),
            state: KeyState::Active,
            activates_at: chrono::DateTime::UNIX_EPOCH,
            retires_at: None,
            remove_at: None,
            jwk: key.public_jwk().clone(),
        };
        let slots = slots::assign(std::slice::from_ref(&status));
        let pem = render(slots.active.as_ref());
        let der = der_of(&pem);
        // Parsed back as a SubjectPublicKeyInfo, it verifies the key's own signature.
        let signature = key.sign(b"h.p").unwrap();
        aws_lc_verify(&der, b"h.p", &signature);
        // A point off the curve never reaches a file.
        let mut broken = status;
        broken.jwk.y = broken.jwk.x.clone();
        let slots = slots::assign(std::slice::from_ref(&broken));
        assert!(slots.active.is_some());
        assert!(render(slots.active.as_ref()).is_empty());
    }

    /// Verifies through the JWK the PEM's key becomes when read back: a JWK built from the DER's
    /// point must verify the signature.
    fn aws_lc_verify(der: &[u8], input: &[u8], signature: &[u8]) {
        assert_eq!(der.len(), 91, "P-256 SubjectPublicKeyInfo");
        // SEQUENCE { AlgorithmIdentifier { id-ecPublicKey, prime256v1 }, BIT STRING }.
        assert_eq!(
            hex::encode(&der[..26]),
            "3059301306072a8648ce3d020106082a8648ce3d030107034200"
        );
        let point = &der[26..];
        assert_eq!(point[0], 4, "uncompressed point");
        let jwk = gha_auth::keys::Jwk {
            kty: "EC".into(),
            crv: Some("P-256".into()),
            x: Some(b64(&point[1..33])),
            y: Some(b64(&point[33..])),
            n: None,
            e: None,
            kid: None,
            alg: None,
            key_use: None,
            key_ops: None,
        };
        let key = VerifyingKey::from_jwk(&jwk).unwrap();
        assert!(key.verify_signature(input, signature));
        assert!(!key.verify_signature(b"other", signature));
    }

    fn b64(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }
}
