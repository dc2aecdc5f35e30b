//! What an operator sees when the Pull endpoint refuses tokens because of a
//! misconfiguration: one WARN per kind and minute (with the count left out), naming the
//! likely cause; nothing above DEBUG for a missing token; one INFO a minute while a
//! previous key is still in use.

use std::time::Duration;

use pingpull::clock::{Clock, ManualClock};
use pingpull::pull::{InMemorySource, PullLayer};
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
