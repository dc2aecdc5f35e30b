//! No leaks: an end-to-end flow (registration, pulls with good and bad tokens,
//! a Pinger pinging the emulator, the emulator pulling and verifying signatures, a
//! Pinger with the wrong key, the `check` command) with every `tracing` event at TRACE
//! captured in memory; then no issued token, token signature, `X-Profile-Signature`
//! segment or network key may appear in the logs, nor in the `Debug`/`Display` of any
//! public configuration or error value.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pingpull::check::{CheckOptions, check_endpoint};
use pingpull::emulator::{Emulator, EmulatorError, Faults};
use pingpull::ping::{
    ConfigError, Failure, HyperTransport, LivefyreClient, PingError, PingEvent, Pinger,
    RequestError, RetrySchedule,
};
use pingpull::profile::{SIGNATURE_HEADER, read_tolerant, sign_body, verify_body_signature};
use pingpull::pull::{InMemorySource, PullLayer, Rejection};
use pingpull::template::PullUrlTemplate;
use pingpull::token::{self, Claims, SystemTokenValidator, TokenError};
use pingpull::{Network, NetworkError, Profile};

use crate::support::LogCapture;
use tokio::net::TcpListener;

const KEY: &str = "n3tw0rk-KEY-never-logged-7f3a9c";
const OTHER_KEY: &str = "0ther-KEY-also-secret-b81e22";

fn network() -> Network {
    Network::new("example.fyre.co", KEY).unwrap()
}

/// The secrets of a flow: keys, and every token it could have issued between `from`
/// and `to` (whole seconds; the builders are deterministic per second), with their
/// signature segments.
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn new(from: u64, to: u64, user: &str) -> Self {
        let mut secrets = vec![
            ("network key".to_owned(), KEY.to_owned()),
            ("other key".to_owned(), OTHER_KEY.to_owned()),
        ];
        let networks = [
            network(),
            Network::new("example.fyre.co", OTHER_KEY).unwrap(),
            Network::new("example.fyre.co", format!("{KEY}-not-the-key")).unwrap(),
            Network::new("another-network.fyre.co", KEY).unwrap(),
        ];
        for second in from.saturating_sub(5)..=to + 5 {
            let second = second as i64;
            for network in &networks {
                for expires in [second + 86_400, second - 3600, second + 3600] {
                    secrets.push(token_secret(Claims::system(network, expires).sign(network)));
                }
                let user = Claims::user(network, user, "Someone", second + 3600).unwrap();
                secrets.push(token_secret(user.sign(network)));
            }
        }
        Self(secrets)
    }

    fn push_token(&mut self, token: &str) {
        self.0.push(("token".into(), token.to_owned()));
        let signature = token.rsplit('.').next().unwrap();
        if signature.len() >= 16 {
            self.0
                .push(("token signature".into(), signature.to_owned()));
        }
    }

    fn push_profile_signature(&mut self, value: &str) {
        self.0
            .push(("X-Profile-Signature".into(), value.to_owned()));
        for segment in value.split('.').filter(|s| !s.is_empty()) {
            self.0
                .push(("X-Profile-Signature segment".into(), segment.to_owned()));
        }
    }

    /// Panics naming the first secret found in `text`.
    fn assert_absent(&self, what: &str, text: &str) {
        for (kind, secret) in &self.0 {
            assert!(
                !text.contains(secret.as_str()),
                "{what} leaks a {kind}: {secret}\n---\n{text}"
            );
        }
    }
}

