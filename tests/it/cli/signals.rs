//! Ctrl-C and SIGTERM (what `docker stop` and Kubernetes send) stop the commands
//! gracefully: the emulator answers the request in progress and exits 0; `ping` prints
//! its summary and exits 128 + the signal's number. Unix only: signals are sent with
//! `kill`.

#![cfg(unix)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pingpull::{Network, token};
use tokio::sync::mpsc;

use super::commands::pingpull;
use crate::support::fake_livefyre::{FakeLivefyre, Reply};

/// Sends `signal` (`TERM`, `INT`) to `child`.
fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .env_clear()
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -s {signal}: {status}");
}

/// Reads `stream` to its end.
fn read_all(mut stream: impl std::io::Read) -> String {
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn the_emulator_answers_the_request_in_progress_on_sigterm_then_exits_0() {
    let mut emulator = pingpull()
        .args(["emulator", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut base_url = String::new();
    BufReader::new(emulator.stdout.take().unwrap())
        .read_line(&mut base_url)
        .unwrap();
    let authority = base_url.trim().trim_start_matches("http://").to_owned();

    // A ping whose body waits for the server's `100 Continue`, which hyper sends when the
    // emulator's handler starts reading the body: once it is read here, the request is
    // in the handler, in progress, whatever the order the processes run in.
    let network = Network::new("example.fyre.co", "testkeytest").unwrap();
    let body = format!("lftoken={}", token::system_token(&network).as_str());
    let mut stream = TcpStream::connect(&authority).unwrap();
    write!(
        stream,
        "POST /api/v3_0/user/u1/refresh HTTP/1.1\r\nHost: {authority}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Expect: 100-continue\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "HTTP/1.1 100 Continue\r\n");
    reader.read_line(&mut line).unwrap();

    signal(&emulator, "TERM");
    stream.write_all(body.as_bytes()).unwrap();
    let response = read_all(reader);
    assert!(
        response.starts_with("HTTP/1.1 200 OK\r\n"),
        "the ping in progress was answered: {response}"
    );
    assert!(
        response.ends_with(r#"{"code":200,"status":"ok"}"#),
        "{response}"
    );

    let status = emulator.wait().unwrap();
    let log = read_all(emulator.stderr.take().unwrap());
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        log.contains("stopping: answering the requests in progress"),
        "{log}"
    );
}

/// `pingpull ping user-1 user-2 user-3` against a Livefyre that answers user-1 at once
/// and holds the others; once user-1 is delivered and the others are in flight, sends
/// `kill_with`. Returns the exit code and stdout.
async fn ping_stopped_by(kill_with: &str, extra: &[&str]) -> (Option<i32>, String) {
    let (in_flight, mut arrived) = mpsc::unbounded_channel();
    let livefyre = FakeLivefyre::with_script(move |received| {
        if received.user.as_deref() == Some("user-1") {
            return Reply::status(200);
        }
        let _ = in_flight.send(());
        Reply::status(200).after(Duration::from_secs(600))
    })
    .await;
    let mut child = pingpull()
        .args(["ping", "--base-url", &livefyre.base_url()])
        .args(extra)
        .args(["user-1", "user-2", "user-3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let stdout = tokio::task::spawn_blocking(move || {
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        (first, stdout)
    });
    arrived.recv().await.unwrap();
    arrived.recv().await.unwrap();
    let (first, stdout) = stdout.await.unwrap();
    assert_eq!(first, "delivered user-1 (1 attempt(s))\n");

    signal(&child, kill_with);
    tokio::task::spawn_blocking(move || {
        let rest = read_all(stdout);
        (child.wait().unwrap().code(), rest)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_sums_up_on_sigterm_and_exits_143() {
    let (code, summary) = ping_stopped_by("TERM", &[]).await;
    assert_eq!(
        summary,
        "delivered 1, failed 2 (0 given up, 2 still pending; 1 request(s) answered 2xx); \
         SIGTERM stopped delivery\n\
         failed user-2 (not delivered: stopped by SIGTERM)\n\
         failed user-3 (not delivered: stopped by SIGTERM)\n"
    );
    assert_eq!(code, Some(143));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_sums_up_on_ctrl_c_and_exits_130() {
    let (code, summary) = ping_stopped_by("INT", &["--json"]).await;
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["stopped_by_signal"], "SIGINT");
    assert_eq!(
        (&summary["delivered"], &summary["undelivered"]),
        (&serde_json::json!(1), &serde_json::json!(2))
    );
    assert_eq!(
        summary["failed"][0],
        serde_json::json!({"user": "user-2", "reason": "not delivered: stopped by SIGINT"})
    );
    assert_eq!(code, Some(130));
}
