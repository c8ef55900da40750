use chrono::{TimeDelta, TimeZone};

use super::*;
use crate::linkkeys::model::LinkKeyState;

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + seconds, 0)
        .single()
        .unwrap()
}

fn policy() -> Policy {
    Policy {
        rotation_period: TimeDelta::seconds(1000),
        publish_ahead: TimeDelta::seconds(20),
        overlap: TimeDelta::seconds(300),
        quiet_period: TimeDelta::seconds(60),
        claim_timeout: TimeDelta::seconds(30),
        retry_base: TimeDelta::seconds(2),
        retry_max: TimeDelta::seconds(50),
    }
}

fn key(id: &str, created: i64) -> StoredKey {
    let mut key = StoredKey::generate(&format!("rot-{id}"), t(created)).unwrap();
    key.id = id.to_owned();
    key
}

fn stable(rotated_at: i64) -> LinkKeyState {
    let mut state = LinkKeyState::empty("epicor");
    state.current = Some(key("k1", rotated_at));
    state.last_rotated_at = Some(t(rotated_at));
    state.rotations = 1;
    state
}

fn rotating(step: Step, next_attempt: i64) -> LinkKeyState {
    let mut state = stable(0);
    state.rotation = Some(Rotation {
        id: "rot-2".into(),
        reason: RotationReason::Scheduled,
        started_by: "node-a".into(),
        started_at: t(1000),
        step,
        attempts: 0,
        last_error: None,
        failures: 0,
        next_attempt: t(next_attempt),
        claimed_by: None,
    });
    if step != Step::Create {
        state.pending = Some(key("k2", 1000));
    }
    state
}

fn with_previous(
    mut state: LinkKeyState,
    expires: i64,
    prev_seen: Option<i64>,
    cur_seen: Option<i64>,
) -> LinkKeyState {
    let mut previous = key("k0", -1000);
    previous.expires_at = Some(t(expires));
    previous.last_seen = prev_seen.map(t);
    state.previous = Some(previous);
    if let Some(current) = state.current.as_mut() {
        current.last_seen = cur_seen.map(t);
    }
    state
}

fn at(state: &LinkKeyState) -> Attempt {
    Attempt::of(state.rotation.as_ref().unwrap())
}

/// (state, time) → next action, as a table.
#[test]
fn next_action_table() {
    let requested = {
        let mut s = stable(0);
        request(&mut s, "cli", t(10));
        s
    };
    let cases: Vec<(&str, LinkKeyState, i64, Action)> = vec![
        (
            "no key yet: initial rotation",
            LinkKeyState::empty("epicor"),
            0,
            Action::Begin(RotationReason::Initial),
        ),
        (
            "stable, not due: wait for the due time",
            stable(0),
            999,
            Action::Wait {
                until: Some(t(1000)),
            },
        ),
        (
            "stable, due",
            stable(0),
            1000,
            Action::Begin(RotationReason::Scheduled),
        ),
        (
            "stable, long overdue (missed while down): one rotation",
            stable(0),
            50_000,
            Action::Begin(RotationReason::Scheduled),
        ),
        (
            "operator asked",
            requested,
            20,
            Action::Begin(RotationReason::Requested),
        ),
        (
            "at create",
            rotating(Step::Create, 1000),
            1000,
            Action::Create,
        ),
        (
            "at set, within publish-ahead",
            rotating(Step::Set, 1020),
            1010,
            Action::Wait {
                until: Some(t(1020)),
            },
        ),
        (
            "at set, due",
            rotating(Step::Set, 1020),
            1020,
            Action::Claim(Step::Set),
        ),
        (
            "at test",
            rotating(Step::Test, 1030),
            1030,
            Action::Claim(Step::Test),
        ),
        (
            "at promote",
            rotating(Step::Promote, 1030),
            1031,
            Action::Promote,
        ),
        (
            "previous expired, even during a rotation",
            with_previous(rotating(Step::Set, 2000), 500, None, None),
            500,
            Action::Retire(RetireReason::Expired),
        ),
        (
            "new key in use, old quiet for quiet_period since promotion",
            with_previous(stable(0), 300, None, Some(5)),
            60,
            Action::Retire(RetireReason::Quiet),
        ),
        (
            "new key in use, old used recently: wait for quiet",
            with_previous(stable(0), 300, Some(50), Some(40)),
            100,
            Action::Wait {
                until: Some(t(110)),
            },
        ),
        (
            "new key not seen yet: keep the old one until it expires",
            with_previous(stable(0), 300, None, None),
            200,
            Action::Wait {
                until: Some(t(300)),
            },
        ),
    ];
    for (name, state, now, expected) in cases {
        assert_eq!(next_action(&state, t(now), &policy()), expected, "{name}");
    }
}

