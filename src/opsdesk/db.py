"""Engine, session factory, declarative Base and the column types every domain shares.

SQLite (the embedded default) runs in WAL mode with foreign keys on and SQLAlchemy's pysqlite
recipe for real transactions and savepoints; writers take the lock up front (``BEGIN IMMEDIATE``)
so concurrent requests queue on the busy timeout instead of failing on a lock upgrade.
PostgreSQL runs through psycopg 3. Services flush and never commit: the request, the job runner
or the CLI owns the transaction.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Connection, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from opsdesk import config_cache

logger = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """An instant stored in UTC and always read back as an aware UTC datetime.

    SQLite has no time zones, so values are stored naive-in-UTC there; a naive value handed in
    is refused because its zone is unknown.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSON that is JSONB on PostgreSQL (indexable, compact) and JSON text on SQLite.
JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")
# Auto-incrementing big integer keys: SQLite only auto-increments INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(sqlite.INTEGER(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, list[str]: JSONType}


WRITE_GATE_TIMEOUT_SECONDS = 30


def is_sqlite_url(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, *, echo: bool = False, pool_size: int = 20) -> Engine:
    """Build an engine with opsdesk's connection settings for SQLite or PostgreSQL."""
    if is_sqlite_url(url):
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30, "factory": _GatedConnection},
            pool_size=pool_size,
            max_overflow=20,
        )
        _configure_sqlite(engine, WriteGate(engine.url.database))
    else:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        engine = create_engine(url, echo=echo, pool_size=pool_size, max_overflow=20)
        _ping_after_idle(engine)
    config_cache.watch(engine)
    return engine


# PostgreSQL: a pooled connection idle this long is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 5.0
_CHECKED_IN_AT = "opsdesk_checked_in_at"


