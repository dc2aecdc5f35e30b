//! A fresh PostgreSQL schema with an outbox table for one test, so database tests run in
//! parallel. The database is `DATABASE_URL`, else [`DEFAULT_DATABASE_URL`]; an unreachable
//! one fails the test. A test cannot mark itself skipped at run time (libtest would count
//! it as passed), so a machine without PostgreSQL skips these tests with libtest's own
//! filter, which the summary counts: `cargo test --all-features -- --skip outbox`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pingpull::outbox::OutboxTable;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// Where PostgreSQL runs on a development machine and in CI, when `DATABASE_URL` is unset.
pub(crate) const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A schema of its own with an outbox table, dropped when this goes out of scope (also
/// when the test panics); a failed drop fails the test, so schemas never leak silently.
pub(crate) struct TestDb {
    pub(crate) url: String,
    pub(crate) pool: PgPool,
    pub(crate) schema: String,
    pub(crate) table: OutboxTable,
}

impl TestDb {
    /// A fresh schema.
    ///
    /// # Panics
    ///
    /// When the database cannot be reached: a machine without PostgreSQL must not report
    /// these tests as passed.
    pub(crate) async fn new() -> Self {
        let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "this test needs PostgreSQL at {} (DATABASE_URL, default \
                     {DEFAULT_DATABASE_URL}): {error}; without one, skip the database tests \
                     visibly with `cargo test --all-features -- --skip outbox`",
                    redact_password(&url)
                )
            });
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let schema = format!(
            "pp_test_{}_{nanos}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let table = OutboxTable::new(&schema, "outbox").unwrap();
        table.create(&pool).await.unwrap();
        Self {
            url,
            pool,
            schema,
            table,
        }
    }

    /// Records a change of `user` in a committed transaction of its own.
    pub(crate) async fn commit_change(&self, user: &str) {
        let mut tx = self.pool.begin().await.unwrap();
        self.table.enqueue(&mut *tx, user).await.unwrap();
        tx.commit().await.unwrap();
    }

    /// Rows waiting in the table.
    pub(crate) async fn pending(&self) -> u64 {
        self.table.pending(&self.pool).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let url = self.url.clone();
        let schema = self.schema.clone();
        // A runtime of its own: Drop may run while the test's runtime is unwinding.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime.block_on(async {
                let pool = PgPool::connect(&url)
                    .await
                    .map_err(|error| format!("connecting: {error}"))?;
                let dropped = sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                    .execute(&pool)
                    .await
                    .map(drop)
                    .map_err(|error| error.to_string());
                pool.close().await;
                dropped
            })
        })
        .join()
        .unwrap_or_else(|_| Err("the cleanup thread panicked".to_owned()));
        if let Err(error) = dropped
            && !std::thread::panicking()
        {
            panic!("could not drop schema {}: {error}", self.schema);
        }
    }
}

/// `url` without its password, for messages.
pub(crate) fn redact_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if url[scheme + 3..at].contains(':') => {
            let user_end = scheme + 3 + url[scheme + 3..at].find(':').unwrap();
            format!("{}:***{}", &url[..user_end], &url[at..])
        }
        _ => url.to_owned(),
    }
}
