use super::*;
use crate::keys::LocalKeys;
use gha_auth::Clock as _;
use gha_auth::ManualClock;
use gha_auth::keys::{Algorithm, SigningKey};

fn inner(min: u64, max: u64) -> (Arc<Inner>, ManualClock) {
    let clock = ManualClock::at_unix(1_000_000);
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let inner = Arc::new(Inner {
        url: Url::parse("http://127.0.0.1:1/v1/revocations").unwrap(),
        min_interval: Duration::from_secs(min),
        max_interval: Duration::from_secs(max),
        verifier: FeedVerifier::new("https://auth", clock.shared()),
        keys: KeySource::Local(LocalKeys::new([key.verifying_key()]).unwrap()),
        revocations: Revocations::new(),
        clock: clock.shared(),
        client: reqwest::Client::new(),
        poll_lock: tokio::sync::Mutex::new(()),
        state: Mutex::new(State::default()),
        polled: tokio::sync::Notify::new(),
    });
    (inner, clock)
}

#[test]
fn max_age_is_bounded() {
    let (inner, _) = inner(5, 60);
    let with = |max_age| {
        inner
            .interval_for(fetch::CacheDirectives {
                max_age,
                no_cache: false,
            })
            .num_seconds()
    };
    assert_eq!(with(Some(1)), 5);
    assert_eq!(with(Some(20)), 20);
    assert_eq!(with(Some(86_400)), 60);
    assert_eq!(with(None), 30);
}

#[test]
fn schedule_polls_at_once_then_every_interval_and_backs_off_on_failure() {
    let (inner, clock) = inner(5, 60);
    let now = clock.now();
    assert_eq!(inner.next_poll(now), now, "first poll at once");
    {
        let mut state = inner.state.lock().unwrap();
        state.last_attempt = Some(now);
        state.interval = Some(TimeDelta::seconds(20));
    }
    assert_eq!(inner.next_poll(now), now + TimeDelta::seconds(20));
    let waits: Vec<i64> = (1..=7)
        .map(|failures| {
            inner.state.lock().unwrap().failures = failures;
            (inner.next_poll(now) - now).num_seconds()
        })
        .collect();
    assert_eq!(waits, [1, 2, 4, 8, 16, 20, 20]);
}

#[test]
fn only_new_entries_are_written() {
    let (inner, clock) = inner(5, 60);
    let now = clock.now().timestamp();
    let feed = |seq, jtis: &[&str], sub_before| FeedDocument {
        iss: "https://auth".into(),
        seq,
        iat: now,
        exp: now + 60,
        jtis: jtis
            .iter()
            .map(|j| gha_auth::revocation::RevokedJti {
                jti: (*j).to_owned(),
                exp: now + 600,
            })
            .collect(),
        subjects: vec![gha_auth::revocation::SubjectNotBefore {
            sub: "alice".into(),
            not_before: sub_before,
        }],
        clients: Vec::new(),
    };
    inner.apply(feed(1, &["a", "b"], now));
    let after_first = inner.revocations.generation();
    assert!(after_first >= 3);
    // The same content again: no write, cached tokens need no recheck.
    inner.apply(feed(1, &["a", "b"], now));
    assert_eq!(inner.revocations.generation(), after_first);
    // One new jti and a later not-before: two writes.
    inner.apply(feed(2, &["a", "b", "c"], now + 5));
    assert_eq!(inner.revocations.generation(), after_first + 2);
}
