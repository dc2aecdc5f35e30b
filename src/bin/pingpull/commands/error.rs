//! How a command fails, which `main` turns into the exit status.

use crate::signals::StopSignal;

/// A command's failure: a usage error (2), a failed check or delivery (1), or a stop by
/// a signal after the command said what it had done (128 + the signal's number).
pub(crate) enum CommandError {
    Usage(String),
    Failed(String),
    Stopped(StopSignal),
}
