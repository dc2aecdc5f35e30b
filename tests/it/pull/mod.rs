//! The Pull endpoint (the layer and its sources), with the `pull` feature.

#[cfg(feature = "actix")]
mod actix;
mod endpoint;
mod frameworks;
#[cfg(all(feature = "ping", feature = "metrics"))]
mod metrics;
mod operator_log;
mod prepared;
mod readme;
