//! Leases after a crash: a worker process killed with SIGKILL while it holds users, and a
//! worker that loses its database mid-attempt. Each test works in its own schema
//! ([`TestDb`]), dropped afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pingpull::outbox::OutboxWorker;
use tokio::time::Instant;

use super::worker::{Workers, network};
use crate::support::database::TestDb;
use crate::support::fake_livefyre::{FakeLivefyre, Reply};

impl TestDb {
    /// Rows whose lease `owner` holds now, by the database's clock.
    async fn held_by(&self, owner: &str) -> i64 {
        let sql = format!(
            "SELECT count(*) FROM {} WHERE lease_owner = $1 AND lease_until > now()",
            self.table.qualified_name()
        );
        sqlx::query_scalar(&sql)
            .bind(owner)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

/// Polls `done` every 20 ms until it holds, failing after `within`.
async fn until(within: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A Livefyre that holds every ping (past any attempt timeout) until `answering` is set,
/// then answers 200 at once.
async fn livefyre_held_until(answering: &Arc<AtomicBool>) -> FakeLivefyre {
    let answering = answering.clone();
    FakeLivefyre::with_script(move |_| {
        if answering.load(Ordering::SeqCst) {
            Reply::status(200)
        } else {
            Reply::status(200).after(Duration::from_secs(600))
        }
    })
    .await
}

fn quantiles(mut seconds: Vec<f64>) -> String {
    seconds.sort_by(f64::total_cmp);
    let at = |q: f64| seconds[((seconds.len() - 1) as f64 * q).round() as usize];
    format!(
        "min {:.1} s, median {:.1} s, 90% {:.1} s, max {:.1} s",
        at(0.0),
        at(0.5),
        at(0.9),
        at(1.0)
    )
}

/// Not a test: how long after its commit a user held by a killed worker is pinged, with
/// every setting at its default. Run by hand:
/// `cargo test --all-features --test it -- outbox::leases::measure --ignored --nocapture`
/// (`PINGPULL_MEASURE_USERS`, default 100, users claimed by the worker that is killed;
/// `PINGPULL_MEASURE_KILL_AFTER_MS`, default 0, how long after it claimed them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn measure_commit_to_ping_after_a_killed_worker() {
    let users: usize = std::env::var("PINGPULL_MEASURE_USERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let kill_after = std::env::var("PINGPULL_MEASURE_KILL_AFTER_MS")
        .ok()
        .and_then(|n| n.parse().ok())
        .map_or(Duration::ZERO, Duration::from_millis);
    let db = TestDb::new().await;
    let answering = Arc::new(AtomicBool::new(false));
    let server = livefyre_held_until(&answering).await;
    let mut workers = Workers::new(&db, &server);
    for (name, value) in [
        ("PINGPULL_OUTBOX_LEASE_MS", "default"),
        ("PINGPULL_OUTBOX_ATTEMPT_TIMEOUT_MS", "default"),
        ("PINGPULL_OUTBOX_CONCURRENCY", "default"),
        ("PINGPULL_OUTBOX_OWNER", "victim"),
    ] {
        workers.env.push((name, value.to_owned()));
    }
    // One transaction, so that the worker's first claim takes them all: a few in flight,
    // the rest ahead of its free slots.
    let names: Vec<String> = (0..users).map(|i| format!("u{i:04}")).collect();
    let mut tx = db.pool.begin().await.unwrap();
    for user in &names {
        db.table.enqueue(&mut *tx, user).await.unwrap();
    }
    tx.commit().await.unwrap();
    let at = Instant::now();
    let committed: Vec<(String, Instant)> = names.into_iter().map(|user| (user, at)).collect();
    let victim = workers.start();
    workers.children.push(victim);
    until(Duration::from_secs(30), "every user claimed", async || {
        db.held_by("victim").await == users as i64
    })
    .await;
    tokio::time::sleep(kill_after).await;
    let _ = workers.children[0].kill();
    let _ = workers.children[0].wait();
    let killed = Instant::now();
    answering.store(true, Ordering::SeqCst);
    let rescuer = OutboxWorker::builder(network(), db.pool.clone(), db.table.clone())
        .base_url(server.base_url())
        .spawn()
        .unwrap();
    let pinged_after_kill = |user: &str| {
        server
            .pings_for(user)
            .into_iter()
            .find(|ping| ping.at > killed)
            .map(|ping| ping.at)
    };
    until(
        Duration::from_secs(300),
        "every user pinged again",
        async || {
            committed
                .iter()
                .all(|(user, _)| pinged_after_kill(user).is_some())
        },
    )
    .await;
    let (from_commit, from_kill): (Vec<f64>, Vec<f64>) = committed
        .iter()
        .map(|(user, at)| {
            let pinged = pinged_after_kill(user).unwrap();
            (
                (pinged - *at).as_secs_f64(),
                (pinged - killed).as_secs_f64(),
            )
        })
        .unzip();
    println!(
        "{users} users held by a worker killed {:.1} s after the first commit:\n  commit to ping: {}\n  kill to ping:   {}",
        (killed - committed[0].1).as_secs_f64(),
        quantiles(from_commit),
        quantiles(from_kill)
    );
    rescuer.shutdown(Duration::from_secs(5)).await;
}
