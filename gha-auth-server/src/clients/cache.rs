//! A short-lived cache of clients for the token endpoint, so issuing a token needs no database
//! round trip.
//!
//! Changes made through this process's registry invalidate their entry at once. Changes made by
//! another process (`gha-auth clients disable` while the server runs, another replica) take
//! effect within `clients.cache_ttl`; a secret that does not match a cached client is checked
//! again against the store, so a freshly rotated secret works at once.
//!
//! While the store is unreachable, an entry younger than the outage window still answers
//! ([`ClientCache::get_during_outage`]): client authentication, hence `client_credentials`, keeps
//! working through a database outage for that long.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use chrono::{DateTime, TimeDelta, Utc};

use super::Client;

/// Entries kept at most; the cache is emptied when it is full (cheap, and rare).
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug)]
pub(super) struct ClientCache {
    ttl: TimeDelta,
    outage_window: TimeDelta,
    entries: RwLock<HashMap<String, (Client, DateTime<Utc>)>>,
}

impl ClientCache {
    pub(super) fn new(ttl: TimeDelta, outage_window: TimeDelta) -> Self {
        Self {
            ttl,
            outage_window,
            entries: RwLock::new(HashMap::new()),
        }
    }

    pub(super) fn get(&self, id: &str, now: DateTime<Utc>) -> Option<Client> {
        if self.ttl <= TimeDelta::zero() {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(id)
            .filter(|(_, at)| now - *at < self.ttl && now >= *at)
            .map(|(c, _)| c.clone())
    }

    /// The entry for `id` if it was read from the store within the outage window: for when the
    /// store cannot be reached. An entry stored after `now` (a concurrent request whose read
    /// succeeded while this one's failed, as when the database comes back) is only fresher.
    pub(super) fn get_during_outage(&self, id: &str, now: DateTime<Utc>) -> Option<Client> {
        if self.ttl <= TimeDelta::zero() || self.outage_window <= TimeDelta::zero() {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(id)
            .filter(|(_, at)| now - *at < self.outage_window)
            .map(|(c, _)| c.clone())
    }

    pub(super) fn put(&self, client: &Client, now: DateTime<Utc>) {
        if self.ttl <= TimeDelta::zero() {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(client.id.clone(), (client.clone(), now));
    }

    pub(super) fn invalidate(&self, id: &str) {
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}
