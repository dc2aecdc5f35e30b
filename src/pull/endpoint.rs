//! What the endpoint does with one request, in docs/protocol.md §6's order: route, method,
//! token, id, then the profile source.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tracing::{Instrument, Level};

use super::Rejection;
use super::config::Config;
use super::prepared::{BODY_CAPACITY, Loaded};
use super::query::QueryPairs;
use crate::percent;
use crate::profile::{SIGNATURE_HEADER, sign_body};
use crate::template::IdPosition;
use crate::user_id;

/// The query parameter carrying Livefyre's token.
use crate::template::LFTOKEN;

/// What to do with a request.
pub(crate) enum Decision {
    /// Not the pull path: the inner service answers.
    PassThrough,
    /// Answered without the source (a rejection).
    Respond(Response<Bytes>),
    /// Token and id are good: load the profile.
    Load(Load),
}

impl Decision {
    pub(crate) fn for_request<B>(config: &Config, request: &Request<B>) -> Self {
        let Some(raw_path_id) = config.route.matches(request.uri().path()) else {
            return Self::PassThrough;
        };
        let started = Instant::now();
        let span = pull_span(config, request);
        let _entered = span.enter();
        match check(config, request, raw_path_id, started) {
            Ok(mut load) => {
                span.record("user_id", load.user_id.as_str());
                load.span = span.clone();
                Self::Load(load)
            }
            Err(rejection) => {
                let head = request.method() == Method::HEAD;
                let response = rejection_response(config, rejection, None, started, head);
                record_status(&span, response.status());
                Self::Respond(response)
            }
        }
    }
}

/// The pull's span, `pingpull.pull`, in OpenTelemetry's terms for an HTTP server span
/// (as tracing-opentelemetry exports it): its kind, its name (`GET /livefyre/pull`), the
/// route (the template's path), the server's address and port, the scheme; never the
/// query, which holds the token. Field values are only computed when a subscriber wants
/// the span.
fn pull_span<B>(config: &Config, request: &Request<B>) -> tracing::Span {
    let route = config.template.path();
    // Inside the macro, so that the Host look-up runs only when a subscriber wants the span.
    tracing::info_span!(
        target: "pingpull::pull",
        "pingpull.pull",
        "otel.kind" = "server",
        "otel.name" = %SpanName(request.method(), route),
        "otel.status_code" = tracing::field::Empty,
        "http.request.method" = %request.method(),
        "http.route" = route,
        "url.path" = request.uri().path(),
        "url.scheme" = request.uri().scheme_str().unwrap_or("http"),
        "server.address" = server_address(request).0,
        "server.port" = server_address(request).1,
        "http.response.status_code" = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
        user_id = tracing::field::Empty,
    )
}

/// Records the answer's status on the pull's span; a 5xx is an error of the server's
/// (`error.type` the status, `otel.status_code` ERROR), a 4xx is the client's.
fn record_status(span: &tracing::Span, status: StatusCode) {
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("error.type", status.as_str());
        span.record("otel.status_code", "ERROR");
    }
}

/// `GET /livefyre/pull`: the method and the route, as OpenTelemetry names server spans.
struct SpanName<'a>(&'a Method, &'a str);

impl std::fmt::Display for SpanName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.0, self.1)
    }
}

/// The host and port the request was sent to: the URI's authority (absolute form), else
/// the `Host` header; the port from the scheme when not given.
fn server_address<B>(request: &Request<B>) -> (&str, Option<u16>) {
    let authority = request
        .uri()
        .authority()
        .map(http::uri::Authority::as_str)
        .or_else(|| {
            request
                .headers()
                .get(http::header::HOST)
                .and_then(|host| host.to_str().ok())
        });
    let Some(authority) = authority else {
        return ("", None);
    };
    let default_port = match request.uri().scheme_str() {
        Some("https") => 443,
        _ => 80,
    };
    // `[::1]:8080`, `example.com:8080`, `example.com`; an IPv6 address without its
    // brackets, as OpenTelemetry writes it.
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port.parse().ok()),
        _ => (authority, Some(default_port)),
    };
    let host = host
        .strip_prefix('[')
        .and_then(|host| host.strip_suffix(']'))
        .unwrap_or(host);
    (host, port)
}

