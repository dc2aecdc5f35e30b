//! A Livefyre network: its name and its secret key (docs/protocol.md §2).
//!
//! ```
//! use pingpull::Network;
//!
//! let network = Network::new("example.fyre.co", "testkeytest")?;
//! assert_eq!(network.label(), "example");
//! assert_eq!(network.default_base_url(), "https://example.quill.fyre.co");
//! // The key never shows in Debug output.
//! assert!(!format!("{network:?}").contains("testkeytest"));
//!
//! // During a key rotation, tokens signed with the old key are still accepted.
//! let rotating = Network::new("example.fyre.co", "newkey")?.with_previous_keys(["testkeytest"])?;
//! assert_eq!(rotating.previous_key_count(), 1);
//! # Ok::<(), pingpull::NetworkError>(())
//! ```

use std::fmt;
use std::sync::Arc;

mod keys;

pub(crate) use keys::{HmacSha256, KeyId, KeyUsed, SIGNATURE_LEN};
use keys::{key_id, keyed};

/// The suffix every Livefyre network name carries.
const NETWORK_SUFFIX: &str = ".fyre.co";

/// A Livefyre network: its name (`example.fyre.co`) and its key.
///
/// Cheap to clone: the name and key are shared. The key is used as raw UTF-8 bytes for
/// HMAC-SHA256, never base64-decoded, and never appears in `Debug` output or errors.
#[derive(Clone)]
pub struct Network {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    key: String,
    /// The HMAC state after absorbing the key, cloned for each signature.
    hmac: HmacSha256,
    /// Keys whose tokens are still accepted (a rotation in progress); used to sign only
    /// a second signature on profiles, and a request Livefyre refused under the current key.
    previous: Vec<HmacSha256>,
    /// A fingerprint of each key, current first: what a cache remembers instead of a key.
    ids: Vec<KeyId>,
}

impl Network {
    /// Creates a network from its name and key.
    ///
    /// # Errors
    ///
    /// Refuses an empty key, a name that does not end in `.fyre.co`, a name whose label
    /// (the text before the first dot) is empty, and a name with characters that cannot
    /// stand in a host name.
    pub fn new(name: impl Into<String>, key: impl Into<String>) -> Result<Self, NetworkError> {
        let name = name.into();
        let key = key.into();
        if !name.ends_with(NETWORK_SUFFIX) {
            return Err(NetworkError::NameSuffix { name });
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
        {
            return Err(NetworkError::NameCharacter { name, bad });
        }
        if name.starts_with('.') || name.contains("..") {
            return Err(NetworkError::EmptyLabel { name });
        }
        if key.is_empty() {
            return Err(NetworkError::EmptyKey);
        }
        let hmac = keyed(&key)?;
        Ok(Self {
            inner: Arc::new(Inner {
                name,
                key,
                ids: vec![key_id(&hmac)],
                hmac,
                previous: Vec::new(),
            }),
        })
    }

    /// The same network, also accepting tokens (and profile signatures) made with
    /// `previous` keys: for rotating the key without refused pulls. pingpull signs with the
    /// current key first; a profile also carries a signature per previous key, and a
    /// request Livefyre refuses (403) is tried again with each previous key
    /// (docs/protocol.md §2). Replaces any previous keys set before.
    ///
    /// # Errors
    ///
    /// [`NetworkError::EmptyKey`] if a previous key is empty.
    pub fn with_previous_keys<I, K>(self, previous: I) -> Result<Self, NetworkError>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        let previous = previous
            .into_iter()
            .map(|key| keyed(key.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let ids = std::iter::once(&self.inner.hmac)
            .chain(&previous)
            .map(key_id)
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                name: self.inner.name.clone(),
                key: self.inner.key.clone(),
                hmac: self.inner.hmac.clone(),
                previous,
                ids,
            }),
        })
    }

    /// How many previous keys are still accepted.
    pub fn previous_key_count(&self) -> usize {
        self.inner.previous.len()
    }

    /// The full network name, e.g. `example.fyre.co`; the `domain` claim of its tokens.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The text before the first dot of the name, e.g. `example`.
    pub fn label(&self) -> &str {
        // `new` guarantees a non-empty label before a dot.
        self.inner.name.split('.').next().unwrap_or_default()
    }

    /// Livefyre's API base URL for this network: `https://{label}.quill.fyre.co`.
    ///
    /// Everything that talks to Livefyre takes a base URL so that it can be pointed at the
    /// emulator instead; this is the default.
    pub fn default_base_url(&self) -> String {
        format!("https://{}.quill.fyre.co", self.label())
    }

    /// The network key. Keep it out of logs.
    pub fn key(&self) -> &str {
        &self.inner.key
    }
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Network")
            .field("name", &self.inner.name)
            .field("key", &"<redacted>")
            .field("previous_keys", &self.inner.previous.len())
            .finish()
    }
}

