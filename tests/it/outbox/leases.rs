//! Leases after a crash: a worker process killed with SIGKILL while it holds users (in
//! flight and claimed ahead), and a worker that loses its database mid-attempt. Each test
//! works in its own schema ([`TestDb`]), dropped afterwards. Every assertion on leases is
//! on the database's own records, by its clock; the only bounds on time are the goal's
//! (a user stranded by a crash is pinged within 15 s), far above what they take.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pingpull::outbox::OutboxWorker;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::worker::{Workers, network};
use crate::support::database::TestDb;
use crate::support::fake_livefyre::{FakeLivefyre, Reply};

/// The goal: a user stranded by a crashed worker or database is pinged within this.
const STRANDED_AT_MOST: Duration = Duration::from_secs(15);

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

impl TestDb {
    /// Logs every change of a row's lease (a claim, a renewal, a release) into
    /// `lease_log`: the lease before and after, their ends, the owner, and when by the
    /// database's clock.
    async fn log_leases(&self) {
        let schema = format!("\"{}\"", self.schema);
        sqlx::raw_sql(&format!(
            "CREATE TABLE {schema}.lease_log (user_id text, old_lease bigint,
                 old_until timestamptz, lease bigint, owner text, until timestamptz,
                 at timestamptz);
             CREATE FUNCTION {schema}.log_lease() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.lease IS DISTINCT FROM OLD.lease
                     OR NEW.lease_until IS DISTINCT FROM OLD.lease_until THEN
                     INSERT INTO {schema}.lease_log VALUES (NEW.user_id, OLD.lease,
                         OLD.lease_until, NEW.lease, NEW.lease_owner, NEW.lease_until,
                         clock_timestamp());
                 END IF;
                 RETURN NULL;
             END $$;
             CREATE TRIGGER log_lease AFTER UPDATE ON {table}
                 FOR EACH ROW EXECUTE FUNCTION {schema}.log_lease();",
            table = self.table.qualified_name()
        ))
        .execute(&self.pool)
        .await
        .unwrap();
    }

    /// The count `sql` answers, with `{log}` the lease log, `{table}` the outbox, and `$1`
    /// bound to `seconds`.
    async fn count(&self, sql: &str, seconds: f64) -> i64 {
        let sql = sql
            .replace("{log}", &format!("\"{}\".lease_log", self.schema))
            .replace("{table}", self.table.qualified_name());
        sqlx::query_scalar(&sql)
            .bind(seconds)
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

/// The killed worker's settings: attempts of at most 4 s under a 6 s lease, renewed every
/// 2/3 s; two requests in flight, the other users claimed ahead.
const VICTIM_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);
const VICTIM_LEASE: Duration = Duration::from_secs(6);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_users_are_pinged_by_another_within_a_lease() {
    let db = TestDb::new().await;
    db.log_leases().await;
    let answering = Arc::new(AtomicBool::new(false));
    let server = livefyre_held_until(&answering).await;
    // One transaction: the worker's first claim takes every user, two for its slots and
    // the rest ahead.
    let users: Vec<String> = (0..32).map(|i| format!("u{i:02}")).collect();
    let mut tx = db.pool.begin().await.unwrap();
    for user in &users {
        db.table.enqueue(&mut *tx, user).await.unwrap();
    }
    tx.commit().await.unwrap();

    let mut workers = Workers::new(&db, &server);
    let millis = |d: Duration| d.as_millis().to_string();
    workers.env.extend([
        ("PINGPULL_OUTBOX_LEASE_MS", millis(VICTIM_LEASE)),
        (
            "PINGPULL_OUTBOX_ATTEMPT_TIMEOUT_MS",
            millis(VICTIM_ATTEMPT_TIMEOUT),
        ),
        ("PINGPULL_OUTBOX_CONCURRENCY", "2".to_owned()),
        ("PINGPULL_OUTBOX_OWNER", "victim".to_owned()),
    ]);
    let victim = workers.start();
    workers.children.push(victim);
    until(Duration::from_secs(30), "every user claimed", async || {
        db.held_by("victim").await == 32
    })
    .await;
    // Another worker runs meanwhile: it must not take a user while the victim's lease
    // holds, however long the victim holds it.
    let rescuer = OutboxWorker::builder(network(), db.pool.clone(), db.table.clone())
        .base_url(server.base_url())
        .concurrency(8)
        .poll_every(Duration::from_millis(50))
        .attempt_timeout(VICTIM_ATTEMPT_TIMEOUT)
        .lease(VICTIM_LEASE)
        .owner("rescuer")
        .spawn()
        .unwrap();

    // The heartbeat extends the lease of every row the victim holds, in flight or ahead.
    let lease_secs = VICTIM_LEASE.as_secs_f64();
    until(Duration::from_secs(10), "every lease renewed", async || {
        let unrenewed = "SELECT count(*) FROM {table} AS o WHERE o.lease_owner = 'victim'
                AND $1 > 0 AND NOT EXISTS (SELECT 1 FROM {log} AS l
                    WHERE l.user_id = o.user_id AND l.old_lease = o.lease
                    AND l.lease = o.lease AND l.until > l.old_until)";
        db.held_by("victim").await == 32 && db.count(unrenewed, lease_secs).await == 0
    })
    .await;
    let pinged_before: Vec<String> = server
        .received()
        .into_iter()
        .filter_map(|r| r.user)
        .collect();
    let _ = workers.children[0].kill();
    let _ = workers.children[0].wait();
    let killed = Instant::now();
    let killed_at: f64 = sqlx::query_scalar("SELECT extract(epoch FROM clock_timestamp())::float8")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    answering.store(true, Ordering::SeqCst);
    let claimed_ahead = users.iter().filter(|u| !pinged_before.contains(u)).count();
    assert!(claimed_ahead >= 20, "{claimed_ahead} users claimed ahead");

    // Every one of them, in flight or ahead, pinged by the other worker well within the goal.
    until(
        STRANDED_AT_MOST,
        "every user pinged after the kill",
        async || {
            users.iter().all(|user| {
                server.answered().iter().any(|a| {
                    a.status == 200
                        && a.request.user.as_ref() == Some(user)
                        && a.request.at > killed
                })
            })
        },
    )
    .await;
    until(Duration::from_secs(10), "every row settled", async || {
        db.pending().await == 0
    })
    .await;
    rescuer.shutdown(Duration::from_secs(5)).await;

    // What the database recorded. A lease never reached more than one lease ahead...
    let too_long = "SELECT count(*) FROM {log} WHERE until > at + make_interval(secs => $1)";
    assert_eq!(db.count(too_long, lease_secs).await, 0);
    // ...nobody took a user while another's lease on it held...
    let early = "SELECT count(*) FROM {log} WHERE $1 > 0 AND old_lease IS NOT NULL
        AND lease IS NOT NULL AND lease <> old_lease AND at < old_until";
    assert_eq!(db.count(early, lease_secs).await, 0);
    // ...the victim's leases ended within a lease of its death (it renewed them until
    // then, not after)...
    let late = "SELECT count(*) FROM {log} WHERE owner = 'victim'
        AND until > to_timestamp($1) + make_interval(secs => $2)";
    let late = late.replace("$2", &lease_secs.to_string());
    assert_eq!(db.count(&late, killed_at).await, 0);
    // ...and the rescuer took each of its users once that lease had run out.
    let rescued = "SELECT count(DISTINCT user_id) FROM {log} WHERE $1 > 0 AND owner = 'rescuer'
        AND old_lease IS NOT NULL AND lease <> old_lease";
    assert_eq!(db.count(rescued, lease_secs).await, 32);
}

