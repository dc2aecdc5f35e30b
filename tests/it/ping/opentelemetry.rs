//! The spans as an OpenTelemetry user receives them, exported through tracing-opentelemetry
//! to the SDK's in-memory exporter: a pull is a SERVER span named after its route, with
//! the server's address, and an error status on a 5xx (a source down: 503); a delivery
//! attempt is a CLIENT span named `POST`, with the full URL and the server's address, a
//! resend count on a retry, and an error status on any answer but a 2xx. Nothing holds
//! the token.

use std::time::Duration;

use opentelemetry::trace::{SpanKind, Status, TracerProvider as _};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use pingpull::ping::{PingEvent, Pinger, RetrySchedule};
use pingpull::pull::{PullLayer, source_fn};
use pingpull::{Network, Profile, token};
use tokio::sync::broadcast;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tracing_subscriber::layer::SubscriberExt;

use crate::support::fake_livefyre::{FakeLivefyre, Reply};
use crate::support::scripted_livefyre::{ScriptedLivefyre, status};
use crate::support::traces::install_for_this_thread;

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

/// Spans finished while `run` ran, as the exporter received them.
async fn exported<F: std::future::Future<Output = ()>>(run: F) -> Vec<SpanData> {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("pingpull-test")));
    {
        let _default = install_for_this_thread(subscriber);
        run.await;
    }
    provider.force_flush().unwrap();
    exporter.get_finished_spans().unwrap()
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|KeyValue { key: k, .. }| k.as_str() == key)
        .map(|kv| &kv.value)
}

fn text(span: &SpanData, key: &str) -> String {
    attribute(span, key)
        .map(Value::to_string)
        .unwrap_or_default()
}

/// One pull of `id`, sent to `host` with `lftoken`, through a layer on
/// `/users/{id}/livefyre` whose source serves u1 and is down for anyone else; its status.
async fn pull(id: &str, host: &str, lftoken: &str) -> u16 {
    let source = source_fn(|id: String| async move {
        match id.as_str() {
            "u1" => Ok(Some(Profile::builder("u1", "Ada").build())),
            _ => Err("the database is down".into()),
        }
    });
    let pull = PullLayer::new("/users/{id}/livefyre", network(), source).unwrap();
    let app = ServiceBuilder::new()
        .layer(pull)
        .service(service_fn(|_| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
        }));
    let request = http::Request::get(format!("/users/{id}/livefyre?lftoken={lftoken}"))
        .header("host", host)
        .body(())
        .unwrap();
    app.oneshot(request).await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "current_thread")]
async fn a_pull_is_a_server_span_named_after_its_route() {
    let lftoken = token::system_token(&network());
    let spans = exported(async {
        for id in ["u1", "u2"] {
            let status = pull(id, "www.example.com:8443", lftoken.as_str()).await;
            assert_eq!(status, if id == "u1" { 200 } else { 503 });
        }
        tokio::time::sleep(Duration::ZERO).await;
    })
    .await;

    let pulls: Vec<_> = spans
        .iter()
        .filter(|span| span.name == "GET /users/{id}/livefyre")
        .collect();
    assert_eq!(
        pulls.len(),
        2,
        "{:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    for span in &pulls {
        assert_eq!(span.span_kind, SpanKind::Server);
        assert_eq!(text(span, "http.route"), "/users/{id}/livefyre");
        assert_eq!(text(span, "http.request.method"), "GET");
        assert_eq!(text(span, "server.address"), "www.example.com");
        assert_eq!(text(span, "server.port"), "8443");
        assert_eq!(text(span, "url.scheme"), "http");
        for kv in &span.attributes {
            assert!(
                !kv.value.to_string().contains(lftoken.as_str()),
                "{kv:?} holds the token"
            );
        }
    }
    let ok = pulls.iter().find(|s| text(s, "user_id") == "u1").unwrap();
    assert_eq!(text(ok, "http.response.status_code"), "200");
    assert_eq!(attribute(ok, "error.type"), None);
    assert_eq!(ok.status, Status::Unset);
    let failed = pulls.iter().find(|s| text(s, "user_id") == "u2").unwrap();
    assert_eq!(text(failed, "http.response.status_code"), "503");
    assert_eq!(text(failed, "error.type"), "503");
    assert!(
        matches!(failed.status, Status::Error { .. }),
        "{:?}",
        failed.status
    );
}

