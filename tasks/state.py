"""The coordinator a Celery app's settings name, one per process."""

from __future__ import annotations

import functools

from celery import Celery

from coordinator import WorkerCoordinator


@functools.cache
def _open(db_path: str, heartbeat_timeout: float, max_worker_losses: int) -> WorkerCoordinator:
    return WorkerCoordinator(db_path, float(heartbeat_timeout), max_worker_losses=max_worker_losses)


def coordinator_of(app: Celery) -> WorkerCoordinator:
    """The WorkerCoordinator on app.conf.coordinator_db; it reopens its connections itself after fork()."""
    conf = app.conf
    return _open(conf.coordinator_db, conf.coordinator_heartbeat_timeout, conf.get("coordinator_max_worker_losses", 3))
