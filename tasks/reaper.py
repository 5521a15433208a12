"""reap_dead_workers, run by beat: declare silent workers dead, move their files, send the outbox."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from celery import Celery, Task, shared_task
from celery.utils.nodenames import worker_direct

from coordinator import Move, ReapReport

from . import faults
from .dispatch import send_owed
from .state import coordinator_of

logger = logging.getLogger(__name__)


def purge_direct_queues(app: Celery, worker_ids: Iterable[str]) -> None:
    """Drop the messages waiting in these workers' own queues: they are fenced anyway, and would pile up."""
    with app.connection_for_write() as connection:
        for worker_id in worker_ids:
            queue = worker_direct(worker_id).name
            try:
                with connection.channel() as channel:
                    channel.queue_purge(queue)
            except Exception as error:  # noqa: BLE001 - a queue the broker already dropped is fine
                logger.debug("could not purge %s: %r", queue, error)


def reap_and_send(app: Celery) -> tuple[ReapReport, int]:
    """One reap: move the files of silent workers and parked orphans, purge the dead's queues, send the outbox.

    Returns the reap's report and how many cache_file messages were sent.
    """
    report = coordinator_of(app).reap()
    if report.moves:
        faults.crash_point(app, faults.AFTER_REAP_COMMIT)
    for worker_id in report.declared_dead:
        moved = sum(1 for m in report.moves if m.from_worker == worker_id)
        logger.warning("worker %s declared dead: %d files moved", worker_id, moved)
    if report.declared_dead:
        purge_direct_queues(app, report.declared_dead)
    return report, send_owed(app)


def retire_and_send(app: Celery, worker_id: str) -> list[Move]:
    """Retire worker_id on purpose: its files move at once, its queue is purged and the new owners are sent them."""
    moves = coordinator_of(app).retire_worker(worker_id)
    purge_direct_queues(app, [worker_id])
    send_owed(app)
    return moves


@shared_task(bind=True, name="tasks.reap_dead_workers")
def reap_dead_workers(self: Task) -> dict:
    """The periodic reap beat schedules (celeryconfig.beat_schedule)."""
    report, sent = reap_and_send(self.app)
    return {
        "declared_dead": report.declared_dead,
        "moved": len(report.moves),
        "parked": len(report.parked),
        "sent": sent,
    }
