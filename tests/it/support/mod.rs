//! Test doubles shared by the integration tests.

#[cfg(feature = "ping")]
pub(crate) mod fake_livefyre;
#[cfg(feature = "ping")]
pub(crate) mod scripted_livefyre;
#[cfg(feature = "ping")]
pub(crate) mod traces;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};

/// A token with arbitrary header and payload JSON, signed with `key` (HS256), for
/// testing what validation makes of tokens no builder would make.
pub(crate) fn forge(header: &str, payload: &str, key: &str) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{message}.{signature}")
}

/// Strict percent-decoding, written independently of the library's so tests can use it
/// as an oracle: `None` for a `%` not followed by two hex digits.
pub(crate) fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}
