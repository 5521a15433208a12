"""WorkerCoordinator: who is alive and who owns which file, kept in one SQLite file shared by many processes."""

from __future__ import annotations

import math
import numbers
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import List  # noqa: UP035 - the seed contract spells its return types this way

from .errors import (
    AlreadyAssignedError,
    FencedError,
    InvalidArgumentError,
    InvalidIdError,
    UnknownFileError,
    UnknownWorkerError,
    WorkerNotActiveError,
)
from .placement import place
from .records import (
    Dispatch,
    FileCount,
    FileRecord,
    FileState,
    Heartbeat,
    Move,
    MoveReason,
    ReapReport,
    WorkerRecord,
    WorkerStatus,
)
from .store import QUERIES as Q
from .store import Store

MAX_WORKER_ID_LENGTH = 255
MAX_FILE_ID_LENGTH = 4096


def _check_id(kind: str, value: object, max_length: int) -> str:
    if not isinstance(value, str):
        raise InvalidIdError(f"{kind} id must be a string, got {type(value).__name__}: {value!r}")
    if not value.strip():
        raise InvalidIdError(f"{kind} id must not be empty or blank: {value!r}")
    if len(value) > max_length:
        raise InvalidIdError(f"{kind} id is {len(value)} characters long, over the limit of {max_length}")
    if "\x00" in value:
        raise InvalidIdError(f"{kind} id contains a NUL byte: {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidIdError(f"{kind} id is not valid Unicode text: {value!r}") from error
    return value


def _check_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def _check_epoch(epoch: object) -> int:
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
        raise InvalidArgumentError(f"epoch must be a positive integer, got {epoch!r}")
    return epoch


def _worker(row: tuple) -> WorkerRecord:
    worker_id, status, *rest = row
    return WorkerRecord(worker_id, WorkerStatus(status), *rest)


def _file(row: tuple) -> FileRecord:
    _seq, file_id, worker_id, state, epoch, assigned_at, updated_at, size, sha256, error = row
    return FileRecord(file_id, worker_id, FileState(state), epoch, assigned_at, updated_at, size, sha256, error)


def _move(conn: sqlite3.Connection, moves: Iterable[tuple[int, str | None]], now: float) -> None:
    """Give each file (by seq) its new owner, None to park it: raises its epoch and owes the owner a message."""
    conn.execute(Q["clear_moves"])
    conn.executemany(Q["stage_move"], moves)
    conn.execute(Q["apply_moves"], {"now": now})


class WorkerCoordinator:
    """Tracks worker liveness and file ownership in a SQLite file that any number of processes share."""

    def __init__(
        self,
        db_path: str,
        heartbeat_timeout: float = 5.0,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Open (creating if missing) the state file at db_path; workers silent for heartbeat_timeout s are dead."""
        self.heartbeat_timeout = _check_seconds("heartbeat_timeout", heartbeat_timeout)
        if not isinstance(db_path, (str, os.PathLike)) or not str(db_path).strip():
            raise InvalidArgumentError(f"db_path must be a file path, got {db_path!r}")
        self._clock = clock
        self._store = Store(db_path)

    @property
    def db_path(self) -> str:
        """The absolute path of the state file."""
        return str(self._store.path)

    def close(self) -> None:
        """Close this process's connections to the state file."""
        self._store.close()

    # --- the seed API -------------------------------------------------------------------------------------

    def register_worker(self, worker_id: str) -> None:
        """Make the worker active as a new incarnation; registration counts as a heartbeat."""
        _check_id("worker", worker_id, MAX_WORKER_ID_LENGTH)
        now = self._clock()

        def register(conn: sqlite3.Connection) -> None:
            (incarnation,) = conn.execute(Q["upsert_worker"], {"worker_id": worker_id, "now": now}).fetchone()
            if incarnation > 1:
                # The previous incarnation's messages may have died with it: owe its pending files again.
                conn.execute(Q["redispatch_pending_files"], {"worker_id": worker_id})

        self._store.write(register)

    def record_heartbeat(self, worker_id: str) -> None:
        """Update the worker's last-seen time; see heartbeat() to learn whether it had been declared dead."""
        self.heartbeat(worker_id)

    def detect_dead_workers(self) -> List[str]:  # noqa: UP006
        """Ids of the active or dead workers silent for longer than heartbeat_timeout, sorted; moves nothing."""
        cutoff = self._clock() - self.heartbeat_timeout
        rows = self._store.read(lambda conn: conn.execute(Q["silent_workers"], {"cutoff": cutoff}).fetchall())
        return [worker_id for (worker_id,) in rows]

    def assign_work(self, worker_id: str, file_id: str) -> None:
        """Give the file to the active worker; refused if another worker owns it (see assign for more)."""
        self.assign(file_id, _check_id("worker", worker_id, MAX_WORKER_ID_LENGTH))

    def redistribute_from_dead_worker(self, dead_worker_id: str, target_worker_id: str) -> List[str]:  # noqa: UP006
        """Declare dead_worker_id dead and move all its files to the live target at once; returns them in order."""
        _check_id("worker", dead_worker_id, MAX_WORKER_ID_LENGTH)
        _check_id("worker", target_worker_id, MAX_WORKER_ID_LENGTH)
        if dead_worker_id == target_worker_id:
            raise InvalidArgumentError(f"worker {dead_worker_id!r} cannot take over its own files")
        now = self._clock()

        def redistribute(conn: sqlite3.Connection) -> list[str]:
            dead = self._get_worker(conn, dead_worker_id)
            self._require_live(conn, target_worker_id, now)
            if dead.status is WorkerStatus.ACTIVE:
                self._set_status(conn, dead_worker_id, WorkerStatus.DEAD, now)
            files = conn.execute(Q["files_of_worker"], {"worker_id": dead_worker_id}).fetchall()
            _move(conn, ((seq, target_worker_id) for seq, _, _ in files), now)
            return [file_id for _, file_id, _ in files]

        return self._store.write(redistribute)

    def get_worker_assignments(self, worker_id: str) -> List[str]:  # noqa: UP006
        """Ids of the files the worker owns now, in assignment order."""
        _check_id("worker", worker_id, MAX_WORKER_ID_LENGTH)

        def assignments(conn: sqlite3.Connection) -> list[str]:
            self._get_worker(conn, worker_id)
            return [f for (f,) in conn.execute(Q["assignments_of_worker"], {"worker_id": worker_id})]

        return self._store.read(assignments)

    # --- beyond the seed: used by the Celery side ---------------------------------------------------------

    def heartbeat(self, worker_id: str) -> Heartbeat:
        """Record a heartbeat; a worker that had been declared dead comes back (revived=True) owning nothing."""
        _check_id("worker", worker_id, MAX_WORKER_ID_LENGTH)
        params = {"worker_id": worker_id, "now": self._clock()}

        def beat(conn: sqlite3.Connection) -> Heartbeat:
            row = conn.execute(Q["beat_active_worker"], params).fetchone()
            if row is not None:
                return Heartbeat(worker_id, row[0], revived=False)
            row = conn.execute(Q["revive_worker"], params).fetchone()
            if row is not None:
                return Heartbeat(worker_id, row[0], revived=True)
            raise WorkerNotActiveError(worker_id, self._get_worker(conn, worker_id).status.value)

        # A lost heartbeat costs nothing but the next one, so it need not wait for the disk.
        return self._store.write(beat, durable=False)

    def assign(self, file_id: str, worker_id: str | None = None, *, reassign: bool = False) -> FileRecord:
        """Assign the file to worker_id, or to the least-loaded live worker; parked if none is live.

        Assigning a file its owner already has changes nothing, except that a failed file is tried again.
        A file owned by another worker is refused with AlreadyAssignedError unless reassign is true.
        Every change of owner raises the file's epoch and owes the new owner a cache_file message.
        """
        _check_id("file", file_id, MAX_FILE_ID_LENGTH)
        if worker_id is not None:
            _check_id("worker", worker_id, MAX_WORKER_ID_LENGTH)
        now = self._clock()

        def assign(conn: sqlite3.Connection) -> FileRecord:
            if worker_id is None:
                loads = self._live_loads(conn, now)
                target = place([file_id], loads)[0][1] if loads else None
            else:
                target = worker_id
                worker = self._get_worker(conn, worker_id)
                if worker.status is not WorkerStatus.ACTIVE:
                    raise WorkerNotActiveError(worker_id, worker.status.value)
            row = conn.execute(Q["get_file"], {"file_id": file_id}).fetchone()
            if row is None:
                conn.execute(Q["insert_file"], {"file_id": file_id, "worker_id": target, "now": now})
            else:
                current = _file(row)
                if worker_id is None and current.worker_id is not None:
                    target = current.worker_id  # placed already: keep the owner it has
                if current.worker_id is not None and current.worker_id != target and not reassign:
                    raise AlreadyAssignedError(file_id, current.worker_id)
                if current.worker_id != target or current.state is FileState.FAILED:
                    # target is None only for a parked file with no live worker, which stays as it is
                    _move(conn, [(row[0], target)], now)
            return _file(conn.execute(Q["get_file"], {"file_id": file_id}).fetchone())

        return self._store.write(assign)

    def reap(self) -> ReapReport:
        """Declare silent active workers dead and move their files, and parked orphans, to live workers.

        Files go to the least-loaded live workers; with none live they are parked as orphans until one is.
        One transaction: concurrent reaps serialize, so no file is ever moved twice for one death.
        """
        now = self._clock()

        def reap(conn: sqlite3.Connection) -> ReapReport:
            cutoff = now - self.heartbeat_timeout
            dead = sorted(r[0] for r in conn.execute(Q["declare_stale_workers_dead"], {"now": now, "cutoff": cutoff}))
            files = [
                (seq, file_id, epoch, worker, MoveReason.WORKER_DEAD)
                for worker in dead
                for seq, file_id, epoch in conn.execute(Q["files_of_worker"], {"worker_id": worker})
            ]
            orphans = conn.execute(Q["orphaned_files"]).fetchall()
            if not files and not orphans:
                return ReapReport(declared_dead=dead)  # the common case: no load counting, nothing written
            loads = self._live_loads(conn, now)
            if loads:
                files += [(seq, file_id, epoch, None, MoveReason.ORPHAN_PLACED) for seq, file_id, epoch in orphans]
            return ReapReport(declared_dead=dead, moves=self._place(conn, files, loads, now))

        return self._store.write(reap)

    def retire_worker(self, worker_id: str) -> list[Move]:
        """Take the worker out of service on purpose and move its files to live workers at once."""
        _check_id("worker", worker_id, MAX_WORKER_ID_LENGTH)
        now = self._clock()

        def retire(conn: sqlite3.Connection) -> list[Move]:
            worker = self._get_worker(conn, worker_id)
            if worker.status is WorkerStatus.RETIRED:
                return []
            self._set_status(conn, worker_id, WorkerStatus.RETIRED, now)
            files = [
                (seq, file_id, epoch, worker_id, MoveReason.WORKER_RETIRED)
                for seq, file_id, epoch in conn.execute(Q["files_of_worker"], {"worker_id": worker_id})
            ]
            return self._place(conn, files, self._live_loads(conn, now), now)

        return self._store.write(retire)

    def complete(self, file_id: str, worker_id: str, epoch: int, *, size: int, sha256: str) -> FileRecord:
        """Mark the file cached by worker_id; FencedError if that worker and epoch no longer own it."""
        return self._finish(file_id, worker_id, epoch, FileState.CACHED, size=size, sha256=sha256, error=None)

    def fail(self, file_id: str, worker_id: str, epoch: int, *, error: str) -> FileRecord:
        """Mark the file failed with a reason; FencedError if that worker and epoch no longer own it."""
        return self._finish(file_id, worker_id, epoch, FileState.FAILED, size=None, sha256=None, error=error)

    def get_file(self, file_id: str) -> FileRecord:
        """The file's owner, state and epoch."""
        _check_id("file", file_id, MAX_FILE_ID_LENGTH)
        row = self._store.read(lambda conn: conn.execute(Q["get_file"], {"file_id": file_id}).fetchone())
        if row is None:
            raise UnknownFileError(file_id)
        return _file(row)

    def get_worker(self, worker_id: str) -> WorkerRecord:
        """The worker's status, incarnation and last heartbeat."""
        _check_id("worker", worker_id, MAX_WORKER_ID_LENGTH)
        return self._store.read(lambda conn: self._get_worker(conn, worker_id))

    def list_workers(self) -> list[WorkerRecord]:
        """Every worker ever registered, by id."""
        return self._store.read(lambda conn: [_worker(r) for r in conn.execute(Q["list_workers"])])

    def list_files(self, *, worker_id: str | None = None, state: FileState | str | None = None) -> list[FileRecord]:
        """The assigned files in assignment order, optionally only one worker's or one state's."""
        if worker_id is not None:
            _check_id("worker", worker_id, MAX_WORKER_ID_LENGTH)
        if state is not None:
            try:
                state = FileState(state).value
            except ValueError:
                known = ", ".join(s.value for s in FileState)
                raise InvalidArgumentError(f"unknown file state {state!r} (known: {known})") from None
        params = {"worker_id": worker_id, "state": state}
        return self._store.read(lambda conn: [_file(r) for r in conn.execute(Q["list_files"], params)])

    def count_files(self) -> list[FileCount]:
        """File counts by owner and state, with how many changes of owner they went through."""
        rows = self._store.read(lambda conn: conn.execute(Q["count_files"]).fetchall())
        return [FileCount(worker_id, FileState(state), files, moves) for worker_id, state, files, moves in rows]

    def owed_dispatches(self, *, resend_after: float, limit: int = 1000) -> list[Dispatch]:
        """The outbox: pending files whose message to an active owner was never sent, or sent resend_after s ago."""
        cutoff = self._clock() - _check_seconds("resend_after", resend_after)
        params = {"cutoff": cutoff, "limit": limit}
        rows = self._store.read(lambda conn: conn.execute(Q["owed_dispatches"], params).fetchall())
        return [Dispatch(*row) for row in rows]

    def mark_dispatched(self, dispatches: Iterable[Dispatch]) -> None:
        """Record that these messages were sent; one for an epoch that has moved on is ignored."""
        now = self._clock()
        params = [{"file_id": d.file_id, "epoch": d.epoch, "now": now} for d in dispatches]
        self._store.write(lambda conn: conn.executemany(Q["mark_dispatched"], params), durable=False)

    # --- helpers --------------------------------------------------------------------------------------------

    def _finish(self, file_id: str, worker_id: str, epoch: int, state: FileState, **outcome: object) -> FileRecord:
        _check_id("file", file_id, MAX_FILE_ID_LENGTH)
        _check_id("worker", worker_id, MAX_WORKER_ID_LENGTH)
        _check_epoch(epoch)
        now = self._clock()

        def finish(conn: sqlite3.Connection) -> FileRecord:
            row = conn.execute(Q["get_file"], {"file_id": file_id}).fetchone()
            if row is None:
                raise UnknownFileError(file_id)
            current = _file(row)
            if current.worker_id != worker_id or current.epoch != epoch:
                raise FencedError(file_id, worker_id, epoch, current.worker_id, current.epoch)
            conn.execute(Q["finish_file"], {"file_id": file_id, "state": state.value, "now": now, **outcome})
            return _file(conn.execute(Q["get_file"], {"file_id": file_id}).fetchone())

        return self._store.write(finish)

    def _place(
        self,
        conn: sqlite3.Connection,
        files: list[tuple[int, str, int, str | None, MoveReason]],
        loads: dict[str, int],
        now: float,
    ) -> list[Move]:
        """Move files to the least-loaded of loads, or park them when loads is empty."""
        if not loads:
            parked = [f for f in files if f[3] is not None]  # an orphan stays parked as it is
            _move(conn, ((seq, None) for seq, *_ in parked), now)
            return [Move(file_id, owner, None, epoch + 1, reason) for _, file_id, epoch, owner, reason in parked]
        placed = place(files, loads)
        _move(conn, ((f[0], target) for f, target in placed), now)
        return [
            Move(file_id, owner, target, epoch + 1, reason) for (_, file_id, epoch, owner, reason), target in placed
        ]

    def _live_loads(self, conn: sqlite3.Connection, now: float) -> dict[str, int]:
        """Files owned by each active worker heard from within the timeout."""
        cutoff = now - self.heartbeat_timeout
        return dict(conn.execute(Q["live_worker_loads"], {"cutoff": cutoff}).fetchall())

    def _get_worker(self, conn: sqlite3.Connection, worker_id: str) -> WorkerRecord:
        row = conn.execute(Q["get_worker"], {"worker_id": worker_id}).fetchone()
        if row is None:
            raise UnknownWorkerError(worker_id)
        return _worker(row)

    def _require_live(self, conn: sqlite3.Connection, worker_id: str, now: float) -> WorkerRecord:
        worker = self._get_worker(conn, worker_id)
        if worker.status is not WorkerStatus.ACTIVE:
            raise WorkerNotActiveError(worker_id, worker.status.value)
        silent = now - worker.last_heartbeat
        if silent > self.heartbeat_timeout:
            raise WorkerNotActiveError(
                worker_id, f"silent for {silent:.1f} s, past the {self.heartbeat_timeout:g} s heartbeat timeout"
            )
        return worker

    def _set_status(self, conn: sqlite3.Connection, worker_id: str, status: WorkerStatus, now: float) -> None:
        conn.execute(Q["set_worker_status"], {"worker_id": worker_id, "status": status.value, "now": now})
