//! Validating a system token (docs/protocol.md §3): what every official library checks, and
//! the typed reason when a check fails.
//!
//! Validation comes in two steps so a cache of verified tokens can sit between them:
//! [`SystemTokenValidator::verify`] does everything that does not depend on the time
//! (structure, algorithm, signature, claims, network, system user) and returns the
//! token's [`Expiry`]; [`Expiry::check`] compares it with "now" on every use.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{MAX_TOKEN_LEN, SYSTEM_USER, TokenCache, TokenError, jws};
use crate::Network;
use crate::clock::{Clock, SystemClock, unix_seconds};
use crate::network::{KeyUsed, SIGNATURE_LEN};

/// Checks that a string is a valid system token of one network.
///
/// Cheap to clone. Leeway is 0 by default (no official library allows clock skew).
/// With [`cache`](Self::cache), tokens that passed are remembered (shared by clones) so
/// their next use costs no HMAC; expiry is still checked every time.
///
/// ```
/// use pingpull::{Network, clock::ManualClock, token::{self, SystemTokenValidator, TokenError}};
///
/// let network = Network::new("example.fyre.co", "testkeytest")?;
/// let validator = SystemTokenValidator::new(network.clone())
///     .clock(ManualClock::at_unix(1_700_000_000));
///
/// let v3 = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6MTcwMDA4NjQwMH0.MZSBbaslZqmBM6DwdvLfU_lMAEuXYRBRoZaw5F72kUI";
/// assert!(validator.validate(v3).is_ok());
/// assert_eq!(validator.validate("not a token"), Err(TokenError::Malformed { reason: "expected 3 segments" }));
/// # Ok::<(), pingpull::NetworkError>(())
/// ```
#[derive(Clone)]
pub struct SystemTokenValidator {
    network: Network,
    leeway: Duration,
    clock: Arc<dyn Clock>,
    cache: Option<Arc<TokenCache>>,
}

impl SystemTokenValidator {
    /// A validator for `network`'s system tokens, with no leeway and the system clock.
    pub fn new(network: Network) -> Self {
        Self {
            network,
            leeway: Duration::ZERO,
            clock: Arc::new(SystemClock),
            cache: None,
        }
    }

    /// Accepts tokens up to `leeway` past their `expires`.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Reads "now" from `clock` instead of the system clock.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Remembers verified tokens in `cache` (see [`TokenCache`]); `None` turns caching off.
    ///
    /// The cache belongs to this validator's network and key: share it only between
    /// validators of the same network.
    pub fn cache(mut self, cache: Option<TokenCache>) -> Self {
        self.cache = cache.map(Arc::new);
        self
    }

    /// The network whose tokens this validator accepts.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The configured leeway.
    pub fn leeway_duration(&self) -> Duration {
        self.leeway
    }

    /// The current time according to the validator's clock.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Validates `token` now: every check of [`verify`](Self::verify), then expiry.
    ///
    /// # Errors
    ///
    /// The first check that failed, as a [`TokenError`].
    pub fn validate(&self, token: &str) -> Result<Expiry, TokenError> {
        self.validate_at(token, self.clock.now())
    }

    /// Validates `token` as of `now`.
    ///
    /// # Errors
    ///
    /// The first check that failed, as a [`TokenError`].
    pub fn validate_at(&self, token: &str, now: SystemTime) -> Result<Expiry, TokenError> {
        let cached = self
            .cache
            .as_ref()
            .and_then(|cache| cache.get(token, &self.network));
        let expiry = match cached {
            Some(expiry) => expiry,
            None => self.verify(token)?,
        };
        expiry.check(now, self.leeway)?;
        // Only a token that passed every check is remembered.
        if cached.is_none()
            && let Some(cache) = &self.cache
        {
            cache.insert(token, expiry, self.network.key_id(expiry.key));
        }
        Ok(expiry)
    }

