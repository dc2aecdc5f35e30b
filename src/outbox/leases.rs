//! The leases one worker holds, and the heartbeat that renews them.
//!
//! A lease is short, so that a worker that dies strands its users for a few seconds only;
//! the heartbeat renews every lease the worker holds (claims in flight and claims taken
//! ahead) in one statement, several times per lease. An attempt starts only with more than
//! its timeout of lease left, so it ends before its lease could run out even if the
//! database stopped answering as it began: no two workers ever have a request in flight
//! for one user. The worker counts a lease from just before the statement that took or
//! renewed it was sent, so it always believes its lease ends no later than the database
//! does: two workers never both believe they own a row.
//!
//! A lease the heartbeat could not renew in time (the database did not answer, or a
//! transaction held the row) is dropped here: a claim taken ahead is given back, a claim
//! in flight is settled fenced by its lease token as always ([`Settled::LeaseLost`] if
//! another worker has claimed the user since).
//!
//! [`Settled::LeaseLost`]: crate::delivery::Settled::LeaseLost

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::completer::Completer;
use super::table::{OutboxClaim, OutboxTable};
use crate::ping::ConfigError;
use crate::sync::lock;

/// How much longer than the attempt timeout a lease must be at least
/// ([`OutboxWorkerBuilder::lease`](super::OutboxWorkerBuilder::lease)): the heartbeat
/// renews a lease well within this gap, so that every attempt can start with more than
/// its timeout of lease left.
pub const MIN_LEASE_OVER_ATTEMPT: Duration = Duration::from_secs(1);

/// How much longer than the attempt timeout a lease may be at most
/// ([`OutboxWorkerBuilder::lease`](super::OutboxWorkerBuilder::lease)). What a lease has
/// beyond the attempt timeout is room for the heartbeat (it renews every third of it);
/// a worker that dies strands its users for up to a lease, so more room than an hour only
/// strands them longer. With the attempt timeout's own bound (1 hour), no lease is longer
/// than 2 hours, and every instant and interval computed from it stays in range.
pub const MAX_LEASE_OVER_ATTEMPT: Duration = Duration::from_secs(3600);

/// When a worker's leases are taken, renewed, trusted and given back; all derived from
/// the lease and the attempt timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LeaseTiming {
    /// How long a claim or a renewal keeps other workers off a user.
    pub(crate) lease: Duration,
    /// An attempt starts only with more than this much of its lease left: the attempt
    /// timeout and a sixth of the gap between it and the lease, for the moments between
    /// handing the claim to the engine and the request's start.
    pub(crate) to_start: Duration,
    /// How often the heartbeat renews: a third of the gap, so that a lease renewed on
    /// time never falls below `to_start` unless a renewal takes longer than half the gap
    /// (about a third of the lease when the attempt timeout is short beside it).
    pub(crate) renew_every: Duration,
    /// A claim taken ahead and not started within this is given back, renewed or not: a
    /// worker whose engine stopped asking (a 403 pause, a Livefyre outage) must not sit
    /// on rows other workers could deliver.
    pub(crate) ahead_at_most: Duration,
}

impl LeaseTiming {
    /// The timing for `lease` with attempts of at most `attempt_timeout`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::OutOfRange`] for `lease` unless it is at least
    /// [`MIN_LEASE_OVER_ATTEMPT`] and at most [`MAX_LEASE_OVER_ATTEMPT`] longer than
    /// `attempt_timeout`.
    pub(crate) fn new(lease: Duration, attempt_timeout: Duration) -> Result<Self, ConfigError> {
        let gap = lease.checked_sub(attempt_timeout);
        if !gap.is_some_and(|gap| (MIN_LEASE_OVER_ATTEMPT..=MAX_LEASE_OVER_ATTEMPT).contains(&gap))
        {
            return Err(ConfigError::out_of_range(
                "lease",
                "between 1 s and 1 hour longer than the attempt timeout (an attempt must end before its lease could run out, and a dead worker's users wait up to a lease)",
            ));
        }
        let gap = lease - attempt_timeout;
        Ok(Self {
            lease,
            to_start: attempt_timeout + gap / 6,
            renew_every: gap / 3,
            ahead_at_most: lease,
        })
    }
}

/// The leases a worker holds: claims taken ahead and claims in flight, each with when,
/// by this process's clock, the worker stops believing it is its own.
pub(crate) struct Leases {
    timing: LeaseTiming,
    held: Mutex<HashMap<i64, Held>>,
}

