"""Workers on several "hosts": two groups reach PostgreSQL and the broker only through links the test cuts."""

from __future__ import annotations

import uuid

import pytest
from helpers import postgres_schema
from link import Link
from test_e2e import assert_every_file_cached_once_with_its_bytes, require_service

from coordinator import FileState, WorkerStatus
from tasks.cluster import BROKER_PORTS, LOCAL_BROKERS, LocalCluster

pytestmark = pytest.mark.e2e

TIMEOUT, INTERVAL, REAP = 2.0, 0.5, 0.5
FILES = 40
POSTGRES = ("127.0.0.1", 5432)


@pytest.fixture(params=["redis", "amqp"])
def hosts(request, tmp_path):
    """Groups a and b of two workers each, every group behind its own link; beat runs in group b."""
    broker = request.param
    require_service(broker)
    links = {group: Link({"postgres": POSTGRES, "broker": ("127.0.0.1", BROKER_PORTS[broker])}) for group in "ab"}
    with postgres_schema() as state:
        cluster = LocalCluster(
            tmp_path / "home",
            broker_url=LOCAL_BROKERS[broker],
            heartbeat_timeout=TIMEOUT,
            heartbeat_interval=INTERVAL,
            reap_interval=REAP,
            env={"COORDINATOR_DB": state, "COORDINATOR_FAULTS_DIR": str(tmp_path / "faults")},
        )
        (tmp_path / "faults").mkdir()
        # Every copy takes a second to report, so each group has copies in flight when its link is cut.
        (tmp_path / "faults" / "before-complete").write_text("1.0")
        cluster.files = cluster.make_sample_files(FILES)
        suffix = uuid.uuid4().hex[:6]
        cluster.groups = {group: [f"{group}{i}-{suffix}" for i in (1, 2)] for group in "ab"}
        cluster.links = links
        try:
            for group, link in links.items():
                through = {
                    "COORDINATOR_DB": link.url("postgres", state),
                    "CELERY_BROKER_URL": link.url("broker", LOCAL_BROKERS[broker]),
                }
                for name in cluster.groups[group]:
                    cluster.start_worker(name, env=through)
                if group == "b":
                    cluster.start_beat(env=through)
            yield cluster
        finally:
            cluster.stop()
            for link in links.values():
                link.close()


def nodes(cluster: LocalCluster, group: str) -> set[str]:
    return {cluster.node(name) for name in cluster.groups[group]}


def test_a_group_cut_off_is_declared_dead_its_files_recached_and_it_rejoins_fenced(hosts):
    cluster = hosts
    a, b = nodes(cluster, "a"), nodes(cluster, "b")
    cluster.assign(cluster.files)
    for name in cluster.groups["a"]:
        node = cluster.node(name)
        cluster.wait_until(
            lambda name=name, node=node: (
                "tasks.cache_file" in cluster.log(name)
                and FileState.PENDING in {f.state for f in cluster.coordinator.list_files(worker_id=node)}
            ),
            30,
            f"{name} to be caching",
        )

    cluster.links["a"].cut()
    try:
        cluster.wait_until(
            lambda: {cluster.coordinator.get_worker(n).status for n in a} == {WorkerStatus.DEAD}, 15, "a declared dead"
        )
        cluster.wait_until(lambda: cluster.all_cached_on(cluster.files, b), 60, "b to re-cache every file")
        assert {cluster.coordinator.get_worker(n).status for n in b} == {WorkerStatus.ACTIVE}
    finally:
        cluster.links["a"].restore()

    cluster.wait_until(
        lambda: all(
            (w.status, w.incarnation) == (WorkerStatus.ACTIVE, 2) for w in map(cluster.coordinator.get_worker, a)
        ),
        60,
        "a to rejoin as new incarnations",
    )
    refused = [n for n in cluster.groups["a"] if "completion refused" in cluster.log(n)]
    cluster.wait_until(
        lambda: all("completion refused" in cluster.log(n) for n in cluster.groups["a"]), 60, "a's stale completions"
    )

    print(f"\nstale completions refused on {len(refused)} of 2 cut-off workers at rejoin, all within 60 s")
    assert all(cluster.coordinator.get_worker_assignments(n) == [] for n in a), "a rejoined owning nothing"
    assert_every_file_cached_once_with_its_bytes(cluster, b)
    assert all(cluster.alive(n) for group in cluster.groups.values() for n in group), "no worker died of the cut"
