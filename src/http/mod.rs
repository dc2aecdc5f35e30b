//! The HTTP client plumbing under everything that talks to another server (the Pinger's
//! transport, the emulator's pulls, `check`): one pooled HTTP/1.1 client type (https
//! through rustls when that feature is on), its TLS roots, the [`Transport`] seam, reading
//! `Retry-After`, and each concern of an exchange written once: the error chain on one
//! line, the bounded body read, the timeout. Nothing here knows Livefyre's API.

mod proxy;
mod retry_after;
#[cfg(feature = "rustls")]
mod tls;
mod transport;

pub(crate) use proxy::without_userinfo;
pub use proxy::{Proxy, ProxyError};
pub use retry_after::parse_retry_after;
#[cfg(feature = "rustls")]
pub use tls::{TlsRoots, TlsRootsError};
pub use transport::{HyperTransport, Transport};

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http::response::Parts;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use proxy::ProxyConnector;

#[cfg(feature = "rustls")]
type Connector = hyper_rustls::HttpsConnector<ProxyConnector>;
#[cfg(not(feature = "rustls"))]
type Connector = ProxyConnector;

/// http, and https trusting `roots`; through `proxy` where it says so.
#[cfg(feature = "rustls")]
fn connector(roots: Option<&TlsRoots>, proxy: Option<Proxy>) -> Connector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let tls = match roots {
        Some(roots) => roots.client_config(),
        None => TlsRoots::default().client_config(),
    };
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(ProxyConnector::new(http, proxy))
}

/// http only (https needs the `rustls` feature); through `proxy` where it says so.
#[cfg(not(feature = "rustls"))]
fn connector(proxy: Option<Proxy>) -> Connector {
    ProxyConnector::new(HttpConnector::new(), proxy)
}

/// Whether the client can reach https URLs (the `rustls` feature).
pub(crate) const SUPPORTS_HTTPS: bool = cfg!(feature = "rustls");

/// An answer read whole.
#[cfg(feature = "emulator")]
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) status: http::StatusCode,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) elapsed: Duration,
}

/// Why an exchange produced no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FetchError {
    Timeout,
    TooLarge,
    /// Refused, reset, DNS, TLS...: the error chain on one line, without the URL.
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

/// A pooled keep-alive client. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub(crate) struct HttpClient {
    pool: Client<Connector, Full<Bytes>>,
    /// Plain-http requests through it carry its credentials.
    proxy: Option<Proxy>,
}

impl HttpClient {
    /// A direct client (https trusting Mozilla's roots, with the `rustls` feature).
    pub(crate) fn new() -> Self {
        Self::through(None)
    }

    /// A client that goes through `proxy` where it says so.
    pub(crate) fn through(proxy: Option<Proxy>) -> Self {
        #[cfg(feature = "rustls")]
        let connector = connector(None, proxy.clone());
        #[cfg(not(feature = "rustls"))]
        let connector = connector(proxy.clone());
        Self {
            pool: Client::builder(TokioExecutor::new()).build(connector),
            proxy,
        }
    }

    /// A client whose https connections trust `roots` instead of Mozilla's alone, through
    /// `proxy` where it says so.
    #[cfg(feature = "rustls")]
    pub(crate) fn trusting(roots: &TlsRoots, proxy: Option<Proxy>) -> Self {
        Self {
            pool: Client::builder(TokioExecutor::new())
                .build(connector(Some(roots), proxy.clone())),
            proxy,
        }
    }

    /// Sends `request` and returns the answer's head and unread body. The URL may hold a
    /// token: it never appears in the error.
    pub(crate) async fn exchange(
        &self,
        mut request: Request<Bytes>,
    ) -> Result<(Parts, Incoming), FetchError> {
        let uri = request.uri().clone();
        if let Some(proxy) = &self.proxy {
            proxy.authorize(&uri, request.headers_mut());
        }
        let response = self
            .pool
            .request(request.map(Full::new))
            .await
            .map_err(|e| FetchError::Failed(failure_message(&e, &uri)))?;
        Ok(response.into_parts())
    }

    /// Sends `method` to `url` with an empty body and reads at most `max_body` bytes of
    /// the answer, the whole exchange within `timeout`.
    #[cfg(feature = "emulator")]
    pub(crate) async fn fetch(
        &self,
        method: http::Method,
        url: &str,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Fetched, FetchError> {
        let started = std::time::Instant::now();
        let request = Request::builder()
            .method(method)
            .uri(url)
            .body(Bytes::new())
            .map_err(|_| FetchError::Failed("invalid URL".into()))?;
        within(timeout, async {
            let (parts, body) = self.exchange(request).await?;
            let body = read_body(body, max_body).await?;
            Ok(Fetched {
                status: parts.status,
                headers: parts.headers,
                body,
                elapsed: started.elapsed(),
            })
        })
        .await
    }
}

/// Reads at most `max` bytes of `body`.
pub(crate) async fn read_body(body: Incoming, max: usize) -> Result<Bytes, FetchError> {
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(FetchError::TooLarge),
        Err(e) => Err(FetchError::Failed(describe(&*e))),
    }
}

/// Runs `exchange` for at most `timeout`.
pub(crate) async fn within<T>(
    timeout: Duration,
    exchange: impl Future<Output = Result<T, FetchError>>,
) -> Result<T, FetchError> {
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or(Err(FetchError::Timeout))
}

/// Why a request to `uri` failed, on one line and without the URL (it may hold a token).
fn failure_message(error: &(dyn std::error::Error + 'static), uri: &http::Uri) -> String {
    if is_plain_http_answer(error) {
        return format!(
            "TLS handshake failed: the server at {} does not speak https (try http://)",
            host_and_port(uri)
        );
    }
    describe(error).replace(&uri.to_string(), "<URL>")
}

/// Whether rustls gave up because the server answered in plain text: the first bytes
/// of an HTTP answer are no TLS record ("received corrupt message of type
/// InvalidContentType"). The rustls error arrives wrapped in `io::Error`s (by
/// tokio-rustls, then hyper-rustls), whose `source` skips what they wrap: look inside.
#[cfg(feature = "rustls")]
fn is_plain_http_answer(error: &(dyn std::error::Error + 'static)) -> bool {
    use rustls::{Error as TlsError, InvalidMessage};
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(tls) = error.downcast_ref::<TlsError>() {
            return matches!(
                tls,
                TlsError::InvalidMessage(InvalidMessage::InvalidContentType)
            );
        }
        next = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    false
}

#[cfg(not(feature = "rustls"))]
fn is_plain_http_answer(_: &(dyn std::error::Error + 'static)) -> bool {
    false
}

/// `host:port` of `uri`, the port filled in from the scheme.
pub(crate) fn host_and_port(uri: &http::Uri) -> String {
    let host = uri.host().unwrap_or_default();
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
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

impl std::error::Error for FetchError {}
