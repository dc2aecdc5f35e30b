//! What the Pinger records through the `metrics` facade, read with metrics-util's
//! debugging recorder installed for each test alone (`metrics::with_local_recorder` around
//! the spawn: handles are registered then), in virtual time against an in-memory Livefyre.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use pingpull::ping::{PingError, Pinger, PingerBuilder, RetrySchedule, Transport};
use pingpull::{BoxError, Network};

use crate::support::scripted_livefyre::{ScriptedLivefyre, status};

const KEY: &str = "testkeytest";

/// Series name and sorted labels, e.g. `pingpull_pings_total{result=accepted}`.
type Series = (String, Vec<(String, String)>);

/// What a debugging recorder recorded, summed over snapshots (each snapshot drains
/// counters, gauges and histograms; pingpull's gauges only ever add and subtract).
pub(crate) struct Recorded {
    recorder: DebuggingRecorder,
    snapshotter: Snapshotter,
    counters: HashMap<Series, u64>,
    gauges: HashMap<Series, f64>,
    /// Each gauge's value in the latest snapshot alone: what a gauge that is set (not
    /// added to) was last set to, or 0 if it was not set since the snapshot before.
    latest: HashMap<Series, f64>,
    histograms: HashMap<Series, Vec<f64>>,
}

impl Recorded {
    pub(crate) fn new() -> Self {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        Self {
            recorder,
            snapshotter,
            counters: HashMap::new(),
            gauges: HashMap::new(),
            latest: HashMap::new(),
            histograms: HashMap::new(),
        }
    }

    /// Runs `spawn` with this recorder installed for the current thread only.
    pub(crate) fn install<T>(&self, spawn: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, spawn)
    }

    /// Reads what was recorded since the last read; every series seen so far.
    pub(crate) fn read(&mut self) -> Vec<String> {
        self.latest.clear();
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let key = key.key();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            let series = (key.name().to_owned(), labels);
            match value {
                DebugValue::Counter(n) => *self.counters.entry(series).or_default() += n,
                DebugValue::Gauge(v) => {
                    self.latest.insert(series.clone(), v.0);
                    *self.gauges.entry(series).or_default() += v.0;
                }
                DebugValue::Histogram(values) => self
                    .histograms
                    .entry(series)
                    .or_default()
                    .extend(values.into_iter().map(|v| v.0)),
            }
        }
        let names = self.counters.keys().chain(self.gauges.keys());
        let names = names.chain(self.histograms.keys());
        names
            .map(|(name, labels)| format!("{name}{labels:?}"))
            .collect()
    }

    pub(crate) fn counter(&mut self, name: &str, label: Option<(&str, &str)>) -> u64 {
        self.read();
        self.counters
            .get(&series(name, label))
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn gauge(&mut self, name: &str) -> f64 {
        self.read();
        self.gauges.get(&series(name, None)).copied().unwrap_or(0.0)
    }

    /// The value a gauge that is set was last set to since the previous read (else 0).
    pub(crate) fn gauge_set(&mut self, name: &str) -> f64 {
        self.read();
        self.latest.get(&series(name, None)).copied().unwrap_or(0.0)
    }

    pub(crate) fn histogram(&mut self, name: &str) -> Vec<f64> {
        self.read();
        self.histograms
            .get(&series(name, None))
            .cloned()
            .unwrap_or_default()
    }
}

fn series(name: &str, label: Option<(&str, &str)>) -> Series {
    let labels = label.map(|(k, v)| (k.to_owned(), v.to_owned()));
    (name.to_owned(), labels.into_iter().collect())
}

fn builder(transport: impl Transport) -> PingerBuilder {
    Pinger::builder(Network::new("example.fyre.co", KEY).unwrap())
        .base_url("http://livefyre.test")
        .transport(transport)
        .retry_schedule(RetrySchedule::new([Duration::from_secs(1)]).jitter(0.0))
}

fn attempts(recorded: &mut Recorded, outcome: &str) -> u64 {
    recorded.counter("pingpull_ping_attempts_total", Some(("outcome", outcome)))
}

#[tokio::test(start_paused = true)]
async fn counts_ping_calls_by_result() {
    let mut recorded = Recorded::new();
    let livefyre = ScriptedLivefyre::new(|_, _| status(200));
    let pinger = recorded.install(|| {
        builder(livefyre)
            .max_pending(1)
            .debounce(Duration::from_secs(3600))
            .spawn()
            .unwrap()
    });
    pinger.ping("u1").unwrap();
    pinger.ping("u1").unwrap();
    pinger.ping("u1").unwrap();
    assert!(matches!(
        pinger.ping("u2"),
        Err(PingError::QueueFull { .. })
    ));
    let mut pings = |result| recorded.counter("pingpull_pings_total", Some(("result", result)));
    assert_eq!(
        [pings("accepted"), pings("coalesced"), pings("queue_full")],
        [1, 2, 1]
    );
    assert_eq!(recorded.gauge("pingpull_ping_pending"), 1.0);

    pinger.shutdown(Duration::ZERO).await;
    assert_eq!(recorded.gauge("pingpull_ping_pending"), 0.0);
}

