//! Why a ping was refused.

use std::fmt;

use crate::user_id::UserIdError;

/// Why [`Pinger::ping`](super::Pinger::ping) refused a user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PingError {
    /// The id cannot stand in the ping URL.
    InvalidUserId(UserIdError),
    /// `max_pending` users are pending; this new one was not recorded.
    QueueFull {
        /// The configured bound.
        max_pending: usize,
    },
    /// The Pinger is shutting down.
    ShuttingDown,
    /// The Pinger's delivery task has died (it panicked, or its Tokio runtime shut
    /// down): nothing more is delivered. The ERROR log says why; restart the Pinger.
    Stopped,
}

impl fmt::Display for PingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUserId(error) => write!(f, "cannot ping: {error}"),
            Self::QueueFull { max_pending } => {
                write!(
                    f,
                    "cannot ping: {max_pending} users already pending (the configured maximum)"
                )
            }
            Self::ShuttingDown => f.write_str("cannot ping: the Pinger is shutting down"),
            Self::Stopped => f.write_str(
                "cannot ping: the Pinger's delivery task has stopped (see the ERROR log); restart the Pinger",
            ),
        }
    }
}

impl std::error::Error for PingError {}
