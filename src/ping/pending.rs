//! The in-memory pending set: which users still need a ping delivered, and when each is due.
//!
//! Pure bookkeeping, no I/O: the worker asks it for due users and tells it how each
//! attempt ended. Pings for a user already waiting coalesce; a ping for a user whose
//! request is in flight re-arms it, so one more request follows.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::convert::Infallible;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hashbrown::HashTable;
use tokio::time::Instant;

use super::error::PingError;
use crate::delivery::{Outcome, PendingStore, Settled, StoreCounts, later};
use crate::metrics::PingMetrics;
use crate::sync::lock;
use crate::throttle::{LogThrottle, ONCE_A_MINUTE};

/// What `ping` did with a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enqueued {
    /// A new pending user.
    New,
    /// Already waiting: coalesced into its pending request.
    Coalesced,
    /// In flight: one more request will follow this one.
    Rearmed,
}

#[derive(Debug)]
struct Entry {
    id: Box<str>,
    in_flight: bool,
    /// Pinged again while in flight: one more request must follow.
    rearmed: bool,
    /// Failed attempts since the last success, or since a re-ping during a request (a
    /// re-ping of a waiting user coalesces and keeps its backoff).
    attempts: u32,
    last_pinged: Instant,
    due: Instant,
    /// Bumped whenever `due` changes (and when the slot is reused), so stale heap items
    /// are skipped.
    generation: u32,
    /// When the user was first pinged (since it became pending), in milliseconds since the
    /// set's epoch, wrapping: 4 bytes that fit in the entry's padding, exact as long as
    /// the first and the latest ping are less than 49 days apart (see `pending_since`).
    first_pinged: u32,
}

/// Laid out for memory (a million pending users is a normal backlog): each user is one
/// slot in `slots` holding its id once; the hash index and the due heap refer to slots
/// by a 4-byte number, not by a second copy or pointer of the id.
pub(crate) struct PendingSet {
    /// Slot of each pending user, found by hashing the id with `hasher`.
    index: HashTable<u32>,
    hasher: RandomState,
    slots: Vec<Option<Entry>>,
    /// Free slots, with the generation their next user starts at.
    free: Vec<(u32, u32)>,
    /// Waiting users by due time: (due, generation, slot); may hold stale items.
    due: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    in_flight: usize,
    max_pending: usize,
    debounce: Duration,
    /// What `Entry::first_pinged` counts from.
    epoch: Instant,
}

impl PendingSet {
    pub(crate) fn new(max_pending: usize, debounce: Duration) -> Self {
        Self {
            epoch: Instant::now(),
            index: HashTable::new(),
            hasher: RandomState::new(),
            slots: Vec::new(),
            free: Vec::new(),
            due: BinaryHeap::new(),
            in_flight: 0,
            // Slots are numbered with u32.
            max_pending: max_pending.min(u32::MAX as usize),
            debounce,
        }
    }

    /// Records a ping. `Err(())` when the set is full and the user is not in it.
    pub(crate) fn ping(&mut self, user_id: &str, now: Instant) -> Result<Enqueued, ()> {
        let found = self.find(user_id);
        if let Some(entry) = found.and_then(|slot| self.slots[slot as usize].as_mut()) {
            entry.last_pinged = now;
            if entry.in_flight {
                entry.rearmed = true;
                return Ok(Enqueued::Rearmed);
            }
            return Ok(Enqueued::Coalesced);
        }
        if self.index.len() >= self.max_pending {
            return Err(());
        }
        let due = later(now, self.debounce);
        let (slot, generation) = self.free.pop().unwrap_or((self.slots.len() as u32, 0));
        let entry = Entry {
            id: user_id.into(),
            in_flight: false,
            rearmed: false,
            attempts: 0,
            last_pinged: now,
            due,
            generation,
            first_pinged: self.millis(now),
        };
        match self.slots.get_mut(slot as usize) {
            Some(free) => *free = Some(entry),
            None => self.slots.push(Some(entry)),
        }
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index
            .insert_unique(hasher.hash_one(user_id), slot, |&s| {
                hasher.hash_one(slot_id(slots, s))
            });
        self.due.push(Reverse((due, generation, slot)));
        Ok(Enqueued::New)
    }

    /// The earliest time a waiting user is due, if any.
    pub(crate) fn next_due(&mut self) -> Option<Instant> {
        self.skip_stale();
        self.due.peek().map(|Reverse((due, _, _))| *due)
    }

