//! How the engine tells what became of each user: counters, the event stream, and logs
//! under `pingpull::ping`, never with the token.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;
use tracing::Level;

use super::events::{Failure, PingEvent, PingStats};
use super::health::HealthTracker;
use super::pause::PauseReason;
use super::store::{Outcome, Settled, StoreCounts};
use crate::Network;
use crate::clock::Clock;
use crate::metrics::{AttemptOutcome, DeliveryMetrics};
use crate::sync::lock;
use crate::throttle::{LogThrottle, ONCE_A_MINUTE};

/// The counters, metrics and event channel one engine reports to.
pub(crate) struct Reporter {
    counters: Counters,
    events: broadcast::Sender<PingEvent>,
    pub(crate) metrics: DeliveryMetrics,
    /// The configured clock (else the system's): what the 403 log's limit counts with.
    clock: Arc<dyn Clock>,
    /// The 403 ERROR at most once a minute: with a short `probe_every`, every failed
    /// probe would otherwise write one.
    unauthorized_log: LogThrottle,
    /// The circuit's opening WARN and closing INFO, each at most once a minute: an
    /// unsteady Livefyre may open and close it often.
    unreachable_log: LogThrottle,
    resumed_log: LogThrottle,
    /// Slowing down after a 429, at most once a minute: a storm may start it often.
    slowing_log: LogThrottle,
    /// Giving a user up is a WARN at most once a minute per reason (the rest at DEBUG):
    /// a mass give-up, such as a long outage past the maximum age, must not flood the
    /// log. Every user given up is still counted and sent as an event.
    too_old_log: LogThrottle,
    refused_log: LogThrottle,
    /// The pending set (the outbox's table) failing to answer, a WARN, and answering
    /// again, an INFO, each at most once a minute: the engine looks at it once per poll
    /// for as long as an outage lasts.
    store_failed_log: LogThrottle,
    /// An answered attempt the pending set could not record (the user is tried again).
    record_failed_log: LogThrottle,
    store_answered_log: LogThrottle,
    /// Since when the pending set has not answered, if it has not.
    store_failing_since: Mutex<Option<Instant>>,
    /// The last 2xx and the failures since, for `health()`.
    pub(crate) health: HealthTracker,
}

