//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`):
//! every name pingpull records, and the handles each component registers once.
//!
//! The application installs its recorder (the Prometheus exporter, say) before it builds a
//! `PullLayer` or spawns a `Pinger` or `OutboxWorker`: handles are registered when those
//! are built or spawned, bound to the recorder current then, and never looked up again, so
//! recording costs an atomic add. Without a recorder they record nothing; without the
//! feature every handle is a zero-sized no-op, so call sites need no `cfg`.
//!
//! The names and labels are a contract, listed in docs/operations.md ("Metrics"). No label
//! or value ever holds a token, a key or a user id.

#[cfg(feature = "ping")]
use std::time::Duration;

use handles::{Counter, Histogram, Label, describe};
#[cfg(feature = "ping")]
use handles::{Gauge, GaugeShare};
#[cfg(feature = "metrics")]
use recorded as handles;
#[cfg(not(feature = "metrics"))]
use unrecorded as handles;

/// Pull requests answered, by `outcome`: `ok`, or the rejection's `Rejection::as_str()`.
pub(crate) const PULL_REQUESTS_TOTAL: &str = "pingpull_pull_requests_total";
/// Seconds from a pull request's arrival to its answer (histogram).
pub(crate) const PULL_DURATION_SECONDS: &str = "pingpull_pull_duration_seconds";
/// Tokens accepted, by the `key` that verified them: `current` or `previous`.
pub(crate) const TOKEN_KEY_TOTAL: &str = "pingpull_token_key_total";
/// `Pinger::ping` calls, by `result`: `accepted`, `coalesced` or `queue_full`.
pub(crate) const PINGS_TOTAL: &str = "pingpull_pings_total";
/// Delivery attempts, by `outcome`: `delivered`, `retry`, `gave_up` or `unauthorized`.
pub(crate) const PING_ATTEMPTS_TOTAL: &str = "pingpull_ping_attempts_total";
/// Users not yet delivered, in flight included (gauge).
pub(crate) const PING_PENDING: &str = "pingpull_ping_pending";
/// Ping requests in flight (gauge).
pub(crate) const PING_IN_FLIGHT: &str = "pingpull_ping_in_flight";
/// Seconds from a pending user's first ping (or change) to the 2xx that settled it.
pub(crate) const PING_DELIVERY_SECONDS: &str = "pingpull_ping_delivery_seconds";
/// Seconds the oldest due outbox row has been due (gauge; 0 when none is).
pub(crate) const OUTBOX_OLDEST_DUE_SECONDS: &str = "pingpull_outbox_oldest_due_seconds";
/// Attempts whose outbox lease ran out before they were recorded.
pub(crate) const OUTBOX_LEASE_LOST_TOTAL: &str = "pingpull_outbox_lease_lost_total";

/// The kind of metric, for its description.
#[derive(Clone, Copy)]
pub(crate) enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// Every name with its kind, whether it counts seconds, and its help text.
pub(crate) const DESCRIPTIONS: [(&str, MetricKind, bool, &str); 10] = [
    (
        PULL_REQUESTS_TOTAL,
        MetricKind::Counter,
        false,
        "Pull requests answered, by outcome (ok or the rejection)",
    ),
    (
        PULL_DURATION_SECONDS,
        MetricKind::Histogram,
        true,
        "Time to answer a pull request",
    ),
    (
        TOKEN_KEY_TOTAL,
        MetricKind::Counter,
        false,
        "Tokens accepted, by the network key that verified them",
    ),
    (
        PINGS_TOTAL,
        MetricKind::Counter,
        false,
        "Pinger::ping calls, by result",
    ),
    (
        PING_ATTEMPTS_TOTAL,
        MetricKind::Counter,
        false,
        "Ping delivery attempts, by outcome",
    ),
    (
        PING_PENDING,
        MetricKind::Gauge,
        false,
        "Users whose ping is not yet delivered, in flight included",
    ),
    (
        PING_IN_FLIGHT,
        MetricKind::Gauge,
        false,
        "Ping requests in flight",
    ),
    (
        PING_DELIVERY_SECONDS,
        MetricKind::Histogram,
        true,
        "Time from a user's first ping to the 2xx that delivered it",
    ),
    (
        OUTBOX_OLDEST_DUE_SECONDS,
        MetricKind::Gauge,
        true,
        "How long the oldest due outbox row has been due",
    ),
    (
        OUTBOX_LEASE_LOST_TOTAL,
        MetricKind::Counter,
        false,
        "Outbox attempts whose lease ran out before they were recorded",
    ),
];