    /// Takes a user that is due at `now` and marks it in flight.
    pub(crate) fn start_due(&mut self, now: Instant) -> Option<Arc<str>> {
        self.skip_stale();
        let Reverse((due, _, _)) = self.due.peek()?;
        if *due > now {
            return None;
        }
        let Reverse((_, _, slot)) = self.due.pop()?;
        let entry = self.slots[slot as usize].as_mut()?;
        entry.in_flight = true;
        entry.rearmed = false;
        let user = Arc::from(&*entry.id);
        self.in_flight += 1;
        Some(user)
    }

    /// Records how `user`'s attempt ended. `max_age` bounds how long after its latest
    /// ping a user keeps being retried.
    pub(crate) fn finish(
        &mut self,
        user: &str,
        attempt: &Outcome,
        now: Instant,
        max_age: Duration,
    ) -> Settled {
        let Some(slot) = self.find(user) else {
            return Settled::Done;
        };
        let debounce = self.debounce;
        let Some(entry) = self.slots[slot as usize].as_mut() else {
            return Settled::Done;
        };
        let was_in_flight = std::mem::take(&mut entry.in_flight);
        let rearmed = std::mem::take(&mut entry.rearmed);
        let (due, after) = match attempt {
            Outcome::Delivered | Outcome::GiveUp(_) if !rearmed => {
                let after = if *attempt == Outcome::Delivered {
                    Settled::Done
                } else {
                    Settled::GivenUp
                };
                self.remove(slot, was_in_flight);
                return after;
            }
            // Re-pinged during the request: the answer may predate the change, so one
            // more request follows (after a refusal too: the new change deserves a try).
            Outcome::Delivered | Outcome::GiveUp(_) => {
                entry.attempts = 0;
                (later(now, debounce), Settled::Waiting)
            }
            Outcome::RetryAfter(delay, _) => {
                let delay = *delay;
                entry.attempts += 1;
                let age = now.saturating_duration_since(entry.last_pinged);
                if age.saturating_add(delay) > max_age {
                    self.remove(slot, was_in_flight);
                    return Settled::GivenUp;
                }
                (later(now, delay), Settled::Waiting)
            }
            Outcome::Hold(delay) => (later(now, *delay), Settled::Waiting),
        };
        entry.generation = entry.generation.wrapping_add(1);
        entry.due = due;
        let generation = entry.generation;
        if was_in_flight {
            self.in_flight -= 1;
        }
        self.due.push(Reverse((due, generation, slot)));
        after
    }

    /// Failed attempts of `user` since its last success or re-ping, and when it was first
    /// pinged since it became pending (`(0, now)` if unknown).
    pub(crate) fn progress(&self, user: &str, now: Instant) -> (u32, Instant) {
        self.find(user)
            .and_then(|slot| self.slots[slot as usize].as_ref())
            .map_or((0, now), |e| (e.attempts, self.pending_since(e)))
    }

    /// When the pending user who has waited longest was first pinged: a scan of the set.
    pub(crate) fn oldest_pinged(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flatten()
            .map(|entry| self.pending_since(entry))
            .min()
    }

    /// When `entry` was first pinged: its latest ping less the (wrapping) gap between the
    /// two, so the set's age does not matter, only that gap's staying under 49 days.
    fn pending_since(&self, entry: &Entry) -> Instant {
        let gap = self
            .millis(entry.last_pinged)
            .wrapping_sub(entry.first_pinged);
        let gap = Duration::from_millis(u64::from(gap));
        entry.last_pinged.checked_sub(gap).unwrap_or(self.epoch)
    }

    /// `at` in milliseconds since the epoch, wrapping every 49.7 days.
    fn millis(&self, at: Instant) -> u32 {
        // Truncation is the wrap.
        at.saturating_duration_since(self.epoch).as_millis() as u32
    }

    /// Moves every waiting user's due time to no later than `at` (after a 403 clears).
    pub(crate) fn make_all_due_by(&mut self, at: Instant) {
        for (slot, entry) in self.slots.iter_mut().enumerate() {
            if let Some(entry) = entry
                && !entry.in_flight
                && entry.due > at
            {
                entry.due = at;
                entry.generation = entry.generation.wrapping_add(1);
                self.due.push(Reverse((at, entry.generation, slot as u32)));
            }
        }
    }

