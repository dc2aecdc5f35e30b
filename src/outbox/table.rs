//! The outbox table: its name, its schema, recording a change, and the claim/settle
//! statements workers deliver with.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::Postgres;
use sqlx::{Acquire, Executor, Row};
use tokio::time::Instant;

use crate::delivery::{Outcome, Settled};
use crate::user_id::{self, UserIdError};

/// The longest table name: room for the `_lease`, `_leased` and `_due` suffixes within
/// PostgreSQL's 63-byte identifiers.
const MAX_TABLE_NAME: usize = 56;
const MAX_SCHEMA_NAME: usize = 63;

/// Where the outbox lives: a schema and a table name, checked and quoted once.
///
/// Cheap to clone. Names are plain identifiers (`[A-Za-z_][A-Za-z0-9_]*`), so they are
/// never interpreted as SQL; they are quoted, so case is kept as written.
///
/// ```
/// use pingpull::outbox::OutboxTable;
///
/// let table = OutboxTable::new("app", "livefyre_outbox")?;
/// assert_eq!(table.qualified_name(), r#""app"."livefyre_outbox""#);
/// assert!(OutboxTable::new("app; drop table users", "t").is_err());
/// # Ok::<(), pingpull::outbox::OutboxError>(())
/// ```
#[derive(Clone)]
pub struct OutboxTable {
    qualified: String,
    /// The LISTEN/NOTIFY channel on which committed changes wake the workers.
    channel: String,
    pub(super) sql: std::sync::Arc<Statements>,
}

/// A stable name for the table's channel: FNV-1a of the qualified name (the same in every
/// process, unlike std's randomly keyed hashers), in hex.
fn channel_for(qualified: &str) -> String {
    let hash = qualified
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("pingpull_{hash:016x}")
}

/// The statements, rendered for one table from `outbox.sql`.
pub(super) struct Statements {
    create: String,
    enqueue: String,
    claim: String,
    pub(super) delete_if_unchanged: String,
    pub(super) requeue_now: String,
    pub(super) retry_later: String,
    pub(super) hold: String,
    pub(super) lock_claimed: String,
    release_held: String,
    release_leases: String,
    renew: String,
    next_due: String,
    backlog: String,
    pending: String,
}

/// The outbox's SQL, one statement per `-- name:` section, with placeholders.
const SQL: &str = include_str!("outbox.sql");

impl Statements {
    fn render(schema: &str, table: &str, channel: &str) -> Self {
        let names = [
            ("{schema}", format!("\"{schema}\"")),
            ("{table}", format!("\"{schema}\".\"{table}\"")),
            ("{due_index}", format!("\"{table}_due\"")),
            ("{leased_index}", format!("\"{table}_leased\"")),
            ("{lease_seq}", format!("\"{schema}\".\"{table}_lease\"")),
            ("{channel}", channel.to_owned()),
        ];
        let statement = |name: &str| {
            let sql = section(SQL, name).unwrap_or_default();
            names
                .iter()
                .fold(sql.to_owned(), |sql, (placeholder, value)| {
                    sql.replace(placeholder, value)
                })
        };
        Self {
            create: statement("create"),
            enqueue: statement("enqueue"),
            claim: statement("claim"),
            delete_if_unchanged: statement("delete_if_unchanged"),
            requeue_now: statement("requeue_now"),
            retry_later: statement("retry_later"),
            hold: statement("hold"),
            lock_claimed: statement("lock_claimed"),
            release_held: statement("release_held"),
            release_leases: statement("release_leases"),
            renew: statement("renew"),
            next_due: statement("next_due"),
            backlog: statement("backlog"),
            pending: statement("pending"),
        }
    }
}

/// The text of section `name` in `sql`: the lines after `-- name: {name}`, up to the next
/// section.
fn section<'a>(sql: &'a str, name: &str) -> Option<&'a str> {
    sql.split("-- name: ")
        .skip(1)
        .find_map(|section| section.strip_prefix(name)?.strip_prefix('\n'))
        .map(str::trim)
}

