"""End to end: real celery workers and beat on each broker and state backend, real kill -9, SIGTERM and SIGSTOP."""

from __future__ import annotations

import hashlib
import signal
import socket
import uuid

import pytest
from helpers import service_missing

from coordinator import WorkerStatus
from tasks.cluster import BROKER_PORTS as SERVICE_PORTS
from tasks.cluster import LOCAL_BROKERS as BROKERS
from tasks.cluster import LocalCluster

pytestmark = pytest.mark.e2e

TIMEOUT, INTERVAL, REAP = 2.0, 0.5, 0.5
# Detection takes the timeout plus up to one reap interval; the rest is messaging and copying.
RECOVERY_BUDGET = TIMEOUT + REAP + 10.0
FILES = 60


def require_service(name: str) -> None:
    try:
        socket.create_connection(("127.0.0.1", SERVICE_PORTS[name]), timeout=2).close()
    except OSError as error:
        service_missing(f"{name} on 127.0.0.1:{SERVICE_PORTS[name]}", error)


@pytest.fixture(params=list(BROKERS))
def cluster(request, tmp_path, state_url):
    if BROKERS[request.param]:
        require_service(request.param)
    cluster = LocalCluster(
        tmp_path / "home",
        broker_url=BROKERS[request.param],
        heartbeat_timeout=TIMEOUT,
        heartbeat_interval=INTERVAL,
        reap_interval=REAP,
        env={"COORDINATOR_FAULTS_DIR": str(tmp_path / "faults"), "COORDINATOR_DB": state_url},
    )
    (tmp_path / "faults").mkdir()
    cluster.faults = tmp_path / "faults"
    cluster.files = cluster.make_sample_files(FILES)
    # Worker names are unique per test, so a shared Redis or RabbitMQ holds no queue of an earlier test.
    suffix = uuid.uuid4().hex[:6]
    cluster.names = [f"w{i}-{suffix}" for i in (1, 2, 3)]
    try:
        for name in cluster.names:
            cluster.start_worker(name)
        cluster.start_beat()
        yield cluster
    finally:
        cluster.stop()


def owner_of(cluster: LocalCluster, file_id: str) -> str | None:
    return cluster.coordinator.get_file(file_id).worker_id


def all_cached_on(cluster: LocalCluster, nodes: set[str]) -> bool:
    return cluster.all_cached_on(cluster.files, nodes)


def assign_all_and_wait(cluster: LocalCluster) -> None:
    cluster.assign(cluster.files)
    nodes = {cluster.node(n) for n in cluster.names}
    cluster.wait_until(lambda: all_cached_on(cluster, nodes), 60, "every file to be cached")


def busiest(cluster: LocalCluster) -> str:
    return cluster.busiest(cluster.names)


def assert_every_file_cached_once_with_its_bytes(cluster: LocalCluster, nodes: set[str]) -> None:
    owned = [
        f for w in cluster.coordinator.list_workers() for f in cluster.coordinator.get_worker_assignments(w.worker_id)
    ]
    assert sorted(owned) == sorted(cluster.files), "a file has no owner or two"
    for file_id, sha256 in cluster.files.items():
        assert cluster.cached_intact(file_id, sha256, nodes), cluster.coordinator.get_file(file_id)


def survivors(cluster: LocalCluster, victim: str) -> set[str]:
    return {cluster.node(n) for n in cluster.names if n != victim}


def stranded_messages(cluster: LocalCluster, node: str) -> list[str]:
    """Messages waiting in node's own queue on the filesystem broker."""
    return [p.name for p in (cluster.home / "broker/messages").iterdir() if p.name.endswith(f".{node}.dq2.msg")]


def test_kill_9_of_a_worker_recaches_its_files_on_live_workers(cluster):
    assign_all_and_wait(cluster)
    victim = busiest(cluster)
    held = cluster.coordinator.get_worker_assignments(cluster.node(victim))

    cluster.signal(victim, signal.SIGKILL)
    elapsed = cluster.wait_until(
        lambda: all_cached_on(cluster, survivors(cluster, victim)), RECOVERY_BUDGET, "recovery after kill -9"
    )

    print(f"\nrecovered {len(held)} files {elapsed:.2f} s after kill -9")
    assert cluster.coordinator.get_worker(cluster.node(victim)).status is WorkerStatus.DEAD
    assert all(cluster.coordinator.get_file(f).epoch == 2 for f in held)
    assert_every_file_cached_once_with_its_bytes(cluster, survivors(cluster, victim))


