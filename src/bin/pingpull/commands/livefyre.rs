//! How the commands that call Livefyre's API (`ping`, `register`) reach it: the base URL
//! (`--base-url`, else the network's), what to say when it answers like another server,
//! and the roots https trusts (`--ca-cert`).

use std::path::Path;

use pingpull::Network;
use pingpull::ping::TlsRoots;

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
