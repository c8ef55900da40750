//! Link keys: the static `x-api-key` an integration (Epicor first) sends, rotated on a schedule
//! without a rejected call (BRIEF §7, issue 7).
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

pub mod alert;
pub mod cli;
pub mod config;
pub mod driver;
pub mod http;
pub mod machine;
pub mod model;
pub mod registry;
pub mod store;

pub use cli::{LinkKeysCommand, run_cli};
pub use config::{AlertsConfig, LinkKeyConfig, check_sections};
pub use driver::{
    DriveError, DriverSettings, DriverStatus, FaultHook, FaultPlan, FaultPoint, NoFaults, Rotator,
};
pub use machine::{Action, Policy, RetireReason};
pub use model::{LinkKeyState, RotationReason, ServedSet, Step, StoredKey};
pub use registry::{LinkKeyEntry, LinkKeys, LinkKeysError, link_key_store};
pub use store::{
    LinkKeyStore, LinkKeyStoreError, LocalLinkKeyStore, VaultLinkKeyStore, VersionedState, update,
};

#[cfg(test)]
mod tests;
