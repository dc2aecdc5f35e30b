//! What every delivery front-end configures the same way (the Pinger's builder and the
//! outbox worker's both embed [`DeliveryOptions`]), with its defaults in one place.

use std::fmt;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use super::policy::{OutageRules, Policy};
use super::retry::RetrySchedule;
use crate::Network;
use crate::clock::{Clock, SystemClock, TIMEOUT_RANGE, TIMEOUT_RANGE_TEXT};
#[cfg(feature = "rustls")]
use crate::http::TlsRoots;
use crate::http::{HyperTransport, Proxy, Transport};
use crate::livefyre::{ConfigError, DEFAULT_ATTEMPT_TIMEOUT, LivefyreClient};

/// Requests in flight at once unless configured.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// After a 403, one probe this often unless configured.
pub const DEFAULT_PROBE_EVERY: Duration = Duration::from_secs(60);
/// Different users whose attempts failed in a row (connection errors, timeouts, 5xx; no
/// answer from Livefyre in between) after which Livefyre counts as unreachable and the
/// circuit opens. High enough that a share of passing faults does not open it, and that a
/// few users failing again and again keep their own schedules.
pub(crate) const DEFAULT_OUTAGE_THRESHOLD: u32 = 10;
/// While Livefyre is unreachable, the first probe follows this long after the circuit
/// opened unless configured.
pub const DEFAULT_OUTAGE_FIRST_PROBE: Duration = Duration::from_secs(1);
/// While Livefyre is unreachable, failed probes double the wait up to this unless
/// configured. Equal to the first: one probe a second, so delivery resumes within about a
/// second of Livefyre answering again, however long the outage.
pub const DEFAULT_OUTAGE_LONGEST_PROBE: Duration = Duration::from_secs(1);
/// Events a slow subscriber may lag behind unless configured.
pub const DEFAULT_EVENTS_CAPACITY: usize = 1024;

// The ranges each setting accepts; `check` refuses anything else with the setting's name.
// Each is wide enough for any real deployment, and narrow enough that nothing computed
// from a setting can overflow or exhaust memory.

/// `rate_limit`, requests a second: from one request every 1000 s to one every
/// microsecond (beyond, the interval between two starts rounds to nothing).
const RATE_LIMIT_RANGE: RangeInclusive<f64> = 0.001..=1_000_000.0;
/// `concurrency`: each request in flight holds a connection (a file descriptor).
const CONCURRENCY_RANGE: RangeInclusive<usize> = 1..=10_000;
/// `events_capacity`: the event channel allocates every slot up front (about 100 bytes
/// each: 1.6 GB at the top of the range).
const EVENTS_CAPACITY_RANGE: RangeInclusive<usize> = 1..=16_777_216;
/// `probe_every` and both `outage_probe` intervals: a probe more often than ten times a
/// second hammers a Livefyre that refuses us; one less often than daily never comes.
const PROBE_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(100)..=Duration::from_secs(86_400);
/// Every duration of a `retry_schedule`: a user is not waited for longer than a year.
const LONGEST_SETTING: Duration = super::LONGEST_WAIT;

/// The settings both front-ends share; each builder's setters write here.
pub(crate) struct DeliveryOptions {
    pub(crate) network: Network,
    pub(crate) base_url: Option<String>,
    /// A client of the user's own, instead of the built-in one.
    pub(crate) transport: Option<Arc<dyn Transport>>,
    /// The built-in client's settings.
    #[cfg(feature = "rustls")]
    pub(crate) tls_roots: Option<TlsRoots>,
    pub(crate) proxy: Option<Proxy>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
    pub(crate) attempt_timeout: Duration,
    pub(crate) concurrency: usize,
    pub(crate) rate_limit: Option<f64>,
    pub(crate) schedule: RetrySchedule,
    pub(crate) probe_every: Duration,
    pub(crate) outage_probe: (Duration, Duration),
    pub(crate) events_capacity: usize,
}

