//! Strict percent-encoding for user ids and tokens in URLs (docs/protocol.md §6).
//!
//! Decoding refuses bad escapes and invalid UTF-8 rather than replacing them, so two
//! different inputs never decode to the same string by accident.

use std::borrow::Cow;
use std::fmt;

/// Decodes `%XX` escapes; `+` is left as `+` (neither ids nor tokens contain spaces).
pub(crate) fn decode(input: &str) -> Result<Cow<'_, str>, DecodeError> {
    if !input.contains('%') {
        return Ok(Cow::Borrowed(input));
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let high = bytes.get(i + 1).and_then(|b| hex_value(*b));
            let low = bytes.get(i + 2).and_then(|b| hex_value(*b));
            let (Some(high), Some(low)) = (high, low) else {
                return Err(DecodeError::BadEscape);
            };
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| DecodeError::InvalidUtf8)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes every byte outside RFC 3986's unreserved set, so the result stands
/// safely in a path segment or a query value.
pub(crate) fn encode(input: &str) -> Cow<'_, str> {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    if input.bytes().all(unreserved) {
        return Cow::Borrowed(input);
    }
    let mut out = String::with_capacity(input.len() * 3);
    for b in input.bytes() {
        if unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 0xf)]));
        }
    }
    Cow::Owned(out)
}

/// Why a percent-encoded string could not be decoded.
// Public through `pull::DecodeError`; without that feature nothing outside sees it.
#[cfg_attr(not(feature = "pull"), allow(unreachable_pub))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// The decoded bytes are not UTF-8.
    InvalidUtf8,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadEscape => f.write_str("`%` not followed by two hex digits"),
            Self::InvalidUtf8 => f.write_str("percent-decoded bytes are not UTF-8"),
        }
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_escapes_and_leaves_plus_alone() {
        assert_eq!(decode("a%2Fb%2e+c").unwrap(), "a/b.+c");
        assert!(matches!(decode("plain"), Ok(Cow::Borrowed("plain"))));
        assert_eq!(decode("%C3%A9").unwrap(), "é");
    }

    #[test]
    fn refuses_bad_escapes_and_invalid_utf8() {
        for bad in ["%", "%2", "%zz", "a%g1", "%%41"] {
            assert_eq!(decode(bad), Err(DecodeError::BadEscape), "{bad}");
        }
        for bad in ["%ff", "%C3", "%C3%28", "%ED%A0%80"] {
            assert_eq!(decode(bad), Err(DecodeError::InvalidUtf8), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(s in "\\PC{0,40}") {
            let encoded = encode(&s);
            prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
            let decoded = decode(&encoded).unwrap().into_owned();
            prop_assert_eq!(decoded, s.clone());
        }
    }
}
