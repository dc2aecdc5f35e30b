//! What the Pinger traces, captured by a test layer in virtual time: a span per attempt
//! with OpenTelemetry's HTTP names, and never the token.

use std::time::Duration;

use pingpull::Network;
use pingpull::ping::{Pinger, RetrySchedule};
use tracing::Level;

use crate::support::scripted_livefyre::{ScriptedLivefyre, status};
use crate::support::traces::Traces;

const KEY: &str = "testkeytest";

fn network() -> Network {
    Network::new("example.fyre.co", KEY).unwrap()
}

#[tokio::test(start_paused = true)]
async fn each_attempt_is_a_span_with_the_status_and_never_the_token() {
    let traces = Traces::default();
    let _guard = traces.install();
    let livefyre = ScriptedLivefyre::new(|_, nth| status(if nth == 1 { 503 } else { 200 }));
    let pinger = Pinger::builder(network())
        .base_url("http://livefyre.test")
        .transport(livefyre)
        .retry_schedule(RetrySchedule::new([Duration::from_secs(1)]).jitter(0.0))
        .spawn()
        .unwrap();
    pinger.ping("u1").unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(pinger.stats().succeeded, 1);

    let spans = traces.spans("pingpull.ping.attempt");
    assert_eq!(spans.len(), 2, "{spans:?}");
    for (span, (attempt, code)) in spans.iter().zip([("1", "503"), ("2", "200")]) {
        assert_eq!(span.target, "pingpull::ping");
        assert_eq!(span.level, Level::INFO);
        let field = |name: &str| span.fields.get(name).map(String::as_str);
        assert_eq!(field("http.request.method"), Some("POST"));
        assert_eq!(field("url.path"), Some("/api/v3_0/user/u1/refresh"));
        assert_eq!(field("user_id"), Some("u1"));
        assert_eq!(field("attempt"), Some(attempt));
        assert_eq!(field("http.response.status_code"), Some(code));
        let error = (code != "200").then_some(code);
        assert_eq!(field("error.type"), error);
    }
    let everything = traces.all_values();
    for secret in [KEY, "eyJ", "lftoken"] {
        assert!(!everything.contains(secret), "{secret} in\n{everything}");
    }
}
