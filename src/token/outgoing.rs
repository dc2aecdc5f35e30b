//! The sending side's system token: signed once and reused until half its life has
//! passed, as Livefyre reuses one token for hours. The Pinger's client and the
//! emulator's puller both send with it. One token per key: during a rotation a client
//! may sign with a previous key, for a peer that still holds it.

use std::sync::{Arc, Mutex};

use super::build::system_token_with;
use super::{SYSTEM_TOKEN_LIFETIME, Token};
use crate::Network;
use crate::clock::{Clock, unix_whole_seconds};
use crate::network::KeyUsed;
use crate::sync::lock;

pub(crate) struct OutgoingToken {
    clock: Arc<dyn Clock>,
    /// Per key, the current one first then each previous one: the token and the second
    /// it was issued.
    signed: Mutex<Vec<Option<(Token, i64)>>>,
}

impl OutgoingToken {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            signed: Mutex::new(Vec::new()),
        }
    }

    /// The current key's token, renewed once half of its life has passed (or the clock
    /// went back before it was issued).
    #[cfg(any(feature = "emulator", test))]
    pub(crate) fn get(&self, network: &Network) -> Token {
        self.get_with(network, KeyUsed::Current)
            // Signing with the current key cannot fail; this only satisfies the types.
            .unwrap_or_else(|| {
                super::system_token_at(network, self.clock.now(), SYSTEM_TOKEN_LIFETIME)
            })
    }

    /// The token signed with the key `used`, renewed as [`get`](Self::get)'s; `None` for
    /// a previous key the network does not have.
    pub(crate) fn get_with(&self, network: &Network, used: KeyUsed) -> Option<Token> {
        let slot = match used {
            KeyUsed::Current => 0,
            KeyUsed::Previous(index) => index.checked_add(1)?,
        };
        let now = self.clock.now();
        let now_secs = unix_whole_seconds(now);
        let renew_after = i64::try_from(SYSTEM_TOKEN_LIFETIME.as_secs() / 2).unwrap_or(i64::MAX);
        let mut signed = lock(&self.signed);
        if let Some(Some((token, issued))) = signed.get(slot)
            && now_secs.saturating_sub(*issued) < renew_after
            && now_secs >= *issued
        {
            return Some(token.clone());
        }
        let token = system_token_with(network, used, now, SYSTEM_TOKEN_LIFETIME)?;
        if signed.len() <= slot {
            signed.resize_with(slot + 1, || None);
        }
        signed[slot] = Some((token.clone(), now_secs));
        Some(token)
    }

    /// Forgets the tokens, so the next `get` signs new ones.
    pub(crate) fn clear(&self) {
        lock(&self.signed).clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn token_is_reused_then_renewed_after_half_its_life() {
        let network = Network::new("example.fyre.co", "k").unwrap();
        let clock = ManualClock::at_unix(1_700_000_000);
        let reused = OutgoingToken::new(Arc::new(clock.clone()));
        let first = reused.get(&network);
        clock.advance(Duration::from_secs(43_199));
        assert_eq!(reused.get(&network).as_str(), first.as_str());
        clock.advance(Duration::from_secs(1));
        assert_ne!(reused.get(&network).as_str(), first.as_str());
        reused.clear();
        let renewed = reused.get(&network);
        assert_eq!(renewed.as_str(), reused.get(&network).as_str());
    }

    #[test]
    fn each_key_has_its_own_token() {
        let network = Network::new("example.fyre.co", "new")
            .unwrap()
            .with_previous_keys(["old"])
            .unwrap();
        let clock = ManualClock::at_unix(1_700_000_000);
        let tokens = OutgoingToken::new(Arc::new(clock.clone()));
        let old = tokens.get_with(&network, KeyUsed::Previous(0)).unwrap();
        let current = tokens.get(&network);
        assert_ne!(old.as_str(), current.as_str());
        clock.advance(Duration::from_secs(60));
        let again = tokens.get_with(&network, KeyUsed::Previous(0)).unwrap();
        assert_eq!(again.as_str(), old.as_str(), "reused");
        assert!(tokens.get_with(&network, KeyUsed::Previous(1)).is_none());
    }
}