/// The options, checked: what an engine is built from.
pub(crate) struct EngineConfig {
    pub(crate) client: LivefyreClient,
    pub(crate) policy: Policy,
    pub(crate) concurrency: usize,
    /// Between two request starts, from the rate limit.
    pub(crate) min_interval: Option<Duration>,
    pub(crate) events_capacity: usize,
    pub(crate) runtime: tokio::runtime::Handle,
    /// The configured clock, else the system's: for the throttled 403 and outage logs,
    /// and health.
    pub(crate) clock: Arc<dyn Clock>,
}

impl DeliveryOptions {
    pub(crate) fn new(network: Network) -> Self {
        Self {
            network,
            base_url: None,
            transport: None,
            #[cfg(feature = "rustls")]
            tls_roots: None,
            proxy: None,
            clock: None,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            concurrency: DEFAULT_CONCURRENCY,
            rate_limit: None,
            schedule: RetrySchedule::default(),
            probe_every: DEFAULT_PROBE_EVERY,
            outage_probe: (DEFAULT_OUTAGE_FIRST_PROBE, DEFAULT_OUTAGE_LONGEST_PROBE),
            events_capacity: DEFAULT_EVENTS_CAPACITY,
        }
    }

    /// Checks the settings and builds the client, at spawn time.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a bad base URL, a setting out of its range (see each setter),
    /// or when called outside a Tokio runtime.
    pub(crate) fn check(self) -> Result<EngineConfig, ConfigError> {
        if !TIMEOUT_RANGE.contains(&self.attempt_timeout) {
            return Err(ConfigError::out_of_range(
                "attempt_timeout",
                TIMEOUT_RANGE_TEXT,
            ));
        }
        let transport = self.built_in_transport()?.or(self.transport);
        let mut client = LivefyreClient::for_worker(
            self.network,
            self.base_url.as_deref(),
            transport,
            self.attempt_timeout,
        )?;
        let clock = match self.clock {
            Some(clock) => {
                client = client.shared_clock(clock.clone());
                clock
            }
            None => Arc::new(SystemClock),
        };
        if !CONCURRENCY_RANGE.contains(&self.concurrency) {
            return Err(ConfigError::out_of_range(
                "concurrency",
                "between 1 and 10000",
            ));
        }
        if !EVENTS_CAPACITY_RANGE.contains(&self.events_capacity) {
            return Err(ConfigError::out_of_range(
                "events_capacity",
                "between 1 and 16777216",
            ));
        }
        let min_interval = match self.rate_limit {
            None => None,
            Some(rate) if RATE_LIMIT_RANGE.contains(&rate) => {
                Some(Duration::from_secs_f64(1.0 / rate))
            }
            Some(_) => {
                return Err(ConfigError::out_of_range(
                    "rate_limit",
                    "between 0.001 and 1000000 requests per second",
                ));
            }
        };
        if !self.schedule.within(LONGEST_SETTING) {
            return Err(ConfigError::out_of_range(
                "retry_schedule",
                "made of delays, a max_delay, a max_retry_after and a max_age of at most 365 days each",
            ));
        }
        if !PROBE_RANGE.contains(&self.probe_every) {
            return Err(ConfigError::out_of_range(
                "probe_every",
                "between 100 ms and 1 day",
            ));
        }
        let (first_probe, longest_probe) = self.outage_probe;
        if !PROBE_RANGE.contains(&first_probe)
            || !PROBE_RANGE.contains(&longest_probe)
            || longest_probe < first_probe
        {
            return Err(ConfigError::out_of_range(
                "outage_probe",
                "a first and a longest interval between 100 ms and 1 day, the longest at least as long as the first",
            ));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
        Ok(EngineConfig {
            client,
            policy: Policy {
                schedule: self.schedule,
                probe_every: self.probe_every,
                outage: OutageRules {
                    threshold: DEFAULT_OUTAGE_THRESHOLD,
                    first_probe,
                    longest_probe,
                },
            },
            concurrency: self.concurrency,
            min_interval,
            events_capacity: self.events_capacity,
            runtime,
            clock,
        })
    }
}

impl DeliveryOptions {
    /// The built-in client with the TLS roots and proxy set, if any was; `None` leaves
    /// the choice to the client (the user's transport, or the built-in one as it comes).
    ///
    /// # Errors
    ///
    /// [`ConfigError::TransportConflict`] when a transport of the user's own was given
    /// too: it would silently ignore the built-in client's settings.
    fn built_in_transport(&self) -> Result<Option<Arc<dyn Transport>>, ConfigError> {
        let mut built_in: Option<HyperTransport> = None;
        #[cfg(feature = "rustls")]
        if let Some(roots) = &self.tls_roots {
            built_in = Some(built_in.unwrap_or_default().tls_roots(roots));
        }
        if let Some(proxy) = &self.proxy {
            built_in = Some(built_in.unwrap_or_default().proxy(proxy));
        }
        match built_in {
            None => Ok(None),
            Some(_) if self.transport.is_some() => Err(ConfigError::TransportConflict),
            Some(built_in) => Ok(Some(Arc::new(built_in))),
        }
    }
}

impl fmt::Debug for DeliveryOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryOptions")
            .field("network", &self.network)
            .field("base_url", &self.base_url)
            .field("concurrency", &self.concurrency)
            .field("rate_limit", &self.rate_limit)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

/// The setters every delivery builder offers, written once. Expands inside an `impl`
/// block of a builder with a field `options: DeliveryOptions`.
macro_rules! delivery_setters {
    () => {
        /// Sends to `base_url` instead of `https://{label}.quill.fyre.co` (the emulator, a proxy).
        pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
            self.options.base_url = Some(base_url.into());
            self
        }

        /// At most this many requests in flight at once (default
        /// [`DEFAULT_CONCURRENCY`](crate::ping::DEFAULT_CONCURRENCY), 8): between 1 and
        /// 10 000, or `spawn` fails with [`ConfigError::OutOfRange`](crate::ping::ConfigError::OutOfRange).
        pub fn concurrency(mut self, concurrency: usize) -> Self {
            self.options.concurrency = concurrency;
            self
        }

        /// At most this many requests started per second (default: no limit): between
        /// 0.001 (one request every 1000 s) and 1 000 000, or `spawn` fails with
        /// [`ConfigError::OutOfRange`](crate::ping::ConfigError::OutOfRange).
        ///
        /// With or without it, the engine slows down by itself when Livefyre answers 429
        /// (Too Many Requests): a 429 to a request sent since the last cut halves its
        /// pace, down to one request a second (the user answered waits its `Retry-After`,
        /// or without one an interval at the new pace; at one request a second, a
        /// `Retry-After` holds every request back), and each accepted request speeds it
        /// up again until it is back to the pace of the first 429 (docs/pinger.md, "When
        /// Livefyre asks to slow down").
        pub fn rate_limit(mut self, per_second: f64) -> Self {
            self.options.rate_limit = Some(per_second);
            self
        }

        /// Gives each request at most `timeout` (default
        /// [`DEFAULT_ATTEMPT_TIMEOUT`](crate::ping::DEFAULT_ATTEMPT_TIMEOUT), 10 s): between
        /// 1 ms and 1 hour, or `spawn` fails with
        /// [`ConfigError::OutOfRange`](crate::ping::ConfigError::OutOfRange).
        pub fn attempt_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.options.attempt_timeout = timeout;
            self
        }

