//! Integration tests, folded into one binary to keep link time down.

#[cfg(feature = "pull")]
mod compat;
mod interop;
#[cfg(feature = "pull")]
mod pull;
mod tokens;
