//! The secret cache: what makes a broker read cheap, and what keeps serving through a short
//! outage of the source.
//!
//! Per path, the value last read from the source is served from memory for `cache_ttl`
//! ([`Freshness::Fresh`]). After that the next request reads the source again — one read per
//! path at a time (single flight: concurrent requests wait for it, or get the cached value at
//! once while it runs). When the source fails, the cached value keeps being served until
//! `stale_window` has passed since the last successful read ([`Freshness::Stale`]); the source
//! is then tried again at most every [`CachePolicy::retry`], so an outage does not turn every
//! request into a slow failing call. Past the window the answer is
//! [`CacheError::Unavailable`] (503 with `Retry-After`). When the source answers again the next
//! attempt refreshes the value: recovery needs no restart.
//!
//! The schedule runs on the injected [`gha_auth::Clock`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use chrono::{DateTime, TimeDelta, Utc};
use gha_auth::SharedClock;
use gha_auth::broker::SecretData;

use super::source::{SecretSource, SourceError};

/// Most paths cached at once; reads of further paths go to the source uncached.
const MAX_ENTRIES: usize = 10_000;

/// How long values are served, and how long stale values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CachePolicy {
    /// Fresh for this long after a successful read.
    pub(crate) ttl: TimeDelta,
    /// Served stale until this long after the last successful read.
    pub(crate) stale_window: TimeDelta,
    /// After a failed read, the source is not asked again for this long.
    pub(crate) retry: TimeDelta,
}

impl CachePolicy {
    /// `ttl` and `stale_window`; retries every `min(ttl, 5s)`.
    pub(crate) fn new(ttl: TimeDelta, stale_window: TimeDelta) -> Self {
        Self {
            ttl,
            stale_window,
            retry: ttl.min(TimeDelta::seconds(5)).max(TimeDelta::seconds(1)),
        }
    }
}

/// The state of a cached value at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// Serve it; no need to ask the source.
    Fresh,
    /// Ask the source; serve it if the source fails.
    Stale,
    /// Too old to serve at all.
    Expired,
}

/// The freshness of a value read successfully at `fetched_at`, at `now`.
pub(crate) fn freshness(
    now: DateTime<Utc>,
    fetched_at: DateTime<Utc>,
    policy: &CachePolicy,
) -> Freshness {
    let age = now - fetched_at;
    if age < policy.ttl {
        Freshness::Fresh
    } else if age < policy.stale_window.max(policy.ttl) {
        Freshness::Stale
    } else {
        Freshness::Expired
    }
}

/// A value read from the source.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) struct CachedSecret {
    /// Its version.
    pub(crate) version: u64,
    /// Its fields.
    pub(crate) data: SecretData,
    /// When the successful read started.
    pub(crate) fetched_at: DateTime<Utc>,
}

/// How a read was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadOutcome {
    /// From memory, fresh.
    Hit,
    /// Read from the source just now.
    Miss,
    /// From memory, past its TTL, because the source failed.
    Stale,
}

impl ReadOutcome {
    /// The metric label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ReadOutcome::Hit => "hit",
            ReadOutcome::Miss => "miss",
            ReadOutcome::Stale => "stale",
        }
    }
}

/// A served value.
#[derive(Debug, Clone)]
pub(crate) struct CacheRead {
    /// The value.
    pub(crate) secret: Arc<CachedSecret>,
    /// How it was served.
    pub(crate) outcome: ReadOutcome,
    /// When the caller should ask again (at least 1 s).
    pub(crate) max_age_seconds: u64,
}

/// A read that could not be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CacheError {
    /// No such secret.
    NotFound,
    /// The source fails and no value young enough is cached: try again after this many seconds.
    Unavailable {
        /// Seconds until the next attempt.
        retry_after: u64,
    },
}

