//! The examples run as processes, the way a user runs them, each with an empty
//! environment plus what it needs: each prints first what README.md says; the servers
//! close a connection whose request head never completes (the 10 s header-read timeout
//! of examples/common/serve.rs, actix-web's `client_request_timeout` for the actix one)
//! while answering others, pass `pingpull check`, and stop with status 0 on SIGTERM or
//! Ctrl-C; the pinger waits for room when full and, stopped early, names the
//! users it had accepted, and stops waiting when nothing is delivered for a while even
//! as retries go on.
//!
//! Unix only: the servers are stopped with signals. The example binaries come from the
//! same build: `cargo test --all-features` builds them; a run of this binary alone
//! (`--test it`) needs `cargo build --all-features --examples` first, and says so.

use std::future::Future;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::cli::quickstart::{readme_quickstart_first_line, shape};
use crate::support::fake_livefyre::{FakeLivefyre, Reply};
use crate::support::refusing_port;

/// The examples' header-read timeout (examples/common/serve.rs).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Slack for a loaded machine: what is asserted is that the connection closes, not when.
const MARGIN: Duration = Duration::from_secs(10);
/// For a line of output, or an exit: generous, since several tests start processes.
const PATIENCE: Duration = Duration::from_secs(60);

/// An example process, killed if the test ends before it does. Its stdout and stderr
/// are read as they come, so it never blocks on a full pipe.
struct Example {
    name: &'static str,
    child: Child,
    stdout: mpsc::UnboundedReceiver<String>,
    stderr: JoinHandle<String>,
}

impl Example {
    fn start(name: &'static str, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(name, args, env, Stdio::null())
    }

    fn spawn(name: &'static str, args: &[&str], env: &[(&str, &str)], stdin: Stdio) -> Self {
        let mut child = Command::new(example_path(name))
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start example {name}: {error}"));
        let (lines, stdout) = mpsc::unbounded_channel();
        let mut reader = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = reader.next_line().await {
                let _ = lines.send(line);
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text).await;
            text
        });
        Self {
            name,
            child,
            stdout,
            stderr,
        }
    }

    /// The next line on stdout.
    async fn line(&mut self) -> String {
        match timeout(PATIENCE, self.stdout.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => {
                let name = self.name;
                panic!("{name}: stdout ended; stderr: {}", self.stderr().await)
            }
            Err(_) => panic!("{}: no line on stdout within {PATIENCE:?}", self.name),
        }
    }

    /// Reads stdout until a line containing `text`.
    async fn until(&mut self, text: &str) {
        while !self.line().await.contains(text) {}
    }

    /// Sends `signal` (`TERM`, `INT`) to the process.
    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("the example is still running");
        let status = std::process::Command::new("kill")
            .env_clear()
            .args(["-s", signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -s {signal} {pid}: {status}");
    }

    /// Waits for the exit; returns the status and the rest of stdout.
    async fn exit(&mut self) -> (ExitStatus, Vec<String>) {
        let status = match timeout(PATIENCE, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!("{}: still running after {PATIENCE:?}", self.name),
        };
        let mut rest = Vec::new();
        while let Ok(Some(line)) = timeout(PATIENCE, self.stdout.recv()).await {
            rest.push(line);
        }
        (status, rest)
    }

    async fn stderr(&mut self) -> String {
        let _ = timeout(PATIENCE, self.child.wait()).await;
        timeout(PATIENCE, &mut self.stderr)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    }
}

/// target/<profile>/examples/<name>, next to this test binary's deps/ directory.
fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile_dir
        .join("examples")
        .join(name)
        .with_extension(std::env::consts::EXE_EXTENSION);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build --all-features --examples` first \
         (`cargo test --all-features` builds the examples)",
        path.display()
    );
    path
}

/// `http://127.0.0.1:PORT` from the start of a URL the example printed.
fn origin(url: &str) -> &str {
    let rest = url
        .strip_prefix("http://127.0.0.1:")
        .unwrap_or_else(|| panic!("not a local URL: {url}"));
    let port_len = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    assert!(port_len > 0, "no port in {url}");
    &url[.."http://127.0.0.1:".len() + port_len]
}

