//! Load benchmark of the Pull endpoint against a bare hyper server answering the same bytes.
//!
//! ```sh
//! apt-get install -y wrk           # the load generator, from Debian's packages (as root)
//! cargo bench --bench pull_load
//! ```
//!
//! Both servers are the same hyper 1 HTTP/1.1 server on a 2-worker tokio runtime, bound
//! to 127.0.0.1 on a port of their own, and answer the same profile bytes:
//! - `bare`: a service that returns the bytes, checking nothing;
//! - `pull`: [`PullLayer`] with an in-memory source, signing on, as in `examples/hyper.rs`.
//!
//! wrk drives each in turn (A/B alternating, `LOAD_RUNS` pairs of `LOAD_SECONDS` each,
//! `-t2 -c64`), first with one token repeated (the verified-token cache hits), then
//! cycling through 10,000 distinct valid tokens (every request verifies an HMAC;
//! the cache holds 64), then once more with one token and `sign_responses(false)` (what
//! `X-Profile-Signature` costs). The bare server gets the very same requests, so wrk's
//! own cost is the same on both sides. Every server is stopped before the next run.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use pingpull::Network;
use pingpull::pull::{InMemorySource, PullLayer};
use pingpull::token;
use tower::{Layer, service_fn};

#[allow(dead_code, unused_imports)] // only the demo users are needed here
#[path = "../examples/common/mod.rs"]
mod common;
#[allow(dead_code)] // each load benchmark uses part of it
mod load_support;

use load_support::{env_number, max, median, min, not_found, serve};

/// Distinct tokens for the fresh-token runs: far more than the cache holds, so none is
/// found there.
const DISTINCT_TOKENS: u64 = 10_000;

fn main() {
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("wrk is not installed: apt-get install -y wrk (as root, or with sudo)");
        std::process::exit(2);
    }
    let runs = env_number("LOAD_RUNS", 5);
    let seconds = env_number("LOAD_SECONDS", 5);
    let connections = env_number("LOAD_CONNECTIONS", 64);
    // `LOAD_ONLY=pull` (or `bare`) drives one server only, for profiling it.
    let only = std::env::var("LOAD_ONLY").ok();
    let only = only.as_deref();
    let work = tempdir();

    let network = Network::new("example.fyre.co", "testkeytest").expect("a valid network");
    let profile = common::demo_users().get("u1").expect("demo user u1");
    let body = Bytes::from(profile.to_json());
    let users: InMemorySource = [profile].into_iter().collect();
    let layer =
        PullLayer::new("/livefyre/pull?id={id}", network.clone(), users).expect("a valid template");

    let now = SystemTime::now();
    let one_token = token::system_token_at(&network, now, token::SYSTEM_TOKEN_LIFETIME);
    let repeated = work.join("repeated.lua");
    write_script(&repeated, &[path_for(one_token.as_str())]);
    let fresh = work.join("fresh.lua");
    let paths: Vec<String> = (0..DISTINCT_TOKENS)
        .map(|n| {
            let lifetime = token::SYSTEM_TOKEN_LIFETIME + Duration::from_secs(n);
            path_for(token::system_token_at(&network, now, lifetime).as_str())
        })
        .collect();
    write_script(&fresh, &paths);

    println!(
        "pull_load: {runs} A/B pairs of {seconds} s, wrk -t2 -c{connections}, body {} bytes, {} cores",
        body.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let settings = Settings { connections };
    let mut ratios = Vec::new();
    let unsigned = layer.clone().sign_responses(false);
    for (name, script, layer) in [
        ("repeated token", &repeated, &layer),
        ("fresh token", &fresh, &layer),
        ("repeated token, signing off", &repeated, &unsigned),
    ] {
        // Warm both servers' code paths and the kernel before measuring.
        settings.run(Server::Bare(body.clone()), script, 1);
        settings.run(Server::Pull(layer.clone()), script, 1);
        let mut bare = Vec::new();
        let mut pull = Vec::new();
        for _ in 0..runs {
            if only != Some("pull") {
                bare.push(settings.run(Server::Bare(body.clone()), script, seconds));
            }
            if only != Some("bare") {
                pull.push(settings.run(Server::Pull(layer.clone()), script, seconds));
            }
        }
        report(name, &bare, &pull);
        ratios.push((name, ratio_of_medians(&bare, &pull)));
    }
    for (name, ratio) in ratios {
        println!("{name}: pull/bare = {ratio:.3}");
    }
    let _ = std::fs::remove_dir_all(&work);
}

struct Settings {
    connections: u64,
}

enum Server {
    Bare(Bytes),
    Pull(PullLayer),
}

/// What one wrk run measured.
#[derive(Debug, Clone, Copy)]
struct Measured {
    requests_per_second: f64,
    /// CPU time the server's process used per request (user + system).
    cpu_us_per_request: f64,
    p50_us: f64,
    p99_us: f64,
}

