//! The outbox table as the delivery engine sees it: claim due rows under a lease, settle
//! each claim, fenced by its lease token. Both in batches: a claim statement prefetches
//! rows for the engine's next asks, and the completer writes settles together. A
//! heartbeat renews the leases the worker holds meanwhile (see `leases`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio::time::Instant;

use super::completer::Completer;
use super::leases::{Heartbeat, LeaseTiming, Leases};
use super::prefetch::{ClaimSettings, Prefetch};
use super::table::{Backlog, OutboxClaim, OutboxError, OutboxTable, StoreError};
use crate::delivery::{Outcome, PendingStore, Settled, StoreCounts};
use crate::metrics::OutboxMetrics;
use crate::sync::lock;
use crate::throttle::{LogThrottle, ONCE_A_MINUTE};

/// How long to wait before claiming again when due rows are all locked by others.
const LOCKED_ROW_PAUSE: Duration = Duration::from_millis(50);

/// How many rows a claim statement takes per delivery slot: the rows beyond what the
/// engine asked for are prefetched for its next asks (see `prefetch`). A prefetched row
/// not delivered within a lease is given back.
const CLAIMS_PER_SLOT: usize = 16;

/// How a worker's store claims and settles.
pub(crate) struct StoreConfig {
    /// This worker's name in `lease_owner`.
    pub(crate) owner: String,
    pub(crate) leases: LeaseTiming,
    pub(crate) max_age: Duration,
    /// Read the table's backlog at least this often while claiming.
    pub(crate) backlog_every: Duration,
    /// The engine's concurrency; `None` when it is rate-limited (it then asks for one
    /// user at a time, and prefetched rows would only age their leases).
    pub(crate) claim_slots: Option<usize>,
}

/// The outbox as one worker's pending store.
pub(crate) struct PgStore {
    pool: PgPool,
    table: OutboxTable,
    /// This worker's name in `lease_owner`.
    owner: String,
    prefetch: Prefetch,
    completer: Completer,
    /// Every lease this worker holds, taken ahead or in flight, as the heartbeat renews it.
    leases: Arc<Leases>,
    _heartbeat: Heartbeat,
    /// Leases lost before their attempt was recorded: a worker that stalled loses many
    /// at once, told once a minute (each is counted in the metrics).
    lease_lost_log: LogThrottle,
    /// Claims being delivered now: user id to lease token.
    in_flight: Mutex<HashMap<String, i64>>,
    /// Rows in the table at the last reading of its backlog.
    pending: AtomicU64,
    /// When the backlog was last read, and how often it must be while claiming.
    backlog_read_at: Mutex<Option<Instant>>,
    backlog_every: Duration,
    metrics: OutboxMetrics,
}

impl PgStore {
    /// Registers the store's metrics with the current recorder, and spawns the completer
    /// (the task that writes settles) and the heartbeat on `runtime`.
    pub(crate) fn new(
        runtime: &tokio::runtime::Handle,
        pool: PgPool,
        table: OutboxTable,
        config: StoreConfig,
    ) -> Self {
        let completer = Completer::spawn(runtime, pool.clone(), table.clone(), config.max_age);
        let leases = Arc::new(Leases::new(config.leases));
        let heartbeat = Heartbeat::spawn(
            runtime,
            pool.clone(),
            table.clone(),
            leases.clone(),
            completer.clone(),
        );
        let claims = ClaimSettings {
            owner: config.owner.clone(),
            lease: config.leases.lease,
            batch: config
                .claim_slots
                .map_or(1, |slots| slots * CLAIMS_PER_SLOT),
        };
        let prefetch = Prefetch::new(
            pool.clone(),
            table.clone(),
            claims,
            leases.clone(),
            completer.clone(),
        );
        Self {
            prefetch,
            pool,
            table,
            owner: config.owner,
            completer,
            leases,
            _heartbeat: heartbeat,
            lease_lost_log: LogThrottle::new(ONCE_A_MINUTE),
            in_flight: Mutex::new(HashMap::new()),
            pending: AtomicU64::new(0),
            backlog_read_at: Mutex::new(None),
            backlog_every: config.backlog_every,
            metrics: OutboxMetrics::register(),
        }
    }

    /// Reads the table's backlog (one scan), for the stats, the metrics and the health.
    pub(crate) async fn read_backlog(&self) -> Result<Backlog, OutboxError> {
        let backlog = self.table.backlog(&self.pool).await?;
        *lock(&self.backlog_read_at) = Some(Instant::now());
        self.pending.store(backlog.rows, Ordering::Relaxed);
        self.metrics.looked(backlog.rows, backlog.oldest_due);
        Ok(backlog)
    }

    /// Reads the backlog if the last reading is older than `backlog_every`: with a
    /// backlog the engine keeps claiming and never asks for the next due time, yet the
    /// gauges must show that backlog.
    async fn read_backlog_if_stale(&self) {
        let stale = lock(&self.backlog_read_at).is_none_or(|at| at.elapsed() >= self.backlog_every);
        if stale && let Err(error) = self.read_backlog().await {
            tracing::event!(target: "pingpull::outbox", tracing::Level::DEBUG, %error, "could not look at the outbox table; its gauges are stale");
        }
    }

