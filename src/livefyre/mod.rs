//! The client for Livefyre's API: one-shot calls like the official libraries' (`syncUser`,
//! `setPullUrl`), and the single ping request the delivery engine sends for each attempt,
//! through a [`Transport`] (by default hyper-util's pooled HTTP/1.1 client). During a key
//! rotation, a request Livefyre refuses is signed again with each previous key (see
//! [`signer`]).

mod signer;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{Method, Request, StatusCode, Uri};

use crate::clock::{Clock, SystemClock, TIMEOUT_RANGE, TIMEOUT_RANGE_TEXT};
#[cfg(feature = "rustls")]
use crate::http::TlsRoots;
use crate::http::{
    FetchError, HyperTransport, Proxy, Transport, describe, parse_retry_after, within,
    without_userinfo,
};
use crate::template::{PullUrlTemplate, TemplateError};
use crate::user_id::{self, UserIdError};
use crate::{Network, percent};
use signer::Signer;

/// How long one request may take unless configured.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for Livefyre's API (or the emulator): pings one user, registers the Pull URL.
///
/// Cheap to clone; clones share the connection pool and the cached system token, which
/// is renewed when half its 24-hour life has passed.
///
/// **Key rotation.** With a network that has previous keys
/// ([`Network::with_previous_keys`]), a request Livefyre refuses with 403 is sent again,
/// once with each previous key (each request within the timeout). When Livefyre accepts
/// a previous key, the client keeps signing with it, and logs at INFO (at most once a
/// minute) that Livefyre still holds it, until Livefyre refuses it; then the current key
/// comes first again. So a rotation holds nobody back, whichever side switches first;
/// only a key Livefyre has never held (a 403 for every key) is refused.
#[derive(Clone)]
pub struct LivefyreClient {
    network: Network,
    base: Arc<str>,
    transport: Arc<dyn Transport>,
    /// The built-in client as configured (TLS roots, proxy), `None` with a transport of
    /// the user's own: what `tls_roots` and `proxy` add to.
    built_in: Option<HyperTransport>,
    timeout: Duration,
    signer: Arc<Signer>,
}

impl LivefyreClient {
    /// A client for `network` at `base_url` (e.g. [`Network::default_base_url`], or the
    /// emulator's URL).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] if `base_url` is not an absolute http(s) URL without query, or is
    /// https while the `rustls` feature is off.
    pub fn new(network: Network, base_url: &str) -> Result<Self, ConfigError> {
        if base_url.starts_with("https:") && !HyperTransport::supports_https() {
            return Err(ConfigError::HttpsNeedsRustls);
        }
        let built_in = HyperTransport::new();
        let mut client = Self::with_transport(network, base_url, built_in.clone())?;
        client.built_in = Some(built_in);
        Ok(client)
    }

    /// A client that sends through `transport` instead of the built-in HTTP client.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] if `base_url` is not an absolute http(s) URL without query.
    pub fn with_transport(
        network: Network,
        base_url: &str,
        transport: impl Transport,
    ) -> Result<Self, ConfigError> {
        let base = check_base_url(base_url)?;
        Ok(Self {
            network,
            base: base.into(),
            transport: Arc::new(transport),
            built_in: None,
            timeout: DEFAULT_ATTEMPT_TIMEOUT,
            signer: Arc::new(Signer::new(Arc::new(SystemClock))),
        })
    }

    /// The client a background worker (the Pinger, the outbox's) delivers with:
    /// `base_url` or the network's default, through `transport` or the built-in client.
    pub(crate) fn for_worker(
        network: Network,
        base_url: Option<&str>,
        transport: Option<Arc<dyn Transport>>,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let default_base;
        let base_url = match base_url {
            Some(base_url) => base_url,
            None => {
                default_base = network.default_base_url();
                &default_base
            }
        };
        let client = match transport {
            Some(transport) => Self::with_transport(network, base_url, transport)?,
            None => Self::new(network, base_url)?,
        };
        client.timeout(timeout)
    }

