//! Writing a batch of outcomes to the table: one statement per kind of outcome for any
//! number of claims, each row matched by its claim's lease, so a claim whose lease ran out
//! changes nothing, however many others share its statement. The completer decides which
//! outcomes go together; this writes them.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sqlx::PgConnection;

use super::table::{OutboxClaim, OutboxError, OutboxTable, Statements};
use crate::delivery::{Outcome, Settled};

impl OutboxTable {
    /// Settles many claims at once, as [`settle`](Self::settle) settles one, in at most
    /// four statements whatever their number: retries, holds, deletions of finished
    /// users, and new requests for users that changed during their attempt. Returns what
    /// became of each claim, in order. Workers call this; it is public for tests of the
    /// outbox's guarantees.
    ///
    /// # Errors
    ///
    /// [`OutboxError::Database`] if a statement fails; rows not settled by then are as
    /// they were, and are claimed again once their leases run out.
    pub(crate) async fn settle_batch(
        &self,
        connection: &mut PgConnection,
        settles: &[(&OutboxClaim, &Outcome)],
        max_age: Duration,
    ) -> Result<Vec<Settled>, OutboxError> {
        let mut batch = SettleBatch::new(settles);
        batch.run(&self.sql, connection, max_age).await?;
        Ok(batch
            .into_results()
            .into_iter()
            .map(settled_or_lost)
            .collect())
    }
}

/// A claim left unsettled by a batch that ran to its end matched no row: not ours.
fn settled_or_lost(result: Option<Settled>) -> Settled {
    result.unwrap_or(Settled::LeaseLost)
}

/// Claims being settled together, and what has become of each so far.
pub(super) struct SettleBatch<'a> {
    settles: &'a [(&'a OutboxClaim, &'a Outcome)],
    results: Vec<Option<Settled>>,
}

impl<'a> SettleBatch<'a> {
    pub(super) fn new(settles: &'a [(&'a OutboxClaim, &'a Outcome)]) -> Self {
        Self {
            settles,
            results: vec![None; settles.len()],
        }
    }

    /// What became of each claim; `None` for those a failed statement left as they were.
    pub(super) fn into_results(self) -> Vec<Option<Settled>> {
        self.results
    }

    /// Runs the statements, then settles alone each claim they did not match (a lost
    /// lease, or a row a transaction held). On an error, the claims settled before it
    /// keep their result.
    pub(super) async fn run(
        &mut self,
        sql: &Statements,
        connection: &mut PgConnection,
        max_age: Duration,
    ) -> Result<(), OutboxError> {
        self.run_statements(sql, connection, max_age).await?;
        self.settle_skipped(sql, connection, max_age).await
    }

    /// Settles alone, one transaction each, the claims the statements did not match: each
    /// first waits for its row if a transaction holds it, so this may take as long as
    /// that transaction.
    async fn settle_skipped(
        &mut self,
        sql: &Statements,
        connection: &mut PgConnection,
        max_age: Duration,
    ) -> Result<(), OutboxError> {
        for i in 0..self.settles.len() {
            if self.results[i] == Some(Settled::LeaseLost) {
                self.results[i] = None;
                let settled = settle_alone(self.settles[i], sql, connection, max_age).await?;
                self.results[i] = Some(settled);
            }
        }
        Ok(())
    }

    /// One statement per kind of outcome present, over all the claims of that kind. They
    /// never wait for a lock: a claim whose row a transaction holds is left as `LeaseLost`
    /// for [`settle_skipped`](Self::settle_skipped).
    pub(super) async fn run_statements(
        &mut self,
        sql: &Statements,
        connection: &mut PgConnection,
        max_age: Duration,
    ) -> Result<(), OutboxError> {
        // Retries first: a user too old to be retried is then finished as given up.
        let retries = self.unsettled(|outcome| matches!(outcome, Outcome::RetryAfter(..)));
        if !retries.is_empty() {
            let query = sqlx::query_as::<_, (i64, bool)>(&sql.retry_later)
                .bind(self.users(&retries))
                .bind(self.leases(&retries))
                .bind(self.delays(&retries))
                .bind(max_age.as_secs_f64());
            // Each matched lease, with whether it was young enough to be retried.
            let answered: HashMap<i64, bool> = query
                .fetch_all(&mut *connection)
                .await?
                .into_iter()
                .collect();
            for &i in &retries {
                self.results[i] = match answered.get(&self.settles[i].0.lease()) {
                    Some(true) => Some(Settled::Waiting),
                    // Too old: left for `finish`, which ends it as given up.
                    Some(false) => None,
                    // Not ours any more, or held by a transaction: settled again alone.
                    None => Some(Settled::LeaseLost),
                };
            }
        }
        let holds = self.unsettled(|outcome| matches!(outcome, Outcome::Hold(_)));
        if !holds.is_empty() {
            let query = sqlx::query_scalar(&sql.hold)
                .bind(self.users(&holds))
                .bind(self.leases(&holds))
                .bind(self.delays(&holds));
            let held = matched(query.fetch_all(&mut *connection).await?);
            self.record(
                &holds,
                &held,
                |_| Settled::Waiting,
                Some(Settled::LeaseLost),
            );
        }
        self.finish(sql, connection).await
    }

