//! Lifecycle tests driven by a [`ManualClock`].

use std::collections::BTreeSet;

use chrono::TimeDelta;

use super::*;
use crate::clock::{Clock, ManualClock};
use crate::keys::Algorithm;

fn key() -> SigningKey {
    SigningKey::generate(Algorithm::ES256).unwrap()
}

fn published(ring: &KeyRing, now: DateTime<Utc>) -> BTreeSet<String> {
    ring.jwks(now)
        .keys
        .into_iter()
        .filter_map(|k| k.kid)
        .collect()
}

fn count_active(ring: &KeyRing) -> usize {
    ring.keys()
        .iter()
        .filter(|k| k.state == KeyState::Active)
        .count()
}

#[test]
fn next_key_is_published_before_it_signs() {
    let schedule = KeySchedule::default();
    let clock = ManualClock::at_unix(1_700_000_000);
    let first = key();
    let mut ring = KeyRing::with_initial(first.clone(), clock.now());
    assert_eq!(ring.active(clock.now()).unwrap().kid(), first.kid());

    // Not due until publish_ahead before the rotation period ends.
    clock.advance(schedule.rotation_period - schedule.publish_ahead - TimeDelta::seconds(1));
    assert!(!ring.needs_new_next(clock.now(), &schedule));
    clock.advance(TimeDelta::seconds(1));
    assert!(ring.needs_new_next(clock.now(), &schedule));

    let second = key();
    let added_at = clock.now();
    let activates_at = ring.add_next(second.clone(), added_at, &schedule).unwrap();
    assert_eq!(activates_at - added_at, schedule.publish_ahead);
    assert!(!ring.needs_new_next(clock.now(), &schedule));
    assert!(
        ring.add_next(key(), clock.now(), &schedule).is_err(),
        "only one pending next key"
    );

    // Published at once, but the first key keeps signing until the handover.
    assert!(published(&ring, clock.now()).contains(second.kid()));
    assert_eq!(ring.get(second.kid()).unwrap().state, KeyState::Next);
    clock.set(activates_at - TimeDelta::seconds(1));
    assert!(ring.advance(clock.now(), &schedule).is_empty());
    assert_eq!(ring.active(clock.now()).unwrap().kid(), first.kid());

    // A verifier that cached the JWKS as late as one max-age before the handover already has it.
    let cached_at = activates_at - schedule.jwks_max_age;
    assert!(cached_at >= added_at);
    assert!(published(&ring, cached_at).contains(second.kid()));

    clock.set(activates_at);
    assert_eq!(
        ring.active(clock.now()).unwrap().kid(),
        second.kid(),
        "active even before advance"
    );
    let transitions = ring.advance(clock.now(), &schedule);
    assert_eq!(
        transitions,
        [
            Transition::Retired {
                kid: first.kid().to_owned(),
                at: activates_at
            },
            Transition::Activated {
                kid: second.kid().to_owned(),
                at: activates_at
            },
        ]
    );
    assert_eq!(count_active(&ring), 1);
}

#[test]
fn on_demand_rotation_still_publishes_ahead() {
    let schedule = KeySchedule::default();
    let clock = ManualClock::at_unix(1_700_000_000);
    let mut ring = KeyRing::with_initial(key(), clock.now());
    let too_soon = clock.now() + schedule.publish_ahead - TimeDelta::seconds(1);
    assert!(
        ring.add_next_at(key(), clock.now(), too_soon, &schedule)
            .is_err()
    );
    let soonest = clock.now() + schedule.publish_ahead;
    ring.add_next_at(key(), clock.now(), soonest, &schedule)
        .unwrap();
    clock.set(soonest);
    assert_eq!(ring.advance(clock.now(), &schedule).len(), 2);
}

#[test]
fn retired_key_stays_until_its_tokens_expire_then_leaves() {
    let schedule = KeySchedule::default();
    let clock = ManualClock::at_unix(1_700_000_000);
    let first = key();
    let mut ring = KeyRing::with_initial(first.clone(), clock.now());
    clock.advance(schedule.rotation_period - schedule.publish_ahead);
    let handover = ring.add_next(key(), clock.now(), &schedule).unwrap();
    clock.set(handover);
    ring.advance(clock.now(), &schedule);

    let retired = ring.get(first.kid()).unwrap();
    assert_eq!(retired.state, KeyState::Retired);
    assert_eq!(retired.retires_at, Some(handover));
    assert_eq!(retired.remove_at, Some(handover + schedule.retain_retired));

    // The last token it signed (just before the handover) is valid up to lifetime + leeway later.
    clock.set(handover + schedule.max_token_lifetime + schedule.leeway);
    assert!(ring.advance(clock.now(), &schedule).is_empty());
    assert!(published(&ring, clock.now()).contains(first.kid()));

    clock.set(handover + schedule.retain_retired - TimeDelta::seconds(1));
    assert!(ring.advance(clock.now(), &schedule).is_empty());
    assert!(published(&ring, clock.now()).contains(first.kid()));

    clock.set(handover + schedule.retain_retired);
    assert!(
        !published(&ring, clock.now()).contains(first.kid()),
        "jwks() hides it on time"
    );
    let transitions = ring.advance(clock.now(), &schedule);
    assert_eq!(
        transitions,
        [Transition::Removed {
            kid: first.kid().to_owned(),
            at: handover + schedule.retain_retired
        }]
    );
    assert!(ring.get(first.kid()).is_none());
    assert_eq!(ring.keys().len(), 1);
}

