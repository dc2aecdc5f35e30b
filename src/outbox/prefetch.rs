//! Prefetching claims for the engine's next asks. Each answer frees one delivery slot,
//! so the engine mostly asks for one user at a time, and it waits for each claim
//! statement: a statement per ask would cost a round trip per user, and a statement
//! whenever the prefetched claims run out would leave every slot idle while it runs. So a
//! claim takes rows for the engine's next asks, and once fewer than a statement's worth
//! are left, the next claim runs in the background while the engine delivers the rest.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::completer::Completer;
use super::table::{OutboxClaim, OutboxError, OutboxTable};
use crate::sync::lock;

/// The claims prefetched for the engine's next asks, and the background claims that
/// refill them.
pub(super) struct Prefetch {
    shared: Arc<PrefetchShared>,
}

/// How a worker claims.
pub(super) struct ClaimSettings {
    /// This worker's name in `lease_owner`.
    pub(super) owner: String,
    pub(super) lease: Duration,
    /// Rows one statement claims.
    pub(super) batch: usize,
    /// A prefetched claim older than this is released rather than delivered: its lease
    /// must outlast the attempt.
    pub(super) fresh_for: Duration,
}

/// What a claim statement needs, and where the claims it prefetched wait.
struct PrefetchShared {
    pool: PgPool,
    table: OutboxTable,
    settings: ClaimSettings,
    /// Gives back the leases of claims that will not be delivered.
    completer: Completer,
    state: Mutex<PrefetchState>,
    /// Told when a background claim has ended.
    refilled: Notify,
}

#[derive(Default)]
struct PrefetchState {
    /// Oldest first, with when they were taken.
    claims: VecDeque<(OutboxClaim, Instant)>,
    /// A claim statement is running (in the background, or for an ask).
    refilling: bool,
    /// The last statement found fewer due rows than it asked for: the next one waits
    /// until the engine asks and none are left, rather than run for every ask.
    drained: bool,
    /// Why the last background claim failed, for an ask that waited for it.
    failed: Option<OutboxError>,
    /// The worker stopped: claims that arrive now are given back.
    closed: bool,
}

impl PrefetchState {
    /// Marks the worker stopped and takes the leases of the prefetched claims.
    fn close(&mut self) -> Vec<(String, i64)> {
        self.closed = true;
        self.claims
            .drain(..)
            .map(|(claim, _)| lease_of(&claim))
            .collect()
    }
}

/// What an ask does after looking at the prefetched claims.
enum Next {
    /// Return these; and start a background claim if asked.
    Take(Vec<OutboxClaim>, bool),
    /// None left, and a background claim is running: wait for it.
    Wait,
    /// None left: claim now, waiting for the statement.
    ClaimNow,
}

impl Prefetch {
    pub(super) fn new(
        pool: PgPool,
        table: OutboxTable,
        settings: ClaimSettings,
        completer: Completer,
    ) -> Self {
        Self {
            shared: Arc::new(PrefetchShared {
                pool,
                table,
                settings,
                completer,
                state: Mutex::new(PrefetchState::default()),
                refilled: Notify::new(),
            }),
        }
    }

    /// Up to `limit` claims: prefetched ones if there are any, else claimed now (and more
    /// with them, for the next asks). Empty when no row is due.
    pub(super) async fn take(&self, limit: usize) -> Result<Vec<OutboxClaim>, OutboxError> {
        let shared = &self.shared;
        let mut waited = false;
        loop {
            let mut refilled = pin!(shared.refilled.notified());
            // Registered before the state is read, so a claim ending in between still
            // wakes this ask.
            refilled.as_mut().enable();
            let next = shared.next(limit, waited)?;
            match next {
                Next::Take(claims, refill) => {
                    if refill {
                        tokio::spawn(shared.clone().refill());
                    }
                    return Ok(claims);
                }
                Next::Wait => {
                    refilled.await;
                    waited = true;
                }
                Next::ClaimNow => return shared.claim_now(limit).await,
            }
        }
    }