/// Describes the given metrics to the current recorder (help text and unit).
fn describe_all(names: &[&str]) {
    for (name, kind, seconds, help) in DESCRIPTIONS {
        if names.contains(&name) {
            describe(name, kind, seconds, help);
        }
    }
}

/// One label, `key="value"`, as a static slice (registering with it allocates nothing).
macro_rules! label {
    ($key:literal => $value:literal) => {{
        static LABELS: [Label; 1] = [Label::from_static_parts($key, $value)];
        &LABELS
    }};
}

/// The Pull endpoint's metrics, registered once per `PullLayer`: build one in
/// `PullLayer::new` (where the application's recorder is already installed) with every
/// `Rejection::as_str()` value, keep it in the layer's shared state, and per request call
/// [`request`](Self::request) with the outcome and the time taken, and
/// [`token_key`](Self::token_key) when a token was accepted.
#[cfg(feature = "pull")]
pub(crate) struct PullMetrics {
    ok: Counter,
    /// The rejections registered up front, by their `as_str()`.
    rejected: Vec<(&'static str, Counter)>,
    duration: Histogram,
    current_key: Counter,
    previous_key: Counter,
}

#[cfg(feature = "pull")]
impl PullMetrics {
    /// Registers the pull metrics, with a handle for each of `rejections` (every
    /// `Rejection::as_str()` value), so that recording one is an atomic add.
    pub(crate) fn register(rejections: &[&'static str]) -> Self {
        describe_all(&[PULL_REQUESTS_TOTAL, PULL_DURATION_SECONDS, TOKEN_KEY_TOTAL]);
        let rejected = rejections
            .iter()
            .map(|&outcome| {
                (
                    outcome,
                    Counter::labelled(PULL_REQUESTS_TOTAL, "outcome", outcome),
                )
            })
            .collect();
        Self {
            ok: Counter::register(PULL_REQUESTS_TOTAL, label!("outcome" => "ok")),
            rejected,
            duration: Histogram::register(PULL_DURATION_SECONDS, &[]),
            current_key: Counter::register(TOKEN_KEY_TOTAL, label!("key" => "current")),
            previous_key: Counter::register(TOKEN_KEY_TOTAL, label!("key" => "previous")),
        }
    }

    /// A pull request that arrived at `started` answered: `outcome` is `"ok"` or the
    /// rejection's `as_str()`; an outcome not registered up front is looked up in the
    /// recorder (slower, still correct). Without the feature the clock is not read.
    pub(crate) fn request(&self, outcome: &'static str, started: std::time::Instant) {
        self.duration.record_since(started);
        if outcome == "ok" {
            return self.ok.increment();
        }
        match self.rejected.iter().find(|(known, _)| *known == outcome) {
            Some((_, counter)) => counter.increment(),
            None => handles::increment_labelled(PULL_REQUESTS_TOTAL, "outcome", outcome),
        }
    }

    /// A token was accepted; `previous` when a previous key (not the current one) verified it.
    pub(crate) fn token_key(&self, previous: bool) {
        if previous {
            self.previous_key.increment();
        } else {
            self.current_key.increment();
        }
    }
}

/// What `Pinger::ping` records, registered once per Pinger: its calls by result, and its
/// share of the pending gauge.
#[cfg(feature = "ping")]
pub(crate) struct PingMetrics {
    accepted: Counter,
    coalesced: Counter,
    queue_full: Counter,
    pub(crate) pending: GaugeShare,
}

#[cfg(feature = "ping")]
impl PingMetrics {
    pub(crate) fn register() -> Self {
        describe_all(&[PINGS_TOTAL, PING_PENDING]);
        Self {
            accepted: Counter::register(PINGS_TOTAL, label!("result" => "accepted")),
            coalesced: Counter::register(PINGS_TOTAL, label!("result" => "coalesced")),
            queue_full: Counter::register(PINGS_TOTAL, label!("result" => "queue_full")),
            pending: GaugeShare::register(PING_PENDING),
        }
    }

    /// A new pending user.
    pub(crate) fn accepted(&self) {
        self.accepted.increment();
        self.pending.add(1);
    }

