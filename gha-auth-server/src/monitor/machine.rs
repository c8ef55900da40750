//! The health board's pure decisions: who polls (the lease) and what a check result does to a
//! target's state (debounced, so one bad check never alerts). Table-tested; the store applies
//! them with compare-and-set.

use serde::Serialize;

/// The polling lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lease {
    /// The replica that polls.
    pub(crate) holder: String,
    /// Until when (Unix ms).
    pub(crate) expires_at: i64,
    /// Compare-and-set version.
    pub(crate) version: i64,
}

/// What a replica does about the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeaseDecision {
    /// Nobody ever held it: insert it (if nobody else does first).
    Acquire,
    /// It is ours and past half its life: extend it.
    Renew,
    /// It is ours and fresh: poll without writing.
    Hold,
    /// Another replica's lease expired: take it over (if nobody else does first).
    TakeOver,
    /// Another replica holds a live lease: do not poll.
    Wait,
}

impl LeaseDecision {
    /// Whether this replica polls after the decision (a write must win first, except `Hold`).
    pub(crate) fn polls(self) -> bool {
        !matches!(self, LeaseDecision::Wait)
    }
}

/// The lease decision of replica `me` at `now` (Unix ms) for a lease of `ttl_ms`.
pub(crate) fn decide_lease(
    current: Option<&Lease>,
    me: &str,
    now: i64,
    ttl_ms: i64,
) -> LeaseDecision {
    match current {
        None => LeaseDecision::Acquire,
        Some(lease) if lease.holder == me => {
            // An expired lease of ours may have been taken over meanwhile; the version decides.
            if lease.expires_at.saturating_sub(now) > ttl_ms / 2 {
                LeaseDecision::Hold
            } else {
                LeaseDecision::Renew
            }
        }
        Some(lease) if lease.expires_at <= now => LeaseDecision::TakeOver,
        Some(_) => LeaseDecision::Wait,
    }
}

/// A target's state, as shown and exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TargetState {
    /// Not checked enough yet.
    Unknown,
    /// Answers `Healthy` (or any 2xx).
    Up,
    /// Answers `Degraded`.
    Degraded,
    /// Fails: no answer, a timeout, `Unhealthy` or another status.
    Down,
}

impl TargetState {
    /// Every state, for the metrics' one-hot series.
    pub(crate) const ALL: [TargetState; 4] = [
        TargetState::Unknown,
        TargetState::Up,
        TargetState::Degraded,
        TargetState::Down,
    ];

    /// The stored (and exported) spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TargetState::Unknown => "unknown",
            TargetState::Up => "up",
            TargetState::Degraded => "degraded",
            TargetState::Down => "down",
        }
    }

    /// The state stored as `text`.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// The state a target is in, and the streak of equal results that may move it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Debounce {
    /// The current (alerted) state.
    pub(crate) state: TargetState,
    /// The outcome of the latest results in a row.
    pub(crate) streak_outcome: TargetState,
    /// How many.
    pub(crate) streak: u32,
}

impl Debounce {
    /// A target never checked.
    pub(crate) const NEW: Debounce = Debounce {
        state: TargetState::Unknown,
        streak_outcome: TargetState::Unknown,
        streak: 0,
    };
}

/// What one check does: the next state and, when the state changed, the change to alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    /// The state after the check.
    pub(crate) next: Debounce,
    /// `(from, to)` when the state changed.
    pub(crate) change: Option<(TargetState, TargetState)>,
}

