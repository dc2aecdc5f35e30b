//! The Pull endpoint's query parsing, through the public layer: arbitrary bytes as the
//! query (and as the path-style id segment), with and without a valid token in front.
//! Never panics; the status is one the endpoint documents; a profile is only ever
//! loaded for an id that appears verbatim in the request.
#![no_main]

use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};

use http::{Request, Response, Uri};
use libfuzzer_sys::fuzz_target;
use pingpull::clock::ManualClock;
use pingpull::pull::{PullLayer, source_fn};
use pingpull::token::Claims;
use pingpull::{Network, Profile};
use tower::{Layer, ServiceExt, service_fn};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    token: String,
    seen: Arc<Mutex<Vec<String>>>,
    query: PullLayer,
    path: PullLayer,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let network = Network::new("example.fyre.co", "testkeytest").expect("valid network");
        let token = Claims::system(&network, 1_700_086_400)
            .sign(&network)
            .into_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let layer = |template: &str| {
            let seen = seen.clone();
            PullLayer::new(
                template,
                network.clone(),
                source_fn(move |id: String| {
                    seen.lock().unwrap().push(id.clone());
                    async move { Ok(Some(Profile::builder(id, "Fuzz").build())) }
                }),
            )
            .expect("valid template")
            .clock(ManualClock::at_unix(1_700_000_000))
        };
        Fixture {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("runtime"),
            token,
            query: layer("/pull?id={id}"),
            path: layer("/users/{id}/livefyre"),
            seen,
        }
    })
}

fn call(layer: &PullLayer, uri: Uri) -> u16 {
    let fixture = fixture();
    let app = layer.layer(service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    }));
    let request = Request::get(uri).body(()).expect("request");
    let response = fixture
        .runtime
        .block_on(app.oneshot(request))
        .expect("infallible");
    response.status().as_u16()
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let mut targets: Vec<(Vec<u8>, &PullLayer)> = Vec::new();
    for prefix in [
        &b"/pull?"[..],
        format!("/pull?lftoken={}&", fixture.token).as_bytes(),
    ] {
        let mut uri = prefix.to_vec();
        uri.extend_from_slice(data);
        targets.push((uri, &fixture.query));
    }
    let mut uri = b"/users/".to_vec();
    uri.extend_from_slice(data);
    uri.extend_from_slice(format!("/livefyre?lftoken={}", fixture.token).as_bytes());
    targets.push((uri, &fixture.path));

    for (bytes, layer) in targets {
        let Ok(uri) = Uri::from_maybe_shared(bytes) else {
            continue;
        };
        fixture.seen.lock().unwrap().clear();
        let status = call(layer, uri.clone());
        assert!(
            matches!(status, 200 | 400 | 403 | 404 | 414),
            "{status} for {uri}"
        );
        let target = uri.path_and_query().map_or("", |pq| pq.as_str());
        for id in fixture.seen.lock().unwrap().iter() {
            assert!(
                !id.is_empty() && target.contains(id.as_str()),
                "loaded {id:?} for {uri}"
            );
            assert!(pingpull::user_id::validate_for_path(id).is_ok(), "{id:?}");
        }
    }
});
