//! The engine: claims due users from a [`PendingStore`], sends one request for each within
//! the concurrency and rate limits, classifies the answer by the [`Policy`], settles the
//! claim, and reports. While Livefyre refuses our key (a 403) or cannot be reached, it
//! pauses: no deliveries but one probe per interval (see [`HostPause`]); after a 429 it
//! slows down as a whole (see [`Pacing`]).
//!
//! [`supervise`] runs the loop and tells when it ends in any way but being told to stop:
//! a panic (in the loop or in one delivery) or its runtime shutting down.

use std::any::Any;
use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Poll;
use std::time::Duration;

use http::StatusCode;
use tokio::sync::Notify;
use tokio::task::{JoinError, JoinSet};
use tokio::time::{Instant, sleep_until};
use tracing::{Instrument, Level, Span, field};

use super::XorShift;
use super::later;
use super::options::EngineConfig;
use super::pacing::{PaceSignal, Pacing, Ticket};
use super::pause::{Change, Gate, HostPause, PauseReason};
use super::policy::{HostSignal, Policy};
use super::reply::Reply;
use super::report::Reporter;
use super::store::{Outcome, PendingStore, Settled};
use crate::livefyre::LivefyreClient;
use crate::sync::lock;

/// How long to wait after the store failed to answer, when no poll interval is set.
const ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Answered attempts whose outcome the store is still recording, per delivery slot: the
/// slot is free once Livefyre has answered, so a store that records slowly (a database
/// commit) does not hold requests back, but only this many may wait on it. Many: a store
/// that records outcomes in batches (the outbox's group commit) writes larger batches the
/// more wait, and with few it would hold requests back while it writes.
const SETTLING_PER_SLOT: usize = 32;

/// One engine: the store, what it delivers with, and the limits it delivers under.
pub(crate) struct Engine<S> {
    pub(crate) store: S,
    pub(crate) client: LivefyreClient,
    /// The client's host and port, for the attempt spans: parsed once, not per attempt.
    server_address: (String, u16),
    pub(crate) reporter: Reporter,
    policy: Policy,
    limits: Limits,
    jitter: Mutex<XorShift>,
    wake: Notify,
    /// Deliver what must be delivered, then stop.
    closing: AtomicBool,
    deadline: Mutex<Option<Instant>>,
    /// Requests sent and not yet answered: what the concurrency limit counts.
    in_flight: AtomicUsize,
    /// Answered attempts whose outcome the store has not recorded yet.
    settling: AtomicUsize,
    pause: Mutex<HostPause>,
    pacing: Mutex<Pacing>,
    /// Set once if the loop ended without being told to stop: why.
    stopped: OnceLock<String>,
    /// A test asked the loop to panic (`pingpull::testing`).
    panic_requested: AtomicBool,
}

struct Limits {
    concurrency: usize,
    min_interval: Option<Duration>,
    /// Look at the store at least this often (others may add to it unseen).
    poll_every: Option<Duration>,
}

/// What a claim found.
enum Claimed {
    /// Deliveries started: look again at once.
    Spawned,
    /// Nothing was due; the next user may be due then (`None`: wait to be woken).
    NoneDue(Option<Instant>),
}

/// What the loop does next.
enum Step {
    Exit,
    Claim { limit: usize, probe: bool },
    Wait(Instant),
    Idle,
}

impl<S: PendingStore> Engine<S> {
    pub(crate) fn new(store: S, config: EngineConfig, poll_every: Option<Duration>) -> Self {
        let pause = HostPause::new(config.policy.probe_every, config.policy.outage);
        Self {
            store,
            server_address: config.client.server_address(),
            client: config.client,
            reporter: Reporter::new(config.events_capacity, config.clock),
            policy: config.policy,
            limits: Limits {
                concurrency: config.concurrency,
                min_interval: config.min_interval,
                poll_every,
            },
            jitter: Mutex::new(XorShift::from_time()),
            wake: Notify::new(),
            closing: AtomicBool::new(false),
            deadline: Mutex::new(None),
            in_flight: AtomicUsize::new(0),
            settling: AtomicUsize::new(0),
            pause: Mutex::new(pause),
            pacing: Mutex::new(Pacing::default()),
            stopped: OnceLock::new(),
            panic_requested: AtomicBool::new(false),
        }
    }

