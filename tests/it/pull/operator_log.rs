//! What an operator sees when the Pull endpoint refuses tokens because of a
//! misconfiguration: one WARN per kind and minute (with the count left out), naming the
//! likely cause; nothing above DEBUG for a missing token; one INFO a minute while a
//! previous key is still in use.

use std::time::Duration;

use pingpull::clock::{Clock, ManualClock};
use pingpull::pull::{InMemorySource, PullLayer, Rejection};
use pingpull::token::{self, Claims};
use pingpull::{Network, Profile};
use tower::{Layer, ServiceExt, service_fn};

use crate::support::LogCapture;

const TEMPLATE: &str = "https://site.example/livefyre/pull?id={id}";

fn network(key: &str) -> Network {
    Network::new("example.fyre.co", key).unwrap()
}

fn layer(network: Network, clock: &ManualClock) -> PullLayer {
    let users = InMemorySource::new();
    users.insert(Profile::builder("u1", "Ada").build()).unwrap();
    PullLayer::new(TEMPLATE, network, users)
        .unwrap()
        .clock(clock.clone())
}

/// One pull through the layer, in process; the status it answered.
async fn pull(layer: &PullLayer, lftoken: &str) -> u16 {
    let app = layer.layer(service_fn(|_request: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    }));
    let url = layer.template().url_for("u1", lftoken);
    let request = http::Request::get(url).body(()).unwrap();
    app.oneshot(request).await.unwrap().status().as_u16()
}

fn lines_with<'a>(logs: &'a str, needle: &str) -> Vec<&'a str> {
    logs.lines().filter(|line| line.contains(needle)).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn a_wrong_key_gives_one_warning_a_minute_with_the_count_left_out() {
    let capture = LogCapture::default();
    let _guard = capture.install(tracing::Level::INFO);
    let clock = ManualClock::at_unix(1_700_000_000);
    let layer = layer(network("the-key-here"), &clock);
    let livefyres = token::system_token_at(
        &network("livefyres-key"),
        clock.now(),
        Duration::from_secs(86_400),
    );
    for _ in 0..1000 {
        assert_eq!(pull(&layer, livefyres.as_str()).await, 403);
    }
    let logs = capture.text();
    let warnings = lines_with(&logs, "probably differs from Livefyre's");
    assert_eq!(warnings.len(), 1, "{logs}");
    assert!(warnings[0].contains("WARN") && warnings[0].contains("suppressed=0"));

    clock.advance(Duration::from_secs(60));
    assert_eq!(pull(&layer, livefyres.as_str()).await, 403);
    let logs = capture.text();
    let warnings = lines_with(&logs, "probably differs from Livefyre's");
    assert_eq!(warnings.len(), 2, "{logs}");
    assert!(warnings[1].contains("suppressed=999"), "{}", warnings[1]);
    assert!(!logs.contains("livefyres-key") && !logs.contains(livefyres.as_str()));
}

