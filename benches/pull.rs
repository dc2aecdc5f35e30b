//! The cost of one pull through the layer vs the inner service alone, and of its parts.
//!
//! ```sh
//! cargo bench --bench pull
//! ```

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use pingpull::pull::{InMemorySource, ProfileSource, PullLayer, source_fn};
use pingpull::token::{self, SystemTokenValidator, TokenCache};
use pingpull::{BoxError, Network, Profile};
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

/// One valid pull through the layer, by source, token cache and signing. `memory` is an
/// [`InMemorySource`] (profile prepared once per change); `per_pull` builds the profile
/// anew on every pull, as a database-backed source does, so the layer validates,
/// renders and signs it each time.
#[divan::bench(args = [
    ("memory", true, true),
    ("memory", false, true),
    ("memory", true, false),
    ("per_pull", true, true),
    ("per_pull", true, false),
])]
fn pull_through_layer(bencher: divan::Bencher<'_, '_>, (source, cache, sign): (&str, bool, bool)) {
    let template = "/livefyre/pull?id={id}";
    let layer = if source == "memory" {
        let users: InMemorySource = [full_profile()].into_iter().collect();
        PullLayer::new(template, network(), users)
    } else {
        let profile = full_profile();
        let per_pull = source_fn(move |user_id: String| {
            let profile = profile.clone();
            async move { Ok::<_, BoxError>((user_id == profile.id).then_some(profile)) }
        });
        PullLayer::new(template, network(), per_pull)
    };
    let layer = layer
        .unwrap()
        .token_cache(if cache { 64 } else { 0 })
        .unwrap()
        .sign_responses(sign);
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

/// Token validation: no cache, a cache hit, a cache miss (verified and inserted), and a
/// bad signature (refused after the HMAC; never cached).
#[divan::bench(args = ["uncached", "hit", "miss", "bad_signature"])]
fn validate_system_token(bencher: divan::Bencher<'_, '_>, case: &str) {
    let network = network();
    let cache = (case != "uncached").then(|| TokenCache::new(64));
    let validator = SystemTokenValidator::new(network.clone()).cache(cache);
    match case {
        "miss" => {
            // A different valid token each time: distinct lifetimes, distinct bytes.
            let mut next = 0u64;
            bencher
                .with_inputs(|| {
                    next += 1;
                    let lifetime =
                        token::SYSTEM_TOKEN_LIFETIME + std::time::Duration::from_secs(next);
                    token::system_token_at(&network, std::time::SystemTime::now(), lifetime)
                })
                .bench_local_refs(|token| validator.validate(token.as_str()).unwrap());
        }
        "bad_signature" => {
            let good = token::system_token(&network);
            let bad = format!("{}A", &good.as_str()[..good.as_str().len() - 1]);
            let bad = if bad == good.as_str() {
                format!("{}B", &bad[..bad.len() - 1])
            } else {
                bad
            };
            bencher.bench_local(|| validator.validate(divan::black_box(&bad)).unwrap_err());
        }
        _ => {
            let token = token::system_token(&network);
            validator.validate(token.as_str()).unwrap();
            bencher.bench_local(|| {
                validator
                    .validate(divan::black_box(token.as_str()))
                    .unwrap()
            });
        }
    }
}

/// What the in-memory source costs per pull: a lookup and a shared pointer to the
/// prepared profile (`load_for_pull`, what the layer calls), or a deep copy (`load`).
#[divan::bench(args = ["load_for_pull", "load"])]
fn in_memory_source_load(bencher: divan::Bencher<'_, '_>, method: &str) {
    let users: InMemorySource = [full_profile()].into_iter().collect();
    let runtime = runtime();
    if method == "load" {
        bencher.bench_local(|| {
            runtime
                .block_on(users.load(divan::black_box("u1")))
                .unwrap()
        });
    } else {
        bencher.bench_local(|| {
            runtime
                .block_on(users.load_for_pull(divan::black_box("u1")))
                .unwrap()
        });
    }
}

/// The check the layer makes before sending a profile.
#[divan::bench]
fn validate_full_profile(bencher: divan::Bencher<'_, '_>) {
    let profile = full_profile();
    bencher.bench_local(|| divan::black_box(&profile).validate().is_ok());
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
