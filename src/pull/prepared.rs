//! A profile checked and rendered once, for a source that serves it many times: what a
//! [`ProfileSource`](super::ProfileSource) may hand the endpoint instead of a [`Profile`].

use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::HeaderValue;

use crate::Network;
use crate::network::KeyId;
use crate::profile::{Profile, Violations, sign_body};

/// Initial capacity of a rendering: a full profile is under 1 KiB of JSON.
pub(crate) const BODY_CAPACITY: usize = 1024;

/// What a [`ProfileSource`](super::ProfileSource) hands the Pull endpoint for one pull.
///
/// A source that reads its profiles anew for each pull (a database) returns
/// [`Loaded::Profile`]: the endpoint validates, renders and signs it on every pull. A
/// source that keeps its profiles returns [`Loaded::Prepared`]: checked and rendered
/// once per change, its signature made once for the network's keys, so a pull only
/// copies a pointer. Both answer the very same bytes.
// Unboxed: a pull moves it once, and boxing would add an allocation to every pull of a
// source that loads plain profiles.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Loaded {
    /// A profile to validate, render and sign for this pull.
    Profile(Profile),
    /// A profile validated and rendered beforehand (see [`PreparedProfile`]).
    Prepared(Arc<PreparedProfile>),
}

impl From<Profile> for Loaded {
    fn from(profile: Profile) -> Self {
        Self::Profile(profile)
    }
}

impl From<Arc<PreparedProfile>> for Loaded {
    fn from(prepared: Arc<PreparedProfile>) -> Self {
        Self::Prepared(prepared)
    }
}

impl From<PreparedProfile> for Loaded {
    fn from(prepared: PreparedProfile) -> Self {
        Self::Prepared(Arc::new(prepared))
    }
}

/// A valid profile with its JSON rendered once, and its `X-Profile-Signature` made on
/// first use and kept (for one set of network keys: during a rotation the header holds a
/// signature per key).
///
/// Make one when a profile changes, keep it behind an [`Arc`], and return it from
/// [`ProfileSource::load_for_pull`](super::ProfileSource::load_for_pull) as
/// [`Loaded::Prepared`]; [`InMemorySource`](super::InMemorySource) does this for you.
///
/// ```
/// use pingpull::Profile;
/// use pingpull::pull::PreparedProfile;
///
/// let prepared = PreparedProfile::new(Profile::builder("u1", "Ada").build())?;
/// assert_eq!(prepared.body(), br#"{"id":"u1","display_name":"Ada"}"#.as_slice());
///
/// let refused = PreparedProfile::new(Profile::builder("u1", "").build()).unwrap_err();
/// assert!(refused.violations().contains_field("display_name"));
/// # Ok::<(), pingpull::pull::ProfileRefused>(())
/// ```
pub struct PreparedProfile {
    profile: Arc<Profile>,
    body: Bytes,
    /// The signature by the first set of network keys that asked (their fingerprints,
    /// current first); another set signs anew.
    signature: OnceLock<(Box<[KeyId]>, HeaderValue)>,
}

impl PreparedProfile {
    /// Validates `profile` and renders its JSON.
    ///
    /// # Errors
    ///
    /// [`ProfileRefused`], with every violation of docs/protocol.md §7 and the profile
    /// given back, when the profile is not valid.
    pub fn new(profile: Profile) -> Result<Self, ProfileRefused> {
        Self::from_shared(Arc::new(profile))
    }

    /// As [`new`](Self::new), for a profile already shared.
    ///
    /// # Errors
    ///
    /// [`ProfileRefused`] when the profile is not valid.
    pub fn from_shared(profile: Arc<Profile>) -> Result<Self, ProfileRefused> {
        if let Err(violations) = profile.validate() {
            return Err(ProfileRefused {
                profile: Box::new(Arc::unwrap_or_clone(profile)),
                violations,
            });
        }
        let mut body = Vec::with_capacity(BODY_CAPACITY);
        profile.write_json(&mut body);
        Ok(Self {
            profile,
            body: Bytes::from(body),
            signature: OnceLock::new(),
        })
    }

