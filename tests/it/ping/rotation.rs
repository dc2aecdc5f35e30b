//! A key rotation on the ping side: our server signs with its new key B and still knows
//! the previous key A, while Livefyre may hold A, B, or neither. Against the emulator
//! (which validates with the key it is given) and a fake Livefyre that records which key
//! signed each request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pingpull::Network;
use pingpull::clock::ManualClock;
use pingpull::emulator::Emulator;
use pingpull::ping::{LivefyreClient, PingEvent, Pinger, RequestError};
use pingpull::token::SystemTokenValidator;
use tokio::sync::broadcast;

use crate::support::LogCapture;
use crate::support::fake_livefyre::{FakeLivefyre, Received, Reply};

const OLD_KEY: &str = "old-key-A-secret";
const NEW_KEY: &str = "new-key-B-secret";
const TEMPLATE: &str = "http://127.0.0.1:9/livefyre/pull?id={id}";
const STILL_HOLDS: &str = "Livefyre still holds a previous network key";

fn network(key: &str) -> Network {
    Network::new("example.fyre.co", key).unwrap()
}

/// Our server mid-rotation: signs with B, knows A.
fn rotating() -> Network {
    network(NEW_KEY).with_previous_keys([OLD_KEY]).unwrap()
}

/// Waits for `count` deliveries; any other outcome fails the test.
async fn delivered(events: &mut broadcast::Receiver<PingEvent>, count: usize) {
    for _ in 0..count {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("an event within 10 s")
            .unwrap();
        assert!(matches!(event, PingEvent::Delivered { .. }), "{event:?}");
    }
}

fn no_key_in(text: &str) {
    assert!(
        !text.contains(OLD_KEY) && !text.contains(NEW_KEY),
        "a key in the log: {text}"
    );
}

#[tokio::test]
async fn livefyre_still_on_the_old_key_gets_every_ping_and_the_log_says_so_once_a_minute() {
    let logs = LogCapture::default();
    let _guard = logs.install(tracing::Level::INFO);
    let livefyre = Emulator::start(network(OLD_KEY)).await.unwrap();
    // Now (the emulator checks the token's expiry by its own clock), moved by the test.
    let clock = ManualClock::new(std::time::SystemTime::now());
    let pinger = Pinger::builder(rotating())
        .base_url(livefyre.base_url())
        .clock(clock.clone())
        .spawn()
        .unwrap();
    let mut events = pinger.events();

    for i in 0..5 {
        pinger.ping(&format!("u{i}")).unwrap();
    }
    delivered(&mut events, 5).await;
    for i in 0..5 {
        assert_eq!(livefyre.pings_received(&format!("u{i}")), 1, "u{i}");
    }
    assert!(pinger.health().healthy(), "{:?}", pinger.health());
    let text = logs.text();
    assert_eq!(text.matches(STILL_HOLDS).count(), 1, "{text}");
    let line = text.lines().find(|l| l.contains(STILL_HOLDS)).unwrap();
    assert!(
        line.contains("INFO") && line.contains("previous_key=0"),
        "{line}"
    );
    // Nobody was held: no 403 pause, no retry, no user given up (the timestamps hold
    // digits, so look for what such lines say, not for "403").
    let delivery: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("pingpull::ping"))
        .collect();
    for held in [
        "Livefyre refused",
        "retrying",
        "giving up",
        " WARN ",
        "ERROR",
    ] {
        assert!(
            !delivery.iter().any(|line| line.contains(held)),
            "nobody was held, but `{held}`: {text}"
        );
    }

    // A minute later, still on the old key: one more line, counting the ones left out.
    clock.advance(Duration::from_secs(60));
    pinger.ping("u5").unwrap();
    delivered(&mut events, 1).await;
    let text = logs.text();
    assert_eq!(text.matches(STILL_HOLDS).count(), 2, "{text}");
    assert!(text.contains("suppressed=4"), "{text}");
    no_key_in(&text);
    let report = pinger.shutdown(Duration::from_secs(5)).await;
    assert!(report.undelivered.is_empty());
}

/// Which key signed a request's token (`lftoken`, else `actor_token`): "B", "A" or "?".
fn signed_with(request: &Received) -> &'static str {
    let token = request
        .form("lftoken")
        .or_else(|| request.form("actor_token"))
        .unwrap_or_default();
    if SystemTokenValidator::new(network(NEW_KEY))
        .validate(&token)
        .is_ok()
    {
        "B"
    } else if SystemTokenValidator::new(network(OLD_KEY))
        .validate(&token)
        .is_ok()
    {
        "A"
    } else {
        "?"
    }
}

