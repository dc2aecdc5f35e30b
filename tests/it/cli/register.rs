//! `pingpull register --check-user`: register, then pull that user once as Livefyre would.

use axum::Router;
use pingpull::emulator::Emulator;
use pingpull::pull::{InMemorySource, PullLayer};
use pingpull::{Network, Profile};
use tokio::net::TcpListener;

use crate::cli::commands::{run, stderr, stdout};

fn network(key: &str) -> Network {
    Network::new("example.fyre.co", key).unwrap()
}

/// A Pull endpoint holding `u1`, under `key`; its template.
async fn endpoint(key: &str) -> String {
    let users: InMemorySource = [Profile::builder("u1", "Ada").build()]
        .into_iter()
        .collect();
    let app = Router::new().layer(PullLayer::new("/pull?id={id}", network(key), users).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("{base}/pull?id={{id}}")
}

/// A template at a port nothing listens on (bound, then closed).
async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/pull?id={{id}}")
}

async fn register(base_url: String, template: String, user: &str) -> std::process::Output {
    let user = user.to_owned();
    tokio::task::spawn_blocking(move || {
        run(&[
            "register",
            "--base-url",
            &base_url,
            &template,
            "--check-user",
            &user,
        ])
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_user_pulls_once_after_registering() {
    let emulator = Emulator::start(network("testkeytest")).await.unwrap();
    let good = endpoint("testkeytest").await;
    let output = register(emulator.base_url(), good.clone(), "u1").await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.starts_with(&format!(
            "registered {good}\npulled `u1`: 200, profile of `Ada`"
        )),
        "{out}"
    );
    assert_eq!(emulator.pull_url().as_deref(), Some(good.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_user_exits_1_with_the_reason_for_a_wrong_key() {
    let emulator = Emulator::start(network("testkeytest")).await.unwrap();
    let wrong_key = endpoint("anotherkey1").await;
    let output = register(emulator.base_url(), wrong_key, "u1").await;
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stdout(&output).starts_with("registered "),
        "{}",
        stdout(&output)
    );
    let err = stderr(&output);
    assert!(
        err.starts_with("pingpull: pulling `u1` failed: answered 403, expected 200"),
        "{err}"
    );
    assert!(err.contains("network key"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_user_exits_1_with_the_reason_for_a_closed_port() {
    let emulator = Emulator::start(network("testkeytest")).await.unwrap();
    let closed = closed_port().await;
    let output = register(emulator.base_url(), closed, "u1").await;
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let err = stderr(&output);
    assert!(
        err.starts_with("pingpull: pulling `u1` failed: nothing answers at 127.0.0.1:"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_user_reports_an_invalid_user_id_before_registering() {
    let emulator = Emulator::start(network("testkeytest")).await.unwrap();
    let good = endpoint("testkeytest").await;
    let output = register(emulator.base_url(), good, "a/b").await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).starts_with("pingpull: --check-user `a/b`:"),
        "{}",
        stderr(&output)
    );
    assert_eq!(emulator.pull_url(), None, "nothing registered");
}