    pub(crate) fn table(&self) -> &OutboxTable {
        &self.table
    }

    /// This worker's name in `lease_owner`.
    pub(crate) fn owner(&self) -> &str {
        &self.owner
    }

    /// Gives up the leases of claims still in flight (abandoned at a shutdown deadline),
    /// so other workers take those users at once; returns their ids, sorted.
    /// Prefetched claims are released too, but not reported: no request was sent.
    async fn abandon_in_flight(&self) -> Vec<String> {
        let mut leases = self.prefetch.close().await;
        let abandoned: Vec<(String, i64)> = lock(&self.in_flight).drain().collect();
        for (_, lease) in &abandoned {
            self.leases.forget(*lease);
        }
        if abandoned.is_empty() && leases.is_empty() {
            return Vec::new();
        }
        leases.extend(abandoned.iter().cloned());
        let released = match self.pool.acquire().await {
            Ok(mut connection) => self.table.release_leases(&mut connection, &leases).await,
            Err(error) => Err(error.into()),
        };
        if let Err(error) = released {
            tracing::event!(target: "pingpull::outbox", tracing::Level::WARN, %error, "could not release the leases of abandoned deliveries; they run out on their own");
        }
        let mut users: Vec<String> = abandoned.into_iter().map(|(user, _)| user).collect();
        users.sort_unstable();
        users
    }
}

impl PendingStore for PgStore {
    type Claim = OutboxClaim;
    type Error = StoreError;

    const UNDELIVERED_WARNING: &'static str =
        "shut down with requests in flight; their users are left to other workers";

    fn user_id(claim: &OutboxClaim) -> &str {
        claim.user_id()
    }

    fn attempts(claim: &OutboxClaim) -> u32 {
        claim.attempts()
    }

    fn pending_since(claim: &OutboxClaim) -> Instant {
        claim.pending_since()
    }

    async fn claim_due(&self, limit: usize) -> Result<Vec<OutboxClaim>, StoreError> {
        let claims = self.prefetch.take(limit).await?;
        {
            let mut in_flight = lock(&self.in_flight);
            for claim in &claims {
                in_flight.insert(claim.user_id().to_owned(), claim.lease());
            }
        }
        if !claims.is_empty() {
            self.read_backlog_if_stale().await;
        }
        Ok(claims)
    }

    async fn settle(&self, claim: &OutboxClaim, outcome: &Outcome) -> Result<Settled, StoreError> {
        let settled = self.completer.settle(claim, outcome).await;
        self.leases.forget(claim.lease());
        {
            let mut in_flight = lock(&self.in_flight);
            if in_flight.get(claim.user_id()) == Some(&claim.lease()) {
                in_flight.remove(claim.user_id());
            }
        }
        if matches!(settled, Ok(Settled::LeaseLost)) {
            self.metrics.lease_lost();
            if let Some(suppressed) = self.lease_lost_log.allow(std::time::SystemTime::now()) {
                tracing::event!(target: "pingpull::outbox", tracing::Level::WARN, user_id = claim.user_id(), lease = claim.lease(), suppressed, "lease ran out before the attempt was recorded; another worker owns the user (logged at most once a minute, `suppressed` since the previous line)");
            }
        }
        settled
    }

    async fn next_due(&self) -> Result<Option<Instant>, StoreError> {
        let next_due_in = self.table.next_due_in(&self.pool).await?;
        self.read_backlog_if_stale().await;
        Ok(next_due_in.map(|secs| {
            let wait = if secs.is_finite() && secs > 0.0 {
                Duration::from_secs_f64(secs.min(86_400.0))
            } else {
                // Due, yet the claim just found nothing: the row is locked by a
                // transaction still open (an `enqueue` not yet committed). Look again
                // shortly rather than spin; its commit's notification also wakes us.
                LOCKED_ROW_PAUSE
            };
            Instant::now() + wait
        }))
    }

    async fn release_held(&self) -> Result<(), StoreError> {
        let mut connection = self.pool.acquire().await.map_err(OutboxError::from)?;
        Ok(self.table.release_held(&mut connection).await?)
    }

    /// The rows belong to every instance: one that stops owes nothing but its claims.
    fn is_drained(&self) -> bool {
        true
    }

    fn counts(&self) -> StoreCounts {
        StoreCounts {
            pending: usize::try_from(self.pending.load(Ordering::Relaxed)).unwrap_or(usize::MAX),
            in_flight: lock(&self.in_flight).len(),
            // Changes are recorded in the caller's transactions, not counted here.
            new_users: 0,
            coalesced: 0,
        }
    }

    async fn take_undelivered(&self) -> Vec<String> {
        // Stopped: this worker no longer reports the table.
        self.metrics.looked(0, Duration::ZERO);
        let undelivered = self.abandon_in_flight().await;
        // Outcomes still waiting for the database are tried once more, not kept.
        self.completer.close();
        undelivered
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.completer.close();
    }
}
