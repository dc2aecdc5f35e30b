//! The emulator's HTTP side: pings, registration, inspection.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{self, Next};
use axum::routing::{any, get, post};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use serde::Serialize;
use tokio::net::TcpListener;
use tracing::Level;

use super::head_timeout::{HeadTimeoutListener, HeadTimer};
use super::records::EmulatorEvent;
use super::state::now;
use super::{Shared, form, paging, studio};
use crate::template::PullUrlTemplate;
use crate::{percent, user_id};

/// Request bodies longer than this are refused (a ping's is about 300 bytes).
const MAX_BODY: usize = 64 * 1024;

/// What the emulator's server sends back.
pub(super) type ServerResponse = Response<Full<Bytes>>;

/// Serves until `stop` resolves, then stops accepting and lets the connections finish
/// what they are doing (idle ones close at once).
pub(super) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    let listener = HeadTimeoutListener::new(listener, shared.read_timeout);
    let app = router(shared).into_make_service_with_connect_info::<HeadTimer>();
    // With graceful shutdown the future never fails.
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await;
}

fn router(shared: Arc<Shared>) -> Router {
    // Other methods on a known path are 404, as they always were, not axum's 405.
    Router::new()
        .route("/api/v3_0/user/{id}/refresh", any(ping))
        .route("/api/v3.0/user/{id}/refresh", any(ping))
        .route("/", post(register).fallback(not_found))
        .route("/profiles", get(profiles).fallback(not_found))
        .route("/profiles/{*id}", get(profile).fallback(not_found))
        .route("/events", get(events).fallback(not_found))
        .route("/stats", get(stats).fallback(not_found))
        .route("/studio/users", get(studio_users).fallback(not_found))
        .fallback(unmatched)
        .layer(middleware::from_fn(time_heads_only))
        .with_state(shared)
}

/// Pauses the connection's head timer while a request is handled (its body has its own
/// timeout) and restarts it for the next request.
async fn time_heads_only(request: Request, next: Next) -> axum::response::Response {
    let timer = request
        .extensions()
        .get::<ConnectInfo<HeadTimer>>()
        .map(|info| info.0.clone());
    if let Some(timer) = &timer {
        timer.pause();
    }
    let response = next.run(request).await;
    if let Some(timer) = &timer {
        timer.restart();
    }
    response
}

/// Paths the routes cannot match because a segment is empty (the router needs at least
/// one character): `/api/v3_0/user//refresh` is a ping with a bad id, `/profiles/` an
/// unknown profile.
async fn unmatched(shared: State<Arc<Shared>>, request: Request) -> ServerResponse {
    let path = request.uri().path();
    let is_ping = ping_path(path).is_some();
    let is_profile = request.method() == Method::GET && path.starts_with("/profiles/");
    if is_ping {
        ping(shared, request).await
    } else if is_profile {
        profile(shared, request).await
    } else {
        not_found().await
    }
}

async fn not_found() -> ServerResponse {
    status(StatusCode::NOT_FOUND)
}

/// `GET /profiles?limit=N&cursor=C`: a page of remote users in id order.
async fn profiles(State(shared): State<Arc<Shared>>, request: Request) -> ServerResponse {
    let (limit, after) = match paging::users_query(request.uri().query()) {
        Ok(parts) => parts,
        Err(reason) => return text(StatusCode::BAD_REQUEST, reason),
    };
    let (page, more) = shared.state().users.page_after(after.as_deref(), limit);
    let next = more
        .then(|| page.last())
        .flatten()
        .map(|user| paging::user_cursor(&user.id));
    let more = next.is_some();
    paging::with_next(json(StatusCode::OK, &page), "/profiles", limit, next, more)
}

/// `GET /events?limit=N&cursor=C`: the events after the cursor, oldest first.
async fn events(State(shared): State<Arc<Shared>>, request: Request) -> ServerResponse {
    let (limit, after) = match paging::events_query(request.uri().query()) {
        Ok(parts) => parts,
        Err(reason) => return text(StatusCode::BAD_REQUEST, reason),
    };
    let (page, last) = {
        let state = shared.state();
        (state.events.page_after(after, limit), state.events.last())
    };
    let Some((page, reached)) = page else {
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "cursor {after} is past the latest event ({last}): pass back a Next-Cursor this emulator gave"
            ),
        );
    };
    let more = reached < last;
    paging::with_next(
        json(StatusCode::OK, &page),
        "/events",
        limit,
        Some(reached.to_string()),
        more,
    )
}

async fn stats(State(shared): State<Arc<Shared>>) -> ServerResponse {
    json(StatusCode::OK, &shared.stats())
}

async fn studio_users(State(shared): State<Arc<Shared>>, request: Request) -> ServerResponse {
    let view = studio::View::from_query(request.uri().query());
    let selection = studio::select(&shared.state(), &view);
    let page = studio::users_page(shared.network.name(), &selection, &view);
    let mut response = Response::new(Full::new(Bytes::from(page)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// `GET /profiles/{id}`, the id percent-decoded from the raw path.
async fn profile(State(shared): State<Arc<Shared>>, request: Request) -> ServerResponse {
    let raw = &request.uri().path()["/profiles/".len()..];
    let Ok(id) = percent::decode(raw) else {
        return status(StatusCode::BAD_REQUEST);
    };
    let user = shared.state().users.get(id.as_ref()).cloned();
    match user {
        Some(user) if user.profile.is_some() => json(StatusCode::OK, &user),
        Some(user) => json(StatusCode::NOT_FOUND, &user),
        None => json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "id": id, "profile": null, "pings": 0, "last_pull": null }),
        ),
    }
}

