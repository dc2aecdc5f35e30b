//! The examples: run as processes, and the health example's router compiled in; with the
//! `metrics` feature.

#[cfg(feature = "emulator")]
mod health;
#[cfg(all(unix, feature = "cli", feature = "postgres"))]
mod serve;