/// Why a [`Network`] could not be created.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetworkError {
    /// The key is empty.
    EmptyKey,
    /// The name does not end in `.fyre.co`.
    NameSuffix {
        /// The name given.
        name: String,
    },
    /// The name has an empty label (e.g. `.fyre.co`) or an empty part between dots.
    EmptyLabel {
        /// The name given.
        name: String,
    },
    /// The name has a character other than ASCII letters, digits, `-` and `.`.
    NameCharacter {
        /// The name given.
        name: String,
        /// The first character refused.
        bad: char,
    },
}

impl fmt::Display for NetworkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyKey => f.write_str("network key must not be empty"),
            Self::NameSuffix { name } => {
                write!(f, "network name must end in .fyre.co: got `{name}`")
            }
            Self::EmptyLabel { name } => write!(
                f,
                "network name must have a label before .fyre.co and no empty parts: got `{name}`"
            ),
            Self::NameCharacter { name, bad } => write!(
                f,
                "network name may hold only ASCII letters, digits, `-` and `.`: got {bad:?} in `{name}`"
            ),
        }
    }
}

impl std::error::Error for NetworkError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_label_and_default_base_url() {
        let network = Network::new("example.fyre.co", "k").unwrap();
        assert_eq!(network.name(), "example.fyre.co");
        assert_eq!(network.label(), "example");
        assert_eq!(network.default_base_url(), "https://example.quill.fyre.co");
        let deep = Network::new("a.b.fyre.co", "k").unwrap();
        assert_eq!(deep.label(), "a");
    }

    #[test]
    fn rejects_empty_key() {
        assert_eq!(
            Network::new("example.fyre.co", "").unwrap_err(),
            NetworkError::EmptyKey
        );
    }

    #[test]
    fn rejects_name_without_fyre_co_suffix() {
        for name in [
            "example.com",
            "examplefyre.co",
            "example.fyre.com",
            "",
            "fyre.co",
        ] {
            let err = Network::new(name, "k").unwrap_err();
            assert!(
                matches!(err, NetworkError::NameSuffix { .. }),
                "{name}: {err}"
            );
            assert!(err.to_string().contains("must end in .fyre.co"));
        }
    }

    #[test]
    fn rejects_empty_label() {
        for name in [".fyre.co", "a..fyre.co"] {
            let err = Network::new(name, "k").unwrap_err();
            assert!(
                matches!(err, NetworkError::EmptyLabel { .. }),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn rejects_characters_that_cannot_stand_in_a_host() {
        for name in [
            "ex ample.fyre.co",
            "ex/ample.fyre.co",
            "exé.fyre.co",
            "a:1.fyre.co",
        ] {
            let err = Network::new(name, "k").unwrap_err();
            assert!(
                matches!(err, NetworkError::NameCharacter { .. }),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let network = Network::new("example.fyre.co", "s3cr3t-key-value").unwrap();
        let debug = format!("{network:?} {network:#?}");
        assert!(!debug.contains("s3cr3t-key-value"), "{debug}");
        assert!(debug.contains("example.fyre.co"));
    }
}
