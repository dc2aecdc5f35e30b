//! The per-host circuit: when Livefyre cannot be reached, the engine stops sending users'
//! requests, probes about once a second, and releases every waiting user as soon as a
//! probe is answered. In virtual time through an in-memory Livefyre, and once for the
//! outbox against a real PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::Response;
use pingpull::ping::{PingEvent, Pinger, RetrySchedule};
use pingpull::{BoxError, Network};
use tokio::sync::broadcast::{self, error::TryRecvError};
use tokio::time::Instant;

use crate::support::LogCapture;
use crate::support::scripted_livefyre::{ScriptedLivefyre, status};

/// The engine's default: different users failing in a row that open the circuit.
const THRESHOLD: usize = 10;
/// The engine's default concurrency: requests that may be out when it opens.
const CONCURRENCY: usize = 8;

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

/// A Livefyre that refuses connections while `down` is set, and otherwise answers as
/// `up` says.
fn livefyre(
    down: &Arc<AtomicBool>,
    up: impl Fn(&str, usize) -> Result<Response<()>, BoxError> + Send + Sync + 'static,
) -> ScriptedLivefyre {
    let down = down.clone();
    ScriptedLivefyre::new(move |user, nth| {
        if down.load(Ordering::SeqCst) {
            Err("connection refused".into())
        } else {
            up(user, nth)
        }
    })
}

fn pinger(livefyre: &ScriptedLivefyre, schedule: RetrySchedule) -> Pinger {
    Pinger::builder(network())
        .base_url("http://livefyre.test")
        .transport(livefyre.clone())
        .retry_schedule(schedule.jitter(0.0))
        .events_capacity(10_000)
        .spawn()
        .unwrap()
}

fn ping_users(pinger: &Pinger, count: usize) {
    for i in 0..count {
        pinger.ping(&format!("u{i}")).unwrap();
    }
}

/// Requests sent in `from..to` after `start`.
fn requests_between(livefyre: &ScriptedLivefyre, start: Instant, from: u64, to: u64) -> usize {
    let log = livefyre.log.lock().unwrap();
    log.iter()
        .filter(|(_, at)| {
            let since = *at - start;
            since >= Duration::from_secs(from) && since < Duration::from_secs(to)
        })
        .count()
}

/// The events sent so far (none is missed: the capacity is set above what a test sends).
fn received(events: &mut broadcast::Receiver<PingEvent>) -> Vec<PingEvent> {
    let mut received = Vec::new();
    loop {
        match events.try_recv() {
            Ok(event) => received.push(event),
            Err(TryRecvError::Empty) => return received,
            Err(error) => panic!("{error}"),
        }
    }
}

fn secs(list: &[u64]) -> Vec<Duration> {
    list.iter().map(|s| Duration::from_secs(*s)).collect()
}

