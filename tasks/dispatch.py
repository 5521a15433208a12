"""Sending cache_file to the owner's own queue: assign(), and draining the outbox the coordinator keeps."""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery
from celery.utils.nodenames import worker_direct

from coordinator import Dispatch

from .state import coordinator_of

# A file still pending this many seconds after its message was sent is sent it again: the safety net for a
# message the broker lost while its worker lived on (a dead worker's files move, and its queue is purged).
# Messages carry no expiry: under a backlog, expiring and resending them would only feed the backlog.
RESEND_AFTER = 600.0
# A sender claims messages before it sends them; if it dies in between, they are owed again this much later.
LEASE = 10.0
BATCH = 500


def send(app: Celery, dispatches: Sequence[Dispatch]) -> None:
    """Publish cache_file for each claimed dispatch to its worker's direct queue, then record them as sent."""
    if not dispatches:
        return
    with app.producer_or_acquire() as producer:
        for d in dispatches:
            app.send_task(
                "tasks.cache_file",
                args=(d.file_id, d.worker_id, d.epoch),
                queue=worker_direct(d.worker_id),
                producer=producer,
            )
    coordinator_of(app).mark_dispatched(dispatches, resend_after=RESEND_AFTER)


def send_owed(app: Celery) -> int:
    """Claim and send every message the outbox owes; returns how many."""
    coordinator, sent = coordinator_of(app), 0
    while owed := coordinator.claim_dispatches(lease=LEASE, limit=BATCH):
        send(app, owed)
        sent += len(owed)
        if len(owed) < BATCH:
            break
    return sent


def assign(
    file_id: str, worker_id: str | None = None, *, reassign: bool = False, app: Celery | None = None
) -> str | None:
    """Assign the file (to the least-loaded live worker by default) and send it cache_file.

    Returns the owner's id, or None when no worker is live: the file is then parked and placed on the first
    worker that comes. app defaults to tasks.app.
    """
    if app is None:
        from tasks import app
    coordinator = coordinator_of(app)
    record = coordinator.assign(file_id, worker_id, reassign=reassign)
    # Claimed first: a reaper sending the outbox at this moment must not send it too.
    send(app, coordinator.claim_dispatches(lease=LEASE, file_id=file_id))
    return record.worker_id
