//! The Pinger's documented defaults, as docs/pinger.md states them, checked as values and as
//! behaviour in virtual time (an in-memory Livefyre behind `Transport`, a paused clock):
//! the retry schedule with ±20 % jitter, `Retry-After` up to 1 hour, the 24 h maximum
//! age, the 10 s attempt timeout, 8 requests at once, one probe a minute after a 403 and
//! `max_pending` 100 000.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use pingpull::ping::{
    DEFAULT_ATTEMPT_TIMEOUT, Failure, PingError, PingEvent, Pinger, RetrySchedule, Transport,
};
use pingpull::{BoxError, Network};
use tokio::time::Instant;

use crate::support::scripted_livefyre::{ScriptedLivefyre, status};

const HOUR: u64 = 3600;

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

/// A Pinger with every default but the transport.
fn default_pinger(transport: impl Transport) -> Pinger {
    Pinger::builder(network())
        .base_url("http://livefyre.test")
        .transport(transport)
        .spawn()
        .unwrap()
}

fn gaps(times: &[Duration]) -> Vec<f64> {
    times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect()
}

#[test]
fn the_default_schedule_is_the_documented_one() {
    let documented = RetrySchedule::new([1, 5, 30, 120, 600, 1800, 3600].map(Duration::from_secs))
        .jitter(0.2)
        .max_retry_after(Duration::from_secs(HOUR))
        .max_age(Duration::from_secs(24 * HOUR))
        .max_delay(Duration::from_secs(HOUR));
    assert_eq!(RetrySchedule::default(), documented);
    assert_eq!(
        RetrySchedule::default().max_age_duration(),
        Duration::from_secs(24 * HOUR)
    );
    assert_eq!(DEFAULT_ATTEMPT_TIMEOUT, Duration::from_secs(10));
}

/// With the default schedule, each wait lies within ±20 % of 1 s, 5 s, 30 s, 2 min,
/// 10 min, 30 min, then an hour (capped at an hour), and the waits are not all exact.
#[tokio::test(start_paused = true)]
async fn default_retries_follow_the_schedule_within_twenty_percent() {
    let livefyre = ScriptedLivefyre::new(|_, nth| status(if nth < 10 { 503 } else { 200 }));
    let start = Instant::now();
    let pinger = default_pinger(livefyre.clone());
    for user in ["a", "b", "c"] {
        pinger.ping(user).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(6 * HOUR)).await;
    let nominal: [f64; 9] = [1.0, 5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 3600.0, 3600.0];
    let mut exact = 0;
    for user in ["a", "b", "c"] {
        let gaps = gaps(&livefyre.times(user, start));
        assert_eq!(gaps.len(), nominal.len(), "{user}: {gaps:?}");
        for (gap, nominal) in gaps.iter().zip(nominal) {
            let low = nominal * 0.8 - 0.001;
            let high = (nominal * 1.2).min(3600.0) + 0.001;
            assert!(
                (low..=high).contains(gap),
                "{user}: {gap} s for {nominal} s"
            );
            exact += usize::from((gap - nominal).abs() < 0.001);
        }
    }
    assert!(
        exact < 10,
        "jitter spreads the waits: {exact} of 27 were exact"
    );
    assert_eq!(pinger.stats().succeeded, 3);
}

/// A `Retry-After` of a day is obeyed for one hour, by default.
#[tokio::test(start_paused = true)]
async fn retry_after_is_obeyed_up_to_one_hour_by_default() {
    let livefyre = ScriptedLivefyre::new(|_, nth| match nth {
        1 => Ok(Response::builder()
            .status(503)
            .header("retry-after", "86400")
            .body(())
            .unwrap()),
        2 => Ok(Response::builder()
            .status(429)
            .header("retry-after", "120")
            .body(())
            .unwrap()),
        _ => status(200),
    });
    let start = Instant::now();
    let _pinger = default_pinger(livefyre.clone());
    _pinger.ping("u1").unwrap();
    tokio::time::sleep(Duration::from_secs(2 * HOUR)).await;
    let times = livefyre.times("u1", start);
    assert_eq!(
        times,
        [0, HOUR, HOUR + 120].map(Duration::from_secs).to_vec()
    );
}

