//! The rotation state machine, pure: what to do next for a [`LinkKeyState`] at a given time
//! ([`next_action`]), and the transitions that record each step ([`begin`], [`created`],
//! [`claim`], [`succeeded`], [`failed`], [`promote`], [`retire`], [`record_use`]).
//!
//! The driver ([`super::driver`]) performs the side effects (installing in the target, reading it
//! back) and persists every transition with compare-and-set before it takes the next step, so a
//! crash resumes where the stored state says. Every transition checks a guard (the rotation, step
//! and attempt it expects); a guard that no longer holds means another replica or an operator
//! moved the state first, and the caller reloads instead of overwriting.
//!
//! ```text
//!  STABLE ──due / requested / no CURRENT──▶ CREATE ──pending stored──▶ SET (not before
//!    ▲                                                                  created + publish_ahead)
//!    │                                                                   │ claim, install
//!    │                        fail: backoff, CURRENT untouched ◀─────────┤
//!    │                                                                   ▼
//!    │                        fail: backoff, back to SET ◀───────────── TEST (read back == PENDING,
//!    │                                                                   │  and PENDING is served)
//!    └──── PROMOTE: CURRENT = PENDING, PREVIOUS = old CURRENT until now + overlap ◀─┘
//!
//!  PREVIOUS is retired at its expiry, or once CURRENT was seen in use and PREVIOUS has been
//!  quiet for quiet_period (after its last use, and at least since the promotion).
//! ```

use chrono::{DateTime, TimeDelta, Utc};
use thiserror::Error;

use super::model::{LinkKeyState, Rotation, RotationReason, RotationRequest, Step, StoredKey};

/// The timings of one link key's rotation (from `[link_keys.<name>]`, validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Policy {
    /// How long a CURRENT key is used before the next rotation starts.
    pub rotation_period: TimeDelta,
    /// How long PENDING is served to validators before the target is told to send it.
    pub publish_ahead: TimeDelta,
    /// How long PREVIOUS stays valid after a promotion.
    pub overlap: TimeDelta,
    /// How long PREVIOUS must go unused (once CURRENT is in use) to be retired early.
    pub quiet_period: TimeDelta,
    /// How long a claimed attempt keeps other replicas off (longer than any target call).
    pub claim_timeout: TimeDelta,
    /// First retry delay after a failure; doubles with each further failure.
    pub retry_base: TimeDelta,
    /// Longest retry delay.
    pub retry_max: TimeDelta,
}

impl Policy {
    /// Delay before the next attempt after the `failures`-th failure (1-based).
    pub fn backoff(&self, failures: u32) -> TimeDelta {
        let exponent = failures.saturating_sub(1).min(30);
        let factor = 1i32 << exponent;
        self.retry_base
            .checked_mul(factor)
            .unwrap_or(self.retry_max)
            .min(self.retry_max)
    }
}

/// Why PREVIOUS is retired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum RetireReason {
    /// Its overlap window ended.
    Expired,
    /// CURRENT is in use and PREVIOUS went quiet.
    Quiet,
}

impl RetireReason {
    /// The stable name (metrics, audit).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RetireReason::Expired => "expired",
            RetireReason::Quiet => "quiet",
        }
    }
}

/// What the driver should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Action {
    /// Nothing now; look again at `until` (`None`: nothing is scheduled).
    Wait {
        /// The next time something is due.
        until: Option<DateTime<Utc>>,
    },
    /// Start a rotation.
    Begin(RotationReason),
    /// Generate the new key and store it as PENDING.
    Create,
    /// Claim the attempt at a step with a side effect (`Set` or `Test`), then perform it.
    Claim(Step),
    /// Make PENDING the CURRENT key.
    Promote,
    /// Drop PREVIOUS.
    Retire(RetireReason),
}

/// When the next scheduled rotation is due (now if there is no CURRENT key).
pub(crate) fn rotation_due(state: &LinkKeyState, policy: &Policy) -> Option<DateTime<Utc>> {
    let current = state.current.as_ref()?;
    let since = state.last_rotated_at.unwrap_or(current.created_at);
    since.checked_add_signed(policy.rotation_period)
}

