//! A Livefyre emulator: the other side of the protocol, for tests and local development.
//!
//! It accepts pings (docs/protocol.md §4) and Pull URL registrations (§5) from your server, pulls
//! profiles from your Pull endpoint (§6) with a system token, reads them tolerantly (§7),
//! and keeps them as *remote profiles* you can inspect:
//!
//! | route | what |
//! |---|---|
//! | `POST /api/v3_0/user/{id}/refresh` (also `v3.0`) | a ping; `lftoken` in the query or a form body; 200, or 403 for a bad token |
//! | `POST /` | registration: `actor_token` and `pull_profile_url` in the query or a form body; 204 |
//! | `GET /profiles/{id}`, `GET /profiles` | remote profiles with their last pull (time, status, error); the list a page at a time (`limit`, `cursor`) |
//! | `GET /events` | recent pings, registrations and pulls, as JSON, a page at a time (`limit`, `cursor`) |
//! | `GET /stats` | users kept, the cap, users evicted, events kept, pulls queued |
//! | `GET /studio/users` | an HTML page in the spirit of Livefyre Studio > Users; `?failed=1`, `?page=N` |
//!
//! It keeps at most [`EmulatorBuilder::max_users`] users (default
//! [`DEFAULT_MAX_USERS`]): a ping for a new user beyond that evicts the least recently
//! pinged one, counted in [`Emulator::stats`] and logged at WARN (at most once a minute).
//! It keeps the last 1000 events.
//!
//! Pings for a user whose pull is already queued coalesce; a ping during a pull queues
//! one more. 5xx answers and timeouts are retried with backoff; a 403, 404, invalid JSON
//! or invalid profile is recorded as that pull's failure, with the reason a Pull layer's
//! 500 gives (docs/protocol.md §6). A 500 that lists the profile's violations is recorded
//! at once, not retried: the same profile would get the same answer. [`Faults`] make the ping side
//! fail on purpose, so you can test your own retry handling.
//!
//! ```
//! use std::time::Duration;
//! use pingpull::Network;
//! use pingpull::emulator::Emulator;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let emulator = Emulator::builder(Network::new("example.fyre.co", "testkeytest")?)
//!     .pull_url("http://127.0.0.1:3000/livefyre/pull?id={id}")?
//!     .start()
//!     .await?;
//! assert!(emulator.base_url().starts_with("http://127.0.0.1:"));
//! assert_eq!(emulator.pings_received("u1"), 0);
//! assert!(emulator.remote_profile("u1").is_none());
//! # Ok(())
//! # }
//! ```

mod form;
mod head_timeout;
mod kept;
mod paging;
mod puller;
mod records;
mod server;
mod state;
mod studio;

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use records::{EmulatorEvent, PullRecord, RemoteUser};

/// Users the emulator keeps unless configured: about 90 MB at most.
pub const DEFAULT_MAX_USERS: usize = 100_000;

/// How long one pull may take unless configured ([`EmulatorBuilder::pull_timeout`]).
pub const DEFAULT_PULL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a client may take to send its request head, then its body, unless configured
/// ([`EmulatorBuilder::request_read_timeout`]).
pub const DEFAULT_REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Pulls in flight at once unless configured ([`EmulatorBuilder::pull_concurrency`]).
pub const DEFAULT_PULL_CONCURRENCY: usize = 8;

/// Pulls waiting at most unless configured ([`EmulatorBuilder::max_queue`]).
pub const DEFAULT_MAX_QUEUE: usize = 100_000;

/// Attempts of one pull in all unless configured ([`EmulatorBuilder::pull_retries`]).
pub const DEFAULT_MAX_PULL_ATTEMPTS: u32 = 4;

use crate::ping::RetrySchedule;
use crate::template::{PullUrlTemplate, TemplateError};
use crate::throttle::{LogThrottle, ONCE_A_MINUTE};
use crate::token::SystemTokenValidator;
use crate::{Network, Profile};

