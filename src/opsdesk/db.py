"""Engine, session factory, declarative Base and the column types every domain shares.

SQLite (the embedded default) runs in WAL mode with foreign keys on and SQLAlchemy's pysqlite
recipe for real transactions and savepoints; writers take the lock up front (``BEGIN IMMEDIATE``)
so concurrent requests queue on the busy timeout instead of failing on a lock upgrade.
PostgreSQL runs through psycopg 3. Services flush and never commit: the request, the job runner
or the CLI owns the transaction.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from opsdesk import config_cache

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


_HOLDS_WRITE_GATE = "opsdesk_holds_write_gate"
WRITE_GATE_TIMEOUT_SECONDS = 30


def is_sqlite_url(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, *, echo: bool = False, pool_size: int = 20) -> Engine:
    """Build an engine with opsdesk's connection settings for SQLite or PostgreSQL."""
    if is_sqlite_url(url):
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=20,
        )
        _configure_sqlite(engine)
    else:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        engine = create_engine(url, echo=echo, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)
    config_cache.watch(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so BEGIN and SAVEPOINT behave (the
        # documented pysqlite recipe), then set the pragmas every connection needs.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.execute("PRAGMA mmap_size=268435456")
        cursor.close()

    # Writers of one process queue on a lock before BEGIN IMMEDIATE: a waiting thread then wakes
    # the moment the writer before it finishes, where SQLite's busy handler would poll with sleeps
    # of up to 100 ms (the long tail of latency under concurrent writes). Other processes still
    # meet on SQLite's own lock and busy timeout.
    write_gate = threading.Lock()

    def _release(info: dict[str, Any]) -> None:
        if info.pop(_HOLDS_WRITE_GATE, False):
            write_gate.release()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        # Past the busy timeout, go on without the gate and let SQLite's own lock decide.
        if (
            mode == "IMMEDIATE"
            and not connection.info.get(_HOLDS_WRITE_GATE)
            and write_gate.acquire(timeout=WRITE_GATE_TIMEOUT_SECONDS)
        ):
            connection.info[_HOLDS_WRITE_GATE] = True
        try:
            connection.exec_driver_sql(f"BEGIN {mode}")
        except BaseException:
            _release(connection.info)
            raise

    @event.listens_for(engine, "commit")
    def _on_commit(connection: Any) -> None:
        _release(connection.info)

    @event.listens_for(engine, "rollback")
    def _on_rollback(connection: Any) -> None:
        _release(connection.info)

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        _release(record.info)


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

    def dispose(self) -> None:
        self.engine.dispose()