/// When PREVIOUS will be retired if nothing changes, and why.
pub(crate) fn retirement_at(
    state: &LinkKeyState,
    policy: &Policy,
) -> Option<(DateTime<Utc>, RetireReason)> {
    let previous = state.previous.as_ref()?;
    let expiry = previous.expires_at.map(|at| (at, RetireReason::Expired));
    let quiet = match (&state.current, state.last_rotated_at) {
        (Some(current), Some(promoted)) if current.last_seen.is_some() => {
            let quiet_since = previous
                .last_seen
                .map_or(promoted, |seen| seen.max(promoted));
            quiet_since
                .checked_add_signed(policy.quiet_period)
                .map(|at| (at, RetireReason::Quiet))
        }
        _ => None,
    };
    match (expiry, quiet) {
        (Some(e), Some(q)) => Some(if q.0 < e.0 { q } else { e }),
        (e, q) => e.or(q),
    }
}

/// The next thing to do for `state` at `now`.
pub(crate) fn next_action(state: &LinkKeyState, now: DateTime<Utc>, policy: &Policy) -> Action {
    let retirement = retirement_at(state, policy);
    if let Some((at, reason)) = retirement
        && at <= now
    {
        return Action::Retire(reason);
    }
    let retire_at = retirement.map(|(at, _)| at);
    let earliest = |a: Option<DateTime<Utc>>| match (a, retire_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if let Some(rotation) = &state.rotation {
        if rotation.next_attempt > now {
            return Action::Wait {
                until: earliest(Some(rotation.next_attempt)),
            };
        }
        return match rotation.step {
            Step::Create => Action::Create,
            Step::Set => Action::Claim(Step::Set),
            Step::Test => Action::Claim(Step::Test),
            Step::Promote => Action::Promote,
        };
    }
    if state.current.is_none() {
        return Action::Begin(RotationReason::Initial);
    }
    if state.requested.is_some() {
        return Action::Begin(RotationReason::Requested);
    }
    let due = rotation_due(state, policy);
    if due.is_some_and(|due| due <= now) {
        return Action::Begin(RotationReason::Scheduled);
    }
    Action::Wait {
        until: earliest(due),
    }
}

/// A transition's guard did not hold: the state moved under us (another replica, an operator).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the link-key state changed: {0}")]
pub(crate) struct Stale(pub &'static str);

/// Identifies the attempt a replica works on, so its result is recorded only if nobody else
/// moved the rotation meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attempt {
    /// The rotation.
    pub(crate) rotation_id: String,
    /// The step.
    pub(crate) step: Step,
    /// The attempt number the rotation showed (after a claim: the claimed one).
    pub(crate) attempts: u32,
}

impl Attempt {
    /// The attempt `rotation` is at.
    pub(crate) fn of(rotation: &Rotation) -> Self {
        Self {
            rotation_id: rotation.id.clone(),
            step: rotation.step,
            attempts: rotation.attempts,
        }
    }
}

fn rotation_at<'a>(state: &'a mut LinkKeyState, at: &Attempt) -> Result<&'a mut Rotation, Stale> {
    match state.rotation.as_mut() {
        Some(r) if r.id == at.rotation_id && r.step == at.step && r.attempts == at.attempts => {
            Ok(r)
        }
        Some(_) => Err(Stale("the rotation moved on")),
        None => Err(Stale("no rotation in progress")),
    }
}

