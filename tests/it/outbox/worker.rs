//! The PostgreSQL outbox against a real database and a fake Livefyre on 127.0.0.1. Each
//! test works in a schema of its own ([`TestDb`]), dropped afterwards, so they run in
//! parallel; without PostgreSQL they fail, unless skipped with `-- --skip outbox`.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pingpull::Network;
use pingpull::outbox::{
    DEFAULT_LEASE, MAX_LEASE_OVER_ATTEMPT, MIN_LEASE_OVER_ATTEMPT, OutboxError, OutboxTable,
    OutboxWorker,
};
use pingpull::ping::{ConfigError, DEFAULT_ATTEMPT_TIMEOUT, Failure, PingEvent, RetrySchedule};
use pingpull::testing::{OutboxTableHooks as _, Outcome, Settled};
use sqlx::postgres::PgPoolOptions;
use tokio::time::Instant;

use crate::support::database::TestDb;
use crate::support::fake_livefyre::{Answered, FakeLivefyre, Received, Reply};

/// Set in a re-executed test binary that should act as one outbox worker process.
const ROLE_ENV: &str = "PINGPULL_OUTBOX_ROLE";

pub(super) fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

impl TestDb {
    /// Whether a session is listening on the table's channel.
    pub(super) async fn is_listened_to(&self) -> bool {
        let listening: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE query LIKE 'LISTEN%' AND strpos(query, $1) > 0",
        )
        .bind(self.table.channel())
        .fetch_one(&self.pool)
        .await
        .unwrap();
        listening > 0
    }

    async fn wait_until_empty(&self, within: Duration) {
        self.wait_until_empty_but(0, within).await;
    }

    /// Waits until no more than `left` rows are pending.
    async fn wait_until_empty_but(&self, left: u64, within: Duration) {
        let deadline = Instant::now() + within;
        while self.pending().await > left {
            assert!(
                Instant::now() < deadline,
                "{} rows still pending after {within:?}",
                self.pending().await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn worker(db: &TestDb, server: &FakeLivefyre) -> pingpull::outbox::OutboxWorkerBuilder {
    OutboxWorker::builder(network(), db.pool.clone(), db.table.clone())
        .base_url(server.base_url())
        .concurrency(16)
        .poll_every(Duration::from_millis(20))
        .attempt_timeout(Duration::from_secs(5))
        .lease(Duration::from_secs(10))
        .retry_schedule(RetrySchedule::new([Duration::from_millis(10)]).jitter(0.0))
}

fn users_pinged(server: &FakeLivefyre) -> Vec<String> {
    let mut users: Vec<String> = server
        .received()
        .into_iter()
        .filter_map(|r| r.user)
        .collect();
    users.sort();
    users
}

/// A deterministic number in 0..100.
fn roll(seed: u64, what: impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    (seed, what).hash(&mut hasher);
    hasher.finish() % 100
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolled_back_changes_never_ping_and_committed_ones_always_do() {
    let db = TestDb::new().await;
    let server = FakeLivefyre::start().await;
    // The worker runs while the transactions do: an uncommitted row must stay invisible.
    let outbox = worker(&db, &server).spawn().unwrap();
    let mut committed = HashMap::new();
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..4u64 {
        let pool = db.pool.clone();
        let table = db.table.clone();
        writers.spawn(async move {
            let mut committed = Vec::new();
            for i in 0..250u64 {
                let user = format!("u{}", writer * 250 + i);
                let mut tx = pool.begin().await.unwrap();
                table.enqueue(&mut *tx, &user).await.unwrap();
                // The profile change itself would be here; give the worker time to look.
                if i % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
                if roll(7, &user) < 50 {
                    tx.rollback().await.unwrap();
                } else {
                    // Until here the row was uncommitted: no ping may arrive before this.
                    let committing = Instant::now();
                    tx.commit().await.unwrap();
                    committed.push((user, committing));
                }
            }
            committed
        });
    }
    while let Some(users) = writers.join_next().await {
        committed.extend(users.unwrap());
    }
    assert!(
        (400..600).contains(&committed.len()),
        "about half committed"
    );
    db.wait_until_empty(Duration::from_secs(30)).await;
    let report = outbox.shutdown(Duration::from_secs(5)).await;
    assert!(report.undelivered.is_empty());
    // The contract is at least once: every committed user pinged after its commit, nobody
    // else; a user pinged twice (a lost lease, a retried answer) is allowed and counted.
    let pinged = users_pinged(&server);
    let distinct: HashSet<&String> = pinged.iter().collect();
    let expected: HashSet<&String> = committed.keys().collect();
    let missed: Vec<_> = expected.difference(&distinct).collect();
    let early: Vec<_> = server
        .received()
        .into_iter()
        .filter_map(|r| Some((committed.get(r.user.as_ref()?)?, r)))
        .filter(|(committing, r)| r.at <= **committing)
        .map(|(_, r)| r.user)
        .collect();
    assert!(early.is_empty(), "pinged before the commit: {early:?}");
    let unexpected: Vec<_> = distinct.difference(&expected).collect();
    assert!(missed.is_empty(), "committed but never pinged: {missed:?}");
    assert!(
        unexpected.is_empty(),
        "pinged without a committed change: {unexpected:?}"
    );
    let duplicates = pinged.len() - distinct.len();
    println!(
        "{} committed users pinged with {} requests: {duplicates} duplicate(s)",
        expected.len(),
        pinged.len()
    );
    assert!(
        report.stats.succeeded >= expected.len() as u64,
        "{report:?}"
    );
    assert!(report.stats.sent >= report.stats.succeeded, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_before_a_claim_coalesce_and_a_change_in_flight_pings_once_more() {
    let db = TestDb::new().await;
    // u2's first request is slow (well within the 5 s attempt timeout), so a change
    // lands while it is in flight.
    let server = FakeLivefyre::with_script(|r| match (r.user.as_deref(), r.nth_for_user) {
        (Some("u2"), 1) => Reply::status(200).after(Duration::from_secs(2)),
        _ => Reply::status(200),
    })
    .await;
    for _ in 0..10 {
        db.commit_change("u1").await;
    }
    // Coalesced into one row with ten changes.
    let mut conn = db.pool.acquire().await.unwrap();
    let claims = db
        .table
        .claim_due(&mut *conn, "test", Duration::from_secs(5), 10)
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!((claims[0].user_id(), claims[0].changes()), ("u1", 10));
    // Give the claim back as if a 403 had held it a moment (so the worker below, not
    // this claim, delivers it, after the test subscribed to its events).
    let settled = db
        .table
        .settle(
            &mut conn,
            &claims[0],
            &Outcome::Hold(Duration::from_millis(300)),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(settled, Settled::Waiting);
    drop(conn);

    let outbox = worker(&db, &server).spawn().unwrap();
    let mut events = outbox.events();
    db.commit_change("u2").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.pings_for("u2").is_empty() {
        assert!(Instant::now() < deadline, "u2 never pinged");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    db.commit_change("u2").await;
    let changed_at = Instant::now();
    db.wait_until_empty(Duration::from_secs(10)).await;

    assert_eq!(server.pings_for("u1").len(), 1, "ten changes, one ping");
    let u2 = server.pings_for("u2");
    assert_eq!(
        u2.len(),
        2,
        "a change during the request causes exactly one more"
    );
    assert!(
        u2[1].at > changed_at,
        "the second request began after the commit"
    );
    let report = outbox.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.stats.succeeded, 3);
    let mut delivered = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let PingEvent::Delivered { user_id, .. } = event {
            delivered.push(user_id);
        }
    }
    delivered.sort();
    assert_eq!(delivered, ["u1", "u2", "u2"]);
}

/// Polls `done` every 10 ms until it holds, failing after `within`.
async fn wait_for(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what} not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reads_the_table_and_this_workers_attempts() {
    let db = TestDb::new().await;
    let server = FakeLivefyre::with_script(|r| match r.user.as_deref() {
        Some("refused") => Reply::status(403),
        _ => Reply::status(200),
    })
    .await;
    // A row another worker holds for a minute: pending, and ageing.
    db.commit_change("held").await;
    let held = db
        .table
        .claim_due(&db.pool, "other", Duration::from_secs(60), 1);
    assert_eq!(held.await.unwrap().len(), 1);
    let outbox = worker(&db, &server).spawn().unwrap();
    let health = outbox.health().await.unwrap();
    assert!(health.healthy(), "{health:?}");
    assert_eq!((health.pending, health.last_delivered), (1, None));
    assert!(health.oldest_pending.is_some());

    db.commit_change("u1").await;
    wait_for(Duration::from_secs(10), "u1 pinged", || {
        !server.pings_for("u1").is_empty()
    })
    .await;
    db.wait_until_empty_but(1, Duration::from_secs(10)).await;
    let health = outbox.health().await.unwrap();
    assert!(health.healthy(), "{health:?}");
    assert!(health.last_delivered.is_some());
    assert_eq!((health.pending, health.consecutive_failures), (1, 0));

    db.commit_change("refused").await;
    wait_for(Duration::from_secs(10), "refused pinged", || {
        !server.pings_for("refused").is_empty()
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !outbox.health().await.unwrap().unauthorized {
        assert!(Instant::now() < deadline, "no 403 pause");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        outbox.health().await.unwrap().reason(),
        Some("unauthorized")
    );
    outbox.shutdown(Duration::from_secs(5)).await;
}

#[cfg(feature = "metrics")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_deliveries_the_backlog_and_lost_leases() {
    let db = TestDb::new().await;
    // The slow answer leaves seconds to take the row away while it is in flight.
    let server = FakeLivefyre::with_script(|r| match (r.user.as_deref(), r.nth_for_user) {
        (Some("slow"), 1) => Reply::status(200).after(Duration::from_secs(2)),
        _ => Reply::status(200),
    })
    .await;
    // A row another worker holds: due, leased for a while, so overdue.
    db.commit_change("held").await;
    let held = db
        .table
        .claim_due(&db.pool, "other", Duration::from_secs(60), 1);
    assert_eq!(held.await.unwrap().len(), 1);
    let mut recorded = crate::ping::metrics::Recorded::new();
    let outbox = recorded.install(|| {
        worker(&db, &server)
            .lease(Duration::from_secs(6))
            .spawn()
            .unwrap()
    });
    db.commit_change("fast").await;
    db.commit_change("slow").await;
    wait_for(Duration::from_secs(10), "slow pinged", || {
        !server.pings_for("slow").is_empty()
    })
    .await;
    // Another worker claims "slow" meanwhile: this one's 2xx cannot be recorded.
    let steal = format!(
        "UPDATE {} SET lease = lease + 1000000 WHERE user_id = 'slow'",
        db.table.qualified_name()
    );
    sqlx::query(&steal).execute(&db.pool).await.unwrap();
    let lost = "pingpull_outbox_lease_lost_total";
    wait_for(Duration::from_secs(10), "lease lost", || {
        recorded.counter(lost, None) == 1
    })
    .await;
    // Its lease (6 s) runs out; the worker claims and delivers it again.
    wait_for(Duration::from_secs(30), "only the held row left", || {
        server.pings_for("slow").len() == 2 && recorded.gauge("pingpull_ping_pending") == 1.0
    })
    .await;
    let overdue = "pingpull_outbox_oldest_due_seconds";
    wait_for(Duration::from_secs(10), "the held row overdue", || {
        recorded.gauge_set(overdue) > 0.0
    })
    .await;

    let delivered = ("outcome", "delivered");
    let attempts = recorded.counter("pingpull_ping_attempts_total", Some(delivered));
    assert_eq!(attempts, 3, "fast, and slow twice");
    let delivery = recorded.histogram("pingpull_ping_delivery_seconds");
    assert_eq!(
        delivery.len(),
        2,
        "{delivery:?}: the 2xx whose lease was lost is not timed"
    );
    assert!(
        delivery.iter().all(|s| (0.0..60.0).contains(s)),
        "{delivery:?}"
    );
    outbox.shutdown(Duration::from_secs(5)).await;
    assert_eq!(recorded.gauge("pingpull_ping_pending"), 0.0);
    assert_eq!(recorded.gauge("pingpull_ping_in_flight"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_change_wakes_the_worker_without_waiting_for_the_poll() {
    let db = TestDb::new().await;
    let server = FakeLivefyre::start().await;
    // Polling once a minute: within the test's 10 s only a notification can wake it.
    let outbox = worker(&db, &server)
        .poll_every(Duration::from_secs(60))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !db.is_listened_to().await {
        assert!(Instant::now() < deadline, "the worker never listened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for user in ["u1", "u2"] {
        db.commit_change(user).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.pings_for(user).is_empty() {
            assert!(
                Instant::now() < deadline,
                "{user} was not pinged before the poll"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Let the worker settle the row and go back to waiting for the next wake-up.
        db.wait_until_empty(Duration::from_secs(5)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A rolled-back change notifies nobody and pings nobody.
    let mut tx = db.pool.begin().await.unwrap();
    db.table.enqueue(&mut *tx, "u3").await.unwrap();
    tx.rollback().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(users_pinged(&server), ["u1", "u2"]);
    outbox.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_stalled_worker_cannot_settle_a_row_claimed_again() {
    let db = TestDb::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let max_age = Duration::from_secs(3600);
    db.commit_change("u1").await;
    let lease = Duration::from_secs(60);
    let stalled = db
        .table
        .claim_due(&mut *conn, "A", lease, 10)
        .await
        .unwrap();
    assert_eq!(stalled.len(), 1);
    // While A's lease holds, nobody else gets the row.
    assert!(
        db.table
            .claim_due(&mut *conn, "B", lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A stalls past its lease: the database's clock moves past the lease's end.
    sqlx::query(&format!(
        "UPDATE {} SET lease_until = now() - interval '1 second'",
        db.table.qualified_name()
    ))
    .execute(&mut *conn)
    .await
    .unwrap();
    let current = db
        .table
        .claim_due(&mut *conn, "B", Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(current.len(), 1);
    assert_ne!(current[0].lease(), stalled[0].lease());

    // A wakes up: none of its outcomes touch B's row.
    for outcome in [
        Outcome::Delivered,
        Outcome::GiveUp(Failure::Status(404)),
        Outcome::RetryAfter(Duration::from_secs(1), Failure::Timeout),
        Outcome::Hold(Duration::from_secs(1)),
    ] {
        let settled = db
            .table
            .settle(&mut conn, &stalled[0], &outcome, max_age)
            .await
            .unwrap();
        assert_eq!(settled, Settled::LeaseLost, "{outcome:?}");
    }
    assert_eq!(db.pending().await, 1, "B's row is still there");
    assert_eq!(
        db.table
            .settle(&mut conn, &current[0], &Outcome::Delivered, max_age)
            .await
            .unwrap(),
        Settled::Done
    );
    assert_eq!(db.pending().await, 0);

    // The user changes again: a new row, a new claim. A's old claim, with the same change
    // count, still cannot delete it: lease tokens are never reused.
    db.commit_change("u1").await;
    let fresh = db
        .table
        .claim_due(&mut *conn, "C", Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(fresh[0].changes(), stalled[0].changes());
    assert_eq!(
        db.table
            .settle(&mut conn, &stalled[0], &Outcome::Delivered, max_age)
            .await
            .unwrap(),
        Settled::LeaseLost
    );
    assert_eq!(db.pending().await, 1);
}

#[tokio::test]
async fn backoff_lives_in_the_row_and_too_old_users_are_given_up() {
    let db = TestDb::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    db.commit_change("u1").await;
    let lease = Duration::from_secs(60);
    let claim = db
        .table
        .claim_due(&mut *conn, "A", lease, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(claim.attempts(), 0);
    let hour = Duration::from_secs(3600);
    assert_eq!(
        db.table
            .settle(
                &mut conn,
                &claim,
                &Outcome::RetryAfter(Duration::ZERO, Failure::Timeout),
                hour
            )
            .await
            .unwrap(),
        Settled::Waiting
    );
    // A later claim (by any worker, after any restart) sees the attempt.
    let claim = db
        .table
        .claim_due(&mut *conn, "B", lease, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(claim.attempts(), 1);
    assert_eq!(
        db.table
            .settle(
                &mut conn,
                &claim,
                &Outcome::RetryAfter(hour, Failure::Timeout),
                hour * 24
            )
            .await
            .unwrap(),
        Settled::Waiting
    );
    assert!(
        db.table
            .claim_due(&mut *conn, "B", lease, 1)
            .await
            .unwrap()
            .is_empty(),
        "not due for an hour"
    );
    // A retry that would end past the maximum age gives the user up and deletes the row.
    let table = &db.table;
    sqlx::query(&format!(
        "UPDATE {} SET due_at = now()",
        table.qualified_name()
    ))
    .execute(&mut *conn)
    .await
    .unwrap();
    let claim = table
        .claim_due(&mut *conn, "C", lease, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(claim.attempts(), 2);
    assert_eq!(
        table
            .settle(
                &mut conn,
                &claim,
                &Outcome::RetryAfter(Duration::from_secs(2), Failure::Timeout),
                Duration::from_secs(1)
            )
            .await
            .unwrap(),
        Settled::GivenUp
    );
    assert_eq!(db.pending().await, 0);
}

#[tokio::test]
async fn a_change_during_an_attempt_too_old_to_retry_is_kept() {
    let db = TestDb::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    db.commit_change("u1").await;
    let claim = db
        .table
        .claim_due(&mut *conn, "A", Duration::from_secs(60), 1)
        .await
        .unwrap()
        .remove(0);
    // The user changes while its attempt is in flight; the attempt then fails with a
    // delay that would take the *old* change past the maximum age.
    db.commit_change("u1").await;
    let settled = db
        .table
        .settle(
            &mut conn,
            &claim,
            &Outcome::RetryAfter(Duration::from_secs(3600), Failure::Timeout),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(
        settled,
        Settled::Waiting,
        "the new change must not be given up"
    );
    let again = db
        .table
        .claim_due(&mut *conn, "B", Duration::from_secs(60), 1)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "due again at once");
    assert_eq!((again[0].user_id(), again[0].changes()), ("u1", 2));
    // Without a new change, the same failure gives the user up and deletes the row.
    let settled = db
        .table
        .settle(
            &mut conn,
            &again[0],
            &Outcome::RetryAfter(Duration::from_secs(3600), Failure::Timeout),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(settled, Settled::GivenUp);
    assert_eq!(db.pending().await, 0);
}

#[tokio::test]
async fn bad_input_is_an_error_not_a_panic() {
    assert!(matches!(
        OutboxTable::new("public", "outbox; drop table users"),
        Err(OutboxError::InvalidName { what: "table", .. })
    ));
    let db = TestDb::new().await;
    let mut tx = db.pool.begin().await.unwrap();
    for bad in ["", "..", "a/b", "u 1", "é"] {
        let error = db.table.enqueue(&mut *tx, bad).await.unwrap_err();
        assert!(matches!(error, OutboxError::InvalidUserId(_)), "{bad:?}");
    }
    tx.commit().await.unwrap();
    assert_eq!(db.pending().await, 0);
}

#[tokio::test]
async fn a_lease_must_outlast_the_attempt_timeout_by_a_second() {
    let db = TestDb::new().await;
    let server = FakeLivefyre::start().await;
    let timeout = Duration::from_secs(5);
    let shortest = timeout + MIN_LEASE_OVER_ATTEMPT;
    // Shorter, an attempt could outlive its lease and a second worker ping the same user
    // meanwhile; the boundary itself is accepted.
    for lease in [
        Duration::from_millis(500),
        timeout,
        shortest - Duration::from_nanos(1),
    ] {
        let error = worker(&db, &server)
            .attempt_timeout(timeout)
            .lease(lease)
            .spawn()
            .unwrap_err();
        assert!(
            matches!(
                error,
                ConfigError::OutOfRange {
                    setting: "lease",
                    ..
                }
            ),
            "{lease:?}: {error:?}"
        );
        assert!(
            error
                .to_string()
                .contains("`lease` must be between 1 s and 1 hour longer than the attempt timeout"),
            "{error}"
        );
    }
    let accepted = worker(&db, &server)
        .attempt_timeout(timeout)
        .lease(shortest)
        .spawn()
        .unwrap();
    accepted.shutdown(Duration::from_secs(1)).await;
    // The defaults go together.
    let defaults = OutboxWorker::builder(network(), db.pool.clone(), db.table.clone())
        .base_url(server.base_url())
        .spawn()
        .unwrap();
    defaults.shutdown(Duration::from_secs(1)).await;
    assert!(DEFAULT_LEASE >= DEFAULT_ATTEMPT_TIMEOUT + MIN_LEASE_OVER_ATTEMPT);
}

#[tokio::test]
async fn a_lease_may_outlast_the_attempt_timeout_by_an_hour_at_most() {
    // Longer, the lease is only room for the heartbeat, and a dead worker's users wait
    // that much longer; the boundary itself is accepted, with the default attempt timeout
    // and the longest one.
    let db = TestDb::new().await;
    let server = FakeLivefyre::start().await;
    for timeout in [DEFAULT_ATTEMPT_TIMEOUT, Duration::from_secs(3600)] {
        let longest = timeout + MAX_LEASE_OVER_ATTEMPT;
        for lease in [longest + Duration::from_nanos(1), Duration::MAX] {
            let error = worker(&db, &server)
                .attempt_timeout(timeout)
                .lease(lease)
                .spawn()
                .unwrap_err();
            assert!(
                matches!(
                    error,
                    ConfigError::OutOfRange {
                        setting: "lease",
                        ..
                    }
                ),
                "{timeout:?} {lease:?}: {error:?}"
            );
            assert!(
                error.to_string().contains("and 1 hour longer than"),
                "{error}"
            );
        }
        let accepted = worker(&db, &server)
            .attempt_timeout(timeout)
            .lease(longest)
            .spawn()
            .unwrap();
        accepted.shutdown(Duration::from_secs(1)).await;
    }
    // An attempt timeout out of its own range is named as such, not as a lease too short.
    let error = worker(&db, &server)
        .attempt_timeout(Duration::from_secs(3601))
        .spawn()
        .unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::OutOfRange {
                setting: "attempt_timeout",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_poll_interval_is_more_than_zero_and_at_most_an_hour() {
    let db = TestDb::new().await;
    let server = FakeLivefyre::start().await;
    let hour = Duration::from_secs(3600);
    for interval in [
        Duration::ZERO,
        hour + Duration::from_nanos(1),
        Duration::MAX,
    ] {
        let error = worker(&db, &server)
            .poll_every(interval)
            .spawn()
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "`poll_every` must be more than zero and at most 1 hour",
            "{interval:?}"
        );
    }
    for interval in [Duration::from_nanos(1), hour] {
        let accepted = worker(&db, &server).poll_every(interval).spawn().unwrap();
        accepted.shutdown(Duration::from_secs(1)).await;
    }
}

// --- Crash recovery: worker processes killed with SIGKILL while a writer commits. ---

/// Not a test of its own: the entry point of the worker processes the crash tests start
/// (this binary, re-executed with `PINGPULL_OUTBOX_ROLE=worker`). Ignored in normal runs.
/// Its settings are the crash test's, unless `PINGPULL_OUTBOX_LEASE_MS`,
/// `PINGPULL_OUTBOX_ATTEMPT_TIMEOUT_MS`, `PINGPULL_OUTBOX_CONCURRENCY` say otherwise (each
/// a number, or `default` for the builder's default); `PINGPULL_OUTBOX_OWNER` names it.
#[test]
#[ignore = "entry point of the crash test's worker processes"]
fn crash_worker_process() {
    if std::env::var(ROLE_ENV).as_deref() != Ok("worker") {
        return;
    }
    let var = |name: &str| std::env::var(name).unwrap();
    // `None`: the builder's default; else the number given, or `otherwise`.
    let setting = |name: &str, otherwise: u64| match std::env::var(name).as_deref() {
        Ok("default") => None,
        Ok(number) => Some(number.parse::<u64>().unwrap()),
        Err(_) => Some(otherwise),
    };
    let millis = |name: &str, otherwise: Duration| {
        let otherwise = u64::try_from(otherwise.as_millis()).unwrap();
        setting(name, otherwise).map(Duration::from_millis)
    };
    let lease = millis("PINGPULL_OUTBOX_LEASE_MS", Duration::from_secs(4));
    let attempt_timeout = millis("PINGPULL_OUTBOX_ATTEMPT_TIMEOUT_MS", CRASH_ATTEMPT_TIMEOUT);
    let concurrency = setting("PINGPULL_OUTBOX_CONCURRENCY", 8);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&var("DATABASE_URL"))
            .await
            .unwrap();
        let table = OutboxTable::new(&var("PINGPULL_OUTBOX_SCHEMA"), "outbox").unwrap();
        let mut worker = OutboxWorker::builder(network(), pool, table)
            .base_url(var("PINGPULL_OUTBOX_LIVEFYRE"))
            .poll_every(Duration::from_millis(50))
            .retry_schedule(
                RetrySchedule::new([20, 50, 100].map(Duration::from_millis))
                    .jitter(0.5)
                    .max_retry_after(Duration::from_millis(100)),
            );
        if let Some(concurrency) = concurrency {
            worker = worker.concurrency(usize::try_from(concurrency).unwrap());
        }
        if let Some(timeout) = attempt_timeout {
            worker = worker.attempt_timeout(timeout);
        }
        if let Some(lease) = lease {
            worker = worker.lease(lease);
        }
        if let Ok(owner) = std::env::var("PINGPULL_OUTBOX_OWNER") {
            worker = worker.owner(owner);
        }
        let _worker = worker.spawn().unwrap();
        // Until killed.
        std::future::pending::<()>().await;
    });
}

/// The crash test's workers' attempt timeout: seconds, so that on a loaded machine a 200
/// answered in well under it was read by the worker in time.
const CRASH_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// The worker processes; every one is killed and waited for, whatever happens.
pub(super) struct Workers {
    pub(super) children: Vec<Child>,
    /// The variables every worker started gets (and nothing else of this process's).
    pub(super) env: Vec<(&'static str, String)>,
}

impl Workers {
    /// Workers for `db`'s outbox, pinging `livefyre`, with the crash test's settings
    /// unless `env` says otherwise.
    pub(super) fn new(db: &TestDb, livefyre: &FakeLivefyre) -> Self {
        Self {
            children: Vec::new(),
            env: vec![
                ("DATABASE_URL", db.url.clone()),
                ("PINGPULL_OUTBOX_SCHEMA", db.schema.clone()),
                ("PINGPULL_OUTBOX_LIVEFYRE", livefyre.base_url()),
            ],
        }
    }

    pub(super) fn start(&mut self) -> Child {
        let mut command = Command::new(std::env::current_exe().unwrap());
        // Only the role and `self.env`: nothing of the caller's environment leaks in.
        command
            .env_clear()
            .args([
                "outbox::worker::crash_worker_process",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(ROLE_ENV, "worker")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command.spawn().unwrap()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// About 30 % 5xx, resets and hangs past the workers' attempt timeout; the rest 200
/// after up to 200 ms.
fn fault(seed: u64, request: &Received) -> Reply {
    let Some(user) = &request.user else {
        return Reply::status(404);
    };
    match roll(seed, (user, request.nth_for_user)) {
        0..=9 => Reply::status(503),
        10..=14 => Reply::reset(),
        15..=24 => Reply::status(500).after(CRASH_ATTEMPT_TIMEOUT + Duration::from_secs(1)),
        25..=29 => Reply::status(429).retry_after("1"),
        // Answers take a while, so changes often land while a request is in flight.
        n => Reply::status(200).after(Duration::from_millis(n * 2)),
    }
}

async fn survives_crashes(seed: u64) {
    let db = TestDb::new().await;
    let server = FakeLivefyre::with_script(move |r| fault(seed, r)).await;
    log_claims(&db).await;
    let chaos_secs: u64 = std::env::var("PINGPULL_OUTBOX_CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let mut workers = Workers::new(&db, &server);
    for _ in 0..3 {
        let child = workers.start();
        workers.children.push(child);
    }

    // The writer: commits changes to 200 users (some rolled back) until the chaos time
    // has passed and at least 60 users changed (a loaded machine commits slower), noting each user's last committed change: which row (by its first change's time, as
    // a row deleted and inserted again is another row) and its change count in that row.
    let writer = {
        let pool = db.pool.clone();
        let table = db.table.clone();
        tokio::spawn(async move {
            let mut last_change: HashMap<String, RowChange> = HashMap::new();
            let end = Instant::now() + Duration::from_secs(chaos_secs);
            let mut n = 0u64;
            while Instant::now() < end || last_change.len() < 60 {
                n += 1;
                let user = format!("u{}", roll(seed, ("user", n)) * 2 + roll(seed, n) % 2);
                let mut tx = pool.begin().await.unwrap();
                table.enqueue(&mut *tx, &user).await.unwrap();
                // The row stays locked by this transaction until it ends: nobody else can
                // change or delete it between this read and the commit.
                let change: RowChange = sqlx::query_as(&format!(
                    "SELECT (extract(epoch FROM first_changed_at) * 1000000)::bigint, changes
                     FROM {} WHERE user_id = $1",
                    table.qualified_name()
                ))
                .bind(&user)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
                if roll(seed, ("rollback", n)) < 10 {
                    tx.rollback().await.unwrap();
                    continue;
                }
                tx.commit().await.unwrap();
                last_change.insert(user, change);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            last_change
        })
    };

    // kill -9 a random worker every second or so, and start a new one, while the
    // writer writes.
    let end = Instant::now() + Duration::from_secs(chaos_secs);
    let mut kills = 0u64;
    while Instant::now() < end || !writer.is_finished() {
        tokio::time::sleep(Duration::from_millis(
            700 + roll(seed, ("pause", kills)) * 10,
        ))
        .await;
        let victim = usize::try_from(roll(seed, ("victim", kills)) % 3).unwrap();
        let _ = workers.children[victim].kill();
        let _ = workers.children[victim].wait();
        workers.children[victim] = workers.start();
        kills += 1;
    }
    let last_change = writer.await.unwrap();
    assert!(kills >= 3 && last_change.len() > 50, "the chaos ran");
    // Killed workers' leases (4 s) must run out before their rows are claimed again.
    db.wait_until_empty(Duration::from_secs(60)).await;
    drop(workers);

    let claims: Vec<Claimed> = sqlx::query_as(&format!(
        "SELECT user_id, row_id, changes, at FROM \"{}\".claims",
        db.schema
    ))
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let answered = server.answered();
    let unread = answered
        .iter()
        .filter(|a| a.status == 200 && !read_in_time(a))
        .count();
    println!(
        "seed {seed}: {} users, {kills} kills, {} claims, {} requests, {unread} 200s not \
         counted (answered too late to be sure the worker read them)",
        last_change.len(),
        claims.len(),
        server.received().len()
    );
    let late: Vec<String> = last_change
        .iter()
        .filter(|(user, change)| !delivered_after(user, change, &claims, &answered))
        .map(|(user, change)| story(user, change, &claims, &answered))
        .collect();
    assert!(
        late.is_empty(),
        "seed {seed}: no 200 read by a worker after the last change for {late:?}"
    );
}

/// A committed change: the row (its first change's time in µs since the epoch) and the
/// row's change count.
type RowChange = (i64, i64);

/// A claim, as the database logged it: user, row, change count, and when (seconds
/// since the epoch, by the database's clock).
type Claimed = (String, i64, i64, f64);

/// Logs every claim of the outbox's rows (a new lease) into `claims`, with the change
/// count it saw: which claims saw a user's last change, the database says.
async fn log_claims(db: &TestDb) {
    let schema = format!("\"{}\"", db.schema);
    sqlx::raw_sql(&format!(
        "CREATE TABLE {schema}.claims (user_id text, row_id bigint, changes bigint, at float8);
         CREATE FUNCTION {schema}.log_claim() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.lease IS NOT NULL AND NEW.lease IS DISTINCT FROM OLD.lease THEN
                 INSERT INTO {schema}.claims VALUES (
                     NEW.user_id,
                     (extract(epoch FROM NEW.first_changed_at) * 1000000)::bigint,
                     NEW.changes,
                     extract(epoch FROM clock_timestamp())::float8);
             END IF;
             RETURN NULL;
         END $$;
         CREATE TRIGGER log_claim AFTER UPDATE ON {table}
             FOR EACH ROW EXECUTE FUNCTION {schema}.log_claim();",
        table = db.table.qualified_name()
    ))
    .execute(&db.pool)
    .await
    .unwrap();
}

/// A 200 the worker surely read: answered (the worker had not hung up) within half its
/// attempt timeout, so the worker, whose clock started before the request arrived, still
/// had a second or more to read it.
fn read_in_time(answer: &Answered) -> bool {
    answer.status == 200 && answer.took() < CRASH_ATTEMPT_TIMEOUT / 2
}

fn epoch_secs(at: std::time::SystemTime) -> f64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The first time the database handed out a claim that saw `change`, the user's last.
fn first_claim_of(user: &str, change: &RowChange, claims: &[Claimed]) -> Option<f64> {
    claims
        .iter()
        .filter(|(u, row, changes, _)| u == user && *row == change.0 && *changes >= change.1)
        .map(|claim| claim.3)
        .reduce(f64::min)
}

/// Whether a worker read a 200 for `user` to a request that arrived after a claim had seen
/// its last change. Claims are exclusive and a claim's request follows it, so a request
/// arriving after such a claim is that claim's or a later one's: it carried the change.
fn delivered_after(
    user: &str,
    change: &RowChange,
    claims: &[Claimed],
    answered: &[Answered],
) -> bool {
    let Some(claimed) = first_claim_of(user, change, claims) else {
        return false;
    };
    answered.iter().any(|a| {
        read_in_time(a)
            && a.request.user.as_deref() == Some(user)
            && epoch_secs(a.request.wall) > claimed
    })
}

/// What happened to `user` after its last change, for a failure message.
fn story(user: &str, change: &RowChange, claims: &[Claimed], answered: &[Answered]) -> String {
    let claimed = first_claim_of(user, change, claims);
    let relative = |at: f64| claimed.map_or("?".to_owned(), |c| format!("{:+.6}s", at - c));
    let claims: Vec<String> = claims
        .iter()
        .filter(|claim| claim.0 == user)
        .map(|(_, row, changes, at)| format!("row {row} changes {changes} at {}", relative(*at)))
        .collect();
    let answers: Vec<String> = answered
        .iter()
        .filter(|a| a.request.user.as_deref() == Some(user))
        .map(|a| {
            let at = epoch_secs(a.request.wall);
            format!("{} at {} after {:?}", a.status, relative(at), a.took())
        })
        .collect();
    format!("{user}: last change {change:?}; claims {claims:?}; answers {answers:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_survives_killed_workers_seed_1() {
    survives_crashes(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_survives_killed_workers_seed_2() {
    survives_crashes(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_survives_killed_workers_seed_3() {
    survives_crashes(3).await;
}
