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