/// Starts rotation `id`. Guard: no rotation in progress.
pub(crate) fn begin(
    state: &mut LinkKeyState,
    id: &str,
    reason: RotationReason,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(), Stale> {
    if state.rotation.is_some() {
        return Err(Stale("a rotation is already in progress"));
    }
    state.rotation = Some(Rotation {
        id: id.to_owned(),
        reason,
        started_by: by.to_owned(),
        started_at: now,
        step: Step::Create,
        attempts: 0,
        last_error: None,
        failures: 0,
        next_attempt: now,
        claimed_by: None,
    });
    state.requested = None;
    Ok(())
}

/// Records the generated key as PENDING; the target is told to send it no earlier than
/// `publish_ahead` from now. Guard: the rotation is at `Create`. A retried create after a crash
/// generates again, since nothing was stored: one PENDING key per rotation id.
pub(crate) fn created(
    state: &mut LinkKeyState,
    at: &Attempt,
    key: StoredKey,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<(), Stale> {
    if at.step != Step::Create {
        return Err(Stale("not at create"));
    }
    let rotation = rotation_at(state, at)?;
    rotation.step = Step::Set;
    rotation.attempts = 0;
    rotation.claimed_by = None;
    rotation.next_attempt = now + policy.publish_ahead;
    state.pending = Some(key);
    Ok(())
}

/// Claims the next attempt at `at.step` for `by`: other replicas keep off until `claim_timeout`
/// passes (if this one crashes, another takes over then). Returns the claimed attempt.
pub(crate) fn claim(
    state: &mut LinkKeyState,
    at: &Attempt,
    by: &str,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Attempt, Stale> {
    let rotation = rotation_at(state, at)?;
    if rotation.next_attempt > now {
        return Err(Stale("the attempt is not due"));
    }
    rotation.attempts = rotation.attempts.saturating_add(1);
    rotation.claimed_by = Some(by.to_owned());
    rotation.next_attempt = now + policy.claim_timeout;
    Ok(Attempt::of(rotation))
}

/// Records that the claimed attempt succeeded: on to the next step.
pub(crate) fn succeeded(
    state: &mut LinkKeyState,
    at: &Attempt,
    now: DateTime<Utc>,
) -> Result<(), Stale> {
    let rotation = rotation_at(state, at)?;
    rotation.step = match at.step {
        Step::Create => Step::Set,
        Step::Set => Step::Test,
        Step::Test | Step::Promote => Step::Promote,
    };
    rotation.attempts = 0;
    rotation.last_error = None;
    rotation.claimed_by = None;
    rotation.next_attempt = now;
    Ok(())
}

/// Records that the claimed attempt failed: retry after a backoff. CURRENT is not touched; a
/// failed test goes back to set, so the key is installed again before it is tested again.
pub(crate) fn failed(
    state: &mut LinkKeyState,
    at: &Attempt,
    error: &str,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<TimeDelta, Stale> {
    let rotation = rotation_at(state, at)?;
    rotation.failures = rotation.failures.saturating_add(1);
    rotation.last_error = Some(error.to_owned());
    rotation.claimed_by = None;
    let delay = policy.backoff(rotation.failures);
    rotation.next_attempt = now + delay;
    if at.step == Step::Test {
        rotation.step = Step::Set;
        rotation.attempts = 0;
    }
    Ok(delay)
}

/// What a promotion replaced.
#[derive(Debug)]
pub(crate) struct Promoted {
    /// The id of the new CURRENT key.
    pub(crate) current: String,
    /// The id of the new PREVIOUS key, if there was a CURRENT before.
    pub(crate) previous: Option<String>,
    /// The id of a PREVIOUS key dropped early because a new rotation finished within its
    /// overlap (a requested rotation; the schedule never does this).
    pub(crate) dropped: Option<String>,
}

/// CURRENT = PENDING; PREVIOUS = the old CURRENT, valid for `overlap`. Guard: the rotation is at
/// `Promote` with a PENDING key.
pub(crate) fn promote(
    state: &mut LinkKeyState,
    at: &Attempt,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Promoted, Stale> {
    if at.step != Step::Promote {
        return Err(Stale("not at promote"));
    }
    rotation_at(state, at)?;
    let Some(mut new) = state.pending.take() else {
        return Err(Stale("no pending key"));
    };
    new.expires_at = None;
    let old = state.current.take().map(|mut old| {
        old.expires_at = Some(now + policy.overlap);
        old
    });
    let promoted = Promoted {
        current: new.id.clone(),
        previous: old.as_ref().map(|k| k.id.clone()),
        dropped: match &old {
            Some(_) => state.previous.take().map(|k| k.id),
            None => None,
        },
    };
    if old.is_some() {
        state.previous = old;
    }
    state.current = Some(new);
    state.rotation = None;
    state.last_rotated_at = Some(now);
    state.rotations = state.rotations.saturating_add(1);
    Ok(promoted)
}

/// Drops PREVIOUS if it is still `key_id`.
pub(crate) fn retire(state: &mut LinkKeyState, key_id: &str) -> Result<(), Stale> {
    match &state.previous {
        Some(previous) if previous.id == key_id => {
            state.previous = None;
            Ok(())
        }
        _ => Err(Stale("previous key changed")),
    }
}

/// Records that a validator accepted key `id` at `seen` (clamped to `now`: a validator's clock
/// running ahead must not make a key look used in the future). `true` if anything changed.
pub(crate) fn record_use(
    state: &mut LinkKeyState,
    id: &str,
    seen: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    let seen = seen.min(now);
    match state.key_mut(id) {
        Some(key) if key.last_seen.is_none_or(|last| last < seen) => {
            key.last_seen = Some(seen);
            true
        }
        _ => false,
    }
}

/// Asks for a rotation (kept until the scheduler begins it). `false` if one is already asked for.
pub(crate) fn request(state: &mut LinkKeyState, by: &str, now: DateTime<Utc>) -> bool {
    if state.requested.is_some() {
        return false;
    }
    state.requested = Some(RotationRequest {
        at: now,
        by: by.to_owned(),
    });
    true
}

#[cfg(test)]
mod tests;
