//! Which published key goes in which edge slot: a pure function of the authority's key states
//! (`GET /v1/keys`), so it is table-tested. See `docs/decisions/0006-edge-key-slots.md`.
//!
//! - only ES256 keys count (EC P-256, `alg` absent or `ES256`, `use` absent or `sig`): the edge
//!   checks ES256 only, so an EdDSA or RSA key of the authority is never put in a slot;
//! - `active`: the active key (the one signing now);
//! - `next`: the pending next key that signs first;
//! - `retired`: the key retired last, the one whose tokens are the youngest still valid. Older
//!   retired keys stay in the JWKS for the middleware, but signed nothing for at least a rotation
//!   period: at the edge, their remaining tokens are refused and the API is never reached;
//! - a slot with no key is empty.

use chrono::{DateTime, Utc};
use gha_auth::keys::{Jwk, KeyState};

use crate::wellknown::KeyStatus;

/// A key chosen for a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlotKey {
    /// Its key id (public; logged when a slot changes).
    pub(crate) kid: String,
    /// The public key.
    pub(crate) jwk: Jwk,
}

/// The three slots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Slots {
    /// The key that signs next.
    pub(crate) next: Option<SlotKey>,
    /// The key that signs now.
    pub(crate) active: Option<SlotKey>,
    /// The key that signed last before the active one.
    pub(crate) retired: Option<SlotKey>,
}

impl Slots {
    /// The slots in file order: next, active, retired.
    pub(crate) fn in_order(&self) -> [Option<&SlotKey>; 3] {
        [
            self.next.as_ref(),
            self.active.as_ref(),
            self.retired.as_ref(),
        ]
    }
}

/// Whether the edge can use `jwk`: an ES256 signing key.
pub(crate) fn is_es256(jwk: &Jwk) -> bool {
    jwk.kty == "EC"
        && jwk.crv.as_deref() == Some("P-256")
        && jwk.alg.as_deref().is_none_or(|alg| alg == "ES256")
        && jwk
            .key_use
            .as_deref()
            .is_none_or(|key_use| key_use == "sig")
}

