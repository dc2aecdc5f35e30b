//! Robustness and security: hostile tokens and queries, URLs built from any valid id, no
//! secret in logs or in `Debug`/`Display`, and limits and timeouts against misbehaving
//! peers.

#[cfg(feature = "pull")]
mod hostile_tokens;
#[cfg(feature = "emulator")]
mod limits;
#[cfg(feature = "emulator")]
mod no_leaks;
#[cfg(feature = "pull")]
mod random_queries;
#[cfg(feature = "ping")]
mod urls;
