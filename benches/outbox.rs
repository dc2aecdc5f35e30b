//! Delivery throughput, in one run: the in-memory Pinger against the PostgreSQL outbox,
//! both sending to the same fast local server (answers 200 at once) on 127.0.0.1.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench outbox
//! ```
//!
//! Prints the median users delivered per second over a few rounds of each (rounds
//! alternate, so a busy machine slows both alike; a first round of each is not counted),
//! with their range, the outbox's ratio to the Pinger, and the CPU each took per user, in
//! this process and (when it runs on this machine) in PostgreSQL. The outbox's table is
//! vacuumed after each of its rounds, outside the timing (autovacuum would otherwise run
//! during the next Pinger round), and that CPU is reported apart. Without DATABASE_URL it
//! says so and measures only the Pinger. It works in a schema of its own and drops it.
//! For the statements' latency with a million rows waiting, see
//! `benches/outbox_million.rs`.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper_util::rt::TokioIo;
use pingpull::Network;
use pingpull::outbox::{OutboxTable, OutboxWorker};
use pingpull::ping::Pinger;
use sqlx::PgPool;

#[path = "load_support/cpu.rs"]
mod cpu;

use cpu::{postgres_cpu_seconds, process_cpu_seconds};

const USERS: usize = 10_000;
const ROUNDS: usize = 5;
const CONCURRENCY: usize = 16;

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

/// A Livefyre that answers 200 to everything, at once.
async fn fast_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_request| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

fn median(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One round: users delivered per second, and CPU per user in this process (client and
/// the fast server) and in PostgreSQL, in microseconds.
struct Round {
    users_per_second: f64,
    process_cpu_us: f64,
    postgres_cpu_us: f64,
}

/// Measures one round of `deliver`, which returns how long delivery took.
async fn measure(deliver: impl Future<Output = Duration>) -> Round {
    let (process_before, postgres_before) = (process_cpu_seconds(), postgres_cpu_seconds());
    let elapsed = deliver.await;
    let per_user = |seconds: f64| seconds * 1e6 / USERS as f64;
    Round {
        users_per_second: USERS as f64 / elapsed.as_secs_f64(),
        process_cpu_us: per_user(process_cpu_seconds() - process_before),
        postgres_cpu_us: per_user(postgres_cpu_seconds() - postgres_before),
    }
}

/// The median and the range of a run's rounds, in users per second, and the median CPU
/// per user.
fn summary(name: &str, rounds: &[Round]) -> String {
    let rates = rates(rounds);
    let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let max = rates.iter().copied().fold(0.0, f64::max);
    let process: Vec<f64> = rounds.iter().map(|r| r.process_cpu_us).collect();
    let postgres: Vec<f64> = rounds.iter().map(|r| r.postgres_cpu_us).collect();
    format!(
        "{name}: median {:.0} users/s (min {min:.0}, max {max:.0}; {USERS} users, concurrency {CONCURRENCY}, {ROUNDS} rounds); \
         CPU per user: {:.1} µs in this process, {:.1} µs in PostgreSQL",
        median(&rates),
        median(&process),
        median(&postgres),
    )
}

async fn pinger_round(base_url: &str, round: usize) -> Duration {
    let pinger = Pinger::builder(network())
        .base_url(base_url)
        .concurrency(CONCURRENCY)
        .spawn()
        .unwrap();
    let start = Instant::now();
    for i in 0..USERS {
        pinger.ping(&format!("r{round}u{i}")).unwrap();
    }
    while pinger.stats().succeeded < USERS as u64 {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let elapsed = start.elapsed();
    pinger.shutdown(Duration::from_secs(1)).await;
    elapsed
}

/// Commits a change for each of this round's users, before the worker starts: the round
/// measures delivery only.
async fn fill_outbox(pool: &PgPool, table: &OutboxTable, round: usize) {
    let mut tx = pool.begin().await.unwrap();
    for i in 0..USERS {
        table
            .enqueue(&mut *tx, &format!("r{round}u{i}"))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

async fn outbox_round(pool: &PgPool, table: &OutboxTable, base_url: &str) -> Duration {
    let start = Instant::now();
    let worker = OutboxWorker::builder(network(), pool.clone(), table.clone())
        .base_url(base_url)
        .concurrency(CONCURRENCY)
        .poll_every(Duration::from_millis(10))
        .spawn()
        .unwrap();
    while worker.stats().succeeded < USERS as u64 {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let elapsed = start.elapsed();
    worker.shutdown(Duration::from_secs(1)).await;
    assert_eq!(table.pending(pool).await.unwrap(), 0);
    elapsed
}

/// Vacuums the table a round emptied, outside the timed rounds: autovacuum would
/// otherwise clean up after an outbox round during the next Pinger round. Returns the CPU
/// it took in PostgreSQL, per user of the round, in microseconds.
async fn vacuum(pool: &PgPool, table: &OutboxTable) -> f64 {
    let before = postgres_cpu_seconds();
    let sql = format!("VACUUM {}", table.qualified_name());
    sqlx::raw_sql(&sql).execute(pool).await.unwrap();
    (postgres_cpu_seconds() - before) * 1e6 / USERS as f64
}

fn rates(rounds: &[Round]) -> Vec<f64> {
    rounds.iter().map(|r| r.users_per_second).collect()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let base_url = fast_server().await;
        let outbox = match std::env::var("DATABASE_URL") {
            Ok(url) => {
                let pool = PgPool::connect(&url).await.unwrap();
                let schema = format!("pingpull_bench_{}", std::process::id());
                let table = OutboxTable::new(&schema, "outbox").unwrap();
                table.create(&pool).await.unwrap();
                Some((pool, schema, table))
            }
            Err(_) => None,
        };
        // A round of each first, not counted: the first connections, allocations and
        // (in PostgreSQL) pages of a run are slower than the rest.
        pinger_round(&base_url, ROUNDS).await;
        if let Some((pool, _, table)) = &outbox {
            fill_outbox(pool, table, ROUNDS).await;
            outbox_round(pool, table, &base_url).await;
        }
        let (mut pinger, mut queued, mut vacuums) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            pinger.push(measure(pinger_round(&base_url, round)).await);
            if let Some((pool, _, table)) = &outbox {
                fill_outbox(pool, table, round).await;
                queued.push(measure(outbox_round(pool, table, &base_url)).await);
                vacuums.push(vacuum(pool, table).await);
            }
        }
        println!("{}", summary("in-memory Pinger", &pinger));
        let Some((pool, schema, _)) = outbox else {
            println!("outbox: skipped (set DATABASE_URL to measure it)");
            return;
        };
        sqlx::raw_sql(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(&pool)
            .await
            .unwrap();
        println!(
            "{}; VACUUM after each round (not timed): {:.1} µs per user in PostgreSQL",
            summary("PostgreSQL outbox", &queued),
            median(&vacuums)
        );
        let ratios: Vec<f64> = queued
            .iter()
            .zip(&pinger)
            .map(|(o, p)| o.users_per_second / p.users_per_second)
            .collect();
        let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let max = ratios.iter().copied().fold(0.0, f64::max);
        println!(
            "outbox / Pinger: {:.2}x of the medians (round by round {min:.2}x to {max:.2}x)",
            median(&rates(&queued)) / median(&rates(&pinger))
        );
    });
}
