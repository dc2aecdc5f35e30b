//! Hooks for pingpull's own tests, benchmarks and fuzz targets, in one place: not
//! supported API, hidden from the docs, and free to change in any release.

#[cfg(feature = "ping")]
pub use crate::delivery::{Outcome, Settled};
#[cfg(feature = "ping")]
pub use crate::http::parse_retry_after;
#[cfg(feature = "postgres")]
pub use outbox::{OutboxClaim, OutboxTableHooks};

/// Makes `pinger`'s delivery loop panic at its next turn, for tests of what a dead
/// delivery task shows (the log, `health()`, `ping`'s error).
#[cfg(feature = "ping")]
pub fn panic_the_delivery_loop(pinger: &crate::ping::Pinger) {
    pinger.request_panic();
}

#[cfg(feature = "postgres")]
mod outbox {
    use std::future::Future;
    use std::time::Duration;

    use sqlx::{Executor, PgConnection, Postgres};

    use crate::delivery::{Outcome, Settled};
    pub use crate::outbox::table::OutboxClaim;
    use crate::outbox::{OutboxError, OutboxTable};

    /// Claiming and settling by hand, as a worker does, for tests of the outbox's
    /// guarantees and for benchmarks of its statements.
    pub trait OutboxTableHooks {
        /// Claims up to `limit` due users for `owner`, each under a lease of `lease`.
        fn claim_due<'e, E>(
            &self,
            executor: E,
            owner: &str,
            lease: Duration,
            limit: usize,
        ) -> impl Future<Output = Result<Vec<OutboxClaim>, OutboxError>> + Send
        where
            E: Executor<'e, Database = Postgres> + 'e;

        /// Records how one claimed user's attempt ended.
        fn settle(
            &self,
            connection: &mut PgConnection,
            claim: &OutboxClaim,
            outcome: &Outcome,
            max_age: Duration,
        ) -> impl Future<Output = Result<Settled, OutboxError>> + Send;

        /// Records how many claimed users' attempts ended, in at most four statements.
        fn settle_batch(
            &self,
            connection: &mut PgConnection,
            settles: &[(&OutboxClaim, &Outcome)],
            max_age: Duration,
        ) -> impl Future<Output = Result<Vec<Settled>, OutboxError>> + Send;

        /// Seconds until the next row may be claimed, from the due index alone.
        fn next_due_in<'e, E>(
            &self,
            executor: E,
        ) -> impl Future<Output = Result<Option<f64>, OutboxError>> + Send
        where
            E: Executor<'e, Database = Postgres> + 'e;

        /// The rendered text of the statement named `name` (`claim`, `next_due`, ...).
        fn statement(&self, name: &str) -> Option<&str>;
    }

    impl OutboxTableHooks for OutboxTable {
        fn claim_due<'e, E>(
            &self,
            executor: E,
            owner: &str,
            lease: Duration,
            limit: usize,
        ) -> impl Future<Output = Result<Vec<OutboxClaim>, OutboxError>> + Send
        where
            E: Executor<'e, Database = Postgres> + 'e,
        {
            OutboxTable::claim_due(self, executor, owner, lease, limit)
        }

        fn settle(
            &self,
            connection: &mut PgConnection,
            claim: &OutboxClaim,
            outcome: &Outcome,
            max_age: Duration,
        ) -> impl Future<Output = Result<Settled, OutboxError>> + Send {
            OutboxTable::settle(self, connection, claim, outcome, max_age)
        }

        fn settle_batch(
            &self,
            connection: &mut PgConnection,
            settles: &[(&OutboxClaim, &Outcome)],
            max_age: Duration,
        ) -> impl Future<Output = Result<Vec<Settled>, OutboxError>> + Send {
            OutboxTable::settle_batch(self, connection, settles, max_age)
        }

        fn next_due_in<'e, E>(
            &self,
            executor: E,
        ) -> impl Future<Output = Result<Option<f64>, OutboxError>> + Send
        where
            E: Executor<'e, Database = Postgres> + 'e,
        {
            OutboxTable::next_due_in(self, executor)
        }

        fn statement(&self, name: &str) -> Option<&str> {
            OutboxTable::statement(self, name)
        }
    }
}
