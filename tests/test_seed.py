"""The seed's own three test cases, as the seed states them, on both backends and the real clock."""

import time

from coordinator import WorkerCoordinator


def test_worker_registers_and_heartbeats_update_its_timestamp(state_url):
    coordinator = WorkerCoordinator(state_url, heartbeat_timeout=5.0)
    coordinator.register_worker("worker-1")
    registered = coordinator.get_worker("worker-1").last_heartbeat

    time.sleep(0.05)
    coordinator.record_heartbeat("worker-1")

    assert coordinator.get_worker("worker-1").last_heartbeat > registered
    assert coordinator.detect_dead_workers() == []


def test_workers_silent_past_the_timeout_are_detected_as_dead(state_url):
    coordinator = WorkerCoordinator(state_url, heartbeat_timeout=0.5)
    coordinator.register_worker("worker-1")
    coordinator.register_worker("worker-2")

    time.sleep(0.7)
    coordinator.record_heartbeat("worker-2")

    assert coordinator.detect_dead_workers() == ["worker-1"]


def test_files_of_a_dead_worker_are_redistributed_to_active_workers(state_url):
    coordinator = WorkerCoordinator(state_url, heartbeat_timeout=0.5)
    coordinator.register_worker("worker-1")
    coordinator.register_worker("worker-2")
    for file_id in ("file-a", "file-b", "file-c"):
        coordinator.assign_work("worker-1", file_id)

    time.sleep(0.7)
    coordinator.record_heartbeat("worker-2")
    dead = coordinator.detect_dead_workers()
    assert dead == ["worker-1"]
    moved = coordinator.redistribute_from_dead_worker("worker-1", "worker-2")

    assert moved == ["file-a", "file-b", "file-c"]
    assert coordinator.get_worker_assignments("worker-1") == []
    assert coordinator.get_worker_assignments("worker-2") == ["file-a", "file-b", "file-c"]