/// The checks of a request on the pull path, in docs/protocol.md §6's order: length, method,
/// token, id. The first that fails is the answer.
fn check<B>(
    config: &Config,
    request: &Request<B>,
    raw_path_id: Option<&str>,
    started: Instant,
) -> Result<Load, Rejection> {
    let target_len = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if target_len > config.max_uri_len {
        return Err(Rejection::UriTooLong { len: target_len });
    }
    let head = request.method() == Method::HEAD;
    if request.method() != Method::GET && !head {
        return Err(Rejection::MethodNotAllowed);
    }
    let query = request.uri().query().unwrap_or_default();
    // The token comes first: nothing about the user is revealed without it.
    check_token(config, query)?;
    let raw_id = find_raw_id(&config.route.id, query, raw_path_id)?;
    Ok(Load {
        user_id: parse_id(raw_id)?,
        head,
        started,
        span: tracing::Span::none(),
    })
}

/// Exactly one `lftoken`, percent-decoded, a valid system token of the network. A refusal
/// that looks like a misconfiguration, and a token of a previous key, are told to the
/// operator (rate-limited).
fn check_token(config: &Config, query: &str) -> Result<(), Rejection> {
    let token = QueryPairs::new(query)
        .only(LFTOKEN)
        .map_err(|()| Rejection::RepeatedToken)?
        .ok_or(Rejection::MissingToken)?;
    let token = percent::decode(token).map_err(|_| Rejection::UndecodableToken)?;
    let validator = &config.validator;
    match validator.validate(&token) {
        Ok(expiry) => {
            config.metrics.token_key(expiry.previous_key());
            if expiry.previous_key() {
                config
                    .operator_log
                    .accepted_with_previous_key(validator.now());
            }
            Ok(())
        }
        Err(error) => {
            let network = validator.network();
            config
                .operator_log
                .refused(&token, &error, network, validator.now());
            Err(Rejection::InvalidToken(error))
        }
    }
}

/// The id as it stands in the request, still escaped: in the path (found by the route)
/// or as the one value of the template's query parameter.
fn find_raw_id<'a>(
    position: &IdPosition,
    query: &'a str,
    raw_path_id: Option<&'a str>,
) -> Result<&'a str, Rejection> {
    match (position, raw_path_id) {
        (_, Some(raw)) => Ok(raw),
        (IdPosition::Query { name }, None) => QueryPairs::new(query)
            .only(name)
            .map_err(|()| Rejection::RepeatedId)?
            .ok_or(Rejection::MissingId),
        (IdPosition::Path { .. }, None) => Err(Rejection::MissingId),
    }
}

/// Strict id decoding: refuse bad escapes, invalid UTF-8, invalid ids, and escapes an id
/// never needs (so `u%31` and `u1` are not both accepted as `u1`).
fn parse_id(raw: &str) -> Result<String, Rejection> {
    let id = percent::decode(raw).map_err(Rejection::UndecodableId)?;
    user_id::validate_for_path(&id).map_err(Rejection::InvalidId)?;
    if raw.contains('%') {
        return Err(Rejection::EncodedId);
    }
    Ok(id.into_owned())
}

/// A request whose token and id passed: what is left needs the profile source.
pub(crate) struct Load {
    user_id: String,
    head: bool,
    started: Instant,
    /// The pull's `pingpull.pull` span, which the loading runs in.
    span: tracing::Span,
}

impl Load {
    /// Loads, checks and answers the profile, inside the pull's span.
    pub(crate) fn run(self, config: Arc<Config>) -> impl Future<Output = Response<Bytes>> {
        let span = self.span.clone();
        async move {
            let response = self.answer(config).await;
            record_status(&tracing::Span::current(), response.status());
            response
        }
        .instrument(span)
    }

