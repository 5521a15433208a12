-- Run on every new connection: its TEMP tables.

-- Changes of owner staged for one apply_moves (queries.sql); private to the session, emptied at every commit.
CREATE TEMP TABLE IF NOT EXISTS moving (
    seq           bigint PRIMARY KEY,
    to_worker     text,
    state         text NOT NULL,
    worker_losses integer NOT NULL
) ON COMMIT DELETE ROWS;
