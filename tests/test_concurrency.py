"""Many real processes on one state (SQLite file, PostgreSQL): nothing locked escapes, every file has one owner."""

import contextlib
import multiprocessing
import signal
import subprocess
import sys
import time
import traceback

import pytest

from coordinator import AlreadyAssignedError, WorkerCoordinator

PROCESSES = 12
ROUNDS = 40
CONTESTED = 10

# fork: the children inherit the parent's coordinator, so each must open its own connection after fork().
fork = multiprocessing.get_context("fork")


def run_child(work, errors, *args):
    try:
        work(*args)
    except BaseException:
        errors.put(traceback.format_exc())


def churn(coordinator, index, barrier):
    me = f"worker-{index}"
    coordinator.register_worker(me)
    barrier.wait()
    for i in range(ROUNDS):
        coordinator.record_heartbeat(me)
        coordinator.assign_work(me, f"{me}/own-{i}")
        with contextlib.suppress(AlreadyAssignedError):
            coordinator.assign_work(me, f"contested-{i % CONTESTED}")
        coordinator.assign(f"auto-{index}-{i}")
        coordinator.detect_dead_workers()


def start_all(target, argument_lists):
    errors = fork.Queue()
    processes = [fork.Process(target=run_child, args=(target, errors, *args)) for args in argument_lists]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [p.exitcode for p in processes] == [0] * len(processes)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert failures == []


def owners_by_file(coordinator):
    owners = {}
    for worker in coordinator.list_workers():
        for file_id in coordinator.get_worker_assignments(worker.worker_id):
            owners.setdefault(file_id, []).append(worker.worker_id)
    return owners


def test_twelve_processes_register_heartbeat_and_assign_at_once(state_url):
    coordinator = WorkerCoordinator(state_url, heartbeat_timeout=30)
    barrier = fork.Barrier(PROCESSES)

    start_all(churn, [(coordinator, i, barrier) for i in range(PROCESSES)])

    owners = owners_by_file(coordinator)
    assert len(owners) == PROCESSES * ROUNDS * 2 + CONTESTED
    assert all(len(o) == 1 for o in owners.values()), "a file has two owners"
    for index in range(PROCESSES):
        me = f"worker-{index}"
        assert all(owners[f"{me}/own-{i}"] == [me] for i in range(ROUNDS))
    assert {coordinator.get_file(f"contested-{i}").epoch for i in range(CONTESTED)} == {1}


DEAD = [f"dead-{i}" for i in range(4)]


def race(coordinator, barrier, results, kind):
    barrier.wait()
    if kind == "reap":
        moved = [m.file_id for m in coordinator.reap().moves]
    else:
        moved = [f for dead in DEAD for f in coordinator.redistribute_from_dead_worker(dead, "live-2")]
    results.put(moved)


@pytest.mark.parametrize("racers", [("reap", "reap"), ("reap", "redistribute"), ("redistribute", "redistribute")])
def test_concurrent_reaps_and_redistributions_move_each_file_once(state_url, racers):
    coordinator = WorkerCoordinator(state_url, heartbeat_timeout=0.5)
    for worker in [*DEAD, "live-1", "live-2"]:
        coordinator.register_worker(worker)
    files = [f"{worker}/f{i}" for worker in DEAD for i in range(150)]
    for file_id in files:
        coordinator.assign_work(file_id.split("/")[0], file_id)
    time.sleep(0.7)
    coordinator.record_heartbeat("live-1")
    coordinator.record_heartbeat("live-2")
    barrier, results = fork.Barrier(len(racers)), fork.Queue()

    start_all(race, [(coordinator, barrier, results, kind) for kind in racers])

    moved = [f for _ in racers for f in results.get(timeout=10)]
    assert sorted(moved) == sorted(files), "each file moved by exactly one racer"
    assert {coordinator.get_file(f).epoch for f in files} == {2}
    owners = owners_by_file(coordinator)
    assert sorted(owners) == sorted(files)
    assert all(o in (["live-1"], ["live-2"]) for o in owners.values())
    coordinator.record_heartbeat("live-1")
    coordinator.record_heartbeat("live-2")
    assert coordinator.reap().moves == [], "nothing is left to move"


CRASH_AFTER_ASSIGN = """
import os, signal, sys
from coordinator import WorkerCoordinator
c = WorkerCoordinator(sys.argv[1])
c.register_worker("w")
c.assign_work("w", "acknowledged")
print("assigned", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_an_acknowledged_assignment_survives_a_kill_9_of_its_process(state_url):
    child = subprocess.run([sys.executable, "-c", CRASH_AFTER_ASSIGN, state_url], capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL
    assert child.stdout == "assigned\n"
    assert WorkerCoordinator(state_url).get_worker_assignments("w") == ["acknowledged"]
