//! Ping users through the Pinger and watch them delivered, with backpressure: the Pinger
//! holds at most `MAX_PENDING` users, and when it is full this waits for deliveries to
//! make room rather than failing. However it ends (all delivered, delivery stalled,
//! Ctrl-C), it shuts the Pinger down and reports which users were delivered and which
//! were not; the exit status is 0 only if every user was delivered.
//!
//! ```sh
//! # against a local stand-in for Livefyre's ping endpoint, started by the example:
//! cargo run --example pinger
//! # against a server of yours (the emulator, a proxy), with user ids:
//! cargo run --example pinger -- http://127.0.0.1:8080 u1 u2
//! # many users, one id a line on standard input:
//! seq 1 5000 | sed 's/^/user-/' | cargo run --example pinger -- http://127.0.0.1:8080 -
//! ```
//!
//! `PINGER_STALLED_AFTER` (seconds, default 30) sets how long it waits with nothing
//! delivered or given up before it stops and reports.

// Only the Ctrl-C/SIGTERM handling is used here.
#[allow(dead_code)]
#[path = "common/serve.rs"]
mod serve;

use std::convert::Infallible;
use std::io::BufRead as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use pingpull::Network;
use pingpull::ping::{PingError, PingEvent, Pinger, ShutdownReport};
use pingpull::token::SystemTokenValidator;
use tokio::sync::broadcast::{self, error::RecvError};

/// Users pending at once. Small here so that a few thousand users show the waiting; a
/// server keeps the default (100 000) or sets what its memory allows.
const MAX_PENDING: usize = 1_000;

/// With nothing delivered or given up for this long (Livefyre down, a wrong key), stop
/// waiting and report: the users already accepted are named in the report. Retries do
/// not count: a Pinger retrying against a closed port is still stalled.
/// `PINGER_STALLED_AFTER` (seconds) overrides it.
const STALLED_AFTER: Duration = Duration::from_secs(30);

/// Users listed on the report before "and N more".
const LISTED: usize = 20;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("pinger: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Pings the users, waits for delivery, and reports; true if every user was delivered.
async fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let interrupted = serve::shutdown_signal()?;
    let network = network()?;
    let mut args = std::env::args().skip(1);
    let base_url = match args.next() {
        Some(url) => url,
        None => start_stand_in(network.clone()).await?,
    };
    let users = users(args.collect())?;
    let stalled_after = stalled_after()?;
    println!("pinging {} user(s) at {base_url}", users.len());

    let pinger = Pinger::builder(network)
        .base_url(&base_url)
        .max_pending(MAX_PENDING)
        .spawn()?;
    tokio::spawn(print_events(pinger.events(), Instant::now()));

    let mut progress = Progress::default();
    tokio::select! {
        () = deliver(&pinger, &users, &mut progress, stalled_after) => {}
        () = interrupted => eprintln!("interrupted: shutting down"),
    }
    let report = pinger.shutdown(Duration::from_secs(5)).await;
    Ok(print_report(&users, &progress, &report))
}

/// The network from `PINGPULL_NETWORK` and `PINGPULL_KEY` (and `PINGPULL_PREVIOUS_KEYS`,
/// which the stand-in accepts too), or a development default.
fn network() -> Result<Network, Box<dyn std::error::Error>> {
    match (
        std::env::var("PINGPULL_NETWORK"),
        std::env::var("PINGPULL_KEY"),
    ) {
        (Ok(name), Ok(key)) => {
            let previous = std::env::var("PINGPULL_PREVIOUS_KEYS").unwrap_or_default();
            Ok(Network::new(name, key)?
                .with_previous_keys(previous.split(',').map(str::trim).filter(|k| !k.is_empty()))?)
        }
        _ => {
            eprintln!(
                "PINGPULL_NETWORK/PINGPULL_KEY not set: using example.fyre.co with key `testkeytest`"
            );
            Ok(Network::new("example.fyre.co", "testkeytest")?)
        }
    }
}

/// [`STALLED_AFTER`], or the seconds `PINGER_STALLED_AFTER` gives.
fn stalled_after() -> Result<Duration, Box<dyn std::error::Error>> {
    match std::env::var("PINGER_STALLED_AFTER") {
        Ok(seconds) => seconds
            .parse::<f64>()
            .ok()
            .filter(|s| *s > 0.0)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or_else(|| {
                format!("PINGER_STALLED_AFTER: expected seconds, got `{seconds}`").into()
            }),
        Err(_) => Ok(STALLED_AFTER),
    }
}

/// The user ids given, read from standard input for `-`, or a demo list.
fn users(args: Vec<String>) -> std::io::Result<Vec<String>> {
    if args == ["-"] {
        let lines = std::io::stdin().lock().lines();
        return lines
            .map(|line| line.map(|l| l.trim().to_owned()))
            .filter(|line| !matches!(line, Ok(l) if l.is_empty()))
            .collect();
    }
    if args.is_empty() {
        return Ok(["u1", "u2", "u3", "u1"].map(String::from).to_vec());
    }
    Ok(args)
}

/// How far [`deliver`] got, kept outside it so that Ctrl-C loses nothing.
#[derive(Default)]
struct Progress {
    /// `users[..handed_over]` went to `ping` (accepted, or refused as listed below).
    handed_over: usize,
    /// Ids `ping` refused as invalid.
    refused: Vec<(String, PingError)>,
}

