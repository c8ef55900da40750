//! The crate's internals that the workspace's end-to-end tests drive directly (link-key drivers
//! with injected faults, stores, registries). Only with the `test-util` feature; not an API.

pub use crate::agent::config::AgentConfig;
pub use crate::agent::run as run_agent;
pub use crate::atrest::MasterKey;
pub use crate::audit::AuditLog;
pub use crate::audit::store::AuditRow;
pub use crate::audit::verify::{VerifyReport, verify};
pub use crate::clients::legacy_keys;
pub use crate::clients::model::GrantType;
pub use crate::clients::{ClientRegistration, ClientRegistry};
pub use crate::linkkeys::driver::{DriverSettings, FaultPlan, FaultPoint, Rotator};
pub use crate::linkkeys::machine::Policy;
pub use crate::linkkeys::model::{LinkKeyState, ServedState, Step, digest_hex};
pub use crate::linkkeys::store::{LinkKeyStore, LocalLinkKeyStore, VaultLinkKeyStore};
pub use crate::refresh::{lookup, purge_expired};
pub use crate::services::Services;
pub use crate::store::Store;
pub use crate::targets::epicor::wire;
pub use crate::targets::{TargetConfig, TargetDeps, build_target};
pub use crate::users::Users;
