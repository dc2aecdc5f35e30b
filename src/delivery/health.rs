//! Whether delivery works, for a health probe: what `Pinger::health()` and
//! `OutboxWorker::health()` return.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::clock::unix_millis;

/// How delivery is going, for a readiness or liveness probe (see [`healthy`](Self::healthy)
/// for the rule) and for an operator's page.
///
/// ```no_run
/// # use pingpull::{Network, ping::Pinger};
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let pinger = Pinger::builder(Network::new("example.fyre.co", "k")?).spawn()?;
/// let health = pinger.health();
/// if let Some(reason) = health.reason() {
///     eprintln!("unhealthy ({reason}): {health:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// When Livefyre last answered a ping with a 2xx (by the builder's clock), if it has
    /// since the start.
    pub last_delivered: Option<SystemTime>,
    /// Attempts in a row not answered 2xx (403, another 4xx, 5xx, timeout, connection
    /// error); a 2xx resets it.
    pub consecutive_failures: u32,
    /// A 403 pause is active: Livefyre refuses the network key or name, and only one
    /// probe per interval is sent until it accepts one.
    pub unauthorized: bool,
    /// Livefyre is unreachable (the circuit is open): after many connection errors,
    /// timeouts or 5xx answers in a row, only one probe at a time is sent until Livefyre
    /// answers again. Not unhealthy by itself (an outage of a few seconds opens it); the
    /// failed probes count in `consecutive_failures`, so a long outage becomes `"failing"`.
    pub unreachable: bool,
    /// The delivery task has died without being shut down (it panicked, or its Tokio
    /// runtime shut down): nothing more is delivered, and `ping` returns an error. The
    /// ERROR log and [`PingEvent::Stopped`](crate::ping::PingEvent::Stopped) say why.
    /// Only a restart helps.
    pub stopped: bool,
    /// Users not yet delivered, in flight included (the outbox: the table's rows).
    pub pending: u64,
    /// How long the user pending longest has waited since its first ping (the outbox:
    /// since the oldest row's first change); `None` when nothing is pending.
    pub oldest_pending: Option<Duration>,
    /// When this was taken, by the builder's clock.
    pub checked_at: SystemTime,
}

impl Health {
    /// Failed attempts in a row from which delivery counts as failing (with no 2xx for
    /// [`WITHOUT_DELIVERY`](Self::WITHOUT_DELIVERY)).
    pub const FAILURES_BEFORE_UNHEALTHY: u32 = 10;
    /// How long without a 2xx, after that many failures, delivery counts as failing.
    pub const WITHOUT_DELIVERY: Duration = Duration::from_secs(300);

    /// Healthy unless [`reason`](Self::reason) names a problem:
    ///
    /// - the delivery task has died (`"stopped"`): nothing more is delivered until a
    ///   restart;
    /// - a 403 pause is active (`"unauthorized"`): a wrong key or network name, which
    ///   only the operator can fix;
    /// - or at least [`FAILURES_BEFORE_UNHEALTHY`](Self::FAILURES_BEFORE_UNHEALTHY)
    ///   attempts in a row failed and Livefyre has not answered 2xx for
    ///   [`WITHOUT_DELIVERY`](Self::WITHOUT_DELIVERY), or not since the start
    ///   (`"failing"`): Livefyre or the way to it is down.
    ///
    /// A backlog alone is not unhealthy (a burst of changes makes one): watch `pending`
    /// and `oldest_pending` for that.
    pub fn healthy(&self) -> bool {
        self.reason().is_none()
    }

    /// Why delivery is unhealthy, as a stable word (`"stopped"`, `"unauthorized"` or
    /// `"failing"`, the first that applies), or `None` when it is healthy.
    pub fn reason(&self) -> Option<&'static str> {
        if self.stopped {
            return Some("stopped");
        }
        if self.unauthorized {
            return Some("unauthorized");
        }
        let delivered_lately = self.last_delivered.is_some_and(|at| {
            self.checked_at
                .duration_since(at)
                .is_ok_and(|since| since < Self::WITHOUT_DELIVERY)
                || at > self.checked_at
        });
        let failing = self.consecutive_failures >= Self::FAILURES_BEFORE_UNHEALTHY;
        (failing && !delivered_lately).then_some("failing")
    }
}

/// The part of [`Health`] the engine tracks as attempts end. Lock-free: every attempt
/// updates it.
#[derive(Debug, Default)]
pub(crate) struct HealthTracker {
    /// Unix milliseconds of the last 2xx (0: none yet).
    last_delivered_ms: AtomicU64,
    consecutive_failures: AtomicU32,
}

impl HealthTracker {
    pub(crate) fn delivered(&self, now: SystemTime) {
        self.last_delivered_ms
            .store(unix_millis(now).max(1), Ordering::Relaxed);
        self.consecutive_failures.store(0, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self) {
        let _ = self
            .consecutive_failures
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_add(1))
            });
    }

    /// The last 2xx's time and the failures since.
    pub(crate) fn read(&self) -> (Option<SystemTime>, u32) {
        let ms = self.last_delivered_ms.load(Ordering::Relaxed);
        let last = (ms > 0).then(|| UNIX_EPOCH + Duration::from_millis(ms));
        (last, self.consecutive_failures.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(failures: u32, since_2xx: Option<u64>) -> Health {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        Health {
            last_delivered: since_2xx.map(|s| now - Duration::from_secs(s)),
            consecutive_failures: failures,
            unauthorized: false,
            unreachable: false,
            stopped: false,
            pending: 3,
            oldest_pending: Some(Duration::from_secs(3600)),
            checked_at: now,
        }
    }

    #[test]
    fn a_403_pause_is_unhealthy_whatever_else() {
        let paused = Health {
            unauthorized: true,
            ..health(0, Some(0))
        };
        assert_eq!(paused.reason(), Some("unauthorized"));
        assert!(!paused.healthy());
    }

    #[test]
    fn a_dead_delivery_task_is_unhealthy_whatever_else() {
        let stopped = Health {
            stopped: true,
            unauthorized: true,
            ..health(0, Some(0))
        };
        assert_eq!(stopped.reason(), Some("stopped"));
        assert!(!stopped.healthy());
    }

    #[test]
    fn failures_are_unhealthy_only_in_numbers_and_without_a_recent_2xx() {
        assert!(health(0, None).healthy(), "nothing tried yet");
        assert!(health(9, None).healthy());
        assert_eq!(health(10, None).reason(), Some("failing"));
        assert!(health(10, Some(299)).healthy());
        assert_eq!(health(10, Some(300)).reason(), Some("failing"));
        assert!(
            health(3, Some(86_400)).healthy(),
            "a backlog alone is not a fault"
        );
    }

    #[test]
    fn the_tracker_resets_failures_on_a_2xx() {
        let tracker = HealthTracker::default();
        assert_eq!(tracker.read(), (None, 0));
        tracker.failed();
        tracker.failed();
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(tracker.read(), (None, 2));
        tracker.delivered(at);
        assert_eq!(tracker.read(), (Some(at), 0));
    }
}
