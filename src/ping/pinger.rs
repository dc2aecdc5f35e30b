//! The Pinger: a cheap handle whose `ping` records a user, and a background worker that
//! delivers, coalescing and retrying, until Livefyre has answered 2xx for each user
//! after its latest ping.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;
use tracing::Level;

use super::client::{ConfigError, LivefyreClient};
use super::events::{Counters, PingEvent, PingStats};
use super::queue::{Enqueued, MemoryQueue, Queue};
use super::retry::RetrySchedule;
use super::rules::Rules;
use super::transport::Transport;
use super::worker::{Running, Worker};
use crate::Network;
use crate::clock::Clock;
use crate::user_id::{self, UserIdError};

/// Configures and spawns a [`Pinger`]; start with [`Pinger::builder`].
#[must_use]
pub struct PingerBuilder {
    network: Network,
    base_url: Option<String>,
    max_pending: usize,
    concurrency: usize,
    rate_limit: Option<f64>,
    attempt_timeout: Duration,
    debounce: Duration,
    schedule: RetrySchedule,
    probe_every: Duration,
    clock: Option<Box<dyn FnOnce(LivefyreClient) -> LivefyreClient + Send>>,
    events_capacity: usize,
    transport: Option<Arc<dyn Transport>>,
}

impl PingerBuilder {
    fn new(network: Network) -> Self {
        Self {
            network,
            base_url: None,
            max_pending: 100_000,
            concurrency: 8,
            rate_limit: None,
            attempt_timeout: super::client::DEFAULT_ATTEMPT_TIMEOUT,
            debounce: Duration::ZERO,
            schedule: RetrySchedule::default(),
            probe_every: Duration::from_secs(60),
            clock: None,
            events_capacity: 1024,
            transport: None,
        }
    }

    /// Sends to `base_url` instead of `https://{label}.quill.fyre.co` (the emulator, a proxy).
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// At most this many users pending at once (default 100 000); beyond it `ping`
    /// returns [`PingError::QueueFull`] for new users, never dropping one.
    pub fn max_pending(mut self, max_pending: usize) -> Self {
        self.max_pending = max_pending;
        self
    }

    /// At most this many requests in flight (default 8).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// At most this many requests started per second (default: no limit).
    pub fn rate_limit(mut self, per_second: f64) -> Self {
        self.rate_limit = Some(per_second);
        self
    }

    /// Gives each request at most `timeout` (default 10 s).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Waits `window` after a user's first ping before sending, so a burst of changes
    /// becomes one request (default 0: send at once).
    pub fn debounce(mut self, window: Duration) -> Self {
        self.debounce = window;
        self
    }

    /// When to retry and when to give up (default [`RetrySchedule::default`]).
    pub fn retry_schedule(mut self, schedule: RetrySchedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// After a 403, sends one probe this often until a ping is accepted (default 60 s).
    pub fn probe_every(mut self, interval: Duration) -> Self {
        self.probe_every = interval;
        self
    }

    /// Reads "now" for the system token from `clock`.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Box::new(move |client: LivefyreClient| client.clock(clock)));
        self
    }

    /// Sends through `transport` instead of the built-in HTTP client.
    pub fn transport(mut self, transport: impl Transport) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// How many events a slow subscriber may lag behind before it misses some (default 1024).
    pub fn events_capacity(mut self, capacity: usize) -> Self {
        self.events_capacity = capacity;
        self
    }

    /// Spawns the background worker on the current Tokio runtime and returns the handle.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a bad base URL, a zero limit, or when called outside a Tokio runtime.
    pub fn spawn(self) -> Result<Pinger, ConfigError> {
        let mut client = LivefyreClient::for_worker(
            self.network.clone(),
            self.base_url.as_deref(),
            self.transport,
            self.attempt_timeout,
        )?;
        if let Some(set_clock) = self.clock {
            client = set_clock(client);
        }
        if self.max_pending == 0 || self.concurrency == 0 || self.events_capacity == 0 {
            return Err(ConfigError::Invalid(
                "max_pending, concurrency and events_capacity must be at least 1",
            ));
        }
        let min_interval = match self.rate_limit {
            None => None,
            Some(rate) if rate.is_finite() && rate > 0.0 => {
                Some(Duration::from_secs_f64(1.0 / rate))
            }
            Some(_) => return Err(ConfigError::Invalid("rate_limit must be a positive number")),
        };
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            ConfigError::Invalid("Pinger::spawn must be called inside a Tokio runtime")
        })?;
        let (events, _) = broadcast::channel(self.events_capacity);
        let max_age = self.schedule.max_age_duration();
        let queue = MemoryQueue::new(Queue::new(self.max_pending, self.debounce), max_age);
        let rules = Rules::new(client, self.schedule, self.probe_every, events);
        let shared = Arc::new(Worker::new(
            queue,
            rules,
            self.concurrency,
            min_interval,
            None,
        ));
        Ok(Pinger {
            running: Arc::new(Running::spawn(&runtime, shared)),
        })
    }
}