impl OutboxTable {
    /// The outbox table `table` in schema `schema`.
    ///
    /// # Errors
    ///
    /// [`OutboxError::InvalidName`] unless both are identifiers `[A-Za-z_][A-Za-z0-9_]*`
    /// (the schema at most 63 bytes, the table at most 56).
    pub fn new(schema: &str, table: &str) -> Result<Self, OutboxError> {
        check_identifier("schema", schema, MAX_SCHEMA_NAME)?;
        check_identifier("table", table, MAX_TABLE_NAME)?;
        let qualified = format!("\"{schema}\".\"{table}\"");
        let channel = channel_for(&qualified);
        let sql = Statements::render(schema, table, &channel);
        Ok(Self {
            qualified,
            channel,
            sql: std::sync::Arc::new(sql),
        })
    }

    /// The channel on which a committed [`enqueue`](Self::enqueue) notifies the workers
    /// (`LISTEN` to it to watch the outbox): `pingpull_` and a hash of the table's name,
    /// short enough for PostgreSQL's 63-byte channel names.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The quoted, schema-qualified name, as it appears in SQL.
    pub fn qualified_name(&self) -> &str {
        &self.qualified
    }

    /// Creates the schema, the table, its index and its lease sequence if they do not
    /// exist yet, and brings a table made by an earlier version up to date (half-full
    /// pages, no index of leased rows, so claims write no index). Safe to call from every
    /// instance at start-up: concurrent calls queue on an advisory lock.
    ///
    /// ```text
    /// user_id          text PRIMARY KEY   one row per user waiting for a ping
    /// changes          bigint             changes recorded since the row was created
    /// first_changed_at timestamptz        the first of them
    /// last_changed_at  timestamptz        the latest (the maximum age counts from it)
    /// due_at           timestamptz        when the next attempt may start
    /// attempts         integer            failed attempts since the last success or change
    /// lease            bigint             the claiming worker's lease token (never reused)
    /// lease_owner      text               which worker holds it (for people reading the table)
    /// lease_until      timestamptz        when the lease runs out and others may claim
    /// ```
    ///
    /// # Errors
    ///
    /// [`OutboxError::Database`] if a statement fails (e.g. no right to create the schema).
    pub async fn create<'a, A>(&self, connection: A) -> Result<(), OutboxError>
    where
        A: Acquire<'a, Database = Postgres>,
    {
        let mut tx = connection.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(&self.qualified)
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(&self.sql.create).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that `user_id`'s profile changed, as part of whatever transaction
    /// `executor` is in: pass `&mut *tx` inside the transaction that changes the profile,
    /// so a rolled-back change never pings and a committed one always will.
    ///
    /// Changes to a user already waiting coalesce into its row (`changes + 1`); a change
    /// while that user's ping is in flight makes the worker ping once more.
    ///
    /// # Errors
    ///
    /// [`OutboxError::InvalidUserId`] for an id that cannot stand in the ping URL
    /// (nothing is written), [`OutboxError::Database`] if the insert fails.
    pub async fn enqueue<'e, E>(&self, executor: E, user_id: &str) -> Result<(), OutboxError>
    where
        E: Executor<'e, Database = Postgres>,
    {
        user_id::validate_for_path(user_id).map_err(OutboxError::InvalidUserId)?;
        sqlx::query(&self.sql.enqueue)
            .bind(user_id)
            .execute(executor)
            .await?;
        Ok(())
    }

    /// Claims up to `limit` due users for `owner`, each under a lease of `lease`: until it
    /// runs out no other worker claims them. Workers call this; tests of the outbox's
    /// guarantees too (through `testing`).
    ///
    /// # Errors
    ///
    /// [`OutboxError::Database`] if the statement fails.
    pub(crate) async fn claim_due<'e, E>(
        &self,
        executor: E,
        owner: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<OutboxClaim>, OutboxError>
    where
        E: Executor<'e, Database = Postgres>,
    {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = sqlx::query(&self.sql.claim)
            .bind(owner)
            .bind(lease.as_secs_f64())
            .bind(limit)
            .fetch_all(executor)
            .await?;
        let now = Instant::now();
        rows.into_iter()
            .map(|row| {
                let age = seconds(row.try_get(4)?);
                Ok(OutboxClaim {
                    user_id: row.try_get(0)?,
                    changes: row.try_get(1)?,
                    lease: row.try_get(2)?,
                    attempts: u32::try_from(row.try_get::<i32, _>(3)?).unwrap_or(0),
                    since: now.checked_sub(age).unwrap_or(now),
                })
            })
            .collect()
    }

    /// Records how a claimed user's attempt ended, if the claim's lease is still the
    /// row's (else [`Settled::LeaseLost`] and nothing changes). A delivered user's row is
    /// deleted only if no change was recorded since the claim; otherwise it is due again
    /// at once. `max_age` bounds how long after its latest change a user keeps being
    /// retried; a user given up is deleted (a later change starts it afresh). Workers
    /// settle many claims at once ([`settle_batch`](Self::settle_batch)); this is one
    /// claim's batch, public for tests of the outbox's guarantees.
    ///
    /// # Errors
    ///
    /// [`OutboxError::Database`] if a statement fails; the row is then as it was, and is
    /// claimed again once the lease runs out.
    pub(crate) async fn settle(
        &self,
        connection: &mut sqlx::PgConnection,
        claim: &OutboxClaim,
        outcome: &Outcome,
        max_age: Duration,
    ) -> Result<Settled, OutboxError> {
        let settled = self
            .settle_batch(connection, &[(claim, outcome)], max_age)
            .await?;
        Ok(settled.first().copied().unwrap_or(Settled::LeaseLost))
    }

    /// Makes every unclaimed waiting user due now (after a 403 pause ends).
    pub(crate) async fn release_held(
        &self,
        connection: &mut sqlx::PgConnection,
    ) -> Result<(), OutboxError> {
        sqlx::query(&self.sql.release_held)
            .execute(connection)
            .await?;
        Ok(())
    }

    /// Gives up the given leases (each with its user) so other workers may claim those
    /// users at once. A row a transaction holds is skipped: its lease runs out on its own.
    pub(crate) async fn release_leases(
        &self,
        connection: &mut sqlx::PgConnection,
        leases: &[(String, i64)],
    ) -> Result<(), OutboxError> {
        let (users, leases): (Vec<&str>, Vec<i64>) = leases
            .iter()
            .map(|(user, lease)| (user.as_str(), *lease))
            .unzip();
        sqlx::query(&self.sql.release_leases)
            .bind(users)
            .bind(leases)
            .execute(connection)
            .await?;
        Ok(())
    }

    /// Extends each of the given leases (each with its user) to `lease` from now, if its
    /// row still carries it and no transaction holds the row; returns the leases extended.
    pub(crate) async fn renew_leases(
        &self,
        connection: &mut sqlx::PgConnection,
        leases: &[(String, i64)],
        lease: Duration,
    ) -> Result<Vec<i64>, OutboxError> {
        let (users, leases): (Vec<&str>, Vec<i64>) = leases
            .iter()
            .map(|(user, lease)| (user.as_str(), *lease))
            .unzip();
        let renewed = sqlx::query_scalar(&self.sql.renew)
            .bind(users)
            .bind(leases)
            .bind(lease.as_secs_f64())
            .fetch_all(connection)
            .await?;
        Ok(renewed)
    }

    /// Seconds until the next row may be claimed (`None`: the table is empty; not
    /// positive: one is due now), from the due index alone, however many rows wait. Workers
    /// call this when a claim found nothing; it is public for benchmarks.
    ///
    /// # Errors
    ///
    /// [`OutboxError::Database`] if the query fails.
    pub(crate) async fn next_due_in<'e, E>(&self, executor: E) -> Result<Option<f64>, OutboxError>
    where
        E: Executor<'e, Database = Postgres>,
    {
        let next: Option<f64> = sqlx::query_scalar(&self.sql.next_due)
            .fetch_one(executor)
            .await?;
        Ok(next)
    }

    /// The table's backlog, read from the whole table (one scan): its rows and how old the
    /// oldest are.
    pub(crate) async fn backlog<'e, E>(&self, executor: E) -> Result<Backlog, OutboxError>
    where
        E: Executor<'e, Database = Postgres>,
    {
        let row = sqlx::query(&self.sql.backlog).fetch_one(executor).await?;
        let count: i64 = row.try_get(0)?;
        let oldest_change: Option<f64> = row.try_get(2)?;
        Ok(Backlog {
            rows: u64::try_from(count).unwrap_or(0),
            oldest_due: seconds(row.try_get(1)?),
            oldest_change: oldest_change.map(|age| seconds(Some(age))),
        })
    }

    /// The rendered text of the statement named `name` in the outbox's SQL (`claim`,
    /// `next_due`, `backlog`, ...), for benchmarks that explain it; `None` for an unknown
    /// name.
    pub(crate) fn statement(&self, name: &str) -> Option<&str> {
        let sql = &self.sql;
        let statement = match name {
            "claim" => &sql.claim,
            "next_due" => &sql.next_due,
            "backlog" => &sql.backlog,
            "delete_if_unchanged" => &sql.delete_if_unchanged,
            "requeue_now" => &sql.requeue_now,
            "retry_later" => &sql.retry_later,
            "hold" => &sql.hold,
            "lock_claimed" => &sql.lock_claimed,
            "release_held" => &sql.release_held,
            "release_leases" => &sql.release_leases,
            "renew" => &sql.renew,
            "pending" => &sql.pending,
            _ => return None,
        };
        Some(statement)
    }

    /// The number of users waiting for a ping (claimed ones included).
    ///
    /// # Errors
    ///
    /// [`OutboxError::Database`] if the query fails.
    pub async fn pending<'e, E>(&self, executor: E) -> Result<u64, OutboxError>
    where
        E: Executor<'e, Database = Postgres>,
    {
        let count: i64 = sqlx::query_scalar(&self.sql.pending)
            .fetch_one(executor)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

/// The users waiting in the table, as [`OutboxTable::backlog`] read them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backlog {
    pub(crate) rows: u64,
    /// How long the oldest due row has been due (zero when none is).
    pub(crate) oldest_due: Duration,
    /// The age of the oldest first change (`None`: the table is empty).
    pub(crate) oldest_change: Option<Duration>,
}

impl fmt::Debug for OutboxTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OutboxTable").field(&self.qualified).finish()
    }
}

