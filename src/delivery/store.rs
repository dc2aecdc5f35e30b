//! Where pending users live, as the engine sees it: claim the due ones, settle each claim.
//!
//! The view is deliberately the engine's only. Recording a change is not part of it:
//! `Pinger::ping` stays a synchronous call on the in-memory pending set (no allocation for
//! a pending user, no dynamic dispatch, no future), and the outbox records changes inside
//! the caller's own database transaction, which no trait method could take part in.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::events::Failure;

/// How an attempt ended, as a pending store needs to know it to settle a claimed user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Livefyre answered 2xx.
    Delivered,
    /// A passing fault: try again after this delay (unless the user is then too old).
    RetryAfter(Duration, Failure),
    /// A permanent refusal: stop trying, unless the user changed again meanwhile.
    GiveUp(Failure),
    /// The network refused our token (403): keep the user, try again after this delay.
    Hold(Duration),
}

/// What became of a claimed user once its outcome was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settled {
    /// Done: no more requests for this user (until it changes again).
    Done,
    /// Waiting for another attempt: a retry, or a fresh request because the user changed
    /// while its request was in flight.
    Waiting,
    /// Given up (refused, or older than the maximum age); reported, not retried.
    GivenUp,
    /// The claim was no longer ours (its lease expired and another worker re-claimed the
    /// user): nothing was changed; the current owner settles the user.
    LeaseLost,
}

/// How many users a store holds, for [`PingStats`](super::PingStats).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StoreCounts {
    /// Users not yet delivered, in flight included.
    pub(crate) pending: usize,
    /// Users whose request is in flight now.
    pub(crate) in_flight: usize,
    /// Accepted `ping` calls that made a user pending (the Pinger's store counts them).
    pub(crate) new_users: u64,
    /// Accepted `ping` calls folded into a pending or in-flight user's request.
    pub(crate) coalesced: u64,
}

/// The engine's view of a pending set: claim due users, settle each claim.
pub(crate) trait PendingStore: Send + Sync + 'static {
    /// A claimed user and what settling it needs (for the outbox: its lease).
    type Claim: Send + Sync + 'static;
    /// Why the store could not answer (the in-memory one always can).
    type Error: fmt::Display + Send;

    /// Logged at WARN when a shutdown leaves users undelivered.
    const UNDELIVERED_WARNING: &'static str;

    /// The claimed user's id.
    fn user_id(claim: &Self::Claim) -> &str;

    /// Failed attempts of the claimed user before this one.
    fn attempts(claim: &Self::Claim) -> u32;

    /// When the claimed user became pending: its first ping (or change) not yet delivered.
    fn pending_since(claim: &Self::Claim) -> Instant;

    /// Claims up to `limit` users that are due now; no one else delivers them until settled.
    fn claim_due(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Self::Claim>, Self::Error>> + Send;

    /// Records how the claimed user's attempt ended.
    fn settle(
        &self,
        claim: &Self::Claim,
        outcome: &Outcome,
    ) -> impl Future<Output = Result<Settled, Self::Error>> + Send;

    /// When a user may next be due (`None`: none is known; wait to be woken).
    fn next_due(&self) -> impl Future<Output = Result<Option<Instant>, Self::Error>> + Send;

    /// Makes every waiting user due now (a 403 pause has ended).
    fn release_held(&self) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Nothing is left that this engine must deliver before it may stop.
    fn is_drained(&self) -> bool;

    /// Pending and in-flight users, for the stats.
    fn counts(&self) -> StoreCounts;

    /// Called once when shutdown starts, before the engine stops (the in-memory store
    /// refuses new pings from then on).
    fn close(&self) {}

    /// After the engine stopped: the users this store owes and could not deliver, sorted,
    /// handed back (the in-memory store forgets them; the outbox releases their leases).
    fn take_undelivered(&self) -> impl Future<Output = Vec<String>> + Send;
}