    /// Every check that does not depend on the time: size, structure, `alg` HS256, the
    /// signature over the received `header.payload` bytes, claim types, `domain` and
    /// `user_id == "system"`. Returns when the token expires.
    ///
    /// The result of a successful `verify` stays true for the token's whole life, which
    /// is what makes it cacheable; the expiry still has to be checked on each use.
    ///
    /// # Errors
    ///
    /// The first check that failed, as a [`TokenError`].
    pub fn verify(&self, token: &str) -> Result<Expiry, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLong { len: token.len() });
        }
        let mut segments = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(malformed("expected 3 segments"));
        };

        jws::check_header(header).map_err(|error| match error {
            jws::HeaderError::Malformed(reason) => malformed(reason),
            jws::HeaderError::WrongAlgorithm => TokenError::WrongAlgorithm,
        })?;

        let signature = jws::decode(signature).ok_or(malformed("signature is not base64url"))?;
        if signature.len() != SIGNATURE_LEN {
            return Err(TokenError::BadSignature);
        }
        // The signed message is the received text, never a re-serialisation.
        let signed = &token[..header.len() + 1 + payload.len()];
        let Some(key) = self.network.verify(signed.as_bytes(), &signature) else {
            return Err(TokenError::BadSignature);
        };

        let payload = jws::decode(payload).ok_or(malformed("payload is not base64url"))?;
        let claims: RawClaims<'_> = serde_json::from_slice(&payload)
            .map_err(|_| malformed("payload is not a JSON object"))?;

        let domain: Cow<'_, str> = claims.required("domain", claims.domain)?;
        let user_id: Cow<'_, str> = claims.required("user_id", claims.user_id)?;
        let expires: serde_json::Number = claims.required("expires", claims.expires)?;
        if let Some(display_name) = claims.display_name {
            parse_claim::<Option<Cow<'_, str>>>("display_name", display_name)?;
        }
        let expires = expires
            .as_f64()
            .filter(|e| e.is_finite())
            .ok_or(TokenError::InvalidClaim { claim: "expires" })?;

        if domain != self.network.name() {
            return Err(TokenError::WrongNetwork {
                expected: self.network.name().to_owned(),
            });
        }
        if user_id != SYSTEM_USER {
            return Err(TokenError::NotSystemToken);
        }
        Ok(Expiry { expires, key })
    }
}

impl fmt::Debug for SystemTokenValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemTokenValidator")
            .field("network", &self.network)
            .field("leeway", &self.leeway)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// When a verified system token expires, and which key verified it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expiry {
    expires: f64,
    key: KeyUsed,
}

impl Expiry {
    #[cfg(test)]
    pub(crate) fn new(expires: f64) -> Self {
        Self {
            expires,
            key: KeyUsed::Current,
        }
    }

    /// Whether a previous key of the network, not the current one, verified the token
    /// (see [`Network::with_previous_keys`]): the sender has not switched keys yet.
    pub fn previous_key(&self) -> bool {
        self.key != KeyUsed::Current
    }

    /// The `expires` claim in Unix seconds (an integer or, from Node, a fraction).
    pub fn expires(&self) -> f64 {
        self.expires
    }

    /// Checks `expires + leeway >= now` (inclusive, to the fraction of a second).
    ///
    /// # Errors
    ///
    /// [`TokenError::Expired`] once `now` is past the expiry and the leeway.
    pub fn check(&self, now: SystemTime, leeway: Duration) -> Result<(), TokenError> {
        let now = unix_seconds(now);
        if self.expires + leeway.as_secs_f64() >= now {
            Ok(())
        } else {
            Err(TokenError::Expired {
                expires: self.expires,
                now,
            })
        }
    }
}

/// What a refused token says about itself, read WITHOUT checking its signature: only for
/// telling an operator what a refusal points at, never for deciding one.
#[cfg(any(feature = "pull", test))]
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct UnverifiedClaims {
    /// The `domain` claim, if it reads as a network name (letters, digits, `-` and `.`,
    /// at most 253 bytes), so no attacker-chosen text reaches a log.
    pub(crate) domain: Option<String>,
    /// Whether the token is marked as a conformance probe (`"pingpull_probe":true`).
    pub(crate) probe: bool,
}

/// The claims of `token` an operator's log line needs, its signature NOT checked; all
/// absent when the payload cannot be read.
#[cfg(any(feature = "pull", test))]
pub(crate) fn unverified_claims(token: &str) -> UnverifiedClaims {
    #[derive(Deserialize)]
    struct Raw<'a> {
        #[serde(borrow)]
        domain: Option<&'a RawValue>,
        #[serde(borrow, rename = "pingpull_probe")]
        probe: Option<&'a RawValue>,
    }
    let Some(payload) = token.split('.').nth(1).and_then(jws::decode) else {
        return UnverifiedClaims::default();
    };
    let Ok(raw) = serde_json::from_slice::<Raw<'_>>(&payload) else {
        return UnverifiedClaims::default();
    };
    let domain = raw
        .domain
        .and_then(|domain| serde_json::from_str::<String>(domain.get()).ok())
        .filter(|domain| {
            !domain.is_empty()
                && domain.len() <= 253
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        });
    UnverifiedClaims {
        domain,
        // Exactly the JSON `true`: no other spelling marks a probe.
        probe: raw.probe.is_some_and(|probe| probe.get() == "true"),
    }
}

