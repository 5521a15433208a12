-- The statements both dialects run alike, by name; sqlite/queries.sql and postgres/queries.sql hold those that
-- differ (store.dialect_queries). Parameters are named unless noted. :now is the wall clock (for people); :seen,
-- :cutoff and :ceiling are on the clock staleness is judged on (Session.clock).
-- A parameter tested with IS NULL is CAST: PostgreSQL cannot tell the type of a bare NULL.

-- name: get_meta
SELECT value FROM meta WHERE key = :key;

-- name: set_meta
INSERT INTO meta (key, value) VALUES (:key, :value) ON CONFLICT (key) DO UPDATE SET value = :value;

-- After a reboot the monotonic clock starts again: every worker of the old boot counts as silent, and every
-- message sent in the old boot is owed again.

-- name: forget_last_seen
UPDATE workers SET last_seen = :never;

-- name: owe_every_pending_file
UPDATE assignments SET resend_at = 0 WHERE state = 'pending';

-- name: upsert_worker
INSERT INTO workers (worker_id, status, incarnation, registered_at, last_heartbeat, status_changed_at, last_seen)
VALUES (:worker_id, 'active', 1, :now, :now, :now, :seen)
ON CONFLICT (worker_id) DO UPDATE SET
    status = 'active', incarnation = workers.incarnation + 1,
    registered_at = :now, last_heartbeat = :now, status_changed_at = :now, last_seen = :seen
RETURNING incarnation;

-- name: get_worker
SELECT worker_id, status, incarnation, registered_at, last_heartbeat, status_changed_at, last_seen
FROM workers WHERE worker_id = :worker_id;

-- name: list_workers
SELECT worker_id, status, incarnation, registered_at, last_heartbeat, status_changed_at, last_seen
FROM workers ORDER BY worker_id;

-- name: beat_active_worker
UPDATE workers SET last_heartbeat = :now, last_seen = :seen
WHERE worker_id = :worker_id AND status = 'active'
RETURNING incarnation;

-- name: revive_worker
UPDATE workers SET status = 'active', incarnation = incarnation + 1,
    last_heartbeat = :now, last_seen = :seen, status_changed_at = :now
WHERE worker_id = :worker_id AND status = 'dead'
RETURNING incarnation;

-- name: set_worker_status
UPDATE workers SET status = :status, status_changed_at = :now WHERE worker_id = :worker_id;

-- Silent: not seen since :cutoff, or "seen" after :ceiling, which no clock of this boot can have written.

-- name: silent_workers
SELECT worker_id FROM workers
WHERE status IN ('active', 'dead') AND (last_seen < :cutoff OR last_seen > :ceiling)
ORDER BY worker_id;

-- name: declare_stale_workers_dead
UPDATE workers SET status = 'dead', status_changed_at = :now
WHERE status = 'active' AND (last_seen < :cutoff OR last_seen > :ceiling)
RETURNING worker_id;

-- name: live_worker_loads
SELECT w.worker_id, (SELECT count(*) FROM assignments a WHERE a.worker_id = w.worker_id) AS load
FROM workers w
WHERE w.status = 'active' AND w.last_seen BETWEEN :cutoff AND :ceiling
ORDER BY w.worker_id;

-- name: clear_moves
DELETE FROM moving;

-- name: apply_moves
-- One statement for every staged change of owner: far cheaper than one UPDATE per file.
UPDATE assignments SET
    worker_id = moving.to_worker, state = moving.state, worker_losses = moving.worker_losses,
    epoch = epoch + 1, assigned_at = :now, updated_at = :now, resend_at = 0, started_at = NULL,
    size = NULL, sha256 = NULL, error = NULL
FROM moving WHERE moving.seq = assignments.seq;

-- name: redispatch_pending_files
UPDATE assignments SET resend_at = 0 WHERE worker_id = :worker_id AND state = 'pending';

-- name: get_file
SELECT seq, file_id, worker_id, state, epoch, assigned_at, updated_at, size, sha256, error, worker_losses
FROM assignments WHERE file_id = :file_id;

-- name: list_files
SELECT seq, file_id, worker_id, state, epoch, assigned_at, updated_at, size, sha256, error, worker_losses
FROM assignments
WHERE (CAST(:worker_id AS TEXT) IS NULL OR worker_id = :worker_id) AND (CAST(:state AS TEXT) IS NULL OR state = :state)
ORDER BY seq;

-- name: count_files
SELECT worker_id, state, count(*), sum(epoch - 1) FROM assignments GROUP BY worker_id, state;

-- name: insert_file
INSERT INTO assignments (file_id, worker_id, state, epoch, assigned_at, updated_at)
VALUES (:file_id, :worker_id, CASE WHEN CAST(:worker_id AS TEXT) IS NULL THEN 'orphaned' ELSE 'pending' END, 1, :now, :now);

-- name: assignments_of_worker
SELECT file_id FROM assignments WHERE worker_id = :worker_id ORDER BY seq;

-- name: start_file
UPDATE assignments SET started_at = :now WHERE file_id = :file_id;

-- name: finish_file
UPDATE assignments SET state = :state, updated_at = :now, size = :size, sha256 = :sha256, error = :error
WHERE file_id = :file_id;

-- name: mark_dispatched
UPDATE assignments SET resend_at = :until
WHERE file_id = :file_id AND epoch = :epoch AND state = 'pending';
