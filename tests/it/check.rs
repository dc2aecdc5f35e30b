//! `check` passes against the Pull layer and names the failing case for endpoints
//! broken on purpose.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::routing::get;
use pingpull::check::{CheckOptions, check_endpoint};
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

fn options(template: String) -> CheckOptions {
    CheckOptions::new(network(), template, "u1")
        .unknown_user("nobody")
        .timeout(Duration::from_millis(500))
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

/// An endpoint with one flaw, and the cases that must catch it.
async fn failing_cases(flaw: &'static str) -> Vec<&'static str> {
    let app = Router::new().route(
        "/pull/{id}",
        get(
            move |Path(id): Path<String>, Query(query): Query<Vec<(String, String)>>| async move {
                let tokens: Vec<_> = query.iter().filter(|(k, _)| k == "lftoken").collect();
                let valid = tokens.len() == 1
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
                    tokio::time::sleep(Duration::from_millis(800)).await;
                }
                let json = match flaw {
                    "missing_display_name" => r#"{"id":"u1"}"#.to_owned(),
                    "wrong_id" => r#"{"id":"u2","display_name":"Eve"}"#.to_owned(),
                    _ => r#"{"id":"u1","display_name":"Ada"}"#.to_owned(),
                };
                (StatusCode::OK, [("content-type", "application/json")], json)
            },
        ),
    );
    let base = serve(app).await;
    let report = check_endpoint(&options(format!("{base}/pull/{{id}}")))
        .await
        .unwrap();
    assert!(!report.passed());
    report.failures().map(|c| c.name).collect()
}

#[tokio::test]
async fn names_the_case_an_endpoint_fails() {
    assert_eq!(
        failing_cases("body_on_403").await,
        [
            "no_token",
            "empty_token",
            "repeated_token",
            "bad_signature",
            "wrong_network",
            "user_token",
            "expired_token"
        ]
    );
    assert_eq!(
        failing_cases("no_token_check").await,
        [
            "no_token",
            "empty_token",
            "repeated_token",
            "bad_signature",
            "wrong_network",
            "user_token",
            "expired_token"
        ]
    );
    assert_eq!(failing_cases("missing_display_name").await, ["valid_pull"]);
    assert_eq!(failing_cases("wrong_id").await, ["valid_pull"]);
    assert_eq!(failing_cases("slow").await, ["valid_pull", "head"]);
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

#[tokio::test]
async fn an_unreachable_endpoint_fails_every_case() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let report = check_endpoint(&options(format!("http://{addr}/pull/{{id}}")))
        .await
        .unwrap();
    assert_eq!(report.failures().count(), report.cases.len());
    assert!(
        report.cases[0].detail.contains("request failed"),
        "{report}"
    );
}
