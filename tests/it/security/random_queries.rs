//! Random queries: 10 000 query strings of 0 to 16 KiB, over an alphabet rich in
//! `%`, `+`, `&`, `=`, `;`, NUL, non-ASCII and invalid UTF-8 (percent-encoded, and raw
//! where `http::Uri` allows), sent through the layer with `oneshot`. The status is always
//! one the endpoint documents, nothing panics, and no two different raw ids ever reach
//! the profile source as the same id.

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use pingpull::clock::ManualClock;
use pingpull::pull::{Pull, PullLayer, Rejection, source_fn};
use pingpull::token::Claims;
use pingpull::{Network, Profile};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tower::util::ServiceFn;
use tower::{Layer, ServiceExt, service_fn};

use crate::support::percent_decode;

const NOW: u64 = 1_700_000_000;
const MAX_QUERY: usize = 16 * 1024;

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

fn token() -> String {
    Claims::system(&network(), 1_700_086_400)
        .sign(&network())
        .into_string()
}

/// The pieces queries are made of: separators, escapes good and bad, NUL, raw and
/// encoded non-ASCII, invalid UTF-8, names that decode to `id`/`lftoken`, dot segments.
const PIECES: &[&str] = &[
    "&",
    "&",
    "&",
    "=",
    "=",
    ";",
    "+",
    "%",
    "%0",
    "%00",
    "%zz",
    "%2",
    "%25",
    "%26",
    "%3D",
    "%2B",
    "%3B",
    "%20",
    "%2F",
    "%2E",
    "%2e",
    "%41",
    "%75",
    "%31",
    "%C3%A9",
    "%FF",
    "%C3",
    "%C3%28",
    "%ED%A0%80",
    "%F0%9F%98%80",
    "%C0%AE",
    "é",
    "山",
    "😀",
    "id",
    "id=",
    "i%64=",
    "%69d=",
    "ID=",
    "id%3D",
    "lftoken=",
    "lf%74oken=",
    "a",
    "u",
    "u1",
    "1",
    ".",
    "..",
    "-",
    "_",
    "~",
    "!",
    "'",
    "*",
    "(",
    ")",
    "/",
    "?",
    "{",
    "}",
    "|",
    "^",
    "`",
    "[",
    "]",
    ":",
    "@",
    "$",
    ",",
];

/// A query: optional valid token and id up front, then random pieces, then optional
/// filler repeating one piece up to 16 KiB.
#[derive(Debug, Clone)]
struct Query {
    with_token: bool,
    id: Option<String>,
    pieces: Vec<String>,
    filler: (String, usize),
}

impl Query {
    fn render(&self, token: &str) -> String {
        let mut q = String::new();
        if self.with_token {
            q.push_str("lftoken=");
            q.push_str(token);
            q.push('&');
        }
        if let Some(id) = &self.id {
            q.push_str("id=");
            q.push_str(id);
            q.push('&');
        }
        for piece in &self.pieces {
            q.push_str(piece);
        }
        let (fill, len) = &self.filler;
        while q.len() + fill.len() <= (*len).min(MAX_QUERY) {
            q.push_str(fill);
        }
        q
    }
}

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(PIECES).prop_map(str::to_owned),
        1 => "[A-Za-z0-9_.-]{1,12}",
    ]
}

fn query() -> impl Strategy<Value = Query> {
    (
        prop::bool::weighted(0.8),
        prop::option::weighted(
            0.6,
            prop::collection::vec(piece(), 1..4).prop_map(|p| p.concat()),
        ),
        prop::collection::vec(piece(), 0..24),
        (piece(), prop_oneof![8 => Just(0usize), 2 => 0..=MAX_QUERY]),
    )
        .prop_map(|(with_token, id, pieces, filler)| Query {
            with_token,
            id,
            pieces,
            filler,
        })
}

type Inner =
    ServiceFn<fn(Request<String>) -> std::future::Ready<Result<Response<String>, Infallible>>>;

fn teapot(_: Request<String>) -> std::future::Ready<Result<Response<String>, Infallible>> {
    let mut response = Response::new("inner".to_owned());
    *response.status_mut() = StatusCode::IM_A_TEAPOT;
    std::future::ready(Ok(response))
}

/// A layer over `template` whose source records every id it is asked for; users whose
/// id starts with `u` exist.
fn app(template: &str, seen: Arc<Mutex<Vec<String>>>) -> Pull<Inner> {
    let source = source_fn(move |id: String| {
        seen.lock().unwrap().push(id.clone());
        async move {
            Ok(id
                .starts_with('u')
                .then(|| Profile::builder(id, "Random").build()))
        }
    });
    let layer = PullLayer::new(template, network(), source)
        .unwrap()
        .clock(ManualClock::at_unix(NOW));
    layer.layer(service_fn(teapot as _))
}

/// The raw values of every parameter whose name decodes to `name`.
fn raw_values<'a>(query: &'a str, name: &str) -> Vec<&'a str> {
    query
        .split('&')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key).as_deref() == Some(name.as_bytes())).then_some(value)
        })
        .collect()
}

struct Outcome {
    status: StatusCode,
    rejection: Option<Rejection>,
    body: bytes::Bytes,
    cache_control: Option<String>,
}

