//! Rate-limited log lines: what an operator must see (a wrong key, a refused ping) is
//! written at most once per interval for each kind, with how many were left out since the
//! previous line, so a misconfiguration is never silent and never a flood.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::clock::unix_millis;

/// The interval between two lines of one kind unless configured.
pub(crate) const ONCE_A_MINUTE: Duration = Duration::from_secs(60);

/// Lets one line of a kind through per interval and counts the others. Lock-free: one
/// throttle sits on each request path that may log.
#[derive(Debug)]
pub(crate) struct LogThrottle {
    every_ms: u64,
    /// Unix milliseconds before which lines are counted, not written (0: none yet).
    quiet_until: AtomicU64,
    suppressed: AtomicU64,
}

impl LogThrottle {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every_ms: u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
            quiet_until: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(left out since the previous line)` when a line may be written at `now`;
    /// otherwise `None`, and this occurrence is counted.
    pub(crate) fn allow(&self, now: SystemTime) -> Option<u64> {
        let now = unix_millis(now);
        let quiet_until = self.quiet_until.load(Ordering::Acquire);
        let next = now.saturating_add(self.every_ms);
        if now >= quiet_until
            && self
                .quiet_until
                .compare_exchange(quiet_until, next, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::AcqRel));
        }
        self.suppressed.fetch_add(1, Ordering::AcqRel);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_left_out() {
        let throttle = LogThrottle::new(ONCE_A_MINUTE);
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(throttle.allow(start), Some(0));
        let within =
            (1..1000).filter_map(|ms| throttle.allow(start + Duration::from_millis(ms * 59)));
        assert_eq!(within.count(), 0);
        assert_eq!(throttle.allow(start + ONCE_A_MINUTE), Some(999));
        assert_eq!(throttle.allow(start + ONCE_A_MINUTE), None);
        assert_eq!(throttle.allow(start + ONCE_A_MINUTE * 3), Some(1));
    }

    #[test]
    fn a_clock_that_goes_back_still_lets_a_line_through_eventually() {
        let throttle = LogThrottle::new(ONCE_A_MINUTE);
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(throttle.allow(start), Some(0));
        assert_eq!(throttle.allow(start - Duration::from_secs(3600)), None);
        assert_eq!(throttle.allow(start + ONCE_A_MINUTE), Some(1));
    }
}