/// A TCP proxy on 127.0.0.1 in front of the database, which the test can cut: every
/// connection through it is closed, and new ones are accepted and closed at once, as a
/// database that went away; until it is restored.
struct DatabaseProxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    task: JoinHandle<()>,
}

impl DatabaseProxy {
    async fn start(database: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let task = tokio::spawn({
            let (up, links) = (up.clone(), links.clone());
            async move {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        continue;
                    };
                    if !up.load(Ordering::SeqCst) {
                        continue;
                    }
                    let database = database.clone();
                    let link = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&database).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    links.lock().unwrap().push(link);
                }
            }
        });
        Self {
            addr,
            up,
            links,
            task,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for DatabaseProxy {
    fn drop(&mut self) {
        self.task.abort();
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

/// A pool for a worker reaching the database through `proxy`, its sessions named
/// `application_name`.
async fn pool_through(db: &TestDb, proxy: &DatabaseProxy, application_name: &str) -> PgPool {
    let options = PgConnectOptions::from_str(&db.url)
        .unwrap()
        .host(&proxy.addr.ip().to_string())
        .port(proxy.addr.port())
        .application_name(application_name);
    PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(2))
        .connect_with(options)
        .await
        .unwrap()
}

impl TestDb {
    /// Ends the database sessions named `application_name`; returns how many there were.
    async fn terminate_sessions(&self, application_name: &str) -> usize {
        let ended: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(application_name)
        .fetch_all(&self.pool)
        .await
        .unwrap();
        ended.len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_lost_its_database_records_its_attempt_when_the_database_is_back() {
    let db = TestDb::new().await;
    let database = {
        let options = PgConnectOptions::from_str(&db.url).unwrap();
        format!("{}:{}", options.get_host(), options.get_port())
    };
    let proxy = DatabaseProxy::start(database).await;
    let application_name = format!("pp-outage-{}", db.schema);
    // The first request is answered after two seconds: the database goes away meanwhile.
    let first = Arc::new(AtomicBool::new(true));
    let server = FakeLivefyre::with_script({
        let first = first.clone();
        move |_| {
            if first.swap(false, Ordering::SeqCst) {
                Reply::status(200).after(Duration::from_secs(2))
            } else {
                Reply::status(200)
            }
        }
    })
    .await;
    let users = ["u1", "u2", "u3", "u4", "u5"];
    let mut tx = db.pool.begin().await.unwrap();
    for user in users {
        db.table.enqueue(&mut *tx, user).await.unwrap();
    }
    tx.commit().await.unwrap();
    // A lease far longer than the test: what it shows is not the lease running out.
    let lease = Duration::from_secs(60);
    let pool = pool_through(&db, &proxy, &application_name).await;
    let worker = OutboxWorker::builder(network(), pool, db.table.clone())
        .base_url(server.base_url())
        .concurrency(1)
        .poll_every(Duration::from_millis(50))
        .attempt_timeout(Duration::from_secs(5))
        .lease(lease)
        .spawn()
        .unwrap();

    until(Duration::from_secs(10), "the first request", async || {
        !server.received().is_empty()
    })
    .await;
    let slow = server.received()[0].user.clone().unwrap();
    // The database goes away for this worker while its request is in flight: its
    // connections are closed, its sessions ended, and it cannot connect again.
    proxy.cut();
    db.terminate_sessions(&application_name).await;
    // The user changes again meanwhile (the application still reaches the database).
    db.commit_change(&slow).await;
    let changed = Instant::now();
    until(Duration::from_secs(10), "the slow answer", async || {
        server
            .answered()
            .iter()
            .any(|a| a.request.user == Some(slow.clone()))
    })
    .await;
    // The worker has its answer but cannot record it: the row is still its claim.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let row = format!(
        "SELECT count(*) FROM {} WHERE user_id = $1 AND lease IS NOT NULL AND changes = 2",
        db.table.qualified_name()
    );
    let still_claimed: i64 = sqlx::query_scalar(&row)
        .bind(&slow)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        still_claimed, 1,
        "the attempt is not recorded while the database is away"
    );

    proxy.restore();
    let restored = Instant::now();
    // The answer is recorded at once: the change made during the attempt is pinged, and
    // the users claimed ahead are delivered, long before the lease could run out.
    until(
        STRANDED_AT_MOST,
        "the change during the outage pinged",
        async || server.pings_for(&slow).iter().any(|ping| ping.at > changed),
    )
    .await;
    until(STRANDED_AT_MOST, "every row settled", async || {
        db.pending().await == 0
    })
    .await;
    assert!(restored.elapsed() < lease / 2, "{:?}", restored.elapsed());
    for user in users {
        assert!(!server.pings_for(user).is_empty(), "{user} never pinged");
    }
    // It works through new sessions.
    let sessions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
            .bind(&application_name)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(sessions > 0);
    let report = worker.shutdown(Duration::from_secs(5)).await;
    assert!(report.undelivered.is_empty());
}
