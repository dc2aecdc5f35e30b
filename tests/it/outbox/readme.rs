//! docs/outbox.md's claims about the outbox that `worker.rs` does not check: 403 probing,
//! a permanent 4xx giving the user up with its row deleted, polling while no
//! notification arrives, and a shutdown report naming what was not delivered. Each test
//! works in a fresh schema of the test database, dropped afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pingpull::Network;
use pingpull::outbox::{OutboxWorker, OutboxWorkerBuilder};
use pingpull::ping::{Failure, PingEvent, RetrySchedule};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::support::database::TestDb;
use crate::support::fake_livefyre::{FakeLivefyre, Reply};

impl TestDb {
    fn worker(&self, server: &FakeLivefyre) -> OutboxWorkerBuilder {
        OutboxWorker::builder(network(), self.pool.clone(), self.table.clone())
            .base_url(server.base_url())
            .attempt_timeout(Duration::from_secs(5))
            .retry_schedule(RetrySchedule::new([Duration::from_millis(100)]).jitter(0.0))
    }
}

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

async fn until(within: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn next_event(events: &mut broadcast::Receiver<PingEvent>) -> PingEvent {
    tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("an event within 10 s")
        .unwrap()
}

/// A 403 pauses delivery: rows are kept, one probe per `probe_every` is sent, and once
/// a probe is accepted every held user is delivered and its row deleted.
#[tokio::test]
async fn a_403_keeps_the_rows_and_probes_until_accepted() {
    let db = TestDb::new().await;
    let accepted = Arc::new(AtomicBool::new(false));
    let server = FakeLivefyre::with_script({
        let accepted = accepted.clone();
        move |_| {
            Reply::status(if accepted.load(Ordering::SeqCst) {
                200
            } else {
                403
            })
        }
    })
    .await;
    for user in ["u1", "u2", "u3"] {
        db.commit_change(user).await;
    }
    let worker = db
        .worker(&server)
        .concurrency(1)
        .probe_every(Duration::from_secs(1))
        .spawn()
        .unwrap();
    let mut events = worker.events();
    assert_eq!(
        next_event(&mut events).await,
        PingEvent::Unauthorized {
            probe_every: Duration::from_secs(1)
        }
    );
    let paused_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let refused = server.received().len();
    let elapsed = paused_at.elapsed().as_secs();
    // One request before the pause, then at most one probe a second (none without a
    // probe: the pause holds everyone).
    assert!(
        (2..=elapsed as usize + 2).contains(&refused),
        "{refused} requests in {elapsed} s"
    );
    assert_eq!(db.pending().await, 3, "rows are kept during a 403 pause");
    assert_eq!(worker.stats().given_up, 0);

    accepted.store(true, Ordering::SeqCst);
    until(Duration::from_secs(10), "every row delivered", async || {
        db.pending().await == 0
    })
    .await;
    let mut users: Vec<String> = server
        .received()
        .into_iter()
        .skip(refused)
        .filter_map(|r| r.user)
        .collect();
    users.sort();
    assert_eq!(users, ["u1", "u2", "u3"]);
    assert!(
        worker
            .shutdown(Duration::from_secs(5))
            .await
            .undelivered
            .is_empty()
    );
}

/// A 404 (a permanent refusal) gives the user up: reported, counted and its row
/// deleted; a later change starts afresh.
#[tokio::test]
async fn a_permanent_4xx_gives_the_user_up_and_deletes_the_row() {
    let db = TestDb::new().await;
    let server =
        FakeLivefyre::with_script(|r| Reply::status(if r.nth_for_user == 1 { 404 } else { 200 }))
            .await;
    db.commit_change("u1").await;
    let worker = db.worker(&server).spawn().unwrap();
    let mut events = worker.events();
    assert_eq!(
        next_event(&mut events).await,
        PingEvent::GaveUp {
            user_id: "u1".to_owned(),
            failure: Failure::Status(404)
        }
    );
    until(Duration::from_secs(10), "the row deleted", async || {
        db.pending().await == 0
    })
    .await;
    assert_eq!(worker.stats().given_up, 1);
    assert_eq!(server.pings_for("u1").len(), 1, "not retried");

    db.commit_change("u1").await;
    assert_eq!(
        next_event(&mut events).await,
        PingEvent::Delivered {
            user_id: "u1".to_owned(),
            attempts: 1
        },
        "a later change starts afresh"
    );
    worker.shutdown(Duration::from_secs(5)).await;
}

/// With the notification connection gone, and a row that arrived without a
/// notification, the poll still finds it.
#[tokio::test]
async fn polling_delivers_while_the_notification_connection_is_down() {
    let db = TestDb::new().await;
    let server = FakeLivefyre::start().await;
    let worker = db
        .worker(&server)
        .poll_every(Duration::from_secs(1))
        .spawn()
        .unwrap();
    // Close every connection listening on the table's channel.
    let channel = db.table.channel().to_owned();
    until(
        Duration::from_secs(10),
        "the worker listening",
        async || {
            let terminated: Vec<bool> = sqlx::query_scalar(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE query LIKE 'LISTEN%' AND strpos(query, $1) > 0",
            )
            .bind(&channel)
            .fetch_all(&db.pool)
            .await
            .unwrap();
            !terminated.is_empty()
        },
    )
    .await;
    // A row written without `enqueue`: no notification is ever sent for it.
    sqlx::query(&format!(
        "INSERT INTO {} (user_id) VALUES ('u1')",
        db.table.qualified_name()
    ))
    .execute(&db.pool)
    .await
    .unwrap();
    until(
        Duration::from_secs(10),
        "u1 pinged by the poll",
        async || server.pings_for("u1").len() == 1,
    )
    .await;
    until(Duration::from_secs(5), "the row deleted", async || {
        db.pending().await == 0
    })
    .await;
    worker.shutdown(Duration::from_secs(5)).await;
}

impl TestDb {
    /// Counts the statements that update the table, claims included (a statement
    /// trigger fires even when no row matches): into `looks`, with when each ran.
    async fn count_looks(&self) {
        let schema = format!("\"{}\"", self.schema);
        sqlx::raw_sql(&format!(
            "CREATE TABLE {schema}.looks (at timestamptz);
             CREATE FUNCTION {schema}.count_look() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN INSERT INTO {schema}.looks VALUES (clock_timestamp()); RETURN NULL; END $$;
             CREATE TRIGGER count_look AFTER UPDATE ON {table}
                 FOR EACH STATEMENT EXECUTE FUNCTION {schema}.count_look();",
            table = self.table.qualified_name()
        ))
        .execute(&self.pool)
        .await
        .unwrap();
    }

    /// Whether a worker has made `looks` looks at the table (claims) and the wake-up query
    /// after the last one has ended: the worker now waits to be woken or for its poll.
    async fn idle_after_looks(&self, looks: i64) -> bool {
        let (claims, wake_up_done): (i64, bool) = sqlx::query_as(&format!(
            "SELECT (SELECT count(*) FROM \"{schema}\".looks),
                    EXISTS (SELECT 1 FROM pg_stat_activity
                        WHERE state = 'idle' AND strpos(query, 'WITH first AS') > 0
                        AND strpos(query, $1) > 0
                        AND query_start >= (SELECT max(at) FROM \"{schema}\".looks))",
            schema = self.schema
        ))
        .bind(self.table.qualified_name())
        .fetch_one(&self.pool)
        .await
        .unwrap();
        claims >= looks && wake_up_done
    }
}

/// Polling once a minute, the same unnotified row waits: what delivered it above was
/// the poll, not something else.
#[tokio::test]
async fn an_unnotified_row_waits_for_the_poll() {
    let db = TestDb::new().await;
    db.count_looks().await;
    let server = FakeLivefyre::start().await;
    let worker = db
        .worker(&server)
        .poll_every(Duration::from_secs(60))
        .spawn()
        .unwrap();
    // The worker looks at the (empty) table twice: when it starts, and once more when its
    // listener is ready (changes may have committed while nobody listened). Only then is
    // it idle until a notification or the poll.
    until(
        Duration::from_secs(30),
        "the worker idle after its first looks",
        async || db.idle_after_looks(2).await,
    )
    .await;
    sqlx::query(&format!(
        "INSERT INTO {} (user_id) VALUES ('u1')",
        db.table.qualified_name()
    ))
    .execute(&db.pool)
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(server.pings_for("u1").is_empty());
    assert_eq!(db.pending().await, 1);
    worker.shutdown(Duration::from_secs(1)).await;
}

/// A shutdown whose deadline passes with requests in flight names those users (rows
/// this worker had not claimed are not its to report); their rows stay, released, so
/// the next worker delivers them at once.
#[tokio::test]
async fn shutdown_reports_the_users_whose_requests_it_abandoned() {
    let db = TestDb::new().await;
    // Answers only after 30 s: longer than the shutdown deadline below.
    let server =
        FakeLivefyre::with_script(|_| Reply::status(200).after(Duration::from_secs(30))).await;
    for user in ["u1", "u2"] {
        db.commit_change(user).await;
    }
    let worker = db
        .worker(&server)
        .attempt_timeout(Duration::from_secs(60))
        .lease(Duration::from_secs(120))
        .spawn()
        .unwrap();
    until(
        Duration::from_secs(10),
        "both requests in flight",
        async || server.received().len() >= 2,
    )
    .await;
    let mut report = worker.shutdown(Duration::from_secs(1)).await;
    report.undelivered.sort();
    assert_eq!(report.undelivered, ["u1", "u2"]);
    assert_eq!(report.stats.succeeded, 0);
    assert_eq!(db.pending().await, 2, "the rows stay for the next worker");

    // Released: another worker takes them at once, not after the 120 s lease.
    let accepting = FakeLivefyre::start().await;
    let next = db.worker(&accepting).spawn().unwrap();
    until(
        Duration::from_secs(10),
        "delivered by the next worker",
        async || db.pending().await == 0,
    )
    .await;
    next.shutdown(Duration::from_secs(5)).await;
}