    /// Why the loop stopped without being told to, if it did: nothing is delivered any more.
    pub(crate) fn stopped(&self) -> Option<&str> {
        self.stopped.get().map(String::as_str)
    }

    /// Makes the loop panic at its next turn, for tests of what a dead loop shows.
    pub(crate) fn request_panic(&self) {
        self.panic_requested.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Why delivery is paused (a 403, or Livefyre unreachable), if it is.
    pub(crate) fn paused(&self) -> Option<PauseReason> {
        lock(&self.pause).reason()
    }

    /// Wakes the loop: a user may be due now.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Asks the engine to stop once drained, or at `deadline` at the latest.
    pub(super) fn close(&self, deadline: Option<Instant>) {
        self.closing.store(true, Ordering::Release);
        if deadline.is_some() {
            *lock(&self.deadline) = deadline;
        }
        self.wake.notify_one();
    }

    fn next_step(&self, now: Instant, next_slot: Instant) -> Step {
        let in_flight = self.in_flight.load(Ordering::Acquire);
        let settling = self.settling.load(Ordering::Acquire);
        if self.closing.load(Ordering::Acquire) && self.store.is_drained() {
            return if in_flight == 0 && settling == 0 {
                Step::Exit
            } else {
                Step::Idle
            };
        }
        let gate = lock(&self.pause).gate(now, in_flight);
        let (mut limit, probe) = match gate {
            Gate::Idle => return Step::Idle,
            Gate::WaitUntil(at) => return Step::Wait(at),
            Gate::Probe => (1, true),
            Gate::Deliver
                if in_flight >= self.limits.concurrency
                    || settling >= self.limits.concurrency * SETTLING_PER_SLOT =>
            {
                return Step::Idle;
            }
            Gate::Deliver => (self.limits.concurrency - in_flight, false),
        };
        if self.limits.min_interval.is_some() {
            if now < next_slot {
                return Step::Wait(next_slot);
            }
            limit = 1;
        }
        let pacing = lock(&self.pacing);
        if let Some(at) = pacing.wait_until(now) {
            return Step::Wait(at);
        }
        if pacing.rate().is_some() {
            limit = 1;
        }
        Step::Claim { limit, probe }
    }

    /// Sends one request for a claimed user, settles the claim, and reports, in a span
    /// `pingpull.ping.attempt`: an HTTP client span in OpenTelemetry's terms (as
    /// tracing-opentelemetry exports it), named after its method, with the full URL (which
    /// never holds the token: it travels in the body) and the server's address. `url.full`
    /// holds the path, so there is no `url.path` (a server span's attribute).
    async fn deliver(&self, claim: S::Claim, probe: bool, ticket: Ticket) {
        let user_id = S::user_id(&claim);
        let attempt_no = S::attempts(&claim).saturating_add(1);
        // Field values are computed only when a subscriber wants the span.
        let span = tracing::span!(
            target: "pingpull::ping",
            Level::INFO,
            "pingpull.ping.attempt",
            otel.kind = "client",
            otel.name = "POST",
            otel.status_code = field::Empty,
            http.request.method = "POST",
            url.full = self.client.ping_uri(user_id),
            server.address = self.server_address.0.as_str(),
            server.port = self.server_address.1,
            // Only on a retry: absent (not 0) on the first attempt.
            http.request.resend_count = attempt_no.checked_sub(1).filter(|&n| n > 0),
            user_id,
            attempt = attempt_no,
            http.response.status_code = field::Empty,
            error.type = field::Empty,
        );
        self.attempt(&claim, attempt_no, probe, ticket, &span)
            .instrument(span.clone())
            .await;
        self.settling.fetch_sub(1, Ordering::AcqRel);
        self.wake.notify_one();
    }

    async fn attempt(
        &self,
        claim: &S::Claim,
        attempt_no: u32,
        probe: bool,
        ticket: Ticket,
        span: &Span,
    ) {
        let user_id = S::user_id(claim);
        let reply = Reply::from(self.client.ping_once(user_id).await);
        record_reply(span, &reply);
        let reply = self.pace(reply, ticket);
        let signal = HostSignal::of(&reply);
        let jitter = lock(&self.jitter).next_unit();
        let outcome = self.policy.classify(reply, attempt_no, jitter);
        let (change, paused) = {
            let mut pause = lock(&self.pause);
            let change = pause.observe(user_id, signal, probe, Instant::now());
            (change, pause.reason().is_some())
        };
        // Answered: the slot is free for the next request while the store records this one.
        self.settling.fetch_add(1, Ordering::AcqRel);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.wake.notify_one();
        let settled = match self.store.settle(claim, &outcome).await {
            Ok(settled) => settled,
            Err(error) => {
                // The claim stays as it was: the user is claimed again (by us or another
                // worker) once its lease runs out, so nothing is lost.
                self.reporter.record_failed(user_id, &error);
                Settled::LeaseLost
            }
        };
        let since = S::pending_since(claim);
        // While paused, each user's failure is detail: the pause is told once.
        self.reporter
            .settled(user_id, attempt_no, &outcome, settled, since, paused);
        self.host_changed(change, &outcome, probe).await;
    }

    /// Takes in what `reply` says about the pace Livefyre can take. A 429 without
    /// `Retry-After` comes back with one interval at the new pace as its `Retry-After`:
    /// the pacing, not the user's schedule (which would wait 5 s, 30 s, 2 min...), says
    /// when to try again, so delivery resumes within about a second once the 429s stop.
    fn pace(&self, reply: Reply, ticket: Ticket) -> Reply {
        let signal = match &reply {
            Reply::Status(StatusCode::TOO_MANY_REQUESTS, retry_after) => PaceSignal::TooFast(
                retry_after.map(|after| self.policy.schedule.clamp_retry_after(after)),
            ),
            Reply::Status(status, _)
                if status.is_success()
                    || (status.is_client_error()
                        && !matches!(
                            *status,
                            StatusCode::FORBIDDEN | StatusCode::REQUEST_TIMEOUT
                        )) =>
            {
                PaceSignal::Taken
            }
            _ => PaceSignal::Neutral,
        };
        let (waits, began) = {
            let mut pacing = lock(&self.pacing);
            let was_paced = pacing.rate().is_some();
            let waits = pacing.observe(signal, ticket, Instant::now());
            let began = pacing.rate().filter(|_| !was_paced);
            (waits, began)
        };
        if let (Some(rate), Some(wait)) = (began, waits) {
            self.reporter.slowing_down(rate, wait);
        }
        match (reply, waits) {
            (Reply::Status(status, None), Some(wait)) => Reply::Status(status, Some(wait)),
            (reply, _) => reply,
        }
    }

    /// Tells of a pause starting or ending (once, not per user), and releases the waiting
    /// users when one ends.
    async fn host_changed(&self, change: Change, outcome: &Outcome, probe: bool) {
        match change {
            Change::None if probe => {
                tracing::event!(target: "pingpull::ping", Level::DEBUG, ?outcome, "probe answered; still paused");
            }
            Change::None => {}
            Change::Unauthorized { entering } => {
                if entering {
                    self.client.renew_token();
                }
                self.reporter
                    .unauthorized(self.client.network(), self.policy.probe_every);
            }
            Change::Opened { probe_in } => {
                if let Outcome::RetryAfter(_, failure) = outcome {
                    self.reporter
                        .unreachable(failure, self.policy.outage.threshold, probe_in);
                }
            }
            Change::Resumed { reason, paused_for } => {
                self.reporter.resumed(reason, paused_for);
                if let Err(error) = self.store.release_held().await {
                    tracing::event!(target: "pingpull::ping", Level::WARN, %error, "could not release the users held by the pause; they wait out their own delays");
                }
            }
        }
    }

    /// Claims up to `limit` due users and spawns a delivery for each.
    async fn claim_and_spawn(
        self: &Arc<Self>,
        limit: usize,
        probe: bool,
        now: Instant,
        next_slot: &mut Instant,
        tasks: &mut JoinSet<()>,
    ) -> Claimed {
        let claims = match self.claim_due(limit, probe).await {
            Ok(claims) => claims,
            Err(error) => return Claimed::NoneDue(Some(self.store_failed(&error, now))),
        };
        self.reporter.store_answered();
        if claims.is_empty() {
            return Claimed::NoneDue(match self.store.next_due().await {
                Ok(due) => due,
                Err(error) => Some(self.store_failed(&error, now)),
            });
        }
        if probe {
            lock(&self.pause).probe_sent();
        }
        for claim in claims {
            if let Some(interval) = self.limits.min_interval {
                *next_slot = later((*next_slot).max(now), interval);
            }
            let ticket = lock(&self.pacing).started(now);
            self.in_flight.fetch_add(1, Ordering::AcqRel);
            self.reporter.sent();
            let engine = self.clone();
            tasks.spawn(async move {
                let _in_flight = engine.reporter.metrics.in_flight();
                engine.deliver(claim, probe, ticket).await;
            });
        }
        Claimed::Spawned
    }

    /// Claims up to `limit` due users. A probe takes a waiting user early when none is due:
    /// every user may be waiting out its own delay, and the probe must not wait for them.
    async fn claim_due(&self, limit: usize, probe: bool) -> Result<Vec<S::Claim>, S::Error> {
        let claims = self.store.claim_due(limit).await?;
        if !probe || !claims.is_empty() {
            return Ok(claims);
        }
        self.store.release_held().await?;
        self.store.claim_due(limit).await
    }

    /// The store did not answer: told (at most once a minute), and looked at again later.
    fn store_failed(&self, error: &S::Error, now: Instant) -> Instant {
        let pause = self.limits.poll_every.unwrap_or(ERROR_PAUSE);
        self.reporter.store_failed(error, pause);
        later(now, pause)
    }
}

/// Adds the answer to the attempt's span: the status and, when it is not a 2xx, an error
/// (`error.type` the status, or `timeout` or `connection`, and the span's status ERROR).
/// For a client span a 4xx is an error as much as a 5xx (OpenTelemetry's HTTP
/// conventions: the request failed); so is a 3xx here, which the client does not follow,
/// so the ping was not delivered.
fn record_reply(span: &Span, reply: &Reply) {
    let error_type = match reply {
        Reply::Status(status, _) => {
            span.record("http.response.status_code", status.as_u16());
            if status.is_success() {
                return;
            }
            status.as_str()
        }
        Reply::TimedOut => "timeout",
        Reply::Failed(_) => "connection",
    };
    span.record("error.type", error_type);
    span.record("otel.status_code", "ERROR");
}

/// The background loop: claims due users within the limits until told to stop.
async fn run<S: PendingStore>(engine: Arc<Engine<S>>) {
    let mut tasks = JoinSet::new();
    let mut next_slot = Instant::now();
    loop {
        while let Some(joined) = tasks.try_join_next() {
            rethrow(joined);
        }
        if engine.panic_requested.load(Ordering::Acquire) {
            panic!("a panic in the delivery loop, asked for by pingpull::testing");
        }
        let now = Instant::now();
        let deadline = *lock(&engine.deadline);
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        let wait_until = match engine.next_step(now, next_slot) {
            Step::Exit => break,
            Step::Claim { limit, probe } => {
                let claimed = engine
                    .claim_and_spawn(limit, probe, now, &mut next_slot, &mut tasks)
                    .await;
                match claimed {
                    Claimed::Spawned => continue,
                    Claimed::NoneDue(next_due) => next_due,
                }
            }
            Step::Wait(until) => Some(until),
            Step::Idle => None,
        };
        let poll_at = engine.limits.poll_every.map(|every| later(now, every));
        let until = [wait_until, deadline, poll_at].into_iter().flatten().min();
        // A delivery that ends wakes the loop too: one that panicked must not go unseen.
        tokio::select! {
            () = engine.wake.notified() => {}
            () = sleep_until(until.unwrap_or(now)), if until.is_some() => {}
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => rethrow(joined),
        }
    }
    // At the deadline, requests still in flight are abandoned; their users stay pending
    // and are reported as undelivered.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

/// A delivery that panicked takes the loop down with it (and [`supervise`] tells): its
/// claim would never be settled, nor its slot freed, and delivery would stall unseen.
fn rethrow(joined: Result<(), JoinError>) {
    if let Err(error) = joined
        && error.is_panic()
    {
        resume_unwind(error.into_panic());
    }
}

/// How the loop ended when no one told it to stop.
enum Death {
    Panicked(String),
    /// Dropped unfinished: its runtime shut down.
    Dropped,
}

impl fmt::Display for Death {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Panicked(message) => write!(f, "the delivery task panicked: {message}"),
            Self::Dropped => f.write_str(
                "the delivery task was dropped before shutdown: its Tokio runtime shut down",
            ),
        }
    }
}

