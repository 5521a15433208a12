"""The coordinator a Celery app's settings name, one per process."""

from __future__ import annotations

import functools

from celery import Celery

from coordinator import WorkerCoordinator


@functools.cache
def _open(db_path: str, heartbeat_timeout: float) -> WorkerCoordinator:
    return WorkerCoordinator(db_path, float(heartbeat_timeout))


def coordinator_of(app: Celery) -> WorkerCoordinator:
    """The WorkerCoordinator on app.conf.coordinator_db; it reopens its connections itself after fork()."""
    return _open(app.conf.coordinator_db, app.conf.coordinator_heartbeat_timeout)
