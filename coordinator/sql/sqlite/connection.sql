-- Run on every new connection: its own settings and its TEMP tables.

PRAGMA foreign_keys = ON;
PRAGMA temp_store = MEMORY;

-- Changes of owner staged for one apply_moves (queries.sql); private to the connection.
CREATE TEMP TABLE IF NOT EXISTS moving (
    seq           INTEGER PRIMARY KEY,
    to_worker     TEXT,
    state         TEXT NOT NULL,
    worker_losses INTEGER NOT NULL
);