#[derive(Default)]
struct EntryState {
    value: Option<Arc<CachedSecret>>,
    /// After a failure: do not ask the source before this instant.
    retry_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct Entry {
    state: Mutex<EntryState>,
    /// Held while this path is read from the source (single flight).
    refresh: tokio::sync::Mutex<()>,
}

impl Entry {
    fn state(&self) -> std::sync::MutexGuard<'_, EntryState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What to do with the state of an entry at some instant, decided under its lock.
enum Plan {
    Serve(CacheRead),
    Fail(CacheError),
    Fetch,
}

/// The cache in front of one [`SecretSource`].
pub(crate) struct SecretCache {
    source: Arc<dyn SecretSource>,
    clock: SharedClock,
    policy: CachePolicy,
    entries: RwLock<HashMap<String, Arc<Entry>>>,
}

impl fmt::Debug for SecretCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretCache")
            .field("source", &self.source)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

fn whole_seconds(delta: TimeDelta) -> u64 {
    u64::try_from(delta.num_seconds()).unwrap_or(0).max(1)
}

impl SecretCache {
    /// A cache over `source`.
    pub(crate) fn new(
        source: Arc<dyn SecretSource>,
        clock: SharedClock,
        policy: CachePolicy,
    ) -> Self {
        Self {
            source,
            clock,
            policy,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// How long values are served.
    pub(crate) fn policy(&self) -> &CachePolicy {
        &self.policy
    }

    /// The source's description.
    pub(crate) fn describe(&self) -> String {
        self.source.describe()
    }

    fn entry(&self, path: &str) -> Option<Arc<Entry>> {
        if let Some(entry) = self
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
        {
            return Some(Arc::clone(entry));
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = entries.get(path) {
            return Some(Arc::clone(entry));
        }
        if entries.len() >= MAX_ENTRIES {
            return None;
        }
        let entry = Arc::new(Entry::default());
        entries.insert(path.to_owned(), Arc::clone(&entry));
        Some(entry)
    }

    fn forget(&self, path: &str) {
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(path);
    }

    fn served(
        &self,
        secret: &Arc<CachedSecret>,
        outcome: ReadOutcome,
        now: DateTime<Utc>,
    ) -> CacheRead {
        let max_age = match outcome {
            ReadOutcome::Hit | ReadOutcome::Miss => self.policy.ttl - (now - secret.fetched_at),
            ReadOutcome::Stale => self.policy.retry,
        };
        CacheRead {
            secret: Arc::clone(secret),
            outcome,
            max_age_seconds: whole_seconds(max_age),
        }
    }

    /// Decides from the entry's state alone. `fetching`: another request is reading the source.
    fn plan(&self, state: &EntryState, now: DateTime<Utc>, fetching: bool) -> Plan {
        let backing_off = state.retry_at.is_some_and(|at| now < at);
        match &state.value {
            Some(value) => match freshness(now, value.fetched_at, &self.policy) {
                Freshness::Fresh => Plan::Serve(self.served(value, ReadOutcome::Hit, now)),
                Freshness::Stale if backing_off || fetching => {
                    Plan::Serve(self.served(value, ReadOutcome::Stale, now))
                }
                Freshness::Stale | Freshness::Expired if !backing_off => Plan::Fetch,
                _ => Plan::Fail(self.unavailable(state, now)),
            },
            None if backing_off => Plan::Fail(self.unavailable(state, now)),
            None => Plan::Fetch,
        }
    }

    /// [`SecretCache::plan`] on the entry's current state; the lock is held only inside.
    fn plan_now(&self, entry: &Entry, fetching: bool) -> Plan {
        let state = entry.state();
        self.plan(&state, self.clock.now(), fetching)
    }

    fn unavailable(&self, state: &EntryState, now: DateTime<Utc>) -> CacheError {
        let retry_after = state.retry_at.map_or(self.policy.retry, |at| at - now);
        CacheError::Unavailable {
            retry_after: whole_seconds(retry_after),
        }
    }

    /// The secret at `path` (a valid, authorized path).
    pub(crate) async fn get(&self, path: &str) -> Result<CacheRead, CacheError> {
        let Some(entry) = self.entry(path) else {
            return self.read_uncached(path).await;
        };
        if let Plan::Serve(read) = self.plan_now(&entry, false) {
            return Ok(read);
        }
        let _flight = match entry.refresh.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                // Someone is reading the source: a stale value now beats waiting for it.
                if let Plan::Serve(read) = self.plan_now(&entry, true) {
                    return Ok(read);
                }
                entry.refresh.lock().await
            }
        };
        // The read we waited for may have settled it.
        let started = self.clock.now();
        match self.plan_now(&entry, false) {
            Plan::Serve(read) => return Ok(read),
            Plan::Fail(error) => return Err(error),
            Plan::Fetch => {}
        }
        let result = self.source.read(path).await;
        let now = self.clock.now();
        let mut state = entry.state();
        match result {
            Ok(fresh) => {
                let secret = Arc::new(CachedSecret {
                    version: fresh.version,
                    data: fresh.data,
                    fetched_at: started,
                });
                state.value = Some(Arc::clone(&secret));
                state.retry_at = None;
                Ok(self.served(&secret, ReadOutcome::Miss, now))
            }
            Err(SourceError::NotFound) => {
                // Deleted (or never there): forget it so deleted values are not served.
                state.value = None;
                state.retry_at = None;
                drop(state);
                self.forget(path);
                Err(CacheError::NotFound)
            }
            Err(SourceError::Failed(reason)) => {
                state.retry_at = Some(now + self.policy.retry);
                let stale = state
                    .value
                    .as_ref()
                    .filter(|v| freshness(now, v.fetched_at, &self.policy) != Freshness::Expired);
                tracing::warn!(path, error = %reason, serving_stale = stale.is_some(),
                    "broker: secret source failed");
                match stale {
                    Some(value) => Ok(self.served(value, ReadOutcome::Stale, now)),
                    None => Err(self.unavailable(&state, now)),
                }
            }
        }
    }

    async fn read_uncached(&self, path: &str) -> Result<CacheRead, CacheError> {
        let started = self.clock.now();
        match self.source.read(path).await {
            Ok(fresh) => {
                let secret = Arc::new(CachedSecret {
                    version: fresh.version,
                    data: fresh.data,
                    fetched_at: started,
                });
                Ok(self.served(&secret, ReadOutcome::Miss, self.clock.now()))
            }
            Err(SourceError::NotFound) => Err(CacheError::NotFound),
            Err(SourceError::Failed(reason)) => {
                tracing::warn!(path, error = %reason, "broker: secret source failed");
                Err(CacheError::Unavailable {
                    retry_after: whole_seconds(self.policy.retry),
                })
            }
        }
    }

    /// Each cached path with its version and when it was read (never a value), by path.
    pub(crate) fn cached(&self) -> Vec<(String, u64, DateTime<Utc>)> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let mut cached: Vec<_> = entries
            .iter()
            .filter_map(|(path, e)| {
                e.state()
                    .value
                    .as_ref()
                    .map(|v| (path.clone(), v.version, v.fetched_at))
            })
            .collect();
        cached.sort();
        cached
    }