/// A whole request on a connection of its own; the response's status line.
async fn status_line(origin: &str, path: &str) -> String {
    let addr = origin.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    timeout(PATIENCE, stream.read_to_end(&mut response))
        .await
        .expect("an answer")
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    response.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn every_example_prints_first_what_the_readme_says() {
    // One-shot examples: the first line, then a clean exit. (The quickstart example runs
    // the command line's `quickstart`.)
    let mut quickstart = Example::start("quickstart", &[], &[]);
    let first = quickstart.line().await;
    assert_eq!(
        shape(&first),
        shape(readme_quickstart_first_line()),
        "{first}"
    );
    let (status, rest) = quickstart.exit().await;
    assert!(status.success(), "quickstart: {status}; {rest:?}");

    let mut tokens = Example::start("tokens", &[], &[]);
    let first = tokens.line().await;
    assert!(
        first.starts_with("network example.fyre.co (label example)"),
        "{first}"
    );
    assert!(tokens.exit().await.0.success());

    let mut pinger = Example::start("pinger", &[], &[]);
    let first = pinger.line().await;
    assert!(
        first.starts_with("pinging 4 user(s) at http://127.0.0.1:"),
        "{first}"
    );
    let (status, rest) = pinger.exit().await;
    assert!(status.success(), "pinger: {status}; {rest:?}");

    // Servers (docs/pull.md: "each printing the pull URL template it serves as its first
    // line"; the health example "prints its address"), stopped with SIGTERM.
    for (name, path) in [
        ("axum", "/livefyre/pull?id={id}"),
        ("hyper", "/users/{id}/livefyre"),
        ("tonic", "/livefyre/pull?id={id}"),
        ("actix", "/livefyre/pull?id={id}"),
        ("health", ""),
    ] {
        let mut server = Example::start(name, &["127.0.0.1:0"], &[]);
        let first = server.line().await;
        assert_eq!(first, format!("{}{path}", origin(&first)), "{name}");
        server.signal("TERM");
        let (status, _) = server.exit().await;
        assert!(
            status.success(),
            "{name}: {status}; {}",
            server.stderr().await
        );
    }
}

/// Starts the server example `name`; while a client that sent half a request head and
/// one that sent nothing wait, answers a whole request (`path`, `expected` status line);
/// checks both slow connections are closed by the header-read timeout; then stops it
/// with `signal` and expects status 0.
async fn closes_slow_clients_and_stops_on(
    name: &'static str,
    path: &str,
    expected: &str,
    signal: &str,
) {
    closes_slow_clients_and_stops_with(name, path, expected, signal, |_| async {}).await;
}

/// As above, with `also` called with the server's origin while the slow clients wait.
async fn closes_slow_clients_and_stops_with<F: Future<Output = ()>>(
    name: &'static str,
    path: &str,
    expected: &str,
    signal: &str,
    also: impl FnOnce(String) -> F,
) {
    let mut server = Example::start(name, &["127.0.0.1:0"], &[]);
    let first = server.line().await;
    let origin = origin(&first).to_owned();
    let addr = origin.strip_prefix("http://").unwrap();

    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())
        .await
        .unwrap();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert_eq!(status_line(&origin, path).await, expected, "{name}");
    also(origin.clone()).await;

    for (what, stream) in [("half a request head", &mut half), ("nothing", &mut silent)] {
        let mut sink = Vec::new();
        // EOF or a reset: either way the server closed it.
        let closed = timeout(HEADER_READ_TIMEOUT + MARGIN, stream.read_to_end(&mut sink)).await;
        assert!(
            closed.is_ok(),
            "{name}: a client that sent {what} still had its connection {:?} after the \
             header-read timeout",
            HEADER_READ_TIMEOUT + MARGIN
        );
    }

    // Still serving after the slow clients are gone; then the stop.
    assert_eq!(status_line(&origin, path).await, expected, "{name}");
    server.signal(signal);
    let (status, _) = server.exit().await;
    assert!(
        status.success(),
        "{name}: {status}; {}",
        server.stderr().await
    );
}