/// Deliberate failures on the ping side, for testing a Pinger's retries.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Faults {
    /// Share of pings answered 500 (0.0 to 1.0).
    pub fail_rate: f64,
    /// Share of pings answered 429 with `Retry-After: 1`.
    pub rate_429: f64,
    /// Added to every ping's answer.
    pub latency: Duration,
    /// Seed for the choice of failing pings.
    pub seed: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            fail_rate: 0.0,
            rate_429: 0.0,
            latency: Duration::ZERO,
            seed: 1,
        }
    }
}

impl Faults {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// Answers this share of pings 500.
    pub fn fail_rate(mut self, rate: f64) -> Self {
        self.fail_rate = rate;
        self
    }

    /// Answers this share of pings 429 with `Retry-After: 1`.
    pub fn rate_429(mut self, rate: f64) -> Self {
        self.rate_429 = rate;
        self
    }

    /// Delays every ping's answer by `latency`.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Seeds the choice of failing pings.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn check(&self) -> Result<(), EmulatorError> {
        let rate_ok = |r: f64| r.is_finite() && (0.0..=1.0).contains(&r);
        if !rate_ok(self.fail_rate) {
            return Err(EmulatorError::out_of_range("fail_rate", "between 0 and 1"));
        }
        if !rate_ok(self.rate_429) {
            return Err(EmulatorError::out_of_range("rate_429", "between 0 and 1"));
        }
        if self.fail_rate + self.rate_429 > 1.0 {
            return Err(EmulatorError::out_of_range(
                "rate_429",
                "at most 1 minus fail_rate (the two rates add up to at most 1)",
            ));
        }
        Ok(())
    }
}

/// Configures and starts an [`Emulator`].
#[must_use]
pub struct EmulatorBuilder {
    network: Network,
    listen: SocketAddr,
    pull_url: Option<PullUrlTemplate>,
    faults: Faults,
    pull_timeout: Duration,
    read_timeout: Duration,
    pull_concurrency: usize,
    max_queue: usize,
    max_users: usize,
    pull_retries: RetrySchedule,
    max_pull_attempts: u32,
}

impl EmulatorBuilder {
    /// Listens on `addr` (default `127.0.0.1:0`, a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Sets the Pull URL template at start-up, as if it had been registered.
    ///
    /// # Errors
    ///
    /// [`TemplateError`] if the template is not an absolute http(s) URL with `{id}` exactly
    /// once, as the Pull layer needs it (docs/protocol.md §5).
    pub fn pull_url(mut self, template: &str) -> Result<Self, TemplateError> {
        self.pull_url = Some(PullUrlTemplate::parse_absolute(template)?);
        Ok(self)
    }

    /// Makes the ping side fail on purpose.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// How long one pull may take (default [`DEFAULT_PULL_TIMEOUT`], 5 s).
    pub fn pull_timeout(mut self, timeout: Duration) -> Self {
        self.pull_timeout = timeout;
        self
    }

    /// How long a client may take to send its request head, and then its body (default
    /// [`DEFAULT_REQUEST_READ_TIMEOUT`], 10 s); a slower one is disconnected (head) or answered 408 (body), so slow or
    /// stalled clients cannot hold connections open for ever.
    pub fn request_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Pulls in flight at once (default [`DEFAULT_PULL_CONCURRENCY`], 8).
    pub fn pull_concurrency(mut self, concurrency: usize) -> Self {
        self.pull_concurrency = concurrency;
        self
    }

    /// Pulls waiting at most (default [`DEFAULT_MAX_QUEUE`], 100 000); beyond it pings are answered 503.
    pub fn max_queue(mut self, max_queue: usize) -> Self {
        self.max_queue = max_queue;
        self
    }

    /// Users kept at most (default [`DEFAULT_MAX_USERS`]); a ping for a new user beyond
    /// it evicts the least recently pinged user, with all it knew of it.
    pub fn max_users(mut self, max_users: usize) -> Self {
        self.max_users = max_users;
        self
    }

