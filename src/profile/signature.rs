//! The `X-Profile-Signature` header (docs/protocol.md §6): a detached JWS (RFC 7515 appendix F)
//! of the exact profile body bytes, HS256 with the network key, so a receiver can check
//! that the profile came from the key holder unaltered.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac as _;

use crate::Network;
use crate::network::{HmacSha256, SIGNATURE_LEN};
use crate::token::jws;

/// The response header that carries the signature.
pub const SIGNATURE_HEADER: &str = "x-profile-signature";

/// base64url of `{"alg":"HS256"}`, the protected header of every profile signature.
const HEADER_SEGMENT: &str = "eyJhbGciOiJIUzI1NiJ9";

/// The detached JWS of `body`: `base64url(header)..base64url(signature)`.
///
/// ```
/// use pingpull::{Network, profile};
///
/// let network = Network::new("example.fyre.co", "testkeytest")?;
/// let body = br#"{"id":"u1","display_name":"Bob"}"#;
/// let signature = profile::sign_body(&network, body);
/// assert!(signature.starts_with("eyJhbGciOiJIUzI1NiJ9.."));
/// assert!(profile::verify_body_signature(&network, &signature, body).is_ok());
/// assert!(profile::verify_body_signature(&network, &signature, b"{}").is_err());
/// # Ok::<(), pingpull::NetworkError>(())
/// ```
pub fn sign_body(network: &Network, body: &[u8]) -> String {
    let signature: [u8; SIGNATURE_LEN] = signing_mac(network.hmac(), HEADER_SEGMENT, body)
        .finalize()
        .into_bytes()
        .into();
    let mut out = String::with_capacity(HEADER_SEGMENT.len() + 2 + 43);
    out.push_str(HEADER_SEGMENT);
    out.push_str("..");
    out.push_str(&jws::encode(&signature));
    out
}

/// Checks a detached JWS of `body` made with the network key.
///
/// Any HS256 protected header is accepted (not only ours); the payload segment must be
/// empty, as the body travels separately.
///
/// # Errors
///
/// [`SignatureError`] says whether the value is malformed, uses another algorithm, or
/// does not match the body.
pub fn verify_body_signature(
    network: &Network,
    signature: &str,
    body: &[u8],
) -> Result<(), SignatureError> {
    let mut parts = signature.split('.');
    let (Some(header), Some(""), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SignatureError::Malformed);
    };
    jws::check_header(header).map_err(|error| match error {
        jws::HeaderError::Malformed(_) => SignatureError::Malformed,
        jws::HeaderError::WrongAlgorithm => SignatureError::WrongAlgorithm,
    })?;
    let signature = jws::decode(signature).ok_or(SignatureError::Malformed)?;
    // Any of the network's keys will do (a rotation in progress); each compared in
    // constant time.
    let verified = network.verifying_macs().any(|(_, mac)| {
        signing_mac(mac, header, body)
            .verify_slice(&signature)
            .is_ok()
    });
    if verified {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// `mac` (keyed with a network key) fed `header.base64url(body)`, the bytes HS256
/// signs. The body is encoded a piece at a time on the stack and fed to the MAC, so a
/// signature costs no allocation (pieces of a multiple of 3 bytes encode exactly as the
/// whole does).
fn signing_mac(mut mac: HmacSha256, header: &str, body: &[u8]) -> HmacSha256 {
    const PIECE: usize = 768;
    mac.update(header.as_bytes());
    mac.update(b".");
    let mut encoded = [0u8; PIECE / 3 * 4];
    for piece in body.chunks(PIECE) {
        match URL_SAFE_NO_PAD.encode_slice(piece, &mut encoded) {
            Ok(len) => mac.update(&encoded[..len]),
            // Cannot happen (the buffer fits a whole piece); stay correct regardless.
            Err(_) => mac.update(jws::encode(piece).as_bytes()),
        }
    }
    mac
}

/// Why a profile signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// Not `header..signature` in base64url with a JSON header.
    Malformed,
    /// The header's `alg` is not `HS256`.
    WrongAlgorithm,
    /// Not made with the network key over these body bytes.
    Mismatch,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("profile signature is not a detached JWS"),
            Self::WrongAlgorithm => f.write_str("profile signature algorithm is not HS256"),
            Self::Mismatch => {
                f.write_str("profile signature does not match the body and network key")
            }
        }
    }
}

impl std::error::Error for SignatureError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn network() -> Network {
        Network::new("example.fyre.co", "testkeytest").unwrap()
    }

    #[test]
    fn piecewise_encoding_signs_exactly_the_whole_base64url_body() {
        let network = network();
        for len in [0, 1, 2, 3, 767, 768, 769, 1535, 1536, 1537, 5000] {
            let body: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let message = format!("{HEADER_SEGMENT}.{}", jws::encode(&body));
            let expected = jws::encode(&network.sign(message.as_bytes()));
            let signature = sign_body(&network, &body);
            assert_eq!(
                signature,
                format!("{HEADER_SEGMENT}..{expected}"),
                "{len} bytes"
            );
            assert!(verify_body_signature(&network, &signature, &body).is_ok());
        }
    }

    #[test]
    fn signs_with_the_current_key_and_verifies_with_any() {
        let body = br#"{"id":"u1","display_name":"Bob"}"#;
        let rotating = Network::new("example.fyre.co", "newkey")
            .unwrap()
            .with_previous_keys(["testkeytest"])
            .unwrap();
        let new_only = Network::new("example.fyre.co", "newkey").unwrap();
        let signed_now = sign_body(&rotating, body);
        assert!(verify_body_signature(&new_only, &signed_now, body).is_ok());
        let signed_before = sign_body(&network(), body);
        assert!(verify_body_signature(&rotating, &signed_before, body).is_ok());
        assert_eq!(
            verify_body_signature(&new_only, &signed_before, body),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn header_segment_is_base64url_of_the_hs256_header() {
        assert_eq!(jws::encode(br#"{"alg":"HS256"}"#), HEADER_SEGMENT);
    }

    #[test]
    fn refuses_another_key_a_changed_body_and_malformed_values() {
        let body = br#"{"id":"u1","display_name":"Bob"}"#;
        let signature = sign_body(&network(), body);
        let other = Network::new("example.fyre.co", "otherkey").unwrap();
        assert_eq!(
            verify_body_signature(&other, &signature, body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_body_signature(
                &network(),
                &signature,
                br#"{"id":"u1","display_name":"Bob "}"#
            ),
            Err(SignatureError::Mismatch)
        );
        let attached = signature.replace("..", ".e30.");
        for bad in ["", "..", "a.b", &attached, &format!("{signature}.")] {
            assert_eq!(
                verify_body_signature(&network(), bad, body),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        let none = format!(
            "{}..{}",
            jws::encode(br#"{"alg":"none"}"#),
            &signature[22..]
        );
        assert_eq!(
            verify_body_signature(&network(), &none, body),
            Err(SignatureError::WrongAlgorithm)
        );
    }
}