    /// Gives each request at most `timeout` (default 10 s) to be answered.
    ///
    /// # Errors
    ///
    /// [`ConfigError::OutOfRange`] unless `timeout` is between 1 ms and 1 hour.
    pub fn timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        if !TIMEOUT_RANGE.contains(&timeout) {
            return Err(ConfigError::out_of_range("timeout", TIMEOUT_RANGE_TEXT));
        }
        self.timeout = timeout;
        Ok(self)
    }

    /// Sends through the built-in HTTP client with https trusting `roots` (a private CA,
    /// the platform's store) instead of Mozilla's roots alone; replaces any transport
    /// given to [`with_transport`](Self::with_transport).
    ///
    /// ```
    /// use pingpull::Network;
    /// use pingpull::ping::{LivefyreClient, TlsRoots};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let ca_pem = rcgen::generate_simple_self_signed(["livefyre.internal".to_owned()])?.cert.pem();
    /// // `ca_pem`: the contents of your CA's PEM file.
    /// let roots = TlsRoots::default().add_pem(ca_pem.as_bytes())?;
    /// let network = Network::new("example.fyre.co", "testkeytest")?;
    /// let client = LivefyreClient::new(network, "https://livefyre.internal")?.tls_roots(&roots);
    /// # let _ = client;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "rustls")]
    pub fn tls_roots(self, roots: &TlsRoots) -> Self {
        self.configure_built_in(|built_in| built_in.tls_roots(roots))
    }

    /// Sends through the built-in HTTP client, through a forward proxy where `proxy` says
    /// so: one proxy URL ([`Proxy::new`]), or what `HTTP_PROXY`, `HTTPS_PROXY` and
    /// `NO_PROXY` say ([`Proxy::from_env`]). Replaces any transport given to
    /// [`with_transport`](Self::with_transport); keeps the roots given to `tls_roots`.
    ///
    /// ```
    /// use pingpull::Network;
    /// use pingpull::ping::{LivefyreClient, Proxy};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let network = Network::new("example.fyre.co", "testkeytest")?;
    /// let proxy = Proxy::new("http://user:secret@proxy.internal:3128")?;
    /// let client = LivefyreClient::new(network, "https://example.quill.fyre.co")?.proxy(&proxy);
    /// // The proxy's password is never shown.
    /// assert!(!format!("{client:?}").contains("secret"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn proxy(self, proxy: &Proxy) -> Self {
        self.configure_built_in(|built_in| built_in.proxy(proxy))
    }

    /// The built-in client as configured so far (a new one after `with_transport`),
    /// changed by `change`, becomes the transport.
    fn configure_built_in(mut self, change: impl FnOnce(HyperTransport) -> HyperTransport) -> Self {
        let built_in = change(self.built_in.take().unwrap_or_default());
        self.transport = Arc::new(built_in.clone());
        self.built_in = Some(built_in);
        self
    }

    /// Reads "now" for the system token (and the once-a-minute limit on the rotation's
    /// log) from `clock`.
    pub fn clock(self, clock: impl Clock) -> Self {
        self.shared_clock(Arc::new(clock))
    }

    pub(crate) fn shared_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.signer = Arc::new(Signer::new(clock));
        self
    }

    /// The network this client speaks for.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The API base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Pings Livefyre once for `user_id` and waits for the answer (the official
    /// libraries' `syncUser`). No retry: use a [`Pinger`](crate::ping::Pinger) for delivery.
    ///
    /// # Errors
    ///
    /// [`RequestError`]: an invalid user id (nothing sent), a 403 for every key (wrong key
    /// or network), another non-2xx status, a timeout or a connection error.
    pub async fn sync_user(&self, user_id: &str) -> Result<(), RequestError> {
        user_id::validate_for_path(user_id).map_err(RequestError::InvalidUserId)?;
        into_result(self.ping_once(user_id).await)
    }

    /// Registers the Pull URL template with the network (docs/protocol.md §5). Needed once.
    ///
    /// # Errors
    ///
    /// [`RequestError::InvalidTemplate`] if the template is not an absolute http(s) URL or
    /// breaks the rule the Pull layer holds it to (`{id}` exactly once, in the path or as a
    /// whole query value, no `lftoken` parameter; docs/protocol.md §5), nothing sent;
    /// otherwise as [`sync_user`](Self::sync_user).
    pub async fn register_pull_url(&self, template: &str) -> Result<(), RequestError> {
        PullUrlTemplate::parse_absolute(template).map_err(RequestError::InvalidTemplate)?;
        let template = percent::encode(template);
        let form = |token: &str| {
            format!(
                "actor_token={}&pull_profile_url={template}",
                percent::encode(token)
            )
        };
        let uri = format!("{}/", self.base);
        let registered = into_result(self.post_signed(&uri, form).await);
        if let Err(error) = &registered {
            let check = match error {
                RequestError::Unauthorized => "check the network name and key",
                RequestError::Status(status) if wrong_server(*status) => {
                    "check the base URL: it should be Livefyre's API (or the emulator's)"
                }
                RequestError::Status(status) if status.is_client_error() => {
                    "check that the template is an absolute http(s) URL with `{id}` once, as Livefyre will pull it"
                }
                _ => {
                    "check the base URL and that Livefyre (or the emulator) is reachable from here"
                }
            };
            tracing::event!(target: "pingpull::ping", tracing::Level::WARN, base_url = %self.base, %error, "registering the Pull URL failed: {check}");
        }
        registered
    }

    /// One ping for an already validated id (during a rotation, one request per key
    /// until one is accepted).
    pub(crate) async fn ping_once(&self, user_id: &str) -> Answer {
        let uri = self.ping_uri(user_id);
        // The token travels in a form body, never in the URL (access logs).
        let form = |token: &str| format!("lftoken={}", percent::encode(token));
        self.post_signed(&uri, form).await
    }

    /// Posts the form `form` makes around a system token, signed with the key Livefyre
    /// accepted last; refused (403), once more with each other key of the network, the
    /// current one first (see [`signer`]). The last 403 if every key is refused.
    async fn post_signed(&self, uri: &str, form: impl Fn(&str) -> String) -> Answer {
        let mut refused = None;
        for key in self.signer.keys_to_try(&self.network) {
            let Some(token) = self.signer.token(&self.network, key) else {
                continue;
            };
            let answer = self.post(uri, form(token.as_str())).await;
            match &answer {
                Ok((StatusCode::FORBIDDEN, _)) => {
                    if self.network.previous_key_count() > 0 {
                        tracing::event!(target: "pingpull::ping", tracing::Level::DEBUG, ?key, "Livefyre refused the token signed with this key; trying the next one");
                    }
                    refused = Some(answer);
                }
                Ok((status, _)) if status.is_success() => {
                    self.signer.accepted(&self.network, key);
                    return answer;
                }
                // Another answer says nothing about the key: told as it is.
                _ => return answer,
            }
        }
        self.signer.refused_every_key();
        refused.unwrap_or_else(|| Err(FetchError::Failed("no key to sign with".into())))
    }

    /// The URL a ping for `user_id` is posted to: what a trace may show, since it holds
    /// no secret (the base URL has no query or credentials, and the token travels in the
    /// body).
    pub(crate) fn ping_uri(&self, user_id: &str) -> String {
        format!(
            "{}/api/v3_0/user/{}/refresh",
            self.base,
            percent::encode(user_id)
        )
    }

    /// The host (an IPv6 address without its brackets) and port requests go to, the port
    /// from the scheme when the base URL has none: the server a trace names.
    pub(crate) fn server_address(&self) -> (String, u16) {
        let Ok(uri) = self.base.parse::<Uri>() else {
            return (String::new(), 0);
        };
        let host = uri.host().unwrap_or_default();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let default_port = if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        };
        (host.to_owned(), uri.port_u16().unwrap_or(default_port))
    }

    /// Forgets the cached tokens so the next request signs new ones.
    pub(crate) fn renew_token(&self) {
        self.signer.renew();
    }

    /// Posts a form within the timeout; only the answer's status and `Retry-After` matter.
    async fn post(&self, uri: &str, body: String) -> Answer {
        let request = match Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Bytes::from(body))
        {
            Ok(request) => request,
            Err(error) => {
                return Err(FetchError::Failed(format!("building the request: {error}")));
            }
        };
        let exchange = async {
            let response = self
                .transport
                .send(request)
                .await
                .map_err(|e| FetchError::Failed(describe(&*e)))?;
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            Ok((response.status(), retry_after))
        };
        within(self.timeout, exchange).await
    }
}