/// Runs the server's loop for several rotations in five-minute steps and checks, for every token
/// signed along the way, that a verifier holding any JWKS copy it may still cache has the key.
#[test]
fn exactly_one_active_and_no_token_ever_lacks_its_key() {
    let schedule = KeySchedule {
        rotation_period: TimeDelta::hours(6),
        ..KeySchedule::default()
    };
    schedule.validate().unwrap();
    let step = TimeDelta::minutes(5);
    let clock = ManualClock::at_unix(1_700_000_000);
    let mut ring = KeyRing::with_initial(key(), clock.now());
    let mut history: Vec<(DateTime<Utc>, String, BTreeSet<String>)> = Vec::new();
    let mut activations = 0;
    for _ in 0..(4 * 6 * 12) {
        let now = clock.now();
        for transition in ring.advance(now, &schedule) {
            if matches!(transition, Transition::Activated { .. }) {
                activations += 1;
            }
        }
        if ring.needs_new_next(now, &schedule) {
            ring.add_next(key(), now, &schedule).unwrap();
        }
        assert_eq!(count_active(&ring), 1, "at {now}");
        let signer = ring.active(now).unwrap().kid().to_owned();
        history.push((now, signer, published(&ring, now)));
        clock.advance(step);
    }
    assert!(activations >= 3, "{activations}");

    let token_window = schedule.max_token_lifetime + schedule.leeway;
    for (signed_at, signer, _) in &history {
        for (fetched_at, _, jwks) in &history {
            // Any copy fetched up to one max-age before the token was signed, until the token dies.
            let usable_from = *signed_at - schedule.jwks_max_age;
            let usable_to = *signed_at + token_window;
            if *fetched_at > usable_from && *fetched_at <= usable_to {
                assert!(
                    jwks.contains(signer),
                    "token signed at {signed_at}, JWKS fetched at {fetched_at}"
                );
            }
        }
    }
}

#[test]
fn emergency_rotation_replaces_every_key_at_once() {
    let schedule = KeySchedule::default();
    let clock = ManualClock::at_unix(1_700_000_000);
    let leaked = key();
    let mut ring = KeyRing::with_initial(leaked.clone(), clock.now());
    clock.advance(schedule.rotation_period - schedule.publish_ahead);
    let pending = key();
    ring.add_next(pending.clone(), clock.now(), &schedule)
        .unwrap();

    clock.advance(TimeDelta::minutes(1));
    let fresh = key();
    let transitions = ring.emergency_rotate(fresh.clone(), clock.now());
    assert_eq!(
        transitions,
        [
            Transition::Removed {
                kid: leaked.kid().to_owned(),
                at: clock.now()
            },
            Transition::Removed {
                kid: pending.kid().to_owned(),
                at: clock.now()
            },
            Transition::Activated {
                kid: fresh.kid().to_owned(),
                at: clock.now()
            },
        ]
    );
    assert_eq!(ring.active(clock.now()).unwrap().kid(), fresh.kid());
    assert_eq!(
        published(&ring, clock.now()),
        BTreeSet::from([fresh.kid().to_owned()])
    );
    assert_eq!(count_active(&ring), 1);
    // The regular schedule restarts from the new key.
    assert!(!ring.needs_new_next(clock.now(), &schedule));
}

#[test]
fn jwks_lists_newest_first_and_empty_ring_has_no_signer() {
    let schedule = KeySchedule::default();
    let clock = ManualClock::at_unix(1_700_000_000);
    let empty = KeyRing::new();
    assert!(empty.active(clock.now()).is_none());
    assert!(empty.needs_new_next(clock.now(), &schedule));
    assert!(empty.jwks(clock.now()).keys.is_empty());

    let first = key();
    let mut ring = KeyRing::with_initial(first.clone(), clock.now());
    clock.advance(schedule.rotation_period);
    let second = key();
    ring.add_next(second.clone(), clock.now(), &schedule)
        .unwrap();
    let kids: Vec<_> = ring
        .jwks(clock.now())
        .keys
        .into_iter()
        .filter_map(|k| k.kid)
        .collect();
    assert_eq!(kids, [second.kid(), first.kid()]);
}
