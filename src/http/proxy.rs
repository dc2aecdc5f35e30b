//! Forward proxies, as enterprise networks reach the outside through them: which requests
//! go through one (a proxy URL given, or `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` read
//! when asked), a CONNECT tunnel for https, and the absolute form for plain http.
//!
//! Which requests a proxy takes and the CONNECT handshake are hyper-util's
//! (`client::proxy::matcher`, `client::legacy::connect::proxy::Tunnel`); this module
//! chooses between them per connection and keeps the proxy's credentials out of every
//! message and `Debug` output.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::PROXY_AUTHORIZATION;
use http::{HeaderMap, Uri};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower::Service;

use crate::BoxError;

/// Where requests go through a forward proxy: every request through one proxy URL, or
/// what the environment's `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` (and
/// their lowercase forms, read as curl reads them) say.
///
/// https is tunnelled with CONNECT (the proxy sees the host, never the request), plain
/// http is sent to the proxy in absolute form. Credentials in the URL
/// (`http://user:password@proxy:3128`) are sent as `Proxy-Authorization: Basic` and never
/// appear in `Debug` output, errors or logs.
///
/// ```
/// use pingpull::ping::Proxy;
///
/// let proxy = Proxy::new("http://user:secret@proxy.internal:3128")?;
/// assert!(!format!("{proxy:?}").contains("secret"));
/// # Ok::<(), pingpull::ping::ProxyError>(())
/// ```
#[derive(Clone)]
pub struct Proxy {
    matcher: Arc<Matcher>,
    /// What `Debug` and logs show: the URL without credentials, or where it came from.
    shown: Arc<str>,
}

impl Proxy {
    /// Every request through the proxy at `url`: `http://host:port`, with optional
    /// `user:password@` credentials.
    ///
    /// # Errors
    ///
    /// [`ProxyError`] if `url` is not an absolute `http://` URL with a host and nothing
    /// after the authority but `/` (an https or SOCKS proxy is not supported).
    pub fn new(url: &str) -> Result<Self, ProxyError> {
        let shown = without_userinfo(url);
        let bad = || ProxyError { url: shown.clone() };
        let uri: Uri = url.parse().map_err(|_| bad())?;
        let path_is_root = uri.path_and_query().is_none_or(|pq| pq.as_str() == "/");
        if uri.scheme_str() != Some("http") || uri.host().is_none_or(str::is_empty) || !path_is_root
        {
            return Err(bad());
        }
        Ok(Self {
            matcher: Arc::new(Matcher::builder().all(url.to_owned()).build()),
            shown: shown.into(),
        })
    }

    /// What the environment says now: `HTTPS_PROXY` for https, `HTTP_PROXY` for http,
    /// `ALL_PROXY` for both, hosts in `NO_PROXY` reached directly; no variable set, no
    /// proxy.
    pub fn from_env() -> Self {
        Self {
            matcher: Arc::new(Matcher::from_env()),
            shown: "from HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY".into(),
        }
    }

    /// The proxy `uri` goes through, and the credentials to send it, if any.
    fn route(&self, uri: &Uri) -> Option<(Uri, Option<http::HeaderValue>)> {
        let intercept = self.matcher.intercept(uri)?;
        let mut auth = intercept.basic_auth().cloned();
        if let Some(auth) = &mut auth {
            auth.set_sensitive(true);
        }
        Some((intercept.uri().clone(), auth))
    }

    /// Adds `Proxy-Authorization` to a plain-http request that goes through a proxy with
    /// credentials (a tunnel sends them in its CONNECT instead).
    pub(crate) fn authorize(&self, uri: &Uri, headers: &mut HeaderMap) {
        if uri.scheme_str() == Some("http")
            && let Some((_, Some(auth))) = self.route(uri)
        {
            headers.insert(PROXY_AUTHORIZATION, auth);
        }
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Proxy").field(&self.shown).finish()
    }
}

/// The proxy URL is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError {
    /// The URL, with any credentials replaced by `***`.
    url: String,
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "proxy URL must be an absolute http:// URL such as http://proxy.internal:3128: got `{}`",
            self.url
        )
    }
}