fn token_secret(token: token::Token) -> (String, String) {
    ("token".into(), token.into_string())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn get(url: &str) -> (u16, http::HeaderMap, bytes::Bytes) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
    let response = client
        .request(Request::get(url).body(Full::default()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status.as_u16(), parts.headers, body)
}

#[tokio::test]
async fn an_end_to_end_flow_logs_no_secret_at_trace() {
    let captured = LogCapture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    // A current-thread runtime: every task (servers, emulator, Pinger) logs on this thread.
    let _guard = crate::support::traces::install_for_this_thread(subscriber);
    let started = unix_now();
    let mut extra = Secrets(Vec::new());

    // The customer's Pull endpoint on loopback.
    let users: InMemorySource = [
        Profile::builder("u1", "Ada").bio("first").build(),
        Profile::builder("u2", "Grace").build(),
    ]
    .into_iter()
    .collect();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let layer = PullLayer::new("/pull?id={id}", network(), users.clone()).unwrap();
    let server =
        tokio::spawn(async move { axum::serve(listener, Router::new().layer(layer)).await });
    let template = format!("{base}/pull?id={{id}}");

    // Pulls straight at the endpoint: a valid token, then bad ones.
    let valid = token::system_token(&network()).into_string();
    extra.push_token(&valid);
    let parsed = PullUrlTemplate::parse(&template).unwrap();
    let (status, headers, body) = get(&parsed.url_for("u1", &valid)).await;
    assert_eq!(status, 200);
    let signature = headers[SIGNATURE_HEADER].to_str().unwrap().to_owned();
    verify_body_signature(&network(), &signature, &body).unwrap();
    extra.push_profile_signature(&signature);
    let now = unix_now() as i64;
    let wrong_key = Network::new("example.fyre.co", OTHER_KEY).unwrap();
    for bad in [
        token::system_token(&wrong_key).into_string(),
        Claims::system(&network(), now - 10)
            .sign(&network())
            .into_string(),
        Claims::user(&network(), "u1", "Ada", now + 60)
            .unwrap()
            .sign(&network())
            .into_string(),
        format!("{valid}x"),
    ] {
        extra.push_token(&bad);
        let (status, _, body) = get(&parsed.url_for("u1", &bad)).await;
        assert_eq!((status, body.len()), (403, 0));
    }

    // The emulator, registration through the Pinger's client, a ping, a pull.
    let emulator = Emulator::builder(network()).start().await.unwrap();
    let pinger = Pinger::builder(network())
        .base_url(emulator.base_url())
        .retry_schedule(RetrySchedule::new([Duration::from_millis(20)]).jitter(0.0))
        .spawn()
        .unwrap();
    pinger.client().register_pull_url(&template).await.unwrap();
    pinger.ping("u1").unwrap();
    let profile = emulator
        .wait_for_profile("u1", Duration::from_secs(10), |p| p.display_name == "Ada")
        .await
        .unwrap();
    assert_eq!(profile.bio.as_deref(), Some("first"));
    let pull = emulator.user("u1").unwrap().last_pull.unwrap();
    assert_eq!(pull.signature_verified, Some(true));
    // An update, pinged and pulled again.
    users
        .insert(Profile::builder("u1", "Ada L").build())
        .unwrap();
    pinger.ping("u1").unwrap();
    emulator
        .wait_for_profile("u1", Duration::from_secs(10), |p| p.display_name == "Ada L")
        .await
        .unwrap();
    for body in [
        Profile::builder("u1", "Ada").bio("first").build().to_json(),
        Profile::builder("u1", "Ada L").build().to_json(),
    ] {
        extra.push_profile_signature(&sign_body(&network(), body.as_bytes()));
    }

    // A Pinger with the wrong key: 403s, logged as a configuration fault.
    let misconfigured = Pinger::builder(wrong_key.clone())
        .base_url(emulator.base_url())
        .probe_every(Duration::from_secs(3600))
        .spawn()
        .unwrap();
    let mut events = misconfigured.events();
    misconfigured.ping("u2").unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(event, PingEvent::Unauthorized { .. }), "{event:?}");
    let sync = LivefyreClient::new(wrong_key, &emulator.base_url())
        .unwrap()
        .sync_user("u2")
        .await;
    assert_eq!(sync, Err(RequestError::Unauthorized));

    // The conformance check, which sends every kind of bad token.
    let report =
        check_endpoint(&CheckOptions::new(network(), &template, "u1").unknown_user("nobody"))
            .await
            .unwrap();
    assert!(report.passed(), "{report}");

    let shutdown = pinger.shutdown(Duration::from_secs(5)).await;
    let _ = misconfigured.shutdown(Duration::ZERO).await;
    server.abort();

    let logs = captured.text();
    // The flow really was logged at TRACE, from each component.
    for target in ["pingpull::pull", "pingpull::ping", "pingpull::emulator"] {
        assert!(logs.contains(target), "nothing from {target}:\n{logs}");
    }
    let mut secrets = Secrets::new(started, unix_now(), "u1");
    secrets.0.extend(extra.0);
    secrets.assert_absent("the logs", &logs);
    let values = format!(
        "{report}\n{report:?}\n{shutdown:?}\n{:?}\n{:?}\n{:?}\n{emulator:?}\n{pinger:?}\n{misconfigured:?}",
        emulator.user("u1"),
        emulator.events(),
        emulator.user("u2"),
    );
    secrets.assert_absent("the flow's values", &values);
}

