//! Resource limits: the pull path's request-target limit (414), bounded answer
//! bodies for the emulator's pulls and the Pinger's pings, timeouts against peers that
//! never answer, and slow-loris clients on the emulator. All over 127.0.0.1.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use pingpull::Network;
use pingpull::emulator::{Emulator, PullRecord};
use pingpull::ping::{Failure, LivefyreClient, PingEvent, Pinger, RequestError, RetrySchedule};
use pingpull::pull::{DEFAULT_MAX_URI_LEN, InMemorySource, PullLayer, Rejection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};
use tower::{Layer, ServiceExt, service_fn};

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

// ---- The request-target limit on the pull path -----------------------------------------

async fn call(layer: &PullLayer, uri: &str, method: http::Method) -> Response<bytes::Bytes> {
    let app = layer.layer(service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new("inner".to_owned()))
    }));
    let request = Request::builder().method(method).uri(uri).body(()).unwrap();
    let (parts, body) = app.oneshot(request).await.unwrap().into_parts();
    Response::from_parts(parts, body.collect().await.unwrap().to_bytes())
}

/// `/pull?id=u1&pad=xxx...` of exactly `len` bytes.
fn target_of_len(len: usize) -> String {
    let mut uri = String::from("/pull?id=u1&pad=");
    uri.push_str(&"x".repeat(len - uri.len()));
    assert_eq!(uri.len(), len);
    uri
}

#[tokio::test]
async fn the_pull_path_answers_414_beyond_8_kib_before_anything_else() {
    let layer = PullLayer::new("/pull?id={id}", network(), InMemorySource::new()).unwrap();
    // At the limit: the request is read (and refused for its missing token).
    let at_limit = call(
        &layer,
        &target_of_len(DEFAULT_MAX_URI_LEN),
        http::Method::GET,
    )
    .await;
    assert_eq!(at_limit.status(), StatusCode::FORBIDDEN);

    let over = DEFAULT_MAX_URI_LEN + 1;
    for method in [http::Method::GET, http::Method::POST] {
        let response = call(&layer, &target_of_len(over), method).await;
        assert_eq!(response.status(), StatusCode::URI_TOO_LONG);
        assert!(response.body().is_empty());
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(
            response.extensions().get::<Rejection>(),
            Some(&Rejection::UriTooLong { len: over })
        );
    }
}

#[tokio::test]
async fn the_limit_is_configurable_and_other_paths_are_not_limited() {
    let layer = PullLayer::new("/pull?id={id}", network(), InMemorySource::new())
        .unwrap()
        .max_uri_len(256)
        .unwrap();
    let response = call(&layer, &target_of_len(257), http::Method::GET).await;
    assert_eq!(response.status(), StatusCode::URI_TOO_LONG);
    assert_eq!(
        call(&layer, &target_of_len(256), http::Method::GET)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let elsewhere = format!("/other?pad={}", "x".repeat(20_000));
    let response = call(&layer, &elsewhere, http::Method::GET).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body().as_ref(), b"inner");
    assert!(format!("{layer:?}").contains("max_uri_len: 256"));
}

// ---- Misbehaving peers -----------------------------------------------------------------

/// What a raw TCP peer does once it has read a request head.
#[derive(Clone, Copy)]
enum Peer {
    /// Answers 200 with a chunked body that never ends.
    EndlessBody,
    /// Answers 200 with a `Content-Length` of 64 MiB and sends it.
    HugeBody,
    /// Accepts, reads, and never answers.
    Silent,
}

/// A peer on 127.0.0.1:0: its address, how many connections it accepted, and whether
/// every connection it served has ended (the client hung up).
struct RawPeer {
    addr: std::net::SocketAddr,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for RawPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn raw_peer(behaviour: Peer) -> RawPeer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicUsize::new(0));
    let (accepted2, open2) = (accepted.clone(), open.clone());
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            accepted2.fetch_add(1, Ordering::SeqCst);
            open2.fetch_add(1, Ordering::SeqCst);
            let open = open2.clone();
            connections.spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let chunk = vec![b'x'; 16 * 1024];
                let _ = match behaviour {
                    Peer::EndlessBody => {
                        let mut result = stream
                            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                            .await;
                        let framed =
                            [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
                        while result.is_ok() {
                            result = stream.write_all(&framed).await;
                        }
                        result
                    }
                    Peer::HugeBody => {
                        let total = 64 * 1024 * 1024;
                        let mut result = stream
                            .write_all(
                                format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n")
                                    .as_bytes(),
                            )
                            .await;
                        let mut sent = 0;
                        while result.is_ok() && sent < total {
                            result = stream.write_all(&chunk).await;
                            sent += chunk.len();
                        }
                        result
                    }
                    Peer::Silent => {
                        // Hold the connection until the client gives up on it.
                        while !matches!(stream.read(&mut buf).await, Ok(0) | Err(_)) {}
                        Ok(())
                    }
                };
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    RawPeer {
        addr,
        accepted,
        open,
        task,
    }
}

