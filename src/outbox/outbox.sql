-- The outbox's SQL, one statement per section. Placeholders, filled in once per table:
-- {schema} the quoted schema, {table} the quoted, schema-qualified table, {due_index} the
-- quoted index name ({leased_index}: an index earlier versions made), {lease_seq} the
-- qualified lease sequence, {channel} the LISTEN/NOTIFY channel. Names are checked
-- identifiers (see OutboxTable::new), never user input.

-- name: create
-- A claim changes only columns no index covers, and the table leaves half of each page
-- free (fillfactor), so PostgreSQL writes the claimed row next to the old one and no
-- index at all (a heap-only update): claims are most of the outbox's writes. Tables made
-- by earlier versions get the same: their index of leased rows is dropped.
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {table} (
    user_id text PRIMARY KEY,
    changes bigint NOT NULL DEFAULT 1,
    first_changed_at timestamptz NOT NULL DEFAULT now(),
    last_changed_at timestamptz NOT NULL DEFAULT now(),
    due_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    lease bigint,
    lease_owner text,
    lease_until timestamptz
) WITH (fillfactor = 50);
ALTER TABLE {table} SET (fillfactor = 50);
CREATE INDEX IF NOT EXISTS {due_index} ON {table} (due_at);
DROP INDEX IF EXISTS {schema}.{leased_index};
CREATE SEQUENCE IF NOT EXISTS {lease_seq};

-- name: enqueue
-- The notification is sent only if the transaction commits, and PostgreSQL folds
-- identical ones of one transaction into one.
WITH changed AS (
    INSERT INTO {table} AS o (user_id) VALUES ($1)
    ON CONFLICT (user_id) DO UPDATE
    SET changes = o.changes + 1, last_changed_at = now()
    RETURNING 1
)
SELECT pg_notify('{channel}', '') FROM changed

