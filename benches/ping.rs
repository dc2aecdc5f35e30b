//! The cost of `Pinger::ping` for a user already pending and for a new user, its
//! allocations, and the memory each pending user takes.
//!
//! ```sh
//! cargo bench --bench ping
//! # with metrics: handles without a recorder, and with a Prometheus recorder installed
//! cargo bench --bench ping --features metrics -- ping_pending_user
//! ```

use std::time::Duration;

use divan::AllocProfiler;
use pingpull::Network;
use pingpull::ping::Pinger;

// Counts allocations per iteration ("no allocation" for a pending user shows here).
#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A Pinger that never sends: a one-hour debounce keeps every user pending.
fn idle_pinger(max_pending: usize) -> Pinger {
    Pinger::builder(Network::new("example.fyre.co", "testkeytest").unwrap())
        .base_url("http://127.0.0.1:9")
        .debounce(Duration::from_secs(3600))
        .max_pending(max_pending)
        .spawn()
        .unwrap()
}

fn main() {
    memory_per_pending_user();
    divan::main();
}

/// Resident memory per pending user: the process's RSS before and after 1 000 000
/// users with 8-byte ids are pending (allocator overhead included).
fn memory_per_pending_user() {
    let runtime = runtime();
    let _guard = runtime.enter();
    const USERS: usize = 1_000_000;
    let ids: Vec<String> = (0..USERS).map(|i| format!("u{i:07}")).collect();
    let pinger = idle_pinger(USERS);
    let before = resident_bytes();
    for id in &ids {
        pinger.ping(id).unwrap();
    }
    let after = resident_bytes();
    match (before, after) {
        (Some(before), Some(after)) => {
            let per_user = after.saturating_sub(before) as f64 / USERS as f64;
            println!(
                "memory per pending user: {per_user:.1} bytes resident ({:.1} + the id's 8 bytes), {USERS} users",
                per_user - 8.0
            );
        }
        _ => println!("memory per pending user: /proc/self/statm not readable here"),
    }
}

/// Resident set size from /proc (Linux).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[divan::bench]
fn ping_pending_user(bencher: divan::Bencher<'_, '_>) {
    let runtime = runtime();
    let _guard = runtime.enter();
    let pinger = idle_pinger(10);
    pinger.ping("user-42").unwrap();
    bencher.bench_local(|| pinger.ping(divan::black_box("user-42")).unwrap());
}

/// As `ping_pending_user`, with a Prometheus recorder installed before the spawn: each
/// call also adds one to `pingpull_pings_total{result="coalesced"}`.
#[cfg(feature = "metrics")]
#[divan::bench]
fn ping_pending_user_recorded(bencher: divan::Bencher<'_, '_>) {
    let runtime = runtime();
    let _guard = runtime.enter();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let pinger = metrics::with_local_recorder(&recorder, || idle_pinger(10));
    pinger.ping("user-42").unwrap();
    bencher.bench_local(|| pinger.ping(divan::black_box("user-42")).unwrap());
    assert!(recorder.handle().render().contains("pingpull_pings_total"));
}

#[divan::bench(sample_count = 100, sample_size = 1000)]
fn ping_new_user(bencher: divan::Bencher<'_, '_>) {
    let runtime = runtime();
    let _guard = runtime.enter();
    // The largest pending bound the Pinger takes: every user the bench makes stays pending.
    let pinger = idle_pinger(u32::MAX as usize);
    let mut next = 0u64;
    bencher
        .with_inputs(|| {
            next += 1;
            format!("user-{next}")
        })
        .bench_local_refs(|id| pinger.ping(id).unwrap());
}

/// `Pinger::health()` with 100,000 users pending: it scans the pending set for the oldest.
#[divan::bench(sample_count = 20, sample_size = 1)]
fn health_with_100k_pending_users(bencher: divan::Bencher<'_, '_>) {
    let runtime = runtime();
    let _guard = runtime.enter();
    let pinger = idle_pinger(100_000);
    for i in 0..100_000 {
        pinger.ping(&format!("user-{i}")).unwrap();
    }
    bencher.bench_local(|| divan::black_box(pinger.health()));
}

/// Coalescing: 1,000,000 pings spread over 10,000 users, all pending at once.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn coalesce_1m_pings_over_10k_users(bencher: divan::Bencher<'_, '_>) {
    let runtime = runtime();
    let _guard = runtime.enter();
    let ids: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();
    bencher
        .with_inputs(|| idle_pinger(10_000))
        .bench_local_values(|pinger| {
            for round in 0..100 {
                for id in &ids {
                    pinger.ping(divan::black_box(id)).unwrap();
                }
                divan::black_box(round);
            }
            assert_eq!(pinger.stats().pending, 10_000);
            pinger
        });
}
