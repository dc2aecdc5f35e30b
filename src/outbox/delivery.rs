//! The outbox's delivery worker: a handle with the Pinger's stats, events and shutdown,
//! around the shared worker claiming from PostgreSQL.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tracing::Level;

use super::queue::PgQueue;
use super::table::OutboxTable;
use crate::Network;
use crate::ping::rules::Rules;
use crate::ping::worker::{Running, Worker};
use crate::ping::{
    ConfigError, DEFAULT_ATTEMPT_TIMEOUT, LivefyreClient, PingEvent, PingStats, RetrySchedule,
    ShutdownReport, Transport,
};

/// Configures and spawns an [`OutboxWorker`]; start with [`OutboxWorker::builder`].
#[must_use]
pub struct OutboxWorkerBuilder {
    network: Network,
    pool: PgPool,
    table: OutboxTable,
    base_url: Option<String>,
    concurrency: usize,
    attempt_timeout: Duration,
    lease: Duration,
    poll_every: Duration,
    schedule: RetrySchedule,
    probe_every: Duration,
    events_capacity: usize,
    transport: Option<Arc<dyn Transport>>,
    owner: Option<String>,
}

impl OutboxWorkerBuilder {
    /// Sends to `base_url` instead of `https://{label}.quill.fyre.co` (the emulator, a proxy).
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// At most this many requests in flight from this worker (default 8).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Gives each request at most `timeout` (default 10 s). Must be shorter than the lease.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// How long a claim keeps other workers off a user (default 60 s). A worker that dies
    /// mid-delivery delays that user by at most this much; it must exceed the attempt
    /// timeout, or a slow answer would let a second worker ping the same user.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Looks at the table at least this often (default 1 s). Committed changes wake the
    /// worker at once through a notification; polling covers the times its listening
    /// connection is down.
    pub fn poll_every(mut self, interval: Duration) -> Self {
        self.poll_every = interval;
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

    /// The name this worker writes in `lease_owner` (default: process id and a random
    /// suffix). Only for people reading the table: fencing uses the lease token.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Spawns the worker on the current Tokio runtime and returns its handle.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a bad base URL, a zero limit, a lease not longer than the
    /// attempt timeout, a zero poll interval, or when called outside a Tokio runtime.
    pub fn spawn(self) -> Result<OutboxWorker, ConfigError> {
        let client = LivefyreClient::for_worker(
            self.network.clone(),
            self.base_url.as_deref(),
            self.transport,
            self.attempt_timeout,
        )?;
        if self.concurrency == 0 || self.events_capacity == 0 {
            return Err(ConfigError::Invalid(
                "concurrency and events_capacity must be at least 1",
            ));
        }
        if self.lease <= self.attempt_timeout {
            return Err(ConfigError::Invalid(
                "the outbox lease must be longer than the attempt timeout",
            ));
        }
        if self.poll_every.is_zero() {
            return Err(ConfigError::Invalid("poll_every must be more than zero"));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            ConfigError::Invalid("OutboxWorker::spawn must be called inside a Tokio runtime")
        })?;
        let owner = self.owner.unwrap_or_else(default_owner);
        let (events, _) = broadcast::channel(self.events_capacity);
        let queue = PgQueue {
            pool: self.pool,
            table: self.table,
            owner,
            lease: self.lease,
            max_age: self.schedule.max_age_duration(),
            in_flight: Mutex::new(HashMap::new()),
            pending: AtomicU64::new(0),
        };
        let rules = Rules::new(client, self.schedule, self.probe_every, events);
        let shared = Arc::new(Worker::new(
            queue,
            rules,
            self.concurrency,
            None,
            Some(self.poll_every),
        ));
        let listener = runtime.spawn(listen_for_changes(
            shared.queue.pool.clone(),
            shared.queue.table.channel().to_owned(),
            Arc::downgrade(&shared),
            self.poll_every,
        ));
        Ok(OutboxWorker {
            owner: Arc::new(Owner {
                running: Running::spawn(&runtime, shared),
                listener,
            }),
        })
    }
}

impl fmt::Debug for OutboxWorkerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxWorkerBuilder")
            .field("network", &self.network)
            .field("table", &self.table)
            .field("base_url", &self.base_url)
            .field("concurrency", &self.concurrency)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// A cheap handle to a worker delivering the outbox's pings; run one in every instance
/// (or a few, anywhere): they share the work through row leases.
///
/// When the last handle is dropped without [`shutdown`](OutboxWorker::shutdown), the
/// worker finishes the requests in flight and stops; rows stay for the other workers.
#[derive(Clone)]
pub struct OutboxWorker {
    owner: Arc<Owner>,
}

