-- The outbox's SQL, one statement per section. Placeholders, filled in once per table:
-- {schema} the quoted schema, {table} the quoted, schema-qualified table, {due_index} the
-- quoted index name, {lease_seq} the qualified lease sequence, {channel} the LISTEN/NOTIFY
-- channel. Names are checked identifiers (see OutboxTable::new), never user input.

-- name: create
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
);
CREATE INDEX IF NOT EXISTS {due_index} ON {table} (due_at);
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
-- by the database's clock, times the delivery (pingpull_ping_delivery_seconds).
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
FROM due WHERE o.user_id = due.user_id
RETURNING o.user_id, o.changes, o.lease, o.attempts,
    extract(epoch FROM now() - o.first_changed_at)::float8

-- name: delete_if_unchanged
DELETE FROM {table} WHERE user_id = $1 AND lease = $2 AND changes = $3

-- name: requeue_now
UPDATE {table} SET attempts = 0, due_at = now(),
    lease = NULL, lease_owner = NULL, lease_until = NULL
WHERE user_id = $1 AND lease = $2

-- name: retry_later
-- Only while the latest change is young enough for the next attempt.
UPDATE {table} SET attempts = attempts + 1,
    due_at = now() + make_interval(secs => $3),
    lease = NULL, lease_owner = NULL, lease_until = NULL
WHERE user_id = $1 AND lease = $2
  AND now() + make_interval(secs => $3) - last_changed_at <= make_interval(secs => $4)

-- name: hold
UPDATE {table} SET due_at = now() + make_interval(secs => $3),
    lease = NULL, lease_owner = NULL, lease_until = NULL
WHERE user_id = $1 AND lease = $2

-- name: release_held
UPDATE {table} SET due_at = now() WHERE due_at > now() AND lease_until IS NULL

-- name: release_leases
UPDATE {table} SET lease = NULL, lease_owner = NULL, lease_until = NULL
WHERE lease = ANY($1)

-- name: next_due
-- Rows; seconds until the next claimable row; how long the oldest due row has been due
-- (claimed ones included: a stuck lease shows); the age of the oldest first change.
SELECT count(*),
       extract(epoch FROM min(greatest(due_at, coalesce(lease_until, due_at))) - now())::float8,
       extract(epoch FROM now() - min(due_at) FILTER (WHERE due_at <= now()))::float8,
       extract(epoch FROM now() - min(first_changed_at))::float8
FROM {table}

-- name: pending
SELECT count(*) FROM {table}
