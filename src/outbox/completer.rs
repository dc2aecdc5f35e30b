//! The completer: the engine settles claim by claim, but outcomes that arrive while
//! flushes are in flight wait and are written together by the next one (a small one
//! waits a millisecond for more), as one [`SettleBatch`]: one statement per kind of
//! outcome. Each caller awaits its own result. It also gives back the leases of
//! prefetched claims that will not be delivered.
//!
//! When the database cannot be reached (it restarts, the network fails), an outcome is
//! not dropped: the completer keeps it, and writes it as soon as a connection works
//! again, fenced by its lease as always. Its user is then pinged again at once if it
//! changed meanwhile, instead of waiting for the lease to run out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::pool::PoolConnection;
use sqlx::postgres::Postgres;
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
/// While the database cannot be reached, writing is tried again after this, doubling up
/// to [`RETRY_AT_MOST_EVERY`]...
const RETRY_FIRST_AFTER: Duration = Duration::from_millis(50);
/// ...so that what waits is written within about a second of the database's return.
/// Also how long a retry waits for the pool: its own reconnection backs off further.
const RETRY_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// The handle to the completer's flushing task; it stops once every handle is dropped
/// and it has flushed what it was given.
#[derive(Clone)]
pub(crate) struct Completer {
    requests: mpsc::UnboundedSender<Request>,
    /// The worker stopped: what the database did not take is tried once more, not kept.
    closed: Arc<AtomicBool>,
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
        let closed = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            pool,
            table,
            max_age,
            closed: closed.clone(),
        };
        runtime.spawn(flush_until_closed(received, writer));
        Self { requests, closed }
    }

    /// The worker stopped: writes that fail because the database is away are not tried
    /// again (the leases run out on their own).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
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

/// What the flushes write with, and whether the worker stopped.
#[derive(Clone)]
struct Writer {
    pool: PgPool,
    table: OutboxTable,
    max_age: Duration,
    closed: Arc<AtomicBool>,
}

impl Writer {
    /// Whether a write that failed with `error` is tried again: the database is away
    /// (not refusing the statement), and the worker still runs.
    fn retries(&self, error: &OutboxError) -> bool {
        error.is_connection_lost() && !self.closed.load(Ordering::Acquire)
    }

    /// A connection; after a failure, waiting at most [`RETRY_AT_MOST_EVERY`] for it, so
    /// that the pool's own reconnection, which backs off up to a fifth of its acquire
    /// timeout, does not delay the write once the database is back.
    async fn connection(&self, retry: &Retry) -> Result<PoolConnection<Postgres>, OutboxError> {
        if retry.failures == 0 {
            return Ok(self.pool.acquire().await?);
        }
        match tokio::time::timeout(RETRY_AT_MOST_EVERY, self.pool.acquire()).await {
            Ok(connection) => Ok(connection?),
            Err(_) => Err(sqlx::Error::PoolTimedOut.into()),
        }
    }
}

/// Waits between tries of a write the database did not take, and says so once.
struct Retry {
    failures: u32,
    what: &'static str,
}

impl Retry {
    fn new(what: &'static str) -> Self {
        Self { failures: 0, what }
    }

    async fn after(&mut self, error: &OutboxError, waiting: usize) {
        if self.failures == 0 {
            tracing::event!(target: "pingpull::outbox", tracing::Level::WARN, %error, waiting, "the database did not answer; {} kept and written as soon as it does", self.what);
        }
        let doubled = RETRY_FIRST_AFTER.saturating_mul(1 << self.failures.min(8));
        self.failures += 1;
        tokio::time::sleep(doubled.min(RETRY_AT_MOST_EVERY)).await;
    }

    fn succeeded(&self, written: usize) {
        if self.failures > 0 {
            tracing::event!(target: "pingpull::outbox", tracing::Level::INFO, written, tries = self.failures + 1, "the database answered again; {} written", self.what);
        }
    }
}

/// Waits for requests and flushes all that have arrived whenever fewer than
/// [`FLUSHES_AT_ONCE`] flushes are in flight, until the handle is dropped.
async fn flush_until_closed(mut received: mpsc::UnboundedReceiver<Request>, writer: Writer) {
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
        let alone_slots = alone_slots.clone();
        tokio::spawn(flush_requests(writer.clone(), requests, slot, alone_slots));
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
/// flush may start. While the database is away, the slot is kept: later requests wait
/// behind these, as they would fail too.
async fn flush_requests(
    writer: Writer,
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
        release(&writer, &releases).await;
    }
    if settles.is_empty() {
        drop(slot);
    } else {
        flush(&writer, settles, slot, alone_slots).await;
    }
}

