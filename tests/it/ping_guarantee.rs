//! The Pinger's guarantee under a seeded fault profile, checked from the server's own
//! log: every user gets a 2xx-answered ping whose request arrived after its last
//! `ping()` call.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use pingpull::Network;
use pingpull::ping::{Pinger, RetrySchedule};
use tokio::time::Instant;

use crate::support::fake_livefyre::{FakeLivefyre, Received, Reply};

const USERS: u64 = 2_000;
const PINGS: u64 = 20_000;

/// A deterministic number in 0..100 for this request.
fn roll(seed: u64, user: &str, nth: usize) -> u64 {
    let mut hasher = DefaultHasher::new();
    (seed, user, nth).hash(&mut hasher);
    hasher.finish() % 100
}

/// About 30 % 5xx, resets and hangs, 5 % 429, the rest 200.
fn fault(seed: u64, request: &Received) -> Reply {
    let Some(user) = &request.user else {
        return Reply::status(404);
    };
    match roll(seed, user, request.nth_for_user) {
        0..=3 => Reply::status(500),
        4..=6 => Reply::status(502),
        7..=9 => Reply::status(503),
        10..=19 => Reply::reset(),
        // Hangs past the attempt timeout, then fails anyway.
        20..=29 => Reply::status(503).after(Duration::from_millis(600)),
        30..=34 => Reply::status(429).retry_after("1"),
        _ => Reply::status(200),
    }
}

fn answered_2xx(seed: u64, request: &Received) -> bool {
    fault(seed, request).status == 200
}

async fn guarantee_holds(seed: u64) {
    let server = FakeLivefyre::with_script(move |r| fault(seed, r)).await;
    let pinger = Pinger::builder(Network::new("example.fyre.co", "testkeytest").unwrap())
        .base_url(server.base_url())
        .concurrency(32)
        .attempt_timeout(Duration::from_millis(300))
        .retry_schedule(
            RetrySchedule::new([10, 20, 50].map(Duration::from_millis))
                .jitter(0.5)
                .max_retry_after(Duration::from_millis(100)),
        )
        .spawn()
        .unwrap();

    let mut last_ping: HashMap<String, Instant> = HashMap::new();
    let mut state = seed;
    for i in 0..PINGS {
        // xorshift: which user changes next.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let user = format!("user-{}", state % USERS);
        last_ping.insert(user.clone(), Instant::now());
        pinger.ping(&user).unwrap();
        // Spread the changes over about 3 s, so many land while requests are in flight.
        if i % 40 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    let deadline = Instant::now() + Duration::from_secs(120);
    while pinger.stats().pending > 0 {
        assert!(
            Instant::now() < deadline,
            "not delivered within 120 s: {:?}",
            pinger.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = pinger.stats();
    assert_eq!(stats.given_up, 0, "{stats:?}");

    let log = server.received();
    let mut latest_ok: HashMap<&str, Instant> = HashMap::new();
    for request in log.iter().filter(|r| answered_2xx(seed, r)) {
        let user = request.user.as_deref().unwrap();
        let at = latest_ok.entry(user).or_insert(request.at);
        *at = (*at).max(request.at);
    }
    let missed: Vec<_> = last_ping
        .iter()
        .filter(|(user, pinged)| latest_ok.get(user.as_str()).is_none_or(|ok| ok < *pinged))
        .map(|(user, _)| user.clone())
        .collect();
    assert!(
        missed.is_empty(),
        "seed {seed}: {} users without a ping after their last change: {:?}",
        missed.len(),
        &missed[..missed.len().min(10)]
    );
    // The faults really happened.
    assert!(stats.retried > stats.succeeded / 5, "{stats:?}");
    assert!(stats.coalesced > 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_holds_under_faults_seed_1() {
    guarantee_holds(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_holds_under_faults_seed_2() {
    guarantee_holds(0x5eed_2024).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarantee_holds_under_faults_seed_3() {
    guarantee_holds(977).await;
}
