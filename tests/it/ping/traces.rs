//! What the Pinger traces and logs, captured by a test layer in virtual time: a span per
//! attempt with OpenTelemetry's HTTP names and never the token, and the 403 ERROR at most
//! once a minute by the configured clock.

use std::time::Duration;

use pingpull::Network;
use pingpull::clock::ManualClock;
use pingpull::ping::{PingEvent, Pinger, RetrySchedule};
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
        assert_eq!(
            field("url.full"),
            Some("http://livefyre.test/api/v3_0/user/u1/refresh")
        );
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

#[tokio::test(start_paused = true)]
async fn the_403_error_is_logged_at_most_once_a_minute_with_the_count_left_out() {
    let traces = Traces::default();
    let _guard = traces.install();
    // Each request moves the configured clock on by a second: request n is judged at
    // second n, so lines are let through at requests 1, 61 and 121.
    let clock = ManualClock::at_unix(1_700_000_000);
    let ticking = clock.clone();
    let livefyre = ScriptedLivefyre::new(move |_, _| {
        ticking.advance(Duration::from_secs(1));
        status(403)
    });
    let pinger = Pinger::builder(network())
        .base_url("http://livefyre.test")
        .transport(livefyre.clone())
        .clock(clock)
        .probe_every(Duration::from_secs(1))
        .spawn()
        .unwrap();
    let mut events = pinger.events();
    pinger.ping("u1").unwrap();
    // A probe a second: requests at 0 s, 1 s, ..., 149 s.
    tokio::time::sleep(Duration::from_millis(149_500)).await;
    assert_eq!(livefyre.log.lock().unwrap().len(), 150);

    let errors: Vec<_> = traces
        .events()
        .into_iter()
        .filter(|e| e.level == Level::ERROR && e.target == "pingpull::ping")
        .collect();
    let suppressed: Vec<&str> = errors
        .iter()
        .map(|e| e.fields["suppressed"].as_str())
        .collect();
    assert_eq!(suppressed, ["0", "59", "59"], "{errors:?}");
    assert!(errors[0].fields["message"].contains("403"));
    // The event stream and the counters are not throttled: one event per refusal.
    let mut unauthorized = 0;
    while let Ok(event) = events.try_recv() {
        assert!(matches!(event, PingEvent::Unauthorized { .. }), "{event:?}");
        unauthorized += 1;
    }
    assert_eq!(unauthorized, 150);
    assert_eq!(pinger.stats().pending, 1);
}
