-- Every statement the coordinator runs, by name (store.QUERIES). Parameters are named.

-- name: upsert_worker
INSERT INTO workers (worker_id, status, incarnation, registered_at, last_heartbeat, status_changed_at)
VALUES (:worker_id, 'active', 1, :now, :now, :now)
ON CONFLICT (worker_id) DO UPDATE SET
    status = 'active', incarnation = incarnation + 1,
    registered_at = :now, last_heartbeat = :now, status_changed_at = :now
RETURNING incarnation;

-- name: get_worker
SELECT worker_id, status, incarnation, registered_at, last_heartbeat, status_changed_at
FROM workers WHERE worker_id = :worker_id;

-- name: list_workers
SELECT worker_id, status, incarnation, registered_at, last_heartbeat, status_changed_at
FROM workers ORDER BY worker_id;

-- name: beat_active_worker
UPDATE workers SET last_heartbeat = :now
WHERE worker_id = :worker_id AND status = 'active'
RETURNING incarnation;

-- name: revive_worker
UPDATE workers SET status = 'active', incarnation = incarnation + 1,
    last_heartbeat = :now, status_changed_at = :now
WHERE worker_id = :worker_id AND status = 'dead'
RETURNING incarnation;

-- name: set_worker_status
UPDATE workers SET status = :status, status_changed_at = :now WHERE worker_id = :worker_id;

-- name: silent_workers
SELECT worker_id FROM workers
WHERE status IN ('active', 'dead') AND last_heartbeat < :cutoff
ORDER BY worker_id;

-- name: declare_stale_workers_dead
UPDATE workers SET status = 'dead', status_changed_at = :now
WHERE status = 'active' AND last_heartbeat < :cutoff
RETURNING worker_id;

-- name: live_worker_loads
SELECT w.worker_id, (SELECT count(*) FROM assignments a WHERE a.worker_id = w.worker_id) AS load
FROM workers w
WHERE w.status = 'active' AND w.last_heartbeat >= :cutoff
ORDER BY w.worker_id;

-- name: files_of_worker
SELECT seq, file_id, epoch FROM assignments WHERE worker_id = :worker_id ORDER BY seq;

-- name: orphaned_files
SELECT seq, file_id, epoch FROM assignments WHERE worker_id IS NULL ORDER BY seq;

-- name: clear_moves
DELETE FROM moving;

-- name: stage_move
-- Positional: staged once per file moved, where building a dict per row costs more than the insert.
INSERT INTO moving (seq, to_worker) VALUES (?, ?);

-- name: apply_moves
-- One statement for every staged change of owner: far cheaper than one UPDATE per file. A NULL owner parks.
UPDATE assignments SET
    worker_id = moving.to_worker,
    state = CASE WHEN moving.to_worker IS NULL THEN 'orphaned' ELSE 'pending' END,
    epoch = epoch + 1, assigned_at = :now, updated_at = :now, dispatched_at = 0,
    size = NULL, sha256 = NULL, error = NULL
FROM moving WHERE moving.seq = assignments.seq;

-- name: redispatch_pending_files
UPDATE assignments SET dispatched_at = 0 WHERE worker_id = :worker_id AND state = 'pending';

-- name: get_file
SELECT seq, file_id, worker_id, state, epoch, assigned_at, updated_at, size, sha256, error
FROM assignments WHERE file_id = :file_id;

-- name: insert_file
INSERT INTO assignments (file_id, worker_id, state, epoch, assigned_at, updated_at)
VALUES (:file_id, :worker_id, CASE WHEN :worker_id IS NULL THEN 'orphaned' ELSE 'pending' END, 1, :now, :now);

-- name: list_files
SELECT seq, file_id, worker_id, state, epoch, assigned_at, updated_at, size, sha256, error
FROM assignments
WHERE (:worker_id IS NULL OR worker_id = :worker_id) AND (:state IS NULL OR state = :state)
ORDER BY seq;

-- name: count_files
SELECT worker_id, state, count(*), sum(epoch - 1) FROM assignments GROUP BY worker_id, state;

-- name: assignments_of_worker
SELECT file_id FROM assignments WHERE worker_id = :worker_id ORDER BY seq;

-- name: finish_file
UPDATE assignments SET state = :state, updated_at = :now, size = :size, sha256 = :sha256, error = :error
WHERE file_id = :file_id;

-- name: owed_dispatches
-- CROSS JOIN keeps assignments as the outer loop, so the scan runs on the small assignments_owed index
-- rather than over every file of every active worker.
SELECT a.file_id, a.worker_id, a.epoch
FROM assignments a CROSS JOIN workers w ON w.worker_id = a.worker_id
WHERE a.state = 'pending' AND a.dispatched_at < :cutoff AND w.status = 'active'
ORDER BY a.dispatched_at
LIMIT :limit;

-- name: mark_dispatched
UPDATE assignments SET dispatched_at = :now
WHERE file_id = :file_id AND epoch = :epoch AND state = 'pending';
