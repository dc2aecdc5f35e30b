//! The HTTP/1.1 client plumbing shared by the Pinger's transport, the emulator's pulls
//! and `check`: one connector (https through rustls when that feature is on) and a GET
//! that reads a bounded body under a timeout.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

#[cfg(feature = "rustls")]
pub(crate) type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
#[cfg(not(feature = "rustls"))]
pub(crate) type Connector = HttpConnector;

#[cfg(feature = "rustls")]
pub(crate) fn connector() -> Connector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

#[cfg(not(feature = "rustls"))]
pub(crate) fn connector() -> Connector {
    HttpConnector::new()
}

/// The error chain of an error, on one line.
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// An answer read whole.
#[cfg_attr(not(feature = "emulator"), allow(dead_code))]
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) elapsed: Duration,
}

/// Why a fetch produced no answer.
#[cfg_attr(not(feature = "emulator"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FetchError {
    Timeout,
    TooLarge,
    Failed(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Timeout => f.write_str("timed out"),
            Self::TooLarge => f.write_str("answer body too large"),
            Self::Failed(message) => write!(f, "request failed: {message}"),
        }
    }
}

/// GETs and HEADs with bounded bodies.
#[cfg_attr(not(feature = "emulator"), allow(dead_code))]
#[derive(Clone)]
pub(crate) struct Fetcher {
    client: Client<Connector, Empty<Bytes>>,
}

#[cfg_attr(not(feature = "emulator"), allow(dead_code))]
impl Fetcher {
    pub(crate) fn new() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector()),
        }
    }

    /// Sends `method` to `url`; the whole exchange, body included, within `timeout`.
    /// The URL may hold a token: it never appears in the error.
    pub(crate) async fn fetch(
        &self,
        method: Method,
        url: &str,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Fetched, FetchError> {
        let started = Instant::now();
        let request = Request::builder()
            .method(method)
            .uri(url)
            .body(Empty::new())
            .map_err(|_| FetchError::Failed("invalid URL".into()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| FetchError::Failed(redact_url(&describe(&e), url)))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, max_body)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        FetchError::TooLarge
                    } else {
                        FetchError::Failed(redact_url(&describe(&*e), url))
                    }
                })?
                .to_bytes();
            Ok(Fetched {
                status: parts.status,
                headers: parts.headers,
                body,
                elapsed: started.elapsed(),
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(FetchError::Timeout))
    }
}

/// Errors from the client may quote the URL; ours carry a token in the query.
fn redact_url(message: &str, url: &str) -> String {
    message.replace(url, "<pull URL>")
}