impl fmt::Debug for LivefyreClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LivefyreClient")
            .field("network", &self.network)
            .field("base_url", &self.base)
            .field("timeout", &self.timeout)
            .field("built_in", &self.built_in)
            .finish_non_exhaustive()
    }
}

/// Livefyre's answer to one request: its status and `Retry-After`, if it had one; or why
/// there was none (a timeout; refused, reset, DNS, TLS... without the URL's token).
pub(crate) type Answer = Result<(StatusCode, Option<Duration>), FetchError>;

/// The answer as a one-shot call's result.
fn into_result(answer: Answer) -> Result<(), RequestError> {
    match answer {
        Ok((status, _)) if status.is_success() => Ok(()),
        Ok((StatusCode::FORBIDDEN, _)) => Err(RequestError::Unauthorized),
        Ok((status, _)) => Err(RequestError::Status(status)),
        Err(FetchError::Timeout) => Err(RequestError::Timeout),
        Err(error @ FetchError::TooLarge) => Err(RequestError::Transport(error.to_string())),
        Err(FetchError::Failed(message)) => Err(RequestError::Transport(message)),
    }
}

fn check_base_url(base_url: &str) -> Result<String, ConfigError> {
    let bad = || ConfigError::BaseUrl(without_userinfo(base_url));
    let uri: Uri = base_url.parse().map_err(|_| bad())?;
    let scheme = uri.scheme_str().ok_or_else(bad)?;
    // Credentials in the URL would never be sent (the token authenticates) but would
    // show in errors and `Debug`: refuse them.
    let has_userinfo = uri.authority().is_some_and(|a| a.as_str().contains('@'));
    if uri.host().is_none_or(str::is_empty) || uri.query().is_some() || has_userinfo {
        return Err(bad());
    }
    if scheme != "http" && scheme != "https" {
        return Err(bad());
    }
    Ok(base_url.trim_end_matches('/').to_owned())
}

