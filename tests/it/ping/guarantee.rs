//! The Pinger's guarantee under a seeded fault profile, in virtual time against an
//! in-memory Livefyre: every user gets a 2xx, which the Pinger actually received, to a
//! request that started after its last `ping()` call had returned. A 200 answered after
//! the attempt timeout is cut off by the Pinger and never counts, so a lost last ping
//! cannot hide behind one.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use http::Response;
use pingpull::Network;
use pingpull::ping::{Pinger, RetrySchedule};

use crate::support::scripted_livefyre::{Timed, TimedLivefyre, status};

const USERS: u64 = 2_000;
const PINGS: u64 = 20_000;
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(300);

/// A deterministic number in 0..100 for this request.
fn roll(seed: u64, user: &str, nth: usize) -> u64 {
    let mut hasher = DefaultHasher::new();
    (seed, user, nth).hash(&mut hasher);
    hasher.finish() % 100
}

/// About 30 % 5xx, resets and hangs, 5 % 200s too late to be read, 5 % 429; the rest
/// 200 within the attempt timeout.
fn fault(seed: u64, user: &str, nth: usize) -> Timed {
    let late = ATTEMPT_TIMEOUT * 2;
    match roll(seed, user, nth) {
        0..=3 => Timed::now(status(500)),
        4..=6 => Timed::now(status(502)),
        7..=9 => Timed::now(status(503)),
        10..=19 => Timed::now(Err("connection reset by the test".into())),
        // Hangs past the attempt timeout, then fails anyway.
        20..=29 => Timed::after(late, status(503)),
        // Hangs past the attempt timeout, then would succeed: the Pinger never sees it.
        30..=34 => Timed::after(late, status(200)),
        35..=39 => Timed::now(Ok(Response::builder()
            .status(429)
            .header("retry-after", "1")
            .body(())
            .unwrap())),
        // Answers take a while, so many changes land while a request is in flight.
        n => Timed::after(Duration::from_millis(n), status(200)),
    }
}

async fn guarantee_holds(seed: u64) {
    let livefyre = TimedLivefyre::new(move |user, nth| fault(seed, user, nth));
    let pinger = Pinger::builder(Network::new("example.fyre.co", "testkeytest").unwrap())
        .base_url("http://livefyre.test")
        .transport(livefyre.clone())
        .concurrency(32)
        .attempt_timeout(ATTEMPT_TIMEOUT)
        .retry_schedule(
            RetrySchedule::new([10, 20, 50].map(Duration::from_millis))
                .jitter(0.5)
                .max_retry_after(Duration::from_millis(100)),
        )
        .spawn()
        .unwrap();

    // The mark taken once each user's last `ping()` has returned. The runtime has one
    // thread and nothing awaits in between, so no request starts between the two.
    let mut last_ping: HashMap<String, u64> = HashMap::new();
    let mut state = seed;
    for i in 0..PINGS {
        // xorshift: which user changes next.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let user = format!("user-{}", state % USERS);
        pinger.ping(&user).unwrap();
        last_ping.insert(user, livefyre.mark());
        // Spread the changes over about 2.5 s, so many land while requests are in flight.
        if i % 40 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    // Virtual time: an hour costs nothing, and reaching it means a stuck Pinger.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3600);
    while pinger.stats().pending > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not delivered within an hour: {:?}",
            pinger.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = pinger.stats();
    assert_eq!(stats.given_up, 0, "{stats:?}");

    let exchanges = livefyre.exchanges();
    let mut latest_delivered: HashMap<&str, u64> = HashMap::new();
    for exchange in exchanges.iter().filter(|e| e.delivered()) {
        let at = latest_delivered.entry(&exchange.user).or_insert(0);
        *at = (*at).max(exchange.started);
    }
    let missed: Vec<_> = last_ping
        .iter()
        .filter(|(user, pinged)| {
            latest_delivered
                .get(user.as_str())
                .is_none_or(|s| s < *pinged)
        })
        .map(|(user, _)| user.clone())
        .collect();
    assert!(
        missed.is_empty(),
        "seed {seed}: {} users without a received 2xx after their last change: {:?}",
        missed.len(),
        &missed[..missed.len().min(10)]
    );
    // The Pinger's own count agrees with what it was really given.
    let delivered = exchanges.iter().filter(|e| e.delivered()).count() as u64;
    assert_eq!(stats.succeeded, delivered, "{stats:?}");
    // The faults really happened, the late 200s among them.
    let late_200s = exchanges
        .iter()
        .filter(|e| e.status == Some(200) && e.read.is_none())
        .count();
    println!(
        "seed {seed}: {} requests, {delivered} 2xx received, {late_200s} 200s cut off by the timeout",
        exchanges.len()
    );
    assert!(late_200s > 0, "no 200 came too late");
    assert!(stats.retried > stats.succeeded / 5, "{stats:?}");
    assert!(stats.coalesced > 0, "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn guarantee_holds_under_faults_seed_1() {
    guarantee_holds(1).await;
}

#[tokio::test(start_paused = true)]
async fn guarantee_holds_under_faults_seed_2() {
    guarantee_holds(0x5eed_2024).await;
}

#[tokio::test(start_paused = true)]
async fn guarantee_holds_under_faults_seed_3() {
    guarantee_holds(977).await;
}