/// A user claimed from the outbox: what settling it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxClaim {
    user_id: String,
    changes: i64,
    lease: i64,
    attempts: u32,
    /// The row's first change, on this process's clock.
    since: Instant,
}

impl OutboxClaim {
    /// The claimed user.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The row's change counter when it was claimed.
    pub fn changes(&self) -> i64 {
        self.changes
    }

    /// The lease token: settling succeeds only while the row still carries it.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// Failed attempts before this claim.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// When the row's first change was recorded (`first_changed_at`), on this process's
    /// clock, as of the claim.
    pub fn pending_since(&self) -> Instant {
        self.since
    }

    /// A claim of `user_id` under `lease`, for unit tests that need no database.
    #[cfg(test)]
    pub(crate) fn for_tests(user_id: &str, lease: i64) -> Self {
        Self {
            user_id: user_id.to_owned(),
            changes: 1,
            lease,
            attempts: 0,
            since: Instant::now(),
        }
    }
}

/// Seconds from the database as a duration: negative (clocks apart) or not finite is zero.
fn seconds(value: Option<f64>) -> Duration {
    value
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(Duration::ZERO, |s| Duration::from_secs_f64(s.min(1e9)))
}

/// Why an outbox operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum OutboxError {
    /// A schema or table name is not a plain identifier; which, and the name.
    InvalidName {
        /// `schema` or `table`.
        what: &'static str,
        /// The name given.
        name: String,
    },
    /// The user id cannot stand in the ping URL; nothing was written.
    InvalidUserId(UserIdError),
    /// The database refused or could not be reached.
    Database(sqlx::Error),
}