#[tokio::test(flavor = "current_thread")]
async fn another_network_and_a_skewed_clock_have_their_own_warnings() {
    let capture = LogCapture::default();
    let _guard = capture.install(tracing::Level::INFO);
    let clock = ManualClock::at_unix(1_700_000_000);
    let ours = network("k");
    let layer = layer(ours.clone(), &clock);
    let other = Network::new("other.fyre.co", "k").unwrap();
    let for_other = token::system_token_at(&other, clock.now(), Duration::from_secs(3600));
    assert_eq!(pull(&layer, for_other.as_str()).await, 403);
    let expired = Claims::system(&ours, 1_700_000_000 - 7200).sign(&ours);
    assert_eq!(pull(&layer, expired.as_str()).await, 403);
    // Neither a missing token nor one that expired a moment ago is an operator's matter.
    let just_expired = Claims::system(&ours, 1_700_000_000 - 5).sign(&ours);
    assert_eq!(pull(&layer, just_expired.as_str()).await, 403);
    assert_eq!(pull(&layer, "").await, 403);

    let logs = capture.text();
    let other_line = lines_with(&logs, "is for another network");
    assert_eq!(other_line.len(), 1, "{logs}");
    assert!(
        other_line[0].contains("token_network=\"other.fyre.co\""),
        "{}",
        other_line[0]
    );
    let skew = lines_with(&logs, "check this server's clock");
    assert_eq!(skew.len(), 1, "{logs}");
    assert!(
        skew[0].contains("token_expires=1699992800") && skew[0].contains("server_clock=1700000000")
    );
    assert_eq!(lines_with(&logs, "WARN").len(), 2, "{logs}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_wrong_key_and_another_network_each_warn_within_the_same_minute() {
    let capture = LogCapture::default();
    let _guard = capture.install(tracing::Level::INFO);
    let clock = ManualClock::at_unix(1_700_000_000);
    let layer = layer(network("the-key-here"), &clock);
    let lifetime = Duration::from_secs(3600);
    let wrong_key = token::system_token_at(&network("livefyres-key"), clock.now(), lifetime);
    let other = Network::new("other.fyre.co", "the-key-here").unwrap();
    let for_other = token::system_token_at(&other, clock.now(), lifetime);
    assert_eq!(pull(&layer, wrong_key.as_str()).await, 403);
    clock.advance(Duration::from_secs(30));
    assert_eq!(pull(&layer, for_other.as_str()).await, 403);
    let logs = capture.text();
    let warnings = lines_with(&logs, "WARN");
    assert_eq!(warnings.len(), 2, "{logs}");
    assert!(
        warnings[0].contains("probably differs from Livefyre's"),
        "{logs}"
    );
    assert!(warnings[1].contains("is for another network"), "{logs}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_previous_key_is_accepted_and_reported_once_a_minute() {
    let capture = LogCapture::default();
    let _guard = capture.install(tracing::Level::INFO);
    let clock = ManualClock::at_unix(1_700_000_000);
    let rotating = network("new").with_previous_keys(["old"]).unwrap();
    let layer = layer(rotating, &clock);
    let lifetime = Duration::from_secs(3600);
    let old = token::system_token_at(&network("old"), clock.now(), lifetime);
    let new = token::system_token_at(&network("new"), clock.now(), lifetime);
    let third = token::system_token_at(&network("third"), clock.now(), lifetime);
    for _ in 0..3 {
        assert_eq!(pull(&layer, old.as_str()).await, 200);
    }
    assert_eq!(pull(&layer, new.as_str()).await, 200);
    assert_eq!(pull(&layer, third.as_str()).await, 403);
    let logs = capture.text();
    let info = lines_with(&logs, "signed with a previous network key");
    assert_eq!(info.len(), 1, "{logs}");
    assert!(info[0].contains("INFO"));
}

#[tokio::test(flavor = "current_thread")]
async fn each_pull_is_a_span_with_its_status_and_without_the_token() {
    let capture = LogCapture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(capture.clone())
        .finish();
    let _guard = crate::support::traces::install_for_this_thread(subscriber);
    let clock = ManualClock::at_unix(1_700_000_000);
    let ours = network("k");
    let layer = layer(ours.clone(), &clock);
    let valid = token::system_token_at(&ours, clock.now(), Duration::from_secs(3600));
    assert_eq!(pull(&layer, valid.as_str()).await, 200);
    assert_eq!(pull(&layer, "").await, 403);

    let logs = capture.text();
    let spans = lines_with(&logs, "pingpull.pull{");
    assert_eq!(spans.len(), 2, "{logs}");
    assert!(
        spans[0].contains("http.response.status_code=200"),
        "{}",
        spans[0]
    );
    assert!(
        spans[0].contains("url.path=\"/livefyre/pull\"") && spans[0].contains("user_id=\"u1\"")
    );
    assert!(
        spans[1].contains("http.response.status_code=403"),
        "{}",
        spans[1]
    );
    assert!(
        !logs.contains(valid.as_str()) && !logs.contains("lftoken"),
        "{logs}"
    );
}

#[cfg(feature = "emulator")]
#[tokio::test(flavor = "current_thread")]
async fn a_refused_registration_says_what_to_check() {
    use pingpull::emulator::Emulator;
    use pingpull::ping::{LivefyreClient, RequestError};

    let capture = LogCapture::default();
    let _guard = capture.install(tracing::Level::INFO);
    let emulator = Emulator::builder(network("livefyres-key"))
        .start()
        .await
        .unwrap();
    let client = LivefyreClient::new(network("our-key"), &emulator.base_url()).unwrap();
    let refused = client.register_pull_url(TEMPLATE).await;
    assert_eq!(refused, Err(RequestError::Unauthorized));
    let logs = capture.text();
    let warning = lines_with(&logs, "registering the Pull URL failed");
    assert_eq!(warning.len(), 1, "{logs}");
    assert!(warning[0].contains("WARN") && warning[0].contains("check the network name and key"));
    assert!(!logs.contains("our-key"), "{logs}");
}

/// `check`'s probes (another key, another network, expired) are refused as they must be,
/// but logged at DEBUG: a real misconfigured pull right after a check still gets its
/// warning.
#[cfg(feature = "emulator")]
#[tokio::test(flavor = "current_thread")]
async fn a_check_leaves_the_warnings_to_the_real_pulls_that_follow() {
    use pingpull::check::{CheckOptions, check_endpoint};

    let capture = LogCapture::default();
    let _guard = capture.install(tracing::Level::DEBUG);
    // Stopped at the real time: check's tokens are made with it, and no throttle's minute
    // passes during the test however slow the machine.
    let clock = ManualClock::new(std::time::SystemTime::now());
    let ours = network("the-key-here");
    let layer = layer(ours.clone(), &clock);
    let app = axum::Router::new().layer(layer.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let options = CheckOptions::new(
        ours.clone(),
        format!("{base}/livefyre/pull?id={{id}}"),
        "u1",
    );
    let report = check_endpoint(&options).await.unwrap();
    assert!(report.passed(), "{report}");
    let logs = capture.text();
    assert_eq!(lines_with(&logs, " WARN ").len(), 0, "{logs}");
    let probes = lines_with(&logs, "refused a conformance probe's token");
    assert_eq!(probes.len(), 3, "{logs}");
    assert!(probes.iter().all(|line| line.contains("DEBUG")), "{logs}");

    // Real pulls, as a misconfigured Livefyre would send them: unmarked, and refused
    // with the same 403 as the probes.
    let lifetime = Duration::from_secs(3600);
    let wrong_key = token::system_token_at(&network("livefyres-key"), clock.now(), lifetime);
    let other = Network::new("other.fyre.co", "the-key-here").unwrap();
    let for_other = token::system_token_at(&other, clock.now(), lifetime);
    let unix_now = clock.now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let long_expired = Claims::system(&ours, unix_now.as_secs() as i64 - 7200).sign(&ours);
    for real in [&wrong_key, &for_other, &long_expired] {
        assert_eq!(pull(&layer, real.as_str()).await, 403);
    }
    let logs = capture.text();
    let warnings = lines_with(&logs, " WARN ");
    assert_eq!(warnings.len(), 3, "{logs}");
    assert!(warnings[0].contains("probably differs from Livefyre's"));
    assert!(warnings[1].contains("is for another network"));
    assert!(warnings[2].contains("check this server's clock"));
    assert!(
        warnings.iter().all(|line| line.contains("suppressed=0")),
        "{logs}"
    );
}

/// The mark changes how a refusal is logged, and nothing else: a marked token is
/// refused with the same answer as the same token unmarked, and a marked valid token is
/// accepted.
#[tokio::test(flavor = "current_thread")]
async fn a_probe_mark_changes_only_the_log_level_of_its_own_refusal() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let ours = network("the-key-here");
    let layer = layer(ours.clone(), &clock);
    let expires = 1_700_003_600;
    let marked = crate::support::forge(
        r#"{"typ":"JWT","alg":"HS256"}"#,
        &format!(
            r#"{{"domain":"example.fyre.co","user_id":"system","display_name":"system","expires":{expires},"pingpull_probe":true}}"#
        ),
        "livefyres-key",
    );
    let unmarked = Claims::system(&ours, expires).sign(&network("livefyres-key"));
    let answer = |lftoken: String| {
        let layer = layer.clone();
        async move {
            let app = layer.layer(service_fn(|_request: http::Request<()>| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
            }));
            let url = layer.template().url_for("u1", &lftoken);
            let response = app
                .oneshot(http::Request::get(url).body(()).unwrap())
                .await
                .unwrap();
            let rejection = response.extensions().get::<Rejection>().cloned();
            let headers = response.headers().clone();
            let status = response.status();
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            (status, headers, body, rejection)
        }
    };
    let (marked, unmarked) = (answer(marked).await, answer(unmarked.into_string()).await);
    assert_eq!(marked.0, 403);
    assert_eq!(marked, unmarked);
    let accepted = crate::support::forge(
        r#"{"typ":"JWT","alg":"HS256"}"#,
        &format!(
            r#"{{"domain":"example.fyre.co","user_id":"system","display_name":"system","expires":{expires},"pingpull_probe":true}}"#
        ),
        "the-key-here",
    );
    assert_eq!(pull(&layer, &accepted).await, 200);
}

/// A layer whose source fails for `down` and serves a profile of another user for
/// `wrong` (so it cannot be served), under `clock`.
fn failing_layer(clock: &ManualClock) -> PullLayer {
    let source = pingpull::pull::source_fn(|id: String| async move {
        match id.as_str() {
            "down" => Err("database is down".into()),
            _ => Ok(Some(Profile::builder("someone-else", "Eve").build())),
        }
    });
    PullLayer::new(TEMPLATE, network("testkeytest"), source)
        .unwrap()
        .clock(clock.clone())
}

async fn pull_user(layer: &PullLayer, user: &str, clock: &ManualClock) -> u16 {
    let app = layer.layer(service_fn(|_request: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    }));
    let lftoken = token::system_token_at(
        &network("testkeytest"),
        clock.now(),
        Duration::from_secs(86_400),
    );
    let url = layer.template().url_for(user, lftoken.as_str());
    let request = http::Request::get(url).body(()).unwrap();
    app.oneshot(request).await.unwrap().status().as_u16()
}

