//! The Pinger, the one-shot client and the ping hook, against a scriptable fake
//! Livefyre on 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Request, Response};
use pingpull::Network;
use pingpull::ping::{
    ConfigError, Failure, LivefyreClient, PingError, PingEvent, PingHookLayer, Pinger,
    RequestError, RetrySchedule,
};
use pingpull::token::SystemTokenValidator;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt, service_fn};

use crate::support::fake_livefyre::{FakeLivefyre, Reply};
use crate::support::scripted_livefyre::{Timed, TimedLivefyre, status};

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

/// Fast retries so tests finish in well under a second.
fn quick_schedule() -> RetrySchedule {
    RetrySchedule::new([Duration::from_millis(20), Duration::from_millis(40)]).jitter(0.0)
}

/// A Pinger for the real server: the attempt timeout is seconds, so a busy machine
/// cannot turn a prompt answer into a timeout.
fn pinger(server: &FakeLivefyre) -> Pinger {
    Pinger::builder(network())
        .base_url(server.base_url())
        .retry_schedule(quick_schedule())
        .attempt_timeout(Duration::from_secs(10))
        .spawn()
        .unwrap()
}

/// A Pinger for the in-memory Livefyre, in virtual time.
fn virtual_pinger(livefyre: &TimedLivefyre) -> Pinger {
    Pinger::builder(network())
        .base_url("http://livefyre.test")
        .transport(livefyre.clone())
        .retry_schedule(quick_schedule())
        .attempt_timeout(Duration::from_secs(10))
        .spawn()
        .unwrap()
}

/// Polls `condition` until it holds or 5 s pass.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The next event; a minute without one is a hang (in virtual time, longer than any
/// attempt timeout here).
async fn next_event(events: &mut broadcast::Receiver<PingEvent>) -> PingEvent {
    tokio::time::timeout(Duration::from_secs(60), events.recv())
        .await
        .expect("an event within 60 s")
        .expect("no lag")
}

#[tokio::test]
async fn delivers_a_ping_with_a_system_token_in_a_form_body() {
    let server = FakeLivefyre::start().await;
    let pinger = pinger(&server);
    let mut events = pinger.events();
    pinger.ping("user-42.x_y").unwrap();
    assert_eq!(
        next_event(&mut events).await,
        PingEvent::Delivered {
            user_id: "user-42.x_y".into(),
            attempts: 1
        }
    );
    let received = server.pings_for("user-42.x_y");
    assert_eq!(received.len(), 1);
    let ping = &received[0];
    assert_eq!(ping.method, "POST");
    assert_eq!(ping.path, "/api/v3_0/user/user-42.x_y/refresh");
    assert_eq!(ping.query, None, "the token never travels in the URL");
    assert_eq!(
        ping.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let token = ping.form("lftoken").unwrap();
    SystemTokenValidator::new(network())
        .validate(&token)
        .unwrap();
    let stats = pinger.stats();
    assert_eq!(
        (stats.pinged, stats.sent, stats.succeeded, stats.pending),
        (1, 1, 1, 0)
    );
}

#[tokio::test]
async fn coalesces_pings_for_one_pending_user() {
    let server = FakeLivefyre::start().await;
    let pinger = Pinger::builder(network())
        .base_url(server.base_url())
        .debounce(Duration::from_millis(100))
        .spawn()
        .unwrap();
    for _ in 0..50 {
        pinger.ping("u1").unwrap();
    }
    pinger.ping("u2").unwrap();
    eventually("both delivered", || pinger.stats().succeeded == 2).await;
    assert_eq!(server.pings_for("u1").len(), 1);
    assert_eq!(server.pings_for("u2").len(), 1);
    let stats = pinger.stats();
    assert_eq!((stats.pinged, stats.coalesced, stats.sent), (51, 49, 2));
}

#[tokio::test(start_paused = true)]
async fn a_ping_during_a_request_causes_one_more_request_after_it() {
    // The first answer takes 2 s (virtual): the changes below land while it is in flight.
    let livefyre = TimedLivefyre::new(|_, nth| {
        Timed::after(
            Duration::from_secs(if nth == 1 { 2 } else { 0 }),
            status(200),
        )
    });
    let start = Instant::now();
    let pinger = virtual_pinger(&livefyre);
    pinger.ping("u1").unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let first = livefyre.exchanges_for("u1");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].read, None, "the first request is in flight");
    pinger.ping("u1").unwrap();
    pinger.ping("u1").unwrap();
    let changed = livefyre.mark();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let requests = livefyre.exchanges_for("u1");
    assert_eq!(requests.len(), 2, "exactly one more request");
    assert!(
        requests[1].started > first[0].started.max(changed),
        "the second request was sent after the change"
    );
    assert!(
        requests[1].started > requests[0].read.unwrap(),
        "and after the first was answered: one request per user at a time"
    );
    assert_eq!(
        requests[1].started_at - start,
        Duration::from_secs(2),
        "at once"
    );
    let stats = pinger.stats();
    assert_eq!((stats.succeeded, stats.pending), (2, 0));
}