impl fmt::Debug for PingerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PingerBuilder")
            .field("network", &self.network)
            .field("base_url", &self.base_url)
            .field("max_pending", &self.max_pending)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// A cheap handle to the background ping worker; clone it into every update handler.
///
/// When the last handle is dropped without [`shutdown`](Pinger::shutdown), the worker
/// keeps delivering what is pending and then stops.
#[derive(Clone)]
pub struct Pinger {
    running: Arc<Running<MemoryQueue>>,
}

impl Pinger {
    fn worker(&self) -> &Worker<MemoryQueue> {
        &self.running.worker
    }

    /// Starts configuring a Pinger for `network`.
    pub fn builder(network: Network) -> PingerBuilder {
        PingerBuilder::new(network)
    }

    /// Records that `user_id`'s profile changed: Livefyre will be pinged for it.
    ///
    /// Never blocks on the network. Pings for a user already pending coalesce into one
    /// request; a ping for a user whose request is in flight causes one more request.
    ///
    /// # Errors
    ///
    /// [`PingError::InvalidUserId`] for an id that cannot stand in the ping URL,
    /// [`PingError::QueueFull`] when `max_pending` users are pending (nothing is dropped:
    /// the caller decides), [`PingError::ShuttingDown`] after [`shutdown`](Self::shutdown).
    pub fn ping(&self, user_id: &str) -> Result<(), PingError> {
        user_id::validate_for_path(user_id).map_err(PingError::InvalidUserId)?;
        let queue = &self.worker().queue;
        let enqueued = {
            let mut pending = queue.lock();
            // Read under the lock `shutdown` clears it under, so a user is either in the
            // pending set before the worker's last look, or refused.
            if !queue.accepting.load(Ordering::Acquire) {
                return Err(PingError::ShuttingDown);
            }
            pending.ping(user_id, Instant::now())
        };
        let counters = &self.worker().rules.counters;
        match enqueued {
            Ok(Enqueued::New) => {
                Counters::add(&counters.pinged);
                self.worker().wake.notify_one();
            }
            Ok(Enqueued::Coalesced | Enqueued::Rearmed) => {
                Counters::add(&counters.pinged);
                Counters::add(&counters.coalesced);
            }
            Err(()) => {
                return Err(PingError::QueueFull {
                    max_pending: queue.lock().max_pending(),
                });
            }
        }
        Ok(())
    }

    /// Counters since start and the current queue.
    pub fn stats(&self) -> PingStats {
        let (pending, in_flight) = {
            let queue = self.worker().queue.lock();
            (queue.len(), queue.in_flight())
        };
        self.worker().rules.counters.snapshot(pending, in_flight)
    }

    /// A stream of [`PingEvent`]s from now on. A subscriber that lags more than the
    /// events capacity misses the oldest (the stats stay exact).
    pub fn events(&self) -> broadcast::Receiver<PingEvent> {
        self.worker().rules.events.subscribe()
    }

    /// The client the Pinger delivers with, for one-shot calls such as
    /// [`LivefyreClient::register_pull_url`].
    pub fn client(&self) -> &LivefyreClient {
        &self.worker().rules.client
    }

    /// Stops accepting pings, delivers what it can until `deadline` has passed, and
    /// returns the users not delivered. A second call (from a clone, say) waits for the
    /// first and reports nothing more.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        {
            let _pending = self.worker().queue.lock();
            self.worker()
                .queue
                .accepting
                .store(false, Ordering::Release);
        }
        // A second caller waits here for the first, then finds nothing left to report.
        self.running.stop(deadline).await;
        let undelivered = self.worker().queue.lock().drain();
        if !undelivered.is_empty() {
            tracing::event!(
                target: "pingpull::ping",
                Level::WARN,
                undelivered = undelivered.len(),
                "shut down with users not delivered"
            );
        }
        ShutdownReport {
            undelivered,
            stats: self.stats(),
        }
    }
}

impl fmt::Debug for Pinger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pinger")
            .field("client", &self.worker().rules.client)
            .field("stats", &self.stats())
            .finish()
    }
}

/// What [`Pinger::shutdown`] could not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Users still pending at the deadline, sorted.
    pub undelivered: Vec<String>,
    /// The final counters.
    pub stats: PingStats,
}

/// Why [`Pinger::ping`] refused a user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PingError {
    /// The id cannot stand in the ping URL.
    InvalidUserId(UserIdError),
    /// `max_pending` users are pending; this new one was not recorded.
    QueueFull {
        /// The configured bound.
        max_pending: usize,
    },
    /// The Pinger is shutting down.
    ShuttingDown,
}

impl fmt::Display for PingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUserId(error) => write!(f, "cannot ping: {error}"),
            Self::QueueFull { max_pending } => {
                write!(
                    f,
                    "cannot ping: {max_pending} users already pending (the configured maximum)"
                )
            }
            Self::ShuttingDown => f.write_str("cannot ping: the Pinger is shutting down"),
        }
    }
}

impl std::error::Error for PingError {}