    /// Number of cached paths and the age of the oldest cached value, for metrics.
    pub(crate) fn ages(&self) -> (usize, Option<TimeDelta>) {
        let now = self.clock.now();
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let oldest = entries
            .values()
            .filter_map(|e| e.state().value.as_ref().map(|v| now - v.fetched_at))
            .max();
        (entries.len(), oldest)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use async_trait::async_trait;
    use gha_auth::{ManualClock, SecretString};

    use super::super::source::SourcedSecret;
    use super::*;

    /// A source whose answers the test controls (a unit-test double for the cache logic only;
    /// the e2e tests use real OpenBao).
    #[derive(Debug, Default)]
    struct Scripted {
        version: AtomicU64,
        failing: AtomicBool,
        reads: AtomicU64,
    }

    #[async_trait]
    impl SecretSource for Scripted {
        async fn read(&self, _path: &str) -> Result<SourcedSecret, SourceError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if self.failing.load(Ordering::SeqCst) {
                return Err(SourceError::Failed("down".into()));
            }
            match self.version.load(Ordering::SeqCst) {
                0 => Err(SourceError::NotFound),
                version => {
                    let mut data = SecretData::new();
                    data.insert("v", SecretString::new(version.to_string()));
                    Ok(SourcedSecret { version, data })
                }
            }
        }
        fn describe(&self) -> String {
            "scripted".into()
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + seconds, 0).unwrap()
    }

