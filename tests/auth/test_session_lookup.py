"""A browser session is read on a connection of its own, so a write request on SQLite does not
take the write lock in its authentication's thread-pool turn (see opsdesk.web.auth)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from opsdesk import clock, migrate
from opsdesk.auth.models import User, WebSession
from opsdesk.auth.sessions import (
    attach_session,
    find_session,
    last_seen_is_stale,
    session_for_secret,
    start_session,
)
from opsdesk.db import Database
from tests.support.databases import recorded_statements

START = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def file_database(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    migrate.upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def _signed_in(database: Database) -> tuple[int, str]:
    with clock.frozen(START), database.transaction() as session:
        user = User(email="ada@example.com", name="Ada Agent", role="agent")
        session.add(user)
        session.flush()
        started = start_session(session, user, max_age=timedelta(hours=8))
        return started.web_session.id, started.secret


def test_a_session_is_read_while_another_writer_holds_the_lock(
    file_database: Database, tmp_path: Path
) -> None:
    session_id, secret = _signed_in(file_database)
    writer = sqlite3.connect(tmp_path / "sessions.db", isolation_level=None, timeout=0)
    writer.execute("BEGIN IMMEDIATE")  # SQLite's one write lock, held elsewhere
    try:
        with clock.frozen(START + timedelta(minutes=5)):
            with file_database.read_connection() as connection:
                found = find_session(connection, secret)
            assert found is not None
            assert last_seen_is_stale(found)  # touched by the caller in a transaction of its own
            with file_database.read_sessions() as session, recorded_statements(file_database) as statements:
                web_session = attach_session(session, found)
                assert web_session.id == session_id
                assert web_session.user.email == "ada@example.com"  # attached as loaded
            assert statements == []
            with file_database.read_sessions() as session:
                by_orm = session_for_secret(session, secret)
                assert by_orm is not None
                assert (by_orm.id, by_orm.user_id, by_orm.csrf_token) == (
                    web_session.id,
                    web_session.user_id,
                    web_session.csrf_token,
                )
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_expired_revoked_and_inactive_sessions_are_not_found(file_database: Database) -> None:
    session_id, secret = _signed_in(file_database)
    with file_database.read_connection() as connection:
        assert find_session(connection, "not-a-secret") is None
        assert find_session(connection, "") is None
        with clock.frozen(START + timedelta(hours=9)):
            assert find_session(connection, secret) is None  # expired
        with clock.frozen(START + timedelta(minutes=1)):
            assert find_session(connection, secret) is not None
            assert not last_seen_is_stale(find_session(connection, secret))  # type: ignore[arg-type]
    with file_database.transaction() as session:
        session.execute(update(User).values(is_active=False))
    with clock.frozen(START), file_database.read_connection() as connection:
        assert find_session(connection, secret) is None
    with file_database.transaction() as session:
        session.execute(update(User).values(is_active=True))
        session.execute(update(WebSession).where(WebSession.id == session_id).values(revoked_at=START))
    with clock.frozen(START), file_database.read_connection() as connection:
        assert find_session(connection, secret) is None