/// Waits until `users` users were delivered or given up, failing after 10 s.
async fn settled(events: &mut broadcast::Receiver<PingEvent>, users: usize) {
    let wait = async {
        let mut seen = 0;
        while seen < users {
            let event = events.recv().await.unwrap();
            if matches!(
                event,
                PingEvent::Delivered { .. } | PingEvent::GaveUp { .. }
            ) {
                seen += 1;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("the event never came");
}

#[tokio::test(flavor = "current_thread")]
async fn a_ping_attempt_is_a_client_span_with_the_url_and_never_the_token() {
    // u1: 503 once, then 200. u2: 404, which is given up.
    let livefyre = FakeLivefyre::with_script(|request| match request.user.as_deref() {
        Some("u1") if request.nth_for_user == 1 => Reply::status(503),
        Some("u2") => Reply::status(404),
        _ => Reply::status(200),
    })
    .await;
    let spans = exported(async {
        let pinger = Pinger::builder(network())
            .base_url(livefyre.base_url())
            .retry_schedule(RetrySchedule::new([Duration::from_millis(10)]).jitter(0.0))
            .attempt_timeout(Duration::from_secs(10))
            .spawn()
            .unwrap();
        let mut events = pinger.events();
        pinger.ping("u1").unwrap();
        pinger.ping("u2").unwrap();
        settled(&mut events, 2).await;
        // Shutdown waits for every attempt to end, and so for its span to close.
        let report = pinger.shutdown(Duration::from_secs(10)).await;
        assert!(report.undelivered.is_empty());
    })
    .await;

    let attempts: Vec<_> = spans.iter().filter(|span| span.name == "POST").collect();
    assert_eq!(
        attempts.len(),
        3,
        "{:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    // The token each request carried (in its form body), to look for in the spans.
    let received = livefyre.received();
    let tokens: Vec<String> = received.iter().filter_map(|r| r.form("lftoken")).collect();
    assert_eq!(tokens.len(), 3);
    let port = livefyre.addr.port().to_string();
    for span in &attempts {
        assert_eq!(span.span_kind, SpanKind::Client);
        assert_eq!(text(span, "http.request.method"), "POST");
        let user = text(span, "user_id");
        assert_eq!(
            text(span, "url.full"),
            format!("{}/api/v3_0/user/{user}/refresh", livefyre.base_url())
        );
        assert_eq!(text(span, "server.address"), "127.0.0.1");
        assert_eq!(text(span, "server.port"), port);
        for kv in &span.attributes {
            let value = kv.value.to_string();
            for secret in tokens
                .iter()
                .map(String::as_str)
                .chain(["testkeytest", "lftoken"])
            {
                assert!(!value.contains(secret), "{kv:?} holds a secret");
            }
        }
    }
    let by = |user: &str, attempt: &str| {
        attempts
            .iter()
            .find(|s| text(s, "user_id") == user && text(s, "attempt") == attempt)
            .unwrap_or_else(|| panic!("no span for {user}'s attempt {attempt}"))
    };

    let failed = by("u1", "1");
    assert_eq!(text(failed, "http.response.status_code"), "503");
    assert_eq!(text(failed, "error.type"), "503");
    assert!(
        matches!(failed.status, Status::Error { .. }),
        "{:?}",
        failed.status
    );
    // The first attempt is no resend: the attribute is absent, not 0.
    assert_eq!(attribute(failed, "http.request.resend_count"), None);

    let retried = by("u1", "2");
    assert_eq!(text(retried, "http.response.status_code"), "200");
    assert_eq!(text(retried, "http.request.resend_count"), "1");
    assert_eq!(attribute(retried, "error.type"), None);
    assert_eq!(retried.status, Status::Unset);

    // For a client span a 4xx is an error too: the request failed.
    let refused = by("u2", "1");
    assert_eq!(text(refused, "http.response.status_code"), "404");
    assert_eq!(text(refused, "error.type"), "404");
    assert!(
        matches!(refused.status, Status::Error { .. }),
        "{:?}",
        refused.status
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_attempt_span_takes_the_port_from_the_scheme_when_the_base_url_has_none() {
    for (base_url, address, port) in [
        ("https://livefyre.test/prefix", "livefyre.test", "443"),
        ("http://[::1]", "::1", "80"),
    ] {
        let spans = exported(async {
            let pinger = Pinger::builder(network())
                .base_url(base_url)
                .transport(ScriptedLivefyre::new(|_, _| status(200)))
                .spawn()
                .unwrap();
            let mut events = pinger.events();
            pinger.ping("u1").unwrap();
            settled(&mut events, 1).await;
            pinger.shutdown(Duration::from_secs(10)).await;
        })
        .await;
        let span = spans.iter().find(|span| span.name == "POST").unwrap();
        assert_eq!(text(span, "server.address"), address, "{base_url}");
        assert_eq!(text(span, "server.port"), port, "{base_url}");
        assert_eq!(
            text(span, "url.full"),
            format!("{base_url}/api/v3_0/user/u1/refresh")
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_pull_to_an_ipv6_address_names_it_without_brackets() {
    let lftoken = token::system_token(&network());
    let spans = exported(async {
        assert_eq!(pull("u1", "[::1]:8080", lftoken.as_str()).await, 200);
    })
    .await;
    let span = spans
        .iter()
        .find(|span| span.name == "GET /users/{id}/livefyre")
        .expect("the pull's span");
    assert_eq!(text(span, "server.address"), "::1");
    assert_eq!(text(span, "server.port"), "8080");
}
