//! The customer's side of "Ping" (docs/protocol.md §4, §5): tell Livefyre a profile changed.
//!
//! - [`Pinger`]: a cheap handle whose [`ping`](Pinger::ping) records a user without
//!   touching the network, and a background worker that delivers: pings for a pending
//!   user coalesce, a ping during that user's request causes one more request, failures
//!   are retried on a [`RetrySchedule`], and nothing is dropped silently (events, stats,
//!   the shutdown report).
//! - [`LivefyreClient`]: one-shot calls like the official libraries'
//!   ([`sync_user`](LivefyreClient::sync_user),
//!   [`register_pull_url`](LivefyreClient::register_pull_url)).
//! - [`PingHookLayer`]: a tower layer that pings after an update route answers 2xx.
//!
//! **The guarantee.** If `ping(user)` returned `Ok` at time *t* and the Pinger keeps
//! running, Livefyre will answer 2xx to a ping for that user sent after *t*, unless the
//! user is given up (a permanent 4xx, or older than the schedule's maximum age), which
//! is reported as [`PingEvent::GaveUp`], counted, and logged at WARN.
//!
//! Answers: 2xx delivered; 408, 429, 5xx, timeouts and connection errors retried
//! (`Retry-After` obeyed, clamped); 403 is a configuration fault (wrong key or network):
//! logged at ERROR (at most once a minute, with how many were left out), users kept, one
//! probe per interval until accepted; other 4xx given up.
//! Logs go to `tracing` under `pingpull::ping`, never with the token.
//!
//! In an update handler, one line does it, after the change is committed:
//! `state.pinger.ping(&user_id)?;` (or let [`PingHookLayer`] do it for a whole route).
//!
//! ```no_run
//! use std::time::Duration;
//! use pingpull::Network;
//! use pingpull::ping::Pinger;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let network = Network::new("example.fyre.co", std::env::var("PINGPULL_KEY")?)?;
//! let pinger = Pinger::builder(network).spawn()?;
//! pinger.ping("u1")?;
//! let report = pinger.shutdown(Duration::from_secs(10)).await;
//! assert!(report.undelivered.is_empty());
//! # Ok(())
//! # }
//! ```

mod error;
mod hook;
mod pending;
mod pinger;

#[cfg(feature = "emulator")]
pub(crate) use crate::delivery::XorShift;
pub use error::PingError;
#[cfg(feature = "actix")]
pub(crate) use hook::ping_after;
pub use hook::{PingHook, PingHookLayer, ResponseFuture};
pub use pinger::{DEFAULT_DEBOUNCE, DEFAULT_MAX_PENDING, Pinger, PingerBuilder};

pub use crate::delivery::{
    DEFAULT_CONCURRENCY, DEFAULT_EVENTS_CAPACITY, DEFAULT_OUTAGE_FIRST_PROBE,
    DEFAULT_OUTAGE_LONGEST_PROBE, DEFAULT_PROBE_EVERY, Failure, Health, PingEvent, PingStats,
    RetrySchedule, ShutdownReport,
};
pub use crate::http::{HyperTransport, Proxy, ProxyError, Transport};
#[cfg(feature = "rustls")]
pub use crate::http::{TlsRoots, TlsRootsError};
pub use crate::livefyre::{ConfigError, DEFAULT_ATTEMPT_TIMEOUT, LivefyreClient, RequestError};
