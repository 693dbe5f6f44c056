"""Test databases: one SQLite file and one PostgreSQL database per test process, both built by
the real migrations, and a Database whose sessions live inside a test's rolled-back transaction.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import Connection, event
from sqlalchemy.orm import Session, sessionmaker

from opsdesk.db import CHECKPOINTER_THREAD, Database

POSTGRES_ADMIN_URL = os.environ.get(
    "OPSDESK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _admin_dsn() -> str:
    return POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test process, dropped afterwards."""
    name = f"opsdesk_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = _admin_dsn().rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://")
    finally:
        with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'opsdesk-test.db'}"


class BoundDatabase(Database):
    """A Database whose sessions join a test's outer transaction through savepoints, so the
    real application code can commit while the test still rolls everything back."""

    def __init__(self, database: Database, connection: Connection) -> None:
        self.url = database.url
        self.engine = database.engine
        self.is_sqlite = database.is_sqlite
        self.connection = connection
        factory: sessionmaker[Session] = sessionmaker(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        self.read_sessions = factory
        self.write_sessions = factory
        # One connection serves every thread of the test (the SMTP receiver's handlers, its
        # processing thread): their transactions take turns, or savepoints would interleave.
        self._turns = threading.RLock()

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        with self._turns, super().transaction(write=write) as session:
            yield session

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        # The test's connection: what the test wrote in its outer transaction is visible.
        with self._turns:
            yield self.connection


@contextmanager
def recorded_statements(database: Database) -> Iterator[list[str]]:
    """The SQL statements the database's engine runs inside the block, in order (for tests that
    count queries). The server's WAL checkpointer thread is not the code under test: its
    checkpoints every half second are left out (they made query counts flaky)."""
    statements: list[str] = []

    def record(_connection: object, _cursor: object, statement: str, *_rest: object) -> None:
        if threading.current_thread().name != CHECKPOINTER_THREAD:
            statements.append(statement)

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
