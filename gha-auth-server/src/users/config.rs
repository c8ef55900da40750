//! `[users]`: the built-in user store's password hashing and login backoff.

use serde::Deserialize;

use crate::settings::{Duration, Problems};

/// The built-in user store (see `docs/decisions/0003-password-hashing.md`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct UsersConfig {
    /// Argon2id memory cost of new password hashes, in KiB.
    pub argon2_memory_kib: u32,
    /// Argon2id passes over memory.
    pub argon2_iterations: u32,
    /// Argon2id lanes.
    pub argon2_parallelism: u32,
    /// Memory all password hashes running at once may use, in MiB: it bounds how many run
    /// concurrently (each needs its hash's memory cost); the rest wait or are refused.
    pub argon2_memory_budget_mib: u32,
    /// Logins that may wait for a password hash to start when the budget is in use; any
    /// further one is answered 503 with `Retry-After` at once.
    pub argon2_max_waiting: u32,
    /// Failed logins of one user from one source address before that pair backs off (0: never).
    pub failures_before_backoff: u32,
    /// Failed logins of one user from any source before the user backs off on every source it
    /// has not logged in from successfully (0: never).
    pub user_failures_before_backoff: u32,
    /// Failed logins from one source address, for any user, before it backs off (0: never).
    pub source_failures_before_backoff: u32,
    /// How long a source address stays known for a user after a successful login: the
    /// user-wide backoff does not apply there.
    pub known_source_lifetime: Duration,
    /// First backoff; it doubles with every further failure.
    pub backoff_base: Duration,
    /// Longest backoff; failures older than this are forgotten.
    pub backoff_max: Duration,
}

impl Default for UsersConfig {
    fn default() -> Self {
        Self {
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            argon2_memory_budget_mib: 64,
            argon2_max_waiting: 32,
            failures_before_backoff: 5,
            user_failures_before_backoff: 20,
            source_failures_before_backoff: 20,
            known_source_lifetime: Duration::days(30),
            backoff_base: Duration::seconds(1),
            backoff_max: Duration::minutes(15),
        }
    }
}

impl UsersConfig {
    /// Reports what is wrong with `[users]`.
    pub fn check(&self, out: &mut Problems) {
        if !(1024..=1024 * 1024).contains(&self.argon2_memory_kib) {
            out.push(
                "users.argon2_memory_kib",
                "must be between 1024 and 1048576 (below the default 19456 only for tests)",
            );
        }
        if !(1..=16).contains(&self.argon2_iterations) {
            out.push("users.argon2_iterations", "must be between 1 and 16");
        }
        if !(1..=16).contains(&self.argon2_parallelism) {
            out.push("users.argon2_parallelism", "must be between 1 and 16");
        }
        let hash_mib = self.argon2_memory_kib.div_ceil(1024);
        if self.argon2_memory_budget_mib < hash_mib || self.argon2_memory_budget_mib > 64 * 1024 {
            out.push(
                "users.argon2_memory_budget_mib",
                format!(
                    "must be at least one hash's memory (users.argon2_memory_kib: {hash_mib} MiB) and at most 65536"
                ),
            );
        }
        if self.argon2_max_waiting > 10_000 {
            out.push("users.argon2_max_waiting", "must be at most 10000");
        }
        if self.known_source_lifetime < Duration::seconds(0)
            || self.known_source_lifetime > Duration::days(366)
        {
            out.push("users.known_source_lifetime", "must be between 0s and 366d");
        }
        if self.backoff_base <= Duration::seconds(0) || self.backoff_max < self.backoff_base {
            out.push(
                "users.backoff_base",
                "must be greater than zero and at most users.backoff_max",
            );
        }
    }
}