/// Runs the loop until it is told to stop. Should it end any other way (a panic in the
/// loop or in a delivery, or its runtime shutting down while it runs, even before it
/// first ran), the engine is marked stopped, so `ping` refuses and `health()` is
/// unhealthy, and the log tells.
pub(super) fn supervise<S: PendingStore>(engine: Arc<Engine<S>>) -> impl Future<Output = ()> {
    // Outside the async block: dropped with the future even if it was never polled.
    let mut watch = DeathWatch {
        engine,
        finished: false,
    };
    async move {
        let engine = watch.engine.clone();
        let mut running = std::pin::pin!(run(engine.clone()));
        // After a panic the loop is never polled again: its state may be half-changed.
        let panicked =
            poll_fn(
                |cx| match catch_unwind(AssertUnwindSafe(|| running.as_mut().poll(cx))) {
                    Ok(Poll::Ready(())) => Poll::Ready(None),
                    Ok(Poll::Pending) => Poll::Pending,
                    Err(payload) => Poll::Ready(Some(payload)),
                },
            )
            .await;
        watch.disarm();
        if let Some(payload) = panicked {
            engine.died(&Death::Panicked(panic_message(&*payload)));
        }
    }
}

/// Tells the engine it died if dropped before the loop finished.
struct DeathWatch<S: PendingStore> {
    engine: Arc<Engine<S>>,
    finished: bool,
}

