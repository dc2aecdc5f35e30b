//! The emulator's bounds over loopback: at most `max_users` users (the least recently
//! pinged evicted, counted and logged once), and `GET /profiles` and `GET /events` read
//! a page at a time with a cursor, while pings keep arriving.

use std::collections::HashSet;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pingpull::Network;
use pingpull::emulator::Emulator;
use pingpull::ping::LivefyreClient;

use crate::support::LogCapture;

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

async fn get(url: &str) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::get(url).body(Full::default()).unwrap();
    let response = client.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// Pings each of `ids` in turn, each answered before the next is sent.
async fn ping(emulator: &Emulator, ids: impl IntoIterator<Item = String>) {
    let client = LivefyreClient::new(network(), &emulator.base_url()).unwrap();
    for id in ids {
        client.sync_user(&id).await.unwrap();
    }
}

fn ids(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|n| format!("{prefix}{n:04}")).collect()
}

#[tokio::test]
async fn evicts_the_least_recently_pinged_at_the_cap_and_counts_them() {
    let capture = LogCapture::default();
    let _guard = capture.install(tracing::Level::INFO);
    let emulator = Emulator::builder(network())
        .max_users(3)
        .start()
        .await
        .unwrap();
    ping(&emulator, ["u1", "u2", "u3", "u1"].map(String::from)).await;
    assert_eq!(emulator.stats().evicted_users, 0);

    ping(&emulator, ["u4".to_owned()]).await;
    assert!(
        emulator.user("u2").is_none(),
        "u2 was the least recently pinged"
    );
    assert_eq!(emulator.pings_received("u1"), 2);
    ping(&emulator, ["u5", "u6"].map(String::from)).await;
    let kept: Vec<_> = ["u1", "u2", "u3", "u4", "u5", "u6"]
        .into_iter()
        .filter(|id| emulator.user(id).is_some())
        .collect();
    assert_eq!(kept, ["u4", "u5", "u6"]);

    let stats = emulator.stats();
    assert_eq!(
        (stats.users, stats.max_users, stats.evicted_users),
        (3, 3, 3)
    );
    let base = emulator.base_url();
    let served = get(&format!("{base}/stats")).await.json();
    assert_eq!(served["evicted_users"], 3);
    assert_eq!(served["max_users"], 3);
    let studio = get(&format!("{base}/studio/users")).await.text();
    assert!(studio.contains("at most 3 kept, 3 evicted"), "{studio}");

    let text = capture.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("user cap reached"))
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one line a minute, not one per eviction: {text}"
    );
    assert!(warnings[0].contains("evicted_total=1"), "{text}");
}

#[tokio::test]
async fn a_cap_of_zero_is_refused_at_start() {
    let error = Emulator::builder(network())
        .max_users(0)
        .start()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("max_users"), "{error}");
}

