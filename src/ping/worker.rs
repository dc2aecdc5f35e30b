//! The delivery worker, generic over where the pending users live.
//!
//! The worker only needs a *claim/settle* view of the pending set ([`PingQueue`]): claim
//! the users that are due, send one request for each, and settle each claim with how its
//! attempt ended. The in-memory [`Queue`](super::queue::Queue) and the PostgreSQL outbox
//! both offer that view, so concurrency, the rate limit, the 403 pause and the delivery
//! rules ([`Rules`]) exist once.
//!
//! The trait is deliberately the *worker's* view only. Recording a change is not part of
//! it: `Pinger::ping` stays a synchronous call on the in-memory queue (no allocation for a
//! pending user, no dynamic dispatch, no future), and the outbox records changes inside
//! the caller's own database transaction, which no trait method could take part in.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep_until};
use tracing::Level;

use super::events::Counters;
use super::rules::{Outcome, PauseChange, Rules, Settled, later};

/// The worker's view of a pending set: claim due users, settle each claim.
pub(crate) trait PingQueue: Send + Sync + 'static {
    /// A claimed user and what settling it needs (for the outbox: its lease).
    type Claim: Send + Sync + 'static;
    /// Why the pending set could not answer (the in-memory one always can).
    type Error: fmt::Display + Send;

    /// The claimed user's id.
    fn user_id(claim: &Self::Claim) -> &str;

    /// Failed attempts of the claimed user before this one.
    fn attempts(claim: &Self::Claim) -> u32;

    /// Claims up to `limit` users that are due now; no one else delivers them until settled.
    fn claim_due(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Self::Claim>, Self::Error>> + Send;

    /// Records how the claimed user's attempt ended.
    fn settle(
        &self,
        claim: &Self::Claim,
        outcome: Outcome,
    ) -> impl Future<Output = Result<Settled, Self::Error>> + Send;

    /// When a user may next be due (`None`: none is known; wait to be woken).
    fn next_due(&self) -> impl Future<Output = Result<Option<Instant>, Self::Error>> + Send;

    /// Makes every waiting user due now (a 403 pause has ended).
    fn release_held(&self) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Nothing is left that this worker must deliver before it may stop.
    fn is_drained(&self) -> bool;
}

/// One worker: the pending set, the rules, and the limits it delivers under.
pub(crate) struct Worker<Q> {
    pub(crate) queue: Q,
    pub(crate) rules: Rules,
    pub(crate) wake: Notify,
    /// Deliver what must be delivered, then stop.
    pub(crate) closing: AtomicBool,
    pub(crate) deadline: Mutex<Option<Instant>>,
    pub(crate) concurrency: usize,
    pub(crate) min_interval: Option<Duration>,
    /// Look at the pending set at least this often (others may add to it unseen).
    pub(crate) poll_every: Option<Duration>,
    pub(crate) in_flight: AtomicUsize,
    pause: Mutex<Pause>,
}

/// After a 403: no deliveries but one probe every `probe_every`.
#[derive(Debug, Default)]
struct Pause {
    until: Option<Instant>,
    probe_in_flight: bool,
}

enum Step {
    Exit,
    Claim { limit: usize, probe: bool },
    Wait(Instant),
    Idle,
}

/// Locks a mutex, shrugging off poisoning: every critical section leaves its data whole.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long to wait after the pending set failed to answer, when no poll interval is set.
const ERROR_PAUSE: Duration = Duration::from_secs(1);

impl<Q: PingQueue> Worker<Q> {
    pub(crate) fn new(
        queue: Q,
        rules: Rules,
        concurrency: usize,
        min_interval: Option<Duration>,
        poll_every: Option<Duration>,
    ) -> Self {
        Self {
            queue,
            rules,
            wake: Notify::new(),
            closing: AtomicBool::new(false),
            deadline: Mutex::new(None),
            concurrency,
            min_interval,
            poll_every,
            in_flight: AtomicUsize::new(0),
            pause: Mutex::new(Pause::default()),
        }
    }

    /// Asks the worker to stop once drained, or at `deadline` at the latest.
    pub(crate) fn close(&self, deadline: Option<Instant>) {
        self.closing.store(true, Ordering::Release);
        if deadline.is_some() {
            *lock(&self.deadline) = deadline;
        }
        self.wake.notify_one();
    }

    fn next_step(&self, now: Instant, next_slot: Instant) -> Step {
        let in_flight = self.in_flight.load(Ordering::Acquire);
        if self.closing.load(Ordering::Acquire) && self.queue.is_drained() {
            return if in_flight == 0 {
                Step::Exit
            } else {
                Step::Idle
            };
        }
        let pause = lock(&self.pause);
        let (mut limit, probe) = match pause.until {
            Some(_) if pause.probe_in_flight || in_flight > 0 => return Step::Idle,
            Some(until) if now < until => return Step::Wait(until),
            Some(_) => (1, true),
            None if in_flight >= self.concurrency => return Step::Idle,
            None => (self.concurrency - in_flight, false),
        };
        if self.min_interval.is_some() {
            if now < next_slot {
                return Step::Wait(next_slot);
            }
            limit = 1;
        }
        Step::Claim { limit, probe }
    }

