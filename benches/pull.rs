//! The cost of one pull through the layer vs the inner service alone, and of its parts.
//!
//! ```sh
//! cargo bench --bench pull
//! ```

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use pingpull::pull::{InMemorySource, PullLayer};
use pingpull::token::{self, SystemTokenValidator};
use pingpull::{Network, Profile};
use tower::{Layer, ServiceExt, service_fn};

#[allow(dead_code, unused_imports)] // the examples' listening helpers are not needed here
#[path = "../examples/common/mod.rs"]
mod common;

fn main() {
    divan::main();
}

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

/// The examples' `u1`: a profile with every field, about 800 bytes of JSON.
fn full_profile() -> Profile {
    common::demo_users()
        .get("u1")
        .expect("the demo users include u1")
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