fn call(rt: &tokio::runtime::Runtime, app: &Pull<Inner>, uri: Uri) -> Outcome {
    rt.block_on(async {
        let request = Request::get(uri).body(String::new()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        Outcome {
            status: parts.status,
            rejection: parts.extensions.get::<Rejection>().cloned(),
            cache_control: parts
                .headers
                .get("cache-control")
                .map(|v| v.to_str().unwrap().to_owned()),
            body: body.collect().await.unwrap().to_bytes(),
        }
    })
}

/// Checks one answer of the endpoint and records which raw id reached the source as
/// which id; `raw_id` is where the oracle found the id in the request.
fn check(
    outcome: &Outcome,
    seen: &Mutex<Vec<String>>,
    raw_id: Option<&str>,
    ids: &mut HashMap<String, String>,
    raws: &mut HashMap<String, String>,
) -> Result<(), TestCaseError> {
    let status = outcome.status.as_u16();
    prop_assert!(
        matches!(status, 200 | 400 | 403 | 404 | 414),
        "status {}",
        status
    );
    prop_assert_eq!(outcome.cache_control.as_deref(), Some("no-store"));
    if status != 200 {
        prop_assert!(outcome.body.is_empty());
        prop_assert_eq!(
            outcome.rejection.as_ref().map(|r| r.status()),
            Some(outcome.status)
        );
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    prop_assert!(seen.len() <= 1);
    prop_assert_eq!(seen.len() == 1, matches!(status, 200 | 404));
    if let Some(id) = seen.first() {
        let raw = raw_id.expect("the source was asked for an id the request does not carry");
        // Strict decoding refuses escapes an id never needs, so the source sees the raw
        // text itself; and a raw id always maps to the same id and back.
        prop_assert_eq!(raw, id.as_str());
        prop_assert_eq!(ids.entry(raw.to_owned()).or_insert_with(|| id.clone()), id);
        prop_assert_eq!(
            raws.entry(id.clone()).or_insert_with(|| raw.to_owned()),
            raw
        );
        if status == 200 {
            let profile: serde_json::Value = serde_json::from_slice(&outcome.body).unwrap();
            prop_assert_eq!(profile["id"].as_str(), Some(id.as_str()));
        }
    }
    Ok(())
}

#[test]
fn ten_thousand_random_queries_get_documented_statuses_and_distinct_ids() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let token = token();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = app("/pull?id={id}", seen.clone());
    let ids = RefCell::new(HashMap::new());
    let raws = RefCell::new(HashMap::new());
    let statuses = RefCell::new(HashMap::<u16, usize>::new());
    let mut runner = TestRunner::new(Config {
        cases: 10_000,
        failure_persistence: None,
        max_global_rejects: 5_000,
        ..Config::default()
    });
    runner
        .run(&query(), |q| {
            let query = q.render(&token);
            // Raw bytes `http::Uri` refuses (controls, space, `#`...) are not in the
            // alphabet; anything left that it refuses is skipped, not sent.
            let uri = format!("/pull?{query}")
                .parse::<Uri>()
                .map_err(|_| TestCaseError::reject("not a URI"))?;
            let outcome = call(&rt, &app, uri);
            *statuses
                .borrow_mut()
                .entry(outcome.status.as_u16())
                .or_default() += 1;
            let id_values = raw_values(&query, "id");
            let raw_id = (id_values.len() == 1).then(|| id_values[0]);
            if query.len() + "/pull?".len() > pingpull::pull::DEFAULT_MAX_URI_LEN {
                prop_assert_eq!(outcome.status, StatusCode::URI_TOO_LONG);
            }
            check(
                &outcome,
                &seen,
                raw_id,
                &mut ids.borrow_mut(),
                &mut raws.borrow_mut(),
            )
        })
        .unwrap();
    // The generator must reach every outcome, or the properties above say little.
    let statuses = statuses.into_inner();
    for status in [200, 400, 403, 404, 414] {
        assert!(
            statuses.get(&status).copied().unwrap_or(0) >= 20,
            "{statuses:?}"
        );
    }
    assert!(
        ids.borrow().len() >= 100,
        "{} distinct ids",
        ids.borrow().len()
    );
}

#[test]
fn random_path_segments_never_alias_ids_either() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let token = token();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = app("/users/{id}/livefyre", seen.clone());
    let ids = RefCell::new(HashMap::new());
    let raws = RefCell::new(HashMap::new());
    let mut runner = TestRunner::new(Config {
        cases: 2_000,
        failure_persistence: None,
        max_global_rejects: 5_000,
        ..Config::default()
    });
    let segment = prop::collection::vec(piece(), 0..8).prop_map(|p| p.concat());
    runner
        .run(&segment, |segment| {
            let uri = format!("/users/{segment}/livefyre?lftoken={token}")
                .parse::<Uri>()
                .map_err(|_| TestCaseError::reject("not a URI"))?;
            // What the URI parser kept as the path decides whether the request is ours.
            let path = uri.path().to_owned();
            let raw = path
                .strip_prefix("/users/")
                .and_then(|rest| rest.strip_suffix("/livefyre"))
                .filter(|raw| !raw.contains('/'));
            let outcome = call(&rt, &app, uri);
            if raw.is_none() {
                prop_assert_eq!(outcome.status, StatusCode::IM_A_TEAPOT);
                prop_assert!(seen.lock().unwrap().is_empty());
                return Ok(());
            }
            check(
                &outcome,
                &seen,
                raw,
                &mut ids.borrow_mut(),
                &mut raws.borrow_mut(),
            )
        })
        .unwrap();
    assert!(
        ids.borrow().len() >= 20,
        "{} distinct ids",
        ids.borrow().len()
    );
}
