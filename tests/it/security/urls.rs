//! URL building: for every id the validator accepts, the ping URL (docs/protocol.md §4)
//! and the pull URL built from a template (§6, as the emulator and `check` build it)
//! decode back to exactly that id, in exactly its place.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, Uri};
use pingpull::clock::ManualClock;
use pingpull::ping::{LivefyreClient, Transport};
use pingpull::pull::{PullLayer, source_fn};
use pingpull::template::PullUrlTemplate;
use pingpull::token::Claims;
use pingpull::{BoxError, Network, Profile, user_id};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tower::{Layer, ServiceExt, service_fn};

use crate::support::percent_decode;

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

/// Ids the path validator accepts, biased towards dots, dashes and underscores.
fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[A-Za-z0-9_.-]{1,40}",
        1 => "[._-]{1,6}",
        1 => "[.]{1,5}",
    ]
    .prop_filter("a path id", |id| user_id::validate_for_path(id).is_ok())
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// The shared strict decoder, as text.
fn decode(s: &str) -> Option<String> {
    String::from_utf8(percent_decode(s)?).ok()
}

/// Records the requests a [`LivefyreClient`] sends, answering 200.
#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<Request<Bytes>>>>);

#[async_trait::async_trait]
impl Transport for Recorder {
    async fn send(&self, request: Request<Bytes>) -> Result<Response<()>, BoxError> {
        self.0.lock().unwrap().push(request);
        Ok(Response::new(()))
    }
}

#[test]
fn ping_urls_carry_exactly_the_id_in_the_user_segment() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    for (base, prefix) in [
        ("http://127.0.0.1:9", ""),
        ("http://h.example/prefix", "/prefix"),
        ("https://example.quill.fyre.co/", ""),
    ] {
        let recorder = Recorder::default();
        let client = LivefyreClient::with_transport(network(), base, recorder.clone()).unwrap();
        runner(1_000)
            .run(&id(), |id| {
                rt.block_on(client.sync_user(&id)).unwrap();
                let request = recorder.0.lock().unwrap().pop().unwrap();
                let uri = request.uri();
                prop_assert_eq!(uri.query(), None, "the token travels in the body");
                let path = uri.path();
                let rest = path
                    .strip_prefix(&format!("{prefix}/api/v3_0/user/"))
                    .and_then(|rest| rest.strip_suffix("/refresh"));
                prop_assert!(rest.is_some(), "{}", path);
                let segment = rest.unwrap();
                prop_assert!(!segment.contains('/'), "{}", path);
                prop_assert_eq!(decode(segment), Some(id.clone()));
                // And the id is not spelled in a way a server would normalise away.
                prop_assert!(segment != "." && segment != "..");
                Ok(())
            })
            .unwrap();
    }
}

#[test]
fn nothing_is_sent_for_ids_the_validator_refuses() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let recorder = Recorder::default();
    let client =
        LivefyreClient::with_transport(network(), "http://127.0.0.1:9", recorder.clone()).unwrap();
    for bad in [
        ".", "..", "", "a/b", "a b", "a%2Fb", "zoë", "a?b", "a#b", "u\n",
    ] {
        assert!(rt.block_on(client.sync_user(bad)).is_err(), "{bad:?}");
    }
    assert!(recorder.0.lock().unwrap().is_empty());
}

/// Checks `url` holds `id` exactly where `template` puts it, and `token` as `lftoken`.
fn check_pull_url(template: &str, url: &str, id: &str, token: &str) -> Result<(), TestCaseError> {
    let uri: Uri = url
        .parse()
        .map_err(|e| TestCaseError::fail(format!("{url}: {e}")))?;
    let tpl: Uri = template.replace("{id}", "ID").parse().unwrap();
    prop_assert_eq!(uri.scheme(), tpl.scheme());
    prop_assert_eq!(uri.authority(), tpl.authority());
    let path: Vec<&str> = uri.path().split('/').collect();
    let tpl_path: Vec<&str> = tpl.path().split('/').collect();
    prop_assert_eq!(path.len(), tpl_path.len(), "{}", url);
    for (got, want) in path.iter().zip(&tpl_path) {
        match want.split_once("ID") {
            Some((before, after)) => {
                let raw = got.strip_prefix(before).and_then(|g| g.strip_suffix(after));
                prop_assert_eq!(raw.and_then(decode), Some(id.to_owned()), "{}", url);
            }
            None => prop_assert_eq!(got, want),
        }
    }
    let query = uri.query().unwrap_or_default();
    let pairs: Vec<(&str, &str)> = query
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .collect();
    let tpl_pairs: Vec<(&str, &str)> = tpl
        .query()
        .map(|q| {
            q.split('&')
                .map(|p| p.split_once('=').unwrap_or((p, "")))
                .collect()
        })
        .unwrap_or_default();
    // The template's parameters in order, then `lftoken` last.
    prop_assert_eq!(pairs.len(), tpl_pairs.len() + 1, "{}", url);
    for ((name, value), (want_name, want_value)) in pairs.iter().zip(&tpl_pairs) {
        prop_assert_eq!(name, want_name);
        if *want_value == "ID" {
            prop_assert_eq!(decode(value), Some(id.to_owned()), "{}", url);
        } else {
            prop_assert_eq!(value, want_value);
        }
    }
    let (name, value) = pairs[pairs.len() - 1];
    prop_assert_eq!(name, "lftoken");
    prop_assert_eq!(decode(value), Some(token.to_owned()));
    Ok(())
}

#[test]
fn pull_urls_decode_to_the_id_in_its_place_and_the_endpoint_agrees() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let token = Claims::system(&network(), 1_700_086_400)
        .sign(&network())
        .into_string();
    for template in [
        "http://site.example/livefyre/pull?id={id}",
        "https://site.example/some_path/?a=1&user={id}&b=x",
        "http://site.example:8080/users/{id}/livefyre",
        "https://site.example/users/{id}.json?format=v1",
        "http://site.example/u-{id}-x/p#fragment",
    ] {
        let parsed = PullUrlTemplate::parse(template).unwrap();
        // The Pull endpoint for the same template is the other decoder.
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = seen.clone();
        let source = source_fn(move |id: String| {
            recorded.lock().unwrap().push(id.clone());
            async move { Ok(Some(Profile::builder(id, "Url").build())) }
        });
        let app = PullLayer::new(template, network(), source)
            .unwrap()
            .clock(ManualClock::at_unix(1_700_000_000))
            .layer(service_fn(|_: Request<()>| async {
                Ok::<_, Infallible>(Response::new(String::new()))
            }));
        let template_no_fragment = template.split('#').next().unwrap();
        runner(1_000)
            .run(&id(), |id| {
                let url = parsed.url_for(&id, &token);
                check_pull_url(template_no_fragment, &url, &id, &token)?;
                let request = Request::get(url.as_str()).body(()).unwrap();
                let response = rt.block_on(app.clone().oneshot(request)).unwrap();
                prop_assert_eq!(response.status(), 200, "{}", url);
                prop_assert_eq!(seen.lock().unwrap().pop(), Some(id));
                Ok(())
            })
            .unwrap();
    }
}
