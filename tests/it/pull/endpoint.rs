//! docs/protocol.md §6 through `ServiceExt::oneshot`: every case of the Pull endpoint.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use pingpull::clock::ManualClock;
use pingpull::profile::{self, SIGNATURE_HEADER};
use pingpull::pull::{InMemorySource, Pull, PullLayer, Rejection, source_fn};
use pingpull::token::{self, Claims};
use pingpull::{BoxError, Network, Profile};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

use crate::support::forge;

const NOW: u64 = 1_700_000_000;
const QUERY_TEMPLATE: &str = "https://site.example/livefyre/pull?id={id}";
const PATH_TEMPLATE: &str = "https://site.example/users/{id}/livefyre";

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

fn valid_token() -> String {
    Claims::system(&network(), 1_700_086_400)
        .sign(&network())
        .into_string()
}

fn u1() -> Profile {
    Profile::builder("u1", "Ada Lovelace")
        .image_url("https://cdn.example/u1.png")
        .tags(["staff"])
        .moderator(true)
        .build()
}

/// Users whose ids say how the source behaves.
fn source() -> impl pingpull::pull::ProfileSource {
    source_fn(|id: String| async move {
        match id.as_str() {
            "u1" => Ok(Some(u1())),
            "broken" => Err(BoxError::from("database is down")),
            "slow" => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(Some(Profile::builder("slow", "Slow").build()))
            }
            "panics" => panic!("source bug"),
            "invalid" => Ok(Some(
                Profile::builder("invalid", "Bad")
                    .tags(["no spaces"])
                    .build(),
            )),
            "other" => Ok(Some(Profile::builder("someone-else", "Eve").build())),
            _ => Ok(None),
        }
    })
}

/// An inner service that echoes the request body and a test extension.
async fn echo(request: Request<String>) -> Result<Response<String>, Infallible> {
    let marker = request
        .extensions()
        .get::<&'static str>()
        .copied()
        .unwrap_or("none");
    Ok(Response::builder()
        .header("x-inner", marker)
        .header("x-path", request.uri().to_string())
        .body(request.into_body())
        .unwrap())
}

fn app(
    template: &str,
) -> Pull<impl Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone> {
    let layer = PullLayer::new(template, network(), source())
        .unwrap()
        .clock(ManualClock::at_unix(NOW));
    ServiceBuilder::new().layer(layer).service(service_fn(echo))
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    rejection: Option<Rejection>,
    body: Bytes,
}

async fn call(template: &str, method: Method, uri: &str) -> Answer {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(String::new())
        .unwrap();
    send(app(template), request).await
}

async fn send<S>(service: S, request: Request<String>) -> Answer
where
    S: Service<
            Request<String>,
            Response = Response<pingpull::pull::PullBody<String>>,
            Error = Infallible,
        >,
{
    let response = service.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        rejection: parts.extensions.get::<Rejection>().cloned(),
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

const SYSTEM_CLAIMS: &str = r#"{"domain":"example.fyre.co","user_id":"system","display_name":"system","expires":1700086400}"#;

#[tokio::test]
async fn good_pull_answers_the_profile_signed() {
    for (template, uri) in [
        (
            QUERY_TEMPLATE,
            format!("/livefyre/pull?id=u1&lftoken={}", valid_token()),
        ),
        (
            PATH_TEMPLATE,
            format!("/users/u1/livefyre?lftoken={}", valid_token()),
        ),
        (
            QUERY_TEMPLATE,
            format!("/livefyre/pull?lftoken={}&id=u1&utm=x", valid_token()),
        ),
    ] {
        let answer = call(template, Method::GET, &uri).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}");
        assert_eq!(answer.headers["content-type"], "application/json");
        assert_eq!(answer.headers["cache-control"], "no-store");
        assert_eq!(answer.body, u1().to_json().as_bytes());
        assert_eq!(answer.rejection, None);
        let signature = answer.headers[SIGNATURE_HEADER].to_str().unwrap();
        profile::verify_body_signature(&network(), signature, &answer.body).unwrap();
        let read = profile::read_tolerant(&answer.body, Some("u1")).unwrap();
        assert_eq!(read, u1());
    }
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let uri = format!("/livefyre/pull?id=u1&lftoken={}", valid_token());
    let get = call(QUERY_TEMPLATE, Method::GET, &uri).await;
    let head = call(QUERY_TEMPLATE, Method::HEAD, &uri).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(head.headers["content-length"], get.body.len().to_string());
    assert_eq!(head.headers["content-type"], "application/json");
    assert_eq!(
        head.headers[SIGNATURE_HEADER],
        get.headers[SIGNATURE_HEADER]
    );
}

