//! The JWS building blocks shared by tokens and profile signatures: strict base64url
//! and HMAC-SHA256 with the network key.
//!
//! HMAC comes from the RustCrypto `hmac`/`sha2` crates directly (the crates jsonwebtoken's
//! `rust_crypto` backend uses): the keyed state is computed once per [`Network`] and cloned
//! per signature, signing cannot fail, and verification compares in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Network;

/// HMAC-SHA256, as every Livefyre token is signed.
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Length of an HMAC-SHA256 signature in bytes.
pub(crate) const SIGNATURE_LEN: usize = 32;

/// base64url without padding, as JWS writes every segment.
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict base64url decoding: no padding, no standard-alphabet characters, and no
/// non-zero trailing bits, so each byte string has exactly one accepted spelling.
pub(crate) fn decode(segment: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(segment).ok()
}

/// The HS256 signature of `message` (the `header.payload` text) with the network key.
pub(crate) fn sign(network: &Network, message: &[u8]) -> [u8; SIGNATURE_LEN] {
    let mut mac = network.hmac();
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Whether `signature` is the HS256 signature of `message`; compared in constant time.
pub(crate) fn verify(network: &Network, message: &[u8], signature: &[u8]) -> bool {
    let mut mac = network.hmac();
    mac.update(message);
    mac.verify_slice(signature).is_ok()
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