/// A misconfiguration found when building a client or Pinger.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The base URL is not an absolute http(s) URL without a query or credentials
    /// (shown with any credentials replaced by `***`).
    BaseUrl(String),
    /// An https base URL, but the `rustls` feature is off.
    HttpsNeedsRustls,
    /// A setting is out of range.
    OutOfRange {
        /// The builder method that took it, e.g. `concurrency`.
        setting: &'static str,
        /// What it accepts, e.g. `at least 1`.
        expected: &'static str,
    },
    /// `spawn` was called outside a Tokio runtime.
    NoRuntime,
    /// `tls_roots` or `proxy` was set with a `transport` of the user's own, which would
    /// ignore them: they configure the built-in HTTP client.
    TransportConflict,
}

impl ConfigError {
    /// `setting` is out of range: it must be `expected`.
    pub(crate) fn out_of_range(setting: &'static str, expected: &'static str) -> Self {
        Self::OutOfRange { setting, expected }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BaseUrl(url) => {
                write!(
                    f,
                    "base URL must be an absolute http(s) URL without a query or credentials: got `{url}`"
                )
            }
            Self::HttpsNeedsRustls => {
                f.write_str("an https base URL needs pingpull's `rustls` feature")
            }
            Self::OutOfRange { setting, expected } => {
                write!(f, "`{setting}` must be {expected}")
            }
            Self::NoRuntime => f.write_str("spawn must be called inside a Tokio runtime"),
            Self::TransportConflict => f.write_str(
                "`tls_roots` and `proxy` configure the built-in HTTP client, which `transport` replaces: set one or the other",
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Why a one-shot call to Livefyre failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The user id cannot be pinged; nothing was sent.
    InvalidUserId(UserIdError),
    /// The Pull URL template is unusable; nothing was sent.
    InvalidTemplate(TemplateError),
    /// 403: the token is not valid for this network (wrong key or network name).
    Unauthorized,
    /// Another non-2xx answer.
    Status(StatusCode),
    /// No answer within the timeout.
    Timeout,
    /// The connection failed; the cause.
    Transport(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUserId(error) => write!(f, "not sent: {error}"),
            Self::InvalidTemplate(error) => write!(f, "not sent: {error}"),
            Self::Unauthorized => f.write_str(
                "Livefyre answered 403: the network key or name is wrong (a configuration fault)",
            ),
            Self::Status(status) if wrong_server(*status) => {
                write!(f, "the base URL answered {status}: {WRONG_SERVER_HINT}")
            }
            Self::Status(status) => write!(f, "Livefyre answered {status}"),
            Self::Timeout => f.write_str("no answer within the timeout"),
            Self::Transport(message) => write!(f, "connection failed: {message}"),
        }
    }
}

impl std::error::Error for RequestError {}

/// What a 404 or 405 from the base URL usually means.
const WRONG_SERVER_HINT: &str = "it is probably not Livefyre's API (or the emulator's) but another server, such as the site itself";

/// Whether `status` says the request reached a server that is not Livefyre's API: its
/// ping and registration paths exist and take POST, so Livefyre never answers these.
fn wrong_server(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_404_or_405_hints_at_the_wrong_base_url() {
        assert_eq!(
            RequestError::Status(StatusCode::METHOD_NOT_ALLOWED).to_string(),
            "the base URL answered 405 Method Not Allowed: it is probably not Livefyre's API (or the emulator's) but another server, such as the site itself"
        );
        assert_eq!(
            RequestError::Status(StatusCode::NOT_FOUND).to_string(),
            "the base URL answered 404 Not Found: it is probably not Livefyre's API (or the emulator's) but another server, such as the site itself"
        );
        assert_eq!(
            RequestError::Status(StatusCode::BAD_REQUEST).to_string(),
            "Livefyre answered 400 Bad Request"
        );
    }

    #[test]
    fn base_urls_are_checked() {
        assert_eq!(
            check_base_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            check_base_url("http://h.example/prefix").unwrap(),
            "http://h.example/prefix"
        );
        for bad in [
            "127.0.0.1:80",
            "ftp://h.example",
            "http://h.example/?q=1",
            "/path",
            "",
        ] {
            assert!(
                matches!(check_base_url(bad), Err(ConfigError::BaseUrl(_))),
                "{bad}"
            );
        }
        let leaked = check_base_url("http://user:s3cret@h.example/p").unwrap_err();
        assert_eq!(
            leaked,
            ConfigError::BaseUrl("http://***@h.example/p".to_owned())
        );
        assert!(!leaked.to_string().contains("s3cret"));
        if !cfg!(feature = "rustls") {
            assert_eq!(
                check_base_url("https://h.example"),
                Err(ConfigError::HttpsNeedsRustls)
            );
        }
    }
}