impl fmt::Display for OutboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName { what, name } => write!(
                f,
                "outbox {what} name must match [A-Za-z_][A-Za-z0-9_]* and be short enough: got `{name}`"
            ),
            Self::InvalidUserId(error) => write!(f, "not recorded: {error}"),
            Self::Database(error) => write!(f, "outbox database error: {error}"),
        }
    }
}

impl std::error::Error for OutboxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Database(error) => Some(error),
            _ => None,
        }
    }
}

impl OutboxError {
    /// Whether the database could not be reached, or the connection broke (PostgreSQL
    /// restarting or shutting down, the network, a pool with no connection to give): a
    /// passing condition, unlike a refused statement. What was being written may be
    /// written again once the database is back.
    pub(crate) fn is_connection_lost(&self) -> bool {
        let Self::Database(error) = self else {
            return false;
        };
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(error) => error.code().is_some_and(|code| {
                // Class 08: connection exceptions. 57P01-57P03: the server is shutting
                // down, crashed, or not accepting connections yet.
                code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
            }),
            _ => false,
        }
    }
}

impl From<sqlx::Error> for OutboxError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error)
    }
}

fn check_identifier(what: &'static str, name: &str, max: usize) -> Result<(), OutboxError> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if first_ok && name.len() <= max && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(())
    } else {
        Err(OutboxError::InvalidName {
            what,
            name: name.to_owned(),
        })
    }
}

