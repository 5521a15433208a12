-- The statements only PostgreSQL runs this way (store.dialect_queries). Transactions are SERIALIZABLE; the row
-- locks below make a second reaper skip or wait for the files a first one is moving, instead of moving them again.

-- name: files_of_worker
SELECT seq, file_id, epoch, state, started_at, worker_losses
FROM assignments WHERE worker_id = :worker_id ORDER BY seq
FOR UPDATE;

-- name: orphaned_files
-- Orphans another reaper is placing right now are its to place.
SELECT seq, file_id, epoch, state, started_at, worker_losses
FROM assignments WHERE worker_id IS NULL AND state = 'orphaned' ORDER BY seq
FOR UPDATE SKIP LOCKED;

-- name: claim_dispatches
-- Claimed in the same statement that finds them; a message another sender is claiming is skipped, not waited for.
UPDATE assignments SET resend_at = :until
WHERE seq IN (
    SELECT a.seq FROM assignments a JOIN workers w ON w.worker_id = a.worker_id
    WHERE a.state = 'pending' AND a.resend_at <= :seen AND w.status = 'active'
        AND (CAST(:file_id AS TEXT) IS NULL OR a.file_id = :file_id)
    ORDER BY a.resend_at
    LIMIT :limit
    FOR UPDATE OF a SKIP LOCKED
)
RETURNING file_id, worker_id, epoch;

-- name: stage_move
-- COPY: one stream for every file moved, rows of (seq, to_worker, state, worker_losses).
COPY moving (seq, to_worker, state, worker_losses) FROM STDIN;

-- name: coordinator_tables
-- Tables by the coordinator's names in the connection's current schema: none in a new database.
SELECT tablename FROM pg_tables
WHERE schemaname = current_schema() AND tablename IN ('meta', 'workers', 'assignments');

-- name: schema_lock
-- One process at a time creates the schema; the others find it made.
SELECT pg_advisory_xact_lock(8358279204051);

-- Each transaction starts with the server's clock, in the round trip of its BEGIN.

-- name: begin_write
BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT extract(epoch FROM clock_timestamp())::float8;

-- name: begin_write_lazy
-- A commit that need not wait for the disk (heartbeats, the outbox): a crash of the server may lose it.
BEGIN ISOLATION LEVEL SERIALIZABLE; SET LOCAL synchronous_commit TO off;
SELECT extract(epoch FROM clock_timestamp())::float8;

-- name: begin_read
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT extract(epoch FROM clock_timestamp())::float8;