#[tokio::test]
async fn debug_and_display_of_public_types_hold_no_secret() {
    let started = unix_now();
    let network = network();
    let token = token::system_token(&network);
    let mut secrets = Secrets::new(started, started + 1, "u1");
    secrets.push_token(token.as_str());

    let layer = PullLayer::new("/pull?id={id}", network.clone(), InMemorySource::new()).unwrap();
    let pull = tower::Layer::layer(
        &layer,
        tower::service_fn(|_: Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(()))
        }),
    );
    // A port this test holds and nothing listens on: requests to it are refused.
    let (_held, closed) = crate::support::refusing_port();
    let closed_base = format!("http://{closed}");
    let closed_template = format!("http://{closed}/p?id={{id}}");
    let builder = Pinger::builder(network.clone()).base_url(&closed_base);
    let builder_debug = format!("{builder:?} {builder:#?}");
    let pinger = builder.spawn().unwrap();
    let client = LivefyreClient::new(network.clone(), &closed_base).unwrap();
    let emulator_builder = Emulator::builder(network.clone()).faults(Faults::none());
    let emulator_builder_debug = format!("{emulator_builder:?}");
    let emulator = emulator_builder.start().await.unwrap();
    let validator = SystemTokenValidator::new(network.clone());
    let wrong_key_error = validator
        .validate(
            &token::system_token(&Network::new("example.fyre.co", OTHER_KEY).unwrap())
                .into_string(),
        )
        .unwrap_err();

    let mut shown = vec![
        format!("{network:?} {network:#?}"),
        format!("{token:?}"),
        format!("{validator:?}"),
        format!("{layer:?} {layer:#?}"),
        format!("{pull:?}"),
        builder_debug,
        format!("{pinger:?}"),
        format!("{client:?}"),
        format!("{:?}", HyperTransport::new()),
        emulator_builder_debug,
        format!("{emulator:?}"),
        format!(
            "{:?}",
            CheckOptions::new(network.clone(), &closed_template, "u1")
        ),
        format!("{:?}", Claims::system(&network, 1)),
        format!("{wrong_key_error:?} {wrong_key_error}"),
    ];
    let token_errors = [
        TokenError::TooLong { len: 5000 },
        TokenError::Malformed {
            reason: "expected 3 segments",
        },
        TokenError::WrongAlgorithm,
        TokenError::BadSignature,
        TokenError::MissingClaim { claim: "expires" },
        TokenError::InvalidClaim { claim: "expires" },
        TokenError::WrongNetwork {
            expected: network.name().into(),
        },
        TokenError::NotSystemToken,
        TokenError::Expired {
            expires: 1.0,
            now: 2.0,
        },
    ];
    for error in &token_errors {
        shown.push(format!("{error:?} {error}"));
        let rejection = Rejection::InvalidToken(error.clone());
        shown.push(format!("{rejection:?} {rejection}"));
    }
    // Every validation error the corpus of real bad tokens produces, too.
    for bad in [
        format!("{}x", token.as_str()),
        token.as_str().replace('.', ""),
        format!("{}.{}", token.as_str(), token.as_str()),
    ] {
        let error = validator.validate(&bad).unwrap_err();
        shown.push(format!("{error:?} {error}"));
    }
    for rejection in [
        Rejection::UriTooLong { len: 9000 },
        Rejection::MissingToken,
        Rejection::RepeatedToken,
        Rejection::UndecodableToken,
        Rejection::SourceFailed("db down".into()),
    ] {
        shown.push(format!("{rejection:?} {rejection}"));
    }
    for error in [
        NetworkError::EmptyKey,
        Network::new("example.com", KEY).unwrap_err(),
        Network::new("ex ample.fyre.co", KEY).unwrap_err(),
        Network::new(".fyre.co", KEY).unwrap_err(),
    ] {
        shown.push(format!("{error:?} {error}"));
    }
    for error in [
        ConfigError::BaseUrl("ftp://x".into()),
        ConfigError::HttpsNeedsRustls,
        ConfigError::OutOfRange {
            setting: "concurrency",
            expected: "at least 1",
        },
        ConfigError::NoRuntime,
    ] {
        shown.push(format!("{error:?} {error}"));
    }
    for error in [
        RequestError::Unauthorized,
        RequestError::Timeout,
        RequestError::Status(http::StatusCode::BAD_GATEWAY),
        RequestError::Transport("connection refused".into()),
        client.sync_user("a/b").await.unwrap_err(),
        client.register_pull_url("no-id").await.unwrap_err(),
        // A real transport failure: nothing listens on the held port.
        client.sync_user("u1").await.unwrap_err(),
        client
            .register_pull_url(&closed_template)
            .await
            .unwrap_err(),
    ] {
        shown.push(format!("{error:?} {error}"));
    }
    for error in [
        pinger.ping("..").unwrap_err(),
        PingError::QueueFull { max_pending: 1 },
        PingError::ShuttingDown,
    ] {
        shown.push(format!("{error:?} {error}"));
    }
    for failure in [
        Failure::Status(403),
        Failure::Timeout,
        Failure::Connection("reset".into()),
        Failure::TooOld,
    ] {
        shown.push(format!("{failure:?} {failure}"));
    }
    for error in [
        EmulatorError::OutOfRange {
            setting: "max_users",
            expected: "at least 1",
        },
        Emulator::builder(network.clone())
            .listen(emulator.addr())
            .start()
            .await
            .unwrap_err(),
    ] {
        shown.push(format!("{error:?} {error}"));
    }
    let read_error = read_tolerant(br#"{"id":"u2"}"#, Some("u1")).unwrap_err();
    shown.push(format!("{read_error:?} {read_error}"));
    let signature_error = verify_body_signature(&network, "x..y", b"{}").unwrap_err();
    shown.push(format!("{signature_error:?} {signature_error}"));
    let _ = pinger.shutdown(Duration::ZERO).await;

    for text in &shown {
        secrets.assert_absent("a Debug/Display", text);
        assert!(!text.is_empty());
    }
}