/// The store's error as the engine sees it: a settling error is shared by every claim
/// of the flush it failed.
pub(crate) type StoreError = Arc<OutboxError>;

#[cfg(test)]
impl Statements {
    fn all(&self) -> [&str; 14] {
        [
            &self.create,
            &self.enqueue,
            &self.claim,
            &self.delete_if_unchanged,
            &self.requeue_now,
            &self.retry_later,
            &self.hold,
            &self.lock_claimed,
            &self.release_held,
            &self.release_leases,
            &self.renew,
            &self.next_due,
            &self.backlog,
            &self.pending,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_is_in_the_sql_file_with_its_placeholders_filled() {
        let table = OutboxTable::new("app", "outbox").unwrap();
        let sql = &table.sql;
        for statement in sql.all() {
            assert!(!statement.is_empty());
            assert!(!statement.contains('{'), "{statement}");
            assert!(!statement.contains("-- name:"), "{statement}");
        }
        assert!(
            sql.create
                .contains(r#"CREATE INDEX IF NOT EXISTS "outbox_due" ON "app"."outbox""#)
        );
        assert!(
            sql.create
                .contains(r#"DROP INDEX IF EXISTS "app"."outbox_leased""#)
        );
        assert!(sql.create.contains("fillfactor"));
        assert!(sql.claim.contains(r#"nextval('"app"."outbox_lease"')"#));
        assert!(
            sql.enqueue
                .contains(&format!("pg_notify('{}'", table.channel()))
        );
        assert_eq!(sql.pending, r#"SELECT count(*) FROM "app"."outbox""#);
    }

    #[test]
    fn a_lost_connection_is_told_apart_from_a_refused_statement() {
        let lost = [
            sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()),
            sqlx::Error::Protocol("unexpected end of stream".into()),
            sqlx::Error::PoolTimedOut,
            sqlx::Error::WorkerCrashed,
        ];
        for error in lost {
            assert!(OutboxError::from(error).is_connection_lost());
        }
        // The application closed the pool: nothing will come back.
        for error in [sqlx::Error::PoolClosed, sqlx::Error::RowNotFound] {
            assert!(!OutboxError::from(error).is_connection_lost());
        }
        assert!(!OutboxError::InvalidUserId(UserIdError::Empty).is_connection_lost());
    }

    #[test]
    fn accepts_plain_identifiers_and_quotes_them() {
        let table = OutboxTable::new("Tenant_1", "_outbox9").unwrap();
        assert_eq!(table.qualified_name(), "\"Tenant_1\".\"_outbox9\"");
    }

    #[test]
    fn refuses_names_that_are_not_plain_identifiers() {
        let long = "t".repeat(57);
        for (schema, table) in [
            ("", "t"),
            ("s", ""),
            ("1s", "t"),
            ("s\"", "t"),
            ("s", "t x"),
            ("s", "t;drop"),
            ("sé", "t"),
            ("s", long.as_str()),
        ] {
            let error = OutboxTable::new(schema, table).unwrap_err();
            assert!(
                matches!(error, OutboxError::InvalidName { .. }),
                "{schema:?}.{table:?}"
            );
            assert!(error.to_string().contains("must match"));
        }
        assert!(OutboxTable::new("s", &"t".repeat(56)).is_ok());
    }
}
