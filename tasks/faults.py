"""Fault injection for the tests: die at a named point, once, as a kill -9 would, or slow a point down."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from celery import Celery

# Named points where the tests may kill the process.
AFTER_REAP_COMMIT = "after-reap-commit"
BEFORE_COMPLETE = "before-complete"


def crash_point(app: Celery, point: str) -> None:
    """SIGKILL this process if the file <coordinator_faults_dir>/<point> exists; the file is used up."""
    folder = app.conf.get("coordinator_faults_dir")
    if not folder:
        return
    try:
        (Path(folder) / point).unlink()
    except FileNotFoundError:
        return
    os.kill(os.getpid(), signal.SIGKILL)


def delay_point(app: Celery, point: str) -> None:
    """Sleep as many seconds as the file <coordinator_faults_dir>/<point> says, if it exists."""
    folder = app.conf.get("coordinator_faults_dir")
    if not folder:
        return
    try:
        seconds = float((Path(folder) / point).read_text())
    except (FileNotFoundError, ValueError):
        return
    time.sleep(seconds)