impl<S: PendingStore> DeathWatch<S> {
    /// The loop finished (or its panic is being told): nothing more to tell on drop.
    fn disarm(&mut self) {
        self.finished = true;
    }
}

impl<S: PendingStore> Drop for DeathWatch<S> {
    fn drop(&mut self) {
        if !self.finished {
            self.engine.died(&Death::Dropped);
        }
    }
}

impl<S: PendingStore> Engine<S> {
    /// The loop is gone: marks the engine stopped (once) and tells. A panic is always an
    /// ERROR; a runtime shutting down is one only when it leaves users undelivered (a
    /// process that exits without shutting the Pinger down, with nothing pending, loses
    /// nothing).
    fn died(&self, death: &Death) {
        let reason = death.to_string();
        if self.stopped.set(reason.clone()).is_err() {
            return;
        }
        let pending = self.store.counts().pending;
        match death {
            Death::Dropped if pending == 0 => {
                tracing::event!(target: "pingpull::ping", Level::DEBUG, "{reason}, with nothing pending");
            }
            _ => {
                tracing::event!(target: "pingpull::ping", Level::ERROR, pending, "{reason}. Nothing more is delivered: `ping` now returns an error and `health()` is unhealthy (`stopped`); restart the Pinger (or the outbox worker)");
            }
        }
        self.reporter.stopped(reason);
    }
}