/// Walks `/profiles` from the first page to the last, pinging `during` a few at a time
/// between pages (new users, and users already seen again); the ids seen, in order.
async fn walk_profiles(emulator: &Emulator, limit: usize, during: &[String]) -> Vec<String> {
    let base = emulator.base_url();
    let mut seen = Vec::new();
    let mut url = format!("{base}/profiles?limit={limit}");
    let mut arriving = during.chunks(7);
    loop {
        let page = get(&url).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let users = page.json();
        let users = users.as_array().unwrap();
        assert!(users.len() <= limit);
        seen.extend(users.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
        if let Some(batch) = arriving.next() {
            ping(emulator, batch.iter().cloned()).await;
            ping(emulator, seen.iter().take(3).cloned()).await;
        }
        let Some(link) = page.header("link") else {
            assert_eq!(
                page.header("next-cursor"),
                None,
                "the last page has no cursor"
            );
            return seen;
        };
        let cursor = page.header("next-cursor").unwrap();
        assert_eq!(
            link,
            format!("</profiles?limit={limit}&cursor={cursor}>; rel=\"next\"")
        );
        url = format!("{base}/profiles?limit={limit}&cursor={cursor}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_walks_every_user_exactly_once_while_pings_arrive() {
    let emulator = Emulator::builder(network()).start().await.unwrap();
    let before = ids("m", 0..250);
    ping(&emulator, before.iter().cloned()).await;
    // Some sort before every user already kept, some after.
    let mut arriving = ids("a", 0..40);
    arriving.extend(ids("z", 0..40));

    let seen = walk_profiles(&emulator, 40, &arriving).await;

    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len(), "a user was seen twice");
    assert!(
        before.iter().all(|id| distinct.contains(id)),
        "a user was missed"
    );
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "the walk goes in id order");
    // Users pinged during the walk after the cursor are seen; those before it are not.
    assert!(seen.iter().any(|id| id.starts_with('z')));
    assert!(!seen.iter().any(|id| id.starts_with('a')));

    ping(&emulator, arriving).await;
    assert_eq!(emulator.stats().users, 330);

    // Without `limit`, a page of up to 1000: all of them here, and no cursor.
    let all = get(&format!("{}/profiles", emulator.base_url())).await;
    assert_eq!(all.json().as_array().unwrap().len(), 330);
    assert_eq!(all.header("next-cursor"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_page_from_a_cursor_and_new_ones_follow() {
    let emulator = Emulator::builder(network()).start().await.unwrap();
    let base = emulator.base_url();
    let first = ids("u", 0..120);
    ping(&emulator, first.iter().cloned()).await;

    let mut pinged_seen = Vec::new();
    let mut url = format!("{base}/events?limit=50");
    let mut arriving = ids("late", 0..30).into_iter();
    let cursor = loop {
        let page = get(&url).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let events = page.json();
        let events = events.as_array().unwrap();
        assert!(events.len() <= 50);
        pinged_seen.extend(
            events
                .iter()
                .filter(|e| e["kind"] == "ping")
                .map(|e| e["user_id"].as_str().unwrap().to_owned()),
        );
        let cursor = page
            .header("next-cursor")
            .expect("events always give a cursor");
        if page.header("link").is_none() {
            break cursor;
        }
        ping(&emulator, arriving.next()).await;
        url = format!("{base}/events?limit=50&cursor={cursor}");
    };
    let expected: Vec<String> = first
        .iter()
        .cloned()
        .chain(ids("late", 0..30).into_iter())
        .take(pinged_seen.len())
        .collect();
    assert_eq!(pinged_seen, expected, "every ping once, in order");
    assert!(pinged_seen.len() > first.len());

    // A poller holding the last cursor gets only what happened since.
    ping(&emulator, ["new".to_owned()]).await;
    let page = get(&format!("{base}/events?cursor={cursor}")).await;
    let events = page.json();
    let pings: Vec<_> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "ping")
        .map(|e| e["user_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(pings, ["new"]);
}

#[tokio::test]
async fn bad_paging_parameters_are_400_with_a_reason() {
    let emulator = Emulator::builder(network()).start().await.unwrap();
    ping(&emulator, ["u1".to_owned()]).await;
    let base = emulator.base_url();
    for (query, reason) in [
        (
            "/profiles?limit=0",
            "limit must be a whole number from 1 to 10000: got `0`",
        ),
        ("/profiles?limit=ten", "got `ten`"),
        ("/profiles?limit=10001", "from 1 to 10000"),
        ("/profiles?limit=", "limit must be"),
        (
            "/profiles?cursor=not-hex",
            "cursor `not-hex` is not one this emulator gave",
        ),
        (
            "/profiles?cursor=%zz",
            "cursor is not percent-encoded properly",
        ),
        ("/events?limit=1001", "from 1 to 1000: got `1001`"),
        ("/events?limit=-1", "got `-1`"),
        (
            "/events?cursor=abc",
            "cursor `abc` is not one this emulator gave",
        ),
        (
            "/events?cursor=999999",
            "cursor 999999 is past the latest event",
        ),
    ] {
        let answer = get(&format!("{base}{query}")).await;
        assert_eq!(answer.status, 400, "{query}");
        assert!(answer.text().contains(reason), "{query}: {}", answer.text());
    }
}