    /// A ping folded into a pending or in-flight user's request.
    #[inline]
    pub(crate) fn coalesced(&self) {
        self.coalesced.increment();
    }

    /// A new user refused: `max_pending` users are pending.
    pub(crate) fn queue_full(&self) {
        self.queue_full.increment();
    }
}

/// How an attempt counts in `pingpull_ping_attempts_total`.
#[cfg(feature = "ping")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptOutcome {
    /// Livefyre answered 2xx.
    Delivered,
    /// A passing fault; the user waits for another attempt.
    Retry,
    /// The attempts for the user's change ended: a permanent refusal, or too old to retry.
    GaveUp,
    /// Livefyre answered 403 (a 403 pause).
    Unauthorized,
}

/// What the delivery engine records, registered once per engine (Pinger or outbox worker).
#[cfg(feature = "ping")]
pub(crate) struct DeliveryMetrics {
    delivered: Counter,
    retry: Counter,
    gave_up: Counter,
    unauthorized: Counter,
    in_flight: Gauge,
    delivery_seconds: Histogram,
}

#[cfg(feature = "ping")]
impl DeliveryMetrics {
    pub(crate) fn register() -> Self {
        describe_all(&[PING_ATTEMPTS_TOTAL, PING_IN_FLIGHT, PING_DELIVERY_SECONDS]);
        Self {
            delivered: Counter::register(PING_ATTEMPTS_TOTAL, label!("outcome" => "delivered")),
            retry: Counter::register(PING_ATTEMPTS_TOTAL, label!("outcome" => "retry")),
            gave_up: Counter::register(PING_ATTEMPTS_TOTAL, label!("outcome" => "gave_up")),
            unauthorized: Counter::register(
                PING_ATTEMPTS_TOTAL,
                label!("outcome" => "unauthorized"),
            ),
            in_flight: Gauge::register(PING_IN_FLIGHT),
            delivery_seconds: Histogram::register(PING_DELIVERY_SECONDS, &[]),
        }
    }

    pub(crate) fn attempt(&self, outcome: AttemptOutcome) {
        match outcome {
            AttemptOutcome::Delivered => self.delivered.increment(),
            AttemptOutcome::Retry => self.retry.increment(),
            AttemptOutcome::GaveUp => self.gave_up.increment(),
            AttemptOutcome::Unauthorized => self.unauthorized.increment(),
        }
    }

    /// A user delivered and settled, `pending_for` after its first ping.
    pub(crate) fn delivered_after(&self, pending_for: Duration) {
        self.delivery_seconds.record(pending_for);
    }

    /// Counts a request in flight until the guard is dropped (also when its task is
    /// aborted at a shutdown deadline).
    pub(crate) fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.increment(1);
        InFlight(&self.in_flight)
    }
}

/// One request in `pingpull_ping_in_flight`, until dropped.
#[cfg(feature = "ping")]
pub(crate) struct InFlight<'a>(&'a Gauge);

#[cfg(feature = "ping")]
impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.decrement(1);
    }
}

/// What the outbox's store records, registered once per outbox worker.
#[cfg(feature = "postgres")]
pub(crate) struct OutboxMetrics {
    /// This worker's view of the table's row count.
    pub(crate) pending: GaugeShare,
    oldest_due: Gauge,
    lease_lost: Counter,
}

#[cfg(feature = "postgres")]
impl OutboxMetrics {
    pub(crate) fn register() -> Self {
        describe_all(&[
            PING_PENDING,
            OUTBOX_OLDEST_DUE_SECONDS,
            OUTBOX_LEASE_LOST_TOTAL,
        ]);
        Self {
            pending: GaugeShare::register(PING_PENDING),
            oldest_due: Gauge::register(OUTBOX_OLDEST_DUE_SECONDS),
            lease_lost: Counter::register(OUTBOX_LEASE_LOST_TOTAL, &[]),
        }
    }

    /// What a look at the table found: its rows, and how long the oldest due one has been due.
    pub(crate) fn looked(&self, rows: u64, oldest_due: Duration) {
        self.pending.set(i64::try_from(rows).unwrap_or(i64::MAX));
        self.oldest_due.set(oldest_due.as_secs_f64());
    }

    pub(crate) fn lease_lost(&self) {
        self.lease_lost.increment();
    }
}

/// The handles, recording through the `metrics` facade.
#[cfg(feature = "metrics")]
// Each combination of features uses its own part of these.
#[allow(dead_code)]
mod recorded {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::time::Duration;

