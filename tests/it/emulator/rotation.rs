//! A key rotation seen from Livefyre's side: a Pull endpoint on key B that still accepts
//! the previous key A signs each profile with both, so an emulator or `check` holding A
//! (Livefyre before the switch) or B (after it) verifies every pull, and one holding C
//! is refused.

use std::time::Duration;

use axum::Router;
use pingpull::check::{CheckOptions, check_endpoint};
use pingpull::emulator::{Emulator, PullRecord};
use pingpull::ping::LivefyreClient;
use pingpull::profile::{self, SIGNATURE_HEADER, SignatureError};
use pingpull::pull::{InMemorySource, PullLayer};
use pingpull::template::PullUrlTemplate;
use pingpull::{Network, Profile, token};
use tokio::net::TcpListener;

fn network(key: &str) -> Network {
    Network::new("example.fyre.co", key).unwrap()
}

/// The endpoint on key B with A as a previous key (`PINGPULL_KEY=B
/// PINGPULL_PREVIOUS_KEYS=A`); its template.
async fn rotating_endpoint() -> String {
    let rotating = network("B").with_previous_keys(["A"]).unwrap();
    let users: InMemorySource = [Profile::builder("u1", "Ada").build()]
        .into_iter()
        .collect();
    let app = Router::new().layer(PullLayer::new("/pull?id={id}", rotating, users).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("{base}/pull?id={{id}}")
}

/// Pings `u1` to an emulator holding `key` and waits for its pull to end.
async fn pull_as_livefyre_on(key: &str, template: &str) -> (PullRecord, Option<Profile>) {
    let emulator = Emulator::builder(network(key))
        .pull_url(template)
        .unwrap()
        .start()
        .await
        .unwrap();
    LivefyreClient::new(network(key), &emulator.base_url())
        .unwrap()
        .sync_user("u1")
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pull) = emulator.user("u1").and_then(|user| user.last_pull) {
            return (pull, emulator.remote_profile("u1"));
        }
        assert!(tokio::time::Instant::now() < deadline, "no pull recorded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn livefyre_on_the_previous_or_the_current_key_verifies_every_pull() {
    let template = rotating_endpoint().await;
    for key in ["A", "B"] {
        let (pull, profile) = pull_as_livefyre_on(key, &template).await;
        assert_eq!(
            (pull.ok, pull.status, pull.signature_verified, pull.error),
            (true, Some(200), Some(true), None),
            "an emulator on {key}"
        );
        assert_eq!(profile.unwrap().display_name, "Ada");
    }
    let (pull, profile) = pull_as_livefyre_on("C", &template).await;
    assert_eq!((pull.ok, pull.status), (false, Some(403)), "{pull:?}");
    assert!(profile.is_none());
}

#[tokio::test]
async fn check_on_the_previous_or_the_current_key_passes_and_on_another_fails() {
    let template = rotating_endpoint().await;
    for key in ["A", "B"] {
        let report = check_endpoint(&CheckOptions::new(network(key), template.clone(), "u1"))
            .await
            .unwrap();
        assert!(report.passed(), "check on {key}: {report}");
        let valid = report
            .cases
            .iter()
            .find(|c| c.name == "valid_pull")
            .unwrap();
        assert!(valid.detail.contains("signature verified"), "{valid:?}");
    }
    let report = check_endpoint(&CheckOptions::new(network("C"), template, "u1"))
        .await
        .unwrap();
    let failed: Vec<_> = report.failures().map(|c| c.name).collect();
    assert_eq!(failed, ["valid_pull"], "{report}");
}

#[tokio::test]
async fn the_header_lists_the_current_key_first_and_refuses_another_key() {
    let template = rotating_endpoint().await;
    let lftoken = token::system_token(&network("B"));
    let url = PullUrlTemplate::parse_absolute(&template)
        .unwrap()
        .url_for("u1", lftoken.as_str());
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    assert_eq!(response.status(), 200);
    let listed = response.headers()[SIGNATURE_HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let each = ["B", "A"].map(|key| profile::sign_body(&network(key), &body));
    assert_eq!(listed, each.join(","));
    assert_eq!(
        profile::verify_body_signature(&network("C"), &listed, &body),
        Err(SignatureError::Mismatch)
    );
}