struct Held {
    user_id: String,
    /// The lease's end as this worker counts it: never later than the database's.
    until: Instant,
    /// When the claim was taken, for the bound on claims taken ahead.
    taken: Instant,
    /// Handed to the engine for an attempt.
    started: bool,
}

/// Whether a claim may start its attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// Yes: it has more than its timeout of lease left.
    Started,
    /// No: too little of its lease is left; the caller gives it back.
    TooLate,
    /// No: the heartbeat gave it back already (too old, or not renewed in time).
    GivenBack,
}

/// What the heartbeat found before renewing.
struct Sweep {
    /// Leases to renew, each with its user.
    renew: Vec<(String, i64)>,
    /// Claims taken ahead that are given back.
    give_back: Vec<(String, i64)>,
    /// Leases of claims in flight that ran out before they could be renewed.
    lapsed_in_flight: usize,
}

impl Leases {
    pub(crate) fn new(timing: LeaseTiming) -> Self {
        Self {
            timing,
            held: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn timing(&self) -> &LeaseTiming {
        &self.timing
    }

    /// Records `claims`, taken by a statement sent at `sent`, as claims taken ahead.
    pub(crate) fn hold(&self, claims: &[OutboxClaim], sent: Instant) {
        let until = sent + self.timing.lease;
        let taken = Instant::now();
        let mut held = lock(&self.held);
        for claim in claims {
            let entry = Held {
                user_id: claim.user_id().to_owned(),
                until,
                taken,
                started: false,
            };
            held.insert(claim.lease(), entry);
        }
    }

    /// Marks `claim` as started if enough of its lease is left for an attempt; otherwise
    /// forgets it, for the caller to give back.
    pub(crate) fn start(&self, claim: &OutboxClaim) -> Start {
        let mut held = lock(&self.held);
        let now = Instant::now();
        match held.get_mut(&claim.lease()) {
            Some(entry) if entry.until.saturating_duration_since(now) > self.timing.to_start => {
                entry.started = true;
                Start::Started
            }
            Some(_) => {
                held.remove(&claim.lease());
                Start::TooLate
            }
            None => Start::GivenBack,
        }
    }

    /// Stops renewing `lease` (settled, or given back).
    pub(crate) fn forget(&self, lease: i64) {
        lock(&self.held).remove(&lease);
    }

    /// How many leases are held.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.held).len()
    }

    /// Drops what can no longer be trusted, and lists what is to be renewed. A claim taken
    /// ahead is given back once it is too old, or too close to its lease's end to start.
    fn sweep(&self, now: Instant) -> Sweep {
        let timing = &self.timing;
        let mut sweep = Sweep {
            renew: Vec::new(),
            give_back: Vec::new(),
            lapsed_in_flight: 0,
        };
        lock(&self.held).retain(|&lease, entry| {
            let left = entry.until.saturating_duration_since(now);
            if entry.started && left.is_zero() {
                sweep.lapsed_in_flight += 1;
                return false;
            }
            let stale = left <= timing.to_start
                || now.saturating_duration_since(entry.taken) >= timing.ahead_at_most;
            if !entry.started && stale {
                sweep.give_back.push((entry.user_id.clone(), lease));
                return false;
            }
            sweep.renew.push((entry.user_id.clone(), lease));
            true
        });
        sweep
    }

    /// The database renewed `leases` with a statement sent at `sent`.
    fn renewed(&self, leases: &[i64], sent: Instant) {
        let until = sent + self.timing.lease;
        let mut held = lock(&self.held);
        for lease in leases {
            if let Some(entry) = held.get_mut(lease) {
                entry.until = entry.until.max(until);
            }
        }
    }
}

/// The heartbeat task; stopped when dropped.
pub(crate) struct Heartbeat {
    task: JoinHandle<()>,
}

impl Heartbeat {
    /// Spawns the heartbeat on `runtime`: every `renew_every`, it gives back the claims
    /// taken ahead that are stale and renews every other lease in `leases`, in one
    /// statement.
    pub(crate) fn spawn(
        runtime: &tokio::runtime::Handle,
        pool: PgPool,
        table: OutboxTable,
        leases: Arc<Leases>,
        completer: Completer,
    ) -> Self {
        Self {
            task: runtime.spawn(beat(pool, table, leases, completer)),
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn beat(pool: PgPool, table: OutboxTable, leases: Arc<Leases>, completer: Completer) {
    let timing = *leases.timing();
    let mut ticks = tokio::time::interval(timing.renew_every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let sweep = leases.sweep(Instant::now());
        if !sweep.give_back.is_empty() {
            completer.release_later(sweep.give_back);
        }
        if sweep.lapsed_in_flight > 0 {
            tracing::event!(target: "pingpull::outbox", tracing::Level::WARN, leases = sweep.lapsed_in_flight, "leases of answered attempts ran out before they could be renewed (the database did not answer in time); each outcome is still recorded if no other worker claimed its user meanwhile");
        }
        if sweep.renew.is_empty() {
            continue;
        }
        // Nothing gained by waiting longer than a lease for the database: a renewal sent
        // that late could not extend anything.
        let renewal = tokio::time::timeout(timing.lease, async {
            let mut connection = pool.acquire().await?;
            let sent = Instant::now();
            let renewed = table
                .renew_leases(&mut connection, &sweep.renew, timing.lease)
                .await?;
            Ok::<_, super::OutboxError>((renewed, sent))
        });
        match renewal.await {
            Ok(Ok((renewed, sent))) => leases.renewed(&renewed, sent),
            Ok(Err(error)) => {
                tracing::event!(target: "pingpull::outbox", tracing::Level::DEBUG, %error, leases = sweep.renew.len(), "could not renew leases; trying again at the next beat");
            }
            Err(_) => {
                tracing::event!(target: "pingpull::outbox", tracing::Level::DEBUG, leases = sweep.renew.len(), "renewing leases took longer than a lease; trying again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_lease_exactly_the_margin_longer_than_the_attempt_timeout_is_the_shortest_accepted() {
        let timeout = secs(10.0);
        let shortest = timeout + MIN_LEASE_OVER_ATTEMPT;
        assert!(LeaseTiming::new(shortest, timeout).is_ok());
        for refused in [shortest - Duration::from_nanos(1), timeout, secs(5.0)] {
            let error = LeaseTiming::new(refused, timeout).unwrap_err();
            assert!(
                matches!(
                    error,
                    ConfigError::OutOfRange {
                        setting: "lease",
                        ..
                    }
                ),
                "{refused:?}: {error:?}"
            );
        }
        // An attempt timeout so long that the sum overflows: no lease can exceed it.
        assert!(LeaseTiming::new(Duration::MAX, Duration::MAX).is_err());
    }

    #[test]
    fn a_lease_exactly_an_hour_longer_than_the_attempt_timeout_is_the_longest_accepted() {
        // The attempt timeout's own bounds, 1 ms and 1 hour, and the default.
        for timeout in [secs(0.001), secs(10.0), secs(3600.0)] {
            let longest = timeout + MAX_LEASE_OVER_ATTEMPT;
            let timing = LeaseTiming::new(longest, timeout).unwrap();
            assert_eq!(timing.lease, longest);
            assert_eq!(timing.renew_every, MAX_LEASE_OVER_ATTEMPT / 3);
            for refused in [
                longest + Duration::from_nanos(1),
                longest + secs(1.0),
                Duration::MAX,
            ] {
                let error = LeaseTiming::new(refused, timeout).unwrap_err();
                assert_eq!(
                    error.to_string(),
                    "`lease` must be between 1 s and 1 hour longer than the attempt timeout \
                     (an attempt must end before its lease could run out, and a dead worker's \
                     users wait up to a lease)",
                    "{refused:?}"
                );
            }
        }
    }

    #[test]
    fn the_heartbeat_renews_every_third_of_the_lease_beyond_the_attempt_timeout() {
        let timing = LeaseTiming::new(secs(12.0), secs(10.0)).unwrap();
        assert_eq!(timing.renew_every, secs(2.0) / 3);
        assert_eq!(timing.to_start, secs(10.0) + secs(2.0) / 6);
        let timing = LeaseTiming::new(secs(60.0), secs(10.0)).unwrap();
        assert_eq!(timing.renew_every, secs(50.0) / 3);
        // The longest lease, with the longest attempt timeout: two hours.
        let timing = LeaseTiming::new(secs(7200.0), secs(3600.0)).unwrap();
        let leases = Leases::new(timing);
        leases.hold(&[claim("a", 1)], Instant::now());
        assert_eq!(leases.start(&claim("a", 1)), Start::Started);
        // A lease renewed on time keeps more than `to_start` left, with room for a
        // renewal as slow as half the gap.
        for (lease, timeout) in [(12.0, 10.0), (11.0, 10.0), (4.0, 2.0), (60.0, 1.0)] {
            let timing = LeaseTiming::new(secs(lease), secs(timeout)).unwrap();
            let gap = secs(lease - timeout);
            let worst_left = timing.lease - timing.renew_every - gap / 2;
            assert!(worst_left >= timing.to_start, "{lease} {timeout}");
        }
    }

    fn claim(user: &str, lease: i64) -> OutboxClaim {
        OutboxClaim::for_tests(user, lease)
    }

    #[tokio::test(start_paused = true)]
    async fn a_claim_starts_only_with_more_than_its_timeout_of_lease_left() {
        let timing = LeaseTiming::new(secs(3.0), secs(1.0)).unwrap();
        let leases = Leases::new(timing);
        let sent = Instant::now();
        leases.hold(&[claim("a", 1), claim("b", 2)], sent);
        assert_eq!(leases.start(&claim("a", 1)), Start::Started);
        // Not renewed: b's lease is too close to its end for an attempt.
        tokio::time::advance(timing.lease - timing.to_start).await;
        assert_eq!(leases.start(&claim("b", 2)), Start::TooLate);
        assert_eq!(
            leases.len(),
            1,
            "b is forgotten, for the caller to give back"
        );
        // Leases not held (given back already) never start.
        assert_eq!(leases.start(&claim("b", 2)), Start::GivenBack);
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_extends_a_lease_from_when_it_was_sent() {
        let timing = LeaseTiming::new(secs(3.0), secs(1.0)).unwrap();
        let leases = Leases::new(timing);
        leases.hold(&[claim("a", 1)], Instant::now());
        tokio::time::advance(secs(1.5)).await;
        let sent = Instant::now();
        tokio::time::advance(secs(0.4)).await;
        leases.renewed(&[1], sent);
        // 3 s from the renewal's sending, not from its answer.
        tokio::time::advance(timing.lease - secs(0.4) - timing.to_start).await;
        assert_eq!(leases.start(&claim("a", 1)), Start::TooLate);
    }

    #[tokio::test(start_paused = true)]
    async fn the_sweep_gives_back_stale_claims_ahead_and_drops_lapsed_ones_in_flight() {
        let timing = LeaseTiming::new(secs(3.0), secs(1.0)).unwrap();
        let leases = Leases::new(timing);
        leases.hold(&[claim("ahead", 1), claim("flying", 2)], Instant::now());
        assert_eq!(leases.start(&claim("flying", 2)), Start::Started);
        let sweep = leases.sweep(Instant::now());
        assert_eq!(sweep.renew.len(), 2);
        assert!(sweep.give_back.is_empty());

        // Never renewed (the database is away): the claim ahead is given back as soon as
        // it could no longer start; the one in flight is kept until its lease ends.
        tokio::time::advance(timing.lease - timing.to_start).await;
        let sweep = leases.sweep(Instant::now());
        assert_eq!(sweep.give_back, [("ahead".to_owned(), 1)]);
        assert_eq!(sweep.renew, [("flying".to_owned(), 2)]);
        tokio::time::advance(timing.to_start).await;
        let sweep = leases.sweep(Instant::now());
        assert_eq!(sweep.lapsed_in_flight, 1);
        assert!(sweep.renew.is_empty());
        assert_eq!(leases.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_claim_ahead_renewed_for_a_whole_lease_is_given_back() {
        let timing = LeaseTiming::new(secs(3.0), secs(1.0)).unwrap();
        let leases = Leases::new(timing);
        let taken = Instant::now();
        leases.hold(&[claim("ahead", 1)], taken);
        loop {
            tokio::time::advance(timing.renew_every).await;
            let sweep = leases.sweep(Instant::now());
            if !sweep.give_back.is_empty() {
                break;
            }
            assert!(taken.elapsed() < timing.ahead_at_most, "kept too long");
            leases.renewed(&[1], Instant::now());
        }
        assert!(
            taken.elapsed() >= timing.ahead_at_most,
            "given back too early"
        );
        assert_eq!(leases.len(), 0);
    }
}