    /// Delays between attempts of a pull answered 5xx or timed out (default 100 ms,
    /// 500 ms, 2 s), and how many attempts in all (default [`DEFAULT_MAX_PULL_ATTEMPTS`], 4).
    /// A 500 whose body lists the profile's violations (docs/protocol.md §6) is not
    /// retried.
    pub fn pull_retries(mut self, schedule: RetrySchedule, max_attempts: u32) -> Self {
        self.pull_retries = schedule;
        self.max_pull_attempts = max_attempts.max(1);
        self
    }

    /// Binds the listener and starts serving and pulling.
    ///
    /// # Errors
    ///
    /// [`EmulatorError`] if the address cannot be bound or a setting is out of range.
    pub async fn start(self) -> Result<Emulator, EmulatorError> {
        self.faults.check()?;
        for (setting, value) in [
            ("pull_concurrency", self.pull_concurrency),
            ("max_queue", self.max_queue),
            ("max_users", self.max_users),
        ] {
            if value == 0 {
                return Err(EmulatorError::out_of_range(setting, "at least 1"));
            }
        }
        if self.read_timeout.is_zero() {
            return Err(EmulatorError::out_of_range(
                "request_read_timeout",
                "longer than zero",
            ));
        }
        let listener = TcpListener::bind(self.listen)
            .await
            .map_err(EmulatorError::Bind)?;
        let addr = listener.local_addr().map_err(EmulatorError::Bind)?;
        let state = state::EmulatorState {
            pull_url: self.pull_url,
            ..state::EmulatorState::new(self.max_users)
        };
        let shared = Arc::new(Shared {
            // Pingers reuse one token for hours: verify it once.
            validator: SystemTokenValidator::new(self.network.clone())
                .cache(Some(crate::token::TokenCache::default())),
            network: self.network,
            state: Mutex::new(state),
            changed: Notify::new(),
            work: Notify::new(),
            dice: Mutex::new(crate::ping::XorShift::seeded(self.faults.seed)),
            faults: self.faults,
            pull_timeout: self.pull_timeout,
            read_timeout: self.read_timeout,
            max_queue: self.max_queue,
            pull_retries: self.pull_retries,
            max_pull_attempts: self.max_pull_attempts,
            token: crate::token::OutgoingToken::new(std::sync::Arc::new(crate::clock::SystemClock)),
            pull_log: puller::PullLog::new(),
            eviction_log: LogThrottle::new(ONCE_A_MINUTE),
        });
        let (stop, mut stopped) = watch::channel(false);
        let stop_signal = async move {
            // A closed channel (the handle is gone) stops the server too.
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let server = tokio::spawn(server::serve(listener, shared.clone(), stop_signal));
        let pullers = (0..self.pull_concurrency)
            .map(|_| tokio::spawn(puller::run(shared.clone())))
            .collect();
        tracing::event!(target: "pingpull::emulator", tracing::Level::INFO, %addr, "emulator listening");
        Ok(Emulator {
            addr,
            shared,
            stop,
            server: Some(server),
            pullers,
        })
    }
}

impl fmt::Debug for EmulatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorBuilder")
            .field("network", &self.network)
            .field("listen", &self.listen)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

/// A running emulator. Dropping it stops the pulls and shuts the server down gracefully in
/// the background; [`Emulator::shutdown`] waits for that.
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// `true` asks the server to stop accepting and drain its connections.
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    pullers: Vec<JoinHandle<()>>,
}

