//! The Pinger: a cheap handle whose `ping` records a user, and a background worker that
//! delivers, coalescing and retrying, until Livefyre has answered 2xx for each user
//! after its latest ping.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep_until};
use tracing::Level;

use super::client::{Answer, ConfigError, LivefyreClient};
use super::events::{Counters, Failure, PingEvent, PingStats};
use super::queue::{After, Attempt, Enqueued, Queue};
use super::retry::{RetrySchedule, XorShift};
use super::transport::Transport;
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
        let base_url = self
            .base_url
            .clone()
            .unwrap_or_else(|| self.network.default_base_url());
        let client = match self.transport {
            Some(transport) => {
                LivefyreClient::with_transport(self.network.clone(), &base_url, transport)?
            }
            None => LivefyreClient::new(self.network.clone(), &base_url)?,
        };
        let mut client = client.timeout(self.attempt_timeout);
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
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::new(self.max_pending, self.debounce)),
            pause: Mutex::new(Pause::default()),
            wake: Notify::new(),
            counters: Counters::default(),
            accepting: AtomicBool::new(true),
            closing: AtomicBool::new(false),
            deadline: Mutex::new(None),
            events,
            client,
            concurrency: self.concurrency,
            min_interval,
            schedule: self.schedule,
            probe_every: self.probe_every,
            jitter: Mutex::new(XorShift::from_time()),
        });
        let worker = runtime.spawn(run(shared.clone()));
        Ok(Pinger {
            shared: shared.clone(),
            owner: Arc::new(Owner {
                shared,
                worker: Mutex::new(Some(worker)),
            }),
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
    shared: Arc<Shared>,
    owner: Arc<Owner>,
}

impl Pinger {
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
        if !self.shared.accepting.load(Ordering::Acquire) {
            return Err(PingError::ShuttingDown);
        }
        let enqueued = self.shared.queue().ping(user_id, Instant::now());
        match enqueued {
            Ok(Enqueued::New) => {
                Counters::add(&self.shared.counters.pinged);
                self.shared.wake.notify_one();
            }
            Ok(Enqueued::Coalesced | Enqueued::Rearmed) => {
                Counters::add(&self.shared.counters.pinged);
                Counters::add(&self.shared.counters.coalesced);
            }
            Err(()) => {
                return Err(PingError::QueueFull {
                    max_pending: self.shared.queue().max_pending(),
                });
            }
        }
        Ok(())
    }

    /// Counters since start and the current queue.
    pub fn stats(&self) -> PingStats {
        let (pending, in_flight) = {
            let queue = self.shared.queue();
            (queue.len(), queue.in_flight())
        };
        self.shared.counters.snapshot(pending, in_flight)
    }

    /// A stream of [`PingEvent`]s from now on. A subscriber that lags more than the
    /// events capacity misses the oldest (the stats stay exact).
    pub fn events(&self) -> broadcast::Receiver<PingEvent> {
        self.shared.events.subscribe()
    }

    /// The client the Pinger delivers with, for one-shot calls such as
    /// [`LivefyreClient::register_pull_url`].
    pub fn client(&self) -> &LivefyreClient {
        &self.shared.client
    }

    /// Stops accepting pings, delivers what it can until `deadline` has passed, and
    /// returns the users not delivered.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        self.shared.accepting.store(false, Ordering::Release);
        self.shared.closing.store(true, Ordering::Release);
        *lock(&self.shared.deadline) = Some(Instant::now() + deadline);
        self.shared.wake.notify_one();
        let worker = lock(&self.owner.worker).take();
        if let Some(worker) = worker {
            let _ = worker.await;
        }
        let undelivered = self.shared.queue().drain();
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
            .field("client", &self.shared.client)
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

/// Dropping the last handle lets the worker finish what is pending and stop.
struct Owner {
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}

/// After a 403: no deliveries but one probe every `probe_every`.
#[derive(Debug, Default)]
struct Pause {
    until: Option<Instant>,
    probe_in_flight: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    pause: Mutex<Pause>,
    wake: Notify,
    counters: Counters,
    accepting: AtomicBool,
    /// Deliver what is pending, then stop.
    closing: AtomicBool,
    deadline: Mutex<Option<Instant>>,
    events: broadcast::Sender<PingEvent>,
    client: LivefyreClient,
    concurrency: usize,
    min_interval: Option<Duration>,
    schedule: RetrySchedule,
    probe_every: Duration,
    jitter: Mutex<XorShift>,
}

/// Locks a mutex, shrugging off poisoning: every critical section leaves its data whole.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

enum Step {
    Exit,
    Start { user: Arc<str>, probe: bool },
    Wait(Instant),
    Idle,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        lock(&self.queue)
    }

    fn next_step(&self, now: Instant, next_slot: Instant) -> Step {
        let mut queue = self.queue();
        if self.closing.load(Ordering::Acquire) && queue.is_empty() {
            return Step::Exit;
        }
        let mut pause = lock(&self.pause);
        let probing = pause.until.is_some();
        if let Some(until) = pause.until {
            if pause.probe_in_flight || queue.in_flight() > 0 {
                return Step::Idle;
            }
            if now < until {
                return Step::Wait(until);
            }
        } else if queue.in_flight() >= self.concurrency {
            return Step::Idle;
        }
        match queue.next_due() {
            None => Step::Idle,
            Some(due) if due > now => Step::Wait(due),
            Some(_) if now < next_slot => Step::Wait(next_slot),
            Some(_) => match queue.start_due(now) {
                Some(user) => {
                    pause.probe_in_flight = probing;
                    Step::Start {
                        user,
                        probe: probing,
                    }
                }
                None => Step::Idle,
            },
        }
    }

    /// Books the answer to one attempt: the queue, counters, events and logs.
    fn record(&self, user: Arc<str>, answer: Answer, probe: bool) {
        let now = Instant::now();
        let mut queue = self.queue();
        let mut pause = lock(&self.pause);
        if probe {
            pause.probe_in_flight = false;
        }
        let attempt_no = queue.attempts(&user) + 1;
        let (attempt, failure) = self.classify(answer, attempt_no);
        let after = queue.finish(&user, attempt, now, self.schedule.max_age_duration());
        let user_id = &*user;
        match (attempt, after) {
            (Attempt::Delivered, _) => {
                Counters::add(&self.counters.succeeded);
                tracing::event!(target: "pingpull::ping", Level::DEBUG, user_id, attempts = attempt_no, "delivered");
                self.emit(PingEvent::Delivered {
                    user_id: user.to_string(),
                    attempts: attempt_no,
                });
                if pause.until.take().is_some() {
                    tracing::event!(target: "pingpull::ping", Level::INFO, "Livefyre accepts pings again; resuming delivery");
                    queue.make_all_due_by(now);
                }
            }
            (Attempt::RetryAfter(delay), After::Waiting) => {
                Counters::add(&self.counters.retried);
                let failure = failure.unwrap_or(Failure::Timeout);
                tracing::event!(target: "pingpull::ping", Level::INFO, user_id, attempt = attempt_no, delay_ms = delay.as_millis() as u64, %failure, "retrying");
                self.emit(PingEvent::Retrying {
                    user_id: user.to_string(),
                    attempt: attempt_no,
                    delay,
                    failure,
                });
            }
            (Attempt::RetryAfter(_), _) => {
                Counters::add(&self.counters.given_up);
                tracing::event!(target: "pingpull::ping", Level::WARN, user_id, attempts = attempt_no, last = %failure.clone().unwrap_or(Failure::Timeout), "giving up: latest ping older than the maximum age");
                self.emit(PingEvent::GaveUp {
                    user_id: user.to_string(),
                    failure: Failure::TooOld,
                });
            }
            (Attempt::GiveUp, After::GivenUp) => {
                Counters::add(&self.counters.given_up);
                let failure = failure.unwrap_or(Failure::Status(0));
                tracing::event!(target: "pingpull::ping", Level::WARN, user_id, %failure, "giving up: Livefyre refused the ping");
                self.emit(PingEvent::GaveUp {
                    user_id: user.to_string(),
                    failure,
                });
            }
            (Attempt::GiveUp, _) => {
                // Refused, but pinged again meanwhile: a fresh request follows.
            }
            (Attempt::Hold(_), _) => {
                let entering = pause.until.is_none() || probe;
                pause.until = Some(now + self.probe_every);
                if entering {
                    self.client.renew_token();
                    tracing::event!(
                        target: "pingpull::ping",
                        Level::ERROR,
                        network = self.client.network().name(),
                        probe_every_s = self.probe_every.as_secs(),
                        "Livefyre answered 403: the network key or name is wrong. Pings stay pending; probing once per interval"
                    );
                    self.emit(PingEvent::Unauthorized {
                        probe_every: self.probe_every,
                    });
                }
            }
        }
        drop(pause);
        drop(queue);
        self.wake.notify_one();
    }

    fn classify(&self, answer: Answer, attempt_no: u32) -> (Attempt, Option<Failure>) {
        let retry = |retry_after: Option<Duration>| {
            let delay = match retry_after {
                Some(after) => self.schedule.clamp_retry_after(after),
                None => self
                    .schedule
                    .delay(attempt_no, lock(&self.jitter).next_unit()),
            };
            Attempt::RetryAfter(delay)
        };
        match answer {
            Answer::Status(status, _) if status.is_success() => (Attempt::Delivered, None),
            Answer::Status(status, _) if status.as_u16() == 403 => {
                (Attempt::Hold(self.probe_every), Some(Failure::Status(403)))
            }
            Answer::Status(status, retry_after)
                if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() =>
            {
                (retry(retry_after), Some(Failure::Status(status.as_u16())))
            }
            Answer::Status(status, _) => (Attempt::GiveUp, Some(Failure::Status(status.as_u16()))),
            Answer::TimedOut => (retry(None), Some(Failure::Timeout)),
            Answer::Failed(message) => (retry(None), Some(Failure::Connection(message))),
        }
    }

    fn emit(&self, event: PingEvent) {
        // No subscriber is fine: the stats and logs still tell.
        let _ = self.events.send(event);
    }
}

/// The background worker: starts due deliveries within the limits until told to stop.
async fn run(shared: Arc<Shared>) {
    let mut tasks = JoinSet::new();
    let mut next_slot = Instant::now();
    loop {
        while tasks.try_join_next().is_some() {}
        let now = Instant::now();
        let deadline = *lock(&shared.deadline);
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        let wait_until = match shared.next_step(now, next_slot) {
            Step::Exit => break,
            Step::Start { user, probe } => {
                if let Some(interval) = shared.min_interval {
                    next_slot = next_slot.max(now) + interval;
                }
                Counters::add(&shared.counters.sent);
                let worker_shared = shared.clone();
                tasks.spawn(async move {
                    let answer = worker_shared.client.ping_once(&user).await;
                    worker_shared.record(user, answer, probe);
                });
                continue;
            }
            Step::Wait(until) => Some(until),
            Step::Idle => None,
        };
        let wait_until = match (wait_until, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match wait_until {
            Some(until) => {
                tokio::select! {
                    () = shared.wake.notified() => {}
                    () = sleep_until(until) => {}
                }
            }
            None => shared.wake.notified().await,
        }
    }
    // At the deadline, requests still in flight are abandoned; their users stay in the
    // queue and are reported as undelivered.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}
