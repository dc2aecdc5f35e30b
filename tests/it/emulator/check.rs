//! `check` passes against the Pull layer and names the failing case for endpoints
//! broken on purpose.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::routing::get;
use pingpull::check::{CheckError, CheckOptions, Severity, Verdict, check_endpoint};
use pingpull::pull::{InMemorySource, PullLayer};
use pingpull::token::SystemTokenValidator;
use pingpull::{Network, Profile};
use tokio::net::TcpListener;

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A timeout of seconds: on a busy machine a prompt endpoint still passes every case.
fn options(template: String) -> CheckOptions {
    CheckOptions::new(network(), template, "u1")
        .unknown_user("nobody")
        .timeout(Duration::from_secs(5))
}

#[tokio::test]
async fn the_pull_layer_passes_every_case() {
    let users: InMemorySource = [Profile::builder("u1", "Ada").build()]
        .into_iter()
        .collect();
    for template in ["/pull?id={id}", "/users/{id}/livefyre"] {
        let base =
            serve(Router::new().layer(PullLayer::new(template, network(), users.clone()).unwrap()))
                .await;
        let report = check_endpoint(&options(format!("{base}{template}")))
            .await
            .unwrap();
        assert!(report.passed(), "{report}");
        assert_eq!(report.warnings().count(), 0, "{report}");
        let names: Vec<_> = report.cases.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "no_token",
                "empty_token",
                "repeated_token",
                "bad_signature",
                "wrong_network",
                "user_token",
                "expired_token",
                "valid_pull",
                "head",
                "unknown_user"
            ]
        );
        assert!(report.to_json().contains("\"passed\": true"));
    }
}

/// An endpoint at `/pull/{id}` (user `u1`, "Ada") with one flaw; `first_token` is no flaw
/// for Livefyre: it validates the first of several `lftoken`s, as an endpoint built on
/// Livefyre's official Python library does.
pub(crate) fn flawed_endpoint(flaw: &'static str) -> Router {
    Router::new().route(
        "/pull/{id}",
        get(
            move |Path(id): Path<String>, Query(query): Query<Vec<(String, String)>>| async move {
                let tokens: Vec<_> = query.iter().filter(|(k, _)| k == "lftoken").collect();
                let count_ok = tokens.len() == 1 || (flaw == "first_token" && !tokens.is_empty());
                let valid = count_ok
                    && SystemTokenValidator::new(network())
                        .validate(&tokens[0].1)
                        .is_ok();
                if !valid && flaw != "no_token_check" {
                    let body = if flaw == "body_on_403" {
                        "forbidden: bad signature"
                    } else {
                        ""
                    };
                    return (
                        StatusCode::FORBIDDEN,
                        [("content-type", "text/plain")],
                        body.to_owned(),
                    );
                }
                if id != "u1" {
                    return (
                        StatusCode::NOT_FOUND,
                        [("content-type", "text/plain")],
                        String::new(),
                    );
                }
                if flaw == "slow" {
                    // Slower than any timeout a test gives the check.
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                let json = match flaw {
                    "missing_display_name" => r#"{"id":"u1"}"#.to_owned(),
                    "wrong_id" => r#"{"id":"u2","display_name":"Eve"}"#.to_owned(),
                    _ => r#"{"id":"u1","display_name":"Ada"}"#.to_owned(),
                };
                (StatusCode::OK, [("content-type", "application/json")], json)
            },
        ),
    )
}

/// Serves `flawed_endpoint(flaw)` and returns its template.
pub(crate) async fn serve_flawed(flaw: &'static str) -> String {
    format!("{}/pull/{{id}}", serve(flawed_endpoint(flaw)).await)
}

/// The cases that fail the check against an endpoint with `flaw`, and those that warn.
async fn failing_cases(flaw: &'static str) -> (Vec<&'static str>, Vec<&'static str>) {
    let mut options = options(serve_flawed(flaw).await);
    if flaw == "slow" {
        // It never answers: a shorter wait (still seconds) keeps the test short.
        options = options.timeout(Duration::from_secs(1));
    }
    let report = check_endpoint(&options).await.unwrap();
    assert_eq!(report.passed(), report.failures().count() == 0);
    (
        report.failures().map(|c| c.name).collect(),
        report.warnings().map(|c| c.name).collect(),
    )
}

/// Every token case but the advised `repeated_token`.
const REQUIRED_TOKEN_CASES: [&str; 6] = [
    "no_token",
    "empty_token",
    "bad_signature",
    "wrong_network",
    "user_token",
    "expired_token",
];

#[tokio::test]
async fn names_the_case_an_endpoint_fails() {
    for flaw in ["body_on_403", "no_token_check"] {
        assert_eq!(
            failing_cases(flaw).await,
            (REQUIRED_TOKEN_CASES.to_vec(), vec!["repeated_token"]),
            "{flaw}"
        );
    }
    for flaw in ["missing_display_name", "wrong_id"] {
        assert_eq!(
            failing_cases(flaw).await,
            (vec!["valid_pull"], vec![]),
            "{flaw}"
        );
    }
    // HEAD is advised: Livefyre only pulled with GET.
    assert_eq!(
        failing_cases("slow").await,
        (vec!["valid_pull"], vec!["head"])
    );
}

/// A Pull layer that cannot serve the profile says why in its 500, and the report
/// repeats it.
#[tokio::test]
async fn a_500_s_reason_is_in_the_report() {
    let source = pingpull::pull::source_fn(|id: String| async move {
        Ok::<_, pingpull::BoxError>(Some(
            Profile::builder(id, "Ada").tags(["no spaces"]).build(),
        ))
    });
    let base =
        serve(Router::new().layer(PullLayer::new("/pull?id={id}", network(), source).unwrap()))
            .await;
    let report = check_endpoint(&options(format!("{base}/pull?id={{id}}")))
        .await
        .unwrap();
    let failed: Vec<_> = report.failures().map(|c| c.name).collect();
    assert_eq!(failed, ["valid_pull"], "{report}");
    let valid = report.failures().next().unwrap();
    assert_eq!(
        valid.detail,
        "answered 500, expected 200: the endpoint could not serve the profile: invalid profile: `tags[0]` must match [A-Za-z0-9_]{1,63}"
    );
    assert!(report.to_string().contains(&valid.detail), "{report}");
}

#[tokio::test]
async fn validating_the_first_of_two_tokens_passes_with_a_warning() {
    let template = serve_flawed("first_token").await;
    let report = check_endpoint(&options(template.clone())).await.unwrap();
    assert!(report.passed(), "{report}");
    assert_eq!(report.failures().count(), 0);
    let warning = report.warnings().next().expect("a warning");
    assert_eq!(warning.name, "repeated_token");
    assert_eq!(warning.severity, Severity::Advised);
    assert_eq!(warning.outcome, Verdict::Warn);
    let text = report.to_string();
    assert!(
        text.lines().any(|l| l.starts_with("WARN repeated_token")),
        "{text}"
    );
    assert!(
        text.contains("\n     advised, not required: Livefyre sent one lftoken"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("PASS no_token ")),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["passed"], true);
    assert_eq!(json["cases"][2]["outcome"], "warn");
    assert_eq!(json["cases"][2]["severity"], "advised");
    assert_eq!(json["cases"][0]["severity"], "conformance");

    let strict = check_endpoint(&options(template).strict(true))
        .await
        .unwrap();
    assert!(!strict.passed(), "{strict}");
    let failed: Vec<_> = strict.failures().map(|c| c.name).collect();
    assert_eq!(failed, ["repeated_token"]);
    assert_eq!(strict.warnings().count(), 0);
    assert!(
        strict.to_string().contains("FAIL repeated_token"),
        "{strict}"
    );
}

#[tokio::test]
async fn a_path_is_not_a_template_check_can_pull() {
    let error = check_endpoint(&CheckOptions::new(
        network(),
        "/livefyre/pull?id={id}",
        "u1",
    ))
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "`/livefyre/pull?id={id}` is a path; Livefyre needs an absolute http(s) URL to pull from, such as https://www.example.com/livefyre/pull?id={id}"
    );
}

