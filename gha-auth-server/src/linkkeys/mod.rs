//! Link keys: the static `x-api-key` an integration (Epicor first) sends, rotated on a schedule
//! without a rejected call (BRIEF §7, issue 7).
//!
//! - [`model`]: the stored state (CURRENT / PENDING / PREVIOUS, the rotation in progress) and the
//!   digest list validators are served;
//! - [`machine`]: the rotation state machine, pure;
//! - [`store`]: the [`LinkKeyStore`] seam, in Vault KV v2 or sealed in the store, with
//!   compare-and-set.

pub mod machine;
pub mod model;
pub mod store;

pub use machine::{Action, Policy, RetireReason};
pub use model::{LinkKeyState, RotationReason, ServedSet, Step, StoredKey};
pub use store::{
    LinkKeyStore, LinkKeyStoreError, LocalLinkKeyStore, VaultLinkKeyStore, VersionedState, update,
};

#[cfg(test)]
mod tests;
