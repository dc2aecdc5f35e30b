//! What the endpoint tells an operator about refused tokens that point at a
//! misconfiguration rather than a stray request: a token for this network whose signature
//! fails (the key configured here probably differs from Livefyre's), a token for another
//! network, a token that expired long before this server's clock says now; and pulls
//! still signed with a previous key during a rotation. Each kind is logged at most once a
//! minute, with how many were left out since. A missing or undecodable token stays at
//! DEBUG: scanners send those.

use std::time::SystemTime;

use tracing::Level;

use crate::Network;
use crate::throttle::{LogThrottle, ONCE_A_MINUTE};
use crate::token::{TokenError, unverified_domain};

/// An expired token is a hint of clock skew only when it expired this long before "now"
/// (a token that expired seconds ago is the ordinary edge of its life).
const SKEW_HINT_SECS: f64 = 60.0;

/// One throttle per kind of line.
#[derive(Debug)]
pub(crate) struct OperatorLog {
    key_mismatch: LogThrottle,
    other_network: LogThrottle,
    clock_skew: LogThrottle,
    previous_key: LogThrottle,
}

impl Default for OperatorLog {
    fn default() -> Self {
        Self {
            key_mismatch: LogThrottle::new(ONCE_A_MINUTE),
            other_network: LogThrottle::new(ONCE_A_MINUTE),
            clock_skew: LogThrottle::new(ONCE_A_MINUTE),
            previous_key: LogThrottle::new(ONCE_A_MINUTE),
        }
    }
}

impl OperatorLog {
    /// Tells the operator about a refused `token` when the refusal looks like a
    /// misconfiguration. `now` is the validator's clock.
    pub(crate) fn refused(
        &self,
        token: &str,
        error: &TokenError,
        network: &Network,
        now: SystemTime,
    ) {
        match error {
            TokenError::BadSignature | TokenError::WrongNetwork { .. } => {
                match unverified_domain(token) {
                    Some(domain) if domain == network.name() => self.key_mismatch(network, now),
                    Some(domain) => self.other_network(&domain, network, now),
                    None => {}
                }
            }
            TokenError::Expired { expires, now: at } if at - expires > SKEW_HINT_SECS => {
                self.clock_skew(*expires, *at, now);
            }
            _ => {}
        }
    }

    /// A pull whose token a previous key verified: the rotation is not complete yet.
    pub(crate) fn accepted_with_previous_key(&self, now: SystemTime) {
        if let Some(suppressed) = self.previous_key.allow(now) {
            tracing::event!(
                target: "pingpull::pull",
                Level::INFO,
                suppressed,
                "a pull was signed with a previous network key: Livefyre still uses the old key. Remove it from the previous keys once this line stops appearing"
            );
        }
    }

    fn key_mismatch(&self, network: &Network, now: SystemTime) {
        if let Some(suppressed) = self.key_mismatch.allow(now) {
            tracing::event!(
                target: "pingpull::pull",
                Level::WARN,
                network = network.name(),
                suppressed,
                "refused a pull whose token names this network but fails the signature check: the network key configured here probably differs from Livefyre's"
            );
        }
    }

    fn other_network(&self, domain: &str, network: &Network, now: SystemTime) {
        if let Some(suppressed) = self.other_network.allow(now) {
            tracing::event!(
                target: "pingpull::pull",
                Level::WARN,
                token_network = domain,
                network = network.name(),
                suppressed,
                "refused a pull whose token is for another network: check the network name configured here"
            );
        }
    }

    fn clock_skew(&self, expires: f64, at: f64, now: SystemTime) {
        if let Some(suppressed) = self.clock_skew.allow(now) {
            tracing::event!(
                target: "pingpull::pull",
                Level::WARN,
                token_expires = expires,
                server_clock = at,
                expired_secs_ago = (at - expires).round(),
                suppressed,
                "refused a pull whose token expired long before this server's clock says now: if Livefyre's pulls keep failing this way, check this server's clock"
            );
        }
    }
}
