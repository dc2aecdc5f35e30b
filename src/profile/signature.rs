//! The `X-Profile-Signature` header (docs/protocol.md §6): a detached JWS (RFC 7515 appendix F)
//! of the exact profile body bytes, HS256 with the network key, so a receiver can check
//! that the profile came from the key holder unaltered.
//!
//! During a key rotation the header lists one such JWS per key of the network, current
//! first, separated by commas (HTTP's own list syntax, so a proxy that splits or joins
//! header lines keeps the meaning); a verifier accepts the header when any one of them
//! verifies with any key it holds, so neither side has to switch first.

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

/// The most signatures a verifier reads from one header; any after them are ignored, so
/// a hostile endpoint cannot make a verifier hash the body without end.
const MAX_SIGNATURES: usize = 16;

/// Length of one signature in the header: `{HEADER_SEGMENT}..` and 43 base64url characters.
const ONE_SIGNATURE_LEN: usize = HEADER_SEGMENT.len() + 2 + 43;

/// The `X-Profile-Signature` value of `body`: its detached JWS,
/// `base64url(header)..base64url(signature)`, with the network's current key, followed,
/// while previous keys are configured, by one with each previous key, in order, all
/// separated by commas.
///
/// With no previous key it is a single JWS, as it always was.
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
///
/// // During a rotation: one signature per key, and either key verifies.
/// let rotating = Network::new("example.fyre.co", "newkey")?.with_previous_keys(["testkeytest"])?;
/// let both = profile::sign_body(&rotating, body);
/// assert_eq!(both.split(',').count(), 2);
/// assert!(profile::verify_body_signature(&network, &both, body).is_ok());
/// # Ok::<(), pingpull::NetworkError>(())
/// ```
pub fn sign_body(network: &Network, body: &[u8]) -> String {
    let keys = 1 + network.previous_key_count();
    let mut out = String::with_capacity(keys * (ONE_SIGNATURE_LEN + 1));
    if keys == 1 {
        // The usual case, with no list to allocate.
        let mut mac = network.hmac();
        feed(std::slice::from_mut(&mut mac), HEADER_SEGMENT, body);
        push_signature(&mut out, mac);
        return out;
    }
    let mut macs: Vec<HmacSha256> = network
        .keys_used()
        .filter_map(|used| network.hmac_with(used))
        .collect();
    // One pass over the body feeds every key's MAC.
    feed(&mut macs, HEADER_SEGMENT, body);
    for (index, mac) in macs.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        push_signature(&mut out, mac);
    }
    out
}

/// Appends `{HEADER_SEGMENT}..base64url(signature)`.
fn push_signature(out: &mut String, mac: HmacSha256) {
    let signature: [u8; SIGNATURE_LEN] = mac.finalize().into_bytes().into();
    out.push_str(HEADER_SEGMENT);
    out.push_str("..");
    out.push_str(&jws::encode(&signature));
}

