//! What each command does: a module per subcommand, holding its flags and its `run`.
//!
//! Dependencies point one way: `main` dispatches to the subcommands' modules, which use
//! [`livefyre`] (how to reach Livefyre's API), [`error`] (how a command fails) and the
//! crate's `signals` (what stops a command); none of them uses `main` or another
//! subcommand's module.

pub(crate) mod check;
pub(crate) mod emulator;
pub(crate) mod error;
mod livefyre;
mod numbers;
pub(crate) mod ping;
pub(crate) mod quickstart;
pub(crate) mod register;
pub(crate) mod token;