#[tokio::test(start_paused = true)]
async fn counts_attempts_by_outcome_and_times_each_delivery() {
    let mut recorded = Recorded::new();
    // "flaky" fails once (retried 1 s later), "gone" is refused for good.
    let livefyre = ScriptedLivefyre::new(|user, nth| match (user, nth) {
        ("flaky", 1) => status(503),
        ("gone", _) => status(404),
        _ => status(200),
    });
    let pinger = recorded.install(|| builder(livefyre).spawn().unwrap());
    for user in ["ok", "flaky", "gone"] {
        pinger.ping(user).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(pinger.stats().pending, 0);

    assert_eq!(attempts(&mut recorded, "delivered"), 2);
    assert_eq!(attempts(&mut recorded, "retry"), 1);
    assert_eq!(attempts(&mut recorded, "gave_up"), 1);
    assert_eq!(attempts(&mut recorded, "unauthorized"), 0);
    let mut delivery = recorded.histogram("pingpull_ping_delivery_seconds");
    delivery.sort_by(f64::total_cmp);
    assert_eq!(delivery, [0.0, 1.0], "at once, and after the 1 s retry");
    assert_eq!(recorded.gauge("pingpull_ping_pending"), 0.0);
    assert_eq!(recorded.gauge("pingpull_ping_in_flight"), 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_user_too_old_to_retry_counts_as_given_up() {
    let mut recorded = Recorded::new();
    let livefyre = ScriptedLivefyre::new(|_, _| status(503));
    let schedule = RetrySchedule::new([Duration::from_secs(30)])
        .jitter(0.0)
        .max_age(Duration::from_secs(60));
    let pinger = recorded.install(|| builder(livefyre).retry_schedule(schedule).spawn().unwrap());
    pinger.ping("u1").unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
    // Attempts at 0 s and 30 s retried; the one at 60 s is too old to retry.
    assert_eq!(attempts(&mut recorded, "retry"), 2);
    assert_eq!(attempts(&mut recorded, "gave_up"), 1);
    assert_eq!(pinger.stats().given_up, 1);
    assert_eq!(recorded.gauge("pingpull_ping_pending"), 0.0);
}

#[tokio::test(start_paused = true)]
async fn every_403_attempt_counts_as_unauthorized() {
    let mut recorded = Recorded::new();
    // Three requests refused (both users, then the first probe), then accepted.
    let requests = AtomicUsize::new(0);
    let livefyre = ScriptedLivefyre::new(move |_, _| {
        status(if requests.fetch_add(1, Ordering::Relaxed) < 3 {
            403
        } else {
            200
        })
    });
    let pinger = recorded.install(|| {
        builder(livefyre)
            .probe_every(Duration::from_secs(60))
            .spawn()
            .unwrap()
    });
    pinger.ping("a").unwrap();
    pinger.ping("b").unwrap();
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert_eq!(attempts(&mut recorded, "unauthorized"), 3);
    assert_eq!(attempts(&mut recorded, "delivered"), 2);
    assert_eq!(recorded.gauge("pingpull_ping_pending"), 0.0);
}

/// Answers nothing, ever: the request stays in flight.
struct Silent;

#[async_trait::async_trait]
impl Transport for Silent {
    async fn send(&self, _: Request<Bytes>) -> Result<Response<()>, BoxError> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn in_flight_counts_a_request_until_it_is_abandoned() {
    let mut recorded = Recorded::new();
    let pinger = recorded.install(|| builder(Silent).spawn().unwrap());
    pinger.ping("u1").unwrap();
    while pinger.stats().in_flight == 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(recorded.gauge("pingpull_ping_in_flight"), 1.0);
    assert_eq!(recorded.gauge("pingpull_ping_pending"), 1.0);

    let report = pinger.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.undelivered, ["u1"]);
    assert_eq!(recorded.gauge("pingpull_ping_in_flight"), 0.0);
    assert_eq!(recorded.gauge("pingpull_ping_pending"), 0.0);
}

#[tokio::test(start_paused = true)]
async fn no_label_or_value_holds_a_token_a_key_or_a_user() {
    let mut recorded = Recorded::new();
    let livefyre = ScriptedLivefyre::new(|user, _| status(if user == "gone" { 404 } else { 200 }));
    let pinger = recorded.install(|| builder(livefyre).spawn().unwrap());
    for user in ["secret-user", "gone"] {
        pinger.ping(user).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let seen = recorded.read().join("\n");
    assert!(seen.contains("pingpull_ping_attempts_total"), "{seen}");
    for secret in [KEY, "eyJ", "secret-user", "lftoken"] {
        assert!(!seen.contains(secret), "{secret} in\n{seen}");
    }
    let mut names: Vec<&str> = seen
        .lines()
        .map(|line| line.split('[').next().unwrap())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names,
        [
            "pingpull_ping_attempts_total",
            "pingpull_ping_delivery_seconds",
            "pingpull_ping_in_flight",
            "pingpull_ping_pending",
            "pingpull_pings_total",
        ]
    );
}
