//! [`PullLayer`]: the Pull endpoint's configuration, its setters and their defaults.

use std::fmt;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use super::config::{Config, duration_header};
use super::operator_log::OperatorLog;
use super::route::Route;
use super::{ProfileSource, Rejection};
use crate::Network;
use crate::clock::{Clock, TIMEOUT_RANGE, TIMEOUT_RANGE_TEXT};
use crate::metrics::PullMetrics;
use crate::template::{PullUrlTemplate, TemplateError};
use crate::token::{MAX_TOKEN_CACHE_CAPACITY, SystemTokenValidator, TokenCache};

/// How far past its expiry a token is still accepted unless configured: not at all.
pub const DEFAULT_LEEWAY: Duration = Duration::ZERO;

/// How long the profile source may take before the endpoint answers 503.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the `Retry-After` header of a 503 says unless configured.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The longest request target (path and query) the pull path reads unless configured;
/// longer ones get 414. A pull URL is under 400 bytes.
pub const DEFAULT_MAX_URI_LEN: usize = 8 * 1024;

// The ranges each setter accepts; anything else is an [`OutOfRange`] naming the setter.

/// `retry_after`: whole seconds, at most a day.
const RETRY_AFTER_RANGE: RangeInclusive<Duration> = Duration::ZERO..=Duration::from_secs(86_400);
/// `leeway`: clock skew is seconds or minutes; an hour past expiry is no longer skew
/// but accepting tokens Livefyre stopped using.
const LEEWAY_RANGE: RangeInclusive<Duration> = Duration::ZERO..=Duration::from_secs(3600);
/// `max_uri_len`: a system token alone is about 200 bytes, so under 256 no pull fits;
/// over 1 MiB is no limit at all.
const MAX_URI_LEN_RANGE: RangeInclusive<usize> = 256..=1024 * 1024;