#[tokio::test(start_paused = true)]
async fn an_outage_opens_the_circuit_and_lets_about_one_request_a_second_leave() {
    let logs = LogCapture::default();
    let _guard = logs.install(tracing::Level::INFO);
    let down = Arc::new(AtomicBool::new(true));
    let livefyre = livefyre(&down, |_, _| status(200));
    let start = Instant::now();
    let pinger = pinger(&livefyre, RetrySchedule::default());
    let mut events = pinger.events();
    ping_users(&pinger, 100);
    tokio::time::sleep(Duration::from_millis(60_500)).await;

    // Each of the 100 users on its own schedule would have sent 4 requests by now (at 0 s,
    // 1 s, 6 s and 36 s); the circuit lets the first failures through, then one probe a
    // second.
    let at_once = requests_between(&livefyre, start, 0, 1);
    assert!(
        at_once <= THRESHOLD + CONCURRENCY,
        "{at_once} requests at 0 s"
    );
    for second in 1..=60 {
        let sent = requests_between(&livefyre, start, second, second + 1);
        assert_eq!(sent, 1, "{sent} requests in second {second}");
    }
    let events = received(&mut events);
    let opened = events
        .iter()
        .filter(|e| matches!(e, PingEvent::Unreachable { .. }))
        .count();
    assert_eq!(opened, 1, "{events:?}");
    let health = pinger.health();
    assert!(health.unreachable, "{health:?}");
    assert!(!health.unauthorized);
    let stats = pinger.stats();
    assert_eq!((stats.pending, stats.given_up), (100, 0), "{stats:?}");

    // Told once, not per user: the retries during the outage are DEBUG detail.
    let text = logs.text();
    assert_eq!(text.matches("Livefyre is unreachable").count(), 1, "{text}");
    let retry_lines = text.matches("retrying").count();
    assert!(
        retry_lines <= THRESHOLD + CONCURRENCY,
        "{retry_lines} lines:\n{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn delivery_resumes_within_two_seconds_of_livefyre_answering_after_a_long_outage() {
    let down = Arc::new(AtomicBool::new(true));
    let livefyre = livefyre(&down, |_, _| status(200));
    // Without the circuit the users would wait 2 to 10 minutes for their next attempt.
    let pinger = pinger(&livefyre, RetrySchedule::default());
    let mut events = pinger.events();
    ping_users(&pinger, 500);
    tokio::time::sleep(Duration::from_millis(600_300)).await;
    assert_eq!(pinger.stats().succeeded, 0);
    let during = livefyre.log.lock().unwrap().len();
    assert!(
        during <= THRESHOLD + CONCURRENCY + 601,
        "{during} requests in 600 s"
    );

    down.store(false, Ordering::SeqCst);
    let back = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats = pinger.stats();
    assert_eq!((stats.succeeded, stats.pending), (500, 0), "{stats:?}");
    let first_after = livefyre
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|(_, at)| *at)
        .filter(|at| *at >= back)
        .min()
        .unwrap();
    assert!(first_after - back <= Duration::from_secs(1));
    let resumed: Vec<_> = received(&mut events)
        .into_iter()
        .filter_map(|e| match e {
            PingEvent::Resumed { paused_for } => Some(paused_for),
            _ => None,
        })
        .collect();
    assert_eq!(resumed.len(), 1, "{resumed:?}");
    assert!(resumed[0] >= Duration::from_secs(600), "{resumed:?}");
    assert!(!pinger.health().unreachable);
}

#[tokio::test(start_paused = true)]
async fn ten_users_failing_in_a_row_open_the_circuit_nine_do_not() {
    // Each user's first attempt fails with a 503, its second succeeds; users retry after
    // 5 s on their own schedule, so a release by the circuit (a probe after 1 s) shows.
    for (users, retried_at) in [(THRESHOLD - 1, 5), (THRESHOLD, 1)] {
        let livefyre = ScriptedLivefyre::new(|_, nth| status(if nth == 1 { 503 } else { 200 }));
        let start = Instant::now();
        let pinger = pinger(&livefyre, RetrySchedule::new(secs(&[5])));
        let mut events = pinger.events();
        ping_users(&pinger, users);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(pinger.stats().succeeded, users as u64);
        for i in 0..users {
            let times = livefyre.times(&format!("u{i}"), start);
            assert_eq!(times, secs(&[0, retried_at]), "{users} users: u{i}");
        }
        let opened = received(&mut events)
            .iter()
            .any(|e| matches!(e, PingEvent::Unreachable { .. }));
        assert_eq!(opened, users >= THRESHOLD, "{users} users");
    }
}

