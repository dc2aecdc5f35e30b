//! How a command fails, which `main` turns into the exit status.

/// A command's failure: a usage error (2) or a failed check or delivery (1).
pub(crate) enum CommandError {
    Usage(String),
    Failed(String),
}
