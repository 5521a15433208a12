"""The PostgreSQL store: workers on several hosts share one database and judge staleness on the server's clock."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

try:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict
    from psycopg.pq import TransactionStatus
except ImportError as error:  # pragma: no cover - depends on the installation
    from .errors import StateDatabaseError

    raise StateDatabaseError(
        "a postgresql:// state database needs psycopg: pip install 'celery-worker-coordinator[postgres]'"
    ) from error

from .errors import SchemaVersionError, StateDatabaseError
from .store import SCHEMA_VERSION, Failure, Session, Store, dialect_queries, load_sql

T = TypeVar("T")

QUERIES = dialect_queries("postgres", pyformat=True)
_CONNECTION_SQL = load_sql("postgres", "connection.sql")
# Defaults a URL may override. A link that goes quiet is given up within seconds, not the kernel's minutes, so a
# worker cut off from the server reports it and reconnects instead of hanging in a read.
CONNECT_DEFAULTS = {
    "connect_timeout": "5",
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "tcp_user_timeout": "10000",
    "application_name": "celery-worker-coordinator",
}
# SQLSTATEs of a transaction that lost a race (serialization failure, deadlock, a row or table another
# transaction made first, a lock not available): run again, it sees the winner's work.
_RETRY_STATES = {"40001", "40P01", "23505", "42P07", "55P03"}


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class PostgresSession:
    """Named queries on one psycopg connection; the clock is the server's, read when the transaction began."""

    __slots__ = ("connection", "now")

    def __init__(self, connection: psycopg.Connection) -> None:
        self.connection = connection
        self.now = 0.0

    def execute(self, name: str, params: Any = ()) -> psycopg.Cursor:
        return self.connection.execute(QUERIES[name], params)

    def executemany(self, name: str, rows: Iterable[Any]) -> None:
        with self.connection.cursor() as cursor:
            cursor.executemany(QUERIES[name], rows)

    def load(self, name: str, rows: Iterable[tuple]) -> None:
        with self.connection.cursor() as cursor, cursor.copy(QUERIES[name]) as copy:
            for row in rows:
                copy.write_row(row)

    def clock(self) -> tuple[float, float]:
        return self.now, self.now


class PostgresStore(Store[psycopg.Connection]):
    """A PostgreSQL database (a postgresql:// URL); the tables live in the connection's current schema."""

    local_clock = False

    def __init__(self, url: str) -> None:
        super().__init__()
        self.db_path = url
        self.location = repr(_without_password(url))
        try:
            options = conninfo_to_dict(url)
        except psycopg.ProgrammingError as error:
            raise StateDatabaseError(f"state database {self.location} is not a valid URL: {error}") from error
        self._options = {**CONNECT_DEFAULTS, **options}
        self.write(self._ensure_schema)

    def _open(self) -> tuple[psycopg.Connection, PostgresSession]:
        connection = psycopg.connect(**self._options, autocommit=True)
        try:
            connection.execute(_CONNECTION_SQL)
        except BaseException:
            connection.close()
            raise
        return connection, PostgresSession(connection)

    def _close(self, connection: psycopg.Connection) -> None:
        connection.close()

    def _transaction(
        self,
        connection: psycopg.Connection,
        session: Session,
        work: Callable[[Session], T],
        write: bool,
        durable: bool,
    ) -> T:
        begin = "begin_read" if not write else "begin_write" if durable else "begin_write_lazy"
        try:
            cursor = connection.execute(QUERIES[begin])
            while cursor.nextset():
                pass
            session.now = cursor.fetchone()[0]  # type: ignore[attr-defined]
            result = work(session)
            connection.execute("COMMIT")
            return result
        except BaseException:
            if not connection.broken and connection.info.transaction_status != TransactionStatus.IDLE:
                # A ROLLBACK that fails too means the connection is broken: the retry opens another.
                with contextlib.suppress(psycopg.Error):
                    connection.execute("ROLLBACK")
            raise

    def _failure(self, error: Exception) -> Failure | None:
        if not isinstance(error, psycopg.Error):
            return None
        state = error.sqlstate
        if state in _RETRY_STATES:
            return Failure.RETRY
        # No SQLSTATE: libpq lost the connection (or never had one); 08: connection exception; 57P: the server
        # is shutting down or restarting.
        if state is None and isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError)):
            return Failure.RECONNECT
        if state is not None and (state.startswith("08") or state.startswith("57P")):
            return Failure.RECONNECT
        return Failure.FATAL

    def _ensure_schema(self, session: Session) -> None:
        session.execute("schema_lock")
        tables = {name for (name,) in session.execute("coordinator_tables")}
        if "meta" in tables:
            row = session.execute("get_meta", {"key": "schema_version"}).fetchone()
            version = int(row[0]) if row else 0
            if version != SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"state database {self.location} has schema version {version}; "
                    f"this release reads version {SCHEMA_VERSION}"
                )
            return
        if tables:
            raise StateDatabaseError(
                f"state database {self.location} has tables named {', '.join(sorted(tables))} that are not a "
                "coordinator's: point it at another database or schema"
            )
        session.connection.execute(load_sql("postgres", "schema.sql"))  # type: ignore[attr-defined]
        session.execute("set_meta", {"key": "schema_version", "value": str(SCHEMA_VERSION)})
