//! Load benchmark of ping delivery into the emulator: throughput and ping-to-profile latency.
//!
//! ```sh
//! cargo bench --bench ping_load
//! ```
//!
//! Everything runs in this process on one 2-worker tokio runtime, over 127.0.0.1:
//! - throughput: a Pinger pings `PING_USERS` distinct users (default 50,000) as fast
//!   as `ping` returns; the emulator (no Pull URL, so it only records pings) answers.
//!   Pings per second = users / time until the Pinger's `succeeded` reaches them all.
//! - latency: a Pull endpoint (the layer, in-memory source, served by hyper) is
//!   registered with the emulator; `P6_RATE` new users per second (default 1,000) are
//!   pinged for `P6_SECONDS` (default 10); for each, the time from `ping()` to the
//!   emulator storing the pulled profile. Percentiles over all users.
//!
//! `LOAD_RUNS` (default 3) runs of each; medians and min–max are printed.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pingpull::Network;
use pingpull::emulator::Emulator;
use pingpull::ping::Pinger;
use pingpull::pull::{InMemorySource, PullLayer};
use tower::{Layer, service_fn};

#[allow(dead_code, unused_imports)] // only the demo users are needed here
#[path = "../examples/common/mod.rs"]
mod common;
#[allow(dead_code)] // each load benchmark uses part of it
mod load_support;

use load_support::{env_number, max, median, min, not_found, percentile, serve};

fn main() {
    let runs = env_number("LOAD_RUNS", 3);
    let users = env_number("PING_USERS", 50_000);
    let concurrency = env_number("PING_CONCURRENCY", 32);
    let rate = env_number("P6_RATE", 1_000);
    let seconds = env_number("P6_SECONDS", 10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    println!(
        "ping_load: {runs} runs; throughput {users} users, Pinger concurrency {concurrency}; latency {rate} users/s for {seconds} s"
    );

    let mut throughputs = Vec::new();
    for run in 0..runs {
        let per_second = runtime.block_on(throughput(run, users, concurrency));
        println!("  throughput run {run}: {per_second:.0} pings/s delivered");
        throughputs.push(per_second);
    }
    let mut p99s = Vec::new();
    for run in 0..runs {
        let latencies = runtime.block_on(latency(run, rate, seconds, concurrency));
        let (p50, p99, max) = (
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            percentile(&latencies, 1.0),
        );
        println!(
            "  latency run {run}: {} users, ping → remote profile p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms",
            latencies.len()
        );
        p99s.push(p99);
    }
    println!(
        "throughput: median {:.0} pings/s (min {:.0}, max {:.0})",
        median(&throughputs),
        min(&throughputs),
        max(&throughputs)
    );
    println!(
        "latency: median p99 {:.2} ms (min {:.2}, max {:.2})",
        median(&p99s),
        min(&p99s),
        max(&p99s)
    );
    runtime.shutdown_timeout(Duration::from_secs(1));
}

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").expect("a valid network")
}

/// Throughput: distinct users pinged at once; seconds until every one was answered 2xx.
async fn throughput(run: u64, users: u64, concurrency: u64) -> f64 {
    let emulator = Emulator::builder(network())
        .max_queue(usize::try_from(users).unwrap_or(usize::MAX) + 1)
        .start()
        .await
        .expect("the emulator starts");
    let pinger = Pinger::builder(network())
        .base_url(emulator.base_url())
        .concurrency(usize::try_from(concurrency).unwrap_or(8))
        .max_pending(usize::try_from(users).unwrap_or(usize::MAX))
        .spawn()
        .expect("the Pinger starts");
    let ids: Vec<String> = (0..users).map(|n| format!("tp-{run}-{n}")).collect();
    let started = Instant::now();
    for id in &ids {
        pinger.ping(id).expect("room for every user");
    }
    while pinger.stats().succeeded < users {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    let stats = pinger.stats();
    assert_eq!(stats.given_up, 0, "no user may be given up: {stats:?}");
    assert_eq!(emulator.pings_received(&ids[0]), 1);
    let _ = pinger.shutdown(Duration::from_secs(1)).await;
    users as f64 / elapsed.as_secs_f64()
}

/// Latency: `rate` new users per second for `seconds`; ping → profile stored, in ms.
async fn latency(run: u64, rate: u64, seconds: u64, concurrency: u64) -> Vec<f64> {
    let total = rate * seconds;
    let ids: Vec<String> = (0..total).map(|n| format!("lat-{run}-{n}")).collect();
    // The examples' full profile, under each id.
    let template = common::demo_users().get("u1").expect("demo user u1");
    let users: InMemorySource = ids
        .iter()
        .map(|id| {
            let mut profile = template.clone();
            profile.id.clone_from(id);
            profile
        })
        .collect();
    let layer = PullLayer::new("/livefyre/pull?id={id}", network(), users).expect("a template");
    let pull_addr = serve(layer.layer(service_fn(not_found))).await;
    let emulator = Emulator::builder(network())
        .pull_url(&format!("http://{pull_addr}/livefyre/pull?id={{id}}"))
        .expect("an absolute template")
        .pull_concurrency(usize::try_from(concurrency).unwrap_or(8))
        .start()
        .await
        .expect("the emulator starts");
    let pinger = Pinger::builder(network())
        .base_url(emulator.base_url())
        .concurrency(usize::try_from(concurrency).unwrap_or(8))
        .spawn()
        .expect("the Pinger starts");

    let mut pinged_at = Vec::with_capacity(ids.len());
    let mut tick =
        tokio::time::interval(Duration::from_secs(1) / u32::try_from(rate).unwrap_or(1000));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for id in &ids {
        tick.tick().await;
        pinged_at.push(unix_seconds(SystemTime::now()));
        pinger.ping(id).expect("room for every user");
    }
    let mut latencies = Vec::with_capacity(ids.len());
    for (id, pinged) in ids.iter().zip(pinged_at) {
        emulator
            .wait_for_profile(id, Duration::from_secs(30), |_| true)
            .await
            .expect("every profile arrives");
        let updated = emulator
            .user(id)
            .and_then(|user| user.updated_at)
            .expect("a stored profile has a time");
        latencies.push((updated - pinged) * 1e3);
    }
    let _ = pinger.shutdown(Duration::from_secs(1)).await;
    latencies.sort_by(f64::total_cmp);
    latencies
}

fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}
