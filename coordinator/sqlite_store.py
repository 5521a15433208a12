"""The SQLite store: WAL, busy timeout, BEGIN IMMEDIATE, one file shared by the processes of one machine."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from .errors import SchemaVersionError, StateDatabaseError
from .store import SCHEMA_VERSION, Failure, Session, Store, dialect_queries, load_sql

T = TypeVar("T")

# How long SQLite itself waits on a lock before answering SQLITE_BUSY.
BUSY_TIMEOUT = 5.0

_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
QUERIES = dialect_queries("sqlite")


def _statements(script: str) -> list[str]:
    """Split a script into complete statements (executescript would commit our transaction)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return [s for s in statements if s.strip(" \n;")]


_CONNECTION_SQL = _statements(load_sql("sqlite", "connection.sql"))


class _Connection(sqlite3.Connection):
    synchronous = ""  # the PRAGMA synchronous last set, so it is only sent when it changes


class SQLiteSession:
    """Named queries on one sqlite3 connection; staleness is judged on this machine's monotonic clock."""

    __slots__ = ("connection",)

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def execute(self, name: str, params: Any = ()) -> sqlite3.Cursor:
        return self.connection.execute(QUERIES[name], params)

    def executemany(self, name: str, rows: Iterable[Any]) -> None:
        self.connection.executemany(QUERIES[name], rows)

    load = executemany

    def clock(self) -> tuple[float, float]:
        return time.time(), time.monotonic()


class SQLiteStore(Store[_Connection]):
    """The state file: creates its schema and notices when the file is replaced."""

    local_clock = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path).expanduser().absolute()
        self.db_path = str(self.path)
        self.location = repr(self.db_path)
        if self.path.is_dir():
            raise StateDatabaseError(f"state database path {str(self.path)!r} is a directory")
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Owner-only from the start; SQLite gives the -wal and -shm files the same mode.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as error:
            raise StateDatabaseError(f"cannot create the state database {str(self.path)!r}: {error}") from error
        self._identity = self._stat()
        self.write(self._ensure_schema)

    def check_file(self) -> None:
        """Reconnect every thread if the state file was replaced; StateDatabaseError if it is gone."""
        identity = self._stat()
        if identity != self._identity:
            self._identity = identity
            self.reconnect()
            self.write(self._ensure_schema)

    def _stat(self) -> tuple[int, int]:
        try:
            status = os.stat(self.path)
        except OSError as error:
            raise StateDatabaseError(f"state database {str(self.path)!r} is gone: {error}") from error
        return status.st_dev, status.st_ino

    def _transaction(
        self, connection: _Connection, session: Session, work: Callable[[Session], T], write: bool, durable: bool
    ) -> T:
        if not write:
            return work(session)  # autocommit: each statement sees a consistent snapshot
        synchronous = "FULL" if durable else "NORMAL"
        if connection.synchronous != synchronous:
            connection.execute(f"PRAGMA synchronous = {synchronous}")
            connection.synchronous = synchronous
        # IMMEDIATE takes the write lock up front: transactions run one at a time, as the coordinator assumes.
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = work(session)
            connection.execute("COMMIT")
            return result
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    def _failure(self, error: Exception) -> Failure | None:
        if not isinstance(error, sqlite3.Error):
            return None
        code = getattr(error, "sqlite_errorcode", None)
        return Failure.RETRY if code is not None and code & 0xFF in _BUSY_CODES else Failure.FATAL

    def _open(self) -> tuple[_Connection, SQLiteSession]:
        connection = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False, factory=_Connection
        )
        try:
            # WAL lets readers run beside the one writer; it is stored in the file, so this is a no-op after
            # the first process.
            if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                connection.execute("PRAGMA journal_mode = WAL")
            for statement in _CONNECTION_SQL:
                connection.execute(statement)
        except BaseException:
            connection.close()
            raise
        return connection, SQLiteSession(connection)

    def _close(self, connection: _Connection) -> None:
        connection.close()

    def _ensure_schema(self, session: Session) -> None:
        connection = session.connection  # type: ignore[attr-defined]
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
        for statement in _statements(load_sql("sqlite", "schema.sql")):
            connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
