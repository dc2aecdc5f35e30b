//! Which of the network's keys signs the system token a client sends.
//!
//! During a key rotation the two sides switch at different times: our server may sign
//! with the new key while Livefyre still holds the old one, or the other way round. So a
//! request Livefyre refuses (403) is sent again once with each other key the network
//! knows, the current key first; a key Livefyre accepts is kept for the next requests
//! (Livefyre still holds it) until Livefyre refuses it, and then the current key comes
//! first again. Whichever side switches first, nobody is held back by the rotation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tracing::Level;

use crate::Network;
use crate::clock::Clock;
use crate::network::KeyUsed;
use crate::throttle::{LogThrottle, ONCE_A_MINUTE};
use crate::token::{OutgoingToken, Token};

/// The client's tokens, one per key, and the key Livefyre accepted last.
pub(super) struct Signer {
    tokens: OutgoingToken,
    clock: Arc<dyn Clock>,
    /// The key to sign with first: 0 the current one, `i + 1` previous key `i`.
    preferred: AtomicUsize,
    /// Livefyre still holds a previous key: an INFO at most once a minute.
    previous_key_log: LogThrottle,
}

impl Signer {
    pub(super) fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            tokens: OutgoingToken::new(clock.clone()),
            clock,
            preferred: AtomicUsize::new(0),
            previous_key_log: LogThrottle::new(ONCE_A_MINUTE),
        }
    }

    /// The keys to sign one request with, in turn while Livefyre refuses them: the one it
    /// accepted last, then the others, the current key first.
    pub(super) fn keys_to_try<'a>(
        &self,
        network: &'a Network,
    ) -> impl Iterator<Item = KeyUsed> + 'a {
        let first = match self.preferred.load(Ordering::Relaxed) {
            0 => KeyUsed::Current,
            slot => KeyUsed::Previous(slot - 1),
        };
        std::iter::once(first).chain(network.keys_used().filter(move |key| *key != first))
    }

    /// The system token signed with `key`; `None` for a previous key the network does not have.
    pub(super) fn token(&self, network: &Network, key: KeyUsed) -> Option<Token> {
        self.tokens.get_with(network, key)
    }

    /// Livefyre accepted a request signed with `key`: the next ones start with it. A
    /// previous key means Livefyre has not switched yet: an INFO, at most once a minute,
    /// naming the key by its place among the previous keys (never the key).
    pub(super) fn accepted(&self, network: &Network, key: KeyUsed) {
        let slot = match key {
            KeyUsed::Current => 0,
            KeyUsed::Previous(index) => index + 1,
        };
        self.preferred.store(slot, Ordering::Relaxed);
        if let KeyUsed::Previous(index) = key
            && let Some(suppressed) = self.previous_key_log.allow(self.clock.now())
        {
            tracing::event!(
                target: "pingpull::ping",
                Level::INFO,
                network = network.name(),
                previous_key = index,
                suppressed,
                "Livefyre still holds a previous network key: it refused the current key and accepted previous key {index} (counting from 0, in the order given to with_previous_keys), so requests are signed with that one until Livefyre refuses it; finish the rotation on Livefyre's side (logged at most once a minute, `suppressed` since the previous line)"
            );
        }
    }

    /// Livefyre refused every key: the next request starts with the current key again.
    pub(super) fn refused_every_key(&self) {
        self.preferred.store(0, Ordering::Relaxed);
    }

    /// Forgets the tokens, so the next request signs new ones.
    pub(super) fn renew(&self) {
        self.tokens.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    fn rotating() -> Network {
        Network::new("example.fyre.co", "new")
            .unwrap()
            .with_previous_keys(["old", "older"])
            .unwrap()
    }

    #[test]
    fn tries_the_current_key_first_then_each_previous_one() {
        let network = rotating();
        let signer = Signer::new(Arc::new(SystemClock));
        let keys: Vec<_> = signer.keys_to_try(&network).collect();
        assert_eq!(
            keys,
            [KeyUsed::Current, KeyUsed::Previous(0), KeyUsed::Previous(1)]
        );
    }

    #[test]
    fn keeps_an_accepted_previous_key_then_starts_from_the_current_one_again() {
        let network = rotating();
        let signer = Signer::new(Arc::new(SystemClock));
        signer.accepted(&network, KeyUsed::Previous(1));
        let keys: Vec<_> = signer.keys_to_try(&network).collect();
        assert_eq!(
            keys,
            [KeyUsed::Previous(1), KeyUsed::Current, KeyUsed::Previous(0)]
        );
        signer.refused_every_key();
        assert_eq!(signer.keys_to_try(&network).next(), Some(KeyUsed::Current));
    }

    #[test]
    fn a_network_without_previous_keys_has_one_key_to_try() {
        let network = Network::new("example.fyre.co", "k").unwrap();
        let signer = Signer::new(Arc::new(SystemClock));
        assert_eq!(signer.keys_to_try(&network).count(), 1);
    }
}