#[tokio::test]
async fn axum_example_closes_slow_clients_and_stops_on_ctrl_c() {
    closes_slow_clients_and_stops_on("axum", "/", "HTTP/1.1 200 OK", "INT").await;
}

#[tokio::test]
async fn hyper_example_closes_slow_clients_and_stops_on_sigterm() {
    closes_slow_clients_and_stops_on("hyper", "/", "HTTP/1.1 200 OK", "TERM").await;
}

#[tokio::test]
async fn tonic_example_closes_slow_clients_and_stops_on_sigterm() {
    // The Pull layer in front of the gRPC routes refuses a pull without a token.
    let path = "/livefyre/pull?id=u1";
    let forbidden = "HTTP/1.1 403 Forbidden";
    closes_slow_clients_and_stops_with("tonic", path, forbidden, "TERM", |origin| async move {
        // gRPC (HTTP/2) on the same port: the health service answers.
        let channel = Channel::from_shared(origin)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = HealthClient::new(channel);
        let request = HealthCheckRequest {
            service: String::new(),
        };
        let reply = client.check(request).await.unwrap().into_inner();
        assert_eq!(reply.status(), ServingStatus::Serving);
    })
    .await;
}

#[tokio::test]
async fn actix_example_closes_slow_clients_and_stops_on_ctrl_c() {
    // actix-web's own server: its `client_request_timeout` closes the slow clients, and
    // Ctrl-C (the first-line test sends SIGTERM) ends in status 0.
    closes_slow_clients_and_stops_on("actix", "/", "HTTP/1.1 200 OK", "INT").await;
}

#[tokio::test]
async fn health_example_closes_slow_clients_and_stops_on_sigterm() {
    closes_slow_clients_and_stops_on("health", "/healthz", "HTTP/1.1 200 OK", "TERM").await;
}