def _ping_after_idle(engine: Engine) -> None:
    """Hand out a pooled PostgreSQL connection only if it still works, pinging it only when it
    has been idle for :data:`PING_AFTER_IDLE_SECONDS`.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout: a round trip per request, about a
    tenth of a ticket creation's. A server restart or an idle-connection timeout hits connections
    that sat in the pool; one in steady use is pinged by its own statements, and a disconnect
    found there invalidates the whole pool (SQLAlchemy's handling), so the other connections are
    replaced at their next checkout. A connection already known broken is never handed out.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if dbapi_connection.closed or dbapi_connection.broken:
            raise DisconnectionError("the connection was closed")
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool replaces the connection and tries again.
            raise DisconnectionError(f"the idle connection no longer works: {error}") from error


# SQLite checkpoints the WAL into the database file from the COMMIT that grows it past this many
# pages, inside that writer's lock, with an fsync of the file. At SQLite's default of 1,000 pages
# (4 MB) a ticket creation load did so every few dozen commits, and every writer queued behind
# it. A server moves checkpoints to WalCheckpointer's thread; this (40 MB) is the backstop for
# processes without one (CLI commands) and for a checkpointer that falls behind.
WAL_AUTOCHECKPOINT_PAGES = 10_000


CHECKPOINTER_THREAD = "opsdesk-wal-checkpointer"


class WalCheckpointer:
    """Checkpoints a SQLite database's WAL from a thread of its own, off the write path.

    ``PRAGMA wal_checkpoint(PASSIVE)`` copies committed pages into the database file without
    waiting for readers or writers (and without the write lock); once all of the WAL is copied,
    the next writer starts it over from the beginning, so it stays small. Every ``interval``
    seconds while the server runs; a second process's checkpointer finds the checkpoint taken
    and waits for the next turn."""

    def __init__(self, database: Database, interval: float = 0.5) -> None:
        self.database = database
        self.interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def checkpoint(self) -> tuple[int, int, int]:
        """One passive checkpoint: (busy, pages in the WAL, pages copied to the database)."""
        with self.database.engine.connect() as connection:
            busy, in_wal, copied = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
            return int(busy), int(in_wal), int(copied)

    def start(self) -> None:
        if not self.database.is_sqlite or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=CHECKPOINTER_THREAD, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.checkpoint()
            except Exception:  # the next turn tries again; SQLite's own backstop still holds
                logger.exception("WAL checkpoint failed")


class WriteGate:
    """Where SQLite writers of every process queue before ``BEGIN IMMEDIATE``.

    SQLite has one write lock. A writer that finds it taken sleeps in SQLite's busy handler
    (1, 2, 5, 10 … up to 100 ms) and polls again, so under concurrent writes from several
    processes (Uvicorn workers, ``opsdesk worker``) latency grows a long tail and the lock is not
    handed over in arrival order. Here threads of a process queue on a lock, and processes on an
    exclusive ``flock`` of ``<database>-writers``, polled every half millisecond, and the gate is
    released right after COMMIT or ROLLBACK (see :class:`_GatedConnection`), so the next writer
    starts within a fraction of a millisecond. Past the timeout a writer goes on without the
    gate and SQLite's own lock and busy timeout decide, as before.
    """

    POLL_SECONDS = 0.0005

    def __init__(self, database_path: str | None) -> None:
        self._threads = threading.Lock()
        self._path = f"{database_path}-writers" if database_path and database_path != ":memory:" else None
        self._file: int | None = None

    def acquire(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if not self._threads.acquire(timeout=timeout):
            return False
        if self._path is None:
            return True
        try:
            if self._file is None:
                self._file = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            while True:
                try:
                    fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        self._threads.release()
                        return False
                    time.sleep(self.POLL_SECONDS)
        except OSError:
            # No lock file (a read-only directory): the thread lock alone, as before.
            return True

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
        self._threads.release()


class _GatedConnection(sqlite3.Connection):
    """A pysqlite connection that lets go of its :class:`WriteGate` right after COMMIT or
    ROLLBACK has run (SQLAlchemy's commit event fires before it)."""

    write_gate: WriteGate | None = None
    holds_write_gate = False

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.release_write_gate()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.release_write_gate()

    def release_write_gate(self) -> None:
        if self.holds_write_gate and self.write_gate is not None:
            self.holds_write_gate = False
            self.write_gate.release()


def _configure_sqlite(engine: Engine, write_gate: WriteGate) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so BEGIN and SAVEPOINT behave (the
        # documented pysqlite recipe), then set the pragmas every connection needs.
        dbapi_connection.isolation_level = None
        dbapi_connection.write_gate = write_gate
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.execute("PRAGMA mmap_size=268435456")
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        dbapi_connection = connection.connection.dbapi_connection
        if (
            mode == "IMMEDIATE"
            and not dbapi_connection.holds_write_gate
            and write_gate.acquire(timeout=WRITE_GATE_TIMEOUT_SECONDS)
        ):
            dbapi_connection.holds_write_gate = True
        try:
            connection.exec_driver_sql(f"BEGIN {mode}")
        except BaseException:
            dbapi_connection.release_write_gate()
            raise

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
        # A connection returned without COMMIT or ROLLBACK (invalidated) must not keep the gate.
        if isinstance(dbapi_connection, _GatedConnection):
            dbapi_connection.release_write_gate()


class Database:
    """One engine and the two session factories built on it (reading and writing)."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self.is_sqlite = is_sqlite_url(url)
        write_engine = (
            self.engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite else self.engine
        )
        self.read_sessions = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.write_sessions = sessionmaker(bind=write_engine, expire_on_commit=False)

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """A session whose work commits at the end of the block, or rolls back on error."""
        factory = self.write_sessions if write else self.read_sessions
        with factory() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A Core connection for a short read of its own (a read transaction, rolled back at the
        end): cheaper than a session where no mapped objects are loaded."""
        with self.engine.connect() as connection:
            yield connection

    def dispose(self) -> None:
        self.engine.dispose()
