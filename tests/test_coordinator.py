"""The rules of ownership on one process: heartbeats, assignment, fencing, reap, retire, the outbox."""

import pytest
from helpers import TIMEOUT  # the clock and coordinator fixtures are in conftest.py

from coordinator import (
    AlreadyAssignedError,
    FencedError,
    FileState,
    MoveReason,
    UnknownFileError,
    UnknownWorkerError,
    WorkerNotActiveError,
    WorkerStatus,
)


def test_detection_reports_silent_active_and_dead_workers_but_never_retired_ones(coordinator, clock):
    for worker in ("a", "b", "c", "d"):
        coordinator.register_worker(worker)
    coordinator.reap()
    clock.advance(TIMEOUT + 1)
    coordinator.record_heartbeat("d")
    coordinator.retire_worker("c")
    coordinator.reap()  # a and b are now marked dead

    assert coordinator.detect_dead_workers() == ["a", "b"]
    assert coordinator.get_worker("a").status is WorkerStatus.DEAD
    assert coordinator.detect_dead_workers() == ["a", "b"], "detection is a pure query"


def test_detection_moves_no_work(coordinator, clock):
    coordinator.register_worker("a")
    coordinator.assign_work("a", "f")
    clock.advance(TIMEOUT + 1)

    assert coordinator.detect_dead_workers() == ["a"]
    assert coordinator.get_worker_assignments("a") == ["f"]
    assert coordinator.get_worker("a").status is WorkerStatus.ACTIVE


def test_a_worker_declared_dead_comes_back_on_its_heartbeat_owning_nothing(coordinator, clock):
    coordinator.register_worker("a")
    coordinator.register_worker("b")
    coordinator.assign_work("a", "f")
    clock.advance(TIMEOUT + 1)
    coordinator.record_heartbeat("b")
    coordinator.reap()

    beat = coordinator.heartbeat("a")

    assert beat.revived and beat.incarnation == 2
    assert coordinator.get_worker("a").status is WorkerStatus.ACTIVE
    assert coordinator.get_worker_assignments("a") == []
    assert coordinator.get_worker_assignments("b") == ["f"]
    assert not coordinator.heartbeat("a").revived


def test_registering_again_starts_a_new_incarnation(coordinator):
    coordinator.register_worker("a")
    coordinator.register_worker("a")
    assert coordinator.get_worker("a").incarnation == 2


def test_a_retired_worker_cannot_heartbeat(coordinator):
    coordinator.register_worker("a")
    coordinator.retire_worker("a")
    with pytest.raises(WorkerNotActiveError, match="'a' is retired"):
        coordinator.record_heartbeat("a")


def test_assigning_to_a_dead_retired_or_unknown_worker_is_refused(coordinator, clock):
    coordinator.register_worker("dead")
    coordinator.register_worker("retired")
    coordinator.retire_worker("retired")
    clock.advance(TIMEOUT + 1)
    coordinator.reap()

    with pytest.raises(WorkerNotActiveError, match="'dead' is dead"):
        coordinator.assign_work("dead", "f")
    with pytest.raises(WorkerNotActiveError, match="'retired' is retired"):
        coordinator.assign_work("retired", "f")
    with pytest.raises(UnknownWorkerError, match="'ghost'"):
        coordinator.assign_work("ghost", "f")
    with pytest.raises(UnknownFileError):
        coordinator.get_file("f")


def test_a_file_owned_by_another_worker_moves_only_on_explicit_reassign(coordinator):
    coordinator.register_worker("a")
    coordinator.register_worker("b")
    coordinator.assign_work("a", "f")
    coordinator.assign_work("a", "f")  # the same owner again changes nothing

    with pytest.raises(AlreadyAssignedError, match="'f' is already assigned to worker 'a'"):
        coordinator.assign_work("b", "f")
    assert coordinator.get_file("f").epoch == 1

    record = coordinator.assign("f", "b", reassign=True)
    assert (record.worker_id, record.epoch, record.state) == ("b", 2, FileState.PENDING)
    assert coordinator.get_worker_assignments("a") == []


def test_automatic_assignment_goes_to_the_least_loaded_live_worker(coordinator, clock):
    for worker in ("a", "b", "stale"):
        coordinator.register_worker(worker)
    coordinator.assign_work("a", "f0")
    clock.advance(TIMEOUT + 1)
    coordinator.record_heartbeat("a")
    coordinator.record_heartbeat("b")

    owners = [coordinator.assign(f"f{i}").worker_id for i in range(1, 6)]

    assert owners == ["b", "a", "b", "a", "b"]


