//! Building tokens byte for byte as the official Python library does (docs/protocol.md §3).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use super::{PROBE_CLAIM, SYSTEM_USER, Token, jws};
use crate::clock::unix_whole_seconds;
#[cfg(feature = "ping")]
use crate::network::KeyUsed;
use crate::{Network, user_id, user_id::UserIdError};

/// The header every token we build carries, in this order.
const HEADER_JSON: &str = r#"{"typ":"JWT","alg":"HS256"}"#;

/// The claims of a Livefyre token, in the order they are written.
///
/// Build one with [`Claims::system`] or [`Claims::user`] and an absolute expiry, then
/// [`sign`](Claims::sign) it. The time-relative helpers ([`system_token`](super::system_token),
/// [`user_auth_token`](super::user_auth_token)) do both.
///
/// ```
/// use pingpull::{Network, token::Claims};
///
/// let network = Network::new("example.fyre.co", "testkeytest")?;
/// let claims = Claims::system(&network, 1_700_086_400);
/// assert_eq!(
///     claims.to_json(),
///     r#"{"domain":"example.fyre.co","user_id":"system","display_name":"system","expires":1700086400}"#
/// );
/// # Ok::<(), pingpull::NetworkError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    domain: String,
    user_id: String,
    display_name: String,
    expires: i64,
    /// Whether the token is a conformance probe, made to be refused (see
    /// [`conformance_probe`](Self::conformance_probe)).
    probe: bool,
}

impl Claims {
    /// The claims of a system token for `network`, expiring at `expires` (Unix seconds).
    pub fn system(network: &Network, expires: i64) -> Self {
        Self {
            domain: network.name().to_owned(),
            user_id: SYSTEM_USER.to_owned(),
            display_name: SYSTEM_USER.to_owned(),
            expires,
            probe: false,
        }
    }

    /// The claims of a user auth token, expiring at `expires` (Unix seconds).
    ///
    /// # Errors
    ///
    /// Refuses a `user_id` that does not match `[A-Za-z0-9_.-]+`.
    pub fn user(
        network: &Network,
        user_id: impl Into<String>,
        display_name: impl Into<String>,
        expires: i64,
    ) -> Result<Self, UserIdError> {
        let user_id = user_id.into();
        user_id::validate(&user_id)?;
        Ok(Self {
            domain: network.name().to_owned(),
            user_id,
            display_name: display_name.into(),
            expires,
            probe: false,
        })
    }

    /// The `domain` claim.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The `user_id` claim.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The `display_name` claim.
    pub fn display_name(&self) -> &str {
        &self.display_name
    }

    /// The `expires` claim, in Unix seconds.
    pub fn expires(&self) -> i64 {
        self.expires
    }

    /// The same claims marked as a conformance probe: `"pingpull_probe":true` after the
    /// four claims (docs/protocol.md §6). `check` marks the tokens it sends to be refused
    /// (another key, another network, a user's, expired), so the Pull layer logs their
    /// refusal at DEBUG and keeps its operator warnings for real pulls. Endpoints ignore
    /// the unknown claim, as the official libraries do.
    #[cfg(any(feature = "emulator", test))]
    pub(crate) fn conformance_probe(mut self) -> Self {
        self.probe = true;
        self
    }

    /// The payload exactly as it is signed: compact JSON, claims in order, non-ASCII
    /// escaped as lowercase `\uXXXX` the way Python's JSON encoder writes it.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(96 + self.display_name.len());
        out.push_str("{\"domain\":");
        write_python_json_string(&mut out, &self.domain);
        out.push_str(",\"user_id\":");
        write_python_json_string(&mut out, &self.user_id);
        out.push_str(",\"display_name\":");
        write_python_json_string(&mut out, &self.display_name);
        // Writing to a String cannot fail.
        let _ = write!(out, ",\"expires\":{}", self.expires);
        if self.probe {
            let _ = write!(out, ",\"{PROBE_CLAIM}\":true");
        }
        out.push('}');
        out
    }

    /// Signs the claims with the network key: `base64url(header).base64url(claims).signature`.
    pub fn sign(&self, network: &Network) -> Token {
        let signing_input = self.signing_input();
        let signature = network.sign(signing_input.as_bytes());
        with_signature(signing_input, &signature)
    }

    /// Signs the claims with the network's key `used` (a previous one during a rotation);
    /// `None` for a previous key the network does not have.
    #[cfg(feature = "ping")]
    pub(crate) fn sign_with(&self, network: &Network, used: KeyUsed) -> Option<Token> {
        let signing_input = self.signing_input();
        let signature = network.sign_with(used, signing_input.as_bytes())?;
        Some(with_signature(signing_input, &signature))
    }

    /// `base64url(header).base64url(claims)`: what the signature covers.
    fn signing_input(&self) -> String {
        let mut input = jws::encode(HEADER_JSON.as_bytes());
        input.push('.');
        input.push_str(&jws::encode(self.to_json().as_bytes()));
        input
    }
}