    /// Users not yet delivered (waiting or in flight).
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    fn max_pending(&self) -> usize {
        self.max_pending
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Every user not delivered, for the shutdown report.
    pub(crate) fn drain(&mut self) -> Vec<String> {
        self.due.clear();
        self.index.clear();
        self.free.clear();
        self.in_flight = 0;
        let mut users: Vec<String> = self
            .slots
            .drain(..)
            .flatten()
            .map(|entry| entry.id.into_string())
            .collect();
        users.sort_unstable();
        users
    }

    fn find(&self, user_id: &str) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(self.hasher.hash_one(user_id), |&slot| {
                slot_id(slots, slot) == user_id
            })
            .copied()
    }

    /// Forgets the user in `slot`; its heap items become stale.
    fn remove(&mut self, slot: u32, was_in_flight: bool) {
        let Some(entry) = self.slots[slot as usize].take() else {
            return;
        };
        let hash = self.hasher.hash_one(&*entry.id);
        if let Ok(found) = self.index.find_entry(hash, |&s| s == slot) {
            found.remove();
        }
        self.free.push((slot, entry.generation.wrapping_add(1)));
        if was_in_flight {
            self.in_flight -= 1;
        }
    }

    fn skip_stale(&mut self) {
        while let Some(Reverse((due, generation, slot))) = self.due.peek() {
            let live = self.slots[*slot as usize]
                .as_ref()
                .is_some_and(|e| !e.in_flight && e.generation == *generation && e.due == *due);
            if live {
                return;
            }
            self.due.pop();
        }
    }
}

/// The id in an occupied slot ("" for a free one, which the index never holds).
fn slot_id(slots: &[Option<Entry>], slot: u32) -> &str {
    slots[slot as usize].as_ref().map_or("", |e| &e.id)
}

/// The in-memory pending set as the engine sees it (claim/settle), and as
/// `Pinger::ping` sees it (a plain lock around [`PendingSet`], no future, no dispatch).
pub(crate) struct MemoryStore {
    set: Mutex<PendingSet>,
    max_age: Duration,
    /// Cleared by `shutdown`: new pings are refused.
    accepting: AtomicBool,
    /// `ping` calls that made a user pending, and those folded into a pending or in-flight
    /// user's request: with both, every accepted call (one atomic add per call, not two:
    /// `ping` for a pending user is the hot path).
    new_users: AtomicU64,
    coalesced: AtomicU64,
    /// `ping` calls by result, and this set's share of the pending gauge.
    metrics: PingMetrics,
    /// Pings the hook could not record after a successful update (queue full, shutting
    /// down): each would be a line per request, so told once a minute.
    unrecorded_log: LogThrottle,
}

impl MemoryStore {
    /// Registers the set's metrics with the current recorder.
    pub(crate) fn new(set: PendingSet, max_age: Duration) -> Self {
        Self {
            set: Mutex::new(set),
            max_age,
            accepting: AtomicBool::new(true),
            new_users: AtomicU64::new(0),
            coalesced: AtomicU64::new(0),
            metrics: PingMetrics::register(),
            unrecorded_log: LogThrottle::new(ONCE_A_MINUTE),
        }
    }

    /// An update route succeeded but its ping was refused with `error`: a WARN at most
    /// once a minute (every refusal is in the metrics).
    pub(crate) fn unrecorded(&self, error: &PingError) {
        if let Some(suppressed) = self.unrecorded_log.allow(std::time::SystemTime::now()) {
            tracing::event!(target: "pingpull::ping", tracing::Level::WARN, %error, suppressed, "update route succeeded but the ping was not recorded (logged at most once a minute, `suppressed` since the previous line)");
        }
    }

    /// Records a `ping` call for `user_id` (a valid id): in the set, the counters and the
    /// metrics. `Ok(true)` when it made the user pending.
    pub(crate) fn ping(&self, user_id: &str) -> Result<bool, PingError> {
        let enqueued = match self.lock_if_accepting() {
            Some(mut pending) => pending.ping(user_id, Instant::now()),
            None => return Err(PingError::ShuttingDown),
        };
        match enqueued {
            Ok(Enqueued::New) => {
                self.new_users.fetch_add(1, Ordering::Relaxed);
                self.metrics.accepted();
                Ok(true)
            }
            Ok(Enqueued::Coalesced | Enqueued::Rearmed) => {
                self.coalesced.fetch_add(1, Ordering::Relaxed);
                self.metrics.coalesced();
                Ok(false)
            }
            Err(()) => {
                self.metrics.queue_full();
                Err(PingError::QueueFull {
                    max_pending: self.max_pending(),
                })
            }
        }
    }

