use std::fmt;

use http::StatusCode;

use crate::percent::DecodeError;
use crate::profile::{ViolationKind, Violations, unservable_body};
use crate::token::TokenError;
use crate::user_id::UserIdError;

/// Why the Pull endpoint did not answer 200 with a profile.
///
/// Put in the response's extensions for outer layers and logs. The response body never
/// says which token check failed; only a 500, which a pull with a valid token reaches,
/// says why in a JSON body (docs/protocol.md §6).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Rejection {
    /// The request's path and query are longer than the layer's limit (414).
    UriTooLong {
        /// Their length in bytes.
        len: usize,
    },
    /// A method other than GET or HEAD (405).
    MethodNotAllowed,
    /// No `lftoken` query parameter (403).
    MissingToken,
    /// More than one `lftoken` query parameter (403).
    RepeatedToken,
    /// The `lftoken` value is not percent-decodable (403).
    UndecodableToken,
    /// The token failed validation (403).
    InvalidToken(TokenError),
    /// The id is not in the request (400).
    MissingId,
    /// The id query parameter appears more than once (400).
    RepeatedId,
    /// The id has a bad escape or is not UTF-8 once decoded (400).
    UndecodableId(DecodeError),
    /// The decoded id is not a valid user id (400).
    InvalidId(UserIdError),
    /// The id is percent-encoded although it needs no escape; refused so that two
    /// different raw ids never name the same user (400).
    EncodedId,
    /// The source has no such user (404).
    UnknownUser,
    /// The source returned an error (503); its message.
    SourceFailed(String),
    /// The source did not answer within the timeout (503).
    SourceTimedOut,
    /// The source panicked (500).
    SourcePanicked,
    /// The source's profile breaks docs/protocol.md §7 (500); it was not sent.
    InvalidProfile(Violations),
    /// The source's profile has another id than the one requested (500); not sent.
    IdMismatch,
}

impl Rejection {
    /// The status the endpoint answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::MissingToken
            | Self::RepeatedToken
            | Self::UndecodableToken
            | Self::InvalidToken(_) => StatusCode::FORBIDDEN,
            Self::MissingId
            | Self::RepeatedId
            | Self::UndecodableId(_)
            | Self::InvalidId(_)
            | Self::EncodedId => StatusCode::BAD_REQUEST,
            Self::UnknownUser => StatusCode::NOT_FOUND,
            Self::SourceFailed(_) | Self::SourceTimedOut => StatusCode::SERVICE_UNAVAILABLE,
            Self::SourcePanicked | Self::InvalidProfile(_) | Self::IdMismatch => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The JSON body of a 500, saying why the profile was not served (docs/protocol.md
    /// §6); `None` for every other rejection, whose body stays empty. Rules and fields
    /// only: never a profile's values, a source's error or a panic's message.
    pub(crate) fn unservable_body(&self) -> Option<Vec<u8>> {
        let violations: Vec<(String, String)> = match self {
            Self::InvalidProfile(violations) => violations
                .iter()
                .map(|v| (v.field.clone(), v.kind.to_string()))
                .collect(),
            Self::IdMismatch => vec![("id".to_owned(), ViolationKind::IdMismatch.to_string())],
            Self::SourcePanicked => Vec::new(),
            _ => return None,
        };
        Some(unservable_body(
            self.as_str(),
            &self.to_string(),
            violations,
        ))
    }

    /// Every name [`as_str`](Self::as_str) returns, for registering metrics up front.
    pub(crate) const NAMES: [&'static str; 17] = [
        "uri_too_long",
        "method_not_allowed",
        "missing_token",
        "repeated_token",
        "undecodable_token",
        "invalid_token",
        "missing_id",
        "repeated_id",
        "undecodable_id",
        "invalid_id",
        "encoded_id",
        "unknown_user",
        "source_failed",
        "source_timed_out",
        "source_panicked",
        "invalid_profile",
        "id_mismatch",
    ];

    /// A short stable name for logs and metrics: `missing_token`, `unknown_user`, ...
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::UriTooLong { .. } => "uri_too_long",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::MissingToken => "missing_token",
            Self::RepeatedToken => "repeated_token",
            Self::UndecodableToken => "undecodable_token",
            Self::InvalidToken(_) => "invalid_token",
            Self::MissingId => "missing_id",
            Self::RepeatedId => "repeated_id",
            Self::UndecodableId(_) => "undecodable_id",
            Self::InvalidId(_) => "invalid_id",
            Self::EncodedId => "encoded_id",
            Self::UnknownUser => "unknown_user",
            Self::SourceFailed(_) => "source_failed",
            Self::SourceTimedOut => "source_timed_out",
            Self::SourcePanicked => "source_panicked",
            Self::InvalidProfile(_) => "invalid_profile",
            Self::IdMismatch => "id_mismatch",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UriTooLong { len } => {
                write!(f, "request path and query are {len} bytes, over the limit")
            }
            Self::MethodNotAllowed => f.write_str("method not allowed on the pull path"),
            Self::MissingToken => f.write_str("no lftoken"),
            Self::RepeatedToken => f.write_str("lftoken given more than once"),
            Self::UndecodableToken => f.write_str("lftoken is not percent-decodable"),
            Self::InvalidToken(error) => error.fmt(f),
            Self::MissingId => f.write_str("no user id in the request"),
            Self::RepeatedId => f.write_str("user id given more than once"),
            Self::UndecodableId(error) => write!(f, "user id: {error}"),
            Self::InvalidId(error) => error.fmt(f),
            Self::EncodedId => f.write_str("user id must not be percent-encoded"),
            Self::UnknownUser => f.write_str("no such user"),
            Self::SourceFailed(message) => write!(f, "profile source failed: {message}"),
            Self::SourceTimedOut => f.write_str("profile source timed out"),
            Self::SourcePanicked => f.write_str("profile source panicked"),
            Self::InvalidProfile(violations) => violations.fmt(f),
            Self::IdMismatch => f.write_str("profile id differs from the requested id"),
        }
    }
}

impl std::error::Error for Rejection {}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_profile_violations() -> Violations {
        let profile = crate::Profile::builder("u1", "").build();
        profile.validate().unwrap_err()
    }

    #[test]
    fn names_lists_every_name_as_str_returns() {
        let samples = [
            Rejection::UriTooLong { len: 1 },
            Rejection::MethodNotAllowed,
            Rejection::MissingToken,
            Rejection::RepeatedToken,
            Rejection::UndecodableToken,
            Rejection::InvalidToken(TokenError::BadSignature),
            Rejection::MissingId,
            Rejection::RepeatedId,
            Rejection::UndecodableId(DecodeError::BadEscape),
            Rejection::InvalidId(UserIdError::Empty),
            Rejection::EncodedId,
            Rejection::UnknownUser,
            Rejection::SourceFailed(String::new()),
            Rejection::SourceTimedOut,
            Rejection::SourcePanicked,
            Rejection::InvalidProfile(invalid_profile_violations()),
            Rejection::IdMismatch,
        ];
        let names: Vec<_> = samples.iter().map(Rejection::as_str).collect();
        assert_eq!(names, Rejection::NAMES);
        // Only the 500s, which a valid token reaches, have a body.
        for rejection in &samples {
            assert_eq!(
                rejection.unservable_body().is_some(),
                rejection.status() == StatusCode::INTERNAL_SERVER_ERROR,
                "{rejection:?}"
            );
        }
    }
}
