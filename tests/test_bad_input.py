"""Bad input gets a typed error that names the culprit, and changes nothing."""

import sqlite3

import psycopg
import pytest
from helpers import postgres_schema, run_sql

from coordinator import (
    CoordinatorError,
    InvalidArgumentError,
    InvalidIdError,
    SchemaVersionError,
    StateDatabaseError,
    UnknownWorkerError,
    WorkerCoordinator,
)
from coordinator.store import SCHEMA_VERSION

BAD_IDS = ["", "   ", None, 42, b"bytes", "a\x00b", "\udc80"]


@pytest.fixture
def coordinator(state_url):
    c = WorkerCoordinator(state_url)
    c.register_worker("w")
    c.assign_work("w", "f")
    return c


def snapshot(c):
    return c.list_workers(), [c.get_file("f")]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
@pytest.mark.parametrize(
    "call",
    [
        lambda c, bad: c.register_worker(bad),
        lambda c, bad: c.record_heartbeat(bad),
        lambda c, bad: c.assign_work(bad, "f2"),
        lambda c, bad: c.assign_work("w", bad),
        lambda c, bad: c.redistribute_from_dead_worker(bad, "w"),
        lambda c, bad: c.redistribute_from_dead_worker("w", bad),
        lambda c, bad: c.get_worker_assignments(bad),
        lambda c, bad: c.retire_worker(bad),
        lambda c, bad: c.complete(bad, "w", 1, size=0, sha256=""),
    ],
    ids=[
        "register",
        "heartbeat",
        "assign-worker",
        "assign-file",
        "redistribute-dead",
        "redistribute-target",
        "assignments",
        "retire",
        "complete",
    ],
)
def test_a_malformed_id_is_refused_and_changes_nothing(coordinator, call, bad):
    before = snapshot(coordinator)
    with pytest.raises(InvalidIdError):
        call(coordinator, bad)
    assert snapshot(coordinator) == before


def test_over_long_ids_are_refused(coordinator):
    before = snapshot(coordinator)
    with pytest.raises(InvalidIdError, match="over the limit of 255"):
        coordinator.register_worker("w" * 256)
    with pytest.raises(InvalidIdError, match="over the limit of 4096"):
        coordinator.assign_work("w", "f" * 4097)
    assert snapshot(coordinator) == before


def test_unknown_ids_are_named_in_the_error(coordinator):
    with pytest.raises(UnknownWorkerError, match="'nobody'"):
        coordinator.record_heartbeat("nobody")
    with pytest.raises(UnknownWorkerError, match="'nobody'"):
        coordinator.get_worker_assignments("nobody")
    assert [w.worker_id for w in coordinator.list_workers()] == ["w"]


def test_redistributing_to_oneself_is_refused(coordinator):
    with pytest.raises(InvalidArgumentError, match="'w' cannot take over its own files"):
        coordinator.redistribute_from_dead_worker("w", "w")
    assert coordinator.get_worker_assignments("w") == ["f"]


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), "5", None, True])
def test_a_timeout_that_is_not_a_positive_number_is_refused(tmp_path, timeout):
    with pytest.raises(InvalidArgumentError, match="heartbeat_timeout"):
        WorkerCoordinator(str(tmp_path / "state.db"), heartbeat_timeout=timeout)
    assert not (tmp_path / "state.db").exists()


@pytest.mark.parametrize("epoch", [0, -1, 1.0, "1", True])
def test_a_malformed_epoch_is_refused(coordinator, epoch):
    with pytest.raises(InvalidArgumentError, match="epoch"):
        coordinator.complete("f", "w", epoch, size=0, sha256="")


def test_a_directory_is_not_a_state_file(tmp_path):
    with pytest.raises(StateDatabaseError, match="is a directory"):
        WorkerCoordinator(str(tmp_path))


def test_a_path_below_a_regular_file_is_refused(tmp_path):
    (tmp_path / "plain").write_text("x")
    with pytest.raises(StateDatabaseError):
        WorkerCoordinator(str(tmp_path / "plain" / "state.db"))


def test_a_file_that_is_not_sqlite_is_refused_and_left_as_it_was(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("these are not the pages of a database\n" * 200)
    with pytest.raises(StateDatabaseError, match="not a database"):
        WorkerCoordinator(str(path))
    assert path.read_text() == "these are not the pages of a database\n" * 200


def test_another_applications_sqlite_file_is_refused_and_left_as_it_was(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE mine (x)")
    with pytest.raises(StateDatabaseError, match="not a coordinator state file"):
        WorkerCoordinator(str(path))
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master")]
    assert tables == ["mine"]


def test_a_state_file_from_a_future_release_is_refused(tmp_path):
    path = tmp_path / "state.db"
    WorkerCoordinator(str(path)).register_worker("w")
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaVersionError, match=f"schema version {SCHEMA_VERSION + 1}"):
        WorkerCoordinator(str(path))


def test_another_applications_postgres_tables_are_refused_and_left_as_they_were():
    with postgres_schema() as url:
        run_sql(url, "CREATE TABLE workers (name text); INSERT INTO workers VALUES ('theirs')")
        with pytest.raises(StateDatabaseError, match="tables named workers that are not a coordinator's"):
            WorkerCoordinator(url)
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT * FROM workers").fetchall() == [("theirs",)]
            assert connection.execute("SELECT to_regclass('assignments')").fetchone() == (None,)


def test_a_postgres_schema_from_a_future_release_is_refused():
    with postgres_schema() as url:
        WorkerCoordinator(url).register_worker("w")
        run_sql(url, f"UPDATE meta SET value = '{SCHEMA_VERSION + 1}' WHERE key = 'schema_version'")
        with pytest.raises(SchemaVersionError, match=f"schema version {SCHEMA_VERSION + 1}"):
            WorkerCoordinator(url)


def test_a_malformed_postgres_url_is_refused_without_its_password():
    with pytest.raises(StateDatabaseError, match=r"not a valid URL") as raised:
        WorkerCoordinator("postgresql://me:secret@127.0.0.1:5432/db?nosuchoption=1")
    assert "secret" not in str(raised.value)


def test_every_error_is_a_coordinator_error():
    for error in (InvalidArgumentError, InvalidIdError, UnknownWorkerError, StateDatabaseError, SchemaVersionError):
        assert issubclass(error, CoordinatorError)