    pub(crate) use ::metrics::Label;
    use ::metrics::{Key, KeyName, Level, Metadata, SharedString, Unit};

    use super::MetricKind;

    const METADATA: Metadata<'static> =
        Metadata::new("pingpull", Level::INFO, Some(module_path!()));

    pub(crate) fn describe(
        name: &'static str,
        kind: MetricKind,
        seconds: bool,
        help: &'static str,
    ) {
        let unit = Some(if seconds { Unit::Seconds } else { Unit::Count });
        let (name, help) = (KeyName::from_const_str(name), SharedString::const_str(help));
        ::metrics::with_recorder(|recorder| match kind {
            MetricKind::Counter => recorder.describe_counter(name, unit, help),
            MetricKind::Gauge => recorder.describe_gauge(name, unit, help),
            MetricKind::Histogram => recorder.describe_histogram(name, unit, help),
        });
    }

    /// Looks the counter up in the current recorder and adds one (no handle kept).
    pub(crate) fn increment_labelled(name: &'static str, key: &'static str, value: &'static str) {
        let key = Key::from_parts(name, vec![Label::from_static_parts(key, value)]);
        ::metrics::with_recorder(|recorder| {
            recorder.register_counter(&key, &METADATA).increment(1)
        });
    }

    pub(crate) struct Counter(::metrics::Counter);

    impl Counter {
        pub(crate) fn register(name: &'static str, labels: &'static [Label]) -> Self {
            let key = Key::from_static_parts(name, labels);
            Self(::metrics::with_recorder(|r| {
                r.register_counter(&key, &METADATA)
            }))
        }

        /// With a label whose value is known only at run time (still `'static`).
        pub(crate) fn labelled(name: &'static str, key: &'static str, value: &'static str) -> Self {
            let key = Key::from_parts(name, vec![Label::from_static_parts(key, value)]);
            Self(::metrics::with_recorder(|r| {
                r.register_counter(&key, &METADATA)
            }))
        }

        #[inline]
        pub(crate) fn increment(&self) {
            self.0.increment(1);
        }
    }

    pub(crate) struct Gauge(::metrics::Gauge);

    impl Gauge {
        pub(crate) fn register(name: &'static str) -> Self {
            let key = Key::from_static_name(name);
            Self(::metrics::with_recorder(|r| {
                r.register_gauge(&key, &METADATA)
            }))
        }

        pub(crate) fn increment(&self, by: u32) {
            self.0.increment(by);
        }

        pub(crate) fn decrement(&self, by: u32) {
            self.0.decrement(by);
        }

        pub(crate) fn set(&self, value: f64) {
            self.0.set(value);
        }
    }

    /// One component's share of a gauge that several add up to (two Pingers in one
    /// process each add their pending users); withdrawn when dropped.
    pub(crate) struct GaugeShare {
        gauge: ::metrics::Gauge,
        mine: AtomicI64,
    }

    impl GaugeShare {
        pub(crate) fn register(name: &'static str) -> Self {
            Self {
                gauge: Gauge::register(name).0,
                mine: AtomicI64::new(0),
            }
        }

        pub(crate) fn add(&self, delta: i64) {
            self.mine.fetch_add(delta, Ordering::Relaxed);
            self.gauge.increment(delta as f64);
        }

        pub(crate) fn set(&self, value: i64) {
            let before = self.mine.swap(value, Ordering::Relaxed);
            self.gauge.increment(value.saturating_sub(before) as f64);
        }
    }

    impl Drop for GaugeShare {
        fn drop(&mut self) {
            self.gauge.decrement(*self.mine.get_mut() as f64);
        }
    }

    pub(crate) struct Histogram(::metrics::Histogram);

    impl Histogram {
        pub(crate) fn register(name: &'static str, labels: &'static [Label]) -> Self {
            let key = Key::from_static_parts(name, labels);
            Self(::metrics::with_recorder(|r| {
                r.register_histogram(&key, &METADATA)
            }))
        }

        pub(crate) fn record(&self, duration: Duration) {
            self.0.record(duration.as_secs_f64());
        }

        /// Records the time since `started`.
        pub(crate) fn record_since(&self, started: std::time::Instant) {
            self.record(started.elapsed());
        }
    }
}

