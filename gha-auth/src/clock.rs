//! Injectable time.
//!
//! Everything in gha-auth that reads the time or waits for a moment goes through a [`Clock`], so
//! rotation, expiry and renewal can be tested with compressed time ([`ManualClock`]) instead of
//! real waits. `clippy.toml` bans the direct system-clock calls elsewhere.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;

/// A boxed future returned by [`Clock::sleep_until`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of the current time and of timers that follow it.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// Completes once [`Clock::now`] has reached `deadline`.
    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep;

    /// The current instant in whole seconds since the Unix epoch (JWT `NumericDate`).
    fn unix_seconds(&self) -> i64 {
        self.now().timestamp()
    }

    /// Completes after `duration` has passed on this clock.
    fn sleep(&self, duration: TimeDelta) -> Sleep {
        self.sleep_until(self.now() + duration)
    }
}

/// A clock shared between tasks.
pub type SharedClock = Arc<dyn Clock>;

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// A [`SharedClock`] reading the wall clock.
    pub fn shared() -> SharedClock {
        Arc::new(Self)
    }
}

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the wall clock
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep {
        let wait = (deadline - self.now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that only moves when told to; timers created from it fire when it is advanced past
/// their deadline.
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
    ticks: watch::Sender<DateTime<Utc>>,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish()
    }
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        let (ticks, _) = watch::channel(start);
        Self {
            now: Arc::new(Mutex::new(start)),
            ticks,
        }
    }

    /// A clock stopped at the given Unix time in seconds (clamped to the epoch if out of range).
    pub fn at_unix(seconds: i64) -> Self {
        Self::new(DateTime::from_timestamp(seconds, 0).unwrap_or_default())
    }

    /// Moves the clock to `instant` (never backwards) and wakes timers that are due.
    pub fn set(&self, instant: DateTime<Utc>) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        if instant > *now {
            *now = instant;
            self.ticks.send_replace(instant);
        }
    }

    /// Moves the clock forward by `delta`.
    pub fn advance(&self, delta: TimeDelta) {
        let target = self.now() + delta;
        self.set(target);
    }

    /// This clock as a [`SharedClock`].
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep {
        let mut ticks = self.ticks.subscribe();
        Box::pin(async move {
            // `wait_for` checks the current value first, so a deadline already passed returns at once.
            // An error means every sender is gone: the clock can never reach the deadline.
            if ticks.wait_for(|now| *now >= deadline).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_wakes_timers_when_advanced() {
        let clock = ManualClock::at_unix(1_000);
        let sleep = clock.sleep(TimeDelta::seconds(30));
        let handle = tokio::spawn(sleep);
        clock.advance(TimeDelta::seconds(10));
        tokio::task::yield_now().await;
        assert!(!handle.is_finished());
        clock.advance(TimeDelta::seconds(25));
        tokio::time::timeout(std::time::Duration::from_secs(5), handle)
            .await
            .expect("timer fired")
            .expect("task ran");
        assert_eq!(clock.unix_seconds(), 1_035);
    }

    #[test]
    fn manual_clock_never_goes_backwards() {
        let clock = ManualClock::at_unix(500);
        clock.set(DateTime::from_timestamp(100, 0).unwrap());
        assert_eq!(clock.unix_seconds(), 500);
    }

    #[tokio::test]
    async fn past_deadline_returns_immediately() {
        let clock = ManualClock::at_unix(500);
        tokio::time::timeout(
            std::time::Duration::from_secs(1),
            clock.sleep_until(DateTime::from_timestamp(10, 0).unwrap()),
        )
        .await
        .expect("already due");
    }
}