/// A fake Livefyre accepting tokens signed with the key `holds` says ("A" or "B"), which
/// the test may change.
async fn livefyre_holding(holds: &Arc<Mutex<&'static str>>) -> FakeLivefyre {
    let holds = holds.clone();
    FakeLivefyre::with_script(move |request| {
        let accepted = signed_with(request) == *holds.lock().unwrap();
        Reply::status(if accepted { 200 } else { 403 })
    })
    .await
}

/// (user, key, request) for every request received.
fn requests(livefyre: &FakeLivefyre) -> Vec<(String, &'static str)> {
    livefyre
        .received()
        .iter()
        .map(|r| (r.user.clone().unwrap_or_default(), signed_with(r)))
        .collect()
}

fn pairs(list: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
    list.iter().map(|(u, k)| ((*u).to_owned(), *k)).collect()
}

#[tokio::test]
async fn livefyre_on_the_new_key_gets_one_request_per_ping_signed_with_it() {
    let logs = LogCapture::default();
    let _guard = logs.install(tracing::Level::INFO);
    let holds = Arc::new(Mutex::new("B"));
    let livefyre = livefyre_holding(&holds).await;
    let pinger = Pinger::builder(rotating())
        .base_url(livefyre.base_url())
        .concurrency(1)
        .spawn()
        .unwrap();
    let mut events = pinger.events();
    for user in ["u0", "u1", "u2"] {
        pinger.ping(user).unwrap();
    }
    delivered(&mut events, 3).await;
    assert_eq!(
        requests(&livefyre),
        pairs(&[("u0", "B"), ("u1", "B"), ("u2", "B")])
    );
    assert!(!logs.text().contains(STILL_HOLDS), "{}", logs.text());
}

/// Livefyre on A: the first ping tries B then A, the next ones A alone. Livefyre switches
/// to B: A is refused once, B accepted, and B alone from then on.
#[tokio::test]
async fn the_client_follows_livefyre_from_the_old_key_to_the_new_one() {
    let holds = Arc::new(Mutex::new("A"));
    let livefyre = livefyre_holding(&holds).await;
    let client = LivefyreClient::new(rotating(), &livefyre.base_url()).unwrap();
    client.sync_user("u1").await.unwrap();
    client.sync_user("u2").await.unwrap();
    *holds.lock().unwrap() = "B";
    client.sync_user("u3").await.unwrap();
    client.sync_user("u4").await.unwrap();
    assert_eq!(
        requests(&livefyre),
        pairs(&[
            ("u1", "B"),
            ("u1", "A"),
            ("u2", "A"),
            ("u3", "A"),
            ("u3", "B"),
            ("u4", "B"),
        ])
    );
}

#[tokio::test]
async fn one_shot_calls_fall_back_to_the_old_key_too() {
    let livefyre = Emulator::start(network(OLD_KEY)).await.unwrap();
    let client = LivefyreClient::new(rotating(), &livefyre.base_url()).unwrap();
    client.register_pull_url(TEMPLATE).await.unwrap();
    assert_eq!(livefyre.pull_url().as_deref(), Some(TEMPLATE));
    client.sync_user("u1").await.unwrap();
    assert_eq!(livefyre.pings_received("u1"), 1);

    // A server that finished the rotation (no previous key) is refused, as before.
    let finished = LivefyreClient::new(network(NEW_KEY), &livefyre.base_url()).unwrap();
    assert_eq!(
        finished.sync_user("u2").await,
        Err(RequestError::Unauthorized)
    );
}

/// Livefyre holds neither key: every key is refused, and delivery pauses as for any 403.
#[tokio::test]
async fn a_key_livefyre_never_held_pauses_delivery_as_before() {
    let livefyre = Emulator::start(network("some-other-key-C")).await.unwrap();
    let pinger = Pinger::builder(rotating())
        .base_url(livefyre.base_url())
        .spawn()
        .unwrap();
    let mut events = pinger.events();
    pinger.ping("u1").unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("an event within 10 s")
        .unwrap();
    assert!(matches!(event, PingEvent::Unauthorized { .. }), "{event:?}");
    let health = pinger.health();
    assert_eq!(health.reason(), Some("unauthorized"), "{health:?}");
    assert_eq!(health.pending, 1);
    assert_eq!(livefyre.pings_received("u1"), 0);
    let client = LivefyreClient::new(rotating(), &livefyre.base_url()).unwrap();
    assert_eq!(
        client.sync_user("u2").await,
        Err(RequestError::Unauthorized)
    );
    assert_eq!(
        client.register_pull_url(TEMPLATE).await,
        Err(RequestError::Unauthorized)
    );
    let report = pinger.shutdown(Duration::ZERO).await;
    assert_eq!(report.undelivered, ["u1"]);
}
