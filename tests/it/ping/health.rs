//! `Pinger::health()` through a fault and back, in virtual time against an in-memory
//! Livefyre.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use pingpull::Network;
use pingpull::clock::{Clock, ManualClock};
use pingpull::ping::{Health, Pinger, PingerBuilder, RetrySchedule};

use crate::support::scripted_livefyre::{ScriptedLivefyre, status};

/// An in-memory Livefyre answering whatever status the test sets, for everyone.
fn answering(code: &Arc<AtomicU16>) -> ScriptedLivefyre {
    let code = code.clone();
    ScriptedLivefyre::new(move |_, _| status(code.load(Ordering::Relaxed)))
}

fn builder(livefyre: ScriptedLivefyre) -> PingerBuilder {
    Pinger::builder(Network::new("example.fyre.co", "testkeytest").unwrap())
        .base_url("http://livefyre.test")
        .transport(livefyre)
        .retry_schedule(RetrySchedule::new([Duration::from_secs(1)]).jitter(0.0))
        .probe_every(Duration::from_secs(60))
}

async fn after(seconds: u64) {
    tokio::time::sleep(Duration::from_secs(seconds)).await;
}

#[tokio::test(start_paused = true)]
async fn a_403_is_unhealthy_until_a_probe_is_accepted() {
    let code = Arc::new(AtomicU16::new(403));
    let pinger = builder(answering(&code)).spawn().unwrap();
    assert!(pinger.health().healthy(), "nothing tried yet");

    pinger.ping("u1").unwrap();
    after(1).await;
    let health = pinger.health();
    assert_eq!(health.reason(), Some("unauthorized"), "{health:?}");
    assert!(health.unauthorized);
    assert_eq!((health.pending, health.consecutive_failures), (1, 1));
    assert_eq!(health.oldest_pending, Some(Duration::from_secs(1)));
    assert_eq!(health.last_delivered, None);

    // Fixed: the next probe (60 s after the first refusal) is accepted.
    code.store(200, Ordering::Relaxed);
    after(60).await;
    let health = pinger.health();
    assert!(health.healthy(), "{health:?}");
    assert!(!health.unauthorized);
    assert_eq!((health.pending, health.consecutive_failures), (0, 0));
    assert_eq!(health.oldest_pending, None);
    assert!(health.last_delivered.is_some());
}

#[tokio::test(start_paused = true)]
async fn failures_in_a_row_without_a_2xx_are_unhealthy_until_one_is_delivered() {
    let code = Arc::new(AtomicU16::new(503));
    let clock = ManualClock::at_unix(1_700_000_000);
    let pinger = builder(answering(&code))
        .clock(clock.clone())
        .spawn()
        .unwrap();
    pinger.ping("u1").unwrap();
    // Attempts at 0 s, 1 s, ..., 8 s: nine failures (looked at between attempts).
    tokio::time::sleep(Duration::from_millis(8500)).await;
    assert_eq!(pinger.health().consecutive_failures, 9);
    assert!(pinger.health().healthy());
    after(1).await;
    let health = pinger.health();
    assert_eq!(
        health.consecutive_failures,
        Health::FAILURES_BEFORE_UNHEALTHY
    );
    assert_eq!(health.reason(), Some("failing"), "{health:?}");
    assert_eq!(health.checked_at, clock.now());

    code.store(200, Ordering::Relaxed);
    after(1).await;
    let health = pinger.health();
    assert!(health.healthy(), "{health:?}");
    assert_eq!(health.last_delivered, Some(clock.now()));

    // Failing again: healthy while the last 2xx is recent, by the builder's clock.
    code.store(503, Ordering::Relaxed);
    pinger.ping("u2").unwrap();
    after(20).await;
    assert!(pinger.health().consecutive_failures >= 10);
    assert!(pinger.health().healthy());
    clock.advance(Health::WITHOUT_DELIVERY);
    assert_eq!(pinger.health().reason(), Some("failing"));
}

#[tokio::test(start_paused = true)]
async fn oldest_pending_is_the_first_ping_of_the_user_waiting_longest() {
    let code = Arc::new(AtomicU16::new(200));
    let pinger = builder(answering(&code))
        .debounce(Duration::from_secs(3600))
        .spawn()
        .unwrap();
    pinger.ping("u1").unwrap();
    after(30).await;
    pinger.ping("u2").unwrap();
    pinger.ping("u1").unwrap();
    after(10).await;
    let health = pinger.health();
    assert_eq!(health.pending, 2);
    assert_eq!(health.oldest_pending, Some(Duration::from_secs(40)));
    assert!(health.healthy());
}
