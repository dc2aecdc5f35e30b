//! The completer: the engine settles claim by claim, but outcomes that arrive while
//! flushes are in flight wait and are written together by the next one (a small one
//! waits a millisecond for more), as one [`SettleBatch`]: one statement per kind of
//! outcome. Each caller awaits its own result. It also gives back the leases of
//! prefetched claims that will not be delivered.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::settle_batch::{self, SettleBatch};

use super::table::{OutboxClaim, OutboxError, OutboxTable, StoreError};
use crate::delivery::{Outcome, Settled};

/// The most claims one flush settles: bounds the statements' arrays.
const MAX_BATCH: usize = 1024;
/// Flushes in flight at once. One: outcomes that arrive while it runs wait and go
/// together into the next, which is what makes batches large (a few statements per batch
/// instead of per claim, in the database and here). A flush never waits for a lock: the
/// claims it skipped are settled afterwards, after its slot is given back.
const FLUSHES_AT_ONCE: usize = 1;
/// A flush that would write fewer outcomes than this waits up to [`GATHER_FOR`] for more:
/// a statement costs the database about as much for a few rows as for dozens (a round
/// trip, a commit), so fewer, larger flushes leave it more time for claims and for the
/// application. Delivery does not wait for it: each slot is free once answered.
const GATHER_AT_LEAST: usize = 128;
const GATHER_FOR: Duration = Duration::from_millis(1);
/// Claims settled alone at once, each on a connection of its own while it waits for a
/// row a transaction holds.
const ALONE_AT_ONCE: usize = 4;

/// The handle to the completer's flushing task; it stops once every handle is dropped
/// and it has flushed what it was given.
#[derive(Clone)]
pub(crate) struct Completer {
    requests: mpsc::UnboundedSender<Request>,
}

/// Where a flush answers one caller.
type SettleReply = oneshot::Sender<Result<Settled, StoreError>>;

enum Request {
    Settle {
        claim: OutboxClaim,
        outcome: Outcome,
        reply: SettleReply,
    },
    /// Gives up leases, each with its user (prefetched claims that will not be delivered).
    Release(Vec<(String, i64)>),
}

impl Completer {
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
    pub(crate) fn release_later(&self, leases: Vec<(String, i64)>) {
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
    let alone_slots = Arc::new(Semaphore::new(ALONE_AT_ONCE));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut requests = Vec::new();
        if received.recv_many(&mut requests, MAX_BATCH).await == 0 {
            return;
        }
        gather(&mut received, &mut requests).await;
        let (pool, table) = (pool.clone(), table.clone());
        let alone_slots = alone_slots.clone();
        tokio::spawn(flush_requests(
            pool,
            table,
            max_age,
            requests,
            slot,
            alone_slots,
        ));
    }
}

/// Adds to `requests` what arrives within [`GATHER_FOR`], until there are
/// [`GATHER_AT_LEAST`] (or the handle is dropped).
async fn gather(received: &mut mpsc::UnboundedReceiver<Request>, requests: &mut Vec<Request>) {
    let until = tokio::time::Instant::now() + GATHER_FOR;
    while requests.len() < GATHER_AT_LEAST {
        let more = received.recv_many(requests, MAX_BATCH - requests.len());
        match tokio::time::timeout_at(until, more).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Settles and releases what `requests` ask for; gives back `slot` as soon as the next
/// flush may start.
async fn flush_requests(
    pool: PgPool,
    table: OutboxTable,
    max_age: Duration,
    requests: Vec<Request>,
    slot: OwnedSemaphorePermit,
    alone_slots: Arc<Semaphore>,
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
    if !releases.is_empty() {
        release(&pool, &table, &releases).await;
    }
    if settles.is_empty() {
        drop(slot);
    } else {
        flush(&pool, &table, max_age, settles, slot, alone_slots).await;
    }
}

/// Settles the claims in one batch and answers each caller. The slot is given back once
/// the batch's statements ran; the claims they skipped (a transaction held their rows)
/// are then settled alone, each waiting for its row, at most [`ALONE_AT_ONCE`] at a time.
async fn flush(
    pool: &PgPool,
    table: &OutboxTable,
    max_age: Duration,
    settles: Vec<(OutboxClaim, Outcome, SettleReply)>,
    slot: OwnedSemaphorePermit,
    alone_slots: Arc<Semaphore>,
) {
    let pairs: Vec<(&OutboxClaim, &Outcome)> = settles
        .iter()
        .map(|(claim, outcome, _)| (claim, outcome))
        .collect();
    let mut batch = SettleBatch::new(&pairs);
    let ran = async {
        let mut connection = pool.acquire().await?;
        batch
            .run_statements(&table.sql, &mut connection, max_age)
            .await
    }
    .await;
    drop(slot);
    let error = ran.err().map(Arc::new);
    let results = batch.into_results();
    let mut skipped = Vec::new();
    for ((claim, outcome, reply), result) in settles.into_iter().zip(results) {
        let answer = match (result, &error) {
            (Some(Settled::LeaseLost), None) => {
                skipped.push((claim, outcome, reply));
                continue;
            }
            (Some(Settled::LeaseLost) | None, Some(error)) => Err(error.clone()),
            (Some(settled), _) => Ok(settled),
            // Every claim has a result once the statements ran to their end.
            (None, None) => Ok(Settled::LeaseLost),
        };
        // The caller may have stopped waiting (abandoned at a shutdown deadline).
        let _ = reply.send(answer);
    }
    if !skipped.is_empty() {
        settle_alone(pool, table, max_age, skipped, &alone_slots).await;
    }
}

/// Settles each claim in a transaction of its own that first waits for its row.
async fn settle_alone(
    pool: &PgPool,
    table: &OutboxTable,
    max_age: Duration,
    skipped: Vec<(OutboxClaim, Outcome, SettleReply)>,
    alone_slots: &Semaphore,
) {
    let Ok(_alone) = alone_slots.acquire().await else {
        return;
    };
    let mut connection = match pool.acquire().await {
        Ok(connection) => connection,
        Err(error) => {
            let error: StoreError = Arc::new(error.into());
            for (_, _, reply) in skipped {
                let _ = reply.send(Err(error.clone()));
            }
            return;
        }
    };
    for (claim, outcome, reply) in skipped {
        let settled =
            settle_batch::settle_alone((&claim, &outcome), &table.sql, &mut connection, max_age);
        let _ = reply.send(settled.await.map_err(Arc::new));
    }
}

async fn release(pool: &PgPool, table: &OutboxTable, leases: &[(String, i64)]) {
    let released = match pool.acquire().await {
        Ok(mut connection) => table.release_leases(&mut connection, leases).await,
        Err(error) => Err(error.into()),
    };
    if let Err(error) = released {
        tracing::event!(target: "pingpull::outbox", tracing::Level::DEBUG, %error, "could not release leases taken ahead; they run out on their own");
    }
}