/// Checks an `X-Profile-Signature` value against `body`: accepted when any detached JWS
/// it lists (one, or several separated by commas during a key rotation) was made over
/// these bytes with any of `network`'s keys.
///
/// Any HS256 protected header is accepted (not only ours); the payload segment must be
/// empty, as the body travels separately. Empty list elements and spaces around commas
/// are ignored; only the first 16 signatures are read.
///
/// # Errors
///
/// [`SignatureError`] when none verifies: [`Mismatch`](SignatureError::Mismatch) if one
/// was a well-formed HS256 signature, else [`WrongAlgorithm`](SignatureError::WrongAlgorithm)
/// if one named another algorithm, else [`Malformed`](SignatureError::Malformed).
pub fn verify_body_signature(
    network: &Network,
    signature: &str,
    body: &[u8],
) -> Result<(), SignatureError> {
    let mut error = SignatureError::Malformed;
    let mut listed: Vec<(&str, Vec<u8>)> = Vec::new();
    for value in signature
        .split(',')
        .map(|value| value.trim_matches([' ', '\t']))
        .filter(|value| !value.is_empty())
        .take(MAX_SIGNATURES)
    {
        match parse(value) {
            Ok(parsed) => listed.push(parsed),
            Err(refused) if refused.telling() > error.telling() => error = refused,
            Err(_) => {}
        }
    }
    if listed.is_empty() {
        return Err(error);
    }
    // One pass over the body for each distinct protected header (ours: one), feeding
    // every key's MAC; each comparison in constant time.
    for (index, (header, _)) in listed.iter().enumerate() {
        if listed[..index].iter().any(|(seen, _)| seen == header) {
            continue;
        }
        let mut macs: Vec<HmacSha256> = network.verifying_macs().map(|(_, mac)| mac).collect();
        feed(&mut macs, header, body);
        let verified = macs.iter().any(|mac| {
            listed[index..]
                .iter()
                .filter(|(other, _)| other == header)
                .any(|(_, signature)| mac.clone().verify_slice(signature).is_ok())
        });
        if verified {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// Checks the `X-Profile-Signature` of an answer against its `body`, as
/// [`verify_body_signature`] does; `None` when the answer carries none. Several header
/// lines are read as one list, as HTTP joins them; a line that is not text counts as a
/// malformed element.
#[cfg(feature = "emulator")]
pub(crate) fn verify_signature_headers(
    network: &Network,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Option<Result<(), SignatureError>> {
    let mut lines = headers.get_all(SIGNATURE_HEADER).iter().peekable();
    lines.peek()?;
    let joined = lines
        .filter_map(|line| line.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    Some(verify_body_signature(network, &joined, body))
}

/// One detached JWS: its protected header segment (checked to be HS256) and its signature.
fn parse(value: &str) -> Result<(&str, Vec<u8>), SignatureError> {
    let mut parts = value.split('.');
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
    Ok((header, signature))
}

/// Feeds each MAC (keyed with a network key) `header.base64url(body)`, the bytes HS256
/// signs. The body is encoded a piece at a time on the stack, once for all the MACs, so
/// a signature costs no allocation (pieces of a multiple of 3 bytes encode exactly as the
/// whole does).
fn feed(macs: &mut [HmacSha256], header: &str, body: &[u8]) {
    const PIECE: usize = 768;
    for mac in macs.iter_mut() {
        mac.update(header.as_bytes());
        mac.update(b".");
    }
    let mut encoded = [0u8; PIECE / 3 * 4];
    for piece in body.chunks(PIECE) {
        let fallback;
        let bytes = match URL_SAFE_NO_PAD.encode_slice(piece, &mut encoded) {
            Ok(len) => &encoded[..len],
            // Cannot happen (the buffer fits a whole piece); stay correct regardless.
            Err(_) => {
                fallback = jws::encode(piece);
                fallback.as_bytes()
            }
        };
        for mac in macs.iter_mut() {
            mac.update(bytes);
        }
    }
}

/// Why a profile signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// Not `header..signature` in base64url with a JSON header.
    Malformed,
    /// The header's `alg` is not `HS256`.
    WrongAlgorithm,
    /// Not made with any of the network's keys over these body bytes.
    Mismatch,
}

impl SignatureError {
    /// How much the reason says about the signatures a header lists: when none verifies,
    /// the most telling one is given.
    fn telling(self) -> u8 {
        match self {
            Self::Malformed => 0,
            Self::WrongAlgorithm => 1,
            Self::Mismatch => 2,
        }
    }
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

    fn keyed(key: &str) -> Network {
        Network::new("example.fyre.co", key).unwrap()
    }

    #[test]
    fn while_rotating_lists_one_signature_per_key_current_first() {
        let body = br#"{"id":"u1","display_name":"Bob"}"#;
        let rotating = keyed("B").with_previous_keys(["A", "Z"]).unwrap();
        let listed = sign_body(&rotating, body);
        let each = [keyed("B"), keyed("A"), keyed("Z")].map(|n| sign_body(&n, body));
        assert_eq!(listed, each.join(","));
        for holder in [keyed("A"), keyed("B"), keyed("Z"), rotating] {
            assert_eq!(verify_body_signature(&holder, &listed, body), Ok(()));
        }
        assert_eq!(
            verify_body_signature(&keyed("C"), &listed, body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_body_signature(&keyed("A"), &listed, b"{}"),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn reads_the_list_as_http_does_and_gives_the_most_telling_refusal() {
        let body = b"{}";
        let good = sign_body(&network(), body);
        let other = sign_body(&keyed("other"), body);
        let none = format!("{}..{}", jws::encode(br#"{"alg":"none"}"#), &good[22..]);
        for accepted in [
            format!("{other}, {good}"),
            format!(",{other} ,\t{good},"),
            format!("garbage,{none},{good}"),
        ] {
            assert_eq!(
                verify_body_signature(&network(), &accepted, body),
                Ok(()),
                "{accepted}"
            );
        }
        for (refused, error) in [
            (format!("garbage,{other},{none}"), SignatureError::Mismatch),
            (format!("{none},garbage"), SignatureError::WrongAlgorithm),
            (" , ,".to_owned(), SignatureError::Malformed),
        ] {
            assert_eq!(
                verify_body_signature(&network(), &refused, body),
                Err(error),
                "{refused}"
            );
        }
        // Only the first 16 are read.
        let many = vec![other.as_str(); MAX_SIGNATURES];
        let late = format!("{},{good}", many.join(","));
        assert_eq!(
            verify_body_signature(&network(), &late, body),
            Err(SignatureError::Mismatch)
        );
        let in_time = format!("{},{good}", many[1..].join(","));
        assert_eq!(verify_body_signature(&network(), &in_time, body), Ok(()));
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
