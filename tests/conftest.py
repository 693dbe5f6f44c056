"""Fixtures shared by the whole suite.

``db`` is parametrized by SQLite and PostgreSQL: every DB test runs on both, inside a
transaction that is rolled back at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy.orm import Session

from opsdesk import migrate
from opsdesk.db import Database
from tests.support.databases import BoundDatabase, postgres_database, sqlite_url

# Hypothesis' per-example deadline is a timed assertion in disguise: on a loaded machine it fails
# correct code. Tests check behaviour; speed is measured by `opsdesk bench`.
settings.register_profile("opsdesk", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("opsdesk")

DIALECTS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def migrated_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Database]]:
    directory: Path = tmp_path_factory.mktemp("db")
    with postgres_database() as postgres_url:
        databases = {"sqlite": Database(sqlite_url(directory)), "postgresql": Database(postgres_url)}
        for database in databases.values():
            migrate.upgrade(database.url)
        yield databases
        for database in databases.values():
            database.dispose()


@pytest.fixture(params=DIALECTS)
def database(
    request: pytest.FixtureRequest, migrated_databases: dict[str, Database]
) -> Iterator[BoundDatabase]:
    """A Database for one test on one dialect; everything it writes is rolled back."""
    base = migrated_databases[request.param]
    connection = base.engine.connect()
    transaction = connection.begin()
    try:
        yield BoundDatabase(base, connection)
    finally:
        transaction.rollback()
        connection.close()


@pytest.fixture
def db(database: BoundDatabase) -> Iterator[Session]:
    """A session inside the test's rolled-back transaction."""
    session = database.write_sessions()
    try:
        yield session
    finally:
        session.close()
