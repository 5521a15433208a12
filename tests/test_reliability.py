"""Poison quarantine, clock safety, hostile ids and file permissions, on real state files."""

import stat
import time

import pytest
from helpers import TIMEOUT, run_sql  # the clock and coordinator fixtures are in conftest.py

from coordinator import (
    FileQuarantinedError,
    FileState,
    InvalidArgumentError,
    InvalidIdError,
    MoveReason,
    UnsafeFileIdError,
    WorkerCoordinator,
    WorkerStatus,
)


def kill_owner_while_caching(coordinator, clock, file_id, *, begin=True):
    """The owner of file_id starts caching it (or not), then falls silent and is reaped; a fresh worker takes over."""
    owner = coordinator.get_file(file_id).worker_id
    if begin:
        coordinator.begin(file_id, owner, coordinator.get_file(file_id).epoch)
    clock.advance(TIMEOUT + 1)
    spare = f"spare-{clock.now}"
    coordinator.register_worker(spare)
    return coordinator.reap()


def test_a_file_whose_owners_keep_dying_while_caching_it_is_quarantined(coordinator, clock):
    coordinator.register_worker("w0")
    coordinator.assign_work("w0", "poison")
    for losses in (1, 2):
        kill_owner_while_caching(coordinator, clock, "poison")
        record = coordinator.get_file("poison")
        assert (record.state, record.worker_losses) == (FileState.PENDING, losses)

    report = kill_owner_while_caching(coordinator, clock, "poison")

    record = coordinator.get_file("poison")
    assert (record.state, record.worker_id, record.worker_losses) == (FileState.QUARANTINED, None, 3)
    assert [(m.file_id, m.to_worker, m.reason) for m in report.moves] == [("poison", None, MoveReason.QUARANTINED)]
    assert coordinator.claim_dispatches(lease=10) == [], "a quarantined file is not re-enqueued"
    assert coordinator.reap().moves == [], "nor placed by a reap"
    with pytest.raises(FileQuarantinedError, match="'poison' is quarantined"):
        coordinator.assign("poison")


def test_a_released_file_is_placed_again_with_its_losses_forgotten(coordinator, clock):
    coordinator = WorkerCoordinator(coordinator.db_path, TIMEOUT, clock=clock, max_worker_losses=1)
    coordinator.register_worker("w0")
    coordinator.assign_work("w0", "poison")
    kill_owner_while_caching(coordinator, clock, "poison")
    assert coordinator.get_file("poison").state is FileState.QUARANTINED

    released = coordinator.release("poison")
    assert (released.state, released.worker_losses) == (FileState.ORPHANED, 0)
    moves = coordinator.reap().moves

    assert [(m.file_id, m.reason) for m in moves] == [("poison", MoveReason.ORPHAN_PLACED)]
    assert coordinator.get_file("poison").state is FileState.PENDING
    with pytest.raises(InvalidArgumentError, match="'poison' is not quarantined"):
        coordinator.release("poison")


def test_deaths_count_against_a_file_only_while_it_is_being_cached(coordinator, clock):
    coordinator.register_worker("w0")
    coordinator.assign_work("w0", "queued")
    coordinator.assign_work("w0", "done")
    coordinator.complete("done", "w0", 1, size=1, sha256="x")

    kill_owner_while_caching(coordinator, clock, "queued", begin=False)

    assert coordinator.get_file("queued").worker_losses == 0, "it was only waiting in the queue"
    assert coordinator.get_file("done").worker_losses == 0, "it was cached already"


def test_begin_is_fenced_like_complete(coordinator):
    coordinator.register_worker("w0")
    coordinator.register_worker("w1")
    coordinator.assign_work("w0", "f")
    coordinator.assign("f", "w1", reassign=True)
    with pytest.raises(Exception, match="fenced off"):
        coordinator.begin("f", "w0", 1)


@pytest.mark.parametrize("jump", [-3600.0, 3600.0])
def test_a_wall_clock_jump_neither_kills_nor_immortalizes(coordinator, clock, monkeypatch, jump):
    coordinator.register_worker("alive")
    coordinator.register_worker("dying")
    coordinator.assign_work("dying", "f")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + jump)

    clock.advance(TIMEOUT - 1)
    coordinator.record_heartbeat("alive")
    assert coordinator.reap().declared_dead == [], "the jump killed a worker"
    clock.advance(2)
    coordinator.record_heartbeat("alive")

    assert coordinator.reap().declared_dead == ["dying"], "the jump kept a silent worker alive"


def test_a_heartbeat_from_the_future_does_not_make_a_worker_immortal(coordinator, clock):
    coordinator.register_worker("w")
    run_sql(coordinator.db_path, "UPDATE workers SET last_seen = last_seen + 1e6")

    assert coordinator.detect_dead_workers() == ["w"]
    assert coordinator.reap().declared_dead == ["w"]


def test_after_a_reboot_every_worker_of_the_old_boot_counts_as_silent(tmp_path, clock):
    path = str(tmp_path / "state.db")
    coordinator = WorkerCoordinator(path, TIMEOUT, clock=clock)
    coordinator.register_worker("w")
    coordinator.assign_work("w", "f")
    coordinator.mark_dispatched(coordinator.claim_dispatches(lease=10), resend_after=600)
    run_sql(path, "UPDATE meta SET value = 'an-earlier-boot' WHERE key = 'boot_id'")

    after = WorkerCoordinator(path, TIMEOUT, clock=clock)

    assert after.detect_dead_workers() == ["w"]
    assert [d.file_id for d in after.claim_dispatches(lease=10)] == ["f"], "messages of the old boot are owed"


@pytest.mark.parametrize(
    "file_id", ["../escape", "/etc/passwd", "a/../../b", "a//b", "./a", "a/.", "dir/", "a\\b", "tab\there", "new\nline"]
)
def test_file_ids_that_could_leave_their_folder_are_refused(coordinator, file_id):
    coordinator.register_worker("w")
    with pytest.raises(InvalidIdError):
        coordinator.assign_work("w", file_id)
    assert coordinator.list_files() == []


def test_a_path_escape_gets_the_specific_error(coordinator):
    coordinator.register_worker("w")
    with pytest.raises(UnsafeFileIdError, match="not a plain relative path"):
        coordinator.assign_work("w", "../../etc/shadow")


@pytest.mark.parametrize("worker_id", ["a/b", "..", ".", "a\\b", "w\n1"])
def test_worker_ids_that_are_not_safe_folder_names_are_refused(coordinator, worker_id):
    with pytest.raises(InvalidIdError):
        coordinator.register_worker(worker_id)
    assert coordinator.list_workers() == []


def test_the_state_file_and_its_companions_are_owner_only(tmp_path):
    coordinator = WorkerCoordinator(str(tmp_path / "state" / "state.db"))
    coordinator.register_worker("w")
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "state").iterdir()}
    assert modes == {"state.db": 0o600, "state.db-wal": 0o600, "state.db-shm": 0o600}
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700


def test_a_replaced_state_file_is_picked_up_by_every_connection(tmp_path):
    path = tmp_path / "state.db"
    coordinator = WorkerCoordinator(str(path))
    coordinator.register_worker("w")
    path.rename(tmp_path / "moved-away.db")
    WorkerCoordinator(str(path)).register_worker("other")

    coordinator.check_state_file()

    assert [w.worker_id for w in coordinator.list_workers()] == ["other"]
    assert coordinator.get_worker("other").status is WorkerStatus.ACTIVE