impl Settings {
    /// Starts `server` on a runtime of its own, drives it with wrk, stops it.
    fn run(&self, server: Server, script: &Path, seconds: u64) -> Measured {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let addr = runtime.block_on(start(server));
        let cpu_before = process_cpu_seconds();
        let output = Command::new("wrk")
            .args(["-t2", &format!("-c{}", self.connections)])
            .arg(format!("-d{seconds}s"))
            .arg("--latency")
            .arg("-s")
            .arg(script)
            .arg(format!("http://{addr}"))
            .output()
            .expect("wrk runs");
        let cpu = process_cpu_seconds() - cpu_before;
        // Stops the accept loop and every connection task.
        runtime.shutdown_timeout(Duration::from_secs(1));
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && !text.contains("Non-2xx"),
            "wrk failed or saw errors:\n{text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut measured = parse_wrk(&text);
        measured.cpu_us_per_request = cpu * 1e6 / (measured.requests_per_second * seconds as f64);
        measured
    }
}

async fn start(server: Server) -> SocketAddr {
    match server {
        Server::Bare(body) => {
            serve(service_fn(move |_request: Request<Incoming>| {
                let body = body.clone();
                async move {
                    let mut response = Response::new(Full::new(body));
                    response.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, Infallible>(response)
                }
            }))
            .await
        }
        Server::Pull(layer) => serve(layer.layer(service_fn(not_found))).await,
    }
}

fn path_for(token: &str) -> String {
    // Base64url and dots need no escaping in a query.
    format!("/livefyre/pull?id=u1&lftoken={token}")
}

/// A wrk script cycling through `paths`, one per request.
fn write_script(file: &Path, paths: &[String]) {
    let mut lua = String::from("local paths = {\n");
    for path in paths {
        lua.push_str(&format!("  \"{path}\",\n"));
    }
    lua.push_str(
        "}\nlocal i = 0\nrequest = function()\n  i = i % #paths + 1\n  return wrk.format(\"GET\", paths[i])\nend\n",
    );
    std::fs::write(file, lua).expect("write the wrk script");
}

fn parse_wrk(text: &str) -> Measured {
    let mut measured = Measured {
        requests_per_second: f64::NAN,
        cpu_us_per_request: f64::NAN,
        p50_us: f64::NAN,
        p99_us: f64::NAN,
    };
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(value)) => {
                measured.requests_per_second = value.parse().unwrap_or(f64::NAN);
            }
            (Some("50%"), Some(value)) => measured.p50_us = micros(value),
            (Some("99%"), Some(value)) => measured.p99_us = micros(value),
            _ => {}
        }
    }
    measured
}

/// wrk's durations: `812.00us`, `1.23ms`, `2.00s`.
fn micros(value: &str) -> f64 {
    let split = value
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => number,
        "ms" => number * 1e3,
        "s" => number * 1e6,
        _ => f64::NAN,
    }
}

fn report(name: &str, bare: &[Measured], pull: &[Measured]) {
    println!("\n{name}");
    println!(
        "  {:<6} {:>12} {:>12} {:>12} {:>10} {:>10} {:>12}",
        "server", "req/s med", "req/s min", "req/s max", "p50 µs", "p99 µs", "CPU µs/req"
    );
    for (label, runs) in [("bare", bare), ("pull", pull)] {
        let rps: Vec<f64> = runs.iter().map(|m| m.requests_per_second).collect();
        let p50: Vec<f64> = runs.iter().map(|m| m.p50_us).collect();
        let p99: Vec<f64> = runs.iter().map(|m| m.p99_us).collect();
        let cpu: Vec<f64> = runs.iter().map(|m| m.cpu_us_per_request).collect();
        println!(
            "  {label:<6} {:>12.0} {:>12.0} {:>12.0} {:>10.0} {:>10.0} {:>12.1}",
            median(&rps),
            min(&rps),
            max(&rps),
            median(&p50),
            median(&p99),
            median(&cpu)
        );
    }
    let pairs: Vec<f64> = bare
        .iter()
        .zip(pull)
        .map(|(b, p)| p.requests_per_second / b.requests_per_second)
        .collect();
    println!(
        "  ratio pull/bare: median of runs {:.3} (per pair min {:.3}, max {:.3})",
        ratio_of_medians(bare, pull),
        min(&pairs),
        max(&pairs)
    );
}

fn ratio_of_medians(bare: &[Measured], pull: &[Measured]) -> f64 {
    let bare: Vec<f64> = bare.iter().map(|m| m.requests_per_second).collect();
    let pull: Vec<f64> = pull.iter().map(|m| m.requests_per_second).collect();
    median(&pull) / median(&bare)
}

/// User + system CPU time of this process so far, from /proc (Linux; NaN elsewhere).
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    // The kernel reports in USER_HZ, 100 on Linux.
    ticks / 100.0
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pingpull-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}
