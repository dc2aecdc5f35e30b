//! How requests reach Livefyre: a small trait, so tests and users can substitute the
//! HTTP client (a proxy client, a recording fake, an in-memory Livefyre).

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use http::{Request, Response};

use super::{FetchError, HttpClient, Proxy, SUPPORTS_HTTPS, read_body};
use crate::BoxError;

/// Answers longer than this are not read further (Livefyre's are empty or tiny).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Sends one request and returns the answer's status and headers (its body is not needed).
///
/// The caller applies the attempt timeout around `send`; an `Err` is a connection-level
/// failure (refused, reset, DNS, TLS) and is retried like a timeout. Its message must not
/// contain the request body, which holds the token.
///
/// ```
/// use bytes::Bytes;
/// use pingpull::BoxError;
/// use pingpull::ping::Transport;
///
/// /// A Livefyre that accepts everything, for tests.
/// struct AlwaysOk;
///
/// #[pingpull::async_trait]
/// impl Transport for AlwaysOk {
///     async fn send(&self, _request: http::Request<Bytes>) -> Result<http::Response<()>, BoxError> {
///         Ok(http::Response::new(()))
///     }
/// }
/// ```
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Sends `request`.
    async fn send(&self, request: Request<Bytes>) -> Result<Response<()>, BoxError>;
}

#[async_trait]
impl<T: Transport + ?Sized> Transport for std::sync::Arc<T> {
    async fn send(&self, request: Request<Bytes>) -> Result<Response<()>, BoxError> {
        (**self).send(request).await
    }
}

/// The default transport: hyper-util's pooled HTTP/1.1 keep-alive client, with https
/// through rustls (ring) when the `rustls` feature is on, direct or through a forward
/// [`Proxy`].
#[derive(Clone)]
pub struct HyperTransport {
    http: HttpClient,
    #[cfg(feature = "rustls")]
    roots: Option<super::TlsRoots>,
    proxy: Option<Proxy>,
}

impl HyperTransport {
    /// A transport with its own connection pool.
    pub fn new() -> Self {
        Self {
            http: HttpClient::new(),
            #[cfg(feature = "rustls")]
            roots: None,
            proxy: None,
        }
    }

    /// The same transport, its https connections trusting `roots` (for example Mozilla's
    /// plus a private CA) instead of Mozilla's roots alone (a new pool).
    #[cfg(feature = "rustls")]
    pub fn tls_roots(mut self, roots: &super::TlsRoots) -> Self {
        self.roots = Some(roots.clone());
        self.rebuilt()
    }

    /// The same transport, going through `proxy` where it says so (a new pool).
    pub fn proxy(mut self, proxy: &Proxy) -> Self {
        self.proxy = Some(proxy.clone());
        self.rebuilt()
    }

    /// A pool for the roots and proxy set.
    fn rebuilt(mut self) -> Self {
        #[cfg(feature = "rustls")]
        if let Some(roots) = &self.roots {
            self.http = HttpClient::trusting(roots, self.proxy.clone());
            return self;
        }
        self.http = HttpClient::through(self.proxy.clone());
        self
    }

    /// Whether this transport can reach https URLs (the `rustls` feature).
    pub fn supports_https() -> bool {
        SUPPORTS_HTTPS
    }
}

impl Default for HyperTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for HyperTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperTransport")
            .field("https", &Self::supports_https())
            .field("proxy", &self.proxy)
            .finish()
    }
}

#[async_trait]
impl Transport for HyperTransport {
    async fn send(&self, request: Request<Bytes>) -> Result<Response<()>, BoxError> {
        let (parts, body) = self
            .http
            .exchange(request)
            .await
            .map_err(|error| match error {
                FetchError::Failed(message) => BoxError::from(message),
                other => BoxError::from(other),
            })?;
        // Read (a bounded amount of) the answer so the connection can be reused; only
        // its status and headers matter.
        let _ = read_body(body, MAX_ANSWER_BYTES).await;
        Ok(Response::from_parts(parts, ()))
    }
}