/// A 4xx for one user shows Livefyre is there: the failures before it no longer count.
/// Nine users fail, one is answered 404, nine others fail: 18 failures, never ten in a
/// row, so the circuit stays closed and every user keeps its own schedule.
#[tokio::test(start_paused = true)]
async fn a_4xx_between_failures_keeps_the_circuit_closed() {
    let livefyre = ScriptedLivefyre::new(|user, nth| match (user, nth) {
        ("ghost", _) => status(404),
        (_, 1) => status(503),
        _ => status(200),
    });
    let start = Instant::now();
    let pinger = Pinger::builder(network())
        .base_url("http://livefyre.test")
        .transport(livefyre.clone())
        .retry_schedule(RetrySchedule::new(secs(&[5])).jitter(0.0))
        .events_capacity(10_000)
        // One request at a time: the answers come in the order of the pings.
        .concurrency(1)
        .spawn()
        .unwrap();
    let mut events = pinger.events();
    for i in 0..THRESHOLD - 1 {
        pinger.ping(&format!("a{i}")).unwrap();
    }
    pinger.ping("ghost").unwrap();
    for i in 0..THRESHOLD - 1 {
        pinger.ping(&format!("b{i}")).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(10)).await;

    let events = received(&mut events);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, PingEvent::Unreachable { .. })),
        "{events:?}"
    );
    // Retried on their own schedule (5 s), not released early by a probe.
    for user in ["a0", "b8"] {
        assert_eq!(livefyre.times(user, start), secs(&[0, 5]), "{user}");
    }
    let stats = pinger.stats();
    assert_eq!((stats.succeeded, stats.given_up), (18, 1), "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn one_users_5xx_does_not_open_the_circuit() {
    let livefyre =
        ScriptedLivefyre::new(|user, _| status(if user == "broken" { 503 } else { 200 }));
    let start = Instant::now();
    let pinger = pinger(&livefyre, RetrySchedule::new(secs(&[1, 5, 30])));
    let mut events = pinger.events();
    pinger.ping("broken").unwrap();
    ping_users(&pinger, 30);
    tokio::time::sleep(Duration::from_secs(400)).await;
    // Its own schedule, exactly: 0, then +1, +5, then every 30 s: 15 failures in a row,
    // all of one user.
    let schedule: Vec<u64> = [0, 1, 6].into_iter().chain((36..400).step_by(30)).collect();
    assert_eq!(livefyre.times("broken", start), secs(&schedule));
    assert_eq!(pinger.stats().succeeded, 30);
    assert!(!pinger.health().unreachable);
    let events = received(&mut events);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, PingEvent::Unreachable { .. })),
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_with_retry_after_is_still_honoured() {
    let livefyre = ScriptedLivefyre::new(|user, nth| match (user, nth) {
        ("busy", 1) => Ok(Response::builder()
            .status(429)
            .header("retry-after", "30")
            .body(())
            .unwrap()),
        _ => status(200),
    });
    let start = Instant::now();
    let pinger = pinger(&livefyre, RetrySchedule::new(secs(&[1])));
    pinger.ping("busy").unwrap();
    ping_users(&pinger, 30);
    tokio::time::sleep(Duration::from_secs(40)).await;
    assert_eq!(livefyre.times("busy", start), secs(&[0, 30]));
    assert_eq!(pinger.stats().succeeded, 31);
}

#[tokio::test(start_paused = true)]
async fn the_probe_interval_grows_as_configured() {
    let down = Arc::new(AtomicBool::new(true));
    let livefyre = livefyre(&down, |_, _| status(200));
    let start = Instant::now();
    let pinger = Pinger::builder(network())
        .base_url("http://livefyre.test")
        .transport(livefyre.clone())
        .retry_schedule(RetrySchedule::default())
        .outage_probe(Duration::from_secs(1), Duration::from_secs(8))
        .spawn()
        .unwrap();
    ping_users(&pinger, 50);
    tokio::time::sleep(Duration::from_millis(40_500)).await;
    // Probes 1, 2, 4, 8, 8, ... seconds apart: at 1, 3, 7, 15, 23, 31 and 39 s.
    let probes: Vec<u64> = livefyre
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|(_, at)| (*at - start).as_secs())
        .filter(|second| *second > 0)
        .collect();
    assert_eq!(probes, [1, 3, 7, 15, 23, 31, 39]);
}