impl Reporter {
    /// Registers the engine's metrics with the current recorder.
    pub(crate) fn new(events_capacity: usize, clock: Arc<dyn Clock>) -> Self {
        let (events, _) = broadcast::channel(events_capacity);
        Self {
            counters: Counters::default(),
            events,
            metrics: DeliveryMetrics::register(),
            clock,
            unauthorized_log: LogThrottle::new(ONCE_A_MINUTE),
            unreachable_log: LogThrottle::new(ONCE_A_MINUTE),
            resumed_log: LogThrottle::new(ONCE_A_MINUTE),
            slowing_log: LogThrottle::new(ONCE_A_MINUTE),
            too_old_log: LogThrottle::new(ONCE_A_MINUTE),
            refused_log: LogThrottle::new(ONCE_A_MINUTE),
            store_failed_log: LogThrottle::new(ONCE_A_MINUTE),
            record_failed_log: LogThrottle::new(ONCE_A_MINUTE),
            store_answered_log: LogThrottle::new(ONCE_A_MINUTE),
            store_failing_since: Mutex::new(None),
            health: HealthTracker::default(),
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<PingEvent> {
        self.events.subscribe()
    }

    pub(crate) fn stats(&self, counts: StoreCounts) -> PingStats {
        self.counters.snapshot(counts)
    }

    /// A request left.
    pub(crate) fn sent(&self) {
        Counters::add(&self.counters.sent);
    }

    /// Tells what became of `user_id` after attempt `attempt_no`, pending since
    /// `pending_since`. A 403 is told once per pause, by
    /// [`unauthorized`](Self::unauthorized), not here; it is counted here. While delivery
    /// is `paused`, a retry is logged at DEBUG: the pause itself is told once.
    pub(crate) fn settled(
        &self,
        user_id: &str,
        attempt_no: u32,
        outcome: &Outcome,
        settled: Settled,
        pending_since: Instant,
        paused: bool,
    ) {
        self.count_attempt(outcome, settled, pending_since);
        match (outcome, settled) {
            (Outcome::Delivered, _) => {
                Counters::add(&self.counters.succeeded);
                tracing::event!(target: "pingpull::ping", Level::DEBUG, user_id, attempts = attempt_no, "delivered");
                self.emit(PingEvent::Delivered {
                    user_id: user_id.to_owned(),
                    attempts: attempt_no,
                });
            }
            // Another worker owns the user now and reports it; the outbox logs the loss.
            (Outcome::Hold(_), _) | (_, Settled::LeaseLost) => {}
            (Outcome::RetryAfter(delay, failure), Settled::Waiting) => {
                Counters::add(&self.counters.retried);
                let delay_ms = delay.as_millis() as u64;
                if paused {
                    tracing::event!(target: "pingpull::ping", Level::DEBUG, user_id, attempt = attempt_no, delay_ms, %failure, "retrying");
                } else {
                    tracing::event!(target: "pingpull::ping", Level::INFO, user_id, attempt = attempt_no, delay_ms, %failure, "retrying");
                }
                self.emit(PingEvent::Retrying {
                    user_id: user_id.to_owned(),
                    attempt: attempt_no,
                    delay: *delay,
                    failure: failure.clone(),
                });
            }
            (Outcome::RetryAfter(_, last), _) => {
                Counters::add(&self.counters.given_up);
                match self.too_old_log.allow(self.clock.now()) {
                    Some(suppressed) => {
                        tracing::event!(target: "pingpull::ping", Level::WARN, user_id, attempts = attempt_no, last = %last, suppressed, "giving up: latest ping older than the maximum age (logged at most once a minute, `suppressed` since the previous line; every user given up is in the stats and events)")
                    }
                    None => {
                        tracing::event!(target: "pingpull::ping", Level::DEBUG, user_id, attempts = attempt_no, last = %last, "giving up: latest ping older than the maximum age")
                    }
                }
                self.gave_up(user_id, Failure::TooOld);
            }
            (Outcome::GiveUp(failure), Settled::GivenUp) => {
                Counters::add(&self.counters.given_up);
                match self.refused_log.allow(self.clock.now()) {
                    Some(suppressed) => {
                        tracing::event!(target: "pingpull::ping", Level::WARN, user_id, %failure, suppressed, "giving up: Livefyre refused the ping (logged at most once a minute, `suppressed` since the previous line; every user given up is in the stats and events)")
                    }
                    None => {
                        tracing::event!(target: "pingpull::ping", Level::DEBUG, user_id, %failure, "giving up: Livefyre refused the ping")
                    }
                }
                self.gave_up(user_id, failure.clone());
            }
            // Refused, but changed again meanwhile: a fresh request follows.
            (Outcome::GiveUp(_), _) => {}
        }
    }

    /// Counts the attempt in the metrics and the health by its outcome; a delivered user
    /// that leaves the pending set records how long it waited.
    fn count_attempt(&self, outcome: &Outcome, settled: Settled, pending_since: Instant) {
        let counted = match (outcome, settled) {
            (Outcome::Delivered, _) => AttemptOutcome::Delivered,
            (Outcome::Hold(_), _) => AttemptOutcome::Unauthorized,
            (Outcome::RetryAfter(..), Settled::GivenUp) | (Outcome::GiveUp(_), _) => {
                AttemptOutcome::GaveUp
            }
            (Outcome::RetryAfter(..), _) => AttemptOutcome::Retry,
        };
        self.metrics.attempt(counted);
        if counted != AttemptOutcome::Delivered {
            return self.health.failed();
        }
        self.health.delivered(self.clock.now());
        if settled == Settled::Done {
            self.metrics.delivered_after(pending_since.elapsed());
        }
    }

    /// Livefyre refused our token: a pause starts, or a probe failed. The event is sent
    /// each time; the ERROR at most once a minute, with how many were left out.
    pub(crate) fn unauthorized(&self, network: &Network, probe_every: Duration) {
        if let Some(suppressed) = self.unauthorized_log.allow(self.clock.now()) {
            tracing::event!(
                target: "pingpull::ping",
                Level::ERROR,
                network = network.name(),
                probe_every_s = probe_every.as_secs(),
                suppressed,
                "Livefyre answered 403: the network key or name is wrong. Pings stay pending; probing once per interval (logged at most once a minute, `suppressed` since the previous line)"
            );
        }
        self.emit(PingEvent::Unauthorized { probe_every });
    }

    /// The circuit opened after `threshold` different users failed in a row, the last with
    /// `failure`: a WARN at most once a minute, and the event.
    pub(crate) fn unreachable(&self, failure: &Failure, threshold: u32, probe_in: Duration) {
        if let Some(suppressed) = self.unreachable_log.allow(self.clock.now()) {
            tracing::event!(
                target: "pingpull::ping",
                Level::WARN,
                %failure,
                users_failing_in_a_row = threshold,
                probe_in_ms = probe_in.as_millis() as u64,
                suppressed,
                "Livefyre is unreachable: pausing delivery, one probe at a time until it answers (logged at most once a minute, `suppressed` since the previous line)"
            );
        }
        self.emit(PingEvent::Unreachable {
            failure: failure.clone(),
            probe_in,
        });
    }

    /// A pause ended after `paused_for`: an INFO (for an outage at most once a minute),
    /// and the event.
    pub(crate) fn resumed(&self, reason: PauseReason, paused_for: Duration) {
        match reason {
            PauseReason::Unauthorized => {
                tracing::event!(target: "pingpull::ping", Level::INFO, paused_for_ms = paused_for.as_millis() as u64, "Livefyre accepts pings again; resuming delivery");
            }
            PauseReason::Unreachable => {
                if let Some(suppressed) = self.resumed_log.allow(self.clock.now()) {
                    tracing::event!(target: "pingpull::ping", Level::INFO, paused_for_ms = paused_for.as_millis() as u64, suppressed, "Livefyre answers again; resuming delivery of the waiting users (logged at most once a minute, `suppressed` since the previous line)");
                }
            }
        }
        self.emit(PingEvent::Resumed { paused_for });
    }

    /// Livefyre answered 429 and the engine began pacing itself at `rate` requests a
    /// second, the user answered waiting `retry_in`: an INFO at most once a minute.
    pub(crate) fn slowing_down(&self, rate: f64, retry_in: Duration) {
        if let Some(suppressed) = self.slowing_log.allow(self.clock.now()) {
            tracing::event!(
                target: "pingpull::ping",
                Level::INFO,
                requests_per_second = rate,
                retry_in_ms = retry_in.as_millis() as u64,
                suppressed,
                "Livefyre answered 429 (too many requests): slowing every request down, then speeding up again with each accepted request (logged at most once a minute, `suppressed` since the previous line)"
            );
        }
    }

    /// The pending set did not answer (a claim or a look for the next due user failed);
    /// the engine looks again in `retry_in`: a WARN at most once a minute.
    pub(crate) fn store_failed(&self, error: &dyn fmt::Display, retry_in: Duration) {
        lock(&self.store_failing_since).get_or_insert_with(Instant::now);
        if let Some(suppressed) = self.store_failed_log.allow(self.clock.now()) {
            tracing::event!(
                target: "pingpull::ping",
                Level::WARN,
                %error,
                retry_in_ms = retry_in.as_millis() as u64,
                suppressed,
                "the pending set did not answer; trying again (logged at most once a minute, `suppressed` since the previous line)"
            );
        }
    }

    /// The pending set could not record `user_id`'s answered attempt: a WARN at most once
    /// a minute (every attempt in flight when the store went away fails this way).
    pub(crate) fn record_failed(&self, user_id: &str, error: &dyn fmt::Display) {
        if let Some(suppressed) = self.record_failed_log.allow(self.clock.now()) {
            tracing::event!(
                target: "pingpull::ping",
                Level::WARN,
                user_id,
                %error,
                suppressed,
                "could not record the attempt; the user will be tried again (logged at most once a minute, `suppressed` since the previous line)"
            );
        }
    }

    /// The pending set answered: an INFO if it had failed to (at most once a minute).
    pub(crate) fn store_answered(&self) {
        let Some(since) = lock(&self.store_failing_since).take() else {
            return;
        };
        if let Some(suppressed) = self.store_answered_log.allow(self.clock.now()) {
            tracing::event!(
                target: "pingpull::ping",
                Level::INFO,
                failed_for_ms = since.elapsed().as_millis() as u64,
                suppressed,
                "the pending set answers again; delivery goes on (logged at most once a minute, `suppressed` since the previous line)"
            );
        }
    }

    /// The delivery task died: the last event.
    pub(crate) fn stopped(&self, reason: String) {
        self.emit(PingEvent::Stopped { reason });
    }

    /// The time by the builder's clock (else the system's).
    pub(crate) fn now(&self) -> std::time::SystemTime {
        self.clock.now()
    }

    fn gave_up(&self, user_id: &str, failure: Failure) {
        self.emit(PingEvent::GaveUp {
            user_id: user_id.to_owned(),
            failure,
        });
    }

    fn emit(&self, event: PingEvent) {
        // No subscriber is fine: the stats and logs still tell.
        let _ = self.events.send(event);
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) sent: AtomicU64,
    pub(crate) succeeded: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) given_up: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, counts: StoreCounts) -> PingStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PingStats {
            pinged: counts.new_users + counts.coalesced,
            coalesced: counts.coalesced,
            sent: read(&self.sent),
            succeeded: read(&self.succeeded),
            retried: read(&self.retried),
            given_up: read(&self.given_up),
            pending: counts.pending as u64,
            in_flight: counts.in_flight as u64,
        }
    }
}
