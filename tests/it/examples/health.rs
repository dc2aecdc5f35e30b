//! The health example's router (examples/health.rs, compiled in here) over a Pinger and
//! the emulator: a ping through `POST /users/{id}`, then `/healthz` and `/metrics`; and a
//! Pinger with the wrong key, whose `/healthz` is a 503 saying why. The Prometheus
//! recorder is installed for the Pinger's spawn only, never globally.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use metrics_exporter_prometheus::PrometheusBuilder;
use pingpull::Network;
use pingpull::emulator::Emulator;
use pingpull::ping::{PingEvent, Pinger};
use tower::ServiceExt;

#[path = "../../../examples/health.rs"]
// The example's own `main` is not called here.
#[allow(dead_code)]
mod example;

/// The router over a Pinger with `key` delivering to an emulator that knows "testkeytest".
async fn app(key: &str) -> (Router, Pinger, Emulator) {
    let emulator = Emulator::start(Network::new("example.fyre.co", "testkeytest").unwrap())
        .await
        .unwrap();
    let recorder = PrometheusBuilder::new().build_recorder();
    let prometheus = recorder.handle();
    let pinger = metrics::with_local_recorder(&recorder, || {
        Pinger::builder(Network::new("example.fyre.co", key).unwrap())
            .base_url(emulator.base_url())
            .spawn()
            .unwrap()
    });
    (
        example::router(pinger.clone(), prometheus),
        pinger,
        emulator,
    )
}

async fn call(app: &Router, method: &str, uri: &str) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty());
    let response = app.clone().oneshot(request.unwrap()).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn next_event(pinger: &Pinger, events: &mut tokio::sync::broadcast::Receiver<PingEvent>) {
    let event = tokio::time::timeout(Duration::from_secs(10), events.recv()).await;
    assert!(event.is_ok(), "no event; stats {:?}", pinger.stats());
}

#[tokio::test]
async fn healthz_and_metrics_after_a_ping() {
    let (app, pinger, emulator) = app("testkeytest").await;
    let mut events = pinger.events();
    assert_eq!(
        call(&app, "POST", "/users/u1").await.0,
        StatusCode::ACCEPTED
    );
    next_event(&pinger, &mut events).await;
    assert_eq!(emulator.pings_received("u1"), 1);
    assert_eq!(
        call(&app, "POST", "/users/a%2Fb").await.0,
        StatusCode::BAD_REQUEST
    );

    let (status, body) = call(&app, "GET", "/healthz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["healthy"], true);
    assert_eq!(health["pending"], 0);
    assert!(health["last_delivered_unix"].is_u64(), "{body}");

    let (status, text) = call(&app, "GET", "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        "pingpull_pings_total{result=\"accepted\"} 1",
        "pingpull_ping_attempts_total{outcome=\"delivered\"} 1",
        "pingpull_ping_pending 0",
        "pingpull_ping_delivery_seconds_count 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    assert!(
        !text.contains("testkeytest") && !text.contains("eyJ"),
        "{text}"
    );
}

#[tokio::test]
async fn healthz_is_a_503_saying_why_while_livefyre_refuses_the_key() {
    let (app, pinger, _emulator) = app("the-wrong-key").await;
    let mut events = pinger.events();
    assert_eq!(
        call(&app, "POST", "/users/u1").await.0,
        StatusCode::ACCEPTED
    );
    next_event(&pinger, &mut events).await;

    let (status, body) = call(&app, "GET", "/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["reason"], "unauthorized");
    assert_eq!(health["pending"], 1);
    let (_, text) = call(&app, "GET", "/metrics").await;
    assert!(
        text.contains("pingpull_ping_attempts_total{outcome=\"unauthorized\"} 1"),
        "{text}"
    );
}
