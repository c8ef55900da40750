//! Link keys: the static `x-api-key` an integration (Epicor first) sends, rotated on a schedule
//! without a rejected call.
//!
//! - [`model`]: the stored state (CURRENT / PENDING / PREVIOUS, the rotation in progress) and the
//!   digest list validators are served;
//! - [`machine`]: the rotation state machine, pure;
//! - [`store`]: the [`LinkKeyStore`] seam, in Vault KV v2 or sealed in the store, with
//!   compare-and-set;
//! - [`driver`]: the [`Rotator`] that runs the machine against a store and a target on the
//!   injected clock, with an injectable [`FaultHook`] for crash tests;
//! - [`registry`]: every configured link key of a process and its `/HealthCheck` component;
//! - [`alert`]: the alert webhook;
//! - [`cli`]: `gha-auth link-keys status|rotate|retire-previous`.

pub(crate) mod alert;
pub(crate) mod cli;
pub(crate) mod config;
pub(crate) mod driver;
pub(crate) mod http;
pub(crate) mod machine;
pub(crate) mod model;
pub(crate) mod registry;
pub(crate) mod store;

pub(crate) use cli::{LinkKeysCommand, run_cli};
pub(crate) use config::{AlertsConfig, LinkKeyConfig, check_sections};
pub(crate) use machine::Policy;
pub(crate) use registry::{LinkKeys, LinkKeysError, link_key_store};
pub(crate) use store::LinkKeyStore;

#[cfg(test)]
mod tests;
