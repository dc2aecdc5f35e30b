//! What one Pull endpoint is configured with, shared by the layer and every service and
//! request it makes (behind an `Arc`).

use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use super::ProfileSource;
use super::operator_log::OperatorLog;
use super::route::Route;
use crate::metrics::PullMetrics;
use crate::template::PullUrlTemplate;
use crate::token::SystemTokenValidator;

/// The endpoint's configuration; [`PullLayer`](super::PullLayer)'s setters write it.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) template: PullUrlTemplate,
    pub(crate) route: Route,
    pub(crate) validator: SystemTokenValidator,
    pub(crate) source: Arc<dyn ProfileSource>,
    pub(crate) timeout: Duration,
    pub(crate) retry_after: HeaderValue,
    pub(crate) sign: bool,
    pub(crate) max_uri_len: usize,
    /// Rate-limited lines for the operator (shared by clones of the configuration).
    pub(crate) operator_log: Arc<OperatorLog>,
    pub(crate) metrics: Arc<PullMetrics>,
}

/// A `Retry-After` value: `duration` in whole seconds, rounded up.
pub(super) fn duration_header(duration: Duration) -> HeaderValue {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    HeaderValue::from(secs)
}
