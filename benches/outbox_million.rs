//! The outbox's statements with a million rows waiting: how long a worker's claim, its
//! batched settle, its wake-up query (`next_due`) and its backlog reading take, and
//! the plans PostgreSQL picks for them.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench outbox_million
//! ```
//!
//! Fills a table in a schema of its own with 1,000,000 rows (a due backlog, a share held
//! for later, some leased by another worker), prints the median and 90th-percentile
//! latency of each statement over a few dozen runs, then `EXPLAIN ANALYZE` of each, the
//! claim also under a generic plan (what a prepared statement may switch to), and drops
//! the schema. Without DATABASE_URL it says so and does nothing.

use std::time::{Duration, Instant};

use pingpull::outbox::OutboxTable;
use pingpull::testing::{OutboxTableHooks as _, Outcome};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};

const ROWS: u64 = 1_000_000;
/// Rows held for later (a 403 pause, retries), due within the next hour.
const HELD: u64 = 50_000;
/// Rows another worker holds under a lease.
const LEASED: usize = 1_000;
/// What a worker of concurrency 16 claims per statement.
const CLAIM: usize = 256;
const RUNS: usize = 40;
const LEASE: Duration = Duration::from_secs(300);

fn main() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        println!("outbox_million: skipped (set DATABASE_URL to measure it)");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .unwrap();
        let schema = format!("pingpull_million_{}", std::process::id());
        let _drop = DropSchema {
            url: url.clone(),
            schema: schema.clone(),
        };
        let table = OutboxTable::new(&schema, "outbox").unwrap();
        measure(pool, table).await;
    });
}

/// Drops the bench's schema when it ends, also when it panics.
struct DropSchema {
    url: String,
    schema: String,
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // A runtime of its own: the bench's may be unwinding.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let pool = PgPool::connect(&url).await?;
                let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                sqlx::raw_sql(&drop).execute(&pool).await.map(|_| ())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop schema {}: {dropped:?}", self.schema);
        }
    }
}

async fn measure(pool: PgPool, table: OutboxTable) {
    let filled = Instant::now();
    fill(&pool, &table).await;
    println!(
        "{ROWS} rows ({HELD} held for later, {LEASED} leased by another worker) in {:.1?}",
        filled.elapsed()
    );
    // Each claimed batch is settled before the next claim, as a worker does.
    let (mut claim_times, mut settle_times) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let start = Instant::now();
        let claims = table.claim_due(&pool, "bench", LEASE, CLAIM).await.unwrap();
        claim_times.push(start.elapsed());
        assert_eq!(claims.len(), CLAIM);
        let settles: Vec<_> = claims.iter().map(|c| (c, &Outcome::Delivered)).collect();
        let mut connection = pool.acquire().await.unwrap();
        let start = Instant::now();
        let settled = table
            .settle_batch(&mut connection, &settles, Duration::from_secs(86_400))
            .await
            .unwrap();
        settle_times.push(start.elapsed());
        assert_eq!(settled.len(), CLAIM);
    }
    report(&format!("claim of {CLAIM} rows"), &claim_times);
    report(&format!("settle of {CLAIM} delivered"), &settle_times);
    let next_due_times = latencies(|| async {
        let next = table.next_due_in(&pool).await.unwrap();
        assert!(next.is_some_and(|secs| secs <= 0.0), "a backlog is due");
    })
    .await;
    report("next_due (wake-up)", &next_due_times);
    let backlog = table.statement("backlog").unwrap();
    let backlog_times = latencies(|| async {
        sqlx::query(backlog).fetch_one(&pool).await.unwrap();
    })
    .await;
    report("backlog (count and ages, one scan)", &backlog_times);
    explain_all(&pool, &table).await;
    // Every row held for later but the leased ones (a pause, say), without a fresh
    // ANALYZE: the statistics still show a due backlog.
    let hold = format!(
        "UPDATE {} SET due_at = now() + interval '1 hour' WHERE lease IS NULL",
        table.qualified_name()
    );
    sqlx::query(&hold).execute(&pool).await.unwrap();
    let next_due_times = latencies(|| async {
        let next = table.next_due_in(&pool).await.unwrap();
        assert!(
            next.is_some_and(|secs| secs > 0.0),
            "nothing is due: {next:?}"
        );
    })
    .await;
    report("next_due, only leased rows due", &next_due_times);
    let next_due = format!(
        "EXPLAIN (ANALYZE, COSTS OFF) {}",
        table.statement("next_due").unwrap()
    );
    let plan = sqlx::raw_sql(&next_due).fetch_all(&pool).await;
    print_plan("next_due, only leased rows due", plan);
}