/// Applies one check's `outcome` (`Up`, `Degraded` or `Down`): the state moves to an outcome
/// once it was seen `failures` times in a row (`successes` for `Up`). The first state of a new
/// target is taken the same way; a change from `Unknown` to `Up` is not an alert-worthy change.
pub(crate) fn step(current: Debounce, outcome: TargetState, failures: u32, successes: u32) -> Step {
    let streak = if current.streak_outcome == outcome {
        current.streak.saturating_add(1)
    } else {
        1
    };
    let needed = if outcome == TargetState::Up {
        successes
    } else {
        failures
    };
    let state = if streak >= needed.max(1) && outcome != TargetState::Unknown {
        outcome
    } else {
        current.state
    };
    let next = Debounce {
        state,
        streak_outcome: outcome,
        streak,
    };
    let change = (state != current.state
        && !(current.state == TargetState::Unknown && state == TargetState::Up))
        .then_some((current.state, state));
    Step { next, change }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TargetState::{Degraded, Down, Unknown, Up};

    fn lease(holder: &str, expires_at: i64) -> Lease {
        Lease {
            holder: holder.to_owned(),
            expires_at,
            version: 1,
        }
    }

    #[test]
    fn lease_decisions() {
        let ttl = 10_000;
        let cases: &[(Option<Lease>, i64, LeaseDecision)] = &[
            (None, 0, LeaseDecision::Acquire),
            (Some(lease("me", 10_000)), 0, LeaseDecision::Hold),
            (Some(lease("me", 10_000)), 4_999, LeaseDecision::Hold),
            (Some(lease("me", 10_000)), 5_000, LeaseDecision::Renew),
            (Some(lease("me", 10_000)), 20_000, LeaseDecision::Renew),
            (Some(lease("other", 10_000)), 9_999, LeaseDecision::Wait),
            (
                Some(lease("other", 10_000)),
                10_000,
                LeaseDecision::TakeOver,
            ),
            (
                Some(lease("other", 10_000)),
                99_000,
                LeaseDecision::TakeOver,
            ),
        ];
        for (current, now, expected) in cases {
            assert_eq!(
                decide_lease(current.as_ref(), "me", *now, ttl),
                *expected,
                "{current:?} at {now}"
            );
        }
        assert!(!LeaseDecision::Wait.polls());
        assert!(LeaseDecision::Hold.polls());
    }

    /// Runs `outcomes` from a new target with 3 failures / 1 success needed; returns the states
    /// after each check and the changes.
    fn run(outcomes: &[TargetState]) -> (Vec<TargetState>, Vec<(TargetState, TargetState)>) {
        let mut current = Debounce::NEW;
        let mut states = Vec::new();
        let mut changes = Vec::new();
        for outcome in outcomes {
            let step = step(current, *outcome, 3, 1);
            current = step.next;
            states.push(current.state);
            changes.extend(step.change);
        }
        (states, changes)
    }

    /// Results, the states after each, and the changes alerted.
    type Case = (
        &'static [TargetState],
        &'static [TargetState],
        &'static [(TargetState, TargetState)],
    );

    #[test]
    fn state_changes_after_n_equal_results_only() {
        let cases: &[Case] = &[
            // A new target that answers is up, without an alert.
            (&[Up], &[Up], &[]),
            // A new target that never answers is down after three failures: alerted.
            (
                &[Down, Down, Down],
                &[Unknown, Unknown, Down],
                &[(Unknown, Down)],
            ),
            // Two failures then a success: no flapping, no alert.
            (&[Up, Down, Down, Up, Down, Down, Up], &[Up; 7], &[]),
            // Down after three, and back up with one success: two alerts.
            (
                &[Up, Down, Down, Down, Down, Up],
                &[Up, Up, Up, Down, Down, Up],
                &[(Up, Down), (Down, Up)],
            ),
            // Degraded is judged like a failure; a failure streak restarts the count.
            (
                &[Up, Degraded, Degraded, Down, Down, Down],
                &[Up, Up, Up, Up, Up, Down],
                &[(Up, Down)],
            ),
            (
                &[Up, Degraded, Degraded, Degraded],
                &[Up, Up, Up, Degraded],
                &[(Up, Degraded)],
            ),
        ];
        for (outcomes, states, changes) in cases {
            let (got_states, got_changes) = run(outcomes);
            assert_eq!(&got_states, states, "{outcomes:?}");
            assert_eq!(&got_changes, changes, "{outcomes:?}");
        }
    }

    #[test]
    fn recovery_can_need_several_successes() {
        let mut current = Debounce {
            state: Down,
            streak_outcome: Down,
            streak: 5,
        };
        let first = step(current, Up, 3, 2);
        assert_eq!(first.next.state, Down);
        assert_eq!(first.change, None);
        current = first.next;
        let second = step(current, Up, 3, 2);
        assert_eq!(second.next.state, Up);
        assert_eq!(second.change, Some((Down, Up)));
    }

    #[test]
    fn states_round_trip_their_spelling() {
        for state in TargetState::ALL {
            assert_eq!(TargetState::parse(state.as_str()), Some(state));
        }
        assert_eq!(TargetState::parse("sideways"), None);
    }
}