/// The slots for the published `keys` (in any order).
pub(crate) fn assign(keys: &[KeyStatus]) -> Slots {
    let usable = || keys.iter().filter(|k| is_es256(&k.jwk));
    let in_state = |state: KeyState| usable().filter(move |k| k.state == state);
    // Ties (never made by one authority) are broken by key id, so the choice does not depend on
    // the order of the list.
    let active = in_state(KeyState::Active).max_by(|a, b| {
        a.activates_at
            .cmp(&b.activates_at)
            .then_with(|| a.kid.cmp(&b.kid))
    });
    let next = in_state(KeyState::Next).min_by(|a, b| {
        a.activates_at
            .cmp(&b.activates_at)
            .then_with(|| a.kid.cmp(&b.kid))
    });
    let retired_at = |k: &KeyStatus| -> (Option<DateTime<Utc>>, DateTime<Utc>) {
        (k.retires_at, k.activates_at)
    };
    let retired = in_state(KeyState::Retired).max_by(|a, b| {
        retired_at(a)
            .cmp(&retired_at(b))
            .then_with(|| a.kid.cmp(&b.kid))
    });
    let slot = |k: Option<&KeyStatus>| {
        k.map(|k| SlotKey {
            kid: k.kid.clone(),
            jwk: k.jwk.clone(),
        })
    };
    Slots {
        next: slot(next),
        active: slot(active),
        retired: slot(retired),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key `name` in `state`, activating at second `activates` (retired at `retires`).
    fn key(name: &str, state: KeyState, activates: i64, retires: Option<i64>) -> KeyStatus {
        let at = |s: i64| DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
        KeyStatus {
            kid: name.to_owned(),
            state,
            activates_at: at(activates),
            retires_at: retires.map(at),
            remove_at: retires.map(|r| at(r + 3600)),
            jwk: Jwk {
                kty: "EC".into(),
                crv: Some("P-256".into()),
                x: Some(format!("x-{name}")),
                y: Some(format!("y-{name}")),
                n: None,
                e: None,
                kid: Some(name.to_owned()),
                alg: Some("ES256".into()),
                key_use: Some("sig".into()),
                key_ops: None,
            },
        }
    }

    fn with_jwk(mut k: KeyStatus, change: impl FnOnce(&mut Jwk)) -> KeyStatus {
        change(&mut k.jwk);
        k
    }

    fn kids(slots: &Slots) -> [Option<&str>; 3] {
        slots.in_order().map(|s| s.map(|k| k.kid.as_str()))
    }

    use KeyState::{Active, Next, Retired};

    /// A case: its name, the published keys, the expected kids in next, active, retired.
    type Case = (&'static str, Vec<KeyStatus>, [Option<&'static str>; 3]);

    #[test]
    fn slots_follow_the_key_states() {
        let rsa = |k: KeyStatus| {
            with_jwk(k, |j| {
                j.kty = "RSA".into();
                j.crv = None;
                j.alg = Some("RS256".into());
            })
        };
        let ed = |k: KeyStatus| {
            with_jwk(k, |j| {
                j.kty = "OKP".into();
                j.crv = Some("Ed25519".into());
                j.alg = Some("EdDSA".into());
            })
        };
        #[rustfmt::skip]
        let table: Vec<Case> = vec![
            ("nothing published", vec![], [None, None, None]),
            ("a new authority: one active key",
                vec![key("a", Active, 0, None)],
                [None, Some("a"), None]),
            ("a rotation published: next and active",
                vec![key("b", Next, 100, None), key("a", Active, 0, None)],
                [Some("b"), Some("a"), None]),
            ("the next key signs: active and retired (two keys, other states)",
                vec![key("b", Active, 100, None), key("a", Retired, 0, Some(100))],
                [None, Some("b"), Some("a")]),
            ("the following rotation: all three",
                vec![key("c", Next, 200, None), key("b", Active, 100, None), key("a", Retired, 0, Some(100))],
                [Some("c"), Some("b"), Some("a")]),
            ("rotations faster than retired keys leave: the last retired one",
                vec![
                    key("a", Retired, 0, Some(100)),
                    key("d", Next, 300, None),
                    key("b", Retired, 100, Some(200)),
                    key("c", Active, 200, None),
                ],
                [Some("d"), Some("c"), Some("b")]),
            ("emergency rotation: the new key alone",
                vec![key("e", Active, 250, None)],
                [None, Some("e"), None]),
            ("a next key without an active one (never made, handled)",
                vec![key("b", Next, 100, None)],
                [Some("b"), None, None]),
            ("two next keys (never made): the one that signs first",
                vec![key("c", Next, 300, None), key("b", Next, 200, None), key("a", Active, 0, None)],
                [Some("b"), Some("a"), None]),
            ("non-EC keys are ignored",
                vec![
                    rsa(key("r", Next, 200, None)),
                    key("b", Active, 100, None),
                    ed(key("o", Retired, 0, Some(100))),
                ],
                [None, Some("b"), None]),
            ("an algorithm change: the ES256 key retired, an EdDSA key active",
                vec![ed(key("o", Active, 100, None)), key("a", Retired, 0, Some(100))],
                [None, None, Some("a")]),
            ("EC keys of another curve, algorithm or use are ignored",
                vec![
                    with_jwk(key("p384", Next, 200, None), |j| j.crv = Some("P-384".into())),
                    with_jwk(key("es384", Active, 150, None), |j| j.alg = Some("ES384".into())),
                    with_jwk(key("enc", Retired, 120, Some(150)), |j| j.key_use = Some("enc".into())),
                    key("a", Retired, 0, Some(120)),
                ],
                [None, None, Some("a")]),
            ("alg and use may be absent",
                vec![with_jwk(key("a", Active, 0, None), |j| { j.alg = None; j.key_use = None; })],
                [None, Some("a"), None]),
        ];
        for (name, keys, expected) in table {
            let slots = assign(&keys);
            assert_eq!(kids(&slots), expected, "{name}");
            // The order of the list does not matter.
            let mut reversed = keys.clone();
            reversed.reverse();
            assert_eq!(assign(&reversed), slots, "{name}, reversed");
        }
    }

    #[test]
    fn a_rotation_sequence_moves_each_key_through_the_slots() {
        // The ring as `GET /v1/keys` shows it at each step of two scheduled rotations.
        let steps: Vec<(Vec<KeyStatus>, [Option<&str>; 3])> = vec![
            (vec![key("a", Active, 0, None)], [None, Some("a"), None]),
            (
                vec![key("b", Next, 100, None), key("a", Active, 0, None)],
                [Some("b"), Some("a"), None],
            ),
            (
                vec![key("b", Active, 100, None), key("a", Retired, 0, Some(100))],
                [None, Some("b"), Some("a")],
            ),
            (
                vec![
                    key("c", Next, 200, None),
                    key("b", Active, 100, None),
                    key("a", Retired, 0, Some(100)),
                ],
                [Some("c"), Some("b"), Some("a")],
            ),
            (
                vec![
                    key("c", Active, 200, None),
                    key("b", Retired, 100, Some(200)),
                    key("a", Retired, 0, Some(100)),
                ],
                [None, Some("c"), Some("b")],
            ),
            (
                vec![
                    key("c", Active, 200, None),
                    key("b", Retired, 100, Some(200)),
                ],
                [None, Some("c"), Some("b")],
            ),
        ];
        let mut previous = Slots::default();
        for (index, (keys, expected)) in steps.into_iter().enumerate() {
            let slots = assign(&keys);
            assert_eq!(kids(&slots), expected, "step {index}");
            // A key only ever moves towards retired: never back to next.
            if let (Some(was), Some(now)) = (&previous.active, &slots.next) {
                assert_ne!(was.kid, now.kid, "step {index}");
            }
            previous = slots;
        }
    }
}