    async fn answer(self, config: Arc<Config>) -> Response<Bytes> {
        let Self {
            user_id,
            head,
            started,
            span: _,
        } = self;
        let loading = CatchPanic {
            future: config.source.load_for_pull(&user_id),
        };
        let rejection = match tokio::time::timeout(config.timeout, loading).await {
            Err(_elapsed) => Rejection::SourceTimedOut,
            Ok(Err(Panicked)) => Rejection::SourcePanicked,
            Ok(Ok(Err(error))) => Rejection::SourceFailed(error.to_string()),
            Ok(Ok(Ok(None))) => Rejection::UnknownUser,
            Ok(Ok(Ok(Some(loaded)))) => match Rendered::of(loaded, &user_id, &config) {
                Ok(rendered) => {
                    return profile_response(&config, rendered, head, &user_id, started);
                }
                Err(rejection) => rejection,
            },
        };
        rejection_response(&config, rejection, Some(&user_id), started, head)
    }
}

/// A profile's body and signature, ready to send.
struct Rendered {
    body: Bytes,
    signature: Option<HeaderValue>,
}

impl Rendered {
    /// Checks what the source loaded for `user_id`; renders and signs a plain profile,
    /// takes a prepared one's kept bytes and signature.
    fn of(loaded: Loaded, user_id: &str, config: &Config) -> Result<Self, Rejection> {
        let network = config.validator.network();
        match loaded {
            Loaded::Prepared(prepared) => {
                // Validated when it was prepared.
                if prepared.profile().id != user_id {
                    return Err(Rejection::IdMismatch);
                }
                Ok(Self {
                    body: prepared.body().clone(),
                    signature: config.sign.then(|| prepared.signature(network)).flatten(),
                })
            }
            Loaded::Profile(profile) => {
                profile.validate().map_err(Rejection::InvalidProfile)?;
                if profile.id != user_id {
                    return Err(Rejection::IdMismatch);
                }
                // One allocation of a size that fits most profiles, instead of growing
                // from small.
                let mut body = Vec::with_capacity(BODY_CAPACITY);
                profile.write_json(&mut body);
                let signature = config
                    .sign
                    .then(|| HeaderValue::try_from(sign_body(network, &body)).ok())
                    .flatten();
                Ok(Self {
                    body: Bytes::from(body),
                    signature,
                })
            }
        }
    }
}

fn profile_response(
    config: &Config,
    Rendered { body, signature }: Rendered,
    head: bool,
    user_id: &str,
    started: Instant,
) -> Response<Bytes> {
    // Headers inserted directly: the response builder re-checks each one.
    let mut headers = http::HeaderMap::with_capacity(6);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    if let Some(signature) = signature {
        headers.insert(HeaderName::from_static(SIGNATURE_HEADER), signature);
    }
    let body = if head { Bytes::new() } else { body };
    config.metrics.request("ok", started);
    tracing::event!(
        target: "pingpull::pull",
        Level::DEBUG,
        outcome = "ok",
        status = 200,
        user_id,
        latency_us = elapsed_us(started),
    );
    let mut response = Response::new(body);
    *response.headers_mut() = headers;
    response
}

/// The answer to a rejected request, carrying the rejection in its extensions: an empty
/// body, except a 500's JSON saying why the profile was not served (only a request with
/// a valid token gets that far; HEAD gets its headers without it).
fn rejection_response(
    config: &Config,
    rejection: Rejection,
    user_id: Option<&str>,
    started: Instant,
    head: bool,
) -> Response<Bytes> {
    let status = rejection.status();
    config.metrics.request(rejection.as_str(), started);
    config.operator_log.rejected(
        &rejection,
        status.as_u16(),
        user_id,
        elapsed_us(started),
        config.validator.now(),
    );
    let explained = rejection.unservable_body().map(Bytes::from);
    let length = explained.as_ref().map_or(0, Bytes::len);
    let body = match explained {
        Some(body) if !head => body,
        _ => Bytes::new(),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    if length > 0 {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    match rejection {
        Rejection::MethodNotAllowed => {
            headers.insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        Rejection::SourceFailed(_) | Rejection::SourceTimedOut => {
            headers.insert(RETRY_AFTER, config.retry_after.clone());
        }
        _ => {}
    }
    response.extensions_mut().insert(rejection);
    response
}

fn elapsed_us(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The source panicked while loading.
struct Panicked;

pin_project! {
    /// Turns a panic inside the source's future into an error, so one bad profile
    /// cannot take the connection (or the server) down.
    struct CatchPanic<F> {
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, Panicked>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = self.project().future;
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(Panicked)),
        }
    }
}