#[tokio::test]
async fn outage_probe_intervals_are_checked_at_spawn() {
    for (first, longest) in [(0, 1), (5, 1)] {
        let spawned = Pinger::builder(network())
            .outage_probe(Duration::from_secs(first), Duration::from_secs(longest))
            .spawn();
        assert!(spawned.is_err(), "{first} s to {longest} s accepted");
    }
}

#[cfg(feature = "postgres")]
/// Users given up en masse (here every one refused with a 404) are one WARN a minute, not
/// one per user; each of them is still counted and sent as an event.
#[tokio::test(start_paused = true)]
async fn a_mass_give_up_is_one_warning_not_one_per_user() {
    let logs = LogCapture::default();
    let _guard = logs.install(tracing::Level::INFO);
    let livefyre = ScriptedLivefyre::new(|_, _| status(404));
    let pinger = pinger(&livefyre, RetrySchedule::default());
    let mut events = pinger.events();
    ping_users(&pinger, 50);
    tokio::time::sleep(Duration::from_secs(5)).await;

    assert_eq!(pinger.stats().given_up, 50, "{:?}", pinger.stats());
    let given_up = received(&mut events)
        .into_iter()
        .filter(|e| matches!(e, PingEvent::GaveUp { .. }))
        .count();
    assert_eq!(given_up, 50);
    let text = logs.text();
    assert_eq!(
        text.matches("giving up: Livefyre refused the ping").count(),
        1,
        "{text}"
    );
}

#[cfg(feature = "postgres")]
mod outbox {
    use pingpull::outbox::OutboxWorker;

    use super::*;
    use crate::support::database::TestDb;

    /// Waits up to `within` for `done`.
    async fn wait_for<F: std::future::Future<Output = bool>>(
        within: Duration,
        what: &str,
        mut done: impl FnMut() -> F,
    ) {
        let deadline = Instant::now() + within;
        while !done().await {
            assert!(Instant::now() < deadline, "not within {within:?}: {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_outbox_worker_resumes_when_livefyre_answers_again() {
        let db = TestDb::new().await;
        let down = Arc::new(AtomicBool::new(true));
        let livefyre = livefyre(&down, |_, _| status(200));
        // Retries an hour apart: only the circuit's release delivers within the test.
        let worker = OutboxWorker::builder(network(), db.pool.clone(), db.table.clone())
            .base_url("http://livefyre.test")
            .transport(livefyre.clone())
            .concurrency(4)
            .poll_every(Duration::from_millis(100))
            .retry_schedule(RetrySchedule::new([Duration::from_secs(3600)]))
            .spawn()
            .unwrap();
        let mut events = worker.events();
        let mut tx = db.pool.begin().await.unwrap();
        for i in 0..40 {
            db.table.enqueue(&mut *tx, &format!("u{i}")).await.unwrap();
        }
        tx.commit().await.unwrap();

        wait_for(Duration::from_secs(20), "the circuit opens", || async {
            worker.health().await.unwrap().unreachable
        })
        .await;
        let opened_at = Instant::now();
        let at_open = livefyre.log.lock().unwrap().len();
        assert!(
            at_open <= THRESHOLD + 4,
            "{at_open} requests before it opened"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        let probes = livefyre.log.lock().unwrap().len() - at_open;
        let seconds = opened_at.elapsed().as_secs();
        assert!(
            probes as u64 <= seconds + 1,
            "{probes} probes in {seconds} s"
        );
        assert_eq!(db.pending().await, 40);

        down.store(false, Ordering::SeqCst);
        wait_for(Duration::from_secs(20), "every row delivered", || async {
            db.pending().await == 0
        })
        .await;
        assert!(!worker.health().await.unwrap().unreachable);
        let events = received(&mut events);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, PingEvent::Resumed { .. })),
            "{events:?}"
        );
        let report = worker.shutdown(Duration::from_secs(5)).await;
        assert!(report.undelivered.is_empty());
    }
}
