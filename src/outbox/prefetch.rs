//! Prefetching claims for the engine's next asks. Each answer frees one delivery slot,
//! so the engine mostly asks for one user at a time, and it waits for each claim
//! statement: a statement per ask would cost a round trip per user, and a statement
//! whenever the prefetched claims run out would leave every slot idle while it runs. So a
//! claim takes rows for the engine's next asks, and once fewer than a statement's worth
//! are left, the next claim runs in the background while the engine delivers the rest.
//!
//! A claim is handed to the engine only while enough of its lease is left for an attempt
//! (see `leases`); one that is not is given back.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::completer::Completer;
use super::leases::{Leases, Start};
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
}

/// What a claim statement needs, and where the claims it prefetched wait.
struct PrefetchShared {
    pool: PgPool,
    table: OutboxTable,
    settings: ClaimSettings,
    /// The worker's leases: a claim is recorded there when taken, and handed to the
    /// engine only while enough of its lease is left.
    leases: Arc<Leases>,
    /// Gives back the leases of claims that will not be delivered.
    completer: Completer,
    state: Mutex<PrefetchState>,
    /// Told when a background claim has ended.
    refilled: Notify,
}

#[derive(Default)]
struct PrefetchState {
    /// Oldest first. Some may have been given back meanwhile (by the heartbeat); they
    /// are dropped when reached.
    claims: VecDeque<OutboxClaim>,
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
            .map(|claim| lease_of(&claim))
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
        leases: Arc<Leases>,
        completer: Completer,
    ) -> Self {
        Self {
            shared: Arc::new(PrefetchShared {
                pool,
                table,
                settings,
                leases,
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
                    let leases = state.close();
                    drop(state);
                    shared.forget(&leases);
                    return leases;
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
        self.shared.give_back(leases);
    }
}

impl PrefetchShared {
    /// Stops renewing `leases` and gives them back with the completer's next flush.
    fn give_back(&self, leases: Vec<(String, i64)>) {
        if !leases.is_empty() {
            self.forget(&leases);
            self.completer.release_later(leases);
        }
    }

    fn forget(&self, leases: &[(String, i64)]) {
        for (_, lease) in leases {
            self.leases.forget(*lease);
        }
    }

    /// Takes up to `limit` prefetched claims that still have time for an attempt (giving
    /// back the others), and says what the ask does next. `waited`: it already waited for
    /// a background claim, which found nothing (or failed).
    fn next(&self, limit: usize, waited: bool) -> Result<Next, OutboxError> {
        let mut claims = Vec::new();
        let mut stale = Vec::new();
        let next = {
            let mut state = lock(&self.state);
            while claims.len() < limit
                && let Some(claim) = state.claims.pop_front()
            {
                match self.leases.start(&claim) {
                    Start::Started => claims.push(claim),
                    Start::TooLate => stale.push(lease_of(&claim)),
                    Start::GivenBack => {}
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
        // Not started: the leases `start` refused are already forgotten.
        if !stale.is_empty() {
            self.completer.release_later(stale);
        }
        Ok(next)
    }

    /// Claims a batch (at least `limit`) and returns `limit` of it; the rest are
    /// prefetched for the next asks. A statement so slow that too little of the leases is
    /// left for an attempt gives its claims back.
    async fn claim_now(&self, limit: usize) -> Result<Vec<OutboxClaim>, OutboxError> {
        let claimed = self.claim(limit.max(self.settings.batch)).await;
        let (claims, stale) = {
            let mut state = lock(&self.state);
            state.refilling = false;
            let mut claims = claimed?;
            if claims.len() > limit {
                let rest = claims.split_off(limit);
                state.claims.extend(rest);
            }
            let (claims, stale): (Vec<_>, Vec<_>) = claims
                .into_iter()
                .partition(|claim| self.leases.start(claim) == Start::Started);
            (claims, stale)
        };
        if !stale.is_empty() {
            self.completer
                .release_later(stale.iter().map(lease_of).collect());
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
                    state.claims.extend(claims);
                    Vec::new()
                }
                Err(error) => {
                    tracing::event!(target: "pingpull::outbox", tracing::Level::DEBUG, %error, "could not claim ahead; the next ask claims again");
                    state.failed = Some(error);
                    Vec::new()
                }
            }
        };
        self.give_back(late);
        self.refilled.notify_waiters();
    }

    /// One claim statement for `batch` rows; notes whether it found them all, and records
    /// the leases from the moment the statement was sent (the database's lease can only
    /// end later).
    async fn claim(&self, batch: usize) -> Result<Vec<OutboxClaim>, OutboxError> {
        let settings = &self.settings;
        let sent = Instant::now();
        let claims = self
            .table
            .claim_due(&self.pool, &settings.owner, settings.lease, batch)
            .await?;
        self.leases.hold(&claims, sent);
        lock(&self.state).drained = claims.len() < batch;
        Ok(claims)
    }
}

/// A claim's lease with its user, as the table releases it.
fn lease_of(claim: &OutboxClaim) -> (String, i64) {
    (claim.user_id().to_owned(), claim.lease())
}
