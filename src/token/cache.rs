//! A bounded cache of verified system tokens.
//!
//! Livefyre reuses one system token for up to 24 hours, so most pulls carry a token
//! already verified. A hit skips the HMAC (the one expensive step of validation) but
//! still checks expiry against the current time.
//!
//! Design, for a cache that sits on a public endpoint:
//! - only tokens that passed every check are inserted, so a forged or failed token can
//!   never be answered from the cache (no poisoning);
//! - the slot is chosen by a keyed hash (SipHash with per-cache random keys), so an
//!   attacker cannot aim at a slot, and the cached token is compared with the presented
//!   one in constant time, so lookup timing says nothing about a cached token's bytes;
//! - a fixed number of slots, each holding one token: bounded memory, O(1) lookups, and
//!   a collision simply evicts (the evicted token is verified again on its next use).

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::Expiry;
use crate::Network;
use crate::network::KeyId;

/// How many tokens a [`TokenCache`] holds unless told otherwise: far more than the one
/// or two system tokens a network has live at a time.
pub const DEFAULT_TOKEN_CACHE_CAPACITY: usize = 64;

/// The most slots a [`TokenCache`] takes (larger capacities are reduced to it): far
/// beyond any real use, and small enough that the slots' allocation cannot fail.
pub const MAX_TOKEN_CACHE_CAPACITY: usize = 1 << 20;

/// How many trailing bytes pick a token's slot: an HS256 signature segment is 43.
const HASHED_TAIL: usize = 48;

/// A bounded cache of verified tokens and their expiry, shared by clones of a
/// [`SystemTokenValidator`](super::SystemTokenValidator).
///
/// `Debug` shows only the capacity: cached tokens are secrets.
///
/// ```
/// use pingpull::{Network, token::{self, SystemTokenValidator, TokenCache}};
///
/// let network = Network::new("example.fyre.co", "testkeytest")?;
/// let validator = SystemTokenValidator::new(network.clone()).cache(Some(TokenCache::new(16)));
/// let token = token::system_token(&network);
/// assert!(validator.validate(token.as_str()).is_ok()); // verified (HMAC), then remembered
/// assert!(validator.validate(token.as_str()).is_ok()); // found: no HMAC, expiry checked
/// assert_eq!(TokenCache::new(usize::MAX).capacity(), token::MAX_TOKEN_CACHE_CAPACITY);
/// # Ok::<(), pingpull::NetworkError>(())
/// ```
pub struct TokenCache {
    /// Keys of the slot hash, random per cache.
    hasher: RandomState,
    slots: RwLock<Box<[Option<Slot>]>>,
}

struct Slot {
    token: Box<[u8]>,
    expiry: Expiry,
    /// The fingerprint of the key that verified the token: a hit counts only while the
    /// validator's network still has that key.
    key: KeyId,
}

impl TokenCache {
    /// A cache of `capacity` slots, rounded up to a power of two and kept within
    /// 1..=[`MAX_TOKEN_CACHE_CAPACITY`].
    pub fn new(capacity: usize) -> Self {
        let slots = capacity
            .clamp(1, MAX_TOKEN_CACHE_CAPACITY)
            .next_power_of_two();
        Self {
            hasher: RandomState::new(),
            slots: RwLock::new((0..slots).map(|_| None).collect()),
        }
    }

    /// How many tokens the cache can hold.
    pub fn capacity(&self) -> usize {
        self.read().len()
    }

    /// The expiry of `token` if it is cached (so it was verified before) under a key
    /// `network` still has.
    pub(crate) fn get(&self, token: &str, network: &Network) -> Option<Expiry> {
        let slots = self.read();
        let slot = slots[self.index(token, slots.len())].as_ref()?;
        // Lengths are not secret (tokens of one network have predictable lengths); the
        // bytes are compared without an early exit (`constant_time_eq` returns false on
        // a length mismatch, and otherwise reads every byte).
        if constant_time_eq::constant_time_eq(&slot.token, token.as_bytes())
            && network.has_key_id(&slot.key)
        {
            Some(slot.expiry)
        } else {
            None
        }
    }

    /// Remembers a token that passed every check.
    pub(crate) fn insert(&self, token: &str, expiry: Expiry, key: KeyId) {
        let mut slots = self.write();
        let index = self.index(token, slots.len());
        slots[index] = Some(Slot {
            token: token.as_bytes().into(),
            expiry,
            key,
        });
    }

    fn index(&self, token: &str, slots: usize) -> usize {
        // Only the tail is hashed: it holds the signature, which differs between any two
        // tokens, and a collision costs one HMAC, never a wrong answer (the whole token
        // is compared). `slots` is a power of two; SipHash's low bits are as good as any.
        let bytes = token.as_bytes();
        let tail = &bytes[bytes.len().saturating_sub(HASHED_TAIL)..];
        (self.hasher.hash_one(tail) as usize) & (slots - 1)
    }

    fn read(&self) -> RwLockReadGuard<'_, Box<[Option<Slot>]>> {
        // A panic while holding the lock cannot leave a slot half-written.
        self.slots.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Box<[Option<Slot>]>> {
        self.slots.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new(DEFAULT_TOKEN_CACHE_CAPACITY)
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::KeyUsed;

    fn expiry(at: f64) -> Expiry {
        Expiry::new(at)
    }

    fn network() -> Network {
        Network::new("example.fyre.co", "k").unwrap()
    }

    fn current_key() -> KeyId {
        network().key_id(KeyUsed::Current)
    }

    #[test]
    fn a_hit_needs_the_key_that_verified_the_token() {
        let cache = TokenCache::new(8);
        let rotating = network().with_previous_keys(["old"]).unwrap();
        let old = rotating.key_id(KeyUsed::Previous(0));
        cache.insert("aaa.bbb.old", expiry(10.0), old);
        assert_eq!(cache.get("aaa.bbb.old", &rotating), Some(expiry(10.0)));
        // The rotation is over: the old key is gone, and so is its token's hit.
        assert_eq!(cache.get("aaa.bbb.old", &network()), None);
    }

    #[test]
    fn answers_only_the_exact_token_inserted() {
        let cache = TokenCache::new(8);
        cache.insert("aaa.bbb.ccc", expiry(10.0), current_key());
        assert_eq!(cache.get("aaa.bbb.ccc", &network()), Some(expiry(10.0)));
        assert_eq!(cache.get("aaa.bbb.ccd", &network()), None);
        assert_eq!(cache.get("aaa.bbb.cc", &network()), None);
        assert_eq!(cache.get("", &network()), None);
    }

    #[test]
    fn stays_within_its_capacity() {
        let cache = TokenCache::new(5);
        assert_eq!(cache.capacity(), 8);
        for n in 0..1000 {
            cache.insert(&format!("token-{n}"), expiry(f64::from(n)), current_key());
        }
        let cached = (0..1000)
            .filter(|n| cache.get(&format!("token-{n}"), &network()).is_some())
            .count();
        assert!((1..=8).contains(&cached), "{cached} tokens cached");
        // The most recent insert is always there.
        assert_eq!(cache.get("token-999", &network()), Some(expiry(999.0)));
    }

    #[test]
    fn debug_shows_no_token() {
        let cache = TokenCache::new(2);
        cache.insert("secret.token.bytes", expiry(1.0), current_key());
        let debug = format!("{cache:?}");
        assert!(!debug.contains("secret"), "{debug}");
    }
}
