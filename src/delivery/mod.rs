//! The delivery engine under both front-ends, the in-memory `Pinger` and the PostgreSQL
//! `OutboxWorker`.
//!
//! - [`store`]: where pending users live, as the engine sees them (claim due users, settle
//!   each claim); each front-end brings its own.
//! - [`engine`]: the loop that claims within the concurrency and rate limits, sends, and
//!   settles.
//! - [`pause`]: the host pause: after a 403, or while Livefyre is unreachable (the
//!   circuit), one probe at a time instead of users' requests.
//! - [`pacing`]: after a 429, every request slowed down together, `Retry-After`
//!   honoured, then sped up again.
//! - [`policy`]: what an answer means (delivered, retry after, give up, hold); pure.
//! - [`retry`]: the retry schedule and `Retry-After`.
//! - [`report`] and [`events`]: counters, the event stream, logs.
//! - [`options`]: the settings both builders share, and their defaults.
//! - [`handle`]: the handle both front-ends wrap (stats, events, health, client, shutdown).
//! - [`health`]: whether delivery works, for a probe.

mod engine;
pub(crate) mod events;
mod handle;
mod health;
pub(crate) mod options;
mod pacing;
mod pause;
mod policy;
mod reply;
mod report;
pub(crate) mod retry;
pub(crate) mod store;

use std::time::Duration;

use tokio::time::Instant;

#[cfg(feature = "postgres")]
pub(crate) use engine::Engine;
pub use events::{Failure, PingEvent, PingStats, ShutdownReport};
pub(crate) use handle::Delivery;
pub use health::Health;
pub use options::{
    DEFAULT_CONCURRENCY, DEFAULT_EVENTS_CAPACITY, DEFAULT_OUTAGE_FIRST_PROBE,
    DEFAULT_OUTAGE_LONGEST_PROBE, DEFAULT_PROBE_EVERY,
};
pub(crate) use options::{DeliveryOptions, delivery_setters};
pub use retry::RetrySchedule;
pub(crate) use retry::XorShift;
pub use store::{Outcome, Settled};
pub(crate) use store::{PendingStore, StoreCounts};

/// Delays beyond this are treated as this long: nothing a running process waits for
/// is further away, and the sum with "now" can then never overflow (a server may send
/// `Retry-After: 99999999999999999999`, a user may configure `Duration::MAX`).
const LONGEST_WAIT: Duration = Duration::from_secs(365 * 86_400);

/// `now + delay`, with the delay capped at a year so it cannot overflow.
pub(crate) fn later(now: Instant, delay: Duration) -> Instant {
    now + delay.min(LONGEST_WAIT)
}
