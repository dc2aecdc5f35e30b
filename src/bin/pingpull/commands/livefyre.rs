//! How the commands that call Livefyre's API (`ping`, `register`) reach it: the base URL
//! (`--base-url`, else the network's), what to say when it answers like another server,
//! the roots https trusts (`--ca-cert`), and the forward proxy (`--proxy`, else the
//! environment's), which `check` takes too.

use std::fmt;
use std::path::Path;

use clap::Args;
use pingpull::Network;
use pingpull::ping::{Proxy, TlsRoots};

use super::error::CommandError;

/// The base URL given, else Livefyre's for the network.
pub(super) fn base_url(network: &Network, base_url: Option<String>) -> String {
    base_url.unwrap_or_else(|| network.default_base_url())
}

/// What to check when the base URL answered like a server other than Livefyre's.
pub(super) fn base_url_hint(network: &Network, base_url: &str) -> String {
    format!(
        "check --base-url (it was {base_url}): Livefyre's API is {}, and `pingpull emulator` prints the emulator's",
        network.default_base_url()
    )
}

/// The roots https trusts: Mozilla's, plus the CA certificates of `--ca-cert FILE`.
pub(super) fn tls_roots(ca_cert: Option<&Path>) -> Result<Option<TlsRoots>, CommandError> {
    let Some(path) = ca_cert else {
        return Ok(None);
    };
    let bad = |error: &dyn std::fmt::Display| {
        CommandError::Usage(format!("--ca-cert {}: {error}", path.display()))
    };
    let pem = std::fs::read(path).map_err(|e| bad(&e))?;
    TlsRoots::default()
        .add_pem(&pem)
        .map(Some)
        .map_err(|e| bad(&e))
}

/// `--proxy URL`, else the proxies the environment names.
#[derive(Args, Default)]
pub(crate) struct ProxyArgs {
    /// Send every request through this forward proxy: http://[user:password@]host:port
    /// (https through a CONNECT tunnel). Without it, HTTPS_PROXY, HTTP_PROXY, ALL_PROXY
    /// and NO_PROXY say which requests go through which proxy, as for curl
    #[arg(long, value_name = "URL")]
    proxy: Option<String>,
}

impl ProxyArgs {
    /// The proxy given, else the environment's (which may be none at all).
    pub(super) fn proxy(&self) -> Result<Proxy, CommandError> {
        match &self.proxy {
            Some(url) => Proxy::new(url).map_err(|e| CommandError::Usage(format!("--proxy: {e}"))),
            None => Ok(Proxy::from_env()),
        }
    }
}

// The URL may hold the proxy's password: never in Debug output.
impl fmt::Debug for ProxyArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proxy = self.proxy.as_ref().map(|_| "<redacted>");
        f.debug_struct("ProxyArgs").field("proxy", &proxy).finish()
    }
}