/// A [`PullLayer`] setting is out of its range: the setter and what it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfRange {
    /// The setter that took it, e.g. `timeout`.
    pub setting: &'static str,
    /// What it accepts, e.g. `between 1 ms and 1 hour`.
    pub expected: &'static str,
}

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` must be {}", self.setting, self.expected)
    }
}

impl std::error::Error for OutOfRange {}

/// `Ok(())` if `value` is in `range`, else the setter's [`OutOfRange`].
fn within<T: PartialOrd>(
    value: &T,
    range: &RangeInclusive<T>,
    setting: &'static str,
    expected: &'static str,
) -> Result<(), OutOfRange> {
    if range.contains(value) {
        Ok(())
    } else {
        Err(OutOfRange { setting, expected })
    }
}

/// The Pull endpoint as a tower [`Layer`](tower::Layer); wraps any service in
/// [`Pull`](super::Pull).
///
/// Configured from the same URL template the customer registers with Livefyre. Cheap to
/// clone: the configuration is shared.
#[derive(Clone)]
pub struct PullLayer {
    pub(crate) config: Arc<Config>,
}

impl PullLayer {
    /// A layer serving `template`'s path, validating tokens of `network`, loading
    /// profiles from `source`.
    ///
    /// With the `metrics` feature, the layer registers its metrics here: install the
    /// application's recorder before building it.
    ///
    /// # Errors
    ///
    /// [`TemplateError`] if the template is not a URL or path with exactly one `{id}`,
    /// standing in the path or as a whole query value other than `lftoken`.
    pub fn new(
        template: &str,
        network: Network,
        source: impl ProfileSource,
    ) -> Result<Self, TemplateError> {
        let template = PullUrlTemplate::parse(template)?;
        let route = Route::new(&template)?;
        Ok(Self {
            config: Arc::new(Config {
                template,
                route,
                validator: SystemTokenValidator::new(network).cache(Some(TokenCache::default())),
                source: Arc::new(source),
                timeout: DEFAULT_TIMEOUT,
                retry_after: duration_header(DEFAULT_RETRY_AFTER),
                sign: true,
                max_uri_len: DEFAULT_MAX_URI_LEN,
                operator_log: Arc::new(OperatorLog::default()),
                metrics: Arc::new(PullMetrics::register(&Rejection::NAMES)),
            }),
        })
    }

    /// Answers 503 when the source takes longer than `timeout` (default [`DEFAULT_TIMEOUT`], 5 s).
    ///
    /// # Errors
    ///
    /// [`OutOfRange`] unless `timeout` is between 1 ms and 1 hour.
    pub fn timeout(mut self, timeout: Duration) -> Result<Self, OutOfRange> {
        within(&timeout, &TIMEOUT_RANGE, "timeout", TIMEOUT_RANGE_TEXT)?;
        self.config_mut().timeout = timeout;
        Ok(self)
    }

    /// The `Retry-After` of a 503, rounded up to whole seconds (default
    /// [`DEFAULT_RETRY_AFTER`], 30 s).
    ///
    /// # Errors
    ///
    /// [`OutOfRange`] if `retry_after` is longer than a day.
    pub fn retry_after(mut self, retry_after: Duration) -> Result<Self, OutOfRange> {
        within(
            &retry_after,
            &RETRY_AFTER_RANGE,
            "retry_after",
            "at most 1 day",
        )?;
        self.config_mut().retry_after = duration_header(retry_after);
        Ok(self)
    }

    /// Accepts tokens up to `leeway` past their expiry (default [`DEFAULT_LEEWAY`]: none),
    /// for a clock behind Livefyre's.
    ///
    /// # Errors
    ///
    /// [`OutOfRange`] if `leeway` is longer than an hour.
    pub fn leeway(mut self, leeway: Duration) -> Result<Self, OutOfRange> {
        within(&leeway, &LEEWAY_RANGE, "leeway", "at most 1 hour")?;
        let config = self.config_mut();
        config.validator = config.validator.clone().leeway(leeway);
        Ok(self)
    }

    /// Reads "now" for token expiry from `clock` (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        let config = self.config_mut();
        config.validator = config.validator.clone().clock(clock);
        self
    }

    /// How many verified tokens to remember, so a repeated token costs no HMAC (default
    /// [`DEFAULT_TOKEN_CACHE_CAPACITY`](crate::token::DEFAULT_TOKEN_CACHE_CAPACITY)); 0
    /// turns the cache off. Expiry is checked on every request either way.
    ///
    /// # Errors
    ///
    /// [`OutOfRange`] if `capacity` is over
    /// [`MAX_TOKEN_CACHE_CAPACITY`](crate::token::MAX_TOKEN_CACHE_CAPACITY) (1 048 576).
    pub fn token_cache(mut self, capacity: usize) -> Result<Self, OutOfRange> {
        within(
            &capacity,
            &(0..=MAX_TOKEN_CACHE_CAPACITY),
            "token_cache",
            "at most 1048576",
        )?;
        let config = self.config_mut();
        let cache = (capacity > 0).then(|| TokenCache::new(capacity));
        config.validator = config.validator.clone().cache(cache);
        Ok(self)
    }

    /// Whether responses carry `X-Profile-Signature` (default true).
    pub fn sign_responses(mut self, sign: bool) -> Self {
        self.config_mut().sign = sign;
        self
    }

    /// Answers 414 to a request on the pull path whose path and query are longer than
    /// `max_len` bytes (default [`DEFAULT_MAX_URI_LEN`], 8 KiB), before reading the token.
    /// Other paths are not limited here.
    ///
    /// # Errors
    ///
    /// [`OutOfRange`] unless `max_len` is between 256 bytes (a pull URL with its token is
    /// longer) and 1 MiB.
    pub fn max_uri_len(mut self, max_len: usize) -> Result<Self, OutOfRange> {
        within(
            &max_len,
            &MAX_URI_LEN_RANGE,
            "max_uri_len",
            "between 256 and 1048576 bytes",
        )?;
        self.config_mut().max_uri_len = max_len;
        Ok(self)
    }

    /// The template this layer serves.
    pub fn template(&self) -> &PullUrlTemplate {
        &self.config.template
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }
}

impl fmt::Debug for PullLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullLayer")
            .field("template", &self.config.template.as_str())
            .field("network", self.config.validator.network())
            .field("timeout", &self.config.timeout)
            .field("retry_after", &self.config.retry_after)
            .field("sign", &self.config.sign)
            .field("max_uri_len", &self.config.max_uri_len)
            .finish_non_exhaustive()
    }
}
