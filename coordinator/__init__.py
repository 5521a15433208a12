"""Dead-worker recovery state: worker liveness and file ownership in one SQLite file shared by many processes."""

from .coordinator import WorkerCoordinator
from .errors import (
    AlreadyAssignedError,
    CoordinatorError,
    FencedError,
    InvalidArgumentError,
    InvalidIdError,
    SchemaVersionError,
    StateDatabaseError,
    UnknownFileError,
    UnknownWorkerError,
    WorkerNotActiveError,
)
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

__all__ = [
    "AlreadyAssignedError",
    "CoordinatorError",
    "Dispatch",
    "FencedError",
    "FileCount",
    "FileRecord",
    "FileState",
    "Heartbeat",
    "InvalidArgumentError",
    "InvalidIdError",
    "Move",
    "MoveReason",
    "ReapReport",
    "SchemaVersionError",
    "StateDatabaseError",
    "UnknownFileError",
    "UnknownWorkerError",
    "WorkerCoordinator",
    "WorkerNotActiveError",
    "WorkerRecord",
    "WorkerStatus",
]
