//! The delivery rules, shared by the in-memory Pinger and the PostgreSQL outbox: how an
//! answer is classified (delivered, retry after a delay, give up, 403 hold), and how the
//! settled result is told (counters, events, logs). Neither worker has its own copy.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;
use tracing::Level;

use super::client::{Answer, LivefyreClient};
use super::events::{Counters, Failure, PingEvent};
use super::retry::{RetrySchedule, XorShift};

/// How an attempt ended, as a pending set needs to know it to settle a claimed user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Livefyre answered 2xx.
    Delivered,
    /// A passing fault: try again after this delay (unless the user is then too old).
    RetryAfter(Duration),
    /// A permanent refusal: stop trying, unless the user changed again meanwhile.
    GiveUp,
    /// The network refused our token (403): keep the user, try again after this delay.
    Hold(Duration),
}

/// What became of a claimed user once its outcome was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settled {
    /// Done: no more requests for this user (until it changes again).
    Done,
    /// Waiting for another attempt: a retry, or a fresh request because the user changed
    /// while its request was in flight.
    Waiting,
    /// Given up (refused, or older than the maximum age); reported, not retried.
    GivenUp,
    /// The claim was no longer ours (its lease expired and another worker re-claimed the
    /// user): nothing was changed; the current owner settles the user.
    LeaseLost,
}

/// The retry rules and the reporting channels one worker delivers with.
pub(crate) struct Rules {
    pub(crate) client: LivefyreClient,
    pub(crate) schedule: RetrySchedule,
    pub(crate) probe_every: Duration,
    pub(crate) counters: Counters,
    pub(crate) events: broadcast::Sender<PingEvent>,
    jitter: Mutex<XorShift>,
}

/// Whether the reported outcome changes the worker's 403 pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PauseChange {
    None,
    /// A 2xx arrived: stop pausing (and release held users if a pause was on).
    Accepted,
    /// A 403 arrived: pause, probing every `probe_every`.
    Refused,
}

impl Rules {
    pub(crate) fn new(
        client: LivefyreClient,
        schedule: RetrySchedule,
        probe_every: Duration,
        events: broadcast::Sender<PingEvent>,
    ) -> Self {
        Self {
            client,
            schedule,
            probe_every,
            counters: Counters::default(),
            events,
            jitter: Mutex::new(XorShift::from_time()),
        }
    }

    /// Classifies the answer to attempt `attempt_no` (1-based) of one user.
    pub(crate) fn classify(&self, answer: Answer, attempt_no: u32) -> (Outcome, Option<Failure>) {
        let retry = |retry_after: Option<Duration>| {
            let delay = match retry_after {
                Some(after) => self.schedule.clamp_retry_after(after),
                None => {
                    let unit = self
                        .jitter
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .next_unit();
                    self.schedule.delay(attempt_no, unit)
                }
            };
            Outcome::RetryAfter(delay)
        };
        match answer {
            Answer::Status(status, _) if status.is_success() => (Outcome::Delivered, None),
            Answer::Status(status, _) if status.as_u16() == 403 => {
                (Outcome::Hold(self.probe_every), Some(Failure::Status(403)))
            }
            Answer::Status(status, retry_after)
                if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() =>
            {
                (retry(retry_after), Some(Failure::Status(status.as_u16())))
            }
            Answer::Status(status, _) => (Outcome::GiveUp, Some(Failure::Status(status.as_u16()))),
            Answer::TimedOut => (retry(None), Some(Failure::Timeout)),
            Answer::Failed(message) => (retry(None), Some(Failure::Connection(message))),
        }
    }

    /// Tells what became of `user_id` after attempt `attempt_no`: counters, events, logs.
    /// `entering_pause` says whether a 403 starts a pause (rather than continuing one).
    pub(crate) fn report(
        &self,
        user_id: &str,
        attempt_no: u32,
        outcome: Outcome,
        failure: Option<Failure>,
        settled: Settled,
        entering_pause: bool,
    ) -> PauseChange {
        match (outcome, settled) {
            (Outcome::Delivered, _) => {
                Counters::add(&self.counters.succeeded);
                tracing::event!(target: "pingpull::ping", Level::DEBUG, user_id, attempts = attempt_no, "delivered");
                self.emit(PingEvent::Delivered {
                    user_id: user_id.to_owned(),
                    attempts: attempt_no,
                });
                return PauseChange::Accepted;
            }
            (Outcome::Hold(_), _) => {
                if entering_pause {
                    self.client.renew_token();
                    tracing::event!(
                        target: "pingpull::ping",
                        Level::ERROR,
                        network = self.client.network().name(),
                        probe_every_s = self.probe_every.as_secs(),
                        "Livefyre answered 403: the network key or name is wrong. Pings stay pending; probing once per interval"
                    );
                    self.emit(PingEvent::Unauthorized {
                        probe_every: self.probe_every,
                    });
                }
                return PauseChange::Refused;
            }
            (_, Settled::LeaseLost) => {
                // Another worker owns the user now and reports it; the outbox logs the loss.
            }
            (Outcome::RetryAfter(delay), Settled::Waiting) => {
                Counters::add(&self.counters.retried);
                let failure = failure.unwrap_or(Failure::Timeout);
                tracing::event!(target: "pingpull::ping", Level::INFO, user_id, attempt = attempt_no, delay_ms = delay.as_millis() as u64, %failure, "retrying");
                self.emit(PingEvent::Retrying {
                    user_id: user_id.to_owned(),
                    attempt: attempt_no,
                    delay,
                    failure,
                });
            }
            (Outcome::RetryAfter(_), _) => {
                Counters::add(&self.counters.given_up);
                tracing::event!(target: "pingpull::ping", Level::WARN, user_id, attempts = attempt_no, last = %failure.clone().unwrap_or(Failure::Timeout), "giving up: latest ping older than the maximum age");
                self.emit(PingEvent::GaveUp {
                    user_id: user_id.to_owned(),
                    failure: Failure::TooOld,
                });
            }
            (Outcome::GiveUp, Settled::GivenUp) => {
                Counters::add(&self.counters.given_up);
                let failure = failure.unwrap_or(Failure::Status(0));
                tracing::event!(target: "pingpull::ping", Level::WARN, user_id, %failure, "giving up: Livefyre refused the ping");
                self.emit(PingEvent::GaveUp {
                    user_id: user_id.to_owned(),
                    failure,
                });
            }
            (Outcome::GiveUp, _) => {
                // Refused, but changed again meanwhile: a fresh request follows.
            }
        }
        PauseChange::None
    }

    pub(crate) fn emit(&self, event: PingEvent) {
        // No subscriber is fine: the stats and logs still tell.
        let _ = self.events.send(event);
    }
}

/// Delays beyond this are treated as this long: nothing a running process waits for
/// is further away, and the sum with "now" can then never overflow (a server may send
/// `Retry-After: 99999999999999999999`, a user may configure `Duration::MAX`).
const LONGEST_WAIT: Duration = Duration::from_secs(365 * 86_400);

/// `now + delay`, with the delay capped at a year so it cannot overflow.
pub(crate) fn later(now: Instant, delay: Duration) -> Instant {
    now + delay.min(LONGEST_WAIT)
}
