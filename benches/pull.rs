//! The cost of one pull through the layer vs the inner service alone, and of its parts.
//!
//! ```sh
//! cargo bench --bench pull
//! ```

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use pingpull::profile::{DisplayRules, EmailNotifications, Name, NotificationFrequency};
use pingpull::pull::{InMemorySource, PullLayer};
use pingpull::token::{self, SystemTokenValidator};
use pingpull::{Network, Profile};
use tower::{Layer, ServiceExt, service_fn};

fn main() {
    divan::main();
}

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

/// A profile with every field, about 600 bytes of JSON.
fn full_profile() -> Profile {
    Profile::builder("u1", "Ada Lovelace")
        .name(Name {
            formatted: Some("Ada King, Countess of Lovelace".into()),
            first: Some("Ada".into()),
            middle: Some("Augusta".into()),
            last: Some("King".into()),
        })
        .email("ada@example.com")
        .image_url("https://cdn.example.com/avatars/u1.png?v=1")
        .profile_url("https://www.example.com/users/u1")
        .settings_url("https://www.example.com/users/u1/settings")
        .tags(["staff", "beta_testers"])
        .autofollow_conversations(true)
        .email_notifications(EmailNotifications::all(NotificationFrequency::Often))
        .location("London")
        .bio("Wrote the first program.")
        .websites(["https://ada.example.com", "https://blog.example.com/ada"])
        .display_rules(DisplayRules {
            bio: Some(true),
            location: Some(true),
            gender: Some(false),
            name: Some(true),
            image: Some(true),
            remote_profile_url: Some(true),
        })
        .moderator(true)
        .gravatar_disabled(false)
        .build()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// The inner service alone, answering the same profile bytes.
#[divan::bench]
fn inner_service_alone(bencher: divan::Bencher<'_, '_>) {
    let body = Bytes::from(full_profile().to_json());
    let inner = service_fn(move |_request: Request<()>| {
        let body = body.clone();
        async move { Ok::<_, Infallible>(Response::new(http_body_util::Full::new(body))) }
    });
    let runtime = runtime();
    let uri = format!(
        "/livefyre/pull?id=u1&lftoken={}",
        token::system_token(&network()).as_str()
    );
    bencher.bench_local(|| {
        let request = Request::get(uri.as_str()).body(()).unwrap();
        runtime.block_on(inner.clone().oneshot(request)).unwrap()
    });
}

/// One valid pull through the layer (in-memory source, signing on).
#[divan::bench]
fn pull_through_layer(bencher: divan::Bencher<'_, '_>) {
    let users: InMemorySource = [full_profile()].into_iter().collect();
    let layer = PullLayer::new("/livefyre/pull?id={id}", network(), users).unwrap();
    let service = layer.layer(service_fn(|_request: Request<()>| async {
        Ok::<_, Infallible>(Response::new(http_body_util::Full::new(Bytes::new())))
    }));
    let runtime = runtime();
    let uri = format!(
        "/livefyre/pull?id=u1&lftoken={}",
        token::system_token(&network()).as_str()
    );
    bencher.bench_local(|| {
        let request = Request::get(uri.as_str()).body(()).unwrap();
        let response = runtime.block_on(service.clone().oneshot(request)).unwrap();
        assert_eq!(response.status(), 200);
        response
    });
}

#[divan::bench]
fn validate_system_token(bencher: divan::Bencher<'_, '_>) {
    let validator = SystemTokenValidator::new(network());
    let token = token::system_token(&network());
    bencher.bench_local(|| {
        validator
            .validate(divan::black_box(token.as_str()))
            .unwrap()
    });
}

#[divan::bench]
fn serialise_full_profile(bencher: divan::Bencher<'_, '_>) {
    let profile = full_profile();
    bencher.bench_local(|| divan::black_box(&profile).to_json());
}

#[divan::bench]
fn sign_profile_body(bencher: divan::Bencher<'_, '_>) {
    let body = full_profile().to_json();
    let network = network();
    bencher
        .bench_local(|| pingpull::profile::sign_body(&network, divan::black_box(body.as_bytes())));
}
