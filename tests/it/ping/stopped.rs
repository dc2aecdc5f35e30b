//! A delivery task that dies is never silent: a panic in a delivery or in the loop, or
//! the runtime shutting down under a Pinger, logs an ERROR, sends a last event, makes
//! `health()` unhealthy (`stopped`) and `ping` refuse.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use pingpull::ping::{PingError, PingEvent, Pinger, PingerBuilder, Transport};
use pingpull::{BoxError, Network};
use tokio::sync::broadcast;

use crate::support::LogCapture;

fn builder() -> PingerBuilder {
    Pinger::builder(Network::new("example.fyre.co", "testkeytest").unwrap())
        .base_url("http://livefyre.test")
}

/// A transport with a bug: it panics on every request.
struct Panicking;

#[async_trait::async_trait]
impl Transport for Panicking {
    async fn send(&self, _request: Request<Bytes>) -> Result<Response<()>, BoxError> {
        panic!("a bug in the transport");
    }
}

/// The `Stopped` event's reason; other events before it are skipped.
async fn stopped(events: &mut broadcast::Receiver<PingEvent>) -> String {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .expect("an event within 60 s")
            .unwrap();
        if let PingEvent::Stopped { reason } = event {
            return reason;
        }
    }
}

/// What every way of asking says once the task died with `cause` and `pending` users.
fn every_way_of_asking_says_it_stopped(pinger: &Pinger, logs: &LogCapture, cause: &str) {
    let health = pinger.health();
    assert!(health.stopped, "{health:?}");
    assert_eq!(health.reason(), Some("stopped"));
    assert_eq!(pinger.ping("u9"), Err(PingError::Stopped));
    let text = logs.text();
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{text}");
    assert!(
        errors[0].contains("pingpull::ping") && errors[0].contains(cause),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("restart the Pinger"), "{}", errors[0]);
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_a_delivery_stops_the_task_and_says_so() {
    let logs = LogCapture::default();
    let _guard = logs.install(tracing::Level::ERROR);
    let pinger = builder().transport(Panicking).spawn().unwrap();
    let mut events = pinger.events();
    pinger.ping("u1").unwrap();

    let reason = stopped(&mut events).await;
    assert_eq!(reason, "the delivery task panicked: a bug in the transport");
    every_way_of_asking_says_it_stopped(&pinger, &logs, &reason);
    assert!(logs.text().contains("pending=1"), "{}", logs.text());
    let report = pinger.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.undelivered, ["u1"]);
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_the_delivery_loop_stops_the_task_and_says_so() {
    let logs = LogCapture::default();
    let _guard = logs.install(tracing::Level::ERROR);
    let pinger = builder()
        .debounce(Duration::from_secs(3600))
        .spawn()
        .unwrap();
    let mut events = pinger.events();
    pinger.ping("u1").unwrap();
    pinger.ping("u2").unwrap();

    pingpull::testing::panic_the_delivery_loop(&pinger);
    let reason = stopped(&mut events).await;
    assert!(
        reason.starts_with("the delivery task panicked: a panic in the delivery loop"),
        "{reason}"
    );
    every_way_of_asking_says_it_stopped(&pinger, &logs, "the delivery task panicked");
    assert!(logs.text().contains("pending=2"), "{}", logs.text());
    let report = pinger.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.undelivered, ["u1", "u2"]);
}

/// The runtime a Pinger was spawned on shuts down while the Pinger is still used (from
/// another runtime, say): its pending users are lost, and it says so.
#[test]
fn a_runtime_shut_down_under_a_pinger_is_not_silent() {
    let logs = LogCapture::default();
    let _guard = logs.install(tracing::Level::ERROR);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pinger = runtime.block_on(async {
        let pinger = builder()
            .debounce(Duration::from_secs(3600))
            .spawn()
            .unwrap();
        pinger.ping("u1").unwrap();
        pinger
    });
    drop(runtime);
    every_way_of_asking_says_it_stopped(&pinger, &logs, "its Tokio runtime shut down");
    assert!(logs.text().contains("pending=1"), "{}", logs.text());
}

/// A runtime that ends with nothing pending loses nothing: no ERROR (a process exiting
/// without shutting its Pinger down), though `ping` still refuses.
#[test]
fn a_runtime_shut_down_with_nothing_pending_is_no_error() {
    let logs = LogCapture::default();
    let _guard = logs.install(tracing::Level::WARN);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pinger = runtime.block_on(async { builder().spawn().unwrap() });
    drop(runtime);
    assert_eq!(pinger.ping("u1"), Err(PingError::Stopped));
    assert!(pinger.health().stopped);
    assert_eq!(logs.text(), "");
}
