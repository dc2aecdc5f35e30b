//! The sending side's system token: signed once and reused until half its life has
//! passed, as Livefyre reuses one token for hours. The Pinger's client and the
//! emulator's puller both send with it.

use std::sync::{Arc, Mutex};

use super::{SYSTEM_TOKEN_LIFETIME, Token, system_token_at};
use crate::Network;
use crate::clock::{Clock, unix_whole_seconds};
use crate::sync::lock;

pub(crate) struct OutgoingToken {
    clock: Arc<dyn Clock>,
    current: Mutex<Option<(Token, i64)>>,
}

impl OutgoingToken {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            current: Mutex::new(None),
        }
    }

    /// The current token, renewed once half of its life has passed (or the clock went
    /// back before it was issued).
    pub(crate) fn get(&self, network: &Network) -> Token {
        let now = self.clock.now();
        let now_secs = unix_whole_seconds(now);
        let renew_after = i64::try_from(SYSTEM_TOKEN_LIFETIME.as_secs() / 2).unwrap_or(i64::MAX);
        let mut current = lock(&self.current);
        match &*current {
            Some((token, issued))
                if now_secs.saturating_sub(*issued) < renew_after && now_secs >= *issued =>
            {
                token.clone()
            }
            _ => {
                let token = system_token_at(network, now, SYSTEM_TOKEN_LIFETIME);
                *current = Some((token.clone(), now_secs));
                token
            }
        }
    }

    /// Forgets the token, so the next `get` signs a new one.
    pub(crate) fn clear(&self) {
        *lock(&self.current) = None;
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
}
