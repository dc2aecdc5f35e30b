//! A 429 storm, in virtual time: 2,000 pending users, and a Livefyre answering every
//! ping 429 for 30 s, then 200. The whole sender slows down (not each user alone), and
//! delivery resumes within about a second of the 429s ending.

use std::time::Duration;

use http::Response;
use pingpull::Network;
use pingpull::ping::Pinger;
use tokio::time::Instant;

use crate::support::scripted_livefyre::{ScriptedLivefyre, status};

const USERS: usize = 2000;
const STORM: Duration = Duration::from_secs(30);

/// What a storm looked like from Livefyre's side.
struct Seen {
    /// Requests in each second of the storm.
    per_second: Vec<usize>,
    /// From the storm's end to the first request after it (answered 200).
    resumed_after: Duration,
    /// From the storm's end to the last user delivered.
    drained_after: Duration,
}

/// Runs the storm, each 429 with `retry_after` (seconds) if given.
async fn storm(retry_after: Option<&'static str>) -> Seen {
    let start = Instant::now();
    let livefyre = ScriptedLivefyre::new(move |_, _| {
        if start.elapsed() < STORM {
            let mut answer = Response::builder().status(429);
            if let Some(after) = retry_after {
                answer = answer.header("retry-after", after);
            }
            Ok(answer.body(()).unwrap())
        } else {
            status(200)
        }
    });
    let pinger = Pinger::builder(Network::new("example.fyre.co", "testkeytest").unwrap())
        .base_url("http://livefyre.test")
        .transport(livefyre.clone())
        .spawn()
        .unwrap();
    for i in 0..USERS {
        pinger.ping(&format!("u{i}")).unwrap();
    }
    let mut drained_at = None;
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if pinger.stats().succeeded == USERS as u64 {
            drained_at = Some(Instant::now());
            break;
        }
    }
    let drained_at = drained_at.expect("every user delivered within a minute");
    let times: Vec<Duration> = livefyre
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|(_, at)| *at - start)
        .collect();
    let per_second = (0..STORM.as_secs())
        .map(|second| times.iter().filter(|t| t.as_secs() == second).count())
        .collect();
    let first_after = times.iter().filter(|t| **t >= STORM).min().unwrap();
    Seen {
        per_second,
        resumed_after: *first_after - STORM,
        drained_after: drained_at - start - STORM,
    }
}

fn check(seen: &Seen) {
    let busiest = seen.per_second.iter().max().unwrap();
    println!(
        "requests per second during the storm: {:?}; resumed {:?} after it, all delivered {:?} after it",
        seen.per_second, seen.resumed_after, seen.drained_after
    );
    assert!(
        *busiest <= 200,
        "{busiest} requests in one second of the storm"
    );
    // After the first second (the requests already out when the first 429 came), a
    // handful a second.
    let steady = seen.per_second[2..].iter().max().unwrap();
    assert!(*steady <= 5, "{:?}", seen.per_second);
    assert!(
        seen.resumed_after <= Duration::from_millis(1100),
        "resumed {:?} after the storm",
        seen.resumed_after
    );
    assert!(
        seen.drained_after <= Duration::from_secs(10),
        "drained {:?} after the storm",
        seen.drained_after
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_storm_with_retry_after_slows_the_whole_sender_and_delivery_resumes_at_once() {
    check(&storm(Some("1")).await);
}

#[tokio::test(start_paused = true)]
async fn a_429_storm_without_retry_after_slows_the_whole_sender_and_delivery_resumes_at_once() {
    check(&storm(None).await);
}

/// One request in twenty answered 429 (`Retry-After: 1`), the rest 200: a dip in pace,
/// never a stall. Every user is delivered within a few seconds, as without pacing (each
/// user answered 429 waits its second).
#[tokio::test(start_paused = true)]
async fn a_429_now_and_then_costs_a_dip_not_a_stall() {
    let livefyre = ScriptedLivefyre::new({
        let count = std::sync::atomic::AtomicUsize::new(0);
        move |_, _| {
            if count
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .is_multiple_of(20)
            {
                Ok(Response::builder()
                    .status(429)
                    .header("retry-after", "1")
                    .body(())
                    .unwrap())
            } else {
                status(200)
            }
        }
    });
    let pinger = Pinger::builder(Network::new("example.fyre.co", "testkeytest").unwrap())
        .base_url("http://livefyre.test")
        .transport(livefyre.clone())
        .spawn()
        .unwrap();
    for i in 0..USERS {
        pinger.ping(&format!("u{i}")).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let stats = pinger.stats();
    assert_eq!(stats.succeeded, USERS as u64, "{stats:?}");
    assert!(stats.retried >= 100, "the 429s were felt: {stats:?}");
}