#[test]
fn begin_is_refused_while_a_rotation_runs_and_clears_the_request() {
    let mut state = stable(0);
    request(&mut state, "cli", t(1));
    assert!(!request(&mut state, "cli", t(2)), "one request at a time");
    begin(&mut state, "rot-2", RotationReason::Requested, "a", t(3)).unwrap();
    assert!(state.requested.is_none());
    assert_eq!(
        begin(&mut state, "rot-3", RotationReason::Scheduled, "b", t(3)),
        Err(Stale("a rotation is already in progress"))
    );
    assert_eq!(state.rotation.as_ref().unwrap().id, "rot-2");
}

#[test]
fn create_stores_pending_and_waits_publish_ahead() {
    let mut state = rotating(Step::Create, 1000);
    let attempt = at(&state);
    let new = StoredKey::generate("rot-2", t(1000)).unwrap();
    let id = new.id.clone();
    created(&mut state, &attempt, new, t(1000), &policy()).unwrap();
    assert_eq!(state.pending.as_ref().unwrap().id, id);
    assert_eq!(id, "lk-2");
    let rotation = state.rotation.as_ref().unwrap();
    assert_eq!(rotation.step, Step::Set);
    assert_eq!(rotation.next_attempt, t(1020));
    assert_eq!(
        state.current.as_ref().unwrap().id,
        "k1",
        "CURRENT untouched"
    );
    // A second create for the same attempt (a replica that lost the race) is refused.
    let again = StoredKey::generate("rot-2", t(1000)).unwrap();
    assert!(created(&mut state, &attempt, again, t(1000), &policy()).is_err());
    assert_eq!(state.pending.as_ref().unwrap().id, id);
}

#[test]
fn a_claim_is_won_once_and_expires() {
    let mut state = rotating(Step::Set, 1020);
    let seen = at(&state);
    assert!(
        claim(&mut state, &seen, "a", t(1019), &policy()).is_err(),
        "not due"
    );
    let claimed = claim(&mut state, &seen, "a", t(1020), &policy()).unwrap();
    assert_eq!(claimed.attempts, 1);
    assert_eq!(
        claim(&mut state, &seen, "b", t(1020), &policy()),
        Err(Stale("the rotation moved on"))
    );
    // The claimer crashed: after the claim timeout the step is due again, for anyone.
    assert_eq!(
        next_action(&state, t(1049), &policy()),
        Action::Wait {
            until: Some(t(1050))
        }
    );
    assert_eq!(
        next_action(&state, t(1050), &policy()),
        Action::Claim(Step::Set)
    );
    let retaken = claim(&mut state, &claimed, "b", t(1050), &policy()).unwrap();
    assert_eq!(retaken.attempts, 2);
    // The crashed replica's late result is not recorded.
    assert!(succeeded(&mut state, &claimed, t(1051)).is_err());
}

#[test]
fn success_moves_to_the_next_step() {
    let mut state = rotating(Step::Set, 1020);
    let seen = at(&state);
    let claimed = claim(&mut state, &seen, "a", t(1020), &policy()).unwrap();
    succeeded(&mut state, &claimed, t(1021)).unwrap();
    let rotation = state.rotation.as_ref().unwrap();
    assert_eq!((rotation.step, rotation.attempts), (Step::Test, 0));
    let seen = at(&state);
    let claimed = claim(&mut state, &seen, "a", t(1021), &policy()).unwrap();
    succeeded(&mut state, &claimed, t(1022)).unwrap();
    assert_eq!(state.rotation.as_ref().unwrap().step, Step::Promote);
}

#[test]
fn failures_back_off_exponentially_up_to_the_cap_and_leave_current_alone() {
    let mut state = rotating(Step::Set, 1020);
    let mut now = t(1020);
    let mut delays = Vec::new();
    for _ in 0..7 {
        let seen = at(&state);
        let claimed = claim(&mut state, &seen, "a", now, &policy()).unwrap();
        let delay = failed(&mut state, &claimed, "epicor answered 500", now, &policy()).unwrap();
        delays.push(delay.num_seconds());
        now = state.rotation.as_ref().unwrap().next_attempt;
    }
    assert_eq!(delays, vec![2, 4, 8, 16, 32, 50, 50]);
    let rotation = state.rotation.as_ref().unwrap();
    assert_eq!(rotation.failures, 7);
    assert_eq!(rotation.last_error.as_deref(), Some("epicor answered 500"));
    assert_eq!(state.current.as_ref().unwrap().id, "k1");
    assert_eq!(
        state.pending.as_ref().unwrap().id,
        "k2",
        "PENDING stays served"
    );
}

