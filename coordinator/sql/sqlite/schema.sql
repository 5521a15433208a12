-- The coordinator's whole schema. store.SCHEMA_VERSION is written to PRAGMA user_version after it;
-- a later release migrates an older file from that number.

-- Facts about the state file itself: 'boot_id', the boot whose monotonic clock last_seen values come from.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE workers (
    worker_id         TEXT PRIMARY KEY,
    status            TEXT NOT NULL CHECK (status IN ('active', 'dead', 'retired')),
    incarnation       INTEGER NOT NULL,
    registered_at     REAL NOT NULL,    -- wall clock, for people
    last_heartbeat    REAL NOT NULL,    -- wall clock, for people
    status_changed_at REAL NOT NULL,    -- wall clock, for people
    -- The machine's monotonic clock at the last heartbeat: staleness is judged on it alone, so no wall-clock
    -- jump makes a worker immortal or kills everyone at once.
    last_seen         REAL NOT NULL
);

-- Staleness scans (detect, reap) and the list of live workers.
CREATE INDEX workers_by_status_seen ON workers (status, last_seen);

CREATE TABLE assignments (
    seq           INTEGER PRIMARY KEY,  -- order of first assignment
    file_id       TEXT NOT NULL UNIQUE,
    worker_id     TEXT REFERENCES workers (worker_id),  -- NULL while parked or quarantined
    state         TEXT NOT NULL CHECK (state IN ('pending', 'cached', 'orphaned', 'failed', 'quarantined')),
    epoch         INTEGER NOT NULL,     -- raised at every change of owner; older epochs are fenced off
    assigned_at   REAL NOT NULL,        -- when the current owner got it
    updated_at    REAL NOT NULL,
    -- The outbox, on the monotonic clock: a cache_file message is owed to the owner from this time on. 0 on every
    -- change of owner; pushed out by a short lease when a sender claims it, and far out once it is sent.
    resend_at     REAL NOT NULL DEFAULT 0,
    started_at    REAL,                 -- when the owner began caching it under this epoch
    worker_losses INTEGER NOT NULL DEFAULT 0,  -- owners that died while caching it
    size          INTEGER,
    sha256        TEXT,
    error         TEXT,
    CHECK ((worker_id IS NULL) = (state IN ('orphaned', 'quarantined')))
);

-- A worker's files in assignment order, load counts, and files without an owner (worker_id IS NULL).
CREATE INDEX assignments_by_worker ON assignments (worker_id, seq);
-- The outbox scan: pending files whose message is owed. Partial, so cached files cost it nothing.
CREATE INDEX assignments_owed ON assignments (resend_at) WHERE state = 'pending';
