//! docs/pull.md's claims about the Pull endpoint that the endpoint's own tests do not
//! check: the verified-token cache and `leeway` set on the layer, `Cache-Control:
//! no-store` on every kind of answer, and the documented defaults.

use std::convert::Infallible;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use pingpull::clock::ManualClock;
use pingpull::pull::{self, PullLayer, Rejection, source_fn};
use pingpull::token::{self, Claims, TokenError};
use pingpull::{BoxError, Network, Profile};
use tower::{ServiceBuilder, ServiceExt, service_fn};

const NOW: u64 = 1_700_000_000;
const TEMPLATE: &str = "https://site.example/livefyre/pull?id={id}";

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

fn set(clock: &ManualClock, unix: u64) {
    clock.set(std::time::UNIX_EPOCH + Duration::from_secs(unix));
}

fn token_expiring_at(expires: u64) -> String {
    Claims::system(&network(), expires as i64)
        .sign(&network())
        .into_string()
}

fn layer(clock: &ManualClock) -> PullLayer {
    let source = source_fn(|id: String| async move {
        match id.as_str() {
            "broken" => Err(BoxError::from("database is down")),
            "panics" => panic!("source bug"),
            "slow" => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(None)
            }
            _ => Ok(Some(Profile::builder(id.as_str(), "Someone").build())),
        }
    });
    PullLayer::new(TEMPLATE, network(), source)
        .unwrap()
        .clock(clock.clone())
}

async fn inner(_: Request<String>) -> Result<Response<String>, Infallible> {
    Ok(Response::new(String::new()))
}

/// The status, `Cache-Control` and rejection of one request through `layer`.
async fn answer(
    layer: &PullLayer,
    method: Method,
    uri: &str,
) -> (StatusCode, Option<String>, Option<Rejection>) {
    let service = ServiceBuilder::new()
        .layer(layer.clone())
        .service(service_fn(inner));
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(String::new())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    let cache_control = response
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned());
    let rejection = response.extensions().get::<Rejection>().cloned();
    (response.status(), cache_control, rejection)
}

async fn pull_with(layer: &PullLayer, token: &str) -> (StatusCode, Option<Rejection>) {
    let uri = format!("/livefyre/pull?id=u1&lftoken={token}");
    let (status, _, rejection) = answer(layer, Method::GET, &uri).await;
    (status, rejection)
}

fn expired(rejection: &Option<Rejection>) -> bool {
    matches!(
        rejection,
        Some(Rejection::InvalidToken(TokenError::Expired { .. }))
    )
}

/// A token accepted (and so cached) is refused once it expires: a hit still checks
/// expiry. The same with the cache off (`token_cache(0)`) and with a small cache.
#[tokio::test]
async fn a_cached_token_that_expires_is_refused() {
    for capacity in [None, Some(0), Some(1)] {
        let clock = ManualClock::at_unix(NOW);
        let mut layer = layer(&clock);
        if let Some(capacity) = capacity {
            layer = layer.token_cache(capacity).unwrap();
        }
        let token = token_expiring_at(NOW + 10);
        for _ in 0..3 {
            assert_eq!(
                pull_with(&layer, &token).await.0,
                StatusCode::OK,
                "{capacity:?}"
            );
        }
        set(&clock, NOW + 10); // `expires >= now`: still valid at the instant itself
        assert_eq!(
            pull_with(&layer, &token).await.0,
            StatusCode::OK,
            "{capacity:?}"
        );
        set(&clock, NOW + 11);
        let (status, rejection) = pull_with(&layer, &token).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "cache {capacity:?}");
        assert!(expired(&rejection), "cache {capacity:?}: {rejection:?}");
    }
}

