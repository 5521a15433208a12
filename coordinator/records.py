"""Immutable records returned by the coordinator."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple


class WorkerStatus(str, Enum):
    """Where a worker stands: taking work, declared dead by a reaper, or gone on purpose."""

    ACTIVE = "active"
    DEAD = "dead"
    RETIRED = "retired"


class FileState(str, Enum):
    """Where a file stands: owed to its owner, cached, waiting for a live worker, failed, or held back.

    A file is quarantined when its owners kept dying while caching it; `release` lets it go again.
    """

    PENDING = "pending"
    CACHED = "cached"
    ORPHANED = "orphaned"
    FAILED = "failed"
    QUARANTINED = "quarantined"


class MoveReason(str, Enum):
    """Why a file changed owner."""

    WORKER_DEAD = "worker_dead"  # a reap found its owner silent past the timeout
    WORKER_RETIRED = "worker_retired"  # its owner left on purpose
    ORPHAN_PLACED = "orphan_placed"  # it waited for a live worker and one came
    QUARANTINED = "quarantined"  # its owners died while caching it max_worker_losses times
    RELEASED = "released"  # taken out of quarantine by hand
    REDISTRIBUTED = "redistributed"  # redistribute_from_dead_worker moved it by name


@dataclass(frozen=True)
class WorkerRecord:
    """One row of the workers table."""

    worker_id: str
    status: WorkerStatus
    incarnation: int
    registered_at: float
    last_heartbeat: float
    status_changed_at: float
    last_seen: float  # the clock staleness is judged on, at the last heartbeat (WorkerCoordinator's clock)


@dataclass(frozen=True)
class FileCount:
    """How many files one worker (None: parked) has in one state, and how often they changed owner."""

    worker_id: str | None
    state: FileState
    files: int
    moves: int


@dataclass(frozen=True)
class FileRecord:
    """One assigned file: its owner (None while parked as an orphan), state and fencing epoch."""

    file_id: str
    worker_id: str | None
    state: FileState
    epoch: int
    assigned_at: float
    updated_at: float
    size: int | None = None
    sha256: str | None = None
    error: str | None = None
    worker_losses: int = 0  # owners that died while caching it


@dataclass(frozen=True)
class Heartbeat:
    """What a heartbeat found: revived is True when the worker had been declared dead and lost its files."""

    worker_id: str
    incarnation: int
    revived: bool


class Move(NamedTuple):
    """One file changing owner; to_worker is None when it was parked for lack of a live worker.

    A named tuple rather than a dataclass: a reap builds one per file moved, and this is far cheaper to build.
    """

    file_id: str
    from_worker: str | None
    to_worker: str | None
    epoch: int
    reason: MoveReason


@dataclass(frozen=True)
class ReapReport:
    """What one reap did: the workers it declared dead and every file it moved or parked."""

    declared_dead: list[str] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)

    @property
    def parked(self) -> list[str]:
        """Ids of the files left as orphans because no worker was live."""
        return [m.file_id for m in self.moves if m.to_worker is None]


@dataclass(frozen=True)
class Dispatch:
    """A cache_file message owed to a file's owner (the outbox)."""

    file_id: str
    worker_id: str
    epoch: int
