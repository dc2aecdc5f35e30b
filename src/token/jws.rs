//! The JWS building blocks shared by tokens and profile signatures: strict base64url
//! and the header check; the HMAC itself is the network's (`network/keys.rs`).

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::value::RawValue;

/// base64url without padding, as JWS writes every segment.
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict base64url decoding: no padding, no standard-alphabet characters, and no
/// non-zero trailing bits, so each byte string has exactly one accepted spelling.
pub(crate) fn decode(segment: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(segment).ok()
}

/// Why a JWS header was refused.
pub(crate) enum HeaderError {
    Malformed(&'static str),
    WrongAlgorithm,
}

/// The header fields we look at; others (`typ`, `kid`, `jku`, ...) are ignored, and no
/// key is ever fetched from them.
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow)]
    crit: Option<&'a RawValue>,
}

/// Accepts a base64url JSON header whose `alg` is exactly `HS256`.
pub(crate) fn check_header(segment: &str) -> Result<(), HeaderError> {
    let bytes = decode(segment).ok_or(HeaderError::Malformed("header is not base64url"))?;
    let header: RawHeader<'_> = serde_json::from_slice(&bytes)
        .map_err(|_| HeaderError::Malformed("header is not a JSON object with a string `alg`"))?;
    if header.alg.as_deref() != Some("HS256") {
        return Err(HeaderError::WrongAlgorithm);
    }
    // RFC 7515 §4.1.11: extensions we do not understand must not be ignored.
    if header.crit.is_some() {
        return Err(HeaderError::Malformed("header has `crit` extensions"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_refuses_padding_standard_alphabet_and_trailing_bits() {
        assert_eq!(decode("YQ").as_deref(), Some(&b"a"[..]));
        assert_eq!(decode("YQ=="), None);
        assert_eq!(
            decode("YR"),
            None,
            "non-zero trailing bits give a second spelling of `a`"
        );
        assert_eq!(decode("-_8"), Some(vec![0xfb, 0xff]));
        assert_eq!(decode("+/8"), None);
    }
}