impl Emulator {
    /// Starts configuring an emulator for `network`.
    pub fn builder(network: Network) -> EmulatorBuilder {
        EmulatorBuilder {
            network,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            pull_url: None,
            faults: Faults::default(),
            pull_timeout: DEFAULT_PULL_TIMEOUT,
            read_timeout: DEFAULT_REQUEST_READ_TIMEOUT,
            pull_concurrency: DEFAULT_PULL_CONCURRENCY,
            max_queue: DEFAULT_MAX_QUEUE,
            max_users: DEFAULT_MAX_USERS,
            pull_retries: RetrySchedule::new([100, 500, 2000].map(Duration::from_millis))
                .jitter(0.0),
            max_pull_attempts: DEFAULT_MAX_PULL_ATTEMPTS,
        }
    }

    /// Starts an emulator for `network` on 127.0.0.1 with a free port and no faults.
    ///
    /// # Errors
    ///
    /// [`EmulatorError::Bind`] if no port can be bound.
    pub async fn start(network: Network) -> Result<Self, EmulatorError> {
        Self::builder(network).start().await
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, to give a [`Pinger`](crate::ping::Pinger) or
    /// [`LivefyreClient`](crate::ping::LivefyreClient): `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The network it plays.
    pub fn network(&self) -> &Network {
        &self.shared.network
    }

    /// The registered Pull URL template, if any.
    pub fn pull_url(&self) -> Option<String> {
        self.shared
            .state()
            .pull_url
            .as_ref()
            .map(|t| t.as_str().to_owned())
    }

    /// Sets the Pull URL template, as a registration would.
    ///
    /// # Errors
    ///
    /// [`TemplateError`] if the template is not an absolute http(s) URL with `{id}` exactly
    /// once, as the Pull layer needs it (docs/protocol.md §5).
    pub fn set_pull_url(&self, template: &str) -> Result<(), TemplateError> {
        let template = PullUrlTemplate::parse_absolute(template)?;
        self.shared.state().pull_url = Some(template);
        Ok(())
    }

    /// The remote profile of `user_id`: the last one pulled successfully.
    pub fn remote_profile(&self, user_id: &str) -> Option<Profile> {
        self.user(user_id).and_then(|u| u.profile)
    }

    /// Everything known about `user_id`: remote profile, pings, last pull.
    pub fn user(&self, user_id: &str) -> Option<RemoteUser> {
        self.shared.state().users.get(user_id).cloned()
    }

    /// What the emulator keeps now, and how many users it evicted.
    pub fn stats(&self) -> EmulatorStats {
        self.shared.stats()
    }

    /// Pings accepted for `user_id` (faulted ones are not counted).
    pub fn pings_received(&self, user_id: &str) -> u64 {
        self.user(user_id).map_or(0, |u| u.pings)
    }

    /// Recent events, oldest first.
    pub fn events(&self) -> Vec<EmulatorEvent> {
        self.shared.state().events.iter().cloned().collect()
    }

    /// Shuts down gracefully: stops accepting connections and pulling, closes idle
    /// connections, and waits up to `deadline` for requests in progress to be answered
    /// (a client still sending its request is cut off by the request read timeout).
    /// `true` if every connection closed in time; otherwise the server is stopped and
    /// the connections left close on their own when their timeouts pass.
    pub async fn shutdown(mut self, deadline: Duration) -> bool {
        self.stop.send_replace(true);
        for task in &self.pullers {
            task.abort();
        }
        let Some(mut server) = self.server.take() else {
            return true;
        };
        if tokio::time::timeout(deadline, &mut server).await.is_ok() {
            return true;
        }
        server.abort();
        false
    }

    /// Waits until `user_id`'s remote profile satisfies `predicate`, or `timeout` passes.
    ///
    /// # Errors
    ///
    /// [`WaitTimeout`] with what the emulator knew about the user at the end.
    pub async fn wait_for_profile(
        &self,
        user_id: &str,
        timeout: Duration,
        predicate: impl Fn(&Profile) -> bool,
    ) -> Result<Profile, WaitTimeout> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(profile) = self.remote_profile(user_id).filter(|p| predicate(p)) {
                return Ok(profile);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(WaitTimeout {
                    user: self.user(user_id),
                });
            }
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        for task in &self.pullers {
            task.abort();
        }
    }
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .field("network", &self.shared.network)
            .finish_non_exhaustive()
    }
}