/// A source down while Livefyre pulls many users is one WARN a minute, and a profile
/// that cannot be served one ERROR a minute, each with the count left out; every pull
/// is still at DEBUG.
#[tokio::test(flavor = "current_thread")]
async fn a_failing_source_gives_one_line_a_minute_per_kind() {
    let capture = LogCapture::default();
    let _guard = capture.install(tracing::Level::DEBUG);
    let clock = ManualClock::at_unix(1_700_000_000);
    let layer = failing_layer(&clock);
    for _ in 0..100 {
        assert_eq!(pull_user(&layer, "down", &clock).await, 503);
        assert_eq!(pull_user(&layer, "u1", &clock).await, 500);
    }
    let logs = capture.text();
    let warnings = lines_with(&logs, "the profile source failed");
    assert_eq!(warnings.len(), 1, "{logs}");
    assert!(
        warnings[0].contains("WARN")
            && warnings[0].contains("suppressed=0")
            && warnings[0].contains("database is down"),
        "{}",
        warnings[0]
    );
    let errors = lines_with(&logs, "the profile could not be served");
    assert_eq!(errors.len(), 1, "{logs}");
    assert!(
        errors[0].contains("ERROR") && errors[0].contains("suppressed=0"),
        "{}",
        errors[0]
    );
    assert_eq!(
        lines_with(&logs, " DEBUG ")
            .iter()
            .filter(|l| l.contains("outcome="))
            .count(),
        198,
        "{logs}"
    );

    clock.advance(Duration::from_secs(60));
    assert_eq!(pull_user(&layer, "down", &clock).await, 503);
    assert_eq!(pull_user(&layer, "u1", &clock).await, 500);
    let logs = capture.text();
    let warnings = lines_with(&logs, "the profile source failed");
    assert_eq!(warnings.len(), 2, "{logs}");
    assert!(warnings[1].contains("suppressed=99"), "{}", warnings[1]);
    let errors = lines_with(&logs, "the profile could not be served");
    assert_eq!(errors.len(), 2, "{logs}");
    assert!(errors[1].contains("suppressed=99"), "{}", errors[1]);
}
