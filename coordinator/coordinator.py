"""WorkerCoordinator: who is alive and who owns which file, kept in a SQLite file or a PostgreSQL database."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import List  # noqa: UP035 - the seed contract spells its return types this way

from .errors import (
    AlreadyAssignedError,
    FencedError,
    FileQuarantinedError,
    InvalidArgumentError,
    InvalidIdError,
    UnknownFileError,
    UnknownWorkerError,
    UnsafeFileIdError,
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
from .store import Session, open_store

MAX_WORKER_ID_LENGTH = 255
MAX_FILE_ID_LENGTH = 4096
# Where Linux names the current boot: monotonic clock readings are only comparable within one boot.
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
NEVER_SEEN = -1e18  # a last_seen older than any timeout


def _check_id(kind: str, value: object, max_length: int) -> str:
    if not isinstance(value, str):
        raise InvalidIdError(f"{kind} id must be a string, got {type(value).__name__}: {value!r}")
    if not value.strip():
        raise InvalidIdError(f"{kind} id must not be empty or blank: {value!r}")
    if len(value) > max_length:
        raise InvalidIdError(f"{kind} id is {len(value)} characters long, over the limit of {max_length}")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidIdError(f"{kind} id contains a control character (NUL, newline, ...): {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidIdError(f"{kind} id is not valid Unicode text: {value!r}") from error
    return value


def _check_worker_id(value: object) -> str:
    """A worker id names a cache folder too: no path separators, not '.' or '..'."""
    worker_id = _check_id("worker", value, MAX_WORKER_ID_LENGTH)
    if "/" in worker_id or "\\" in worker_id or worker_id in (".", ".."):
        raise InvalidIdError(f"worker id {worker_id!r} is not a safe folder name (no '/', '\\', '.' or '..')")
    return worker_id


def _check_file_id(value: object) -> str:
    """A file id is a plain relative path: it can never name anything outside the folder it is joined to."""
    file_id = _check_id("file", value, MAX_FILE_ID_LENGTH)
    parts = file_id.split("/")
    if file_id.startswith("/") or "\\" in file_id or any(part in ("", ".", "..") for part in parts):
        raise UnsafeFileIdError(
            f"file id {file_id!r} is not a plain relative path (no leading '/', '\\', '.', '..' or empty parts)"
        )
    return file_id


def _boot_id() -> str | None:
    try:
        return BOOT_ID_PATH.read_text().strip()
    except OSError:
        return None


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
    _seq, file_id, worker_id, state, *rest = row
    return FileRecord(file_id, worker_id, FileState(state), *rest)


# A file on its way to a new owner: (seq, file_id, epoch, from_worker, reason, worker_losses).
Candidate = tuple[int, str, int, "str | None", MoveReason, int]


def _move(db: Session, moves: Iterable[tuple[int, str | None, FileState, int]], now: float) -> None:
    """Give each file (seq, new owner or None, new state, worker losses) its new owner; raises its epoch and
    owes the owner a cache_file message."""
    db.execute("clear_moves")
    db.load("stage_move", ((seq, to, state.value, losses) for seq, to, state, losses in moves))
    db.execute("apply_moves", {"now": now})


class WorkerCoordinator:
    """Tracks worker liveness and file ownership in state (a SQLite file or PostgreSQL) that many processes share."""

    def __init__(
        self,
        db_path: str,
        heartbeat_timeout: float = 5.0,
        *,
        max_worker_losses: int = 3,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Open (creating if missing) the state at db_path; workers silent for heartbeat_timeout s are dead.

        db_path is a SQLite file, or a postgresql:// URL for workers on several hosts. A file whose owners die while
        caching it max_worker_losses times is quarantined. clock, if given, is the clock staleness is judged on;
        by default it is the machine's monotonic clock for a SQLite file (no wall-clock jump moves it) and the
        server's clock for PostgreSQL (hosts with skewed clocks agree).
        """
        self.heartbeat_timeout = _check_seconds("heartbeat_timeout", heartbeat_timeout)
        if isinstance(max_worker_losses, bool) or not isinstance(max_worker_losses, int) or max_worker_losses < 1:
            raise InvalidArgumentError(f"max_worker_losses must be a positive integer, got {max_worker_losses!r}")
        self.max_worker_losses = max_worker_losses
        if not isinstance(db_path, (str, os.PathLike)) or not str(db_path).strip():
            raise InvalidArgumentError(f"db_path must be a file path or a postgresql:// URL, got {db_path!r}")
        self._clock = clock
        self._store = open_store(db_path)
        if self._store.local_clock:
            self._store.write(self._adopt_boot)

    def _times(self, db: Session) -> dict[str, float]:
        """The wall clock for people (now) and the staleness window on the clock staleness is judged on."""
        now, seen = db.clock()
        if self._clock is not None:
            seen = self._clock()
        return {
            "now": now,
            "seen": seen,
            "cutoff": seen - self.heartbeat_timeout,
            "ceiling": seen + self.heartbeat_timeout,
        }

    def _adopt_boot(self, db: Session) -> None:
        """After a reboot, monotonic readings of the old boot mean nothing: forget them."""
        boot = _boot_id()
        if boot is None:
            return
        row = db.execute("get_meta", {"key": "boot_id"}).fetchone()
        if row is not None and row[0] == boot:
            return
        if row is not None:
            db.execute("forget_last_seen", {"never": NEVER_SEEN})
            db.execute("owe_every_pending_file")
        db.execute("set_meta", {"key": "boot_id", "value": boot})

    @property
    def db_path(self) -> str:
        """The absolute path of the state file, or the PostgreSQL URL as given."""
        return self._store.db_path

    def close(self) -> None:
        """Close this process's connections to the state file."""
        self._store.close()

    def check_state_file(self) -> None:
        """Reopen the state file everywhere if it was replaced; StateDatabaseError if it is gone."""
        self._store.check_file()

    def reconnect(self) -> None:
        """Open fresh connections at their next use, after a database error."""
        self._store.reconnect()

    # --- the seed API -------------------------------------------------------------------------------------

    def register_worker(self, worker_id: str) -> None:
        """Make the worker active as a new incarnation; registration counts as a heartbeat."""
        _check_worker_id(worker_id)

        def register(db: Session) -> None:
            params = {"worker_id": worker_id, **self._times(db)}
            (incarnation,) = db.execute("upsert_worker", params).fetchone()
            if incarnation > 1:
                # The previous incarnation's messages may have died with it: owe its pending files again.
                db.execute("redispatch_pending_files", {"worker_id": worker_id})

        self._store.write(register)

    def record_heartbeat(self, worker_id: str) -> None:
        """Update the worker's last-seen time; see heartbeat() to learn whether it had been declared dead."""
        self.heartbeat(worker_id)

    def detect_dead_workers(self) -> List[str]:  # noqa: UP006
        """Ids of the active or dead workers silent for longer than heartbeat_timeout, sorted; moves nothing."""
        rows = self._store.read(lambda db: db.execute("silent_workers", self._times(db)).fetchall())
        return [worker_id for (worker_id,) in rows]

    def assign_work(self, worker_id: str, file_id: str) -> None:
        """Give the file to the active worker; refused if another worker owns it (see assign for more)."""
        self.assign(file_id, _check_worker_id(worker_id))

    def redistribute_from_dead_worker(self, dead_worker_id: str, target_worker_id: str) -> List[str]:  # noqa: UP006
        """Declare dead_worker_id dead and move all its files to the live target at once; returns them in order."""
        _check_worker_id(dead_worker_id)
        _check_worker_id(target_worker_id)
        if dead_worker_id == target_worker_id:
            raise InvalidArgumentError(f"worker {dead_worker_id!r} cannot take over its own files")

        def redistribute(db: Session) -> list[str]:
            times = self._times(db)
            dead = self._get_worker(db, dead_worker_id)
            self._require_live(db, target_worker_id, times)
            if dead.status is WorkerStatus.ACTIVE:
                self._set_status(db, dead_worker_id, WorkerStatus.DEAD, times["now"])
            files = db.execute("files_of_worker", {"worker_id": dead_worker_id}).fetchall()
            # By name and all at once, as the seed asks: no quarantine here, the losses stay as they were.
            moves = ((seq, target_worker_id, FileState.PENDING, losses) for seq, _, _, _, _, losses in files)
            _move(db, moves, times["now"])
            return [file_id for _, file_id, *_ in files]

        return self._store.write(redistribute)

    def get_worker_assignments(self, worker_id: str) -> List[str]:  # noqa: UP006
        """Ids of the files the worker owns now, in assignment order."""
        _check_worker_id(worker_id)

        def assignments(db: Session) -> list[str]:
            self._get_worker(db, worker_id)
            return [f for (f,) in db.execute("assignments_of_worker", {"worker_id": worker_id})]

        return self._store.read(assignments)

    # --- beyond the seed: used by the Celery side ---------------------------------------------------------

    def heartbeat(self, worker_id: str) -> Heartbeat:
        """Record a heartbeat; a worker that had been declared dead comes back (revived=True) owning nothing."""
        _check_worker_id(worker_id)

        def beat(db: Session) -> Heartbeat:
            params = {"worker_id": worker_id, **self._times(db)}
            row = db.execute("beat_active_worker", params).fetchone()
            if row is not None:
                return Heartbeat(worker_id, row[0], revived=False)
            row = db.execute("revive_worker", params).fetchone()
            if row is not None:
                return Heartbeat(worker_id, row[0], revived=True)
            raise WorkerNotActiveError(worker_id, self._get_worker(db, worker_id).status.value)

        # A lost heartbeat costs nothing but the next one, so it need not wait for the disk; and one that cannot be
        # written within the timeout is better reported than retried.
        return self._store.write(beat, durable=False, budget=self.heartbeat_timeout)

    def assign(self, file_id: str, worker_id: str | None = None, *, reassign: bool = False) -> FileRecord:
        """Assign the file to worker_id, or to the least-loaded live worker; parked if none is live.

        Assigning a file its owner already has changes nothing, except that a failed file is tried again.
        A file owned by another worker is refused with AlreadyAssignedError unless reassign is true.
        Every change of owner raises the file's epoch and owes the new owner a cache_file message.
        """
        _check_file_id(file_id)
        if worker_id is not None:
            _check_worker_id(worker_id)

        def assign(db: Session) -> FileRecord:
            times = self._times(db)
            now = times["now"]
            if worker_id is None:
                loads = self._live_loads(db, times)
                target = place([file_id], loads)[0][1] if loads else None
            else:
                target = worker_id
                worker = self._get_worker(db, worker_id)
                if worker.status is not WorkerStatus.ACTIVE:
                    raise WorkerNotActiveError(worker_id, worker.status.value)
            row = db.execute("get_file", {"file_id": file_id}).fetchone()
            if row is None:
                db.execute("insert_file", {"file_id": file_id, "worker_id": target, "now": now})
            else:
                current = _file(row)
                if current.state is FileState.QUARANTINED:
                    raise FileQuarantinedError(file_id)
                if worker_id is None and current.worker_id is not None:
                    target = current.worker_id  # placed already: keep the owner it has
                if current.worker_id is not None and current.worker_id != target and not reassign:
                    raise AlreadyAssignedError(file_id, current.worker_id)
                if current.worker_id != target or current.state is FileState.FAILED:
                    # target is None only for a parked file with no live worker, which stays as it is
                    _move(db, [(row[0], target, FileState.PENDING, current.worker_losses)], now)
            return _file(db.execute("get_file", {"file_id": file_id}).fetchone())

        return self._store.write(assign)

    def reap(self) -> ReapReport:
        """Declare silent active workers dead and move their files, and parked orphans, to live workers.

        Files go to the least-loaded live workers; with none live they are parked as orphans until one is.
        One transaction: concurrent reaps serialize, so no file is ever moved twice for one death.
        """

        def reap(db: Session) -> ReapReport:
            times = self._times(db)
            dead = sorted(r[0] for r in db.execute("declare_stale_workers_dead", times))
            files: list[Candidate] = [
                # A worker that dies while caching a file counts against the file: it may be what kills them.
                (
                    seq,
                    file_id,
                    epoch,
                    worker,
                    MoveReason.WORKER_DEAD,
                    losses + (state == FileState.PENDING.value and started_at is not None),
                )
                for worker in dead
                for seq, file_id, epoch, state, started_at, losses in db.execute(
                    "files_of_worker", {"worker_id": worker}
                )
            ]
            orphans = db.execute("orphaned_files").fetchall()
            if not files and not orphans:
                return ReapReport(declared_dead=dead)  # the common case: no load counting, nothing written
            loads = self._live_loads(db, times)
            if loads:
                files += [
                    (seq, file_id, epoch, None, MoveReason.ORPHAN_PLACED, losses)
                    for seq, file_id, epoch, _, _, losses in orphans
                ]
            return ReapReport(declared_dead=dead, moves=self._place(db, files, loads, times["now"]))

        return self._store.write(reap)

    def retire_worker(self, worker_id: str) -> list[Move]:
        """Take the worker out of service on purpose and move its files to live workers at once."""
        _check_worker_id(worker_id)

        def retire(db: Session) -> list[Move]:
            times = self._times(db)
            worker = self._get_worker(db, worker_id)
            if worker.status is WorkerStatus.RETIRED:
                return []
            self._set_status(db, worker_id, WorkerStatus.RETIRED, times["now"])
            files: list[Candidate] = [
                (seq, file_id, epoch, worker_id, MoveReason.WORKER_RETIRED, losses)
                for seq, file_id, epoch, _, _, losses in db.execute("files_of_worker", {"worker_id": worker_id})
            ]
            return self._place(db, files, self._live_loads(db, times), times["now"])

        return self._store.write(retire)

    def begin(self, file_id: str, worker_id: str, epoch: int) -> FileRecord:
        """Record that worker_id starts caching the file: if it dies now, the death counts against the file."""
        return self._fenced(file_id, worker_id, epoch, "start_file", {})

    def release(self, file_id: str) -> FileRecord:
        """Let a quarantined file go: parked with no losses counted, it is placed by the next reap."""
        _check_file_id(file_id)

        def release(db: Session) -> FileRecord:
            now = db.clock()[0]
            row = db.execute("get_file", {"file_id": file_id}).fetchone()
            if row is None:
                raise UnknownFileError(file_id)
            if row[3] != FileState.QUARANTINED.value:
                raise InvalidArgumentError(f"file {file_id!r} is not quarantined (it is {row[3]})")
            _move(db, [(row[0], None, FileState.ORPHANED, 0)], now)
            return _file(db.execute("get_file", {"file_id": file_id}).fetchone())

        return self._store.write(release)

    def complete(self, file_id: str, worker_id: str, epoch: int, *, size: int, sha256: str) -> FileRecord:
        """Mark the file cached by worker_id; FencedError if that worker and epoch no longer own it."""
        outcome = {"state": FileState.CACHED.value, "size": size, "sha256": sha256, "error": None}
        return self._fenced(file_id, worker_id, epoch, "finish_file", outcome)

    def fail(self, file_id: str, worker_id: str, epoch: int, *, error: str) -> FileRecord:
        """Mark the file failed with a reason; FencedError if that worker and epoch no longer own it."""
        outcome = {"state": FileState.FAILED.value, "size": None, "sha256": None, "error": error}
        return self._fenced(file_id, worker_id, epoch, "finish_file", outcome)

    def get_file(self, file_id: str) -> FileRecord:
        """The file's owner, state and epoch."""
        _check_file_id(file_id)
        row = self._store.read(lambda db: db.execute("get_file", {"file_id": file_id}).fetchone())
        if row is None:
            raise UnknownFileError(file_id)
        return _file(row)

    def get_worker(self, worker_id: str) -> WorkerRecord:
        """The worker's status, incarnation and last heartbeat."""
        _check_worker_id(worker_id)
        return self._store.read(lambda db: self._get_worker(db, worker_id))

    def list_workers(self) -> list[WorkerRecord]:
        """Every worker ever registered, by id."""
        return self._store.read(lambda db: [_worker(r) for r in db.execute("list_workers")])

    def list_files(self, *, worker_id: str | None = None, state: FileState | str | None = None) -> list[FileRecord]:
        """The assigned files in assignment order, optionally only one worker's or one state's."""
        if worker_id is not None:
            _check_worker_id(worker_id)
        if state is not None:
            try:
                state = FileState(state).value
            except ValueError:
                known = ", ".join(s.value for s in FileState)
                raise InvalidArgumentError(f"unknown file state {state!r} (known: {known})") from None
        params = {"worker_id": worker_id, "state": state}
        return self._store.read(lambda db: [_file(r) for r in db.execute("list_files", params)])

    def count_files(self) -> list[FileCount]:
        """File counts by owner and state, with how many changes of owner they went through."""
        rows = self._store.read(lambda db: db.execute("count_files").fetchall())
        return [FileCount(worker_id, FileState(state), files, moves) for worker_id, state, files, moves in rows]

    def claim_dispatches(self, *, lease: float, limit: int = 1000, file_id: str | None = None) -> list[Dispatch]:
        """Claim, for lease seconds, up to limit cache_file messages owed to active owners (only file_id's if given).

        The outbox. A claimed message is no other sender's to send; one not marked sent within the lease is owed
        again, so a sender that dies between its claim and its send loses nothing.
        """
        if file_id is not None:
            _check_file_id(file_id)
        lease = _check_seconds("lease", lease)

        def claim(db: Session) -> list[tuple]:
            seen = self._times(db)["seen"]
            params = {"seen": seen, "until": seen + lease, "limit": limit, "file_id": file_id}
            return db.execute("claim_dispatches", params).fetchall()

        rows = self._store.write(claim, durable=False)
        return sorted((Dispatch(*row) for row in rows), key=lambda d: d.file_id)

    def mark_dispatched(self, dispatches: Iterable[Dispatch], *, resend_after: float) -> None:
        """Record that these messages were sent: owed again only if still pending resend_after seconds from now."""
        resend_after = _check_seconds("resend_after", resend_after)
        dispatches = list(dispatches)

        def mark(db: Session) -> None:
            until = self._times(db)["seen"] + resend_after
            rows = [{"file_id": d.file_id, "epoch": d.epoch, "until": until} for d in dispatches]
            db.executemany("mark_dispatched", rows)

        self._store.write(mark, durable=False)

    # --- helpers --------------------------------------------------------------------------------------------

    def _fenced(self, file_id: str, worker_id: str, epoch: int, query: str, values: dict) -> FileRecord:
        """Run the named query on the file only if worker_id owns it at epoch; FencedError otherwise."""
        _check_file_id(file_id)
        _check_worker_id(worker_id)
        _check_epoch(epoch)

        def fenced(db: Session) -> FileRecord:
            params = {"file_id": file_id, "now": db.clock()[0], **values}
            row = db.execute("get_file", {"file_id": file_id}).fetchone()
            if row is None:
                raise UnknownFileError(file_id)
            current = _file(row)
            if current.worker_id != worker_id or current.epoch != epoch:
                raise FencedError(file_id, worker_id, epoch, current.worker_id, current.epoch)
            db.execute(query, params)
            return _file(db.execute("get_file", {"file_id": file_id}).fetchone())

        return self._store.write(fenced)

    def _place(self, db: Session, files: list[Candidate], loads: dict[str, int], now: float) -> list[Move]:
        """Quarantine files past max_worker_losses; move the rest to the least-loaded of loads, or park them."""
        quarantined = [f for f in files if f[5] >= self.max_worker_losses]
        rest = [f for f in files if f[5] < self.max_worker_losses]
        if loads:
            targets = [(f, target) for f, target in place(rest, loads)]
        else:
            targets = [(f, None) for f in rest if f[3] is not None]  # an orphan stays parked as it is
        moves = [(f[0], target, FileState.PENDING if target else FileState.ORPHANED, f[5]) for f, target in targets]
        moves += [(f[0], None, FileState.QUARANTINED, f[5]) for f in quarantined]
        _move(db, moves, now)
        return [
            Move(file_id, owner, target, epoch + 1, reason) for (_, file_id, epoch, owner, reason, _), target in targets
        ] + [
            Move(file_id, owner, None, epoch + 1, MoveReason.QUARANTINED)
            for _, file_id, epoch, owner, _, _ in quarantined
        ]

    def _live_loads(self, db: Session, times: dict[str, float]) -> dict[str, int]:
        """Files owned by each active worker heard from within the timeout."""
        return dict(db.execute("live_worker_loads", times).fetchall())

    def _get_worker(self, db: Session, worker_id: str) -> WorkerRecord:
        row = db.execute("get_worker", {"worker_id": worker_id}).fetchone()
        if row is None:
            raise UnknownWorkerError(worker_id)
        return _worker(row)

    def _require_live(self, db: Session, worker_id: str, times: dict[str, float]) -> WorkerRecord:
        worker = self._get_worker(db, worker_id)
        if worker.status is not WorkerStatus.ACTIVE:
            raise WorkerNotActiveError(worker_id, worker.status.value)
        silent = times["seen"] - worker.last_seen
        if not times["cutoff"] <= worker.last_seen <= times["ceiling"]:
            raise WorkerNotActiveError(
                worker_id, f"silent for {silent:.1f} s, past the {self.heartbeat_timeout:g} s heartbeat timeout"
            )
        return worker

    def _set_status(self, db: Session, worker_id: str, status: WorkerStatus, now: float) -> None:
        db.execute("set_worker_status", {"worker_id": worker_id, "status": status.value, "now": now})
