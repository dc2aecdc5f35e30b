//! Where "now" comes from, so token expiry can be tested at exact instants.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use pingpull::clock::{Clock, ManualClock};
//!
//! let clock = ManualClock::at_unix(1_700_000_000);
//! clock.advance(Duration::from_secs(1));
//! assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(1_700_000_001));
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The timeouts pingpull accepts for one request or one profile load (a ping, a
/// registration, a conformance case, the Pull endpoint's source): under a millisecond no
/// answer can arrive; over an hour a hung peer holds a connection (and an outbox lease)
/// for no purpose.
#[cfg(any(feature = "pull", feature = "ping"))]
pub(crate) const TIMEOUT_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_secs(3600);

/// [`TIMEOUT_RANGE`] as the errors say it.
#[cfg(any(feature = "pull", feature = "ping"))]
pub(crate) const TIMEOUT_RANGE_TEXT: &str = "between 1 ms and 1 hour";

/// A source of the current wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The operating system's clock. The default everywhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to; clones share the same instant.
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
}

impl ManualClock {
    /// A clock standing at `now`.
    pub fn new(now: SystemTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(now)),
        }
    }

    /// A clock standing at `secs` seconds after the Unix epoch.
    pub fn at_unix(secs: u64) -> Self {
        Self::new(UNIX_EPOCH + Duration::from_secs(secs))
    }

    /// Moves the clock to `now`.
    pub fn set(&self, now: SystemTime) {
        *self.lock() = now;
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SystemTime> {
        crate::sync::lock(&self.now)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.lock()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

/// Seconds since the Unix epoch, with the fraction; negative before 1970.
pub(crate) fn unix_seconds(time: SystemTime) -> f64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    }
}

/// Milliseconds since the Unix epoch; 0 before 1970.
#[cfg(any(feature = "pull", feature = "ping"))]
pub(crate) fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |after| {
        u64::try_from(after.as_millis()).unwrap_or(u64::MAX)
    })
}

/// Whole seconds since the Unix epoch (rounded down), as the token builders write them.
pub(crate) fn unix_whole_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let d = before.duration();
            let whole = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            // -0.5 s is second -1, as floor() would give.
            if d.subsec_nanos() > 0 {
                -whole - 1
            } else {
                -whole
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_round_down() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_999);
        assert_eq!(unix_whole_seconds(t), 1_700_000_000);
        let before = UNIX_EPOCH - Duration::from_millis(500);
        assert_eq!(unix_whole_seconds(before), -1);
        assert_eq!(unix_seconds(before), -0.5);
    }

    #[test]
    fn clones_share_the_instant() {
        let clock = ManualClock::at_unix(10);
        let other = clock.clone();
        clock.advance(Duration::from_secs(5));
        assert_eq!(other.now(), UNIX_EPOCH + Duration::from_secs(15));
    }
}
