//! The `pingpull` command line run as a process, with the `cli` feature.

pub(crate) mod commands;
mod ping;
mod proxy;
pub(crate) mod quickstart;
mod readme;
mod register;
mod signals;
mod volume;