def test_without_a_live_worker_an_assignment_is_parked_until_one_registers(coordinator):
    record = coordinator.assign("f")
    assert (record.worker_id, record.state) == (None, FileState.ORPHANED)

    coordinator.register_worker("a")
    report = coordinator.reap()

    assert [(m.file_id, m.to_worker, m.reason) for m in report.moves] == [("f", "a", MoveReason.ORPHAN_PLACED)]
    assert coordinator.get_file("f").state is FileState.PENDING


def test_reap_spreads_a_dead_workers_files_over_live_workers_by_least_load(coordinator, clock):
    for worker in ("dead", "a", "b"):
        coordinator.register_worker(worker)
    for i in range(3):
        coordinator.assign_work("a", f"a{i}")
    for i in range(7):
        coordinator.assign_work("dead", f"d{i}")
    clock.advance(TIMEOUT + 1)
    coordinator.record_heartbeat("a")
    coordinator.record_heartbeat("b")

    report = coordinator.reap()

    assert report.declared_dead == ["dead"]
    assert {m.reason for m in report.moves} == {MoveReason.WORKER_DEAD}
    assert len(coordinator.get_worker_assignments("a")) == 5
    assert len(coordinator.get_worker_assignments("b")) == 5
    assert coordinator.get_worker_assignments("dead") == []
    assert all(coordinator.get_file(f"d{i}").epoch == 2 for i in range(7))
    assert coordinator.reap().moves == [], "a second reap finds nothing to move"


def test_reap_with_no_live_worker_parks_the_files_then_places_them(coordinator, clock):
    coordinator.register_worker("a")
    coordinator.assign_work("a", "f")
    clock.advance(TIMEOUT + 1)

    report = coordinator.reap()
    assert report.parked == ["f"]
    record = coordinator.get_file("f")
    assert (record.worker_id, record.state, record.epoch) == (None, FileState.ORPHANED, 2)

    coordinator.register_worker("b")
    coordinator.reap()
    record = coordinator.get_file("f")
    assert (record.worker_id, record.state, record.epoch) == ("b", FileState.PENDING, 3)


def test_a_cached_file_of_a_dead_worker_is_cached_again_elsewhere(coordinator, clock):
    coordinator.register_worker("a")
    coordinator.register_worker("b")
    coordinator.assign_work("a", "f")
    coordinator.complete("f", "a", 1, size=3, sha256="abc")
    clock.advance(TIMEOUT + 1)
    coordinator.record_heartbeat("b")
    coordinator.reap()

    record = coordinator.get_file("f")
    assert (record.worker_id, record.state, record.sha256) == ("b", FileState.PENDING, None)


def test_retiring_moves_files_at_once_without_waiting_for_the_timeout(coordinator):
    coordinator.register_worker("a")
    coordinator.register_worker("b")
    coordinator.assign_work("a", "f")

    moves = coordinator.retire_worker("a")

    assert [(m.file_id, m.from_worker, m.to_worker, m.reason) for m in moves] == [
        ("f", "a", "b", MoveReason.WORKER_RETIRED)
    ]
    assert coordinator.get_worker("a").status is WorkerStatus.RETIRED
    assert coordinator.retire_worker("a") == []


def test_completion_is_fenced_by_owner_and_epoch(coordinator):
    coordinator.register_worker("a")
    coordinator.register_worker("b")
    coordinator.assign_work("a", "f")
    coordinator.assign("f", "b", reassign=True)

    with pytest.raises(FencedError, match="'a' at epoch 1 is fenced off"):
        coordinator.complete("f", "a", 1, size=1, sha256="x")
    with pytest.raises(FencedError):
        coordinator.complete("f", "b", 1, size=1, sha256="x")
    assert coordinator.get_file("f").state is FileState.PENDING

    record = coordinator.complete("f", "b", 2, size=1, sha256="x")
    assert (record.state, record.size, record.sha256) == (FileState.CACHED, 1, "x")
    again = coordinator.complete("f", "b", 2, size=1, sha256="x")
    assert (again.state, again.epoch, again.sha256) == (record.state, record.epoch, record.sha256), "harmless"


