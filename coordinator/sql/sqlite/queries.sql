-- The statements only SQLite runs this way (store.dialect_queries); BEGIN IMMEDIATE already serializes writers.

-- name: files_of_worker
SELECT seq, file_id, epoch, state, started_at, worker_losses
FROM assignments WHERE worker_id = :worker_id ORDER BY seq;

-- name: orphaned_files
SELECT seq, file_id, epoch, state, started_at, worker_losses
FROM assignments WHERE worker_id IS NULL AND state = 'orphaned' ORDER BY seq;

-- name: claim_dispatches
-- Claimed in the same statement that finds them, so two senders never send the same message. CROSS JOIN keeps
-- assignments as the outer loop: the scan runs on the small assignments_owed index, not over every file of
-- every active worker.
UPDATE assignments SET resend_at = :until
WHERE seq IN (
    SELECT a.seq FROM assignments a CROSS JOIN workers w ON w.worker_id = a.worker_id
    WHERE a.state = 'pending' AND a.resend_at <= :seen AND w.status = 'active'
        AND (:file_id IS NULL OR a.file_id = :file_id)
    ORDER BY a.resend_at
    LIMIT :limit
)
RETURNING file_id, worker_id, epoch;

-- name: stage_move
-- Positional (seq, to_worker, state, worker_losses): staged once per file moved, where a dict per row costs more
-- than the insert.
INSERT INTO moving (seq, to_worker, state, worker_losses) VALUES (?, ?, ?, ?);