    /// The profile.
    pub fn profile(&self) -> &Arc<Profile> {
        &self.profile
    }

    /// The exact JSON bytes the endpoint sends.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The `X-Profile-Signature` of the body with `network`'s keys (one signature per
    /// key while previous keys are configured): made once, then shared (a different set
    /// of keys signs anew each time, and is never kept).
    pub(crate) fn signature(&self, network: &Network) -> Option<HeaderValue> {
        let keys = network.key_ids();
        let sign = || HeaderValue::try_from(sign_body(network, &self.body)).ok();
        match self.signature.get() {
            Some((kept, value)) if **kept == *keys => Some(value.clone()),
            Some(_) => sign(),
            None => {
                let value = sign()?;
                let (kept, kept_value) =
                    self.signature.get_or_init(|| (keys.into(), value.clone()));
                Some(if **kept == *keys {
                    kept_value.clone()
                } else {
                    value
                })
            }
        }
    }
}

impl fmt::Debug for PreparedProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedProfile")
            .field("id", &self.profile.id)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A profile refused before it could be served: it fails [`Profile::validate`].
///
/// Carries every violation and gives the profile back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRefused {
    profile: Box<Profile>,
    violations: Violations,
}

impl ProfileRefused {
    /// Every violation of docs/protocol.md §7, each naming its field.
    pub fn violations(&self) -> &Violations {
        &self.violations
    }

    /// The refused profile, unchanged.
    pub fn into_profile(self) -> Profile {
        *self.profile
    }
}

impl fmt::Display for ProfileRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot serve the profile of user {:?}: {}",
            self.profile.id, self.violations
        )
    }
}

impl std::error::Error for ProfileRefused {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::verify_body_signature;

    fn network(key: &str) -> Network {
        Network::new("example.fyre.co", key).unwrap()
    }

    #[test]
    fn signature_is_made_once_per_key_and_matches_the_body() {
        let prepared = PreparedProfile::new(Profile::builder("u1", "Ada").build()).unwrap();
        let first = network("testkeytest");
        let other = network("otherkey");
        let signed = prepared.signature(&first).unwrap();
        assert_eq!(prepared.signature(&first).unwrap(), signed);
        let by_other = prepared.signature(&other).unwrap();
        assert_ne!(by_other, signed);
        for (network, value) in [(&first, &signed), (&other, &by_other)] {
            let value = value.to_str().unwrap();
            assert!(verify_body_signature(network, value, prepared.body()).is_ok());
        }
        // The first key's signature is still the one kept.
        assert_eq!(prepared.signature(&first).unwrap(), signed);
    }

    #[test]
    fn while_rotating_the_kept_signature_lists_every_key_and_is_kept_for_that_set() {
        let prepared = PreparedProfile::new(Profile::builder("u1", "Ada").build()).unwrap();
        let rotating = network("B").with_previous_keys(["A"]).unwrap();
        let signed = prepared.signature(&rotating).unwrap();
        assert_eq!(signed, sign_body(&rotating, prepared.body()));
        assert_eq!(signed.to_str().unwrap().split(',').count(), 2);
        // Another set (the same current key, without the previous one) signs anew.
        let after = prepared.signature(&network("B")).unwrap();
        assert_eq!(after, sign_body(&network("B"), prepared.body()));
        assert_eq!(prepared.signature(&rotating).unwrap(), signed);
        for holder in ["A", "B"] {
            let value = signed.to_str().unwrap();
            assert!(verify_body_signature(&network(holder), value, prepared.body()).is_ok());
        }
    }

    #[test]
    fn an_invalid_profile_is_refused_with_its_violations_and_given_back() {
        let profile = Profile::builder("u 1", "").tags(["no-dash"]).build();
        let refused = PreparedProfile::new(profile.clone()).unwrap_err();
        let fields: Vec<&str> = refused
            .violations()
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["id", "display_name", "tags[0]"]);
        assert!(
            refused
                .to_string()
                .starts_with("cannot serve the profile of user \"u 1\": invalid profile: ")
        );
        assert_eq!(refused.into_profile(), profile);
    }
}