/// Polls `condition` until it holds; fails after `limit` (a hang, not a slow run).
async fn eventually(what: &str, limit: Duration, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "gave up waiting for: {what}");
        sleep(Duration::from_millis(10)).await;
    }
}

/// An emulator pulling from `peer`, with two attempts per pull and a pull timeout of
/// seconds: long enough for a busy machine to read past the body limit before it.
async fn emulator_pulling_from(peer: &RawPeer) -> Emulator {
    Emulator::builder(network())
        .pull_url(&format!("http://{}/pull?id={{id}}", peer.addr))
        .unwrap()
        .pull_timeout(Duration::from_secs(3))
        .pull_retries(
            RetrySchedule::new([Duration::from_millis(10)]).jitter(0.0),
            2,
        )
        .start()
        .await
        .unwrap()
}

async fn pull_u1(emulator: &Emulator) -> PullRecord {
    LivefyreClient::new(network(), &emulator.base_url())
        .unwrap()
        .sync_user("u1")
        .await
        .unwrap();
    eventually("the emulator's pull", Duration::from_secs(20), || {
        emulator.user("u1").is_some_and(|u| u.last_pull.is_some())
    })
    .await;
    emulator.user("u1").unwrap().last_pull.unwrap()
}

#[tokio::test]
async fn the_emulator_refuses_an_endless_or_huge_profile_body() {
    for behaviour in [Peer::EndlessBody, Peer::HugeBody] {
        let peer = raw_peer(behaviour).await;
        let emulator = emulator_pulling_from(&peer).await;
        let pull = pull_u1(&emulator).await;
        assert!(!pull.ok);
        assert_eq!(pull.error.as_deref(), Some("answer body too large"));
        // Too large is not retried, and the connection was dropped, not drained.
        assert_eq!(pull.attempts, 1);
        assert_eq!(peer.accepted.load(Ordering::SeqCst), 1);
        eventually(
            "the peer to see the hang-up",
            Duration::from_secs(10),
            || peer.open.load(Ordering::SeqCst) == 0,
        )
        .await;
        assert!(emulator.remote_profile("u1").is_none());
    }
}

#[tokio::test]
async fn the_emulator_times_out_a_pull_that_is_never_answered() {
    let peer = raw_peer(Peer::Silent).await;
    let emulator = emulator_pulling_from(&peer).await;
    let pull = pull_u1(&emulator).await;
    assert!(!pull.ok);
    assert_eq!(pull.error.as_deref(), Some("timed out"));
    assert_eq!(pull.attempts, 2);
    assert_eq!(pull.status, None);
}

#[tokio::test]
async fn the_pinger_reads_a_bounded_part_of_an_endless_answer() {
    for behaviour in [Peer::EndlessBody, Peer::HugeBody] {
        let peer = raw_peer(behaviour).await;
        // A long timeout: an answer read to its (missing) end would hit it and fail.
        let client = LivefyreClient::new(network(), &format!("http://{}", peer.addr))
            .unwrap()
            .timeout(Duration::from_secs(30))
            .unwrap();
        client.sync_user("u1").await.unwrap();
        eventually(
            "the peer to see the hang-up",
            Duration::from_secs(10),
            || peer.open.load(Ordering::SeqCst) == 0,
        )
        .await;
    }
}

#[tokio::test]
async fn pings_time_out_against_a_peer_that_never_answers() {
    let peer = raw_peer(Peer::Silent).await;
    let base = format!("http://{}", peer.addr);
    let client = LivefyreClient::new(network(), &base)
        .unwrap()
        .timeout(Duration::from_millis(200))
        .unwrap();
    assert_eq!(client.sync_user("u1").await, Err(RequestError::Timeout));

    let pinger = Pinger::builder(network())
        .base_url(base)
        .attempt_timeout(Duration::from_millis(200))
        .retry_schedule(RetrySchedule::new([Duration::from_millis(10)]).jitter(0.0))
        .spawn()
        .unwrap();
    let mut events = pinger.events();
    pinger.ping("u1").unwrap();
    let event = timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("an event")
        .unwrap();
    assert!(
        matches!(
            &event,
            PingEvent::Retrying {
                failure: Failure::Timeout,
                attempt: 1,
                ..
            }
        ),
        "{event:?}"
    );
    let report = pinger.shutdown(Duration::from_millis(100)).await;
    assert_eq!(report.undelivered, ["u1"]);
}

// ---- Slow clients on the emulator -------------------------------------------------------

/// Opens a connection and sends a request head one byte at a time, every `every`, until
/// the server closes it; then sets `closed`.
fn slow_loris(
    addr: std::net::SocketAddr,
    every: Duration,
    closed: Arc<AtomicBool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = b"GET /profiles HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ";
        stream.write_all(head).await.unwrap();
        loop {
            sleep(every).await;
            if stream.write_all(b"a").await.is_err() {
                break;
            }
            // A closed connection shows as end-of-file once the server has hung up.
            let mut probe = [0u8; 1];
            if let Ok(Ok(0) | Err(_)) =
                timeout(Duration::from_millis(1), stream.read(&mut probe)).await
            {
                break;
            }
        }
        closed.store(true, Ordering::SeqCst);
    })
}

