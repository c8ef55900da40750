//! Invariants checked before the server starts (and by `gha-auth config check`): every section
//! checks itself (each feature owns its section and its rules); this module adds the top-level
//! keys and the rules where two sections meet.

use std::net::SocketAddr;

use gha_auth::outbound::UrlPolicy;

use super::{Config, KeyBackend};
use crate::settings::{ConfigProblem, Problems};

pub(super) fn problems(config: &Config) -> Vec<ConfigProblem> {
    let mut out = Problems::default();
    check_listen(config, &mut out);
    check_issuer(config, &mut out);
    config.http.check(&mut out);
    config.tls.check(&mut out);
    config.store.check(&config.store_url(), &mut out);
    let before = out.len();
    config.keys.check(&mut out);
    if out.len() == before {
        check_schedule(config, &mut out);
    }
    config.tokens.check(&mut out);
    check_token_lifetime(config, &mut out);
    config.clients.check(&mut out);
    config.users.check(&mut out);
    config.refresh.check(&mut out);
    config.revocations.check(&mut out);
    config.log.check(&mut out);
    config.rate_limit.check(&mut out);
    check_key_backend(config, &mut out);
    config.vault.check(&mut out);
    config.api_auth.check(&mut out);
    crate::linkkeys::check_sections(&config.link_keys, &config.alerts, &mut out);
    config.session.check(&mut out);
    config
        .broker
        .check(&config.broker_reserved_prefixes(), &mut out);
    config.monitor.check(&mut out);
    out.into_vec()
}

/// Whether `addr` only accepts connections from this machine.
pub(crate) fn is_loopback(addr: SocketAddr) -> bool {
    addr.ip().is_loopback()
}

fn check_listen(config: &Config, out: &mut Problems) {
    let tls = config.tls.files().is_some();
    if !tls && !is_loopback(config.listen) && !config.allow_insecure_http {
        out.push(
            "listen",
            format!(
                "plain HTTP on the non-loopback address {} is refused; configure [tls], listen on \
                 127.0.0.1, or set allow_insecure_http = true when a TLS-terminating proxy is in \
                 front",
                config.listen
            ),
        );
    }
}

fn check_issuer(config: &Config, out: &mut Problems) {
    let Some(issuer) = &config.issuer else {
        return;
    };
    // RFC 8414: no query or fragment; https unless loopback or allowed behind a TLS proxy.
    if let Err(e) = UrlPolicy::new()
        .allow_plain_http(config.allow_insecure_http)
        .check(issuer)
    {
        out.push("issuer", e.to_string());
    }
}

/// The core library's schedule rules, once `[keys]` and `[tokens]` are each sound.
fn check_schedule(config: &Config, out: &mut Problems) {
    if let Err(e) = crate::keys::schedule_from(&config.keys, config.tokens.max_lifetime) {
        out.push("keys", e.to_string());
    }
}

/// A retired key stays published for max_lifetime + leeway, so a token can never outlive its
/// key's time in the JWKS; a lifetime beyond the rotation period would keep ever more retired
/// keys published and is almost certainly a mistake.
fn check_token_lifetime(config: &Config, out: &mut Problems) {
    if config.tokens.max_lifetime > config.keys.rotation_period {
        out.push(
            "tokens.max_lifetime",
            format!(
                "({}) must not exceed keys.rotation_period ({})",
                config.tokens.max_lifetime, config.keys.rotation_period
            ),
        );
    }
}

fn check_key_backend(config: &Config, out: &mut Problems) {
    if config.keys.backend == KeyBackend::Vault && config.vault.address.is_none() {
        out.push("keys.backend", "\"vault\" needs vault.address");
    }
}