#[tokio::test]
async fn every_server_example_passes_pingpull_check() {
    // What each prints on stderr ("check it with: pingpull check ..."), with --strict:
    // the advised cases pass too. The examples' development network is the one the
    // command is given.
    for name in ["axum", "hyper", "tonic", "actix"] {
        let mut server = Example::start(name, &["127.0.0.1:0"], &[]);
        let template = server.line().await;
        let mut check = Command::from(crate::cli::commands::pingpull());
        check
            .args([
                "check",
                &template,
                "--user",
                "u1",
                "--unknown-user",
                "nobody",
            ])
            .arg("--strict")
            .kill_on_drop(true);
        let output = timeout(PATIENCE, check.output())
            .await
            .unwrap_or_else(|_| panic!("{name}: pingpull check still running after {PATIENCE:?}"))
            .unwrap();
        assert!(
            output.status.success(),
            "{name}: {}; {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        server.signal("TERM");
        let (status, _) = server.exit().await;
        assert!(status.success(), "{name}: {status}");
    }
}

/// `count` user ids, one a line, for the pinger's standard input.
async fn feed_users(example: &mut Example, count: usize) {
    let mut stdin = example.child.stdin.take().unwrap();
    let ids: String = (0..count).map(|n| format!("user-{n}\n")).collect();
    stdin.write_all(ids.as_bytes()).await.unwrap();
}

#[tokio::test]
async fn pinger_example_waits_for_room_and_delivers_every_user() {
    // The first requests answered after a second: pinging 1 000 users takes far less,
    // so the example finds the Pinger full and must wait.
    let answered = std::sync::atomic::AtomicUsize::new(0);
    let livefyre = FakeLivefyre::with_script(move |_| {
        let nth = answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let delay = if nth < 16 {
            Duration::from_secs(1)
        } else {
            Duration::ZERO
        };
        Reply::status(200).after(delay)
    })
    .await;
    let base_url = livefyre.base_url();
    let mut pinger = Example::spawn("pinger", &[&base_url, "-"], &[], Stdio::piped());
    feed_users(&mut pinger, 2_500).await;
    pinger
        .until("1000 users pending (the maximum): waiting for room")
        .await;
    let (status, rest) = pinger.exit().await;
    let summary = "2500 user(s) accepted: 2500 delivered, 0 given up, 0 undelivered; \
                   0 refused, 0 never pinged";
    assert!(
        rest.iter().any(|l| l == summary),
        "{:?}",
        &rest[rest.len().saturating_sub(5)..]
    );
    assert!(status.success(), "{status}");
    let mut pinged: Vec<_> = livefyre
        .received()
        .into_iter()
        .filter_map(|r| r.user)
        .collect();
    pinged.sort_unstable();
    pinged.dedup();
    assert_eq!(pinged.len(), 2_500);
}

#[tokio::test]
async fn pinger_example_stopped_while_full_names_the_users_it_accepted() {
    // Livefyre failing: nothing is delivered, the Pinger fills up and the example waits.
    let livefyre = FakeLivefyre::with_script(|_| Reply::status(503)).await;
    let base_url = livefyre.base_url();
    let mut pinger = Example::spawn("pinger", &[&base_url, "-"], &[], Stdio::piped());
    feed_users(&mut pinger, 1_500).await;
    pinger
        .until("1000 users pending (the maximum): waiting for room")
        .await;
    pinger.signal("INT");
    let (status, rest) = pinger.exit().await;
    let summary = "1000 user(s) accepted: 0 delivered, 0 given up, 1000 undelivered; \
                   0 refused, 500 never pinged";
    assert!(rest.iter().any(|l| l == summary), "{rest:?}");
    let undelivered = "undelivered (accepted, still pending at shutdown): ";
    assert!(
        rest.iter()
            .any(|l| l.starts_with(undelivered) && l.ends_with("... and 980 more")),
        "{rest:?}"
    );
    assert!(
        rest.iter()
            .any(|l| l.starts_with("never pinged: user-1000 ")),
        "{rest:?}"
    );
    assert_eq!(status.code(), Some(1));
}

#[tokio::test]
async fn pinger_example_gives_up_when_nothing_is_delivered_while_retries_go_on() {
    // Nothing answers: every attempt fails and is retried (probes once a second once the
    // Pinger sees Livefyre unreachable), so events keep coming but none is a delivery.
    // The window is 2 s here (30 s by default); before, each retry restarted it and the
    // example waited for ever.
    let (_socket, addr) = refusing_port();
    let base_url = format!("http://{addr}");
    let mut pinger = Example::start("pinger", &[&base_url], &[("PINGER_STALLED_AFTER", "2")]);
    let (status, rest) = pinger.exit().await;
    let stderr = pinger.stderr().await;
    assert!(
        stderr.contains("nothing delivered for 2 s: giving up"),
        "{stderr}"
    );
    let summary = "3 user(s) accepted: 0 delivered, 0 given up, 3 undelivered; \
                   0 refused, 0 never pinged";
    assert!(rest.iter().any(|l| l == summary), "{rest:?}");
    assert_eq!(status.code(), Some(1));
}

/// The outbox example, apart from the others: it needs PostgreSQL (`DATABASE_URL`, else
/// the local test database), so `-- --skip outbox` leaves it out with the other database
/// tests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_example_prints_first_what_the_readme_says() {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| crate::support::database::DEFAULT_DATABASE_URL.to_owned());
    let mut outbox = Example::start("outbox", &[], &[("DATABASE_URL", &url)]);
    let first = outbox.line().await;
    assert!(
        first.starts_with("emulator (Livefyre) at http://127.0.0.1:"),
        "{first}"
    );
    let (status, rest) = outbox.exit().await;
    assert!(
        status.success(),
        "outbox: {status}; {rest:?}; {}",
        outbox.stderr().await
    );
}
