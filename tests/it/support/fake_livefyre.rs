//! A scriptable stand-in for Livefyre's ping and registration endpoints, on 127.0.0.1:0.
//! It records every request and answers as the test's script says.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// One request as received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) body: String,
    /// The user id of a ping (`/api/v3_0/user/{id}/refresh`), if it is one.
    pub(crate) user: Option<String>,
    /// 1 for the first request for this user, 2 for the second...
    pub(crate) nth_for_user: usize,
    pub(crate) at: Instant,
    /// `at` by the wall clock, to compare with another process's (a database's) records.
    pub(crate) wall: std::time::SystemTime,
}

impl Received {
    /// A form field of the body.
    pub(crate) fn form(&self, name: &str) -> Option<String> {
        self.body.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            if k != name {
                return None;
            }
            String::from_utf8(super::percent_decode(v)?).ok()
        })
    }
}

/// How to answer one request.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<String>,
    pub(crate) delay: Duration,
    /// Close the connection without answering.
    pub(crate) reset: bool,
}

impl Reply {
    pub(crate) fn status(status: u16) -> Self {
        Self {
            status,
            retry_after: None,
            delay: Duration::ZERO,
            reset: false,
        }
    }

    pub(crate) fn reset() -> Self {
        Self {
            reset: true,
            ..Self::status(0)
        }
    }

    pub(crate) fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub(crate) fn retry_after(mut self, value: &str) -> Self {
        self.retry_after = Some(value.to_owned());
        self
    }
}

type Script = dyn Fn(&Received) -> Reply + Send + Sync;

/// A request the server answered: the answer was handed to the connection, not dropped
/// because the client hung up first. (Whether the client then read it in time is for
/// the test to judge, from [`Answered::took`] and the client's timeout.)
#[derive(Debug, Clone)]
pub(crate) struct Answered {
    pub(crate) request: Received,
    pub(crate) status: u16,
    pub(crate) answered_at: Instant,
}

impl Answered {
    /// From the request's arrival to its answer, by the server's clock.
    pub(crate) fn took(&self) -> Duration {
        self.answered_at - self.request.at
    }
}

pub(crate) struct FakeLivefyre {
    pub(crate) addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    answered: Arc<Mutex<Vec<Answered>>>,
    max_concurrent: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for FakeLivefyre {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeLivefyre {
    /// A server answering 200 to everything.
    pub(crate) async fn start() -> Self {
        Self::with_script(|_| Reply::status(200)).await
    }

    pub(crate) async fn with_script(
        script: impl Fn(&Received) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let answered = Arc::new(Mutex::new(Vec::new()));
        let current = Arc::new(AtomicUsize::new(0));
        let max_concurrent = Arc::new(AtomicUsize::new(0));
        let script: Arc<Mutex<Arc<Script>>> = Arc::new(Mutex::new(Arc::new(script)));
        let state = (
            received.clone(),
            current,
            max_concurrent.clone(),
            script,
            answered.clone(),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |request| handle(state.clone(), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            received,
            answered,
            max_concurrent,
            task,
        }
    }

    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The requests answered so far (see [`Answered`]), in the order answered.
    pub(crate) fn answered(&self) -> Vec<Answered> {
        self.answered.lock().unwrap().clone()
    }

    pub(crate) fn pings_for(&self, user: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.user.as_deref() == Some(user))
            .collect()
    }

    pub(crate) fn max_concurrent(&self) -> usize {
        self.max_concurrent.load(Ordering::SeqCst)
    }
}

type State = (
    Arc<Mutex<Vec<Received>>>,
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
    Arc<Mutex<Arc<Script>>>,
    Arc<Mutex<Vec<Answered>>>,
);

async fn handle(
    state: State,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let (received, current, max_concurrent, script, answered) = state;
    let now = current.fetch_add(1, Ordering::SeqCst) + 1;
    max_concurrent.fetch_max(now, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let user = path
        .strip_prefix("/api/v3_0/user/")
        .and_then(|rest| rest.strip_suffix("/refresh"))
        .map(str::to_owned);
    let entry = {
        let mut log = received.lock().unwrap();
        let nth_for_user = 1 + log
            .iter()
            .filter(|r| r.user.is_some() && r.user == user)
            .count();
        let entry = Received {
            method: parts.method.to_string(),
            path,
            query: parts.uri.query().map(str::to_owned),
            content_type: parts
                .headers
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned()),
            body: String::from_utf8_lossy(&body).into_owned(),
            user,
            nth_for_user,
            at: Instant::now(),
            wall: std::time::SystemTime::now(),
        };
        log.push(entry.clone());
        entry
    };
    let reply = {
        let script = script.lock().unwrap().clone();
        script(&entry)
    };
    tokio::time::sleep(reply.delay).await;
    current.fetch_sub(1, Ordering::SeqCst);
    if reply.reset {
        // hyper closes the connection when the service fails.
        return Err(std::io::Error::other("reset by the test"));
    }
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap();
    if let Some(value) = reply.retry_after {
        response
            .headers_mut()
            .insert("retry-after", value.parse().unwrap());
    }
    // Reached only if hyper still polls this handler: it drops it when the client hangs up.
    answered.lock().unwrap().push(Answered {
        request: entry,
        status: reply.status,
        answered_at: Instant::now(),
    });
    Ok(response)
}
