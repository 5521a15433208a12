"""cache_file: copy a source file into the owning worker's cache atomically, then record it under its epoch."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from contextlib import suppress
from pathlib import Path

from celery import Celery, Task, shared_task
from celery.utils.nodenames import worker_direct

from coordinator import FencedError, FileState, StateDatabaseError, UnknownFileError, UnsafeFileIdError

from . import faults
from .state import coordinator_of

logger = logging.getLogger(__name__)

# Transient failures (I/O, a locked state file) are retried this often, backing off up to RETRY_BACKOFF_MAX s.
MAX_RETRIES = 5
RETRY_BACKOFF_MAX = 30
# Errors that no retry can mend: the file is marked failed with the reason.
PERMANENT_SOURCE_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


def _inside(root: Path, relative: str) -> Path:
    """root/relative, refused if it resolves outside root (through '..', or a symlink pointing out)."""
    path = (root / relative).resolve()
    if os.path.isabs(relative) or not path.is_relative_to(root.resolve()):
        raise UnsafeFileIdError(f"file id {relative!r} leaves the folder {str(root)!r}")
    return path


def source_path(app: Celery, file_id: str) -> Path:
    """Where the file's bytes come from: the file id is a path relative to the source folder."""
    return _inside(Path(app.conf.coordinator_source_dir), file_id)


def worker_cache_dir(app: Celery, worker_id: str) -> Path:
    """The folder where worker_id keeps its cached files."""
    return Path(app.conf.coordinator_cache_dir) / worker_id


def cache_path(app: Celery, worker_id: str, file_id: str) -> Path:
    """Where worker_id keeps its copy of the file."""
    return _inside(worker_cache_dir(app, worker_id), file_id)


def private_dir(path: Path) -> Path:
    """Create path and its missing parents readable by this user only."""
    for folder in reversed([path, *path.parents]):
        if not folder.exists():
            folder.mkdir(mode=0o700, exist_ok=True)
    return path


def copy_atomically(source: Path, target: Path) -> tuple[int, str]:
    """Copy source to target through a synced temporary file and a rename; returns (size, sha256)."""
    private_dir(target.parent)
    digest, size = hashlib.sha256(), 0
    with open(source, "rb") as reader:
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as writer:
                while chunk := reader.read(1 << 20):
                    digest.update(chunk)
                    writer.write(chunk)
                    size += len(chunk)
                writer.flush()
                os.fsync(writer.fileno())
            os.replace(temporary, target)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
    return size, digest.hexdigest()


def prune_cache(app: Celery, worker_id: str) -> int:
    """Delete the cached files worker_id no longer owns (and stray temporary files); returns how many."""
    root = worker_cache_dir(app, worker_id)
    if not root.is_dir():
        return 0
    owned = coordinator_of(app).get_worker_assignments(worker_id)
    keep = {cache_path(app, worker_id, file_id) for file_id in owned}
    pruned = 0
    for path in root.rglob("*"):
        if (path.is_file() or path.is_symlink()) and path.resolve() not in keep:
            path.unlink(missing_ok=True)
            pruned += 1
    return pruned


def _outcome(outcome: str, file_id: str, worker_id: str, epoch: int, **details: object) -> dict:
    return {"outcome": outcome, "file_id": file_id, "worker_id": worker_id, "epoch": epoch, **details}


@shared_task(bind=True, name="tasks.cache_file", max_retries=MAX_RETRIES)
def cache_file(self: Task, file_id: str, worker_id: str, epoch: int) -> dict:
    """Cache file_id on worker_id under epoch; does nothing (outcome "fenced") unless that is still current."""
    app, me = self.app, self.request.hostname
    coordinator = coordinator_of(app)
    try:
        record = coordinator.get_file(file_id)
    except UnknownFileError:
        record = None
    except StateDatabaseError as error:
        return _retry(self, file_id, epoch, error)
    if me != worker_id or record is None or (record.worker_id, record.epoch) != (me, epoch):
        logger.warning(
            "cache_file %r epoch %d for %r fenced at %r: the state has moved on", file_id, epoch, worker_id, me
        )
        return _outcome("fenced", file_id, me, epoch)

    try:
        target = cache_path(app, me, file_id)
        if record.state is FileState.CACHED and target.is_file() and target.stat().st_size == record.size:
            return _outcome("already_cached", file_id, me, epoch, size=record.size, sha256=record.sha256)
        coordinator.begin(file_id, me, epoch)  # a death from here on counts against the file
        size, sha256 = copy_atomically(source_path(app, file_id), target)
    except (UnsafeFileIdError, *PERMANENT_SOURCE_ERRORS) as error:
        return _give_up(self, file_id, epoch, error)
    except FencedError:
        return _outcome("fenced", file_id, me, epoch)
    except (OSError, StateDatabaseError) as error:
        return _retry(self, file_id, epoch, error)

    faults.delay_point(app, faults.BEFORE_COMPLETE)
    try:
        coordinator.complete(file_id, me, epoch, size=size, sha256=sha256)
    except FencedError as fenced:
        # The file moved on while we copied; our copy is not to be trusted unless we own it again.
        if fenced.owner != me:
            target.unlink(missing_ok=True)
        logger.warning("cache_file %r epoch %d: completion refused: %s", file_id, epoch, fenced)
        return _outcome("fenced", file_id, me, epoch)
    except StateDatabaseError as error:
        return _retry(self, file_id, epoch, error)
    return _outcome("cached", file_id, me, epoch, size=size, sha256=sha256)


def _give_up(task: Task, file_id: str, epoch: int, error: BaseException) -> dict:
    reason = f"{type(error).__name__}: {error}"
    me = task.request.hostname
    try:
        coordinator_of(task.app).fail(file_id, me, epoch, error=reason)
    except FencedError:
        return _outcome("fenced", file_id, me, epoch)
    logger.error("cache_file %r epoch %d failed: %s", file_id, epoch, reason)
    return _outcome("failed", file_id, me, epoch, error=reason)


def _retry(task: Task, file_id: str, epoch: int, error: BaseException) -> dict:
    if task.request.retries >= task.max_retries:
        return _give_up(task, file_id, epoch, error)
    countdown = min(2**task.request.retries, RETRY_BACKOFF_MAX)
    logger.warning("cache_file %r epoch %d: %s; retrying in %d s", file_id, epoch, error, countdown)
    raise task.retry(exc=error, countdown=countdown, queue=worker_direct(task.request.hostname))