/// Pings every user, waiting for room while the Pinger is full, then waits until none is
/// pending. Returns early if delivery stalls: nothing delivered or given up for
/// `stalled_after`.
async fn deliver(
    pinger: &Pinger,
    users: &[String],
    progress: &mut Progress,
    stalled_after: Duration,
) {
    // Subscribed before the first ping, so no delivery is missed while waiting.
    let mut events = pinger.events();
    let mut stall = Stall::new(pinger, stalled_after);
    let mut told = false;
    for user in users {
        loop {
            match pinger.ping(user) {
                Ok(()) => break,
                Err(PingError::QueueFull { max_pending }) => {
                    if !told {
                        println!("{max_pending} users pending (the maximum): waiting for room");
                        told = true;
                    }
                    if !stall.wait_below(&mut events, max_pending as u64).await {
                        return;
                    }
                }
                Err(error) => {
                    progress.refused.push((user.clone(), error));
                    break;
                }
            }
        }
        progress.handed_over += 1;
    }
    stall.wait_below(&mut events, 1).await;
}

/// Watches for delivery stalling: the time since a user was last delivered or given up
/// (from the Pinger's counters, so a lagging event stream changes nothing), not since
/// the last event; a retry is an event but no progress.
struct Stall<'a> {
    pinger: &'a Pinger,
    after: Duration,
    /// Users delivered or given up so far.
    settled: u64,
    since: tokio::time::Instant,
}

impl<'a> Stall<'a> {
    fn new(pinger: &'a Pinger, after: Duration) -> Self {
        let stats = pinger.stats();
        Self {
            pinger,
            after,
            settled: stats.succeeded + stats.given_up,
            since: tokio::time::Instant::now(),
        }
    }

    /// Waits until fewer than `limit` users are pending; false if delivery stalled.
    async fn wait_below(
        &mut self,
        events: &mut broadcast::Receiver<PingEvent>,
        limit: u64,
    ) -> bool {
        loop {
            let stats = self.pinger.stats();
            if stats.pending < limit {
                return true;
            }
            let settled = stats.succeeded + stats.given_up;
            let now = tokio::time::Instant::now();
            if settled != self.settled {
                self.settled = settled;
                self.since = now;
            } else if now >= self.since + self.after {
                eprintln!(
                    "nothing delivered for {} s: giving up",
                    self.after.as_secs_f64()
                );
                return false;
            }
            // Any event (a retry, a delivery, missed events), or the time: look again.
            let stalled_at = self.since + self.after;
            if let Ok(Err(RecvError::Closed)) =
                tokio::time::timeout_at(stalled_at, events.recv()).await
            {
                return false;
            }
        }
    }
}

/// Prints each event as it comes, with the time since the start.
async fn print_events(mut events: broadcast::Receiver<PingEvent>, started: Instant) {
    loop {
        match events.recv().await {
            Ok(event) => println!(
                "{:>7.1} ms  {event:?}",
                started.elapsed().as_secs_f64() * 1000.0
            ),
            Err(RecvError::Lagged(missed)) => println!("           ({missed} events not shown)"),
            Err(RecvError::Closed) => return,
        }
    }
}

/// Prints what became of every user; true if all were delivered.
fn print_report(users: &[String], progress: &Progress, report: &ShutdownReport) -> bool {
    let not_handed_over = &users[progress.handed_over..];
    let mut accepted: Vec<&String> = users[..progress.handed_over]
        .iter()
        .filter(|user| !progress.refused.iter().any(|(refused, _)| refused == *user))
        .collect();
    accepted.sort_unstable();
    accepted.dedup();
    let given_up = usize::try_from(report.stats.given_up).unwrap_or(usize::MAX);
    let delivered = accepted
        .len()
        .saturating_sub(report.undelivered.len())
        .saturating_sub(given_up);
    println!("{:?}", report.stats);
    println!(
        "{} user(s) accepted: {delivered} delivered, {given_up} given up, {} undelivered; \
         {} refused, {} never pinged",
        accepted.len(),
        report.undelivered.len(),
        progress.refused.len(),
        not_handed_over.len(),
    );
    list(
        "undelivered (accepted, still pending at shutdown)",
        &report.undelivered,
    );
    for (user, error) in &progress.refused {
        println!("refused {user}: {error}");
    }
    list("never pinged", not_handed_over);
    report.undelivered.is_empty()
        && given_up == 0
        && progress.refused.is_empty()
        && not_handed_over.is_empty()
}

fn list(what: &str, users: &[String]) {
    if users.is_empty() {
        return;
    }
    let shown = users[..users.len().min(LISTED)].join(" ");
    match users.len().checked_sub(LISTED) {
        Some(more @ 1..) => println!("{what}: {shown} ... and {more} more"),
        _ => println!("{what}: {shown}"),
    }
}

/// A stand-in for Livefyre's ping endpoint on 127.0.0.1: checks the token, answers 200.
async fn start_stand_in(network: Network) -> Result<String, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let validator = SystemTokenValidator::new(network);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let validator = validator.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let validator = validator.clone();
                    async move {
                        let path = request.uri().path().to_owned();
                        let body = request
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let token = String::from_utf8_lossy(&body)
                            .strip_prefix("lftoken=")
                            .map(str::to_owned)
                            .unwrap_or_default();
                        let status = match validator.validate(&token) {
                            Ok(_) => StatusCode::OK,
                            Err(_) => StatusCode::FORBIDDEN,
                        };
                        println!("          stand-in: POST {path} -> {}", status.as_u16());
                        let mut response = Response::new(Full::new(Bytes::new()));
                        *response.status_mut() = status;
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(base_url)
}
