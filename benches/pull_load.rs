//! Load benchmark of the Pull endpoint against the endpoint a user would write by hand,
//! and against a bare hyper server answering the same bytes.
//!
//! ```sh
//! apt-get install -y wrk           # the load generator, from Debian's packages (as root)
//! cargo bench --bench pull_load
//! LOAD_RUNS=3 LOAD_SECONDS=2 cargo bench --bench pull_load    # a quick look
//! ```
//!
//! Every server is the same hyper 1 HTTP/1.1 server on a 2-worker tokio runtime, bound
//! to 127.0.0.1 on a port of its own, answering the same profile (the examples' `u1`):
//! - `bare`: a service that returns the rendered bytes, checking nothing;
//! - `hand`: hyper + `jsonwebtoken`, decoding and validating the `lftoken` JWT on every
//!   request and answering the rendered bytes unsigned (benches/load_support/hand_written.rs);
//! - `pull`: [`PullLayer`] over an [`InMemorySource`], signing on, as in `examples/hyper.rs`;
//! - `pull-db`: [`PullLayer`] over a source that builds the profile anew on every pull,
//!   as one reading a database does, so each pull validates, renders and signs it.
//!
//! The `pull` servers are driven with one token repeated (the verified-token cache hits)
//! and with 10,000 distinct valid tokens in turn (every request verifies an HMAC; the
//! cache holds 64); `hand` with both too, since it decodes every token either way.
//! A round runs every case once, for `LOAD_SECONDS` each (`wrk -t2 -c64`); `LOAD_RUNS`
//! rounds alternate so drift on a shared machine falls on every case alike. Reported:
//! medians and min–max of requests/s, the ratio of medians to `hand` and to `bare`, and
//! the CPU time of the bench process per request: the server's two worker threads plus
//! this process's idle main thread (it waits for wrk); wrk's own CPU is not counted.
//! Then, for each case compared with `hand`, the ratio taken within each round (median
//! and range), and its baseline's CPU per request over its own.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use pingpull::pull::{InMemorySource, PullLayer, source_fn};
use pingpull::{BoxError, Network, Profile, token};
use tower::{Layer, service_fn};

#[allow(dead_code, unused_imports)] // only the demo users are needed here
#[path = "../examples/common/mod.rs"]
mod common;
#[allow(dead_code)] // each load benchmark uses part of it
mod load_support;

use load_support::cpu::process_cpu_seconds;
use load_support::hand_written::{self, HandWritten};
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
    // `LOAD_ONLY=pull` (a case's name) drives that case only, for profiling it.
    let only = std::env::var("LOAD_ONLY").ok();
    let work = tempdir();

    let network = Network::new("example.fyre.co", "testkeytest").expect("a valid network");
    let profile = common::demo_users().get("u1").expect("demo user u1");
    let body = Bytes::from(profile.to_json());
    let scripts = Scripts::write(&work, &network);
    let cases = cases(&network, profile, body.clone(), &scripts);
    let cases: Vec<Case> = cases
        .into_iter()
        .filter(|case| only.as_deref().is_none_or(|only| case.name == only))
        .collect();

    println!(
        "pull_load: {runs} rounds of {seconds} s per case, wrk -t2 -c{connections}, body {} bytes, {} cores",
        body.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let settings = Settings { connections };
    // Warm every server's code paths and the kernel before measuring.
    for case in &cases {
        settings.run(case, 1);
    }
    let mut measured: Vec<Vec<Measured>> = vec![Vec::new(); cases.len()];
    for round in 0..runs {
        // Rotate the order, so no case always runs right after the same one.
        for step in 0..cases.len() {
            let index = (step + round as usize) % cases.len();
            measured[index].push(settings.run(&cases[index], seconds));
        }
    }
    report(&cases, &measured);
    let _ = std::fs::remove_dir_all(&work);
}

/// The wrk scripts: one token repeated, or distinct tokens in turn.
struct Scripts {
    repeated: PathBuf,
    fresh: PathBuf,
}

impl Scripts {
    fn write(work: &Path, network: &Network) -> Self {
        let now = SystemTime::now();
        let one_token = token::system_token_at(network, now, token::SYSTEM_TOKEN_LIFETIME);
        let repeated = work.join("repeated.lua");
        write_script(&repeated, &[path_for(one_token.as_str())]);
        let fresh = work.join("fresh.lua");
        let paths: Vec<String> = (0..DISTINCT_TOKENS)
            .map(|n| {
                let lifetime = token::SYSTEM_TOKEN_LIFETIME + Duration::from_secs(n);
                path_for(token::system_token_at(network, now, lifetime).as_str())
            })
            .collect();
        write_script(&fresh, &paths);
        Self { repeated, fresh }
    }
}

/// One server and one script, measured every round.
struct Case {
    name: &'static str,
    server: Server,
    script: PathBuf,
    /// The case its requests/s is compared with (same script).
    baseline: Option<&'static str>,
}

#[derive(Clone)]
enum Server {
    Bare(Bytes),
    HandWritten(Arc<HandWritten>),
    Pull(PullLayer),
}