/// The raw id of `/api/v3_0/user/{id}/refresh` or `/api/v3.0/user/{id}/refresh`.
fn ping_path(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix("/api/v3_0/user/")
        .or_else(|| path.strip_prefix("/api/v3.0/user/"))?;
    let id = rest.strip_suffix("/refresh")?;
    (!id.contains('/')).then_some(id)
}

async fn read_body(
    shared: &Shared,
    request: Request,
) -> Result<(Option<String>, String), ServerResponse> {
    let query = request.uri().query().map(str::to_owned);
    // A client dribbling its body must not hold a connection and a task forever.
    let body = tokio::time::timeout(
        shared.read_timeout,
        Limited::new(request.into_body(), MAX_BODY).collect(),
    )
    .await
    .map_err(|_| status(StatusCode::REQUEST_TIMEOUT))?
    .map_err(|_| status(StatusCode::PAYLOAD_TOO_LARGE))?
    .to_bytes();
    Ok((query, String::from_utf8_lossy(&body).into_owned()))
}

/// A ping, on either path; only POST.
async fn ping(State(shared): State<Arc<Shared>>, request: Request) -> ServerResponse {
    if request.method() != Method::POST {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let Some(raw_id) = ping_path(request.uri().path()).map(str::to_owned) else {
        return status(StatusCode::NOT_FOUND);
    };
    let shared = &*shared;
    let id = match read_ping(shared, request, &raw_id).await {
        Ok(id) => id,
        Err(response) => return response,
    };
    let fault = inject_faults(shared).await;
    let response = record_ping(shared, &id, fault);
    if response.status() == StatusCode::OK {
        shared.work.notify_one();
    }
    shared.changed.notify_waiters();
    response
}

/// The id a ping is for, once its token is valid; or the refusal (403 for a bad token,
/// 400 for a bad id).
async fn read_ping(
    shared: &Shared,
    request: Request,
    raw_id: &str,
) -> Result<String, ServerResponse> {
    let (query, body) = read_body(shared, request).await?;
    let token = form::from_query_or_body(query.as_deref(), &body, "lftoken").unwrap_or_default();
    if let Err(error) = shared.validator.validate(&token) {
        tracing::event!(target: "pingpull::emulator", Level::DEBUG, %error, "ping refused: bad token");
        return Err(status(StatusCode::FORBIDDEN));
    }
    match percent::decode(raw_id) {
        Ok(id) if user_id::validate_for_path(&id).is_ok() => Ok(id.into_owned()),
        _ => Err(status(StatusCode::BAD_REQUEST)),
    }
}

/// The configured faults: the latency, then a roll of the dice for a 500 or a 429.
async fn inject_faults(shared: &Shared) -> Option<ServerResponse> {
    let faults = &shared.faults;
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    let roll = crate::sync::lock(&shared.dice).next_unit();
    if roll < faults.fail_rate {
        Some(status(StatusCode::INTERNAL_SERVER_ERROR))
    } else if roll < faults.fail_rate + faults.rate_429 {
        Some(retry_later(StatusCode::TOO_MANY_REQUESTS))
    } else {
        None
    }
}

/// Queues the user's pull unless a fault answers (or the queue is full: 503), and records
/// the ping with its status.
fn record_ping(shared: &Shared, id: &str, fault: Option<ServerResponse>) -> ServerResponse {
    let mut state = shared.state();
    let evicted_before = state.users.evicted();
    let response = match fault {
        Some(response) => response,
        None if state.enqueue(id, shared.max_queue) => {
            state.users.pinged(id).pings += 1;
            json(
                StatusCode::OK,
                &serde_json::json!({ "status": "ok", "code": 200 }),
            )
        }
        None => retry_later(StatusCode::SERVICE_UNAVAILABLE),
    };
    state.event(EmulatorEvent::Ping {
        user_id: id.to_owned(),
        at: now(),
        status: response.status().as_u16(),
    });
    let evicted = state.users.evicted();
    drop(state);
    if evicted > evicted_before {
        shared.log_evictions(evicted);
    }
    response
}

async fn register(State(shared): State<Arc<Shared>>, request: Request) -> ServerResponse {
    let shared = &*shared;
    let (query, body) = match read_body(shared, request).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let token =
        form::from_query_or_body(query.as_deref(), &body, "actor_token").unwrap_or_default();
    let response = if shared.validator.validate(&token).is_err() {
        status(StatusCode::FORBIDDEN)
    } else {
        match form::from_query_or_body(query.as_deref(), &body, "pull_profile_url")
            .ok_or_else(|| "pull_profile_url is missing".to_owned())
            .and_then(|t| PullUrlTemplate::parse_absolute(&t).map_err(|e| e.to_string()))
        {
            Ok(template) => {
                tracing::event!(target: "pingpull::emulator", Level::INFO, pull_url = template.as_str(), "pull URL registered");
                shared.state().pull_url = Some(template);
                status(StatusCode::NO_CONTENT)
            }
            // The same rule and words as the client and the Pull layer (src/template.rs).
            Err(reason) => text(StatusCode::BAD_REQUEST, reason),
        }
    };
    shared.state().event(EmulatorEvent::Registration {
        at: now(),
        status: response.status().as_u16(),
    });
    response
}

fn status(status: StatusCode) -> ServerResponse {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// A plain-text response: a reason a person reads.
pub(super) fn text(code: StatusCode, body: String) -> ServerResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// An empty response with `status` and `Retry-After: 1`.
fn retry_later(code: StatusCode) -> ServerResponse {
    let mut response = status(code);
    response
        .headers_mut()
        .insert(RETRY_AFTER, http::HeaderValue::from_static("1"));
    response
}

fn json(status: StatusCode, value: &impl Serialize) -> ServerResponse {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