def test_a_failed_file_is_tried_again_when_assigned_again(coordinator):
    coordinator.register_worker("a")
    coordinator.assign_work("a", "f")
    failed = coordinator.fail("f", "a", 1, error="source missing")
    assert (failed.state, failed.error) == (FileState.FAILED, "source missing")

    coordinator.assign_work("a", "f")

    record = coordinator.get_file("f")
    assert (record.state, record.epoch, record.error) == (FileState.PENDING, 2, None)


def test_redistribution_refuses_a_target_that_cannot_take_work(coordinator, clock):
    for worker in ("dead", "stale", "retired", "live"):
        coordinator.register_worker(worker)
    coordinator.assign_work("dead", "f")
    coordinator.retire_worker("retired")
    clock.advance(TIMEOUT + 1)
    coordinator.record_heartbeat("live")

    with pytest.raises(WorkerNotActiveError, match="'stale' is silent"):
        coordinator.redistribute_from_dead_worker("dead", "stale")
    with pytest.raises(WorkerNotActiveError, match="'retired' is retired"):
        coordinator.redistribute_from_dead_worker("dead", "retired")
    with pytest.raises(UnknownWorkerError):
        coordinator.redistribute_from_dead_worker("dead", "ghost")
    with pytest.raises(UnknownWorkerError):
        coordinator.redistribute_from_dead_worker("ghost", "live")
    assert coordinator.get_worker_assignments("dead") == ["f"]
    assert coordinator.get_worker("dead").status is WorkerStatus.ACTIVE

    assert coordinator.redistribute_from_dead_worker("dead", "live") == ["f"]
    assert coordinator.get_worker("dead").status is WorkerStatus.DEAD
    assert coordinator.get_file("f").epoch == 2
    assert coordinator.redistribute_from_dead_worker("dead", "live") == []


def claim(coordinator, **options):
    return [(d.file_id, d.worker_id, d.epoch) for d in coordinator.claim_dispatches(lease=10, **options)]


def test_the_outbox_owes_a_message_for_every_change_of_owner(coordinator):
    coordinator.register_worker("a")
    coordinator.register_worker("b")
    coordinator.assign_work("a", "f")
    owed = coordinator.claim_dispatches(lease=10)
    assert [(d.file_id, d.worker_id, d.epoch) for d in owed] == [("f", "a", 1)]
    assert claim(coordinator) == [], "a claimed message is no other sender's"

    coordinator.mark_dispatched(owed, resend_after=60)
    coordinator.assign("f", "b", reassign=True)
    coordinator.mark_dispatched(owed, resend_after=60)  # a late mark for epoch 1 does not cover epoch 2

    assert claim(coordinator) == [("f", "b", 2)]


def test_a_claim_never_marked_sent_is_owed_again_after_its_lease(coordinator, clock):
    coordinator.register_worker("a")
    coordinator.assign_work("a", "f")
    assert claim(coordinator) == [("f", "a", 1)]  # ... and the sender dies before it sends
    clock.advance(11)
    coordinator.record_heartbeat("a")

    assert claim(coordinator) == [("f", "a", 1)]


def test_the_outbox_sends_again_what_stays_pending_too_long(coordinator, clock):
    coordinator.register_worker("a")
    coordinator.assign_work("a", "f")
    coordinator.mark_dispatched(coordinator.claim_dispatches(lease=10), resend_after=60)
    clock.advance(30)
    coordinator.record_heartbeat("a")
    assert claim(coordinator) == []
    clock.advance(31)
    coordinator.record_heartbeat("a")

    assert claim(coordinator) == [("f", "a", 1)]
    coordinator.complete("f", "a", 1, size=0, sha256="x")
    clock.advance(61)
    coordinator.record_heartbeat("a")
    assert claim(coordinator) == [], "a cached file is owed nothing"


def test_one_file_can_be_claimed_alone(coordinator):
    coordinator.register_worker("a")
    coordinator.assign_work("a", "f")
    coordinator.assign_work("a", "g")

    assert claim(coordinator, file_id="g") == [("g", "a", 1)]
    assert claim(coordinator) == [("f", "a", 1)]


def test_a_new_incarnation_is_owed_its_pending_files_again(coordinator):
    coordinator.register_worker("a")
    coordinator.assign_work("a", "f")
    coordinator.mark_dispatched(coordinator.claim_dispatches(lease=10), resend_after=60)

    coordinator.register_worker("a")

    assert claim(coordinator) == [("f", "a", 1)]