    /// Sends one request for a claimed user and settles the claim.
    async fn deliver(&self, claim: Q::Claim, probe: bool) {
        let user_id = Q::user_id(&claim);
        let answer = self.rules.client.ping_once(user_id).await;
        let attempt_no = Q::attempts(&claim).saturating_add(1);
        let (outcome, failure) = self.rules.classify(answer, attempt_no);
        let settled = match self.queue.settle(&claim, outcome).await {
            Ok(settled) => settled,
            Err(error) => {
                // The claim stays as it was: the user is claimed again (by us or another
                // worker) once its lease runs out, so nothing is lost.
                tracing::event!(target: "pingpull::ping", Level::WARN, user_id, %error, "could not record the attempt; the user will be tried again");
                Settled::LeaseLost
            }
        };
        let (entering_pause, was_paused) = {
            let mut pause = lock(&self.pause);
            if probe {
                pause.probe_in_flight = false;
            }
            let entering = pause.until.is_none() || probe;
            let was_paused = match outcome {
                Outcome::Delivered => pause.until.take().is_some(),
                Outcome::Hold(_) => {
                    pause.until = Some(later(Instant::now(), self.rules.probe_every));
                    false
                }
                _ => false,
            };
            (entering, was_paused)
        };
        let change = self.rules.report(
            user_id,
            attempt_no,
            outcome,
            failure,
            settled,
            entering_pause,
        );
        if change == PauseChange::Accepted && was_paused {
            tracing::event!(target: "pingpull::ping", Level::INFO, "Livefyre accepts pings again; resuming delivery");
            if let Err(error) = self.queue.release_held().await {
                tracing::event!(target: "pingpull::ping", Level::WARN, %error, "could not release the users held by the 403 pause; they wait out their delay");
            }
        }
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.wake.notify_one();
    }
}

/// A spawned worker's task, owned by the handles (behind an `Arc`). Dropping the last
/// handle closes the worker: it delivers what it owes and stops. [`stop`](Self::stop)
/// closes it with a deadline and waits for it; a second caller waits for the first.
pub(crate) struct Running<Q: PingQueue> {
    pub(crate) worker: Arc<Worker<Q>>,
    task: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl<Q: PingQueue> Running<Q> {
    /// Spawns `worker`'s loop on `runtime`.
    pub(crate) fn spawn(runtime: &Handle, worker: Arc<Worker<Q>>) -> Self {
        let task = runtime.spawn(run(worker.clone()));
        Self {
            worker,
            task: tokio::sync::Mutex::new(Some(task)),
        }
    }

    /// Closes the worker, letting it deliver until `deadline` from now, and waits for it.
    pub(crate) async fn stop(&self, deadline: Duration) {
        self.worker.close(Some(later(Instant::now(), deadline)));
        // Held while waiting, so a concurrent `stop` returns only once the worker has.
        let mut task = self.task.lock().await;
        if let Some(running) = task.take() {
            let _ = running.await;
        }
    }
}

impl<Q: PingQueue> Drop for Running<Q> {
    fn drop(&mut self) {
        self.worker.close(None);
    }
}

/// The background worker: claims due users within the limits until told to stop.
pub(crate) async fn run<Q: PingQueue>(worker: Arc<Worker<Q>>) {
    let mut tasks = JoinSet::new();
    let mut next_slot = Instant::now();
    loop {
        while tasks.try_join_next().is_some() {}
        let now = Instant::now();
        let deadline = *lock(&worker.deadline);
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        let wait_until = match worker.next_step(now, next_slot) {
            Step::Exit => break,
            Step::Claim { limit, probe } => match worker.queue.claim_due(limit).await {
                Ok(claims) if !claims.is_empty() => {
                    if probe {
                        lock(&worker.pause).probe_in_flight = true;
                    }
                    for claim in claims {
                        if let Some(interval) = worker.min_interval {
                            next_slot = next_slot.max(now) + interval;
                        }
                        worker.in_flight.fetch_add(1, Ordering::AcqRel);
                        Counters::add(&worker.rules.counters.sent);
                        let worker = worker.clone();
                        tasks.spawn(async move { worker.deliver(claim, probe).await });
                    }
                    continue;
                }
                Ok(_) => match worker.queue.next_due().await {
                    Ok(due) => due,
                    Err(error) => Some(pending_set_failed(&worker, &error, now)),
                },
                Err(error) => Some(pending_set_failed(&worker, &error, now)),
            },
            Step::Wait(until) => Some(until),
            Step::Idle => None,
        };
        let poll_at = worker.poll_every.map(|every| later(now, every));
        let wait_until = [wait_until, deadline, poll_at].into_iter().flatten().min();
        match wait_until {
            Some(until) => {
                tokio::select! {
                    () = worker.wake.notified() => {}
                    () = sleep_until(until) => {}
                }
            }
            None => worker.wake.notified().await,
        }
    }
    // At the deadline, requests still in flight are abandoned; their users stay pending
    // and are reported as undelivered.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

fn pending_set_failed<Q: PingQueue>(worker: &Worker<Q>, error: &Q::Error, now: Instant) -> Instant {
    let pause = worker.poll_every.unwrap_or(ERROR_PAUSE);
    tracing::event!(target: "pingpull::ping", Level::WARN, %error, retry_in_ms = pause.as_millis() as u64, "the pending set did not answer; trying again");
    later(now, pause)
}
