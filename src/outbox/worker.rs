//! The outbox's delivery worker: a thin front-end over the delivery engine claiming from
//! PostgreSQL, plus a listener that wakes it when a change commits.

use std::fmt;
use std::ops::RangeInclusive;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tracing::Level;

use super::leases::LeaseTiming;
use super::store::{PgStore, StoreConfig};
use super::table::{OutboxError, OutboxTable};
use crate::Network;
use crate::delivery::{
    Delivery, DeliveryOptions, Engine, Health, PingEvent, PingStats, ShutdownReport,
    delivery_setters,
};
use crate::ping::{ConfigError, LivefyreClient};
use crate::throttle::{LogThrottle, ONCE_A_MINUTE};

/// How long a claim keeps other workers off a user unless configured
/// ([`OutboxWorkerBuilder::lease`]): a worker renews its leases while it runs, so this is
/// how long the users of a worker that died wait for another one. Short, yet at least
/// [`MIN_LEASE_OVER_ATTEMPT`](super::MIN_LEASE_OVER_ATTEMPT) longer than the default attempt timeout
/// ([`DEFAULT_ATTEMPT_TIMEOUT`](crate::ping::DEFAULT_ATTEMPT_TIMEOUT), 10 s).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(12);
/// How often the worker looks at the table unless configured
/// ([`OutboxWorkerBuilder::poll_every`]).
pub const DEFAULT_POLL_EVERY: Duration = Duration::from_secs(1);
/// Reading the table's backlog, behind the gauges and `health()`, is a scan: a short poll
/// interval must not repeat it more often than this.
const BACKLOG_AT_MOST_EVERY: Duration = Duration::from_secs(1);
/// `poll_every`: more than zero (a zero interval would spin), and at most an hour. The
/// interval is also how often a lost notification connection is listened on again and
/// how long the worker pauses after the database failed; longer, a change committed
/// while notifications are down would wait hours for its ping.
const POLL_EVERY_RANGE: RangeInclusive<Duration> =
    Duration::from_nanos(1)..=Duration::from_secs(3600);

/// Configures and spawns an [`OutboxWorker`]; start with [`OutboxWorker::builder`].
#[must_use]
pub struct OutboxWorkerBuilder {
    options: DeliveryOptions,
    pool: PgPool,
    table: OutboxTable,
    lease: Duration,
    poll_every: Duration,
    owner: Option<String>,
}

impl OutboxWorkerBuilder {
    delivery_setters!();

    /// How long a claim keeps other workers off a user (default [`DEFAULT_LEASE`], 12 s):
    /// between 1 s and 1 hour longer than the
    /// [`attempt_timeout`](Self::attempt_timeout), else [`spawn`](Self::spawn) refuses it.
    ///
    /// The worker renews the leases it holds (claims in flight and claims taken ahead) in
    /// one statement, every third of what the lease has beyond the attempt timeout (with
    /// the defaults, every 2/3 s; only while it holds any). A worker that dies, or loses
    /// its database, delays its users by at most about a lease.
    ///
    /// It must be at least [`MIN_LEASE_OVER_ATTEMPT`](super::MIN_LEASE_OVER_ATTEMPT) (1 s) longer than the
    /// [`attempt_timeout`](Self::attempt_timeout): an attempt starts only with more than
    /// its timeout of lease left, so it ends before its lease could run out even if the
    /// database stopped answering the moment it began; no two workers ever have a request
    /// in flight for the same user. The longer the attempt timeout, the longer the lease.
    /// It may be at most [`MAX_LEASE_OVER_ATTEMPT`](super::MAX_LEASE_OVER_ATTEMPT) (1 hour)
    /// longer: more is only room for the heartbeat, and strands a dead worker's users
    /// longer.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Looks at the table at least this often (default [`DEFAULT_POLL_EVERY`], 1 s): more
    /// than zero and at most 1 hour, else [`spawn`](Self::spawn) refuses it. Committed
    /// changes wake the worker at once through a notification; polling covers the times
    /// its listening connection is down (listening is retried as often, and the worker
    /// pauses this long after the database failed).
    pub fn poll_every(mut self, interval: Duration) -> Self {
        self.poll_every = interval;
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
    /// With the `metrics` feature, the worker's metrics are registered now with the
    /// recorder installed at this moment: install the application's recorder first.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a bad base URL, a setting out of its range (see each setter;
    /// a lease less than [`MIN_LEASE_OVER_ATTEMPT`](super::MIN_LEASE_OVER_ATTEMPT) or more
    /// than [`MAX_LEASE_OVER_ATTEMPT`](super::MAX_LEASE_OVER_ATTEMPT) longer than the
    /// attempt timeout, a poll interval of zero or over an hour), or when called outside
    /// a Tokio runtime.
    pub fn spawn(self) -> Result<OutboxWorker, ConfigError> {
        let attempt_timeout = self.options.attempt_timeout;
        let max_age = self.options.schedule.max_age_duration();
        // The attempt timeout is checked first: the lease's range depends on it.
        let engine_config = self.options.check()?;
        let leases = LeaseTiming::new(self.lease, attempt_timeout)?;
        if !POLL_EVERY_RANGE.contains(&self.poll_every) {
            return Err(ConfigError::out_of_range(
                "poll_every",
                "more than zero and at most 1 hour",
            ));
        }
        let runtime = engine_config.runtime.clone();
        let channel = self.table.channel().to_owned();
        let config = StoreConfig {
            owner: self.owner.unwrap_or_else(default_owner),
            leases,
            max_age,
            backlog_every: self.poll_every.max(BACKLOG_AT_MOST_EVERY),
            claim_slots: engine_config
                .min_interval
                .is_none()
                .then_some(engine_config.concurrency),
        };
        let store = PgStore::new(&runtime, self.pool.clone(), self.table, config);
        let delivery = Delivery::spawn(store, engine_config, Some(self.poll_every));
        let listener = runtime.spawn(listen_for_changes(
            self.pool,
            channel,
            Arc::downgrade(delivery.engine()),
            self.poll_every,
        ));
        Ok(OutboxWorker {
            tasks: Arc::new(Tasks { delivery, listener }),
        })
    }
}

impl fmt::Debug for OutboxWorkerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxWorkerBuilder")
            .field("options", &self.options)
            .field("table", &self.table)
            .field("lease", &self.lease)
            .field("poll_every", &self.poll_every)
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
    tasks: Arc<Tasks>,
}

