-- The coordinator's whole schema on PostgreSQL, in the connection's current schema (its search_path).
-- store.SCHEMA_VERSION is written to meta ('schema_version') after it. Times are seconds since the epoch on the
-- server's clock, so workers on hosts with skewed clocks agree.

CREATE TABLE meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE workers (
    worker_id         text PRIMARY KEY,
    status            text NOT NULL CHECK (status IN ('active', 'dead', 'retired')),
    incarnation       integer NOT NULL,
    registered_at     double precision NOT NULL,
    last_heartbeat    double precision NOT NULL,
    status_changed_at double precision NOT NULL,
    last_seen         double precision NOT NULL  -- staleness is judged on it (the server's clock)
);

CREATE INDEX workers_by_status_seen ON workers (status, last_seen);

CREATE TABLE assignments (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- order of first assignment
    file_id       text NOT NULL UNIQUE,
    worker_id     text REFERENCES workers (worker_id),  -- NULL while parked or quarantined
    state         text NOT NULL CHECK (state IN ('pending', 'cached', 'orphaned', 'failed', 'quarantined')),
    epoch         integer NOT NULL,     -- raised at every change of owner; older epochs are fenced off
    assigned_at   double precision NOT NULL,
    updated_at    double precision NOT NULL,
    resend_at     double precision NOT NULL DEFAULT 0,  -- the outbox (see sqlite/schema.sql)
    started_at    double precision,
    worker_losses integer NOT NULL DEFAULT 0,
    size          bigint,
    sha256        text,
    error         text,
    CHECK ((worker_id IS NULL) = (state IN ('orphaned', 'quarantined')))
);

CREATE INDEX assignments_by_worker ON assignments (worker_id, seq);
CREATE INDEX assignments_owed ON assignments (resend_at) WHERE state = 'pending';