def test_files_sent_to_a_worker_that_just_died_are_recovered_and_its_queue_emptied(cluster):
    more = {}
    for i in range(31):
        data = f"late file {i}".encode()
        (cluster.source_dir / f"late-{i}").write_bytes(data)
        more[f"late-{i}"] = hashlib.sha256(data).hexdigest()
    assign_all_and_wait(cluster)
    # An assigner that has assigned once already: its start-up is not part of the race with the reaper.
    assigner = cluster.start_assigner()
    assigner.stdin.write("late-0\n")
    assigner.stdin.flush()
    cluster.wait_until(lambda: any(f.file_id == "late-0" for f in cluster.coordinator.list_files()), 30, "the assigner")
    victim = cluster.names[0]
    cluster.signal(victim, signal.SIGKILL)
    # The victim still looks alive for a while, so some of these are sent to its queue.
    assigner.stdin.write("".join(f"late-{i}\n" for i in range(1, 31)))
    assigner.stdin.close()
    assert assigner.wait(60) == 0, cluster.log("assigner")
    cluster.files.update(more)
    sent_to_victim = [
        f for f in more if cluster.coordinator.get_file(f).epoch == 1 and owner_of(cluster, f) == cluster.node(victim)
    ]

    cluster.wait_until(lambda: all_cached_on(cluster, survivors(cluster, victim)), RECOVERY_BUDGET, "recovery")

    assert sent_to_victim, "no file was sent to the dead worker's queue; the test proves nothing"
    assert_every_file_cached_once_with_its_bytes(cluster, survivors(cluster, victim))
    if cluster.env.get("CELERY_BROKER_URL") is None:
        assert stranded_messages(cluster, cluster.node(victim)) == [], "the dead worker's queue was not purged"


def test_sigterm_retires_a_worker_and_moves_its_files_without_waiting_for_the_timeout(cluster):
    assign_all_and_wait(cluster)
    victim = busiest(cluster)

    cluster.signal(victim, signal.SIGTERM, group=False)
    cluster.wait_until(lambda: all_cached_on(cluster, survivors(cluster, victim)), RECOVERY_BUDGET, "warm shutdown")

    # Only the worker_shutdown handler retires; a reaper would have marked it dead.
    assert cluster.coordinator.get_worker(cluster.node(victim)).status is WorkerStatus.RETIRED
    # The handler logs once it has also marked the messages sent, which may come after the new owners cached them.
    cluster.wait_until(lambda: "retired" in cluster.log(victim), 10, "the worker_shutdown handler to finish")
    assert_every_file_cached_once_with_its_bytes(cluster, survivors(cluster, victim))


def test_a_worker_stopped_past_the_timeout_has_its_late_completions_refused_and_rejoins(cluster):
    (cluster.faults / "before-complete").write_text("0.5")  # every copy takes a while to report
    victim = cluster.names[0]
    node = cluster.node(victim)
    cluster.assign(cluster.files)
    cluster.wait_until(lambda: cluster.coordinator.get_worker_assignments(node), 10, f"{victim} to own a file")
    cluster.wait_until(lambda: "tasks.cache_file" in cluster.log(victim), 10, "a task to start")

    cluster.signal(victim, signal.SIGSTOP)
    try:
        cluster.wait_until(
            lambda: all_cached_on(cluster, survivors(cluster, victim)), RECOVERY_BUDGET + 30, "files to move"
        )
    finally:
        cluster.signal(victim, signal.SIGCONT)
    cluster.wait_until(lambda: cluster.coordinator.get_worker(node).incarnation == 2, 15, f"{victim} to rejoin")
    cluster.wait_until(lambda: "completion refused" in cluster.log(victim), 15, "the late completion")

    assert cluster.coordinator.get_worker(node).status is WorkerStatus.ACTIVE
    assert cluster.coordinator.get_worker_assignments(node) == []
    cluster.wait_until(
        lambda: not [p for p in (cluster.cache_dir / node).rglob("*") if p.is_file()], 10, "stale copies to go"
    )
    assert_every_file_cached_once_with_its_bytes(cluster, survivors(cluster, victim))


def test_after_every_worker_is_killed_a_new_worker_gets_every_file(cluster):
    assign_all_and_wait(cluster)
    for name in cluster.names:
        cluster.signal(name, signal.SIGKILL)

    newcomer = cluster.start_worker(f"w4-{cluster.names[0].split('-')[1]}")
    cluster.wait_until(lambda: all_cached_on(cluster, {newcomer}), RECOVERY_BUDGET + 10, "the newcomer to take over")

    assert {w.status for w in cluster.coordinator.list_workers() if w.worker_id != newcomer} == {WorkerStatus.DEAD}
    assert_every_file_cached_once_with_its_bytes(cluster, {newcomer})


def test_a_reaper_killed_between_commit_and_send_loses_nothing(cluster):
    assign_all_and_wait(cluster)
    victim = busiest(cluster)
    (cluster.faults / "after-reap-commit").touch()

    cluster.signal(victim, signal.SIGKILL)
    cluster.wait_until(
        lambda: all_cached_on(cluster, survivors(cluster, victim)), RECOVERY_BUDGET + 5, "recovery after the crash"
    )

    assert not (cluster.faults / "after-reap-commit").exists(), "the reaper never reached the fault point"
    assert_every_file_cached_once_with_its_bytes(cluster, survivors(cluster, victim))