#[test]
fn a_failed_test_installs_again_before_testing_again() {
    let mut state = rotating(Step::Test, 1030);
    let seen = at(&state);
    let claimed = claim(&mut state, &seen, "a", t(1030), &policy()).unwrap();
    failed(
        &mut state,
        &claimed,
        "read back another key",
        t(1030),
        &policy(),
    )
    .unwrap();
    assert_eq!(state.rotation.as_ref().unwrap().step, Step::Set);
    assert_eq!(
        next_action(&state, t(1032), &policy()),
        Action::Claim(Step::Set)
    );
}

#[test]
fn promote_swaps_current_and_previous() {
    let mut state = rotating(Step::Promote, 1030);
    let seen = at(&state);
    let promoted = promote(&mut state, &seen, t(1031), &policy()).unwrap();
    assert_eq!(promoted.current, "k2");
    assert_eq!(promoted.previous.as_deref(), Some("k1"));
    assert!(promoted.dropped.is_none());
    assert_eq!(state.current.as_ref().unwrap().id, "k2");
    assert!(state.current.as_ref().unwrap().expires_at.is_none());
    let previous = state.previous.as_ref().unwrap();
    assert_eq!(
        (previous.id.as_str(), previous.expires_at),
        ("k1", Some(t(1331)))
    );
    assert!(state.pending.is_none() && state.rotation.is_none());
    assert_eq!((state.rotations, state.last_rotated_at), (2, Some(t(1031))));
    let served: Vec<_> = state
        .served(t(1031))
        .keys
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(served, vec!["k2", "k1"]);
    assert!(
        state.served(t(1331)).keys.iter().all(|k| k.id != "k1"),
        "expired: not served"
    );
}

#[test]
fn a_rotation_finishing_within_the_overlap_drops_the_older_previous() {
    let mut state = with_previous(rotating(Step::Promote, 1030), 5000, None, None);
    let seen = at(&state);
    let promoted = promote(&mut state, &seen, t(1031), &policy()).unwrap();
    assert_eq!(promoted.dropped.as_deref(), Some("k0"));
    assert_eq!(
        state.served(t(1031)).keys.len(),
        2,
        "never more than two live keys"
    );
}

#[test]
fn the_initial_rotation_has_no_previous() {
    let mut state = LinkKeyState::empty("epicor");
    begin(&mut state, "rot-1", RotationReason::Initial, "a", t(0)).unwrap();
    let attempt = at(&state);
    created(
        &mut state,
        &attempt,
        StoredKey::generate("rot-1", t(0)).unwrap(),
        t(0),
        &policy(),
    )
    .unwrap();
    assert_eq!(
        state.served(t(0)).keys[0].state,
        crate::linkkeys::model::ServedState::Pending
    );
    state.rotation.as_mut().unwrap().step = Step::Promote;
    let seen = at(&state);
    let promoted = promote(&mut state, &seen, t(30), &policy()).unwrap();
    assert!(promoted.previous.is_none() && state.previous.is_none());
}

#[test]
fn retire_and_usage_guards() {
    let mut state = with_previous(stable(0), 300, None, None);
    assert!(retire(&mut state, "k9").is_err());
    assert!(record_use(&mut state, "k1", t(50), t(40)), "clamped to now");
    assert_eq!(state.current.as_ref().unwrap().last_seen, Some(t(40)));
    assert!(
        !record_use(&mut state, "k1", t(30), t(60)),
        "never moves back"
    );
    assert!(
        !record_use(&mut state, "nope", t(30), t(60)),
        "unknown id ignored"
    );
    retire(&mut state, "k0").unwrap();
    assert!(state.previous.is_none());
}

#[test]
fn the_document_round_trips_and_debug_hides_keys() {
    let state = rotating(Step::Test, 1030);
    let json = state.to_json().unwrap();
    let back = LinkKeyState::from_json(&json).unwrap();
    assert_eq!(back, state);
    let debug = format!("{state:?}");
    let text = state.current.as_ref().unwrap().key.expose().to_owned();
    assert!(!debug.contains(&text), "{debug}");
    let mut future = serde_json::from_slice::<serde_json::Value>(&json).unwrap();
    future["format"] = 99.into();
    assert!(LinkKeyState::from_json(future.to_string().as_bytes()).is_err());
}