impl std::error::Error for ProxyError {}

/// `url` with any `user:password@` replaced by `***@`, for messages.
pub(crate) fn without_userinfo(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
        None => url.to_owned(),
    }
}

/// Connects directly, or through the proxy the destination goes through: a CONNECT
/// tunnel for https (TLS then runs inside it, end to end), a plain connection to the
/// proxy for http (the request then goes in absolute form).
#[derive(Clone)]
pub(crate) struct ProxyConnector {
    direct: HttpConnector,
    proxy: Option<Proxy>,
}

impl ProxyConnector {
    pub(crate) fn new(direct: HttpConnector, proxy: Option<Proxy>) -> Self {
        Self { direct, proxy }
    }
}

impl Service<Uri> for ProxyConnector {
    type Response = Proxied;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Proxied, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.direct.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, destination: Uri) -> Self::Future {
        let route = self
            .proxy
            .as_ref()
            .and_then(|proxy| proxy.route(&destination));
        let mut direct = self.direct.clone();
        Box::pin(async move {
            match route {
                None => Ok(Proxied::new(direct.call(destination).await?, false)),
                Some((proxy, auth)) if destination.scheme_str() == Some("https") => {
                    let mut tunnel = Tunnel::new(proxy, direct);
                    if let Some(auth) = auth {
                        tunnel = tunnel.with_auth(auth);
                    }
                    let io = tunnel
                        .call(destination)
                        .await
                        .map_err(|error| format!("through the proxy: {error}"))?;
                    Ok(Proxied::new(io, false))
                }
                Some((proxy, _)) => {
                    let io = direct
                        .call(proxy)
                        .await
                        .map_err(|error| format!("connecting to the proxy: {error}"))?;
                    Ok(Proxied::new(io, true))
                }
            }
        })
    }
}

/// A connection, direct or through a proxy; `proxied` tells hyper to send requests in
/// absolute form (a plain-http proxy).
pub(crate) struct Proxied {
    io: TokioIo<TcpStream>,
    proxied: bool,
}

impl Proxied {
    fn new(io: TokioIo<TcpStream>, proxied: bool) -> Self {
        Self { io, proxied }
    }
}

impl Connection for Proxied {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl Read for Proxied {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for Proxied {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_are_checked_and_credentials_never_shown() {
        assert!(Proxy::new("http://proxy.internal:3128").is_ok());
        assert!(Proxy::new("http://proxy.internal:3128/").is_ok());
        for bad in [
            "proxy.internal:3128",
            "https://proxy.internal:3128",
            "socks5://proxy.internal:1080",
            "http://proxy.internal:3128/path",
            "http://",
            "",
        ] {
            assert!(Proxy::new(bad).is_err(), "{bad}");
        }
        let error = Proxy::new("https://user:s3cret@proxy.internal").unwrap_err();
        assert!(!error.to_string().contains("s3cret"), "{error}");
        assert!(
            error.to_string().contains("https://***@proxy.internal"),
            "{error}"
        );
        let proxy = Proxy::new("http://user:s3cret@proxy.internal:3128").unwrap();
        assert_eq!(
            format!("{proxy:?}"),
            "Proxy(\"http://***@proxy.internal:3128\")"
        );
    }

    #[test]
    fn plain_http_through_a_proxy_with_credentials_is_authorized() {
        let proxy = Proxy::new("http://user:pass@proxy.internal:3128").unwrap();
        let mut headers = HeaderMap::new();
        proxy.authorize(&"http://livefyre.internal/x".parse().unwrap(), &mut headers);
        assert_eq!(headers[PROXY_AUTHORIZATION], "Basic dXNlcjpwYXNz");
        assert!(headers[PROXY_AUTHORIZATION].is_sensitive());
        // https sends them in the CONNECT, never to the destination.
        let mut headers = HeaderMap::new();
        proxy.authorize(
            &"https://livefyre.internal/x".parse().unwrap(),
            &mut headers,
        );
        assert!(headers.is_empty());
    }
}