-- name: claim
-- Each claim takes a fresh number from the sequence: a lease token that is never
-- reused, even after the row is deleted and inserted again. The age of the first change,
-- by the database's clock, times the delivery (pingpull_ping_delivery_seconds). The
-- claimed rows are found again through the primary key as an array, whatever the
-- planner guesses of `LIMIT $3` (a prepared statement's generic plan would otherwise
-- hash the whole table).
WITH due AS (
    SELECT user_id FROM {table}
    WHERE due_at <= now() AND (lease_until IS NULL OR lease_until <= now())
    ORDER BY due_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE {table} AS o
SET lease = nextval('{lease_seq}'), lease_owner = $1,
    lease_until = now() + make_interval(secs => $2)
WHERE o.user_id = ANY (ARRAY(SELECT user_id FROM due))
RETURNING o.user_id, o.changes, o.lease, o.attempts,
    extract(epoch FROM now() - o.first_changed_at)::float8

-- name: delete_if_unchanged
-- The settling statements take arrays, one element per claim, so one round trip settles
-- many claims. Each changes a row only while it still carries the claim's lease, and
-- returns the leases of the rows it changed. They skip rows locked by a transaction in
-- progress (an `enqueue`): waiting for one while holding the batch's other rows could
-- deadlock with a transaction that changes several users. A claim skipped so is
-- settled again alone, after `lock_claimed`.
WITH settled AS (
    SELECT o.user_id, s.lease FROM {table} AS o
    JOIN unnest($1::text[], $2::bigint[], $3::bigint[]) AS s(user_id, lease, changes)
        ON o.user_id = s.user_id AND o.lease = s.lease AND o.changes = s.changes
    FOR UPDATE OF o SKIP LOCKED
)
DELETE FROM {table} AS o USING settled
WHERE o.user_id = settled.user_id
RETURNING settled.lease

-- name: requeue_now
WITH settled AS (
    SELECT o.user_id, s.lease FROM {table} AS o
    JOIN unnest($1::text[], $2::bigint[]) AS s(user_id, lease)
        ON o.user_id = s.user_id AND o.lease = s.lease
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE {table} AS o SET attempts = 0, due_at = now(),
    lease = NULL, lease_owner = NULL, lease_until = NULL
FROM settled WHERE o.user_id = settled.user_id
RETURNING settled.lease

-- name: retry_later
-- Matches and locks every claim's row first, then retries only those whose latest change
-- is young enough for the next attempt (each claim's delay in $3, in seconds; the maximum
-- age in $4). Returns each matched lease with whether it was retried: a matched row not
-- retried is too old and is finished, an unmatched one (lease lost, or held by a
-- transaction) is settled again alone. The age filter must not be part of the match, or a
-- young row that was merely locked would look too old and be deleted.
WITH settled AS (
    SELECT o.user_id, s.lease, s.delay,
        now() + make_interval(secs => s.delay) - o.last_changed_at
            <= make_interval(secs => $4) AS young
    FROM {table} AS o
    JOIN unnest($1::text[], $2::bigint[], $3::float8[]) AS s(user_id, lease, delay)
        ON o.user_id = s.user_id AND o.lease = s.lease
    FOR UPDATE OF o SKIP LOCKED
), retried AS (
    UPDATE {table} AS o SET attempts = o.attempts + 1,
        due_at = now() + make_interval(secs => settled.delay),
        lease = NULL, lease_owner = NULL, lease_until = NULL
    FROM settled WHERE o.user_id = settled.user_id AND settled.young
)
SELECT lease, young FROM settled

-- name: hold
WITH settled AS (
    SELECT o.user_id, s.lease, s.delay FROM {table} AS o
    JOIN unnest($1::text[], $2::bigint[], $3::float8[]) AS s(user_id, lease, delay)
        ON o.user_id = s.user_id AND o.lease = s.lease
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE {table} AS o SET due_at = now() + make_interval(secs => settled.delay),
    lease = NULL, lease_owner = NULL, lease_until = NULL
FROM settled WHERE o.user_id = settled.user_id
RETURNING settled.lease

-- name: lock_claimed
-- Inside a transaction, for a claim a settling statement skipped: waits for the
-- transaction holding the row (holding no other), then says whether the claim's lease
-- is still the row's.
SELECT 1 FROM {table} WHERE user_id = $1 AND lease = $2 FOR UPDATE

-- name: release_held
UPDATE {table} SET due_at = now() WHERE due_at > now() AND lease_until IS NULL

-- name: release_leases
-- Each row found through the primary key, by its user and its lease. A row a transaction
-- holds is skipped rather than waited for (a release must not hold up the settles behind
-- it): its lease runs out on its own.
WITH released AS (
    SELECT o.user_id FROM {table} AS o
    JOIN unnest($1::text[], $2::bigint[]) AS s(user_id, lease)
        ON o.user_id = s.user_id AND o.lease = s.lease
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE {table} AS o SET lease = NULL, lease_owner = NULL, lease_until = NULL
FROM released WHERE o.user_id = released.user_id

-- name: renew
-- The heartbeat: every lease a worker holds, in one statement, each row found through
-- the primary key by its user and its lease, so a lease another worker has taken since is
-- never extended. Writes only lease_until (a heap-only update, as a claim). A row a
-- transaction holds is skipped, not waited for: it is renewed at the next beat, or its
-- lease runs out. Returns the leases renewed.
WITH held AS (
    SELECT o.user_id, s.lease FROM {table} AS o
    JOIN unnest($1::text[], $2::bigint[]) AS s(user_id, lease)
        ON o.user_id = s.user_id AND o.lease = s.lease
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE {table} AS o SET lease_until = now() + make_interval(secs => $3)
FROM held WHERE o.user_id = held.user_id
RETURNING held.lease

-- name: next_due
-- Seconds until the next claimable row (not positive: one is due now; NULL: the table is
-- empty). First the first unleased or lapsed row by due_at: one probe of the due index,
-- past the leased rows. Only when that row is not due yet, the leased rows' lapses too. A
-- leased row is always due (only due rows are claimed, and whatever moves due_at clears
-- the lease), and then every due row is leased: they are read in due_at order, so the
-- plan is the due index whatever the statistics say, up to a bound far above the few
-- hundred rows a worker holds (past it, polling finds a lapsed lease).
WITH first AS (
    SELECT due_at FROM {table}
    WHERE lease_until IS NULL OR lease_until <= now()
    ORDER BY due_at LIMIT 1
)
SELECT extract(epoch FROM CASE
    WHEN (SELECT due_at FROM first) <= now() THEN (SELECT due_at FROM first)
    ELSE least(
        (SELECT due_at FROM first),
        (SELECT min(lease_until) FROM (
            SELECT lease_until FROM {table}
            WHERE due_at <= now() ORDER BY due_at LIMIT 100000
         ) AS leased WHERE lease_until > now()))
    END - now())::float8

-- name: backlog
-- Rows; how long the oldest due row has been due (claimed ones included: a stuck lease
-- shows); the age of the oldest first change. One scan of the table: for the gauges and
-- the health, at most once a second (or per poll interval if longer), not for every
-- wake-up.
SELECT count(*),
       extract(epoch FROM now() - min(due_at) FILTER (WHERE due_at <= now()))::float8,
       extract(epoch FROM now() - min(first_changed_at))::float8
FROM {table}

-- name: pending
SELECT count(*) FROM {table}
