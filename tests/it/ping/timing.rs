//! The Pinger's timing, exactly, in virtual time: an in-memory Livefyre behind the
//! `Transport` trait and a paused Tokio clock.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use pingpull::ping::{PingEvent, Pinger, RetrySchedule, Transport};
use pingpull::{BoxError, Network};
use tokio::time::Instant;

use crate::support::scripted_livefyre::{ScriptedLivefyre, status};

fn pinger(livefyre: &ScriptedLivefyre, schedule: RetrySchedule) -> Pinger {
    Pinger::builder(Network::new("example.fyre.co", "testkeytest").unwrap())
        .base_url("http://livefyre.test")
        .transport(livefyre.clone())
        .retry_schedule(schedule)
        .attempt_timeout(Duration::from_secs(10))
        .probe_every(Duration::from_secs(60))
        .spawn()
        .unwrap()
}

fn secs(list: &[u64]) -> Vec<Duration> {
    list.iter().map(|s| Duration::from_secs(*s)).collect()
}

#[tokio::test(start_paused = true)]
async fn retries_follow_the_schedule_exactly() {
    let livefyre = ScriptedLivefyre::new(|_, nth| status(if nth < 6 { 503 } else { 200 }));
    let schedule = RetrySchedule::new(secs(&[1, 5, 30])).jitter(0.0);
    let start = Instant::now();
    let pinger = pinger(&livefyre, schedule);
    pinger.ping("u1").unwrap();
    tokio::time::sleep(Duration::from_secs(200)).await;
    // Attempts at 0, then +1, +5, +30, +30 (the last delay repeats), +30.
    assert_eq!(livefyre.times("u1", start), secs(&[0, 1, 6, 36, 66, 96]));
    assert_eq!(pinger.stats().succeeded, 1);
}

#[tokio::test(start_paused = true)]
async fn retry_after_replaces_the_scheduled_delay_and_is_clamped() {
    let livefyre = ScriptedLivefyre::new(|_, nth| match nth {
        1 => Ok(Response::builder()
            .status(429)
            .header("retry-after", "7")
            .body(())
            .unwrap()),
        2 => Ok(Response::builder()
            .status(503)
            .header("retry-after", "100000")
            .body(())
            .unwrap()),
        _ => status(200),
    });
    let schedule = RetrySchedule::new(secs(&[1]))
        .jitter(0.0)
        .max_retry_after(Duration::from_secs(600));
    let start = Instant::now();
    let pinger = pinger(&livefyre, schedule);
    pinger.ping("u1").unwrap();
    tokio::time::sleep(Duration::from_secs(1000)).await;
    assert_eq!(livefyre.times("u1", start), secs(&[0, 7, 607]));
}

#[tokio::test(start_paused = true)]
async fn a_hang_is_cut_at_the_attempt_timeout() {
    let livefyre = ScriptedLivefyre::new(|_, _| status(200));
    /// The first request never answers in time: it would take an hour.
    struct Hang(ScriptedLivefyre);
    #[async_trait::async_trait]
    impl Transport for Hang {
        async fn send(&self, request: Request<Bytes>) -> Result<Response<()>, BoxError> {
            let first = self.0.log.lock().unwrap().is_empty();
            let answer = self.0.send(request).await;
            if first {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            answer
        }
    }
    let start = Instant::now();
    let pinger = Pinger::builder(Network::new("example.fyre.co", "k").unwrap())
        .base_url("http://livefyre.test")
        .transport(Hang(livefyre.clone()))
        .attempt_timeout(Duration::from_secs(10))
        .retry_schedule(RetrySchedule::new(secs(&[2])).jitter(0.0))
        .spawn()
        .unwrap();
    let mut events = pinger.events();
    pinger.ping("u1").unwrap();
    assert!(matches!(
        events.recv().await.unwrap(),
        PingEvent::Retrying {
            failure: pingpull::ping::Failure::Timeout,
            ..
        }
    ));
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert_eq!(livefyre.times("u1", start), secs(&[0, 12]));
}

#[tokio::test(start_paused = true)]
async fn after_a_403_one_probe_per_interval_then_everyone_at_once() {
    let accepted_after = Duration::from_secs(150);
    let start = Instant::now();
    let livefyre = ScriptedLivefyre::new(move |_, _| {
        status(if start.elapsed() < accepted_after {
            403
        } else {
            200
        })
    });
    let pinger = pinger(&livefyre, RetrySchedule::default());
    for user in ["a", "b", "c"] {
        pinger.ping(user).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(400)).await;
    let all: Vec<Duration> = livefyre
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|(_, at)| *at - start)
        .collect();
    // Three first attempts refused at 0 s; probes at 60 s and 120 s refused; the probe at
    // 180 s is accepted and the two held users follow at once.
    assert_eq!(all, secs(&[0, 0, 0, 60, 120, 180, 180, 180]));
    let stats = pinger.stats();
    assert_eq!((stats.succeeded, stats.pending, stats.given_up), (3, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn debounce_groups_a_burst_into_one_request() {
    let livefyre = ScriptedLivefyre::new(|_, _| status(200));
    let start = Instant::now();
    let pinger = Pinger::builder(Network::new("example.fyre.co", "k").unwrap())
        .base_url("http://livefyre.test")
        .transport(livefyre.clone())
        .debounce(Duration::from_secs(2))
        .spawn()
        .unwrap();
    for _ in 0..10 {
        pinger.ping("u1").unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(livefyre.times("u1", start), secs(&[2]));
}

#[tokio::test(start_paused = true)]
async fn rate_limit_spaces_every_request_start() {
    let livefyre = ScriptedLivefyre::new(|_, _| status(200));
    let pinger = Pinger::builder(Network::new("example.fyre.co", "testkeytest").unwrap())
        .base_url("http://livefyre.test")
        .transport(livefyre.clone())
        .rate_limit(20.0)
        .spawn()
        .unwrap();
    for i in 0..5 {
        pinger.ping(&format!("u{i}")).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(pinger.stats().succeeded, 5);
    let starts: Vec<Instant> = livefyre
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|(_, at)| *at)
        .collect();
    let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    // 20 per second: one start every 50 ms, never a burst followed by a wait.
    assert_eq!(gaps, [Duration::from_millis(50); 4], "{gaps:?}");
}