/// One claim's outcome, and where its caller waits for what became of it.
type Pending = (OutboxClaim, Outcome, SettleReply);

/// Settles the claims in one batch and answers each caller. The slot is given back once
/// the batch's statements ran; the claims they skipped (a transaction held their rows)
/// are then settled alone, each waiting for its row, at most [`ALONE_AT_ONCE`] at a time.
/// The claims a lost connection left unsettled are tried again until the database
/// answers (or the worker stops).
async fn flush(
    writer: &Writer,
    mut settles: Vec<Pending>,
    slot: OwnedSemaphorePermit,
    alone_slots: Arc<Semaphore>,
) {
    let mut skipped = Vec::new();
    let mut retry = Retry::new("outcomes of answered attempts");
    let mut written = 0;
    loop {
        let pairs: Vec<(&OutboxClaim, &Outcome)> = settles
            .iter()
            .map(|(claim, outcome, _)| (claim, outcome))
            .collect();
        let mut batch = SettleBatch::new(&pairs);
        let ran = async {
            let mut connection = writer.connection(&retry).await?;
            batch
                .run_statements(&writer.table.sql, &mut connection, writer.max_age)
                .await
        }
        .await;
        let results = batch.into_results();
        let mut unsettled = Vec::new();
        for ((claim, outcome, reply), result) in settles.into_iter().zip(results) {
            let answer = match (result, ran.is_err()) {
                (Some(Settled::LeaseLost), false) => {
                    skipped.push((claim, outcome, reply));
                    continue;
                }
                // Not written (or skipped, and not yet settled alone) when it failed.
                (Some(Settled::LeaseLost) | None, true) => {
                    unsettled.push((claim, outcome, reply));
                    continue;
                }
                (Some(settled), _) => Ok(settled),
                // Every claim has a result once the statements ran to their end.
                (None, false) => Ok(Settled::LeaseLost),
            };
            written += 1;
            // The caller may have stopped waiting (abandoned at a shutdown deadline).
            let _ = reply.send(answer);
        }
        match ran {
            Ok(()) => break,
            Err(error) if writer.retries(&error) => {
                retry.after(&error, unsettled.len()).await;
                settles = unsettled;
            }
            Err(error) => {
                let error: StoreError = Arc::new(error);
                for (_, _, reply) in unsettled {
                    let _ = reply.send(Err(error.clone()));
                }
                break;
            }
        }
    }
    retry.succeeded(written);
    drop(slot);
    if !skipped.is_empty() {
        settle_alone(writer, skipped, &alone_slots).await;
    }
}

/// Settles each claim in a transaction of its own that first waits for its row.
async fn settle_alone(writer: &Writer, skipped: Vec<Pending>, alone_slots: &Semaphore) {
    let Ok(_alone) = alone_slots.acquire().await else {
        return;
    };
    let mut retry = Retry::new("outcomes of answered attempts");
    let mut connection = None;
    let written = skipped.len();
    for (claim, outcome, reply) in skipped {
        let answer = loop {
            let settled = async {
                let connection = match &mut connection {
                    Some(connection) => connection,
                    None => connection.insert(writer.connection(&retry).await?),
                };
                let settle = (&claim, &outcome);
                let sql = &writer.table.sql;
                settle_batch::settle_alone(settle, sql, connection, writer.max_age).await
            }
            .await;
            match settled {
                Ok(settled) => break Ok(settled),
                Err(error) if writer.retries(&error) => {
                    // The connection may be the broken one: take another.
                    connection = None;
                    retry.after(&error, 1).await;
                }
                Err(error) => break Err(Arc::new(error)),
            }
        };
        let _ = reply.send(answer);
    }
    retry.succeeded(written);
}

async fn release(writer: &Writer, leases: &[(String, i64)]) {
    let mut retry = Retry::new("leases to give back");
    loop {
        let released = async {
            let mut connection = writer.connection(&retry).await?;
            writer.table.release_leases(&mut connection, leases).await
        }
        .await;
        match released {
            Ok(()) => break,
            Err(error) if writer.retries(&error) => retry.after(&error, leases.len()).await,
            Err(error) => {
                tracing::event!(target: "pingpull::outbox", tracing::Level::DEBUG, %error, "could not release leases taken ahead; they run out on their own");
                break;
            }
        }
    }
    retry.succeeded(leases.len());
}
