//! Integration tests, folded into one binary to keep link time down, in one folder per
//! component. Each folder's `mod.rs` gates its files on the features they need.

#[cfg(feature = "cli")]
mod cli;
#[cfg(feature = "emulator")]
mod emulator;
#[cfg(feature = "metrics")]
mod examples;
#[cfg(feature = "postgres")]
mod outbox;
#[cfg(feature = "ping")]
mod ping;
#[cfg(feature = "pull")]
mod pull;
mod security;
mod support;
mod tokens;