        /// When to retry and when to give up (default [`RetrySchedule::default`](crate::delivery::RetrySchedule::default)):
        /// each of its delays, its `max_delay`, `max_retry_after` and `max_age` at most 365
        /// days, or `spawn` fails with [`ConfigError::OutOfRange`](crate::ping::ConfigError::OutOfRange).
        pub fn retry_schedule(mut self, schedule: crate::delivery::RetrySchedule) -> Self {
            self.options.schedule = schedule;
            self
        }

        /// After a 403, sends one probe this often until a ping is accepted (default
        /// [`DEFAULT_PROBE_EVERY`](crate::ping::DEFAULT_PROBE_EVERY), 60 s): between 100 ms
        /// and 1 day, or `spawn` fails with [`ConfigError::OutOfRange`](crate::ping::ConfigError::OutOfRange).
        pub fn probe_every(mut self, interval: std::time::Duration) -> Self {
            self.options.probe_every = interval;
            self
        }

        /// While Livefyre is unreachable (the circuit is open: many connection errors,
        /// timeouts or 5xx answers in a row), sends one probe `first` after the circuit
        /// opened, then doubles the wait after each failed probe up to `longest` (default
        /// [`DEFAULT_OUTAGE_FIRST_PROBE`](crate::ping::DEFAULT_OUTAGE_FIRST_PROBE) and
        /// [`DEFAULT_OUTAGE_LONGEST_PROBE`](crate::ping::DEFAULT_OUTAGE_LONGEST_PROBE),
        /// 1 s and 1 s: one probe a second). A longer `longest` sends fewer requests during
        /// a long outage, but delivery may then resume up to `longest` after Livefyre is back.
        /// Both between 100 ms and 1 day, `longest` at least `first`, or `spawn` fails with
        /// [`ConfigError::OutOfRange`](crate::ping::ConfigError::OutOfRange).
        pub fn outage_probe(
            mut self,
            first: std::time::Duration,
            longest: std::time::Duration,
        ) -> Self {
            self.options.outage_probe = (first, longest);
            self
        }