/// The same handles without the feature: zero-sized, recording nothing.
#[cfg(not(feature = "metrics"))]
#[allow(dead_code)]
mod unrecorded {
    use std::time::Duration;

    use super::MetricKind;

    pub(crate) struct Label;

    impl Label {
        pub(crate) const fn from_static_parts(_key: &'static str, _value: &'static str) -> Self {
            Self
        }
    }

    pub(crate) fn describe(
        _name: &'static str,
        _kind: MetricKind,
        _seconds: bool,
        _help: &'static str,
    ) {
    }

    pub(crate) fn increment_labelled(
        _name: &'static str,
        _key: &'static str,
        _value: &'static str,
    ) {
    }

    pub(crate) struct Counter;

    impl Counter {
        pub(crate) fn register(_name: &'static str, _labels: &'static [Label]) -> Self {
            Self
        }

        pub(crate) fn labelled(
            _name: &'static str,
            _key: &'static str,
            _value: &'static str,
        ) -> Self {
            Self
        }

        #[inline]
        pub(crate) fn increment(&self) {}
    }

    pub(crate) struct Gauge;

    impl Gauge {
        pub(crate) fn register(_name: &'static str) -> Self {
            Self
        }

        pub(crate) fn increment(&self, _by: u32) {}

        pub(crate) fn decrement(&self, _by: u32) {}

        pub(crate) fn set(&self, _value: f64) {}
    }

    pub(crate) struct GaugeShare;

    impl GaugeShare {
        pub(crate) fn register(_name: &'static str) -> Self {
            Self
        }

        pub(crate) fn add(&self, _delta: i64) {}

        pub(crate) fn set(&self, _value: i64) {}
    }

    pub(crate) struct Histogram;

    impl Histogram {
        pub(crate) fn register(_name: &'static str, _labels: &'static [Label]) -> Self {
            Self
        }

        pub(crate) fn record(&self, _duration: Duration) {}

        pub(crate) fn record_since(&self, _started: std::time::Instant) {}
    }
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    /// Every series the recorder holds, as `name{key=value}` and its value.
    fn read(recorder: &DebuggingRecorder) -> Vec<(String, DebugValue)> {
        let mut all: Vec<_> = recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let labels: Vec<String> = key
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                (format!("{}{{{}}}", key.name(), labels.join(",")), value)
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    #[cfg(feature = "pull")]
    #[test]
    fn pull_metrics_count_by_outcome_and_key() {
        let recorder = DebuggingRecorder::new();
        metrics::with_local_recorder(&recorder, || {
            let pull = PullMetrics::register(&["missing_token", "unknown_user"]);
            let started = std::time::Instant::now();
            pull.request("ok", started);
            pull.request("ok", started);
            pull.request("missing_token", started);
            // Not registered up front: looked up, still counted.
            pull.request("source_failed", started);
            pull.token_key(false);
            pull.token_key(true);
            pull.token_key(true);
        });
        let count = |n| DebugValue::Counter(n);
        let all = read(&recorder);
        let series: Vec<&str> = all.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            series,
            [
                "pingpull_pull_duration_seconds{}",
                "pingpull_pull_requests_total{outcome=missing_token}",
                "pingpull_pull_requests_total{outcome=ok}",
                "pingpull_pull_requests_total{outcome=source_failed}",
                "pingpull_pull_requests_total{outcome=unknown_user}",
                "pingpull_token_key_total{key=current}",
                "pingpull_token_key_total{key=previous}",
            ]
        );
        let values: Vec<&DebugValue> = all.iter().skip(1).map(|(_, v)| v).collect();
        assert_eq!(
            values,
            [
                &count(1),
                &count(2),
                &count(1),
                &count(0),
                &count(1),
                &count(2)
            ]
        );
        let DebugValue::Histogram(durations) = &all[0].1 else {
            panic!("{all:?}")
        };
        assert_eq!(durations.len(), 4);
    }

    #[test]
    fn every_name_is_described_as_prometheus_expects() {
        let names = DESCRIPTIONS.map(|(name, ..)| name);
        for (name, kind, seconds, _) in DESCRIPTIONS {
            assert!(name.starts_with("pingpull_"), "{name}");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            assert_eq!(
                matches!(kind, MetricKind::Counter),
                name.ends_with("_total"),
                "{name}"
            );
            assert_eq!(seconds, name.ends_with("_seconds"), "{name}");
        }
        let mut unique = names.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
    }
}
