"""Worker signals -> coordinator: register on ready, heartbeat from a thread, retire on warm shutdown."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from celery import Celery
from celery.apps.worker import Worker
from celery.signals import heartbeat_sent, worker_init, worker_ready, worker_shutdown

from coordinator import CoordinatorError, Heartbeat, UnknownWorkerError, WorkerNotActiveError

from .caching import prune_cache
from .reaper import reap_and_send, retire_and_send
from .state import coordinator_of

logger = logging.getLogger(__name__)


class HeartbeatWriter(threading.Thread):
    """Writes a heartbeat each time the event loop proves alive, so the loop never waits on the state database."""

    def __init__(self, app: Celery, worker_id: str) -> None:
        super().__init__(name="coordinator-heartbeat", daemon=True)
        self.app, self.worker_id = app, worker_id
        self.due = threading.Event()
        self.stopping = False
        self._failing = False

    def stop(self) -> None:
        """Finish the heartbeat in progress, if any, and end the thread."""
        self.stopping = True
        self.due.set()
        self.join(timeout=10)

    def run(self) -> None:
        while True:
            self.due.wait()
            self.due.clear()
            if self.stopping:
                return
            self.beat()

    def beat(self) -> None:
        """Record one heartbeat; a worker that had been declared dead drops its stale cache and carries on.

        A state file that is gone, replaced, locked or broken is reported once per incident; the thread keeps
        trying at every beat and says when heartbeats are recorded again.
        """
        coordinator = coordinator_of(self.app)
        try:
            coordinator.check_state_file()
            try:
                beat = coordinator.heartbeat(self.worker_id)
            except UnknownWorkerError:
                # The state file was replaced by one that never heard of this worker: join it afresh.
                coordinator.register_worker(self.worker_id)
                beat = Heartbeat(self.worker_id, coordinator.get_worker(self.worker_id).incarnation, revived=True)
            if beat.revived:
                pruned = prune_cache(self.app, self.worker_id)
                logger.warning(
                    "worker %s had been declared dead; back as incarnation %d, %d stale files dropped",
                    self.worker_id,
                    beat.incarnation,
                    pruned,
                )
        except WorkerNotActiveError as error:
            logger.error("heartbeat refused: %s", error)
            return
        except (CoordinatorError, OSError) as error:
            if not self._failing:
                logger.error("heartbeat for %s failed: %s; retrying at every beat", self.worker_id, error)
            self._failing = True
            coordinator.reconnect()
            return
        if self._failing:
            logger.warning("heartbeats for %s are recorded again", self.worker_id)
        self._failing = False


_writer: HeartbeatWriter | None = None


@worker_init.connect
def configure_worker(sender, **_) -> None:
    """Check the settings and make Celery's heartbeat tick at the coordinator's heartbeat interval."""
    if not isinstance(sender, Worker):
        return  # an in-process test worker (celery.contrib.testing) runs without heartbeats by design
    conf = sender.app.conf
    if sender.options.get("without_heartbeat"):
        raise SystemExit("coordinator: this worker records its heartbeats from Celery's; drop --without-heartbeat")
    if not Path(conf.coordinator_source_dir).is_dir():
        raise SystemExit(f"coordinator: COORDINATOR_SOURCE_DIR {conf.coordinator_source_dir!r} is not a folder")
    try:
        coordinator_of(sender.app)
    except CoordinatorError as error:
        raise SystemExit(f"coordinator: {error}") from None
    # --heartbeat-interval takes whole seconds only; the option the Heart bootstep reads takes any float.
    sender.options["heartbeat_interval"] = conf.coordinator_heartbeat_interval


@worker_ready.connect
def join_cluster(sender, **_) -> None:
    """Register this process as a new incarnation, drop stale cache entries, and take parked orphans."""
    global _writer
    app, worker_id = sender.app, sender.hostname
    coordinator_of(app).register_worker(worker_id)
    prune_cache(app, worker_id)
    _writer = HeartbeatWriter(app, worker_id)
    _writer.start()
    report, _ = reap_and_send(app)
    logger.info("worker %s registered; %d files placed by the first reap", worker_id, len(report.moves))


@heartbeat_sent.connect
def heartbeat_due(sender, **_) -> None:
    """Runs on the event loop: only wakes the writer thread."""
    if _writer is not None:
        _writer.due.set()


@worker_shutdown.connect
def leave_cluster(sender, **_) -> None:
    """Warm shutdown: retire at once, so this worker's files move without waiting for the timeout."""
    global _writer
    if _writer is None:
        return
    writer, _writer = _writer, None
    writer.stop()
    moves = retire_and_send(writer.app, writer.worker_id)
    logger.info("worker %s retired; %d files moved", writer.worker_id, len(moves))