fn malformed(reason: &'static str) -> TokenError {
    TokenError::Malformed { reason }
}

/// The claims we check, each kept as raw JSON so a wrong type is told apart from a
/// malformed payload. Unknown claims are ignored; a repeated claim is malformed.
#[derive(Deserialize)]
struct RawClaims<'a> {
    #[serde(borrow)]
    domain: Option<&'a RawValue>,
    #[serde(borrow)]
    user_id: Option<&'a RawValue>,
    #[serde(borrow)]
    display_name: Option<&'a RawValue>,
    #[serde(borrow)]
    expires: Option<&'a RawValue>,
}

impl RawClaims<'_> {
    fn required<'a, T: Deserialize<'a>>(
        &self,
        claim: &'static str,
        raw: Option<&'a RawValue>,
    ) -> Result<T, TokenError> {
        let raw = raw.ok_or(TokenError::MissingClaim { claim })?;
        parse_claim::<Option<T>>(claim, raw)?.ok_or(TokenError::MissingClaim { claim })
    }
}

fn parse_claim<'a, T: Deserialize<'a>>(
    claim: &'static str,
    raw: &'a RawValue,
) -> Result<T, TokenError> {
    serde_json::from_str(raw.get()).map_err(|_| TokenError::InvalidClaim { claim })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::system_token;

    fn network(key: &str) -> Network {
        Network::new("example.fyre.co", key).unwrap()
    }

    #[test]
    fn reads_the_unverified_domain_only_when_it_looks_like_a_network() {
        let other = Network::new("other.fyre.co", "k").unwrap();
        let token = system_token(&other);
        assert_eq!(
            unverified_claims(token.as_str()).domain.as_deref(),
            Some("other.fyre.co")
        );
        assert_eq!(
            unverified_claims("not a token"),
            UnverifiedClaims::default()
        );
        let payload = jws::encode(br#"{"domain":"evil\nline"}"#);
        assert_eq!(
            unverified_claims(&format!("e30.{payload}.sig")).domain,
            None
        );
    }

    #[test]
    fn reads_the_probe_mark_only_as_the_json_true() {
        let marked = crate::token::Claims::system(&network("k"), 1_700_000_000)
            .conformance_probe()
            .sign(&network("other"));
        let claims = unverified_claims(marked.as_str());
        assert!(claims.probe);
        assert_eq!(claims.domain.as_deref(), Some("example.fyre.co"));
        assert!(!unverified_claims(system_token(&network("k")).as_str()).probe);
        for value in [r#""true""#, "1", "false", "null", "[true]"] {
            let payload = format!(r#"{{"domain":"example.fyre.co","pingpull_probe":{value}}}"#);
            let token = format!("e30.{}.sig", jws::encode(payload.as_bytes()));
            assert!(!unverified_claims(&token).probe, "{value}");
        }
    }

    #[test]
    fn a_previous_key_is_accepted_and_told_apart() {
        let rotating = network("new").with_previous_keys(["old"]).unwrap();
        let validator = SystemTokenValidator::new(rotating);
        let old = validator.validate(system_token(&network("old")).as_str());
        let new = validator.validate(system_token(&network("new")).as_str());
        assert!(old.is_ok_and(|expiry| expiry.previous_key()));
        assert!(new.is_ok_and(|expiry| !expiry.previous_key()));
        let third = validator.validate(system_token(&network("third")).as_str());
        assert_eq!(third, Err(TokenError::BadSignature));
    }

    #[test]
    fn a_cached_token_does_not_outlive_its_key() {
        let rotating = network("new").with_previous_keys(["old"]).unwrap();
        let during = SystemTokenValidator::new(rotating).cache(Some(TokenCache::new(16)));
        let old_token = system_token(&network("old"));
        assert!(during.validate(old_token.as_str()).is_ok());
        // The same cache, now behind a validator whose network dropped the old key.
        let after = SystemTokenValidator {
            network: network("new"),
            ..during.clone()
        };
        assert_eq!(
            after.validate(old_token.as_str()),
            Err(TokenError::BadSignature)
        );
        let new_token = system_token(&network("new"));
        assert!(after.validate(new_token.as_str()).is_ok());
    }
}
