"""Celery and coordinator settings for `celery -A tasks`; each one can be overridden from the environment."""

import math
import os
from pathlib import Path


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        # SystemExit: the worker, beat or script stops with this one line instead of a traceback.
        raise SystemExit(f"celeryconfig: {name} must be a positive number of seconds, got {raw!r}")
    return value


home = Path(os.environ.get("COORDINATOR_HOME", ".coordinator")).absolute()

# --- the coordinator ---------------------------------------------------------------------------------------
coordinator_db = os.environ.get("COORDINATOR_DB", str(home / "state.db"))
coordinator_source_dir = os.environ.get("COORDINATOR_SOURCE_DIR", str(home / "source"))
coordinator_cache_dir = os.environ.get("COORDINATOR_CACHE_DIR", str(home / "cache"))
coordinator_heartbeat_timeout = _seconds("COORDINATOR_HEARTBEAT_TIMEOUT", 5.0)
# A worker beats several times per timeout, so one late beat never makes it look dead.
coordinator_heartbeat_interval = _seconds("COORDINATOR_HEARTBEAT_INTERVAL", coordinator_heartbeat_timeout / 4)
if coordinator_heartbeat_interval > coordinator_heartbeat_timeout / 2:
    raise SystemExit(
        f"celeryconfig: COORDINATOR_HEARTBEAT_INTERVAL ({coordinator_heartbeat_interval:g} s) must be at most half "
        f"of COORDINATOR_HEARTBEAT_TIMEOUT ({coordinator_heartbeat_timeout:g} s)"
    )
coordinator_reap_interval = _seconds("COORDINATOR_REAP_INTERVAL", 1.0)
# Owners that may die while caching one file before it is quarantined (coordinator release FILE lets it go).
_losses = os.environ.get("COORDINATOR_MAX_WORKER_LOSSES", "3")
if not _losses.isdigit() or int(_losses) < 1:
    raise SystemExit(f"celeryconfig: COORDINATOR_MAX_WORKER_LOSSES must be a positive whole number, got {_losses!r}")
coordinator_max_worker_losses = int(_losses)
# Test hook: a file named after a fault point in this folder makes that point fail once (tasks/faults.py).
coordinator_faults_dir = os.environ.get("COORDINATOR_FAULTS_DIR")

# --- the broker: by default the filesystem transport, which needs no server ----------------------------------
broker_url = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if broker_url.startswith("filesystem://"):
    _broker = home / "broker"
    # kombu's own filesystem transport can hand a consumer a half-written message (tasks/fstransport.py).
    broker_transport = "tasks.fstransport:Transport"
    broker_transport_options = {
        "data_folder_in": str(_broker / "messages"),
        "data_folder_out": str(_broker / "messages"),
        "control_folder": str(_broker / "control"),
        # The transport polls, and a worker at its prefetch limit waits a whole period before it takes its
        # next message: the period bounds how fast one worker drains its queue.
        "polling_interval": 0.02,
    }
    # kombu creates none of these folders itself, and any process may be the first to publish.
    for _folder in ("messages", "control"):
        (_broker / _folder).mkdir(mode=0o700, parents=True, exist_ok=True)

# --- tasks ---------------------------------------------------------------------------------------------------
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
task_ignore_result = True
# Every worker consumes its own queue <nodename>.dq2: cache_file goes to the worker that owns the file.
worker_direct = True
worker_prefetch_multiplier = 1
task_acks_late = True
broker_connection_retry_on_startup = True

beat_schedule = {
    "reap-dead-workers": {
        "task": "tasks.reap_dead_workers",
        "schedule": coordinator_reap_interval,
        # A reap nobody picked up in time is worthless: the next one does the same work.
        "options": {"expires": max(coordinator_reap_interval * 5, 5.0)},
    },
}
