//! The outbox table as the delivery engine sees it: claim due rows under a lease, settle
//! each claim, fenced by its lease token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use tokio::time::Instant;

use super::table::{OutboxClaim, OutboxError, OutboxTable, TableLook};
use crate::delivery::{Outcome, PendingStore, Settled, StoreCounts};
use crate::metrics::OutboxMetrics;
use crate::sync::lock;

/// How long to wait before claiming again when due rows are all locked by others.
const LOCKED_ROW_PAUSE: Duration = Duration::from_millis(50);

/// The outbox as one worker's pending store.
pub(crate) struct PgStore {
    pool: PgPool,
    table: OutboxTable,
    /// This worker's name in `lease_owner`.
    owner: String,
    lease: Duration,
    max_age: Duration,
    /// Claims being delivered now: user id to lease token.
    in_flight: Mutex<HashMap<String, i64>>,
    /// Rows in the table at the last look.
    pending: AtomicU64,
    /// When the table was last looked at, and how often it must be while claiming.
    last_look: Mutex<Option<Instant>>,
    look_every: Duration,
    metrics: OutboxMetrics,
}

impl PgStore {
    /// Registers the store's metrics with the current recorder. While claiming, the
    /// table is looked at (rows, oldest due) at least every `look_every`.
    pub(crate) fn new(
        pool: PgPool,
        table: OutboxTable,
        owner: String,
        [lease, max_age, look_every]: [Duration; 3],
    ) -> Self {
        Self {
            pool,
            table,
            owner,
            lease,
            max_age,
            in_flight: Mutex::new(HashMap::new()),
            pending: AtomicU64::new(0),
            last_look: Mutex::new(None),
            look_every,
            metrics: OutboxMetrics::register(),
        }
    }

    /// Looks at the whole table, for the stats, the metrics, the health and the next
    /// wake-up.
    pub(crate) async fn look(&self) -> Result<TableLook, OutboxError> {
        let mut connection = self.pool.acquire().await?;
        let look = self.table.look(&mut connection).await?;
        *lock(&self.last_look) = Some(Instant::now());
        self.pending.store(look.rows, Ordering::Relaxed);
        self.metrics.looked(look.rows, look.oldest_due);
        Ok(look)
    }

    /// Looks at the table if the last look is older than `look_every`: with a backlog the
    /// engine keeps claiming and never asks for the next due time, yet the gauges must
    /// show that backlog.
    async fn look_if_stale(&self) {
        let stale = lock(&self.last_look).is_none_or(|at| at.elapsed() >= self.look_every);
        if stale && let Err(error) = self.look().await {
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
    async fn abandon_in_flight(&self) -> Vec<String> {
        let abandoned: Vec<(String, i64)> = lock(&self.in_flight).drain().collect();
        if abandoned.is_empty() {
            return Vec::new();
        }
        let leases: Vec<i64> = abandoned.iter().map(|(_, lease)| *lease).collect();
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
    type Error = OutboxError;

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

    async fn claim_due(&self, limit: usize) -> Result<Vec<OutboxClaim>, OutboxError> {
        let claims = self
            .table
            .claim_due(&self.pool, &self.owner, self.lease, limit)
            .await?;
        {
            let mut in_flight = lock(&self.in_flight);
            for claim in &claims {
                in_flight.insert(claim.user_id().to_owned(), claim.lease());
            }
        }
        if !claims.is_empty() {
            self.look_if_stale().await;
        }
        Ok(claims)
    }

    async fn settle(&self, claim: &OutboxClaim, outcome: &Outcome) -> Result<Settled, OutboxError> {
        let settled = async {
            let mut connection = self.pool.acquire().await?;
            self.table
                .settle(&mut connection, claim, outcome, self.max_age)
                .await
        }
        .await;
        {
            let mut in_flight = lock(&self.in_flight);
            if in_flight.get(claim.user_id()) == Some(&claim.lease()) {
                in_flight.remove(claim.user_id());
            }
        }
        if matches!(settled, Ok(Settled::LeaseLost)) {
            self.metrics.lease_lost();
            tracing::event!(target: "pingpull::outbox", tracing::Level::WARN, user_id = claim.user_id(), lease = claim.lease(), "lease ran out before the attempt was recorded; another worker owns the user");
        }
        settled
    }

    async fn next_due(&self) -> Result<Option<Instant>, OutboxError> {
        let look = self.look().await?;
        Ok(look.next_due_in.map(|secs| {
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

    async fn release_held(&self) -> Result<(), OutboxError> {
        let mut connection = self.pool.acquire().await?;
        self.table.release_held(&mut connection).await
    }

    /// The rows belong to every instance: one that stops owes nothing but its claims.
    fn is_drained(&self) -> bool {
        true
    }

    fn counts(&self) -> StoreCounts {
        StoreCounts {
            pending: usize::try_from(self.pending.load(Ordering::Relaxed)).unwrap_or(usize::MAX),
            in_flight: lock(&self.in_flight).len(),
        }
    }

    async fn take_undelivered(&self) -> Vec<String> {
        // Stopped: this worker no longer reports the table.
        self.metrics.looked(0, Duration::ZERO);
        self.abandon_in_flight().await
    }
}
