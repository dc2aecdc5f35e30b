//! Integration tests, folded into one binary to keep link time down.

#[cfg(feature = "emulator")]
mod check;
#[cfg(feature = "ping")]
mod circuit;
#[cfg(feature = "cli")]
mod cli;
#[cfg(feature = "cli")]
mod cli_ping;
#[cfg(feature = "cli")]
mod cli_register;
#[cfg(feature = "cli")]
mod cli_volume;
#[cfg(feature = "pull")]
mod compat;
#[cfg(feature = "emulator")]
mod emulator;
#[cfg(feature = "emulator")]
mod emulator_bounds;
#[cfg(all(unix, feature = "cli", feature = "postgres", feature = "metrics"))]
mod examples_serve;
#[cfg(all(feature = "emulator", feature = "metrics"))]
mod health_example;
#[cfg(feature = "rustls")]
mod https;
mod interop;
#[cfg(feature = "emulator")]
mod limits;
#[cfg(all(feature = "ping", feature = "metrics"))]
mod metrics;
#[cfg(feature = "emulator")]
mod no_leaks;
#[cfg(feature = "pull")]
mod operator_log;
#[cfg(feature = "postgres")]
mod outbox;
#[cfg(feature = "postgres")]
mod outbox_batch;
#[cfg(feature = "ping")]
mod ping;
#[cfg(feature = "ping")]
mod ping_guarantee;
#[cfg(feature = "ping")]
mod ping_health;
#[cfg(feature = "ping")]
mod ping_traces;
#[cfg(feature = "ping")]
mod ping_virtual;
#[cfg(feature = "pull")]
mod pull;
#[cfg(all(feature = "pull", feature = "ping", feature = "metrics"))]
mod pull_metrics;
#[cfg(feature = "pull")]
mod pull_prepared;
#[cfg(feature = "cli")]
mod readme_claims_cli;
#[cfg(feature = "ping")]
mod readme_claims_delivery;
#[cfg(feature = "postgres")]
mod readme_claims_outbox;
#[cfg(feature = "emulator")]
mod readme_claims_ping;
#[cfg(feature = "pull")]
mod readme_claims_pull;
#[cfg(feature = "pull")]
mod robust_queries;
#[cfg(feature = "pull")]
mod robust_tokens;
#[cfg(feature = "ping")]
mod robust_urls;
mod support;
#[cfg(feature = "emulator")]
mod template_rule;
mod tokens;
