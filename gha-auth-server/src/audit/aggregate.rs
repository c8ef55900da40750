//! [`Refusals`]: refusals counted in memory and written as one event per (actor, subject,
//! reason) and interval, so that a flood of refused requests costs no audit write each (every
//! row is a hash-chained write under the audit lock) and cannot fill the log.
//!
//! An identified actor's first refusals of an interval are still worth a row each
//! ([`Refusals::note`] says when to write one now); an anonymous request's never are: its actor
//! and the name it asked for are whatever the request says. The held keys are bounded: past
//! [`MAX_HELD`], further subjects are counted under [`MANY_SUBJECTS`].

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Distinct (actor, subject, reason) keys held until the flush.
pub(crate) const MAX_HELD: usize = 1024;

/// The subject recorded for refusals counted after [`MAX_HELD`] keys were held.
pub(crate) const MANY_SUBJECTS: &str = "<many subjects>";

/// A held refusal: actor, subject, reason.
pub(crate) type RefusalKey = (String, String, String);

#[derive(Debug, Default)]
struct Counts {
    written: HashMap<String, u32>,
    held: HashMap<RefusalKey, u64>,
}

/// Refusals since the last [`Refusals::drain`].
#[derive(Debug)]
pub(crate) struct Refusals {
    written_at_once: u32,
    counts: Mutex<Counts>,
}

impl Refusals {
    /// Up to `written_at_once` refusals per identified actor and interval are written as they
    /// happen; the rest are held.
    pub(crate) fn new(written_at_once: u32) -> Self {
        Self {
            written_at_once,
            counts: Mutex::new(Counts::default()),
        }
    }

    /// Counts one refusal. `true`: write it now (an identified actor under its allowance);
    /// `false`: it is held for the flush.
    pub(crate) fn note(&self, actor: Option<&str>, subject: &str, reason: &str) -> bool {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let Counts { written, held } = &mut *counts;
        if let Some(actor) = actor {
            let count = written.entry(actor.to_owned()).or_default();
            if *count < self.written_at_once {
                *count += 1;
                return true;
            }
        }
        let mut key = (
            actor.unwrap_or("anonymous").to_owned(),
            subject.to_owned(),
            reason.to_owned(),
        );
        if held.len() >= MAX_HELD && !held.contains_key(&key) {
            MANY_SUBJECTS.clone_into(&mut key.1);
        }
        *held.entry(key).or_default() += 1;
        false
    }

    /// The held refusals with their numbers; starts a new interval.
    pub(crate) fn drain(&self) -> Vec<(RefusalKey, u64)> {
        let counts =
            std::mem::take(&mut *self.counts.lock().unwrap_or_else(PoisonError::into_inner));
        counts.held.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_refusals_are_held_and_identified_ones_written_up_to_the_allowance() {
        let refusals = Refusals::new(2);
        for i in 0..100 {
            assert!(!refusals.note(None, &format!("name-{}", i % 3), "missing token"));
        }
        assert!(refusals.note(Some("svc"), "epicor", "unknown link key"));
        assert!(refusals.note(Some("svc"), "epicor", "unknown link key"));
        assert!(!refusals.note(Some("svc"), "epicor", "unknown link key"));
        let mut drained = refusals.drain();
        drained.sort();
        assert_eq!(drained.len(), 4);
        let anonymous: u64 = drained
            .iter()
            .filter(|((actor, _, _), _)| actor == "anonymous")
            .map(|(_, n)| n)
            .sum();
        assert_eq!(anonymous, 100);
        assert!(refusals.drain().is_empty());
        // A new interval: the allowance is back.
        assert!(refusals.note(Some("svc"), "epicor", "unknown link key"));
    }

    #[test]
    fn held_keys_are_bounded() {
        let refusals = Refusals::new(0);
        for i in 0..(MAX_HELD + 500) {
            refusals.note(None, &format!("name-{i}"), "missing token");
        }
        let drained = refusals.drain();
        assert_eq!(drained.len(), MAX_HELD + 1);
        let many = drained
            .iter()
            .find(|((_, subject, _), _)| subject == MANY_SUBJECTS)
            .map(|(_, n)| *n);
        assert_eq!(many, Some(500));
    }
}