/// The compact token: the signing input, a dot, the signature.
fn with_signature(mut signing_input: String, signature: &[u8]) -> Token {
    signing_input.push('.');
    signing_input.push_str(&jws::encode(signature));
    Token(signing_input)
}

/// `now + lifetime` in whole Unix seconds, saturating instead of overflowing.
fn expiry(now: SystemTime, lifetime: Duration) -> i64 {
    let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
    unix_whole_seconds(now).saturating_add(lifetime)
}

/// A system token for `network` that expires `lifetime` after `now` (whole seconds).
pub fn system_token_at(network: &Network, now: SystemTime, lifetime: Duration) -> Token {
    Claims::system(network, expiry(now, lifetime)).sign(network)
}

/// As [`system_token_at`], signed with the network's key `used`: a previous key, for a
/// peer that still holds it during a rotation. `None` for a previous key the network
/// does not have.
#[cfg(feature = "ping")]
pub(crate) fn system_token_with(
    network: &Network,
    used: KeyUsed,
    now: SystemTime,
    lifetime: Duration,
) -> Option<Token> {
    Claims::system(network, expiry(now, lifetime)).sign_with(network, used)
}

/// A user auth token that expires `lifetime` after `now` (whole seconds).
///
/// # Errors
///
/// Refuses a `user_id` that does not match `[A-Za-z0-9_.-]+`.
pub fn user_auth_token_at(
    network: &Network,
    user_id: &str,
    display_name: &str,
    now: SystemTime,
    lifetime: Duration,
) -> Result<Token, UserIdError> {
    Ok(Claims::user(network, user_id, display_name, expiry(now, lifetime))?.sign(network))
}

/// Appends `s` as a JSON string the way Python's `json.dumps` (with `ensure_ascii`) does.
fn write_python_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                // Control characters, DEL and non-ASCII: UTF-16 units, surrogate pairs above U+FFFF.
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network() -> Network {
        Network::new("example.fyre.co", "testkeytest").unwrap()
    }

    #[test]
    fn escapes_like_python_json_dumps() {
        // python3 -c 'import json; print(json.dumps("Zoë 山田 🎉\x7f\x01\n\"/\\", separators=(",",":")))'
        let mut out = String::new();
        write_python_json_string(&mut out, "Zoë 山田 🎉\u{7f}\u{1}\n\"/\\");
        assert_eq!(
            out,
            r#""Zo\u00eb \u5c71\u7530 \ud83c\udf89\u007f\u0001\n\"/\\""#
        );
    }

    #[test]
    fn user_claims_escape_non_ascii_display_names() {
        let claims = Claims::user(&network(), "u1", "Zoë 山田 🎉", 1_700_003_600).unwrap();
        assert_eq!(
            claims.to_json(),
            r#"{"domain":"example.fyre.co","user_id":"u1","display_name":"Zo\u00eb \u5c71\u7530 \ud83c\udf89","expires":1700003600}"#
        );
    }

    #[cfg(feature = "ping")]
    #[test]
    fn a_system_token_signed_with_a_previous_key_validates_with_that_key_alone() {
        use crate::token::SystemTokenValidator;
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let rotating = Network::new("example.fyre.co", "newkey")
            .unwrap()
            .with_previous_keys(["testkeytest"])
            .unwrap();
        let old = system_token_with(
            &rotating,
            KeyUsed::Previous(0),
            now,
            Duration::from_secs(60),
        );
        let old = old.unwrap();
        let only_old = SystemTokenValidator::new(network());
        assert!(only_old.validate_at(old.as_str(), now).is_ok());
        let only_new =
            SystemTokenValidator::new(Network::new("example.fyre.co", "newkey").unwrap());
        assert!(only_new.validate_at(old.as_str(), now).is_err());
        let current = system_token_with(&rotating, KeyUsed::Current, now, Duration::from_secs(60));
        assert_eq!(
            current.unwrap().as_str(),
            system_token_at(&rotating, now, Duration::from_secs(60)).as_str()
        );
        assert!(system_token_with(&rotating, KeyUsed::Previous(1), now, Duration::ZERO).is_none());
    }

    #[test]
    fn a_probe_carries_its_mark_after_the_four_claims() {
        let probe = Claims::system(&network(), 1_700_086_400).conformance_probe();
        assert_eq!(
            probe.to_json(),
            r#"{"domain":"example.fyre.co","user_id":"system","display_name":"system","expires":1700086400,"pingpull_probe":true}"#
        );
    }

    #[test]
    fn user_claims_refuse_a_bad_user_id() {
        let err = Claims::user(&network(), "bob\n", "Bob", 0).unwrap_err();
        assert!(matches!(err, UserIdError::Character { .. }));
    }

    #[test]
    fn expiry_saturates_instead_of_overflowing() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(expiry(now, Duration::MAX), i64::MAX);
        assert_eq!(
            expiry(now, Duration::from_millis(86_400_999)),
            1_700_086_400
        );
    }
}