/// One row per user: a due backlog spread over the past day, a share due in the next
/// hour, then `LEASED` of the due ones claimed by another worker.
async fn fill(pool: &PgPool, table: &OutboxTable) {
    table.create(pool).await.unwrap();
    let insert = format!(
        "INSERT INTO {} (user_id, changes, first_changed_at, last_changed_at, due_at)
         SELECT 'user' || g, 1 + g % 3, now() - interval '1 day' * random(),
                now() - interval '1 hour' * random(),
                CASE WHEN g % ($1::bigint / $2::bigint) = 0
                     THEN now() + interval '1 hour' * random()
                     ELSE now() - interval '1 day' * random() END
         FROM generate_series(1, $1::bigint) AS g",
        table.qualified_name()
    );
    let (rows, held) = (ROWS as i64, HELD as i64);
    sqlx::query(&insert)
        .bind(rows)
        .bind(held)
        .execute(pool)
        .await
        .unwrap();
    let leased = table.claim_due(pool, "other", LEASE, LEASED).await.unwrap();
    assert_eq!(leased.len(), LEASED);
    sqlx::raw_sql(&format!("VACUUM ANALYZE {}", table.qualified_name()))
        .execute(pool)
        .await
        .unwrap();
}

/// Runs `run` `RUNS` times; how long each took.
async fn latencies<F: Future<Output = ()>>(run: impl Fn() -> F) -> Vec<Duration> {
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        run().await;
        times.push(start.elapsed());
    }
    times
}

fn report(what: &str, times: &[Duration]) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    let p90 = sorted[sorted.len() * 9 / 10];
    println!("{what:34} median {median:>9.2?}   p90 {p90:>9.2?}   ({RUNS} runs)");
}

/// Prints `EXPLAIN ANALYZE` of the statements a worker runs most, on one connection; the
/// claim's side effects (rows leased) stay in the bench's schema.
async fn explain_all(pool: &PgPool, table: &OutboxTable) {
    let mut connection = pool.acquire().await.unwrap();
    let claim = table.statement("claim").unwrap();
    let prepare = format!("PREPARE bench_claim(text, float8, bigint) AS {claim}");
    sqlx::raw_sql(&prepare)
        .execute(&mut *connection)
        .await
        .unwrap();
    let plans = [
        (
            "claim (custom plan)",
            "auto",
            "bench_claim('bench', 300, 64)",
        ),
        (
            "claim (generic plan)",
            "force_generic_plan",
            "bench_claim('bench', 300, 64)",
        ),
    ];
    for (what, mode, execute) in plans {
        let sql =
            format!("SET plan_cache_mode = {mode}; EXPLAIN (ANALYZE, COSTS OFF) EXECUTE {execute}");
        print_plan(what, sqlx::raw_sql(&sql).fetch_all(&mut *connection).await);
    }
    sqlx::raw_sql("RESET plan_cache_mode; DEALLOCATE bench_claim")
        .execute(&mut *connection)
        .await
        .unwrap();
    for name in ["next_due", "backlog"] {
        let sql = format!(
            "EXPLAIN (ANALYZE, COSTS OFF) {}",
            table.statement(name).unwrap()
        );
        print_plan(name, sqlx::raw_sql(&sql).fetch_all(&mut *connection).await);
    }
    let delete = format!(
        "EXPLAIN (ANALYZE, COSTS OFF) {}",
        table.statement("delete_if_unchanged").unwrap()
    );
    let users: Vec<String> = (1..=64).map(|i| format!("user{}", i * 7)).collect();
    let plan = sqlx::query(&delete)
        .bind(users)
        .bind(vec![0_i64; 64])
        .bind(vec![1_i64; 64])
        .fetch_all(&mut *connection)
        .await;
    print_plan("settle (delete_if_unchanged, 64)", plan);
}

fn print_plan(what: &str, rows: Result<Vec<sqlx::postgres::PgRow>, sqlx::Error>) {
    println!("\nEXPLAIN ANALYZE {what}:");
    for row in rows.unwrap() {
        // `SET` in the same batch answers no row; the plan's rows are text.
        if let Ok(line) = row.try_get::<String, _>(0) {
            println!("  {line}");
        }
    }
}
