//! When to try a ping again: a schedule of delays with jitter, a cap, a maximum age, and
//! the server's `Retry-After`.

use std::time::{Duration, SystemTime};

/// The delays between attempts to deliver one user's ping.
///
/// Attempt `n + 1` waits `delays[n - 1]` after attempt `n` failed (the last delay repeats),
/// spread by ±`jitter` so many users do not retry in lockstep, and never more than
/// `max_delay`. A user whose latest ping is older than `max_age` is given up and reported.
///
/// ```
/// use std::time::Duration;
/// use pingpull::ping::RetrySchedule;
///
/// let schedule = RetrySchedule::new([Duration::from_secs(1), Duration::from_secs(10)])
///     .jitter(0.0)
///     .max_age(Duration::from_secs(3600));
/// assert_eq!(schedule.delay(1), Duration::from_secs(1));
/// assert_eq!(schedule.delay(5), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
    jitter: f64,
    max_delay: Duration,
    max_age: Duration,
    max_retry_after: Duration,
}

impl Default for RetrySchedule {
    /// 1 s, 5 s, 30 s, 2 min, 10 min, 30 min, then hourly; ±20 % jitter; given up after
    /// 24 hours; `Retry-After` honoured up to 1 hour.
    fn default() -> Self {
        Self::new([1, 5, 30, 120, 600, 1800, 3600].map(Duration::from_secs))
    }
}

impl RetrySchedule {
    /// A schedule with these delays (an empty list means retry at once), ±20 % jitter,
    /// a 1 hour cap, a 24 hour maximum age and `Retry-After` honoured up to 1 hour.
    pub fn new(delays: impl IntoIterator<Item = Duration>) -> Self {
        Self {
            delays: delays.into_iter().collect(),
            jitter: 0.2,
            max_delay: Duration::from_secs(3600),
            max_age: Duration::from_secs(86_400),
            max_retry_after: Duration::from_secs(3600),
        }
    }

    /// Spreads each delay by up to ±`fraction` (clamped to 0..=1).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// No delay is longer than `max_delay`.
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// Gives a user up once its latest ping is older than `max_age`.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Honours a server's `Retry-After` up to `max` (longer ones are clamped).
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// The maximum age.
    pub fn max_age_duration(&self) -> Duration {
        self.max_age
    }

    /// Whether every duration of the schedule (each delay, the caps, the maximum age) is
    /// at most `longest`.
    pub(crate) fn within(&self, longest: Duration) -> bool {
        self.delays
            .iter()
            .chain([&self.max_delay, &self.max_retry_after, &self.max_age])
            .all(|duration| *duration <= longest)
    }

    /// The delay after failed attempt `attempt` (1-based), before jitter: each actual
    /// delay lies within ±`jitter` of it, and never beyond `max_delay`.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.jittered_delay(attempt, 0.5)
    }

    /// The delay after failed attempt `attempt`; `unit` in `0..1` picks the jitter (0.5 is
    /// none).
    pub(crate) fn jittered_delay(&self, attempt: u32, unit: f64) -> Duration {
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        let base = self
            .delays
            .get(index)
            .or(self.delays.last())
            .copied()
            .unwrap_or(Duration::ZERO);
        let spread = 1.0 + self.jitter * (unit.clamp(0.0, 1.0) * 2.0 - 1.0);
        // Saturates rather than panics for absurd configured delays.
        Duration::try_from_secs_f64(base.as_secs_f64() * spread)
            .unwrap_or(Duration::MAX)
            .min(self.max_delay)
    }

    /// A server's `Retry-After`, clamped to the configured maximum.
    pub(crate) fn clamp_retry_after(&self, retry_after: Duration) -> Duration {
        retry_after.min(self.max_retry_after)
    }
}

/// A small, fast generator for jitter (xorshift64*); not for secrets.
#[derive(Debug, Clone)]
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn seeded(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub(crate) fn from_time() -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64);
        Self::seeded(nanos ^ 0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..1`.
    pub(crate) fn next_unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_delay_repeats_and_cap_applies() {
        let schedule = RetrySchedule::new([1, 5, 30].map(Duration::from_secs))
            .jitter(0.0)
            .max_delay(Duration::from_secs(10));
        let delays: Vec<_> = (1..=5)
            .map(|n| schedule.jittered_delay(n, 0.9).as_secs())
            .collect();
        assert_eq!(delays, [1, 5, 10, 10, 10]);
    }

    #[test]
    fn jitter_spreads_within_bounds() {
        let schedule = RetrySchedule::new([Duration::from_secs(10)]).jitter(0.2);
        assert_eq!(schedule.jittered_delay(1, 0.0), Duration::from_secs(8));
        assert_eq!(schedule.jittered_delay(1, 0.5), Duration::from_secs(10));
        assert_eq!(schedule.jittered_delay(1, 1.0), Duration::from_secs(12));
        let mut jitter = XorShift::seeded(7);
        for _ in 0..1000 {
            let unit = jitter.next_unit();
            assert!((0.0..1.0).contains(&unit));
            let d = schedule.jittered_delay(1, unit);
            assert!(d >= Duration::from_secs(8) && d <= Duration::from_secs(12));
        }
    }

    #[test]
    fn empty_schedule_retries_at_once() {
        assert_eq!(
            RetrySchedule::new([]).jittered_delay(3, 0.7),
            Duration::ZERO
        );
    }

    #[test]
    fn retry_after_is_clamped() {
        let schedule = RetrySchedule::default().max_retry_after(Duration::from_secs(60));
        assert_eq!(
            schedule.clamp_retry_after(Duration::from_secs(7200)),
            Duration::from_secs(60)
        );
    }
}