#[tokio::test]
async fn a_bad_template_or_user_id_is_an_error() {
    assert!(
        check_endpoint(&CheckOptions::new(
            network(),
            "http://127.0.0.1:1/pull",
            "u1"
        ))
        .await
        .is_err()
    );
    assert!(
        check_endpoint(&CheckOptions::new(
            network(),
            "http://127.0.0.1:1/{id}",
            "a/b"
        ))
        .await
        .is_err()
    );
}

pub(crate) use crate::support::refusing_port;

fn unreachable_address(error: CheckError) -> (String, String) {
    match error {
        CheckError::Unreachable { address, reason } => (address, reason),
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn nothing_listening_is_said_once_as_an_error() {
    let (_socket, addr) = refusing_port();
    let error = check_endpoint(&options(format!("http://{addr}/pull/{{id}}")))
        .await
        .unwrap_err();
    let message = error.to_string();
    let (address, reason) = unreachable_address(error);
    assert_eq!(address, addr.to_string());
    assert!(reason.to_lowercase().contains("refused"), "{reason}");
    assert!(
        message.starts_with(&format!("nothing answers at {addr}: ")),
        "{message}"
    );
    assert!(
        message.contains("check that the endpoint is running"),
        "{message}"
    );
}

#[tokio::test]
async fn a_server_that_closes_every_connection_is_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and closes at once: the connection succeeds, no HTTP answer ever comes.
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    let error = check_endpoint(&options(format!("http://{addr}/pull/{{id}}")))
        .await
        .unwrap_err();
    assert_eq!(unreachable_address(error).0, addr.to_string());
}

#[tokio::test]
async fn a_server_that_never_answers_is_unreachable() {
    // Kept, never accepted on: the kernel completes the connection, nobody answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let options = CheckOptions::new(network(), format!("http://{addr}/pull/{{id}}"), "u1")
        .timeout(Duration::from_millis(100));
    let error = check_endpoint(&options).await.unwrap_err();
    let (address, reason) = unreachable_address(error);
    assert_eq!(address, addr.to_string());
    assert_eq!(reason, "no answer within 1100 ms");
    drop(listener);
}

#[tokio::test]
async fn https_to_a_plain_http_server_says_so() {
    let base = serve(flawed_endpoint("first_token")).await;
    let addr = base.trim_start_matches("http://").to_owned();
    let error = check_endpoint(&options(format!("https://{addr}/pull/{{id}}")))
        .await
        .unwrap_err();
    let (address, reason) = unreachable_address(error);
    assert_eq!(address, addr);
    assert_eq!(
        reason,
        format!("TLS handshake failed: the server at {addr} does not speak https (try http://)")
    );
}