/// A user failing for a day is given up (`TooOld`): no attempt is made 24 h or more
/// after its latest ping. The engine gives up as soon as the next wait would cross that
/// line, so the user is given up within one (hourly, +20 %) wait before it.
#[tokio::test(start_paused = true)]
async fn a_user_failing_for_a_day_is_given_up_at_24_hours() {
    let livefyre = ScriptedLivefyre::new(|_, _| status(503));
    let start = Instant::now();
    let pinger = default_pinger(livefyre.clone());
    let mut events = pinger.events();
    pinger.ping("u1").unwrap();
    let gave_up_at = loop {
        match events.recv().await.unwrap() {
            PingEvent::GaveUp { user_id, failure } => {
                assert_eq!((user_id.as_str(), failure), ("u1", Failure::TooOld));
                break start.elapsed();
            }
            PingEvent::Retrying { .. } => {}
            other => panic!("{other:?}"),
        }
    };
    let day = Duration::from_secs(24 * HOUR);
    assert!(gave_up_at < day, "{gave_up_at:?}");
    assert!(
        gave_up_at >= day - Duration::from_secs(HOUR + 720),
        "{gave_up_at:?}"
    );
    tokio::time::sleep(Duration::from_secs(2 * HOUR)).await;
    let times = livefyre.times("u1", start);
    assert!(times.iter().all(|at| *at < day), "{times:?}");
    assert_eq!(
        times.last(),
        Some(&gave_up_at),
        "given up when the last attempt failed"
    );
    assert_eq!(pinger.stats().given_up, 1);
}

/// Requests that never answer: cut at 10 s by default, and 8 in flight at once.
struct NeverAnswers(ScriptedLivefyre);

#[async_trait::async_trait]
impl Transport for NeverAnswers {
    async fn send(&self, request: Request<Bytes>) -> Result<Response<()>, BoxError> {
        let _ = self.0.send(request).await;
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_hanging_request_is_cut_at_ten_seconds_by_default() {
    let livefyre = ScriptedLivefyre::new(|_, _| status(200));
    let start = Instant::now();
    let pinger = default_pinger(NeverAnswers(livefyre.clone()));
    let mut events = pinger.events();
    pinger.ping("u1").unwrap();
    let event = events.recv().await.unwrap();
    assert!(
        matches!(
            event,
            PingEvent::Retrying {
                failure: Failure::Timeout,
                attempt: 1,
                ..
            }
        ),
        "{event:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn eight_requests_are_in_flight_at_most_by_default() {
    let livefyre = ScriptedLivefyre::new(|_, _| status(200));
    let pinger = default_pinger(NeverAnswers(livefyre.clone()));
    for n in 0..20 {
        pinger.ping(&format!("u{n}")).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(livefyre.log.lock().unwrap().len(), 8);
    assert_eq!(pinger.stats().in_flight, 8);
}

/// After a 403, one probe a minute by default.
#[tokio::test(start_paused = true)]
async fn after_a_403_one_probe_a_minute_by_default() {
    let livefyre = ScriptedLivefyre::new(|_, _| status(403));
    let start = Instant::now();
    let pinger = default_pinger(livefyre.clone());
    pinger.ping("u1").unwrap();
    pinger.ping("u2").unwrap();
    tokio::time::sleep(Duration::from_secs(185)).await;
    let log = livefyre.log.lock().unwrap();
    let times: Vec<u64> = log.iter().map(|(_, at)| (*at - start).as_secs()).collect();
    // The first two requests went out together; then one probe each minute.
    assert_eq!(times, [0, 0, 60, 120, 180]);
    drop(log);
    assert_eq!(
        pinger.stats().pending,
        2,
        "users are kept during a 403 pause"
    );
}

/// 100 000 users pending at once; the next is refused, not dropped.
#[tokio::test(start_paused = true)]
async fn max_pending_is_one_hundred_thousand_by_default() {
    let livefyre = ScriptedLivefyre::new(|_, _| status(200));
    let pinger = default_pinger(NeverAnswers(livefyre));
    // The worker has not run yet (a paused single-threaded runtime, no await): every
    // ping below is pending.
    for n in 0..100_000 {
        pinger.ping(&format!("u{n}")).unwrap();
    }
    let refused = pinger.ping("one-more");
    assert!(
        matches!(refused, Err(PingError::QueueFull { .. })),
        "{refused:?}"
    );
    // A user already pending coalesces even when the set is full.
    assert_eq!(pinger.ping("u7"), Ok(()));
    assert_eq!(pinger.stats().pending, 100_000);
}
