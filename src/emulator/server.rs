//! The emulator's HTTP side: pings, registration, inspection.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::net::TcpListener;
use tracing::Level;

use super::state::{EmulatorEvent, now};
use super::{Shared, form, studio};
use crate::template::PullUrlTemplate;
use crate::{percent, user_id};

/// Request bodies longer than this are refused (a ping's is about 300 bytes).
const MAX_BODY: usize = 64 * 1024;

/// What the emulator's server sends back.
type ServerResponse = Response<Full<Bytes>>;

pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        let read_timeout = shared.read_timeout;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(route(&shared, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(read_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(shared: &Shared, request: Request<Incoming>) -> ServerResponse {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    if let Some(raw_id) = ping_path(&path) {
        if method != Method::POST {
            return status(StatusCode::METHOD_NOT_ALLOWED);
        }
        let raw_id = raw_id.to_owned();
        return ping(shared, request, &raw_id).await;
    }
    match (method, path.as_str()) {
        (Method::POST, "/") => register(shared, request).await,
        (Method::GET, "/profiles") => {
            let mut users: Vec<_> = shared.state().users.values().cloned().collect();
            users.sort_by(|a, b| a.id.cmp(&b.id));
            json(StatusCode::OK, &users)
        }
        (Method::GET, "/events") => {
            let events: Vec<_> = shared.state().events.iter().cloned().collect();
            json(StatusCode::OK, &events)
        }
        (Method::GET, "/studio/users") => {
            let mut users: Vec<_> = shared.state().users.values().cloned().collect();
            users.sort_by(|a, b| a.id.cmp(&b.id));
            let page = studio::users_page(shared.network.name(), &users);
            let mut response = Response::new(Full::new(Bytes::from(page)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                http::HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        }
        (Method::GET, _) if path.starts_with("/profiles/") => {
            let raw = &path["/profiles/".len()..];
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
        _ => status(StatusCode::NOT_FOUND),
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
    request: Request<Incoming>,
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

async fn ping(shared: &Shared, request: Request<Incoming>, raw_id: &str) -> ServerResponse {
    let id = match read_ping(shared, request, raw_id).await {
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
    request: Request<Incoming>,
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
    let response = match fault {
        Some(response) => response,
        None if state.enqueue(id, shared.max_queue) => {
            state.user(id).pings += 1;
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
    response
}

async fn register(shared: &Shared, request: Request<Incoming>) -> ServerResponse {
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
            .ok_or(())
            .and_then(|t| PullUrlTemplate::parse_absolute(&t).map_err(|_| ()))
        {
            Ok(template) => {
                tracing::event!(target: "pingpull::emulator", Level::INFO, pull_url = template.as_str(), "pull URL registered");
                shared.state().pull_url = Some(template);
                status(StatusCode::NO_CONTENT)
            }
            Err(()) => status(StatusCode::BAD_REQUEST),
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
