//! Between actix-web's request and response types (on `http` 0.2) and the `http` 1 types
//! the endpoint speaks.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use bytes::Bytes;
use http::header::CONTENT_LENGTH;

/// The parts of an actix request the endpoint reads (its method, target and host), as an
/// `http` 1 request; `None` if they do not convert (never for what actix accepted).
///
/// A HEAD request is handed to the endpoint as a GET: actix sends no body for HEAD
/// itself and sets `Content-Length` from the GET's body, which is what HEAD must say.
pub(super) fn request(
    method: &str,
    target: &str,
    host: Option<&[u8]>,
) -> Option<http::Request<()>> {
    let method = if method == "HEAD" { "GET" } else { method };
    let mut request = http::Request::builder().method(method).uri(target);
    // For the pull span's `server.address` and `server.port`.
    if let Some(host) = host {
        request = request.header(http::header::HOST, host);
    }
    request.body(()).ok()
}

/// The endpoint's answer as an actix response. `Content-Length` is left to actix, which
/// computes it from the body.
pub(super) fn response(answer: http::Response<Bytes>) -> HttpResponse {
    let (parts, body) = answer.into_parts();
    let status =
        StatusCode::from_u16(parts.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::with_body(status, body);
    let headers = response.headers_mut();
    for (name, value) in &parts.headers {
        if name == CONTENT_LENGTH {
            continue;
        }
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    response.map_into_boxed_body()
}