    /// Deletes the rows of finished users (delivered, given up, too old to retry) unless
    /// a change was recorded since their claim; those are due again at once, for one
    /// more request; the rest were not ours any more.
    async fn finish(
        &mut self,
        sql: &Statements,
        connection: &mut PgConnection,
    ) -> Result<(), OutboxError> {
        let finished = self.unsettled(|_| true);
        if finished.is_empty() {
            return Ok(());
        }
        let changes: Vec<i64> = finished
            .iter()
            .map(|&i| self.settles[i].0.changes())
            .collect();
        let query = sqlx::query_scalar(&sql.delete_if_unchanged)
            .bind(self.users(&finished))
            .bind(self.leases(&finished))
            .bind(changes);
        let deleted = matched(query.fetch_all(&mut *connection).await?);
        let done = |outcome: &Outcome| match outcome {
            Outcome::Delivered => Settled::Done,
            _ => Settled::GivenUp,
        };
        self.record(&finished, &deleted, done, None);
        let changed = self.unsettled(|_| true);
        if changed.is_empty() {
            return Ok(());
        }
        let query = sqlx::query_scalar(&sql.requeue_now)
            .bind(self.users(&changed))
            .bind(self.leases(&changed));
        let requeued = matched(query.fetch_all(&mut *connection).await?);
        self.record(
            &changed,
            &requeued,
            |_| Settled::Waiting,
            Some(Settled::LeaseLost),
        );
        Ok(())
    }

    /// The positions of the claims not settled yet whose outcome is `wanted`.
    fn unsettled(&self, wanted: impl Fn(&Outcome) -> bool) -> Vec<usize> {
        (0..self.settles.len())
            .filter(|&i| self.results[i].is_none() && wanted(self.settles[i].1))
            .collect()
    }

    fn users(&self, picked: &[usize]) -> Vec<String> {
        let user = |&i: &usize| self.settles[i].0.user_id().to_owned();
        picked.iter().map(user).collect()
    }

    fn leases(&self, picked: &[usize]) -> Vec<i64> {
        picked.iter().map(|&i| self.settles[i].0.lease()).collect()
    }

    /// Each picked claim's delay before its next attempt, in seconds.
    fn delays(&self, picked: &[usize]) -> Vec<f64> {
        let delay = |&i: &usize| match self.settles[i].1 {
            Outcome::RetryAfter(delay, _) | Outcome::Hold(delay) => delay.as_secs_f64(),
            _ => 0.0,
        };
        picked.iter().map(delay).collect()
    }

    /// Records `hit(outcome)` for the picked claims whose lease a statement matched, and
    /// `missed` (if any) for the others, which stay unsettled otherwise.
    fn record(
        &mut self,
        picked: &[usize],
        matched: &HashSet<i64>,
        hit: impl Fn(&Outcome) -> Settled,
        missed: Option<Settled>,
    ) {
        for &i in picked {
            let (claim, outcome) = self.settles[i];
            self.results[i] = if matched.contains(&claim.lease()) {
                Some(hit(outcome))
            } else {
                missed
            };
        }
    }
}

/// Settles one claim that the batch's statements skipped, in a transaction that first
/// waits for its row (a change being recorded holds it) and holds no other row meanwhile.
pub(super) async fn settle_alone(
    settle: (&OutboxClaim, &Outcome),
    sql: &Statements,
    connection: &mut PgConnection,
    max_age: Duration,
) -> Result<Settled, OutboxError> {
    let mut tx = sqlx::Connection::begin(connection).await?;
    match settle_locked(settle, sql, &mut tx, max_age).await {
        Ok(settled) => {
            tx.commit().await?;
            Ok(settled)
        }
        Err(error) => {
            // Ended now, not when the connection is next used: it holds a table lock.
            let _ = tx.rollback().await;
            Err(error)
        }
    }
}

async fn settle_locked(
    settle: (&OutboxClaim, &Outcome),
    sql: &Statements,
    connection: &mut PgConnection,
    max_age: Duration,
) -> Result<Settled, OutboxError> {
    let (claim, _) = settle;
    let ours = sqlx::query(&sql.lock_claimed)
        .bind(claim.user_id())
        .bind(claim.lease())
        .fetch_optional(&mut *connection)
        .await?;
    if ours.is_none() {
        return Ok(Settled::LeaseLost);
    }
    let alone = [settle];
    let mut batch = SettleBatch::new(&alone);
    batch.run_statements(sql, connection, max_age).await?;
    Ok(settled_or_lost(
        batch.into_results().into_iter().next().flatten(),
    ))
}

/// The leases a settling statement returned: the rows it changed.
fn matched(leases: Vec<i64>) -> HashSet<i64> {
    leases.into_iter().collect()
}