#[tokio::test]
async fn signing_can_be_turned_off() {
    let layer = PullLayer::new(QUERY_TEMPLATE, network(), source())
        .unwrap()
        .clock(ManualClock::at_unix(NOW))
        .sign_responses(false);
    let service = ServiceBuilder::new().layer(layer).service(service_fn(echo));
    let uri = format!("/livefyre/pull?id=u1&lftoken={}", valid_token());
    let answer = send(service, Request::get(uri).body(String::new()).unwrap()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(!answer.headers.contains_key(SIGNATURE_HEADER));
}

/// Every refusal of the token: 403, empty body, no-store, and the reason in extensions.
#[tokio::test]
async fn token_refusals_are_empty_403s() {
    let t = valid_token();
    let cases: Vec<(String, &str)> = vec![
        ("/livefyre/pull?id=u1".into(), "missing_token"),
        ("/livefyre/pull?id=u1&lftoken=".into(), "invalid_token"),
        ("/livefyre/pull?id=u1&lftoken".into(), "invalid_token"),
        (
            format!("/livefyre/pull?id=u1&lftoken={t}&lftoken={t}"),
            "repeated_token",
        ),
        (
            format!("/livefyre/pull?id=u1&lftoken={t}&lf%74oken={t}"),
            "repeated_token",
        ),
        (
            format!("/livefyre/pull?id=u1&lftoken={t}%zz"),
            "undecodable_token",
        ),
        (
            format!(
                "/livefyre/pull?id=u1&lftoken={}",
                forge(r#"{"typ":"JWT","alg":"HS256"}"#, SYSTEM_CLAIMS, "wrongkey")
            ),
            "invalid_token",
        ),
        (
            format!(
                "/livefyre/pull?id=u1&lftoken={}.",
                forge(r#"{"alg":"none"}"#, SYSTEM_CLAIMS, "x")
                    .rsplit_once('.')
                    .unwrap()
                    .0
            ),
            "invalid_token",
        ),
        (
            format!(
                "/livefyre/pull?id=u1&lftoken={}",
                forge(r#"{"alg":"HS512"}"#, SYSTEM_CLAIMS, "testkeytest")
            ),
            "invalid_token",
        ),
        (
            format!(
                "/livefyre/pull?id=u1&lftoken={}",
                forge(
                    r#"{"alg":"HS256"}"#,
                    &SYSTEM_CLAIMS.replace("example", "other"),
                    "testkeytest"
                )
            ),
            "invalid_token",
        ),
        (
            format!(
                "/livefyre/pull?id=u1&lftoken={}",
                token::user_auth_token(&network(), "u1", "Ada", Duration::from_secs(60))
                    .unwrap()
                    .as_str()
            ),
            "invalid_token",
        ),
        (
            format!(
                "/livefyre/pull?id=u1&lftoken={}",
                Claims::system(&network(), 1_699_999_999)
                    .sign(&network())
                    .as_str()
            ),
            "invalid_token",
        ),
        (
            "/livefyre/pull?id=u1&lftoken=garbage".into(),
            "invalid_token",
        ),
        ("/livefyre/pull?id=u1&lftoken=a.b.c".into(), "invalid_token"),
        // A 403 says nothing about the user: unknown and bad ids get it too.
        ("/livefyre/pull?id=nobody".into(), "missing_token"),
        ("/livefyre/pull?id=%ff&lftoken=x".into(), "invalid_token"),
        ("/livefyre/pull".into(), "missing_token"),
    ];
    for (uri, reason) in cases {
        let answer = call(QUERY_TEMPLATE, Method::GET, &uri).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{uri}");
        assert!(answer.body.is_empty(), "{uri}");
        assert_eq!(answer.headers["cache-control"], "no-store", "{uri}");
        assert_eq!(
            answer.rejection.as_ref().map(Rejection::as_str),
            Some(reason),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn a_token_in_a_header_only_is_missing() {
    let mut request = Request::get("/livefyre/pull?id=u1")
        .body(String::new())
        .unwrap();
    request
        .headers_mut()
        .insert("lftoken", valid_token().parse().unwrap());
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", valid_token()).parse().unwrap(),
    );
    let answer = send(app(QUERY_TEMPLATE), request).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.body.is_empty());
    assert_eq!(answer.rejection, Some(Rejection::MissingToken));
}

#[tokio::test]
async fn token_error_is_in_the_extensions() {
    let answer = call(
        QUERY_TEMPLATE,
        Method::GET,
        "/livefyre/pull?id=u1&lftoken=a.b",
    )
    .await;
    assert_eq!(
        answer.rejection,
        Some(Rejection::InvalidToken(token::TokenError::Malformed {
            reason: "expected 3 segments"
        }))
    );
}

#[tokio::test]
async fn bad_ids_are_400s() {
    let t = valid_token();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            QUERY_TEMPLATE,
            format!("/livefyre/pull?lftoken={t}"),
            "missing_id",
        ),
        (
            QUERY_TEMPLATE,
            format!("/livefyre/pull?id=u1&id=u2&lftoken={t}"),
            "repeated_id",
        ),
        (
            QUERY_TEMPLATE,
            format!("/livefyre/pull?id=u1&i%64=u1&lftoken={t}"),
            "repeated_id",
        ),
        (
            QUERY_TEMPLATE,
            format!("/livefyre/pull?id=u%zz1&lftoken={t}"),
            "undecodable_id",
        ),
        (
            QUERY_TEMPLATE,
            format!("/livefyre/pull?id=u%1&lftoken={t}"),
            "undecodable_id",
        ),
        (
            QUERY_TEMPLATE,
            format!("/livefyre/pull?id=%ff%fe&lftoken={t}"),
            "undecodable_id",
        ),
        (
            QUERY_TEMPLATE,
            format!("/livefyre/pull?id=%C3%A9&lftoken={t}"),
            "invalid_id",
        ),
        (
            QUERY_TEMPLATE,
            format!("/livefyre/pull?id=&lftoken={t}"),
            "invalid_id",
        ),
        (
            QUERY_TEMPLATE,
            format!("/livefyre/pull?id=a+b&lftoken={t}"),
            "invalid_id",
        ),
        (
            QUERY_TEMPLATE,
            format!("/livefyre/pull?id=.&lftoken={t}"),
            "invalid_id",
        ),
        (
            QUERY_TEMPLATE,
            format!("/livefyre/pull?id=..&lftoken={t}"),
            "invalid_id",
        ),
        (
            QUERY_TEMPLATE,
            format!("/livefyre/pull?id=a%2Fb&lftoken={t}"),
            "invalid_id",
        ),
        (
            QUERY_TEMPLATE,
            format!("/livefyre/pull?id=u%31&lftoken={t}"),
            "encoded_id",
        ),
        (
            PATH_TEMPLATE,
            format!("/users/%2E%2E/livefyre?lftoken={t}"),
            "invalid_id",
        ),
        (
            PATH_TEMPLATE,
            format!("/users/u%31/livefyre?lftoken={t}"),
            "encoded_id",
        ),
        (
            PATH_TEMPLATE,
            format!("/users//livefyre?lftoken={t}"),
            "invalid_id",
        ),
        (
            PATH_TEMPLATE,
            format!("/users/%ff/livefyre?lftoken={t}"),
            "undecodable_id",
        ),
    ];
    for (template, uri, reason) in cases {
        let answer = call(template, Method::GET, &uri).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(answer.body.is_empty(), "{uri}");
        assert_eq!(
            answer.rejection.as_ref().map(Rejection::as_str),
            Some(reason),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn unknown_user_is_404() {
    let uri = format!("/livefyre/pull?id=nobody&lftoken={}", valid_token());
    let answer = call(QUERY_TEMPLATE, Method::GET, &uri).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.rejection, Some(Rejection::UnknownUser));
    assert_eq!(answer.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn source_error_is_503_with_retry_after() {
    let uri = format!("/livefyre/pull?id=broken&lftoken={}", valid_token());
    let answer = call(QUERY_TEMPLATE, Method::GET, &uri).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers["retry-after"], "30");
    assert!(answer.body.is_empty(), "the source's message is not sent");
    assert_eq!(
        answer.rejection,
        Some(Rejection::SourceFailed("database is down".into()))
    );
}

#[tokio::test(start_paused = true)]
async fn slow_source_times_out_with_503() {
    let layer = PullLayer::new(QUERY_TEMPLATE, network(), source())
        .unwrap()
        .clock(ManualClock::at_unix(NOW))
        .timeout(Duration::from_secs(2))
        .unwrap()
        .retry_after(Duration::from_millis(1500))
        .unwrap();
    let service = ServiceBuilder::new().layer(layer).service(service_fn(echo));
    let uri = format!("/livefyre/pull?id=slow&lftoken={}", valid_token());
    let started = tokio::time::Instant::now();
    let answer = send(service, Request::get(uri).body(String::new()).unwrap()).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.rejection, Some(Rejection::SourceTimedOut));
    assert_eq!(answer.headers["retry-after"], "2");
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(2),
        "virtual time: exactly the timeout"
    );
}

#[tokio::test(start_paused = true)]
async fn default_timeout_is_five_seconds() {
    let started = tokio::time::Instant::now();
    let uri = format!("/livefyre/pull?id=slow&lftoken={}", valid_token());
    let answer = call(QUERY_TEMPLATE, Method::GET, &uri).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(started.elapsed(), Duration::from_secs(5));
}

#[tokio::test]
async fn a_panicking_source_gets_500_and_the_service_keeps_serving() {
    let service = app(QUERY_TEMPLATE);
    let uri = format!("/livefyre/pull?id=panics&lftoken={}", valid_token());
    let answer = send(
        service.clone(),
        Request::get(uri).body(String::new()).unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.rejection, Some(Rejection::SourcePanicked));
    // Says that the source failed, never what the panic said.
    assert_eq!(
        json(&answer),
        serde_json::json!({"error": "source_panicked", "message": "profile source panicked", "violations": []})
    );
    let uri = format!("/livefyre/pull?id=u1&lftoken={}", valid_token());
    let answer = send(service, Request::get(uri).body(String::new()).unwrap()).await;
    assert_eq!(answer.status, StatusCode::OK);
}

/// A 500's body: JSON saying why the profile was not served (docs/protocol.md §6).
fn json(answer: &Answer) -> serde_json::Value {
    assert_eq!(answer.headers["content-type"], "application/json");
    assert_eq!(
        answer.headers["content-length"],
        answer.body.len().to_string().as_str()
    );
    serde_json::from_slice(&answer.body).unwrap()
}

#[tokio::test]
async fn an_invalid_profile_is_never_sent_and_the_puller_is_told_why() {
    let uri = format!("/livefyre/pull?id=invalid&lftoken={}", valid_token());
    let answer = call(QUERY_TEMPLATE, Method::GET, &uri).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    match &answer.rejection {
        Some(Rejection::InvalidProfile(violations)) => {
            assert!(violations.contains_field("tags[0]"))
        }
        other => panic!("{other:?}"),
    }
    // The reason, and nothing of the profile: not even the offending tag.
    assert_eq!(
        json(&answer),
        serde_json::json!({
            "error": "invalid_profile",
            "message": "invalid profile: `tags[0]` must match [A-Za-z0-9_]{1,63}",
            "violations": [{"field": "tags[0]", "message": "must match [A-Za-z0-9_]{1,63}"}],
        })
    );
    let body = String::from_utf8(answer.body.to_vec()).unwrap();
    assert!(
        !body.contains("no spaces") && !body.contains("Bad"),
        "{body}"
    );
    assert_eq!(answer.headers["cache-control"], "no-store");

    // HEAD: the same headers, no body.
    let head = call(QUERY_TEMPLATE, Method::HEAD, &uri).await;
    assert_eq!(head.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(head.body.is_empty());
    assert_eq!(
        head.headers["content-length"],
        answer.headers["content-length"]
    );
    assert_eq!(head.headers["content-type"], "application/json");
}

#[tokio::test]
async fn a_profile_with_another_id_is_never_sent_and_the_puller_is_told_why() {
    let uri = format!("/livefyre/pull?id=other&lftoken={}", valid_token());
    let answer = call(QUERY_TEMPLATE, Method::GET, &uri).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.rejection, Some(Rejection::IdMismatch));
    // Not the other user's id, nor anything else of that profile.
    assert_eq!(
        json(&answer),
        serde_json::json!({
            "error": "id_mismatch",
            "message": "profile id differs from the requested id",
            "violations": [{"field": "id", "message": "differs from the requested user id"}],
        })
    );
}

/// Without a valid token nothing is loaded, so a profile that cannot be served is never
/// explained to such a request: it gets the empty 403 of any refused token.
#[tokio::test]
async fn only_a_valid_token_is_told_why_a_profile_cannot_be_served() {
    let forged = forge(r#"{"alg":"HS256"}"#, SYSTEM_CLAIMS, "wrongkey");
    for uri in [
        "/livefyre/pull?id=invalid".to_owned(),
        format!("/livefyre/pull?id=invalid&lftoken={forged}"),
        format!("/livefyre/pull?id=other&lftoken={forged}"),
        format!("/livefyre/pull?id=panics&lftoken={forged}"),
    ] {
        let answer = call(QUERY_TEMPLATE, Method::GET, &uri).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{uri}");
        assert!(answer.body.is_empty(), "{uri}");
        assert!(!answer.headers.contains_key("content-type"), "{uri}");
    }
}

#[tokio::test]
async fn other_methods_get_405_without_a_token() {
    for method in [
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
    ] {
        let answer = call(QUERY_TEMPLATE, method.clone(), "/livefyre/pull?id=u1").await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(answer.headers["allow"], "GET, HEAD");
        assert!(answer.body.is_empty());
    }
}

#[tokio::test]
async fn other_paths_pass_through_untouched() {
    for (template, uri) in [
        (QUERY_TEMPLATE, "/livefyre/pull/?id=u1"),
        (QUERY_TEMPLATE, "/livefyre/pul?id=u1"),
        (QUERY_TEMPLATE, "/"),
        (PATH_TEMPLATE, "/users/u1/livefyre/extra"),
        (PATH_TEMPLATE, "/users/u1"),
        (PATH_TEMPLATE, "/users/u1/LIVEFYRE"),
    ] {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .body("the body".to_owned())
            .unwrap();
        request.extensions_mut().insert("marker");
        let answer = send(app(template), request).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}");
        assert_eq!(answer.body, "the body", "{uri}");
        assert_eq!(answer.headers["x-inner"], "marker", "{uri}");
        assert_eq!(answer.headers["x-path"], uri, "{uri}");
        assert_eq!(answer.rejection, None);
    }
}

#[tokio::test]
async fn the_in_memory_source_serves_updates() {
    let users = InMemorySource::new();
    users.insert(u1()).unwrap();
    let layer = PullLayer::new(PATH_TEMPLATE, network(), users.clone())
        .unwrap()
        .clock(ManualClock::at_unix(NOW));
    let service = ServiceBuilder::new()
        .layer(layer.clone())
        .service(service_fn(echo));
    let uri = layer.template().url_for("u1", &valid_token());
    users
        .update("u1", |p| p.display_name = "Ada L.".into())
        .unwrap();
    let answer = send(service, Request::get(uri).body(String::new()).unwrap()).await;
    assert_eq!(
        profile::read_tolerant(&answer.body, Some("u1"))
            .unwrap()
            .display_name,
        "Ada L."
    );
}

#[test]
fn templates_the_endpoint_cannot_serve_are_refused_at_build_time() {
    use pingpull::template::TemplateError;
    for (template, error) in [
        ("https://s.example/pull", TemplateError::MissingId),
        ("https://s.example/{id}/{id}", TemplateError::ManyIds),
        (
            "https://s.example/p?lftoken={id}",
            TemplateError::ReservedParameter,
        ),
        (
            "https://s.example/p?id=x{id}",
            TemplateError::IdNotWholeQueryValue,
        ),
    ] {
        assert_eq!(
            PullLayer::new(template, network(), InMemorySource::new()).unwrap_err(),
            error
        );
    }
}

#[test]
fn layer_debug_never_shows_the_key() {
    let layer = PullLayer::new(PATH_TEMPLATE, network(), InMemorySource::new()).unwrap();
    let debug = format!("{layer:?}");
    assert!(
        !debug.contains("testkeytest") && debug.contains("example.fyre.co"),
        "{debug}"
    );
}

#[test]
fn layer_service_and_future_are_clone_send_sync() {
    fn clone_send_sync<T: Clone + Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let layer = PullLayer::new(PATH_TEMPLATE, network(), InMemorySource::new()).unwrap();
    clone_send_sync(&layer);
    let mut service = tower::Layer::layer(&layer, service_fn(echo));
    clone_send_sync(&service);
    let future = service.call(Request::get("/").body(String::new()).unwrap());
    send(&future);
}
