//! The spans as an OpenTelemetry user receives them, exported through tracing-opentelemetry
//! to the SDK's in-memory exporter: a pull is a SERVER span named after its route, with
//! the server's address, and an error status on a 5xx (a source down: 503); nothing holds
//! the token.

use std::time::Duration;

use opentelemetry::trace::{SpanKind, Status, TracerProvider as _};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use pingpull::pull::{PullLayer, source_fn};
use pingpull::{Network, Profile, token};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tracing_subscriber::layer::SubscriberExt;

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
        let _default = tracing::subscriber::set_default(subscriber);
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

#[tokio::test(flavor = "current_thread")]
async fn a_pull_is_a_server_span_named_after_its_route() {
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
    let lftoken = token::system_token(&network());
    let spans = exported(async {
        for id in ["u1", "u2"] {
            let request =
                http::Request::get(format!("/users/{id}/livefyre?lftoken={}", lftoken.as_str()))
                    .header("host", "www.example.com:8443")
                    .body(())
                    .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), if id == "u1" { 200 } else { 503 });
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
