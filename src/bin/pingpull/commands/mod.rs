//! What each command does: a module per subcommand, holding its flags and its `run`.
//!
//! Dependencies point one way: `main` dispatches to the subcommands' modules, which use
//! [`livefyre`] (how to reach Livefyre's API) and [`error`] (how a command fails); none
//! of them uses `main` or another subcommand's module.

pub(crate) mod check;
pub(crate) mod emulator;
pub(crate) mod error;
mod livefyre;
pub(crate) mod ping;
pub(crate) mod register;
pub(crate) mod token;
