"""SQLite connections: WAL, busy timeout, BEGIN IMMEDIATE, bounded retry, one connection per process and thread."""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TypeVar

from .errors import SchemaVersionError, StateDatabaseError

T = TypeVar("T")

SCHEMA_VERSION = 1
# How long SQLite itself waits on a lock before answering SQLITE_BUSY.
BUSY_TIMEOUT = 5.0
# How long a transaction is retried after SQLITE_BUSY before StateDatabaseError.
RETRY_BUDGET = 60.0

_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
# Connections inherited across fork() are kept referenced so the child never closes (and so never
# checkpoints or unlocks) a handle that belongs to its parent.
_inherited: list[sqlite3.Connection] = []


def _load_sql(name: str) -> str:
    return resources.files(__package__).joinpath("sql", name).read_text(encoding="utf-8")


def _statements(script: str) -> list[str]:
    """Split a script into complete statements (executescript would commit our transaction)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return [s for s in statements if s.strip(" \n;")]


def _named_queries(script: str) -> dict[str, str]:
    queries: dict[str, str] = {}
    name = None
    for line in script.splitlines():
        if line.startswith("-- name:"):
            name = line.removeprefix("-- name:").strip()
            queries[name] = ""
        elif name is not None and not line.startswith("--"):
            queries[name] += line + "\n"
    return {name: sql.strip().rstrip(";") for name, sql in queries.items()}


QUERIES = _named_queries(_load_sql("queries.sql"))
_CONNECTION_SQL = _load_sql("connection.sql")


class _Connection(sqlite3.Connection):
    synchronous = ""  # the PRAGMA synchronous last set, so it is only sent when it changes


def _is_busy(error: sqlite3.Error) -> bool:
    return getattr(error, "sqlite_errorcode", None) is not None and error.sqlite_errorcode & 0xFF in _BUSY_CODES


class Store:
    """The state file: creates its schema, hands each thread its own connection, retries busy transactions."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser().absolute()
        if self.path.is_dir():
            raise StateDatabaseError(f"state database path {str(self.path)!r} is a directory")
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Owner-only from the start; SQLite gives the -wal and -shm files the same mode.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as error:
            raise StateDatabaseError(f"cannot create the state database {str(self.path)!r}: {error}") from error
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._generation = 0  # raised to make every thread reopen its connection
        self._identity = self._stat()
        self.write(self._ensure_schema)

    def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run work in autocommit mode (each statement sees a consistent snapshot), retrying on busy."""
        return self._retry(work, None, "", RETRY_BUDGET)

    def write(
        self, work: Callable[[sqlite3.Connection], T], *, durable: bool = True, budget: float = RETRY_BUDGET
    ) -> T:
        """Run work in one BEGIN IMMEDIATE transaction, retried whole on busy for up to budget seconds.

        durable syncs the commit to disk; without it a crash of the machine (not of the process) may lose it.
        """
        return self._retry(work, "BEGIN IMMEDIATE", "FULL" if durable else "NORMAL", budget)

    def check_file(self) -> None:
        """Reconnect every thread if the state file was replaced; StateDatabaseError if it is gone."""
        identity = self._stat()
        if identity != self._identity:
            self._identity = identity
            self.reconnect()
            self.write(self._ensure_schema)

    def reconnect(self) -> None:
        """Make every thread open a fresh connection at its next use (after the file was replaced, say)."""
        self._generation += 1

    def _stat(self) -> tuple[int, int]:
        try:
            status = os.stat(self.path)
        except OSError as error:
            raise StateDatabaseError(f"state database {str(self.path)!r} is gone: {error}") from error
        return status.st_dev, status.st_ino

    def close(self) -> None:
        """Close every connection this process opened."""
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()

    def _retry(self, work: Callable[[sqlite3.Connection], T], begin: str | None, synchronous: str, budget: float) -> T:
        deadline = time.monotonic() + budget
        delay = 0.005
        while True:
            try:
                connection = self._connection()
                if synchronous and connection.synchronous != synchronous:
                    connection.execute(f"PRAGMA synchronous = {synchronous}")
                    connection.synchronous = synchronous
                if begin is None:
                    return work(connection)
                connection.execute(begin)
                try:
                    result = work(connection)
                    connection.execute("COMMIT")
                    return result
                except BaseException:
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
                    raise
            except sqlite3.Error as error:
                if not _is_busy(error):
                    raise StateDatabaseError(f"state database {str(self.path)!r}: {error}") from error
                if time.monotonic() >= deadline:
                    raise StateDatabaseError(
                        f"state database {str(self.path)!r} stayed locked for {budget:.0f} s: {error}"
                    ) from error
                time.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 0.25)

    def _connection(self) -> _Connection:
        local = self._local
        pid = os.getpid()
        if getattr(local, "pid", None) == pid and local.generation == self._generation:
            return local.connection
        stale, local.connection = getattr(local, "connection", None), None
        if stale is not None and local.pid != pid:
            _inherited.append(stale)
            self._connections = []
        elif stale is not None:
            with self._lock:
                self._connections.remove(stale)
            stale.close()
        local.connection = self._open()
        local.pid, local.generation = pid, self._generation
        return local.connection

    def _open(self) -> _Connection:
        connection = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False, factory=_Connection
        )
        try:
            # WAL lets readers run beside the one writer; it is stored in the file, so this is a no-op after
            # the first process.
            if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                connection.execute("PRAGMA journal_mode = WAL")
            for statement in _statements(_CONNECTION_SQL):
                connection.execute(statement)
        except BaseException:
            connection.close()
            raise
        with self._lock:
            self._connections.append(connection)
        return connection

    def _ensure_schema(self, connection: sqlite3.Connection) -> None:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version != 0:
            raise SchemaVersionError(
                f"state database {str(self.path)!r} has schema version {version}; "
                f"this release reads version {SCHEMA_VERSION}"
            )
        if connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise StateDatabaseError(
                f"{str(self.path)!r} is an SQLite database of something else, not a coordinator state file"
            )
        for statement in _statements(_load_sql("schema.sql")):
            connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
