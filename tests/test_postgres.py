"""What only the PostgreSQL backend has: the server's clock, lost connections and links, several schemas."""

from __future__ import annotations

import time

import psycopg
import pytest
from helpers import POSTGRES_URL, postgres_schema
from link import Link

from coordinator import StateDatabaseError, WorkerCoordinator, WorkerStatus


@pytest.fixture
def state():
    with postgres_schema() as url:
        yield url


def test_hosts_with_skewed_clocks_agree_on_who_is_alive(state, monkeypatch):
    skewed = WorkerCoordinator(state, heartbeat_timeout=2.0)
    monkeypatch.setattr(time, "time", lambda real=time.time: real() + 3600)  # this "host" runs an hour ahead
    monkeypatch.setattr(time, "monotonic", lambda real=time.monotonic: real() + 3600)
    skewed.register_worker("ahead@host")
    monkeypatch.undo()

    honest = WorkerCoordinator(state, heartbeat_timeout=2.0)
    honest.register_worker("on-time@host")
    assert honest.detect_dead_workers() == []
    registered = honest.get_worker("ahead@host").registered_at
    assert abs(registered - time.time()) < 60, "times come from the server, not the host"


def test_a_connection_the_server_ends_is_replaced_without_an_error(state):
    coordinator = WorkerCoordinator(state)
    coordinator.register_worker("w")
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT count(*) FROM pg_stat_activity, pg_terminate_backend(pid)"
            " WHERE application_name = 'celery-worker-coordinator'"
        ).fetchone()[0]
    assert ended >= 1

    assert coordinator.heartbeat("w").revived is False
    assert coordinator.get_worker("w").status is WorkerStatus.ACTIVE


def test_a_cut_link_fails_a_heartbeat_within_the_timeout_and_heals_when_it_returns(state):
    link = Link({"postgres": ("127.0.0.1", 5432)})
    try:
        coordinator = WorkerCoordinator(link.url("postgres", state), heartbeat_timeout=1.0)
        coordinator.register_worker("w")
        link.cut()
        began = time.monotonic()
        with pytest.raises(StateDatabaseError, match="unreachable"):
            coordinator.record_heartbeat("w")
        assert time.monotonic() - began < 3.0, "a heartbeat waits at most about the timeout"
        link.restore()
        coordinator.record_heartbeat("w")
        assert coordinator.get_worker("w").status is WorkerStatus.ACTIVE
    finally:
        link.close()


def test_two_schemas_of_one_database_are_two_separate_states():
    with postgres_schema() as first, postgres_schema() as second:
        WorkerCoordinator(first).register_worker("only-in-first")
        assert WorkerCoordinator(second).list_workers() == []
        assert [w.worker_id for w in WorkerCoordinator(first).list_workers()] == ["only-in-first"]
