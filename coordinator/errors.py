"""One exception hierarchy: every failure the coordinator reports is a CoordinatorError."""

from __future__ import annotations


class CoordinatorError(Exception):
    """Base class of every error raised by the coordinator."""


class InvalidArgumentError(CoordinatorError, ValueError):
    """An argument is malformed (a non-positive timeout, a target equal to the source, ...)."""


class InvalidIdError(InvalidArgumentError):
    """A worker or file id is empty, not a string, too long or contains a NUL byte."""


class UnsafeFileIdError(InvalidIdError):
    """A file id is not a plain relative path: absolute, with '..' or empty parts, or a backslash."""


class UnknownWorkerError(CoordinatorError, LookupError):
    """No worker with this id was ever registered."""

    def __init__(self, worker_id: str) -> None:
        super().__init__(f"unknown worker {worker_id!r}")
        self.worker_id = worker_id


class UnknownFileError(CoordinatorError, LookupError):
    """No file with this id was ever assigned."""

    def __init__(self, file_id: str) -> None:
        super().__init__(f"unknown file {file_id!r}")
        self.file_id = file_id


class WorkerNotActiveError(CoordinatorError):
    """The worker is dead, retired or silent past the heartbeat timeout, so it cannot take work."""

    def __init__(self, worker_id: str, status: str) -> None:
        super().__init__(f"worker {worker_id!r} is {status}")
        self.worker_id = worker_id
        self.status = status


class AlreadyAssignedError(CoordinatorError):
    """The file is owned by another live worker; pass reassign=True to move it."""

    def __init__(self, file_id: str, owner: str) -> None:
        super().__init__(f"file {file_id!r} is already assigned to worker {owner!r}")
        self.file_id = file_id
        self.owner = owner


class FileQuarantinedError(CoordinatorError):
    """The file is quarantined: its owners kept dying while caching it. Release it first."""

    def __init__(self, file_id: str) -> None:
        super().__init__(f"file {file_id!r} is quarantined: its owners kept dying while caching it; release it first")
        self.file_id = file_id


class FencedError(CoordinatorError):
    """A state change came from a worker or epoch that no longer owns the file; nothing changed."""

    def __init__(self, file_id: str, worker_id: str, epoch: int, owner: str | None, current_epoch: int) -> None:
        super().__init__(
            f"file {file_id!r}: worker {worker_id!r} at epoch {epoch} is fenced off "
            f"(owner {owner!r} at epoch {current_epoch})"
        )
        self.file_id = file_id
        self.worker_id = worker_id
        self.epoch = epoch
        self.owner = owner
        self.current_epoch = current_epoch


class StateDatabaseError(CoordinatorError):
    """The state database is unusable, or stayed locked or unreachable past the retry budget."""


class SchemaVersionError(StateDatabaseError):
    """The state file was written by a newer release (its schema version is unknown here)."""
