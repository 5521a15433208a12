-- The coordinator's whole schema. store.SCHEMA_VERSION is written to PRAGMA user_version after it;
-- a later release migrates an older file from that number.

CREATE TABLE workers (
    worker_id         TEXT PRIMARY KEY,
    status            TEXT NOT NULL CHECK (status IN ('active', 'dead', 'retired')),
    incarnation       INTEGER NOT NULL,
    registered_at     REAL NOT NULL,
    last_heartbeat    REAL NOT NULL,
    status_changed_at REAL NOT NULL
);

-- Staleness scans (detect, reap) and the list of live workers.
CREATE INDEX workers_by_status_heartbeat ON workers (status, last_heartbeat);

CREATE TABLE assignments (
    seq           INTEGER PRIMARY KEY,  -- order of first assignment
    file_id       TEXT NOT NULL UNIQUE,
    worker_id     TEXT REFERENCES workers (worker_id),  -- NULL while parked as an orphan
    state         TEXT NOT NULL CHECK (state IN ('pending', 'cached', 'orphaned', 'failed')),
    epoch         INTEGER NOT NULL,     -- raised at every change of owner; older epochs are fenced off
    assigned_at   REAL NOT NULL,        -- when the current owner got it
    updated_at    REAL NOT NULL,
    -- The outbox: 0 means a cache_file message is owed to the owner; otherwise when one was last sent.
    dispatched_at REAL NOT NULL DEFAULT 0,
    size          INTEGER,
    sha256        TEXT,
    error         TEXT,
    CHECK ((worker_id IS NULL) = (state = 'orphaned'))
);

-- A worker's files in assignment order, load counts, and parked orphans (worker_id IS NULL).
CREATE INDEX assignments_by_worker ON assignments (worker_id, seq);
-- The outbox scan: pending files whose message is owed or overdue. Partial, so cached files cost it nothing.
CREATE INDEX assignments_owed ON assignments (dispatched_at) WHERE state = 'pending';
