//! How one ping request ended, as the policy and the attempt's span read it.

use std::time::Duration;

use http::StatusCode;

use crate::http::FetchError;
use crate::livefyre::Answer;

/// How one ping request ended.
#[derive(Debug)]
pub(crate) enum Reply {
    /// An HTTP answer, with its `Retry-After` if it had one.
    Status(StatusCode, Option<Duration>),
    TimedOut,
    /// Connection refused, reset, DNS, TLS...: the message, without the URL's token.
    Failed(String),
}

impl From<Answer> for Reply {
    fn from(answer: Answer) -> Self {
        match answer {
            Ok((status, retry_after)) => Self::Status(status, retry_after),
            Err(FetchError::Timeout) => Self::TimedOut,
            Err(error @ FetchError::TooLarge) => Self::Failed(error.to_string()),
            Err(FetchError::Failed(message)) => Self::Failed(message),
        }
    }
}