        /// Reads "now" from `clock` (default: the system clock): for the system token, the
        /// once-a-minute limits on the 403 and outage logs, and the health's last delivery.
        pub fn clock(mut self, clock: impl crate::clock::Clock) -> Self {
            self.options.clock = Some(std::sync::Arc::new(clock));
            self
        }

        /// The built-in HTTP client's https trusts `roots` (a private CA, the platform's
        /// store) instead of Mozilla's roots alone. With a `transport` of your own, `spawn`
        /// fails with [`ConfigError::TransportConflict`](crate::ping::ConfigError::TransportConflict).
        #[cfg(feature = "rustls")]
        pub fn tls_roots(mut self, roots: &crate::http::TlsRoots) -> Self {
            self.options.tls_roots = Some(roots.clone());
            self
        }

        /// The built-in HTTP client reaches Livefyre through a forward proxy where `proxy`
        /// says so: one proxy URL ([`Proxy::new`](crate::ping::Proxy::new)), or what
        /// `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` say ([`Proxy::from_env`](crate::ping::Proxy::from_env)).
        /// Without it, no proxy is used, whatever the environment says. With a `transport`
        /// of your own, `spawn` fails with [`ConfigError::TransportConflict`](crate::ping::ConfigError::TransportConflict).
        pub fn proxy(mut self, proxy: &crate::http::Proxy) -> Self {
            self.options.proxy = Some(proxy.clone());
            self
        }

        /// Sends through `transport` instead of the built-in HTTP client (then `tls_roots`
        /// and `proxy`, which configure the built-in one, cannot be set).
        pub fn transport(mut self, transport: impl crate::http::Transport) -> Self {
            self.options.transport = Some(std::sync::Arc::new(transport));
            self
        }

        /// How many events a slow subscriber may lag behind before it misses some (default
        /// [`DEFAULT_EVENTS_CAPACITY`](crate::ping::DEFAULT_EVENTS_CAPACITY), 1024): between
        /// 1 and 16 777 216 (the channel allocates every slot up front, about 100 bytes
        /// each), or `spawn` fails with [`ConfigError::OutOfRange`](crate::ping::ConfigError::OutOfRange).
        pub fn events_capacity(mut self, capacity: usize) -> Self {
            self.options.events_capacity = capacity;
            self
        }
    };
}

pub(crate) use delivery_setters;