impl OutboxWorker {
    fn worker(&self) -> &Worker<PgQueue> {
        &self.owner.running.worker
    }

    /// Starts configuring a worker for `network` delivering from `table` through `pool`.
    ///
    /// The worker keeps one of the pool's connections to listen for committed changes;
    /// give the pool at least two.
    pub fn builder(network: Network, pool: PgPool, table: OutboxTable) -> OutboxWorkerBuilder {
        OutboxWorkerBuilder {
            network,
            pool,
            table,
            base_url: None,
            concurrency: 8,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            lease: Duration::from_secs(60),
            poll_every: Duration::from_secs(1),
            schedule: RetrySchedule::default(),
            probe_every: Duration::from_secs(60),
            events_capacity: 1024,
            transport: None,
            owner: None,
        }
    }

    /// Counters since start. `pinged` and `coalesced` stay 0 (changes are recorded in
    /// the database, not through this handle); `pending` is the table's row count at the
    /// worker's latest look, `in_flight` this worker's requests.
    pub fn stats(&self) -> PingStats {
        let pending = self.worker().queue.pending.load(Ordering::Relaxed);
        let in_flight = self.worker().in_flight.load(Ordering::Relaxed);
        self.worker()
            .rules
            .counters
            .snapshot(usize::try_from(pending).unwrap_or(usize::MAX), in_flight)
    }

    /// A stream of [`PingEvent`]s from now on, as the Pinger's.
    pub fn events(&self) -> broadcast::Receiver<PingEvent> {
        self.worker().rules.events.subscribe()
    }

    /// The client the worker delivers with.
    pub fn client(&self) -> &LivefyreClient {
        &self.worker().rules.client
    }

    /// Stops claiming, lets the requests in flight finish until `deadline` has passed,
    /// and returns the users whose requests were abandoned then (their leases are
    /// released so another worker takes them at once). Rows not claimed by this worker
    /// are not reported: they wait in the table for the other workers, or for the next
    /// start.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        self.owner.listener.abort();
        // A second caller waits here for the first, then finds nothing left to report.
        self.owner.running.stop(deadline).await;
        let undelivered = self.worker().queue.abandon_in_flight().await;
        if !undelivered.is_empty() {
            tracing::event!(
                target: "pingpull::outbox",
                Level::WARN,
                abandoned = undelivered.len(),
                "shut down with requests in flight; their users are left to other workers"
            );
        }
        ShutdownReport {
            undelivered,
            stats: self.stats(),
        }
    }
}

impl fmt::Debug for OutboxWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxWorker")
            .field("table", &self.worker().queue.table)
            .field("owner", &self.worker().queue.owner)
            .field("client", &self.worker().rules.client)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Dropping the last handle lets the worker finish its requests in flight and stop.
/// (Dropping `running` closes the worker.)
struct Owner {
    running: Running<PgQueue>,
    listener: JoinHandle<()>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Wakes the worker whenever a change commits (`enqueue` notifies the table's channel),
/// so a ping leaves at once instead of at the next poll. Polling stays as the fallback:
/// while this connection is down (it is retried every `retry_every`), nothing is lost,
/// only later. Holds one connection of the pool for as long as the worker runs, so the
/// pool needs at least two.
async fn listen_for_changes(
    pool: PgPool,
    channel: String,
    worker: Weak<Worker<PgQueue>>,
    retry_every: Duration,
) {
    let wake = |worker: &Weak<Worker<PgQueue>>| match worker.upgrade() {
        Some(worker) => {
            worker.wake.notify_one();
            true
        }
        None => false,
    };
    loop {
        let listening = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(&channel).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        match listening {
            Ok(mut listener) => {
                // Changes committed while nobody listened are found by this wake-up.
                if !wake(&worker) {
                    return;
                }
                // `try_recv` says `None` when the connection dropped: listen again.
                while let Ok(Some(_)) = listener.try_recv().await {
                    if !wake(&worker) {
                        return;
                    }
                }
                tracing::event!(target: "pingpull::outbox", Level::DEBUG, "change notifications interrupted; listening again");
            }
            Err(error) => {
                tracing::event!(target: "pingpull::outbox", Level::WARN, %error, "cannot listen for change notifications; polling meanwhile");
            }
        }
        // Closing the pool (at the application's exit) ends listening too.
        if worker.strong_count() == 0 || pool.is_closed() {
            return;
        }
        tokio::time::sleep(retry_every).await;
    }
}

fn default_owner() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("pid{}-{nanos:08x}", std::process::id())
}
