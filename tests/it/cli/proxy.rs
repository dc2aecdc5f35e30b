//! `--proxy URL`, and the environment's proxies without it: `ping`, `register` and
//! `check` go through a local forward proxy (plain http in absolute form, https through
//! CONNECT); `NO_PROXY` sends a host around it; the proxy's password is never printed.

use axum::Router;
use pingpull::emulator::Emulator;
use pingpull::pull::{InMemorySource, PullLayer};
use pingpull::{Network, Profile};
use tokio::net::TcpListener;

use crate::cli::commands::{pingpull, stderr, stdout};
use crate::support::forward_proxy::ForwardProxy;

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

/// Runs `pingpull` with `args` and the environment variables `env` (besides the
/// network's), off the runtime's threads.
async fn run(args: Vec<String>, env: Vec<(&'static str, String)>) -> std::process::Output {
    tokio::task::spawn_blocking(move || pingpull().args(args).envs(env).output().unwrap())
        .await
        .unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_goes_through_the_proxy_given_and_never_prints_its_password() {
    let emulator = Emulator::start(network()).await.unwrap();
    let forward = ForwardProxy::start().await;
    let proxy = forward.url("user:s3cret@");
    let base_url = emulator.base_url();

    let output = run(
        strings(&[
            "ping",
            "--base-url",
            &base_url,
            "--proxy",
            &proxy,
            "-vv",
            "u1",
        ]),
        vec![],
    )
    .await;

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(emulator.pings_received("u1"), 1);
    let seen = forward.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].line,
        format!("POST {base_url}/api/v3_0/user/u1/refresh HTTP/1.1")
    );
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Basic dXNlcjpzM2NyZXQ=")
    );
    let printed = format!("{}{}", stdout(&output), stderr(&output));
    assert!(!printed.contains("s3cret"), "{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_proxy_is_said_without_its_password() {
    let emulator = Emulator::start(network()).await.unwrap();
    let base_url = emulator.base_url();

    // Not an http:// proxy URL: a usage error, before anything is sent.
    let output = run(
        strings(&[
            "ping",
            "--base-url",
            &base_url,
            "--proxy",
            "https://user:s3cret@proxy.internal",
            "u1",
        ]),
        vec![],
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--proxy: proxy URL must be an absolute http:// URL"),
        "{}",
        stderr(&output)
    );
    assert!(!stderr(&output).contains("s3cret"), "{}", stderr(&output));

    // A proxy nothing listens on: registration fails, saying it was the proxy.
    let (_held, closed) = crate::support::refusing_port();
    let proxy = format!("http://user:s3cret@{closed}");
    let output = run(
        strings(&[
            "register",
            "--base-url",
            &base_url,
            "--proxy",
            &proxy,
            "http://127.0.0.1:9/pull?id={id}",
            "-vv",
        ]),
        vec![],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("connecting to the proxy"),
        "{}",
        stderr(&output)
    );
    assert!(!stderr(&output).contains("s3cret"), "{}", stderr(&output));
    assert_eq!(emulator.pull_url(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_flag_the_environment_s_proxy_is_used_and_no_proxy_is_honoured() {
    let emulator = Emulator::start(network()).await.unwrap();
    let forward = ForwardProxy::start().await;
    let base_url = emulator.base_url();
    let ping = |user: &str| strings(&["ping", "--base-url", &base_url, user]);

    let output = run(ping("u1"), vec![("HTTP_PROXY", forward.url(""))]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(emulator.pings_received("u1"), 1);
    assert_eq!(forward.seen().len(), 1, "{:?}", forward.seen());

    // NO_PROXY names the emulator's host: straight to it.
    let output = run(
        ping("u2"),
        vec![
            ("HTTP_PROXY", forward.url("")),
            ("NO_PROXY", "127.0.0.1".to_owned()),
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(emulator.pings_received("u2"), 1);
    assert_eq!(forward.seen().len(), 1, "{:?}", forward.seen());

    // The lowercase form, as curl reads it.
    let output = run(ping("u3"), vec![("http_proxy", forward.url(""))]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(forward.seen().len(), 2, "{:?}", forward.seen());
}

/// A Pull endpoint holding `u1`; its template.
async fn endpoint() -> String {
    let users: InMemorySource = [Profile::builder("u1", "Ada").build()]
        .into_iter()
        .collect();
    let app = Router::new().layer(PullLayer::new("/pull?id={id}", network(), users).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("{base}/pull?id={{id}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_and_check_go_through_the_proxy_given() {
    let emulator = Emulator::start(network()).await.unwrap();
    let forward = ForwardProxy::start().await;
    let proxy = forward.url("");
    let template = endpoint().await;
    let endpoint_base = template.trim_end_matches("/pull?id={id}").to_owned();

    let output = run(
        strings(&[
            "register",
            "--base-url",
            &emulator.base_url(),
            "--proxy",
            &proxy,
            &template,
            "--check-user",
            "u1",
        ]),
        vec![],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(emulator.pull_url().as_deref(), Some(template.as_str()));
    let seen = forward.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[0].line,
        format!("POST {}/ HTTP/1.1", emulator.base_url())
    );
    assert!(
        seen[1]
            .line
            .starts_with(&format!("GET {endpoint_base}/pull?id=u1&lftoken=")),
        "{seen:?}"
    );

    let output = run(
        strings(&["check", &template, "--user", "u1", "--proxy", &proxy]),
        vec![],
    )
    .await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    let seen = forward.seen();
    assert!(seen.len() > 2, "{seen:?}");
    assert!(
        seen[2..].iter().all(
            |seen| seen.line.starts_with(&format!("GET {endpoint_base}/"))
                || seen.line.starts_with(&format!("HEAD {endpoint_base}/"))
        ),
        "{seen:?}"
    );
}

/// https through `--proxy`: a CONNECT tunnel to the TLS front, the CA from `--ca-cert`.
#[cfg(feature = "rustls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_pings_tunnel_through_the_proxy_given() {
    use crate::support::tls_front::{TlsFront, certificates};

    let certificates = certificates("pingpull test CA");
    let emulator = Emulator::start(network()).await.unwrap();
    let front = TlsFront::start(&certificates, emulator.addr()).await;
    let forward = ForwardProxy::start().await;
    let dir = std::env::temp_dir().join(format!("pingpull-cli-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &certificates.ca_pem).unwrap();

    let output = run(
        strings(&[
            "ping",
            "--base-url",
            &front.base_url(),
            "--ca-cert",
            ca_file.to_str().unwrap(),
            "--proxy",
            &forward.url("user:s3cret@"),
            "u1",
        ]),
        vec![],
    )
    .await;
    std::fs::remove_dir_all(&dir).unwrap();

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(emulator.pings_received("u1"), 1);
    let seen = forward.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].line, format!("CONNECT {} HTTP/1.1", front.addr));
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Basic dXNlcjpzM2NyZXQ=")
    );
}
