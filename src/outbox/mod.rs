//! A durable, multi-instance ping queue in your own PostgreSQL: a transactional outbox.
//!
//! The in-memory [`Pinger`](crate::ping::Pinger) loses its pending pings when the process
//! dies, and each instance coalesces only its own. With the outbox, the ping is a row
//! written in the same transaction as the profile change, and any live instance
//! delivers it:
//!
//! - [`OutboxTable`]: where the outbox lives. [`create`](OutboxTable::create) makes the
//!   schema and table (idempotent); [`enqueue`](OutboxTable::enqueue) records a change
//!   inside your transaction. One row per waiting user: more changes before delivery
//!   coalesce into it (`changes + 1`).
//! - [`OutboxWorker`]: claims due rows with `FOR UPDATE SKIP LOCKED` under a short lease
//!   that a heartbeat renews while the worker holds the row, delivers with the Pinger's
//!   rules (retry schedule, `Retry-After`, 403 probing, events, stats), and deletes a row
//!   only if its lease is still the worker's and no change was recorded during delivery
//!   (else the user is pinged once more). A worker that dies loses nothing: its leases
//!   run out within one lease ([`DEFAULT_LEASE`], 12 s) and another worker takes the rows.
//!   A worker that loses its database keeps the outcomes of its answered attempts and
//!   writes them as soon as the database answers again. A worker that stalls past its
//!   lease cannot settle a row another has claimed since: every claim has a fresh lease
//!   token, and settling statements match on it. Both sides work in batches: one
//!   statement claims rows for several deliveries ahead, and the outcomes that finish
//!   together are written together, one statement per kind of outcome.
//!
//! Backoff state (attempts, next attempt, first and latest change) is in the row, so it
//! survives restarts. A user given up (a permanent 4xx, or a latest change older than the
//! schedule's maximum age) is reported like the Pinger's ([`PingEvent::GaveUp`], the
//! `given_up` counter, a WARN log) and its row is deleted: a later change starts afresh.
//! Logs go to `tracing` under `pingpull::ping` (delivery) and `pingpull::outbox`
//! (leases), never with the token.
//!
//! [`PingEvent::GaveUp`]: crate::ping::PingEvent::GaveUp
//!
//! ```no_run
//! use std::time::Duration;
//! use pingpull::Network;
//! use pingpull::outbox::{OutboxTable, OutboxWorker};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = sqlx::PgPool::connect(&std::env::var("DATABASE_URL")?).await?;
//! let table = OutboxTable::new("public", "livefyre_outbox")?;
//! table.create(&pool).await?;
//!
//! // In the update handler: the change and its ping commit or roll back together.
//! let mut tx = pool.begin().await?;
//! sqlx::query("UPDATE users SET display_name = $1 WHERE id = $2")
//!     .bind("Ada").bind("u1").execute(&mut *tx).await?;
//! table.enqueue(&mut *tx, "u1").await?;
//! tx.commit().await?;
//!
//! // In every instance (or a few): deliver.
//! let network = Network::new("example.fyre.co", std::env::var("PINGPULL_KEY")?)?;
//! let worker = OutboxWorker::builder(network, pool.clone(), table.clone()).spawn()?;
//! let report = worker.shutdown(Duration::from_secs(10)).await;
//! assert!(report.undelivered.is_empty());
//! # Ok(())
//! # }
//! ```

mod completer;
mod leases;
mod prefetch;
mod settle_batch;
mod store;
pub(crate) mod table;
mod worker;

pub use leases::{MAX_LEASE_OVER_ATTEMPT, MIN_LEASE_OVER_ATTEMPT};
pub use table::{OutboxError, OutboxTable};
pub use worker::{DEFAULT_LEASE, DEFAULT_POLL_EVERY, OutboxWorker, OutboxWorkerBuilder};
