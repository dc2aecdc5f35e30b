//! The network's key material: HMAC-SHA256 keyed once per key, key fingerprints, and
//! signing and verifying with the current key and any previous ones.
//!
//! HMAC comes from the RustCrypto `hmac`/`sha2` crates directly (the crates jsonwebtoken's
//! `rust_crypto` backend uses): the keyed state is computed once per [`Network`] and cloned
//! per signature, signing cannot fail, and verification compares in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Network, NetworkError};

/// HMAC-SHA256, as every Livefyre token is signed.
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Length of an HMAC-SHA256 signature in bytes.
pub(crate) const SIGNATURE_LEN: usize = 32;

/// A key's fingerprint: the first bytes of its HMAC over a fixed label. Reveals nothing
/// of the key; tells keys apart.
pub(crate) type KeyId = [u8; 8];

/// Which of a network's keys verified a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum KeyUsed {
    Current,
    /// The previous key at this index, in the order given.
    Previous(usize),
}

impl Network {
    /// A fresh HMAC-SHA256 keyed with the network key.
    pub(crate) fn hmac(&self) -> HmacSha256 {
        self.inner.hmac.clone()
    }

    /// A fresh HMAC-SHA256 for each key a signature may be checked with: the current key
    /// first, then the previous ones.
    pub(crate) fn verifying_macs(&self) -> impl Iterator<Item = (KeyUsed, HmacSha256)> + '_ {
        std::iter::once((KeyUsed::Current, self.inner.hmac.clone())).chain(
            self.inner
                .previous
                .iter()
                .enumerate()
                .map(|(index, mac)| (KeyUsed::Previous(index), mac.clone())),
        )
    }

    /// The HS256 signature of `message` with the current key.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut mac = self.hmac();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// Every key, current first: what a signature per key (during a rotation) is made
    /// with, in order.
    pub(crate) fn keys_used(&self) -> impl Iterator<Item = KeyUsed> + '_ {
        std::iter::once(KeyUsed::Current)
            .chain((0..self.inner.previous.len()).map(KeyUsed::Previous))
    }

    /// The HS256 signature of `message` with the key `used`: the current key, or a
    /// previous one (during a rotation, for a peer that may still hold it); `None` for a
    /// previous key this network does not have.
    #[cfg_attr(not(feature = "ping"), allow(dead_code))]
    pub(crate) fn sign_with(&self, used: KeyUsed, message: &[u8]) -> Option<[u8; SIGNATURE_LEN]> {
        let mut mac = self.hmac_with(used)?;
        mac.update(message);
        Some(mac.finalize().into_bytes().into())
    }

    /// A fresh HMAC-SHA256 keyed with the key `used`, for a message fed a piece at a time;
    /// `None` for a previous key this network does not have.
    pub(crate) fn hmac_with(&self, used: KeyUsed) -> Option<HmacSha256> {
        match used {
            KeyUsed::Current => Some(self.hmac()),
            KeyUsed::Previous(index) => self.inner.previous.get(index).cloned(),
        }
    }

    /// Which of the network's keys made `signature`, the HS256 signature of `message`, if
    /// any; each comparison in constant time.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> Option<KeyUsed> {
        self.verifying_macs().find_map(|(key, mut mac)| {
            mac.update(message);
            mac.verify_slice(signature).is_ok().then_some(key)
        })
    }

    /// The fingerprint of the key `used`.
    pub(crate) fn key_id(&self, used: KeyUsed) -> KeyId {
        let index = match used {
            KeyUsed::Current => 0,
            KeyUsed::Previous(index) => index + 1,
        };
        self.inner.ids.get(index).copied().unwrap_or_default()
    }

    /// The fingerprint of every key, current first: what tells one set of keys from
    /// another (a signature per key is kept for one set).
    #[cfg(feature = "pull")]
    pub(crate) fn key_ids(&self) -> &[KeyId] {
        &self.inner.ids
    }

    /// Whether one of this network's keys has fingerprint `id`.
    pub(crate) fn has_key_id(&self, id: &KeyId) -> bool {
        self.inner.ids.contains(id)
    }
}

pub(super) fn key_id(keyed: &HmacSha256) -> KeyId {
    let mut mac = keyed.clone();
    mac.update(b"pingpull key fingerprint");
    let digest = mac.finalize().into_bytes();
    let mut id = KeyId::default();
    let len = id.len();
    id.copy_from_slice(&digest[..len]);
    id
}

/// An HMAC-SHA256 state keyed with `key`; an empty key is refused.
pub(super) fn keyed(key: &str) -> Result<HmacSha256, NetworkError> {
    if key.is_empty() {
        return Err(NetworkError::EmptyKey);
    }
    // HMAC accepts keys of any length; the error arm only guards that promise.
    HmacSha256::new_from_slice(key.as_bytes()).map_err(|_| NetworkError::EmptyKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_with_each_key_and_verifies_which_one() {
        let network = Network::new("example.fyre.co", "new")
            .unwrap()
            .with_previous_keys(["old"])
            .unwrap();
        let current = network.sign_with(KeyUsed::Current, b"m").unwrap();
        let previous = network.sign_with(KeyUsed::Previous(0), b"m").unwrap();
        assert_eq!(current, network.sign(b"m"));
        assert_ne!(current, previous);
        assert_eq!(network.verify(b"m", &previous), Some(KeyUsed::Previous(0)));
        assert_eq!(network.sign_with(KeyUsed::Previous(1), b"m"), None);
        let used: Vec<_> = network.keys_used().collect();
        assert_eq!(used, [KeyUsed::Current, KeyUsed::Previous(0)]);
    }
}
