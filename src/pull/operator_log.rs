//! What the endpoint tells an operator about refused tokens that point at a
//! misconfiguration rather than a stray request: a token for this network whose signature
//! fails (the key configured here probably differs from Livefyre's), a token for another
//! network, a token that expired long before this server's clock says now; and pulls
//! still signed with a previous key during a rotation. Each kind is logged at most once a
//! minute, with how many were left out since. A missing or undecodable token stays at
//! DEBUG: scanners send those.
//!
//! A pull that fails on this side is told the same way: a source that failed or timed out
//! (WARN), a profile that could not be served (invalid, another user's, a panic: ERROR),
//! each kind at most once a minute, every occurrence at DEBUG besides; a source down
//! while Livefyre pulls hundreds of users a second is one line a minute, not hundreds.
//!
//! A token marked as a conformance probe (`"pingpull_probe":true`, what `check` sends to
//! be refused; docs/protocol.md §6) is refused like any other but logged at DEBUG, and
//! never counts against a line's minute: a check run just before a real misconfigured
//! pull cannot silence that pull's warning. Livefyre's tokens never carry the mark, and
//! a marked token only changes how its own refusal is logged.

use std::time::SystemTime;

use tracing::Level;

use super::Rejection;
use crate::Network;
use crate::throttle::{LogThrottle, ONCE_A_MINUTE};
use crate::token::{TokenError, unverified_claims};

/// An expired token is a hint of clock skew only when it expired this long before "now"
/// (a token that expired seconds ago is the ordinary edge of its life).
const SKEW_HINT_SECS: f64 = 60.0;

/// What a refused token's warning would be about.
enum Warning {
    KeyMismatch,
    OtherNetwork(String),
    ClockSkew { expires: f64, at: f64 },
}

impl Warning {
    fn name(&self) -> &'static str {
        match self {
            Self::KeyMismatch => "key_mismatch",
            Self::OtherNetwork(_) => "other_network",
            Self::ClockSkew { .. } => "clock_skew",
        }
    }
}

/// One throttle per kind of line.
#[derive(Debug)]
pub(crate) struct OperatorLog {
    key_mismatch: LogThrottle,
    other_network: LogThrottle,
    clock_skew: LogThrottle,
    previous_key: LogThrottle,
    source_failed: LogThrottle,
    unservable: LogThrottle,
}

impl Default for OperatorLog {
    fn default() -> Self {
        Self {
            key_mismatch: LogThrottle::new(ONCE_A_MINUTE),
            other_network: LogThrottle::new(ONCE_A_MINUTE),
            clock_skew: LogThrottle::new(ONCE_A_MINUTE),
            previous_key: LogThrottle::new(ONCE_A_MINUTE),
            source_failed: LogThrottle::new(ONCE_A_MINUTE),
            unservable: LogThrottle::new(ONCE_A_MINUTE),
        }
    }
}

impl OperatorLog {
    /// Tells the operator about a refused `token` when the refusal looks like a
    /// misconfiguration (at DEBUG if the token is a conformance probe's). `now` is the
    /// validator's clock.
    pub(crate) fn refused(
        &self,
        token: &str,
        error: &TokenError,
        network: &Network,
        now: SystemTime,
    ) {
        let skew = match error {
            TokenError::BadSignature | TokenError::WrongNetwork { .. } => None,
            TokenError::Expired { expires, now: at } if at - expires > SKEW_HINT_SECS => {
                Some((*expires, *at))
            }
            _ => return,
        };
        // Read only on these refusals: the payload is parsed once more, unverified.
        let claims = unverified_claims(token);
        let warning = match (skew, claims.domain) {
            (Some((expires, at)), _) => Warning::ClockSkew { expires, at },
            (None, Some(domain)) if domain == network.name() => Warning::KeyMismatch,
            (None, Some(domain)) => Warning::OtherNetwork(domain),
            (None, None) => return,
        };
        if claims.probe {
            tracing::event!(
                target: "pingpull::pull",
                Level::DEBUG,
                kind = warning.name(),
                "refused a conformance probe's token, as it should be"
            );
            return;
        }
        match warning {
            Warning::KeyMismatch => self.key_mismatch(network, now),
            Warning::OtherNetwork(domain) => self.other_network(&domain, network, now),
            Warning::ClockSkew { expires, at } => self.clock_skew(expires, at, now),
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

    /// A pull answered with `rejection` (`status`): the source's and the profile's
    /// failures at WARN and ERROR, each kind at most once a minute; the rest, and every
    /// one left out, at DEBUG. Only a validated id is logged; the reason never holds the
    /// token.
    pub(crate) fn rejected(
        &self,
        rejection: &Rejection,
        status: u16,
        user_id: Option<&str>,
        latency_us: u64,
        now: SystemTime,
    ) {
        let outcome = rejection.as_str();
        let user_id = user_id.unwrap_or("-");
        let (throttle, unservable) = match rejection {
            // The profile could not be served: the source's code or data needs a fix.
            Rejection::SourcePanicked | Rejection::InvalidProfile(_) | Rejection::IdMismatch => {
                (Some(&self.unservable), true)
            }
            // The source failed: its database or service is down or slow.
            Rejection::SourceFailed(_) | Rejection::SourceTimedOut => {
                (Some(&self.source_failed), false)
            }
            _ => (None, false),
        };
        match throttle.and_then(|throttle| throttle.allow(now)) {
            Some(suppressed) if unservable => {
                tracing::event!(target: "pingpull::pull", Level::ERROR, outcome, status, user_id, latency_us, reason = %rejection, suppressed, "the profile could not be served (logged at most once a minute, `suppressed` since the previous line)");
            }
            Some(suppressed) => {
                tracing::event!(target: "pingpull::pull", Level::WARN, outcome, status, user_id, latency_us, reason = %rejection, suppressed, "the profile source failed (logged at most once a minute, `suppressed` since the previous line)");
            }
            None => {
                tracing::event!(target: "pingpull::pull", Level::DEBUG, outcome, status, user_id, latency_us, reason = %rejection);
            }
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
