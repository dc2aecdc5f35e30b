//! Livefyre tokens (docs/protocol.md §3): compact JWS, HS256 with the network key.
//!
//! - [`system_token`] builds the token that authenticates pings, registration and pulls
//!   (the official libraries' `buildLivefyreToken`);
//! - [`user_auth_token`] builds the token a site hands Livefyre's JavaScript to log a user in
//!   (`buildUserAuthToken`);
//! - [`SystemTokenValidator`] checks a system token and says which check failed
//!   (`validateLivefyreToken`).
//!
//! Built tokens are byte-identical to the official Python library's for the same inputs and
//! second: header `{"typ":"JWT","alg":"HS256"}`, claims in the order `domain`, `user_id`,
//! `display_name`, `expires`, non-ASCII escaped as `\uXXXX`.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use pingpull::{Network, token};
//!
//! let network = Network::new("example.fyre.co", "testkeytest")?;
//! let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//! let token = token::system_token_at(&network, now, token::SYSTEM_TOKEN_LIFETIME);
//! // docs/protocol.md §3, vector V3.
//! assert_eq!(
//!     token.as_str(),
//!     "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6MTcwMDA4NjQwMH0.MZSBbaslZqmBM6DwdvLfU_lMAEuXYRBRoZaw5F72kUI"
//! );
//!
//! let validator = token::SystemTokenValidator::new(network);
//! let expiry = validator.validate_at(token.as_str(), now).expect("valid");
//! assert_eq!(expiry.expires(), 1_700_086_400.0);
//! # Ok::<(), pingpull::NetworkError>(())
//! ```

mod build;
mod cache;
mod error;
pub(crate) mod jws;
#[cfg(feature = "ping")]
mod outgoing;
mod validate;

use std::fmt;
use std::time::{Duration, SystemTime};

pub use build::{Claims, system_token_at, user_auth_token_at};
pub use cache::{DEFAULT_TOKEN_CACHE_CAPACITY, MAX_TOKEN_CACHE_CAPACITY, TokenCache};
pub use error::TokenError;
#[cfg(feature = "ping")]
pub(crate) use outgoing::OutgoingToken;
#[cfg(feature = "pull")]
pub(crate) use validate::unverified_claims;
pub use validate::{Expiry, SystemTokenValidator};

use crate::Network;
use crate::user_id::UserIdError;

/// The `user_id` and `display_name` of a system token.
pub const SYSTEM_USER: &str = "system";

/// How long a system token lives unless told otherwise: 24 hours, as the official libraries.
pub const SYSTEM_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);

/// The claim that marks a conformance probe's token, one made to be refused
/// (docs/protocol.md §6): its refusal is no operator's matter.
const PROBE_CLAIM: &str = "pingpull_probe";

/// Tokens longer than this are refused unread. Livefyre's tokens are about 250 bytes.
pub const MAX_TOKEN_LEN: usize = 4096;

/// A system token for `network`, valid for [`SYSTEM_TOKEN_LIFETIME`] from now.
pub fn system_token(network: &Network) -> Token {
    system_token_at(network, SystemTime::now(), SYSTEM_TOKEN_LIFETIME)
}

/// A user auth token for `user_id`, valid for `lifetime` (whole seconds) from now.
///
/// # Errors
///
/// Refuses a `user_id` that does not match `[A-Za-z0-9_.-]+`.
pub fn user_auth_token(
    network: &Network,
    user_id: &str,
    display_name: &str,
    lifetime: Duration,
) -> Result<Token, UserIdError> {
    user_auth_token_at(network, user_id, display_name, SystemTime::now(), lifetime)
}

/// A signed token. A secret: its `Debug` output is redacted and it has no `Display`;
/// use [`as_str`](Token::as_str) where it must be sent.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// The compact token text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The compact token text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}
