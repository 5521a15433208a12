"""The store interface: named SQL per dialect, one connection per process and thread, whole transactions retried.

Two implementations: sqlite_store (a file, the embedded default) and postgres_store (workers on several hosts).
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from enum import Enum
from importlib import resources
from typing import Any, Generic, Protocol, TypeVar

from .errors import StateDatabaseError

T = TypeVar("T")
C = TypeVar("C")

SCHEMA_VERSION = 1
# How long a transaction is retried (locked, serialization failure, connection lost) before StateDatabaseError.
RETRY_BUDGET = 60.0
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class Cursor(Protocol):
    def fetchone(self) -> tuple | None: ...
    def fetchall(self) -> list[tuple]: ...
    def __iter__(self) -> Any: ...


class Session(Protocol):
    """What a unit of work sees: the store's named queries and the clock the store judges time on."""

    def execute(self, name: str, params: Any = ()) -> Cursor:
        """Run the named query (named parameters as a dict, positional ones as a tuple)."""

    def executemany(self, name: str, rows: Iterable[Any]) -> None:
        """Run the named query once per row."""

    def load(self, name: str, rows: Iterable[tuple]) -> None:
        """Bulk-load rows with the named statement: the fastest way the dialect has (COPY on PostgreSQL)."""

    def clock(self) -> tuple[float, float]:
        """(wall-clock seconds for people, seconds on the clock staleness is judged on)."""


class Failure(Enum):
    """What a driver error means to the retry loop."""

    RETRY = "retry"  # locked, or lost a race: the same transaction will succeed later
    RECONNECT = "reconnect"  # the connection is broken: open another and retry
    FATAL = "fatal"  # retrying changes nothing


def load_sql(*parts: str) -> str:
    """The text of a file under coordinator/sql/."""
    return resources.files(__package__).joinpath("sql", *parts).read_text(encoding="utf-8")


def named_queries(script: str) -> dict[str, str]:
    """The queries of a file, by the name on their '-- name:' line."""
    queries: dict[str, str] = {}
    name = None
    for line in script.splitlines():
        if line.startswith("-- name:"):
            name = line.removeprefix("-- name:").strip()
            queries[name] = ""
        elif name is not None and not line.startswith("--"):
            queries[name] += line + "\n"
    return {name: sql.strip().rstrip(";") for name, sql in queries.items()}


_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def dialect_queries(dialect: str, *, pyformat: bool = False) -> dict[str, str]:
    """The shared queries (sql/queries.sql) and those of sql/<dialect>/queries.sql; each name is in one of them.

    pyformat rewrites :name and ? parameters as %(name)s and %s, the only styles psycopg takes.
    """
    shared, own = named_queries(load_sql("queries.sql")), named_queries(load_sql(dialect, "queries.sql"))
    if shared.keys() & own.keys():
        raise ValueError(f"queries named both in queries.sql and {dialect}/queries.sql: {shared.keys() & own.keys()}")
    queries = {**shared, **own}
    if pyformat:
        queries = {name: _NAMED.sub(r"%(\1)s", sql).replace("?", "%s") for name, sql in queries.items()}
    return queries


def is_postgres(location: str | os.PathLike[str]) -> bool:
    """True for a postgresql:// (or postgres://) URL, false for a file path."""
    return str(location).startswith(POSTGRES_SCHEMES)


class Store(ABC, Generic[C]):
    """Where the state lives. Each thread of each process gets its own connection (reopened after fork()), and
    every unit of work runs as one transaction, retried whole when the database says another one got in the way."""

    #: True when staleness is judged on this machine's monotonic clock (so readings die with the boot).
    local_clock: bool
    #: The absolute path of the file, or the URL as given.
    db_path: str
    #: The path or URL, fit to show (no password).
    location: str

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[C] = []
        self._generation = 0  # raised to make every thread reopen its connection

    def read(self, work: Callable[[Session], T]) -> T:
        """Run work in a read-only snapshot, retrying when the database is busy."""
        return self._retry(work, write=False, durable=False, budget=RETRY_BUDGET)

    def write(self, work: Callable[[Session], T], *, durable: bool = True, budget: float = RETRY_BUDGET) -> T:
        """Run work as one transaction that sees the others as if one at a time, retried whole for up to budget s.

        durable waits for the commit to reach the disk; without it a crash of the machine (not of the process)
        may lose it.
        """
        return self._retry(work, write=True, durable=durable, budget=budget)

    def check_file(self) -> None:
        """Reconnect if the state was replaced under us; StateDatabaseError if it is gone. A no-op for a server."""

    def reconnect(self) -> None:
        """Make every thread open a fresh connection at its next use (after the state was replaced, say)."""
        self._generation += 1

    def close(self) -> None:
        """Close every connection this process opened."""
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            self._close(connection)
        self._local = threading.local()

    @abstractmethod
    def _open(self) -> tuple[C, Session]:
        """A new connection, set up, and the session that runs named queries on it."""

    @abstractmethod
    def _transaction(
        self, connection: C, session: Session, work: Callable[[Session], T], write: bool, durable: bool
    ) -> T:
        """Run work once, in one transaction (or snapshot for a read)."""

    @abstractmethod
    def _failure(self, error: Exception) -> Failure | None:
        """What a driver error means, or None if it is not one of the driver's."""

    @abstractmethod
    def _close(self, connection: C) -> None:
        """Close a connection, ignoring errors."""

    def _retry(self, work: Callable[[Session], T], *, write: bool, durable: bool, budget: float) -> T:
        deadline = time.monotonic() + budget
        delay = 0.005
        while True:
            try:
                connection, session = self._connection()
                return self._transaction(connection, session, work, write, durable)
            except Exception as error:
                failure = self._failure(error)
                if failure is None:
                    raise
                if failure is Failure.FATAL:
                    raise StateDatabaseError(f"state database {self.location}: {error}") from error
                if failure is Failure.RECONNECT:
                    self._drop_connection()
                if time.monotonic() >= deadline:
                    what = "unreachable" if failure is Failure.RECONNECT else "locked"
                    raise StateDatabaseError(
                        f"state database {self.location} stayed {what} for {budget:.0f} s: {error}"
                    ) from error
                time.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 0.25)

    def _connection(self) -> tuple[C, Session]:
        local = self._local
        pid = os.getpid()
        if getattr(local, "pid", None) == pid and local.generation == self._generation and local.connection is not None:
            return local.connection, local.session
        stale = getattr(local, "connection", None)
        if stale is not None and local.pid != pid:
            # Inherited across fork(): kept referenced so the child never closes (and so never unlocks, checkpoints
            # or ends the server session of) a handle that belongs to its parent.
            _inherited.append(stale)
            self._connections = []
            local.connection = None
        self._drop_connection()
        local.connection, local.session = self._open()
        local.pid, local.generation = pid, self._generation
        with self._lock:
            self._connections.append(local.connection)
        return local.connection, local.session

    def _drop_connection(self) -> None:
        """Close this thread's connection, if it has one; the next use opens another."""
        local = self._local
        connection, local.connection = getattr(local, "connection", None), None
        if connection is None:
            return
        with self._lock:
            if connection in self._connections:
                self._connections.remove(connection)
        self._close(connection)


_inherited: list[Any] = []


def open_store(location: str | os.PathLike[str]) -> Store:
    """The store at location: a postgresql:// URL, or the path of a SQLite file."""
    if is_postgres(location):
        from .postgres_store import PostgresStore  # psycopg is an optional extra

        return PostgresStore(str(location))
    from .sqlite_store import SQLiteStore

    return SQLiteStore(location)
