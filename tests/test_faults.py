"""Database faults under running workers: the state file locked past the busy timeout, or taken away a while."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from coordinator import WorkerStatus
from tasks.cluster import LocalCluster

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(tmp_path):
    cluster = LocalCluster(tmp_path / "home", heartbeat_timeout=2.0, heartbeat_interval=0.5, reap_interval=0.5)
    cluster.files = cluster.make_sample_files(30)
    try:
        cluster.names = ["f1", "f2"]
        for name in cluster.names:
            cluster.start_worker(name)
        cluster.start_beat()
        cluster.assign(cluster.files)
        nodes = {cluster.node(n) for n in cluster.names}
        cluster.wait_until(lambda: cluster.all_cached_on(cluster.files, nodes), 60, "the first caching")
        yield cluster
    finally:
        cluster.stop()


def pings(cluster: LocalCluster) -> str:
    """Ask every worker over the broker: only a worker whose event loop runs answers."""
    return subprocess.run(
        [sys.executable, "-m", "celery", "-A", "tasks", "inspect", "ping", "-t", "3"],
        cwd=cluster.home,
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout


def settled(cluster: LocalCluster) -> bool:
    nodes = {w.worker_id for w in cluster.coordinator.list_workers() if w.status is WorkerStatus.ACTIVE}
    return nodes == {cluster.node(n) for n in cluster.names} and cluster.all_cached_on(cluster.files, nodes)


def test_a_state_file_locked_past_the_busy_timeout_is_survived(cluster):
    locker = sqlite3.connect(cluster.db_path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # no other writer gets in
    try:
        time.sleep(7)  # past the 5 s busy timeout and the 2 s heartbeat timeout
        answers = pings(cluster)
    finally:
        locker.execute("ROLLBACK")
        locker.close()

    assert all(f"{cluster.node(n)}: OK" in answers for n in cluster.names), answers
    cluster.wait_until(lambda: settled(cluster), 30, "the cluster to recover")
    for name in cluster.names:
        again = f"heartbeats for {cluster.node(name)} are recorded again"
        cluster.wait_until(lambda name=name, again=again: again in cluster.log(name), 15, "heartbeats to resume")
        log = cluster.log(name)
        assert log.count(f"heartbeat for {cluster.node(name)} failed") == 1, "one error per incident"
        assert "stayed locked" in log


def test_a_state_file_taken_away_and_put_back_is_survived(cluster):
    db = cluster.db_path
    os.rename(db, db + ".away")
    try:
        time.sleep(3)
        answers = pings(cluster)
    finally:
        os.rename(db + ".away", db)

    assert all(f"{cluster.node(n)}: OK" in answers for n in cluster.names), answers
    cluster.wait_until(lambda: settled(cluster), 30, "the cluster to recover")
    for name in cluster.names:
        log = cluster.log(name)
        assert log.count(f"heartbeat for {cluster.node(name)} failed") == 1
        assert "is gone" in log
    assert all(cluster.alive(n) for n in cluster.names)