/// What an emulator keeps, as [`Emulator::stats`] and `GET /stats` tell.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct EmulatorStats {
    /// Users kept now.
    pub users: usize,
    /// Users kept at most.
    pub max_users: usize,
    /// Users evicted (the least recently pinged) to keep within `max_users`.
    pub evicted_users: u64,
    /// Events kept for `GET /events`.
    pub events: usize,
    /// Pulls waiting.
    pub queued_pulls: usize,
}

/// [`Emulator::wait_for_profile`] gave up.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WaitTimeout {
    /// What the emulator knew about the user then (its last pull says why, if it failed).
    pub user: Option<RemoteUser>,
}

impl fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.user {
            None => {
                f.write_str("timed out: the emulator never heard of this user (no ping arrived)")
            }
            Some(user) => match &user.last_pull {
                None => write!(
                    f,
                    "timed out: {} ping(s) arrived but no pull has finished",
                    user.pings
                ),
                Some(pull) => match &pull.error {
                    Some(error) => write!(f, "timed out; the last pull failed: {error}"),
                    None => f.write_str("timed out; the remote profile does not match yet"),
                },
            },
        }
    }
}

impl std::error::Error for WaitTimeout {}

/// Why the emulator could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum EmulatorError {
    /// The listen address could not be bound.
    Bind(std::io::Error),
    /// A setting is out of range.
    OutOfRange {
        /// The builder method that took it, e.g. `max_users`.
        setting: &'static str,
        /// What it accepts, e.g. `at least 1`.
        expected: &'static str,
    },
}

impl EmulatorError {
    fn out_of_range(setting: &'static str, expected: &'static str) -> Self {
        Self::OutOfRange { setting, expected }
    }
}

impl fmt::Display for EmulatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bind(error) => write!(f, "cannot listen: {error}"),
            Self::OutOfRange { setting, expected } => {
                write!(f, "`{setting}` must be {expected}")
            }
        }
    }
}

impl std::error::Error for EmulatorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Bind(error) => Some(error),
            Self::OutOfRange { .. } => None,
        }
    }
}

pub(crate) struct Shared {
    network: Network,
    validator: SystemTokenValidator,
    state: Mutex<state::EmulatorState>,
    /// Woken on every change of a remote user (for `wait_for_profile`).
    changed: Notify,
    /// Woken when a pull is queued.
    work: Notify,
    faults: Faults,
    dice: Mutex<crate::ping::XorShift>,
    pull_timeout: Duration,
    /// How long a client may take to send its request head, then its body.
    read_timeout: Duration,
    max_queue: usize,
    pull_retries: RetrySchedule,
    max_pull_attempts: u32,
    /// The token pulls carry: one for hours, as Livefyre's.
    token: crate::token::OutgoingToken,
    /// Failed pulls at WARN, rate-limited per kind.
    pull_log: puller::PullLog,
    /// Evictions at WARN, rate-limited.
    eviction_log: LogThrottle,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, state::EmulatorState> {
        crate::sync::lock(&self.state)
    }

    fn stats(&self) -> EmulatorStats {
        let state = self.state();
        EmulatorStats {
            users: state.users.len(),
            max_users: state.users.max_users(),
            evicted_users: state.users.evicted(),
            events: state.events.len(),
            queued_pulls: state.queue.len(),
        }
    }

    /// Tells the operator, at most once a minute, that users are being evicted.
    fn log_evictions(&self, evicted_total: u64) {
        if let Some(suppressed) = self.eviction_log.allow(std::time::SystemTime::now()) {
            tracing::event!(target: "pingpull::emulator", tracing::Level::WARN, evicted_total, suppressed, "user cap reached: evicting the least recently pinged users (raise max_users / --max-users to keep more)");
        }
    }
}
