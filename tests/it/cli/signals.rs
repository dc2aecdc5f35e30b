//! Ctrl-C and SIGTERM (what `docker stop` and Kubernetes send) stop the commands
//! gracefully: the emulator answers the request in progress and exits 0. Unix only:
//! signals are sent with `kill`.

#![cfg(unix)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use pingpull::{Network, token};

use super::commands::pingpull;

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