    #[test]
    fn freshness_table() {
        let policy = CachePolicy::new(TimeDelta::seconds(30), TimeDelta::seconds(600));
        for (age, expected) in [
            (0, Freshness::Fresh),
            (29, Freshness::Fresh),
            (30, Freshness::Stale),
            (599, Freshness::Stale),
            (600, Freshness::Expired),
            (10_000, Freshness::Expired),
        ] {
            assert_eq!(freshness(at(age), at(0), &policy), expected, "age {age}");
        }
        // A stale window shorter than the TTL means no stale serving at all.
        let strict = CachePolicy::new(TimeDelta::seconds(30), TimeDelta::seconds(0));
        assert_eq!(freshness(at(30), at(0), &strict), Freshness::Expired);
        assert_eq!(policy.retry, TimeDelta::seconds(5));
    }

    #[tokio::test]
    async fn hit_then_refresh_then_stale_then_unavailable_then_recovery() {
        let clock = ManualClock::new(at(0));
        let source = Arc::new(Scripted::default());
        source.version.store(1, Ordering::SeqCst);
        let cache = SecretCache::new(
            source.clone(),
            clock.shared(),
            CachePolicy::new(TimeDelta::seconds(30), TimeDelta::seconds(600)),
        );
        let read = cache.get("a").await.unwrap();
        assert_eq!(
            (read.outcome, read.secret.version, read.max_age_seconds),
            (ReadOutcome::Miss, 1, 30)
        );
        clock.advance(TimeDelta::seconds(10));
        let read = cache.get("a").await.unwrap();
        assert_eq!((read.outcome, read.max_age_seconds), (ReadOutcome::Hit, 20));
        assert_eq!(source.reads.load(Ordering::SeqCst), 1);

        // Past the TTL: read again, and a new version shows.
        source.version.store(2, Ordering::SeqCst);
        clock.advance(TimeDelta::seconds(25));
        let read = cache.get("a").await.unwrap();
        assert_eq!((read.outcome, read.secret.version), (ReadOutcome::Miss, 2));

        // The source fails: stale within the window, without asking again during the retry.
        source.failing.store(true, Ordering::SeqCst);
        clock.advance(TimeDelta::seconds(31));
        let read = cache.get("a").await.unwrap();
        assert_eq!(
            (read.outcome, read.secret.version, read.max_age_seconds),
            (ReadOutcome::Stale, 2, 5)
        );
        let reads = source.reads.load(Ordering::SeqCst);
        let read = cache.get("a").await.unwrap();
        assert_eq!(read.outcome, ReadOutcome::Stale);
        assert_eq!(source.reads.load(Ordering::SeqCst), reads, "backing off");

        // Past the window: unavailable.
        clock.advance(TimeDelta::seconds(600));
        assert_eq!(
            cache.get("a").await.unwrap_err(),
            CacheError::Unavailable { retry_after: 5 }
        );
        assert_eq!(
            cache.get("a").await.unwrap_err(),
            CacheError::Unavailable { retry_after: 5 }
        );

        // The source is back: the next attempt after the retry delay recovers.
        source.failing.store(false, Ordering::SeqCst);
        source.version.store(3, Ordering::SeqCst);
        clock.advance(TimeDelta::seconds(5));
        let read = cache.get("a").await.unwrap();
        assert_eq!((read.outcome, read.secret.version), (ReadOutcome::Miss, 3));
        assert_eq!(cache.ages().0, 1);
    }

    #[tokio::test]
    async fn deleted_secrets_are_forgotten_and_never_served_stale() {
        let clock = ManualClock::new(at(0));
        let source = Arc::new(Scripted::default());
        source.version.store(1, Ordering::SeqCst);
        let cache = SecretCache::new(
            source.clone(),
            clock.shared(),
            CachePolicy::new(TimeDelta::seconds(30), TimeDelta::seconds(600)),
        );
        cache.get("a").await.unwrap();
        source.version.store(0, Ordering::SeqCst);
        clock.advance(TimeDelta::seconds(30));
        assert_eq!(cache.get("a").await.unwrap_err(), CacheError::NotFound);
        assert_eq!(cache.ages(), (0, None));
        // With nothing cached, a failing source is unavailable at once.
        source.failing.store(true, Ordering::SeqCst);
        assert!(matches!(
            cache.get("a").await,
            Err(CacheError::Unavailable { .. })
        ));
    }
}
