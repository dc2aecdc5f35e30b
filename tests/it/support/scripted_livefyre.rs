//! An in-memory Livefyre behind the `Transport` trait, answering by script: with a paused
//! Tokio clock, delivery timing is exact.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use pingpull::BoxError;
use pingpull::ping::Transport;
use tokio::time::Instant;

type Script = dyn Fn(&str, usize) -> Result<Response<()>, BoxError> + Send + Sync;

/// Answers by script, recording (user, virtual time) for every request.
#[derive(Clone)]
pub(crate) struct ScriptedLivefyre {
    pub(crate) log: Arc<Mutex<Vec<(String, Instant)>>>,
    script: Arc<Script>,
}

impl ScriptedLivefyre {
    pub(crate) fn new(
        script: impl Fn(&str, usize) -> Result<Response<()>, BoxError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            log: Arc::default(),
            script: Arc::new(script),
        }
    }

    /// Virtual times of the requests for `user`, relative to `start`.
    pub(crate) fn times(&self, user: &str, start: Instant) -> Vec<Duration> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|(u, _)| u == user)
            .map(|(_, at)| *at - start)
            .collect()
    }
}

#[async_trait::async_trait]
impl Transport for ScriptedLivefyre {
    async fn send(&self, request: Request<Bytes>) -> Result<Response<()>, BoxError> {
        let user = request
            .uri()
            .path()
            .trim_start_matches("/api/v3_0/user/")
            .trim_end_matches("/refresh")
            .to_owned();
        let nth = {
            let mut log = self.log.lock().unwrap();
            log.push((user.clone(), Instant::now()));
            log.iter().filter(|(u, _)| *u == user).count()
        };
        (self.script)(&user, nth)
    }
}

pub(crate) fn status(code: u16) -> Result<Response<()>, BoxError> {
    Ok(Response::builder().status(code).body(()).unwrap())
}

/// How a [`TimedLivefyre`] answers one request: after `delay`, with `answer`.
pub(crate) struct Timed {
    pub(crate) delay: Duration,
    pub(crate) answer: Result<Response<()>, BoxError>,
}

impl Timed {
    pub(crate) fn now(answer: Result<Response<()>, BoxError>) -> Self {
        Self {
            delay: Duration::ZERO,
            answer,
        }
    }

    pub(crate) fn after(delay: Duration, answer: Result<Response<()>, BoxError>) -> Self {
        Self { delay, answer }
    }
}

/// One request to a [`TimedLivefyre`], with the marks (see [`TimedLivefyre::mark`]) of
/// its start and of the moment the client got its answer.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    pub(crate) user: String,
    pub(crate) started: u64,
    pub(crate) started_at: Instant,
    /// The scripted answer's status, read or not; `None` for a connection error.
    pub(crate) status: Option<u16>,
    /// When the client got the answer; `None` if it gave up first (its timeout dropped
    /// the request) or has not got it yet.
    pub(crate) read: Option<u64>,
}

impl Exchange {
    /// A 2xx the client actually got.
    pub(crate) fn delivered(&self) -> bool {
        self.read.is_some() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

type TimedScript = dyn Fn(&str, usize) -> Timed + Send + Sync;

/// An in-memory Livefyre whose answers take (virtual) time, recording for each request
/// whether the client got the answer: an answer the client's timeout cut off is never
/// marked read, so a test can count only the 2xx a client really saw.
#[derive(Clone)]
pub(crate) struct TimedLivefyre {
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    clock: Arc<std::sync::atomic::AtomicU64>,
    script: Arc<TimedScript>,
}

impl TimedLivefyre {
    pub(crate) fn new(script: impl Fn(&str, usize) -> Timed + Send + Sync + 'static) -> Self {
        Self {
            exchanges: Arc::default(),
            clock: Arc::default(),
            script: Arc::new(script),
        }
    }

    /// A mark on the sequence that orders requests' starts and reads: unlike a paused
    /// clock's `Instant`, two events never share one.
    pub(crate) fn mark(&self) -> u64 {
        self.clock.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().unwrap().clone()
    }

    pub(crate) fn exchanges_for(&self, user: &str) -> Vec<Exchange> {
        let mut all = self.exchanges();
        all.retain(|e| e.user == user);
        all
    }
}

#[async_trait::async_trait]
impl Transport for TimedLivefyre {
    async fn send(&self, request: Request<Bytes>) -> Result<Response<()>, BoxError> {
        let user = request
            .uri()
            .path()
            .trim_start_matches("/api/v3_0/user/")
            .trim_end_matches("/refresh")
            .to_owned();
        let (index, Timed { delay, answer }) = {
            let mut exchanges = self.exchanges.lock().unwrap();
            let nth = 1 + exchanges.iter().filter(|e| e.user == user).count();
            let timed = (self.script)(&user, nth);
            exchanges.push(Exchange {
                user,
                started: self.mark(),
                started_at: Instant::now(),
                status: timed.answer.as_ref().ok().map(|r| r.status().as_u16()),
                read: None,
            });
            (exchanges.len() - 1, timed)
        };
        tokio::time::sleep(delay).await;
        // Reached only if the client still waits: its timeout drops this future.
        self.exchanges.lock().unwrap()[index].read = Some(self.mark());
        answer
    }
}