fn cases(network: &Network, profile: Profile, body: Bytes, scripts: &Scripts) -> Vec<Case> {
    let hand = Arc::new(HandWritten::new(
        network.name(),
        network.key().as_bytes(),
        HashMap::from([(profile.id.clone(), body.clone())]),
    ));
    let users = InMemorySource::new();
    let _ = users.insert(profile.clone());
    let template = "/livefyre/pull?id={id}";
    let pull = PullLayer::new(template, network.clone(), users).expect("a valid template");
    // As a database-backed source: a new profile built for every pull.
    let database = source_fn(move |user_id: String| {
        let profile = profile.clone();
        async move { Ok::<_, BoxError>((user_id == profile.id).then_some(profile)) }
    });
    let pull_db = PullLayer::new(template, network.clone(), database).expect("a valid template");
    let case = |name, server, script: &PathBuf, baseline| Case {
        name,
        server,
        script: script.clone(),
        baseline,
    };
    vec![
        case("bare", Server::Bare(body), &scripts.repeated, None),
        case(
            "hand",
            Server::HandWritten(hand.clone()),
            &scripts.repeated,
            None,
        ),
        case(
            "pull",
            Server::Pull(pull.clone()),
            &scripts.repeated,
            Some("hand"),
        ),
        case(
            "pull-db",
            Server::Pull(pull_db),
            &scripts.repeated,
            Some("hand"),
        ),
        case(
            "hand-fresh",
            Server::HandWritten(hand),
            &scripts.fresh,
            None,
        ),
        case(
            "pull-fresh",
            Server::Pull(pull),
            &scripts.fresh,
            Some("hand-fresh"),
        ),
    ]
}

struct Settings {
    connections: u64,
}

/// What one wrk run measured.
#[derive(Debug, Clone, Copy)]
struct Measured {
    requests_per_second: f64,
    /// CPU time of this process (the server) per request (user + system).
    cpu_us_per_request: f64,
    p50_us: f64,
    p99_us: f64,
}

impl Settings {
    /// Starts the case's server on a runtime of its own, drives it with wrk, stops it.
    fn run(&self, case: &Case, seconds: u64) -> Measured {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let addr = runtime.block_on(start(case.server.clone()));
        let cpu_before = process_cpu_seconds();
        let output = Command::new("wrk")
            .args(["-t2", &format!("-c{}", self.connections)])
            .arg(format!("-d{seconds}s"))
            .arg("--latency")
            .arg("-s")
            .arg(&case.script)
            .arg(format!("http://{addr}"))
            .output()
            .expect("wrk runs");
        let cpu = process_cpu_seconds() - cpu_before;
        // Stops the accept loop and every connection task.
        runtime.shutdown_timeout(Duration::from_secs(1));
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && !text.contains("Non-2xx"),
            "wrk failed or saw errors for {}:\n{text}\n{}",
            case.name,
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
        Server::HandWritten(endpoint) => serve(hand_written::service(endpoint)).await,
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

fn report(cases: &[Case], measured: &[Vec<Measured>]) {
    let rps = |index: usize| -> Vec<f64> {
        measured[index]
            .iter()
            .map(|m| m.requests_per_second)
            .collect()
    };
    let median_of = |name: &str| {
        cases
            .iter()
            .position(|case| case.name == name)
            .map_or(f64::NAN, |index| median(&rps(index)))
    };
    let bare = median_of("bare");
    println!(
        "\n  {:<11} {:>10} {:>10} {:>10} {:>8} {:>8} {:>11} {:>9} {:>9}",
        "case", "req/s med", "min", "max", "p50 µs", "p99 µs", "CPU µs/req", "/hand", "/bare"
    );
    for (index, case) in cases.iter().enumerate() {
        let runs = &measured[index];
        let rps = rps(index);
        let p50: Vec<f64> = runs.iter().map(|m| m.p50_us).collect();
        let p99: Vec<f64> = runs.iter().map(|m| m.p99_us).collect();
        let cpu: Vec<f64> = runs.iter().map(|m| m.cpu_us_per_request).collect();
        let to_hand = case.baseline.map_or(String::from("-"), |name| {
            format!("{:.3}", median(&rps) / median_of(name))
        });
        println!(
            "  {:<11} {:>10.0} {:>10.0} {:>10.0} {:>8.0} {:>8.0} {:>11.1} {:>9} {:>9.3}",
            case.name,
            median(&rps),
            min(&rps),
            max(&rps),
            median(&p50),
            median(&p99),
            median(&cpu),
            to_hand,
            median(&rps) / bare
        );
    }
    println!(
        "  /hand: ratio of medians to the hand-written endpoint with the same tokens \
         (pull, pull-db: hand; pull-fresh: hand-fresh)"
    );
    // The same ratio taken within each round (the two cases ran minutes apart at most),
    // which drift between rounds moves less, and how much cheaper in CPU per request.
    println!(
        "\n  {:<11} {:>24} {:>16}",
        "case", "/hand round by round", "CPU: hand / case"
    );
    for (index, case) in cases.iter().enumerate() {
        let Some(base) = case
            .baseline
            .and_then(|name| cases.iter().position(|c| c.name == name))
        else {
            continue;
        };
        let per_round: Vec<f64> = measured[index]
            .iter()
            .zip(&measured[base])
            .map(|(m, b)| m.requests_per_second / b.requests_per_second)
            .collect();
        let cpu = |runs: &[Measured]| -> f64 {
            median(
                &runs
                    .iter()
                    .map(|m| m.cpu_us_per_request)
                    .collect::<Vec<_>>(),
            )
        };
        println!(
            "  {:<11} {:>24} {:>16.3}",
            case.name,
            format!(
                "{:.3} ({:.3}-{:.3})",
                median(&per_round),
                min(&per_round),
                max(&per_round)
            ),
            cpu(&measured[base]) / cpu(&measured[index])
        );
    }
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pingpull-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}