    /// The pending set, locked, if pings are still accepted. Read under the lock `close`
    /// clears it under, so a user is either in the set before the engine's last look, or
    /// refused.
    fn lock_if_accepting(&self) -> Option<MutexGuard<'_, PendingSet>> {
        let set = lock(&self.set);
        self.accepting.load(Ordering::Acquire).then_some(set)
    }

    fn max_pending(&self) -> usize {
        lock(&self.set).max_pending()
    }

    /// Pending users, and when the one pending longest was first pinged (a scan under the
    /// lock: for a probe, not for every request).
    pub(crate) fn pending_and_oldest(&self) -> (u64, Option<Instant>) {
        let set = lock(&self.set);
        (set.len() as u64, set.oldest_pinged())
    }
}

/// A user claimed from the in-memory set.
pub(crate) struct MemoryClaim {
    user: Arc<str>,
    /// Failed attempts so far.
    attempts: u32,
    /// When the user was first pinged since it became pending.
    since: Instant,
}

impl PendingStore for MemoryStore {
    type Claim = MemoryClaim;
    type Error = Infallible;

    const UNDELIVERED_WARNING: &'static str = "shut down with users not delivered";

    fn user_id(claim: &MemoryClaim) -> &str {
        &claim.user
    }

    fn attempts(claim: &MemoryClaim) -> u32 {
        claim.attempts
    }

    fn pending_since(claim: &MemoryClaim) -> Instant {
        claim.since
    }

    async fn claim_due(&self, limit: usize) -> Result<Vec<MemoryClaim>, Infallible> {
        let now = Instant::now();
        let mut set = lock(&self.set);
        let mut claims = Vec::new();
        while claims.len() < limit {
            let Some(user) = set.start_due(now) else {
                break;
            };
            let (attempts, since) = set.progress(&user, now);
            claims.push(MemoryClaim {
                user,
                attempts,
                since,
            });
        }
        Ok(claims)
    }

    async fn settle(&self, claim: &MemoryClaim, outcome: &Outcome) -> Result<Settled, Infallible> {
        let mut set = lock(&self.set);
        let before = set.len();
        let settled = set.finish(&claim.user, outcome, Instant::now(), self.max_age);
        let removed = before - set.len();
        drop(set);
        self.metrics.pending.add(-(removed as i64));
        Ok(settled)
    }

    async fn next_due(&self) -> Result<Option<Instant>, Infallible> {
        Ok(lock(&self.set).next_due())
    }

    async fn release_held(&self) -> Result<(), Infallible> {
        lock(&self.set).make_all_due_by(Instant::now());
        Ok(())
    }

    fn is_drained(&self) -> bool {
        lock(&self.set).is_empty()
    }

    fn counts(&self) -> StoreCounts {
        let set = lock(&self.set);
        StoreCounts {
            pending: set.len(),
            in_flight: set.in_flight(),
            new_users: self.new_users.load(Ordering::Relaxed),
            coalesced: self.coalesced.load(Ordering::Relaxed),
        }
    }

    fn close(&self) {
        let _set = lock(&self.set);
        self.accepting.store(false, Ordering::Release);
    }

    async fn take_undelivered(&self) -> Vec<String> {
        let undelivered = lock(&self.set).drain();
        self.metrics.pending.set(0);
        undelivered
    }
}

