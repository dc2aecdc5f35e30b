//! The Pinger (delivery, the circuit, health, traces, metrics, the hook) and the https
//! client, with the `ping` feature.

mod circuit;
mod config;
mod guarantee;
mod health;
mod hook;
#[cfg(feature = "rustls")]
mod https;
#[cfg(feature = "metrics")]
pub(crate) mod metrics;
#[cfg(feature = "pull")]
mod opentelemetry;
mod pinger;
#[cfg(feature = "emulator")]
mod proxy;
mod readme_defaults;
#[cfg(feature = "emulator")]
mod readme_hook;
#[cfg(feature = "emulator")]
mod rotation;
mod stopped;
mod storm;
mod timing;
mod traces;
