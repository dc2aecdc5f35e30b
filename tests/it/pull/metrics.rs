//! What the Pull layer records through the `metrics` facade: requests by outcome, their
//! duration, and which key verified each accepted token; never a token, key or user id.

use std::time::Duration;

use pingpull::pull::{InMemorySource, PullLayer};
use pingpull::token;
use pingpull::{Network, Profile};
use tower::{Layer, ServiceExt, service_fn};

use crate::ping::metrics::Recorded;

const TEMPLATE: &str = "https://site.example/livefyre/pull?id={id}";

fn network(key: &str) -> Network {
    Network::new("example.fyre.co", key).unwrap()
}

async fn pull(layer: &PullLayer, user: &str, lftoken: &str) -> u16 {
    let app = layer.layer(service_fn(|_request: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    }));
    let url = layer.template().url_for(user, lftoken);
    let request = http::Request::get(url).body(()).unwrap();
    app.oneshot(request).await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "current_thread")]
async fn counts_pulls_by_outcome_and_tokens_by_key() {
    let mut recorded = Recorded::new();
    let rotating = network("new-key-secret")
        .with_previous_keys(["old-key-secret"])
        .unwrap();
    let users = InMemorySource::new();
    users.insert(Profile::builder("u1", "Ada").build()).unwrap();
    let layer = recorded.install(|| PullLayer::new(TEMPLATE, rotating, users).unwrap());

    let lifetime = Duration::from_secs(3600);
    let now = std::time::SystemTime::now();
    let new = token::system_token_at(&network("new-key-secret"), now, lifetime);
    let old = token::system_token_at(&network("old-key-secret"), now, lifetime);
    let wrong = token::system_token_at(&network("third-key"), now, lifetime);
    assert_eq!(pull(&layer, "u1", new.as_str()).await, 200);
    assert_eq!(pull(&layer, "u1", new.as_str()).await, 200);
    assert_eq!(pull(&layer, "u1", old.as_str()).await, 200);
    assert_eq!(pull(&layer, "nobody", new.as_str()).await, 404);
    assert_eq!(pull(&layer, "u1", wrong.as_str()).await, 403);
    assert_eq!(pull(&layer, "u1", "").await, 403);

    let requests = "pingpull_pull_requests_total";
    let outcome =
        |recorded: &mut Recorded, name| recorded.counter(requests, Some(("outcome", name)));
    assert_eq!(outcome(&mut recorded, "ok"), 3);
    assert_eq!(outcome(&mut recorded, "unknown_user"), 1);
    // A wrong key's token, and an empty `lftoken=` (a token that is not one).
    assert_eq!(outcome(&mut recorded, "invalid_token"), 2);
    assert_eq!(outcome(&mut recorded, "missing_token"), 0);
    let keys = "pingpull_token_key_total";
    assert_eq!(recorded.counter(keys, Some(("key", "current"))), 3);
    assert_eq!(recorded.counter(keys, Some(("key", "previous"))), 1);
    assert_eq!(
        recorded.histogram("pingpull_pull_duration_seconds").len(),
        6
    );

    let series = recorded.read().join("\n");
    for secret in [
        "new-key-secret",
        "old-key-secret",
        new.as_str(),
        old.as_str(),
        "u1",
        "nobody",
    ] {
        assert!(!series.contains(secret), "{secret} in {series}");
    }
}