#[cfg(test)]
impl PendingSet {
    fn attempts(&self, user: &str) -> u32 {
        self.progress(user, self.epoch).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::Failure;

    const DAY: Duration = Duration::from_secs(86_400);

    /// Settles `user` with a maximum age of a day.
    fn finish(q: &mut PendingSet, user: &str, outcome: Outcome, now: Instant) -> Settled {
        q.finish(user, &outcome, now, DAY)
    }

    fn pending_set() -> PendingSet {
        PendingSet::new(100, Duration::ZERO)
    }

    #[test]
    fn a_reused_slot_ignores_the_previous_users_heap_items() {
        let mut q = pending_set();
        let t = Instant::now();
        q.ping("u1", t).unwrap();
        let u1 = q.start_due(t).unwrap();
        let retry = Outcome::RetryAfter(Duration::from_secs(10), Failure::Timeout);
        assert_eq!(q.finish(&u1, &retry, t, DAY), Settled::Waiting);
        // Released early: the item due at t + 10 s is now stale.
        q.make_all_due_by(t);
        let u1 = q.start_due(t).unwrap();
        assert_eq!(finish(&mut q, &u1, Outcome::Delivered, t), Settled::Done);
        assert!(q.is_empty());

        // u2 takes u1's slot; at t + 10 s it is claimed once, not twice.
        let later = t + Duration::from_secs(10);
        q.ping("u2", later).unwrap();
        assert_eq!(q.start_due(later).as_deref(), Some("u2"));
        assert_eq!(q.start_due(later), None);
        assert_eq!(q.attempts("u2"), 0);
        assert_eq!((q.len(), q.in_flight()), (1, 1));
        assert_eq!(q.ping("u1", later), Ok(Enqueued::New));
        assert_eq!(q.drain(), vec!["u1".to_owned(), "u2".to_owned()]);
    }

    #[test]
    fn absurd_delays_saturate_instead_of_panicking() {
        let mut q = PendingSet::new(10, Duration::MAX);
        let t = Instant::now();
        q.ping("u1", t).unwrap();
        assert!(q.next_due().is_some_and(|due| due > t + DAY));
        q.make_all_due_by(t);
        let u1 = q.start_due(t).unwrap();
        let forever = Outcome::RetryAfter(Duration::MAX, Failure::Timeout);
        assert_eq!(q.finish(&u1, &forever, t, Duration::MAX), Settled::Waiting);
        q.make_all_due_by(t);
        let u1 = q.start_due(t).unwrap();
        assert_eq!(
            finish(&mut q, &u1, Outcome::Hold(Duration::MAX), t),
            Settled::Waiting
        );
        assert_eq!((q.len(), q.in_flight()), (1, 0));
        // Full jitter doubles `Duration::MAX`: the overflow saturates to the cap.
        let schedule = crate::delivery::RetrySchedule::new([Duration::MAX]).jitter(1.0);
        assert_eq!(schedule.jittered_delay(1, 1.0), Duration::from_secs(3600));
        let uncapped = schedule.max_delay(Duration::MAX);
        assert_eq!(uncapped.jittered_delay(1, 1.0), Duration::MAX);
    }

    #[test]
    fn remembers_the_first_ping_until_the_user_leaves() {
        let mut q = pending_set();
        let t = Instant::now() + Duration::from_secs(1);
        q.ping("u1", t).unwrap();
        q.ping("u1", t + Duration::from_millis(4500)).unwrap();
        let later = t + Duration::from_secs(9);
        let u1 = q.start_due(later).unwrap();
        assert_eq!(q.progress(&u1, later), (0, t));
        let retry = Outcome::RetryAfter(Duration::from_secs(1), Failure::Timeout);
        assert_eq!(q.finish(&u1, &retry, later, DAY), Settled::Waiting);
        assert_eq!(q.progress("u1", later), (1, t));
        q.make_all_due_by(later);
        let u1 = q.start_due(later).unwrap();
        assert_eq!(
            finish(&mut q, &u1, Outcome::Delivered, later),
            Settled::Done
        );
        // Pending again: a new first ping.
        q.ping("u1", later).unwrap();
        assert_eq!(q.progress("u1", later), (0, later));
        assert_eq!(q.progress("nobody", later), (0, later));
    }

    #[test]
    fn coalesces_pings_for_one_user() {
        let mut q = pending_set();
        let now = Instant::now();
        assert_eq!(q.ping("u1", now), Ok(Enqueued::New));
        assert_eq!(q.ping("u1", now), Ok(Enqueued::Coalesced));
        assert_eq!(q.len(), 1);
        assert_eq!(q.start_due(now).as_deref(), Some("u1"));
        assert_eq!(q.start_due(now), None);
        let user = Arc::from("u1");
        assert_eq!(
            finish(&mut q, &user, Outcome::Delivered, now),
            Settled::Done
        );
        assert!(q.is_empty());
    }

    #[test]
    fn a_ping_during_flight_causes_one_more_request() {
        let mut q = pending_set();
        let now = Instant::now();
        q.ping("u1", now).unwrap();
        let user = q.start_due(now).unwrap();
        assert_eq!(q.ping("u1", now), Ok(Enqueued::Rearmed));
        assert_eq!(q.ping("u1", now), Ok(Enqueued::Rearmed));
        assert_eq!(
            finish(&mut q, &user, Outcome::Delivered, now),
            Settled::Waiting
        );
        let again = q.start_due(now).unwrap();
        assert_eq!(
            finish(&mut q, &again, Outcome::Delivered, now),
            Settled::Done
        );
        assert!(q.is_empty());
    }

    #[test]
    fn a_ping_during_a_refused_request_is_not_given_up() {
        let mut q = pending_set();
        let now = Instant::now();
        q.ping("u1", now).unwrap();
        let user = q.start_due(now).unwrap();
        q.ping("u1", now).unwrap();
        assert_eq!(
            finish(&mut q, &user, Outcome::GiveUp(Failure::Status(404)), now),
            Settled::Waiting
        );
        let user = q.start_due(now).unwrap();
        assert_eq!(
            finish(&mut q, &user, Outcome::GiveUp(Failure::Status(404)), now),
            Settled::GivenUp
        );
    }

    #[test]
    fn retries_wait_their_delay_and_count_attempts() {
        let mut q = pending_set();
        let now = Instant::now();
        q.ping("u1", now).unwrap();
        let user = q.start_due(now).unwrap();
        assert_eq!(
            q.finish(
                &user,
                &Outcome::RetryAfter(Duration::from_secs(5), Failure::Timeout),
                now,
                DAY
            ),
            Settled::Waiting
        );
        assert_eq!(q.attempts("u1"), 1);
        assert_eq!(q.start_due(now + Duration::from_secs(4)), None);
        assert_eq!(q.next_due(), Some(now + Duration::from_secs(5)));
        assert!(q.start_due(now + Duration::from_secs(5)).is_some());
    }

    #[test]
    fn gives_up_past_the_maximum_age_of_the_latest_ping() {
        let mut q = pending_set();
        let start = Instant::now();
        q.ping("u1", start).unwrap();
        let user = q.start_due(start).unwrap();
        let later = start + Duration::from_secs(50);
        assert_eq!(
            q.finish(
                &user,
                &Outcome::RetryAfter(Duration::from_secs(20), Failure::Timeout),
                later,
                Duration::from_secs(60)
            ),
            Settled::GivenUp
        );
        // A recent ping keeps the user alive.
        q.ping("u2", start).unwrap();
        let user = q.start_due(start).unwrap();
        q.ping("u2", later).unwrap();
        assert_eq!(
            q.finish(
                &user,
                &Outcome::RetryAfter(Duration::from_secs(20), Failure::Timeout),
                later,
                Duration::from_secs(60)
            ),
            Settled::Waiting
        );
    }

    #[test]
    fn refuses_new_users_beyond_the_bound_but_coalesces_known_ones() {
        let mut q = PendingSet::new(2, Duration::ZERO);
        let now = Instant::now();
        q.ping("a", now).unwrap();
        q.ping("b", now).unwrap();
        assert_eq!(q.ping("c", now), Err(()));
        assert_eq!(q.ping("a", now), Ok(Enqueued::Coalesced));
    }

    #[test]
    fn debounce_delays_the_first_request() {
        let mut q = PendingSet::new(10, Duration::from_millis(200));
        let now = Instant::now();
        q.ping("u1", now).unwrap();
        assert_eq!(q.start_due(now), None);
        assert!(q.start_due(now + Duration::from_millis(200)).is_some());
    }

    #[test]
    fn hold_keeps_users_and_make_all_due_releases_them() {
        let mut q = pending_set();
        let now = Instant::now();
        q.ping("u1", now).unwrap();
        q.ping("u2", now).unwrap();
        let u = q.start_due(now).unwrap();
        assert_eq!(
            finish(&mut q, &u, Outcome::Hold(Duration::from_secs(60)), now),
            Settled::Waiting
        );
        assert_eq!(q.attempts(&u), 0, "a held user is not retrying");
        q.make_all_due_by(now);
        assert!(q.start_due(now).is_some() && q.start_due(now).is_some());
        assert_eq!(q.in_flight(), 2);
        assert_eq!(q.drain(), ["u1", "u2"]);
    }
}