    /// Stops prefetching, waits for a claim still running, and returns the leases of
    /// every prefetched claim, for the caller to give back.
    pub(super) async fn close(&self) -> Vec<(String, i64)> {
        let shared = &self.shared;
        loop {
            let mut refilled = pin!(shared.refilled.notified());
            refilled.as_mut().enable();
            {
                let mut state = lock(&shared.state);
                // A claim still running adds its rows to the prefetched ones first, so
                // they are given back here with the rest.
                if !state.refilling {
                    return state.close();
                }
            }
            refilled.await;
        }
    }
}

impl Drop for Prefetch {
    /// A worker dropped without a shutdown gives back the claims it prefetched; a claim
    /// still running gives back its own when it ends.
    fn drop(&mut self) {
        let leases = lock(&self.shared.state).close();
        if !leases.is_empty() {
            self.shared.completer.release_later(leases);
        }
    }
}

impl PrefetchShared {
    /// Takes up to `limit` fresh prefetched claims (giving back the stale ones), and says
    /// what the ask does next. `waited`: it already waited for a background claim, which
    /// found nothing (or failed).
    fn next(&self, limit: usize, waited: bool) -> Result<Next, OutboxError> {
        let mut claims = Vec::new();
        let mut stale = Vec::new();
        let next = {
            let mut state = lock(&self.state);
            while claims.len() < limit
                && let Some((claim, taken)) = state.claims.pop_front()
            {
                if taken.elapsed() <= self.settings.fresh_for {
                    claims.push(claim);
                } else {
                    stale.push(lease_of(&claim));
                }
            }
            if !claims.is_empty() {
                let refill = !state.refilling
                    && !state.drained
                    && !state.closed
                    && self.settings.batch > 1
                    && state.claims.len() < self.settings.batch;
                state.refilling |= refill;
                Next::Take(claims, refill)
            } else if state.refilling {
                Next::Wait
            } else if waited || state.closed {
                match state.failed.take() {
                    Some(error) => return Err(error),
                    None => Next::Take(Vec::new(), false),
                }
            } else {
                state.refilling = true;
                Next::ClaimNow
            }
        };
        if !stale.is_empty() {
            self.completer.release_later(stale);
        }
        Ok(next)
    }

    /// Claims a batch (at least `limit`) and returns `limit` of it; the rest are
    /// prefetched for the next asks.
    async fn claim_now(&self, limit: usize) -> Result<Vec<OutboxClaim>, OutboxError> {
        let claimed = self.claim(limit.max(self.settings.batch)).await;
        let mut state = lock(&self.state);
        state.refilling = false;
        let mut claims = claimed?;
        if claims.len() > limit {
            let rest = claims.split_off(limit);
            let taken = Instant::now();
            state
                .claims
                .extend(rest.into_iter().map(|claim| (claim, taken)));
        }
        Ok(claims)
    }

    /// A claim in the background, while the engine delivers the prefetched claims left.
    async fn refill(self: Arc<Self>) {
        let claimed = self.claim(self.settings.batch).await;
        let late = {
            let mut state = lock(&self.state);
            state.refilling = false;
            match claimed {
                Ok(claims) if state.closed => claims.iter().map(lease_of).collect(),
                Ok(claims) => {
                    state.failed = None;
                    let taken = Instant::now();
                    state
                        .claims
                        .extend(claims.into_iter().map(|claim| (claim, taken)));
                    Vec::new()
                }
                Err(error) => {
                    tracing::event!(target: "pingpull::outbox", tracing::Level::DEBUG, %error, "could not claim ahead; the next ask claims again");
                    state.failed = Some(error);
                    Vec::new()
                }
            }
        };
        if !late.is_empty() {
            self.completer.release_later(late);
        }
        self.refilled.notify_waiters();
    }

    /// One claim statement for `batch` rows; notes whether it found them all.
    async fn claim(&self, batch: usize) -> Result<Vec<OutboxClaim>, OutboxError> {
        let settings = &self.settings;
        let claims = self
            .table
            .claim_due(&self.pool, &settings.owner, settings.lease, batch)
            .await?;
        lock(&self.state).drained = claims.len() < batch;
        Ok(claims)
    }
}

/// A claim's lease with its user, as the table releases it.
fn lease_of(claim: &OutboxClaim) -> (String, i64) {
    (claim.user_id().to_owned(), claim.lease())
}