/// `leeway` set on the layer reaches its validator, on a cache hit and with the cache
/// off, whichever setting comes first.
#[tokio::test]
async fn leeway_on_the_layer_accepts_tokens_just_past_expiry() {
    for cache_first in [true, false] {
        for capacity in [0, 64] {
            let clock = ManualClock::at_unix(NOW);
            let layer = if cache_first {
                layer(&clock)
                    .token_cache(capacity)
                    .and_then(|layer| layer.leeway(Duration::from_secs(30)))
            } else {
                layer(&clock)
                    .leeway(Duration::from_secs(30))
                    .and_then(|layer| layer.token_cache(capacity))
            }
            .unwrap();
            let token = token_expiring_at(NOW);
            let case = format!("cache {capacity}, cache set first: {cache_first}");
            assert_eq!(pull_with(&layer, &token).await.0, StatusCode::OK, "{case}");
            set(&clock, NOW + 30);
            assert_eq!(pull_with(&layer, &token).await.0, StatusCode::OK, "{case}");
            set(&clock, NOW + 31);
            let (_, rejection) = pull_with(&layer, &token).await;
            assert!(expired(&rejection), "{case}: {rejection:?}");
        }
    }
}

#[tokio::test]
async fn without_leeway_a_token_one_second_past_expiry_is_refused() {
    let clock = ManualClock::at_unix(NOW + 1);
    let layer = layer(&clock);
    let (_, rejection) = pull_with(&layer, &token_expiring_at(NOW)).await;
    assert!(expired(&rejection), "{rejection:?}");
}

/// "Every answer carries `Cache-Control: no-store`": the 405, 500 and 503 too, and 414
/// and 400, which `endpoint.rs` checks only for their status.
#[tokio::test(start_paused = true)]
async fn every_refusal_carries_no_store() {
    let clock = ManualClock::at_unix(NOW);
    let layer = layer(&clock);
    let token = token_expiring_at(NOW + 3600);
    let long = format!("/livefyre/pull?id={}", "a".repeat(9 * 1024));
    let cases = [
        (Method::POST, "/livefyre/pull?id=u1".to_owned(), 405),
        (
            Method::GET,
            format!("/livefyre/pull?id=panics&lftoken={token}"),
            500,
        ),
        (
            Method::GET,
            format!("/livefyre/pull?id=broken&lftoken={token}"),
            503,
        ),
        (
            Method::GET,
            format!("/livefyre/pull?id=slow&lftoken={token}"),
            503,
        ),
        (Method::GET, long, 414),
        (
            Method::GET,
            format!("/livefyre/pull?id=u%31&lftoken={token}"),
            400,
        ),
        (Method::GET, "/livefyre/pull?id=u1".to_owned(), 403),
        (
            Method::GET,
            format!("/livefyre/pull?id=u1&lftoken={token}"),
            200,
        ),
    ];
    for (method, uri, expected) in cases {
        let (status, cache_control, _) = answer(&layer, method.clone(), &uri).await;
        assert_eq!(status.as_u16(), expected, "{method} {uri:.60}");
        assert_eq!(
            cache_control.as_deref(),
            Some("no-store"),
            "{method} {uri:.60}"
        );
    }
}

/// The defaults docs/pull.md states for the layer: timeout 5 s, `max_uri_len` 8 KiB, a
/// 64-token cache, tokens over 4 KiB refused unread, and `Retry-After` on a 503.
#[test]
fn the_layer_defaults_are_the_documented_ones() {
    assert_eq!(pull::DEFAULT_TIMEOUT, Duration::from_secs(5));
    assert_eq!(pull::DEFAULT_MAX_URI_LEN, 8 * 1024);
    assert_eq!(token::DEFAULT_TOKEN_CACHE_CAPACITY, 64);
    assert_eq!(token::MAX_TOKEN_LEN, 4 * 1024);
}

/// 8 KiB of path and query is served; one byte more is 414.
#[tokio::test]
async fn the_default_uri_limit_is_eight_kib() {
    let clock = ManualClock::at_unix(NOW);
    let layer = layer(&clock);
    let prefix = "/livefyre/pull?id=u1&pad=";
    let exact = format!("{prefix}{}", "a".repeat(8 * 1024 - prefix.len()));
    assert_eq!(exact.len(), 8 * 1024);
    let (status, _, rejection) = answer(&layer, Method::GET, &exact).await;
    assert_ne!(status, StatusCode::URI_TOO_LONG, "{rejection:?}");
    let over = format!("{exact}a");
    let (status, _, _) = answer(&layer, Method::GET, &over).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG);
}