#[tokio::test]
async fn slow_loris_clients_neither_stall_others_nor_stay_connected() {
    let emulator = Emulator::builder(network())
        .request_read_timeout(Duration::from_millis(500))
        .start()
        .await
        .unwrap();
    let closed: Vec<Arc<AtomicBool>> = (0..32).map(|_| Arc::new(AtomicBool::new(false))).collect();
    let lorises: Vec<_> = closed
        .iter()
        .map(|c| slow_loris(emulator.addr(), Duration::from_millis(50), c.clone()))
        .collect();
    // Connections that send nothing at all are bounded the same way.
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(emulator.addr()).await.unwrap());
    }
    sleep(Duration::from_millis(100)).await;

    // While they dribble, an ordinary client is served.
    let client = LivefyreClient::new(network(), &emulator.base_url()).unwrap();
    timeout(Duration::from_secs(5), client.sync_user("u1"))
        .await
        .expect("a normal ping is answered while slow clients hold connections")
        .unwrap();
    assert_eq!(emulator.pings_received("u1"), 1);

    // And the server hangs up on every one of them, though they keep sending.
    eventually(
        "the server to close every slow connection",
        Duration::from_secs(10),
        || closed.iter().all(|c| c.load(Ordering::SeqCst)),
    )
    .await;
    for loris in lorises {
        loris.await.unwrap();
    }
    for mut stream in idle {
        let mut buf = [0u8; 64];
        let read = timeout(Duration::from_secs(10), stream.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "an idle connection stayed open: {read:?}"
        );
    }
}

#[tokio::test]
async fn a_client_dribbling_its_body_gets_408() {
    let emulator = Emulator::builder(network())
        .request_read_timeout(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let mut stream = TcpStream::connect(emulator.addr()).await.unwrap();
    stream
        .write_all(
            b"POST /api/v3_0/user/u1/refresh HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nlftoken=",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = async {
        let mut buf = [0u8; 1024];
        loop {
            tokio::select! {
                n = stream.read(&mut buf) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        answer.extend_from_slice(&buf[..n]);
                        if answer.windows(4).any(|w| w == b"\r\n\r\n") { break; }
                    }
                },
                () = sleep(Duration::from_millis(50)) => {
                    // Keep dribbling: one byte at a time, never finishing.
                    let _ = stream.write_all(b"a").await;
                }
            }
        }
    };
    timeout(Duration::from_secs(10), read)
        .await
        .expect("an answer before the test gives up");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(emulator.pings_received("u1"), 0);
}

#[tokio::test]
async fn a_zero_read_timeout_is_refused_at_start() {
    let error = Emulator::builder(network())
        .request_read_timeout(Duration::ZERO)
        .start()
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("request_read_timeout"),
        "{error}"
    );
}

/// Each Pull layer setting refuses a value out of its range by name, and takes its edges.
#[test]
fn pull_layer_settings_out_of_range_are_refused_by_name() {
    use pingpull::pull::OutOfRange;
    use std::time::Duration;

    let layer = || PullLayer::new("/pull?id={id}", network(), InMemorySource::new()).unwrap();
    let refused = |result: Result<PullLayer, OutOfRange>| result.unwrap_err().setting;
    let hour = Duration::from_secs(3600);
    let tick = Duration::from_nanos(1);

    assert_eq!(refused(layer().timeout(Duration::ZERO)), "timeout");
    assert_eq!(refused(layer().timeout(hour + tick)), "timeout");
    assert_eq!(refused(layer().timeout(Duration::MAX)), "timeout");
    assert_eq!(
        refused(layer().retry_after(Duration::from_secs(86_400) + tick)),
        "retry_after"
    );
    assert_eq!(refused(layer().leeway(hour + tick)), "leeway");
    assert_eq!(refused(layer().max_uri_len(255)), "max_uri_len");
    assert_eq!(refused(layer().max_uri_len(1024 * 1024 + 1)), "max_uri_len");
    assert_eq!(refused(layer().token_cache(usize::MAX)), "token_cache");

    let edges = layer()
        .timeout(Duration::from_millis(1))
        .and_then(|l| l.timeout(hour))
        .and_then(|l| l.retry_after(Duration::ZERO))
        .and_then(|l| l.retry_after(Duration::from_secs(86_400)))
        .and_then(|l| l.leeway(hour))
        .and_then(|l| l.max_uri_len(256))
        .and_then(|l| l.max_uri_len(1024 * 1024))
        .and_then(|l| l.token_cache(pingpull::token::MAX_TOKEN_CACHE_CAPACITY));
    assert!(edges.is_ok(), "{edges:?}");
    let error = layer().leeway(Duration::from_secs(86_400)).unwrap_err();
    assert_eq!(error.to_string(), "`leeway` must be at most 1 hour");
}