/// A panic's message, when it has one.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "(no message)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::atomic::AtomicU32;

    use super::super::handle::Delivery;
    use super::super::options::DeliveryOptions;
    use super::super::store::StoreCounts;
    use super::*;
    use crate::Network;
    use crate::clock::{Clock, ManualClock};

    /// A pending set that does not answer the first `down_for` looks (claims), then
    /// answers with nobody due. Each look moves the configured clock on by a second, so
    /// look n is judged at second n.
    struct Unanswering {
        clock: ManualClock,
        looks: AtomicU32,
        down_for: u32,
    }

    impl PendingStore for Unanswering {
        type Claim = ();
        type Error = &'static str;
        const UNDELIVERED_WARNING: &'static str = "undelivered";

        fn user_id((): &()) -> &str {
            ""
        }
        fn attempts((): &()) -> u32 {
            0
        }
        fn pending_since((): &()) -> Instant {
            Instant::now()
        }
        async fn claim_due(&self, _: usize) -> Result<Vec<()>, &'static str> {
            self.clock.advance(Duration::from_secs(1));
            let look = self.looks.fetch_add(1, Ordering::SeqCst) + 1;
            if look <= self.down_for {
                Err("connection refused")
            } else {
                Ok(Vec::new())
            }
        }
        async fn settle(&self, (): &(), _: &Outcome) -> Result<Settled, &'static str> {
            Ok(Settled::Done)
        }
        async fn next_due(&self) -> Result<Option<Instant>, &'static str> {
            Ok(None)
        }
        async fn release_held(&self) -> Result<(), &'static str> {
            Ok(())
        }
        fn is_drained(&self) -> bool {
            true
        }
        fn counts(&self) -> StoreCounts {
            StoreCounts::default()
        }
        async fn take_undelivered(&self) -> Vec<String> {
            Vec::new()
        }
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_pending_set_that_does_not_answer_is_told_once_a_minute_and_its_return_once() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        // Callsites another test thread reached first may be cached as unwanted.
        tracing::callsite::rebuild_interest_cache();

        let clock = ManualClock::at_unix(1_700_000_000);
        let store = Unanswering {
            clock: clock.clone(),
            looks: AtomicU32::new(0),
            down_for: 150,
        };
        let mut options = DeliveryOptions::new(Network::new("example.fyre.co", "k").unwrap());
        options.clock = Some(Arc::new(clock.clone()));
        let delivery = Delivery::spawn(store, options.check().unwrap(), None);
        // One look a second (ERROR_PAUSE) in virtual time: 150 failed looks, then one
        // that answers, after which the engine waits to be woken.
        let start = clock.now();
        tokio::time::sleep(ERROR_PAUSE * 200).await;
        assert_eq!(
            clock.now().duration_since(start).unwrap(),
            Duration::from_secs(151)
        );
        drop(delivery);

        let text = String::from_utf8(lock(&captured.0).clone()).unwrap();
        let warnings: Vec<&str> = text.lines().filter(|l| l.contains(" WARN ")).collect();
        assert_eq!(warnings.len(), 3, "{text}");
        for (line, suppressed) in warnings.iter().zip(["0", "59", "59"]) {
            assert!(line.contains("the pending set did not answer"), "{line}");
            assert!(line.contains("connection refused"), "{line}");
            assert!(line.contains(&format!("suppressed={suppressed}")), "{line}");
        }
        let back: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("the pending set answers again"))
            .collect();
        assert_eq!(back.len(), 1, "{text}");
        assert!(back[0].contains(" INFO "), "{}", back[0]);
        assert!(back[0].contains("failed_for_ms=150000"), "{}", back[0]);
    }
}