impl OutboxWorker {
    /// Starts configuring a worker for `network` delivering from `table` through `pool`.
    ///
    /// The worker keeps one of the pool's connections to listen for committed changes;
    /// give the pool at least two.
    pub fn builder(network: Network, pool: PgPool, table: OutboxTable) -> OutboxWorkerBuilder {
        OutboxWorkerBuilder {
            options: DeliveryOptions::new(network),
            pool,
            table,
            lease: DEFAULT_LEASE,
            poll_every: DEFAULT_POLL_EVERY,
            owner: None,
        }
    }

    /// Counters since start. `pinged` and `coalesced` stay 0 (changes are recorded in
    /// the database, not through this handle); `pending` is the table's row count at the
    /// worker's latest look, `in_flight` this worker's requests.
    pub fn stats(&self) -> PingStats {
        self.tasks.delivery.stats()
    }

    /// Whether delivery works, for a health probe, as the Pinger's
    /// [`health`](crate::ping::Pinger::health): this worker's last 2xx, failures, 403
    /// pause and outage, and the table as it is now (one query: `pending` is its rows,
    /// `oldest_pending` the age of the oldest first change).
    ///
    /// # Errors
    ///
    /// [`OutboxError::Database`] if the table cannot be read (a probe may count that as
    /// unhealthy too).
    pub async fn health(&self) -> Result<Health, OutboxError> {
        let delivery = &self.tasks.delivery;
        let backlog = delivery.store().read_backlog().await?;
        Ok(delivery.health(backlog.rows, backlog.oldest_change))
    }

    /// A stream of [`PingEvent`]s from now on, as the Pinger's.
    pub fn events(&self) -> broadcast::Receiver<PingEvent> {
        self.tasks.delivery.events()
    }

    /// The client the worker delivers with.
    pub fn client(&self) -> &LivefyreClient {
        self.tasks.delivery.client()
    }

    /// Stops claiming, lets the requests in flight finish until `deadline` has passed,
    /// and returns the users whose requests were abandoned then (their leases are
    /// released so another worker takes them at once). Rows not claimed by this worker
    /// are not reported: they wait in the table for the other workers, or for the next
    /// start.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        self.tasks.listener.abort();
        self.tasks.delivery.shutdown(deadline).await
    }
}

impl fmt::Debug for OutboxWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let store = self.tasks.delivery.store();
        f.debug_struct("OutboxWorker")
            .field("table", store.table())
            .field("owner", &store.owner())
            .field("client", self.client())
            .field("stats", &self.stats())
            .finish()
    }
}

/// The worker's two tasks. Dropping the last handle stops the listener and lets the
/// engine finish its requests in flight and stop.
struct Tasks {
    delivery: Delivery<PgStore>,
    listener: JoinHandle<()>,
}

impl Drop for Tasks {
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
    worker: Weak<Engine<PgStore>>,
    retry_every: Duration,
) {
    let wake = |worker: &Weak<Engine<PgStore>>| match worker.upgrade() {
        Some(engine) => {
            engine.wake();
            true
        }
        None => false,
    };
    // Retried every `retry_every` for as long as the database is away: told once a minute.
    let failed_log = LogThrottle::new(ONCE_A_MINUTE);
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
                if let Some(suppressed) = failed_log.allow(std::time::SystemTime::now()) {
                    tracing::event!(target: "pingpull::outbox", Level::WARN, %error, suppressed, "cannot listen for change notifications; polling meanwhile (logged at most once a minute, `suppressed` since the previous line)");
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ping::DEFAULT_ATTEMPT_TIMEOUT;

    #[test]
    fn the_defaults_strand_a_dead_workers_users_for_well_under_15_s() {
        // Another worker takes a dead worker's users once their leases run out: at most a
        // lease after its last renewal, and at most a poll later.
        assert!(DEFAULT_LEASE + DEFAULT_POLL_EVERY <= Duration::from_secs(13));
        assert!(LeaseTiming::new(DEFAULT_LEASE, DEFAULT_ATTEMPT_TIMEOUT).is_ok());
        assert!(POLL_EVERY_RANGE.contains(&DEFAULT_POLL_EVERY));
    }
}