#[tokio::test(start_paused = true)]
async fn retries_passing_faults_until_delivered() {
    let livefyre = TimedLivefyre::new(|_, nth| match nth {
        1 => Timed::now(status(500)),
        2 => Timed::now(status(503)),
        3 => Timed::now(status(408)),
        4 => Timed::now(status(429)),
        5 => Timed::after(Duration::from_secs(3600), status(200)), // times out
        _ => Timed::now(status(204)),
    });
    let pinger = virtual_pinger(&livefyre);
    let mut events = pinger.events();
    pinger.ping("u1").unwrap();
    let mut failures = Vec::new();
    loop {
        match next_event(&mut events).await {
            PingEvent::Retrying {
                failure, attempt, ..
            } => failures.push((attempt, failure)),
            PingEvent::Delivered { attempts, .. } => {
                assert_eq!(attempts, 6);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        failures,
        [
            (1, Failure::Status(500)),
            (2, Failure::Status(503)),
            (3, Failure::Status(408)),
            (4, Failure::Status(429)),
            (5, Failure::Timeout),
        ]
    );
    assert_eq!(pinger.stats().retried, 5);
}

#[tokio::test]
async fn connection_errors_are_retried() {
    let (_socket, addr) = crate::support::refusing_port();
    let pinger = Pinger::builder(network())
        .base_url(format!("http://{addr}"))
        .retry_schedule(quick_schedule())
        .spawn()
        .unwrap();
    let mut events = pinger.events();
    pinger.ping("u1").unwrap();
    match next_event(&mut events).await {
        PingEvent::Retrying {
            failure: Failure::Connection(message),
            ..
        } => {
            assert!(!message.contains("eyJ"), "no token in errors: {message}");
        }
        other => panic!("{other:?}"),
    }
    let report = pinger.shutdown(Duration::from_millis(50)).await;
    assert_eq!(report.undelivered, ["u1"]);
}

#[tokio::test]
async fn retry_after_is_obeyed() {
    let server = FakeLivefyre::with_script(|r| {
        if r.nth_for_user == 1 {
            Reply::status(429).retry_after("1")
        } else {
            Reply::status(200)
        }
    })
    .await;
    let pinger = pinger(&server);
    let mut events = pinger.events();
    pinger.ping("u1").unwrap();
    assert!(matches!(
        next_event(&mut events).await,
        PingEvent::Retrying { delay, .. } if delay == Duration::from_secs(1)
    ));
    eventually("delivered", || pinger.stats().succeeded == 1).await;
    let pings = server.pings_for("u1");
    assert!(
        pings[1].at - pings[0].at >= Duration::from_secs(1),
        "waited as told"
    );
}

#[tokio::test]
async fn other_4xx_give_the_user_up_and_report_it() {
    let server = FakeLivefyre::with_script(|_| Reply::status(404)).await;
    let pinger = pinger(&server);
    let mut events = pinger.events();
    pinger.ping("ghost").unwrap();
    assert_eq!(
        next_event(&mut events).await,
        PingEvent::GaveUp {
            user_id: "ghost".into(),
            failure: Failure::Status(404)
        }
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.pings_for("ghost").len(), 1, "not retried");
    let stats = pinger.stats();
    assert_eq!((stats.given_up, stats.pending), (1, 0));
}

#[tokio::test]
async fn users_older_than_the_maximum_age_are_given_up() {
    let server = FakeLivefyre::with_script(|_| Reply::status(500)).await;
    let pinger = Pinger::builder(network())
        .base_url(server.base_url())
        .retry_schedule(quick_schedule().max_age(Duration::from_millis(100)))
        .spawn()
        .unwrap();
    let mut events = pinger.events();
    pinger.ping("u1").unwrap();
    loop {
        match next_event(&mut events).await {
            PingEvent::Retrying { .. } => {}
            PingEvent::GaveUp { user_id, failure } => {
                assert_eq!((user_id.as_str(), failure), ("u1", Failure::TooOld));
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(pinger.stats().given_up, 1);
}

#[tokio::test]
async fn a_403_keeps_users_pending_and_probes_slowly_until_accepted() {
    let accept = Arc::new(AtomicBool::new(false));
    let server = {
        let accept = accept.clone();
        FakeLivefyre::with_script(move |_| {
            Reply::status(if accept.load(Ordering::SeqCst) {
                200
            } else {
                403
            })
        })
        .await
    };
    let pinger = Pinger::builder(network())
        .base_url(server.base_url())
        .retry_schedule(quick_schedule())
        .probe_every(Duration::from_millis(200))
        .spawn()
        .unwrap();
    let mut events = pinger.events();
    for user in ["u1", "u2", "u3"] {
        pinger.ping(user).unwrap();
    }
    assert!(matches!(
        next_event(&mut events).await,
        PingEvent::Unauthorized { .. }
    ));
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let sent = server.received().len();
    // Up to 3 first attempts, then one probe per 200 ms: never a hammering.
    assert!(sent <= 3 + 5, "{sent} requests in {:?}", started.elapsed());
    assert_eq!(pinger.stats().pending, 3, "nobody given up");
    assert_eq!(pinger.stats().given_up, 0);

    accept.store(true, Ordering::SeqCst);
    eventually("all delivered once accepted", || {
        pinger.stats().succeeded == 3
    })
    .await;
    assert_eq!(pinger.stats().pending, 0);
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_limited() {
    let livefyre = TimedLivefyre::new(|_, _| Timed::after(Duration::from_secs(2), status(200)));
    let start = Instant::now();
    let pinger = Pinger::builder(network())
        .base_url("http://livefyre.test")
        .transport(livefyre.clone())
        .concurrency(2)
        .spawn()
        .unwrap();
    for i in 0..6 {
        pinger.ping(&format!("u{i}")).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(pinger.stats().succeeded, 6);
    // Two at a time, each answered in 2 s: the next two start as soon as those end.
    let starts: Vec<u64> = livefyre
        .exchanges()
        .iter()
        .map(|e| (e.started_at - start).as_secs())
        .collect();
    assert_eq!(starts, [0, 0, 2, 2, 4, 4]);
}

#[tokio::test]
async fn ping_refuses_bad_ids_a_full_queue_and_pings_after_shutdown() {
    let server = FakeLivefyre::with_script(|_| Reply::status(500)).await;
    let pinger = Pinger::builder(network())
        .base_url(server.base_url())
        .max_pending(2)
        .retry_schedule(RetrySchedule::new([Duration::from_secs(60)]))
        .spawn()
        .unwrap();
    assert!(matches!(
        pinger.ping("a/b"),
        Err(PingError::InvalidUserId(_))
    ));
    assert!(matches!(
        pinger.ping(".."),
        Err(PingError::InvalidUserId(_))
    ));
    pinger.ping("u1").unwrap();
    pinger.ping("u2").unwrap();
    assert_eq!(
        pinger.ping("u3"),
        Err(PingError::QueueFull { max_pending: 2 })
    );
    pinger.ping("u1").unwrap();
    let report = pinger.shutdown(Duration::from_millis(100)).await;
    assert_eq!(report.undelivered, ["u1", "u2"]);
    assert_eq!(pinger.ping("u1"), Err(PingError::ShuttingDown));
}

#[tokio::test]
async fn shutdown_delivers_what_it_can_before_the_deadline() {
    let server =
        FakeLivefyre::with_script(|_| Reply::status(200).after(Duration::from_millis(50))).await;
    let pinger = pinger(&server);
    for i in 0..5 {
        pinger.ping(&format!("u{i}")).unwrap();
    }
    let report = pinger.shutdown(Duration::from_secs(5)).await;
    assert!(report.undelivered.is_empty());
    assert_eq!(report.stats.succeeded, 5);
}

#[tokio::test(start_paused = true)]
async fn concurrent_shutdowns_wait_for_the_worker_and_report_nothing_delivered() {
    let livefyre = TimedLivefyre::new(|_, _| Timed::after(Duration::from_secs(2), status(200)));
    let pinger = virtual_pinger(&livefyre);
    pinger.ping("u1").unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(pinger.stats().in_flight, 1, "the request is in flight");
    let other = pinger.clone();
    let (first, second) = tokio::join!(
        pinger.shutdown(Duration::from_secs(5)),
        other.shutdown(Duration::from_secs(5))
    );
    // u1 was delivered: neither report may call it undelivered.
    assert!(first.undelivered.is_empty(), "{first:?}");
    assert!(second.undelivered.is_empty(), "{second:?}");
    assert_eq!(second.stats.succeeded, 1);
    assert!(pinger.ping("u2").is_err());
}

#[tokio::test]
async fn dropping_every_handle_still_delivers_what_is_pending() {
    let server =
        FakeLivefyre::with_script(|_| Reply::status(200).after(Duration::from_millis(50))).await;
    let pinger = pinger(&server);
    pinger.ping("u1").unwrap();
    drop(pinger);
    eventually("delivered after drop", || server.pings_for("u1").len() == 1).await;
}

#[tokio::test]
async fn sync_user_makes_one_attempt_with_a_typed_error() {
    let server = FakeLivefyre::with_script(|r| match r.user.as_deref() {
        Some("ok") => Reply::status(200),
        Some("denied") => Reply::status(403),
        _ => Reply::status(500),
    })
    .await;
    let client = LivefyreClient::new(network(), &server.base_url()).unwrap();
    client.sync_user("ok").await.unwrap();
    assert_eq!(
        client.sync_user("denied").await,
        Err(RequestError::Unauthorized)
    );
    assert_eq!(
        client.sync_user("other").await,
        Err(RequestError::Status(
            http::StatusCode::INTERNAL_SERVER_ERROR
        ))
    );
    assert!(matches!(
        client.sync_user("a b").await,
        Err(RequestError::InvalidUserId(_))
    ));
    assert_eq!(
        server.received().len(),
        3,
        "one attempt each, nothing sent for a bad id"
    );
}

#[tokio::test]
async fn register_pull_url_posts_the_template_with_a_system_token() {
    let server = FakeLivefyre::with_script(|_| Reply::status(204)).await;
    let client = LivefyreClient::new(network(), &server.base_url()).unwrap();
    let template = "https://site.example/users/{id}/livefyre?x=1&y=2";
    client.register_pull_url(template).await.unwrap();
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        (received[0].method.as_str(), received[0].path.as_str()),
        ("POST", "/")
    );
    assert_eq!(
        received[0].form("pull_profile_url").as_deref(),
        Some(template)
    );
    SystemTokenValidator::new(network())
        .validate(&received[0].form("actor_token").unwrap())
        .unwrap();
    assert!(matches!(
        client
            .register_pull_url("https://site.example/users/livefyre")
            .await,
        Err(RequestError::InvalidTemplate(_))
    ));
    assert_eq!(
        server.received().len(),
        1,
        "nothing sent for a template without {{id}}"
    );
}

#[tokio::test]
async fn the_hook_pings_after_a_2xx_only() {
    let server = FakeLivefyre::start().await;
    let pinger = pinger(&server);
    let hook = PingHookLayer::new(pinger.clone(), |request: &Request<String>| {
        request
            .uri()
            .path()
            .strip_prefix("/users/")
            .map(str::to_owned)
    });
    let route = ServiceBuilder::new().layer(hook).service(service_fn(
        |request: Request<String>| async move {
            let status = if request.body() == "fail" { 500 } else { 200 };
            Ok::<_, std::convert::Infallible>(
                Response::builder()
                    .status(status)
                    .body(String::new())
                    .unwrap(),
            )
        },
    ));
    let response = route
        .clone()
        .oneshot(Request::post("/users/u1").body("ok".to_owned()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = route
        .oneshot(Request::post("/users/u2").body("fail".to_owned()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    eventually("u1 delivered", || server.pings_for("u1").len() == 1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        server.pings_for("u2").is_empty(),
        "no ping after a failed update"
    );
}

#[test]
fn spawn_outside_a_runtime_is_an_error_not_a_panic() {
    let result = Pinger::builder(network())
        .base_url("http://127.0.0.1:1")
        .spawn();
    assert!(result.is_err());
}

#[test]
fn bad_configuration_fails_at_build_time() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    assert!(matches!(
        Pinger::builder(network())
            .base_url("ftp://127.0.0.1")
            .spawn(),
        Err(ConfigError::BaseUrl(_))
    ));
    let local = || Pinger::builder(network()).base_url("http://127.0.0.1");
    for (builder, named) in [
        (local().concurrency(0), "concurrency"),
        (local().max_pending(0), "max_pending"),
        (local().rate_limit(-1.0), "rate_limit"),
        (local().events_capacity(0), "events_capacity"),
    ] {
        let error = builder.spawn().unwrap_err();
        assert!(
            matches!(error, ConfigError::OutOfRange { setting, .. } if setting == named),
            "{error:?}"
        );
        assert!(
            error.to_string().starts_with(&format!("`{named}` must be")),
            "{error}"
        );
    }
}

#[test]
fn spawning_outside_a_runtime_is_an_error() {
    let error = Pinger::builder(network()).spawn().unwrap_err();
    assert_eq!(error, ConfigError::NoRuntime);
}
