"""Shared by the tests: a clock the tests move by hand, and fresh state on either backend."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks import cluster

TIMEOUT = 5.0  # the heartbeat timeout of the coordinator fixture (conftest.py)
BACKENDS = ["sqlite", "postgres"]
POSTGRES_URL = cluster.LOCAL_POSTGRES


class ManualClock:
    """A clock that only moves when told, so staleness is decided without sleeping."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def service_missing(what: str, error: Exception) -> None:
    """A service a test needs is down: a failure in CI (CI=true), a skip on a developer's machine."""
    message = f"{what} is not reachable: {error}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose tables land in a new, empty schema of POSTGRES_URL's database; dropped afterwards."""
    import psycopg

    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=5).close()
    except psycopg.OperationalError as error:
        service_missing(f"PostgreSQL at {POSTGRES_URL}", error)
    with cluster.postgres_schema(POSTGRES_URL) as url:
        yield url


@contextlib.contextmanager
def fresh_state(backend: str, folder: Path) -> Iterator[str]:
    """Where new, empty coordinator state lives: a SQLite file in folder, or a PostgreSQL schema."""
    if backend == "postgres":
        with postgres_schema() as url:
            yield url
    else:
        yield str(folder / "state.db")


def run_sql(state: str, sql: str) -> None:
    """Change coordinator state behind its back, as another program (or a broken one) would."""
    if state.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(state, autocommit=True) as connection:
            connection.execute(sql)
    else:
        import sqlite3

        with contextlib.closing(sqlite3.connect(state)) as connection, connection:
            connection.execute(sql)
