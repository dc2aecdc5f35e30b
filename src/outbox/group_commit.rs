//! Settling as a group commit: the engine settles claim by claim, but outcomes that
//! arrive while flushes are in flight wait and are written together by the next one, in
//! one statement per kind of outcome; each caller awaits its own result.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::settle::SettleBatch;
use super::table::{OutboxClaim, OutboxError, OutboxTable};
use crate::delivery::{Outcome, Settled};

/// The most claims one flush settles: bounds the statements' arrays.
const MAX_BATCH: usize = 1024;
/// Flushes in flight at once, each on a connection of its own: a flush waits for the
/// database's commit, and the next batch need not wait for it too.
const FLUSHES_AT_ONCE: usize = 4;

/// The store's error as the engine sees it: a settling error is shared by every claim
/// of the flush it failed.
pub(crate) type StoreError = Arc<OutboxError>;

/// The handle to the flushing task; it stops once this is dropped and it has flushed
/// what it was given.
pub(crate) struct GroupCommit {
    requests: mpsc::UnboundedSender<Request>,
}

/// Where a flush answers one caller.
type Reply = oneshot::Sender<Result<Settled, StoreError>>;

enum Request {
    Settle {
        claim: OutboxClaim,
        outcome: Outcome,
        reply: Reply,
    },
    /// Gives up leases (claims taken ahead that will not be delivered).
    Release(Vec<i64>),
}

impl GroupCommit {
    /// Spawns the flushing task on `runtime`.
    pub(crate) fn spawn(
        runtime: &tokio::runtime::Handle,
        pool: PgPool,
        table: OutboxTable,
        max_age: Duration,
    ) -> Self {
        let (requests, received) = mpsc::unbounded_channel();
        runtime.spawn(flush_until_closed(received, pool, table, max_age));
        Self { requests }
    }

    /// Settles `claim` with the next flush, and returns what became of it.
    pub(crate) async fn settle(
        &self,
        claim: &OutboxClaim,
        outcome: &Outcome,
    ) -> Result<Settled, StoreError> {
        let (reply, answer) = oneshot::channel();
        let request = Request::Settle {
            claim: claim.clone(),
            outcome: outcome.clone(),
            reply,
        };
        self.requests.send(request).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Gives up `leases` with the next flush, without waiting for it.
    pub(crate) fn release_later(&self, leases: Vec<i64>) {
        // Only fails once the task stopped; the leases then run out on their own.
        let _ = self.requests.send(Request::Release(leases));
    }
}

/// The flushing task stopped (its runtime is shutting down): the claim stays as it was.
fn stopped() -> StoreError {
    Arc::new(OutboxError::Database(sqlx::Error::WorkerCrashed))
}

/// Waits for requests and flushes all that have arrived whenever fewer than
/// [`FLUSHES_AT_ONCE`] flushes are in flight, until the handle is dropped.
async fn flush_until_closed(
    mut received: mpsc::UnboundedReceiver<Request>,
    pool: PgPool,
    table: OutboxTable,
    max_age: Duration,
) {
    let slots = Arc::new(Semaphore::new(FLUSHES_AT_ONCE));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut requests = Vec::new();
        if received.recv_many(&mut requests, MAX_BATCH).await == 0 {
            return;
        }
        let (pool, table) = (pool.clone(), table.clone());
        tokio::spawn(async move {
            flush_requests(&pool, &table, max_age, requests).await;
            drop(slot);
        });
    }
}

async fn flush_requests(
    pool: &PgPool,
    table: &OutboxTable,
    max_age: Duration,
    requests: Vec<Request>,
) {
    let mut settles = Vec::new();
    let mut releases = Vec::new();
    for request in requests {
        match request {
            Request::Settle {
                claim,
                outcome,
                reply,
            } => settles.push((claim, outcome, reply)),
            Request::Release(leases) => releases.extend(leases),
        }
    }
    if !settles.is_empty() {
        flush(pool, table, max_age, settles).await;
    }
    if !releases.is_empty() {
        release(pool, table, &releases).await;
    }
}

/// Settles the claims in one batch and answers each caller.
async fn flush(
    pool: &PgPool,
    table: &OutboxTable,
    max_age: Duration,
    settles: Vec<(OutboxClaim, Outcome, Reply)>,
) {
    let pairs: Vec<(&OutboxClaim, &Outcome)> = settles
        .iter()
        .map(|(claim, outcome, _)| (claim, outcome))
        .collect();
    let mut batch = SettleBatch::new(&pairs);
    let ran = async {
        let mut connection = pool.acquire().await?;
        batch.run(&table.sql, &mut connection, max_age).await
    }
    .await;
    let error = ran.err().map(Arc::new);
    let results = batch.into_results();
    for ((_, _, reply), result) in settles.into_iter().zip(results) {
        let answer = match (result, &error) {
            (Some(settled), _) => Ok(settled),
            (None, Some(error)) => Err(error.clone()),
            // A batch that ran to its end matched no row for this claim.
            (None, None) => Ok(Settled::LeaseLost),
        };
        // The caller may have stopped waiting (abandoned at a shutdown deadline).
        let _ = reply.send(answer);
    }
}

async fn release(pool: &PgPool, table: &OutboxTable, leases: &[i64]) {
    let released = match pool.acquire().await {
        Ok(mut connection) => table.release_leases(&mut connection, leases).await,
        Err(error) => Err(error.into()),
    };
    if let Err(error) = released {
        tracing::event!(target: "pingpull::outbox", tracing::Level::DEBUG, %error, "could not release leases taken ahead; they run out on their own");
    }
}
