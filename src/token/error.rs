use std::fmt;

/// Why a token was refused: which check failed.
///
/// For logs and the `check` command; an HTTP response never says which check failed.
/// `Display` never contains the token or the key.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is longer than [`MAX_TOKEN_LEN`](super::MAX_TOKEN_LEN) bytes.
    TooLong {
        /// The token's length in bytes.
        len: usize,
    },
    /// Not a compact JWS of three base64url segments holding JSON objects.
    Malformed {
        /// What was wrong, e.g. "expected 3 segments".
        reason: &'static str,
    },
    /// The header's `alg` is not `HS256` (`none`, other HMAC sizes and asymmetric
    /// algorithms are refused).
    WrongAlgorithm,
    /// The signature was not made with this network's key over these bytes.
    BadSignature,
    /// A claim the check needs is absent (or `null`).
    MissingClaim {
        /// The claim's name.
        claim: &'static str,
    },
    /// A claim has the wrong JSON type (e.g. `expires` as a string).
    InvalidClaim {
        /// The claim's name.
        claim: &'static str,
    },
    /// The `domain` claim names another network.
    WrongNetwork {
        /// The network this validator accepts.
        expected: String,
    },
    /// The `user_id` claim is not `system`: a user token, not a system token.
    NotSystemToken,
    /// `expires` (plus the leeway) is before now.
    Expired {
        /// The token's `expires`, in Unix seconds.
        expires: f64,
        /// The time of the check, in Unix seconds.
        now: f64,
    },
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { len } => write!(
                f,
                "token is {len} bytes long, more than the {} accepted",
                super::MAX_TOKEN_LEN
            ),
            Self::Malformed { reason } => write!(f, "token is malformed: {reason}"),
            Self::WrongAlgorithm => f.write_str("token algorithm is not HS256"),
            Self::BadSignature => f.write_str("token signature does not match the network key"),
            Self::MissingClaim { claim } => write!(f, "token has no `{claim}` claim"),
            Self::InvalidClaim { claim } => write!(f, "token claim `{claim}` has the wrong type"),
            Self::WrongNetwork { expected } => {
                write!(f, "token is for another network than `{expected}`")
            }
            Self::NotSystemToken => {
                f.write_str("token is not a system token (user_id is not `system`)")
            }
            Self::Expired { expires, now } => write!(f, "token expired at {expires} (now {now})"),
        }
    }
}

impl std::error::Error for TokenError {}
