//! What delivery reports to users: the event stream, why an attempt failed, and the stats.

use std::fmt;
use std::time::Duration;

/// Why an attempt did not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// Livefyre answered this status.
    Status(u16),
    /// No answer within the attempt timeout.
    Timeout,
    /// The connection failed; the cause.
    Connection(String),
    /// The user's latest ping is older than the schedule's maximum age.
    TooOld,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(status) => write!(f, "HTTP {status}"),
            Self::Timeout => f.write_str("timed out"),
            Self::Connection(message) => write!(f, "connection failed: {message}"),
            Self::TooOld => f.write_str("latest ping older than the maximum age"),
        }
    }
}

/// What happened to a ping, as the Pinger's event stream reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PingEvent {
    /// Livefyre answered 2xx to a ping for this user.
    Delivered {
        /// The user.
        user_id: String,
        /// Attempts it took (1 = first try).
        attempts: u32,
    },
    /// An attempt failed with a passing fault; another follows after `delay`.
    Retrying {
        /// The user.
        user_id: String,
        /// The failed attempt's number.
        attempt: u32,
        /// Until the next attempt.
        delay: Duration,
        /// What went wrong.
        failure: Failure,
    },
    /// The user was given up: a permanent refusal, or too old. Not retried.
    GaveUp {
        /// The user.
        user_id: String,
        /// Why.
        failure: Failure,
    },
    /// Livefyre answered 403: the network key or name is wrong. Users stay pending; one
    /// probe is sent every `probe_every` until a ping is accepted again.
    Unauthorized {
        /// Interval between probes.
        probe_every: Duration,
    },
    /// Livefyre cannot be reached (connection errors, timeouts or 5xx answers for many
    /// different users in a row): the circuit opened. No user's request is sent but one
    /// probe at a time, the first after `probe_in`; failed attempts during the outage are
    /// still reported as [`Retrying`](Self::Retrying). Sent once per outage.
    Unreachable {
        /// The last failure before the circuit opened.
        failure: Failure,
        /// Until the first probe.
        probe_in: Duration,
    },
    /// A pause ended (Livefyre answered a probe again after an outage, or accepted a ping
    /// after a 403): every waiting user is due now, within the concurrency and rate limits.
    Resumed {
        /// How long delivery was paused.
        paused_for: Duration,
    },
    /// The delivery task died without being shut down (it panicked, or its Tokio runtime
    /// shut down): nothing more is delivered, `ping` returns
    /// [`PingError::Stopped`](crate::ping::PingError::Stopped), `health()` is unhealthy.
    /// The last event.
    Stopped {
        /// What happened, e.g. `the delivery task panicked: ...`.
        reason: String,
    },
}

/// Counters since the Pinger (or outbox worker) started, and the current pending set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PingStats {
    /// Accepted `ping` calls.
    pub pinged: u64,
    /// Of those, pings folded into a pending or in-flight user's request.
    pub coalesced: u64,
    /// HTTP requests sent.
    pub sent: u64,
    /// Requests answered 2xx.
    pub succeeded: u64,
    /// Attempts that failed and were scheduled again.
    pub retried: u64,
    /// Users given up (reported by [`PingEvent::GaveUp`]).
    pub given_up: u64,
    /// Users not yet delivered, in flight included.
    pub pending: u64,
    /// Requests in flight now.
    pub in_flight: u64,
}

/// What a shutdown could not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Users still pending at the deadline, sorted. (For the outbox: the users whose
    /// requests were abandoned; their leases are released for the other workers.)
    pub undelivered: Vec<String>,
    /// The final counters.
    pub stats: PingStats,
}
